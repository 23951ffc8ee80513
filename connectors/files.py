"""Local files and directory trees: CSV, JSON, JSONL/NDJSON, Parquet, text and logs, plain or gzipped.

Formats are registered by file suffix, so a new one is a class and a decorator.
Every reader streams: CSV, JSONL and text line by line, JSON arrays element by element,
Parquet batch by batch.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import gzip
import io
import json
import logging
import os
import random
import shutil
import tempfile
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterator, Mapping
from pathlib import Path, PurePath
from typing import IO, Any, ClassVar

from connectors.base import (
    Connector,
    ContainerReader,
    ContainerRef,
    FieldInfo,
    Record,
    SourceSpec,
)
from connectors.errors import SourceError
from connectors.flatten import MAX_DEPTH, TooDeep, flatten, join_path, path_at_depth
from connectors.flatten import loads as json_loads

logger = logging.getLogger(__name__)

_SNIFF_BYTES = 1 << 16
_ENCODING_PROBE_BYTES = 1 << 20


class FileFormat(ABC):
    """Parses one file format into ``(key, document)`` pairs."""

    kind: ClassVar[str] = ""
    suffixes: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def parse(self, opener: Callable[[], IO[bytes]], reader: FileReader) -> Iterator[tuple[str, Any]]:
        """Yield every record with its key. ``opener`` gives a fresh binary stream."""

    def fields(self, opener: Callable[[], IO[bytes]]) -> list[FieldInfo]:
        return []


_FORMATS: dict[str, FileFormat] = {}


def register_format(cls: type[FileFormat]) -> type[FileFormat]:
    """Class decorator: serve files with the class's suffixes (and their ``.gz`` variants)."""
    instance = cls()
    for suffix in cls.suffixes:
        _FORMATS[suffix] = instance
    return cls


def known_suffixes() -> list[str]:
    return sorted(_FORMATS)


def format_for(path: PurePath) -> tuple[FileFormat, bool] | None:
    """The format of a file by its suffix, and whether it is gzipped."""
    suffixes = [s.lower() for s in path.suffixes]
    gz = bool(suffixes) and suffixes[-1] == ".gz"
    if gz:
        suffixes = suffixes[:-1]
    if not suffixes:
        return None
    fmt = _FORMATS.get(suffixes[-1])
    return (fmt, gz) if fmt else None


def _text_encoding(opener: Callable[[], IO[bytes]], name: str) -> str:
    """UTF-8 (with or without BOM) when the start of the file decodes as UTF-8, else latin-1."""
    with opener() as fh:
        head = fh.read(_ENCODING_PROBE_BYTES)
    if b"\x00" in head:
        raise SourceError(
            f"{name}: the file holds NUL bytes, so it is binary, not text; exclude it or give it the right suffix",
            container=name,
        )
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return "latin-1"
    return "utf-8-sig"


def _open_text(opener: Callable[[], IO[bytes]], encoding: str) -> io.TextIOWrapper:
    return io.TextIOWrapper(opener(), encoding=encoding, newline="")


@register_format
class CsvFormat(FileFormat):
    kind = "csv"
    suffixes = (".csv", ".tsv")

    def parse(self, opener: Callable[[], IO[bytes]], reader: FileReader) -> Iterator[tuple[str, Any]]:
        encoding = _text_encoding(opener, reader.ref.name)
        with _open_text(opener, encoding) as text:
            head = text.read(_SNIFF_BYTES)
        try:
            dialect: Any = csv.Sniffer().sniff(head, delimiters=",;\t|")
        except csv.Error:
            dialect = csv.excel_tab if reader.ref.name.lower().endswith((".tsv", ".tsv.gz")) else csv.excel
        # A fresh stream rather than a seek: object stores and gzip streams cannot go back.
        with _open_text(opener, encoding) as text:
            rows = csv.reader(text, dialect)
            header = _next_row(rows, reader)
            if header is None:
                return
            header = [h.strip() or f"column_{i + 1}" for i, h in enumerate(header)]
            number = 0
            while True:
                try:
                    row = next(rows)
                except StopIteration:
                    return
                except csv.Error as exc:
                    number += 1
                    reader.warn(f"row {number}: unreadable CSV ({exc}); skipped")
                    continue
                number += 1
                if not row:
                    continue
                if len(row) != len(header):
                    reader.warn(f"row {number}: {len(row)} fields where the header has {len(header)}; skipped")
                    continue
                yield str(number), {h: (v if v != "" else None) for h, v in zip(header, row, strict=True)}


def _next_row(rows: Iterator[list[str]], reader: FileReader) -> list[str] | None:
    try:
        return next(rows)
    except StopIteration:
        return None
    except csv.Error as exc:
        raise SourceError(f"{reader.ref.name}: unreadable CSV header ({exc})", container=reader.ref.name) from exc


@register_format
class JsonLinesFormat(FileFormat):
    kind = "jsonl"
    suffixes = (".jsonl", ".ndjson")

    def parse(self, opener: Callable[[], IO[bytes]], reader: FileReader) -> Iterator[tuple[str, Any]]:
        with opener() as fh:
            for number, raw in enumerate(fh, start=1):
                if not raw.strip():
                    continue
                try:
                    doc = json_loads(raw.decode("utf-8-sig"))
                except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                    reader.warn(f"line {number}: not valid JSON ({type(exc).__name__}); skipped")
                    continue
                except TooDeep as exc:
                    reader.warn(f"line {number}: {exc.message}; skipped")
                    continue
                yield str(number), doc if isinstance(doc, dict) else {"value": doc}


@register_format
class JsonFormat(FileFormat):
    """A JSON array of objects (streamed element by element) or a single object."""

    kind = "json"
    suffixes = (".json",)
    chunk_chars = 1 << 16

    def parse(self, opener: Callable[[], IO[bytes]], reader: FileReader) -> Iterator[tuple[str, Any]]:
        with opener() as raw, io.TextIOWrapper(raw, encoding="utf-8-sig") as text:
            try:
                yield from self._elements(text, reader.ref.name)
            except UnicodeDecodeError as exc:
                raise SourceError(
                    f"{reader.ref.name}: not valid UTF-8 ({exc.reason}); JSON files must be UTF-8",
                    container=reader.ref.name,
                ) from exc

    def _elements(self, text: IO[str], name: str) -> Iterator[tuple[str, Any]]:
        decoder = json.JSONDecoder()
        buf = ""
        pos = 0
        eof = False

        def fill() -> bool:
            nonlocal buf, pos, eof
            chunk = text.read(self.chunk_chars)
            if not chunk:
                eof = True
                return False
            buf = buf[pos:] + chunk
            pos = 0
            return True

        def skip_ws() -> str:
            nonlocal pos
            while True:
                while pos < len(buf) and buf[pos] in " \t\r\n":
                    pos += 1
                if pos < len(buf):
                    return buf[pos]
                if not fill():
                    return ""

        def bad(what: str) -> SourceError:
            return SourceError(
                f"{name}: not valid JSON ({what}); a .json file must hold an array of objects or one object",
                container=name,
            )

        first = skip_ws()
        if first == "{":
            while fill():
                pass
            try:
                doc = json_loads(buf[pos:])
            except json.JSONDecodeError as exc:
                raise bad(exc.msg) from exc
            except TooDeep as exc:
                raise SourceError(f"{name}: {exc.message}", container=name) from None
            yield "0", doc
            return
        if first != "[":
            raise bad("it does not start with [ or {")
        pos += 1
        index = 0
        while True:
            ch = skip_ws()
            if ch == "]":
                return
            if ch == "":
                raise bad("the array is not closed; the file may be truncated")
            while True:
                try:
                    doc, end = decoder.raw_decode(buf, pos)
                except RecursionError:
                    # Python's decoder gave up inside this element, so where it ends is unknown.
                    path = join_path(f"[{index}]", path_at_depth(buf[pos:], MAX_DEPTH - 1))
                    raise SourceError(f"{name}: {TooDeep(path).message}", container=name) from None
                except json.JSONDecodeError as exc:
                    if not eof and fill():
                        continue
                    if exc.pos >= len(buf.rstrip()):
                        raise bad(f"the file ends inside element {index}; it may be truncated") from exc
                    raise bad(exc.msg) from exc
                if end == len(buf) and not eof and fill():
                    continue  # a number cut by the chunk boundary would decode short
                break
            pos = end
            yield str(index), doc if isinstance(doc, dict) else {"value": doc}
            index += 1
            sep = skip_ws()
            if sep == ",":
                pos += 1
            elif sep != "]":
                raise bad(f"expected , or ] after element {index - 1}")


@register_format
class TextFormat(FileFormat):
    """One record per line; the record's single field is ``line``."""

    kind = "text"
    suffixes = (".txt", ".log")

    def parse(self, opener: Callable[[], IO[bytes]], reader: FileReader) -> Iterator[tuple[str, Any]]:
        encoding = _text_encoding(opener, reader.ref.name)
        with io.TextIOWrapper(opener(), encoding=encoding) as text:
            try:
                for number, line in enumerate(text, start=1):
                    line = line.rstrip("\r\n")
                    if line.strip():
                        yield str(number), {"line": line}
            except UnicodeDecodeError as exc:
                raise SourceError(
                    f"{reader.ref.name}: not valid {encoding} after the first MiB; re-save it as UTF-8",
                    container=reader.ref.name,
                ) from exc

    def fields(self, opener: Callable[[], IO[bytes]]) -> list[FieldInfo]:
        return [FieldInfo("line", "text")]


@register_format
class ParquetFormat(FileFormat):
    kind = "parquet"
    suffixes = (".parquet", ".pq")
    batch_rows = 2048

    def parse(self, opener: Callable[[], IO[bytes]], reader: FileReader) -> Iterator[tuple[str, Any]]:
        import pyarrow as pa

        with self._parquet_file(reader.open_seekable or opener, reader.ref.name) as pf:
            index = 0
            try:
                for batch in pf.iter_batches(batch_size=self.batch_rows):
                    for row in batch.to_pylist():
                        yield str(index), row
                        index += 1
            except (pa.ArrowException, OSError) as exc:
                raise SourceError(
                    f"{reader.ref.name}: unreadable Parquet data after record {index} ({exc}); "
                    "the file may be truncated",
                    container=reader.ref.name,
                ) from exc

    @contextlib.contextmanager
    def _parquet_file(self, opener: Callable[[], IO[bytes]], name: str) -> Iterator[Any]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        fh = opener()
        spool: IO[bytes] | None = None
        try:
            if not fh.seekable() or isinstance(fh, gzip.GzipFile):
                # Parquet needs random access; a gzipped or streamed file is spooled to a
                # temporary file, not memory, so that large files stay bounded.
                spool = tempfile.TemporaryFile()  # noqa: SIM115 - closed in the finally below
                shutil.copyfileobj(fh, spool, 1 << 20)
                spool.seek(0)
            try:
                pf = pq.ParquetFile(spool or fh)
            except (pa.ArrowException, OSError) as exc:
                raise SourceError(
                    f"{name}: not a readable Parquet file ({exc}); it may be truncated or mislabelled",
                    container=name,
                ) from exc
            yield pf
        finally:
            fh.close()
            if spool is not None:
                spool.close()


class FileReader(ContainerReader):
    """Reads one file-like container, wherever its bytes come from.

    ``open_raw`` gives a fresh binary stream of the stored bytes (a local file, an S3 object);
    ``open_seekable``, where the store allows it, a seekable one for formats that need random
    access (Parquet). Gzip is undone here, so every store gets every format and its .gz variant.
    """

    def __init__(
        self,
        ref: ContainerRef,
        fmt: FileFormat,
        gz: bool,
        *,
        open_raw: Callable[[], IO[bytes]],
        version: Callable[[], Mapping[str, Any] | None],
        open_seekable: Callable[[], IO[bytes]] | None = None,
    ) -> None:
        super().__init__(ref)
        self.format = fmt
        self.gz = gz
        self._open_raw = open_raw
        self._version = version
        self.open_seekable = None if gz else open_seekable

    def _opener(self) -> IO[bytes]:
        raw = self._open_raw()
        return _Gunzip(raw) if self.gz else raw  # type: ignore[return-value]  # GzipFile is a binary IO

    def _documents(self) -> Iterator[tuple[str, Any]]:
        try:
            yield from self.format.parse(self._opener, self)
        except SourceError:
            raise
        except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
            raise SourceError(
                f"{self.ref.name}: corrupt or truncated gzip data ({exc}); re-create the file",
                container=self.ref.name,
            ) from exc
        except OSError as exc:
            raise SourceError(f"{self.ref.name}: read error ({exc})", container=self.ref.name) from exc

    def sample(self, size: int, *, seed: int = 0) -> list[Record]:
        """Reservoir sample over one streamed pass. Memory: ``size`` records."""
        rng = random.Random(seed)
        reservoir: list[Record] = []
        for seen, (key, doc) in enumerate(self._documents()):
            if seen < size:
                record = self._record(key, doc)
                if record is not None:
                    reservoir.append(record)
            else:
                slot = rng.randint(0, seen)
                if slot < size:
                    record = self._record(key, doc)
                    if record is not None:
                        reservoir[slot] = record
        return reservoir

    def _record(self, key: str, doc: Any) -> Record | None:
        """The flattened record; a record nested too deep is skipped and counted."""
        try:
            return Record(key, flatten(doc))
        except TooDeep as exc:
            self.warn(f"record {key}: {exc.message}; skipped")
            return None

    def batches(self, batch_size: int) -> Iterator[list[Record]]:
        # The full pass is the one whose malformed records are reported; the sample's are not.
        self.warnings, self.skipped_records = [], 0
        batch: list[Record] = []
        for key, doc in self._documents():
            record = self._record(key, doc)
            if record is None:
                continue
            batch.append(record)
            if len(batch) >= batch_size:
                yield batch
                batch = []
        if batch:
            yield batch

    def fetch(self, keys: Collection[str]) -> Iterator[tuple[str, dict[str, Any]]]:
        wanted = set(keys)
        for key, doc in self._documents():
            if key in wanted:
                wanted.discard(key)
                yield key, doc
                if not wanted:
                    return

    def fields(self) -> list[FieldInfo]:
        return self.format.fields(self._opener)

    def current_version(self) -> Mapping[str, Any] | None:
        return self._version()


class _Gunzip(gzip.GzipFile):
    """A gzip stream that also closes the stream it reads from."""

    def __init__(self, raw: IO[bytes]) -> None:
        super().__init__(fileobj=raw, mode="rb")
        self._raw = raw

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._raw.close()


def file_version(path: Path) -> dict[str, Any] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return {"mtime_ns": st.st_mtime_ns, "size": st.st_size}


def local_path(url: str) -> Path:
    return Path(url[len("file://") :] if url.startswith("file://") else url).expanduser()


class FileConnector(Connector):
    """A single file or a directory tree, walked in sorted order."""

    schemes = ("file",)
    reads_whole = True

    def __init__(self, spec: SourceSpec) -> None:
        super().__init__(spec)
        self.root = local_path(spec.url)

    def containers(self) -> Iterator[ContainerRef]:
        if not self.root.exists():
            raise SourceError(
                f"source {self.spec.name!r}: {self.root} does not exist; check the path",
                source=self.spec.name,
            )
        if self.root.is_file():
            found = format_for(self.root)
            if found is None:
                if _is_sqlite(self.root):
                    raise SourceError(
                        f"source {self.spec.name!r}: {self.root.name} is a SQLite database, not a file to read "
                        f"as text; scan it as sqlite:///{self.root}",
                        source=self.spec.name,
                    )
                raise SourceError(
                    f"source {self.spec.name!r}: {self.root.name} has no known suffix; "
                    f"known: {', '.join(known_suffixes())} (and .gz variants)",
                    source=self.spec.name,
                )
            yield self._ref(self.root, self.root.name, found[0])
            return
        # Followed links could loop or leave the tree; hidden entries are tool state (.git, .piiport).
        for dirpath, dirnames, filenames in os.walk(self.root, onerror=self._unlisted):
            here = Path(dirpath)
            kept = []
            for d in sorted(dirnames):
                if d.startswith("."):
                    self.skipped["hidden"] += 1
                elif (here / d).is_symlink():
                    self.skipped["symlinked_folder"] += 1
                else:
                    kept.append(d)
            dirnames[:] = kept
            for filename in sorted(filenames):
                path = here / filename
                if filename.startswith("."):
                    self.skipped["hidden"] += 1
                    continue
                found = format_for(path)
                name = path.relative_to(self.root).as_posix()
                if not self.spec.selects(name):
                    continue
                if found is None:
                    self.skipped["unknown_format"] += 1
                    continue
                yield self._ref(path, name, found[0])

    def _unlisted(self, exc: OSError) -> None:
        """A folder that cannot be listed is an error of its own; the rest of the tree is listed."""
        where = Path(exc.filename or self.root)
        rel = "" if where == self.root else where.relative_to(self.root).as_posix() + "/"
        self.listing_errors.append(
            SourceError(
                f"source {self.spec.name!r}: cannot list the folder {rel or where} ({exc.strerror}); give the "
                "scanning user read and execute access to it, or exclude it",
                source=self.spec.name,
                container=rel,
            )
        )

    def _ref(self, path: Path, name: str, fmt: FileFormat) -> ContainerRef:
        return ContainerRef(self.spec.name, name, fmt.kind, file_version(path))

    def path_of(self, name: str) -> Path:
        return self.root if self.root.is_file() else self.root / name

    def open(self, ref: ContainerRef) -> ContainerReader:
        path = self.path_of(ref.name)
        found = format_for(path)
        if found is None:
            raise SourceError(f"{ref.name}: unknown file format", source=self.spec.name, container=ref.name)

        def open_raw() -> IO[bytes]:
            try:
                return open(path, "rb")
            except FileNotFoundError as exc:
                raise SourceError(
                    f"{ref.name}: the file disappeared during the scan; scan again when it is back",
                    source=self.spec.name,
                    container=ref.name,
                ) from exc
            except PermissionError as exc:
                raise SourceError(
                    f"{ref.name}: permission denied; give the scanning user read access",
                    source=self.spec.name,
                    container=ref.name,
                ) from exc

        return FileReader(
            ref, found[0], found[1], open_raw=open_raw, version=lambda: file_version(path), open_seekable=open_raw
        )


def _is_sqlite(path: Path) -> bool:
    """Whether ``path`` starts with SQLite's file header (a database given as a plain path)."""
    try:
        with path.open("rb") as f:
            return f.read(16) == b"SQLite format 3\x00"
    except OSError:
        return False
