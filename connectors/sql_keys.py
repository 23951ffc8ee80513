"""How a table's records are located: by primary key, SQLite's rowid, a unique index, or a hash of
the whole row (a weak locator: the row is found again only while its content is unchanged)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from connectors.base import encode_key

if TYPE_CHECKING:
    from sqlalchemy import Table


def locate_by(table: Table, dialect: str) -> tuple[list[Any], str]:
    """The key expressions of ``table`` and their kind (``primary_key``, ``rowid``,
    ``unique_index`` on non-null columns, else ``row_hash`` with no expression)."""
    from sqlalchemy import UniqueConstraint, literal_column

    pk = list(table.primary_key.columns)
    if pk:
        return pk, "primary_key"
    if dialect == "sqlite":
        # The first of the rowid's names that no column takes: a column named ``rowid`` hides it.
        names = {c.name.lower() for c in table.columns}
        alias = next((a for a in ("rowid", "_rowid_", "oid") if a not in names), None)
        if alias is not None:
            return [literal_column(alias)], "rowid"
    candidates = [list(i.columns) for i in sorted(table.indexes, key=lambda i: i.name or "") if i.unique]
    candidates += [
        list(c.columns)
        for c in sorted(table.constraints, key=lambda c: str(c.name or ""))
        if isinstance(c, UniqueConstraint)
    ]
    for cols in candidates:
        if cols and all(not c.nullable for c in cols):
            return cols, "unique_index"
    return [], "row_hash"


class KeyLocator:
    """The key of a table's rows. Rows read with ``select`` hold the key columns first, then every
    column of the table, by position."""

    def __init__(self, table: Table, dialect: str, types: Mapping[str, str]) -> None:
        self.table = table
        self.types = types
        self.exprs, self.kind = locate_by(table, dialect)
        self.columns = [e.label("__rowid__") if self.kind == "rowid" else e for e in self.exprs]

    def key_fields(self) -> list[str]:
        return [c.name for c in self.exprs] if self.kind in ("primary_key", "unique_index") else []

    def one_integer_key(self) -> bool:
        """Records are located by one integer column (or the rowid): key ranges and key draws work."""
        return len(self.exprs) == 1 and self.kind != "row_hash" and self.integer_key()

    def integer_key(self) -> bool:
        if self.kind == "rowid":
            return True
        return self.types.get(self.exprs[0].name) == "int"

    def columns_of(self, row: Any) -> list[Any]:
        """The table's column values of a row: they follow the key columns, by position."""
        offset = len(self.columns)
        return [row[offset + i] for i in range(len(self.table.columns))]

    def key(self, row: Any) -> str:
        if self.kind == "row_hash":
            payload = json.dumps(self.columns_of(row), default=str, sort_keys=True)
            return "h:" + hashlib.sha256(payload.encode()).hexdigest()[:32]
        return encode_key([row[i] for i in range(len(self.columns))])

    def select(self, source: Any = None) -> Any:
        """The key columns and every column, of the table or of ``source`` (a sample of it)."""
        from sqlalchemy import select

        if source is None:
            return select(*self.columns, *self.table.columns)
        keys = [source.c[c.name] for c in self.exprs]
        return select(*keys, *(source.c[c.name] for c in self.table.columns))
