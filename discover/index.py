"""The per-subject index. It is itself personal data, so it holds keyed hashes only, and
record keys that are personal data (an e-mail as primary key) sealed (``discover.sealing``).

Tables: ``containers`` (what was scanned, its version and last error), ``profiles``
(stage-1 field profiles), ``field_hits`` (records with a hit per field and entity type,
masked examples), ``runs`` (scan runs with counts and per-container errors), and the
findings (entity type, keyed hash, record key, field, score, origin, span), packed a batch
of records per row in ``blocks`` and found through ``postings`` (``discover.packing``;
``parts`` only groups the two). ``Index.links`` gives the identifiers that share a record,
strong when both are e-mail or phone. Findings inside free text never link: a note that
mentions someone else must not merge two people.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import os
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from connectors.base import ContainerRef
from connectors.errors import ConfigError
from connectors.private import create_private_file, private_dir
from connectors.redact import mask_url, quote_password
from discover.errors import IndexBusyError, MissingIndexError
from discover.extract import FIELD
from discover.hashing import IdentifierHasher, load_key
from discover.identifiers import STRONG as _STRONG
from discover.index_direct import visible_parts
from discover.index_hidden import HiddenBuckets, load_hidden, load_visible_hidden
from discover.index_schema import (
    LOOKUP_CHUNK,
    SCHEMA_VERSION,
    check_local_index,
    migrate,
    new_id,
    open_error,
    schema,
    utcnow,
)
from discover.index_write import ContainerWrite, clear_container, container_id
from discover.packing import DecodedBlock, Finding, bucket_codes, search
from discover.rows import ContainerRow, FieldHitRow, FindingRow, LinkRow, ProfileRow, RecordRef, RunRow
from discover.sealing import SEALED_PREFIX, KeySealer

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

logger = logging.getLogger(__name__)

DEFAULT_INDEX = "sqlite:///.piiport/index.db"


@dataclass(frozen=True)
class LastScan:
    """What the last successful scan of a container recorded (``Index.last_scans``)."""

    container_id: int
    version: dict[str, Any] | None
    state: dict[str, Any]
    #: Per key range: its fingerprint and its summary (JSON text).
    ranges: dict[int, tuple[str, str]]


class Index:
    """Opens (and creates or migrates) the index at a SQLAlchemy URL."""

    def __init__(self, url: str | None = None, *, key: bytes | None = None, create: bool = True) -> None:
        from sqlalchemy import create_engine, event
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError, SQLAlchemyError

        self.url = url or DEFAULT_INDEX
        try:
            parsed = make_url(quote_password(self.url))
        except (ArgumentError, ValueError) as exc:
            raise ConfigError(f"index URL {mask_url(self.url)} is not a SQLAlchemy URL", setting="index") from exc
        self.path: Path | None = None
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
            self.path = Path(parsed.database).expanduser()
            if not self.path.exists() and not create:
                raise MissingIndexError(f"no index at {self.path}", setting="index")
            private_dir(self.path.parent)
        key_file = self.path.with_name(self.path.stem + ".key") if self.path else None
        if key_file is not None and self.path is not None:
            check_local_index(self.path, key_file, self.url, key_given=key is not None)
        self.hasher = IdentifierHasher(key if key is not None else load_key(key_file=key_file, create=create))
        # SQLite gives the -wal, -shm and -journal files the mode of the database file.
        created = self.path is not None and create_private_file(self.path)
        self.engine: Engine = create_engine(parsed)
        # WAL lets readers (inventory, export) work beside a scan; a first load into an empty
        # index uses a rollback journal instead, which writes each page once (see bulk_load).
        self._journal = "WAL"
        if self.engine.dialect.name == "sqlite":

            @event.listens_for(self.engine, "connect")
            def _pragmas(dbapi_conn: Any, _record: Any) -> None:
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA foreign_keys=ON")
                cur.execute(f"PRAGMA journal_mode={self._journal}")
                cur.execute("PRAGMA synchronous=NORMAL")
                cur.close()

        self.md = schema(self.engine.dialect.name)
        self.t = self.md.tables
        try:
            self._migrate()
        except SQLAlchemyError as exc:
            if created and self.path is not None and self.path.stat().st_size == 0:
                self.path.unlink()  # an empty file left behind would later read as a truncated index
            raise open_error(self.url, exc) from exc

    def _migrate(self) -> None:
        migrate(self.engine, self.md, key_fingerprint=self.hasher.fingerprint(), url=self.url)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- hashing and sealing ---------------------------------------------------------------------
    def ident(self, entity_type: str, normalised: str) -> bytes:
        return self.hasher.digest(entity_type, normalised)

    @functools.cached_property
    def sealer(self) -> KeySealer:
        """Seals the record keys of containers whose key is personal data."""
        return KeySealer(self.hasher.key)

    # -- runs -----------------------------------------------------------------------------------
    def start_run(self, sources: Sequence[str]) -> int:
        with self.engine.begin() as conn:
            result = conn.execute(
                self.t["runs"].insert().values(started_at=utcnow(), status="running", sources=json.dumps(list(sources)))
            )
            return new_id(result)

    def finish_run(self, run_id: int, *, status: str, summary: dict[str, Any]) -> None:
        """Close a run and keep a snapshot of the inventory as it stands (see ``discover.changes``)."""
        from discover.changes import encode_snapshot

        runs, snaps = self.t["runs"], self.t["run_snapshots"]
        with self.engine.begin() as conn:
            conn.execute(
                runs.update()
                .where(runs.c.id == run_id)
                .values(finished_at=utcnow(), status=status, summary=json.dumps(summary, default=str))
            )
            data = encode_snapshot(self.containers_in(conn), self.field_counts_in(conn))
            conn.execute(snaps.delete().where(snaps.c.run_id == run_id))
            conn.execute(snaps.insert().values(run_id=run_id, data=data))

    def snapshot_data(self, run_id: int) -> bytes | None:
        """The stored snapshot of a run (``discover.changes.decode_snapshot`` reads it), if any."""
        from sqlalchemy import select

        snaps = self.t["run_snapshots"]
        with self.engine.connect() as conn:
            data = conn.execute(select(snaps.c.data).where(snaps.c.run_id == run_id)).scalar()
        return bytes(data) if data is not None else None

    def containers_in(self, conn: Connection) -> list[dict[str, Any]]:
        from sqlalchemy import select

        c = self.t["containers"]
        stmt = select(c.c.source, c.c.name, c.c.kind, c.c.records, c.c.error, c.c.stale).order_by(c.c.source, c.c.name)
        return [dict(r) for r in conn.execute(stmt).mappings()]

    def field_counts_in(self, conn: Connection) -> list[dict[str, Any]]:
        from sqlalchemy import select

        c, h = self.t["containers"], self.t["field_hits"]
        stmt = (
            select(
                c.c.source,
                c.c.name.label("container"),
                h.c.field,
                h.c.entity_type,
                h.c.origin,
                h.c.records,
                h.c.non_null,
                h.c.prevalence,
            )
            .join(h, h.c.container_id == c.c.id)
            .order_by(c.c.source, c.c.name, h.c.field, h.c.entity_type)
        )
        return [dict(r) for r in conn.execute(stmt).mappings()]

    def records_known(self, source: str, name: str, keys: Iterable[str]) -> int:
        """How many of these record keys of one container hold findings in the index.

        Memory: one chunk of keys and the blocks they point at."""
        from sqlalchemy import select

        c = self.t["containers"]
        with self.engine.connect() as conn:
            cid = conn.execute(select(c.c.id).where(c.c.source == source, c.c.name == name)).scalar()
        if cid is None:
            return 0
        known = 0
        chunk: list[RecordRef] = []
        for key in keys:
            chunk.append(RecordRef(cid, key))
            if len(chunk) >= LOOKUP_CHUNK * 5:
                known += len({f.record_key for f in self.findings_in(chunk)})
                chunk = []
        if chunk:
            known += len({f.record_key for f in self.findings_in(chunk)})
        return known

    def container_record_counts(self, source: str, name: str) -> int:
        """Records of one container that the index holds personal data for (hidden ones not).

        A table's record is in one block; a file's may be in two, when fields its sample did not
        decide were read in a second pass (``discover.sparse``), so its keys are counted once
        each. Memory: one block; for a file, its keys with personal data."""
        from sqlalchemy import select

        b, c = self.t["blocks"], self.t["containers"]
        with self.engine.connect() as conn:
            found = conn.execute(select(c.c.id, c.c.kind).where(c.c.source == source, c.c.name == name)).first()
            if found is None:
                return 0
            cid, kind = found
            hidden = load_visible_hidden(self.t, conn, visible_parts(self.t), cid)
            rows = conn.execute(
                select(b.c.part_id, b.c.meta).where(b.c.container_id == cid, b.c.part_id.in_(visible_parts(self.t)))
            )
            if kind != "table":
                return len({k for _, meta in rows for k in json.loads(meta)["keys"]})
            total = 0
            for part_id, meta in rows:
                keys = json.loads(meta)["keys"]
                total += len(keys) - len(hidden.positions(part_id, keys))
            return total

    @contextlib.contextmanager
    def scan_lock(self) -> Iterator[None]:
        """Hold the index for one scan: a second scan is refused with the run that holds it.

        The lock dies with its process (a ``flock`` on a file beside a SQLite index, an advisory
        lock on PostgreSQL, ``GET_LOCK`` on MySQL/MariaDB), so a run still marked "running" when
        the lock is taken belongs to a scan that was killed: it is marked "interrupted".
        """
        with self._exclusive() as held:
            if not held:
                raise self._busy()
            runs = self.t["runs"]
            with self.engine.begin() as conn:
                conn.execute(runs.update().where(runs.c.status == "running").values(status="interrupted"))
            yield

    def scan_in_progress(self) -> bool:
        """Whether a scan holds the index now (see :meth:`scan_lock`)."""
        if self.path is not None and not _lock_path(self.path).exists():
            return False  # no scan has ever locked this index; never create the lock file here
        with self._exclusive() as held:
            return not held

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[bool]:
        """Try to take the scan lock without waiting; yields whether it was taken."""
        dialect = self.engine.dialect.name
        if self.path is not None:
            try:
                import fcntl
            except ImportError:  # not a POSIX system: no lock between scans
                yield True
                return
            fd = os.open(_lock_path(self.path), os.O_RDWR | os.O_CREAT, 0o600)
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    yield False
                    return
                yield True
            finally:
                os.close(fd)  # closing the file releases the lock
            return
        if dialect not in {"postgresql", "mysql", "mariadb"}:
            yield True
            return
        from sqlalchemy import text

        if dialect == "postgresql":  # advisory locks are per database
            take = text("SELECT pg_try_advisory_lock(:k)").bindparams(k=_PG_LOCK_KEY)
            release = text("SELECT pg_advisory_unlock(:k)").bindparams(k=_PG_LOCK_KEY)
        else:  # GET_LOCK names are per server: name the database
            name = f"piiport-scan-{self.engine.url.database}"[:64]
            take = text("SELECT GET_LOCK(:n, 0)").bindparams(n=name)
            release = text("SELECT RELEASE_LOCK(:n)").bindparams(n=name)
        with self.engine.connect() as conn:
            held = bool(conn.execute(take).scalar())
            conn.commit()
            try:
                yield held
            finally:
                if held:
                    conn.execute(release)
                    conn.commit()

    def _busy(self) -> IndexBusyError:
        from sqlalchemy import select
        from sqlalchemy.exc import SQLAlchemyError

        runs = self.t["runs"]
        row = None
        with contextlib.suppress(SQLAlchemyError), self.engine.connect() as conn:
            row = conn.execute(
                select(runs.c.id, runs.c.started_at)
                .where(runs.c.status == "running")
                .order_by(runs.c.id.desc())
                .limit(1)
            ).first()
        held_by = f" (run {row.id}, running since {row.started_at})" if row is not None else ""
        return IndexBusyError(
            f"another scan holds the index {mask_url(self.url)}{held_by}",
            run_id=row.id if row is not None else None,
            since=row.started_at if row is not None else None,
        )

    def interrupted_runs(self) -> list[RunRow]:
        """Runs that stopped before they finished (a killed scan), unless a later run that finished
        scanned all their sources again."""
        runs = self.runs()
        live = self.scan_in_progress()
        latest_running = max((r.id for r in runs if r.status == "running"), default=None)
        out = []
        for run in runs:
            orphan = run.status == "running" and not (live and run.id == latest_running)
            if run.status != "interrupted" and not orphan:
                continue
            redone = any(
                later.id > run.id and later.status in ("ok", "errors") and set(run.sources) <= set(later.sources)
                for later in runs
            )
            if not redone:
                out.append(dataclasses.replace(run, status="interrupted"))
        return out

    def runs(self) -> list[RunRow]:
        from sqlalchemy import select

        runs = self.t["runs"]
        with self.engine.connect() as conn:
            rows = conn.execute(select(runs).order_by(runs.c.id)).all()
        return [
            RunRow(
                id=r.id,
                started_at=r.started_at,
                finished_at=r.finished_at,
                status=r.status,
                sources=json.loads(r.sources),
                summary=json.loads(r.summary or "null"),
            )
            for r in rows
        ]

    # -- writing one container ------------------------------------------------------------------
    def last_scans(self, source: str) -> dict[str, LastScan]:
        """What the last successful scan of each container of a source left for an incremental
        rescan; a container that failed since (its findings are stale) has none.

        Read before the source's containers are written: a reader beside an open write
        transaction would wait on it (SQLite).
        """
        from sqlalchemy import select

        c, st, k = self.t["containers"], self.t["scan_state"], self.t["key_ranges"]
        out: dict[str, LastScan] = {}
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(c.c.id, c.c.name, c.c.version, c.c.error, c.c.stale, st.c.state)
                .join(st, st.c.container_id == c.c.id)
                .where(c.c.source == source)
            ).all()
            live = {row.id: row for row in rows if row.error is None and not row.stale}
            ranges: dict[int, dict[int, tuple[str, str]]] = {cid: {} for cid in live}
            stmt = (
                select(k.c.container_id, k.c.range_no, k.c.fingerprint, k.c.summary)
                .join(c, c.c.id == k.c.container_id)
                .where(c.c.source == source)
            )
            for r in conn.execute(stmt):
                if r.container_id in ranges:
                    ranges[r.container_id][int(r.range_no)] = (r.fingerprint, r.summary)
        for cid, row in live.items():
            out[row.name] = LastScan(
                container_id=cid,
                version=json.loads(row.version) if row.version else None,
                state=json.loads(row.state),
                ranges=ranges[cid],
            )
        return out

    def keep_state(self, container_id: int, state: dict[str, Any]) -> None:
        """Replace what the next incremental rescan of a container compares against, and nothing
        else: a rescan that found no record changed, but took a newer table version and token."""
        st = self.t["scan_state"]
        with self.engine.begin() as conn:
            conn.execute(st.update().where(st.c.container_id == container_id).values(state=json.dumps(state)))

    def begin_container(
        self,
        ref: ContainerRef,
        *,
        run_id: int,
        url: str,
        replace: Iterable[int] | None = None,
        generation: int | None = None,
        hide: Mapping[int, Collection[int]] | None = None,
        hide_width: int = 0,
    ) -> ContainerWrite:
        """Start replacing what the index knows of one container (with ``replace``, of those key
        ranges only), in one transaction; with ``generation``, by the parts workers wrote
        (``discover.index_direct``); with ``hide``, hiding some key buckets of some ranges'
        existing parts (``ContainerWrite``, ``discover.index_hidden``)."""
        return ContainerWrite(
            self,
            ref,
            run_id=run_id,
            url=url,
            replace=replace,
            generation=generation,
            hide=hide,
            hide_width=hide_width,
        )

    def container_failed(self, ref: ContainerRef, *, run_id: int, url: str, error: str) -> None:
        """Record an error; findings from an earlier scan stay, marked stale."""
        c = self.t["containers"]
        with self.engine.begin() as conn:
            cid = container_id(self.t, conn, ref.source, ref.name)
            values = {"error": error, "run_id": run_id, "scanned_at": utcnow(), "stale": 1}
            if cid is None:
                conn.execute(c.insert().values(source=ref.source, name=ref.name, kind=ref.kind, url=url, **values))
            else:
                conn.execute(c.update().where(c.c.id == cid).values(**values))

    @contextlib.contextmanager
    def bulk_load(self) -> Iterator[None]:
        """A first load into an empty SQLite index runs with a rollback journal rather than WAL:
        each page is written once, not to the log and then again. Transactions stay atomic;
        what is lost is only reading the index while that first scan writes it.
        """
        with self.engine.connect() as conn:
            empty = conn.execute(self.t["parts"].select().limit(1)).first() is None
        if empty:
            self._set_journal("DELETE")
        try:
            yield
        finally:
            if empty:
                self._set_journal("WAL")

    def _set_journal(self, mode: str) -> None:
        """Switch an SQLite index's journal mode (a no-op elsewhere, or while another process has it open)."""
        if self.engine.dialect.name != "sqlite" or self.path is None:
            return
        from sqlalchemy.exc import SQLAlchemyError

        self._journal = mode
        self.engine.dispose()  # pooled connections were opened with the old mode
        try:
            with self.engine.connect() as conn:
                conn.exec_driver_sql(f"PRAGMA journal_mode={mode}")
        except SQLAlchemyError as exc:  # busy: the mode stays as it was, which is only slower
            logger.debug("index journal mode not changed to %s: %s", mode, exc)

    def container_names(self, source: str) -> list[str]:
        from sqlalchemy import select

        c = self.t["containers"]
        with self.engine.connect() as conn:
            return [name for (name,) in conn.execute(select(c.c.name).where(c.c.source == source))]

    def prune(
        self, source: str, keep: Iterable[str], *, spare: Sequence[str] = (), only: Iterable[str] | None = None
    ) -> int:
        """Forget the containers of a source that its listing no longer has, except those whose
        names start with a ``spare`` prefix (under a folder that could not be listed); with
        ``only``, just those of these names."""
        from sqlalchemy import select

        c = self.t["containers"]
        keep_set = set(keep)
        prefixes = tuple(spare)
        among = None if only is None else set(only)
        with self.engine.begin() as conn:
            rows = conn.execute(select(c.c.id, c.c.name).where(c.c.source == source)).all()
            gone = [
                cid
                for cid, name in rows
                if name not in keep_set
                and not (prefixes and name.startswith(prefixes))
                and (among is None or name in among)
            ]
            for cid in gone:
                clear_container(self.t, conn, cid)
                conn.execute(c.delete().where(c.c.id == cid))
        return len(gone)

    # -- reading ----------------------------------------------------------------------------------
    def containers(self, source: str | None = None) -> list[ContainerRow]:
        from sqlalchemy import select

        c = self.t["containers"]
        stmt = select(c).order_by(c.c.source, c.c.name)
        if source is not None:
            stmt = stmt.where(c.c.source == source)
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).all()
        return [
            ContainerRow(
                id=r.id,
                source=r.source,
                name=r.name,
                kind=r.kind,
                url=r.url,
                version=json.loads(r.version) if r.version else None,
                records=r.records,
                skipped_records=r.skipped_records,
                skipped_fields=json.loads(r.skipped_fields) if r.skipped_fields else None,
                warnings=json.loads(r.warnings) if r.warnings else None,
                error=r.error,
                stale=bool(r.stale),
                scanned_at=r.scanned_at,
                run_id=r.run_id,
                generation=int(r.generation or 0),
            )
            for r in rows
        ]

    def field_hits(self) -> list[FieldHitRow]:
        from sqlalchemy import select

        c, h = self.t["containers"], self.t["field_hits"]
        stmt = (
            select(c.c.source, c.c.name.label("container"), c.c.stale, h)
            .join(h, h.c.container_id == c.c.id)
            .order_by(c.c.source, c.c.name, h.c.field, h.c.entity_type)
        )
        with self.engine.connect() as conn:
            return [FieldHitRow(**{**r, "stale": bool(r["stale"])}) for r in conn.execute(stmt).mappings()]

    def profiles(self, container_id: int | None = None) -> list[ProfileRow]:
        """The field profiles of one container, or (``None``) of every container."""
        from sqlalchemy import select

        p = self.t["profiles"]
        stmt = select(p) if container_id is None else select(p).where(p.c.container_id == container_id)
        with self.engine.connect() as conn:
            return [ProfileRow(**{**r, "free_text": bool(r["free_text"])}) for r in conn.execute(stmt).mappings()]

    def findings_for(
        self, idents: Iterable[bytes], *, origin: str | None = None, skip_owned: bool = False
    ) -> list[FindingRow]:
        """Findings whose identifier hash is one of ``idents``.

        With ``skip_owned``, not those in a typed or name field of a record that holds an e-mail
        or a phone in such a field (``discover.packing.OWNED``; an index written before that flag
        existed returns them all).
        """
        wanted = set(idents)
        out: list[FindingRow] = []
        for block, positions in self._lookup(wanted, skip_owned=skip_owned):
            for pos in positions:
                f = block.finding(pos)
                if f.ident in wanted and (origin is None or f.origin == origin) and f.record not in block.hidden:
                    out.append(self._row(block, f))
        return out

    def findings_in(self, records: Iterable[RecordRef], *, origin: str | None = None) -> list[FindingRow]:
        """Every finding of the given records (record keys as the source knows them)."""
        refs = set(records)
        if not refs:
            return []
        from sqlalchemy import select

        c = self.t["containers"]
        with self.engine.connect() as conn:
            names = {cid: (source, name) for cid, source, name in conn.execute(select(c.c.id, c.c.source, c.c.name))}
        hashes = {
            self.hasher.record_digester(*names[ref.container_id])(ref.record_key)
            for ref in refs
            if ref.container_id in names
        }
        out: list[FindingRow] = []
        for block, positions in self._lookup(hashes, containers={ref.container_id for ref in refs}):
            for pos in positions:
                if pos >= len(block.keys) or pos in block.hidden:
                    continue  # a finding's entry whose hash prefix equals a record's, or a hidden record
                key = self._open_key(block.keys[pos])
                if RecordRef(block.container_id, key) not in refs:
                    continue  # another record whose hash shares the prefix
                out.extend(self._row(block, f) for f in block.of_record(pos) if origin is None or f.origin == origin)
        return out

    def iter_findings(self) -> Iterator[FindingRow]:
        """Every finding in the index (not those of hidden records). Memory: one block, and the
        hidden buckets of the index."""
        from sqlalchemy import select

        b = self.t["blocks"]
        with self.engine.connect() as conn:
            hidden = load_visible_hidden(self.t, conn, visible_parts(self.t))
            stmt = (
                select(b.c.part_id, b.c.container_id, b.c.meta, b.c.data)
                .where(b.c.part_id.in_(visible_parts(self.t)))
                .order_by(b.c.part_id, b.c.block_no)
            )
            for row in conn.execute(stmt):
                block = _StoredBlock(row.part_id, row.container_id, row.meta, row.data, hidden)
                for f in block.all():
                    if f.record not in block.hidden:
                        yield self._row(block, f)

    def count_findings(self) -> int:
        """Findings in the index, not those of hidden records: only the blocks of parts that hide
        some records are read. Memory: one block."""
        from sqlalchemy import func, select

        with self.engine.connect() as conn:
            b = self.t["blocks"]
            stmt = select(func.coalesce(func.sum(b.c.findings), 0)).where(b.c.part_id.in_(visible_parts(self.t)))
            total = int(conn.execute(stmt).scalar() or 0)
            hidden = load_visible_hidden(self.t, conn, visible_parts(self.t))
            for part_id in sorted(hidden.parts):
                for meta, data in conn.execute(select(b.c.meta, b.c.data).where(b.c.part_id == part_id)):
                    block = _StoredBlock(part_id, 0, meta, data, hidden)
                    total -= block.count_of(block.hidden)
            return total

    def links(self, ident: bytes) -> list[LinkRow]:
        """The identifiers on each record that carries ``ident`` in a typed or name field (one
        row per record and identifier): strong when both are e-mail or phone. Findings inside
        free text never link (a note that mentions someone else must not merge two people)."""
        found = self.findings_for([ident], origin=FIELD)
        records = {RecordRef(f.container_id, f.record_key) for f in found}
        strong_self = any(f.entity_type in _STRONG for f in found)
        return [
            LinkRow(
                ident=f.ident,
                entity_type=f.entity_type,
                strength="strong" if strong_self and f.entity_type in _STRONG else "weak",
                container_id=f.container_id,
                record_key=f.record_key,
            )
            for f in self.findings_in(records, origin=FIELD)
            if f.ident != ident
        ]

    # -- look-ups in the packed findings ------------------------------------------------------
    def _lookup(
        self, hashes: set[bytes], *, skip_owned: bool = False, containers: set[int] | None = None
    ) -> list[tuple[_StoredBlock, list[int]]]:
        """The blocks that postings entries of ``hashes`` point to, each with the positions
        pointed at (findings, or records for record hashes), in ``containers`` only if given.
        Callers check what they find: entries are matched by an 8-byte prefix, and a block's
        ``hidden`` records (``discover.index_hidden``) are still pointed at.
        Memory: the blocks pointed at."""
        from sqlalchemy import select

        by_code: dict[int, list[bytes]] = {}
        for h in hashes:
            for code in bucket_codes(h):
                by_code.setdefault(code, []).append(h)
        p, b, hb = self.t["postings"], self.t["blocks"], self.t["hidden_buckets"]
        # Whether a part hides records, asked with its postings: an index without hidden
        # buckets pays no query of its own for them.
        hides = select(hb.c.part_id).where(hb.c.part_id == p.c.part_id).exists().label("hides")
        hiding: set[int] = set()
        positions: dict[tuple[int, int], dict[int, None]] = {}
        codes = list(by_code)
        out: list[tuple[_StoredBlock, list[int]]] = []
        with self.engine.connect() as conn:
            for start in range(0, len(codes), LOOKUP_CHUNK):
                # By code alone: SQLite would rather scan the container's whole postings than
                # combine the two indexes, so other containers' rows are skipped here.
                stmt = select(p.c.part_id, p.c.container_id, p.c.code, p.c.entries, hides).where(
                    p.c.code.in_(codes[start : start + LOOKUP_CHUNK]), p.c.part_id.in_(visible_parts(self.t))
                )
                for part, cid, code, entries, part_hides in conn.execute(stmt):
                    if containers is not None and cid not in containers:
                        continue
                    if part_hides:
                        hiding.add(part)
                    for h in by_code[code]:
                        for block_no, pos in search(entries, h, skip_owned=skip_owned):
                            positions.setdefault((part, block_no), {})[pos] = None
            by_part: dict[int, list[int]] = {}
            for part, block_no in sorted(positions):
                by_part.setdefault(part, []).append(block_no)
            # Per part: SQLite answers ``(part_id, block_no) IN (...)`` by scanning every block.
            hidden = load_hidden(self.t, conn, hiding & by_part.keys()) if hiding else HiddenBuckets()
            for part, block_nos in by_part.items():
                for start in range(0, len(block_nos), LOOKUP_CHUNK):
                    stmt = select(b.c.part_id, b.c.block_no, b.c.container_id, b.c.meta, b.c.data).where(
                        b.c.part_id == part, b.c.block_no.in_(block_nos[start : start + LOOKUP_CHUNK])
                    )
                    for row in conn.execute(stmt):
                        block = _StoredBlock(row.part_id, row.container_id, row.meta, row.data, hidden)
                        out.append((block, list(positions[(row.part_id, row.block_no)])))
        return out

    def _open_key(self, stored: str) -> str:
        return self.sealer.open(stored) if stored.startswith(SEALED_PREFIX) else stored

    def _row(self, block: _StoredBlock, f: Finding) -> FindingRow:
        return FindingRow(
            block.container_id,
            self._open_key(block.keys[f.record]),
            f.field,
            f.entity_type,
            f.ident,
            f.score,
            f.origin,
            f.span_start,
            f.span_end,
        )


#: The PostgreSQL advisory lock a scan holds (a constant: advisory locks are per database).
_PG_LOCK_KEY = 0x7069_6970_6F72_74  # "piiport"


def _lock_path(index_path: Path) -> Path:
    return index_path.with_name(index_path.name + ".lock")


class _StoredBlock(DecodedBlock):
    """A block read from the index; ``hidden``: the positions of its records that a rescan of
    their key buckets replaced (``discover.index_hidden``), which no read may return."""

    def __init__(self, part_id: int, container_id: int, meta: str, data: bytes, hidden: HiddenBuckets) -> None:
        super().__init__(meta, data)
        self.container_id = container_id
        self.hidden = hidden.positions(part_id, self.keys)


__all__ = [
    "DEFAULT_INDEX",
    "FIELD",
    "SCHEMA_VERSION",
    "ContainerWrite",
    "Index",
    "LastScan",
    "RecordRef",
    "utcnow",
]
