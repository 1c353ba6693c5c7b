"""Assigning many sites at once (``zeren assign FILE`` and ``POST /assign``): each site, in the CRS it came in,
is converted to WGS84 and gets the assignment columns (lead, planners, consultations, zones, nearest...), or
a reason it cannot be assigned. One set of rules for both doors:

* input columns (or feature properties) named like an added column are refused before any work, naming them,
  so nothing the user sent is overwritten;
* a site that cannot be used (no geometry, positions out of range, lat/lon swapped) is named with its reason.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from zeren.api.service.budget import geometry_vertices
from zeren.api.service.workspace import Workspace
from zeren.geo.answer import ASSIGNMENT_COLUMNS, assignment_columns
from zeren.geo.assign import (adopt_lead_segments, adopt_point_grid, batch_structures_pay, box_grid_pays,
                              has_lead_segments, has_point_grid, lead_segments_key, lead_segments_state,
                              point_grid_key, point_grid_state)
from zeren.geo.crs import InputCRS
from zeren.geo.sites import sites_to_wgs84
from zeren.layers.errors import ValidationError
from zeren.layers.importer import open_table
from zeren.layers.index_cache import IndexCache
from zeren.layers.writers import LayerWriter, output_path

# What assignment adds to each site: the assignment columns, plus ``error`` for sites that cannot be assigned
# and ``repaired`` for invalid polygons made valid on the way in.
ADDED_COLUMNS = (*ASSIGNMENT_COLUMNS, "error", "repaired")
CHUNK = 200_000  # sites per call of the spatial join (bounds its temporary arrays)
FILE_CHUNK = 1_000_000  # rows of a file read, assigned and written at a time (bounds memory)
_LIST_COLUMNS = ("planners", "consultations", "zones")


def check_columns(names, where: str) -> None:
    """Refuse input columns/properties that assignment would overwrite (422 / exit 2, naming them)."""
    clashes = [c for c in ADDED_COLUMNS if c in set(names)]
    if clashes:
        raise ValidationError(f"{where} already has {', '.join(clashes)}, which assignment adds; rename "
                              f"{'it' if len(clashes) == 1 else 'them'} first (nothing was assigned)",
                              [f"{where}: {c}" for c in clashes])


@dataclass
class SiteBatch:
    """The answer for a batch: ``columns`` (one row per input site, in input order; empty lists and False
    for the sites that could not be assigned), ``wgs84`` geometries (None where unusable), ``problems``
    (None or the reason per site) and ``as_of``."""

    columns: pd.DataFrame
    wgs84: np.ndarray
    problems: list
    as_of: pd.Timestamp

    @property
    def good(self) -> np.ndarray:
        return np.array([p is None for p in self.problems], dtype=bool)

    @property
    def bad_rows(self) -> np.ndarray:
        return np.flatnonzero(~self.good)


def _empty_columns(n: int, lists: str) -> pd.DataFrame:
    out = pd.DataFrame({c: pd.Series(np.full(n, None, dtype=object), dtype=object) for c in ASSIGNMENT_COLUMNS})
    out["covered"] = False
    out["split"] = False
    for c in _LIST_COLUMNS:
        out[c] = [[] for _ in range(n)] if lists == "python" else pd.Series(np.full(n, "[]", dtype=object),
                                                                              dtype=object)
    out["nearest_distance_m"] = np.full(n, np.nan)
    return out


def assign_sites(ws: Workspace, geoms: np.ndarray, crs: InputCRS, as_of=None, *, problems=None,
                 where: list[str] | None = None, progress=None, chunk: int = CHUNK, lists: str = "python",
                 budget=None, deadline=None) -> SiteBatch:
    """Convert ``geoms`` (in ``crs``) to WGS84 and assign the usable ones on ``as_of``. ``problems``: reasons
    already known per site (e.g. unparsable GeoJSON), kept; ``where``: how messages name each site;
    ``lists``: the list columns as Python lists (``"python"``) or as JSON text (``"json"``, for files);
    ``budget`` (:class:`~zeren.api.service.budget.WorkBudget`): vertex limits checked before any work;
    ``deadline`` (:class:`~zeren.api.service.budget.Deadline`): checked between chunks."""
    from zeren.geo.validity import as_timestamp

    catalogue = ws.catalogue
    n = len(geoms)
    where = where or [f"site {i + 1}" for i in range(n)]
    if budget is not None:
        budget.check(geometry_vertices(geoms), lambda i: where[i])
    known = list(problems) if problems is not None else [None] * n
    usable = np.array([p is None for p in known], dtype=bool)
    wgs = np.full(n, None, dtype=object)
    if usable.any():
        converted, found = sites_to_wgs84(np.asarray(geoms, dtype=object)[usable], crs, catalogue.index.bounds,
                                          [w for w, u in zip(where, usable) if u])
        wgs[usable] = converted
        for i, p in zip(np.flatnonzero(usable), found):
            known[i] = p
    good = np.flatnonzero([p is None for p in known])
    day = as_timestamp(as_of)
    out = _empty_columns(n, lists)
    if len(good) and len(catalogue.index):
        parts = []
        for start in range(0, len(good), chunk):
            if deadline is not None:
                deadline.check()
            rows = good[start:start + chunk]
            cols = assignment_columns(catalogue.assign(wgs[rows], day), lists=lists)
            cols.index = rows
            parts.append(cols)
            if progress is not None:
                progress(len(rows))
        found_cols = pd.concat(parts)
        for c in ASSIGNMENT_COLUMNS:
            if c in _LIST_COLUMNS and lists == "python":
                values = out[c].tolist()
                for i, v in zip(found_cols.index.tolist(), found_cols[c].tolist()):
                    values[i] = v
                out[c] = values
            elif c == "nearest_distance_m":
                column = out[c].to_numpy(dtype=float).copy()
                column[found_cols.index.to_numpy()] = found_cols[c].to_numpy(dtype=float)
                out[c] = column
            else:  # object columns keep None as None (pandas would infer a string dtype with NaN)
                column = out[c].to_numpy(dtype=object).copy()
                column[found_cols.index.to_numpy()] = found_cols[c].to_numpy(dtype=object)
                out[c] = pd.Series(column, dtype=object, index=out.index)
        out["covered"] = out["covered"].astype(bool)
        out["split"] = out["split"].astype(bool)
    return SiteBatch(columns=out, wgs84=wgs, problems=known, as_of=day)


@dataclass
class FileAssignment:
    """What ``assign_file`` did: sites read, assigned, covered, unusable (with their reasons, the first 50)."""

    out: Path
    read: int = 0
    assigned: int = 0
    covered: int = 0
    bad: int = 0
    problems: list = field(default_factory=list)
    as_of: pd.Timestamp | None = None


def assign_file(ws: Workspace, sites: Path, out: Path, *, layer: str | None = None, crs: str | None = None,
                as_of=None, skip_bad: bool = False, chunk_rows: int = FILE_CHUNK, progress=None,
                budget=None, index_cache: IndexCache | None = None) -> FileAssignment:
    """``zeren assign FILE --out OUT``: read the sites chunk by chunk (at most ``chunk_rows`` rows in memory),
    assign each chunk and write it, so a file of any size runs in flat memory. The output is written to a
    temporary file and moved into place at the end: unless ``skip_bad``, one unusable site anywhere means
    nothing is written (the whole file is still read, to name every problem at once). ``budget``: the vertex
    limits, checked on each chunk before it is assigned (a site over its limit stops the run, nothing written).
    ``index_cache``: where the zone index's batch structures are kept for the next run over the same zones
    (``layers.index_cache``; a fresh process, as every ``zeren assign`` is, then adopts them instead of
    building them)."""
    out_path = output_path(out)
    table, input_crs = open_table(sites, layer=layer, crs=crs)
    check_columns([c for c in table.header if c != "geometry"], str(sites))  # before any row is read
    result = FileAssignment(out=out_path)
    unit = "row" if table.first_row != 1 else "feature"
    lonlat = len(table.geometry_columns) == 2
    one_chunk = table.count is not None and table.count <= chunk_rows
    writer = LayerWriter(out_path, "assigned", csv_wkt_column=None if table.geometry_columns else "wkt",
                         geometry_type="Point" if lonlat else None if one_chunk else "Unknown")
    writing = True
    try:
        with _Writes() as writes:  # each piece written on a thread while the next one is assigned
            if _point_file(table):  # points (by two numbers, WKT or WKB): no geometry object per row
                writing = _assign_points(ws, table, input_crs, as_of, writer, result, writes, skip_bad=skip_bad,
                                         one_chunk=one_chunk, chunk_rows=chunk_rows, progress=progress,
                                         budget=budget, unit=unit, name=str(sites), index_cache=index_cache)
            else:
                if index_cache is not None and table.count is not None and box_grid_pays(min(table.count,
                                                                                             chunk_rows)):
                    _keep_grid(ws.catalogue.index, index_cache)
                for frame in table.chunks(chunk_rows):
                    writing = _assign_frame(ws, frame, input_crs, as_of, writer, result, writes, writing,
                                            skip_bad=skip_bad, one_chunk=one_chunk, progress=progress,
                                            budget=budget, unit=unit, name=str(sites))
        if result.bad and not skip_bad:
            writer.abort()
            more = result.bad - len(result.problems)
            raise ValidationError(f"{sites}: {result.bad} site(s) cannot be assigned; nothing was written:\n"
                                  + "\n".join(f"  {p}" for p in result.problems)
                                  + (f"\n  ... and {more} more" if more > 0 else "")
                                  + "\nFix them, or pass --skip-bad to write them with an 'error' column.")
        writer.close()
    except BaseException:
        writer.abort()
        raise
    return result


def _assign_frame(ws: Workspace, frame: gpd.GeoDataFrame, input_crs: InputCRS, as_of, writer: LayerWriter,
                  result: FileAssignment, writes, writing: bool, *, skip_bad: bool, one_chunk: bool, progress,
                  budget, unit: str, name: str) -> bool:
    """One chunk of ``assign_file`` as a GeoDataFrame (``assign_sites``): any geometry. Returns whether the
    output is still to be written (False once an unusable site was met without ``skip_bad``)."""
    check_columns([c for c in frame.columns if c != frame.geometry.name], name)
    first = frame.attrs.get("first_row", 1)
    where = [f"{unit} {i + first}" for i in range(len(frame))]
    batch = assign_sites(ws, np.asarray(frame.geometry.to_numpy(), dtype=object), input_crs, as_of,
                         where=where, progress=progress, lists="json", budget=budget)
    result.as_of = batch.as_of
    bad = batch.bad_rows
    result.read += len(frame)
    result.bad += len(bad)
    result.problems += [batch.problems[i] for i in bad[:max(0, 50 - len(result.problems))]]
    if len(bad) and not skip_bad:
        writing = False  # keep reading, to name every problem; write nothing
    if not writing:
        return False
    added = batch.columns
    if len(bad) or (skip_bad and not one_chunk):  # every chunk of a streamed file has the same columns
        added = added.assign(error=pd.Series(batch.problems, dtype=object))
    table_out = pd.DataFrame(frame.drop(columns=frame.geometry.name)).reset_index(drop=True)
    joined = table_out.join(added.reset_index(drop=True))
    # GeoJSON is WGS84 lon/lat by definition (RFC 7946): every format gets the converted geometries
    writes.submit(writer.write, gpd.GeoDataFrame(joined, geometry=gpd.GeoSeries(batch.wgs84, crs="EPSG:4326")))
    result.assigned += int(batch.good.sum())
    result.covered += int(added["covered"].sum())
    return True


def _point_file(table) -> bool:
    """Whether ``assign_file`` reads the file as points on the Arrow path: a CSV with lon/lat or WKT columns
    (a chunk of WKT holding other geometries takes the frame path), a GeoPackage (or other GDAL file) layer or
    a GeoParquet file that declares 2D points."""
    if table.kind == "csv":
        return True
    return table.point_layer


def _prepare_for_points(catalogue, day, table, index_cache: IndexCache | None = None):
    """The index's batch structures for the points of ``table`` (``geo.assign.prepare_for_points``, sized by
    its row count or, for a CSV, its bytes), built on a thread while the caller reads: a future. With an
    ``index_cache``, what it keeps for these zones (and this date's leads) is adopted instead of built, and
    what had to be built is kept there for the next run."""
    import threading
    from concurrent.futures import Future

    from zeren.geo.assign import prepare_for_points

    try:
        rows = table.count if table.count is not None else table.path.stat().st_size // _CSV_BYTES_PER_POINT
    except OSError:  # not a plain file (a GDAL virtual path): count as small, the grid is built when used
        rows = 0
    done: Future = Future()

    def run():
        try:
            index, resp = catalogue.index, catalogue.responsibility(day)
            if index_cache is not None and batch_structures_pay(rows):
                _keep_batch_structures(index, resp, index_cache)
            prepare_for_points(index, resp, rows)  # (builds what was not adopted)
            _give_back_freed_memory()
            done.set_result(None)
        except BaseException as exc:  # raised where the caller waits for it
            done.set_exception(exc)

    threading.Thread(target=run, name="zeren-prepare", daemon=True).start()
    return done


def _keep_batch_structures(index, resp, cache: IndexCache) -> None:
    """The point grid and the led zones' segments of a large batch of points: each adopted from ``cache``, else
    built and kept there (kept too when this process has it already and the cache lacks it)."""
    if len(index):
        _keep_grid(index, cache)
        _kept(cache, lead_segments_key(resp), partial(adopt_lead_segments, resp), partial(lead_segments_state, resp),
              built=has_lead_segments(resp))


def _keep_grid(index, cache: IndexCache) -> None:
    """The point grid alone (a file of lines or polygons whose chunks build it), as ``_keep_batch_structures``."""
    if len(index):
        _kept(cache, point_grid_key(index), partial(adopt_point_grid, index), partial(point_grid_state, index),
              built=has_point_grid(index))


def _kept(cache: IndexCache, key: str, adopt, build, *, built: bool) -> None:
    """Adopt the structure ``cache`` keeps under ``key`` (``adopt(arrays)``); else build it (``build()``
    returns it as arrays) and keep it there. ``built``: this process has it already; it is only kept, when the
    cache lacks it."""
    if built:
        if key not in cache:
            cache.save(key, build())
        return
    state = cache.load(key)
    if state is not None and adopt(state):
        return
    cache.save(key, build())


def _give_back_freed_memory() -> None:
    """Return the heap memory freed by the index's build to the system (glibc's ``malloc_trim``; nothing
    elsewhere). The build's temporaries (the grid's marking, the shared segments' keys, the zones projected
    for the segments) are freed, but glibc keeps most of such memory for reuse: at 30,000 zones 300 MB stayed
    resident beside the output being gathered, and the peak of a million-point ``zeren assign`` into a
    GeoPackage went from 1.40 to 1.60 GB. A few milliseconds; safe beside other threads (glibc locks)."""
    global _MALLOC_TRIM
    if _MALLOC_TRIM is None:
        import ctypes
        import sys

        trim = False
        if sys.platform.startswith("linux"):
            try:
                trim = getattr(ctypes.CDLL(None), "malloc_trim", False)  # (absent on musl)
            except OSError:
                trim = False
        if trim:
            trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
        _MALLOC_TRIM = trim
    if _MALLOC_TRIM:
        _MALLOC_TRIM(0)


_MALLOC_TRIM = None
_CSV_BYTES_PER_POINT = 40  # "id,lon,lat" rows with a few more columns: an under-estimate of rows is harmless


def _point_chunks(table, chunk_rows: int):
    """Per chunk of a point file: (attributes as an Arrow table, x, y, None), the coordinates in the file's CRS
    (NaN: no usable point), or (attributes, None, None, geometries) for a chunk that holds other geometries."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import shapely

    from zeren.layers.sources import csv_numbers, point_xy

    if table.lonlat_columns is not None:
        lon_col, lat_col = table.lonlat_columns
        for chunk in table.csv_tables(chunk_rows):
            yield chunk, csv_numbers(chunk.column(lon_col)), csv_numbers(chunk.column(lat_col)), None
        return
    if table.kind == "csv":  # a WKT column, kept among the attributes as the user wrote it
        column = table.geometry_columns[0]
        for chunk in table.csv_tables(chunk_rows):
            cells = chunk.column(column)
            text = pc.if_else(pc.equal(cells, ""), pa.scalar(None, type=cells.type), cells)  # "" is no geometry
            geoms = shapely.from_wkt(text.to_numpy(zero_copy_only=False), on_invalid="ignore")
            xy = point_xy(geoms)
            yield (chunk, *xy, None) if xy is not None else (chunk, None, None, geoms)
        return
    for attrs, xy, geoms in table.point_tables(chunk_rows):
        yield (attrs, *xy, None) if xy is not None else (attrs, None, None, geoms)


def _assign_points(ws: Workspace, table, input_crs: InputCRS, as_of, writer: LayerWriter,
                   result: FileAssignment, writes, *, skip_bad: bool, one_chunk: bool, chunk_rows: int, progress,
                   budget, unit: str, name: str, index_cache: IndexCache | None = None) -> bool:
    """``assign_file`` for points at disk speed (a CSV with lon/lat or WKT, a GeoPackage or GeoParquet of
    points): each chunk stays an Arrow table, the coordinates go from it to numpy, the added columns are
    built as arrays and appended to it, and the writer takes the table and the coordinates
    (:meth:`LayerWriter.write_points`). The same rows, columns, messages and rules as the general path
    (``assign_sites`` on a frame of points). Returns whether the output is still to be written (False once
    an unusable site was met without ``skip_bad``)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from zeren.geo.sites import points_to_wgs84
    from zeren.geo.validity import as_timestamp
    from zeren.layers.writers import _plain_text

    catalogue = ws.catalogue
    day = as_timestamp(as_of)
    result.as_of = day
    writing = True
    first = table.first_row
    as_frame = None
    warming = _prepare_for_points(catalogue, day, table, index_cache)  # while the first chunk is read
    for chunk, x, y, geoms in _point_chunks(table, chunk_rows):
        n = chunk.num_rows
        if warming is not None:  # ready before anything is assigned, on either path
            warming.result()
            warming = None
            if index_cache is not None and batch_structures_pay(n):  # (more rows than the file's size promised)
                _keep_batch_structures(catalogue.index, catalogue.responsibility(day), index_cache)
        if geoms is not None:  # not points after all: this chunk as a frame
            frame = gpd.GeoDataFrame(chunk.to_pandas(), geometry=gpd.GeoSeries(geoms), crs=table.crs)
            frame.attrs["first_row"] = first
            writing = _assign_frame(ws, frame, input_crs, as_of, writer, result, writes, writing,
                                    skip_bad=skip_bad, one_chunk=one_chunk, progress=progress, budget=budget,
                                    unit=unit, name=name)
            first += n
            continue
        if table.kind != "csv":
            check_columns(chunk.column_names, name)
        if as_frame is None and table.kind == "csv" and writer.driver != "CSV":  # (CSV: the same text either way)
            as_frame = pa.Schema.from_pandas(chunk.slice(0, 0).to_pandas(), preserve_index=False).remove_metadata()

        def where(i, first=first):
            return f"{unit} {i + first}"

        if budget is not None:
            budget.check((np.isfinite(x) & np.isfinite(y)).astype(np.int64), where)
        lon, lat, problems = points_to_wgs84(x, y, input_crs, catalogue.index.bounds, where)
        bad = np.array(sorted(problems), dtype=np.int64)
        result.read += n
        result.bad += len(bad)
        result.problems += [problems[i] for i in bad[:max(0, 50 - len(result.problems))].tolist()]
        first += n
        if len(bad) and not skip_bad:
            writing = False  # keep reading, to name every problem; write nothing
        if not writing:
            continue
        good = np.ones(n, dtype=bool)
        good[bad] = False
        with_error = bool(len(bad)) or (skip_bad and not one_chunk)  # every chunk of a streamed file has it
        error = None
        if with_error:
            error = np.full(n, None, dtype=object)
            error[bad] = [problems[i] for i in bad.tolist()]
        # assigned and written CHUNK rows at a time, each piece written on a thread while the next is assigned:
        # the output text of a whole chunk is never held at once, and the writing overlaps the assigning. A
        # GeoPackage takes the chunk in one write: appending to a layer updates its R*Tree row by row (five
        # appends of 200,000 points cost three times one write of 1,000,000)
        gather = [] if writer.driver == "GPKG" else None
        for start in range(0, max(n, 1), CHUNK):  # an empty table too: its header is written
            part = slice(start, min(n, start + CHUNK))
            columns = _point_columns(catalogue, lon[part], lat[part], good[part], day)
            if with_error:
                columns["error"] = pa.array(error[part], type=pa.string())
            piece = chunk.slice(start, part.stop - start)
            if as_frame is not None:  # the input columns typed as a frame of them types them (large text)
                piece = piece.cast(as_frame)
            elif table.kind != "csv":  # typed columns: as a frame of them types them (nullable integers...)
                piece = pa.Table.from_pandas(piece.to_pandas(), preserve_index=False).replace_schema_metadata()
            for column, values in columns.items():
                piece = piece.append_column(column, values)
            if gather is None:
                writes.submit(writer.write_points, piece, lon[part], lat[part])
            else:
                gather.append(_plain_text(piece))
            assigned = int(good[part].sum())
            if progress is not None and assigned:
                progress(assigned)
            result.assigned += assigned
            result.covered += int(pc.sum(columns["covered"]).as_py() or 0)
        if gather:
            writes.submit(writer.write_points, pa.concat_tables(gather), lon, lat)
        del gather
    return writing


class _Writes:
    """Calls run one at a time on a thread, in order (``submit`` waits for the previous call first, so at most
    one piece is being written while the next is built); leaving the block waits for the last one, and an
    error of a call is raised by the next ``submit`` or on leaving."""

    def __enter__(self):
        from concurrent.futures import ThreadPoolExecutor

        self._pool = ThreadPoolExecutor(1, thread_name_prefix="zeren-write")
        self._pending = None
        return self

    def submit(self, func, *args) -> None:
        self._wait()
        self._pending = self._pool.submit(func, *args)

    def _wait(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self._wait()
            elif self._pending is not None:  # already failing: let the write finish (the output is discarded)
                self._pending.exception()
        finally:
            self._pool.shutdown(wait=True)


def _point_columns(catalogue, lon: np.ndarray, lat: np.ndarray, good: np.ndarray, day) -> dict:
    """The assignment columns of a chunk of points as Arrow arrays (the values ``assign_sites`` gives them:
    False, null, ``[]`` and NaN (null) for the rows that are not assigned)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from zeren.geo.answer import assignment_arrays
    from zeren.geo.assign import assign_xy

    n = len(good)
    rows = np.flatnonzero(good)
    if not len(rows) or not len(catalogue.index):
        parts = []
    else:
        resp = catalogue.responsibility(day)
        parts = [assignment_arrays(assign_xy(resp.index, resp, lon[rows[i:i + CHUNK]], lat[rows[i:i + CHUNK]]))
                 for i in range(0, len(rows), CHUNK)]
    defaults = {"covered": False, "split": False, **{c: "[]" for c in _LIST_COLUMNS}}
    types = {"covered": pa.bool_(), "split": pa.bool_(), "nearest_distance_m": pa.float64()}
    out = {}
    for c in ASSIGNMENT_COLUMNS:
        kind = types.get(c, pa.string())
        if not parts:
            values = pa.nulls(n, type=kind)
        else:
            values = pa.chunked_array([p[c] for p in parts])
            if pa.types.is_dictionary(values.type) and (len(rows) < n or len(parts) > 1):
                values = values.cast(pa.string())  # pieces with their own dictionaries, or gaps to fill
            if len(rows) < n:  # unusable rows in between: gather the assigned ones into place, nulls elsewhere
                at = np.full(n, -1, dtype=np.int64)
                at[rows] = np.arange(len(rows))
                values = pc.take(values, pa.array(at, mask=at < 0))
        if c in defaults:
            values = pc.fill_null(values, pa.scalar(defaults[c], type=kind))
        out[c] = values
    return out


__all__ = ["ADDED_COLUMNS", "check_columns", "assign_sites", "assign_file", "FileAssignment", "SiteBatch",
           "CHUNK", "FILE_CHUNK"]
