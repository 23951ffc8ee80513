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

from connectors.base import KeyChanges, SourceSpec
from connectors.sql import SqlConnector, SqlTableReader
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


def _changes(url: str, since: str | None) -> KeyChanges:
    """What a rescan's reader finds: its version first, then where rows changed since ``since``."""
    connector = SqlConnector(SourceSpec(name="crm", url=url))
    try:
        ref = next(r for r in connector.containers() if r.name == "people")
        with connector.open(ref) as reader:
            assert reader.table_version() is not None
            return reader.changed_key_spans(since)
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
    found = _changes(people_db, token)
    assert found.spans is not None
    assert (sorted(found.spans), found.rows) == ([(17, 17), (52, 52), (451, 451), (900, 900)], 600)
    assert found.token != token
    # Nothing written since the new token: no key.
    assert _changes(people_db, found.token).spans == []


def test_a_token_that_cannot_be_compared_gives_no_spans(people_db: str) -> None:
    token = _changes(people_db, None).token
    assert token is not None
    *head, xid = token.split(":")
    wrapped = ":".join([*head, str(int(xid) - 2**31)])  # more than 2**31 transactions ago
    assert _changes(people_db, wrapped) == KeyChanges(_changes(people_db, None).token)
    assert _changes(people_db, "pages-of-another-database").spans is None
    # The table dropped and made again (a restore): another oid, so its rows' ids say nothing.
    run_sql(people_db, f"DROP TABLE people;\n{TABLE}")
    assert _changes(people_db, token).spans is None


def _asked(monkeypatch: pytest.MonkeyPatch) -> tuple[list[set[int] | None], list[int]]:
    """The buckets each ``range_fingerprints`` call asks for, and the ``bucket_rows`` calls."""
    asked: list[set[int] | None] = []
    counted: list[int] = []
    fingerprints, rows = SqlTableReader.range_fingerprints, SqlTableReader.bucket_rows

    def recording(self: SqlTableReader, *args: Any, **kwargs: Any) -> Any:
        buckets = kwargs.get("buckets")
        asked.append(None if buckets is None else set(buckets))
        return fingerprints(self, *args, **kwargs)

    def counting(self: SqlTableReader, width: int) -> dict[int, int]:
        counted.append(width)
        return rows(self, width)

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


def test_the_buckets_asked_for_have_the_fingerprints_of_the_grouped_query() -> None:
    """PostgreSQL's buckets asked for (joined to the table by key) against every bucket's
    (one grouped query): the same fingerprints, negative keys and NULLs included."""
    rows = ",\n".join(
        f"({k}, {'NULL' if k % 7 == 0 else repr(f'p{k}@example.com')}, {'NULL' if k % 3 else repr(f'Name {k}')})"
        for k in range(-40, 260, 3)
    )
    with postgres_database(prefix="joinedbuckets") as url:
        run_sql(
            url, f"CREATE TABLE t (id bigint PRIMARY KEY, email text, full_name text);\nINSERT INTO t VALUES {rows}"
        )
        connector = SqlConnector(SourceSpec(name="crm", url=url))
        try:
            with connector.open(next(r for r in connector.containers() if r.name == "t")) as reader:
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
