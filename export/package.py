"""Write a package: ``manifest.json`` and ``data/<source>/<container>.<ext>``, as a folder or a zip.

The package is built in a temporary place and moved into place at the end, so a failed
export never leaves half a package behind, and an existing package is never replaced
unless the caller asks for it.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connectors.errors import ConfigError
from connectors.private import open_private, private_dir
from export.errors import ExportError, RequestIdError, package_exists
from export.formats import FORMATS, WRITERS, Table, write_csv
from export.naming import unique_names, windows_reserved

FORMAT_VERSION = "1"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def check_request_id(request_id: str) -> str:
    """The request id names the package, so it must be a file name on every system (exit 2 if not)."""
    if not _REQUEST_ID.match(request_id) or request_id.endswith("."):
        raise RequestIdError(
            f"request id {request_id!r} is not usable as a file name; use letters, digits, '.', '_' and '-' "
            "(at most 100 characters, not ending in '.')",
            request_id=request_id,
        )
    if windows_reserved(request_id):
        raise RequestIdError(
            f"request id {request_id!r} is a reserved file name on Windows (CON, PRN, AUX, NUL, COM1-9, LPT1-9)",
            request_id=request_id,
        )
    return request_id


@dataclass(frozen=True)
class WrittenPackage:
    path: Path
    files: list[dict[str, Any]]
    manifest: dict[str, Any]


def package_path(out: Path, request_id: str, *, as_zip: bool) -> Path:
    return out / (f"{request_id}.zip" if as_zip else request_id)


def package_sha256(path: Path) -> str:
    """The zip's SHA-256, or for a folder that of its ``manifest.json``, which holds each data file's."""
    target = path if path.is_file() else path / "manifest.json"
    sha = hashlib.sha256()
    with open(target, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            sha.update(chunk)
    return sha.hexdigest()


def _existing(out: Path, request_id: str) -> list[Path]:
    return [p for p in (out / request_id, out / f"{request_id}.zip") if p.exists()]


class _HashingWriter(io.RawIOBase):
    """Counts and hashes bytes on their way to the real file."""

    def __init__(self, target: Any) -> None:
        self.target = target
        self.sha = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self.sha.update(view)
        self.size += len(view)
        self.target.write(view)
        return len(view)


def write_package(
    tables: Sequence[Table],
    manifest: dict[str, Any],
    *,
    out: Path,
    fmt: str,
    request_id: str,
    as_zip: bool,
    overwrite: bool,
    csv_raw: bool = False,
    documents: Sequence[tuple[str, bytes]] = (),
    page: Callable[[dict[str, Any], Sequence[Table]], str] | None = None,
) -> WrittenPackage:
    """Write the data files, the documents (``processing.json``), the page and the manifest.

    Memory: one container's records at a time. CSV cells that a spreadsheet would run as a
    formula are neutralised unless ``csv_raw``. ``files`` in the manifest lists the data files
    only; ``documents`` and ``page`` carry the checksums of the others (``manifest.json``
    cannot hold its own).
    """
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}", reason="format")
    check_request_id(request_id)
    existing = _existing(out, request_id)
    if existing and not overwrite:
        raise package_exists(request_id, str(existing[0]))
    staging = _staging_folder(out, request_id)
    names = unique_names([_member_key(t, tables) for t in tables], fmt)
    final = package_path(out, request_id, as_zip=as_zip)
    try:
        files: list[dict[str, Any]] = []
        # mkdtemp makes the staging folder 0700; every file in it is created 0600.
        zip_file = open_private(staging / "package.zip") if as_zip else None
        archive = (
            zipfile.ZipFile(zip_file, "w", zipfile.ZIP_DEFLATED, allowZip64=True) if zip_file is not None else None
        )
        try:
            for table in tables:
                member = names[_member_key(table, tables)]
                files.append(_write_member(table, member, fmt, staging, archive, csv_raw=csv_raw))
            manifest = {
                **manifest,
                "files": files,
                "documents": [_write_bytes(name, body, staging, archive) for name, body in documents],
                "totals": {
                    "records": sum(f["records"] for f in files if not f.get("reference")),
                    "reference_records": sum(f["records"] for f in files if f.get("reference")),
                    "files": len(files),
                },
            }
            if page is not None:
                html = page(manifest, tables).encode("utf-8")
                manifest["page"] = {**_write_bytes(PAGE, html, staging, archive), "lang": manifest.get("lang")}
            body = (json.dumps(manifest, indent=2, ensure_ascii=False, default=str) + "\n").encode()
            if archive is not None:
                archive.writestr("manifest.json", body)
            else:
                with open_private(staging / "manifest.json") as fh:
                    fh.write(body)
        finally:
            if archive is not None:
                archive.close()
            if zip_file is not None:
                zip_file.close()  # a ZipFile leaves open a file object it was given
        for old in existing:
            shutil.rmtree(old) if old.is_dir() else old.unlink()
        if as_zip:
            os.replace(staging / "package.zip", final)
        else:
            (staging / "package.zip").unlink(missing_ok=True)
            os.replace(staging, final)
        return WrittenPackage(final, files, manifest)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


PAGE = "index.html"


def _write_bytes(name: str, body: bytes, staging: Path, archive: zipfile.ZipFile | None) -> dict[str, Any]:
    if archive is not None:
        archive.writestr(name, body)
    else:
        with open_private(staging / name) as fh:  # personal data: 0600 like the data files
            fh.write(body)
    return {"path": name, "sha256": hashlib.sha256(body).hexdigest(), "bytes": len(body)}


def _staging_folder(out: Path, request_id: str) -> Path:
    """A new 0700 folder in ``out`` to build the package in; ``out`` must be a folder we may write to."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} is a file, not a folder; give a folder for the package", setting="out")
    try:
        private_dir(out)
        return Path(tempfile.mkdtemp(prefix=f".{request_id}.", dir=out))
    except NotADirectoryError as exc:
        raise ConfigError(f"{out} is inside a file, not a folder; give a folder", setting="out") from exc
    except OSError as exc:
        raise ExportError(
            f"cannot write a package in {out} ({exc.strerror})",
            request_id=request_id,
            reason="destination",
        ) from exc


def _member_key(table: Table, tables: Sequence[Table]) -> tuple[str, str]:
    """Reference rows go in a file of their own, named after the container unless the subject has rows there too."""
    if table.role == "subject" or not any(
        t.role == "subject" and (t.source, t.container) == (table.source, table.container) for t in tables
    ):
        return (table.source, table.container)
    return (table.source, f"{table.container}.reference")


def _write_member(
    table: Table, member: str, fmt: str, staging: Path, archive: zipfile.ZipFile | None, *, csv_raw: bool
) -> dict[str, Any]:
    writer = functools.partial(write_csv, neutralise=not csv_raw) if fmt == "csv" else WRITERS[fmt]
    if archive is not None:
        with archive.open(member, "w", force_zip64=True) as raw:
            hashing = _HashingWriter(raw)
            with io.BufferedWriter(hashing) as fh:
                writer(table, fh)
    else:
        path = staging / member
        private_dir(path.parent)
        with open_private(path) as target:
            hashing = _HashingWriter(target)
            with io.BufferedWriter(hashing) as fh:
                writer(table, fh)
    entry = {
        "path": member,
        "source": table.source,
        "container": table.container,
        "records": len(table.rows),
        "sha256": hashing.sha.hexdigest(),
        "bytes": hashing.size,
        "fields": [{"name": n, "type": t} for n, t in table.fields],
    }
    if table.redactions is not None:
        entry["redactions"] = dict(sorted(table.redactions.items()))
    if table.role != "subject":
        entry["reference"] = True  # context rows that hold nobody's personal data, not the subject's records
    return entry
