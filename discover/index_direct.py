"""Workers writing a PostgreSQL index directly, by generations.

Each container has a current ``generation`` (``containers.generation``); readers see only the
parts of that generation (:func:`visible_parts`, the one filter). A scan with direct writes
gives the container a new generation (the run's id: never reused, so parts a killed scan left
behind never join a later generation), each work unit writes its own parts tagged with it in one
short transaction of its own (:class:`UnitWrite`), and the driver's commit of the container
switches it to the new generation and deletes the others (:func:`switch_generation`). Until
then, readers see the previous generation, and a container that fails or a scan that is killed
leaves it visible. A unit that runs again (a retry) first deletes the parts it wrote before.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from connectors.base import ContainerRef
from discover.index_schema import LOOKUP_CHUNK, new_id, utcnow
from discover.index_write import PartWriter, container_id

if TYPE_CHECKING:
    from sqlalchemy import Table
    from sqlalchemy.engine import Connection

    from discover.index import Index


@dataclass(frozen=True)
class UnitTarget:
    """Where a unit writes its parts: plain numbers, never the index's URL or key."""

    container_id: int
    generation: int
    unit_no: int


def supports_direct_writes(index: Index) -> bool:
    """PostgreSQL takes concurrent writers; SQLite keeps one writer, the scanning process."""
    return index.engine.dialect.name == "postgresql"


def visible_parts(t: dict[str, Table]) -> Any:
    """``SELECT`` of the ids of the parts readers may see: those of their container's generation."""
    from sqlalchemy import select

    p, c = t["parts"], t["containers"]
    return select(p.c.id).join(c, c.c.id == p.c.container_id).where(p.c.generation == c.c.generation)


def open_generation(index: Index, ref: ContainerRef, *, run_id: int, url: str) -> tuple[int, int]:
    """The container's id and the new generation its units write, committed at once so that
    workers can refer to it. A container the index does not know yet gets its row now, marked
    with an error that its commit clears: a killed scan leaves it listed as not scanned."""
    c = index.t["containers"]
    with index.engine.begin() as conn:
        cid = container_id(index.t, conn, ref.source, ref.name)
        if cid is None:
            cid = new_id(
                conn.execute(
                    c.insert().values(
                        source=ref.source,
                        name=ref.name,
                        kind=ref.kind,
                        url=url,
                        run_id=run_id,
                        scanned_at=utcnow(),
                        stale=1,
                        error=f"{ref.name}: not scanned yet (run {run_id} did not finish it)",
                    )
                )
            )
    return cid, run_id


def drop_parts(t: dict[str, Table], conn: Connection, cid: int, parts: Iterable[int]) -> None:
    """Delete parts of a container with their blocks, postings, range links and hidden buckets."""
    ids = sorted(set(parts))
    for start in range(0, len(ids), LOOKUP_CHUNK):
        chunk = ids[start : start + LOOKUP_CHUNK]
        for table in ("hidden_buckets", "range_parts", "postings", "blocks"):
            tb = t[table]
            # By container too: its index finds the rows (postings have none on part_id).
            conn.execute(tb.delete().where(tb.c.container_id == cid, tb.c.part_id.in_(chunk)))
        conn.execute(t["parts"].delete().where(t["parts"].c.id.in_(chunk)))


def switch_generation(
    t: dict[str, Table], conn: Connection, cid: int, generation: int, replace: Iterable[int] | None
) -> None:
    """In the container's commit: forget what the new generation replaces and any generation
    a killed scan left. With ``replace`` (an incremental rescan), the parts of the other key
    ranges move to the new generation, with their hidden buckets (``discover.index_hidden``,
    keyed by part); the caller sets ``containers.generation``."""
    from sqlalchemy import select

    p, rp, k, c = t["parts"], t["range_parts"], t["key_ranges"], t["containers"]
    for table in ("field_hits", "profiles", "scan_state"):
        tb = t[table]
        conn.execute(tb.delete().where(tb.c.container_id == cid))
    if replace is None:
        conn.execute(k.delete().where(k.c.container_id == cid))
    else:
        old = conn.execute(select(c.c.generation).where(c.c.id == cid)).scalar()
        wanted = sorted(set(replace))
        for start in range(0, len(wanted), LOOKUP_CHUNK):
            chunk = wanted[start : start + LOOKUP_CHUNK]
            replaced = select(rp.c.part_id).where(rp.c.container_id == cid, rp.c.range_no.in_(chunk))
            stmt = select(p.c.id).where(p.c.container_id == cid, p.c.generation == old, p.c.id.in_(replaced))
            drop_parts(t, conn, cid, [pid for (pid,) in conn.execute(stmt)])
            conn.execute(k.delete().where(k.c.container_id == cid, k.c.range_no.in_(chunk)))
        conn.execute(p.update().where(p.c.container_id == cid, p.c.generation == old).values(generation=generation))
    stale = select(p.c.id).where(p.c.container_id == cid, p.c.generation != generation)
    drop_parts(t, conn, cid, [pid for (pid,) in conn.execute(stale)])


def discard_generation(index: Index, cid: int, generation: int) -> None:
    """Delete what the units of a failed container wrote (its previous generation stays)."""
    from sqlalchemy import select

    p, c = index.t["parts"], index.t["containers"]
    with index.engine.begin() as conn:
        if conn.execute(select(c.c.generation).where(c.c.id == cid)).scalar() == generation:
            return  # committed after all: it is what readers see
        stmt = select(p.c.id).where(p.c.container_id == cid, p.c.generation == generation)
        drop_parts(index.t, conn, cid, [pid for (pid,) in conn.execute(stmt)])


class UnitWrite(PartWriter):
    """One unit's parts, written by the worker in one transaction: the parts an earlier attempt
    of the same unit wrote are deleted first, so a retried unit never doubles its findings."""

    def __init__(self, index: Index, target: UnitTarget) -> None:
        from sqlalchemy import select

        conn = index.engine.connect()
        tx = conn.begin()
        p = index.t["parts"]
        earlier = select(p.c.id).where(
            p.c.container_id == target.container_id,
            p.c.generation == target.generation,
            p.c.unit_no == target.unit_no,
        )
        drop_parts(index.t, conn, target.container_id, [pid for (pid,) in conn.execute(earlier)])
        super().__init__(index, conn, tx, target.container_id, generation=target.generation, unit_no=target.unit_no)

    def commit(self) -> None:
        self._flush()
        self.tx.commit()
        self.conn.close()
