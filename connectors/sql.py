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
import logging
import os
import sqlite3
import time
import warnings
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

from connectors.base import (
    Columns,
    Connector,
    ContainerReader,
    ContainerRef,
    FieldInfo,
    KeyChanges,
    KeyRange,
    Record,
    Relation,
    RelationalReader,
    SourceSpec,
    decode_key,
    encode_int_key,
    encode_key,
)
from connectors.errors import SourceError, wrong_password
from connectors.flatten import flatten
from connectors.flatten import loads as json_loads
from connectors.options import SqlOptions, coerce
from connectors.redact import mask_url, quote_password
from connectors.sql_fingerprint import floor_div_sql
from connectors.sql_keys import KeyLocator
from connectors.sql_pages import Pager
from connectors.sql_sample import Sampler
from connectors.transient import driver_transient

if TYPE_CHECKING:
    from sqlalchemy import Table
    from sqlalchemy.engine import Engine
    from sqlalchemy.exc import DBAPIError

    from connectors.sql_fingerprint import LeafPages

logger = logging.getLogger(__name__)

T = TypeVar("T")

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


class SqlConnector(Connector):
    """A database reached by a SQLAlchemy URL. The connection is opened read-only where the driver allows."""

    # Served through the ``piiport.connectors`` entry points of these names (pyproject.toml).
    schemes = ("sqlite", "postgresql", "postgres", "mysql", "mariadb", "mssql", "oracle")
    options_type = SqlOptions

    def __init__(self, spec: SourceSpec) -> None:
        super().__init__(spec)
        self.options = coerce(SqlOptions, spec.options, spec.name)
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
            connect_args["connect_timeout"] = self.options.connect_timeout
        elif backend in {"mysql", "mariadb"}:
            connect_args["connect_timeout"] = self.options.connect_timeout
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

        from sqlalchemy.pool import QueuePool

        # A file's pool, as SQLAlchemy gives ``sqlite:///path``: "sqlite://" alone would get the
        # in-memory database's one connection per thread, which more threads than its size
        # (fingerprints read by a few threads) close under each other.
        return create_engine("sqlite://", creator=creator, poolclass=QueuePool)

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
        wanted = self.options.schemas
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
        views = self.options.views
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
            options = self.options

            def reflect() -> dict[str, Table]:
                self._tables = self._reflect()
                return self._tables

            with_retry(
                self,
                ref.name,
                reflect,
                retries=options.retries,
                delay=options.retry_delay,
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


def _leaf_pages(token: str | None) -> LeafPages | None:
    """An earlier scan's leaf pages (``changed_key_spans``' token); None if none or unreadable."""
    from connectors.sql_fingerprint import LeafPages

    if token is None:
        return None
    try:
        return LeafPages.loads(token)
    except Exception:  # a token of another format: every leaf page is parsed
        return None


def _page_version(version: str | None) -> str | None:
    """The pages' part of a version ``table_version`` gave (``pages:…:columns``)."""
    return version.rsplit(":", 1)[0] if version and version.startswith("pages:") else None


#: A SQLite file modified this recently is not trusted as unchanged by its mtime.
_RACY_SECONDS = 2.0
#: Key ranges fingerprinted one query each; beyond, one grouped query (keys far apart).
_MAX_RANGE_QUERIES = 20_000
#: Range fingerprint queries run at once, at most (and at most one per core).
_FINGERPRINT_THREADS = 4


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


def _joined_buckets(table: str, key: str, width: int, aggregates: str, row_text: str) -> Any:
    """PostgreSQL: fingerprints of the buckets listed (``__listed__``: ``(b), (c)…``), each
    joined to the table by key, so that only their rows are read (a filter on the bucket number
    would read the whole range). Grouped by the listed number: grouped by a bucket computed
    from the key (as ``_joined_runs``), the planner expects a group a row and plans a hash
    table that spills, or a parallel plan, seconds a range. The bucket numbers are cast to 64
    bits: PostgreSQL types ``VALUES (3)`` as a 32-bit integer, whose product with the width
    overflows for keys beyond 2**31. ``table`` with its schema (``_qualified_sql``), and the
    list a subquery in FROM: a table called ``piiport_b`` is not the list."""
    from sqlalchemy import text

    g = "CAST(piiport_b.piiport_g AS BIGINT)"  # qualified: the table may have a column of that name
    return text(
        f"SELECT piiport_g, {aggregates} FROM (SELECT piiport_b.piiport_g, {row_text} AS r "
        f"FROM (VALUES __listed__) AS piiport_b(piiport_g) JOIN {table} AS t "
        f"ON t.{key} >= {g} * {width} AND t.{key} < {g} * {width} + {width}) AS piiport_j GROUP BY piiport_g"
    )


def _joined_runs(table: str, key: str, width: int, aggregates: str, row_text: str) -> Any:
    """SQLite: fingerprints of the buckets asked for, given as runs of adjacent buckets' keys
    (``__listed__``: ``(low, high), …``, ``_bucket_runs``), each run joined to the table by key,
    so that only their rows are read. A run, not a bucket, a join: the key's b-tree is searched
    once a run (a million rows, 1% changed at random: a tenth to a fifth less time than a join
    a bucket). The join reads the rows in key order, and the GROUP BY's sorter keeps that order
    within a bucket, as the range's grouped query does: the same ``group_concat``, the same
    fingerprints (an order that differed would only read a bucket again, never miss one).
    ``table`` with its schema (``_qualified_sql``): a table called ``piiport_r`` is not the list."""
    from sqlalchemy import text

    bucket = floor_div_sql(f"t.{key}", width, "sqlite")
    return text(
        "WITH piiport_r(piiport_lo, piiport_hi) AS (VALUES __listed__) "
        f"SELECT piiport_g, {aggregates} FROM (SELECT {bucket} AS piiport_g, {row_text} AS r "
        f"FROM piiport_r JOIN {table} AS t "
        f"ON t.{key} >= piiport_r.piiport_lo AND t.{key} < piiport_r.piiport_hi) AS piiport_j GROUP BY piiport_g"
    )


def _bucket_list(buckets: Sequence[int]) -> str:
    """``_joined_buckets``' list of buckets: ``(b), (c)…``, the numbers written into the statement."""
    return ",".join(f"({int(b)})" for b in buckets)


def _bucket_runs(buckets: Sequence[int], width: int) -> str:
    """``_joined_runs``' runs of ``buckets`` (sorted, each once): the keys of adjacent ones as one
    ``(low, high)``, the numbers written into the statement."""
    runs: list[list[int]] = []
    for b in buckets:
        if runs and runs[-1][1] == b:
            runs[-1][1] = b + 1
        else:
            runs.append([b, b + 1])
    return ",".join(f"({int(low) * width},{int(high) * width})" for low, high in runs)


def _plain(value: Any) -> Any:
    """Driver values as the extractor reads them: IP objects, UUIDs and the like as text."""
    if value is None or type(value) is str:
        return value
    if isinstance(value, (bytes, bytearray, memoryview, list, dict)):
        return value
    return str(value)


def url_scheme_backend(url: str) -> str:
    return url.partition("://")[0].split("+", 1)[0].lower()


def _md5_text(value: bytes | None) -> str | None:
    """``piiport_md5``: the MD5 of a text's bytes (UTF-8, as SQLite keeps it), in hex."""
    return None if value is None else hashlib.md5(value, usedforsecurity=False).hexdigest()


def _tidy_decimal(value: decimal.Decimal) -> decimal.Decimal:
    """``Decimal('64.2000000000')`` → ``Decimal('64.2')``, and never exponent notation."""
    tidy = value.normalize()
    exponent = tidy.as_tuple().exponent
    return tidy.quantize(decimal.Decimal(1)) if isinstance(exponent, int) and exponent > 0 else tidy


_KIND_WORDS = {"decimal": "numbers", "float": "numbers", "date": "dates", "datetime": "dates with a time"}


class SqlTableReader(RelationalReader):
    """Reads one table.

    ``batches`` pages through the table by key (keyset pagination: ``WHERE key > last
    ORDER BY key LIMIT n``), so memory stays at one page and a dropped connection is
    retried with backoff from the last key read. Tables located by row hash are streamed
    with a server-side cursor instead.
    """

    def __init__(self, ref: ContainerRef, connector: SqlConnector, table: Table) -> None:
        super().__init__(ref)
        #: The table's leaf pages, read with its version (SQLite rowid tables; ``changed_key_spans``).
        self._leaves: LeafPages | None = None
        #: The earlier scan's leaf pages ``table_version`` was given: its token, and the pages read from it.
        self._since: tuple[str | None, LeafPages | None] = (None, None)
        #: PostgreSQL: the change token read with the version (``changed_key_spans``).
        self._token: str | None = None
        self.connector = connector
        self.table = table
        native = connector._native
        self.types = {c.name: native.get((table.name, c.name)) or _logical_type(c.type) for c in table.columns}
        self.columns = [c for c in table.columns if self.types[c.name] != "bytes"]
        self.skipped_fields = [c.name for c in table.columns if self.types[c.name] == "bytes"]
        self.keys = KeyLocator(table, connector.engine.dialect.name, self.types)
        # The locator's parts under the names other code reads them by (retention, fingerprints).
        self.key_exprs, self.key_kind, self.key_columns = self.keys.exprs, self.keys.kind, self.keys.columns
        self.retries = connector.options.retries
        self.retry_delay = connector.options.retry_delay
        self.sampler = Sampler(self.keys, lambda: connector.engine, self._key_bounds)
        self.pager = Pager(self.keys, lambda: connector.engine, self._with_retry)

    def fields(self) -> list[FieldInfo]:
        return [FieldInfo(c.name, self.types[c.name]) for c in self.columns]

    def key_fields(self) -> list[str]:
        return self.keys.key_fields()

    def _columns_of(self, row: Any) -> list[Any]:
        return self.keys.columns_of(row)

    def _key(self, row: Any) -> str:
        return self.keys.key(row)

    def _select(self, source: Any = None) -> Any:
        return self.keys.select(source)

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
            rows = self.sampler.rows(conn, size, seed)
        self._note_text_values(before, "of the profiling sample")
        return [self._record(row) for row in rows]

    def sparse_sample(self, fields: Sequence[str], size: int) -> Iterator[Record]:
        """For each of ``fields``, the first ``size`` rows by key with a value in it: one query a
        field (``WHERE col IS NOT NULL [AND col <> ''] ORDER BY key LIMIT size``), which the
        database answers by scanning the table where no index covers the column, and stops early
        where the column has values enough. In key order, so that the same rows answer from one
        scan to the next wherever the database keeps them (a PostgreSQL row moves when updated),
        and the profile, which the incremental signature is made of, does not change with them.

        Memory: ``size`` rows at a time, and the keys of the rows given.
        """
        from sqlalchemy import Enum, String, and_
        from sqlalchemy.types import TypeDecorator

        def filled(col: Any) -> Any:
            sa_type = col.type.impl_instance if isinstance(col.type, TypeDecorator) else col.type
            # '' is not a value of a PostgreSQL enum (comparing with it is an error), nor of uuid or inet.
            plain = isinstance(sa_type, String) and not isinstance(sa_type, Enum)
            return and_(col.is_not(None), col != "") if plain else col.is_not(None)

        wanted = set(fields)
        order = [] if self.key_kind == "row_hash" else list(self.keys.exprs)
        seen: set[str] = set()  # a row with values in two of the fields is given once
        before = Counter(self.connector.text_values)
        with self.connector.translate_errors(self.ref.name), self.connector.engine.connect() as conn:
            for col in self.columns:
                if col.name in wanted:
                    stmt = self.keys.select().where(filled(col)).order_by(*order).limit(size)
                    for row in conn.execute(stmt).fetchall():
                        if (key := self._key(row)) not in seen:
                            seen.add(key)
                            yield self._record(row)
        self._note_text_values(before, "of the profiling sample")

    def _note_text_values(self, before: Counter[tuple[str, str]], where: str) -> None:
        """Say how many values since ``before`` did not fit their column's declared type (SQLite)."""
        for (table, column), n in sorted((self.connector.text_values - before).items()):
            if table == self.table.name:
                declared = _KIND_WORDS.get(self.types.get(column, ""), "of the column's declared type")
                self.notes.append(f"column {column}: {n:,} value(s) {where} are not {declared}; read as text")

    # -- full pass --------------------------------------------------------------------------
    def batches(self, batch_size: int) -> Iterator[list[Record]]:
        if self.key_kind == "row_hash":
            yield from self._streamed(batch_size)
            return
        yield from self._unit_batches(batch_size, None)

    # -- work units and column batches ---------------------------------------------------
    def units(self, rows_per_unit: int) -> list[KeyRange | None]:
        """Key ranges ``(low, high)`` of about ``rows_per_unit`` rows, for an integer key; else one unit.

        The last ranges are smaller (``_key_ranges``), so that workers finish together.
        """
        if not self._one_integer_key():
            return [None]
        with self.connector.translate_errors(self.ref.name), self.connector.engine.connect() as conn:
            bounds = self._key_bounds(conn)
        if bounds is None or bounds[1] - bounds[0] < rows_per_unit:
            return [None]
        return [KeyRange(*r) for r in _key_ranges(bounds[0], bounds[1] + 1, rows_per_unit)]

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

    def key_bounds(self) -> tuple[int, int] | None:
        if not self._one_integer_key():
            return None

        def read() -> tuple[int, int] | None:
            with self.connector.engine.connect() as conn:
                return self._key_bounds(conn)

        return self._with_retry(read)

    def _sqlite_path(self) -> Path | None:
        """The SQLite file's path; None for an in-memory database."""
        from sqlalchemy.engine import make_url

        database = make_url(self.connector.spec.url).database
        return Path(database).expanduser().resolve() if database and database != ":memory:" else None

    def table_version(self, known: str | None = None, pages: str | None = None) -> str | None:
        """A version of the whole table, cheaper than its fingerprints (``connectors.sql_fingerprint``):
        SQLite's page bytes, PostgreSQL's row versions; None elsewhere."""
        from connectors.sql_fingerprint import (
            columns_digest,
            postgres_change_token,
            postgres_table_version,
            sqlite_table_pages,
        )

        engine = self.connector.engine
        dialect = engine.dialect.name
        if dialect == "sqlite":
            path = self._sqlite_path()
            if path is None:
                return None
            with self.connector.translate_errors(self.ref.name):
                # The leaf pages, read with the version, say where rows changed (``changed_key_spans``).
                version, self._leaves = sqlite_table_pages(
                    path,
                    self.table.name,
                    leaves=self._rowid_key(),
                    known=_page_version(known),
                    since=self._earlier_pages(pages),
                )
        elif dialect == "postgresql":
            table_sql = self._qualified_sql(engine.dialect.identifier_preparer.quote)

            def read() -> tuple[str | None, str | None]:
                with engine.connect() as conn:
                    # The token first: a row written after it counts as changed next time.
                    token = postgres_change_token(conn, self.sampler.qualified())
                    return postgres_table_version(conn, self.sampler.qualified(), table_sql), token

            version, token = self._with_retry(read)
            if version is None:  # a view: neither a version nor row versions
                return None
            self._token = token
        else:
            return None
        if version is None:
            return None
        return f"{version}:{hashlib.blake2b(columns_digest(self.table), digest_size=8).hexdigest()}"

    def changed_key_spans(self, since: str | None, width: int) -> KeyChanges:
        """SQLite rowid tables: the table's leaf pages as of ``table_version`` (the token for the
        next scan), and the key spans of the pages changed since ``since``: every row changed,
        added or deleted since is in one. PostgreSQL plain tables with one integer key: the
        buckets of ``width`` keys that hold a row written since (``xmin``), and the rows of the
        other buckets (for the deleted ones, ``bucket_rows``). Nothing where neither can tell
        (another database, WAL mode, a key that is not the rowid, a view, no buckets)."""
        from connectors.sql_fingerprint import changed_spans, postgres_changed_keys

        if self._token is not None:  # PostgreSQL
            token = self._token
            if since is None or not width or not self._one_integer_key():
                return KeyChanges(token)
            key, table_sql = self._key_and_table_sql()

            def read() -> tuple[list[int], int] | None:
                with self._grouping_connection() as conn:
                    return postgres_changed_keys(conn, table_sql, key, width, since, token)

            found = self._with_retry(read)
            if found is None:
                return KeyChanges(token)
            spans = [(b * width, b * width + width - 1) for b in found[0]]
            return KeyChanges(token, spans, found[1])
        leaves = self._leaves
        if leaves is None:
            return KeyChanges()
        token = leaves.dumps()
        before = self._earlier_pages(since)
        if before is None:  # none, or a token of another format: no spans, so everything is fingerprinted
            return KeyChanges(token)
        return KeyChanges(token, changed_spans(before, leaves))

    def stored_bucket_prints(self, width: int, buckets: Collection[int] | None = None) -> dict[int, int] | None:
        """SQLite rowid tables whose leaf pages ``table_version`` read: the buckets' fingerprints
        from those pages' cells (``connectors.sqlite_cells``), while the file is as it was then."""
        from connectors.sqlite_cells import cell_bucket_prints

        if self._leaves is None:
            return None
        path = self._sqlite_path()
        if path is None:
            return None
        with self.connector.translate_errors(self.ref.name):
            return cell_bucket_prints(path, self._leaves, int(width), buckets)

    def _earlier_pages(self, token: str | None) -> LeafPages | None:
        """An earlier scan's leaf pages from its token, read once for ``table_version`` and
        ``changed_key_spans``; None if none or unreadable (another format)."""
        if token != self._since[0]:
            self._since = (token, _leaf_pages(token))
        return self._since[1]

    def _rowid_key(self) -> bool:
        """Whether the table's key is SQLite's rowid (an ``INTEGER PRIMARY KEY`` of a rowid table;
        not one declared ``INTEGER PRIMARY KEY DESC``, which SQLite keeps apart from the rowid, with
        an index of its own)."""
        if self.key_kind == "rowid":
            return True
        if self.key_kind != "primary_key" or len(self.key_columns) != 1:
            return False
        from sqlalchemy import text

        with self.connector.engine.connect() as conn:
            sql = conn.execute(text("SELECT sql FROM sqlite_master WHERE name = :t"), {"t": self.table.name}).scalar()
            if sql is None or "WITHOUT ROWID" in " ".join(str(sql).upper().split()):
                return False
            quoted = '"' + self.table.name.replace('"', '""') + '"'
            info = conn.execute(text(f"PRAGMA table_info({quoted})")).all()
            indexed = any(row[3] == "pk" for row in conn.execute(text(f"PRAGMA index_list({quoted})")).all())
        pk = [row for row in info if row[5]]
        return len(pk) == 1 and str(pk[0][2]).upper() == "INTEGER" and not indexed

    @property
    def spreads_fingerprints(self) -> bool:
        return self.connector.engine.dialect.name == "sqlite"

    def range_fingerprints(
        self,
        step: int,
        changed_column: str | None = None,
        fields: Sequence[str] | None = None,
        *,
        width: int | None = None,
        buckets: Collection[int] | None = None,
        ranges: Collection[int] | None = None,
    ) -> dict[int, str]:
        """Fingerprints per key range, computed inside the database, over the key and the
        columns of ``fields`` (JSON paths: their column; None: every column). With ``width``
        (a divisor of ``step``), per bucket of ``width`` keys instead (bucket ``key // width``),
        still one query per range or one grouped query in all; with ``buckets`` too, only those.
        With ``ranges``, only those ranges (so that several processes can share a table's).

        PostgreSQL: the sum of ``hashtextextended`` (64 bits) of each row's quoted values, all
        ranges in one grouped query; MySQL/MariaDB:
        ``BIT_XOR`` and ``SUM`` of ``CRC32(CONCAT_WS('|', …))`` with a marker for NULL; SQLite: an
        MD5 of ``group_concat`` of the values joined by ``char(31)`` (NULL as ""), the MD5 a function registered on the
        connection. Each with the range's row count. With ``changed_column``: the row count and
        that column's highest value. One query per range, on the key's index (a grouped query
        over the whole table sorts it: 6 s against under 1 s on a million rows), unless the keys
        are so sparse that most ranges would be empty; PostgreSQL groups by hash, unsorted.
        SQLite's and PostgreSQL's buckets asked for are joined to the table by key, so that only
        their rows are read (``_joined_buckets``; SQLite a run of adjacent ones at a time,
        ``_joined_runs``: faster than a subquery per bucket, which sorts nothing but took a fifth
        longer on a million rows, and than a join per bucket).
        """
        from sqlalchemy import text

        engine = self.connector.engine
        dialect = engine.dialect.name
        q = engine.dialect.identifier_preparer.quote
        key, table = self._key_and_table_sql()
        step = int(step)
        wanted = {f.split(".", 1)[0].split("[", 1)[0] for f in fields} if fields is not None else None
        columns = [c for c in self.table.columns if wanted is None or c.name in wanted]
        joined: Any = None  # the buckets asked for, joined to the table
        listing: Callable[[list[int]], str] = _bucket_list  # how ``joined`` lists them
        if changed_column is not None:
            aggregates = f"COUNT(*), MAX({q(changed_column)})"
            source = table
        elif dialect == "postgresql":
            # A 64-bit hash per row, summed: one grouped pass with no sort (an ordered md5 of
            # string_agg per range took twice as long).
            def row_text(alias: str) -> str:
                cells = [f"quote_nullable({alias}{key})", *(f"quote_nullable({alias}{q(c.name)})" for c in columns)]
                return f"concat_ws(',', {', '.join(cells)})"

            aggregates = "count(*), sum(hashtextextended(r, 0))"
            source = f"(SELECT {key} AS piiport_key_, {row_text('')} AS r FROM {table}) AS piiport_s"
            joined = _joined_buckets(table, key, int(width or step), aggregates, row_text("t."))
            key = "piiport_key_"
        elif dialect in {"mysql", "mariadb"}:
            values = ", ".join([key, *(f"IFNULL(CONCAT('v', {q(c.name)}), 'N')" for c in columns)])
            row = f"CRC32(CONCAT_WS('|', {values}))"
            aggregates = f"COUNT(*), BIT_XOR({row}), SUM({row})"
            source = table
        elif dialect == "sqlite":
            # Texts joined by the unit separator, NULL as "" (the extractor reads both as nothing):
            # half the cost of quote(). A value holding the separator could in principle make two
            # rows that differ only by where it stands look alike: then that row is not read again.
            def row_text(alias: str) -> str:  # one row's text, the same for both queries below
                cells = [f"{alias}{key}", *(f"coalesce({alias}{q(c.name)}, '')" for c in columns)]
                return " || char(31) || ".join(cells)

            values = row_text("")
            # group_concat follows the ordered subquery; were the order ever to differ, the range
            # would only be read again, never missed.
            # As bytes: a value that is not UTF-8 (a BLOB in a text column) is hashed as it is,
            # where a text argument would fail the function, and with it the table's scan.
            aggregates = "count(*), piiport_md5(CAST(group_concat(r, char(10)) AS BLOB))"
            source = f"(SELECT {key} AS piiport_key_, {values} AS r FROM {table} ORDER BY {key})"
            # The same rows' values, bucket by bucket, in key order as the join reads them (an
            # ORDER BY costs a sort, a fifth of the query): the same fingerprints.
            joined = _joined_runs(table, key, int(width or step), aggregates, row_text("t."))
            listing = functools.partial(_bucket_runs, width=int(width or step))
            key = "piiport_key_"
        else:
            raise NotImplementedError(dialect)
        grain = int(width) if width else step
        if step % grain:
            raise ValueError(f"bucket width {grain} does not divide the range step {step}")
        bucket = floor_div_sql(key, grain, dialect)
        # GROUP BY 1, not an alias: MySQL and MariaDB would take a table column of the same name first.
        grouped = text(f"SELECT {bucket} AS piiport_g, {aggregates} FROM {source} GROUP BY 1")
        in_range = f"FROM {source} WHERE {key} >= :low AND {key} < :high"
        asked: dict[int, list[int]] | None = None  # per range, the buckets asked for
        if width and buckets is not None:
            per = step // grain
            asked = {}
            for b in sorted(buckets):
                asked.setdefault(b // per, []).append(int(b))
            in_range += f" AND {bucket} IN (__buckets__)"
        # Buckets of one range: the range's rows are few, so grouping them is a small sort.
        one = text(
            f"SELECT {bucket} AS piiport_g, {aggregates} {in_range} GROUP BY 1"
            if width
            else f"SELECT {aggregates} {in_range}"
        )

        def run(stmt: Any, params: dict[str, int] | None = None) -> list[Any]:
            # A connection per try: a retry after a dropped connection needs a new one.
            with self._grouping_connection() as conn:
                return list(conn.execute(stmt, params or {}).all())

        def key_bounds() -> tuple[int, int] | None:
            with engine.connect() as conn:
                return self._key_bounds(conn)

        out: dict[int, str] = {}
        bounds = self._with_retry(key_bounds)
        if bounds is None:
            return out
        first, last = bounds[0] // step, bounds[1] // step
        if asked is None and ranges is None and (dialect == "postgresql" or last - first > _MAX_RANGE_QUERIES):
            rows = self._with_retry(lambda: run(grouped))
            return {int(r[0]): ":".join(str(v) for v in r[1:]) for r in rows}
        numbers = sorted(asked) if asked is not None else list(range(first, last + 1))
        if ranges is not None:
            numbers = sorted(set(numbers) & set(ranges))

        def of_range(no: int) -> list[Any]:
            stmt = one
            if asked is not None and joined is not None:
                stmt = text(joined.text.replace("__listed__", listing(asked[no])))
            elif asked is not None:  # the range's buckets asked for, as integers in the statement
                stmt = text(one.text.replace("__buckets__", ",".join(map(str, asked[no]))))
            return self._with_retry(lambda: run(stmt, {"low": no * step, "high": (no + 1) * step}))

        # A server database works on a few ranges at once, each on its own connection. SQLite
        # runs one at a time: its queries here hold the interpreter (the md5 of each group, the
        # rows' values), and threads made them slower; ``discover.scan`` spreads a table's
        # ranges over the worker processes instead.
        from concurrent.futures import ThreadPoolExecutor

        threads = 1 if dialect == "sqlite" else min(_FINGERPRINT_THREADS, os.cpu_count() or 1)
        with ThreadPoolExecutor(max_workers=threads) as pool:
            for no, found in zip(numbers, pool.map(of_range, numbers), strict=True):
                if width:
                    out.update((int(r[0]), ":".join(str(v) for v in r[1:])) for r in found)
                elif found[0][0]:
                    out[no] = ":".join(str(v) for v in found[0])
        return out

    def bucket_rows(self, width: int, since: str | None = None) -> dict[int, int]:
        """Rows per bucket of ``width`` keys, one grouped query (PostgreSQL groups by hash; there,
        a bucket holding a row written since ``since`` counts -1)."""
        from sqlalchemy import text

        from connectors.sql_fingerprint import postgres_bucket_rows

        key, table = self._key_and_table_sql()
        dialect = self.connector.engine.dialect.name

        def read() -> dict[int, int]:
            with self._grouping_connection() as conn:
                if dialect == "postgresql":
                    return postgres_bucket_rows(conn, table, key, width, since)
                bucket = floor_div_sql(key, int(width), dialect)
                return {
                    int(g): int(n) for g, n in conn.execute(text(f"SELECT {bucket}, count(*) FROM {table} GROUP BY 1"))
                }

        return self._with_retry(read)

    @contextlib.contextmanager
    def _grouping_connection(self) -> Iterator[Any]:
        """A connection set for queries that group a whole table by key range or bucket."""
        from sqlalchemy import text

        with self.connector.engine.connect() as conn:
            dialect = conn.dialect.name
            if dialect == "sqlite":
                conn.connection.dbapi_connection.create_function(  # type: ignore[union-attr]
                    "piiport_md5", 1, _md5_text, deterministic=True
                )
            elif dialect == "postgresql":
                # The planner expects a group per row and compiles the query first: longer than the pass.
                conn.execute(text("SET LOCAL jit = off"))
                # A bucket a group: at the default 4MB the hash table of a million rows' buckets
                # spills to disk, and the query takes twice as long (1.8 s against 1.0 s).
                conn.execute(text("SET LOCAL work_mem = '64MB'"))
            yield conn

    def _key_and_table_sql(self) -> tuple[str, str]:
        """The integer key (SQLite's ``rowid`` where it is the key) and the table, quoted for SQL."""
        q = self.connector.engine.dialect.identifier_preparer.quote
        key = str(self.key_exprs[0]) if self.key_kind == "rowid" else q(self.key_exprs[0].name)
        return key, self._qualified_sql(q)

    def _qualified_sql(self, quote: Any) -> str:
        """The table for statements written by hand, with its schema: SQLite's is ``main``,
        PostgreSQL's the default schema the table was reflected in, so that a list the statement
        names itself (``_joined_runs``' ``piiport_r``, ``postgres_changed_keys``' ``piiport_k``
        and ``piiport_g``) cannot hide a table of that name: a name without a schema is looked up
        among the statement's ``WITH`` names first."""
        name = quote(self.table.name)
        dialect = self.connector.engine.dialect
        schema = self.table.schema or {"sqlite": "main", "postgresql": dialect.default_schema_name}.get(dialect.name)
        return f"{quote(schema)}.{name}" if schema else name

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
        return self.keys.one_integer_key()

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
            for rows in self.pager.driver_pages(batch_size, unit, wanted):
                # Columns by transposing in C; the extractor reads these types as they come.
                columns = list(zip(*rows, strict=True))
                keys = list(map(encode_int_key, columns[0]))
                yield Columns(keys, dict(zip(fields, map(list, columns[1:]), strict=True)))
            return
        for rows in self.pager.pages(batch_size, unit, wanted):
            keys = [encode_int_key(r[0]) for r in rows] if fast_int else [encode_key(r[:width]) for r in rows]
            values = {f: [_plain(r[width + i]) for r in rows] for i, f in enumerate(fields)}
            yield Columns(keys, values)

    def _unit_batches(self, batch_size: int, unit: Any) -> Iterator[list[Record]]:
        for rows in self.pager.pages(batch_size, unit, list(self.table.columns)):
            yield [self._record(row) for row in rows]

    def _with_retry(self, call: Callable[..., T]) -> T:
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


def with_retry(connector: SqlConnector, container: str, call: Callable[[], T], *, retries: int, delay: float) -> T:
    """Run ``call`` (a read of ``container``); on a dropped connection wait (``delay``, twice
    that, …) and try again, up to ``retries`` times, then raise one SourceError saying so."""
    from sqlalchemy.exc import DBAPIError

    # A file database does not drop connections; a server may, and mid-scan a failed
    # reconnect is as transient as the drop itself.
    server = connector.engine.dialect.name != "sqlite"
    attempt = 0
    with connector.translate_errors(container):
        while True:
            try:
                return call()
            except DBAPIError as exc:
                lost = server and _transient(exc)
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


def _transient(exc: DBAPIError) -> bool:
    """A dropped connection, a server restart, a deadlock: by the driver's error type and code
    (``connectors.transient``); a driver whose codes are not known there, by SQLAlchemy's class."""
    from sqlalchemy.exc import OperationalError

    if exc.connection_invalidated:
        return True
    known = driver_transient(exc.orig) if isinstance(exc.orig, BaseException) else None
    return isinstance(exc, OperationalError) if known is None else known
