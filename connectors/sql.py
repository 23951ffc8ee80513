"""Relational databases through SQLAlchemy: SQLite, PostgreSQL, MySQL/MariaDB, and any other dialect.

Records are located by primary key. A table without one is located by SQLite's rowid,
else by a unique index, else by a hash of the whole row (a weaker locator: the row is
found again only while its content is unchanged).
"""

from __future__ import annotations

import contextlib
import decimal
import functools
import hashlib
import json
import logging
import os
import random
import sqlite3
import time
import warnings
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from connectors.base import (
    Columns,
    Connector,
    ContainerReader,
    ContainerRef,
    FieldInfo,
    Record,
    Relation,
    SourceSpec,
    decode_key,
    encode_key,
    register,
)
from connectors.errors import SourceError, wrong_password
from connectors.flatten import flatten
from connectors.flatten import loads as json_loads
from connectors.redact import mask_url, quote_password

if TYPE_CHECKING:
    from sqlalchemy import Table
    from sqlalchemy.engine import Engine

logger = logging.getLogger(__name__)

_SYSTEM_SCHEMAS = {
    "information_schema",
    "pg_catalog",
    "pg_toast",
    "mysql",
    "performance_schema",
    "sys",
}
_FETCH_CHUNK = 500


def _logical_type(sa_type: Any) -> str:
    from sqlalchemy import types as t

    if isinstance(sa_type, t.TypeDecorator):
        sa_type = sa_type.impl_instance  # a SQLite column read leniently (_lenient_types) keeps its type

    checks: list[tuple[type, str]] = [
        (t.LargeBinary, "bytes"),
        (t._Binary, "bytes"),
        (t.Boolean, "bool"),
        (t.Integer, "int"),
        (t.Numeric, "decimal"),
        (t.DateTime, "datetime"),
        (t.Date, "date"),
        (t.JSON, "json"),
        (t.String, "text"),
    ]
    for cls, name in checks:
        if isinstance(sa_type, cls):
            if name == "decimal" and isinstance(sa_type, t.Float):
                return "float"
            return name
    type_name = type(sa_type).__name__.upper()
    if type_name in {"BYTEA", "BLOB", "LONGBLOB", "MEDIUMBLOB", "TINYBLOB", "VARBINARY", "BINARY"}:
        return "bytes"
    if type_name in {"INET", "CIDR", "INET4", "INET6"}:
        return "ip"
    if type_name in {"CITEXT", "UUID", "ARRAY"}:
        return "text"
    return "other"


def _lenient_types(tables: Iterable[Table], counts: Counter[tuple[str, str]]) -> None:
    """SQLite keeps any value in any column: a NUMERIC or DATE column may hold ``'abc'``, which
    SQLAlchemy's converters reject, failing the whole table. Such values are read as text, and
    counted in ``counts``."""
    from sqlalchemy import types as t

    for table in tables:
        for column in table.columns:
            if isinstance(column.type, (t.Numeric, t.Date, t.DateTime, t.Time)):
                column.type = _lenient_type()(column.type, counts, (table.name, column.name))


@functools.cache
def _lenient_type() -> type:
    """The column type of ``_lenient_types`` (a class made on first use: SQLAlchemy loads lazily)."""
    from sqlalchemy import types as t

    class Lenient(t.TypeDecorator[Any]):
        impl = t.NullType
        cache_ok = False  # holds a counter: statements with it are not cached, which costs little here

        def __init__(self, inner: Any, counts: Counter[tuple[str, str]], where: tuple[str, str]) -> None:
            super().__init__()
            self.impl = inner
            self.counts = counts
            self.where = where

        def load_dialect_impl(self, dialect: Any) -> Any:
            return self.impl_instance.dialect_impl(dialect)

        def result_processor(self, dialect: Any, coltype: Any) -> Any:
            convert = self.load_dialect_impl(dialect).result_processor(dialect, coltype)
            if convert is None:
                return None
            counts, where = self.counts, self.where

            def process(value: Any) -> Any:
                try:
                    return convert(value)
                except (TypeError, ValueError, ArithmeticError):
                    counts[where] += 1
                    return value if isinstance(value, str) else str(value)

            return process

    return Lenient


@register("sqlite", "postgresql", "postgres", "mysql", "mariadb", "mssql", "oracle")
class SqlConnector(Connector):
    """A database reached by a SQLAlchemy URL. The connection is opened read-only where the driver allows."""

    def __init__(self, spec: SourceSpec) -> None:
        super().__init__(spec)
        self._engine: Engine | None = None
        self._tables: dict[str, Table] | None = None
        self._native: dict[tuple[str, str], str] = {}
        #: SQLite values that did not fit their column's declared type and were read as text,
        #: by ``(table, column)`` (this process's reads).
        self.text_values: Counter[tuple[str, str]] = Counter()

    # -- connection ---------------------------------------------------------------------------
    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = self._create_engine()
        return self._engine

    def _create_engine(self) -> Engine:
        from sqlalchemy import create_engine
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError, NoSuchModuleError

        try:
            url = make_url(quote_password(self.spec.url))
        except (ArgumentError, ValueError) as exc:
            raise SourceError(
                f"source {self.spec.name!r}: {mask_url(self.spec.url)} is not a valid database URL; "
                "check its form (dialect+driver://user:password@host:port/database)",
                source=self.spec.name,
            ) from exc
        backend = url.get_backend_name()
        if backend == "sqlite":
            return self._sqlite_engine(url.database)
        connect_args: dict[str, Any] = {}
        if backend == "postgresql":
            # Shows up in pg_stat_activity, so a DBA can tell what is reading. The password, if not
            # in the URL, comes from PGPASSWORD or ~/.pgpass through libpq.
            connect_args["application_name"] = "piiport"
            connect_args["connect_timeout"] = int(self.spec.options.get("connect_timeout", 10))
        elif backend in {"mysql", "mariadb"}:
            connect_args["connect_timeout"] = int(self.spec.options.get("connect_timeout", 10))
            if url.password is None and os.environ.get("MYSQL_PWD"):
                url = url.set(password=os.environ["MYSQL_PWD"])
        try:
            return create_engine(url, pool_pre_ping=True, connect_args=connect_args)
        except (NoSuchModuleError, ImportError) as exc:
            raise SourceError(
                f"source {self.spec.name!r}: no driver for {url.drivername}; "
                "install it (psycopg for PostgreSQL, pymysql for MySQL/MariaDB)",
                source=self.spec.name,
            ) from exc

    def source_version(self) -> dict[str, Any] | None:
        """A SQLite file's size and mtime, and its write-ahead log's: unchanged, no table changed.

        None for a server database, and for a file written in the last few seconds (the
        filesystem's mtime is coarse: a write in the same tick as the scan would go unseen).
        """
        if url_scheme_backend(self.spec.url) != "sqlite":
            return None
        from sqlalchemy.engine import make_url

        database = make_url(self.spec.url).database
        if not database or database == ":memory:":
            return None
        path = Path(database).expanduser().resolve()
        out: dict[str, Any] = {}
        for name, file in (("db", path), ("wal", path.with_name(path.name + "-wal"))):
            try:
                st = file.stat()
            except FileNotFoundError:
                continue
            except OSError:
                return None
            if time.time() - st.st_mtime < _RACY_SECONDS:
                return None
            out[name] = [st.st_size, st.st_mtime_ns]
        return out or None

    def _sqlite_engine(self, database: str | None) -> Engine:
        from sqlalchemy import create_engine

        if not database or database == ":memory:":
            raise SourceError(
                f"source {self.spec.name!r}: give the path of a SQLite file, as sqlite:///path/to/file.db",
                source=self.spec.name,
            )
        path = Path(database).expanduser().resolve()
        if not path.is_file():
            # SQLAlchemy would create an empty database here; a scan must never write to a source.
            raise SourceError(
                f"source {self.spec.name!r}: SQLite file {path} not found; check the path",
                source=self.spec.name,
            )
        uri = f"file:{quote(str(path))}?mode=ro"

        def creator() -> sqlite3.Connection:
            return sqlite3.connect(uri, uri=True, timeout=5, check_same_thread=False)

        return create_engine("sqlite://", creator=creator)

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    @contextlib.contextmanager
    def translate_errors(self, container: str | None = None) -> Iterator[None]:
        """Turn a driver error into a one-line SourceError naming the source and container."""
        from sqlalchemy.exc import SQLAlchemyError

        try:
            yield
        except SQLAlchemyError as exc:
            raise self._source_error(exc, container) from exc
        except sqlite3.Error as exc:
            raise self._source_error(exc, container) from exc

    def _source_error(self, exc: BaseException, container: str | None) -> SourceError:
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        where = f"source {self.spec.name!r}" + (f", table {container}" if container else "")
        lowered = detail.lower()
        if "locked" in lowered:
            hint = "another program holds a write lock; retry when it is done"
        elif wrong_password(detail):
            # Before "access denied": MySQL says that of a wrong password too, and SELECT is not the fix.
            hint = "check the user and password (in the URL, PGPASSWORD or ~/.pgpass, MYSQL_PWD)"
        elif "permission denied" in lowered or "access denied" in lowered or "command denied" in lowered:
            hint = "grant the scanning user SELECT on it, or exclude it"
        elif "connect" in lowered or "refused" in lowered or "unable to open" in lowered:
            hint = "check that the server is running and the URL is right"
        else:
            hint = "check the source and scan again"
        return SourceError(f"{where}: {mask_url(detail)}; {hint}", source=self.spec.name, container=container)

    # -- schema -------------------------------------------------------------------------------
    def tables(self) -> dict[str, Table]:
        if self._tables is None:
            with self.translate_errors():
                self._tables = self._reflect()
        return self._tables

    def _schemas(self, inspector: Any) -> list[str]:
        default = inspector.default_schema_name
        dialect = self.engine.dialect.name
        if dialect == "sqlite":
            return [default or "main"]
        wanted = self.spec.options.get("schemas")
        if wanted:
            return list(wanted)
        if dialect in {"mysql", "mariadb"} and self.engine.url.database:
            # A MySQL schema is a database: the URL's database bounds the scan.
            return [self.engine.url.database]
        return [s for s in inspector.get_schema_names() if s not in _SYSTEM_SCHEMAS and not s.startswith("pg_")]

    def _reflect(self) -> dict[str, Table]:
        from sqlalchemy import MetaData, inspect
        from sqlalchemy.exc import SAWarning

        inspector = inspect(self.engine)
        default = inspector.default_schema_name
        views = bool(self.spec.options.get("views", False))
        metadata = MetaData()
        for schema in self._schemas(inspector):
            names = list(inspector.get_table_names(schema=schema))
            if views:
                names += inspector.get_view_names(schema=schema)
            selected = [n for n in names if self._selected(schema, n, default)]
            if not selected:
                continue
            with warnings.catch_warnings(record=True) as caught:
                # Types SQLAlchemy does not know (MariaDB INET6, say) are read as text; see _native_types.
                warnings.simplefilter("always", SAWarning)
                metadata.reflect(self.engine, schema=None if schema == default else schema, only=selected, views=views)
            for w in caught:
                logger.debug("source %s: %s", self.spec.name, w.message)
        tables: dict[str, Table] = {}
        for table in metadata.tables.values():
            # Reflection also brings in tables that foreign keys point to; keep only the selected ones.
            table_schema = table.schema or default
            if self._selected(table_schema, table.name, default) and not table.name.startswith("sqlite_"):
                tables[self._display(table_schema, table.name, default)] = table
        self._native = self._native_types(list(tables.values()), default)
        if self.engine.dialect.name == "sqlite":
            _lenient_types(tables.values(), self.text_values)
        return dict(sorted(tables.items()))

    def _selected(self, schema: str | None, table: str, default: str | None) -> bool:
        """Patterns match ``table`` (default schema), ``schema.table``, or both forms."""
        return self.spec.selects(self._display(schema, table, default), f"{schema}.{table}" if schema else table)

    def _native_types(self, tables: list[Table], default: str | None) -> dict[tuple[str, str], str]:
        """Column types the driver reports by name only (MariaDB INET4/INET6, JSON as LONGTEXT)."""
        from sqlalchemy import text

        if self.engine.dialect.name not in {"mysql", "mariadb"} or not tables:
            return {}
        out: dict[tuple[str, str], str] = {}
        with self.engine.connect() as conn:
            for table in tables:
                rows = conn.execute(
                    text(
                        "SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS "
                        "WHERE TABLE_SCHEMA = :s AND TABLE_NAME = :t"
                    ),
                    {"s": table.schema or default, "t": table.name},
                )
                for column, data_type in rows:
                    if str(data_type).lower() in {"inet4", "inet6"}:
                        out[(table.name, column)] = "ip"
        return out

    @staticmethod
    def _display(schema: str | None, table: str, default: str | None) -> str:
        return table if not schema or schema == default else f"{schema}.{table}"

    def containers(self) -> Iterator[ContainerRef]:
        for name in self.tables():
            yield ContainerRef(self.spec.name, name, "table", None)

    def open(self, ref: ContainerRef) -> ContainerReader:
        if self._tables is None and self.engine.dialect.name != "sqlite":
            # A worker reflects its table when it opens a unit: mid-scan, a dropped connection
            # there is the same fault as during a read, and gets the same retries.
            options = self.spec.options

            def reflect() -> dict[str, Table]:
                self._tables = self._reflect()
                return self._tables

            with_retry(
                self,
                ref.name,
                reflect,
                retries=int(options.get("retries", 4)),
                delay=float(options.get("retry_delay", 0.5)),
            )
        table = self.tables().get(ref.name)
        if table is None:
            raise SourceError(
                f"source {self.spec.name!r}: table {ref.name} no longer exists; scan the source again",
                source=self.spec.name,
                container=ref.name,
            )
        return SqlTableReader(ref, self, table)

    def relations(self) -> list[Relation]:
        default = self._default_schema()
        by_table = {id(t): name for name, t in self.tables().items()}
        out: list[Relation] = []
        for name, table in self.tables().items():
            for fk in table.foreign_key_constraints:
                target = fk.referred_table
                ref_name = by_table.get(id(target)) or self._display(target.schema or default, target.name, default)
                out.append(
                    Relation(
                        container=name,
                        columns=tuple(c.name for c in fk.columns),
                        ref_container=ref_name,
                        ref_columns=tuple(e.column.name for e in fk.elements),
                    )
                )
        return out

    def _default_schema(self) -> str | None:
        from sqlalchemy import inspect

        return inspect(self.engine).default_schema_name


#: Key sampling: tables whose key span is below this many times the sample are sorted instead;
#: at most this many draws per wanted row; keys per ``IN`` query.
_SAMPLE_MIN_SPAN = 20
_SAMPLE_DRAWS = 50
_SAMPLE_CHUNK = 500
#: A SQLite file modified this recently is not trusted as unchanged by its mtime.
_RACY_SECONDS = 2.0
#: Key ranges fingerprinted one query each; beyond, one grouped query (keys far apart).
_MAX_RANGE_QUERIES = 20_000


def _key_ranges(start: int, stop: int, size: int) -> list[tuple[int, int]]:
    """``[start, stop)`` cut into ranges of ``size``, the last two sizes' worth cut in quarters.

    Workers take ranges as they free up; small last ranges keep one from finishing a whole
    range alone while the others wait.
    """
    tail = min(2 * size, (stop - start) // 2)
    cut = stop - tail
    out = [(low, min(low + size, cut)) for low in range(start, cut, size)]
    step = max(1, size // 4)
    return out + [(low, min(low + step, stop)) for low in range(cut, stop, step)]


#: Logical types a driver returns as the extractor reads them, with no SQLAlchemy processing.
_DRIVER_TYPES = frozenset({"text", "int", "ip"})


def _plain(value: Any) -> Any:
    """Driver values as the extractor reads them: IP objects, UUIDs and the like as text."""
    if value is None or type(value) is str:
        return value
    if isinstance(value, (bytes, bytearray, memoryview, list, dict)):
        return value
    return str(value)


def url_scheme_backend(url: str) -> str:
    return url.partition("://")[0].split("+", 1)[0].lower()


def _md5_text(value: str | None) -> str | None:
    return (
        None
        if value is None
        else hashlib.md5(value.encode("utf-8", "surrogatepass"), usedforsecurity=False).hexdigest()
    )


def _tidy_decimal(value: decimal.Decimal) -> decimal.Decimal:
    """``Decimal('64.2000000000')`` → ``Decimal('64.2')``, and never exponent notation."""
    tidy = value.normalize()
    exponent = tidy.as_tuple().exponent
    return tidy.quantize(decimal.Decimal(1)) if isinstance(exponent, int) and exponent > 0 else tidy


_KIND_WORDS = {"decimal": "numbers", "float": "numbers", "date": "dates", "datetime": "dates with a time"}


class SqlTableReader(ContainerReader):
    """Reads one table.

    ``batches`` pages through the table by key (keyset pagination: ``WHERE key > last
    ORDER BY key LIMIT n``), so memory stays at one page and a dropped connection is
    retried with backoff from the last key read. Tables located by row hash are streamed
    with a server-side cursor instead.
    """

    def __init__(self, ref: ContainerRef, connector: SqlConnector, table: Table) -> None:
        super().__init__(ref)
        self.connector = connector
        self.table = table
        native = connector._native
        self.types = {c.name: native.get((table.name, c.name)) or _logical_type(c.type) for c in table.columns}
        self.columns = [c for c in table.columns if self.types[c.name] != "bytes"]
        self.skipped_fields = [c.name for c in table.columns if self.types[c.name] == "bytes"]
        self.key_exprs, self.key_kind = self._locate_by()
        self.key_columns = [e.label("__rowid__") if self.key_kind == "rowid" else e for e in self.key_exprs]
        options = connector.spec.options
        self.retries = int(options.get("retries", 4))
        self.retry_delay = float(options.get("retry_delay", 0.5))

    def _locate_by(self) -> tuple[list[Any], str]:
        from sqlalchemy import literal_column

        pk = list(self.table.primary_key.columns)
        if pk:
            return pk, "primary_key"
        if self.connector.engine.dialect.name == "sqlite":
            return [literal_column("rowid")], "rowid"
        from sqlalchemy import UniqueConstraint

        candidates = [list(i.columns) for i in sorted(self.table.indexes, key=lambda i: i.name or "") if i.unique]
        candidates += [
            list(c.columns)
            for c in sorted(self.table.constraints, key=lambda c: str(c.name or ""))
            if isinstance(c, UniqueConstraint)
        ]
        for cols in candidates:
            if cols and all(not c.nullable for c in cols):
                return cols, "unique_index"
        return [], "row_hash"

    def fields(self) -> list[FieldInfo]:
        return [FieldInfo(c.name, self.types[c.name]) for c in self.columns]

    def key_fields(self) -> list[str]:
        return [c.name for c in self.key_exprs] if self.key_kind in ("primary_key", "unique_index") else []

    def _columns_of(self, row: Any) -> list[Any]:
        """The table's column values of a row: they follow the key columns, by position."""
        offset = len(self.key_columns)
        return [row[offset + i] for i in range(len(self.table.columns))]

    def _key(self, row: Any) -> str:
        if self.key_kind == "row_hash":
            payload = json.dumps(self._columns_of(row), default=str, sort_keys=True)
            return "h:" + hashlib.sha256(payload.encode()).hexdigest()[:32]
        return encode_key([row[i] for i in range(len(self.key_columns))])

    def _select(self, source: Any = None) -> Any:
        from sqlalchemy import select

        if source is None:
            return select(*self.key_columns, *self.table.columns)
        keys = [source.c[c.name] for c in self.key_exprs]
        return select(*keys, *(source.c[c.name] for c in self.table.columns))

    def _record(self, row: Any) -> Record:
        values: dict[str, Any] = {}
        for col, value in zip(self.table.columns, self._columns_of(row), strict=True):
            if self.types[col.name] == "bytes":
                continue
            if isinstance(value, str) and value[:1] in "{[" and value[-1:] in "}]":
                # JSON kept as text (MariaDB's JSON is LONGTEXT): profile it per JSON path too.
                with contextlib.suppress(ValueError):
                    value = json_loads(value, col.name)
            if isinstance(value, (dict, list)):
                values.update(flatten(value, col.name))
            else:
                values[col.name] = value
        return Record(self._key(row), values)

    # -- sampling ---------------------------------------------------------------------------
    def sample(self, size: int, *, seed: int = 0) -> list[Record]:
        """A uniform random sample, drawn at random key values where the table has one integer
        key (repeatable for a ``seed``); else TABLESAMPLE BERNOULLI on PostgreSQL, a RAND()
        filter on MySQL, ``ORDER BY random()`` elsewhere.

        Memory: the sample (see ``_sample_by_key``).
        """
        before = Counter(self.connector.text_values)
        with self.connector.translate_errors(self.ref.name), self.connector.engine.connect() as conn:
            rows = self._sample_by_key(conn, size, seed)
            if rows is None:
                rows = list(conn.execute(self._sample_statement(conn, size)))
        self._note_text_values(before, "of the profiling sample")
        return [self._record(row) for row in rows]

    def _note_text_values(self, before: Counter[tuple[str, str]], where: str) -> None:
        """Say how many values since ``before`` did not fit their column's declared type (SQLite)."""
        for (table, column), n in sorted((self.connector.text_values - before).items()):
            if table == self.table.name:
                declared = _KIND_WORDS.get(self.types.get(column, ""), "of the column's declared type")
                self.notes.append(f"column {column}: {n:,} value(s) {where} are not {declared}; read as text")

    def _sample_by_key(self, conn: Any, size: int, seed: int) -> list[Any] | None:
        """Rows at random values of an integer key; None without one, for a small table, or where
        keys are too sparse for that.

        Memory: the sample, plus the rows one round of draws hits (at most ``_SAMPLE_DRAWS`` per
        wanted row).

        Every draw lands on each existing row with the same chance, so the first ``size``
        distinct rows hit are a uniform sample; nothing reads or sorts the whole table, as
        ``ORDER BY random()`` does (0.23 s on W1's million rows, against 10 ms this way, and
        growing with the table). Small tables are left to the caller: sorting them is cheap.
        """
        if not self._one_integer_key():
            return None
        bounds = self._key_bounds(conn)
        if bounds is None or bounds[1] - bounds[0] < size * _SAMPLE_MIN_SPAN:
            return None
        low, high = bounds
        from sqlalchemy import bindparam

        key = self.key_exprs[0]
        stmt = self._select().where(key.in_(bindparam("keys", expanding=True)))
        rng = random.Random(seed)
        found: dict[Any, Any] = {}
        tried, hits, draw = 0, 0, size * 2
        while len(found) < size and tried < size * _SAMPLE_DRAWS:
            candidates = [rng.randint(low, high) for _ in range(min(draw, size * _SAMPLE_DRAWS - tried))]
            rows: dict[Any, Any] = {}
            for start in range(0, len(candidates), _SAMPLE_CHUNK):
                chunk = sorted(set(candidates[start : start + _SAMPLE_CHUNK]))
                rows.update((row[0], row) for row in conn.execute(stmt, {"keys": chunk}))
            tried += len(candidates)
            for k in candidates:  # in draw order, so which rows are kept does not depend on the database
                if k in rows:
                    hits += 1
                    if k not in found and len(found) < size:
                        found[k] = rows[k]
            # The next round draws about what the hit rate so far says is still missing.
            draw = int((size - len(found)) * 1.5 * tried / hits) + 16 if hits else draw * 4
        return list(found.values()) if len(found) >= size else None

    def _sample_statement(self, conn: Any, size: int) -> Any:
        from sqlalchemy import func, literal, text

        dialect = self.connector.engine.dialect.name
        if dialect == "postgresql":
            estimate = conn.execute(
                text("SELECT reltuples FROM pg_class WHERE oid = CAST(:t AS regclass)"),
                {"t": self._qualified()},
            ).scalar()
            if estimate and estimate > size * 20:
                percent = min(100.0, 100.0 * size * 4 / float(estimate))
                sampled = self.table.tablesample(func.bernoulli(percent))
                return self._select(sampled).order_by(func.random()).limit(size)
            return self._select().order_by(func.random()).limit(size)
        if dialect in {"mysql", "mariadb"}:
            estimate = conn.execute(
                text("SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = :s AND TABLE_NAME = :t"),
                {"s": self.table.schema or self.connector.engine.url.database, "t": self.table.name},
            ).scalar()
            stmt = self._select()
            if estimate and estimate > size * 20:
                # Every row is kept with the same probability, so the sample is unbiased
                # without sorting the whole table.
                stmt = stmt.where(func.rand() < literal(min(1.0, size * 4 / float(estimate))))
            return stmt.order_by(func.rand()).limit(size)
        return self._select().order_by(func.random()).limit(size)

    def _qualified(self) -> str:
        def quote(name: str) -> str:
            return '"' + name.replace('"', '""') + '"'

        return f"{quote(self.table.schema)}.{quote(self.table.name)}" if self.table.schema else quote(self.table.name)

    # -- full pass --------------------------------------------------------------------------
    def batches(self, batch_size: int) -> Iterator[list[Record]]:
        if self.key_kind == "row_hash":
            yield from self._streamed(batch_size)
            return
        yield from self._unit_batches(batch_size, None)

    # -- work units and column batches ---------------------------------------------------
    def units(self, rows_per_unit: int) -> list[Any]:
        """Key ranges ``(low, high)`` of about ``rows_per_unit`` rows, for an integer key; else one unit.

        The last ranges are smaller (``_key_ranges``), so that workers finish together.
        """
        if not self._one_integer_key():
            return [None]
        with self.connector.translate_errors(self.ref.name), self.connector.engine.connect() as conn:
            bounds = self._key_bounds(conn)
        if bounds is None or bounds[1] - bounds[0] < rows_per_unit:
            return [None]
        return _key_ranges(bounds[0], bounds[1] + 1, rows_per_unit)

    def range_step(self, rows_per_range: int) -> int | None:
        if not self._one_integer_key():
            return None
        from sqlalchemy import func, select

        def measure() -> tuple[tuple[int, int] | None, int]:
            with self.connector.engine.connect() as conn:
                bounds = self._key_bounds(conn)
                count = int(conn.execute(select(func.count()).select_from(self.table)).scalar() or 1)
                return bounds, count

        bounds, count = self._with_retry(measure)
        if bounds is None:
            return rows_per_range
        span = bounds[1] - bounds[0] + 1
        return max(1, -(-rows_per_range * span // max(count, 1)))

    def range_fingerprints(
        self, step: int, changed_column: str | None = None, fields: Sequence[str] | None = None
    ) -> dict[int, str]:
        """Fingerprints per key range, computed inside the database, over the key and the
        columns of ``fields`` (JSON paths: their column; None: every column).

        PostgreSQL: ``md5(string_agg(row::text ORDER BY key))``; MySQL/MariaDB:
        ``BIT_XOR`` and ``SUM`` of ``CRC32(CONCAT_WS('|', …))`` with a marker for NULL; SQLite: an
        MD5 of ``group_concat`` of ``quote()``d values, the MD5 a function registered on the
        connection. Each with the range's row count. With ``changed_column``: the row count and
        that column's highest value. One query per range, on the key's index (a grouped query
        over the whole table sorts it: 6 s against under 1 s on a million rows), unless the keys
        are so sparse that most ranges would be empty.
        """
        from sqlalchemy import text

        engine = self.connector.engine
        dialect = engine.dialect.name
        q = engine.dialect.identifier_preparer.quote
        key = "rowid" if self.key_kind == "rowid" else q(self.key_exprs[0].name)
        step = int(step)
        table = self._qualified_sql(q)
        wanted = {f.split(".", 1)[0].split("[", 1)[0] for f in fields} if fields is not None else None
        columns = [c for c in self.table.columns if wanted is None or c.name in wanted]
        if changed_column is not None:
            aggregates = f"COUNT(*), MAX({q(changed_column)})"
            source = table
        elif dialect == "postgresql":
            values = ", ".join([f"quote_nullable({key})", *(f"quote_nullable({q(c.name)})" for c in columns)])
            aggregates = f"count(*), md5(string_agg(concat_ws(',', {values}), chr(10) ORDER BY {key}))"
            source = table
        elif dialect in {"mysql", "mariadb"}:
            values = ", ".join([key, *(f"IFNULL(CONCAT('v', {q(c.name)}), 'N')" for c in columns)])
            row = f"CRC32(CONCAT_WS('|', {values}))"
            aggregates = f"COUNT(*), BIT_XOR({row}), SUM({row})"
            source = table
        elif dialect == "sqlite":
            values = " || ',' || ".join([f"quote({key})", *(f"quote({q(c.name)})" for c in columns)])
            # group_concat follows the ordered subquery; were the order ever to differ, the range
            # would only be read again, never missed.
            aggregates = "count(*), piiport_md5(group_concat(r, char(10)))"
            source = f"(SELECT {key} AS piiport_key_, {values} AS r FROM {table} ORDER BY {key})"
            key = "piiport_key_"
        else:
            raise NotImplementedError(dialect)
        div = "DIV" if dialect in {"mysql", "mariadb"} else "/"
        bucket = f"CASE WHEN {key} >= 0 THEN {key} {div} {step} ELSE -1 - ((-1 - {key}) {div} {step}) END"
        grouped = text(f"SELECT {bucket} AS g, {aggregates} FROM {source} GROUP BY g")
        one = text(f"SELECT {aggregates} FROM {source} WHERE {key} >= :low AND {key} < :high")

        def run(stmt: Any, params: dict[str, int] | None = None) -> list[Any]:
            # A connection per try: a retry after a dropped connection needs a new one.
            with engine.connect() as conn:
                if dialect == "sqlite":
                    conn.connection.dbapi_connection.create_function(  # type: ignore[union-attr]
                        "piiport_md5", 1, _md5_text, deterministic=True
                    )
                return list(conn.execute(stmt, params or {}).all())

        def key_bounds() -> tuple[int, int] | None:
            with engine.connect() as conn:
                return self._key_bounds(conn)

        out: dict[int, str] = {}
        bounds = self._with_retry(key_bounds)
        if bounds is None:
            return out
        first, last = bounds[0] // step, bounds[1] // step
        if last - first > _MAX_RANGE_QUERIES:
            rows = self._with_retry(lambda: run(grouped))
            return {int(r[0]): ":".join(str(v) for v in r[1:]) for r in rows}
        for no in range(first, last + 1):
            [found] = self._with_retry(lambda no=no: run(one, {"low": no * step, "high": (no + 1) * step}))
            if found[0]:
                out[no] = ":".join(str(v) for v in found)
        return out

    def _qualified_sql(self, quote: Any) -> str:
        name = quote(self.table.name)
        return f"{quote(self.table.schema)}.{name}" if self.table.schema else name

    def _key_bounds(self, conn: Any) -> tuple[int, int] | None:
        """The integer key's lowest and highest value; None for an empty table."""
        from sqlalchemy import func, select

        key = self.key_exprs[0]
        # Two scalar subqueries: SQLite answers a lone min() or max() from the key's b-tree, but
        # min() and max() in one query scan the whole table.
        bounds = select(
            select(func.min(key)).select_from(self.table).scalar_subquery(),
            select(func.max(key)).select_from(self.table).scalar_subquery(),
        )
        low, high = conn.execute(bounds).one()
        if low is None:
            return None
        return int(low), int(high)  # some drivers return an integer column's bounds as Decimal

    def _one_integer_key(self) -> bool:
        """Records are located by one integer column (or the rowid): key ranges and key draws work."""
        return len(self.key_exprs) == 1 and self.key_kind != "row_hash" and self._integer_key()

    def _integer_key(self) -> bool:
        if self.key_kind == "rowid":
            return True
        return self.types.get(self.key_exprs[0].name) == "int"

    def column_batches(self, batch_size: int, fields: Sequence[str], *, unit: Any = None) -> Iterator[Columns]:
        """Keyset pages of only the key and the wanted columns, as columns.

        Falls back to whole records when a wanted field is a JSON path inside a column.
        """
        before = Counter(self.connector.text_values)
        yield from self._column_batches(batch_size, fields, unit)
        self._note_text_values(before, "read")

    def _column_batches(self, batch_size: int, fields: Sequence[str], unit: Any) -> Iterator[Columns]:
        plain = {c.name: c for c in self.columns if self.types[c.name] not in {"json", "other"}}
        if self.key_kind == "row_hash" or not all(f in plain for f in fields):
            for batch in self._unit_batches(batch_size, unit):
                yield Columns.from_records(batch, fields)
            return
        wanted = [plain[f] for f in fields]
        width = len(self.key_columns)
        fast_int = self._one_integer_key()
        raw = fast_int and all(self.types[f] in _DRIVER_TYPES for f in fields)
        if raw:
            for rows in self._driver_pages(batch_size, unit, wanted):
                # Columns by transposing in C; the extractor reads these types as they come.
                columns = list(zip(*rows, strict=True))
                yield Columns([f"[{k}]" for k in columns[0]], dict(zip(fields, map(list, columns[1:]), strict=True)))
            return
        for rows in self._pages(batch_size, unit, wanted):
            keys = [f"[{r[0]}]" for r in rows] if fast_int else [encode_key(r[:width]) for r in rows]
            values = {f: [_plain(r[width + i]) for r in rows] for i, f in enumerate(fields)}
            yield Columns(keys, values)

    def _driver_pages(self, size: int, unit: Any, columns: list[Any]) -> Iterator[list[Any]]:
        """Keyset pages of an integer key read through the driver's cursor, as plain tuples.

        The same query as ``_pages``; it skips SQLAlchemy's row objects, which cost as much
        as the read itself on a fast source. Only for types the driver returns as the
        extractor reads them (text, integers, IP addresses). Driver errors become
        SQLAlchemy's, so retries and messages are the same.
        """
        from sqlalchemy import bindparam, select
        from sqlalchemy.exc import DBAPIError

        key = self.key_exprs[0]
        dialect = self.connector.engine.dialect
        base = select(*self.key_columns, *columns).order_by(key).limit(size)
        if unit is not None:
            base = base.where(key < bindparam("high"))
        first = base.where(key >= bindparam("low")) if unit is not None else base
        following = base.where(key > bindparam("after"))
        compiled = {name: stmt.compile(dialect=dialect) for name, stmt in (("first", first), ("after", following))}
        bounds: dict[str, Any] = {"low": unit[0], "high": unit[1]} if unit is not None else {}

        def page(after: Any) -> list[Any]:
            c = compiled["first" if after is None else "after"]
            values = {**bounds, "after": after}
            params = {**c.params, **{k: v for k, v in values.items() if k in c.params}}
            args: Any = [params[n] for n in c.positiontup or ()] if c.positional else params
            with self.connector.engine.connect() as conn:
                cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
                try:
                    cursor.execute(str(c), args)
                    return list(cursor.fetchall())
                except dialect.loaded_dbapi.Error as exc:
                    raise DBAPIError.instance(str(c), args, exc, dialect.loaded_dbapi.Error, dialect=dialect) from exc
                finally:
                    cursor.close()

        yield from self._keyset(size, page, lambda row: row[0])

    def _unit_batches(self, batch_size: int, unit: Any) -> Iterator[list[Record]]:
        for rows in self._pages(batch_size, unit, list(self.table.columns)):
            yield [self._record(row) for row in rows]

    def _pages(self, size: int, unit: Any, columns: list[Any]) -> Iterator[list[Any]]:
        width = len(self.key_columns)
        yield from self._keyset(
            size, lambda after: self._page(after, size, unit, columns), lambda row: tuple(row[i] for i in range(width))
        )

    def _keyset(self, size: int, fetch: Any, last_key: Any) -> Iterator[list[Any]]:
        """Keyset pagination: ``fetch(None)``, then ``fetch(last_key(last row))`` until a short or
        empty page; each read retried from where it was (``_with_retry``)."""
        after: Any = None
        while True:
            rows = self._with_retry(lambda after=after: fetch(after))
            if not rows:
                return
            yield rows
            if len(rows) < size:
                return
            after = last_key(rows[-1])

    def _page(
        self, after: tuple[Any, ...] | None, size: int, unit: Any = None, columns: list[Any] | None = None
    ) -> list[Any]:
        from sqlalchemy import select, tuple_

        cols = list(self.table.columns) if columns is None else columns
        stmt = select(*self.key_columns, *cols).order_by(*self.key_exprs).limit(size)
        if unit is not None:
            stmt = stmt.where(self.key_exprs[0] >= unit[0], self.key_exprs[0] < unit[1])
        if after is not None:
            if len(self.key_exprs) == 1:
                stmt = stmt.where(self.key_exprs[0] > after[0])
            else:
                stmt = stmt.where(tuple_(*self.key_exprs) > tuple_(*after))
        with self.connector.engine.connect() as conn:
            return list(conn.execute(stmt).all())

    def _with_retry(self, call: Any) -> Any:
        """Run a read; on a dropped connection wait (0.5 s, 1 s, 2 s, …) and try again."""
        return with_retry(self.connector, self.ref.name, call, retries=self.retries, delay=self.retry_delay)

    def _streamed(self, batch_size: int) -> Iterator[list[Record]]:
        engine = self.connector.engine
        with self.connector.translate_errors(self.ref.name), engine.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=batch_size).execute(self._select())
            for partition in result.partitions(batch_size):
                yield [self._record(row) for row in partition]

    def fetch(self, keys: Collection[str]) -> Iterator[tuple[str, dict[str, Any]]]:
        from sqlalchemy import and_, or_

        if self.key_kind == "row_hash":
            yield from self._scan_for(set(keys))
            return
        key_list = list(keys)
        with self.connector.translate_errors(self.ref.name), self.connector.engine.connect() as conn:
            for start in range(0, len(key_list), _FETCH_CHUNK):
                # Keys went through JSON, so dates and decimals come back as strings;
                # every dialect compares those correctly once bound against the column.
                chunk = [decode_key(k) for k in key_list[start : start + _FETCH_CHUNK]]
                if len(self.key_columns) == 1:
                    cond = self.key_columns[0].in_([k[0] for k in chunk])
                else:
                    cond = or_(*(and_(*(col == k[i] for i, col in enumerate(self.key_columns))) for k in chunk))
                for row in conn.execute(self._select().where(cond)):
                    yield self._key(row), self._raw(row)

    def fetch_where(
        self, columns: tuple[str, ...], values: Collection[tuple[Any, ...]]
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """Rows whose ``columns`` equal one of the value tuples: the rows that reference given rows."""
        from sqlalchemy import tuple_

        cols = [self.table.c[name] for name in columns]
        wanted = [v for v in values if all(x is not None for x in v)]
        with self.connector.translate_errors(self.ref.name), self.connector.engine.connect() as conn:
            for start in range(0, len(wanted), _FETCH_CHUNK):
                chunk = wanted[start : start + _FETCH_CHUNK]
                cond = cols[0].in_([v[0] for v in chunk]) if len(cols) == 1 else tuple_(*cols).in_(chunk)
                for row in conn.execute(self._select().where(cond).order_by(*self.key_exprs)):
                    yield self._key(row), self._raw(row)

    def keys_where(
        self, columns: tuple[str, ...], values: Collection[tuple[Any, ...]]
    ) -> Iterator[tuple[str, tuple[Any, ...]]]:
        """Keys of the rows whose ``columns`` equal one of the value tuples, with the tuple each holds.

        Reads the key and those columns only (whole rows for a table located by row hash),
        streamed, so a caller that has seen enough stops early.
        """
        from sqlalchemy import select, tuple_

        cols = [self.table.c[name] for name in columns]
        wanted = [v for v in values if all(x is not None for x in v)]
        width = len(self.key_columns)
        with self.connector.translate_errors(self.ref.name), self.connector.engine.connect() as conn:
            streamed = conn.execution_options(stream_results=True, yield_per=_FETCH_CHUNK)
            for start in range(0, len(wanted), _FETCH_CHUNK):
                chunk = wanted[start : start + _FETCH_CHUNK]
                cond = cols[0].in_([v[0] for v in chunk]) if len(cols) == 1 else tuple_(*cols).in_(chunk)
                if self.key_kind == "row_hash":
                    for row in streamed.execute(self._select().where(cond)):
                        raw = self._raw(row)
                        yield self._key(row), tuple(raw[name] for name in columns)
                    continue
                for row in streamed.execute(select(*self.key_columns, *cols).where(cond)):
                    yield encode_key([row[i] for i in range(width)]), tuple(row[width + i] for i in range(len(cols)))

    def precision(self) -> dict[str, tuple[int, int]]:
        """Declared (precision, scale) of decimal columns."""
        out = {}
        for col in self.table.columns:
            p, s = getattr(col.type, "precision", None), getattr(col.type, "scale", None)
            if self.types[col.name] == "decimal" and isinstance(p, int):
                out[col.name] = (p, s or 0)
        return out

    def all_fields(self) -> list[FieldInfo]:
        """Every column, binary ones included: a package holds the whole record."""
        return [FieldInfo(c.name, self.types[c.name]) for c in self.table.columns]

    def _scan_for(self, wanted: set[str]) -> Iterator[tuple[str, dict[str, Any]]]:
        """Rows located by content hash can only be found by reading the table."""
        with self.connector.translate_errors(self.ref.name), self.connector.engine.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=_FETCH_CHUNK).execute(self._select())
            for row in result:
                key = self._key(row)
                if key in wanted:
                    yield key, self._raw(row)

    def _raw(self, row: Any) -> dict[str, Any]:
        raw = {c.name: v for c, v in zip(self.table.columns, self._columns_of(row), strict=True)}
        for name in self._float_decimals:
            if isinstance(raw[name], decimal.Decimal):
                raw[name] = _tidy_decimal(raw[name])
        return raw

    @functools.cached_property
    def _float_decimals(self) -> list[str]:
        # SQLite keeps NUMERIC values as REAL; SQLAlchemy pads them to ten decimal places.
        if self.connector.engine.dialect.name != "sqlite":
            return []
        return [
            c.name
            for c in self.table.columns
            if self.types[c.name] == "decimal" and getattr(c.type, "scale", None) is None
        ]


def with_retry(connector: SqlConnector, container: str, call: Any, *, retries: int, delay: float) -> Any:
    """Run ``call`` (a read of ``container``); on a dropped connection wait (``delay``, twice
    that, …) and try again, up to ``retries`` times, then raise one SourceError saying so."""
    from sqlalchemy.exc import DBAPIError, OperationalError

    # A file database does not drop connections; a server may, and mid-scan a failed
    # reconnect is as transient as the drop itself.
    server = connector.engine.dialect.name != "sqlite"
    attempt = 0
    with connector.translate_errors(container):
        while True:
            try:
                return call()
            except DBAPIError as exc:
                lost = server and (exc.connection_invalidated or isinstance(exc, OperationalError))
                if not lost or attempt >= retries:
                    if lost:
                        raise SourceError(
                            f"source {connector.spec.name!r}, table {container}: the connection was "
                            f"lost and {attempt} retries failed; check the server and scan again",
                            source=connector.spec.name,
                            container=container,
                        ) from exc
                    raise
                wait = delay * (2**attempt)
                attempt += 1
                logger.warning(
                    "source %s, table %s: connection lost; retry %d in %.1fs",
                    connector.spec.name,
                    container,
                    attempt,
                    wait,
                )
                time.sleep(wait)
