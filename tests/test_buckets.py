"""Counts per key bucket (``discover.buckets``): the fast path derives them from one extraction
of each batch; the reference extracts every bucket on its own. They must agree on every count,
on where each field's masked examples were settled, and on the findings kept."""

from __future__ import annotations

from collections import Counter
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.base import Columns, encode_int_key
from discover.buckets import (
    ABSENT,
    BUCKETS_PER_RANGE,
    BucketedExtractor,
    BucketTable,
    _b64,
    bucket_width,
    buckets_in,
    counter_name,
    dump_prints,
    load_prints,
)
from discover.extract import Extractor, FieldStats
from discover.profile import FieldProfile

PROFILES = {
    "first_name": FieldProfile("first_name", "PERSON", name_part="first"),
    "last_name": FieldProfile("last_name", "PERSON", name_part="last"),
    "email": FieldProfile("email", "EMAIL_ADDRESS"),
    "phone": FieldProfile("phone", "PHONE_NUMBER", phone_digits=True),
    "nick": FieldProfile("nick", "PERSON", name_part="full"),
    "ips": FieldProfile("ips", "IP_ADDRESS"),
}
REGIONS = ("FR", "GB")

# Few distinct values, so masked examples look alike and settle late (after many tries).
emails = st.sampled_from(
    [None, "", "  ", "a@x.example", "b@x.example", "not an e-mail", "c.d@y.example", "A@X.example"]
)
phones = st.sampled_from([None, "+33 6 12 34 56 78", "06 12 34 56 79", "12345678", "n/a", "+44 20 7946 0018", ""])
names = st.sampled_from([None, "", "Alice", "Bruno", " Chloé ", "Émile"])
ips = st.one_of(
    st.sampled_from([None, "10.0.0.1", "999.1.1.1", ""]),
    st.lists(st.sampled_from(["10.0.0.2", "192.168.1.1", "x", ""]), max_size=3),
    st.integers(0, 5),
)


@st.composite
def tables(draw: Any) -> tuple[list[int], dict[str, list[Any]], int, int]:
    keys = sorted(draw(st.sets(st.integers(-60, 400), min_size=1, max_size=120)))
    values = {
        "first_name": [draw(names) for _ in keys],
        "last_name": [draw(names) for _ in keys],
        "email": [draw(emails) for _ in keys],
        "phone": [draw(phones) for _ in keys],
        "nick": [draw(names) for _ in keys],
        "ips": [draw(ips) for _ in keys],
    }
    return keys, values, draw(st.integers(1, 12)), draw(st.integers(1, 40))


def _batches(keys: list[int], values: dict[str, list[Any]], size: int) -> list[Columns]:
    return [
        Columns([encode_int_key(k) for k in keys[i : i + size]], {f: v[i : i + size] for f, v in values.items()})
        for i in range(0, len(keys), size)
    ]


def _reference(batches: list[Columns], width: int) -> tuple[dict[int, dict[str, int]], dict[Any, int], Counter[str]]:
    """Each bucket extracted on its own, sharing the masked examples: the definition."""
    ex = Extractor(PROFILES, None, regions=REGIONS, language="en")
    shared = ex.stats
    rows: dict[int, dict[str, int]] = {}
    stops: dict[Any, int] = {}
    findings: Counter[str] = Counter()
    for cols in batches:
        numbers = [int(k[1:-1]) for k in cols.keys]
        i = 0
        while i < len(numbers):
            bucket = numbers[i] // width
            j = i
            while j < len(numbers) and numbers[j] // width == bucket:
                j += 1
            piece = Columns(cols.keys[i:j], {f: v[i:j] for f, v in cols.values.items()})
            ex.stats = FieldStats(examples=shared.examples, _tries=shared._tries)
            groups = ex.extract_columns(piece)
            counted, ex.stats = ex.stats, shared
            for pair in list(shared._tries):
                if pair not in stops and not shared.wants_example(*pair):
                    stops[pair] = bucket
            row = rows.setdefault(bucket, {})
            row["r"] = row.get("r", 0) + len(piece)
            for fname, n in counted.non_null.items():
                name = counter_name("n", fname)
                row[name] = row.get(name, 0) + n
            for (fname, etype), n in counted.hits.items():
                name = counter_name("h", fname, etype)
                row[name] = row.get(name, 0) + n
            for g in groups:
                name = counter_name("e", g.entity_type)
                row[name] = row.get(name, 0) + len(g.keys)
                findings.update(f"{g.field}|{g.entity_type}|{k}" for k in g.keys)
            i = j
    return rows, stops, findings


def _as_rows(table: BucketTable) -> dict[int, dict[str, int]]:
    out: dict[int, dict[str, int]] = {}
    for i, bucket in enumerate(table.ids.tolist()):
        row = {n: int(v) for n, v in zip(table.names, table.counts[i].tolist(), strict=True) if v != ABSENT}
        out[bucket] = row
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables())
def test_counts_per_bucket_match_extracting_each_bucket_alone(table: Any) -> None:
    keys, values, width, size = table
    batches = _batches(keys, values, size)
    want_rows, want_stops, want_findings = _reference(batches, width)
    plain = Extractor(PROFILES, None, regions=REGIONS, language="en")
    bucketed = BucketedExtractor(Extractor(PROFILES, None, regions=REGIONS, language="en"), width)
    found: Counter[str] = Counter()
    for cols in batches:
        # The fast path's findings are the unsliced extraction's, group for group.
        groups = bucketed.extract_columns(cols)
        assert groups == plain.extract_columns(cols)
        found.update(f"{g.field}|{g.entity_type}|{k}" for g in groups for k in g.keys)
    got = bucketed.table()
    assert got is not None, "the derived counts disagreed with the extractor's totals"
    # Zero counts of entity types never found in a bucket are not kept (as in a full scan's totals).
    want = {b: {n: v for n, v in row.items() if v or not n.startswith("e\x1f")} for b, row in want_rows.items()}
    assert _as_rows(got) == want
    assert bucketed.stops == want_stops
    assert found == want_findings
    assert bucketed.stats.examples == plain.stats.examples
    assert dict(bucketed.stats.hits) == dict(plain.stats.hits)


@settings(max_examples=60, deadline=None)
@given(tables(), st.data())
def test_kept_buckets_give_their_own_counts_and_findings(table: Any, data: Any) -> None:
    keys, values, width, size = table
    batches = _batches(keys, values, size)
    every = {k // width for k in keys}
    kept = data.draw(st.sets(st.sampled_from(sorted(every))))
    want_rows, want_stops, want_findings = _reference(batches, width)
    bucketed = BucketedExtractor(
        Extractor(PROFILES, None, regions=REGIONS, language="en"), width, keep=kept.__contains__
    )
    found: Counter[str] = Counter()
    for cols in batches:
        found.update(f"{g.field}|{g.entity_type}|{k}" for g in bucketed.extract_columns(cols) for k in g.keys)
    got = bucketed.table()
    assert got is not None
    want = {
        b: {n: v for n, v in row.items() if v or not n.startswith("e\x1f")} for b, row in want_rows.items() if b in kept
    }
    assert _as_rows(got) == want
    assert bucketed.stops == want_stops  # examples settle over every bucket read, kept or not
    assert found == Counter({f: n for f, n in want_findings.items() if int(f.rsplit("[", 1)[1][:-1]) // width in kept})
    assert bucketed.records == sum(1 for k in keys if k // width in kept)


def test_table_survives_a_round_trip_and_patching() -> None:
    a = BucketTable(["r", "x"], *_arrays([1, 2, 3], [[5, 1], [5, ABSENT], [4, 2]]))
    b = BucketTable(["r", "y"], *_arrays([2], [[6, 7]]))
    patched = a.without([2]).combined(b)
    assert patched.ids.tolist() == [1, 2, 3]
    assert patched.totals() == {"r": 15, "x": 3, "y": 7}
    again = BucketTable.loads(patched.dumps())
    assert again.names == patched.names and again.ids.tolist() == [1, 2, 3]
    assert again.counts.tolist() == patched.counts.tolist()


def test_bucket_width_divides_the_range() -> None:
    for step in (1, 7, 60, 1000, 25_000, 25_001, 10**6):
        width = bucket_width(step)
        assert step % width == 0 and width >= 1


def _arrays(ids: list[int], rows: list[list[int]]) -> tuple[Any, Any]:
    import numpy as np

    return np.array(ids, dtype=np.int64), np.array(rows, dtype=np.int64)


_INT64 = st.integers(-(2**63), 2**63 - 1)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(_INT64, _INT64, max_size=300))
def test_bucket_prints_are_written_as_before_and_read_back(prints: dict[int, int]) -> None:
    """``dump_prints`` fills its arrays with numpy: the text must be what sorting the buckets in
    Python wrote (summaries already stored are compared against it), and read back the same."""
    import numpy as np

    ids = sorted(prints)
    written = {
        "ids": _b64(np.array(ids, dtype=np.int64)),
        "hashes": _b64(np.array([prints[b] for b in ids], dtype=np.int64)),
    }
    assert dump_prints(prints) == written
    assert load_prints(dump_prints(prints)) == prints


spans = st.lists(st.tuples(st.integers(-(2**62), 2**62), st.integers(0, 40)).map(lambda s: (s[0], s[0] + s[1])))


@given(spans, st.integers(1, 7))
def test_the_buckets_spans_reach_into_are_those_of_each_key(found: list[tuple[int, int]], width: int) -> None:
    expected = {key // width for low, high in found for key in range(low, high + 1)}
    many = sum(high // width - low // width + 1 for low, high in found)  # with repeats
    assert buckets_in(found, width, limit=many) == expected
    assert buckets_in(found, width, limit=many - 1) is None if many else buckets_in(found, width, limit=0) == set()


def test_spans_that_reach_into_too_many_buckets_are_not_enumerated() -> None:
    """A row with a far key makes its page span a gap of 2**62 keys or more; counted exactly."""
    assert buckets_in([(1, 9), (30_000, 2**62)], 5, limit=4_000_000) is None
    assert buckets_in([(-(2**63), 2**63 - 1)], 1, limit=10) is None
    assert buckets_in([(2**62, 2**62 + 2_998)], 1, limit=2_999) == set(range(2**62, 2**62 + 2_999))
    assert buckets_in([(1, 9), (30_000, 30_009)], 5, limit=4) == {0, 1, 6000, 6001}
    assert buckets_in([(9, 1), (2**63 - 1, -(2**63))], 1, limit=0) == set()  # the wrong way round: none


def _reference_width(step: int, ranges: int = 1) -> int:
    """``bucket_width`` as it was: widths counted up until one divides the step."""
    per_range = max(1, min(BUCKETS_PER_RANGE, 4_000_000 // max(1, ranges)))
    width = max(1, -(-step // per_range))
    while step % width:
        width += 1
    return width


@given(st.integers(1, 10**7) | st.integers(1, 10**4).map(lambda n: n * 5_000), st.integers(1, 2_000))
def test_bucket_width_is_the_smallest_divisor_of_the_step_that_is_wide_enough(step: int, ranges: int) -> None:
    assert bucket_width(step, ranges) == _reference_width(step, ranges)


def test_the_bucket_width_of_sparse_keys_is_found_at_once() -> None:
    """Keys spread over 2**62 give ranges of about 2**59 keys: a prime step has no divisor but
    itself and 1 (one bucket a range), and each width is tried at most once."""
    for step in (2**62 // 7, 2**61 - 1, 2_562_047_788_015_215_001, 10**18 + 9):
        width = bucket_width(step, 2)
        assert step % width == 0 and step // width <= BUCKETS_PER_RANGE
    assert bucket_width(2**61 - 1, 2) == 2**61 - 1  # a Mersenne prime
