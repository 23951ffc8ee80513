"""One name per record: the key each read path of a table gives a record is the key the export
fetches it by. The scan's fast path (integers through the driver's cursor) writes keys
without ``json.dumps``; if they differed from ``encode_key``'s, the index would hold record
hashes that no export finds again, silently.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from servers import postgres_database

from connectors.base import ContainerRef, SourceSpec, connect, encode_int_key, encode_key

# Keys a person would not expect to work: quotes, brackets, backslashes, non-Latin letters,
# emoji, trailing spaces. NUL is the only character PostgreSQL text cannot hold.
_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=12)
_INT = st.integers(min_value=-(2**62), max_value=2**62)
KEYS = st.one_of(
    st.tuples(st.just("int"), st.lists(_INT, min_size=1, max_size=8, unique=True)),
    st.tuples(st.just("text"), st.lists(_TEXT, min_size=1, max_size=8, unique=True)),
    st.tuples(st.just("pair"), st.lists(st.tuples(_INT, _TEXT), min_size=1, max_size=8, unique=True)),
)
_COLUMNS = {"int": ("k BIGINT", "k"), "text": ("k TEXT", "k"), "pair": ("a BIGINT, b TEXT", "a, b")}
_SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _load(url: str, kind: str, keys: list[Any]) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS t"))
        columns, key = _COLUMNS[kind]
        conn.execute(text(f"CREATE TABLE t ({columns}, email TEXT, amount NUMERIC(10, 2), PRIMARY KEY ({key}))"))
        params = ":a, :b" if kind == "pair" else ":k"
        rows = [
            {**({"a": k[0], "b": k[1]} if kind == "pair" else {"k": k}), "email": f"p{i}@example.org", "amount": i}
            for i, k in enumerate(keys)
        ]
        conn.execute(text(f"INSERT INTO t ({key}, email, amount) VALUES ({params}, :email, :amount)"), rows)
    engine.dispose()


def _keys_by_path(url: str) -> dict[str, list[str]]:
    """The keys of every row, as each read path names them, and as ``fetch`` returns them."""
    with connect(SourceSpec(name="db", url=url)) as conn, conn.open(ContainerRef("db", "t", "table")) as reader:
        paths = {
            # text columns only: integer keys go through the driver's cursor
            "scan, driver": [k for cols in reader.column_batches(3, ["email"]) for k in cols.keys],
            # a decimal column: SQLAlchemy's rows
            "scan, rows": [k for cols in reader.column_batches(3, ["email", "amount"]) for k in cols.keys],
            "records": [r.key for batch in reader.batches(3) for r in batch],
        }
        paths["fetch"] = [key for key, _ in reader.fetch(paths["scan, driver"])]
    return {name: sorted(keys) for name, keys in paths.items()}


def _check(url: str, kind: str, keys: list[Any]) -> None:
    _load(url, kind, keys)
    expected = sorted(encode_key(list(k) if kind == "pair" else [k]) for k in keys)
    assert _keys_by_path(url) == dict.fromkeys(("scan, driver", "scan, rows", "records", "fetch"), expected)


@pytest.fixture(scope="module")
def sqlite_url() -> Iterator[str]:
    with tempfile.TemporaryDirectory() as tmp:
        yield f"sqlite:///{Path(tmp) / 'keys.db'}"


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    with postgres_database() as url:
        yield url


@_SETTINGS
@given(KEYS)
def test_every_read_path_keys_a_sqlite_record_alike(sqlite_url: str, case: tuple[str, list[Any]]) -> None:
    _check(sqlite_url, *case)


@pytest.mark.servers
@_SETTINGS
@given(KEYS)
def test_every_read_path_keys_a_postgres_record_alike(postgres_url: str, case: tuple[str, list[Any]]) -> None:
    _check(postgres_url, *case)


@given(st.integers())
def test_the_fast_integer_key_is_encode_key(key: int) -> None:
    assert encode_int_key(key) == encode_key([key])
