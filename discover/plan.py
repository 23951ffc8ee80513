"""What an export needs from the index, resolved once: the seam between discover and export.

``plan_export`` resolves a request (``discover.subjects.resolve``) and reads, in one go, what
the export of that subject will ask: the containers' metadata, every finding of the subject's
records (theirs, and other people's mentions beside them), and the field profiles that say
which tables hold persons and which fields are free text. Export then reads the sources and
writes the package from this value; it never opens the index.

One question cannot be answered before the sources are read: the findings of records that
following foreign keys reaches (a customer's orders, the address their row points at), whose
keys only the source knows. The plan carries a typed look-up for those (``RecordFindings``);
an export that reaches no such record runs with the index closed.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from connectors.base import SourceSpec
from connectors.redact import is_masked_url
from discover.hashing import IdentifierHasher
from discover.identifiers import STRONG
from discover.rows import ContainerRow, FindingRow, ProfileRow, RecordRef
from discover.subjects import Identifier, Subject, resolve

if TYPE_CHECKING:
    from discover.index import Index


class RecordFindings(Protocol):
    """Findings of records not known when the plan was made (reached through foreign keys)."""

    def findings_in(self, records: Iterable[RecordRef]) -> Sequence[FindingRow]: ...


@dataclass(frozen=True)
class ExportRequest:
    """Who to export: the request's identifiers (normalised), and whether to grow the subject over strong links."""

    identifiers: tuple[Identifier, ...]
    expand: bool = True


@dataclass(frozen=True)
class ExportPlan:
    """One subject's export, as discover resolved it. Holds hashes and record keys, no values."""

    request: ExportRequest
    subject: Subject
    #: Every container of the index, by id.
    containers: Mapping[int, ContainerRow]
    #: Every finding of the subject's records, in index order: the subject's own and other people's.
    findings: Sequence[FindingRow]
    #: Field profiles per container id.
    profiles: Mapping[int, Sequence[ProfileRow]]
    #: The index's keyed hash, to check that a record read again still holds the identifier.
    hasher: IdentifierHasher
    #: Findings of records that following foreign keys reaches.
    reached: RecordFindings

    @property
    def identifiers(self) -> tuple[Identifier, ...]:
        return self.request.identifiers

    def ident(self, entity_type: str, normalised: str) -> bytes:
        return self.hasher.digest(entity_type, normalised)

    def container_ids(self, source: str) -> dict[str, int]:
        """The containers of one source: name → id."""
        return {c.name: cid for cid, c in self.containers.items() if c.source == source}

    def source_spec(self, container_id: int) -> SourceSpec | None:
        """The source of a container as the scan recorded it (``scanned_spec``)."""
        return scanned_spec(self.containers[container_id])

    def person_tables(self, source: str) -> frozenset[str]:
        """Tables whose rows carry their own e-mail or phone: each row is somebody's own record."""
        return frozenset(
            name
            for name, cid in self.container_ids(source).items()
            if any(p.entity_type in STRONG for p in self.profiles.get(cid, ()))
        )

    def free_text_fields(self, container_id: int) -> list[str]:
        return [p.field for p in self.profiles.get(container_id, ()) if p.free_text]

    def findings_in(self, records: Iterable[RecordRef]) -> list[FindingRow]:
        """Every finding of these records: the subject's records' from the plan, others' looked up (``reached``)."""
        refs = set(records)
        known = refs & self._planned_refs
        out = [f for f in self.findings if f.ref in known] if known else []
        if unknown := refs - known:
            out.extend(self.reached.findings_in(unknown))
        return out

    @functools.cached_property
    def _planned_refs(self) -> frozenset[RecordRef]:
        return frozenset(RecordRef(cid, key) for cid, keys in self.subject.records.items() for key in keys)


def scanned_spec(container: ContainerRow) -> SourceSpec | None:
    """A spec from the URL the scan recorded; None when the index kept it without its password."""
    url = container.url
    if not url or is_masked_url(url):
        return None
    return SourceSpec(name=container.source, url=url)


class _IndexFindings:
    """``RecordFindings`` from an open index."""

    def __init__(self, index: Index) -> None:
        self._index = index

    def findings_in(self, records: Iterable[RecordRef]) -> list[FindingRow]:
        return self._index.findings_in(records)


def plan_export(index: Index, request: ExportRequest, *, reached: RecordFindings | None = None) -> ExportPlan:
    """Resolve the request to one subject and read what its export needs from the index.

    Raises ``AmbiguousSubjectError`` when the identifiers are ambiguous (``discover.subjects.resolve``).
    """
    subject = resolve(index, request.identifiers, expand=request.expand)
    containers = {c.id: c for c in index.containers()}
    refs = [RecordRef(cid, key) for cid, keys in subject.records.items() for key in keys]
    profiles: dict[int, list[ProfileRow]] = {cid: [] for cid in containers}
    for p in index.profiles():
        profiles.setdefault(p.container_id, []).append(p)
    return ExportPlan(
        request=request,
        subject=subject,
        containers=containers,
        findings=tuple(index.findings_in(refs)),
        profiles={cid: tuple(rows) for cid, rows in profiles.items()},
        hasher=index.hasher,
        reached=reached if reached is not None else _IndexFindings(index),
    )


__all__ = ["ExportPlan", "ExportRequest", "RecordFindings", "plan_export", "scanned_spec"]
