"""Masked examples merged from consecutive parts (key ranges) are those of one read of them all,
wherever the parts are cut (a rescan keeps its first scan's ranges; a new full scan cuts others)."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from discover.extract import FieldStats

# E-mails whose masks collide (the first letter and the domain's), after a run of alike ones:
# the examples that matter are those near the 200th try.
VALUES = st.builds(
    lambda run, rest: ["a1@x.fr"] * run + rest,
    st.integers(0, 400),
    st.lists(st.sampled_from(["a1@x.fr", "a2@x.fr", "b1@x.fr", "b2@y.fr", "c@x.fr", "d@z.fr"]), max_size=300),
)


def _read(values: list[str]) -> FieldStats:
    """One part read: a hit per value, an example tried while the field wants one (as the extractor does)."""
    stats = FieldStats()
    for value in values:
        stats.hits[("email", "EMAIL_ADDRESS")] += 1
        if stats.wants_example("email", "EMAIL_ADDRESS"):
            stats.add_example("email", "EMAIL_ADDRESS", value)
    return stats


@settings(max_examples=300, deadline=None)
@given(values=VALUES, cuts=st.lists(st.integers(0, 700), max_size=6))
def test_parts_merged_give_the_examples_of_one_read(values: list[str], cuts: list[int]) -> None:
    bounds = sorted({0, len(values), *(c for c in cuts if c <= len(values))})
    merged = FieldStats()
    for low, high in itertools.pairwise(bounds):
        merged.merge(_read(values[low:high]))
    whole = _read(values)
    key = ("email", "EMAIL_ADDRESS")
    assert merged.examples.get(key, []) == whole.examples.get(key, [])
    assert merged.hits.get(key, 0) == whole.hits.get(key, 0)
