"""What differs between SQLite/GeoPackage and PostgreSQL/PostGIS, as one small interface."""
from __future__ import annotations

import numpy as np
import pandas as pd


class Engine:
    """Connections, transactions, DDL and geometry encoding of one database kind."""

    placeholder = "?"

    def sql(self, text: str) -> str:
        return text if self.placeholder == "?" else text.replace("?", self.placeholder)

    # Each engine implements: connect, begin, begin_snapshot, check, bootstrap, create_table, add_column, geom_param,
    # geom_select, encode, decode, update_extent, insert_returning_id, read_frame, has_table.

    def read_columns(self, con, select: str, source: str, order: str, params=(), *, geometry: str | None = None,
                     key: str = "fid") -> tuple[pd.DataFrame, np.ndarray | None]:
        """``SELECT <select>[, <geometry>] <source> ORDER BY <order>`` for the large reads (every zone, every
        appointment): the frame of the ``select`` columns and, with ``geometry``, the decoded geometries in the
        same order. ``source`` is ``FROM ... [WHERE ...]`` in ``?`` placeholders; with ``geometry``, ``key``
        (a unique column of ``select``) ties each geometry to its row -- an engine may read the geometries
        apart, in the same snapshot. This default: one query."""
        columns = select + (f", {self.geom_select(geometry)}" if geometry else "")
        frame = self.read_frame(con, f"SELECT {columns} {source} ORDER BY {order}", params)
        if geometry is None:
            return frame, None
        blobs = frame.pop(geometry) if geometry in frame else pd.Series([], dtype=object)
        return frame, self.decode(blobs) if len(blobs) else np.zeros(0, dtype=object)

    def insert_many(self, con, table: str, columns, rows, *, ids: bool = False) -> list[int] | None:
        """Insert ``rows`` (tuples in ``columns`` order) into ``table`` in bulk, inside the caller's write
        transaction (which holds the write lock: no other writer adds rows meanwhile); with ``ids``, the new
        rows' ids in the order of ``rows``. This default: one executemany, the ids read back as the rows above
        the previous largest id (AUTOINCREMENT only ever counts up)."""
        names = ", ".join(f'"{c}"' for c in columns)
        sql = self.sql(f'INSERT INTO "{table}" ({names}) VALUES ({", ".join("?" * len(columns))})')
        before = con.execute(f'SELECT coalesce(max(fid), 0) FROM "{table}"').fetchone()[0] if ids else None
        con.cursor().executemany(sql, rows)
        if not ids:
            return None
        return [int(r[0]) for r in con.execute(self.sql(f'SELECT fid FROM "{table}" WHERE fid > ? ORDER BY fid'),
                                               (before,)).fetchall()]

    def insert_rows(self, con, table, sql, rows) -> None:
        """Insert many rows into ``table``; ``sql`` is already in this engine's placeholders."""
        con.cursor().executemany(sql, rows)

    def needs_upgrade(self, con) -> bool:
        """True when a store made by an older Zeren needs :meth:`upgrade` (the engine's own format)."""
        return False

    def upgrade(self, con) -> None:
        """Bring the engine's format up to date, inside a write transaction (GeoPackage: version, R*Tree)."""

    def writable(self) -> bool:
        """False for a store that may only be read (a GeoPackage file without write permission)."""
        return True
