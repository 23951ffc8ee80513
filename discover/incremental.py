"""Incremental rescans: what a scan records so that the next one reads only what changed.

A file or S3 object is read again when its version (size and mtime, or ETag and size)
changed. A table whose version (``ContainerReader.table_version``: SQLite's page bytes,
PostgreSQL's row versions) is the one its last scan recorded is not read, fingerprinted nor
sampled: its profile and findings stand. Otherwise a table with one integer key is cut into
fixed key ranges (``range_no * step`` to ``(range_no + 1) * step - 1``, ``step`` chosen at the
full scan and kept); the database computes
a fingerprint per range (``SqlTableReader.range_fingerprints``), and only ranges whose
fingerprint changed, appeared or emptied are read again, their findings replacing exactly those
of the same ranges. Each range keeps its own counts and masked examples, merged in range order,
so the inventory after an incremental rescan is the one a full scan would write.

Any change in what decides the findings (detection settings, the profile's decisions, the
method) makes the next scan a full read: ``signature``.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

from connectors.options import SourceOptions, SqlOptions
from discover.buckets import BucketTable, dump_prints, load_prints, split_name
from discover.extract import FieldStats
from discover.profile import FieldProfile
from discover.settings import DetectionSettings, ScanSettings

#: Bumped when what a range summary or a signature means changes: older state means a full read.
_FORMAT = 3


def signature(
    detection: DetectionSettings,
    settings: ScanSettings,
    language: str,
    *,
    profiles: Mapping[str, FieldProfile] | None = None,
    seal_keys: bool = False,
    method: str = "",
) -> str:
    """What the findings of a container depend on besides its content."""
    decided = (
        sorted((str(f), p.entity_type, p.name_part, p.free_text, p.phone_digits) for f, p in profiles.items())
        if profiles is not None
        else None
    )
    payload = {
        "format": _FORMAT,
        "entities": list(detection.entities),
        "regions": list(detection.phone_regions),
        "threshold": detection.score_threshold,
        "models": dict(sorted(detection.models.items())),
        "language": language,
        "sample": [settings.sample_size, settings.seed],
        "profiles": decided,
        "seal": seal_keys,
        "method": method,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class RangeSummary:
    """What one key range contributed: records, per-field counts and examples, warnings; and,
    for a range kept by buckets (``discover.buckets``), the same counts per bucket, each
    bucket's fingerprint, where each field's examples were settled, and how many of its
    buckets the index hides (re-read since its last full read)."""

    records: int = 0
    stats: FieldStats = field(default_factory=FieldStats)
    entities: Counter[str] = field(default_factory=Counter)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    skipped_records: int = 0
    width: int = 0
    buckets: BucketTable | None = None
    prints: dict[int, int] = field(default_factory=dict)
    stops: dict[tuple[str, str], int] = field(default_factory=dict)
    hidden: int = 0

    def dumps(self) -> str:
        data: dict[str, object] = {
            "records": self.records,
            "non_null": dict(self.stats.non_null),
            "hits": [[f, e, n] for (f, e), n in sorted(self.stats.hits.items())],
            "examples": [
                [f, e, list(v), self.stats.example_at.get((f, e), [])]
                for (f, e), v in sorted(self.stats.examples.items())
            ],
            "entities": dict(sorted(self.entities.items())),
            "warnings": self.warnings[:20],
            "notes": self.notes[:20],
            "skipped_records": self.skipped_records,
        }
        if self.width and self.buckets is not None:
            data.update(
                width=self.width,
                buckets=self.buckets.dumps(),
                prints=dump_prints(self.prints),
                stops=[[f, e, b] for (f, e), b in sorted(self.stops.items())],
                hidden=self.hidden,
            )
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def loads(cls, text: str) -> RangeSummary:
        data = json.loads(text)
        stats = FieldStats()
        for f, n in data["non_null"].items():
            stats.non_null[f] += n
        for f, e, n in data["hits"]:
            stats.hits[(f, e)] += n
        for f, e, v, *at in data["examples"]:
            stats.examples[(f, e)].extend(v)
            # Summaries written before try numbers were kept: as if found first (as they merged then).
            stats.example_at[(f, e)].extend(at[0] if at else [0] * len(v))
        out = cls(
            data["records"],
            stats,
            Counter(data["entities"]),
            list(data["warnings"]),
            list(data["notes"]),
            data["skipped_records"],
        )
        if data.get("width"):
            out.width = int(data["width"])
            out.buckets = BucketTable.loads(data["buckets"])
            out.prints = load_prints(data["prints"])
            out.stops = {(f, e): int(b) for f, e, b in data["stops"]}
            out.hidden = int(data["hidden"])
        return out

    @classmethod
    def from_buckets(
        cls,
        buckets: BucketTable,
        examples: FieldStats,
        *,
        width: int,
        prints: dict[int, int],
        stops: dict[tuple[str, str], int],
        hidden: int,
    ) -> RangeSummary:
        """A range's summary from its buckets' counts (a range re-read in part): its totals are
        the sums of its buckets', its examples those given."""
        stats = FieldStats()
        entities: Counter[str] = Counter()
        records = 0
        for name, total in buckets.totals().items():
            kind, *rest = split_name(name)
            if kind == "r":
                records = total
            elif kind == "n":
                stats.non_null[rest[0]] += total
            elif kind == "h":
                stats.hits[(rest[0], rest[1])] += total
            elif kind == "e" and total:
                entities[rest[0]] += total
        for pair in stats.hits:
            if examples.examples.get(pair):
                stats.examples[pair] = list(examples.examples[pair])
                stats.example_at[pair] = list(examples.example_at.get(pair, []))
        return cls(records, stats, entities, [], [], 0, width, buckets, prints, stops, hidden)

    def patch_plan(self, changed: Collection[int]) -> tuple[int | None, tuple[tuple[str, str], ...]] | None:
        """For a rescan that re-reads only ``changed`` buckets of this range: the last bucket to
        read from the range's start (where the last field's examples were settled) and the
        fields whose examples must settle again; None when the range must be read whole
        (kept without buckets, warnings or skipped records, examples never settled)."""
        if not self.width or self.buckets is None or self.warnings or self.notes or self.skipped_records:
            return None
        needed = tuple(sorted(pair for pair, n in self.stats.hits.items() if n))
        if any(pair not in self.stops for pair in needed):
            return None
        return max((self.stops[p] for p in needed), default=None), needed


def merge(summaries: Iterable[RangeSummary]) -> RangeSummary:
    """The container's totals, from its ranges' summaries in range order (the order decides
    which masked examples are kept, so it is the same for a full scan and a rescan)."""
    out = RangeSummary()
    for s in summaries:
        out.records += s.records
        out.stats.merge(s.stats)
        out.entities.update(s.entities)
        out.warnings.extend(s.warnings)
        out.notes.extend(s.notes)
        out.skipped_records += s.skipped_records
    return out


def changed_column(options: SourceOptions, table: str, columns: Iterable[str]) -> str | None:
    """The source's watermark column for a table (``changed_column``: one name, or per table),
    when the table has it."""
    chosen = options.changed_column_of(table) if isinstance(options, SqlOptions) else None
    return chosen if chosen is not None and chosen in set(columns) else None


__all__ = ["RangeSummary", "changed_column", "merge", "signature"]
