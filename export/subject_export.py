"""Export one subject: resolve, gather, write. What ``piiport export`` and ``piiport.export_subject`` run."""

from __future__ import annotations

import logging
import secrets
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from connectors.base import SourceSpec
from connectors.errors import ExportError
from discover.index import Index
from discover.subjects import Identifier, resolve
from export.deliver import S3Delivery, existing_package, upload
from export.gather import GatherOptions, gather
from export.package import FORMAT_VERSION, check_request_id, package_sha256, write_package

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
    #: A presigned HTTPS URL of the package (zip) or its manifest, when delivered to S3.
    download_url: str | None = None
    #: SHA-256 of the zip, or of ``manifest.json`` for a folder (it holds every data file's sha256).
    sha256: str | None = None

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("manifest")
        d.pop("masked_subject")
        d.pop("sha256")
        if self.download_url is None:
            d.pop("download_url")
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
    out: Path | str = Path("exports"),
    as_zip: bool = False,
    request_id: str | None = None,
    overwrite: bool = False,
    expand: bool = True,
    rescan: Callable[[list[tuple[str, str]]], None] | None = None,
    generator_version: str = "0",
    s3: S3Delivery | None = None,
) -> ExportResult:
    """Write the portability package of the subject the identifiers name.

    ``out`` is a local folder or ``s3://bucket/prefix`` (then ``s3`` says how to upload).

    ``rescan`` is called with the (source, container) pairs that changed since the scan;
    it scans them again, and the subject is resolved and gathered once more.
    """
    rid = check_request_id(request_id or new_request_id())
    destination = str(out)
    to_s3 = destination.startswith("s3://")
    if to_s3 and not overwrite:
        found_at = existing_package(destination, rid, s3 or S3Delivery())
        if found_at:
            raise ExportError(
                f"a package for request id {rid} already exists at {found_at}; pass --overwrite to replace it, "
                "or use another --request-id",
                request_id=rid,
                reason="exists",
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
    download_url = None
    if to_s3:
        with tempfile.TemporaryDirectory(prefix="piiport-") as staging:
            written = write_package(
                gathered.tables, manifest, out=Path(staging), fmt=fmt, request_id=rid, as_zip=as_zip, overwrite=True
            )
            digest = package_sha256(written.path)
            delivered = upload(written.path, destination, s3 or S3Delivery())
        package, download_url = delivered.url, delivered.download_url
    else:
        written = write_package(
            gathered.tables, manifest, out=Path(out), fmt=fmt, request_id=rid, as_zip=as_zip, overwrite=overwrite
        )
        package = str(written.path)
        digest = package_sha256(written.path)
    masked = ", ".join(i.masked for i in identifiers)
    logger.info("exported subject %s as %s", masked, rid)
    return ExportResult(
        request_id=rid,
        found=found,
        package=package,
        files=len(written.files),
        records=written.manifest["totals"]["records"],
        errors=list(gathered.errors),
        manifest=written.manifest,
        masked_subject=masked,
        download_url=download_url,
        sha256=digest,
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
