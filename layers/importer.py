"""Reading and checking real boundary files: GeoJSON, GeoPackage, zipped Shapefile, CSV (WKT or lon/lat).

``read_zone_layer`` returns the features ready for the store (EPSG:4326, MultiPolygon, canonical columns)
and a report: features read, repaired, rejected with the reason for each. Nothing here writes.
"""
from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from zeren.geo.crs import InputCRS, geometries_to_wgs84, lonlat_problems, parse_crs
from zeren.geo.errors import GeoInputError
from zeren.geo.repair import repair_polygons
from zeren.layers.errors import InputFileError
from zeren.layers.sources import SiteTable, open_csv, open_ogr, open_parquet

MAX_FILE_BYTES = 2 * 1024**3
SHAPEFILE_FIELD_CHARS = 10  # a .dbf cuts field names to 10 characters: parent_code arrives as parent_cod
SWAPPED_REASON = "coordinates look like lat/lon swapped"
# Where Chinese boundary data lies (mainland, Hainan, Taiwan): with no stored zones to compare against, a
# feature outside this box whose swapped coordinates fall inside it is taken as lat/lon swapped.
CHINA_BOUNDS = (73.4, 18.1, 135.1, 53.6)


@dataclass
class Rejection:
    row: int  # 1-based feature number in the file (CSV: the line number)
    code: str | None
    reason: str


@dataclass
class ImportReport:
    source: str
    crs: str
    read: int = 0
    repaired: list[tuple[int, str | None]] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    missing_fields: list[str] = field(default_factory=list)  # optional zone fields the file does not have
    unit: str = "feature"  # how rows are named: "feature" N of a vector file, "row" N (the line number) of a CSV

    @property
    def accepted(self) -> int:
        return self.read - len(self.rejected)

    def as_dict(self) -> dict:
        return {
            "source": self.source, "crs": self.crs, "read": self.read, "accepted": self.accepted,
            "repaired": len(self.repaired), "rejected": len(self.rejected),
            "repaired_features": [{"row": r, "code": c} for r, c in self.repaired],
            "rejected_features": [r.__dict__ for r in self.rejected], "notes": self.notes,
            "missing_fields": self.missing_fields,
        }

    def text(self, show_rejected: bool = True) -> str:
        lines = [f"读取 / read: {self.read}   修复 / repaired: {len(self.repaired)}   "
                 f"拒绝 / rejected: {len(self.rejected)}   (CRS: {self.crs})"]
        lines += [f"  注意 / note: {n}" for n in self.notes]
        lines += [f"  修复 / repaired: {self.unit} {r} (code {c}): invalid polygon fixed with make_valid"
                  for r, c in self.repaired[:50]]
        if not show_rejected:
            return "\n".join(lines)
        lines += [f"  拒绝 / rejected: {self.unit} {r.row} (code {r.code}): {r.reason}" for r in self.rejected[:500]]
        if len(self.rejected) > 500:
            lines.append(f"  ... and {len(self.rejected) - 500} more rejected")
        return "\n".join(lines)


def _check_file(path: Path) -> None:
    if not path.exists():
        raise InputFileError(f"{path}: no such file")
    if path.is_dir():
        raise InputFileError(f"{path}: is a folder; give a .geojson, .gpkg, .zip (Shapefile) or .csv file")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise InputFileError(f"{path}: larger than {MAX_FILE_BYTES // 1024**3} GB; split it by district")
    if path.stat().st_size == 0:
        raise InputFileError(f"{path}: the file is empty")


def open_table(path: str | Path, *, layer: str | None = None, crs: str | None = None) -> tuple[SiteTable, InputCRS]:
    """Open any supported file for reading (whole or in chunks: :class:`layers.sources.SiteTable`), with the
    CRS it states or is told. ``crs`` overrides the file's CRS (data from AMap is often labelled WGS84 while in
    GCJ-02)."""
    path = Path(path)
    _check_file(path)
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt"):
        table = open_csv(path)
    elif suffix in (".parquet", ".geoparquet"):
        table = open_parquet(path)
    else:
        source, encoding, layer = _vector_source(path, layer)
        table = open_ogr(source, path, layer, encoding)
    if crs is not None:
        target = parse_crs(crs)
    elif table.crs is not None:
        target = parse_crs(table.crs)
    else:
        raise InputFileError(f"{path}: the file states no CRS; say which with --crs "
                             f"(wgs84, cgcs2000, gcj02, bd09 or EPSG:n)")
    return table, target


def read_table(path: str | Path, *, layer: str | None = None, crs: str | None = None) -> tuple[gpd.GeoDataFrame, InputCRS]:
    """Read any supported file as a GeoDataFrame in its own coordinates, with the CRS it states or is told."""
    table, target = open_table(path, layer=layer, crs=crs)
    return table.read(), target


def _vector_source(path: Path, layer: str | None) -> tuple[str, str | None, str | None]:
    """The GDAL source, its encoding and the layer to read (checked: one layer, or the one named, with geometry)."""
    source = str(path)
    encoding = None
    if path.suffix.lower() == ".zip":
        source, encoding = _shapefile_in_zip(path)
    try:
        layers = pyogrio.list_layers(source)
    except Exception as exc:
        raise InputFileError(f"{path}: cannot be read as GeoJSON, GeoPackage, GeoParquet or zipped Shapefile "
                             f"({_first_line(exc)})") from None
    names = [str(n) for n in layers[:, 0]]
    if layer is None and len(names) > 1:
        raise InputFileError(f"{path}: holds {len(names)} layers ({', '.join(names)}); choose one with --layer")
    if layer is not None and layer not in names:
        raise InputFileError(f"{path}: no layer {layer!r}; it holds {', '.join(names)}")
    shown = layer or (names[0] if names else None)
    if shown is None:
        raise InputFileError(f"{path}: holds no layer; give a file with geometries")
    if layers[names.index(shown), 1] is None:
        spatial = [str(n) for n, g in layers if g]
        raise InputFileError(f"{path}: layer {shown!r} has no geometry (a table of attributes, not a boundary or "
                             f"site layer); " + (f"choose a layer with geometry: --layer {' | '.join(spatial)}"
                                                 if spatial else "give a file with geometries"))
    return source, encoding, layer


def _shapefile_in_zip(path: Path) -> tuple[str, str | None]:
    """The /vsizip/ path of the one Shapefile in a zip, and its encoding (.cpg first, else UTF-8 or GBK)."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            shps = [n for n in names if n.lower().endswith(".shp")]
            if len(shps) != 1:
                raise InputFileError(f"{path}: a zipped Shapefile must hold exactly one .shp (found {len(shps)})")
            stem = shps[0][:-4]
            cpg = next((n for n in names if n.lower() == (stem + ".cpg").lower()), None)
            dbf = next((n for n in names if n.lower() == (stem + ".dbf").lower()), None)
            if cpg is not None:
                encoding = zf.read(cpg).decode("ascii", "replace").strip() or None
                encoding = {"936": "GBK", "65001": "UTF-8"}.get(encoding, encoding)
            elif dbf is not None:
                encoding = _guess_dbf_encoding(zf.read(dbf))
            else:
                raise InputFileError(f"{path}: the Shapefile has no .dbf (attributes); zip the .shp, .shx, .dbf, "
                                     f".prj and .cpg together")
    except zipfile.BadZipFile:
        raise InputFileError(f"{path}: is not a valid zip file") from None
    return f"/vsizip/{path.resolve()}/{shps[0]}", encoding


def _guess_dbf_encoding(raw: bytes) -> str:
    """UTF-8 or GBK, judged from the records only: the dBase header is binary and is no evidence either way."""
    header_length = int.from_bytes(raw[8:10], "little") if len(raw) >= 32 else 0
    return _guess_text_encoding(raw[header_length:])


def _guess_text_encoding(raw: bytes) -> str:
    try:
        raw.decode("utf-8")
        return "UTF-8"
    except UnicodeDecodeError:
        return "GBK"  # Chinese Shapefiles without a .cpg are almost always GBK (CP936)


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def normalise_code(values: pd.Series) -> pd.Series:
    """Codes as text: 510113 and 510113.0 both become '510113'; blanks become None."""
    def one(v):
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return None
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        text = str(v).strip()
        return text or None
    return values.map(one).astype(object)


def read_zone_layer(path: str | Path, *, layer: str | None = None, crs: str | None = None,
                    code_field: str = "code", name_field: str = "name", parent_field: str = "parent_code",
                    name_en_field: str = "name_en", population_field: str = "population",
                    data_bounds=None) -> tuple[gpd.GeoDataFrame, ImportReport]:
    """Read a polygon layer and check every feature. Returns (accepted features, report)."""
    frame, target = read_table(path, layer=layer, crs=crs)
    first_row = frame.attrs.get("first_row", 1)
    report = ImportReport(source=str(path), crs=target.label, read=len(frame),
                          unit="row" if first_row != 1 else "feature")
    if crs is not None and frame.crs is None:
        report.notes.append(f"the file states no CRS: coordinates taken as {target.label} (--crs)"
                            + (" and converted to WGS84" if target.shift else ""))
    elif crs is not None:
        stated = parse_crs(frame.crs.to_wkt())
        if not stated.crs.equals(target.crs) or target.shift:
            report.notes.append(f"coordinates taken as {target.label} (--crs), not as the file states "
                                f"({frame.crs.name})")
    code_field = _field(frame, code_field, "--code-field", report)
    name_field = _field(frame, name_field, "--name-field", report)
    parent_field = _field(frame, parent_field, "--parent-field", report)
    name_en_field = _field(frame, name_en_field, "--name-en-field", report)
    population_field = _field(frame, population_field, "--population-field", report)
    for field_name, what in ((code_field, "--code-field"), (name_field, "--name-field")):
        if field_name not in frame.columns:
            raise InputFileError(f"{path}: no field {field_name!r} (use {what}); fields are: "
                                 f"{', '.join(c for c in frame.columns if c != 'geometry')}")

    optional = (("parent_code", parent_field, "--parent-field"), ("name_en", name_en_field, "--name-en-field"),
                ("population", population_field, "--population-field"))
    for column, field_name, option in optional:
        if field_name not in frame.columns:
            report.missing_fields.append(column)
            near = [c for c in frame.columns if c != "geometry" and c.lower().startswith(field_name.lower()[:6])]
            hint = f" ({', '.join(near)} looks like it: pass {option} {near[0]})" if near else f" (use {option})"
            report.notes.append(f"no {field_name!r} field{hint}: {column} taken from the stored zones where they "
                                f"exist{', else derived from the parent layer' if column == 'parent_code' else ''}")
    codes = normalise_code(frame[code_field]).to_numpy(dtype=object)
    names = frame[name_field].astype(object).where(frame[name_field].notna(), None).to_numpy(dtype=object)
    geoms = np.asarray(frame.geometry.to_numpy(), dtype=object)
    reasons = np.full(len(frame), None, dtype=object)

    missing = pd.isna(geoms) | shapely.is_empty(geoms)
    reasons[missing] = "empty geometry"
    types = shapely.get_type_id(np.where(missing, None, geoms))
    not_poly = ~missing & ~np.isin(types, (3, 6))
    type_names = np.array(["Point", "LineString", "LinearRing", "Polygon", "MultiPoint", "MultiLineString",
                           "MultiPolygon", "GeometryCollection"] + ["?"] * 10, dtype=object)
    for i in np.flatnonzero(not_poly):
        reasons[i] = f"not polygonal ({type_names[types[i]]}); a zone layer holds polygons"

    ok = reasons == None  # noqa: E711 - element-wise
    if ok.any():
        converted = geometries_to_wgs84(geoms[ok], target)
        geoms = geoms.copy()
        geoms[ok] = converted
        _reject_out_of_range(geoms, ok, reasons, data_bounds, target)

    ok = reasons == None  # noqa: E711
    repaired_idx = []
    if ok.any():
        idx = np.flatnonzero(ok)
        fixed, repaired, lost = repair_polygons(geoms[ok])
        for i in idx[lost]:
            reasons[i] = f"invalid polygon ({shapely.is_valid_reason(geoms[i])}) that make_valid cannot repair"
        geoms[idx[repaired]] = fixed[repaired]
        repaired_idx = idx[repaired].tolist()

    no_code = ok & pd.isna(codes)
    reasons[no_code & (reasons == None)] = f"no code (field {code_field!r} is empty)"  # noqa: E711
    no_name = (reasons == None) & pd.isna(names)  # noqa: E711
    reasons[no_name] = f"no name (field {name_field!r} is empty)"

    first_seen: dict[str, int] = {}
    for i, code in enumerate(codes):
        if code is None:
            continue
        if code in first_seen:
            if reasons[i] is None:
                reasons[i] = f"duplicate code {code!r} (also {report.unit} {first_seen[code] + first_row})"
        else:
            first_seen[code] = i

    report.repaired = [(i + first_row, codes[i]) for i in repaired_idx if reasons[i] is None]
    report.rejected = [Rejection(int(i) + first_row, codes[i], reasons[i])
                       for i in np.flatnonzero(reasons != None)]  # noqa: E711
    keep = reasons == None  # noqa: E711

    mapped = {code_field, name_field, parent_field, name_en_field, population_field, "geometry",
              *frame.attrs.get("geometry_columns", [])}
    extra = [c for c in frame.columns if c not in mapped]
    out = pd.DataFrame({
        "code": codes[keep],
        "name": [str(n).strip() for n in names[keep]],
        "name_en": _optional_text(frame, name_en_field, keep),
        "parent_code": normalise_code(frame[parent_field])[keep].to_numpy(dtype=object)
        if parent_field in frame.columns else np.full(keep.sum(), None, dtype=object),
        "population": pd.array(pd.to_numeric(frame[population_field], errors="coerce")[keep].round(),
                               dtype="Int64") if population_field in frame.columns else pd.array([pd.NA] * keep.sum(),
                                                                                                 dtype="Int64"),
        "attrs": [{k: _json_safe(v) for k, v in rec.items()} for rec in frame.loc[keep, extra].to_dict("records")],
    })
    multi = _as_multipolygons(geoms[keep])
    return gpd.GeoDataFrame(out, geometry=gpd.GeoSeries(multi, crs="EPSG:4326"), crs="EPSG:4326"), report


def _field(frame: pd.DataFrame, name: str, option: str, report: ImportReport) -> str:
    """The column that holds ``name``: itself, or its first 10 characters when only those are there (a
    Shapefile's .dbf cuts field names: ``parent_code`` arrives as ``parent_cod``), with a note saying so."""
    if name in frame.columns or len(name) <= SHAPEFILE_FIELD_CHARS:
        return name
    cut = name[:SHAPEFILE_FIELD_CHARS]
    found = [c for c in frame.columns if c != "geometry" and str(c).lower() == cut.lower()]
    if not found:
        return name
    report.notes.append(f"field {found[0]!r} read as {name!r} (a Shapefile cuts field names to "
                        f"{SHAPEFILE_FIELD_CHARS} characters; {option} chooses another field)")
    return found[0]


def _reject_out_of_range(geoms, ok, reasons, data_bounds, target: InputCRS) -> None:
    bounds = shapely.bounds(geoms[ok])
    idx = np.flatnonzero(ok)
    for xcol, ycol in ((0, 1), (2, 3)):  # the lower-left and upper-right corners
        problems = lonlat_problems(bounds[:, xcol], bounds[:, ycol],
                                   data_bounds if data_bounds is not None else CHINA_BOUNDS)
        for row, (i, problem) in enumerate(zip(idx, problems)):
            if problem == "ok" or reasons[i] is not None:
                continue
            x, y = bounds[row, xcol], bounds[row, ycol]
            if problem == "swapped":
                reasons[i] = (f"{SWAPPED_REASON} ({x:.6g}, {y:.6g}); GeoJSON and Zeren want lon, lat order — "
                              f"swap the columns or re-export with x=longitude")
            elif problem == "not_finite":
                reasons[i] = "coordinates are NaN or infinite"
            else:
                reasons[i] = (f"coordinates ({x:.6g}, {y:.6g}) are out of range for {target.label} after conversion "
                              f"to WGS84; is the CRS right? (--crs)")


def _as_multipolygons(geoms: np.ndarray) -> np.ndarray:
    if not len(geoms):
        return geoms
    single = np.flatnonzero(shapely.get_type_id(geoms) == 3)
    out = geoms.copy()
    # one part per MultiPolygon: multipolygons() with indices builds them all in one call
    out[single] = shapely.multipolygons(geoms[single], indices=np.arange(len(single)))
    return out


def _optional_text(frame, field_name, keep):
    if field_name not in frame.columns:
        return np.full(keep.sum(), None, dtype=object)
    values = frame[field_name][keep]
    return np.array([None if pd.isna(v) or not str(v).strip() else str(v).strip() for v in values], dtype=object)


def _json_safe(value):
    if value is None:
        return None
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return None if np.isnan(value) else float(value)
    if isinstance(value, (pd.Timestamp,)):
        return value.isoformat()
    if isinstance(value, float) and np.isnan(value):
        return None
    try:
        json.dumps(value)
        return value
    except TypeError:
        return str(value)


def read_csv_records(path: str | Path, required: list[str]) -> pd.DataFrame:
    """A CSV of records (planners, appointments) as text columns, in UTF-8 (with or without BOM) or GBK."""
    path = Path(path)
    _check_file(path)
    raw = path.read_bytes()
    encoding = "utf-8-sig" if _guess_text_encoding(raw) == "UTF-8" else "gbk"
    try:
        frame = pd.read_csv(io.BytesIO(raw), encoding=encoding, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputFileError(f"{path}: not a readable CSV ({_first_line(exc)})") from None
    frame.columns = [c.strip() for c in frame.columns]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise InputFileError(f"{path}: missing column(s) {', '.join(missing)}; the header must be "
                             f"{','.join(required)} (found {','.join(frame.columns)})")
    return frame.apply(lambda col: col.str.strip()).replace({"": None})


__all__ = ["read_zone_layer", "read_table", "read_csv_records", "ImportReport", "Rejection", "GeoInputError"]
