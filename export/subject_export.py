"""Export one subject: resolve, gather, write. What ``piiport export`` and ``piiport.export_subject`` run."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from connectors.base import SourceSpec
from connectors.errors import ExportError
from discover.index import Index
from discover.subjects import Identifier, resolve
from export.gather import GatherOptions, gather
from export.package import FORMAT_VERSION, check_request_id, write_package

logger = logging.getLogger(__name__)


@dataclass
class ExportResult:
    """What an export produced. ``as_dict()`` is what ``--json`` prints."""

    request_id: str
    found: bool
    package: str
    files: int
    records: int
    errors: list[str] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict, repr=False)
    masked_subject: str = ""

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("manifest")
        d.pop("masked_subject")
        return d


def new_request_id() -> str:
    return f"req-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def export_subject(
    identifiers: Sequence[Identifier],
    *,
    index: Index,
    specs: Mapping[str, SourceSpec],
    options: GatherOptions,
    fmt: str = "json",
    out: Path = Path("exports"),
    as_zip: bool = False,
    request_id: str | None = None,
    overwrite: bool = False,
    expand: bool = True,
    rescan: Callable[[list[tuple[str, str]]], None] | None = None,
    generator_version: str = "0",
) -> ExportResult:
    """Write the portability package of the subject the identifiers name.

    ``rescan`` is called with the (source, container) pairs that changed since the scan;
    it scans them again, and the subject is resolved and gathered once more.
    """
    rid = check_request_id(request_id or new_request_id())
    if str(out).startswith("s3://"):
        raise ExportError(
            "S3 destinations are not supported yet; write to a local --out DIR", request_id=rid, reason="destination"
        )
    subject = resolve(index, identifiers, expand=expand)
    gathered = gather(index, subject, specs=specs, options=options)
    if gathered.stale and rescan is not None:
        rescan(gathered.stale)
        subject = resolve(index, identifiers, expand=expand)
        gathered = gather(index, subject, specs=specs, options=options)

    found = bool(gathered.tables)
    manifest: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "request_id": rid,
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "generator": {"name": "piiport", "version": generator_version},
        "subject": {
            "found": found,
            "identifiers_given": [{"type": i.entity_type, "value": i.value} for i in identifiers],
            "identifiers_linked": [{"type": i.entity_type, "value": i.value} for i in gathered.linked],
            "expanded": expand,
        },
        "format": fmt,
        "errors": gathered.errors,
        "third_party_mentions": gathered.third_party,
        "notes": _notes(found, gathered.third_party),
    }
    written = write_package(
        gathered.tables, manifest, out=out, fmt=fmt, request_id=rid, as_zip=as_zip, overwrite=overwrite
    )
    masked = ", ".join(i.masked for i in identifiers)
    logger.info("exported subject %s as %s", masked, rid)
    return ExportResult(
        request_id=rid,
        found=found,
        package=str(written.path),
        files=len(written.files),
        records=written.manifest["totals"]["records"],
        errors=list(gathered.errors),
        manifest=written.manifest,
        masked_subject=masked,
    )


def _notes(found: bool, third_party: Sequence[dict[str, Any]]) -> list[str]:
    notes = []
    if not found:
        notes.append("No record holds the given identifiers. This empty package is the answer to the request.")
    if third_party:
        notes.append(
            "Some exported records hold identifiers of other people (listed in third_party_mentions); "
            "review them before handing the package over (GDPR Art. 15(4), Art. 20(4))."
        )
    return notes
