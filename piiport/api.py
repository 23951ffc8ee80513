"""The public Python API. Everything the CLI does goes through these functions."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from connectors.base import SourceSpec

if TYPE_CHECKING:
    from datetime import datetime

    from discover.changes import RunDiff
    from discover.detector import Detector, Entity
    from discover.index import Index
    from discover.inventory import InventoryRow
    from discover.locate import LocateResult
    from discover.retention import RetentionReport
    from discover.scan import Progress, ScanResult
    from export import ExportResult
    from piiport.config import Config


def _config(config: Config | None) -> Config:
    from piiport.config import Config

    return config or Config()


def open_index(url: str | None = None, *, create: bool = True) -> Index:
    """Open the index (``None``: the default ``.piiport/index.db``)."""
    from discover.index import Index

    return Index(url, create=create)


_DETECTORS: dict[tuple[Any, ...], Detector] = {}


def build_detector(config: Config | None = None) -> Detector:
    """The Presidio detector for a configuration, built once per process and settings."""
    from discover.detector import Detector

    settings = _config(config).detection
    key = (
        settings.entities,
        settings.phone_regions,
        settings.score_threshold,
        tuple(sorted(settings.models.items())),
        settings.language,
        settings.nlp_batch_size,
    )
    if key not in _DETECTORS:
        _DETECTORS[key] = Detector(settings)
    return _DETECTORS[key]


def scan_sources(
    sources: Sequence[str | SourceSpec] = (),
    *,
    config: Config | None = None,
    index: Index | None = None,
    detector: Detector | None = None,
    progress: Progress | None = None,
    prune: bool = True,
    full: bool | None = None,
) -> ScanResult:
    """Scan sources (URLs, paths or specs; none: the config's) into the index.

    Only what changed since a container's last successful scan is read again; ``full=True``
    reads everything (default: the config's ``incremental: false``, else incremental).
    ``prune=False`` keeps what the index knows of containers a (filtered) source does not list.
    """
    from connectors.errors import ConfigError
    from discover.scan import scan
    from piiport.config import specs_from_urls

    cfg = _config(config)
    urls = [s for s in sources if isinstance(s, str)]
    specs = [s for s in sources if isinstance(s, SourceSpec)] + list(
        specs_from_urls(urls, language=cfg.detection.language, s3_options=cfg.s3.client_options())
    )
    if not specs:
        specs = list(cfg.sources)
    if not specs:
        raise ConfigError(
            "nothing to scan: give a SOURCE (URL or path) or a config file with sources", setting="sources"
        )
    owns_index = index is None
    idx = index or open_index(cfg.index)
    try:
        return scan(
            specs,
            index=idx,
            detector=detector or build_detector(cfg),
            detection=cfg.detection,
            settings=cfg.scan if full is None else replace(cfg.scan, full=full),
            progress=progress,
            prune=prune,
        )
    finally:
        if owns_index:
            idx.close()


def get_inventory(*, config: Config | None = None, index: Index | None = None) -> list[InventoryRow]:
    """Where personal data lives, per source, container, field and entity type."""
    from discover.inventory import inventory

    if index is not None:
        return inventory(index)
    with open_index(_config(config).index, create=False) as idx:
        return inventory(idx)


def inventory_notes(*, config: Config | None = None, index: Index | None = None) -> list[str]:
    """Lines a reader of the inventory should see: a scan running now, interrupted scans."""
    from discover.inventory import notes

    if index is not None:
        return notes(index)
    with open_index(_config(config).index, create=False) as idx:
        return notes(idx)


def diff_runs(
    run_a: int | None = None,
    run_b: int | None = None,
    *,
    threshold: float = 0.1,
    config: Config | None = None,
    index: Index | None = None,
) -> RunDiff:
    """What changed in the inventory between two scan runs (default: the last two finished).

    ``threshold`` is the least change of prevalence (a share, 0 to 1) reported.
    """
    from discover.changes import diff_runs as compare_runs

    if index is not None:
        return compare_runs(index, run_a, run_b, threshold=threshold)
    with open_index(_config(config).index, create=False) as idx:
        return compare_runs(idx, run_a, run_b, threshold=threshold)


def changes_of_run(run_id: int, *, config: Config | None = None, index: Index | None = None) -> RunDiff | None:
    """What a run changed against the last finished run before it (None for a first run)."""
    from discover.changes import previous_diff

    if index is not None:
        return previous_diff(index, run_id)
    with open_index(_config(config).index, create=False) as idx:
        return previous_diff(idx, run_id)


def check_retention(
    *, config: Config | None = None, index: Index | None = None, now: datetime | None = None
) -> RetentionReport:
    """Check the config's retention rules: records past each limit, counted in the source."""
    from connectors.errors import ConfigError
    from discover.retention import check

    cfg = _config(config)
    if not cfg.retention:
        raise ConfigError(
            "no retention rules: add a retention: list to the config file (see the README's Retention section)",
            setting="retention",
        )
    specs = {s.name: s for s in cfg.sources}
    if index is not None:
        return check(list(cfg.retention), specs, index=index, now=now)
    with open_index(cfg.index, create=False) as idx:
        return check(list(cfg.retention), specs, index=idx, now=now)


def write_report(
    out: str | Path,
    *,
    config: Config | None = None,
    index: Index | None = None,
    examples: bool = True,
    now: datetime | None = None,
) -> Path:
    """Write the self-contained HTML report (mode 0600) and return its path."""
    from discover.retention import check
    from piiport import report

    cfg = _config(config)
    owns_index = index is None
    idx = index or open_index(cfg.index, create=False)
    try:
        specs = {s.name: s for s in cfg.sources}
        retention = check(list(cfg.retention), specs, index=idx, now=now) if cfg.retention else None
        data = report.build(idx, retention=retention, examples=examples, now=now)
    finally:
        if owns_index:
            idx.close()
    return report.write(Path(out), report.render(data))


def detect_texts(
    texts: Iterable[str],
    *,
    language: str | None = None,
    detector: Detector | None = None,
    config: Config | None = None,
    batch_size: int = 256,
    workers: int | None = None,
) -> Iterator[list[Entity]]:
    """Entities in each text, streamed in input order, with ``workers`` processes (default: the
    config's, one per core unless it says otherwise, as ``piiport detect``).

    Memory: one batch of ``batch_size`` texts and their entities with one worker; with more, at
    most ``4 * workers + 1`` batches of up to 64 texts (``discover.textpool.detect_stream``).
    """
    from discover.textpool import detect_stream

    det = detector or build_detector(config)
    chosen = workers if workers is not None else _config(config).scan.workers
    yield from detect_stream(texts, detector=det, language=language, workers=chosen, batch_size=batch_size)


def export_subject(
    *,
    emails: Sequence[str] = (),
    phones: Sequence[str] = (),
    ips: Sequence[str] = (),
    names: Sequence[str] = (),
    config: Config | None = None,
    index: Index | None = None,
    fmt: str | None = None,
    out: str | Path | None = None,
    as_zip: bool = False,
    request_id: str | None = None,
    overwrite: bool = False,
    expand: bool = True,
    rescan: bool = False,
    max_depth: int | None = None,
    url_expiry: int | None = None,
    detector: Detector | None = None,
    include_review: bool = False,
    csv_raw: bool = False,
    references: bool | None = None,
    reference_depth: int | None = None,
    purpose: str = "access",
    lang: str | None = None,
    redact: bool | None = None,
    actor: str | None = None,
) -> ExportResult:
    """Export one subject's portability package; returns where it is and what it holds.

    ``out`` is a folder or ``s3://bucket/prefix``; for S3 the result has a presigned
    ``download_url`` that expires after ``url_expiry`` seconds (default 7 days).

    Records that match by a name alone (or an IP other subjects hold) are listed in the
    manifest's ``review`` and exported only with ``include_review``. Catalogue rows the
    subject's rows point at come as context (``references``, ``reference_depth``; default:
    the config's ``export`` section). CSV cells that could run as formulas are neutralised
    unless ``csv_raw``.

    ``purpose``: ``access`` (Art. 15, everything) or ``portability`` (Art. 20: sources and
    containers processed on consent or contract, without fields marked ``portability: false``).
    ``lang`` is the language of ``index.html`` (default: the config's ``export.lang``).
    ``redact`` (default: the config's ``export.redact``, on) replaces other people's
    identifiers in free text with ``[PERSON]`` and the like, using ``detector``.

    An identifier that matches nothing still gives a package (empty, ``found`` false;
    ``complete`` says whether every container could be read).
    Raises ``AmbiguousSubjectError`` when the identifiers are ambiguous (a shared phone, a name
    that matches several people), ``ExportError`` when the request id already has a package.

    Every attempt goes into the audit trail (``piiport audit``) twice: ``export.started`` before
    anything is read, then ``export`` with the outcome and the package's sha256. ``actor`` names
    who asked (the service passes its token's name); the default is the OS user.
    """
    from discover.subjects import parse_identifiers
    from export import GatherOptions
    from export import export_subject as run_export
    from export.deliver import S3Delivery
    from export.package import check_request_id
    from export.subject_export import new_request_id
    from piiport import __version__
    from piiport.service.audit import os_actor

    cfg = _config(config)
    identifiers = parse_identifiers(
        emails=emails, phones=phones, ips=ips, names=names, regions=cfg.detection.phone_regions
    )
    specs = {s.name: s for s in cfg.sources}
    options = GatherOptions(
        regions=cfg.detection.phone_regions,
        max_depth=cfg.export.max_depth if max_depth is None else max_depth,
        include_tables=cfg.export.include_tables,
        exclude_tables=cfg.export.exclude_tables,
        force_relations=cfg.export.force_relations,
        ignore_relations=cfg.export.ignore_relations,
        references=cfg.export.references if references is None else references,
        reference_depth=cfg.export.reference_depth if reference_depth is None else reference_depth,
        include_review=include_review,
    )
    rid = check_request_id(request_id or new_request_id())
    owns_index = index is None
    idx = index or open_index(cfg.index, create=False)
    trail = _ExportAudit(idx, actor or os_actor(), rid, identifiers)

    def do_rescan(stale: list[tuple[str, str]]) -> None:

        by_source: dict[str, list[str]] = {}
        for source, container in stale:
            by_source.setdefault(source, []).append(container)
        known = {c["source"]: c["url"] for c in idx.containers()}
        targets = []
        for source, containers in by_source.items():
            base = specs.get(source) or SourceSpec(name=source, url=known.get(source) or "")
            targets.append(
                SourceSpec(
                    name=source, url=base.url, include=tuple(containers), language=base.language, options=base.options
                )
            )
        scan_sources(targets, config=cfg, index=idx, detector=detector, prune=False)

    try:
        trail.started()
        try:
            result = run_export(
                identifiers,
                index=idx,
                specs=specs,
                options=options,
                fmt=fmt or cfg.export.format,
                out=out or cfg.export.out,  # a folder or s3://…, which Path() would mangle
                as_zip=as_zip,
                request_id=rid,
                overwrite=overwrite,
                expand=expand,
                rescan=do_rescan if rescan else None,
                generator_version=__version__,
                csv_raw=csv_raw,
                processing=cfg.processing,
                purpose=purpose,
                lang=lang or cfg.export.lang,
                detector=(detector or build_detector(cfg))
                if (cfg.export.redact if redact is None else redact)
                else None,
                s3=S3Delivery(
                    sse=cfg.s3.sse,
                    kms_key_id=cfg.s3.kms_key_id,
                    url_expiry=url_expiry or cfg.s3.url_expiry,
                    multipart_threshold=cfg.s3.multipart_threshold_mb * 1024 * 1024,
                    options=cfg.s3.client_options(),
                ),
            )
        except BaseException as exc:
            trail.failed(exc)
            raise
        trail.finished(result)
        return result
    finally:
        if owns_index:
            idx.close()


def locate(
    *,
    emails: Sequence[str] = (),
    phones: Sequence[str] = (),
    ips: Sequence[str] = (),
    names: Sequence[str] = (),
    config: Config | None = None,
    index: Index | None = None,
    expand: bool = True,
) -> LocateResult:
    """Where a subject's data lives (source, container, field, records, match kinds, last scan); no values.

    Same resolution as ``export_subject``: raises ``AmbiguousSubjectError`` when the identifiers are ambiguous.
    """
    from discover.locate import locate as run_locate
    from discover.subjects import parse_identifiers

    cfg = _config(config)
    identifiers = parse_identifiers(
        emails=emails, phones=phones, ips=ips, names=names, regions=cfg.detection.phone_regions
    )
    if index is not None:
        return run_locate(index, identifiers, expand=expand)
    with open_index(cfg.index, create=False) as idx:
        return run_locate(idx, identifiers, expand=expand)


def missing_processing(*, config: Config | None = None, index: Index | None = None) -> list[str]:
    """Scanned sources (in the index) that have no entry in the config's ``processing`` list."""
    cfg = _config(config)
    if index is not None:
        return cfg.processing.missing(c["source"] for c in index.containers())
    with open_index(cfg.index, create=False) as idx:
        return cfg.processing.missing(c["source"] for c in idx.containers())


class _ExportAudit:
    """The audit entries of one export attempt; identifiers go in as keyed hashes under the index key."""

    def __init__(self, index: Index, actor: str, request_id: str, identifiers: Sequence[Any]) -> None:
        from piiport.service.audit import AuditLog
        from piiport.service.store import Store, store_url

        self.log = AuditLog(Store(store_url(index.url)))
        self.actor = actor
        self.request_id = request_id
        self.hashes = [index.ident(i.entity_type, i.value).hex() for i in identifiers]

    def _append(self, action: str, outcome: str, **extra: Any) -> None:
        try:
            self.log.append(
                actor=self.actor,
                action=action,
                request_id=self.request_id,
                identifiers=self.hashes,
                outcome=outcome,
                **extra,
            )
        finally:
            if action == "export":
                self.log.store.close()

    def started(self) -> None:
        self._append("export.started", "started")

    def finished(self, result: ExportResult) -> None:
        self._append(
            "export",
            "done" if result.ok else "incomplete",
            package_sha256=result.sha256,
            detail={
                "package": result.package,
                "files": result.files,
                "records": result.records,
                "errors": len(result.errors),
            },
        )

    def failed(self, exc: BaseException) -> None:
        from discover.errors import AmbiguousSubjectError
        from export.errors import ExportError

        refused = isinstance(exc, AmbiguousSubjectError)
        reason = exc.reason if isinstance(exc, (ExportError, AmbiguousSubjectError)) else type(exc).__name__
        self._append("export", "refused" if refused else "failed", detail={"reason": reason})


@dataclass(frozen=True)
class DemoResult:
    root: Path
    scan: ScanResult
    inventory: list[InventoryRow]
    export: ExportResult | None = None


def run_demo(
    root: str | Path = "piiport-demo",
    *,
    detector: Detector | None = None,
    progress: Progress | None = None,
    lang: str = "en",
) -> DemoResult:
    """Build the demo dataset in ``root``, scan it into its own index, and export one subject.

    The package's ``index.html`` is in ``lang``; the demo's ``piiport.yaml`` holds the sources'
    processing information.
    """
    from piiport import demo_data
    from piiport.config import load_config

    base = Path(root)
    data = demo_data.build(base)
    index_path = base / ".piiport" / "index.db"
    for stale in (index_path, index_path.with_name("index.db-wal"), index_path.with_name("index.db-shm")):
        stale.unlink(missing_ok=True)
    cfg = load_config(data.config, index=f"sqlite:///{index_path}")
    specs = [
        # Absolute, so that `piiport serve` or `piiport export` run from inside the demo folder find them.
        SourceSpec(name="crm", url=f"sqlite:///{data.crm.resolve()}"),
        SourceSpec(name="files", url=str(data.files.resolve())),
    ]
    with open_index(cfg.index) as idx:
        result = scan_sources(specs, config=cfg, index=idx, detector=detector, progress=progress)
        rows = get_inventory(index=idx)
        exported = export_subject(
            emails=[data.subject_email],
            config=cfg,
            index=idx,
            out=base / "exports",
            request_id="demo-request",
            overwrite=True,
            lang=lang,
            detector=detector,
        )
    return DemoResult(root=base, scan=result, inventory=rows, export=exported)
