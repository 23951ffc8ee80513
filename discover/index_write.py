"""Writing the index: one container's replacement in one transaction (``ContainerWrite``),
and the deletes that forget a container or some of its key ranges."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from connectors.base import ContainerRef
from discover.index_hidden import hide_buckets
from discover.index_schema import LOOKUP_CHUNK, new_id, utcnow
from discover.packing import ENTRY_SIZE, Part, merge_entries, part_entries, postings_rows

if TYPE_CHECKING:
    from sqlalchemy import Table
    from sqlalchemy.engine import Connection

    from discover.index import Index

#: Postings entries the writing process merges into one part (16 bytes each; about 2.5 times
#: that while sorting): a container of many work units is looked up in a few parts, not one per unit.
MERGED_PART_ENTRIES = 1_000_000


def container_id(t: dict[str, Table], conn: Connection, source: str, name: str) -> int | None:
    from sqlalchemy import select

    c = t["containers"]
    return conn.execute(select(c.c.id).where(c.c.source == source, c.c.name == name)).scalar()


def clear_container(t: dict[str, Table], conn: Connection, cid: int) -> None:
    """Forget everything the index holds for a container but its ``containers`` row."""
    for table in (
        "hidden_buckets",
        "range_parts",
        "postings",
        "blocks",
        "parts",
        "field_hits",
        "profiles",
        "key_ranges",
        "scan_state",
    ):
        tb = t[table]
        conn.execute(tb.delete().where(tb.c.container_id == cid))


def clear_ranges(t: dict[str, Table], conn: Connection, cid: int, ranges: Iterable[int]) -> None:
    """Forget the findings and summaries of some key ranges of a container; keep the others."""
    from sqlalchemy import select

    rp, k = t["range_parts"], t["key_ranges"]
    wanted = sorted(set(ranges))
    for start in range(0, len(wanted), LOOKUP_CHUNK):
        chunk = wanted[start : start + LOOKUP_CHUNK]
        parts = [
            pid
            for (pid,) in conn.execute(select(rp.c.part_id).where(rp.c.container_id == cid, rp.c.range_no.in_(chunk)))
        ]
        for table in ("hidden_buckets", "range_parts", "postings", "blocks"):
            tb = t[table]
            conn.execute(tb.delete().where(tb.c.part_id.in_(parts)))
        conn.execute(t["parts"].delete().where(t["parts"].c.id.in_(parts)))
        conn.execute(k.delete().where(k.c.container_id == cid, k.c.range_no.in_(chunk)))


class PartWriter:
    """Inserts packed parts into an open transaction: the driver's for a whole container
    (``ContainerWrite``), or a worker's for one unit (``discover.index_direct.UnitWrite``)."""

    def __init__(
        self, index: Index, conn: Connection, tx: Any, container_id: int, *, generation: int, unit_no: int | None
    ) -> None:
        self.index = index
        self.conn = conn
        self.tx = tx
        self.container_id = container_id
        self.generation = generation
        self.unit_no = unit_no
        self.findings = 0
        # The stored part that incoming parts are merged into: its id, blocks so far, entries held.
        self._part_id: int | None = None
        self._blocks = 0
        self._runs: list[Any] = []
        self._held = 0

    def add_part(self, part: Part, range_no: int | None = None) -> None:
        """Insert a packed part (``discover.packing``): its blocks now, its postings merged with
        those of the parts before it into one stored part of up to ``MERGED_PART_ENTRIES``
        entries, so that a look-up reads one bucket row per stored part, not per work unit.
        A part of a key range (``range_no``, incremental rescans) is stored alone, so that a
        rescan can replace that range's parts.

        Memory: the part given, and the entries held for the merge.
        """
        from sqlalchemy import insert

        if not part.blocks:
            return
        t = self.index.t
        incoming = sum(len(e) for _, e in part.postings) // ENTRY_SIZE
        if self._part_id is not None and (range_no is not None or self._held + incoming > MERGED_PART_ENTRIES):
            self._flush()
        if self._part_id is None:
            self._part_id = new_id(
                self.conn.execute(
                    insert(t["parts"]).values(
                        container_id=self.container_id, generation=self.generation, unit_no=self.unit_no
                    )
                )
            )
        cid, offset = self.container_id, self._blocks
        self.conn.execute(
            insert(t["blocks"]),
            [
                {
                    "part_id": self._part_id,
                    "block_no": b.block_no + offset,
                    "container_id": cid,
                    "findings": b.findings,
                    "meta": b.meta,
                    "data": b.data,
                }
                for b in part.blocks
            ],
        )
        self._blocks += max(b.block_no for b in part.blocks) + 1
        self._runs.append(part_entries(part, offset))
        self._held += incoming
        self.findings += part.findings
        if range_no is not None:
            self.conn.execute(
                insert(t["range_parts"]).values(part_id=self._part_id, container_id=cid, range_no=range_no)
            )
            self._flush()

    def _flush(self) -> None:
        """Write the held entries as the current stored part's postings."""
        from sqlalchemy import insert

        if self._part_id is None:
            return
        entries = self._runs[0] if len(self._runs) == 1 else merge_entries(self._runs)
        self._runs, self._held = [], 0
        self.conn.execute(
            insert(self.index.t["postings"]),
            [
                {"part_id": self._part_id, "container_id": self.container_id, "code": code, "entries": data}
                for code, data in postings_rows(entries)
            ],
        )
        self._part_id, self._blocks = None, 0

    def rollback(self) -> None:
        if self.tx.is_active:
            self.tx.rollback()
        self.conn.close()


class ContainerWrite(PartWriter):
    """One container's replacement: old rows deleted, new rows inserted, committed together.

    If anything fails before :meth:`commit`, the transaction rolls back and the index keeps
    what it knew of the container before.
    """

    def __init__(
        self,
        index: Index,
        ref: ContainerRef,
        *,
        run_id: int,
        url: str,
        replace: Iterable[int] | None = None,
        generation: int | None = None,
        hide: Mapping[int, Collection[int]] | None = None,
        hide_width: int = 0,
    ) -> None:
        """With ``replace`` (key range numbers), only those ranges' findings are replaced; the
        other ranges' stay (an incremental rescan). Profiles and counts are always rewritten.

        With ``generation``, workers wrote the container's parts already, tagged with that
        generation (``discover.index_direct``): this write makes it the one readers see.

        With ``hide`` (range number: bucket numbers ``k // hide_width``), the parts those ranges
        had before this write keep their findings but no longer show those of records in these
        buckets (``discover.index_hidden``); the parts added now show theirs. A range is in
        ``replace`` or in ``hide``, never both. ``hide`` makes the write incremental: without
        ``replace``, no range is replaced."""
        if hide:
            if replace is None:
                replace = ()
            replace = list(replace)
            both = set(replace) & set(hide)
            if both:
                raise ValueError(f"ranges {sorted(both)} are both replaced and hidden")
            if hide_width <= 0:
                raise ValueError(f"hide_width must be a positive number of keys, not {hide_width}")
        self.ref = ref
        conn = index.engine.connect()
        tx = conn.begin()
        c = index.t["containers"]
        cid = container_id(index.t, conn, ref.source, ref.name)
        from sqlalchemy import select

        values = {
            "kind": ref.kind,
            "url": url,
            "version": json.dumps(dict(ref.version)) if ref.version else None,
            "run_id": run_id,
            "scanned_at": utcnow(),
        }
        if cid is not None and hide:
            # Before the generation switch: the parts readers see now, not those units just wrote.
            current = int(conn.execute(select(c.c.generation).where(c.c.id == cid)).scalar() or 0)
            hide_buckets(index.t, conn, cid, current, hide, hide_width)
        if cid is None:
            cid = new_id(conn.execute(c.insert().values(source=ref.source, name=ref.name, **values)))
        elif generation is not None:
            from discover.index_direct import switch_generation  # it builds on this module

            switch_generation(index.t, conn, cid, generation, replace)
            conn.execute(c.update().where(c.c.id == cid).values(**values, generation=generation))
        elif replace is None:
            clear_container(index.t, conn, cid)
            conn.execute(c.update().where(c.c.id == cid).values(**values))
        else:
            for table in ("field_hits", "profiles", "scan_state"):
                t = index.t[table]
                conn.execute(t.delete().where(t.c.container_id == cid))
            clear_ranges(index.t, conn, cid, replace)
            conn.execute(c.update().where(c.c.id == cid).values(**values))
        if generation is None:  # parts written here join the generation readers see
            generation = int(conn.execute(select(c.c.generation).where(c.c.id == cid)).scalar() or 0)
        super().__init__(index, conn, tx, cid, generation=generation, unit_no=None)

    def clear_ranges(self, ranges: Iterable[int]) -> None:
        """Forget, in this write, the findings and summaries these key ranges had before."""
        self._flush()
        clear_ranges(self.index.t, self.conn, self.container_id, ranges)

    def commit(
        self,
        *,
        records: int,
        profiles: Sequence[dict[str, Any]],
        hits: Sequence[dict[str, Any]],
        skipped_records: int,
        skipped_fields: Sequence[str],
        warnings: Sequence[str],
        state: dict[str, Any] | None = None,
        ranges: dict[int, tuple[str, str]] | None = None,
    ) -> None:
        """``state`` and ``ranges`` (number: fingerprint, summary; only those (re)written now)
        are what the next incremental rescan compares against."""
        t = self.index.t
        self._flush()
        if state is not None:
            self.conn.execute(t["scan_state"].insert().values(container_id=self.container_id, state=json.dumps(state)))
        if ranges:
            # A range whose buckets were hidden kept its row: its new summary replaces it.
            k = t["key_ranges"]
            numbers = sorted(ranges)
            for start in range(0, len(numbers), LOOKUP_CHUNK):
                chunk = numbers[start : start + LOOKUP_CHUNK]
                self.conn.execute(k.delete().where(k.c.container_id == self.container_id, k.c.range_no.in_(chunk)))
            self.conn.execute(
                t["key_ranges"].insert(),
                [
                    {"container_id": self.container_id, "range_no": no, "fingerprint": fp, "summary": summary}
                    for no, (fp, summary) in sorted(ranges.items())
                ],
            )
        if profiles:
            self.conn.execute(t["profiles"].insert(), [{**p, "container_id": self.container_id} for p in profiles])
        if hits:
            self.conn.execute(
                t["field_hits"].insert(),
                [{**h, "container_id": self.container_id, "examples": json.dumps(h["examples"])} for h in hits],
            )
        c = t["containers"]
        self.conn.execute(
            c.update()
            .where(c.c.id == self.container_id)
            .values(
                records=records,
                skipped_records=skipped_records,
                skipped_fields=json.dumps(list(skipped_fields)),
                warnings=json.dumps(list(warnings)) if warnings else None,
                error=None,
                stale=0,
            )
        )
        self.tx.commit()
        self.conn.close()
