"""The fast open (issue #10: rows into Arrow columns, one geometry decode shared by the frame and the index) loads
exactly what the store holds: compared zone by zone and appointment by appointment with a reference read
the old way (rows through the database driver, the GeoPackage header stripped by hand, one shapely.from_wkb
per geometry column), on the demo store, as a GeoPackage and copied into PostGIS."""
from __future__ import annotations

import json
import sqlite3

import numpy as np
import pandas as pd
import pytest
import shapely

from zeren.layers.catalogue import Catalogue
from zeren.layers.store import open_store

_ZONES = ("SELECT fid, kind, code, name, name_en, parent_code, edition, valid_from, valid_to, population, attrs, {geom} "
          "FROM zones ORDER BY kind, code, edition")
_APPOINTMENTS = "SELECT fid, planner_id, zone_kind, zone_code, role, start_date, end_date FROM appointments ORDER BY fid"


def _plain_wkb(blob: bytes) -> bytes:
    """GeoPackage binary -> its WKB: an 8-byte header, then an envelope whose size the flags give."""
    return bytes(blob[8 + (0, 32, 48, 48, 64)[(blob[3] >> 1) & 0b111]:])


def reference(location: str) -> tuple[list[tuple], list[tuple]]:
    """(zones, appointments) as rows read the old way: zones (kind, code, name, name_en, parent_code, edition,
    valid_from, valid_to, population, attrs, WKB), appointments (id, planner, kind, code, role, start, end)."""
    if location.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(location) as con:
            zones = con.execute(_ZONES.format(geom="ST_AsBinary(geom)")).fetchall()
            appointments = con.execute(_APPOINTMENTS).fetchall()
        zones = [(*z[:-1], bytes(z[-1])) for z in zones]
    else:
        con = sqlite3.connect(location)
        zones = [(*z[:-1], _plain_wkb(z[-1])) for z in con.execute(_ZONES.format(geom="geom")).fetchall()]
        appointments = con.execute(_APPOINTMENTS).fetchall()
        con.close()
    day = lambda v: None if v is None else str(v)[:10]  # noqa: E731 - text (GeoPackage) or a date (PostGIS)
    zones = [(z[1], str(z[2]), z[3], z[4], z[5], int(z[6]), day(z[7]), day(z[8]), z[9], z[10] or "{}", z[11])
             for z in zones]
    appointments = [(int(a[0]), a[1], a[2], str(a[3]), a[4], day(a[5]), day(a[6])) for a in appointments]
    return zones, appointments


def _day(value) -> str | None:
    return None if pd.isna(value) else pd.Timestamp(value).date().isoformat()


def assert_loaded_as_stored(location: str) -> None:
    zones, appointments = reference(location)
    assert len(zones) > 100 and len(appointments) > 100, "the demo store should hold zones and appointments"
    catalogue = Catalogue(open_store(location))
    try:
        index, frame = catalogue.index, catalogue.index.zones
        assert len(index) == len(frame) == len(zones)
        # the one decode: the index's geometries are the frame's objects, unprepared
        assert all(a is b for a, b in zip(index.geoms, frame.geometry.array))
        assert not shapely.is_prepared(index.geoms).any()
        wkb = shapely.to_wkb(index.geoms, byte_order=1, flavor="iso")
        population = frame["population"].astype(object).where(frame["population"].notna(), None)
        for pos, z in enumerate(zones):
            kind, code, name, name_en, parent, edition, valid_from, valid_to, pop, attrs, geom = z
            got = (index.kind[pos], index.code[pos], frame["name"].iat[pos], frame["name_en"].iat[pos],
                   frame["parent_code"].iat[pos], int(frame["edition"].iat[pos]), _day(frame["valid_from"].iat[pos]),
                   _day(frame["valid_to"].iat[pos]), population.iat[pos], frame["attrs"].iat[pos])
            want = (kind, code, name, name_en, parent, edition, valid_from, valid_to, pop, json.loads(attrs))
            assert got == want, f"zone {pos}: {got} != {want}"
            assert wkb[pos] == geom, f"zone {pos} ({kind} {code}): geometry differs from the stored WKB"
        assert index.zone_refs[len(zones) - 1] == {"kind": zones[-1][0], "code": zones[-1][1],
                                                   "name": zones[-1][2], "name_en": zones[-1][3]}
        got = [(int(r.id), r.planner_id, r.zone_kind, r.zone_code, r.role, _day(r.start), _day(r.end))
               for r in catalogue.appointments.itertuples(index=False)]
        assert got == appointments
        assert catalogue.appointments["start"].dtype == "datetime64[ns]"
        # the responsibility built from them: every stored lead in force today is found on its zone
        resp = catalogue.responsibility()
        today = pd.Timestamp.today().normalize()
        for _, planner, kind, code, role, start, end in appointments:
            if role != "lead" or pd.Timestamp(start) > today or (end is not None and pd.Timestamp(end) <= today):
                continue
            live = np.flatnonzero((index.kind == kind) & (index.code == code) & resp.zone_active)
            assert len(live) and resp.lead_planner[live[0]] is not None, f"{kind} {code}: lead {planner} lost"
    finally:
        catalogue.store.close()


def test_fast_open_loads_the_geopackage_as_stored(demo_store):
    assert_loaded_as_stored(demo_store)


class _Rollback(Exception):
    pass


def test_a_read_inside_a_write_sees_the_transactions_own_rows(demo_store):
    """A read inside a write sees the write's own uncommitted rows, and otherwise the same frames as outside."""
    store = open_store(demo_store)
    try:
        outside, appointments = store.zones(with_ids=True), store.appointments()
        with pytest.raises(_Rollback), store.transaction() as con:
            inside = store.zones(with_ids=True)
            pd.testing.assert_frame_equal(inside.drop(columns="geometry"), outside.drop(columns="geometry"))
            assert (inside.geometry.to_wkb() == outside.geometry.to_wkb()).all()
            pd.testing.assert_frame_equal(store.appointments(), appointments)
            store._exec(con, "UPDATE zones SET name = ? WHERE fid = ?", ("改名 renamed", int(outside["fid"].iat[0])))
            assert store.zones(with_ids=True)["name"].iat[0] == "改名 renamed"
            raise _Rollback
        assert store.zones(with_ids=True)["name"].iat[0] == outside["name"].iat[0]
    finally:
        store.close()


def test_fast_open_loads_postgis_as_stored(pg_url_clean, demo_store):
    from tests.api.test_postgis import copy_demo

    copy_demo(demo_store, pg_url_clean)
    assert_loaded_as_stored(pg_url_clean)


def test_postgis_bulk_read_keeps_awkward_text_as_stored(pg_url_clean, demo_store):
    """The PostGIS store reads zones and appointments as CSV (COPY) and geometries apart: text with commas,
    quotes, line breaks, an empty string (not NULL), numeric-looking codes and JSON attributes comes back
    exactly as stored, each geometry on its own row."""
    import psycopg

    from tests.api.test_postgis import copy_demo

    copy_demo(demo_store, pg_url_clean)
    awkward = ['逗号, "引号" 与\n换行 / comma, "quote" and\r\nbreak', "", "  前后空格  ", "NULL", "007"]
    with psycopg.connect(pg_url_clean, autocommit=True) as con:
        fids = [r[0] for r in con.execute("SELECT fid FROM zones ORDER BY random() LIMIT %s", (len(awkward),))]
        for fid, text in zip(fids, awkward):
            con.execute("UPDATE zones SET name = %s, name_en = %s, attrs = %s, population = %s WHERE fid = %s",
                        (text, text or None, json.dumps({"note": text, "n": 1}, ensure_ascii=False),
                         None if text else 12345, fid))
        con.execute("UPDATE appointments SET role = %s WHERE fid = (SELECT min(fid) FROM appointments)",
                    ("lead",))
    assert_loaded_as_stored(pg_url_clean)
    frame = open_store(pg_url_clean).zones(with_ids=True).set_index("fid")
    assert frame.loc[fids[1], "name"] == "" and frame.loc[fids[1], "name_en"] is None
    assert frame.loc[fids[0], "name"] == awkward[0] and frame.loc[fids[4], "attrs"] == {"note": "007", "n": 1}


@pytest.mark.parametrize("where", ["geopackage", "postgis"])
def test_a_bulk_read_inside_a_write_sees_its_rows_on_both_stores(where, request, demo_store):
    """Inside a write transaction the bulk read (COPY and the geometry query on PostGIS) runs in the caller's
    transaction: it sees the transaction's own rows, and the frame and its geometries stay paired."""
    location = demo_store
    if where == "postgis":
        from tests.api.test_postgis import copy_demo

        location = request.getfixturevalue("pg_url_clean")
        copy_demo(demo_store, location)
    store = open_store(location)
    try:
        outside = store.zones(with_ids=True)
        target = outside.iloc[len(outside) // 2]
        with pytest.raises(_Rollback), store.transaction() as con:
            store._exec(con, "UPDATE zones SET name = ? WHERE fid = ?", ("改名 renamed", int(target["fid"])))
            inside = store.zones(with_ids=True).set_index("fid")
            assert inside.loc[int(target["fid"]), "name"] == "改名 renamed"
            assert inside.loc[int(target["fid"]), "geometry"].equals_exact(target["geometry"], 0)
            raise _Rollback
        assert store.zones(with_ids=True).set_index("fid").loc[int(target["fid"]), "name"] == target["name"]
    finally:
        store.close()
