"""What a table is, cheaply, for incremental rescans: a version of the whole table that changes
whenever any of its rows does, computed without reading the rows into piiport.

A table whose version is the one its last scan recorded is not read, fingerprinted nor sampled
again (``discover.scan``). Where no such version can be had soundly the answer is None, and the
scan falls back to fingerprinting key ranges (``SqlTableReader.range_fingerprints``).

- SQLite: a hash of the bytes of every page of the table's b-tree (``dbstat`` lists them, with
  their offsets in the file), read inside a read transaction: in rollback-journal mode that
  transaction's shared lock keeps writers from changing the file while it is read. In WAL mode
  changed pages live in the ``-wal`` file and readers do not block checkpoints, so there is no
  version (None).
- PostgreSQL: the row count and the sum of a 64-bit hash of each row version's ``xmin`` (the id
  of the transaction that wrote it): every insert and update writes a new row version with a
  new transaction id. Only for plain tables (views and foreign tables have no ``xmin``).

Both include the table's columns as reflected (and SQLite's ``CREATE`` statement): a column
added with a default changes what every row holds without writing a page or a row version.
"""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

if TYPE_CHECKING:
    from sqlalchemy import Table

#: Pages read from the file in one go when they are contiguous.
_READ_RUN = 256


def columns_digest(table: Table) -> bytes:
    """The table's columns as reflected: names, types, nullability, defaults."""
    described = [(c.name, str(c.type), bool(c.nullable), str(c.server_default or "")) for c in table.columns]
    return repr(described).encode()


def sqlite_table_version(path: Path, table: str) -> str | None:
    """The hash of the table's pages, its ``CREATE`` statement and page size; None in WAL mode,
    for a view or a virtual table (no pages of its own), or where ``dbstat`` is missing."""
    uri = f"file:{quote(str(path))}?mode=ro"
    digest = hashlib.blake2b(digest_size=20)
    with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=5, isolation_level=None)) as db:
        db.execute("BEGIN")
        try:
            found = db.execute("SELECT type, sql FROM sqlite_master WHERE name = ?", (table,)).fetchone()
            # Asked with the shared lock held (by the read above): the mode cannot change until the end.
            if str(db.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
                return None
            if found is None or found[0] != "table" or not found[1]:
                return None
            page_size = int(db.execute("PRAGMA page_size").fetchone()[0])
            try:
                pages = db.execute(
                    "SELECT pageno, pgoffset, pgsize FROM dbstat WHERE name = ? ORDER BY pgoffset", (table,)
                ).fetchall()
            except sqlite3.OperationalError:  # SQLite built without the dbstat table
                return None
            if not pages:
                return None
            digest.update(f"{found[1]}\n{page_size}\n".encode())
            with open(path, "rb") as fh:
                _hash_pages(fh, pages, digest)
        finally:
            db.execute("ROLLBACK")
    return "pages:" + digest.hexdigest()


def _hash_pages(fh: Any, pages: list[tuple[int, int, int]], digest: Any) -> None:
    """Page numbers and bytes, read in runs of adjacent pages."""
    run_start, run_len = -1, 0
    numbers: list[int] = []
    for pageno, offset, size in pages:
        if run_start >= 0 and offset == run_start + run_len and len(numbers) < _READ_RUN:
            run_len += size
            numbers.append(pageno)
            continue
        if run_start >= 0:
            _hash_run(fh, run_start, run_len, numbers, digest)
        run_start, run_len, numbers = offset, size, [pageno]
    if run_start >= 0:
        _hash_run(fh, run_start, run_len, numbers, digest)


def _hash_run(fh: Any, start: int, length: int, numbers: list[int], digest: Any) -> None:
    fh.seek(start)
    data = fh.read(length)
    digest.update(repr(numbers).encode())
    digest.update(len(data).to_bytes(8, "little"))
    digest.update(data)


def postgres_table_version(conn: Any, qualified: str, table_sql: str) -> str | None:
    """Row count and sum of ``hashint8extended(xmin)`` of a plain table; None for other relations."""
    from sqlalchemy import text

    kind = conn.execute(
        text("SELECT relkind FROM pg_class WHERE oid = CAST(:t AS regclass)"), {"t": qualified}
    ).scalar()
    if kind != "r":
        return None
    row = conn.execute(text(f"SELECT count(*), sum(hashint8extended(xmin::text::bigint, 0)) FROM {table_sql}")).one()
    return f"xmin:{row[0]}:{row[1] or 0}"


__all__ = ["columns_digest", "postgres_table_version", "sqlite_table_version"]
