"""The two-stage scan: profile every container from a sample, then extract and index."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from connectors.base import ContainerRef, SourceSpec, connect
from connectors.errors import PiiportError, SourceError
from connectors.redact import mask_text, mask_url
from discover.detector import Detector
from discover.extract import Extractor
from discover.index import ContainerWrite, Index, utcnow
from discover.profile import Profiler
from discover.settings import DetectionSettings, ScanSettings

logger = logging.getLogger(__name__)


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
    error: str | None = None
    seconds: float = 0.0


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
        }


#: ``progress(event, data)``: ``"container"`` when one starts (data: source, container,
#: number, total) and ``"records"`` after each batch (data: count).
Progress = Callable[[str, dict[str, Any]], None]


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

    With ``prune`` (the default) containers the source no longer lists are forgotten; a
    targeted rescan of a few containers passes ``prune=False``.

    Memory: one batch of records and its findings at a time, plus one sample per container.
    """
    detection = detection or (detector.settings if detector else DetectionSettings())
    detector = detector or Detector(detection)
    settings = settings or ScanSettings()
    run_id = index.start_run([s.name for s in sources])
    result = ScanResult(run_id=run_id, started_at=utcnow(), sources=[s.name for s in sources])
    try:
        for spec in sources:
            _scan_source(spec, index, detector, detection, settings, result, progress, prune)
    finally:
        result.finished_at = utcnow()
        status = "ok" if result.ok else "errors"
        index.finish_run(run_id, status=status, summary={"totals": result.totals(), "errors": result.errors})
    return result


def _scan_source(
    spec: SourceSpec,
    index: Index,
    detector: Detector,
    detection: DetectionSettings,
    settings: ScanSettings,
    result: ScanResult,
    progress: Progress | None,
    prune: bool,
) -> None:
    url = mask_url(spec.url)
    try:
        connector = connect(spec)
    except PiiportError as exc:
        result.source_errors.append({"source": spec.name, "container": "", "error": exc.message})
        return
    with connector:
        try:
            refs = list(connector.containers())
        except PiiportError as exc:
            logger.warning("source %s: %s", spec.name, exc.message)
            result.source_errors.append({"source": spec.name, "container": "", "error": exc.message})
            return
        profiler = Profiler(
            detector, regions=detection.phone_regions, entities=detection.entities, language=spec.language
        )
        for number, ref in enumerate(refs, start=1):
            if progress:
                progress(
                    "container", {"source": spec.name, "container": ref.name, "number": number, "total": len(refs)}
                )
            result.containers.append(
                _scan_container(
                    connector, ref, url, index, detector, profiler, detection, settings, spec, result.run_id, progress
                )
            )
        if prune:
            result.removed_containers += index.prune(spec.name, [r.name for r in refs])


def _scan_container(
    connector: Any,
    ref: ContainerRef,
    url: str,
    index: Index,
    detector: Detector,
    profiler: Profiler,
    detection: DetectionSettings,
    settings: ScanSettings,
    spec: SourceSpec,
    run_id: int,
    progress: Progress | None,
) -> ContainerResult:
    started = time.perf_counter()
    out = ContainerResult(source=ref.source, container=ref.name, kind=ref.kind)
    write: ContainerWrite | None = None
    try:
        with connector.open(ref) as reader:
            # About twice the target of non-null values per field, so sparse fields still get a sample.
            sample = reader.sample(settings.sample_size * 2, seed=settings.seed)
            profiles = profiler.profile(sample, reader.fields())
            extractor = Extractor(profiles, detector, regions=detection.phone_regions, language=spec.language)
            write = index.begin_container(ref, run_id=run_id, url=url)
            entities: Counter[str] = Counter()
            for batch in reader.batches(settings.batch_size):
                findings = extractor.extract(batch)
                entities.update(f.entity_type for f in findings)
                write.add_findings(findings)
                if progress:
                    progress("records", {"count": len(batch)})
            hits = extractor.stats.rows(extractor.origins)
            write.commit(
                records=extractor.records,
                profiles=[p.as_dict() for p in profiles.values()],
                hits=hits,
                skipped_records=reader.skipped_records,
                skipped_fields=reader.skipped_fields,
                warnings=reader.warnings,
            )
            write = None
            out.records = extractor.records
            out.findings = sum(entities.values())
            out.entities = dict(sorted(entities.items()))
            out.pii_fields = [f for f, p in profiles.items() if p.is_pii]
            out.skipped_records = reader.skipped_records
            out.skipped_fields = list(reader.skipped_fields)
            out.warnings = list(reader.warnings)
    except Exception as exc:  # one bad container never loses the rest of a scan
        if write is not None:
            write.rollback()
        if isinstance(exc, PiiportError):
            message = exc.message
        else:
            logger.debug("unexpected error in %s/%s", ref.source, ref.name, exc_info=True)
            message = f"{ref.name}: {type(exc).__name__}: {mask_text(str(exc)).splitlines()[0] if str(exc) else ''}"
        if ref.name not in message:
            message = f"{ref.name}: {message}"
        out.error = message
        logger.warning("source %s: %s", ref.source, message)
        index.container_failed(ref, run_id=run_id, url=url, error=message)
    out.seconds = round(time.perf_counter() - started, 3)
    return out


__all__ = ["ContainerResult", "Progress", "ScanResult", "SourceError", "scan"]
