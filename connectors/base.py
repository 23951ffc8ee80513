"""The connector extension point: a small abstract base class and a registry.

A connector gives read-only access to one source. It lists the source's containers
(tables, files, objects) and opens a reader on each. Readers stream records in bounded
batches and can fetch records again by key, which is what export needs.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

from connectors.errors import SourceError
from connectors.options import SourceOptions
from connectors.redact import mask_url

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

#: Why a listing passes over an entry, as the summary says it.
SKIP_REASONS: Mapping[str, str] = {
    "hidden": "hidden files and folders (names starting with a dot)",
    "symlinked_folder": "symbolic links to folders (not followed)",
    "unknown_format": "files of an unknown format",
}


class KeyRange(NamedTuple):
    """A unit of work of a table with one integer key: the records whose key is in ``[start, stop)``."""

    start: int
    stop: int


class KeyBuckets(NamedTuple):
    """A unit of some records of a key range: those in ``[start, stop)`` whose key is in one of
    ``buckets`` (bucket ``key // width``). An incremental rescan re-reads changed buckets so."""

    start: int
    stop: int
    width: int
    buckets: tuple[int, ...]


class KeyChanges(NamedTuple):
    """Where a container's records may have changed since an earlier scan
    (``ContainerReader.changed_key_spans``)."""

    #: What to keep for the next scan to compare against; None: nothing.
    token: str | None = None
    #: Key spans (first and last key) that hold every record changed or added since; None:
    #: cannot tell (every key range is fingerprinted).
    spans: list[tuple[int, int]] | None = None
    #: Where the spans cannot show deletions (PostgreSQL's row versions): the records now outside
    #: the spans, which are whole buckets then, counted at the same moment as the spans were
    #: found. The scan compares them with what its last read counted there, and where they
    #: differ, the records of each bucket (``bucket_rows``). None: a deletion shows in the spans
    #: (SQLite's pages).
    rows: int | None = None


@dataclass(frozen=True)
class SourceSpec:
    """One configured source: a name, where it is, and what to include."""

    name: str
    url: str
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    language: str = "en"
    #: The connector's own options class (``SqlOptions``, ``S3Options``); a plain ``SourceOptions``
    #: gives every option its default.
    options: SourceOptions = field(default_factory=SourceOptions)

    def __repr__(self) -> str:
        # The URL may hold a password: a spec in a log line or a traceback must not show it.
        shown = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        shown["url"] = mask_url(self.url)
        return f"SourceSpec({', '.join(f'{k}={v!r}' for k, v in shown.items())})"

    def selects(self, *names: str) -> bool:
        """Whether a container passes the include and exclude glob patterns, by any of its names
        (a SQL table by ``table`` and by ``schema.table``)."""
        if self.include and not any(fnmatch.fnmatchcase(n, p) for n in names for p in self.include):
            return False
        return not any(fnmatch.fnmatchcase(n, p) for n in names for p in self.exclude)


@dataclass(frozen=True)
class FieldInfo:
    """A column or JSON path of a container."""

    name: str
    #: Logical type, the same for every connector: text, int, float, decimal, bool, date, datetime,
    #: json, bytes (never scanned) or other.
    type: str = "text"


@dataclass(frozen=True)
class Relation:
    """A foreign key: ``columns`` of ``container`` reference ``ref_columns`` of ``ref_container``."""

    container: str
    columns: tuple[str, ...]
    ref_container: str
    ref_columns: tuple[str, ...]


@dataclass(frozen=True)
class ContainerRef:
    """A container inside a source, with the version seen when it was listed."""

    source: str
    name: str
    kind: str
    version: Mapping[str, Any] | None = None


@dataclass
class Record:
    """One record: a key that finds it again and its values, flattened to field paths."""

    key: str
    values: dict[str, Any]


@dataclass
class Columns:
    """A batch of records by column: ``keys[i]`` locates the record whose values are ``values[f][i]``.

    Extraction works column by column: a typed column is normalised value by value, with no
    per-record dict, which is what makes structured scans fast.
    """

    keys: list[str]
    values: dict[str, list[Any]]

    @classmethod
    def from_records(cls, batch: Sequence[Record], fields: Sequence[str]) -> Columns:
        return cls([r.key for r in batch], {f: [r.values.get(f) for r in batch] for f in fields})

    def __len__(self) -> int:
        return len(self.keys)


def encode_key(parts: Collection[Any]) -> str:
    """Serialise a primary-key tuple into the stable string stored in locators."""
    return json.dumps(list(parts), default=str, separators=(",", ":"), ensure_ascii=False)


def encode_int_key(key: int) -> str:
    """``encode_key([key])`` for one integer key, without ``json.dumps``: the scan's fast paths
    read millions of them. The two must agree, or the index and the export name a record
    differently (tests/test_record_keys.py checks they do)."""
    return f"[{key:d}]"


def decode_key(key: str) -> list[Any]:
    return list(json.loads(key))


class ContainerReader(ABC):
    """Reads one container. Use it as a context manager so that handles are closed."""

    def __init__(self, ref: ContainerRef) -> None:
        self.ref = ref
        #: Problems with single records (a malformed CSV row); the container goes on.
        self.warnings: list[str] = []
        self.skipped_records = 0
        #: Fields that are present but not scanned (binary columns).
        self.skipped_fields: list[str] = []
        #: What the summary should say about values that were read, not skipped (a number
        #: column's text read as text).
        self.notes: list[str] = []

    def __enter__(self) -> ContainerReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:  # noqa: B027 - most readers hold nothing between calls
        """Release any handle the reader holds."""

    def warn(self, message: str) -> None:
        self.skipped_records += 1
        if len(self.warnings) < 20:
            self.warnings.append(message)

    @abstractmethod
    def sample(self, size: int, *, seed: int = 0) -> list[Record]:
        """A random sample of up to ``size`` records (not the first ones)."""

    def sparse_sample(self, fields: Sequence[str], size: int) -> Iterator[Record]:
        """Records that hold a value in any of ``fields`` (which the random sample held none
        of): until each field had ``size`` of them, or the container ends. Readers that read
        only some fields of a record (tables) answer it; the default answers none, for readers
        of whole records, whose values are followed as they are read instead
        (``discover.sparse.FieldCensus``)."""
        return iter(())

    @abstractmethod
    def batches(self, batch_size: int) -> Iterator[list[Record]]:
        """Every record, in batches of at most ``batch_size``.

        Memory: one batch at a time, plus the reader's own bounded buffers.
        """

    @abstractmethod
    def fetch(self, keys: Collection[str]) -> Iterator[tuple[str, dict[str, Any]]]:
        """The records with these keys, unflattened, in the source's own types.

        Keys that no longer exist are simply not yielded.
        """

    def column_batches(
        self, batch_size: int, fields: Sequence[str], *, unit: KeyRange | KeyBuckets | None = None
    ) -> Iterator[Columns]:
        """The records of a unit (``None``: all), as batches of the given fields' columns.

        Memory: one batch. Readers that can fetch only some columns (tables) override this.
        """
        for batch in self.batches(batch_size):
            yield Columns.from_records(batch, fields)

    def units(self, rows_per_unit: int) -> list[KeyRange | None]:
        """Independent work units (key ranges) that ``column_batches(unit=…)`` can read apart.

        The default is one unit: the whole container.
        """
        return [None]

    def range_step(self, rows_per_range: int) -> int | None:
        """The key width of ranges of about ``rows_per_range`` records, for containers whose changes
        can be found range by range (a table with one integer key); None for the others, which
        an incremental rescan reads whole when their version changed (files) or always (tables)."""
        return None

    def key_bounds(self) -> tuple[int, int] | None:
        """The lowest and highest key, for containers with one integer key; None for the others."""
        return None

    def table_version(self, known: str | None = None, pages: str | None = None) -> str | None:
        """A version of the whole container that changes whenever any record does, computed
        without reading the records; None where there is none (the default). ``known``: the
        version the last scan recorded (a reader may skip work that only a change needs);
        ``pages``: the token ``changed_key_spans`` gave that scan (a reader may reuse it)."""
        return None

    def changed_key_spans(self, since: str | None, width: int) -> KeyChanges:
        """Where the container's records may have changed since an earlier scan (``since``: the
        token that scan kept), cheaper than fingerprinting them all; ``width``: the keys of a
        bucket (0: none). Asked after ``table_version``. The default: cannot tell."""
        return KeyChanges()

    def stored_bucket_prints(self, width: int, buckets: Collection[int] | None = None) -> dict[int, int] | None:
        """Bucket fingerprints (8 bytes each) of ``width`` keys (``buckets``: those only), read
        in this process from where the container keeps its records as of ``table_version``,
        cheaper than ``range_fingerprints``; over whole records. None where there are none
        (the default; then ``range_fingerprints``). Asked after ``table_version``."""
        return None

    def bucket_rows(self, width: int, since: str | None = None) -> dict[int, int]:
        """Records per bucket of ``width`` keys (bucket ``key // width``) that holds any,
        counted where the records are (for a container whose ``changed_key_spans`` gives
        ``rows``); a bucket holding a record written since ``since`` (that method's token)
        counts -1, whatever its records. Memory: a number per bucket."""
        raise NotImplementedError

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
        """Per key range ``n`` (keys ``n * step`` to ``(n + 1) * step - 1``) that holds records, a
        fingerprint of its records, computed where the records are (no record is read out).
        With ``changed_column``, the range's row count and the column's highest value. With
        ``width`` (a divisor of ``step``), the same per bucket ``key // width`` instead; with
        ``buckets`` too, for those buckets only; with ``ranges``, for those ranges only."""
        raise NotImplementedError

    @property
    def spreads_fingerprints(self) -> bool:
        """Whether ``range_fingerprints`` works in this process (an embedded database: SQLite),
        so that a scan on the local process pool spreads a table's ranges over its workers
        (with one worker or on Dask they run in the scanning process). False: the database
        server does the work."""
        return False

    def fields(self) -> list[FieldInfo]:
        """The container's fields where they are known up front (tables, Parquet)."""
        return []

    def key_fields(self) -> list[str]:
        """The fields whose values make up a record's key (a table's primary key); none for
        keys that are positions (rows, lines)."""
        return []

    def current_version(self) -> Mapping[str, Any] | None:
        """The container's version now, to compare with the one seen at scan time."""
        return self.ref.version


class RelationalReader(ContainerReader):
    """A reader on a table: records located by key columns, and found again by column values,
    which is what following foreign keys needs."""

    #: How records are located: ``primary_key``, ``unique_index``, ``rowid``, or ``row_hash`` (a
    #: weak locator: the row is found again only while its content is unchanged).
    key_kind: str

    @abstractmethod
    def fetch_where(
        self, columns: tuple[str, ...], values: Collection[tuple[Any, ...]]
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """Records whose ``columns`` equal one of the value tuples, unflattened."""

    @abstractmethod
    def keys_where(
        self, columns: tuple[str, ...], values: Collection[tuple[Any, ...]]
    ) -> Iterator[tuple[str, tuple[Any, ...]]]:
        """Keys of the records whose ``columns`` equal one of the value tuples, with the tuple each holds."""

    @abstractmethod
    def precision(self) -> dict[str, tuple[int, int]]:
        """Declared (precision, scale) of decimal columns."""

    @abstractmethod
    def all_fields(self) -> list[FieldInfo]:
        """Every column, binary ones included: a package holds the whole record."""


class Connector(ABC):
    """Read-only access to one source. Subclasses register themselves by URL scheme."""

    #: URL schemes (``sqlite``, ``s3``) this connector serves.
    schemes: ClassVar[tuple[str, ...]] = ()
    #: The options this connector takes: the config file's keys for its sources.
    options_type: ClassVar[type[SourceOptions]] = SourceOptions
    #: Its containers are read whole (files, S3 objects): ``units`` is one unit, and there are no
    #: key ranges nor table versions, so all the work on one container can be done where it is read
    #: (a scan samples it in the task that extracts it). False, the default: the lister's process
    #: opens each container first (tables: their key ranges need its sample's profile).
    reads_whole: ClassVar[bool] = False

    def __init__(self, spec: SourceSpec) -> None:
        self.spec = spec
        #: What ``containers`` passed over without reading, by reason (``SKIP_REASONS``).
        self.skipped: Counter[str] = Counter()
        #: Parts of the source that could not be listed (an unreadable folder); the rest is listed.
        self.listing_errors: list[SourceError] = []

    def __enter__(self) -> Connector:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:  # noqa: B027
        """Release connections."""

    def source_version(self) -> Mapping[str, Any] | None:
        """A version of the whole source that changes whenever any container does (a SQLite
        file's size and mtime), so an incremental rescan can skip it unread; None if unknown."""
        return None

    @abstractmethod
    def containers(self) -> Iterator[ContainerRef]:
        """The source's containers that pass the include/exclude patterns."""

    @abstractmethod
    def open(self, ref: ContainerRef) -> ContainerReader:
        """A reader on one container."""

    def relations(self) -> list[Relation]:
        """Foreign keys between containers, where the source has them."""
        return []


#: The entry point group connectors register under: the entry point's name is a URL scheme,
#: its object a ``Connector`` subclass. A third-party package adds a source type with
#: ``[project.entry-points."piiport.connectors"] myscheme = "mypkg.module:MyConnector"``.
ENTRY_POINT_GROUP = "piiport.connectors"

#: Connectors registered at run time (``register``); they win over entry points of the same scheme.
_REGISTRY: dict[str, type[Connector]] = {}
_LOADED: dict[str, type[Connector]] = {}


def register(*schemes: str) -> Callable[[type[Connector]], type[Connector]]:
    """Class decorator: make a connector serve URLs with these schemes in this process (an entry
    point does it for every process, without importing the connector up front)."""

    def decorate(cls: type[Connector]) -> type[Connector]:
        for scheme in schemes:
            _REGISTRY[scheme] = cls
        cls.schemes = tuple(schemes)
        return cls

    return decorate


def _entry_points() -> dict[str, EntryPoint]:
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def known_schemes() -> list[str]:
    return sorted(set(_REGISTRY) | set(_entry_points()))


def url_scheme(url: str) -> str:
    """The registry key of a source URL: its scheme, or ``file`` for a local path."""
    head, sep, _ = url.partition("://")
    if not sep or len(head) == 1:  # a Windows drive letter is not a scheme
        return "file"
    return head.split("+", 1)[0].lower()


def connector_class(url: str, source: str | None = None) -> type[Connector]:
    """The connector class serving ``url``'s scheme; only its own module is imported."""
    scheme = url_scheme(url)
    found = _REGISTRY.get(scheme) or _LOADED.get(scheme)
    if found is not None:
        return found
    where = f"source {source!r}: " if source else ""
    entry = _entry_points().get(scheme)
    if entry is None:
        known = known_schemes()
        if not known:  # piiport's own entry points are missing: a checkout used without installing it
            raise SourceError(
                f"{where}no connector is registered, not even the built-in ones; install piiport "
                "(pip install -e . in a checkout) so that its entry points exist",
                source=source,
            )
        raise SourceError(f"{where}unknown URL scheme {scheme!r}; known schemes: {', '.join(known)}", source=source)
    try:
        loaded = entry.load()
    except Exception as exc:  # a broken third-party package: say which, not a traceback
        raise SourceError(
            f"{where}the connector for {scheme!r} ({entry.value}) cannot be loaded: {type(exc).__name__}: {exc}; "
            "reinstall the package that provides it",
            source=source,
        ) from exc
    if not (isinstance(loaded, type) and issubclass(loaded, Connector)):
        raise SourceError(
            f"{where}the entry point {scheme!r} ({entry.value}) is not a Connector subclass; "
            "fix the package that provides it",
            source=source,
        )
    _LOADED[scheme] = loaded
    return loaded


def connect(spec: SourceSpec) -> Connector:
    """The connector for a source, chosen by the scheme of its URL."""
    return connector_class(spec.url, spec.name)(spec)
