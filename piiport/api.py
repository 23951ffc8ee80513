"""The public Python API. Everything the CLI does goes through these functions."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from connectors.base import SourceSpec

if TYPE_CHECKING:
    from discover.detector import Detector, Entity
    from discover.index import Index
    from discover.inventory import InventoryRow
    from discover.scan import Progress, ScanResult
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
    key = (settings.entities, settings.phone_regions, settings.score_threshold,
           tuple(sorted(settings.models.items())), settings.language, settings.nlp_batch_size)
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
) -> ScanResult:
    """Scan sources (URLs, paths or specs; none: the config's) into the index."""
    from connectors.errors import ConfigError
    from discover.scan import scan
    from piiport.config import specs_from_urls

    cfg = _config(config)
    urls = [s for s in sources if isinstance(s, str)]
    specs = [s for s in sources if isinstance(s, SourceSpec)] + list(
        specs_from_urls(urls, language=cfg.detection.language)
    )
    if not specs:
        specs = list(cfg.sources)
    if not specs:
        raise ConfigError("nothing to scan: give a SOURCE (URL or path) or a config file with sources", setting="sources")
    owns_index = index is None
    idx = index or open_index(cfg.index)
    try:
        return scan(
            specs,
            index=idx,
            detector=detector or build_detector(cfg),
            detection=cfg.detection,
            settings=cfg.scan,
            progress=progress,
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


def detect_texts(
    texts: Iterable[str],
    *,
    language: str | None = None,
    detector: Detector | None = None,
    config: Config | None = None,
    batch_size: int = 256,
) -> Iterator[list[Entity]]:
    """Entities in each text, streamed in input order. Memory: one batch of texts."""
    det = detector or build_detector(config)
    batch: list[str] = []
    for text in texts:
        batch.append(text)
        if len(batch) >= batch_size:
            yield from det.analyze(batch, language=language)
            batch = []
    if batch:
        yield from det.analyze(batch, language=language)


@dataclass(frozen=True)
class DemoResult:
    root: Path
    scan: ScanResult
    inventory: list[InventoryRow]
    export: Any | None = None


def run_demo(root: str | Path = "piiport-demo", *, detector: Detector | None = None,
             progress: Progress | None = None) -> DemoResult:
    """Build the demo dataset in ``root``, scan it into its own index, and export one subject."""
    from piiport import demo_data
    from piiport.config import Config

    base = Path(root)
    data = demo_data.build(base)
    index_path = base / ".piiport" / "index.db"
    for stale in (index_path, index_path.with_name("index.db-wal"), index_path.with_name("index.db-shm")):
        stale.unlink(missing_ok=True)
    cfg = Config(index=f"sqlite:///{index_path}")
    specs = [
        SourceSpec(name="crm", url=f"sqlite:///{data.crm}"),
        SourceSpec(name="files", url=str(data.files)),
    ]
    with open_index(cfg.index) as idx:
        result = scan_sources(specs, config=cfg, index=idx, detector=detector, progress=progress)
        rows = get_inventory(index=idx)
    return DemoResult(root=base, scan=result, inventory=rows)
