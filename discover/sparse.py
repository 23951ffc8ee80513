"""Sparse fields: filled on too few records for the profiling sample to hold a value of them.

A notes column written on 3 rows of 20,000, or a JSON key present in one record of a log, is
empty in a random sample of 200 records. Its profile says "no values in sample" and the scan
would never read it, so an export would miss the subject's data in it while saying it looked
everywhere. Such fields are profiled again from values found past the sample:

- a table is asked for rows that hold a value in those columns (``ContainerReader.sparse_sample``),
  right after the sample, before its key ranges are planned;
- a file or object is read whole anyway: a ``FieldCensus`` watches its records as they are
  extracted and keeps the first values of every field the profile did not decide (a key the
  sample never saw included). Fields that turn out to hold personal data are then read in a
  second pass of that container, for those fields only. A first or last name found only then is
  indexed as a name part: the pairing of first and last names is the first pass's.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

from connectors.base import Columns, ContainerReader, FieldInfo, Record
from discover.extract import value_texts
from discover.profile import NO_VALUES, FieldProfile, Profiler, may_hold_identifiers

#: Fields a census follows at most, per container: JSON whose keys are data (an object keyed by
#: user id) has no end of paths, each seen once.
MAX_FIELDS = 500

_SPARSE = "a sparse field, profiled from records that hold a value"


def undecided(profiles: Mapping[str, FieldProfile], types: Mapping[str, str]) -> list[str]:
    """The fields the sample held no value of and that could hold an identifier. A JSON column
    whose values the sample held as paths (``meta.email``) had values: it is not one of them."""
    parents = {p.split(".", 1)[0].split("[", 1)[0] for p in profiles if "." in p or "[" in p}
    return [
        f
        for f, p in profiles.items()
        if p.reason == NO_VALUES and f not in parents and may_hold_identifiers(f, types.get(f, "text"))
    ]


class FieldCensus:
    """Up to ``size`` non-empty values of each field not in ``decided``, the first ones read.

    Memory: ``size`` values for each of at most ``MAX_FIELDS`` fields; a record whose fields are
    all decided (or already have their values) costs one set difference of its keys.
    """

    def __init__(self, decided: Iterable[str], size: int) -> None:
        #: Fields that need no more values: decided by the profile, or full.
        self.done = set(decided)
        self.size = size
        self.values: dict[str, list[Any]] = {}
        #: Fields seen past ``MAX_FIELDS``: not followed.
        self.unfollowed = 0

    def add(self, records: Iterable[Record]) -> None:
        done = self.done
        for record in records:
            extra = record.values.keys() - done
            if extra:
                self._take(record.values, extra)

    def _take(self, values: Mapping[str, Any], fields: Iterable[str]) -> None:
        for name in fields:
            value = values[name]
            if not value_texts(value):
                continue
            kept = self.values.get(name)
            if kept is None:
                if len(self.values) >= MAX_FIELDS:
                    self.done.add(name)
                    self.unfollowed += 1
                    continue
                kept = self.values[name] = []
            kept.append(value)
            if len(kept) >= self.size:
                self.done.add(name)

    def unfollowed_note(self) -> str:
        """What the container's summary says of the fields not followed (``unfollowed``)."""
        return (
            f"{self.unfollowed:,} field(s) with no value in the profiling sample were not looked for further "
            f"(more than {MAX_FIELDS}: keys that are data, such as ids, make a path each); not scanned"
        )

    def watched(self, reader: ContainerReader, batch_size: int, fields: Sequence[str]) -> Iterator[Columns]:
        """``reader``'s records as batches of ``fields``' columns (as ``column_batches`` gives
        them for a container read whole), each batch counted first. Memory: one batch."""
        for batch in reader.batches(batch_size):
            self.add(batch)
            yield Columns.from_records(batch, fields)

    def profiles(
        self, profiler: Profiler, before: Mapping[str, FieldProfile], known: Sequence[FieldInfo] = ()
    ) -> dict[str, FieldProfile]:
        """Profiles of the fields it holds values of, drawn from those values; ``before``: the
        sample's profiles (a field's share of nulls there is kept: the sample's is the fair one).
        A field the sample did not know is kept only if it holds personal data: the others would
        make the container's profile, and so its incremental signature, depend on which records
        were read past the sample."""
        types = {str(f.name): f.type for f in known}
        out = {}
        for name, kept in self.values.items():
            drawn = profiler.profile_field(name, types.get(name, "text"), [Record("", {name: v}) for v in kept])
            if not drawn.is_pii and name not in before:
                continue
            out[name] = replace(
                drawn,
                null_share=before[name].null_share if name in before else 1.0,
                reason=f"{drawn.reason}; {_SPARSE}",
            )
        return out


def profile_sparse(
    reader: ContainerReader,
    profiler: Profiler,
    profiles: dict[str, FieldProfile],
    known: Sequence[FieldInfo],
    *,
    size: int,
) -> dict[str, FieldProfile]:
    """``profiles`` with the fields the sample left empty profiled again from records that hold
    a value (``ContainerReader.sparse_sample``; readers of whole containers answer none: their
    census does it); ``known``: the reader's fields. Memory: up to ``size`` records per such field."""
    fields = undecided(profiles, {str(f.name): f.type for f in known})
    if not fields:
        return profiles
    census = FieldCensus((f for f in profiles if f not in fields), size)
    census.add(reader.sparse_sample(fields, size))
    if census.unfollowed:
        reader.notes.append(census.unfollowed_note())
    return {**profiles, **census.profiles(profiler, profiles, known)}
