"""What a table is, cheaply, for incremental rescans: a version of the whole table that changes
whenever any of its rows does, computed without reading the rows into piiport.

A table whose version is the one its last scan recorded is not read, fingerprinted nor sampled
again (``discover.scan``). Where no such version can be had soundly the answer is None, and the
scan falls back to fingerprinting key ranges (``SqlTableReader.range_fingerprints``).

- SQLite: a hash of the bytes of every page of the table's b-tree (``dbstat`` lists them; page
  ``n`` is at ``(n - 1) * page_size`` in the file), read inside a read transaction: in rollback-journal mode that
  transaction's shared lock keeps writers from changing the file while it is read. In WAL mode
  changed pages live in the ``-wal`` file and readers do not block checkpoints, so there is no
  version (None).
- PostgreSQL: the row count and the sum of a 64-bit hash of each row version's ``xmin`` (the id
  of the transaction that wrote it): every insert and update writes a new row version with a
  new transaction id. Only for plain tables (views and foreign tables have no ``xmin``).

Where rows changed, also without reading them (``changed_key_spans``):

- SQLite: the leaf pages whose bytes changed, each with its rowid span.
- PostgreSQL: the rows whose ``xmin`` is not older than the oldest transaction still running
  when the last scan began (``txid_snapshot_xmin``): every row written by a transaction that
  committed after that moment has one (a subtransaction's id is newer than its parent's).
  Deleted rows leave nothing to see: the rows outside the buckets written to are counted in the
  same statement, and the scan compares them with its own counts. Transaction ids are 32 bits
  and wrap around: the comparison is modulo 2**32 and holds while fewer than 2**31 transactions
  separate the two scans (beyond, or on another server, database, table or timeline, or for a
  table with inheritance children, everything is fingerprinted).
  A frozen row keeps its ``xmin`` (PostgreSQL 9.4 and later); a row so old that its ``xmin``
  seems newer than the token only costs a fingerprint.

Both include the table's columns as reflected (and SQLite's ``CREATE`` statement): a column
added with a default changes what every row holds without writing a page or a row version.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from connectors.sqlite_cells import file_change_counter, leaf_rowid_spans, read_transaction

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
    return sqlite_table_pages(path, table, leaves=False)[0]


def sqlite_table_pages(
    path: Path, table: str, *, leaves: bool, known: str | None = None, since: LeafPages | None = None
) -> tuple[str | None, LeafPages | None]:
    """:func:`sqlite_table_version`, and with ``leaves`` the table's leaf pages (``LeafPages``, for
    a rowid table) unless the version is ``known`` (then nothing changed: no need), both from
    the same read transaction and one read of the pages. ``since``: the leaf pages of an
    earlier scan; a leaf page whose bytes are the same keeps its rowid span without a parse.
    Memory: one run of pages, and a few numbers a page."""
    with read_transaction(path) as db:
        found = db.execute("SELECT type, sql FROM sqlite_master WHERE name = ?", (table,)).fetchone()
        # Asked with the shared lock held (by the read above): the mode cannot change until the end.
        if str(db.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
            return None, None
        if found is None or found[0] != "table" or not found[1]:
            return None, None
        page_size = int(db.execute("PRAGMA page_size").fetchone()[0])
        try:
            # Each page's offset from its number: dbstat's own ``pgoffset`` is wrong for overflow
            # pages (SQLite 3.40 gives the offset of another page of the chain, or of the leaf).
            rows = db.execute(
                "SELECT pageno, pagetype, path, (pageno - 1) * ?, ? FROM dbstat WHERE name = ? ORDER BY pageno",
                (page_size, page_size, table),
            ).fetchall()
        except sqlite3.OperationalError:  # SQLite built without the dbstat table
            return None, None
        if not rows:
            return None, None
        with open(path, "rb") as fh:
            counter = file_change_counter(fh)
            version, pages = _read_pages(
                fh, rows, f"{found[1]}\n{page_size}\n", leaves=leaves, known=known, since=since
            )
            return version, None if pages is None else pages._replace(counter=counter)


def _read_pages(
    fh: Any,
    rows: list[tuple[int, str, str, int, int]],
    head: str,
    *,
    leaves: bool,
    known: str | None,
    since: LeafPages | None,
) -> tuple[str, LeafPages | None]:
    """The version (a hash of each page's number and bytes, every page hashed once) and the leaf
    pages, each leaf with its overflow pages in its hash (a value that changes only in its
    overflow pages changes its leaf's hash).

    Two passes: every page is hashed, in runs of adjacent pages and without a step per page
    beyond its hash, which gives the version; only when the leaves are wanted and the version
    is not ``known`` are they sorted out (numpy: a leaf whose bytes are those of ``since`` keeps
    its rowid span), and only the pages that changed are read again, for their spans. A
    rescan spent 0.3 s here, one step a page, before any worker could start."""
    digest = hashlib.blake2b(digest_size=20)
    digest.update(head.encode())
    owns: list[bytes] = []  # per page, in ``rows``' order: the first 16 bytes of its SHA-256
    sha256 = hashlib.sha256  # the fastest hash in hashlib here (CPU instructions)
    for run, data in _runs(fh, rows):
        view = memoryview(data)
        start = run[0][3]
        hashed = [sha256(view[o - start : o - start + size]).digest()[:16] for _, _, _, o, size in run]
        view.release()
        digest.update(b"".join([r[0].to_bytes(8, "little") + h for r, h in zip(run, hashed, strict=True)]))
        owns += hashed
    version = "pages:" + digest.hexdigest()
    if not leaves or version == known:
        return version, None
    return version, _leaf_pages(fh, rows, owns, since)


def _leaf_pages(
    fh: Any, rows: list[tuple[int, str, str, int, int]], owns: list[bytes], since: LeafPages | None
) -> LeafPages:
    """The leaf pages of ``rows`` (hashed: ``owns``), their spans kept from ``since`` where a
    page is, byte for byte, what it was, read and parsed again elsewhere. Memory: a few
    numbers a page."""
    import numpy as np

    types = np.array([r[1] for r in rows])
    leaf = np.flatnonzero(types == "leaf")
    pagenos = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))[leaf]
    # A leaf's own hash: the first 8 bytes of its SHA-256, big-endian, signed.
    alone = np.frombuffer(b"".join(owns), dtype=">i8").reshape(-1, 2)[leaf, 0].astype(np.int64)
    firsts = np.zeros(len(leaf), dtype=np.int64)
    lasts = np.zeros(len(leaf), dtype=np.int64)
    kept = np.zeros(len(leaf), dtype=bool)
    if since is not None and since.pages:
        (_, _, old_firsts, old_lasts), at, _, kept = _match_pages(since, pagenos, alone)
        firsts = np.where(kept, old_firsts[at], 0)
        lasts = np.where(kept, old_lasts[at], 0)
    # The leaves that changed (or all, the first time): read again for their first and last rowid.
    present = kept.copy()
    again = np.flatnonzero(~kept)
    if len(again):
        size = rows[int(leaf[again[0]])][4]
        firsts[again], lasts[again], present[again] = leaf_rowid_spans(fh.fileno(), size, pagenos[again].tolist())
    hashes = alone.tolist()
    overflow: dict[str, list[tuple[str, bytes]]] = {}  # leaf path: (overflow page's path, hash of its bytes)
    for i in np.flatnonzero(types == "overflow").tolist():
        # ``/000/001+000002``: the third overflow page of cell 1 of the leaf ``/000/``.
        where = rows[i][2]
        overflow.setdefault(where[: where.rindex("/") + 1], []).append((where, owns[i]))
    if overflow:
        for k, i in enumerate(leaf.tolist()):
            more = overflow.get(rows[i][2])
            if more:
                hashes[k] = _leaf_hash(owns[i], [h for _, h in sorted(more, key=lambda m: m[0])])
    keep = np.flatnonzero(present)
    return LeafPages(
        pagenos[keep].tolist(), [hashes[k] for k in keep.tolist()], firsts[keep].tolist(), lasts[keep].tolist()
    )


def _leaf_hash(own: bytes, overflow: list[bytes]) -> int:
    """A leaf page's hash with its overflow pages' (a page without any: its own hash, cut)."""
    digest = hashlib.blake2b(own, digest_size=8)
    for more in overflow:
        digest.update(more)
    return int.from_bytes(digest.digest(), "big", signed=True)


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


def postgres_change_token(conn: Any, qualified: str) -> str | None:
    """What a later scan compares row versions against (``postgres_changed_keys``): the server,
    its timeline, the database's and the table's oids and the oldest transaction id still
    running, as a 64-bit number. None where the server does not tell (no ``pg_control_*``
    functions, no right), and for a table with inheritance children: a child attached later
    brings rows whose versions are older than the token."""
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    try:
        with conn.begin_nested():  # a refusal must not end the transaction the version is read in
            row = conn.execute(
                text(
                    "SELECT (SELECT system_identifier FROM pg_control_system()), "
                    "(SELECT timeline_id FROM pg_control_checkpoint()), "
                    "(SELECT oid FROM pg_database WHERE datname = current_database()), "
                    "CAST(:t AS regclass)::oid, txid_snapshot_xmin(txid_current_snapshot()), "
                    "EXISTS (SELECT 1 FROM pg_inherits WHERE inhparent = CAST(:t AS regclass))"
                ),
                {"t": qualified},
            ).one()
    except DBAPIError:
        return None
    if row[-1] or None in row:
        return None
    return "xmin:" + ":".join(str(v) for v in row[:-1])


#: Transaction ids between two scans beyond which row versions cannot be compared (2**31
#: wraps around).
_XID_HORIZON = 2**31
#: Changed rows beyond which the key spans are not worth having: everything is fingerprinted.
_MAX_CHANGED_KEYS = 1_000_000


def written_since(xid: int, column: str = "xmin") -> str:
    """SQL: whether the transaction id in ``column`` is not older than ``xid`` (64 bits), compared
    modulo 2**32 (less than 2**31 ahead of it), as ids wrap around."""
    return f"((CAST(CAST({column} AS text) AS bigint) - {xid % 2**32}) & 4294967295) < 2147483648"


def _token_parts(token: str) -> tuple[list[str], int] | None:
    """A token's identity (server, timeline, database, table) and transaction id; None if it is
    not one of ``postgres_change_token`` (an older format, another database's)."""
    parts = token.split(":")
    if len(parts) != 6 or parts[0] != "xmin" or not parts[5].isdigit():
        return None
    return parts[1:5], int(parts[5])


def _token_xid(since: str, now: str) -> int | None:
    """The transaction id of the token ``since``, when it can be compared with this scan's ``now``
    (the same server, timeline, database and table, and not too long ago); else None."""
    old, new = _token_parts(since), _token_parts(now)
    if old is None or new is None or old[0] != new[0]:
        return None
    return old[1] if 0 <= new[1] - old[1] < _XID_HORIZON else None


def postgres_changed_keys(
    conn: Any, table_sql: str, key_sql: str, width: int, since: str, now: str
) -> tuple[list[int], int] | None:
    """Where rows were written since the token ``since`` (``now``: this scan's): the buckets of
    ``width`` keys that hold one, and the rows of the other buckets, both from one statement
    (one snapshot: a row written while the scan runs is seen by both or by neither). None
    where the tokens cannot be compared (``_token_xid``) or too many rows changed. ``conn``:
    set for grouping (``SqlTableReader._grouping_connection``: no JIT). Memory: the changed
    rows' keys, on the server."""
    from sqlalchemy import text

    before = _token_xid(since, now)
    if before is None:
        return None
    width = int(width)
    bucket = floor_div_sql("piiport_k.piiport_key", width)
    g = "piiport_g.piiport_bucket"  # qualified: the table may have a column of any other name
    row = conn.execute(
        text(
            f"WITH piiport_k AS (SELECT {key_sql} AS piiport_key FROM {table_sql} WHERE {written_since(before)} "
            f"LIMIT {_MAX_CHANGED_KEYS + 1}), "
            f"piiport_g AS (SELECT DISTINCT CAST({bucket} AS bigint) AS piiport_bucket FROM piiport_k) "
            f"SELECT (SELECT count(*) FROM {table_sql}) - (SELECT count(*) FROM piiport_g JOIN {table_sql} AS t "
            f"ON t.{key_sql} >= {g} * {width} AND t.{key_sql} < {g} * {width} + {width}), "
            f"(SELECT array_agg({g}) FROM piiport_g), (SELECT count(*) FROM piiport_k), "
            "txid_snapshot_xmax(txid_current_snapshot())"
        )
    ).one()
    outside, buckets, changed, newest = row
    # A row written in this statement's snapshot is at most ``newest``: its id must not wrap past ``before``.
    if changed > _MAX_CHANGED_KEYS or int(newest) - before >= _XID_HORIZON:
        return None
    return sorted(int(b) for b in buckets or ()), int(outside)


def postgres_bucket_rows(conn: Any, table_sql: str, key_sql: str, width: int, since: str | None) -> dict[int, int]:
    """Rows per bucket of ``width`` keys, one grouped query; with ``since`` (a token), a bucket
    that holds a row written since it counts -1, so that it is never taken as unchanged (a row
    may have been written there after ``postgres_changed_keys`` looked)."""
    from sqlalchemy import text

    parts = None if since is None else _token_parts(since)
    before = None if parts is None else parts[1]
    bucket = floor_div_sql(key_sql, int(width))
    written = "false" if before is None else written_since(before)
    rows = conn.execute(text(f"SELECT {bucket}, count(*), bool_or({written}) FROM {table_sql} GROUP BY 1")).all()
    return {int(g): -1 if flagged else int(n) for g, n, flagged in rows}


def floor_div_sql(expr: str, n: int, dialect: str = "postgresql") -> str:
    """``expr // n`` in SQL (integer division rounds toward zero: negative keys need this)."""
    div = "DIV" if dialect in {"mysql", "mariadb"} else "/"
    return f"CASE WHEN {expr} >= 0 THEN {expr} {div} {n} ELSE -1 - ((-1 - {expr}) {div} {n}) END"


class LeafPages(NamedTuple):
    """A rowid table's leaf pages: page number, a hash of its bytes (and its overflow pages'),
    and the first and last rowid it holds; and the file's change counter when they were read
    (not in the token: ``connectors.sqlite_cells`` reads the same pages again only while it is
    the same)."""

    pages: list[int]
    hashes: list[int]
    firsts: list[int]
    lasts: list[int]
    counter: int | None = None

    def dumps(self) -> str:
        import base64
        import zlib
        from array import array

        data = array("q", [len(self.pages), *self.pages, *self.hashes, *self.firsts, *self.lasts]).tobytes()
        return base64.b64encode(zlib.compress(data, 1)).decode()

    @classmethod
    def loads(cls, text: str) -> LeafPages:
        import base64
        import zlib
        from array import array

        values = array("q")
        values.frombytes(zlib.decompress(base64.b64decode(text)))
        n = values[0]
        pages, hashes, firsts, lasts = (values[1 + i * n : 1 + (i + 1) * n].tolist() for i in range(4))
        return cls(pages, hashes, firsts, lasts)


def changed_spans(before: LeafPages, now: LeafPages) -> list[tuple[int, int]]:
    """The rowid spans of leaf pages that are not, byte for byte, what they were: every row
    inserted, changed or deleted since lies in one (as it is now, or as it was). numpy: a
    rescan's tens of thousands of pages, matched by number."""
    import numpy as np

    new = [np.asarray(v, dtype=np.int64) for v in now[:4]]
    (pages, _, firsts, lasts), at, found, same = _match_pages(before, new[0], new[1])
    changed = ~same
    was = at[changed & found]  # a page changed: its old span too
    gone = np.ones(len(pages), dtype=bool)
    gone[at[found]] = False  # a page no longer the table's: its old span
    low = np.concatenate([new[2][changed], firsts[was], firsts[gone]])
    high = np.concatenate([new[3][changed], lasts[was], lasts[gone]])
    return list(zip(low.tolist(), high.tolist(), strict=True))


def _match_pages(before: LeafPages, pages: Any, hashes: Any) -> tuple[list[Any], Any, Any, Any]:
    """Each of ``pages`` (numpy, int64) looked up by number among ``before``'s: ``before``'s four
    columns sorted by page number, and per page its place there (``at``; 0 where it is not
    there), whether it is there (``found``) and with the same hash (``same``)."""
    import numpy as np

    old = [np.asarray(v, dtype=np.int64) for v in before[:4]]
    order = np.argsort(old[0], kind="stable")
    columns = [v[order] for v in old]
    if not len(columns[0]):
        nowhere = np.zeros(len(pages), dtype=bool)
        return columns, np.zeros(len(pages), dtype=np.int64), nowhere, nowhere
    at = np.minimum(np.searchsorted(columns[0], pages), len(columns[0]) - 1)
    found = columns[0][at] == pages
    return columns, at, found, found & (columns[1][at] == hashes)


def _runs(fh: Any, rows: list[tuple[int, str, str, int, int]]) -> Iterator[tuple[list[Any], bytes]]:
    """Pages (``rows`` in file order) read in runs of adjacent ones: each run and its bytes."""
    i = 0
    while i < len(rows):
        j = i + 1
        while j < len(rows) and j - i < _READ_RUN and rows[j][3] == rows[j - 1][3] + rows[j - 1][4]:
            j += 1
        fh.seek(rows[i][3])
        yield rows[i:j], fh.read(rows[j - 1][3] + rows[j - 1][4] - rows[i][3])
        i = j


__all__ = [
    "LeafPages",
    "changed_spans",
    "columns_digest",
    "floor_div_sql",
    "postgres_bucket_rows",
    "postgres_change_token",
    "postgres_changed_keys",
    "postgres_table_version",
    "sqlite_table_pages",
    "sqlite_table_version",
    "written_since",
]
