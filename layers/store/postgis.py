"""The PostGIS engine: the same tables in PostgreSQL, geometry columns typed and GiST-indexed. A write is one
transaction that takes an advisory lock first, so read-check-write sequences stay consistent across processes
as they do on the GeoPackage file."""
from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import shapely

from zeren.layers.errors import StoreError, ValidationError
from zeren.layers.store.engine import Engine
from zeren.layers.store.tables import NO_DELETE, NO_UPDATE


def refused(exc):
    """The ValidationError for a driver error about text PostgreSQL cannot store (NUL), else None."""
    if "NUL" in str(exc) or "0x00" in str(exc):
        return ValidationError("text cannot contain NUL characters (0x00); remove them and send it again")
    return None


@functools.cache
def _cursor_class():
    """psycopg's cursor, with text that PostgreSQL cannot store (NUL characters, which the GeoPackage store
    keeps) refused as a ValidationError (HTTP 422, exit 2) instead of a driver DataError (a 500)."""
    import psycopg

    class Cursor(psycopg.Cursor):
        def execute(self, *args, **kwargs):
            try:
                return super().execute(*args, **kwargs)
            except psycopg.DataError as exc:
                error = refused(exc)
                if error is None:
                    raise
                raise error from exc

        def executemany(self, *args, **kwargs):
            try:
                return super().executemany(*args, **kwargs)
            except psycopg.DataError as exc:
                error = refused(exc)
                if error is None:
                    raise
                raise error from exc

    return Cursor


class PostGISEngine(Engine):
    placeholder = "%s"

    def __init__(self, url: str):
        self.url = url

    def connect(self):
        try:
            import psycopg
        except ImportError as exc:  # pragma: no cover - psycopg is a dependency
            raise StoreError("PostGIS stores need psycopg: pip install 'psycopg[binary]'") from exc
        try:
            return psycopg.connect(self.url, autocommit=True, cursor_factory=_cursor_class())
        except psycopg.OperationalError as exc:
            raise StoreError(f"cannot connect to {self.url}: {str(exc).strip()}") from exc

    def begin(self, con):
        con.execute("BEGIN")
        # one writer at a time, as with the GeoPackage file: read-check-write sequences stay consistent
        con.execute("SELECT pg_advisory_xact_lock(731500)")

    def begin_snapshot(self, con):
        con.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")  # one snapshot for every read inside

    def check(self, con) -> None:
        row = con.execute("SELECT extname FROM pg_extension WHERE extname = 'postgis'").fetchone()
        if row is None:
            raise StoreError(f"{self.url}: PostGIS is not installed in this database; run CREATE EXTENSION postgis")

    def bootstrap(self, con):
        con.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        con.execute("""CREATE OR REPLACE FUNCTION zeren_refuse() RETURNS trigger LANGUAGE plpgsql AS
            $$ BEGIN RAISE EXCEPTION '% rows are never %', TG_TABLE_NAME, lower(TG_OP) || 'd'; END $$""")

    def create_table(self, con, name, geometry_type, columns):
        types = {"INTEGER": "BIGINT", "DATE": "DATE", "TEXT": "TEXT"}
        cols = []
        for c, t in columns:
            head, _, rest = t.partition(" ")
            cols.append(f'"{c}" {types.get(head, head)} {rest}')
        geom = f", geom geometry({geometry_type.title().replace('polygon', 'Polygon')}, 4326)" if geometry_type else ""
        con.execute(f'CREATE TABLE IF NOT EXISTS "{name}" (fid BIGSERIAL PRIMARY KEY{geom}, {", ".join(cols)})')
        if geometry_type:
            con.execute(f'CREATE INDEX IF NOT EXISTS "{name}_geom" ON "{name}" USING gist (geom)')
        for op, names in (("DELETE", NO_DELETE), ("UPDATE", NO_UPDATE)):
            if name in names:
                con.execute(f'DROP TRIGGER IF EXISTS "{name}_no_{op.lower()}" ON "{name}"')
                con.execute(f'CREATE TRIGGER "{name}_no_{op.lower()}" BEFORE {op} ON "{name}" '
                            f"FOR EACH ROW EXECUTE FUNCTION zeren_refuse()")

    def geom_param(self) -> str:
        return "ST_GeomFromWKB(%s, 4326)"

    def geom_select(self, column="geom") -> str:
        return f"ST_AsBinary({column}) AS {column}"

    def encode(self, geoms: np.ndarray) -> list:
        return list(shapely.to_wkb(geoms, byte_order=1, flavor="iso"))

    def decode(self, blobs) -> np.ndarray:
        return shapely.from_wkb(np.array([None if b is None else bytes(b) for b in blobs], dtype=object))

    def update_extent(self, con, table):
        return None

    def insert_many(self, con, table: str, columns, rows, *, ids: bool = False) -> list[int] | None:
        """One COPY ... FROM STDIN (a round trip per batch of rows, not per row); with ``ids`` the rows' ids
        are taken from the table's sequence first, in one query, and copied with them."""
        import psycopg

        rows = list(rows)
        new_ids = None
        if ids:
            new_ids = sorted(int(r[0]) for r in con.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, 'fid')) FROM generate_series(1, %s)",
                (table, len(rows))).fetchall())
            rows = [(i, *r) for i, r in zip(new_ids, rows)]
            columns = ("fid", *columns)
        names = ", ".join(f'"{c}"' for c in columns)
        try:
            with con.cursor().copy(f'COPY "{table}" ({names}) FROM STDIN') as copy:
                for row in rows:
                    copy.write_row(row)
        except psycopg.DataError as exc:
            error = refused(exc)
            if error is None:
                raise
            raise error from exc
        return new_ids

    def insert_returning_id(self, con, sql, params) -> int:
        return con.execute(self.sql(sql) + " RETURNING fid", params).fetchone()[0]

    def read_frame(self, con, sql, params=()) -> pd.DataFrame:
        cur = con.execute(self.sql(sql), params)
        cols = [d.name for d in cur.description]
        return pd.DataFrame(cur.fetchall(), columns=cols)

    def columns(self, con, table) -> list[str]:
        rows = con.execute("SELECT column_name FROM information_schema.columns WHERE table_schema = "
                           "current_schema() AND table_name = %s", (table,)).fetchall()
        return [r[0] for r in rows]

    def add_column(self, con, table, column, sql_type) -> None:
        types = {"INTEGER": "BIGINT", "DATE": "DATE", "TEXT": "TEXT"}
        con.execute(f'ALTER TABLE "{table}" ADD COLUMN IF NOT EXISTS "{column}" {types.get(sql_type, sql_type)}')

