"""What the index's read methods return: typed rows, one type per question asked of it.

The index stores hashes and counts only, so none of these holds a plaintext identifier;
``FindingRow.record_key`` is the record key as the source knows it (opened, if sealed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple


@dataclass(frozen=True)
class RecordRef:
    """A record the index knows: its container and key."""

    container_id: int
    record_key: str


class FindingRow(NamedTuple):
    """One finding of one record: ``discover.packing.Finding`` placed in its container and record."""

    container_id: int
    record_key: str
    field: str
    entity_type: str
    ident: bytes
    score: float
    origin: str
    span_start: int | None
    span_end: int | None

    @property
    def ref(self) -> RecordRef:
        return RecordRef(self.container_id, self.record_key)


@dataclass(frozen=True)
class ContainerRow:
    """A scanned container: what it is, where it was read, and how its last scan went."""

    id: int
    source: str
    name: str
    kind: str
    #: The source's URL, masked when it holds a password (``connectors.redact.is_masked_url``).
    url: str | None
    #: File mtime and size, or S3 ETag; None for tables.
    version: dict[str, Any] | None
    records: int | None
    skipped_records: int | None
    skipped_fields: list[Any] | None
    warnings: list[Any] | None
    error: str | None
    stale: bool
    scanned_at: str | None
    run_id: int | None
    #: The generation of its findings that readers see (direct writes, ``discover.index_direct``).
    generation: int = 0

    @property
    def unread(self) -> bool:
        """Its last scan failed, or it is kept from an earlier one: it may hold more than the index says."""
        return bool(self.error or self.stale)


@dataclass(frozen=True)
class ProfileRow:
    """A stage-1 field profile (``discover.profile.FieldProfile`` as stored)."""

    container_id: int
    field: str
    entity_type: str | None
    name_part: str | None
    free_text: bool
    sampled: int
    hit_rate: float
    null_share: float
    distinct_share: float
    reason: str | None


@dataclass(frozen=True)
class FieldHitRow:
    """Records with a hit per field and entity type: one inventory line."""

    source: str
    container: str
    stale: bool
    container_id: int
    field: str
    entity_type: str
    origin: str
    records: int
    non_null: int
    prevalence: float
    #: JSON list of masked examples, or None.
    examples: str | None


class LinkRow(NamedTuple):
    """An identifier on a record that carries another one (``Index.links``)."""

    ident: bytes
    entity_type: str
    #: ``strong`` when both identifiers are e-mail or phone, else ``weak``.
    strength: str
    container_id: int
    record_key: str


@dataclass(frozen=True)
class RunRow:
    """A scan run."""

    id: int
    started_at: str
    finished_at: str | None
    status: str
    sources: list[str]
    summary: dict[str, Any] | None
