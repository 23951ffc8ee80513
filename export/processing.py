"""Processing information (GDPR Art. 15(1) a-h): why, on what basis, for whom and how long each source keeps data.

The config's ``processing`` list holds one entry per source and, optionally, entries per
container that override it (``container`` is a name or a glob). A container entry may say
only ``portability: false`` or name fields that are not portable (inferred or derived data:
scores, segments); everything it does not say comes from its source's entry.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

LEGAL_BASES = (
    "consent",
    "contract",
    "legal_obligation",
    "vital_interests",
    "public_task",
    "legitimate_interests",
)
#: Art. 20(1)(a): portability covers data processed on consent or on a contract.
PORTABLE_BASES = frozenset({"consent", "contract"})
SUBJECT_ORIGIN = "subject"
THIRD_PARTY = "third_party"


@dataclass(frozen=True)
class ProcessingEntry:
    """One entry of the config's ``processing`` list (a source's, or a container's override)."""

    source: str
    container: str | None = None
    purposes: tuple[str, ...] | None = None
    legal_basis: str | None = None
    categories: tuple[str, ...] | None = None
    recipients: tuple[str, ...] | None = None
    retention: str | None = None
    #: ``subject`` (the person gave it) or ``third_party: <name>``.
    origin: str | None = None
    automated_decisions: bool | None = None
    #: ``False``: inferred or derived data, left out of a portability package.
    portability: bool | None = None
    #: Fields of the container that are inferred or derived (left out of a portability package).
    not_portable_fields: tuple[str, ...] = ()

    def applies_to(self, source: str, container: str) -> bool:
        return self.source == source and (self.container is None or fnmatch.fnmatchcase(container, self.container))

    def as_dict(self) -> dict[str, Any]:
        """What ``processing.json`` holds for this entry (portability markers stay in the manifest)."""
        out: dict[str, Any] = {"source": self.source}
        if self.container is not None:
            out["container"] = self.container
        out.update(
            {
                "purposes": list(self.purposes or ()),
                "legal_basis": self.legal_basis,
                "categories": list(self.categories or ()),
                "recipients": list(self.recipients or ()),
                "retention": self.retention,
                "origin": self.origin or SUBJECT_ORIGIN,
                "automated_decisions": bool(self.automated_decisions),
            }
        )
        return out


#: The settings of an entry; a container entry inherits each one its source entry sets.
SETTINGS = (
    "purposes",
    "legal_basis",
    "categories",
    "recipients",
    "retention",
    "origin",
    "automated_decisions",
    "portability",
)


@dataclass(frozen=True)
class Processing:
    """The processing entries of a configuration, validated."""

    entries: tuple[ProcessingEntry, ...] = ()

    def source_entry(self, source: str) -> ProcessingEntry | None:
        return next((e for e in self.entries if e.source == source and e.container is None), None)

    def effective(self, source: str, container: str) -> ProcessingEntry | None:
        """The source's entry with the first matching container entry laid over it; None when neither exists."""
        base = self.source_entry(source)
        override = next(
            (e for e in self.entries if e.container is not None and e.applies_to(source, container)),
            None,
        )
        if override is None:
            return base
        if base is None:
            return override
        changes = {k: getattr(override, k) for k in SETTINGS if getattr(override, k) is not None}
        return replace(base, container=override.container, not_portable_fields=override.not_portable_fields, **changes)

    def covers(self, source: str) -> bool:
        return any(e.source == source for e in self.entries)

    def missing(self, sources: Iterable[str]) -> list[str]:
        """Sources without any entry, sorted."""
        return sorted({s for s in sources if not self.covers(s)})

    def for_package(self, contributed: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
        """``processing.json``: the entries of the sources (and containers) that contributed records."""
        out: list[dict[str, Any]] = []
        seen: set[tuple[str, str | None]] = set()
        for source, container in sorted(contributed):
            base = self.source_entry(source)
            effective = self.effective(source, container)
            if (
                base is not None
                and effective is not None
                and replace(effective, container=None)
                == replace(base, not_portable_fields=effective.not_portable_fields)
            ):
                effective = base  # a container entry that only marks fields says nothing new to the person
            for entry in (base, effective):
                if entry is not None and (entry.source, entry.container) not in seen:
                    seen.add((entry.source, entry.container))
                    out.append(entry.as_dict())
        return out
