"""How findings are stored: packed blocks and bucketed postings, written without a step per finding.

A row per finding made SQLite's per-row cost (and building two indexes over those rows)
the bottleneck of a scan: one writer process, millions of rows. So the index stores

- **blocks**: the findings of one batch of records, packed. ``meta`` (JSON) holds the
  records' keys and, per group (field, entity type, origin), its score and size; ``data``
  holds, per group, the record positions, the 16-byte identifier hashes and, for findings
  inside free text, their scores and spans.
- **postings**: for each *part* (up to ``ScanSettings.unit_findings_in_memory`` findings of
  one work unit), sorted entries ``(hash prefix, block number, position)`` split into
  buckets by the prefix's leading bits. An entry points to a finding (identifier hashes)
  or to a record (the keyed hash of its source, container and key), so both "where is this
  identifier" and "what is in this record" are a few indexed look-ups.

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
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import chain, pairwise
from typing import Any, NamedTuple

from discover.extract import FindingGroup

HASH_SIZE = 16
ENTRY_SIZE = 16  # 8-byte hash prefix, block number, position: all big-endian
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

    def add(self, groups: Sequence[FindingGroup]) -> None:
        """One batch's groups (values already hashed) become one block."""
        groups = [g for g in groups if g.keys]
        if not groups:
            return
        block_no = len(self.blocks)
        keys = list(dict.fromkeys(chain.from_iterable(g.keys for g in groups)))
        positions = dict(zip(keys, range(len(keys)), strict=True))
        header = []
        chunks: list[bytes] = []
        n_total = 0
        for g in groups:
            n = len(g.keys)
            per_score = isinstance(g.score, list)
            spans = g.starts is not None and g.ends is not None
            header.append([g.field, g.entity_type, g.origin, None if per_score else g.score, n, spans])
            hashes = b"".join(g.values)
            # Most groups hold every record of the batch, in order: their positions are 0..n-1.
            seq = range(n) if n == len(keys) and g.keys == keys else map(positions.__getitem__, g.keys)
            chunks.append(array(_U32, seq).tobytes())
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
        prefixes = prefixes[order]
        size = len(prefixes)
        bits = _bits_for(size)
        # Where each bucket starts: buckets are the ranges of the prefixes' leading ``bits`` bits.
        lows = [0]
        if bits:
            lows = np.searchsorted(prefixes, np.arange(1 << bits, dtype=np.uint64) << np.uint64(64 - bits)).tolist()
        entries = np.empty(size, dtype=[("p", ">u8"), ("b", ">u4"), ("i", ">u4")])
        entries["p"] = prefixes
        del prefixes
        block_nos, firsts, counts = (np.array(c, dtype=np.int64) for c in zip(*self._block_of, strict=True))
        entries["b"] = np.repeat(block_nos, counts)[order]
        # A finding's position is its index in the block; a record's, its index in the block's keys:
        # within each chunk, ``first`` + 0, 1, 2, ...
        starts = np.cumsum(counts) - counts
        entries["i"] = (np.arange(size) - np.repeat(starts - np.maximum(firsts, 0), counts))[order]
        del order
        postings = [
            ((1 << bits) | bucket, entries[lo:hi].tobytes())
            for bucket, (lo, hi) in enumerate(zip(lows, [*lows[1:], size], strict=True))
            if hi > lo
        ]
        part = Part(self.blocks, postings)
        self._reset()
        return part


def _prefixes(hashes: bytes) -> Any:
    """The 8-byte prefixes of joined 16-byte hashes, as native unsigned integers."""
    import numpy as np

    return np.frombuffer(hashes, dtype=">u8")[::2].astype(np.uint64)


# -- reading ---------------------------------------------------------------------------------


def search(entries: bytes, ident: bytes) -> Iterator[tuple[int, int]]:
    """``(block number, position)`` of every entry for ``ident`` in a bucket's sorted entries."""
    prefix = ident[:8]
    size = len(entries) // ENTRY_SIZE
    prefixes = _Prefixes(entries, size)
    lo, hi = bisect_left(prefixes, prefix), bisect_right(prefixes, prefix)
    for i in range(lo, hi):
        at = i * ENTRY_SIZE + 8
        yield int.from_bytes(entries[at : at + 4], "big"), int.from_bytes(entries[at + 4 : at + 8], "big")


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
        out = []
        for header, _, offset, positions in self.groups:
            # Records are numbered by first appearance across groups, so a later group's positions
            # are not always ascending (a record with no e-mail but a phone is numbered after the
            # e-mail group's records); bisect only where they are.
            if all(a <= b for a, b in pairwise(positions)):
                hits: Iterable[int] = range(bisect_left(positions, record), bisect_right(positions, record))
            else:
                hits = [i for i, p in enumerate(positions) if p == record]
            for i in hits:
                out.append(self._at(header, offset, positions, i))
        return out

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
