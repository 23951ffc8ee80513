"""Given-name and family-name gazetteers, for names the small NER model misses or mislabels.

The lists come from Faker's person providers (MIT licence): the given and family names
of about 80 locales, drawn by Faker's authors from public name-frequency lists. They are
read once per process (about 0.1 s) and kept as case-folded sets. Nothing here comes
from piiport's evaluation data.

How the detector uses them (``gazetteer_names``), always on top of spaCy's entities and
never to remove one:

- a known given name followed by a capitalised word ("Nikolaj Petrussen"), or, in lower
  case, a known given name followed by a known family name ("lena andersson");
- a known given name standing alone between non-capitalised words ("my kid Alina from");
- a spaCy ORG/PRODUCT/FAC/WORK_OF_ART entity that is exactly such a name ("Darren" read as
  an organisation). Places and nationalities (GPE, NORP, LOC) are trusted: France and
  Victoria are given names too.

A candidate is dropped when it looks like part of an address or a firm: a house number
before it, a street word or company designator in or after it, a line break inside it.
"""

from __future__ import annotations

import functools
import importlib
import logging
import pkgutil
import re
from collections.abc import Collection, Iterator
from typing import Any

from discover.names import DESIGNATORS, UNITS, trim_name

logger = logging.getLogger(__name__)

# Street-type words (the USPS suffix list plus common European ones): a capitalised word
# next to one of these is an address part. Only for gazetteer candidates; spaCy's own
# PERSON spans are judged by ``names.trim_name``, which is more lenient (Hill, Park, Way
# are surnames too).
STREET_WORDS = (
    frozenset(
        """
    alley annex arcade bayou beach bend bluff bluffs bottom branch bridge brook brooks burg burgs bypass camp
    canyon cape causeway center centers circle circles cliff cliffs common commons corner corners course
    court courts cove coves creek crest crossing crossroad curve dale dam divide drive drives estate estates
    expressway extension extensions fall falls ferry field fields flat flats ford fords forest forge forges
    fork forks fort freeway garden gardens gateway glen glens green greens grove groves harbor harbors haven
    heights hill hills hollow inlet island islands isle junction junctions key keys knoll knolls lake lakes
    land landing light lights loaf lock locks lodge loop mall manor manors meadow meadows mews mill mills
    mission motorway mount mountain mountains neck orchard oval overpass pass passage path pike pine pines
    plain plains point points port ports prairie radial ramp ranch rapid rapids rest ridge ridges river
    roads route row run shoal shoals shore shores skyway spring springs spur spurs station stravenue stream
    streets summit throughway trace track trafficway trail trailer tunnel turnpike underpass union unions
    valley valleys via viaduct view views village villages ville vista walk walks wall way ways well wells
    rua ul ulica utca út útja chemin allée quai impasse
    """.split()  # noqa: SIM905 - words read better as text
    )
    | DESIGNATORS
)
# Labels spaCy gives a misread name; places and nationalities are left alone.
_RELABEL = frozenset({"ORG", "PRODUCT", "FAC", "WORK_OF_ART"})
_WORD = r"[A-ZÀ-ÖØ-Þ][^\W\d_]+(?:-[A-ZÀ-ÖØ-Þ][^\W\d_]+)?"
_PAIR = re.compile(rf"(?<![\w@./])({_WORD})(?:\s+[A-Z]\.)?\s+({_WORD})(?![\w@])")
_SINGLE = re.compile(rf"(?<![\w@./-])({_WORD})(?![\w@-])")
_LOWER_PAIR = re.compile(r"(?<![\w@./])([^\W\d_A-Z]{2,})(?:\s+[a-z]\.)?\s+([^\W\d_A-Z]{2,})(?![\w@])")
_PREVIOUS_WORD = re.compile(r"([^\W\d_]+)[ \t]*$")
_NEXT_WORD = re.compile(r"[ \t]+([^\W\d_]+)")
_NUMBER_BEFORE = re.compile(r"\d[\w.]*\s*$")
_CONTRACTION = re.compile(r"['’]t\b")


@functools.cache
def given_names() -> frozenset[str]:
    """Case-folded given names of every Faker locale (single words only)."""
    return _load(("first_names", "first_names_male", "first_names_female", "first_names_nonbinary"))


@functools.cache
def family_names() -> frozenset[str]:
    """Case-folded family names of every Faker locale (single words or hyphenated)."""
    return _load(("last_names",))


def _load(attributes: tuple[str, ...]) -> frozenset[str]:
    try:
        import faker.providers.person as person
    except ImportError:  # a broken install: detection still works, with spaCy alone
        logger.warning("the faker package is missing: name gazetteers are off; reinstall piiport")
        return frozenset()
    names: set[str] = set()
    for module in pkgutil.iter_modules(person.__path__):
        provider = importlib.import_module(f"{person.__name__}.{module.name}").Provider
        for attribute in attributes:
            values = getattr(provider, attribute, None)
            if isinstance(values, (list, tuple, set, frozenset, dict)):
                names.update(str(v).casefold() for v in values if re.fullmatch(r"[^\W\d_]+(?:-[^\W\d_]+)?", str(v)))
    return frozenset(names)


def gazetteer_names(
    text: str, doc: Any, found: list[tuple[int, int]], stop_words: Collection[str]
) -> Iterator[tuple[int, int]]:
    """Spans of names that spaCy did not label PERSON but the gazetteers know.

    ``found`` holds spans already found; nothing overlapping them is yielded twice.
    """
    given, family = given_names(), family_names()
    if not given:
        return
    taken = list(found)

    def usable(word: str) -> bool:
        folded = word.casefold()
        return folded not in stop_words and folded not in STREET_WORDS and folded not in UNITS

    def fresh(start: int, end: int) -> bool:
        if any(start < e and s < end for s, e in taken) or _address_or_firm(text, doc, start, end, given, family):
            return False
        taken.append((start, end))
        return True

    for m in _PAIR.finditer(text):
        first, last = m.group(1), m.group(2)
        if first.isupper() or last.isupper() or first.casefold() not in given:
            continue
        if usable(first) and usable(last) and fresh(m.start(), m.end()):
            yield m.start(), m.end()
    for m in _SINGLE.finditer(text):
        word = m.group(1)
        if word.isupper() or word.casefold() not in given or not usable(word):
            continue
        if _CONTRACTION.match(text, m.end()):
            continue  # "Don't"
        # Alone: a capitalised neighbour makes it part of a title, a firm or a place.
        before = _PREVIOUS_WORD.search(text, 0, m.start())
        after = _NEXT_WORD.match(text, m.end())
        if (before and before.group(1)[0].isupper()) or (after and after.group(1)[0].isupper()):
            continue
        if fresh(m.start(), m.end()):
            yield m.start(), m.end()
    for m in _lower_case_names(text, stop_words):
        if usable(m.group(1)) and usable(m.group(2)) and fresh(m.start(), m.end()):
            yield m.start(), m.end()


def has_lower_case_name(text: str, stop_words: Collection[str]) -> bool:
    """Whether a text holds a known given name followed by a known family name, in lower case.

    NER looks for names in capitalised words only; this lets an all-lower-case chat line
    ("please call lena andersson") still reach it.
    """
    return any(True for _ in _lower_case_names(text, stop_words))


def _lower_case_names(text: str, stop_words: Collection[str]) -> Iterator[re.Match[str]]:
    """Lower-case word pairs that are a known given name and a known family name, neither a stop word."""
    given, family = given_names(), family_names()
    for m in _LOWER_PAIR.finditer(text):
        first, last = m.group(1), m.group(2)
        if first in given and last in family and first not in stop_words and last not in stop_words:
            yield m


def _address_or_firm(
    text: str, doc: Any, start: int, end: int, given: Collection[str], family: Collection[str]
) -> bool:
    for ent in getattr(doc, "ents", ()):
        overlaps = ent.start_char < end and start < ent.end_char and ent.label_ not in ("PERSON", "PER")
        if overlaps and not (ent.label_ in _RELABEL and _is_name(ent.text, given, family)):
            return True
    if trim_name(text, start, end, designators=STREET_WORDS) != (start, end):
        return True
    if any(w.casefold() in STREET_WORDS for w in re.findall(r"[^\W\d_]+", text[start:end])):
        return True
    return _NUMBER_BEFORE.search(text, max(0, start - 10), start) is not None


def _is_name(span: str, given: Collection[str], family: Collection[str]) -> bool:
    """A given name alone, or a given name and a family name."""
    words = span.split()
    if len(words) == 1:
        return words[0].casefold() in given
    return len(words) == 2 and words[0].casefold() in given and words[1].casefold() in family
