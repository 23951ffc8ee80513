"""Configuration: command line, then environment, then file, then defaults.

A bad config file is an error naming the file and the setting, never a silent fallback.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from connectors.base import SourceSpec, connector_class, url_scheme
from connectors.errors import ConfigError, SourceError
from connectors.options import S3Options, SourceOptions, coerce, option_names, parse_options
from discover.index import DEFAULT_INDEX
from discover.retention import MaxAge, RetentionRule
from discover.settings import DEFAULT_MODELS, DEFAULT_REGIONS, DetectionSettings, ScanSettings, default_workers
from export.page_text import LANGUAGES
from export.processing import LEGAL_BASES, SUBJECT_ORIGIN, THIRD_PARTY, Processing, ProcessingEntry
from export.processing import SETTINGS as PROCESSING_SETTINGS

ENV_INDEX = "PIIPORT_INDEX"
ENV_CONFIG = "PIIPORT_CONFIG"
ENV_WORKERS = "PIIPORT_WORKERS"

_TOP_KEYS = {
    "index",
    "workers",
    "executor",
    "scheduler",
    "batch_size",
    "sample_size",
    "incremental",
    "direct_writes",
    "detection",
    "sources",
    "export",
    "s3",
    "processing",
    "service",
    "retention",
}
_RETENTION_KEYS = {"source", "container", "date_column", "mtime", "max_age", "basis"}
_DETECTION_KEYS = {"language", "entities", "phone_regions", "score_threshold", "models"}
#: Keys of every source; the rest are the fields of its connector's options class (``SqlOptions`` …).
_SOURCE_KEYS = {"name", "url", "path", "include", "exclude", "language"}
_S3_KEYS = {"region", "endpoint_url", "profile", "sse", "kms_key_id", "url_expiry", "multipart_threshold_mb"}
_EXPORT_KEYS = {
    "out",
    "format",
    "max_depth",
    "include_tables",
    "exclude_tables",
    "force_relations",
    "ignore_relations",
    "references",
    "reference_depth",
    "lang",
    "redact",
    "package_ttl",
}
_PROCESSING_KEYS = {"source", "container", "fields", *PROCESSING_SETTINGS}
_SERVICE_KEYS = {"callback_hosts", "callback_secret", "callback_retries", "callback_backoff"}
ENV_CALLBACK_SECRET = "PIIPORT_CALLBACK_SECRET"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class ExportSettings:
    """Defaults for ``piiport export``; the command line overrides them."""

    out: str = "exports"
    format: str = "json"
    max_depth: int = 3
    include_tables: tuple[str, ...] = ()
    exclude_tables: tuple[str, ...] = ()
    #: ``"orders.customer_id -> customers.id"`` pairs to follow even where no FK is declared.
    force_relations: tuple[str, ...] = ()
    #: Declared FKs not to follow, written the same way.
    ignore_relations: tuple[str, ...] = ()
    #: Catalogue rows the subject's rows point at (film, country), exported as context.
    references: bool = True
    #: How many foreign-key hops from the subject's rows reference rows are followed.
    reference_depth: int = 2
    #: Language of the package's index.html (en, fr).
    lang: str = "en"
    #: Replace other people's identifiers in exported free text (``--no-redact`` turns it off).
    redact: bool = True
    #: Seconds a package of ``piiport serve`` is kept before the server deletes it (30 days).
    package_ttl: float = 30 * 86400


@dataclass(frozen=True)
class ServiceSettings:
    """``piiport serve``: where callbacks may go and how they are signed and retried."""

    #: Host names (or ``*.example.com``) a callback_url may name; none: callbacks are refused.
    callback_hosts: tuple[str, ...] = ()
    #: HMAC-SHA256 key of the callback signature (or the environment's PIIPORT_CALLBACK_SECRET).
    callback_secret: str | None = field(default=None, repr=False)
    callback_retries: int = 5
    #: Seconds before the first retry; each next one waits twice as long.
    callback_backoff: float = 2.0


@dataclass(frozen=True)
class S3Settings:
    """Object-store settings: connection (also the default for S3 sources) and package delivery."""

    region: str | None = None
    endpoint_url: str | None = None
    profile: str | None = None
    sse: str = "AES256"
    kms_key_id: str | None = None
    url_expiry: int = 7 * 24 * 3600
    multipart_threshold_mb: int = 8

    def client_options(self) -> dict[str, str]:
        pairs = {"region": self.region, "endpoint_url": self.endpoint_url, "profile": self.profile}
        return {k: v for k, v in pairs.items() if v}


@dataclass(frozen=True)
class Config:
    #: Out of the repr: a PostgreSQL index URL may hold a password.
    index: str = field(default=DEFAULT_INDEX, repr=False)
    sources: tuple[SourceSpec, ...] = ()
    detection: DetectionSettings = field(default_factory=DetectionSettings)
    scan: ScanSettings = field(default_factory=ScanSettings)
    export: ExportSettings = field(default_factory=ExportSettings)
    s3: S3Settings = field(default_factory=S3Settings)
    processing: Processing = field(default_factory=Processing)
    service: ServiceSettings = field(default_factory=ServiceSettings)
    retention: tuple[RetentionRule, ...] = ()
    path: Path | None = None


def _fail(path: Path, message: str, setting: str | None = None) -> ConfigError:
    return ConfigError(f"config {path}: {message}", setting=setting, path=str(path))


def _check_keys(path: Path, where: str, data: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise _fail(path, f"unknown setting {where}{unknown[0]!r}; allowed: {', '.join(sorted(allowed))}", unknown[0])


def _str_list(path: Path, name: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, (str, int)) for v in value):
        raise _fail(path, f"{name} must be a list of strings", name)
    return tuple(str(v) for v in value)


def _resolve_url(url: str, base: Path) -> str:
    """Relative paths in a config file are relative to the file, not to the working directory."""
    scheme = url_scheme(url)
    if scheme == "file":
        p = Path(url).expanduser()
        return str(p if p.is_absolute() else (base / p))
    if scheme == "sqlite" and url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        rest = url[len("sqlite:///") :]
        if rest and not rest.startswith(":memory:"):
            return "sqlite:///" + str(base / rest)
    return url


def source_name(url: str) -> str:
    """A readable default name for a source given on the command line."""
    scheme = url_scheme(url)
    if scheme == "file":
        stem = Path(url.rstrip("/")).name or "files"
    elif scheme == "sqlite":
        stem = Path(url.split("?", 1)[0].rsplit("/", 1)[-1]).stem or "sqlite"
    elif scheme == "s3":
        stem = url[len("s3://") :].strip("/").replace("/", "_") or "s3"
    else:
        tail = url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
        stem = tail if tail and "@" not in tail and ":" not in tail else scheme
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", stem) or "source"


def specs_from_urls(
    urls: Sequence[str], *, language: str = "en", s3_options: Mapping[str, Any] | None = None
) -> tuple[SourceSpec, ...]:
    """Sources given on the command line, named after their file or database."""
    out: list[SourceSpec] = []
    used: set[str] = set()
    for url in urls:
        name = base = source_name(url)
        n = 2
        while name in used:
            name, n = f"{base}-{n}", n + 1
        used.add(name)
        # Absolute, so that an export run from another folder finds the source again.
        options = S3Options(**(s3_options or {})) if url.startswith("s3://") else SourceOptions()
        out.append(SourceSpec(name=name, url=_resolve_url(url, Path.cwd()), language=language, options=options))
    return tuple(out)


def _parse_sources(path: Path, raw: Any, language: str) -> tuple[SourceSpec, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise _fail(path, "sources must be a list of {name, url} entries", "sources")
    out: list[SourceSpec] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise _fail(path, f"sources[{i}] must be a mapping with name and url", "sources")
        url = item.get("url") or item.get("path")
        if not url or not isinstance(url, str):
            raise _fail(path, f"sources[{i}] needs a url (or path)", "sources")
        kind = _options_type(url)
        _check_keys(path, f"in sources[{i}]: ", item, _SOURCE_KEYS | set(option_names(kind)))
        name = str(item.get("name") or source_name(url))
        if name in seen:
            raise _fail(path, f"two sources are named {name!r}; give each a unique name", "sources")
        seen.add(name)
        try:
            options = parse_options(kind, {k: v for k, v in item.items() if k not in _SOURCE_KEYS}, f"sources[{i}].")
        except ConfigError as exc:
            raise _fail(path, exc.message, exc.setting) from exc
        out.append(
            SourceSpec(
                name=name,
                url=_resolve_url(url, path.parent),
                include=_str_list(path, "include", item.get("include")),
                exclude=_str_list(path, "exclude", item.get("exclude")),
                language=str(item.get("language") or language),
                options=options,
            )
        )
    return tuple(out)


def _options_type(url: str) -> type[SourceOptions]:
    """The options class of the connector serving ``url``; the common options for a scheme no
    connector serves (the scan says so, naming the known schemes)."""
    try:
        return connector_class(url).options_type
    except SourceError:
        return SourceOptions


def _with_s3_defaults(spec: SourceSpec, s3: S3Settings) -> SourceSpec:
    """An S3 source's connection options, the ``s3`` section's where the source gives none."""
    own = coerce(S3Options, spec.options, spec.name)
    return replace(
        spec,
        options=replace(
            own,
            region=own.region or s3.region,
            endpoint_url=own.endpoint_url or s3.endpoint_url,
            profile=own.profile or s3.profile,
        ),
    )


def _read_file(path: Path) -> dict[str, Any]:
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} not found; check the path", path=str(path)) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} cannot be read ({exc})", path=str(path)) from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"config {path}: not valid YAML{where}; fix the syntax", path=str(path)) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise _fail(path, "the top level must be a mapping of settings")
    return data


def _number(path: Path, data: Mapping[str, Any], key: str, kind: type, default: Any) -> Any:
    if key not in data:
        return default
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int):
        raise _fail(path, f"{key} must be a {'number' if kind is float else 'whole number'}", key)
    return kind(value)


def _flag(path: Path, data: Mapping[str, Any], key: str, default: bool) -> bool:
    if key not in data:
        return default
    if not isinstance(data[key], bool):
        raise _fail(path, f"{key} must be true or false", key)
    return bool(data[key])


# The allowed range of each bounded number setting: (low, high, whether low itself is allowed).
# Zero is refused for all of them: zero retries, delay or timeout, a zero-megabyte upload part
# or a zero depth are typos, and a negative max_depth silently dropped every related row.
# A source's options are checked by their dataclass (connectors.options).
_RANGES: dict[str, tuple[float, float, bool]] = {
    "multipart_threshold_mb": (5, 5120, True),  # S3 upload parts are 5 MiB to 5 GiB
    "max_depth": (1, 100, True),
}


def _bounded(path: Path, data: Mapping[str, Any], key: str, kind: type, default: Any, where: str = "") -> Any:
    """A number setting within its range (``_RANGES``); out of range is a ConfigError naming it."""
    value = _number(path, data, key, kind, default)
    if key not in data:
        return value
    low, high, low_ok = _RANGES[key]
    if (value < low if low_ok else value <= low) or value > high:
        what = "a whole number" if kind is int else "a number of seconds"
        bounds = f"from {low} to {high}" if low_ok else f"greater than {low} and at most {high}"
        raise _fail(path, f"{where}{key} is {value}; it must be {what} {bounds}", key)
    return value


def _detection(path: Path, raw: Any) -> DetectionSettings:
    if raw is None:
        return DetectionSettings()
    if not isinstance(raw, dict):
        raise _fail(path, "detection must be a mapping", "detection")
    _check_keys(path, "in detection: ", raw, _DETECTION_KEYS)
    models = dict(DEFAULT_MODELS)
    if raw.get("models") is not None:
        if not isinstance(raw["models"], dict):
            raise _fail(path, "detection.models must map a language code to a spaCy model name", "models")
        models.update({str(k): str(v) for k, v in raw["models"].items()})
    try:
        return DetectionSettings(
            entities=_str_list(path, "entities", raw.get("entities")) or DetectionSettings().entities,
            phone_regions=_str_list(path, "phone_regions", raw.get("phone_regions")) or DEFAULT_REGIONS,
            score_threshold=_number(path, raw, "score_threshold", float, 0.35),
            models=models,
            language=str(raw.get("language", "en")),
        )
    except ConfigError as exc:
        raise _fail(path, exc.message, exc.setting) from exc


def _export(path: Path, raw: Any) -> ExportSettings:
    if raw is None:
        return ExportSettings()
    if not isinstance(raw, dict):
        raise _fail(path, "export must be a mapping", "export")
    _check_keys(path, "in export: ", raw, _EXPORT_KEYS)
    fmt = str(raw.get("format", "json"))
    if fmt not in {"json", "csv", "parquet"}:
        raise _fail(path, f"export.format {fmt!r} is not one of json, csv, parquet", "format")
    out = raw.get("out", "exports")
    if not isinstance(out, str) or not out:
        raise _fail(path, "export.out must be a folder or s3://bucket/prefix", "out")
    if "out" in raw and not out.startswith("s3://"):
        folder = Path(out).expanduser()
        out = str(folder if folder.is_absolute() else path.parent / folder)  # relative to the config file
    references = raw.get("references", True)
    if not isinstance(references, bool):
        raise _fail(path, "export.references must be true or false", "references")
    reference_depth = _number(path, raw, "reference_depth", int, 2)
    if reference_depth < 0:
        raise _fail(path, "export.reference_depth must be 0 or more", "reference_depth")
    lang = str(raw.get("lang", "en"))
    if lang not in LANGUAGES:
        raise _fail(path, f"export.lang {lang!r} is not one of {', '.join(LANGUAGES)}", "lang")
    redact = raw.get("redact", True)
    if not isinstance(redact, bool):
        raise _fail(path, "export.redact must be true or false", "redact")
    return ExportSettings(
        out=out,
        format=fmt,
        max_depth=_bounded(path, raw, "max_depth", int, 3, where="export."),
        include_tables=_str_list(path, "include_tables", raw.get("include_tables")),
        exclude_tables=_str_list(path, "exclude_tables", raw.get("exclude_tables")),
        force_relations=_str_list(path, "force_relations", raw.get("force_relations")),
        ignore_relations=_str_list(path, "ignore_relations", raw.get("ignore_relations")),
        references=references,
        reference_depth=reference_depth,
        lang=lang,
        redact=redact,
        package_ttl=_duration(path, raw, "package_ttl", ExportSettings.package_ttl),
    )


def _duration(path: Path, data: Mapping[str, Any], key: str, default: float) -> float:
    """A duration: a number of days, or a string with a unit (``90s``, ``12h``, ``30d``)."""
    if key not in data:
        return default
    value = data[key]
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd])\s*", value) if isinstance(value, str) else None
    if match:
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value) * 86400
    else:
        raise _fail(path, f"{key} must be a number of days or a duration such as 12h or 30d", key)
    if seconds <= 0:
        raise _fail(path, f"{key} must be more than zero", key)
    return seconds


def _service(path: Path, raw: Any) -> ServiceSettings:
    secret = os.environ.get(ENV_CALLBACK_SECRET)
    if raw is None:
        return ServiceSettings(callback_secret=secret)
    if not isinstance(raw, dict):
        raise _fail(path, "service must be a mapping", "service")
    _check_keys(path, "in service: ", raw, _SERVICE_KEYS)
    if raw.get("callback_secret") is not None and not isinstance(raw["callback_secret"], str):
        raise _fail(path, "service.callback_secret must be a string", "callback_secret")
    retries = _number(path, raw, "callback_retries", int, 5)
    backoff = _number(path, raw, "callback_backoff", float, 2.0)
    if retries < 1 or backoff < 0:
        raise _fail(
            path, "service.callback_retries must be 1 or more and callback_backoff 0 or more", "callback_retries"
        )
    return ServiceSettings(
        callback_hosts=tuple(h.lower() for h in _str_list(path, "callback_hosts", raw.get("callback_hosts"))),
        callback_secret=secret or raw.get("callback_secret"),
        callback_retries=retries,
        callback_backoff=backoff,
    )


def _origin(path: Path, where: str, value: Any) -> str | None:
    """``subject``, ``"third_party: Acme"`` or ``{third_party: Acme}``."""
    if value is None:
        return None
    if isinstance(value, dict) and set(value) == {THIRD_PARTY} and str(value[THIRD_PARTY]).strip():
        return f"{THIRD_PARTY}: {str(value[THIRD_PARTY]).strip()}"
    if isinstance(value, str):
        head, _, name = value.partition(":")
        if value == SUBJECT_ORIGIN or (head.strip() == THIRD_PARTY and name.strip()):
            return value if value == SUBJECT_ORIGIN else f"{THIRD_PARTY}: {name.strip()}"
    raise _fail(path, f"{where}.origin must be subject or 'third_party: <name>'", "origin")


def _processing(path: Path, raw: Any) -> Processing:
    if raw is None:
        return Processing()
    if not isinstance(raw, list):
        raise _fail(path, "processing must be a list of entries with source, purposes and legal_basis", "processing")
    entries: list[ProcessingEntry] = []
    seen: set[tuple[str, str | None]] = set()
    for i, item in enumerate(raw):
        where = f"processing[{i}]"
        if not isinstance(item, dict):
            raise _fail(path, f"{where} must be a mapping with source, purposes and legal_basis", "processing")
        _check_keys(path, f"in {where}: ", item, _PROCESSING_KEYS)
        source = item.get("source")
        if not isinstance(source, str) or not source:
            raise _fail(path, f"{where} needs a source (the name of a source)", "source")
        container = item.get("container")
        if container is not None and not isinstance(container, str):
            raise _fail(path, f"{where}.container must be a container name or glob", "container")
        if (source, container) in seen:
            raise _fail(path, f"{where} repeats the entry for {source}{'/' + container if container else ''}")
        seen.add((source, container))
        basis = item.get("legal_basis")
        if basis is not None and basis not in LEGAL_BASES:
            raise _fail(path, f"{where}.legal_basis {basis!r} is not one of {', '.join(LEGAL_BASES)}", "legal_basis")
        if container is None and (basis is None or not item.get("purposes")):
            raise _fail(path, f"{where} ({source}) needs purposes and a legal_basis", "legal_basis")
        for key in ("automated_decisions", "portability"):
            if key in item and not isinstance(item[key], bool):
                raise _fail(path, f"{where}.{key} must be true or false", key)
        retention = item.get("retention")
        if retention is not None and not isinstance(retention, (str, int)):
            raise _fail(path, f'{where}.retention must be text ("3 years after the contract ends")', "retention")
        fields = item.get("fields") or {}
        if container is None and fields:
            raise _fail(path, f"{where}.fields needs a container: fields belong to one container", "fields")
        if not isinstance(fields, dict) or not all(
            isinstance(v, dict) and set(v) == {"portability"} and isinstance(v["portability"], bool)
            for v in fields.values()
        ):
            raise _fail(path, f"{where}.fields must map a field name to {{portability: false}}", "fields")

        def strings(key: str, item: dict[str, Any] = item, where: str = where) -> tuple[str, ...] | None:
            return _str_list(path, f"{where}.{key}", item[key]) if key in item else None

        entries.append(
            ProcessingEntry(
                source=source,
                container=container,
                purposes=strings("purposes"),
                legal_basis=basis,
                categories=strings("categories"),
                recipients=strings("recipients"),
                retention=None if retention is None else str(retention),
                origin=_origin(path, where, item.get("origin")),
                automated_decisions=item.get("automated_decisions"),
                portability=item.get("portability"),
                not_portable_fields=tuple(sorted(str(k) for k, v in fields.items() if not v["portability"])),
            )
        )
    for i, e in enumerate(entries):
        if e.container is not None and (e.source, None) not in seen and (e.legal_basis is None or not e.purposes):
            raise _fail(
                path,
                f"processing[{i}] ({e.source}/{e.container}) needs purposes and a legal_basis, "
                f"or an entry for the whole source {e.source}",
                "legal_basis",
            )
    return Processing(tuple(entries))


def _s3(path: Path, raw: Any) -> S3Settings:
    if raw is None:
        return S3Settings()
    if not isinstance(raw, dict):
        raise _fail(path, "s3 must be a mapping", "s3")
    _check_keys(path, "in s3: ", raw, _S3_KEYS)
    sse = str(raw.get("sse", "AES256"))
    if sse not in {"AES256", "aws:kms"}:
        raise _fail(path, f"s3.sse {sse!r} is not AES256 (SSE-S3) or aws:kms (SSE-KMS)", "sse")
    expiry = _number(path, raw, "url_expiry", int, 7 * 24 * 3600)
    if not 1 <= expiry <= 7 * 24 * 3600:
        raise _fail(path, "s3.url_expiry must be between 1 and 604800 seconds (7 days)", "url_expiry")
    return S3Settings(
        region=raw.get("region"),
        endpoint_url=raw.get("endpoint_url"),
        profile=raw.get("profile"),
        sse=sse,
        kms_key_id=raw.get("kms_key_id"),
        url_expiry=expiry,
        multipart_threshold_mb=_bounded(path, raw, "multipart_threshold_mb", int, 8, where="s3."),
    )


def _text(path: Path, data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise _fail(path, f"{key} must be a string", key)
    return value


def _retention(path: Path, raw: Any, sources: Sequence[SourceSpec]) -> tuple[RetentionRule, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise _fail(path, "retention must be a list of rules {source, container, date_column or mtime, max_age}")
    by_name = {s.name: s for s in sources}
    out = []
    for i, item in enumerate(raw):
        where = f"retention[{i}]"
        if not isinstance(item, dict):
            raise _fail(path, f"{where} must be a mapping with source, container, date_column and max_age", "retention")
        _check_keys(path, f"in {where}: ", item, _RETENTION_KEYS)
        for key in ("source", "container", "max_age"):
            if not isinstance(item.get(key), (str, int)) or isinstance(item.get(key), bool) or item.get(key) == "":
                raise _fail(path, f"{where} needs {key}", key)
        source = str(item["source"])
        if source not in by_name:
            known = ", ".join(sorted(by_name)) or "none: add a sources list"
            raise _fail(path, f"{where}: no source is named {source!r}; sources: {known}", "source")
        mtime = item.get("mtime", False)
        if not isinstance(mtime, bool):
            raise _fail(path, f"{where}.mtime must be true or false", "mtime")
        column = item.get("date_column")
        if column is not None and (not isinstance(column, str) or not column):
            raise _fail(path, f"{where}.date_column must be a column name", "date_column")
        if bool(column) == mtime:
            raise _fail(
                path, f"{where} needs either date_column (a table) or mtime: true (files), not both", "retention"
            )
        is_files = url_scheme(by_name[source].url) in ("file", "s3")
        if mtime and url_scheme(by_name[source].url) != "file":
            raise _fail(path, f"{where}: mtime: true needs a local file source; {source!r} is not one", "mtime")
        if column and is_files:
            raise _fail(
                path, f"{where}: source {source!r} holds files; use mtime: true instead of date_column", "date_column"
            )
        try:
            max_age = MaxAge.parse(str(item["max_age"]))
        except ConfigError as exc:
            raise _fail(path, f"{where}: {exc.message}", "max_age") from exc
        basis = item.get("basis", "")
        if not isinstance(basis, str):
            raise _fail(path, f"{where}.basis must be text", "basis")
        out.append(
            RetentionRule(
                source=source,
                container=str(item["container"]),
                max_age=max_age,
                date_column=column,
                mtime=mtime,
                basis=basis,
            )
        )
    return tuple(out)


def load_config(
    path: str | Path | None = None,
    *,
    index: str | None = None,
    workers: int | None = None,
    language: str | None = None,
    full: bool | None = None,
    executor: str | None = None,
    scheduler: str | None = None,
) -> Config:
    """Build the configuration. Arguments are command-line values and win over everything."""
    env = os.environ
    config_path = path or env.get(ENV_CONFIG)
    data: dict[str, Any] = {}
    file_path: Path | None = None
    if config_path:
        file_path = Path(config_path).expanduser()
        data = _read_file(file_path)
        _check_keys(file_path, "", data, _TOP_KEYS)
    where = file_path or Path("<defaults>")

    detection = _detection(where, data.get("detection"))
    if language:
        try:
            detection = replace(detection, language=language)
        except ConfigError as exc:
            raise ConfigError(exc.message, setting="language") from exc

    file_index = data.get("index")
    if file_index is not None and not isinstance(file_index, str):
        raise _fail(where, "index must be a SQLAlchemy URL string", "index")
    if file_index and file_path is not None:
        file_index = _resolve_url(file_index, file_path.parent)
    chosen_index = index or env.get(ENV_INDEX) or file_index or DEFAULT_INDEX

    if workers is None and env.get(ENV_WORKERS):
        try:
            workers = int(env[ENV_WORKERS])
        except ValueError as exc:
            raise ConfigError(f"{ENV_WORKERS} must be a whole number", setting=ENV_WORKERS) from exc
    chosen_workers = workers if workers is not None else _number(where, data, "workers", int, default_workers())
    if chosen_workers < 1:
        raise ConfigError("workers must be at least 1", setting="workers")

    try:
        scan_settings = ScanSettings(
            sample_size=_number(where, data, "sample_size", int, 100),
            batch_size=_number(where, data, "batch_size", int, 1000),
            workers=chosen_workers,
            full=full if full is not None else not _flag(where, data, "incremental", True),
            executor=executor or _text(where, data, "executor") or "local",
            scheduler=scheduler or _text(where, data, "scheduler"),
            # Unset: on for a PostgreSQL index (``discover.index_direct``).
            direct_writes=_flag(where, data, "direct_writes", False) if "direct_writes" in data else None,
        )
    except ConfigError as exc:
        raise _fail(where, exc.message, exc.setting) from exc
    s3 = _s3(where, data.get("s3"))
    sources = tuple(
        _with_s3_defaults(spec, s3) if spec.url.startswith("s3://") else spec
        for spec in _parse_sources(where, data.get("sources"), detection.language)
    )
    return Config(
        index=chosen_index,
        sources=sources,
        retention=_retention(where, data.get("retention"), sources),
        detection=detection,
        scan=scan_settings,
        export=_export(where, data.get("export")),
        s3=s3,
        processing=_processing(where, data.get("processing")),
        service=_service(where, data.get("service")),
        path=file_path,
    )
