"""Stage 2: extract identifiers from every record, by the plan the profiles made.

Work is column by column over a batch. Typed fields go through validators and
normalisers only, each distinct value once; name fields are taken as names (first and
last name columns combined); free-text fields go through Presidio, batched, with repeated
texts analysed once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, NamedTuple

from connectors.base import Columns, Record
from discover.detector import Detector
from discover.identifiers import (
    EMAIL,
    IP,
    PERSON,
    PHONE,
    fold_name,
    normalise_email,
    normalise_found,
    normalise_ip,
    normalise_phone,
)
from discover.masking import mask
from discover.profile import FieldProfile

FIELD = "field"
TEXT = "text"
_EXAMPLES = 3
_EXAMPLE_TRIES = 200


class Finding(NamedTuple):
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
    _tries: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int), repr=False)

    def add_example(self, fname: str, entity_type: str, value: str) -> None:
        key = (fname, entity_type)
        examples = self.examples[key]
        # Masked values often look alike (every e-mail at one domain); stop trying after a while.
        if len(examples) < _EXAMPLES and self._tries[key] < _EXAMPLE_TRIES:
            self._tries[key] += 1
            masked = mask(entity_type, value)
            if masked not in examples:
                examples.append(masked)

    def merge(self, other: FieldStats) -> None:
        for k, v in other.non_null.items():
            self.non_null[k] += v
        for hk, hv in other.hits.items():
            self.hits[hk] += hv
        for ek, ev in other.examples.items():
            for example in ev:
                if len(self.examples[ek]) < _EXAMPLES and example not in self.examples[ek]:
                    self.examples[ek].append(example)

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


def origins_of(profiles: Mapping[str, FieldProfile]) -> dict[str, str]:
    """The personal-data fields and where their identifiers are: a typed or name column, or free text."""
    return {str(f): (TEXT if p.free_text else FIELD) for f, p in profiles.items() if p.is_pii}


def value_texts(value: Any) -> list[str]:
    """The non-empty texts of a field value (a list gives one per item; bytes give none)."""
    if type(value) is str:
        text = value.strip()
        return [text] if text else []
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        if item is None or isinstance(item, (bytes, bytearray, memoryview)):
            continue
        text = item if type(item) is str else str(item)
        text = text.strip()
        if text:
            out.append(text)
    return out


class Extractor:
    """Turns batches of one container into findings, keeping running field stats."""

    def __init__(
        self,
        profiles: Mapping[str, FieldProfile],
        detector: Detector | None,
        *,
        regions: Sequence[str],
        language: str,
    ) -> None:
        self.detector = detector
        self.regions = tuple(regions)
        self.language = language
        self.typed = {str(f): p.entity_type for f, p in profiles.items() if p.entity_type and p.entity_type != PERSON}
        self.names = {str(f): p.name_part or "full" for f, p in profiles.items() if p.entity_type == PERSON}
        self.free_text = [str(f) for f, p in profiles.items() if p.free_text]
        self.origins = origins_of(profiles)
        self.fields = list(self.origins)
        self.stats = FieldStats()
        self.records = 0
        self._normalisers: dict[str, Callable[[str], str | None]] = {
            EMAIL: normalise_email,
            IP: normalise_ip,
            PHONE: partial(normalise_phone, regions=self.regions),
        }

    @property
    def needs_detector(self) -> bool:
        return bool(self.free_text)

    def extract(self, batch: Sequence[Record]) -> list[Finding]:
        """Findings of one batch of records. Memory: the batch and its findings."""
        return self.extract_columns(Columns.from_records(batch, self.fields))

    def extract_columns(self, cols: Columns) -> list[Finding]:
        """Findings of one batch of columns. Memory: the batch and its findings."""
        self.records += len(cols)
        out: list[Finding] = []
        for fname, etype in self.typed.items():
            self._typed(cols, fname, etype, out)
        if self.names:
            self._names(cols, out)
        for fname in self.free_text:
            self._free_text(cols, fname, out)
        return out

    def _typed(self, cols: Columns, fname: str, etype: str, out: list[Finding]) -> None:
        norm = self._normalisers[etype]
        seen: dict[str, str | None] = {}
        stats = self.stats
        non_null = hits = 0
        for key, raw in zip(cols.keys, cols.values[fname], strict=True):
            if raw is None:
                continue
            texts = [raw] if type(raw) is str else value_texts(raw)
            hit = False
            for text in texts:
                if not text:
                    continue
                value = seen[text] if text in seen else seen.setdefault(text, norm(text))
                if value is not None:
                    out.append(Finding(key, fname, etype, value, 1.0, FIELD))
                    if not hit:
                        stats.add_example(fname, etype, value)
                    hit = True
            non_null += any(texts)
            hits += hit
        stats.non_null[fname] += non_null
        stats.hits[(fname, etype)] += hits

    def _names(self, cols: Columns, out: list[Finding]) -> None:
        by_part: dict[str, list[str]] = defaultdict(list)
        for fname, part in self.names.items():
            by_part[part].append(fname)
        stats = self.stats
        for fname in self.names:
            stats.non_null[fname] += sum(1 for v in cols.values[fname] if value_texts(v))
        for fname in by_part.get("full", []):
            self._name_column(cols, fname, 0.9, out)
        firsts, lasts = by_part.get("first", []), by_part.get("last", [])
        if firsts and lasts:
            self._combined_names(cols, firsts[0], lasts[0], out)
        else:
            for fname in firsts + lasts:
                # A lone first or last name is weaker evidence than a full name.
                self._name_column(cols, fname, 0.6, out)

    def _name_column(self, cols: Columns, fname: str, score: float, out: list[Finding]) -> None:
        hits = 0
        for key, raw in zip(cols.keys, cols.values[fname], strict=True):
            for text in value_texts(raw):
                value = fold_name(text)
                if value:
                    out.append(Finding(key, fname, PERSON, value, score, FIELD))
                    self.stats.add_example(fname, PERSON, value)
                    hits += 1
                    break
        self.stats.hits[(fname, PERSON)] += hits

    def _combined_names(self, cols: Columns, first: str, last: str, out: list[Finding]) -> None:
        """First and last name columns make one name: that is what a person searches for."""
        combined = f"{first}+{last}"
        hits = 0
        for key, fv, lv in zip(cols.keys, cols.values[first], cols.values[last], strict=True):
            ft, lt = value_texts(fv), value_texts(lv)
            if ft and lt:
                value = fold_name(f"{ft[0]} {lt[0]}")
                out.append(Finding(key, combined, PERSON, value, 0.9, FIELD))
                self.stats.add_example(first, PERSON, value)
                self.stats.add_example(last, PERSON, value)
                hits += 1
        self.stats.hits[(first, PERSON)] += hits
        self.stats.hits[(last, PERSON)] += hits

    def _free_text(self, cols: Columns, fname: str, out: list[Finding]) -> None:
        assert self.detector is not None, "free-text fields need a detector"
        slots: list[tuple[str, str]] = []
        for key, raw in zip(cols.keys, cols.values[fname], strict=True):
            for text in value_texts(raw):
                slots.append((key, text))
        self.stats.non_null[fname] += len({k for k, _ in slots})
        unique = list(dict.fromkeys(text for _, text in slots))
        entities = dict(zip(unique, self.detector.analyze(unique, language=self.language), strict=True))
        hit_keys: dict[str, set[str]] = defaultdict(set)
        for key, text in slots:
            for ent in entities[text]:
                value = normalise_found(ent.type, text[ent.start : ent.end], self.regions)
                if value is not None:
                    out.append(Finding(key, fname, ent.type, value, ent.score, TEXT, ent.start, ent.end))
                    if key not in hit_keys[ent.type]:
                        hit_keys[ent.type].add(key)
                        self.stats.add_example(fname, ent.type, value)
        for etype, keys in hit_keys.items():
            self.stats.hits[(fname, etype)] += len(keys)
