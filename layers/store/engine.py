"""What differs between SQLite/GeoPackage and PostgreSQL/PostGIS, as one small interface."""
from __future__ import annotations


class Engine:
    """Connections, transactions, DDL and geometry encoding of one database kind."""

    placeholder = "?"

    def sql(self, text: str) -> str:
        return text if self.placeholder == "?" else text.replace("?", self.placeholder)

    # Each engine implements: connect, begin, begin_snapshot, check, bootstrap, create_table, add_column, geom_param,
    # geom_select, encode, decode, update_extent, insert_returning_id, read_frame, has_table.
