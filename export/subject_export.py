"""Export one subject: resolve, gather, write. What ``piiport export`` and ``piiport.export_subject`` run."""

from __future__ import annotations

import functools
import json
import logging
import secrets
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from connectors.base import SourceSpec
from discover.index import Index, utcnow
from discover.subjects import REVIEW, Identifier, resolve
from export.deliver import S3Delivery, existing_package, upload
from export.errors import ExportError, package_exists
from export.formats import MATCH, Table
from export.gather import Gathered, GatherOptions, gather
from export.package import FORMAT_VERSION, check_request_id, package_sha256, write_package
from export.page import render_page
from export.page_text import LANGUAGES
from export.portability import PORTABILITY, PURPOSES, portable
from export.processing import Processing
from export.redact import Redactor

if TYPE_CHECKING:
    from discover.detector import Detector

PROCESSING_FILE = "processing.json"

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
    #: True only when every container in scope was read at scan and at export.
    complete: bool = True
    #: How many records are in the manifest's review list (a name alone, a shared IP).
    review: int = 0
    manifest: dict[str, Any] = field(default_factory=dict, repr=False)
    masked_subject: str = ""
    #: A presigned HTTPS URL of the package (zip) or its manifest, when delivered to S3.
    download_url: str | None = None
    #: Sources that contributed records but have no processing entry in the config.
    missing_processing: list[str] = field(default_factory=list)
    #: ``access`` (Art. 15) or ``portability`` (Art. 20).
    purpose: str = "access"
    #: SHA-256 of the zip, or of ``manifest.json`` for a folder (it holds every data file's sha256).
    sha256: str | None = None

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("manifest")
        d.pop("masked_subject")
        # --json keeps its documented keys; the manifest has the purpose and the missing processing entries.
        d.pop("missing_processing")
        d.pop("purpose")
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
    csv_raw: bool = False,
    processing: Processing | None = None,
    purpose: str = "access",
    lang: str = "en",
    detector: Detector | None = None,
) -> ExportResult:
    """Write the portability package of the subject the identifiers name.

    ``out`` is a local folder or ``s3://bucket/prefix`` (then ``s3`` says how to upload).

    ``rescan`` is called with the (source, container) pairs that changed since the scan;
    it scans them again, and the subject is resolved and gathered once more.

    ``purpose`` ``portability`` keeps only what ``processing`` says is processed on consent or
    contract and not inferred. With a ``detector``, other people's identifiers in free text are
    redacted before anything is written; ``None`` keeps them.
    """
    if purpose not in PURPOSES:
        raise ExportError(f"unknown purpose {purpose!r}; use one of {', '.join(PURPOSES)}", reason="purpose")
    if lang not in LANGUAGES:
        raise ExportError(f"unknown language {lang!r}; use one of {', '.join(LANGUAGES)}", reason="lang")
    processing = processing or Processing()
    rid = check_request_id(request_id or new_request_id())
    destination = str(out)
    to_s3 = destination.startswith("s3://")
    if to_s3 and not overwrite:
        found_at = existing_package(destination, rid, s3 or S3Delivery())
        if found_at:
            raise package_exists(rid, found_at)
    subject = resolve(index, identifiers, expand=expand)
    gathered = gather(index, subject, specs=specs, options=options)
    if gathered.stale and rescan is not None:
        rescan(gathered.stale)
        subject = resolve(index, identifiers, expand=expand)
        gathered = gather(index, subject, specs=specs, options=options)

    found = any(row[MATCH] != REVIEW for t in gathered.tables if t.role == "subject" for row in t.rows)
    complete = not gathered.errors
    neutralised = fmt == "csv" and not csv_raw
    tables: list[Table] = list(gathered.tables)
    left_out: list[dict[str, Any]] = []
    if purpose == PORTABILITY:
        tables, left_out = portable(tables, processing)
    if detector is not None:
        _redact(tables, detector, index, subject, gathered, identifiers, options.regions, specs)
        redacted_fields = {(t.source, t.container) for t in tables if t.redactions}
        for mention in gathered.third_party:
            if mention["origin"] == "text" and (mention["source"], mention["container"]) in redacted_fields:
                mention["redacted"] = True
    contributed = sorted({(t.source, t.container) for t in tables if t.role == "subject" and t.rows})
    missing = processing.missing(s for s, _ in contributed)
    entries = processing.for_package(contributed)
    manifest: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "request_id": rid,
        "generated_at": utcnow(),
        "generator": {"name": "piiport", "version": generator_version},
        "complete": complete,
        "subject": {
            "found": found,
            "identifiers_given": [{"type": i.entity_type, "value": i.value} for i in identifiers],
            "identifiers_linked": [{"type": i.entity_type, "value": i.value} for i in gathered.linked],
            "expanded": expand,
        },
        "purpose": purpose,
        "lang": lang,
        "format": fmt,
        "csv_neutralised": neutralised,
        "redaction": {"enabled": detector is not None},
        "processing": PROCESSING_FILE,
        "left_out": left_out,
        "errors": gathered.errors,
        "review": gathered.review,
        "shared_records": gathered.shared,
        "third_party_mentions": gathered.third_party,
        "notes": _notes(found, complete, gathered, neutralised)
        + _more_notes(missing, left_out, any(t.redactions for t in tables), purpose),
    }
    documents = [(PROCESSING_FILE, (json.dumps(entries, indent=2, ensure_ascii=False) + "\n").encode())]

    def page(written: dict[str, Any], in_package: Any) -> str:
        return render_page(written, in_package, entries, lang=lang)

    download_url = None
    write = functools.partial(
        write_package,
        tables,
        manifest,
        fmt=fmt,
        request_id=rid,
        as_zip=as_zip,
        csv_raw=csv_raw,
        documents=documents,
        page=page,
    )
    if to_s3:
        with tempfile.TemporaryDirectory(prefix="piiport-") as staging:
            written = write(out=Path(staging), overwrite=True)
            digest = package_sha256(written.path)
            delivered = upload(written.path, destination, s3 or S3Delivery())
        package, download_url = delivered.url, delivered.download_url
    else:
        written = write(out=Path(out), overwrite=overwrite)
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
        complete=complete,
        review=len(gathered.review),
        manifest=written.manifest,
        masked_subject=masked,
        download_url=download_url,
        missing_processing=missing,
        purpose=purpose,
        sha256=digest,
    )


def _redact(
    tables: list[Table],
    detector: Detector,
    index: Index,
    subject: Any,
    gathered: Gathered,
    identifiers: Sequence[Identifier],
    regions: Sequence[str],
    specs: Mapping[str, SourceSpec],
) -> None:
    """Other people's identifiers out of the subject's free text, before anything is written."""
    from discover.identifiers import PERSON

    own_names = [i.value for i in [*identifiers, *gathered.linked] if i.entity_type == PERSON]
    redactor = Redactor.for_subject(detector, index, regions, subject.idents, own_names)
    ids = {(c["source"], c["name"]): c["id"] for c in index.containers()}
    for t in tables:
        if t.role != "subject":
            continue
        cid = ids.get((t.source, t.container))
        free = [p["field"] for p in index.profiles(cid) if p["free_text"]] if cid is not None else []
        spec = specs.get(t.source)
        redactor.redact(t, free, spec.language if spec else None)


def _more_notes(missing: list[str], left_out: list[dict[str, Any]], redacted: bool, purpose: str) -> list[str]:
    notes = []
    if missing:
        notes.append(
            "No processing information is configured for these sources, which contributed records: "
            + ", ".join(missing)
            + ". Add an entry for each to the config's processing list (purposes, legal basis, recipients, "
            "retention) before answering: GDPR Art. 15(1) requires it."
        )
    if purpose == PORTABILITY and left_out:
        notes.append(
            "This is a portability package (GDPR Art. 20): containers processed on another legal basis than "
            "consent or contract, and inferred or derived data, are left out (listed in left_out)."
        )
    if redacted:
        notes.append(
            "Other people's names, e-mail addresses, phone numbers and IP addresses in free text are replaced by "
            "[PERSON], [EMAIL_ADDRESS], [PHONE_NUMBER] and [IP_ADDRESS] (counted per file in redactions); "
            "the subject's own stay."
        )
    return notes


def _notes(found: bool, complete: bool, gathered: Gathered, neutralised: bool) -> list[str]:
    notes = []
    if not complete:
        notes.append(
            "This answer is incomplete: the containers listed in errors could not be read, at the last scan or "
            "now, and may hold records of this subject. Fix them and export again before answering the request."
        )
    elif not found and not gathered.review:
        notes.append("No record holds the given identifiers. This empty package is the answer to the request.")
    if gathered.review:
        notes.append(
            "Some records match the subject only by a name or by an IP address other people's records hold too "
            "(listed in review); they are not in the package unless exported with --include-review. Decide "
            "whether they are the subject's before answering."
        )
    if gathered.shared:
        notes.append(
            "Some exported rows are shared with other people (listed in shared_records, marked shared), such as "
            "a household address; they are the subject's personal data too (GDPR Art. 15(4))."
        )
    if any(not m.get("redacted") for m in gathered.third_party):
        notes.append(
            "Some exported records hold identifiers of other people (listed in third_party_mentions); "
            "review them before handing the package over (GDPR Art. 15(4), Art. 20(4))."
        )
    if neutralised:
        notes.append(
            "CSV cells that begin with =, +, -, @, a tab or a carriage return start with an added ' so that "
            "spreadsheet programs show them as text instead of running them as formulas (phone numbers such as "
            "'+33… too); the json and parquet formats keep the exact values."
        )
    return notes
