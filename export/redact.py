"""Third-party redaction (GDPR Art. 15(4)): other people's identifiers in exported free text become placeholders.

The same detector that scanned the text finds the spans again; a span whose normalised value
hashes (with the index key) to one of the subject's identifiers is theirs and stays, and so
does a name made only of words of the subject's own names ("Alice" for Alice Martin).
Everything else becomes ``[PERSON]``, ``[EMAIL_ADDRESS]``, ``[PHONE_NUMBER]`` or ``[IP_ADDRESS]``,
except an IP address in a text that names no one else (the subject's own log line): that is
taken as the subject's connection data.
Rows are changed in memory before any file is written, so no unredacted copy reaches the disk.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from discover.identifiers import IP, PERSON, fold_name, normalise_found
from discover.index import Index
from export.formats import Table

if TYPE_CHECKING:
    from discover.detector import Detector


def placeholder(entity_type: str) -> str:
    return f"[{entity_type}]"


@dataclass
class Redactor:
    """Redacts the subject's tables; built per export around the process's one detector."""

    detector: Detector
    index: Index
    regions: tuple[str, ...]
    #: The subject's keyed identifier hashes (resolved and linked).
    own: frozenset[bytes]
    #: Words of the subject's own names, folded.
    own_name_words: frozenset[str]

    @classmethod
    def for_subject(
        cls,
        detector: Detector,
        index: Index,
        regions: Sequence[str],
        own: Iterable[bytes],
        own_names: Iterable[str],
    ) -> Redactor:
        words = frozenset(w for name in own_names for w in fold_name(name).split())
        return cls(detector, index, tuple(regions), frozenset(own), words)

    def is_own(self, entity_type: str, text: str) -> bool:
        value = normalise_found(entity_type, text, self.regions)
        if value is None:
            return False
        if self.index.ident(entity_type, value) in self.own:
            return True
        if entity_type == PERSON:
            words = fold_name(text).split()
            return bool(words) and all(w in self.own_name_words for w in words)
        return False

    def _apply(self, text: str, entities: Sequence[Any], counts: Counter[str]) -> str:
        others = [e for e in entities if not self.is_own(e.type, text[e.start : e.end])]
        # An IP in a text of the subject's that names nobody else (their own log line, a note on
        # their account) is their connection data; beside another person it may be that person's.
        if not any(e.type != IP for e in others):
            others = []
        out = text
        last = len(text) + 1
        for e in sorted(others, key=lambda e: e.start, reverse=True):
            if e.end > last:
                continue
            out = out[: e.start] + placeholder(e.type) + out[e.end :]
            counts[e.type] += 1
            last = e.start
        return out

    def redact(self, table: Table, free_text: Iterable[str], language: str | None) -> None:
        """Replace other people's identifiers in the table's free-text fields, in place; count them."""
        counts: Counter[str] = Counter()
        paths = [tuple(f.split(".")) for f in sorted(set(free_text))]
        cells: list[tuple[dict[str, Any], str]] = []
        for row in table.rows:
            for path in paths:
                parent = _parent(row, path)
                if parent is not None and isinstance(parent.get(path[-1]), str) and parent[path[-1]].strip():
                    cells.append((parent, path[-1]))
        texts = [parent[key] for parent, key in cells]
        for (parent, key), entities in zip(cells, self.detector.analyze(texts, language=language), strict=True):
            parent[key] = self._apply(parent[key], entities, counts)
        table.redactions = dict(counts)


def _parent(row: Mapping[str, Any], path: tuple[str, ...]) -> dict[str, Any] | None:
    """The mapping that holds a flattened field (``contact.note``), if the record has that shape."""
    node: Any = row
    for part in path[:-1]:
        node = node.get(part) if isinstance(node, dict) else None
    return node if isinstance(node, dict) and path[-1] in node else None
