"""Key buckets: short runs of keys inside a key range, the grain at which a rescan finds and
re-reads changed records.

A table kept by key ranges (``discover.incremental``) is also cut into buckets of ``width``
consecutive key values (bucket ``key // width``, about ``BUCKETS_PER_RANGE`` per range). The
database fingerprints each bucket (``SqlTableReader.range_fingerprints(width=…)``); a unit
counts, per bucket, what it extracted (:class:`BucketTable`: records, non-null values and hits
per field, findings per entity type); and each range remembers, per field and entity type, the
bucket where its masked examples were settled (``stops``). A rescan then re-reads only a
range's changed buckets, plus its first buckets as far as its examples reach, keeps the other
buckets' counts, and hides the changed buckets' old findings (``hidden_buckets`` in the index).

Updates spread at random touch most ranges but few buckets: with 5 keys a bucket, 1% of the
rows updated means about 5% of the buckets read again (with 10 keys, 10%: narrower buckets read
fewer rows again but make bigger summaries; 5 was the faster on a million-row table).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from connectors.base import Columns
from discover.extract import STR_OR_NONE, Extractor, FieldStats, FindingGroup, has_text
from discover.identifiers import PERSON, PHONE, PHONE_DIGITS
from discover.name_fields import name_columns

#: About this many buckets per key range.
BUCKETS_PER_RANGE = 5_000
_SEP = "\x1f"
#: In a :class:`BucketTable`, a counter the bucket's extraction never touched (not the same as 0:
#: a field read with no hit still shows in the inventory, with 0 records).
ABSENT = -1


#: Buckets of one table at most: the scanning process holds each one's fingerprint while it
#: plans the table (about 100 bytes each), so a very large table gets wider buckets.
MAX_BUCKETS = 4_000_000


def bucket_width(step: int, ranges: int = 1) -> int:
    """The key width of the buckets of a table of ``ranges`` ranges of ``step`` keys: a divisor
    of ``step``, about ``BUCKETS_PER_RANGE`` buckets a range, ``MAX_BUCKETS`` in all at most."""
    per_range = max(1, min(BUCKETS_PER_RANGE, MAX_BUCKETS // max(1, ranges)))
    least = max(1, -(-step // per_range))
    # The smallest divisor of ``step`` from ``least`` up is ``step // k`` for the largest ``k``
    # dividing it up to ``step // least`` (at most ``per_range`` tries): counting widths up from
    # ``least`` never ended for the steps of sparse keys (a range of 2**59 keys).
    return next(step // k for k in range(step // least, 0, -1) if step % k == 0)


def buckets_in(spans: Sequence[tuple[int, int]], width: int, *, limit: int) -> set[int] | None:
    """The buckets of ``width`` keys that the key spans (``low``, ``high``, both in) reach into
    (numpy: a rescan's pages give tens of thousands of spans, each a few buckets), counted with
    repeats; None when there are more than ``limit`` (counted first, exactly: a span may cover
    2**64 keys). A span the wrong way round holds none."""
    import numpy as np

    ends = np.asarray(spans, dtype=np.int64).reshape(-1, 2) // width
    ends = ends[ends[:, 0] <= ends[:, 1]]
    # Each span's buckets less one, unsigned (exact between any two 64-bit keys), capped before the sum.
    more = ends[:, 1].astype(np.uint64) - ends[:, 0].astype(np.uint64)
    if int(np.minimum(more, np.uint64(limit)).sum()) + len(ends) > limit:
        return None
    counts = more.astype(np.int64) + 1
    starts = np.repeat(ends[:, 0] - (np.cumsum(counts) - counts), counts)
    return set(np.unique(starts + np.arange(int(counts.sum()), dtype=np.int64)).tolist())


def print_hash(text: str) -> int:
    """A bucket's fingerprint (as the database gave it) in 8 bytes, to keep and compare."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big", signed=True)


def counter_name(*parts: str) -> str:
    return _SEP.join(parts)


def split_name(name: str) -> list[str]:
    return name.split(_SEP)


@dataclass
class BucketTable:
    """Per bucket counters, as a matrix: ``counts[i, j]`` is counter ``names[j]`` of bucket
    ``ids[i]`` (``ABSENT`` when the bucket's extraction never touched it). Memory: 8 bytes per
    bucket and counter."""

    names: list[str]
    ids: Any  # numpy int64, sorted
    counts: Any  # numpy int64, (len(ids), len(names))

    def totals(self) -> dict[str, int]:
        """Each counter summed over the buckets; counters absent from every bucket left out."""
        out: dict[str, int] = {}
        for j, name in enumerate(self.names):
            col = self.counts[:, j]
            present = col >= 0
            if present.any():
                out[name] = int(col[present].sum())
        return out

    def without(self, drop: Collection[int]) -> BucketTable:
        import numpy as np

        keep = ~np.isin(self.ids, np.fromiter(drop, dtype=np.int64, count=len(drop)))
        return BucketTable(list(self.names), self.ids[keep], self.counts[keep])

    def combined(self, other: BucketTable) -> BucketTable:
        """Both tables' buckets (disjoint), in bucket order."""
        import numpy as np

        names = sorted(set(self.names) | set(other.names))
        counts = np.full((len(self.ids) + len(other.ids), len(names)), ABSENT, dtype=np.int64)
        column = {n: j for j, n in enumerate(names)}
        for table, rows in ((self, slice(0, len(self.ids))), (other, slice(len(self.ids), None))):
            for j, n in enumerate(table.names):
                counts[rows, column[n]] = table.counts[:, j]
        ids = np.concatenate([self.ids, other.ids])
        order = np.argsort(ids, kind="stable")
        return BucketTable(names, ids[order], counts[order])

    def dumps(self) -> dict[str, Any]:
        return {"names": self.names, "ids": _b64(self.ids), "counts": _b64(self.counts)}

    @classmethod
    def loads(cls, data: Mapping[str, Any]) -> BucketTable:

        ids = _unb64(data["ids"])
        counts = _unb64(data["counts"]).reshape(len(ids), len(data["names"]))
        return cls(list(data["names"]), ids, counts)


def sorted_prints(prints: Mapping[int, int]) -> tuple[Any, Any]:
    """Bucket numbers and their fingerprints as two int64 arrays in bucket order (numpy: a
    fifth of the time of sorting the buckets in Python, which a rescan's plan and commit
    waited on)."""
    import numpy as np

    ids = np.fromiter(prints.keys(), dtype=np.int64, count=len(prints))
    hashes = np.fromiter(prints.values(), dtype=np.int64, count=len(prints))
    order = np.argsort(ids, kind="stable")
    return ids[order], hashes[order]


def dump_prints(prints: Mapping[int, int]) -> dict[str, str]:
    """Bucket fingerprints as two arrays in bucket order."""
    ids, hashes = sorted_prints(prints)
    return {"ids": _b64(ids), "hashes": _b64(hashes)}


def range_print(prints: Mapping[int, int]) -> str:
    """A key range's fingerprint from its buckets': a hash of their numbers and fingerprints as
    64-bit pairs in bucket order (a twentieth of the time of writing them as text, which every
    changed range paid while both workers waited for the plan). Ranges kept from a scan before
    this form compare as changed once; their buckets' own fingerprints then show that nothing
    in them changed."""
    import numpy as np

    ids, hashes = sorted_prints(prints)
    pairs = np.empty((len(ids), 2), dtype="<i8")
    pairs[:, 0] = ids
    pairs[:, 1] = hashes
    return "b:" + hashlib.blake2b(pairs.tobytes(), digest_size=16).hexdigest()


def load_prints(data: Mapping[str, str]) -> dict[int, int]:
    return dict(zip(_unb64(data["ids"]).tolist(), _unb64(data["hashes"]).tolist(), strict=True))


#: Integer widths an array is kept in, narrowest first (``_b64``).
_WIDTHS = ("i1", "i2", "i4")


def _b64(array: Any) -> str:
    """An integer array as text: compressed, in the narrowest integer width that holds it (a
    bucket's counts fit in a byte: an eighth of the bytes to compress and to read back),
    ``"i1:…"``; 64-bit ones without a prefix, as summaries were written before."""
    import zlib

    import numpy as np

    width = "i8"
    if array.size:
        low, high = int(array.min()), int(array.max())
        width = next((w for w in _WIDTHS if np.iinfo(w).min <= low and high <= np.iinfo(w).max), "i8")
    text = base64.b64encode(zlib.compress(array.astype("<" + width).tobytes(), 1)).decode()
    return text if width == "i8" else f"{width}:{text}"


def _unb64(text: str) -> Any:
    import zlib

    import numpy as np

    width, _, data = text.rpartition(":")  # base64 has no ":"
    return np.frombuffer(zlib.decompress(base64.b64decode(data)), dtype="<" + (width or "i8")).astype(np.int64)


@dataclass(frozen=True)
class RangePatch:
    """What a unit re-reads of its key range: the buckets from the range's start through
    ``prefix_end`` (None: none), as far again as the ``needed`` fields' examples take to settle,
    then the ``changed`` buckets after. Only the changed buckets' findings and counts are kept."""

    width: int
    prefix_end: int | None
    changed: tuple[int, ...]
    needed: tuple[tuple[str, str], ...]


class BucketedExtractor:
    """Runs an extractor over batches in key order and counts what it found per bucket.

    The batch is extracted once, as without buckets; the counts per bucket are derived from
    its findings and values (records, non-null values, records with a hit, findings), and
    checked against the extractor's own totals for the batch: a mismatch (a rule this
    derivation does not know) leaves the unit without buckets (``broken``), and its range is
    read whole next time. ``keep`` says which buckets count (a rescan re-reads some buckets
    only for their examples): the others' findings and counts are dropped.
    Memory: one batch, and one row of counters per bucket kept.
    """

    def __init__(self, extractor: Extractor, width: int, keep: Callable[[int], bool] | None = None) -> None:
        self.extractor = extractor
        self.width = width
        self.keep = keep
        #: Per batch: its buckets kept, and per counter their values (``ABSENT``: not counted).
        self._chunks: list[tuple[Any, dict[str, Any]]] = []
        #: Per field and entity type, the bucket where its examples were settled (no more taken).
        self.stops: dict[tuple[str, str], int] = {}
        self.records = 0
        self.broken = False
        # Fields the extractor counts in every batch, hit or not (free text counts only hits).
        self._always = {(f, e) for f, e in extractor.typed.items()} | {(f, PERSON) for f in extractor.names}

    @property
    def stats(self) -> FieldStats:
        return self.extractor.stats

    def extract_columns(self, cols: Columns) -> list[FindingGroup]:
        import numpy as np

        stats = self.extractor.stats
        numbers = _numbers(cols.keys)
        batch = _Batch(numbers, self.width)
        non_null_before = dict(stats.non_null)
        hits_before = dict(stats.hits)
        tries_before = dict(stats._tries)
        wanting = {pair for pair in stats._tries if stats.wants_example(*pair)}
        groups = self.extractor.extract_columns(cols)
        counters: dict[str, Any] = {"r": batch.sizes}
        if not self.broken:
            self._count_non_null(cols, batch, counters, non_null_before)
            hit_numbers = self._count_hits(cols, groups, batch, counters, hits_before)
            self._settle(hit_numbers, tries_before, wanting)
            for g in groups:
                name = counter_name("e", g.entity_type)
                per = batch.count(numbers if g.keys == cols.keys else _numbers(g.keys))
                counters[name] = per if name not in counters else counters[name] + per
            for name, values in counters.items():
                if name.startswith("e" + _SEP):
                    values[values == 0] = ABSENT  # a type is counted where it was found
        if self.keep is None:
            self._chunks.append((batch.ids, counters))
            self.records += len(numbers)
            return groups
        kept = np.fromiter((self.keep(b) for b in batch.ids.tolist()), dtype=bool, count=len(batch.ids))
        self._chunks.append((batch.ids[kept], {n: v[kept] for n, v in counters.items()}))
        self.records += int(batch.sizes[kept].sum())
        wanted = set(batch.ids[kept].tolist())
        out = []
        for g in groups:
            mask = [n // self.width in wanted for n in _numbers(g.keys)]
            if any(mask):
                out.append(_select(g, mask))
        return out

    def _count_non_null(
        self, cols: Columns, batch: _Batch, counters: dict[str, Any], before: Mapping[str, int]
    ) -> None:
        import numpy as np

        for fname in self.extractor.fields:
            values = cols.values.get(fname)
            if values is None:
                continue
            if set(map(type, values)) <= STR_OR_NONE:
                flags = list(map(bool, map(str.strip, [v or "" for v in values])))
            else:
                flags = list(map(has_text, values))
            per = np.add.reduceat(np.asarray(flags, dtype=np.int64), batch.starts)
            if int(per.sum()) != self.extractor.stats.non_null.get(fname, 0) - before.get(fname, 0):
                self.broken = True
                return
            counters[counter_name("n", fname)] = per

    def _count_hits(
        self,
        cols: Columns,
        groups: Sequence[FindingGroup],
        batch: _Batch,
        counters: dict[str, Any],
        before: Mapping[tuple[str, str], int],
    ) -> dict[tuple[str, str], list[int]]:
        """Records with a hit per bucket, field and entity type; returns each pair's hit records
        (their key numbers, in key order), which settle examples."""
        by_pair: dict[tuple[str, str], list[list[int]]] = {}
        for g in groups:
            etype = PHONE if g.entity_type == PHONE_DIGITS else g.entity_type
            keys = batch.numbers if g.keys == cols.keys else _numbers(g.keys)
            for fname in name_columns(g.field):
                by_pair.setdefault((fname, etype), []).append(keys)
        hit_numbers: dict[tuple[str, str], list[int]] = {}
        after = self.extractor.stats.hits
        for pair in set(by_pair) | {p for p in self._always if p in after}:
            runs = by_pair.get(pair, [])
            if len(runs) == 1 and (runs[0] is batch.numbers or _increasing(runs[0])):  # one hit per record
                seq = runs[0]
            else:
                seq = sorted({n for run in runs for n in run})
            hit_numbers[pair] = seq
            per = batch.count(seq)
            if int(per.sum()) != after.get(pair, 0) - before.get(pair, 0):
                self.broken = True
                return hit_numbers
            if pair not in self._always:
                per[per == 0] = ABSENT
            counters[counter_name("h", *pair)] = per
        return hit_numbers

    def _settle(
        self,
        hit_numbers: Mapping[tuple[str, str], list[int]],
        tries_before: Mapping[tuple[str, str], int],
        wanting: set[tuple[str, str]],
    ) -> None:
        """Record the bucket where each field's examples were settled in this batch: the
        examples are taken from a field's hits in key order, one try per record."""
        stats = self.extractor.stats
        for pair, tries in stats._tries.items():
            if pair in self.stops or stats.wants_example(*pair):
                continue
            if pair not in wanting and pair in tries_before:
                continue  # settled before this unit's buckets were counted
            nth = tries - tries_before.get(pair, 0)
            seq = hit_numbers.get(pair, [])
            if not 0 < nth <= len(seq):
                self.broken = True
                return
            self.stops[pair] = seq[nth - 1] // self.width

    def settled(self, pairs: Iterable[tuple[str, str]]) -> bool:
        return all(p in self.stops for p in pairs)

    def table(self) -> BucketTable | None:
        """The counts per bucket; None if they could not be derived (``broken``)."""
        import numpy as np

        if self.broken:
            return None
        names = sorted({n for _, counters in self._chunks for n in counters})
        ids = np.concatenate([c[0] for c in self._chunks]) if self._chunks else np.zeros(0, dtype=np.int64)
        counts = np.full((len(ids), len(names)), ABSENT, dtype=np.int64)
        row = 0
        for chunk_ids, counters in self._chunks:
            for j, name in enumerate(names):
                if name in counters:
                    counts[row : row + len(chunk_ids), j] = counters[name]
            row += len(chunk_ids)
        return _merged(names, ids, counts)


def _merged(names: list[str], ids: Any, counts: Any) -> BucketTable:
    """Rows of the same bucket (a bucket cut by a batch boundary) added up, in bucket order."""
    import numpy as np

    unique, inverse = np.unique(ids, return_inverse=True)
    if len(unique) == len(ids):
        order = np.argsort(ids, kind="stable")
        return BucketTable(names, ids[order], counts[order])
    merged = np.full((len(unique), len(names)), ABSENT, dtype=np.int64)
    for j in range(len(names)):
        present = counts[:, j] >= 0
        seen = np.bincount(inverse, weights=present, minlength=len(unique)) > 0
        sums = np.bincount(inverse, weights=np.where(present, counts[:, j], 0), minlength=len(unique))
        merged[seen, j] = sums[seen].astype(np.int64)
    return BucketTable(names, unique.astype(np.int64), merged)


class _Batch:
    """A batch's key numbers (ascending) cut into its buckets."""

    def __init__(self, numbers: list[int], width: int) -> None:
        import numpy as np

        self.numbers = numbers
        array = np.asarray(numbers, dtype=np.int64)
        bucket_of = array // width
        starts = np.flatnonzero(np.diff(bucket_of)) + 1
        self.starts = np.concatenate([np.zeros(1, dtype=np.int64), starts]).astype(np.int64)
        self.ids = bucket_of[self.starts]
        self.sizes = np.diff(np.append(self.starts, len(numbers)))
        self._firsts = array[self.starts]

    def count(self, seq: Sequence[int]) -> Any:
        """How many of ``seq`` (key numbers of the batch) fall in each bucket."""
        import numpy as np

        if seq is self.numbers:
            return self.sizes.copy()
        if not len(seq):
            return np.zeros(len(self.starts), dtype=np.int64)
        where = np.searchsorted(self._firsts, np.asarray(seq, dtype=np.int64), side="right") - 1
        return np.bincount(where, minlength=len(self.starts)).astype(np.int64)


def _numbers(keys: Sequence[str]) -> list[int]:
    """The integers of record keys ``"[123]"`` (only tables with one integer key have buckets)."""
    try:
        return [int(k[1:-1]) for k in keys]
    except ValueError:
        raise ValueError("a record key is not an integer: the table cannot be read by buckets") from None


def _increasing(numbers: Sequence[int]) -> bool:
    return all(a < b for a, b in pairwise(numbers))


def _select(g: FindingGroup, mask: list[bool]) -> FindingGroup:
    from itertools import compress

    def pick(values: list[Any] | None) -> list[Any] | None:
        return None if values is None else list(compress(values, mask))

    score = g.score if not isinstance(g.score, list) else list(compress(g.score, mask))
    return FindingGroup(
        g.field,
        g.entity_type,
        g.origin,
        list(compress(g.keys, mask)),
        list(compress(g.values, mask)),
        score,
        pick(g.starts),
        pick(g.ends),
    )


__all__ = [
    "ABSENT",
    "BUCKETS_PER_RANGE",
    "BucketTable",
    "BucketedExtractor",
    "RangePatch",
    "bucket_width",
    "buckets_in",
    "counter_name",
    "dump_prints",
    "load_prints",
    "print_hash",
    "split_name",
]
