"""SQLite's pages say where rows changed (``connectors.sql_fingerprint``): every row inserted,
updated or deleted between two reads of a table's leaf pages lies in a span of a page that
changed, whatever the changes (values that spill to overflow pages, deletes that merge pages,
inserts that split them)."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors import sql_fingerprint, sqlite_cells
from connectors.sql_fingerprint import LeafPages, changed_spans, sqlite_table_pages

values = st.one_of(
    st.none(),
    st.text(max_size=30),
    st.integers(-5, 5),
    st.builds(lambda n, c: c * n, st.integers(1000, 9000), st.sampled_from("ab")),  # overflow pages
    # The same long prefix, another last character: a change only in the record's overflow pages.
    st.builds(lambda n, c: "p" * n + c, st.sampled_from([5000, 9000]), st.sampled_from("xyz")),
)
ops = st.lists(st.tuples(st.sampled_from(["insert", "update", "delete"]), st.integers(-50, 600), values), max_size=40)


def _create(db: Path, initial: Any, page_size: int = 4096) -> None:
    db.unlink(missing_ok=True)
    with sqlite3.connect(db) as conn:
        conn.execute(f"PRAGMA page_size = {page_size}")
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v)")
        conn.executemany("INSERT OR REPLACE INTO t VALUES (?, ?)", initial)


def _change(db: Path, changes: Any) -> None:
    with sqlite3.connect(db) as conn:
        for op, key, value in changes:
            if op == "insert":
                conn.execute("INSERT OR IGNORE INTO t VALUES (?, ?)", (key, value))
            elif op == "update":
                conn.execute("UPDATE t SET v = ? WHERE id = ?", (value, key))
            else:
                conn.execute("DELETE FROM t WHERE id = ?", (key,))


def _rows(db: Path) -> dict[int, Any]:
    with sqlite3.connect(db) as conn:
        return {k: v for k, v in conn.execute("SELECT id, v FROM t")}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(-50, 600), values), max_size=300), ops)
def test_every_changed_row_lies_in_a_changed_page(tmp_path: Path, initial: Any, changes: Any) -> None:
    db = tmp_path / "t.db"
    _create(db, initial)
    before_rows = _rows(db)
    before_version, before = sqlite_table_pages(db, "t", leaves=True)
    assert before is not None
    _change(db, changes)
    after_rows = _rows(db)
    version, after = sqlite_table_pages(db, "t", leaves=True)
    assert after is not None
    # Read again knowing the earlier pages: unchanged pages keep their spans unparsed, to the same result.
    assert sqlite_table_pages(db, "t", leaves=True, since=before) == (version, after)
    assert sqlite_table_pages(db, "t", leaves=False) == (version, None)
    spans = changed_spans(LeafPages.loads(before.dumps()), after)
    changed = {k for k in before_rows.keys() | after_rows.keys() if before_rows.get(k, ...) != after_rows.get(k, ...)}
    for key in changed:
        assert any(low <= key <= high for low, high in spans), f"row {key} changed outside every changed page"
    if changed:
        assert version != before_version
    if not changed and before == after:
        assert spans == []


def test_wal_mode_and_a_missing_table_have_no_pages(tmp_path: Path) -> None:
    db = tmp_path / "w.db"
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v)")
        conn.execute("INSERT INTO t VALUES (1, 'x')")
    assert sqlite_table_pages(db, "t", leaves=True) == (None, None)
    assert sqlite_table_pages(db, "nope", leaves=True) == (None, None)


def test_rows_deleted_at_a_page_edge_or_with_their_page_are_covered(tmp_path: Path) -> None:
    db = tmp_path / "e.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
        conn.executemany("INSERT INTO t VALUES (?, ?)", [(i, "x" * 200) for i in range(1, 401)])
    _, before = sqlite_table_pages(db, "t", leaves=True)
    assert before is not None and len(before.pages) > 4
    last_of_second = sorted(before.lasts)[1]
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM t WHERE id IN (400, ?)", (last_of_second,))  # the last row of two pages
        conn.execute("DELETE FROM t WHERE id BETWEEN 150 AND 260")  # whole pages
        conn.execute("UPDATE t SET v = ? WHERE id = 5", ("y" * 9000,))  # into overflow pages
    _, after = sqlite_table_pages(db, "t", leaves=True)
    assert after is not None
    spans = changed_spans(before, after)
    for key in [400, last_of_second, 150, 200, 260, 5]:
        assert any(low <= key <= high for low, high in spans), key


def test_a_changed_page_counts_with_its_old_span_and_a_page_gone_with_its_last() -> None:
    before = LeafPages(pages=[2, 3, 4], hashes=[1, 2, 3], firsts=[1, 11, 21], lasts=[10, 20, 30])
    after = LeafPages(pages=[2, 3], hashes=[9, 2], firsts=[1, 11], lasts=[9, 20])  # 10 deleted, page 4 freed
    assert sorted(changed_spans(before, after)) == [(1, 9), (1, 10), (21, 30)]
    assert changed_spans(before, before) == []


def _reference_spans(before: LeafPages, now: LeafPages) -> list[tuple[int, int]]:
    """``changed_spans`` one page at a time, matched through a dict."""
    old = {p: (h, f, last) for p, h, f, last in zip(*before[:4], strict=True)}
    spans = []
    seen = set()
    for page, digest, first, last in zip(*now[:4], strict=True):
        seen.add(page)
        was = old.get(page)
        if was is not None and was[0] == digest:
            continue
        spans.append((first, last))
        if was is not None:
            spans.append((was[1], was[2]))
    return spans + [(f, last) for p, (_, f, last) in old.items() if p not in seen]


rowids = st.integers(-(2**63), 2**63 - 1)
leaf_lists = st.lists(
    st.tuples(st.integers(2, 40), st.integers(0, 3), rowids, rowids), unique_by=lambda page: page[0]
).map(lambda pages: LeafPages(*([list(v) for v in zip(*pages, strict=True)] or [[], [], [], []])))


@given(leaf_lists, leaf_lists)
def test_changed_spans_are_the_reference_s(before: LeafPages, now: LeafPages) -> None:
    assert sorted(changed_spans(before, now)) == sorted(_reference_spans(before, now))
    assert changed_spans(now, now) == []


def test_a_change_only_in_overflow_pages_changes_the_version_and_its_leaf(tmp_path: Path) -> None:
    """An e-mail stored after a large value lives in the record's overflow pages: changing it to
    one of the same length writes no leaf page, yet the version and the leaf's hash change."""
    db = tmp_path / "t.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, photo BLOB, email TEXT)")
        conn.executemany(
            "INSERT INTO t VALUES (?, ?, ?)", [(i, b"x" * 6000, f"u{i:03d}@example.org") for i in range(30)]
        )
    version, before = sqlite_table_pages(db, "t", leaves=True)
    assert before is not None
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE t SET email = 'z007@example.org' WHERE id = 7")
    again, after = sqlite_table_pages(db, "t", leaves=True, since=before)
    assert after is not None and again != version
    spans = changed_spans(before, after)
    assert spans and all(low <= 7 <= high for low, high in spans)  # row 7's leaf, nothing else


# The pages read one step a page, as before they were hashed in one pass and sorted out with
# numpy: the fast path must give the same version and leaves (tokens written before stay valid).
def _reference_read_pages(
    fh: Any,
    rows: list[tuple[int, str, str, int, int]],
    head: str,
    *,
    leaves: bool,
    known: str | None,
    since: Any,
) -> tuple[str, Any]:
    """The version (a hash of each page's number and bytes, every page hashed once) and the leaf
    pages, each leaf with its overflow pages in its hash (a value that changes only in its
    overflow pages changes its leaf's hash)."""
    digest = hashlib.blake2b(digest_size=20)
    digest.update(head.encode())
    # An earlier scan's leaf page by its hash; a page without overflow pages has its own bytes'
    # hash, so the same bytes give the same hash: its span stands.
    spans = {} if since is None else {(p, h): (f, last) for p, h, f, last in zip(*since[:4], strict=True)}
    # leaf path: page, hash of its bytes, its leaf hash without overflow pages, rowid span
    found: dict[str, tuple[int, bytes, int, tuple[int, int]]] = {}
    overflow: dict[str, list[tuple[str, bytes]]] = {}  # leaf path: (overflow page's path, hash of its bytes)
    for run, data in sql_fingerprint._runs(fh, rows):
        view = memoryview(data)
        start = run[0][3]
        for pageno, pagetype, where, offset, size in run:
            page = view[offset - start : offset - start + size]
            own = hashlib.sha256(page).digest()[:16]  # SHA-256 is the fastest here (CPU instructions)
            digest.update(pageno.to_bytes(8, "little"))
            digest.update(own)
            if not leaves:
                continue
            if pagetype == "leaf":
                alone = int.from_bytes(own[:8], "big", signed=True)
                span = spans.get((pageno, alone))
                if span is None:
                    span = _rowid_span(page, 100 if pageno == 1 else 0)
                    if span is None:  # an empty root page
                        continue
                found[where] = (pageno, own, alone, span)
            elif pagetype == "overflow":
                # ``/000/001+000002``: the third overflow page of cell 1 of the leaf ``/000/``.
                owner = where[: where.rindex("/") + 1]
                overflow.setdefault(owner, []).append((where, own))
        view.release()
    version = "pages:" + digest.hexdigest()
    if not leaves or version == known:
        return version, None
    out = sql_fingerprint.LeafPages([], [], [], [])
    for where, (pageno, own, alone, span) in found.items():
        more = overflow.get(where)
        out.pages.append(pageno)
        out.hashes.append(
            alone if not more else sql_fingerprint._leaf_hash(own, [h for _, h in sorted(more, key=lambda m: m[0])])
        )
        out.firsts.append(span[0])
        out.lasts.append(span[1])
    return version, out


def _rowid_span(page: Any, header: int) -> tuple[int, int] | None:
    """The reference's first and last rowid of a table leaf page, one byte at a time (the file
    format, 1.6): the cell pointer array is in key order; a cell starts with its payload's
    size and its rowid, both varints."""
    if page[header] != 13:
        return None
    cells = int.from_bytes(page[header + 3 : header + 5], "big")
    if not cells:
        return None
    pointers = header + 8
    first = int.from_bytes(page[pointers : pointers + 2], "big")
    last = int.from_bytes(page[pointers + 2 * (cells - 1) : pointers + 2 * cells], "big")
    return _cell_rowid(page, first), _cell_rowid(page, last)


def _cell_rowid(page: Any, at: int) -> int:
    end = at + 8
    while at < end and page[at] & 0x80:  # the payload's size, a varint: skipped
        at += 1
    value = 0
    for i in range(1, 9):
        byte = page[at + i]
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            break
    else:
        value = (value << 8) | page[at + 9]
    return value - (1 << 64) if value >= 1 << 63 else value


#: Keys of every varint length: a rowid's first and last are read from the cells' varints.
wide_keys = st.one_of(st.integers(-50, 600), st.integers(-(2**63), 2**63 - 1))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(wide_keys, values), max_size=300), ops, st.sampled_from([512, 1024, 4096, 65536]))
def test_pages_are_read_as_the_reference_reads_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, initial: Any, changes: Any, page_size: int
) -> None:
    db = tmp_path / "r.db"
    _create(db, initial, page_size)
    first = sqlite_table_pages(db, "t", leaves=True)
    with monkeypatch.context() as m:
        m.setattr(sql_fingerprint, "_read_pages", _reference_read_pages)
        assert sqlite_table_pages(db, "t", leaves=True) == first
    _change(db, changes)
    calls = [
        {"leaves": True},
        {"leaves": True, "since": first[1]},
        {"leaves": True, "known": first[0]},
        {"leaves": False},
    ]
    fast = [sqlite_table_pages(db, "t", **kw) for kw in calls]  # type: ignore[arg-type]
    with monkeypatch.context() as m:
        m.setattr(sql_fingerprint, "_read_pages", _reference_read_pages)
        assert [sqlite_table_pages(db, "t", **kw) for kw in calls] == fast  # type: ignore[arg-type]


def test_a_table_of_many_small_pages_is_read_as_the_reference_reads_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More changed leaves than one chunk of pages parsed at once (``sqlite_cells.CHUNK_PAGES``)."""
    db = tmp_path / "r.db"
    _create(db, [(k * 7919 - 2**40, f"value {k}" * 3) for k in range(12_000)], page_size=512)
    fast = sqlite_table_pages(db, "t", leaves=True)
    assert fast[1] is not None and len(fast[1].pages) > 3 * sqlite_cells.CHUNK_PAGES
    monkeypatch.setattr(sql_fingerprint, "_read_pages", _reference_read_pages)
    assert sqlite_table_pages(db, "t", leaves=True) == fast
