"""The service's store: jobs, API tokens and the audit trail, in one database beside the index.

A SQLite index gets ``service.db`` in the same private folder (mode 0600); a PostgreSQL index
keeps these tables in its own database, so several servers share them.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    make_url,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, OperationalError, ProgrammingError

from connectors.errors import ConfigError
from connectors.redact import mask_url

STORE_FILE = "service.db"

metadata = MetaData()

jobs = Table(
    "piiport_jobs",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("request_id", String(100), nullable=False, unique=True),
    Column("status", String(16), nullable=False, index=True),
    Column("created_at", String(32), nullable=False, index=True),
    Column("started_at", String(32)),
    Column("finished_at", String(32)),
    #: Keyed hash of the normalised request body, to tell a retry from a conflicting request.
    Column("body_hash", String(64), nullable=False),
    #: The identifiers, sealed under the index key (AES-SIV); cleared when the job ends.
    Column("sealed", Text),
    #: JSON: masked identifiers, keyed hashes of them, format, callback URL.
    Column("params", Text, nullable=False),
    Column("actor", String(100), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("claim", String(64)),
    Column("owner", String(200)),
    Column("lease_until", Float),
    #: JSON: manifest summary, errors, refusal reason, package location and sha256.
    Column("result", Text),
    Column("package", Text),
    #: JSON list of callback delivery attempts; ``callback_due`` is when the next one is due.
    Column("callbacks", Text),
    Column("callback_due", Float, index=True),
)

scans = Table(
    "piiport_scans",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("status", String(16), nullable=False, index=True),
    Column("created_at", String(32), nullable=False),
    Column("started_at", String(32)),
    Column("finished_at", String(32)),
    #: JSON list of the config's source names to scan (empty: all of them).
    Column("sources", Text, nullable=False),
    Column("actor", String(100), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("claim", String(64)),
    Column("owner", String(200)),
    Column("lease_until", Float),
    Column("result", Text),
)

tokens = Table(
    "piiport_tokens",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("secret_hash", String(64), nullable=False),
    Column("scopes", Text, nullable=False),
    Column("created_at", String(32), nullable=False),
    Column("revoked_at", String(32)),
)

audit = Table(
    "piiport_audit",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("at", String(32), nullable=False, index=True),
    Column("actor", String(100), nullable=False),
    Column("action", String(40), nullable=False),
    Column("request_id", String(100)),
    Column("identifiers", Text, nullable=False),
    Column("outcome", String(20), nullable=False),
    Column("package_sha256", String(64)),
    Column("detail", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)

#: The last entry's sequence number and hash, written in the same transaction as the entry, so
#: that deleting the newest entries (which no later entry points at) is detected too.
audit_head = Table(
    "piiport_audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", Integer, nullable=False),
    Column("hash", String(64), nullable=False),
)


def utcnow() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def store_url(index_url: str) -> str:
    """Where the store of an index lives: ``service.db`` beside a SQLite index, else the index's database."""
    try:
        parsed = make_url(index_url)
    except ArgumentError as exc:
        raise ConfigError(f"index URL {mask_url(index_url)} is not a SQLAlchemy URL", setting="index") from exc
    if parsed.get_backend_name() == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            raise ConfigError("the service needs an index on disk, not in memory; pass --index", setting="index")
        return f"sqlite:///{Path(parsed.database).expanduser().with_name(STORE_FILE)}"
    return index_url


class Store:
    """The engine over the store's tables, created on first use."""

    def __init__(self, url: str) -> None:
        self.url = url
        #: ``engine`` is for writes; ``reader`` for reads (on SQLite, a deferred transaction that
        #: takes no write lock, so polls and token checks never queue behind a writer).
        self.engine: Engine
        self.reader: Engine
        if url.startswith("sqlite"):
            self.engine = _sqlite_engine(url, begin="BEGIN IMMEDIATE")
            self.reader = _sqlite_engine(url, begin="BEGIN")
        else:
            self.engine = self.reader = create_engine(url, pool_pre_ping=True)
        try:
            metadata.create_all(self.engine)
        except ProgrammingError:
            # Another server created the tables at the same moment.
            metadata.create_all(self.engine)
        except OperationalError as exc:
            reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
            raise ConfigError(f"cannot open the service store {mask_url(url)}: {reason}", setting="index") from exc

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def close(self) -> None:
        self.engine.dispose()
        self.reader.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _sqlite_engine(url: str, *, begin: str) -> Engine:
    database = make_url(url).database
    assert database
    path = Path(database)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Created 0600 before SQLite opens it; SQLite gives its -wal and -shm files the same mode.
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    engine = create_engine(url, connect_args={"timeout": 30})

    # On the writing engine every transaction takes the write lock up front (BEGIN IMMEDIATE), so
    # a claim or an audit append reads and writes without another process slipping in between.
    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql(begin)

    return engine
