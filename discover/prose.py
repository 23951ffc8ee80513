"""Capitalised words that are not names: noun phrases after an article, and title-case prose.

A small NER model reads capitalisation as a name signal. Two kinds of text break that:

- A noun phrase introduced by an article: "a Mad Scientist who", "The Canadian Rockies",
  "Confront An Accountant". English puts no article before a personal name, except where
  the name modifies a noun that follows ("a Ravil Yefimov concert", "the Johnson novel"),
  or after an honorific ("the Dr. Wells").
- Title-case prose ("A Brooding Fable About A Butler Who Must Outwit the Hunter"): when
  function words are capitalised in mid-sentence, capitalisation says nothing, and role
  nouns (Butler, Hunter, Composer) look like names. There a span is kept only with
  evidence of its own: a word that is not an everyday English word, or a known given name
  followed by a known family name.

Everyday words are the lemmatizer index that ships with the English spaCy pipeline
(WordNet's nouns, verbs, adjectives and adverbs, about 83,000 words) and the stop words.
WordNet also lists many given names (maria, john): those count as names only together with a
family name, or in ordinary prose, where the rules here do not apply. For a language without
such an index (the French pipeline) only the stop words count, so title case rarely drops a span.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from discover.gazetteer import family_names, given_names
from discover.names import HONORIFICS

# Articles per language; a language not listed gets no article rule.
ARTICLES = {"en": frozenset({"a", "an", "the"})}
_HONORIFICS = frozenset(h.lower() for h in HONORIFICS) | {"prof", "rev", "fr"}
_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")
_WORD_BEFORE = re.compile(r"([^\W\d_]+)(\.?)[ \t]+$")
_WORD_AFTER = re.compile(r"[ \t]+([^\W\d_]+)")
# The start of a sentence, clause or quotation: a capital there is not title case.
_OPENING = re.compile(r"(?:^|[.!?:;]\s+|\n\s*)[\"'“‘«(\[]*$")


def common_words(nlp: Any) -> tuple[frozenset[str], tuple[tuple[str, str], ...]]:
    """Everyday words of a spaCy pipeline, lower case: its lemmatizer's index, irregular forms and
    stop words; and the lemmatizer's suffix rules ("meets" is "meet" + "s"), to read inflected forms."""
    words = set(nlp.Defaults.stop_words)
    rules: set[tuple[str, str]] = set()
    lemmatizer = dict(nlp.components).get("lemmatizer")
    lookups = getattr(lemmatizer, "lookups", None)
    if lookups is not None and lookups.has_table("lemma_index"):
        index = lookups.get_table("lemma_index")
        exceptions = lookups.get_table("lemma_exc") if lookups.has_table("lemma_exc") else {}
        suffixes = lookups.get_table("lemma_rules") if lookups.has_table("lemma_rules") else {}
        for pos in ("noun", "verb", "adj", "adv"):
            if pos in index:
                words.update(w for w in index[pos] if "_" not in w)
            if pos in exceptions:
                words.update(exceptions[pos])
            if pos in suffixes:
                rules.update((old, new) for old, new in suffixes[pos])
    return frozenset(words), tuple(sorted(rules))


def is_title_case(text: str, stop_words: Collection[str]) -> bool:
    """Whether function words are capitalised in mid-sentence: at least two, or one where at least
    half the function words or half of all words in mid-sentence are ("A Taut Saga of a Monk
    And a Cat"). Single letters (I, A) do not count."""
    words = [m for m in _WORD.finditer(text) if len(m.group(0)) > 1 and not _OPENING.search(text, 0, m.start())]
    function = [m.group(0) for m in words if m.group(0).lower() in stop_words]
    capitalised = sum(1 for w in function if w[0].isupper())
    if capitalised != 1:
        return capitalised >= 2
    return 2 * capitalised >= len(function) or 2 * sum(1 for m in words if m.group(0)[0].isupper()) >= len(words)


@dataclass(frozen=True)
class ProseRules:
    """The rules above for one language. Build once per language (``for_pipeline``)."""

    articles: frozenset[str]
    common: frozenset[str]
    suffix_rules: tuple[tuple[str, str], ...]
    stop_words: frozenset[str]

    @classmethod
    def for_pipeline(cls, nlp: Any, language: str) -> ProseRules:
        common, rules = common_words(nlp)
        return cls(ARTICLES.get(language, frozenset()), common, rules, frozenset(nlp.Defaults.stop_words))

    def is_common(self, word: str) -> bool:
        """An everyday word, inflected or not (lower case)."""
        if word in self.common:
            return True
        return any(
            word.endswith(old) and len(word) > len(old) + 1 and word[: len(word) - len(old)] + new in self.common
            for old, new in self.suffix_rules
        )

    def not_a_name(self, text: str, start: int, end: int, *, title_case: bool) -> bool:
        """Whether the PERSON span ``text[start:end]`` is a noun phrase or title-case prose, not a name.

        ``title_case`` is ``is_title_case(text)``, computed once per text by the caller.
        """
        words = [m.group(0) for m in _WORD.finditer(text, start, end)]
        if not words:
            return False
        before = _WORD_BEFORE.search(text, max(0, start - 20), start)
        if before and before.group(1).lower() in _HONORIFICS:
            return False
        lower = [w.lower() for w in words]
        if (
            self._after_article(text, start, words)
            and not self._modifies_next_word(text, end)
            and not (len(words) > 1 and self._name_evidence(lower))  # "the CEO Jane Doe."
        ):
            return True
        for previous, word in pairwise(words):
            if word.lower() in self.articles and word not in ("A", "the"):
                return True  # "Confront An Accountant", "Kill a Robot" ("Catherine the Great" stays)
            if word == "A" and self.is_common(previous.lower()) and previous.lower() not in given_names():
                return True  # "Meets A Mad Scientist"; "Maria A Lopez" has a middle initial
        return title_case and not self._name_evidence(lower)

    def _after_article(self, text: str, start: int, words: list[str]) -> bool:
        """An article starts the span or the run of capitalised words right before it."""
        if not self.articles:
            return False
        if words[0].lower() in self.articles:
            return True
        pos = start
        for _ in range(4):
            before = _WORD_BEFORE.search(text, max(0, pos - 40), pos)
            if before is None or before.group(2):  # nothing, or an initial ("A. Smith")
                return False
            word = before.group(1)
            if word.lower() in self.articles:
                return True
            if not word[0].isupper():
                return False
            pos = before.start()
        return False

    def _modifies_next_word(self, text: str, end: int) -> bool:
        """A lower-case content word follows: "a Ravil Yefimov concert"."""
        after = _WORD_AFTER.match(text, end)
        return after is not None and after.group(1).islower() and after.group(1) not in self.stop_words

    def _name_evidence(self, words: list[str]) -> bool:
        if any(len(w) > 1 and not self.is_common(w) for w in words):
            return True
        given, family = given_names(), family_names()
        return any(first in given and last in family for first, last in pairwise(words))
