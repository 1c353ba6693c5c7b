"""Zones: every edition of every kind, each row valid from ``valid_from`` (inclusive) to ``valid_to``
(exclusive, open when NULL). Rows are written by :meth:`ZoneTables.apply_zone_changes` only, which the
boundary-import use case calls with a plan it has checked (what to add, what to close, what to correct)."""
from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from zeren.geo.kinds import ALL_KINDS
from zeren.layers.errors import ValidationError
from zeren.layers.schema import attrs_json, empty_zones, parse_date
from zeren.layers.store.tables import dates, iso, text

_ZONE_COLUMNS = "kind, code, name, name_en, parent_code, edition, valid_from, valid_to, population, attrs"


class ZoneTables:
    def zones(self, kind: str | None = None, as_of=None, edition: int | None = None, *,
              with_ids: bool = False, with_geometry: bool = True) -> gpd.GeoDataFrame:
        """Zones as a frame (see layers/CONTRACT.md); all editions unless ``as_of`` or ``edition`` narrows it.
        ``with_ids`` adds ``fid``, the row's id in the store; ``with_geometry=False`` reads the attributes only
        (a plain DataFrame, much cheaper)."""
        where, params = [], []
        if kind is not None:
            where.append("kind = ?")
            params.append(kind)
        if edition is not None:
            where.append("edition = ?")
            params.append(int(edition))
        if as_of is not None:
            day = parse_date(as_of, "as_of").isoformat()
            where.append("valid_from <= ? AND (valid_to IS NULL OR valid_to > ?)")
            params += [day, day]
        source = "FROM zones" + (" WHERE " + " AND ".join(where) if where else "")
        raw, geoms = self._engine.read_columns(self._con(), f"fid, {_ZONE_COLUMNS}", source, "kind, code, edition, fid",
                                               params, geometry="geom" if with_geometry else None)
        if raw.empty:
            out = empty_zones()
            if with_ids:
                out.insert(0, "fid", pd.Series(dtype="int64"))
            return out
        frame = raw if with_ids else raw.drop(columns=["fid"])
        if with_ids:
            frame["fid"] = frame["fid"].astype("int64")
        frame["edition"] = frame["edition"].astype("Int64")
        frame["population"] = pd.array(frame["population"], dtype="Int64")
        frame["valid_from"] = dates(frame["valid_from"])
        frame["valid_to"] = dates(frame["valid_to"])
        # most zones have no attributes ("{}"): a new empty dict each, without the JSON parser (seconds at 10^5 zones)
        frame["attrs"] = [json.loads(a) if a and a != "{}" else {} for a in frame["attrs"].tolist()]
        for col in ("name_en", "parent_code"):
            frame[col] = frame[col].astype(object).where(frame[col].notna(), None)
        if not with_geometry:
            return frame
        return gpd.GeoDataFrame(frame, geometry=geoms, crs="EPSG:4326")

    def zone_periods(self) -> pd.DataFrame:
        """kind, code, edition, valid_from, valid_to of every zone row (no geometry: cheap)."""
        frame = self._read("SELECT kind, code, edition, valid_from, valid_to FROM zones ORDER BY kind, code, edition")
        frame["valid_from"] = dates(frame["valid_from"])
        frame["valid_to"] = dates(frame["valid_to"])
        return frame

    def zone_keys(self) -> set[tuple[str, str]]:
        rows = self._exec(self._con(), "SELECT DISTINCT kind, code FROM zones").fetchall()
        return {(k, c) for k, c in rows}

    def edition_table(self) -> pd.DataFrame:
        """One row per (kind, edition): its first day, how many zone rows it wrote, how many are still open."""
        frame = self._read("SELECT kind, edition, min(valid_from) AS valid_from, count(*) AS zones, "
                           "sum(CASE WHEN valid_to IS NULL THEN 1 ELSE 0 END) AS open_zones, "
                           "max(valid_to) AS last_valid_to FROM zones GROUP BY kind, edition ORDER BY kind, edition")
        frame["edition"] = frame["edition"].astype("int64")
        frame["zones"] = frame["zones"].astype("int64")
        frame["open_zones"] = frame["open_zones"].astype("int64")
        frame["valid_from"] = dates(frame["valid_from"])
        frame["last_valid_to"] = dates(frame["last_valid_to"])
        return frame

    def apply_zone_changes(self, *, kind: str, edition: int, add: gpd.GeoDataFrame, close: dict,
                           drop: list, report: dict, source: str, actor: str) -> int:
        """Write one boundary import as planned by the caller, all or nothing, and log it (import log and
        audit log: kind, edition, scope, the plan's counts, the rows written). Returns the import's id.

        ``add``: new rows (the zones frame's columns, with their ``edition``, ``valid_from`` and ``valid_to``);
        ``close``: {fid: day} rows whose validity ends that day; ``drop``: fids of rows of this same edition
        that the import corrects (replaced by rows in ``add``).
        """
        if kind not in ALL_KINDS:
            raise ValidationError(f"unknown zone kind {kind!r}")
        geoms = np.asarray(add.geometry.to_numpy(), dtype=object) if len(add) else np.array([], dtype=object)
        if len(geoms):
            types = shapely.get_type_id(geoms)
            if not np.isin(types, (3, 6)).all():
                bad = int(np.flatnonzero(~np.isin(types, (3, 6)))[0])
                raise ValidationError(f"zone {add['code'].iloc[bad]!r}: geometry is not a polygon; zones are "
                                      f"(Multi)Polygons")
            single = np.flatnonzero(types == 3)
            if len(single):  # the zones table holds MultiPolygons (PostGIS enforces the column type)
                geoms = geoms.copy()
                geoms[single] = shapely.multipolygons(geoms[single], indices=np.arange(len(single)))
        blobs = self._engine.encode(geoms) if len(geoms) else []
        records = add.drop(columns="geometry").to_dict("records") if len(add) else []
        with self.transaction() as con:
            summary = report.get("summary") or {}
            audit = {"kind": kind, "edition": int(edition), "valid_from": report.get("valid_from"),
                     "scope": report.get("scope"), "within": report.get("within") or [],
                     **{k: summary[k] for k in ("added", "changed", "unchanged", "retired") if k in summary},
                     "rows": {"inserted": len(records), "closed": len(close), "corrected": len(drop)}}
            import_id = self.log_import("import-layer", source=source, report=report, written=len(records),
                                        actor=actor, kind=kind, edition=int(edition), audit=audit)
            rows = [(kind, str(r["code"]), str(r["name"]), text(r.get("name_en")), text(r.get("parent_code")),
                     int(r.get("edition", edition)), iso(r["valid_from"]), iso(r.get("valid_to")),
                     None if pd.isna(r.get("population")) else int(r["population"]), attrs_json(r.get("attrs")),
                     import_id, blob)
                    for r, blob in zip(records, blobs)]
            for fid in drop:
                self._exec(con, "DELETE FROM zones WHERE fid = ?", (int(fid),))
            for fid, day in close.items():
                self._exec(con, "UPDATE zones SET valid_to = ? WHERE fid = ?", (iso(day), int(fid)))
            insert = self._engine.sql(
                f"INSERT INTO zones ({_ZONE_COLUMNS}, import_id, geom) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                f"{self._engine.geom_param()})")
            if rows:
                self._engine.insert_rows(con, "zones", insert, rows)
            self._engine.update_extent(con, "zones")
        return import_id

    def import_report(self, import_id: int) -> dict:
        row = self._exec(self._con(), "SELECT report FROM import_log WHERE fid = ?", (int(import_id),)).fetchone()
        return json.loads(row[0]) if row and row[0] else {}

