"""How findings are stored: packed blocks and bucketed postings, written without a step per finding.

A row per finding made SQLite's per-row cost (and building two indexes over those rows)
the bottleneck of a scan: one writer process, millions of rows. So the index stores

- **blocks**: the findings of one batch of records, packed. ``meta`` (JSON) holds the
  records' keys and, per group (field, entity type, origin), its score and size; ``data``
  holds, per group, the record positions, the 16-byte identifier hashes and, for findings
  inside free text, their scores and spans.
- **postings**: for each *part* (a worker builds one from up to
  ``ScanSettings.unit_findings_in_memory`` findings of one work unit; the writing process
  merges consecutive parts of a container, ``discover.index_write.MERGED_PART_ENTRIES``), sorted
  entries ``(hash prefix, block number, position)`` split into buckets by the prefix's
  leading bits. An entry points to a finding (identifier hashes) or to a record (the keyed
  hash of its source, container and key), so both "where is this identifier" and "what is in
  this record" are a few indexed look-ups.

An entry for a finding in a typed or name field of a record that also holds an e-mail or a
phone in such a field carries ``OWNED`` in its position's top bit: that record is somebody's
own, so a look-up for a name or an IP can skip it (a namesake's record) without reading its
block. The flag is only ever an optimisation: an entry without it is read as before.

A part of ``n`` entries uses ``bits = log2(n / 256)`` leading bits (0 to 16), so a bucket row
holds about 256 to 512 entries (4 to 8 KB) whatever the part's size. Its bucket code is
``(1 << bits) | prefix >> (64 - bits)``; a look-up asks for the 17 codes a prefix can have.

Everything here runs in the worker that found the values, with numpy doing the per-entry
work; the writing process only inserts rows. The format is the index's, not an interface.
"""

from __future__ import annotations

import json
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import chain, pairwise
from typing import Any, NamedTuple

from discover.extract import FIELD, FindingGroup
from discover.identifiers import STRONG

HASH_SIZE = 16
ENTRY_SIZE = 16  # 8-byte hash prefix, block number, position: all big-endian
#: In an entry's position: the finding is in a field of a record with an e-mail or phone field.
OWNED = 1 << 31
_POSITION = OWNED - 1
_MAX_BITS = 16
_ROW_TARGET = 256
_U32 = "I" if array("I").itemsize == 4 else "L"


def bucket_codes(ident: bytes) -> list[int]:
    """The bucket codes under which a hash (an identifier's or a record's) may be filed."""
    prefix = int.from_bytes(ident[:8], "big")
    return [1] + [(1 << bits) | (prefix >> (64 - bits)) for bits in range(1, _MAX_BITS + 1)]


def _bits_for(entries: int) -> int:
    return max(0, min(_MAX_BITS, (entries // _ROW_TARGET).bit_length() - 1))


class Block(NamedTuple):
    """One stored batch: ``meta`` is JSON text, ``data`` the packed groups."""

    block_no: int
    findings: int
    meta: str
    data: bytes


@dataclass
class Part:
    """Blocks and their postings rows ``(bucket code, entries)``; written together, in one go."""

    blocks: list[Block] = field(default_factory=list)
    postings: list[tuple[int, bytes]] = field(default_factory=list)

    @property
    def findings(self) -> int:
        return sum(b.findings for b in self.blocks)


class PartBuilder:
    """Packs a unit's hashed finding groups, batch by batch, into parts.

    ``record_digest`` hashes a record key (as the source knows it) into its record identity;
    ``seal`` turns a key into the form stored (sealed when the key is personal data).
    Memory: the current part: about 40 bytes per finding.
    """

    def __init__(self, record_digest: Callable[[str], bytes], seal: Callable[[str], str] | None = None) -> None:
        self.record_digest = record_digest
        self.seal = seal
        self._reset()

    def _reset(self) -> None:
        self.blocks: list[Block] = []
        self.findings = 0
        # Per chunk (a group's findings, or a block's records): hash prefixes as native integers,
        # which sort fast and in the order of their big-endian bytes; 8 bytes each, not 16.
        self._prefixes: list[Any] = []
        self._block_of: list[tuple[int, int, int]] = []  # per chunk: block number, first position, count
        self._flags: list[Any] = []  # per chunk: OWNED or 0 per entry, or one int for the whole chunk

    def add(self, groups: Sequence[FindingGroup]) -> None:
        """One batch's groups (values already hashed) become one block."""
        groups = [g for g in groups if g.keys]
        if not groups:
            return
        block_no = len(self.blocks)
        # The largest group first: usually it holds every record, in the batch's order, so each
        # group's positions grow (a sparse group first would put the records it lacks last).
        keys = list(dict.fromkeys(chain.from_iterable(g.keys for g in sorted(groups, key=lambda g: -len(g.keys)))))
        positions = dict(zip(keys, range(len(keys)), strict=True))
        header = []
        chunks: list[bytes] = []
        n_total = 0
        seqs = []
        owners: set[int] | None = set()  # positions of records with an e-mail or phone field; None: all
        for g in groups:
            n = len(g.keys)
            # Most groups hold every record of the batch, in order: their positions are 0..n-1.
            full = n == len(keys) and g.keys == keys
            seq = array(_U32, range(n) if full else map(positions.__getitem__, g.keys))
            seqs.append((full, seq))
            if g.origin == FIELD and g.entity_type in STRONG and owners is not None:
                owners = None if full else owners.union(seq)
        for g, (_, seq) in zip(groups, seqs, strict=True):
            n = len(g.keys)
            per_score = isinstance(g.score, list)
            spans = g.starts is not None and g.ends is not None
            header.append([g.field, g.entity_type, g.origin, None if per_score else g.score, n, spans])
            hashes = b"".join(g.values)
            chunks.append(seq.tobytes())
            if g.origin != FIELD or owners == set():
                self._flags.append(0)
            elif owners is None:
                self._flags.append(OWNED)
            else:
                self._flags.append(array(_U32, [OWNED if i in owners else 0 for i in seq]))
            chunks.append(hashes)
            if per_score:
                chunks.append(array("d", g.score).tobytes())  # type: ignore[arg-type]
            if spans:
                chunks.append(array("i", g.starts).tobytes())  # type: ignore[arg-type]
                chunks.append(array("i", g.ends).tobytes())  # type: ignore[arg-type]
            self._prefixes.append(_prefixes(hashes))
            self._block_of.append((block_no, n_total, n))
            n_total += n
        stored = keys if self.seal is None else list(map(self.seal, keys))
        meta = json.dumps({"keys": stored, "groups": header}, separators=(",", ":"), ensure_ascii=False)
        self.blocks.append(Block(block_no, n_total, meta, b"".join(chunks)))
        # Record identities: position i in this block is record i.
        self._prefixes.append(_prefixes(b"".join(map(self.record_digest, keys))))
        self._block_of.append((block_no, -1, len(keys)))
        self._flags.append(0)
        self.findings += n_total

    def take(self) -> Part | None:
        """The part built so far (with its postings), and start a new one; ``None`` if empty."""
        if not self.blocks:
            return None
        import numpy as np

        # Peak memory: the held prefixes plus about 40 bytes per entry while sorting.
        prefixes = np.concatenate(self._prefixes)
        self._prefixes.clear()
        order = np.argsort(prefixes)
        size = len(prefixes)
        entries = np.empty(size, dtype=ENTRY_DTYPE)
        entries["p"] = prefixes[order]
        del prefixes
        block_nos, firsts, counts = (np.array(c, dtype=np.int64) for c in zip(*self._block_of, strict=True))
        entries["b"] = np.repeat(block_nos, counts)[order]
        # A finding's position is its index in the block; a record's, its index in the block's keys:
        # within each chunk, ``first`` + 0, 1, 2, ...
        starts = np.cumsum(counts) - counts
        flags = np.concatenate(
            [
                np.full(n, f, dtype=np.int64) if isinstance(f, int) else np.frombuffer(f, dtype=np.uint32)
                for f, n in zip(self._flags, counts.tolist(), strict=True)
            ]
        )
        entries["i"] = (np.arange(size) - np.repeat(starts - np.maximum(firsts, 0), counts) + flags)[order]
        del order
        part = Part(self.blocks, postings_rows(entries))
        self._reset()
        return part


#: A postings entry as numpy reads it: hash prefix, block number, position (with ``OWNED``).
ENTRY_DTYPE = [("p", ">u8"), ("b", ">u4"), ("i", ">u4")]


def postings_rows(entries: Any) -> list[tuple[int, bytes]]:
    """Sorted entries (``ENTRY_DTYPE``) cut into bucket rows ``(code, entries)``."""
    import numpy as np

    size = len(entries)
    bits = _bits_for(size)
    # Where each bucket starts: buckets are the ranges of the prefixes' leading ``bits`` bits.
    lows = [0]
    if bits:
        lows = np.searchsorted(entries["p"], np.arange(1 << bits, dtype=np.uint64) << np.uint64(64 - bits)).tolist()
    return [
        ((1 << bits) | bucket, entries[lo:hi].tobytes())
        for bucket, (lo, hi) in enumerate(zip(lows, [*lows[1:], size], strict=True))
        if hi > lo
    ]


def merge_entries(runs: Sequence[Any]) -> Any:
    """Sorted entry arrays merged into one sorted array (each run is sorted: a stable sort
    finds the runs and merges them)."""
    import numpy as np

    # ``concatenate`` would turn the big-endian fields native.
    merged = np.concatenate(runs).astype(ENTRY_DTYPE, copy=False)
    return merged[np.argsort(merged["p"], kind="stable")]


def part_entries(part: Part, block_offset: int) -> Any:
    """A part's entries, sorted, with block numbers moved up by ``block_offset``."""
    import numpy as np

    # A part's rows are its buckets in order, so their concatenation is its sorted entries.
    entries = np.frombuffer(b"".join(e for _, e in part.postings), dtype=ENTRY_DTYPE).copy()
    if block_offset:
        entries["b"] += block_offset
    return entries


def _prefixes(hashes: bytes) -> Any:
    """The 8-byte prefixes of joined 16-byte hashes, as native unsigned integers."""
    import numpy as np

    return np.frombuffer(hashes, dtype=">u8")[::2].astype(np.uint64)


# -- reading ---------------------------------------------------------------------------------


def search(entries: bytes, ident: bytes, *, skip_owned: bool = False) -> Iterator[tuple[int, int]]:
    """``(block number, position)`` of every entry for ``ident`` in a bucket's sorted entries;
    with ``skip_owned``, not those flagged ``OWNED``."""
    prefix = ident[:8]
    size = len(entries) // ENTRY_SIZE
    prefixes = _Prefixes(entries, size)
    lo, hi = bisect_left(prefixes, prefix), bisect_right(prefixes, prefix)
    for i in range(lo, hi):
        at = i * ENTRY_SIZE + 8
        pos = int.from_bytes(entries[at + 4 : at + 8], "big")
        if skip_owned and pos & OWNED:
            continue
        yield int.from_bytes(entries[at : at + 4], "big"), pos & _POSITION


class _Prefixes(Sequence[bytes]):
    """The hash prefixes of packed entries, as a sequence ``bisect`` can search."""

    def __init__(self, entries: bytes, size: int) -> None:
        self.entries, self.size = entries, size

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, i: Any) -> Any:
        at = i * ENTRY_SIZE
        return self.entries[at : at + 8]


class Finding(NamedTuple):
    record: int  # position of the record in the block's keys
    field: str
    entity_type: str
    ident: bytes
    score: float
    origin: str
    span_start: int | None
    span_end: int | None


class DecodedBlock:
    """A stored block, read lazily: findings by position, or every finding of one record."""

    def __init__(self, meta: str, data: bytes) -> None:
        parsed = json.loads(meta)
        self.keys: list[str] = parsed["keys"]
        self.data = data
        self.groups: list[tuple[list[Any], int, int, array[int]]] = []  # header, first index, offset, positions
        self._ordered: list[bool] | None = None  # per group: positions never decrease
        offset = first = 0
        for header in parsed["groups"]:
            n = header[4]
            positions = array(_U32)
            positions.frombytes(data[offset : offset + 4 * n])
            self.groups.append((header, first, offset, positions))
            offset += (4 + HASH_SIZE + (8 if header[3] is None else 0) + (8 if header[5] else 0)) * n
            first += n

    def finding(self, index: int) -> Finding:
        for header, first, offset, positions in self.groups:
            n = header[4]
            if first <= index < first + n:
                return self._at(header, offset, positions, index - first)
        raise IndexError(index)

    def of_record(self, record: int) -> list[Finding]:
        out: list[Finding] = []
        if self._ordered is None:
            self._ordered = [all(a <= b for a, b in pairwise(p)) for _, _, _, p in self.groups]
        for (header, _, offset, positions), ordered in zip(self.groups, self._ordered, strict=True):
            if ordered:  # a record's findings are one run
                hits: Iterable[int] = range(bisect_left(positions, record), bisect_right(positions, record))
            else:  # written before keys were ordered by the largest group: a sparse group came first
                hits = [i for i, p in enumerate(positions) if p == record]
            out.extend(self._at(header, offset, positions, i) for i in hits)
        return out

    def count_of(self, records: Collection[int]) -> int:
        """How many findings the records at these positions hold."""
        if not records:
            return 0
        return sum(sum(1 for p in positions if p in records) for _, _, _, positions in self.groups)

    def all(self) -> list[Finding]:
        return [self._at(h, offset, positions, i) for h, _, offset, positions in self.groups for i in range(h[4])]

    def _at(self, header: list[Any], offset: int, positions: array[int], i: int) -> Finding:
        field_name, etype, origin, score, n, spans = header
        at = offset + 4 * n
        ident = self.data[at + HASH_SIZE * i : at + HASH_SIZE * (i + 1)]
        at += HASH_SIZE * n
        if score is None:
            score = array("d", self.data[at + 8 * i : at + 8 * (i + 1)])[0]
            at += 8 * n
        start = end = None
        if spans:
            start = array("i", self.data[at + 4 * i : at + 4 * (i + 1)])[0]
            end = array("i", self.data[at + 4 * n + 4 * i : at + 4 * n + 4 * (i + 1)])[0]
        return Finding(positions[i], field_name, etype, ident, float(score), origin, start, end)
