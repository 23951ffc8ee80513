"""PostgreSQL rescans find changed rows by their row versions (``xmin``) and deleted ones by
counts, so that only the buckets written or emptied since the last scan are fingerprinted,
and the index still answers as a full scan's."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from servers import postgres_database, run_sql
from sqlalchemy import create_engine, text

from connectors.base import KeyChanges, SourceSpec
from connectors.sql import SqlConnector, SqlTableReader
from connectors.sql_fingerprint import written_since
from discover.detector import Detector
from discover.index import Index
from discover.scan import scan
from discover.settings import ScanSettings, default_workers

KEY = b"k" * 32
ROWS = ",\n".join(f"({i}, 'user{i}@example.com', 'Name{i % 7} Family{i % 5}')" for i in range(1, 601))
TABLE = f"CREATE TABLE people (id integer PRIMARY KEY, email text, full_name text);\nINSERT INTO people VALUES {ROWS}"


@pytest.fixture
def people_db() -> Iterator[str]:
    with postgres_database(prefix="rowversions") as url:
        run_sql(url, TABLE)
        yield url


def _changes(url: str, since: str | None, width: int = 10, table: str = "people") -> KeyChanges:
    """What a rescan's reader finds: its version first, then where rows changed since ``since``
    (buckets of ``width`` keys)."""
    connector = SqlConnector(SourceSpec(name="crm", url=url))
    try:
        ref = next(r for r in connector.containers() if r.name == table)
        with connector.open(ref) as reader:
            assert reader.table_version() is not None
            return reader.changed_key_spans(since, width)
    finally:
        connector.close()


def test_the_keys_written_since_a_token_are_found_even_frozen_or_in_a_subtransaction(people_db: str) -> None:
    token = _changes(people_db, None).token
    assert token is not None and token.startswith("xmin:")
    run_sql(
        people_db,
        "UPDATE people SET email = 'moved@example.com' WHERE id = 17;\n"
        "INSERT INTO people VALUES (900, 'late@example.com', 'Late Comer');\n"
        "DELETE FROM people WHERE id = 300;\n"
        "BEGIN;\nSAVEPOINT s;\nUPDATE people SET full_name = 'Sub Transaction' WHERE id = 451;\nRELEASE SAVEPOINT s;\n"
        "COMMIT;\n"
        "UPDATE people SET email = email WHERE id = 52",  # the same value, a new row version
    )
    run_sql(people_db, "VACUUM FREEZE people")  # frozen rows keep their xmin
    found = _changes(people_db, token, width=1)
    assert found.spans is not None
    # 600 rows: the 4 written, and the other 596 (row 300 deleted, row 900 added).
    assert (sorted(found.spans), found.rows) == ([(17, 17), (52, 52), (451, 451), (900, 900)], 596)
    assert found.token != token
    by_ten = _changes(people_db, token, width=10)  # whole buckets: 10 + 10 + 10 + 1 rows written to
    assert (by_ten.spans, by_ten.rows) == ([(10, 19), (50, 59), (450, 459), (900, 909)], 569)
    # Nothing written since the new token: no key.
    assert _changes(people_db, found.token).spans == []


def test_a_token_that_cannot_be_compared_gives_no_spans(people_db: str) -> None:
    token = _changes(people_db, None).token
    assert token is not None
    *head, xid = token.split(":")
    wrapped = ":".join([*head, str(int(xid) - 2**31)])  # more than 2**31 transactions ago
    assert _changes(people_db, wrapped)[1:] == (None, None)  # a token, but neither spans nor rows
    assert _changes(people_db, "pages-of-another-database").spans is None
    assert _changes(people_db, "xmin:1:2:3:4:not-a-number").spans is None
    _, server, timeline, database, table = head
    for other in ([str(int(server) + 1), timeline], [server, str(int(timeline) + 1)]):  # a restored or promoted server
        assert _changes(people_db, ":".join(["xmin", *other, database, table, xid])).spans is None
    # A copy of the database (CREATE DATABASE … TEMPLATE): the same table oid and row versions.
    admin = create_engine(people_db.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    copy = people_db.rsplit("/", 1)[1] + "_copy"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{copy}" TEMPLATE "{people_db.rsplit("/", 1)[1]}"'))
        copied = people_db.rsplit("/", 1)[0] + "/" + copy
        run_sql(copied, "UPDATE people SET email = 'changed@example.com' WHERE id = 5")
        assert _changes(copied, token).spans is None
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{copy}"'))
        admin.dispose()
    # The table dropped and made again (a restore): another oid, so its rows' ids say nothing.
    run_sql(people_db, f"DROP TABLE people;\n{TABLE}")
    assert _changes(people_db, token).spans is None
    # A child table: rows it brings when attached keep their older versions, so no token at all.
    run_sql(people_db, "CREATE TABLE kid (LIKE people);\nALTER TABLE kid INHERIT people")
    assert _changes(people_db, None).token is None


@pytest.mark.parametrize(
    ("before", "xmin", "newer"),
    [
        (100, 100, True),
        (100, 99, False),
        (100, 100 + 2**31 - 1, True),
        (100, 100 + 2**31, False),  # half the id space ahead is behind
        (2**32 + 4_294_967_290, 5, True),  # a 64-bit id past the wraparound, and a 32-bit xmin after it
        (2**32 + 4_294_967_290, 4_294_967_289, False),
    ],
)
def test_row_versions_compare_modulo_2_32(people_db: str, before: int, xmin: int, newer: bool) -> None:
    engine = create_engine(people_db)
    try:
        with engine.connect() as conn:
            assert conn.execute(text(f"SELECT {written_since(before, f'CAST({xmin} AS text)::xid')}")).scalar() is newer
    finally:
        engine.dispose()


def _asked(monkeypatch: pytest.MonkeyPatch) -> tuple[list[set[int] | None], list[int]]:
    """The buckets each ``range_fingerprints`` call asks for, and the ``bucket_rows`` calls."""
    asked: list[set[int] | None] = []
    counted: list[int] = []
    fingerprints, rows = SqlTableReader.range_fingerprints, SqlTableReader.bucket_rows

    def recording(self: SqlTableReader, *args: Any, **kwargs: Any) -> Any:
        buckets = kwargs.get("buckets")
        asked.append(None if buckets is None else set(buckets))
        return fingerprints(self, *args, **kwargs)

    def counting(self: SqlTableReader, width: int, since: str | None = None) -> dict[int, int]:
        counted.append(width)
        return rows(self, width, since)

    monkeypatch.setattr(SqlTableReader, "range_fingerprints", recording)
    monkeypatch.setattr(SqlTableReader, "bucket_rows", counting)
    return asked, counted


def _findings(idx: Index) -> tuple[list[Any], list[Any]]:
    containers = sorted((c.name, c.records) for c in idx.containers())
    return containers, sorted((f.record_key, f.field, f.entity_type, f.ident) for f in idx.iter_findings())


@pytest.mark.parametrize("workers", [1, default_workers()], ids=lambda w: f"workers={w}")
def test_a_rescan_fingerprints_only_the_buckets_written_or_emptied(
    tmp_path: Path, detector: Detector, people_db: str, workers: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    import discover.buckets

    monkeypatch.setattr(discover.buckets, "BUCKETS_PER_RANGE", 10)  # buckets of 10 keys in ranges of 100
    spec = SourceSpec(name="crm", url=people_db)
    settings = ScanSettings(workers=workers, unit_rows=100)
    idx = Index(f"sqlite:///{tmp_path / 'inc' / 'index.db'}", key=KEY)
    assert scan([spec], index=idx, detector=detector, settings=settings).ok
    asked, counted = _asked(monkeypatch)
    steps = [
        # (change, buckets fingerprinted, buckets counted)
        ("UPDATE people SET email = 'moved@example.com' WHERE id = 150", [{15}], []),
        ("DELETE FROM people WHERE id = 420", [{42}], [10]),  # no row written: found by the counts
        ("UPDATE people SET email = 'frozen@example.com' WHERE id = 333;\nVACUUM FREEZE people", [{33}], []),
        (
            "DELETE FROM people WHERE id = 205;\nUPDATE people SET email = 'near@example.com' WHERE id = 207",
            [{20}],  # a deletion beside a write in the same bucket: the write's bucket covers it
            [],
        ),
    ]
    for n, (change, fingerprinted, counts) in enumerate(steps):
        run_sql(people_db, change)
        asked.clear()
        counted.clear()
        result = scan([spec], index=idx, detector=detector, settings=settings)
        assert result.ok, result.errors
        assert (result.containers[0].read, asked, counted) == ("ranges", fingerprinted, counts), change
        full = Index(f"sqlite:///{tmp_path / f'full{n}' / 'index.db'}", key=KEY)
        assert scan([spec], index=full, detector=detector, settings=dataclasses.replace(settings, full=True)).ok
        assert _findings(idx) == _findings(full), change
        full.close()
    assert idx.findings_for([idx.ident("EMAIL_ADDRESS", "frozen@example.com")])
    assert not idx.findings_for([idx.ident("EMAIL_ADDRESS", "user420@example.com")])
    idx.close()


@pytest.mark.parametrize("name", ["t", "piiport_b"])
def test_the_buckets_asked_for_have_the_fingerprints_of_the_grouped_query(name: str) -> None:
    """PostgreSQL's buckets asked for (joined to the table by key) against every bucket's
    (one grouped query): the same fingerprints, negative keys and NULLs included; for a table
    named like the statement's list of buckets too, with a column named like the list's."""
    rows = ",\n".join(
        f"({k}, {'NULL' if k % 7 == 0 else repr(f'p{k}@example.com')}, {'NULL' if k % 3 else repr(f'Name {k}')})"
        for k in range(-40, 260, 3)
    )
    with postgres_database(prefix="joinedbuckets") as url:
        run_sql(
            url,
            f"CREATE TABLE {name} (id bigint PRIMARY KEY, email text, full_name text, piiport_g text);\n"
            f"INSERT INTO {name} (id, email, full_name) VALUES {rows}",
        )
        connector = SqlConnector(SourceSpec(name="crm", url=url))
        try:
            with connector.open(next(r for r in connector.containers() if r.name == name)) as reader:
                whole = reader.range_fingerprints(50, None, ["email", "full_name"], width=5)
                assert len(whole) == len({k // 5 for k in range(-40, 260, 3)})
                asked = {-8, -7, -1, 0, 3, 4, 11, 30, 51, 200}  # some hold no rows
                some = reader.range_fingerprints(50, None, ["email", "full_name"], width=5, buckets=asked)
                assert some == {b: p for b, p in whole.items() if b in asked}
                assert reader.bucket_rows(5) == {
                    b: sum(1 for k in range(-40, 260, 3) if k // 5 == b) for b in {k // 5 for k in range(-40, 260, 3)}
                }
        finally:
            connector.close()


@pytest.mark.parametrize(("name", "key"), [("piiport_k", "piiport_key"), ("piiport_g", "id")])
def test_a_table_named_like_the_lists_of_written_keys_is_rescanned(name: str, key: str) -> None:
    """The statement that finds the keys written since a token names its own lists
    (``piiport_k``, ``piiport_g``): a table of either name is still the one counted and joined
    (it raised an error, or with a key named like the list's column, counted the list)."""
    rows = ",\n".join(f"({i}, 'user{i}@example.com')" for i in range(1, 61))
    with postgres_database(prefix="listnames") as url:
        run_sql(url, f"CREATE TABLE {name} ({key} integer PRIMARY KEY, email text);\nINSERT INTO {name} VALUES {rows}")
        token = _changes(url, None, table=name).token
        run_sql(url, f"UPDATE {name} SET email = 'moved@example.com' WHERE {key} = 17")
        found = _changes(url, token, table=name)
        assert (found.spans, found.rows) == ([(10, 19)], 50)


def test_keys_beyond_32_bits_are_rescanned(tmp_path: Path, detector: Detector, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keys beyond 2**31 in buckets of 10: a bucket's number fits 32 bits, its first key does
    not (the buckets asked for are 64-bit in the join)."""
    import discover.buckets

    monkeypatch.setattr(discover.buckets, "BUCKETS_PER_RANGE", 10)
    base = 3_000_000_000
    rows = ",\n".join(f"({base + i}, 'big{i}@example.com')" for i in range(300))
    with postgres_database(prefix="bigkeys") as url:
        run_sql(url, f"CREATE TABLE people (id bigint PRIMARY KEY, email text);\nINSERT INTO people VALUES {rows}")
        spec = SourceSpec(name="crm", url=url)
        settings = ScanSettings(workers=1, unit_rows=100)
        idx = Index(f"sqlite:///{tmp_path / 'idx' / 'index.db'}", key=KEY)
        assert scan([spec], index=idx, detector=detector, settings=settings).ok
        run_sql(url, f"UPDATE people SET email = 'moved@example.com' WHERE id = {base + 150}")
        result = scan([spec], index=idx, detector=detector, settings=settings)
        assert result.ok, result.errors
        assert (result.containers[0].read, result.containers[0].ranges_read) == ("ranges", 1)
        assert idx.findings_for([idx.ident("EMAIL_ADDRESS", "moved@example.com")])
        assert not idx.findings_for([idx.ident("EMAIL_ADDRESS", "big150@example.com")])
        idx.close()


@pytest.mark.parametrize("workers", [1, default_workers()], ids=lambda w: f"workers={w}")
def test_a_row_deleted_while_the_scan_runs_does_not_hide_one_deleted_before(
    tmp_path: Path, detector: Detector, people_db: str, workers: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Row 420 deleted before the rescan (a bucket nothing was written to), row 150 updated,
    and row 155 (in 150's bucket) deleted by another session once the rescan has found where
    rows were written: the counts that find 420's bucket are not thrown off by 155's."""
    import discover.buckets

    monkeypatch.setattr(discover.buckets, "BUCKETS_PER_RANGE", 10)
    spec = SourceSpec(name="crm", url=people_db)
    settings = ScanSettings(workers=workers, unit_rows=100)
    idx = Index(f"sqlite:///{tmp_path / 'inc' / 'index.db'}", key=KEY)
    assert scan([spec], index=idx, detector=detector, settings=settings).ok
    run_sql(
        people_db, "DELETE FROM people WHERE id = 420;\nUPDATE people SET email = 'moved@example.com' WHERE id = 150"
    )
    fingerprints = SqlTableReader.range_fingerprints
    meanwhile: list[str] = ["DELETE FROM people WHERE id = 155"]

    def concurrently(self: SqlTableReader, *args: Any, **kwargs: Any) -> Any:
        while meanwhile:
            run_sql(people_db, meanwhile.pop())
        return fingerprints(self, *args, **kwargs)

    monkeypatch.setattr(SqlTableReader, "range_fingerprints", concurrently)
    result = scan([spec], index=idx, detector=detector, settings=settings)
    assert result.ok, result.errors
    assert not meanwhile
    full = Index(f"sqlite:///{tmp_path / 'full' / 'index.db'}", key=KEY)
    assert scan([spec], index=full, detector=detector, settings=dataclasses.replace(settings, full=True)).ok
    assert _findings(idx) == _findings(full)
    assert not idx.findings_for([idx.ident("EMAIL_ADDRESS", "user420@example.com")])
    idx.close()
    full.close()


def test_rows_rewritten_without_a_change_are_not_looked_at_again(
    tmp_path: Path, detector: Detector, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A column without personal data updated: new row versions, the same findings. The rescan
    keeps what the index has and takes the new version and token, so the scan after it finds
    the table unchanged without fingerprinting anything. A column named ``g`` (a name piiport's
    own queries once used) changes nothing."""
    rows = ",\n".join(f"({i}, 'user{i}@example.com', {i % 4}, 0)" for i in range(1, 401))
    with postgres_database(prefix="rewritten") as url:
        run_sql(
            url,
            f"CREATE TABLE people (id integer PRIMARY KEY, email text, g integer, visits integer);\n"
            f"INSERT INTO people VALUES {rows}",
        )
        spec = SourceSpec(name="crm", url=url)
        settings = ScanSettings(workers=1, unit_rows=100)
        idx = Index(f"sqlite:///{tmp_path / 'idx' / 'index.db'}", key=KEY)
        assert scan([spec], index=idx, detector=detector, settings=settings).ok
        asked, counted = _asked(monkeypatch)
        run_sql(url, "UPDATE people SET visits = visits + 1 WHERE id % 7 = 0;\nDELETE FROM people WHERE id = 390")
        result = scan([spec], index=idx, detector=detector, settings=settings)
        assert result.ok, result.errors
        assert result.containers[0].read == "ranges" and asked and counted  # 390's bucket, found by the counts
        run_sql(url, "UPDATE people SET visits = visits + 1 WHERE id % 5 = 0")
        asked.clear()
        result = scan([spec], index=idx, detector=detector, settings=settings)
        assert result.ok, result.errors
        assert (result.containers[0].read, result.containers[0].records, len(asked)) == ("unchanged", 399, 1)
        asked.clear()
        again = scan([spec], index=idx, detector=detector, settings=settings)
        assert (again.containers[0].read, asked) == ("unchanged", [])
        full = Index(f"sqlite:///{tmp_path / 'full' / 'index.db'}", key=KEY)
        assert scan([spec], index=full, detector=detector, settings=dataclasses.replace(settings, full=True)).ok
        assert _findings(idx) == _findings(full)
        idx.close()
        full.close()
