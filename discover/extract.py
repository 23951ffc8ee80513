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
from itertools import compress
from typing import Any, NamedTuple, cast

from connectors.base import Columns
from discover.detector import Detector
from discover.identifiers import (
    EMAIL,
    IP,
    PERSON,
    PHONE,
    PHONE_DIGITS,
    fold_name,
    normalise_email,
    normalise_found,
    normalise_ip,
    phone_digits,
    phone_normaliser,
)
from discover.masking import mask
from discover.name_fields import FULL_NAME_SCORE, PART_NAME_SCORE, combined_field
from discover.profile import FieldProfile

FIELD = "field"
TEXT = "text"
_EXAMPLES = 3
_EXAMPLE_TRIES = 200


class FindingGroup(NamedTuple):
    """Identifiers of one field and entity type in a batch, column-wise: ``keys[i]`` holds ``values[i]``.

    ``values`` are normalised and never leave the worker unhashed. Columns, not one object per
    finding: they hash, pickle and bulk-insert without a Python step per finding.
    """

    field: str
    entity_type: str
    origin: str  # FIELD (a typed or name column) or TEXT (found inside free text)
    keys: list[str]
    values: list[Any]  # normalised text; replaced by keyed hashes before leaving the worker
    score: float | list[float]  # one score for the group, or one per finding
    starts: list[int] | None = None  # offsets inside the text, for TEXT findings
    ends: list[int] | None = None


@dataclass
class FieldStats:
    """Per field and entity type: records with a hit, non-null values, masked examples.

    The examples are the first 3 distinct masked values among the first 200 tries (hits, in
    the order read); ``example_at`` keeps each one's try number, so that merging the stats of
    consecutive parts (key ranges, in key order) gives what one read of them all would: a
    part's example counts only if the hits before it, in all the parts before, leave it within
    the first 200. The key ranges of a table can then fall anywhere."""

    non_null: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    hits: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    examples: dict[tuple[str, str], list[str]] = field(default_factory=lambda: defaultdict(list))
    example_at: dict[tuple[str, str], list[int]] = field(default_factory=lambda: defaultdict(list))
    _tries: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int), repr=False)

    def add_example(self, fname: str, entity_type: str, value: str) -> bool:
        """Keep a masked example; ``False`` once the field needs no more."""
        key = (fname, entity_type)
        examples = self.examples[key]
        # Masked values often look alike (every e-mail at one domain); stop trying after a while.
        if len(examples) < _EXAMPLES and self._tries[key] < _EXAMPLE_TRIES:
            self._tries[key] += 1
            masked = mask(entity_type, value)
            if masked not in examples:
                examples.append(masked)
                self.example_at[key].append(self._tries[key] - 1)
        return len(examples) < _EXAMPLES and self._tries[key] < _EXAMPLE_TRIES

    def wants_example(self, fname: str, entity_type: str) -> bool:
        """Whether :meth:`add_example` would still take an example of this field and type."""
        key = (fname, entity_type)
        return len(self.examples[key]) < _EXAMPLES and self._tries[key] < _EXAMPLE_TRIES

    def merge(self, other: FieldStats) -> None:
        """Add the stats of the part read after these (see the class). A record's try is its
        hit: exact for fields with one value a record; in free text, where a record can hold
        several, the hits before a part count its records."""
        for ek, ev in other.examples.items():
            before = self.hits.get(ek, 0)
            at = other.example_at.get(ek, [])
            for n, example in enumerate(ev):
                tried = before + (at[n] if n < len(at) else 0)
                if tried < _EXAMPLE_TRIES and len(self.examples[ek]) < _EXAMPLES and example not in self.examples[ek]:
                    self.examples[ek].append(example)
                    self.example_at[ek].append(tried)
        for k, v in other.non_null.items():
            self.non_null[k] += v
        for hk, hv in other.hits.items():
            self.hits[hk] += hv

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
        self.phone_digits = {str(f) for f, p in profiles.items() if p.entity_type == PHONE and p.phone_digits}
        self.names = {str(f): p.name_part or "full" for f, p in profiles.items() if p.entity_type == PERSON}
        self.free_text = [str(f) for f, p in profiles.items() if p.free_text]
        self.origins = origins_of(profiles)
        self.fields = list(self.origins)
        self.stats = FieldStats()
        self.records = 0
        self._normalisers: dict[str, Callable[[str], str | None]] = {EMAIL: normalise_email, IP: normalise_ip}
        self._digits_made = 0
        # The regions' phone metadata is compiled once a process (about 50 ms): only for a phone column.
        self._phone_or_digits: Callable[[str], str | None] = phone_digits
        if PHONE in self.typed.values():
            e164 = self._normalisers[PHONE] = phone_normaliser(self.regions)

            def e164_or_digits(value: str) -> str | None:
                found = e164(value)
                if found is None:
                    found = phone_digits(value)
                    self._digits_made += found is not None
                return found

            self._phone_or_digits = e164_or_digits

    def extract_columns(self, cols: Columns) -> list[FindingGroup]:
        """Findings of one batch of columns, grouped by field and entity type.

        Memory: the batch and its findings.
        """
        self.records += len(cols)
        out: list[FindingGroup] = []
        for fname, etype in self.typed.items():
            self._typed(cols, fname, etype, out)
        if self.names:
            self._names(cols, out)
        for fname in self.free_text:
            self._free_text(cols, fname, out)
        return [g for g in out if g.keys]

    def _typed(self, cols: Columns, fname: str, etype: str, out: list[FindingGroup]) -> None:
        if fname in self.phone_digits:
            # Phone numbers that fit no region by their digits, as their own type: a value is
            # E.164 when it starts with "+", digits otherwise.
            found: list[FindingGroup] = []
            made = self._digits_made
            self._typed_values(cols, fname, etype, self._phone_or_digits, found)
            for group in found:
                if self._digits_made == made:  # every value was E.164 (the common case)
                    out.append(group)
                    continue
                digits = [not v.startswith("+") for v in group.values]
                e164 = [not d for d in digits]
                out.append(
                    group._replace(keys=list(compress(group.keys, e164)), values=list(compress(group.values, e164)))
                )
                out.append(
                    group._replace(
                        entity_type=PHONE_DIGITS,
                        keys=list(compress(group.keys, digits)),
                        values=list(compress(group.values, digits)),
                    )
                )
            return
        self._typed_values(cols, fname, etype, self._normalisers[etype], out)

    def _typed_values(
        self, cols: Columns, fname: str, etype: str, norm: Callable[[str], str | None], out: list[FindingGroup]
    ) -> None:
        raws = cols.values[fname]
        if set(map(type, raws)) <= STR_OR_NONE:
            self._typed_texts(cols.keys, raws, fname, etype, norm, out)
            return
        seen: dict[str, str | None] = {}
        stats = self.stats
        keys: list[str] = []
        values: list[str] = []
        add_key, add_value = keys.append, values.append
        non_null = hits = 0
        examples = True
        for key, raw in zip(cols.keys, cols.values[fname], strict=True):
            if raw is None:
                continue
            if type(raw) is str:
                # A text in a mixed column: one look-up per value, normalised once per distinct value.
                value = seen.get(raw, _UNSEEN)
                if value is _UNSEEN:
                    value = seen[raw] = norm(raw) if raw.strip() else None
                if value is not None:
                    add_key(key)
                    add_value(value)
                    hits += 1
                    if examples:
                        examples = stats.add_example(fname, etype, value)
                    non_null += 1
                elif raw.strip():
                    non_null += 1
                continue
            texts = value_texts(raw)
            found = [v for v in (seen[t] if t in seen else seen.setdefault(t, norm(t)) for t in texts) if v is not None]
            for value in found:
                add_key(key)
                add_value(value)
            if found:
                hits += 1
                if examples:
                    examples = stats.add_example(fname, etype, found[0])
            non_null += bool(texts)
        stats.non_null[fname] += non_null
        stats.hits[(fname, etype)] += hits
        out.append(FindingGroup(fname, etype, FIELD, keys, values, 1.0))

    def _typed_texts(
        self,
        record_keys: list[str],
        raws: list[str | None],
        fname: str,
        etype: str,
        norm: Callable[[str], str | None],
        out: list[FindingGroup],
    ) -> None:
        """``_typed`` for a column of texts (and nulls), the common case: every step is a C-level
        pass over the batch except one normaliser call per distinct value."""
        with_none = dict.fromkeys(raws)
        with_none.pop(None, None)
        distinct = cast("dict[str, None]", with_none)
        # all() stops at the first blank text; most columns have none, so no Python loop runs.
        blank = [] if all(map(str.strip, distinct)) else [raw for raw in distinct if not raw.strip()]
        found: list[str | None]
        if len(distinct) == len(raws) and not blank:  # all distinct and non-blank (W1's columns): no look-up
            found = list(map(norm, cast("list[str]", raws)))
        else:
            normalised: dict[str | None, str | None] = dict(zip(distinct, map(norm, distinct), strict=True))
            normalised[None] = None
            for raw in blank:
                normalised[raw] = None
            found = list(map(normalised.__getitem__, raws))
        keys = list(compress(record_keys, found))
        values: list[str] = list(filter(None, found))
        stats = self.stats
        stats.non_null[fname] += len(raws) - raws.count(None) - sum(map(raws.count, blank))
        stats.hits[(fname, etype)] += len(values)
        for value in values:
            if not stats.add_example(fname, etype, value):
                break
        out.append(FindingGroup(fname, etype, FIELD, keys, values, 1.0))

    def _names(self, cols: Columns, out: list[FindingGroup]) -> None:
        by_part: dict[str, list[str]] = defaultdict(list)
        for fname, part in self.names.items():
            by_part[part].append(fname)
        stats = self.stats
        # Columns of texts (and nulls), stripped: the common case takes C-level passes below.
        stripped: dict[str, list[str]] = {}
        for fname in self.names:
            raws = cols.values[fname]
            if set(map(type, raws)) <= STR_OR_NONE:
                stripped[fname] = list(map(str.strip, [raw or "" for raw in raws]))
                stats.non_null[fname] += sum(map(bool, stripped[fname]))
            else:
                stats.non_null[fname] += sum(1 for v in raws if has_text(v))
        for fname in by_part.get("full", []):
            self._name_column(cols, fname, FULL_NAME_SCORE, out)
        firsts, lasts = by_part.get("first", []), by_part.get("last", [])
        if firsts and lasts:
            first, last = firsts[0], lasts[0]
            self._combined_names(
                cols.keys,
                stripped[first] if first in stripped else _first_texts(cols.values[first]),
                stripped[last] if last in stripped else _first_texts(cols.values[last]),
                first,
                last,
                out,
            )
        else:
            for fname in firsts + lasts:
                # A lone first or last name is weaker evidence than a full name.
                self._name_column(cols, fname, PART_NAME_SCORE, out)

    def _name_column(self, cols: Columns, fname: str, score: float, out: list[FindingGroup]) -> None:
        keys: list[str] = []
        values: list[str] = []
        folded: dict[str, str] = {}
        examples = True
        for key, raw in zip(cols.keys, cols.values[fname], strict=True):
            for text in [raw.strip()] if type(raw) is str else value_texts(raw):
                value = folded.get(text)
                if value is None:
                    value = folded[text] = fold_name(text)
                if value:
                    keys.append(key)
                    values.append(value)
                    if examples:
                        examples = self.stats.add_example(fname, PERSON, value)
                    break
        self.stats.hits[(fname, PERSON)] += len(keys)
        out.append(FindingGroup(fname, PERSON, FIELD, keys, values, score))

    def _combined_names(
        self,
        record_keys: list[str],
        firsts: list[str],
        lasts: list[str],
        first: str,
        last: str,
        out: list[FindingGroup],
    ) -> None:
        """First and last name columns make one name: that is what a person searches for.

        ``firsts`` and ``lasts`` are each record's stripped text ("" for none); C-level passes."""
        valid = list(map(all, zip(firsts, lasts, strict=True)))
        keys = list(compress(record_keys, valid))
        values = list(map(fold_name, map(" ".join, compress(zip(firsts, lasts, strict=True), valid))))
        for value in values:
            if not (self.stats.add_example(first, PERSON, value) | self.stats.add_example(last, PERSON, value)):
                break
        self.stats.hits[(first, PERSON)] += len(keys)
        self.stats.hits[(last, PERSON)] += len(keys)
        out.append(FindingGroup(combined_field(first, last), PERSON, FIELD, keys, values, FULL_NAME_SCORE))

    def _free_text(self, cols: Columns, fname: str, out: list[FindingGroup]) -> None:
        assert self.detector is not None, "free-text fields need a detector"
        slots: list[tuple[str, str]] = []
        for key, raw in zip(cols.keys, cols.values[fname], strict=True):
            for text in value_texts(raw):
                slots.append((key, text))
        self.stats.non_null[fname] += len({k for k, _ in slots})
        unique = list(dict.fromkeys(text for _, text in slots))
        entities = dict(zip(unique, self.detector.analyze(unique, language=self.language), strict=True))
        # Per entity type: keys, values, scores, starts, ends.
        found: dict[str, tuple[list[str], list[str], list[float], list[int], list[int]]] = {}
        hit_keys: dict[str, set[str]] = defaultdict(set)
        for key, text in slots:
            for ent in entities[text]:
                value = normalise_found(ent.type, text[ent.start : ent.end], self.regions)
                if value is None:
                    continue
                keys, values, scores, starts, ends = found.setdefault(ent.type, ([], [], [], [], []))
                keys.append(key)
                values.append(value)
                scores.append(ent.score)
                starts.append(ent.start)
                ends.append(ent.end)
                if key not in hit_keys[ent.type]:
                    hit_keys[ent.type].add(key)
                    self.stats.add_example(fname, ent.type, value)
        for etype, hit in hit_keys.items():
            self.stats.hits[(fname, etype)] += len(hit)
        out.extend(FindingGroup(fname, etype, TEXT, *found[etype]) for etype in sorted(found))


_UNSEEN: Any = object()
#: The types of a column of texts and nulls, which the fast paths take.
STR_OR_NONE = frozenset({str, type(None)})


def _first_texts(values: list[Any]) -> list[str]:
    """Each value's first non-empty text, or "" (a list holds several; bytes hold none)."""
    return [texts[0] if (texts := value_texts(v)) else "" for v in values]


def has_text(value: Any) -> bool:
    """Whether a value holds a non-empty text: what counts as a non-null value."""
    if type(value) is str:
        return bool(value.strip())
    return bool(value_texts(value))
