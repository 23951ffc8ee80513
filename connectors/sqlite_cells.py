"""Bucket fingerprints of a SQLite rowid table from the cells of its leaf pages, read from the
file: no row goes through SQL.

A bucket's fingerprint is a hash of its records' rowids and payloads (the record bytes as SQLite
keeps them, overflow pages followed), in rowid order. Equal bytes are equal values, so a record
changed, added or deleted changes its bucket's fingerprint; one rewritten with the same values,
moved to another page or left as it was by a ``VACUUM`` does not. Unlike the SQL fingerprints
(``SqlTableReader.range_fingerprints``), the whole row counts: a change to a column that holds
no personal data also reads its bucket again.

The pages are those of an earlier read of the table's leaf pages (``LeafPages``, with the file's
change counter): they are read inside a read transaction (in rollback-journal mode its shared
lock keeps writers out) only if the change counter is still the one of that read, that is if no
write was committed since; otherwise there is no answer (None), nor for a page that does not
parse as a table leaf. A change the counter would not show (a file rewritten by other means
than SQLite with the same counter) is not seen: the same limit as the pages' own hashes.

Against the SQL query over the same buckets (a join per run of buckets, grouped, spread over
two workers), on a million-row table with 1% of the rows updated at random (a third of the leaf
pages changed): about 0.5 s in the scanning process against 1.4 s of both workers (2.8
CPU-seconds); all the buckets of the table, as a full scan takes them: about 0.6 s against 3
CPU-seconds.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import sqlite3
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

if TYPE_CHECKING:
    from connectors.sql_fingerprint import LeafPages

#: Leaf pages parsed at a time.
CHUNK_PAGES = 256
#: A table b-tree leaf page's type byte.
_TABLE_LEAF = 13


class _Layout:
    """What the file's header says of its pages: their size, the usable part, and how much of
    a record a leaf cell keeps before spilling to overflow pages (the file format, 1.6 and 2.3.3)."""

    def __init__(self, header: bytes) -> None:
        size = int.from_bytes(header[16:18], "big")
        self.page_size = 65_536 if size == 1 else size
        self.usable = self.page_size - header[20]
        self.max_local = self.usable - 35
        self.min_local = (self.usable - 12) * 32 // 255 - 23
        self.counter = int.from_bytes(header[24:28], "big")

    def local(self, payload: Any) -> Any:
        """The bytes of each payload (numpy array) kept in its cell."""
        import numpy as np

        spill = self.min_local + (payload - self.min_local) % (self.usable - 4)
        return np.where(payload <= self.max_local, payload, np.where(spill <= self.max_local, spill, self.min_local))


@contextlib.contextmanager
def read_transaction(path: Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection to the SQLite file inside a transaction, rolled back at the end: its
    first read takes the shared lock, which in rollback-journal mode keeps writers from
    committing until the end, so the file's bytes stay as that read found them."""
    uri = f"file:{quote(str(path))}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=5, isolation_level=None)) as db:
        db.execute("BEGIN")
        try:
            yield db
        finally:
            db.execute("ROLLBACK")


def file_change_counter(fh: Any) -> int:
    """The file's change counter (header offset 24), which a committed write in rollback-journal
    mode increments."""
    fh.seek(0)
    return _Layout(fh.read(100)).counter


def cell_bucket_prints(
    path: Path, leaves: LeafPages, width: int, buckets: Collection[int] | None = None
) -> dict[int, int] | None:
    """The fingerprint (8 bytes, signed) of each bucket of ``width`` rowids (bucket ``rowid //
    width``) that holds a record; with ``buckets``, of those only. None where the file was
    written since ``leaves`` were read (``leaves.counter``) or a page does not parse.
    Memory: ``CHUNK_PAGES`` pages at a time (about ten times their bytes while they are
    parsed), and the fingerprints."""
    import numpy as np

    if leaves.counter is None:
        return None
    firsts = np.asarray(leaves.firsts, dtype=np.int64)
    lasts = np.asarray(leaves.lasts, dtype=np.int64)
    order = np.argsort(firsts, kind="stable")  # key order: buckets complete one after another
    pages = np.asarray(leaves.pages, dtype=np.int64)[order]
    wanted = None
    if buckets is not None:
        wanted = np.unique(np.fromiter(buckets, dtype=np.int64, count=len(buckets)))
        # A page is read if a wanted bucket lies between its first and last rowids' buckets.
        low = np.searchsorted(wanted, firsts[order] // width)
        high = np.searchsorted(wanted, lasts[order] // width, side="right")
        pages = pages[high > low]
    out: dict[int, int] = {}
    with read_transaction(path) as db, open(path, "rb") as fh:
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()  # takes the shared lock
        layout = _Layout(fh.read(100))
        if layout.counter != leaves.counter:
            return None
        carry = _Cells.empty()
        for cells in _chunks(fh.fileno(), layout, pages, wanted, width):
            if cells is None:
                return None
            carry = carry.then(cells).sum_buckets(width, out, final=False)
        carry.sum_buckets(width, out, final=True)
    return out


def leaf_rowid_spans(fd: int, page_size: int, pages: list[int]) -> tuple[Any, Any, Any]:
    """The first and last rowid of each of these table b-tree leaf pages (their cell pointer
    arrays are in rowid order; a cell starts with its payload's size and its rowid, varints),
    and whether it has them: a page that is not a table leaf, or holds no cell (an empty root
    page), has none. numpy, ``CHUNK_PAGES`` pages at a time: a rescan's changed leaves, a third
    of a million-row table's, took 0.1 s one Python step a page. Memory: a chunk of pages."""
    import numpy as np

    firsts = np.zeros(len(pages), dtype=np.int64)
    lasts = np.zeros(len(pages), dtype=np.int64)
    present = np.zeros(len(pages), dtype=bool)
    for start in range(0, len(pages), CHUNK_PAGES):
        chunk = pages[start : start + CHUNK_PAGES]
        # A page read short (past the end of the file) is padded with zeros: no leaf, no span.
        data = b"".join(os.pread(fd, page_size, (p - 1) * page_size).ljust(page_size, b"\0") for p in chunk)
        buf = np.frombuffer(data, dtype=np.uint8)
        base = np.arange(len(chunk), dtype=np.int64) * page_size
        header = base + np.where(np.asarray(chunk) == 1, 100, 0)
        cells = buf[header + 3].astype(np.int64) << 8 | buf[header + 4]
        has = (buf[header] == _TABLE_LEAF) & (cells > 0)
        ends = []
        for nth in (np.zeros(len(chunk), dtype=np.int64), np.maximum(cells - 1, 0)):
            pointer = np.minimum(header + 8 + 2 * nth, len(buf) - 2)
            at = base + (buf[pointer].astype(np.int64) << 8 | buf[pointer + 1])
            _, at = _varints(buf, at)  # the payload's size
            ends.append(_varints(buf, at)[0].view(np.int64))
        done = slice(start, start + len(chunk))
        firsts[done], lasts[done], present[done] = ends[0], ends[1], has
    return firsts, lasts, present


class _Cells:
    """Cells in rowid order: their rowids and hashes (``_parse``)."""

    def __init__(self, rowids: Any, hashes: Any) -> None:
        self.rowids = rowids
        self.hashes = hashes

    @classmethod
    def empty(cls) -> _Cells:
        import numpy as np

        return cls(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.uint64))

    def then(self, more: _Cells) -> _Cells:
        import numpy as np

        if not len(self.rowids):
            return more
        return _Cells(np.concatenate([self.rowids, more.rowids]), np.concatenate([self.hashes, more.hashes]))

    def sum_buckets(self, width: int, out: dict[int, int], *, final: bool) -> _Cells:
        """Each complete bucket's fingerprint into ``out``: the sum of its cells' hashes (each
        holds its rowid), mixed; returns the cells of the last bucket when the
        next chunk may hold more of it (not ``final``)."""
        import numpy as np

        if not len(self.rowids):
            return self
        bucket = self.rowids // width
        starts = np.concatenate([np.zeros(1, dtype=np.int64), np.flatnonzero(np.diff(bucket)) + 1])
        cut = len(self.rowids) if final else int(starts[-1])
        done = starts[starts < cut]
        sums = np.add.reduceat(self.hashes[:cut], done) if cut else np.zeros(0, dtype=np.uint64)
        prints = _mix(sums)
        out.update(zip(bucket[done].tolist(), prints.view(np.int64).tolist(), strict=True))
        return _Cells(self.rowids[cut:], self.hashes[cut:])


def _chunks(fd: int, layout: _Layout, pages: Any, wanted: Any, width: int) -> Iterator[_Cells | None]:
    """Per chunk of pages (in key order), its cells (``wanted``: those of these buckets only);
    None for a chunk with a page that does not parse."""
    for start in range(0, len(pages), CHUNK_PAGES):
        chunk = pages[start : start + CHUNK_PAGES].tolist()
        size = layout.page_size
        data = b"".join(os.pread(fd, size, (p - 1) * size) for p in chunk)
        if len(data) != size * len(chunk):
            yield None
            return
        yield _parse(fd, layout, data, chunk, wanted, width)


def _parse(fd: int, layout: _Layout, data: bytes, chunk: list[int], wanted: Any, width: int) -> _Cells | None:
    """The cells of ``chunk``'s pages (``data``, one after another) in the ``wanted`` buckets
    (None: all), parsed and hashed with numpy; a Python step only for a cell whose payload
    spills to overflow pages. The pages of a bucket cut by a page boundary are read whole, but
    only that bucket's cells of them are hashed."""
    import numpy as np

    buf = np.frombuffer(data, dtype=np.uint8)
    size = layout.page_size
    base = np.arange(len(chunk), dtype=np.int64) * size
    header = base + np.where(np.asarray(chunk) == 1, 100, 0)
    if (buf[header] != _TABLE_LEAF).any():
        return None
    counts = buf[header + 3].astype(np.int64) << 8 | buf[header + 4]
    page_of = np.repeat(np.arange(len(chunk)), counts)
    nth = np.arange(len(page_of)) - np.repeat(np.cumsum(counts) - counts, counts)
    pointer = header[page_of] + 8 + 2 * nth
    limit = base[page_of] + layout.usable
    at = base[page_of] + (buf[pointer].astype(np.int64) << 8 | buf[pointer + 1])
    if (at >= limit).any():
        return None
    payload, at = _varints(buf, at)
    rowid, at = _varints(buf, at)
    payload = payload.astype(np.int64)
    rowid = rowid.view(np.int64)
    if not (rowid[1:] > rowid[:-1]).all():  # compared, not subtracted: rowids span all 64 bits
        return None  # cells out of rowid order: not a sound page
    if wanted is not None:
        bucket = rowid // width
        where = np.minimum(np.searchsorted(wanted, bucket), len(wanted) - 1)
        mine = wanted[where] == bucket
        at, payload, rowid, limit = at[mine], payload[mine], rowid[mine], limit[mine]
    local = layout.local(payload)
    spills = payload > local
    if (local < 1).any() or (at + local + 4 * spills > limit).any():
        return None
    extra = np.zeros(len(rowid), dtype=np.uint64)
    for i in np.flatnonzero(spills).tolist():
        end = int(at[i] + local[i])
        spilled = _overflow(fd, layout, int.from_bytes(data[end : end + 4], "big"), int(payload[i] - local[i]))
        if spilled is None:
            return None
        extra[i] = int.from_bytes(hashlib.blake2b(spilled, digest_size=8).digest(), "little")
    hashed = _word_hashes(data, at, local) + _mix(extra + _SPILL)
    hashed = _mix(hashed + _mix(rowid.view(np.uint64) + _ROWID) + _mix(payload.astype(np.uint64) + _SIZE))
    return _Cells(rowid, hashed)


#: Constants of the hashes: any odd 64-bit numbers, fixed (fingerprints are compared across scans).
_ROWID, _SIZE, _SPILL, _WORD = (0x9E3779B97F4A7C15, 0xD1B54A32D192ED03, 0x8CB92BA72F3D8DD7, 0xC2B2AE3D27D4EB4F)


def _mix(x: Any) -> Any:
    """SplitMix64's finaliser, on uint64 arrays: every bit of the result depends on every bit
    of ``x``, and different inputs give different outputs (it is a bijection)."""
    import numpy as np

    x = np.asarray(x, dtype=np.uint64)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _word_hashes(data: bytes, at: Any, length: Any) -> Any:
    """A hash of each of the byte strings ``data[at:at + length]``: the sum of its 8-byte
    little-endian words (the last one's bytes beyond the string zeroed), each XORed with a
    number that depends on its place and mixed (``_mix``) first. Mixed, not only multiplied by
    an odd number: a product carries a change only to higher bits, so changes confined to two
    words' top bits cancelled in the sum (two integers each changed by 128). Numpy over words,
    not bytes: an eighth of the steps."""
    import numpy as np

    words = (length + 7) // 8
    total = int(words.sum())
    first = np.cumsum(words) - words
    place = np.arange(total, dtype=np.int64) - np.repeat(first, words)
    offset = np.repeat(at, words) + 8 * place
    # An unaligned word from the two aligned ones it straddles (two shifts for the second one's:
    # a shift by 64 is not defined).
    aligned = np.frombuffer(data + bytes(16 - len(data) % 8), dtype="<u8")
    index = offset >> 3
    shift = (offset & 7).astype(np.uint64) * np.uint64(8)
    out = (aligned[index] >> shift) | ((aligned[index + 1] << np.uint64(1)) << (np.uint64(63) - shift))
    tail = (length - 8 * (words - 1)).astype(np.uint64)  # bytes of the last word that are the string's
    last = first + words - 1
    keep = np.where(tail >= 8, np.uint64(0xFFFFFFFFFFFFFFFF), (np.uint64(1) << (tail * np.uint64(8))) - np.uint64(1))
    out[last] &= keep
    out ^= _places(int(words.max()) if total else 0)[place]
    return np.add.reduceat(_mix(out), first) if total else np.zeros(0, dtype=np.uint64)


@functools.lru_cache(maxsize=1)
def _places_upto(count: int) -> Any:
    import numpy as np

    return _mix(np.arange(count, dtype=np.uint64) + np.uint64(_WORD))


def _places(count: int) -> Any:
    """The number each word's place XORs it with (the first ``count`` places at least)."""
    return _places_upto(max(count, 8_192))


def _overflow(fd: int, layout: _Layout, page: int, remaining: int) -> bytes | None:
    """The rest of a payload, from its chain of overflow pages (each: the next page's number,
    then data); None for a chain that ends early or loops."""
    parts = []
    seen = set()
    while remaining > 0:
        if page < 1 or page in seen:
            return None
        seen.add(page)
        raw = os.pread(fd, layout.usable, (page - 1) * layout.page_size)
        if len(raw) < layout.usable:
            return None
        take = min(remaining, layout.usable - 4)
        parts.append(raw[4 : 4 + take])
        remaining -= take
        page = int.from_bytes(raw[:4], "big")
    return b"".join(parts)


def _varints(buf: Any, at: Any) -> tuple[Any, Any]:
    """SQLite varints (big-endian, 7 bits a byte, the ninth byte whole) at each of ``at``:
    their values (uint64) and where each ends. A pass a byte, over the varints still going
    (most are one to three bytes)."""
    import numpy as np

    first = buf[np.minimum(at, len(buf) - 1)].astype(np.uint64)
    value = first & np.uint64(0x7F)
    length = np.ones(len(at), dtype=np.int64)
    going = np.flatnonzero(first >= 0x80)
    for k in range(1, 9):
        if not len(going):
            break
        byte = buf[np.minimum(at[going] + k, len(buf) - 1)].astype(np.uint64)
        if k == 8:
            value[going] = (value[going] << np.uint64(8)) | byte
        else:
            value[going] = (value[going] << np.uint64(7)) | (byte & np.uint64(0x7F))
        length[going] = k + 1
        going = going[byte >= 0x80] if k < 8 else going[:0]
    return value, at + length


__all__ = ["CHUNK_PAGES", "cell_bucket_prints", "file_change_counter", "leaf_rowid_spans", "read_transaction"]
