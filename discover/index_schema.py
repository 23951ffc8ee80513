"""The index's tables and schema version, and the checks made when an index is opened:
a file that is not an index, a missing key, a schema this piiport cannot read."""

from __future__ import annotations

import contextlib
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from connectors.errors import ConfigError, PiiportError, wrong_password
from connectors.redact import mask_url
from discover.errors import IndexBusyError
from discover.hashing import KEY_ENV

if TYPE_CHECKING:
    from sqlalchemy import MetaData
    from sqlalchemy.engine import Connection, Engine

SCHEMA_VERSION = "5"
#: Versions this piiport opens: version 2 lacks the tables of incremental rescans, which opening
#: it adds (its containers then get a full read on their next scan), and the ``OWNED`` flag of
#: postings entries, which only makes exports skip namesakes' records without reading them.
#: Versions 2 and 3 lack the generation columns (``discover.index_direct``), added with the
#: default 0: every part they hold belongs to its container's current generation.
#: Versions 2 to 4 lack ``hidden_buckets`` (``discover.index_hidden``), created empty: nothing hidden.
UPGRADABLE = {"2", "3", "4"}
#: Columns added to existing tables since version 2: (table, column, SQL type and default).
ADDED_COLUMNS = (
    ("containers", "generation", "INTEGER NOT NULL DEFAULT 0"),
    ("parts", "generation", "INTEGER NOT NULL DEFAULT 0"),
    ("parts", "unit_no", "INTEGER"),
)
#: Values bound in one ``IN (...)`` list.
LOOKUP_CHUNK = 400


def utcnow(now: datetime | None = None) -> str:
    """``now`` (default: the current UTC time) to the second, as the index, manifests and reports write it."""
    return (now or datetime.now(timezone.utc)).isoformat(timespec="seconds").replace("+00:00", "Z")


def schema(dialect: str | None = None) -> Any:
    """The index's tables; for an engine of ``dialect`` (None: any), MySQL and MariaDB's long
    types only where they are needed (their dialect takes a few milliseconds to import)."""
    from sqlalchemy import (
        BigInteger,
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

    long_text: Any = Text()
    long_blob: Any = LargeBinary()
    if dialect is None or dialect in ("mysql", "mariadb"):
        from sqlalchemy.dialects.mysql import LONGBLOB, LONGTEXT

        long_text = long_text.with_variant(LONGTEXT(), "mysql", "mariadb")
        long_blob = long_blob.with_variant(LONGBLOB(), "mysql", "mariadb")
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
        # The generation of parts readers see (``discover.index_direct``): workers writing a
        # PostgreSQL index add a new one beside it, and the container's commit switches to it.
        Column("generation", Integer, nullable=False, default=0, server_default="0"),
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
    # Findings, packed (``discover.packing``): a row per batch of records, not per finding.
    Table(
        "parts",
        md,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("container_id", Integer, ForeignKey("containers.id", ondelete="CASCADE"), nullable=False),
        Column("generation", Integer, nullable=False, default=0, server_default="0"),
        # The work unit that wrote the part (direct writes): a retried unit replaces its own parts.
        Column("unit_no", Integer),
        Index("ix_parts_container", "container_id"),
    )
    Table(
        "blocks",
        md,
        Column("part_id", Integer, ForeignKey("parts.id", ondelete="CASCADE"), primary_key=True),
        Column("block_no", Integer, primary_key=True, autoincrement=False),
        Column("container_id", Integer, nullable=False),
        Column("findings", Integer, nullable=False),
        # On MySQL, LONGTEXT / LONGBLOB: a block outgrows TEXT's and BLOB's 64 KB.
        Column("meta", long_text, nullable=False),
        Column("data", long_blob, nullable=False),
        Index("ix_blocks_container", "container_id"),
    )
    Table(
        "postings",
        md,
        Column("part_id", Integer, ForeignKey("parts.id", ondelete="CASCADE"), nullable=False),
        Column("container_id", Integer, nullable=False),
        Column("code", Integer, nullable=False),
        Column("entries", long_blob, nullable=False),
        Index("ix_postings_code", "code"),
        Index("ix_postings_container", "container_id"),
    )
    # Incremental rescans (``discover.incremental``): what the last successful scan of a
    # container saw, and, for a table read by key ranges, each range's fingerprint and counts.
    Table(
        "scan_state",
        md,
        Column("container_id", Integer, ForeignKey("containers.id", ondelete="CASCADE"), primary_key=True),
        Column("state", Text, nullable=False),
    )
    Table(
        "key_ranges",
        md,
        Column("container_id", Integer, ForeignKey("containers.id", ondelete="CASCADE"), primary_key=True),
        Column("range_no", BigInteger, primary_key=True, autoincrement=False),
        Column("fingerprint", String(200), nullable=False),
        # Per range: records, counts per field, masked examples, warnings (no identifier).
        Column("summary", long_text, nullable=False),
    )
    Table(
        "range_parts",
        md,
        Column("part_id", Integer, ForeignKey("parts.id", ondelete="CASCADE"), primary_key=True),
        Column("container_id", Integer, nullable=False),
        Column("range_no", BigInteger, nullable=False),
        Index("ix_range_parts_container", "container_id", "range_no"),
    )
    # Records of a range's old parts that a rescan of a few of the range's key buckets replaced
    # (``discover.index_hidden``): per part and rescan, the bucket width and the buckets (JSON list).
    Table(
        "hidden_buckets",
        md,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("part_id", Integer, ForeignKey("parts.id", ondelete="CASCADE"), nullable=False),
        Column("container_id", Integer, nullable=False),
        Column("width", BigInteger, nullable=False),
        Column("buckets", long_text, nullable=False),
        Index("ix_hidden_buckets_part", "part_id"),
        Index("ix_hidden_buckets_container", "container_id"),
    )
    # What the index knew when each run finished (``discover.changes``): counts and statuses,
    # no identifiers, so two runs can be compared after later scans replaced the rows above.
    Table(
        "run_snapshots",
        md,
        Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True, autoincrement=False),
        Column("data", long_blob, nullable=False),
    )
    return md


def migrate(engine: Engine, md: MetaData, *, key_fingerprint: str, url: str) -> None:
    """Create the tables an index lacks, stamp a new index with the schema version and the key's
    fingerprint, upgrade an older version this piiport can read, and refuse the rest."""
    from sqlalchemy import inspect, select

    with engine.begin() as conn:
        existing = set(inspect(conn).get_table_names())
        if existing and "meta" not in existing:
            raise ConfigError(NOT_AN_INDEX.format(url=mask_url(url)), setting="index")
        md.create_all(conn)
        meta = md.tables["meta"]
        rows: dict[str, str] = {k: v for k, v in conn.execute(select(meta.c.k, meta.c.v)).all()}
        fingerprint = key_fingerprint
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
        elif rows.get("schema_version") in UPGRADABLE:
            _add_columns(conn)
            conn.execute(meta.update().where(meta.c.k == "schema_version").values(v=SCHEMA_VERSION))
        elif rows.get("schema_version") != SCHEMA_VERSION and "meta" in existing:
            raise ConfigError(
                f"index schema version {rows.get('schema_version')} is not supported by this piiport; "
                "scan into a new index",
                setting="index",
            )


def _add_columns(conn: Connection) -> None:
    from sqlalchemy import inspect

    inspector = inspect(conn)
    for table, column, sql in ADDED_COLUMNS:
        if column not in {c["name"] for c in inspector.get_columns(table)}:
            conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {column} {sql}")


def new_id(result: Any) -> int:
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def check_local_index(path: Path, key_file: Path, url: str, *, key_given: bool) -> None:
    """Refuse, before any key is read or created, a file that is not a piiport index, and a
    missing key file beside an index that holds data (a new key would only be refused later)."""
    if not path.is_file():
        return
    if path.stat().st_size == 0:
        # SQLite would take an empty file as a new, empty index and report no personal data.
        raise ConfigError(
            f"{path} is empty, so it is not a piiport index (was it truncated?); restore it from "
            "backup, or delete it to start a new index",
            setting="index",
        )
    import sqlite3
    from urllib.parse import quote

    try:
        with contextlib.closing(sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True)) as db:
            tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            keyed = "meta" in tables and db.execute("SELECT 1 FROM meta WHERE k = 'key_fingerprint'").fetchone()
    except sqlite3.Error:
        return  # damaged or locked: opening it says which
    if tables and "meta" not in tables:
        raise ConfigError(NOT_AN_INDEX.format(url=mask_url(url)), setting="index")
    if keyed and not key_given and not os.environ.get(KEY_ENV) and not key_file.exists():
        raise ConfigError(
            f"key file {key_file} is missing, but the index {path} already holds data written with a key; "
            f"restore the key file from backup (or set {KEY_ENV} to the key); a new key cannot read this index",
            path=str(key_file),
        )


NOT_AN_INDEX = (
    "{url} is not a piiport index (it holds other tables); give the URL of a piiport index, "
    "or of an empty database for a new one"
)


def open_error(url: str, exc: Exception) -> PiiportError:
    """Advice that fits why the index could not be opened."""
    detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
    lowered = detail.lower()
    where = f"cannot open index {mask_url(url)}: {mask_url(detail)}"
    if "not a database" in lowered or "malformed" in lowered or "file is encrypted" in lowered:
        return ConfigError(f"{where}; the index file is damaged: restore it from backup, or scan into a new index")
    if "locked" in lowered or "busy" in lowered:
        return IndexBusyError(f"{where}; another piiport process is writing it")
    if wrong_password(detail):
        return ConfigError(
            f"{where}; check the user and password of the index URL (or PGPASSWORD, ~/.pgpass, MYSQL_PWD)",
            setting="index",
        )
    if "permission denied" in lowered or "readonly" in lowered or "read-only" in lowered:
        return ConfigError(f"{where}; give this user read and write access to the index", setting="index")
    return ConfigError(f"{where}; check the URL and that the database is reachable", setting="index")
