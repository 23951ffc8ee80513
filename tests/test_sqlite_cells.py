"""SQLite bucket fingerprints from the leaf pages' cells (``connectors.sqlite_cells``): a bucket's
fingerprint must change whenever its records do (or a rescan would miss the change), and stay
the same when they do not, a VACUUM or values rewritten as they were included (or every bucket
of a page would be read again). Checked against the records themselves, read by SQL, on tables
of every page size, rowids of every varint length, and values spilling to overflow pages."""

from __future__ import annotations

import itertools
import sqlite3
import struct
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors import sqlite_cells
from connectors.base import SourceSpec
from connectors.sql import SqlTableReader
from connectors.sql_fingerprint import sqlite_table_pages
from connectors.sqlite_cells import cell_bucket_prints
from discover.detector import Detector
from discover.index import Index
from discover.scan import scan
from discover.settings import ScanSettings, default_workers

_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

ROWIDS = st.one_of(
    st.integers(-40, 400),
    st.integers(2**40, 2**40 + 60),  # six-byte varints
    st.integers(-(2**63), -(2**63) + 30),  # negative: nine-byte varints
    st.integers(2**63 - 30, 2**63 - 1),
)
VALUES = st.one_of(
    st.none(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.binary(max_size=8),
    # Longer than a small page's cell can hold: the rest goes to a chain of overflow pages.
    st.text(min_size=600, max_size=3_000),
    st.binary(min_size=600, max_size=9_000),
)
#: What a change does: a value set (to an existing record: an update, maybe to the value it
#: had; else an insert), a long text's last character changed (in its overflow pages), two
#: records' values swapped, a record deleted, or a VACUUM.
KINDS = st.sampled_from(["set", "set", "tail", "swap", "delete", "vacuum"])


def _plain(value: Any) -> Any:
    """A value as a key that tells apart what SQLite keeps apart (1 and 1.0, 0.0 and -0.0)."""
    if isinstance(value, float):
        return ("real", struct.pack(">d", value))
    return (type(value).__name__, value)


def _records(db: Path, width: int) -> dict[int, list[Any]]:
    out: dict[int, list[Any]] = {}
    with sqlite3.connect(db) as conn:
        for rowid, *values in conn.execute("SELECT id, a, b FROM t ORDER BY id"):
            out.setdefault(rowid // width, []).append((rowid, *map(_plain, values)))
    return out


def _prints(db: Path, width: int, buckets: Iterable[int] | None = None) -> dict[int, int]:
    _, leaves = sqlite_table_pages(db, "t", leaves=True)
    assert leaves is not None and leaves.counter is not None
    found = cell_bucket_prints(db, leaves, width, None if buckets is None else set(buckets))
    assert found is not None
    return found


def _change(conn: sqlite3.Connection, data: Any, kind: str, width: int) -> None:
    existing = [r for (r,) in conn.execute("SELECT id FROM t ORDER BY id")]
    if kind == "set":
        rowid = data.draw(st.sampled_from(existing) | ROWIDS if existing else ROWIDS)
        value = data.draw(VALUES)
        conn.execute(
            "INSERT INTO t (id, a, b) VALUES (?, ?, 'x') ON CONFLICT(id) DO UPDATE SET a = ?", (rowid, value, value)
        )
    elif kind == "tail":  # a long text's last character: only its overflow pages change
        long = [r for (r,) in conn.execute("SELECT id FROM t WHERE typeof(a) = 'text' AND length(a) > 500")]
        if long:
            conn.execute(
                "UPDATE t SET a = substr(a, 1, length(a) - 1) || iif(substr(a, -1) = 'Z', 'Y', 'Z') WHERE id = ?",
                (data.draw(st.sampled_from(long)),),
            )
    elif kind == "swap":  # two records of one bucket trade values: the same cells but for their rowids
        pairs = [(x, y) for x, y in itertools.pairwise(existing) if x // width == y // width]
        if pairs:
            x, y = data.draw(st.sampled_from(pairs))
            free = 5 * 10**15  # no rowid drawn is near it
            for old, new in ((x, free), (y, x), (free, y)):
                conn.execute("UPDATE t SET id = ? WHERE id = ?", (new, old))
    elif kind == "delete" and existing:
        conn.execute("DELETE FROM t WHERE id = ?", (data.draw(st.sampled_from(existing)),))
    elif kind == "vacuum":
        conn.commit()
        conn.execute("VACUUM")


@_SETTINGS
@given(
    rows=st.dictionaries(ROWIDS, st.tuples(VALUES, VALUES), max_size=80),
    page_size=st.sampled_from([512, 1024, 4096, 65536]),
    width=st.sampled_from([1, 3, 5]),
    kinds=st.lists(KINDS, max_size=10),
    data=st.data(),
)
def test_a_bucket_print_changes_exactly_when_its_records_do(
    tmp_path: Path, rows: dict[int, Any], page_size: int, width: int, kinds: list[str], data: Any
) -> None:
    db = tmp_path / "t.db"
    db.unlink(missing_ok=True)
    with sqlite3.connect(db) as conn:
        conn.execute(f"PRAGMA page_size = {page_size}")
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, a, b)")
        conn.executemany("INSERT INTO t VALUES (?, ?, ?)", [(k, *v) for k, v in rows.items()])
    before, prints = _records(db, width), _prints(db, width)
    assert set(prints) == set(before)  # one print per bucket that holds records
    asked = data.draw(st.sets(st.sampled_from(sorted(before) or [0]) | st.integers(-5, 5)))
    assert _prints(db, width, asked) == {b: p for b, p in prints.items() if b in asked}

    with sqlite3.connect(db) as conn:
        for kind in kinds:
            _change(conn, data, kind, width)
    after, again = _records(db, width), _prints(db, width)
    assert set(again) == set(after)
    for bucket in set(before) | set(after):
        same_records = before.get(bucket) == after.get(bucket)
        assert (prints.get(bucket) == again.get(bucket)) == same_records, bucket


@pytest.mark.parametrize("page_size", [512, 4096])
def test_a_value_changed_only_in_its_overflow_pages_changes_its_bucket(tmp_path: Path, page_size: int) -> None:
    db = tmp_path / "t.db"
    with sqlite3.connect(db) as conn:
        conn.execute(f"PRAGMA page_size = {page_size}")
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, a, b)")
        conn.executemany("INSERT INTO t VALUES (?, ?, 'x')", [(i, f"p{i}@example.org") for i in range(40)])
        conn.execute("UPDATE t SET a = ? WHERE id = 17", ("note " * 4_000 + "A",))
    before = _prints(db, 5)
    with sqlite3.connect(db) as conn:  # the same length, the same first bytes: only the last page differs
        conn.execute("UPDATE t SET a = ? WHERE id = 17", ("note " * 4_000 + "B",))
    after = _prints(db, 5)
    assert {b for b in before if before[b] != after[b]} == {17 // 5}


def test_changes_confined_to_the_top_bits_of_two_words_change_the_print(tmp_path: Path) -> None:
    """Two integers each changed by 128, stored at the last byte of two 8-byte words of the
    record, and two letters' case (bit 5) changed eight bytes apart: each pair would cancel in a
    sum of words only multiplied by odd numbers (a product carries a change upwards only)."""
    db = tmp_path / "t.db"
    with sqlite3.connect(db) as conn:  # record: a 6-byte header, 'x', a at byte 7, 'abcdefg', c at byte 15
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT, a INTEGER, b TEXT, c INTEGER)")
        conn.execute("INSERT INTO t VALUES (1, 'x', 5, 'abcdefg', 9)")
    before = _prints(db, 100)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE t SET a = -123, c = -119 WHERE id = 1")
    assert _prints(db, 100) != before
    name = "margaret.o.hennessy-van.der.berg@example.org"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE e (id INTEGER PRIMARY KEY, email TEXT)")
    missed = []
    for i, j in itertools.combinations(range(len(name)), 2):
        if (j - i) % 8 or not (name[i].isalpha() and name[j].isalpha()):
            continue
        changed = name[:i] + name[i].upper() + name[i + 1 : j] + name[j].upper() + name[j + 1 :]
        prints = []
        for email in (name, changed):
            with sqlite3.connect(db) as conn:
                conn.execute("INSERT OR REPLACE INTO e VALUES (1, ?)", (email,))
            _, leaves = sqlite_table_pages(db, "e", leaves=True)
            assert leaves is not None
            prints.append(cell_bucket_prints(db, leaves, 100))
        if prints[0] == prints[1]:
            missed.append(changed)
    assert missed == []


def test_no_print_once_the_file_is_written_after_its_pages_were_read(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, a, b)")
        conn.executemany("INSERT INTO t VALUES (?, ?, 'x')", [(i, f"p{i}@example.org") for i in range(500)])
    _, leaves = sqlite_table_pages(db, "t", leaves=True)
    assert leaves is not None
    assert cell_bucket_prints(db, leaves, 5) == _prints(db, 5)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE t SET a = 'other@example.org' WHERE id = 7")
    # The pages read then are not the file's now: no answer (the scan fingerprints by SQL instead).
    assert cell_bucket_prints(db, leaves, 5) is None
    assert cell_bucket_prints(db, leaves._replace(counter=None), 5) is None


def test_a_page_that_is_not_a_table_leaf_gives_no_print(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, a, b)")
        conn.execute("CREATE INDEX t_a ON t (a)")
        conn.executemany("INSERT INTO t VALUES (?, ?, 'x')", [(i, f"p{i}@example.org") for i in range(50)])
        index_page = conn.execute("SELECT pageno FROM dbstat WHERE name = 't_a'").fetchone()[0]
    _, leaves = sqlite_table_pages(db, "t", leaves=True)
    assert leaves is not None
    assert cell_bucket_prints(db, leaves._replace(pages=[index_page]), 5) is None


def _customers_scanned(
    tmp_path: Path, detector: Detector, workers: str
) -> tuple[Path, Callable[[], Any], Callable[[str], int]]:
    """3,000 customers, each with an e-mail address, scanned once: the file, a rescan (its
    container's result) and how many findings an address has in the index."""
    db = tmp_path / "crm.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT)")
        conn.executemany("INSERT INTO customers VALUES (?, ?)", [(i, f"person{i}@example.org") for i in range(3_000)])
    index = Index(f"sqlite:///{tmp_path / 'index' / 'index.db'}", key=b"k" * 32)
    settings = ScanSettings(workers=1 if workers == "1" else default_workers(), unit_rows=500)
    spec = SourceSpec(name="crm", url=f"sqlite:///{db}")

    def rescan() -> Any:
        result = scan([spec], index=index, detector=detector, settings=settings)
        assert result.ok, result.errors
        (container,) = result.containers
        return container

    def found(email: str) -> int:
        return len(index.findings_for([index.ident("EMAIL_ADDRESS", email)]))

    assert rescan().read == "full"
    return db, rescan, found


@pytest.mark.parametrize("workers", ["1", "default"])
def test_a_rescan_after_vacuum_reads_nothing_again_and_a_changed_bucket_is_read(
    tmp_path: Path, detector: Detector, workers: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the scan, with no bucket fingerprinted by SQL: a VACUUM moves every record to
    another page and reads nothing again; then one e-mail address changed reads its one bucket
    again, and the index finds the new address, not the old one."""
    db, rescan, found = _customers_scanned(tmp_path, detector, workers)
    by_sql = SqlTableReader.range_fingerprints

    def refused(self: SqlTableReader, *args: Any, **kwargs: Any) -> dict[int, str]:
        if kwargs.get("width"):
            raise AssertionError("buckets fingerprinted by SQL")
        return by_sql(self, *args, **kwargs)

    monkeypatch.setattr(SqlTableReader, "range_fingerprints", refused)  # workers fork after this
    with sqlite3.connect(db) as conn:
        conn.execute("VACUUM")
    vacuumed = rescan()
    assert (vacuumed.ranges_read, vacuumed.buckets_read) == (0, 0)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE customers SET email = 'someone.new@example.org' WHERE id = 1234")
    changed = rescan()
    assert (changed.read, changed.ranges_read, changed.buckets_read) == ("ranges", 1, 1)
    assert (found("someone.new@example.org"), found("person1234@example.org"), found("person1235@example.org")) == (
        1,
        0,
        1,
    )


@pytest.mark.parametrize("workers", ["1", "default"])
@pytest.mark.parametrize("far", [7_000, 2**62], ids=["within-reach", "far"])
def test_a_row_with_a_far_key_does_not_make_the_rescan_count_every_bucket_in_between(
    tmp_path: Path, detector: Detector, workers: str, far: int
) -> None:
    """The last page's span then covers the gap: 2**62 keys, whose buckets were enumerated one
    by one (the rescan never ended). Beyond twice the buckets of the table's ranges (6,000
    here), every bucket that holds a record is fingerprinted instead; within, those of the
    spans. Either way the index is what a full read gives, a range emptied by deletes included."""
    db, rescan, found = _customers_scanned(tmp_path, detector, workers)
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO customers VALUES (?, 'far.away@example.org')", (far,))
        conn.execute("UPDATE customers SET email = 'someone.new@example.org' WHERE id = 1234")
        conn.execute("DELETE FROM customers WHERE id BETWEEN 500 AND 999")  # the second range, whole
    changed = rescan()
    assert (changed.read, changed.ranges_read, changed.buckets_read, changed.records) == ("ranges", 2, 1, 2_501)
    emails = ("far.away", "someone.new", "person1234", "person700", "person2999")
    assert [found(f"{who}@example.org") for who in emails] == [1, 1, 0, 0, 1]


@pytest.mark.parametrize("workers", ["1", "default"])
def test_a_table_whose_keys_spread_over_2_to_the_62_is_scanned_and_rescanned(
    tmp_path: Path, detector: Detector, workers: str
) -> None:
    """Its key ranges are about 2**59 keys each: the buckets' width, a divisor of that, was
    searched for one number at a time (the first scan never ended)."""
    db = tmp_path / "crm.db"
    keys = [k * (2**62 // 2_999) for k in range(3_000)]
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT)")
        conn.executemany(
            "INSERT INTO customers VALUES (?, ?)", [(k, f"person{n}@example.org") for n, k in enumerate(keys)]
        )
    index = Index(f"sqlite:///{tmp_path / 'index' / 'index.db'}", key=b"k" * 32)
    settings = ScanSettings(workers=1 if workers == "1" else default_workers(), unit_rows=500)
    spec = SourceSpec(name="crm", url=f"sqlite:///{db}")
    first = scan([spec], index=index, detector=detector, settings=settings)
    assert first.ok and (first.containers[0].read, first.containers[0].records) == ("full", 3_000)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE customers SET email = 'someone.new@example.org' WHERE id = ?", (keys[1234],))
    again = scan([spec], index=index, detector=detector, settings=settings)
    assert again.ok and (again.containers[0].read, again.containers[0].records) == ("ranges", 3_000)
    emails = ("someone.new", "person1234", "person2999")
    assert [len(index.findings_for([index.ident("EMAIL_ADDRESS", f"{who}@example.org")])) for who in emails] == [
        1,
        0,
        1,
    ]


@pytest.mark.parametrize("workers", ["1", "default"])
def test_pages_that_cannot_be_read_as_they_were_give_way_to_sql(
    tmp_path: Path, detector: Detector, workers: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the pages' cells give no fingerprints (the file written since its pages were read,
    or gone), the buckets are fingerprinted by SQL, and the rescan reads what changed."""
    db, rescan, found = _customers_scanned(tmp_path, detector, workers)
    by_sql: list[int] = []
    real = SqlTableReader.range_fingerprints

    def counted(self: SqlTableReader, *args: Any, **kwargs: Any) -> dict[int, str]:
        by_sql.append(len(kwargs.get("buckets") or ()))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(SqlTableReader, "range_fingerprints", counted)
    monkeypatch.setattr(sqlite_cells, "cell_bucket_prints", lambda *args, **kwargs: None)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE customers SET email = 'someone.new@example.org' WHERE id = 1234")
    changed = rescan()
    # The changed page's buckets, by SQL; their fingerprints are not the pages' (another hash),
    # so its range is read whole.
    assert (changed.read, changed.ranges_read, changed.buckets_read) == ("ranges", 1, 0)
    assert by_sql and all(by_sql)
    assert (found("someone.new@example.org"), found("person1234@example.org")) == (1, 0)


@pytest.mark.parametrize("workers", ["1", "default"])
@pytest.mark.parametrize(
    "create",
    [
        # Not the rowid (a quirk SQLite keeps for compatibility): a key of its own.
        "CREATE TABLE people (id INTEGER PRIMARY KEY DESC, email TEXT)",
        # No primary key: the rowid is the key, and a column named rowid hides that name.
        "CREATE TABLE people (rowid INTEGER, email TEXT)",
    ],
    ids=["integer-primary-key-desc", "column-named-rowid"],
)
def test_a_key_that_is_not_the_rowid_is_not_taken_for_it(
    tmp_path: Path, detector: Detector, workers: str, create: str
) -> None:
    """Rows inserted in falling key order get rising rowids, so the pages' rowids say nothing of
    such a key. A changed row must still be read again, and found."""
    db = tmp_path / "crm.db"
    with sqlite3.connect(db) as conn:
        conn.execute(create)
        conn.executemany("INSERT INTO people VALUES (?, ?)", [(i, f"person{i}@example.org") for i in range(600, 0, -1)])
        assert conn.execute("SELECT _rowid_ FROM people WHERE email = 'person7@example.org'").fetchone() == (594,)
    index = Index(f"sqlite:///{tmp_path / 'index' / 'index.db'}", key=b"k" * 32)
    settings = ScanSettings(workers=1 if workers == "1" else default_workers(), unit_rows=100)
    spec = SourceSpec(name="crm", url=f"sqlite:///{db}")
    assert scan([spec], index=index, detector=detector, settings=settings).ok
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE people SET email = 'someone.new@example.org' WHERE email = 'person7@example.org'")
    assert scan([spec], index=index, detector=detector, settings=settings).ok

    def found(email: str) -> int:
        return len(index.findings_for([index.ident("EMAIL_ADDRESS", email)]))

    assert (found("someone.new@example.org"), found("person7@example.org"), found("person8@example.org")) == (1, 0, 1)
