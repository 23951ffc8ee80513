"""Person-name heuristics around spaCy's NER: what a small model gets wrong in generic ways.

- Spans that cannot be a personal name: with digits or a line break, right after a house
  number, or ending in (or followed by) a street or organisation designator.
- Names the model labels as something else when they have the shape of a name with a
  middle initial ("Ravil G Yefimov").
- Names in a coordinated list with a name the model found ("Efimiya, Mary, Ariana and Jodi").
- Other mentions, in the same text, of a word of a name already found ("directed by Joakim
  Westgård and starring Westgård").
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from typing import Any

# Standard street and organisation designators (several languages): a span ending in one is a
# place or a company. (Words that are also surnames or common words, such as Park, stay out.)
DESIGNATORS = frozenset(
    """
    st street str avenue ave av road rd lane ln drive boulevard blvd place pl court ct terrace square squares
    crescent parkway highway hwy alley plaza strasse straße gasse weg platz rue calle vej gade katu
    inc ltd llc gmbh corp corporation company group orchestra university college school hospital
    bank hotel church foundation institute association society club agency partners associates plc
    """.split()  # noqa: SIM905 - words read better as text
)
# Unit words start the address line that follows a name ("Mrs. Barbara Yudina Apt. 675").
UNITS = frozenset({"apt", "suite", "unit", "po", "box", "flat"})
_HOUSE_NUMBER = re.compile(r"\d+[A-Za-z]?\s*,?\s*$")
_INITIAL_NAME = re.compile(r"^[A-ZÀ-Þ][^\W\d_]+(?:\s+[A-Z]\.?)+\s+[A-ZÀ-Þ][^\W\d_'’-]+(?:[-'’][^\W\d_]+)?$")
_LIST = re.compile(
    r"(?:[A-ZÀ-Þ][^\W\d_]+(?:\s[A-ZÀ-Þ][^\W\d_]+)?,\s+)+[A-ZÀ-Þ][^\W\d_]+(?:\s[A-ZÀ-Þ][^\W\d_]+)?,?\s+(?:and|&|et|und|y)\s+"
    r"[A-ZÀ-Þ][^\W\d_]+(?:\s[A-ZÀ-Þ][^\W\d_]+)?"
)
_ITEM = re.compile(r"[A-ZÀ-Þ][^\W\d_]+(?:\s[A-ZÀ-Þ][^\W\d_]+)?")
_OTHER_LABELS = {"ORG", "GPE", "NORP", "PRODUCT", "WORK_OF_ART", "LOC", "FAC", "MISC"}
_CAP = r"[A-ZÀ-Þ][^\W\d_]+(?:[-'’][A-ZÀ-Þ]?[^\W\d_]+)?"
# "Ravil G Yefimov", "Faina D. Yefremova": a middle initial between capitalised words.
_MIDDLE_INITIAL = re.compile(rf"(?<![\w.]){_CAP}\s+[A-Z]\.?\s+{_CAP}(?![\w])")
# An honorific, then the name: "Mrs. Labrie", "Dr Jane Doe", "Mme Lefèvre".
HONORIFICS = (
    "Mr",
    "Mrs",
    "Ms",
    "Miss",
    "Mx",
    "Dr",
    "Prof",
    "Sir",
    "Dame",
    "Mme",
    "Mlle",
    "M",
    "Herr",
    "Frau",
    "Sr",
    "Sra",
)
_HONORIFIC = re.compile(rf"\b(?:{'|'.join(HONORIFICS)})\.?\s+({_CAP}(?:\s+{_CAP})?)(?![\w])")


_NOT_NAME_TOKEN = re.compile(r"[^\s\x00-\x1f]*[@\x00-\x08\x0b-\x1f]")


def trim_name(text: str, start: int, end: int, *, designators: Collection[str] = DESIGNATORS) -> tuple[int, int] | None:
    """The part of a PERSON span that can be a name, or ``None``.

    NER spans run on past a line break or into the address that follows a name; those are
    trimmed. A span with digits, right after a house number, or ending in (or followed by) a
    street or organisation designator is a place or a company, not a person. Callers less
    sure of the span pass a longer list of ``designators``.
    """
    newline = text.find("\n", start, end)
    if newline != -1:
        end = newline
    # NER also runs on into an address the e-mail recognizer did not take (a reserved TLD such
    # as .example) and over control characters: a name stops before either.
    stop = _NOT_NAME_TOKEN.search(text, start, end)
    if stop:
        end = stop.start()
    words = list(re.finditer(r"[^\W\d_]+", text[start:end]))
    while words and words[-1].group(0).lower() in UNITS:
        end = start + words[-1].start()
        words.pop()
    while end > start and not (text[end - 1].isalpha()):
        end -= 1
    span = text[start:end]
    if not words or not span or any(ch.isdigit() for ch in span):
        return None
    if words[-1].group(0).lower() in designators:
        return None
    following = re.match(r"[ \t]*([^\W\d_]+)", text[end : end + 20])
    if following and following.group(1).lower() in designators:
        return None
    if _HOUSE_NUMBER.search(text[max(0, start - 12) : start]):
        return None
    return start, end


_NAME_WORD = re.compile(r"[^\W\d_]+(?:[-'’][^\W\d_]+)*")


def repeated_names(text: str, found: list[tuple[int, int]], stop_words: Collection[str]) -> Iterator[tuple[int, int]]:
    """Spans where a word of a name found in ``text`` occurs again, spelled the same way."""
    words = set()
    for start, end in found:
        for m in _NAME_WORD.finditer(text, start, end):
            word = m.group(0)
            folded = word.casefold()
            common = folded in stop_words or folded in DESIGNATORS or folded in UNITS
            if len(word) > 1 and word[0].isupper() and not common:
                words.add(word)
    if not words:
        return
    for m in _NAME_WORD.finditer(text):
        if m.group(0) in words and not any(s < m.end() and m.start() < e for s, e in found):
            yield m.start(), m.end()


def extra_names(text: str, doc: Any, found: list[tuple[int, int]]) -> Iterator[tuple[int, int]]:
    """Spans of names the model labelled otherwise, and of lists that hold a name it found."""
    for ent in getattr(doc, "ents", ()):
        if ent.label_ in _OTHER_LABELS and _INITIAL_NAME.match(ent.text):
            yield ent.start_char, ent.end_char
    for match in _MIDDLE_INITIAL.finditer(text):
        yield match.start(), match.end()
    for match in _HONORIFIC.finditer(text):
        yield match.start(1), match.end(1)
    for match in _LIST.finditer(text):
        if any(match.start() <= s and e <= match.end() for s, e in found):
            for item in _ITEM.finditer(match.group(0)):
                if item.group(0).lower() not in DESIGNATORS:
                    yield match.start() + item.start(), match.start() + item.end()
