"""The per-subject index. It is itself personal data, so it holds keyed hashes only, and
record keys that are personal data (an e-mail as primary key) sealed (``discover.sealing``).

Tables: ``containers`` (what was scanned, its version and last error), ``profiles``
(stage-1 field profiles), ``field_hits`` (records with a hit per field and entity type,
masked examples), ``findings`` (entity type, keyed hash, record key, field, score,
origin), ``runs`` (scan runs with counts and per-container errors), and the view
``links``: identifiers that share a record, strong when both are e-mail or phone.
Findings inside free text never link: a note that mentions someone else must not merge
two people.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from connectors.base import ContainerRef
from connectors.errors import ConfigError
from connectors.redact import mask_url
from discover.extract import FIELD, FindingGroup
from discover.hashing import IdentifierHasher, load_key
from discover.sealing import SEALED_PREFIX, KeySealer

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

logger = logging.getLogger(__name__)

DEFAULT_INDEX = "sqlite:///.piiport/index.db"
FINDING_COLUMNS = (
    "container_id",
    "record_key",
    "field",
    "entity_type",
    "ident",
    "score",
    "origin",
    "span_start",
    "span_end",
)
SCHEMA_VERSION = "1"
_INSERT_CHUNK = 5000


def _sqlite_literal(value: Any) -> str | None:
    """``value`` as an SQLite literal, or ``None`` if it cannot be written safely as one."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return repr(value) if value == value and value not in (float("inf"), float("-inf")) else None
    if isinstance(value, str) and "\x00" not in value:
        return "'" + value.replace("'", "''") + "'"
    return None


def utcnow() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _schema() -> Any:
    from sqlalchemy import (
        Column,
        Float,
        ForeignKey,
        Index,
        Integer,
        LargeBinary,
        MetaData,
        String,
        Table,
        Text,
        UniqueConstraint,
    )

    md = MetaData()
    Table("meta", md, Column("k", String(64), primary_key=True), Column("v", Text, nullable=False))
    Table(
        "runs",
        md,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("started_at", String(32), nullable=False),
        Column("finished_at", String(32)),
        Column("status", String(16), nullable=False),
        Column("sources", Text, nullable=False),
        Column("summary", Text),
    )
    Table(
        "containers",
        md,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("source", String(200), nullable=False),
        Column("name", String(1000), nullable=False),
        Column("kind", String(32), nullable=False),
        Column("url", Text),
        Column("version", Text),
        Column("records", Integer),
        Column("skipped_records", Integer),
        Column("skipped_fields", Text),
        Column("warnings", Text),
        Column("error", Text),
        Column("stale", Integer, nullable=False, default=0),
        Column("scanned_at", String(32)),
        Column("run_id", Integer),
        UniqueConstraint("source", "name", name="uq_container"),
    )
    Table(
        "profiles",
        md,
        Column("container_id", Integer, ForeignKey("containers.id", ondelete="CASCADE"), nullable=False),
        Column("field", String(1000), nullable=False),
        Column("entity_type", String(32)),
        Column("name_part", String(8)),
        Column("free_text", Integer, nullable=False),
        Column("sampled", Integer, nullable=False),
        Column("hit_rate", Float, nullable=False),
        Column("null_share", Float, nullable=False),
        Column("distinct_share", Float, nullable=False),
        Column("reason", Text),
        Index("ix_profiles_container", "container_id"),
    )
    Table(
        "field_hits",
        md,
        Column("container_id", Integer, ForeignKey("containers.id", ondelete="CASCADE"), nullable=False),
        Column("field", String(1000), nullable=False),
        Column("entity_type", String(32), nullable=False),
        Column("origin", String(8), nullable=False),
        Column("records", Integer, nullable=False),
        Column("non_null", Integer, nullable=False),
        Column("prevalence", Float, nullable=False),
        Column("examples", Text),
        Index("ix_hits_container", "container_id"),
    )
    Table(
        "findings",
        md,
        Column("container_id", Integer, ForeignKey("containers.id", ondelete="CASCADE"), nullable=False),
        Column("record_key", String(512), nullable=False),
        Column("field", String(1000), nullable=False),
        Column("entity_type", String(32), nullable=False),
        Column("ident", LargeBinary(16), nullable=False),
        Column("score", Float, nullable=False),
        Column("origin", String(8), nullable=False),
        Column("span_start", Integer),
        Column("span_end", Integer),
        Index("ix_findings_ident", "ident"),
        Index("ix_findings_record", "container_id", "record_key"),
    )
    return md


_LINKS_VIEW = """
CREATE VIEW links AS
SELECT a.ident AS a_ident, a.entity_type AS a_type, b.ident AS b_ident, b.entity_type AS b_type,
       CASE WHEN a.entity_type IN ('EMAIL_ADDRESS', 'PHONE_NUMBER')
             AND b.entity_type IN ('EMAIL_ADDRESS', 'PHONE_NUMBER') THEN 'strong' ELSE 'weak' END AS strength,
       a.container_id AS container_id, a.record_key AS record_key
FROM findings a JOIN findings b
  ON a.container_id = b.container_id AND a.record_key = b.record_key AND a.ident <> b.ident
WHERE a.origin = 'field' AND b.origin = 'field'
"""


def _new_id(result: Any) -> int:
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


@dataclass(frozen=True)
class RecordRef:
    """A record the index knows: its container and key."""

    container_id: int
    record_key: str


class Index:
    """Opens (and creates or migrates) the index at a SQLAlchemy URL."""

    def __init__(self, url: str | None = None, *, key: bytes | None = None, create: bool = True) -> None:
        from sqlalchemy import create_engine, event
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError, SQLAlchemyError

        self.url = url or DEFAULT_INDEX
        try:
            parsed = make_url(self.url)
        except ArgumentError as exc:
            raise ConfigError(f"index URL {mask_url(self.url)} is not a SQLAlchemy URL", setting="index") from exc
        self.path: Path | None = None
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
            self.path = Path(parsed.database).expanduser()
            if not self.path.exists() and not create:
                raise ConfigError(f"no index at {self.path}; run `piiport scan` first or pass --index", setting="index")
            self.path.parent.mkdir(parents=True, exist_ok=True)
        key_file = self.path.with_name(self.path.stem + ".key") if self.path else None
        self.hasher = IdentifierHasher(key if key is not None else load_key(key_file=key_file, create=create))
        self.engine: Engine = create_engine(self.url)
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

        self.md = _schema()
        self.t = self.md.tables
        try:
            self._migrate()
        except SQLAlchemyError as exc:
            raise ConfigError(
                f"cannot open index {mask_url(self.url)}: {str(getattr(exc, 'orig', None) or exc).splitlines()[0]}; "
                "check the URL and that the database is reachable",
                setting="index",
            ) from exc

    def _migrate(self) -> None:
        from sqlalchemy import inspect, select, text

        with self.engine.begin() as conn:
            existing = set(inspect(conn).get_table_names())
            self.md.create_all(conn)
            if "links" not in set(inspect(conn).get_view_names()):
                conn.execute(text(_LINKS_VIEW))
            meta = self.t["meta"]
            rows: dict[str, str] = {k: v for k, v in conn.execute(select(meta.c.k, meta.c.v)).all()}
            fingerprint = self.hasher.fingerprint()
            if not rows:
                conn.execute(
                    meta.insert(),
                    [{"k": "schema_version", "v": SCHEMA_VERSION}, {"k": "key_fingerprint", "v": fingerprint}],
                )
            elif rows.get("key_fingerprint") != fingerprint:
                raise ConfigError(
                    "this index was written with a different key; set PIIPORT_INDEX_KEY (or restore the key "
                    "file) to the key used when it was created",
                    setting="PIIPORT_INDEX_KEY",
                )
            elif rows.get("schema_version") != SCHEMA_VERSION and "meta" in existing:
                raise ConfigError(
                    f"index schema version {rows.get('schema_version')} is not supported by this piiport; "
                    "scan into a new index",
                    setting="index",
                )

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

    def _opened(self, row: Any) -> dict[str, Any]:
        out = dict(row)
        if out["record_key"].startswith(SEALED_PREFIX):
            out["record_key"] = self.sealer.open(out["record_key"])
        return out

    # -- runs -----------------------------------------------------------------------------------
    def start_run(self, sources: Sequence[str]) -> int:
        with self.engine.begin() as conn:
            result = conn.execute(
                self.t["runs"].insert().values(started_at=utcnow(), status="running", sources=json.dumps(list(sources)))
            )
            return _new_id(result)

    def finish_run(self, run_id: int, *, status: str, summary: dict[str, Any]) -> None:
        runs = self.t["runs"]
        with self.engine.begin() as conn:
            conn.execute(
                runs.update()
                .where(runs.c.id == run_id)
                .values(finished_at=utcnow(), status=status, summary=json.dumps(summary, default=str))
            )

    def runs(self) -> list[dict[str, Any]]:
        from sqlalchemy import select

        runs = self.t["runs"]
        with self.engine.connect() as conn:
            rows = conn.execute(select(runs).order_by(runs.c.id)).mappings().all()
        return [
            {**dict(r), "sources": json.loads(r["sources"]), "summary": json.loads(r["summary"] or "null")}
            for r in rows
        ]

    # -- writing one container ------------------------------------------------------------------
    def _container_id(self, conn: Connection, source: str, name: str) -> int | None:
        from sqlalchemy import select

        c = self.t["containers"]
        return conn.execute(select(c.c.id).where(c.c.source == source, c.c.name == name)).scalar()

    def _clear(self, conn: Connection, container_id: int) -> None:
        for table in ("findings", "field_hits", "profiles"):
            t = self.t[table]
            conn.execute(t.delete().where(t.c.container_id == container_id))

    def begin_container(self, ref: ContainerRef, *, run_id: int, url: str) -> ContainerWrite:
        """Start replacing what the index knows of one container, in one transaction."""
        return ContainerWrite(self, ref, run_id=run_id, url=url)

    def container_failed(self, ref: ContainerRef, *, run_id: int, url: str, error: str) -> None:
        """Record an error; findings from an earlier scan stay, marked stale."""
        c = self.t["containers"]
        with self.engine.begin() as conn:
            cid = self._container_id(conn, ref.source, ref.name)
            values = {"error": error, "run_id": run_id, "scanned_at": utcnow(), "stale": 1}
            if cid is None:
                conn.execute(c.insert().values(source=ref.source, name=ref.name, kind=ref.kind, url=url, **values))
            else:
                conn.execute(c.update().where(c.c.id == cid).values(**values))

    @contextlib.contextmanager
    def bulk_load(self) -> Iterator[None]:
        """Into an empty index, load findings first and build their indexes after: much faster.

        On SQLite the first load also runs with a rollback journal rather than WAL (each page is
        written once, not to the log and then again; about a fifth less time). Transactions stay
        atomic; what is lost is only reading the index while that first scan writes it.
        """
        findings = self.t["findings"]
        with self.engine.connect() as conn:
            empty = conn.execute(findings.select().limit(1)).first() is None
        secondary = [i for i in findings.indexes if i.name in {"ix_findings_ident", "ix_findings_record"}]
        if empty:
            self._set_journal("DELETE")
            with self.engine.begin() as conn:
                for ix in secondary:
                    ix.drop(conn, checkfirst=True)
        try:
            yield
        finally:
            if empty:
                with self.engine.begin() as conn:
                    if conn.dialect.name == "sqlite":
                        # SQLite's sorter may use helper threads to build an index; it is off by default.
                        conn.exec_driver_sql(f"PRAGMA threads={min(4, os.cpu_count() or 1)}")
                    for ix in secondary:
                        ix.create(conn, checkfirst=True)
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

    def prune(self, source: str, keep: Iterable[str]) -> int:
        """Forget the containers of a source that its listing no longer has."""
        from sqlalchemy import select

        c = self.t["containers"]
        keep_set = set(keep)
        with self.engine.begin() as conn:
            rows = conn.execute(select(c.c.id, c.c.name).where(c.c.source == source)).all()
            gone = [cid for cid, name in rows if name not in keep_set]
            for cid in gone:
                self._clear(conn, cid)
                conn.execute(c.delete().where(c.c.id == cid))
        return len(gone)

    # -- reading ----------------------------------------------------------------------------------
    def containers(self, source: str | None = None) -> list[dict[str, Any]]:
        from sqlalchemy import select

        c = self.t["containers"]
        stmt = select(c).order_by(c.c.source, c.c.name)
        if source is not None:
            stmt = stmt.where(c.c.source == source)
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).mappings().all()
        out = []
        for r in rows:
            row = dict(r)
            for k in ("version", "skipped_fields", "warnings"):
                row[k] = json.loads(row[k]) if row[k] else None
            out.append(row)
        return out

    def field_hits(self) -> list[dict[str, Any]]:
        from sqlalchemy import select

        c, h = self.t["containers"], self.t["field_hits"]
        stmt = (
            select(c.c.source, c.c.name.label("container"), c.c.stale, h)
            .join(h, h.c.container_id == c.c.id)
            .order_by(c.c.source, c.c.name, h.c.field, h.c.entity_type)
        )
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(stmt).mappings()]

    def profiles(self, container_id: int) -> list[dict[str, Any]]:
        from sqlalchemy import select

        p = self.t["profiles"]
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(select(p).where(p.c.container_id == container_id)).mappings()]

    def findings_for(self, idents: Iterable[bytes], *, origin: str | None = None) -> list[dict[str, Any]]:
        """Findings whose identifier hash is one of ``idents``."""
        from sqlalchemy import select

        f = self.t["findings"]
        wanted = list(set(idents))
        out: list[dict[str, Any]] = []
        with self.engine.connect() as conn:
            for start in range(0, len(wanted), 500):
                stmt = select(f).where(f.c.ident.in_(wanted[start : start + 500]))
                if origin is not None:
                    stmt = stmt.where(f.c.origin == origin)
                out.extend(self._opened(r) for r in conn.execute(stmt).mappings())
        return out

    def findings_in(self, records: Iterable[RecordRef], *, origin: str | None = None) -> list[dict[str, Any]]:
        """Every finding of the given records (record keys as the source knows them, sealed or not)."""
        from sqlalchemy import and_, or_, select

        f = self.t["findings"]
        refs = list(set(records))
        out: list[dict[str, Any]] = []
        with self.engine.connect() as conn:
            for start in range(0, len(refs), 200):
                chunk = refs[start : start + 200]
                cond = or_(
                    *(
                        and_(
                            f.c.container_id == r.container_id,
                            f.c.record_key.in_([r.record_key, self.sealer.seal(r.record_key)]),
                        )
                        for r in chunk
                    )
                )
                stmt = select(f).where(cond)
                if origin is not None:
                    stmt = stmt.where(f.c.origin == origin)
                out.extend(self._opened(r) for r in conn.execute(stmt).mappings())
        return out

    def iter_findings(self) -> Iterator[dict[str, Any]]:
        from sqlalchemy import select

        with self.engine.connect() as conn:
            yield from (self._opened(r) for r in conn.execute(select(self.t["findings"])).mappings())


class ContainerWrite:
    """One container's replacement: old rows deleted, new rows inserted, committed together.

    If anything fails before :meth:`commit`, the transaction rolls back and the index keeps
    what it knew of the container before.
    """

    def __init__(self, index: Index, ref: ContainerRef, *, run_id: int, url: str) -> None:
        self.index = index
        self.ref = ref
        self.conn = index.engine.connect()
        self.tx = self.conn.begin()
        c = index.t["containers"]
        cid = index._container_id(self.conn, ref.source, ref.name)
        values = {
            "kind": ref.kind,
            "url": url,
            "version": json.dumps(dict(ref.version)) if ref.version else None,
            "run_id": run_id,
            "scanned_at": utcnow(),
        }
        if cid is None:
            cid = _new_id(self.conn.execute(c.insert().values(source=ref.source, name=ref.name, **values)))
        else:
            index._clear(self.conn, cid)
            self.conn.execute(c.update().where(c.c.id == cid).values(**values))
        self.container_id = cid
        self.findings = 0

    def add_groups(self, groups: Sequence[FindingGroup]) -> None:
        """Insert hashed findings (``values`` are keyed hashes, keys sealed where they are personal
        data), one bulk insert per group.

        Rows are assembled by ``zip`` in C and handed to the driver's ``executemany``; on
        SQLite the values shared by a whole group (container, field, type, origin, score) are
        written into the statement as literals, so only the key and hash are bound per row.
        Memory: the groups given.
        """
        for group in groups:
            if group.keys:
                self._insert(group)
                self.findings += len(group.keys)

    def _insert(self, g: FindingGroup) -> None:
        n = len(g.keys)
        scores = g.score if isinstance(g.score, list) else None
        starts, ends = (g.starts, g.ends) if g.starts is not None else (None, None)
        shared = {
            "container_id": self.container_id,
            "field": g.field,
            "entity_type": g.entity_type,
            "origin": g.origin,
            "score": None if scores is not None else g.score,
            "span_start": None,
            "span_end": None,
        }
        per_row: dict[str, Any] = {"record_key": g.keys, "ident": g.values}
        if scores is not None:
            per_row["score"] = scores
        if starts is not None and ends is not None:
            per_row.update(span_start=starts, span_end=ends)
        dialect = self.conn.dialect
        if dialect.name == "sqlite" and all(_sqlite_literal(shared[c]) is not None for c in shared if c not in per_row):
            bound = [c for c in FINDING_COLUMNS if c in per_row]
            values = ", ".join("?" if c in per_row else str(_sqlite_literal(shared[c])) for c in FINDING_COLUMNS)
            sql = f"INSERT INTO findings ({', '.join(FINDING_COLUMNS)}) VALUES ({values})"
            cursor = self.conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            try:
                cursor.executemany(sql, zip(*(per_row[c] for c in bound), strict=True))
            finally:
                cursor.close()
            return
        columns = [per_row[c] if c in per_row else itertools.repeat(shared[c], n) for c in FINDING_COLUMNS]
        marker = {"qmark": "?", "format": "%s", "pyformat": "%s"}.get(dialect.paramstyle)
        rows = zip(*columns, strict=True)
        if marker is not None:
            # The driver's own executemany: several times faster than building a dict per row.
            placeholders = ", ".join([marker] * len(FINDING_COLUMNS))
            sql = f"INSERT INTO findings ({', '.join(FINDING_COLUMNS)}) VALUES ({placeholders})"
            while chunk := list(itertools.islice(rows, _INSERT_CHUNK)):
                self.conn.exec_driver_sql(sql, chunk)
        else:
            table = self.index.t["findings"]
            while chunk := list(itertools.islice(rows, _INSERT_CHUNK)):
                self.conn.execute(table.insert(), [dict(zip(FINDING_COLUMNS, r, strict=True)) for r in chunk])

    def commit(
        self,
        *,
        records: int,
        profiles: Sequence[dict[str, Any]],
        hits: Sequence[dict[str, Any]],
        skipped_records: int,
        skipped_fields: Sequence[str],
        warnings: Sequence[str],
    ) -> None:
        t = self.index.t
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

    def rollback(self) -> None:
        if self.tx.is_active:
            self.tx.rollback()
        self.conn.close()


__all__ = ["DEFAULT_INDEX", "FIELD", "ContainerWrite", "Index", "RecordRef", "utcnow"]
