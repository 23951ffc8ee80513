"""A rescan re-reads a key range's changed buckets (``KeyBuckets``): narrow buckets are asked for
key by key (``key IN (…)``), wide ones by bucket number. Both ways must give exactly the rows
whose key falls in the buckets, in key order, for negative keys too (bucket ``key // width``
floors, SQL division truncates), whatever the page size of the keyset pagination."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from servers import mariadb_database, postgres_database

from connectors import sql_pages
from connectors.base import ContainerRef, KeyBuckets, SourceSpec, connect, encode_int_key

_SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
CASES = st.tuples(
    # Where the keys lie: near 0, or far beyond 2**53 (Snowflake-style ids), where a bucket
    # computed in double precision takes its neighbours' keys too.
    st.sampled_from([0, 1_800_000_000_000_000_000, -(2**62)]),
    st.lists(st.integers(-300, 300), min_size=1, max_size=120, unique=True),  # the table's keys
    st.integers(1, 7),  # width
    st.lists(st.integers(-60, 60), min_size=1, max_size=30, unique=True),  # buckets asked for
    st.integers(-300, 300),  # the range's start
    st.integers(1, 600),  # its length
    st.integers(1, 9),  # keyset page size
)


def _load(url: str, keys: list[int]) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS t"))
        conn.execute(text("CREATE TABLE t (k BIGINT PRIMARY KEY, email VARCHAR(40))"))
        conn.execute(
            text("INSERT INTO t (k, email) VALUES (:k, :e)"), [{"k": k, "e": f"p{k}@example.org"} for k in keys]
        )
    engine.dispose()


def _check(url: str, monkeypatch: pytest.MonkeyPatch, case: tuple[Any, ...]) -> None:
    base, offsets, width, near, low, length, page = case
    keys = [base + k for k in offsets]
    buckets = [base // width + b for b in near]
    start = base + low
    _load(url, keys)
    unit = KeyBuckets(start, start + length, width, tuple(sorted(buckets)))
    expected = [k for k in sorted(keys) if start <= k < start + length and k // width in buckets]
    want = ([encode_int_key(k) for k in expected], [f"p{k}@example.org" for k in expected])
    for listed in (sql_pages.LISTED_KEYS, 0):  # key by key, then by bucket number
        monkeypatch.setattr(sql_pages, "LISTED_KEYS", listed)
        with connect(SourceSpec(name="db", url=url)) as conn, conn.open(ContainerRef("db", "t", "table")) as reader:
            batches = list(reader.column_batches(page, ["email"], unit=unit))
        got = ([k for b in batches for k in b.keys], [v for b in batches for v in b.values["email"]])
        assert got == want, f"LISTED_KEYS={listed}"


@pytest.fixture(scope="module")
def sqlite_url() -> Iterator[str]:
    with tempfile.TemporaryDirectory() as tmp:
        yield f"sqlite:///{Path(tmp) / 'buckets.db'}"


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    with postgres_database() as url:
        yield url


@pytest.fixture(scope="module")
def mariadb_url() -> Iterator[str]:
    with mariadb_database() as url:
        yield url


@_SETTINGS
@given(CASES)
def test_sqlite_bucket_reads(sqlite_url: str, monkeypatch: pytest.MonkeyPatch, case: tuple[Any, ...]) -> None:
    _check(sqlite_url, monkeypatch, case)


@pytest.mark.servers
@_SETTINGS
@given(CASES)
def test_postgres_bucket_reads(postgres_url: str, monkeypatch: pytest.MonkeyPatch, case: tuple[Any, ...]) -> None:
    _check(postgres_url, monkeypatch, case)


@pytest.mark.servers
@_SETTINGS
@given(CASES)
def test_mariadb_bucket_reads(mariadb_url: str, monkeypatch: pytest.MonkeyPatch, case: tuple[Any, ...]) -> None:
    _check(mariadb_url, monkeypatch, case)
