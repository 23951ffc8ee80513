"""Hidden buckets: an overlay that hides some records of a key range's old parts.

An incremental rescan may read again only a few *buckets* of a key range (a bucket is ``width``
consecutive integer keys: bucket ``k // width``). Rewriting the range's parts for that would
cost as much as reading the whole range, so the range keeps its parts, gains one part with the
fresh findings of those buckets, and each old part gets a ``hidden_buckets`` row naming the
buckets whose records it must no longer show (like a tombstone). Every read of ``blocks``
skips the records such a row hides (:class:`HiddenBuckets`, loaded once per read for the parts
it touches); the table is empty unless a rescan patched ranges, so an ordinary read pays one
query on an empty table. Deleting a part deletes its rows (``index_write.clear_container``,
``clear_ranges``, ``index_direct.drop_parts``).

Only stored keys of the form ``"[k]"`` (one integer, ``connectors.base.encode_int_key``) can be
hidden; a sealed or other key never is.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from discover.index_schema import LOOKUP_CHUNK

if TYPE_CHECKING:
    from sqlalchemy import Table
    from sqlalchemy.engine import Connection

_INT_KEY = re.compile(r"\[(-?[0-9]+)\]")
_NOTHING: frozenset[int] = frozenset()


def int_key(stored: str) -> int | None:
    """The integer ``k`` of a stored key ``"[k]"``; ``None`` for any other key (sealed, text, several columns)."""
    m = _INT_KEY.fullmatch(stored)
    return int(m.group(1)) if m else None


def encode_buckets(buckets: Iterable[int]) -> str:
    return json.dumps(sorted(set(buckets)), separators=(",", ":"))


class HiddenBuckets:
    """Per part, the buckets of records it hides: ``(width, buckets)`` pairs, one per rescan
    that patched the part's range. Memory: the rows loaded (one per part and rescan)."""

    def __init__(self, rows: Iterable[tuple[int, int, str]] = ()) -> None:
        self._by_part: dict[int, list[tuple[int, frozenset[int]]]] = {}
        for part_id, width, buckets in rows:
            self._by_part.setdefault(int(part_id), []).append((int(width), frozenset(json.loads(buckets))))

    def __bool__(self) -> bool:
        return bool(self._by_part)

    @property
    def parts(self) -> set[int]:
        """The parts that hide some records."""
        return set(self._by_part)

    def positions(self, part_id: int, keys: Sequence[str]) -> frozenset[int]:
        """Positions in a block's stored ``keys`` (a block of part ``part_id``) of the records hidden."""
        rows = self._by_part.get(part_id)
        if not rows:
            return _NOTHING
        out = set()
        for pos, stored in enumerate(keys):
            k = int_key(stored)
            if k is not None and any(k // width in buckets for width, buckets in rows):
                out.add(pos)
        return frozenset(out)


def load_hidden(t: Mapping[str, Table], conn: Connection, parts: Collection[int]) -> HiddenBuckets:
    """The hidden buckets of these parts: one query per ``LOOKUP_CHUNK`` of them (one, usually)."""
    from sqlalchemy import select

    h = t["hidden_buckets"]
    ids = sorted(parts)
    rows: list[Any] = []
    for start in range(0, len(ids), LOOKUP_CHUNK):
        chunk = ids[start : start + LOOKUP_CHUNK]
        rows.extend(conn.execute(select(h.c.part_id, h.c.width, h.c.buckets).where(h.c.part_id.in_(chunk))).all())
    return HiddenBuckets(rows)


def load_visible_hidden(
    t: Mapping[str, Table], conn: Connection, visible: Any, container_id: int | None = None
) -> HiddenBuckets:
    """The hidden buckets of the parts ``visible`` (a ``SELECT`` of part ids:
    ``index_direct.visible_parts``), of one container if given: one query."""
    from sqlalchemy import select

    h = t["hidden_buckets"]
    stmt = select(h.c.part_id, h.c.width, h.c.buckets).where(h.c.part_id.in_(visible))
    if container_id is not None:
        stmt = stmt.where(h.c.container_id == container_id)
    return HiddenBuckets(conn.execute(stmt).all())


def hide_buckets(
    t: Mapping[str, Table],
    conn: Connection,
    cid: int,
    generation: int,
    hide: Mapping[int, Collection[int]],
    width: int,
) -> None:
    """Hide, in every part of generation ``generation`` linked to a range of ``hide``, the records
    of that range's buckets (of ``width`` keys each). Parts written later are not touched."""
    from sqlalchemy import select

    if width <= 0:
        raise ValueError(f"hide_width must be a positive number of keys, not {width}")
    p, rp, h = t["parts"], t["range_parts"], t["hidden_buckets"]
    wanted = sorted(r for r, buckets in hide.items() if buckets)
    for start in range(0, len(wanted), LOOKUP_CHUNK):
        chunk = wanted[start : start + LOOKUP_CHUNK]
        stmt = (
            select(rp.c.part_id, rp.c.range_no)
            .join(p, p.c.id == rp.c.part_id)
            .where(rp.c.container_id == cid, rp.c.range_no.in_(chunk), p.c.generation == generation)
        )
        rows = [
            {"container_id": cid, "part_id": part_id, "width": width, "buckets": encode_buckets(hide[int(range_no)])}
            for part_id, range_no in conn.execute(stmt)
        ]
        if rows:
            conn.execute(h.insert(), rows)
