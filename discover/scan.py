"""The two-stage scan: profile every container from a sample, then extract and index."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import os
import pickle
import tempfile
import time
from collections import Counter, deque
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from connectors.base import (
    Columns,
    Connector,
    ContainerReader,
    ContainerRef,
    KeyBuckets,
    KeyRange,
    SourceSpec,
    connect,
)
from connectors.errors import ConfigError, PiiportError, SourceError
from connectors.redact import mask_url
from discover.buckets import (
    MAX_BUCKETS,
    BucketedExtractor,
    BucketTable,
    RangePatch,
    bucket_width,
    buckets_in,
    print_hash,
    range_print,
)
from discover.detector import Detector
from discover.extract import Extractor, FieldStats, FindingGroup, origins_of
from discover.hashing import IdentifierHasher
from discover.identifiers import INDEXED_TYPES
from discover.incremental import RangeSummary, changed_column, merge, signature
from discover.index import ContainerWrite, Index, LastScan, utcnow
from discover.index_direct import UnitTarget, UnitWrite, discard_generation, open_generation, supports_direct_writes
from discover.packing import Part, PartBuilder
from discover.profile import NO_VALUES, FieldProfile, Profiler
from discover.sealing import KeySealer
from discover.settings import DetectionSettings, ScanSettings
from discover.sparse import FieldCensus, profile_sparse

logger = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class ContainerResult:
    source: str
    container: str
    kind: str
    records: int = 0
    findings: int = 0
    entities: dict[str, int] = field(default_factory=dict)
    pii_fields: list[str] = field(default_factory=list)
    skipped_records: int = 0
    skipped_fields: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: About values read, not skipped (text in a number column, read as text).
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0
    #: How it was read: ``full``, ``unchanged`` (nothing read) or ``ranges`` (changed key ranges).
    read: str = "full"
    #: For ``ranges``: key ranges read again, and the table's ranges.
    ranges_read: int = 0
    ranges_total: int = 0
    #: Of those, the ranges read in part (``discover.buckets``), and the buckets they read again.
    ranges_in_part: int = 0
    buckets_read: int = 0


@dataclass
class ScanResult:
    """What a scan did: per container counts and errors, and totals."""

    run_id: int
    started_at: str
    finished_at: str = ""
    sources: list[str] = field(default_factory=list)
    containers: list[ContainerResult] = field(default_factory=list)
    source_errors: list[dict[str, str]] = field(default_factory=list)
    removed_containers: int = 0
    #: Per source, what its listing passed over, by reason (``connectors.base.SKIP_REASONS``).
    skipped: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def errors(self) -> list[dict[str, str]]:
        out = list(self.source_errors)
        out += [{"source": c.source, "container": c.container, "error": c.error} for c in self.containers if c.error]
        return out

    @property
    def ok(self) -> bool:
        return not self.errors

    def totals(self) -> dict[str, Any]:
        entities: Counter[str] = Counter()
        for c in self.containers:
            entities.update(c.entities)
        return {
            "containers": len(self.containers),
            "containers_failed": sum(1 for c in self.containers if c.error),
            "records": sum(c.records for c in self.containers),
            "findings": sum(c.findings for c in self.containers),
            "entities": dict(sorted(entities.items())),
            "errors": len(self.errors),
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "sources": self.sources,
            "totals": self.totals(),
            "containers": [asdict(c) for c in self.containers],
            "errors": self.errors,
            "removed_containers": self.removed_containers,
            "skipped": self.skipped,
        }


#: ``progress(event, data)``: ``"container"`` when one starts (data: source, container,
#: number, total) and ``"records"`` after each unit of work (data: count).
Progress = Callable[[str, dict[str, Any]], None]


@dataclass(frozen=True)
class Sampling:
    """How a container's profile is drawn: ``records`` sampled at random with ``seed``."""

    records: int
    seed: int
    #: Values looked for further of a field the sample held none of (``discover.sparse``).
    sparse_values: int = 100

    @classmethod
    def of(cls, settings: ScanSettings) -> Sampling:
        # About twice the target of non-null values per field, so sparse fields still get a sample.
        return cls(settings.sample_size * 2, settings.seed, settings.sample_size)


@dataclass(frozen=True)
class ContainerProfile:
    """What a container's sample decided: its fields' profiles, the fields not scanned, notes on
    values read, whether its record keys are sealed, and the process that drew the sample."""

    profiles: dict[str, FieldProfile]
    skipped_fields: list[str]
    notes: list[str]
    #: A key that is personal data (an e-mail as primary key) is stored sealed, never in plaintext.
    seal_keys: bool
    pid: int


def profile_container(reader: ContainerReader, profiler: Profiler, sampling: Sampling) -> ContainerProfile:
    """Sample an open container and profile its fields: in the scanning process for a table,
    in the task that extracts it for a container read whole. A field the sample held no value
    of is looked for further (``discover.sparse``); a sample that could not be told from the
    whole table (a TABLESAMPLE on stale statistics returns fewer rows) is no reason not to.
    Memory: the sample, and up to ``sampling.sparse_values`` records per such field."""
    sample = reader.sample(sampling.records, seed=sampling.seed)
    known = reader.fields()
    profiles = profile_sparse(reader, profiler, profiler.profile(sample, known), known, size=sampling.sparse_values)
    return ContainerProfile(
        profiles,
        list(reader.skipped_fields),
        list(reader.notes),
        any(f in profiles and profiles[f].is_pii for f in reader.key_fields()),
        os.getpid(),
    )


@dataclass(frozen=True)
class UnitTask:
    """One independent piece of work: a key range of a table, or a whole file.

    Everything in it is plain data, so a process pool (or a distributed engine) can run it.
    A task with ``sampling`` is a whole container (a file, an S3 object) not profiled yet: it
    samples and profiles the container first, then extracts it (``profiles`` and ``seal_keys``
    are then unused), and returns the profile with its result.
    """

    spec: SourceSpec
    ref: ContainerRef
    unit: KeyRange | None
    profiles: dict[str, FieldProfile]
    detection: DetectionSettings
    batch_size: int
    #: The index key: a unit that fails is logged and shown with its task, never with the key.
    key: bytes = field(repr=False)
    #: The container's record keys are personal data: seal them (``discover.sealing``).
    seal_keys: bool = False
    #: Hashed findings kept in memory before the rest go to a temporary file.
    in_memory: int = 250_000
    spill_dir: str | None = None
    #: The key range this unit is (``discover.incremental``), when the container keeps ranges.
    range_no: int | None = None
    #: Direct writes (``discover.index_direct``): the unit writes its parts into the index itself,
    #: opened from the URL its worker was given at start, and returns only counts.
    target: UnitTarget | None = None
    #: The key width of the range's buckets (``discover.buckets``): counts are kept per bucket. 0: none.
    width: int = 0
    #: A rescan that re-reads only some buckets of the range (``discover.buckets.RangePatch``).
    patch: RangePatch | None = None
    #: Profile the container here first, from a sample drawn so (``ScanSettings.profile_in_tasks``).
    sampling: Sampling | None = None
    #: Values kept of each field a container read whole did not have in its sample
    #: (``discover.sparse.FieldCensus``): the sample's target per field (``sample_size``).
    sparse_values: int = 100


@dataclass
class UnitResult:
    parts: list[Part]  # packed findings: hashes, keys sealed where needed
    stats: FieldStats
    records: int
    entities: Counter[str]
    warnings: list[str]
    skipped_records: int
    #: A temporary file with more parts (pickled), when the unit outgrew memory.
    spill: str | None = None
    notes: list[str] = field(default_factory=list)
    range_no: int | None = None
    #: Per bucket counts (a range kept by buckets), and where each field's examples were settled.
    buckets: BucketTable | None = None
    stops: dict[tuple[str, str], int] = field(default_factory=dict)
    #: Only the patch's buckets were read (``UnitTask.patch``); False when the range was read whole.
    patched: bool = False
    #: The container's profile, when the task drew it (``UnitTask.sampling``).
    profile: ContainerProfile | None = None
    #: Fields of a container read whole that its sample did not decide, profiled from values
    #: read past it (``discover.sparse``): they replace the sample's profiles of them.
    sparse: dict[str, FieldProfile] = field(default_factory=dict)

    def all_parts(self) -> Iterator[Part]:
        """The unit's parts; ``discard`` removes the spill file after.

        Memory: the parts held in memory plus one spilled part.
        """
        yield from self.parts
        if self.spill is None:
            return
        with open(self.spill, "rb") as fh:
            while True:
                try:
                    yield pickle.load(fh)
                except EOFError:
                    return

    def discard(self) -> None:
        if self.spill is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.spill)
            self.spill = None


_WORKER: dict[str, Any] = {}


def _connector(spec: SourceSpec) -> Any:
    """One connector per source and process: units of a table share its engine and reflection.

    Keyed by process id too, so a forked worker never uses the parent's pooled connections.
    """
    cache: dict[tuple[int, str, str], Any] = _WORKER.setdefault("connectors", {})
    key = (os.getpid(), spec.name, spec.url)
    if key not in cache:
        cache[key] = connect(spec)
    return cache[key]


@dataclass(frozen=True)
class FingerprintTask:
    """Some key ranges of a table to fingerprint (``ContainerReader.range_fingerprints``) in a
    worker process: plain data, like a ``UnitTask``."""

    spec: SourceSpec
    ref: ContainerRef
    step: int
    changed_column: str | None
    fields: tuple[str, ...]
    width: int
    ranges: tuple[int, ...]
    buckets: tuple[int, ...] | None = None


def fingerprint_ranges(task: FingerprintTask) -> dict[int, str]:
    """The fingerprints of ``task``'s ranges (or of its buckets), in this process."""
    reader: ContainerReader
    with _connector(task.spec).open(task.ref) as reader:
        return reader.range_fingerprints(
            task.step,
            task.changed_column,
            list(task.fields),
            width=task.width or None,
            buckets=task.buckets,
            ranges=task.ranges,
        )


def bucket_prints_of(task: FingerprintTask) -> dict[int, int]:
    """``fingerprint_ranges`` of buckets, each in 8 bytes (``print_hash``): hashed where they are
    computed, so that the scanning process, which plans the table alone, only files them by range."""
    return {bucket: print_hash(text) for bucket, text in fingerprint_ranges(task).items()}


def _share_connector(spec: SourceSpec, connector: Any | None) -> None:
    cache: dict[tuple[int, str, str], Any] = _WORKER.setdefault("connectors", {})
    key = (os.getpid(), spec.name, spec.url)
    if connector is None:
        cache.pop(key, None)
    else:
        cache[key] = connector


def _worker_detector(settings: DetectionSettings) -> Detector:
    """One Presidio engine per worker process, built the first time a unit needs it (to profile
    a container or to read its free text)."""
    detector = _WORKER.get("detector")
    if detector is None or detector.settings != settings:
        detector = _WORKER["detector"] = Detector(settings)
    return detector


#: Where a worker process keeps the index URL it writes to (direct writes), set when it starts.
INDEX_URL_SLOT = "index_url"


def _worker_index(key: bytes) -> Index:
    """The index this worker process writes units into, opened once (per process, URL and key)."""
    url = _WORKER.get(INDEX_URL_SLOT)
    if url is None:
        raise ConfigError(
            "this worker was started without the index URL that direct writes need; restart the scan",
            setting="direct_writes",
        )
    cache: dict[tuple[int, str, bytes], Index] = _WORKER.setdefault("indexes", {})
    slot = (os.getpid(), url, key)
    if slot not in cache:
        cache[slot] = Index(url, key=key, create=False)
    return cache[slot]


def _write_unit(task: UnitTask, on_batch: Callable[[int], None] | None) -> UnitResult:
    """Run a unit whose parts go straight into the index, in one transaction of its own."""
    assert task.target is not None
    write = UnitWrite(_worker_index(task.key), task.target)
    try:
        result = _run(task, functools.partial(write.add_part, range_no=task.range_no), on_batch)
        write.commit()
    except BaseException:
        write.rollback()
        raise
    return result


def run_unit(
    task: UnitTask,
    sink: Callable[[Part], None] | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> UnitResult:
    """Extract one unit, hash its findings and seal its keys where needed; the plaintext never
    leaves this function.

    Findings are packed into parts of up to ``task.in_memory`` findings (``discover.packing``).
    With ``sink``, each part goes to it at once (in-process: straight into the index);
    without, parts are returned with the result (from a worker process).
    Memory: one batch and one part (about 40 bytes per finding), plus, without a sink, parts
    of up to ``task.in_memory`` findings; beyond that, parts go to a private temporary file
    (mode 0600) that ``UnitResult.all_parts`` reads back and the caller deletes.
    A unit with a ``target`` and no sink writes its parts into the index itself.
    A unit with ``sampling`` (a whole file or object) is profiled here first, from a sample
    (memory: the sample too), with this process's engine; its result carries the profile.
    """
    if task.target is not None and sink is None:
        return _write_unit(task, on_batch)
    return _run(task, sink, on_batch)


def _run(task: UnitTask, sink: Callable[[Part], None] | None, on_batch: Callable[[int], None] | None) -> UnitResult:
    if task.patch is not None:
        patched = _extract_patch(task, on_batch)
        if patched is not None:
            if sink is not None:
                for part in patched.parts:
                    sink(part)
                patched.parts = []
            return patched
        # The patch met something only a whole read summarises as a full scan does (a warning).
        task = dataclasses.replace(task, patch=None)
    return _extract(task, sink, on_batch)


def _extract_patch(task: UnitTask, on_batch: Callable[[int], None] | None) -> UnitResult | None:
    """Re-read some buckets of a key range (``task.patch``): the range's first buckets until
    every field's masked examples are settled again, then the changed buckets. Returns their
    findings and per bucket counts; None when the reader warned or skipped records, or when the
    counts could not be derived per bucket (``broken``): the range is then read whole.
    Memory: the changed buckets' findings, packed."""
    patch, unit = task.patch, task.unit
    assert patch is not None and unit is not None
    width = patch.width
    changed = set(patch.changed)
    hasher = IdentifierHasher(task.key)
    extractor = Extractor(task.profiles, None, regions=task.detection.phone_regions, language=task.spec.language)
    if extractor.free_text:
        extractor.detector = _worker_detector(task.detection)
    bucketed = BucketedExtractor(extractor, width, keep=changed.__contains__)
    builder = PartBuilder(
        hasher.record_digester(task.ref.source, task.ref.name), KeySealer(task.key).seal if task.seal_keys else None
    )
    digesters = {etype: hasher.digester(etype) for etype in INDEXED_TYPES}
    entities: Counter[str] = Counter()
    parts: list[Part] = []
    with _connector(task.spec).open(task.ref) as reader:

        def read(low: int, high: int, only: tuple[int, ...] = ()) -> None:
            if high <= low:
                return
            wanted: KeyRange | KeyBuckets = KeyBuckets(low, high, width, only) if only else KeyRange(low, high)
            for cols in reader.column_batches(task.batch_size, extractor.fields, unit=wanted):
                hashed = []
                for group in bucketed.extract_columns(cols):
                    hashed.append(group._replace(values=list(map(digesters[group.entity_type], group.values))))
                    entities[group.entity_type] += len(group.keys)
                builder.add(hashed)
                if builder.findings >= task.in_memory and (part := builder.take()) is not None:
                    parts.append(part)
                if on_batch is not None:
                    on_batch(len(cols))

        end = unit.start if patch.prefix_end is None else min(unit.stop, (patch.prefix_end + 1) * width)
        read(unit.start, end)
        step = max(width, end - unit.start)
        while end < unit.stop and not bucketed.settled(patch.needed):
            read(end, min(unit.stop, end + step))
            end, step = min(unit.stop, end + step), step * 2
        rest = sorted(b for b in changed if (b + 1) * width > end)
        for start in range(0, len(rest), _BUCKETS_PER_READ):  # the database skips the other rows
            read(end, unit.stop, only=tuple(rest[start : start + _BUCKETS_PER_READ]))
        # A count the buckets could not derive (``broken``) leaves no summary: read the range whole.
        if reader.warnings or reader.notes or reader.skipped_records or bucketed.broken:
            return None
    if (part := builder.take()) is not None:
        parts.append(part)
    return UnitResult(
        parts,
        bucketed.stats,
        bucketed.records,
        entities,
        [],
        0,
        range_no=task.range_no,
        buckets=bucketed.table(),
        stops=bucketed.stops,
        patched=True,
    )


#: Ranges of a table at least, for its fingerprints to be spread over worker processes; and at
#: most (keys so far apart that most ranges are empty: the database groups them in one query).
_SPREAD_RANGES = 4
_SPREAD_MAX = 20_000

#: Changed buckets named in one read of the rest of a range.
_BUCKETS_PER_READ = 500


def _profiler(task: UnitTask) -> Profiler:
    """A profiler in this process (a worker's, for a file or an object), with the process's one
    engine (``_worker_detector``), used only if a field needs NER."""
    detection = task.detection
    return Profiler(
        _worker_detector(detection),
        regions=detection.phone_regions,
        entities=detection.entities,
        language=task.spec.language,
    )


def _profile_here(task: UnitTask, reader: ContainerReader) -> ContainerProfile:
    """The container's profile, drawn in this process."""
    assert task.sampling is not None
    return profile_container(reader, _profiler(task), task.sampling)


def _extract(task: UnitTask, sink: Callable[[Part], None] | None, on_batch: Callable[[int], None] | None) -> UnitResult:
    profile = None
    profiles, seal_keys = task.profiles, task.seal_keys
    if task.sampling is not None:
        # A reader of its own, as in the scanning process: the sample's malformed records and
        # notes are not the full pass's.
        with _connector(task.spec).open(task.ref) as reader:
            profile = _profile_here(task, reader)
        profiles, seal_keys = profile.profiles, profile.seal_keys
    needs_nlp = any(p.free_text for p in profiles.values())
    detector = _worker_detector(task.detection) if needs_nlp else None
    extractor = Extractor(profiles, detector, regions=task.detection.phone_regions, language=task.spec.language)
    bucketed = BucketedExtractor(extractor, task.width) if task.width else None
    extract = bucketed.extract_columns if bucketed is not None else extractor.extract_columns
    hasher = IdentifierHasher(task.key)
    builder = PartBuilder(
        hasher.record_digester(task.ref.source, task.ref.name), KeySealer(task.key).seal if seal_keys else None
    )
    kept: list[Part] = []
    held = 0
    spill: Any = None
    entities: Counter[str] = Counter()
    digesters = {etype: hasher.digester(etype) for etype in INDEXED_TYPES}

    def emit(part: Part | None) -> None:
        nonlocal held, spill
        if part is None:
            return
        if sink is not None:
            sink(part)
        elif held < task.in_memory:
            kept.append(part)
            held += part.findings
        else:
            if spill is None:
                spill = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed below, or removed on error
                    "wb", prefix="piiport-unit-", suffix=".pickle", dir=task.spill_dir, delete=False
                )
            pickle.dump(part, spill, protocol=pickle.HIGHEST_PROTOCOL)

    def read(batches: Iterator[Columns], extract: Callable[[Columns], list[FindingGroup]], count: bool) -> None:
        for cols in batches:
            hashed = []
            for group in extract(cols):
                hashed.append(group._replace(values=list(map(digesters[group.entity_type], group.values))))
                entities[group.entity_type] += len(group.keys)
            builder.add(hashed)
            if builder.findings >= task.in_memory:
                emit(builder.take())
            if count and on_batch is not None:
                on_batch(len(cols))

    connector = _connector(task.spec)
    # A file or object read whole: the values of fields its sample did not decide are kept as
    # they go by (``discover.sparse``).
    census = (
        FieldCensus((f for f, p in profiles.items() if p.reason != NO_VALUES), task.sparse_values)
        if connector.reads_whole and task.unit is None
        else None
    )
    sparse: dict[str, FieldProfile] = {}
    try:
        with connector.open(task.ref) as reader:
            batches = (
                reader.column_batches(task.batch_size, extractor.fields, unit=task.unit)
                if census is None
                else census.watched(reader, task.batch_size, extractor.fields)
            )
            read(batches, extract, True)
            stats = extractor.stats if bucketed is None else bucketed.stats
            if census is not None and census.values:
                sparse = census.profiles(_profiler(task), profiles, reader.fields())
                found = {f: p for f, p in sparse.items() if p.is_pii}
                if found:  # read again, for those fields only; the records were counted once
                    more = Extractor(found, None, regions=task.detection.phone_regions, language=task.spec.language)
                    if more.free_text:
                        more.detector = _worker_detector(task.detection)
                    read(reader.column_batches(task.batch_size, more.fields), more.extract_columns, False)
                    stats.merge(more.stats)
            emit(builder.take())
            if spill is not None:
                spill.close()
            notes = list(reader.notes)
            if census is not None and census.unfollowed:
                notes.append(census.unfollowed_note())
            return UnitResult(
                kept,
                stats,
                extractor.records,
                entities,
                list(reader.warnings),
                reader.skipped_records,
                spill.name if spill is not None else None,
                notes,
                task.range_no,
                buckets=None if bucketed is None else bucketed.table(),
                stops={} if bucketed is None else bucketed.stops,
                profile=profile,
                sparse=sparse,
            )
    except BaseException:
        if spill is not None:
            spill.close()
            os.unlink(spill.name)
        raise


def _use_parent_detector(detector: Detector) -> None:
    # A worker forked from the parent inherits its loaded engine; in-process units use it too.
    _WORKER["detector"] = detector


def scan(
    sources: Sequence[SourceSpec],
    *,
    index: Index,
    detector: Detector | None = None,
    detection: DetectionSettings | None = None,
    settings: ScanSettings | None = None,
    progress: Progress | None = None,
    prune: bool = True,
) -> ScanResult:
    """Scan sources into the index. A bad container is recorded and the scan goes on.

    Each container is profiled from a sample, then split into units (key ranges of a table,
    whole files) that ``settings.workers`` processes extract in parallel, one Presidio engine
    per process. A table is sampled and profiled here (one sample, then many key-range units
    that all need its profile, and incremental rescans compare it); a file or S3 object is one
    unit whose task samples, profiles and extracts it on a worker (``profile_in_tasks``), so
    this process only lists them and checks their versions. Findings are hashed in the worker
    and written by this process, one transaction per container, so a failed container leaves
    the index as it was (into a PostgreSQL index, workers write them and this process's commit
    makes them visible: ``discover.index_direct``).

    With ``prune`` (the default) containers the source no longer lists are forgotten; a
    targeted rescan of a few containers passes ``prune=False``.

    Memory: one sample per table (per file, in the worker that reads it) and one batch; with a
    pool, also the hashed findings of at most ``2 * workers`` units (a table unit is
    ``unit_rows`` rows, a file is one unit).
    """
    detection = detection or (detector.settings if detector else DetectionSettings())
    detector = detector or Detector(detection)
    settings = settings or ScanSettings()
    _use_parent_detector(detector)
    with index.scan_lock():  # one scan writes an index at a time; runs left "running" become "interrupted"
        run_id = index.start_run([s.name for s in sources])
        result = ScanResult(run_id=run_id, started_at=utcnow(), sources=[s.name for s in sources])
        run = _ScanRun(
            index, detector, detection, settings, result, _Runner(index, settings, progress), progress, prune
        )
        completed = False
        try:
            with index.bulk_load(), run.runner:
                for spec in sources:
                    run.source(spec)
                run.runner.drain()
            completed = True
        finally:
            result.finished_at = utcnow()
            status = ("ok" if result.ok else "errors") if completed else "interrupted"
            index.finish_run(run_id, status=status, summary={"totals": result.totals(), "errors": result.errors})
    return result


@dataclass
class _ScanRun:
    """One scan run: what its sources and containers share, and the steps that walk them."""

    index: Index
    detector: Detector
    detection: DetectionSettings
    settings: ScanSettings
    result: ScanResult
    runner: _Runner
    progress: Progress | None
    #: Forget the containers a source no longer lists (False: a targeted rescan).
    prune: bool

    def source(self, spec: SourceSpec) -> None:
        """Scan one source; a source that cannot be opened is recorded and the run goes on."""
        try:
            connector = connect(spec)
        except PiiportError as exc:
            self.result.source_errors.append({"source": spec.name, "container": "", "error": exc.message})
            return
        with connector:
            _share_connector(spec, connector)
            try:
                self._containers(spec, connector)
            finally:
                _share_connector(spec, None)

    def _containers(self, spec: SourceSpec, connector: Connector) -> None:
        index, detection, settings, result, progress, runner = (
            self.index,
            self.detection,
            self.settings,
            self.result,
            self.progress,
            self.runner,
        )
        url = mask_url(spec.url)
        try:
            refs = list(connector.containers())
        except PiiportError as exc:
            logger.warning("source %s: %s", spec.name, exc.message)
            result.source_errors.append({"source": spec.name, "container": "", "error": exc.message})
            return
        if connector.skipped:
            result.skipped[spec.name] = dict(sorted(connector.skipped.items()))
        unlisted = []  # folders that could not be listed: what the index knew under them stays
        for unreadable in connector.listing_errors:
            logger.warning("source %s: %s", spec.name, unreadable.message)
            folder = unreadable.container or ""
            result.source_errors.append({"source": spec.name, "container": folder, "error": unreadable.message})
            unlisted.append(folder)
        profiler = Profiler(
            self.detector, regions=detection.phone_regions, entities=detection.entities, language=spec.language
        )
        # Taken before anything is read: a write during the scan makes the next one look again.
        source_version = None if settings.full else connector.source_version()
        pre = signature(detection, settings, spec.language)
        lasts = {} if settings.full else index.last_scans(spec.name)
        for number, ref in enumerate(refs, start=1):
            if progress:
                progress(
                    "container", {"source": spec.name, "container": ref.name, "number": number, "total": len(refs)}
                )
            job = _Job(ContainerResult(source=ref.source, container=ref.name, kind=ref.kind), ref, url, spec)
            last = lasts.get(ref.name)
            if ref.version is not None:
                job.state = {"sig": pre}
                if last is not None and _unchanged_version(last, ref, pre):
                    result.containers.append(_unchanged(job.result, last))
                    continue
            elif (
                source_version is not None
                and last is not None
                and last.state.get("pre") == pre
                and last.state.get("source") == source_version
            ):
                result.containers.append(_unchanged(job.result, last))  # a SQLite file not written since
                continue
            result.containers.append(job.result)
            if connector.reads_whole and settings.profile_in_tasks:
                # A file or object: sampled, profiled and read in one task, on a worker (in this
                # process with one worker); here it is only listed and its version checked.
                if source_version is not None:
                    job.state.update(pre=pre, source=source_version)
                runner.submit(
                    job,
                    [None],
                    detection=detection,
                    key=index.hasher.key,
                    run_id=result.run_id,
                    sampling=Sampling.of(settings),
                )
                continue
            try:
                with connector.open(ref) as reader:
                    if _same_table(job, reader, last, pre) and last is not None:
                        result.containers[-1] = _unchanged(job.result, last)
                        continue
                    # A table is profiled here: its key ranges (and its incremental state) need the profile.
                    job.take(profile_container(reader, profiler, Sampling.of(settings)))
                    has_text = any(p.free_text for p in job.profiles.values())
                    rows_per_unit = settings.text_unit_rows if has_text else settings.unit_rows
                    fingerprint = functools.partial(runner.fingerprints, job, reader, index.hasher.key)
                    prints = functools.partial(runner.bucket_prints, job, reader, index.hasher.key)
                    units = _plan_ranges(job, reader, last, detection, settings, rows_per_unit, fingerprint, prints)
                    if source_version is not None:
                        job.state.update(pre=pre, source=source_version)
                    if job.table_version is not None:
                        job.state.update(pre=pre, table=job.table_version)
                    if units is None:
                        units = reader.units(rows_per_unit) if settings.parallel else [None]
            except Exception as exc:  # one bad container never loses the rest of a scan
                runner.reject(job, exc, run_id=result.run_id)
                continue
            if job.replace is not None and not job.replace and not job.patches:
                # No range changed: what the index knows of the table stands, compared next time
                # against this scan's version and token (rows written and found unchanged are
                # not looked at again).
                assert last is not None
                result.containers[-1] = _unchanged(job.result, last)
                runner.keep(job, last.container_id, {**last.state, **job.state})
                continue
            runner.submit(job, units, detection=detection, key=index.hasher.key, run_id=result.run_id)
        runner.drain()
        listed = [r.name for r in refs]
        if self.prune:
            result.removed_containers += index.prune(spec.name, listed, spare=unlisted)
        else:
            # A targeted scan (export --rescan) forgets only the containers it asked for that are gone.
            result.removed_containers += index.prune(
                spec.name, listed, spare=unlisted, only=[n for n in index.container_names(spec.name) if spec.selects(n)]
            )


def _unchanged_version(last: LastScan, ref: ContainerRef, sig: str) -> bool:
    """A file or object whose size and mtime (or ETag) are those of its last successful scan."""
    seen = json.loads(json.dumps(dict(ref.version or {}), default=str))
    return bool(seen) and last.version == seen and last.state.get("sig") == sig


def _unchanged(r: ContainerResult, last: LastScan) -> ContainerResult:
    """The result of a container not read again: its counts as the index has them."""
    r.read = "unchanged"
    r.records = int(last.state.get("records", 0))
    r.entities = dict(last.state.get("entities", {}))
    r.findings = sum(r.entities.values())
    r.pii_fields = list(last.state.get("pii_fields", []))
    r.ranges_total = len(last.ranges)
    return r


def _same_table(job: _Job, reader: Any, last: LastScan | None, pre: str) -> bool:
    """Whether the table is the one its last scan read (``ContainerReader.table_version``: no
    row changed, added or went), under the same settings: then neither its rows nor a sample
    are read, and its profile, findings and counts stand. Sets ``job.table_version``, taken
    before anything is read, for the next scan to compare against."""
    job.table_version = (
        reader.table_version(last.state.get("table"), last.state.get("pages"))
        if last is not None
        else reader.table_version()
    )
    return (
        job.table_version is not None
        and last is not None
        and last.state.get("table") == job.table_version
        and last.state.get("pre") == pre
    )


def _plan_ranges(
    job: _Job,
    reader: Any,
    last: LastScan | None,
    detection: DetectionSettings,
    settings: ScanSettings,
    rows_per_unit: int,
    fingerprint: Callable[..., Callable[[], dict[int, str]]],
    bucket_prints: Callable[..., Callable[[], dict[int, int]]],
) -> list[KeyRange | None] | None:
    """The key ranges to read, for a table whose changes can be found range by range; None
    for other containers (read whole). Sets ``job.replace`` to the ranges whose findings are
    replaced (None: all of them), ``job.patches`` to those re-read in part (``discover.buckets``)
    and ``job.fingerprints`` to what to record for them. ``fingerprint`` and ``bucket_prints``:
    the runner's (the reader's ``range_fingerprints``, maybe spread over worker processes).

    Memory: the fingerprint of each bucket of the table (``buckets.MAX_BUCKETS`` at most, about
    100 bytes each), held until the table's units are written."""
    column = changed_column(job.spec.options, job.ref.name, [f.name for f in reader.fields()])
    method = f"watermark:{column}" if column else "checksum"
    sig = signature(
        detection, settings, job.spec.language, profiles=job.profiles, seal_keys=job.seal_keys, method=method
    )
    fresh_step = reader.range_step(rows_per_unit)
    if fresh_step is None:
        return None  # no single integer key (or a file): read whole
    job.state = {"sig": sig}
    # Findings depend on the key and the personal-data fields only (the profile, which decides
    # those, is drawn again each scan): a change elsewhere in the row is not a change here.
    fields = [f for f, p in job.profiles.items() if p.is_pii]
    job.sample_notes = list(job.notes)
    reuse = last is not None and last.state.get("sig") == sig and bool(last.state.get("step"))
    step = int(last.state["step"]) if reuse and last is not None else fresh_step  # the full scan's ranges, kept
    # Buckets (``discover.buckets``), free text included (a text's entities do not depend on the
    # batch it is analysed in: a patch reads its changed buckets' texts in batches of its own);
    # a sealed key is not read back as a number.
    width = 0
    if not job.seal_keys:
        if reuse and last is not None and last.state.get("width"):
            width = int(last.state["width"])  # the full scan's buckets, kept as its ranges are
        else:
            bounds = reader.key_bounds()
            width = bucket_width(step, 1 if bounds is None else bounds[1] // step - bounds[0] // step + 1)
    by_range: dict[int, dict[int, int]] = {}  # per range, its buckets' fingerprints
    before: dict[int, RangeSummary] = {}  # summaries of the last scan, as loaded
    # Where rows may have changed, from the table's pages (SQLite): only there are buckets fingerprinted.
    since = last.state.get("pages") if reuse and last is not None else None
    changes = reader.changed_key_spans(since, width)
    if changes.token is not None:
        job.state["pages"] = changes.token
    touched = None  # the buckets the changed spans reach into, where there are not too many
    if width and reuse and last is not None and changes.spans is not None and last.state.get("width") == width:
        # A page may span a gap of 2**62 keys (a row with a far key added): beyond twice the
        # buckets the table's ranges can hold, every bucket that holds a record is fingerprinted
        # instead, which costs less.
        most = 2 * (step // width) * max(1, len(last.ranges))
        touched = buckets_in(changes.spans, width, limit=min(MAX_BUCKETS, most))
    if touched is not None and last is not None:
        count = functools.partial(reader.bucket_rows, since=since)
        prints = _prints_where_changed(
            bucket_prints, count, last, changes.rows, touched, step, width, column, fields, by_range, before
        )
    elif width:
        _take_prints(bucket_prints(step, column, fields, width=width)(), step // width, by_range)
        prints = {no: range_print(found) for no, found in by_range.items()}
    else:
        prints = fingerprint(step, column, fields)()
    job.state["step"] = step
    job.state["width"] = width
    if reuse and last is not None:
        changed = {no for no, fp in prints.items() if last.ranges.get(no, ("",))[0] != fp}
        if width:
            for no in sorted(changed & set(last.ranges)):
                old = before[no] if no in before else RangeSummary.loads(last.ranges[no][1])
                _plan_patch(job, no, old, by_range[no], width, step)
        job.replace = (changed - set(job.patches)) | (set(last.ranges) - set(prints))
        job.kept = {no: summary for no, (_, summary) in last.ranges.items() if no in prints and no not in changed}
    else:
        changed = set(prints)
    job.fingerprints = {no: prints[no] for no in changed}
    job.bucket_prints = {no: by_range.get(no, {}) for no in changed}
    job.result.read = "ranges" if job.replace is not None else "full"
    job.result.ranges_read = len(changed)
    job.result.ranges_total = len(prints)
    job.result.ranges_in_part = len(job.patches)
    job.result.buckets_read = sum(len(p.changed) for p in job.patches.values())
    return [KeyRange(no * step, (no + 1) * step) for no in sorted(changed)]


def _prints_where_changed(
    bucket_prints: Callable[..., Callable[[], dict[int, int]]],
    bucket_rows: Callable[[int], dict[int, int]],
    last: LastScan,
    rows: int | None,
    touched: set[int],
    step: int,
    width: int,
    column: str | None,
    fields: list[str],
    by_range: dict[int, dict[int, int]],
    before: dict[int, RangeSummary],
) -> dict[int, str]:
    """Range fingerprints when only the buckets ``touched`` (by the changed key spans) may have
    changed: they are fingerprinted again, the others keep their last fingerprints (from the
    range summaries); a range they do not touch keeps its fingerprint. Where the spans do not
    show deletions (``rows``: ``KeyChanges.rows``), buckets that lost records are found by
    their counts (``_buckets_that_lost_rows``) and fingerprinted too. Fills ``by_range`` for
    the ranges touched, and ``before`` with the summaries it loaded."""
    per = step // width
    written = set(touched)
    ranges = {b // per for b in touched}
    # Asked first: the workers fingerprint while the summaries load here.
    pending = [bucket_prints(step, column, fields, width=width, buckets=set(touched))] if touched else []
    whole: set[int] = set()
    for no in ranges & set(last.ranges):
        before[no] = RangeSummary.loads(last.ranges[no][1])
        if before[no].width != width:  # kept without buckets: all of it again
            whole.update(range(no * per, (no + 1) * per))
    if whole - touched:
        pending.append(bucket_prints(step, column, fields, width=width, buckets=whole - touched))
        touched |= whole
    fresh: dict[int, dict[int, int]] = {}
    for gather in pending:
        _take_prints(gather(), per, fresh)
    if rows is not None:
        lost = _buckets_that_lost_rows(bucket_rows, last, rows, written, touched, before, width, per)
        if lost:
            _take_prints(bucket_prints(step, column, fields, width=width, buckets=lost)(), per, fresh)
            touched |= lost
            ranges |= {b // per for b in lost}
    prints = {no: fp for no, (fp, _) in last.ranges.items() if no not in ranges}
    for no in ranges:
        kept = {b: h for b, h in (before[no].prints if no in before else {}).items() if b not in touched}
        kept.update(fresh.get(no, {}))
        if kept:
            by_range[no] = kept
            prints[no] = range_print(kept)
    return prints


def _take_prints(found: dict[int, int], per: int, fresh: dict[int, dict[int, int]]) -> None:
    """Bucket fingerprints into ``fresh``, per range and bucket."""
    for bucket, hashed in found.items():
        fresh.setdefault(bucket // per, {})[bucket] = hashed


def _buckets_that_lost_rows(
    bucket_rows: Callable[[int], dict[int, int]],
    last: LastScan,
    rows: int,
    written: set[int],
    touched: set[int],
    before: dict[int, RangeSummary],
    width: int,
    per: int,
) -> set[int]:
    """Buckets outside ``touched`` whose records are fewer than the last read counted there,
    when a table's written rows show but its deleted ones do not (``KeyChanges.rows``: the
    ``rows`` outside the ``written`` buckets now). No record outside those buckets was written
    since, so none was added: each of them holds at most what it held, and when the totals
    agree none lost one (the usual case, no query). Otherwise the table's records are counted
    per bucket (``bucket_rows``) and compared with the summaries', all of them loaded (into
    ``before``)."""
    import numpy as np

    marked_written = np.array(sorted(written), dtype=np.int64)

    def counts_outside(summary: RangeSummary, marked: Any) -> tuple[Any, Any] | None:
        """A summary's buckets not ``marked`` and their records; None if it has no such counts."""
        table = summary.buckets
        if table is None or summary.width != width or "r" not in table.names:
            return None
        # Sorted lookups, not ``np.isin``: a range's buckets against every marked one, per range.
        at = np.minimum(np.searchsorted(marked, table.ids), max(len(marked) - 1, 0))
        keep = marked[at] != table.ids if len(marked) else np.ones(len(table.ids), dtype=bool)
        return table.ids[keep], np.clip(table.counts[keep, table.names.index("r")], 0, None)

    # The records outside the written buckets, as the last scan counted them: its total less
    # what the ranges written to held inside those buckets.
    was: int | None = last.state.get("records")
    for no in {b // per for b in written} & set(last.ranges):
        outside = counts_outside(before[no], marked_written)
        if was is None or outside is None:  # not known: count every bucket
            was = None
            break
        was -= before[no].records - int(outside[1].sum())
    if was == rows:
        return set()
    marked = np.array(sorted(touched), dtype=np.int64)
    old: dict[int, int] = {}
    lost: set[int] = set()
    for no, (_, text) in last.ranges.items():
        summary = before[no] = before.get(no) or RangeSummary.loads(text)  # kept: its prints are needed
        found = counts_outside(summary, marked)
        if found is None:  # no counts per bucket: all of it
            lost.update(range(no * per, (no + 1) * per))
        else:
            old.update(zip(found[0].tolist(), found[1].tolist(), strict=True))
    now = bucket_rows(width)
    lost.update(b for b in now.keys() | old.keys() if now.get(b, 0) != old.get(b, 0))
    return lost - touched


#: A range whose re-read buckets would make more than this share of its buckets hidden is
#: read whole instead, which rewrites its findings without hidden ones.
HIDDEN_SHARE = 0.25


def _plan_patch(job: _Job, no: int, old: RangeSummary, now: dict[int, int], width: int, step: int) -> None:
    """Whether a changed range is re-read in part (its changed buckets) or whole."""
    if old.width != width:
        return
    diff = tuple(sorted({b for b, _ in now.items() ^ old.prints.items()}))
    plan = old.patch_plan(diff)
    if plan is None or old.hidden + len(diff) > HIDDEN_SHARE * (step // width):
        return
    job.patches[no] = RangePatch(width, plan[0], diff, plan[1])
    job.patched_from[no] = old


@dataclass
class _Job:
    result: ContainerResult
    ref: ContainerRef
    url: str
    spec: SourceSpec
    profiles: dict[str, FieldProfile] = field(default_factory=dict)
    skipped_fields: list[str] = field(default_factory=list)
    seal_keys: bool = False
    units: int = 0
    done: int = 0
    failed: bool = False
    write: ContainerWrite | None = None
    #: Direct writes: the container's id and the generation its units write.
    target_id: int | None = None
    generation: int | None = None
    buffered: list[UnitResult] = field(default_factory=list)
    stats: FieldStats = field(default_factory=FieldStats)
    entities: Counter[str] = field(default_factory=Counter)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    skipped_records: int = 0
    started: float = field(default_factory=time.perf_counter)
    run_id: int = 0
    #: Incremental rescans (``discover.incremental``): what the next scan compares against;
    #: for a table kept by key ranges, the ranges replaced (None: the whole container), the
    #: fingerprints of the ranges read now, the summaries of those read now and of those kept.
    state: dict[str, Any] = field(default_factory=dict)
    replace: set[int] | None = None
    fingerprints: dict[int, str] | None = None
    summaries: dict[int, RangeSummary] = field(default_factory=dict)
    #: Their texts, as the index keeps them: written as each unit is taken, while the workers
    #: read on, not all at the commit (40 summaries of 5,000 buckets: 0.15 s).
    summary_texts: dict[int, str] = field(default_factory=dict)
    kept: dict[int, str] = field(default_factory=dict)
    sample_notes: list[str] = field(default_factory=list)
    table_version: str | None = None
    #: Ranges re-read in part (``discover.buckets``): what each re-reads, its summary before,
    #: its buckets' fingerprints now, and those that had to be read whole after all.
    patches: dict[int, RangePatch] = field(default_factory=dict)
    patched_from: dict[int, RangeSummary] = field(default_factory=dict)
    bucket_prints: dict[int, dict[int, int]] = field(default_factory=dict)
    escalated: set[int] = field(default_factory=set)
    #: A container found unchanged whose newer state (``Index.keep_state``) is all it writes:
    #: its id and that state.
    kept_state: tuple[int, dict[str, Any]] | None = None

    def hidden(self) -> dict[int, tuple[int, ...]]:
        """The buckets whose old findings the index hides, per range re-read in part."""
        return {no: p.changed for no, p in self.patches.items() if no not in self.escalated}

    def take(self, profile: ContainerProfile) -> None:
        """Take the container's profile, drawn here or by its task (``UnitTask.sampling``)."""
        self.profiles = profile.profiles
        self.skipped_fields = list(profile.skipped_fields)
        self.notes = list(profile.notes)
        self.seal_keys = profile.seal_keys
        # Where the sample was drawn: a worker's process for a file or object profiled in its task.
        logger.debug("%s/%s: profiled in process %d", self.ref.source, self.ref.name, profile.pid)

    def drop_buffered(self) -> None:
        """Forget results waiting to be written, and their spill files."""
        for unit in self.buffered:
            unit.discard()
        self.buffered.clear()


class _Runner:
    """Runs units, in-process or on a pool, and commits containers in order.

    The oldest unfinished container holds the index's write transaction; results of later
    containers wait in memory (bounded by the in-flight window) until it commits. A failed
    container's error is written in its turn too, when it reaches the head of the queue:
    a second writer beside the open transaction would wait on it (SQLite: "database is
    locked") and could not see what it holds.
    """

    def __init__(self, index: Index, settings: ScanSettings, progress: Progress | None) -> None:
        self.index = index
        self.settings = settings
        self.progress = progress
        self.pool: Any = None
        self.inflight: dict[Any, _Job] = {}
        self.queue: deque[_Job] = deque()
        self.window = max(2, settings.workers * 2)
        self._opening: Any = None
        self.direct = False

    def __enter__(self) -> _Runner:
        self.direct = _direct_writes(self.index, self.settings)  # here, so a refusal ends the run
        if self.direct:
            # Units run in this process write through the scan's own index (forked workers open theirs).
            _WORKER[INDEX_URL_SLOT] = self.index.url
            _WORKER.setdefault("indexes", {})[(os.getpid(), self.index.url, self.index.hasher.key)] = self.index
        if self.settings.parallel:
            from discover.executors import OpeningExecutor

            # A Dask cluster starts now, beside listing and profiling; the local pool on first use.
            self._opening = OpeningExecutor(
                self.settings.executor, workers=self.settings.workers, scheduler=self.settings.scheduler
            )
        return self

    def _ensure_pool(self, key: bytes, nlp_language: str | None, *, buckets: bool = False) -> Any:
        """The executor (``discover.executors``), created on first use. When the work needs NER
        (``nlp_language``: the language it needs) and the pool is local, the parent loads the
        model first, so that forked workers share it instead of each loading their own (Dask
        workers load it once each, on their first unit). So with numpy when the work counts per
        bucket (``buckets``: ``discover.buckets``): this process loads it anyway, for the range
        summaries and to unpickle the units' counts, and each worker would otherwise load it on
        its first unit (about 0.1 s, before a small table's only unit could start)."""
        if self.pool is None:
            detector = _WORKER.get("detector")
            local = self.settings.executor == "local"
            if local and detector is not None and nlp_language is not None:
                detector.engine(nlp_language)
            if local and buckets:
                import numpy  # noqa: F401
            self.pool = self._opening.open(key, index_url=self.index.url if self.direct else None)
            self.window = max(2, self.pool.slots * 2)
        return self.pool

    def fingerprints(
        self,
        job: _Job,
        reader: ContainerReader,
        key: bytes,
        step: int,
        changed_column: str | None,
        fields: Sequence[str],
    ) -> Callable[[], dict[int, str]]:
        """``reader.range_fingerprints`` of every key range, maybe spread over the local worker
        processes (``_spread``). Returns at once; the function returned waits for them."""
        task = FingerprintTask(job.spec, job.ref, step, changed_column, tuple(fields), 0, ())
        local = functools.partial(reader.range_fingerprints, step, changed_column, fields)
        return self._spread(job, reader, key, task, None, fingerprint_ranges, local)

    def bucket_prints(
        self,
        job: _Job,
        reader: ContainerReader,
        key: bytes,
        step: int,
        changed_column: str | None,
        fields: Sequence[str],
        *,
        width: int,
        buckets: Collection[int] | None = None,
    ) -> Callable[[], dict[int, int]]:
        """The fingerprints of the buckets of ``width`` keys (``buckets``: only those), each in 8
        bytes: the reader's stored ones where it has them (``stored_bucket_prints``: SQLite's,
        from its pages, computed here before this returns), else ``range_fingerprints`` through
        ``print_hash``, maybe spread over the local worker processes (``_spread``), and then
        this returns at once; the function returned waits for them."""
        if changed_column is None:
            stored = reader.stored_bucket_prints(width, buckets)  # SQLite: from the pages, here
            if stored is not None:
                return lambda: stored
        task = FingerprintTask(job.spec, job.ref, step, changed_column, tuple(fields), int(width), ())

        def local() -> dict[int, int]:
            found = reader.range_fingerprints(step, changed_column, fields, width=width, buckets=buckets)
            return {bucket: print_hash(text) for bucket, text in found.items()}

        return self._spread(job, reader, key, task, buckets, bucket_prints_of, local)

    def _spread(
        self,
        job: _Job,
        reader: ContainerReader,
        key: bytes,
        task: FingerprintTask,
        buckets: Collection[int] | None,
        work: Callable[[FingerprintTask], dict[int, T]],
        local: Callable[[], dict[int, T]],
    ) -> Callable[[], dict[int, T]]:
        """``work`` over ``task``'s key ranges, spread over the local worker processes when the
        reader fingerprints in this process (``ContainerReader.spreads_fingerprints``: SQLite)
        and there are ranges enough: each worker takes every n-th range (with ``buckets``, the
        ranges that hold them). Otherwise ``local``, in this process. Memory: the results."""
        step, width = task.step, task.width
        per = step // (width or step)  # buckets a range
        ranges: list[int] = []
        if self.settings.parallel and self.settings.executor == "local" and reader.spreads_fingerprints:
            if buckets is not None:
                ranges = sorted({b // per for b in buckets})
            elif (bounds := reader.key_bounds()) is not None and bounds[1] // step - bounds[0] // step < _SPREAD_MAX:
                ranges = list(range(bounds[0] // step, bounds[1] // step + 1))
        if len(ranges) < _SPREAD_RANGES:
            return local
        # The table's units come next: a free-text table's need NER; a bucketed one's, numpy.
        needs_nlp = any(p.free_text for p in job.profiles.values())
        pool = self._ensure_pool(key, job.spec.language if needs_nlp else None, buckets=bool(width))
        shares = 2 * pool.slots  # more shares than workers: one slow share does not hold the rest
        futures = []
        for share in range(min(shares, len(ranges))):
            mine = ranges[share::shares]
            kept = set(mine)
            chosen = None if buckets is None else tuple(sorted(b for b in buckets if b // per in kept))
            futures.append(pool.submit(work, dataclasses.replace(task, ranges=tuple(mine), buckets=chosen)))

        def gather() -> dict[int, T]:
            out: dict[int, T] = {}
            try:
                for future in futures:
                    out.update(future.result())
            except BaseException:
                for future in futures:  # the table fails: its other shares need not run
                    future.cancel()
                raise
            return out

        return gather

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.shutdown(list(self.inflight))  # removes spill files of units never written
        elif self._opening is not None:
            self._opening.close()  # a cluster started for a scan that had no unit to run
        for job in self.queue:
            job.drop_buffered()
            if job.write is not None:  # the scan stopped inside this container: keep what the index had
                job.write.rollback()
                job.write = None
            self._discard(job)
        if self.direct:
            _WORKER.pop(INDEX_URL_SLOT, None)
            _WORKER.get("indexes", {}).pop((os.getpid(), self.index.url, self.index.hasher.key), None)

    def reject(self, job: _Job, exc: BaseException, *, run_id: int) -> None:
        """A container that failed before any unit ran (listing, opening, profiling)."""
        job.run_id = run_id
        self.queue.append(job)
        self.fail(job, exc, run_id=run_id)

    def submit(
        self,
        job: _Job,
        units: Sequence[KeyRange | None],
        *,
        detection: DetectionSettings,
        key: bytes,
        run_id: int,
        sampling: Sampling | None = None,
    ) -> None:
        """Run a container's units; with ``sampling``, its one unit profiles it first (a whole
        file or object, not profiled yet). The container commits in its turn (``_advance``)."""
        if self.direct:
            try:
                job.target_id, job.generation = open_generation(self.index, job.ref, run_id=run_id, url=job.url)
            except Exception as exc:
                self.reject(job, exc, run_id=run_id)
                return
        job.run_id = run_id
        job.units = len(units)
        self.queue.append(job)
        if self.queue[0] is job:
            self._open(job)
        for unit_no, unit in enumerate(units):
            if job.failed:
                break  # an earlier unit failed: the container's other units would be thrown away
            range_no = None if job.fingerprints is None or unit is None else unit.start // int(job.state["step"])
            task = UnitTask(
                job.spec,
                job.ref,
                unit,
                job.profiles,
                detection,
                self.settings.batch_size,
                key,
                seal_keys=job.seal_keys,
                in_memory=self.settings.unit_findings_in_memory,
                spill_dir=self.settings.spill_dir,
                range_no=range_no,
                target=(
                    None
                    if job.target_id is None or job.generation is None
                    else UnitTarget(job.target_id, job.generation, unit_no)
                ),
                width=int(job.state.get("width", 0)) if range_no is not None else 0,
                patch=None if range_no is None else job.patches.get(range_no),
                sampling=sampling,
                sparse_values=self.settings.sample_size,
            )
            if not self.settings.parallel:
                # In process, the job is the head of the queue: its rows go straight into its transaction.
                self._finished(job, task_result=self._call(task, job))
                continue
            # A container profiled in its task may need NER (a name column, free text): loaded too.
            needs_nlp = task.sampling is not None or any(p.free_text for p in task.profiles.values())
            pool = self._ensure_pool(key, task.spec.language if needs_nlp else None, buckets=bool(task.width))
            while len(self.inflight) >= self.window:
                self._wait_one()
            self.inflight[pool.submit(run_unit, task)] = job

    def _call(self, task: UnitTask, job: _Job) -> UnitResult | BaseException:
        write = job.write
        try:
            # A patch's parts go through ``_apply``: a patch that ends up reading its range whole
            # must first clear the range's old findings.
            sink = (
                functools.partial(write.add_part, range_no=task.range_no)
                if write is not None and task.patch is None
                else None
            )
            return run_unit(task, sink=sink, on_batch=self._records)
        except Exception as exc:
            return exc

    def _wait_one(self) -> None:
        for future in self.pool.wait_first(list(self.inflight)):
            job = self.inflight.pop(future)
            exc = future.exception()
            self._finished(job, task_result=exc if exc is not None else future.result())

    def keep(self, job: _Job, container_id: int, state: dict[str, Any]) -> None:
        """Write only a container's newer state, in its turn (after the containers before it
        commit: their write transaction may be open)."""
        job.kept_state = (container_id, state)
        self.queue.append(job)
        self._advance()

    def drain(self) -> None:
        while self.inflight:
            self._wait_one()
        self._advance()

    def _open(self, job: _Job) -> None:
        # With direct writes the units write the parts; the container's write opens at its commit.
        if job.write is None and not job.failed and job.generation is None:
            job.write = self.index.begin_container(
                job.ref,
                run_id=job.run_id,
                url=job.url,
                replace=job.replace,
                hide=job.hidden(),
                hide_width=int(job.state.get("width", 0)),
            )

    def _finished(self, job: _Job, *, task_result: UnitResult | BaseException) -> None:
        job.done += 1
        if job.failed:
            if isinstance(task_result, UnitResult):
                task_result.discard()
        elif isinstance(task_result, BaseException):
            self.fail(job, task_result, run_id=job.run_id)
        elif job.write is not None:
            self._apply(job, task_result)
        else:
            job.buffered.append(task_result)
        self._advance()

    def _apply(self, job: _Job, unit: UnitResult) -> None:
        no = unit.range_no
        if no is not None and no in job.patches and not unit.patched:
            job.escalated.add(no)  # read whole after all: its old findings go, not hidden
            if job.write is not None and job.generation is None:
                job.write.clear_ranges([no])
        if unit.profile is not None:  # profiled in its task: the commit writes this profile
            job.take(unit.profile)
        if unit.sparse:
            job.profiles = {**job.profiles, **unit.sparse}
        try:
            for part in unit.all_parts():  # none when the unit wrote its own (direct writes)
                assert job.write is not None
                job.write.add_part(part, unit.range_no)
        finally:
            unit.discard()
        if no is not None:
            job.summaries[no] = self._summary(job, no, unit)
            if job.fingerprints is not None:
                job.summary_texts[no] = job.summaries[no].dumps()
        job.stats.merge(unit.stats)
        job.entities.update(unit.entities)
        job.result.records += unit.records
        job.warnings.extend(unit.warnings)
        job.notes.extend(unit.notes)
        job.skipped_records += unit.skipped_records
        if self.pool is not None:
            self._records(unit.records)

    @staticmethod
    def _summary(job: _Job, no: int, unit: UnitResult) -> RangeSummary:
        width = int(job.state.get("width", 0))
        prints = job.bucket_prints.get(no, {})
        if unit.patched:
            old, patch = job.patched_from[no], job.patches[no]
            assert old.buckets is not None and unit.buckets is not None
            return RangeSummary.from_buckets(
                old.buckets.without(patch.changed).combined(unit.buckets),
                unit.stats,
                width=width,
                prints=prints,
                stops=unit.stops,
                hidden=old.hidden + len(patch.changed),
            )
        return RangeSummary(
            unit.records,
            unit.stats,
            unit.entities,
            unit.warnings,
            unit.notes,
            unit.skipped_records,
            width=width if unit.buckets is not None else 0,
            buckets=unit.buckets,
            prints=prints,
            stops=unit.stops,
        )

    def _records(self, count: int) -> None:
        if self.progress:
            self.progress("records", {"count": count})

    def _advance(self) -> None:
        """Commit finished containers at the head of the queue; let the next one write."""
        while self.queue:
            head = self.queue[0]
            if head.failed:
                # Units still running for it are discarded as they finish (``_finished``).
                self.queue.popleft()
                self._record_failure(head)
                continue
            if head.kept_state is not None:
                self.queue.popleft()
                try:
                    self.index.keep_state(*head.kept_state)
                except Exception as exc:  # the state it had stands: older, so the next scan looks at more
                    where = f"{head.ref.source}/{head.ref.name}"
                    logger.warning("%s: newer incremental state not saved (%s)", where, type(exc).__name__)
                continue
            self._open(head)
            for unit in head.buffered:
                self._apply(head, unit)
            head.buffered.clear()
            if head.done < head.units:
                return
            self.queue.popleft()
            self._commit(head)

    def _commit(self, job: _Job) -> None:
        origins = origins_of(job.profiles)
        ranges: dict[int, tuple[str, str]] = {}
        if job.fingerprints is not None:
            # The table's totals from every range, in range order: the same for a full scan
            # and a rescan, and for one worker or many.
            new = {no: (job.fingerprints[no], job.summary_texts[no]) for no in job.summaries}
            every = {no: RangeSummary.loads(text) for no, text in job.kept.items()}
            every.update(job.summaries)
            total = merge(every[no] for no in sorted(every))
            job.stats, job.entities = total.stats, total.entities
            job.warnings, job.skipped_records = total.warnings, total.skipped_records
            job.notes = job.sample_notes + total.notes
            job.result.records = total.records
            ranges = new
        pii_fields = [f for f, p in job.profiles.items() if p.is_pii]
        state = {
            **job.state,
            "records": job.result.records,
            "entities": dict(sorted(job.entities.items())),
            "pii_fields": pii_fields,
        }
        try:
            if job.write is None:  # direct writes: make the generation the units wrote the visible one
                assert job.generation is not None
                job.write = self.index.begin_container(
                    job.ref,
                    run_id=job.run_id,
                    url=job.url,
                    replace=None if job.replace is None else job.replace | job.escalated,
                    generation=job.generation,
                    hide=job.hidden(),
                    hide_width=int(job.state.get("width", 0)),
                )
            job.write.commit(
                records=job.result.records,
                profiles=[p.as_dict() for p in job.profiles.values()],
                hits=job.stats.rows(origins),
                skipped_records=job.skipped_records,
                skipped_fields=job.skipped_fields,
                warnings=(job.notes + job.warnings)[:20],
                state=state if job.state else None,
                ranges=ranges,
            )
        except Exception as exc:
            self.fail(job, exc, run_id=job.run_id)  # already off the queue: recorded at once
            return
        r = job.result
        r.findings = sum(job.entities.values())
        r.entities = dict(sorted(job.entities.items()))
        r.pii_fields = [f for f, p in job.profiles.items() if p.is_pii]
        r.skipped_records = job.skipped_records
        r.skipped_fields = job.skipped_fields
        r.warnings = job.warnings[:20]
        r.notes = job.notes[:20]
        r.seconds = round(time.perf_counter() - job.started, 3)

    def fail(self, job: _Job, exc: BaseException, *, run_id: int) -> None:
        """Mark a container failed; its error goes to the index in its turn (see the class), and
        what the index knew of it before stays, marked stale."""
        job.failed = True
        job.run_id = run_id
        job.drop_buffered()
        if job.write is not None:
            job.write.rollback()
            job.write = None
        self._discard(job)
        ref = job.ref
        if isinstance(exc, PiiportError):
            message = exc.message
        else:
            logger.debug("unexpected error in %s/%s", ref.source, ref.name, exc_info=exc)
            text = mask_url(str(exc)).splitlines()[0] if str(exc) else ""
            message = f"{ref.name}: {type(exc).__name__}: {text}"
        if ref.name not in message:
            message = f"{ref.name}: {message}"
        job.result.error = message
        job.result.records = 0
        job.result.seconds = round(time.perf_counter() - job.started, 3)
        logger.warning("source %s: %s", ref.source, message)
        if not any(queued is job for queued in self.queue):
            self._record_failure(job)
        elif self.queue[0] is job:
            self._advance()

    def _discard(self, job: _Job) -> None:
        """Direct writes: delete what the units of a container that will not commit wrote
        (units still running may add more; the container's next commit deletes those)."""
        if job.generation is None or job.target_id is None:
            return
        generation, job.generation = job.generation, None
        try:
            discard_generation(self.index, job.target_id, generation)
        except Exception as exc:  # the index is unreachable: its next commit of the container cleans up
            logger.debug("parts of %s/%s left to the next scan: %s", job.ref.source, job.ref.name, exc)

    def _record_failure(self, job: _Job) -> None:
        assert job.result.error is not None
        self.index.container_failed(job.ref, run_id=job.run_id, url=job.url, error=job.result.error)


def _direct_writes(index: Index, settings: ScanSettings) -> bool:
    """Whether workers write their parts into the index (default: when it is PostgreSQL)."""
    if settings.direct_writes is None:
        return supports_direct_writes(index)
    if settings.direct_writes and not supports_direct_writes(index):
        raise ConfigError(
            "direct writes need a PostgreSQL index (postgresql+psycopg://…); turn direct_writes off "
            "or scan into a PostgreSQL index",
            setting="direct_writes",
        )
    return settings.direct_writes


__all__ = [
    "ContainerProfile",
    "ContainerResult",
    "Progress",
    "Sampling",
    "ScanResult",
    "SourceError",
    "UnitTask",
    "profile_container",
    "run_unit",
    "scan",
]
