"""SQLite bucket fingerprints (``SqlTableReader.range_fingerprints``): the buckets asked for by
a rescan are read by joining them to the table, one range or a few ranges at a time (a scan
spreads ranges over its worker processes); each must give exactly the fingerprint that the
range's grouped query gives, or an unchanged bucket would be read again for nothing (or, were
they ever to agree on a different row, a changed one missed)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.base import SourceSpec, connect

values = st.one_of(
    st.none(), st.text(max_size=12), st.integers(-3, 3), st.floats(allow_nan=False, width=32), st.binary(max_size=4)
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.dictionaries(st.integers(-120, 400), st.tuples(values, values), max_size=150),
    width=st.sampled_from([1, 3, 5]),
    per=st.integers(1, 6),
    data=st.data(),
)
def test_buckets_asked_for_match_the_grouped_fingerprints(
    tmp_path: Path, rows: dict[int, Any], width: int, per: int, data: Any
) -> None:
    db = tmp_path / "t.db"
    db.unlink(missing_ok=True)
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, email TEXT, note)")
        conn.executemany("INSERT INTO t VALUES (?, ?, ?)", [(k, *v) for k, v in rows.items()])
    step = width * per
    with (
        connect(SourceSpec(name="crm", url=f"sqlite:///{db}")) as connector,
        connector.open(next(r for r in connector.containers() if r.name == "t")) as reader,
    ):
        whole = reader.range_fingerprints(step, None, ["email"], width=width)
        assert len(whole) == len({k // width for k in rows})  # one per bucket that holds rows
        asked = data.draw(st.sets(st.integers(-130 // width, 410 // width)))
        some = reader.range_fingerprints(step, None, ["email"], width=width, buckets=asked)
        assert some == {b: p for b, p in whole.items() if b in asked}
        ranges = data.draw(st.sets(st.integers(-130 // step, 410 // step)))
        shared = reader.range_fingerprints(step, None, ["email"], width=width, buckets=asked, ranges=ranges)
        assert shared == {b: p for b, p in some.items() if b // per in ranges}
        by_range = reader.range_fingerprints(step, None, ["email"], width=width, ranges=ranges)
        assert by_range == {b: p for b, p in whole.items() if b // per in ranges}
        if rows:  # a changed value changes its bucket's fingerprint, and only its bucket's
            key = data.draw(st.sampled_from(sorted(rows)))
            with sqlite3.connect(db) as conn:
                conn.execute("UPDATE t SET email = coalesce(email, '') || 'x' WHERE id = ?", (key,))
            after = reader.range_fingerprints(step, None, ["email"], width=width, buckets={key // width})
            assert after[key // width] != whole[key // width]


def test_a_table_named_like_the_bucket_list_is_fingerprinted(tmp_path: Path) -> None:
    """The buckets asked for are a list named ``piiport_r`` in the statement: a table of that name
    must not take its place."""
    db = tmp_path / "t.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE piiport_r (id INTEGER PRIMARY KEY, email TEXT)")
        conn.executemany("INSERT INTO piiport_r VALUES (?, ?)", [(k, f"p{k}@example.org") for k in range(40)])
    with (
        connect(SourceSpec(name="crm", url=f"sqlite:///{db}")) as connector,
        connector.open(next(r for r in connector.containers() if r.name == "piiport_r")) as reader,
    ):
        whole = reader.range_fingerprints(20, None, ["email"], width=5)
        assert reader.range_fingerprints(20, None, ["email"], width=5, buckets={1, 2, 6}) == {
            b: whole[b] for b in (1, 2, 6)
        }
