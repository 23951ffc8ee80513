"""Stage 2: extract identifiers from every record, by the plan the profiles made.

Typed fields go through validators and normalisers only; name fields are taken as
names; free-text fields go through Presidio, batched, with repeated texts analysed once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from connectors.base import Record
from discover.detector import Detector
from discover.identifiers import PERSON, fold_name, normalise
from discover.masking import mask
from discover.profile import FieldProfile

FIELD = "field"
TEXT = "text"
_EXAMPLES = 3


@dataclass(frozen=True)
class Finding:
    """An identifier in a record. ``value`` is normalised and never leaves the process unhashed."""

    record_key: str
    field: str
    entity_type: str
    value: str
    score: float
    origin: str  # FIELD (a typed or name column) or TEXT (found inside free text)
    start: int | None = None
    end: int | None = None


@dataclass
class FieldStats:
    """Per field and entity type: records with a hit, non-null values, masked examples."""

    non_null: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    hits: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    examples: dict[tuple[str, str], list[str]] = field(default_factory=lambda: defaultdict(list))

    def rows(self, origins: Mapping[str, str]) -> list[dict[str, Any]]:
        out = []
        for (fname, etype), records in sorted(self.hits.items()):
            non_null = self.non_null.get(fname, 0)
            out.append(
                {
                    "field": fname,
                    "entity_type": etype,
                    "origin": origins.get(fname, TEXT),
                    "records": records,
                    "non_null": non_null,
                    "prevalence": round(min(1.0, records / non_null), 4) if non_null else 0.0,
                    "examples": self.examples.get((fname, etype), []),
                }
            )
        return out


def _texts(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        if item is None or isinstance(item, (bytes, bytearray, memoryview)):
            continue
        text = str(item).strip()
        if text:
            out.append(text)
    return out


class Extractor:
    """Turns batches of records into findings for one container. Keeps running field stats."""

    def __init__(
        self,
        profiles: Mapping[str, FieldProfile],
        detector: Detector,
        *,
        regions: Sequence[str],
        language: str,
    ) -> None:
        self.detector = detector
        self.regions = tuple(regions)
        self.language = language
        self.typed = {f: p for f, p in profiles.items() if p.entity_type and p.entity_type != PERSON}
        self.names = {f: p for f, p in profiles.items() if p.entity_type == PERSON}
        self.free_text = [f for f, p in profiles.items() if p.free_text]
        self.stats = FieldStats()
        self.origins = {f: (TEXT if p.free_text else FIELD) for f, p in profiles.items() if p.is_pii}
        self.records = 0

    def extract(self, batch: Sequence[Record]) -> list[Finding]:
        """Findings of one batch. Memory: the batch and its findings."""
        self.records += len(batch)
        findings: list[Finding] = []
        for record in batch:
            findings.extend(self._typed(record))
            findings.extend(self._names(record))
        if self.free_text:
            findings.extend(self._free_text(batch))
        self._count(batch, findings)
        return findings

    def _typed(self, record: Record) -> list[Finding]:
        out = []
        for fname, profile in self.typed.items():
            assert profile.entity_type is not None
            for text in _texts(record.values.get(fname)):
                value = normalise(profile.entity_type, text, self.regions)
                if value is not None:
                    out.append(Finding(record.key, fname, profile.entity_type, value, 1.0, FIELD))
        return out

    def _names(self, record: Record) -> list[Finding]:
        if not self.names:
            return []
        parts: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for fname, profile in self.names.items():
            for text in _texts(record.values.get(fname)):
                parts[profile.name_part or "full"].append((fname, text))
        out = []
        for fname, text in parts.get("full", []):
            value = fold_name(text)
            if value:
                out.append(Finding(record.key, fname, PERSON, value, 0.9, FIELD))
        firsts, lasts = parts.get("first", []), parts.get("last", [])
        if firsts and lasts:
            # First and last name columns make one name: that is what a person searches for.
            value = fold_name(f"{firsts[0][1]} {lasts[0][1]}")
            out.append(Finding(record.key, f"{firsts[0][0]}+{lasts[0][0]}", PERSON, value, 0.9, FIELD))
        else:
            for fname, text in firsts + lasts:
                value = fold_name(text)
                if value:
                    out.append(Finding(record.key, fname, PERSON, value, 0.6, FIELD))
        return out

    def _free_text(self, batch: Sequence[Record]) -> list[Finding]:
        slots: list[tuple[str, str, str]] = []
        for record in batch:
            for fname in self.free_text:
                for text in _texts(record.values.get(fname)):
                    slots.append((record.key, fname, text))
        unique = list(dict.fromkeys(text for _, _, text in slots))
        entities = dict(zip(unique, self.detector.analyze(unique, language=self.language), strict=True))
        out = []
        for key, fname, text in slots:
            for ent in entities[text]:
                value = normalise(ent.type, text[ent.start : ent.end], self.regions)
                if value is None and ent.type == PERSON:
                    value = fold_name(text[ent.start : ent.end]) or None
                if value is not None:
                    out.append(Finding(key, fname, ent.type, value, ent.score, TEXT, ent.start, ent.end))
        return out

    def _count(self, batch: Sequence[Record], findings: Sequence[Finding]) -> None:
        for record in batch:
            for fname in self.origins:
                if _texts(record.values.get(fname)):
                    self.stats.non_null[fname] += 1
        seen: set[tuple[str, str, str]] = set()
        for f in findings:
            # A combined first+last finding counts for both of its columns.
            for fname in f.field.split("+"):
                marker = (f.record_key, fname, f.entity_type)
                if marker in seen:
                    continue
                seen.add(marker)
                self.stats.hits[(fname, f.entity_type)] += 1
                examples = self.stats.examples[(fname, f.entity_type)]
                masked = mask(f.entity_type, f.value)
                if len(examples) < _EXAMPLES and masked not in examples:
                    examples.append(masked)
