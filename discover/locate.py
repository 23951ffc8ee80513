"""Where a subject's data lives: per source, container and field, without values.

The step before rectification, erasure or restriction: the same resolution and ambiguity
rules as an export (``discover.subjects.resolve``), but nothing is read from the sources.
Records an export would reach only through foreign keys (a customer's orders) are not listed:
they hold none of the subject's identifiers.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from discover.index import Index
from discover.rows import RecordRef
from discover.subjects import Identifier, resolve


@dataclass(frozen=True)
class Location:
    """One field of one container that holds the subject's identifiers."""

    source: str
    container: str
    field: str
    #: Entity types found there (EMAIL_ADDRESS, PERSON…).
    entity_types: list[str]
    #: Records of the subject with an identifier in this field.
    records: int
    #: How those records match: strong, weak, mention, referenced, review (see the README's export section).
    matches: list[str]
    #: When the container was last scanned (ISO-8601, UTC), and whether that scan failed.
    scanned_at: str | None
    stale: bool = False


@dataclass
class LocateResult:
    subject: str  # the identifiers given, masked
    found: bool
    locations: list[Location] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"subject": self.subject, "found": self.found, "locations": [asdict(x) for x in self.locations]}


def locate(index: Index, identifiers: Sequence[Identifier], *, expand: bool = True) -> LocateResult:
    """Resolve the subject (``AmbiguousSubjectError`` when ambiguous) and list where its identifiers are."""
    subject = resolve(index, identifiers, expand=expand)
    containers = {c.id: c for c in index.containers()}
    refs = [RecordRef(cid, key) for cid, keys in subject.records.items() for key in keys]
    groups: dict[tuple[int, str], dict[str, set[Any]]] = defaultdict(lambda: defaultdict(set))
    for f in index.findings_in(refs):
        if f.ident not in subject.idents:
            continue
        cid, key = f.container_id, f.record_key
        g = groups[(cid, f.field)]
        g["types"].add(f.entity_type)
        g["records"].add(key)
        g["matches"].add(subject.records[cid][key])
    locations = []
    for (cid, fname), g in groups.items():
        c = containers.get(cid)
        if c is None:
            continue
        locations.append(
            Location(
                source=c.source,
                container=c.name,
                field=fname,
                entity_types=sorted(g["types"]),
                records=len(g["records"]),
                matches=sorted(g["matches"]),
                scanned_at=c.scanned_at,
                stale=c.unread,
            )
        )
    locations.sort(key=lambda x: (x.source, x.container, x.field))
    masked = ", ".join(i.masked for i in identifiers)
    return LocateResult(subject=masked, found=bool(locations), locations=locations)
