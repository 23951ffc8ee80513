"""Long texts are analysed in overlapping chunks, and the findings mapped back to the text.

Why: spaCy refuses a text over ``nlp.max_length`` (1,000,000 characters, error E088), and the
cost of a text grows faster than its length well before that (Presidio's context step looks
back over the tokens before each match), so one 200,000-character line took six times as long
as the same characters in 1,000-character lines.

How: a text longer than ``CHUNK_CHARS`` is cut into chunks of at most that length, at a line
break where there is one near the cut, else at white space (a word is never cut unless a run
of ``CHUNK_CHARS / 4`` characters holds no white space). Each chunk overlaps the next by
about ``OVERLAP_CHARS``. A finding is kept from the chunk that holds it with most context:
the middle of each overlap divides the text between the two chunks, so every kept finding has
at least half an overlap (300 characters, about fifty words: far more than the five tokens of Presidio's context
words or the few tokens spaCy's NER looks at) of its own chunk on either side of it, and an
entity shorter than that which spans a cut is found whole in one of the two chunks, and kept
once.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

#: Texts up to this length are analysed whole; longer ones in chunks of at most this length.
CHUNK_CHARS = 4_000
#: How much two neighbouring chunks share; half of it is the context every finding keeps.
OVERLAP_CHARS = 600

_LINE_BREAK = re.compile(r"\n")
_SPACE = re.compile(r"\s")


class _Span(Protocol):
    @property
    def start(self) -> int: ...
    @property
    def end(self) -> int: ...
    @property
    def type(self) -> str: ...


S = TypeVar("S", bound=_Span)


@dataclass(frozen=True)
class Chunk:
    """``text[start:end]``; its findings that start in ``[keep_from, keep_to)`` are kept."""

    start: int
    end: int
    keep_from: int
    keep_to: int


def _last_break(text: str, low: int, high: int) -> int | None:
    """The position just after the last line break, else white space, in ``text[low:high]``."""
    for pattern in (_LINE_BREAK, _SPACE):
        last = None
        for last in pattern.finditer(text, low, high):  # noqa: B007 - the last match is wanted
            pass
        if last is not None:
            return last.end()
    return None


def split_text(text: str, size: int = CHUNK_CHARS, overlap: int = OVERLAP_CHARS) -> list[Chunk]:
    """Overlapping chunks that cover ``text``; one chunk when it is at most ``size`` long."""
    if not 0 < 2 * overlap < size:
        raise ValueError("the overlap must be positive and less than half the chunk size")
    if len(text) <= size:
        return [Chunk(0, len(text), 0, len(text))]
    slack = size // 4
    spans: list[tuple[int, int]] = []
    start = 0
    while True:
        if len(text) - start <= size:
            spans.append((start, len(text)))
            break
        end = _last_break(text, start + size - slack, start + size) or start + size
        spans.append((start, end))
        # The next chunk starts at a line or word start about `overlap` before this one's end.
        back = end - overlap
        start = _last_break(text, back - slack, back) or back
    chunks = []
    keep_from = 0
    for i, (start, end) in enumerate(spans):
        keep_to = (spans[i + 1][0] + end) // 2 if i + 1 < len(spans) else len(text)
        chunks.append(Chunk(start, end, keep_from, keep_to))
        keep_from = keep_to
    return chunks


def merge(chunks: Sequence[Chunk], found: Sequence[Sequence[S]]) -> list[S]:
    """The findings of each chunk, in the whole text's offsets, each entity once."""
    kept: list[S] = []
    previous: list[S] = []  # what the chunk before kept; only neighbouring chunks overlap
    for chunk, entities in zip(chunks, found, strict=True):
        overlap = [p for p in previous if p.end > chunk.start]
        previous = []
        for entity in entities:
            start, end = entity.start + chunk.start, entity.end + chunk.start
            if not chunk.keep_from <= start < chunk.keep_to:
                continue
            if any(p.type == entity.type and p.start < end and start < p.end for p in overlap):
                continue  # the same entity seen from the chunk before, with a slightly different span
            previous.append(dataclasses.replace(entity, start=start, end=end))  # type: ignore[type-var]
        kept.extend(previous)
    return kept


def iter_chunked(
    texts: Sequence[str],
    analyse: Callable[[Sequence[str]], Iterable[list[S]]],
    *,
    size: int | None = None,
    overlap: int | None = None,
) -> Iterator[list[S]]:
    """``analyse`` over ``texts``, long texts cut into chunks and put together again.

    ``analyse`` gets all the texts and chunks in one sequence, so they share its batching.
    Memory: one copy of each long text, in chunks. ``size`` and ``overlap`` default to the
    module's ``CHUNK_CHARS`` and ``OVERLAP_CHARS`` at the time of the call.
    """
    size = size or CHUNK_CHARS
    overlap = overlap or OVERLAP_CHARS
    pieces: list[str] = []
    plans: list[list[Chunk] | None] = []
    for text in texts:
        if len(text) <= size:
            pieces.append(text)
            plans.append(None)
            continue
        chunks = split_text(text, size, overlap)
        pieces.extend(text[c.start : c.end] for c in chunks)
        plans.append(chunks)
    results = iter(analyse(pieces))
    for plan in plans:
        if plan is None:
            yield next(results)
        else:
            yield merge(plan, [next(results) for _ in plan])


class Keywords(list[str]):
    """Presidio's context keywords of a text, with a set's membership test.

    Presidio's context step tests ``lemma in keywords`` at each token it walks past while it
    looks for context words around a match; on a list each test reads the whole text's
    keywords, so a match cost time in proportion to the square of its text's length.
    """

    def __init__(self, words: list[str]) -> None:
        super().__init__(words)
        self._set = frozenset(words)

    def __contains__(self, word: object) -> bool:
        return word in self._set
