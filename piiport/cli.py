"""The command line: each command parses options, calls one library function, prints.

Exit codes: 0 it worked; 2 usage or configuration error; 1 any other failure
(including a scan that finished with errors in some containers); 3 a policy was breached
(``scan --fail-on new-pii`` found a new personal-data field, ``retention`` found records past a limit).
"""

from __future__ import annotations

import atexit
import functools
import gc
import json
import logging
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from piiport.errors import (
    AmbiguousSubjectError,
    ConfigError,
    DetectorCrashedError,
    ExportError,
    IndexBusyError,
    MissingIndexError,
    PiiportError,
    RequestIdError,
)

F = TypeVar("F", bound=Callable[..., Any])

#: A policy was breached: new personal data (``scan --fail-on new-pii``), a retention limit.
EXIT_POLICY = 3

#: Exit code per error type; an error takes the code of the nearest type in its class hierarchy.
EXIT_CODES: dict[type[PiiportError], int] = {
    PiiportError: 1,
    ConfigError: 2,  # usage: a bad option, environment variable or config setting
    RequestIdError: 2,  # a bad --request-id is a bad option like any other
}

#: What to do, in terms of this command line's options, appended to the library's message. Keyed by
#: error type, or (type, the ConfigError's setting / the ExportError's reason) where a type covers
#: several faults. The library states the fact; only the CLI knows which flag fixes it.
HINTS: dict[type[PiiportError] | tuple[type[PiiportError], str], str] = {
    MissingIndexError: "run `piiport scan` first or pass --index",
    IndexBusyError: "wait for it to finish, or use another index with --index",
    DetectorCrashedError: "run again with fewer --workers or smaller inputs",
    AmbiguousSubjectError: "ask for an identifier that is the person's own, such as --email or --phone",
    RequestIdError: "choose another --request-id",
    (ExportError, "exists"): "pass --overwrite to replace it, or use another --request-id",
    (ExportError, "destination"): "choose another --out, or fix its permissions",
    (ConfigError, "identifiers"): "--email, --phone, --ip or --name",
}

#: The option that gave a ConfigError's setting: the message about its value starts with it.
OPTION_OF_SETTING = {
    "identifiers.email": "--email",
    "identifiers.phone": "--phone",
    "identifiers.ip": "--ip",
    "identifiers.name": "--name",
    "out": "--out",
}


def exit_code(error: PiiportError) -> int:
    """The exit code of an error: ``EXIT_CODES`` of the nearest listed type."""
    return next(EXIT_CODES[t] for t in type(error).__mro__ if t in EXIT_CODES)


def hint(error: PiiportError) -> str | None:
    """The command-line hint for an error, if one fits (never for a setting read from a config file)."""
    if isinstance(error, ConfigError) and error.path:
        return None
    for t in type(error).__mro__:
        if t in HINTS:
            return HINTS[t]
    if isinstance(error, ConfigError) and error.setting:
        return HINTS.get((ConfigError, error.setting))
    if isinstance(error, ExportError) and error.reason:
        return HINTS.get((ExportError, error.reason))
    return None


def cli_message(error: PiiportError) -> str:
    """The library's message, with the option it is about in front and the hint behind."""
    message = error.message
    if isinstance(error, ConfigError) and not error.path and error.setting in OPTION_OF_SETTING:
        message = f"{OPTION_OF_SETTING[error.setting]} {message}"
    extra = hint(error)
    return f"{message}; {extra}" if extra else message


class PiiportClickError(click.ClickException):
    def __init__(self, error: PiiportError) -> None:
        super().__init__(cli_message(error))
        self.exit_code = exit_code(error)  # type: ignore[misc]


def handle_errors(func: F) -> F:
    """Turn a PiiportError into a one-line message and the right exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except PiiportError as exc:
            if click.get_current_context().find_root().params.get("debug"):
                raise
            raise PiiportClickError(exc) from exc

    return wrapper  # type: ignore[return-value]


def _setup_logging(debug: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not debug:
        # Presidio and spaCy are chatty at WARNING about things that are expected here.
        for noisy in ("presidio-analyzer", "spacy", "discover.scan"):
            logging.getLogger(noisy).setLevel(logging.ERROR)


class Progress:
    """A one-line progress display on a terminal; silent otherwise."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.label = ""
        self.records = 0

    def __call__(self, event: str, data: dict[str, Any]) -> None:
        if not self.enabled:
            return
        if event == "container":
            done = int(20 * (data["number"] - 1) / max(1, data["total"]))
            bar = "#" * done + "-" * (20 - done)
            self.label = f"[{bar}] {data['number']}/{data['total']} {data['source']}/{data['container']}"
        elif event == "records":
            self.records += data["count"]
        line = f"{self.label}  {self.records:,} records scanned"
        click.echo(f"\r\x1b[2K{line[:120]}", nl=False, err=True)

    def done(self) -> None:
        if self.enabled:
            click.echo("\r\x1b[2K", nl=False, err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show debug logs and tracebacks.")
@click.version_option(package_name="piiport")
def main(debug: bool) -> None:
    """Find personal data, index it per subject, export portability packages."""
    _setup_logging(debug)
    # Registered first, so it runs last of the exit handlers (and once: tests call ``main``
    # many times in one process).
    atexit.unregister(_leave_objects_to_exit)
    atexit.register(_leave_objects_to_exit)


def _leave_objects_to_exit() -> None:
    """At exit, keep the objects still alive out of Python's final garbage collections: these
    walk every object the imports made (SQLAlchemy's and numpy's above all) with nothing left to
    reclaim, about 0.08 s of every command here (a third of a rescan's start-up). Objects are
    still freed, and exit handlers and ``weakref.finalize`` callbacks (temporary folders) still
    run; only a reference cycle that became garbage just before exit is left to the process's end."""
    gc.freeze()


@main.command()
@click.argument("sources", nargs=-1)
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="YAML config file.")
@click.option("--index", "index_url", help="Index URL (default sqlite:///.piiport/index.db; env PIIPORT_INDEX).")
@click.option("--workers", type=click.IntRange(min=1), help="Worker processes (env PIIPORT_WORKERS).")
@click.option("--language", help="Language of free text (default en).")
@click.option("--executor", type=click.Choice(["local", "dask"]), help="Where units run (default local).")
@click.option("--scheduler", help="Dask scheduler address, tcp://host:8786 or tls://... (default: a LocalCluster).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--full", is_flag=True, help="Read everything, even what is unchanged since the last scan.")
@click.option(
    "--fail-on",
    "fail_on",
    type=click.Choice(["new-pii"]),
    multiple=True,
    help="Exit 3 when the run found a personal-data field the previous run did not have.",
)
@handle_errors
def scan(
    sources: tuple[str, ...],
    config_path: str | None,
    index_url: str | None,
    workers: int | None,
    language: str | None,
    executor: str | None,
    scheduler: str | None,
    as_json: bool,
    full: bool,
    fail_on: tuple[str, ...],
) -> None:
    """Scan SOURCES (database URLs, files, directories) into the index."""
    from piiport.api import changes_of_run, scan_sources
    from piiport.config import load_config

    cfg = load_config(
        config_path,
        index=index_url,
        workers=workers,
        language=language,
        full=full or None,
        executor=executor,
        scheduler=scheduler,
    )
    progress = Progress(sys.stderr.isatty() and not as_json)
    try:
        result = scan_sources(sources, config=cfg, progress=progress)
    finally:
        progress.done()
    changes = changes_of_run(result.run_id, config=cfg) if "new-pii" in fail_on else None
    if as_json:
        summary = result.as_dict()
        if changes is not None:
            summary["new_pii_fields"] = [f"{f.source}/{f.container}.{f.field}" for f in changes.new_fields]
        click.echo(json.dumps(summary, indent=2, default=str))
    else:
        _print_summary(result)
    if changes is not None and changes.new_pii:
        click.echo(f"new personal data since run {changes.run_a}:", err=True)
        for f in changes.new_fields:
            click.echo(f"  {f.source}/{f.container}.{f.field}: {', '.join(f.entity_types)}", err=True)
        sys.exit(EXIT_POLICY)
    if not result.ok:
        sys.exit(1)


def _print_summary(result: Any) -> None:
    totals = result.totals()
    click.echo(
        f"Scanned {totals['containers']} containers, {totals['records']:,} records: "
        f"{totals['findings']:,} findings"
        + (f" ({', '.join(f'{k} {v:,}' for k, v in totals['entities'].items())})" if totals["entities"] else "")
    )
    unchanged = [c for c in result.containers if c.read == "unchanged" and c.error is None]
    ranged = [c for c in result.containers if c.read == "ranges" and c.error is None]
    if unchanged or ranged:
        said = [f"{len(unchanged)} container(s) unchanged since their last scan, not read"] if unchanged else []
        if ranged:
            buckets, in_part = sum(c.buckets_read for c in ranged), sum(c.ranges_in_part for c in ranged)
            said.append(
                f"{sum(c.ranges_read for c in ranged):,} of {sum(c.ranges_total for c in ranged):,} key ranges "
                f"of {len(ranged)} table(s) read again"
                + (f" ({in_part:,} of them in part: {buckets:,} changed key buckets)" if in_part else "")
            )
        click.echo(f"  incremental: {'; '.join(said)} (--full reads everything)")
    for c in result.containers:
        if c.error is None and c.pii_fields:
            click.echo(f"  {c.source}/{c.container}: {c.records:,} records, personal data in {', '.join(c.pii_fields)}")
        if c.skipped_records:
            click.echo(f"  {c.source}/{c.container}: skipped {c.skipped_records} malformed records")
        if c.skipped_fields:
            click.echo(f"  {c.source}/{c.container}: binary fields not scanned: {', '.join(c.skipped_fields)}")
        for note in c.notes:
            click.echo(f"  {c.source}/{c.container}: {note}")
    from connectors.base import SKIP_REASONS

    for source, skipped in result.skipped.items():
        counts = ", ".join(f"{SKIP_REASONS.get(reason, reason)} {n:,}" for reason, n in skipped.items())
        click.echo(f"  {source}: not scanned: {counts}")
    if result.errors:
        click.echo(f"{len(result.errors)} error(s):", err=True)
        for e in result.errors:
            click.echo(f"  {e['source']}: {e['error']}", err=True)
    click.echo(f"Run {result.run_id} finished; see `piiport inventory`.")


@main.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="YAML config file.")
@click.option("--index", "index_url", help="Index URL (env PIIPORT_INDEX).")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv", "md"]), default="table", show_default=True)
@handle_errors
def inventory(config_path: str | None, index_url: str | None, fmt: str) -> None:
    """Where personal data lives: per field, entity type, records and prevalence."""
    from discover.inventory import render
    from piiport.api import get_inventory, inventory_notes
    from piiport.config import load_config

    cfg = load_config(config_path, index=index_url)
    rows = get_inventory(config=cfg)
    click.echo(render(rows, fmt), nl=False)
    for note in inventory_notes(config=cfg):
        click.echo(f"note: {note}", err=True)


@main.command()
@click.argument("run_a", type=int, required=False)
@click.argument("run_b", type=int, required=False)
@click.option(
    "--threshold", type=click.FloatRange(0, 1), default=0.1, show_default=True, help="Least prevalence change shown."
)
@click.option("--format", "fmt", type=click.Choice(["table", "json", "md"]), default="table", show_default=True)
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="YAML config file.")
@click.option("--index", "index_url", help="Index URL (env PIIPORT_INDEX).")
@handle_errors
def diff(
    run_a: int | None, run_b: int | None, threshold: float, fmt: str, config_path: str | None, index_url: str | None
) -> None:
    """What changed between scan runs RUN_A and RUN_B (default: the last two)."""
    from discover.changes import render
    from piiport.api import diff_runs
    from piiport.config import load_config

    result = diff_runs(run_a, run_b, threshold=threshold, config=load_config(config_path, index=index_url))
    click.echo(render(result, fmt), nl=False)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="YAML config file with retention rules.")
@click.option("--index", "index_url", help="Index URL (env PIIPORT_INDEX).")
@handle_errors
def retention(as_json: bool, config_path: str | None, index_url: str | None) -> None:
    """Check the retention rules: records kept past their limit (exit 3 when any is)."""
    from piiport.api import check_retention
    from piiport.config import load_config

    report = check_retention(config=load_config(config_path, index=index_url))
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        for r in report.results:
            where = f"{r.source}/{r.container} (max {r.max_age}" + (f", {r.basis}" if r.basis else "") + ")"
            if r.error:
                click.echo(f"ERROR   {where}: {r.error}")
                continue
            state = "BREACH " if r.breached else "ok     "
            oldest = f"; oldest {r.oldest}" if r.oldest else ""
            unreadable = f"; {r.unreadable:,} value(s) are not dates" if r.unreadable else ""
            if r.in_index is None:
                known = "the index cannot tell which of them it holds (the table has no key)"
            elif r.unit == "files":
                known = f"{r.in_index:,} of their records in the index"
            else:
                known = f"{r.in_index:,} of them in the index"
            click.echo(f"{state} {where}: {r.expired:,} {r.unit} older than {r.cutoff}{oldest}; {known}{unreadable}")
    if report.breached:
        sys.exit(EXIT_POLICY)
    if report.errors:
        sys.exit(1)


@main.command()
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The HTML file to write (mode 0600).")
@click.option("--no-examples", is_flag=True, help="Leave the masked examples out.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="YAML config file.")
@click.option("--index", "index_url", help="Index URL (env PIIPORT_INDEX).")
@handle_errors
def report(out: str, no_examples: bool, config_path: str | None, index_url: str | None) -> None:
    """Write a self-contained HTML report: inventory, trend, changes, retention, failures."""
    from piiport.api import write_report
    from piiport.config import load_config

    path = write_report(out, config=load_config(config_path, index=index_url), examples=not no_examples)
    click.echo(str(path))


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True), default="-")
@click.option("--jsonl", is_flag=True, help='Each input line is a JSON object with a "text" field.')
@click.option("--language", default=None, help="Language of the texts (en, fr; default en).")
@click.option(
    "--workers", type=click.IntRange(min=1), help="Worker processes (default one per core; env PIIPORT_WORKERS)."
)
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="YAML config file.")
@handle_errors
def detect(file: str, jsonl: bool, language: str | None, workers: int | None, config_path: str | None) -> None:
    """Detect personal data in texts: one text per line in, one JSON line of entities out, in input order."""
    from piiport.api import detect_texts
    from piiport.config import load_config
    from piiport.errors import ConfigError

    cfg = load_config(config_path, language=language, workers=workers)

    try:
        source = click.open_file(file, "rb")
    except OSError as exc:
        raise ConfigError(f"{file} cannot be read ({exc.strerror}); check the path and its permissions") from exc

    def texts() -> Any:
        with source:
            yield from _texts(source)

    def _texts(lines: Any) -> Any:
        for number, raw in enumerate(lines, start=1):
            line = _text_line(raw, number, file)
            if not jsonl:
                yield line
                continue
            if not line.strip():
                yield ""
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"input line {number}: not valid JSON; with --jsonl each line is an object") from exc
            if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
                raise ConfigError(f'input line {number}: needs a "text" string field')
            yield obj["text"]

    for entities in detect_texts(texts(), language=cfg.detection.language, config=cfg, workers=cfg.scan.workers):
        click.echo(json.dumps({"entities": [e.as_dict() for e in entities]}))


def _text_line(raw: bytes, number: int, name: str) -> str:
    """One input line of ``piiport detect`` as text; binary input is a usage error, not a traceback."""
    from piiport.errors import ConfigError

    where = "standard input" if name in ("-", "<stdin>") else name
    if b"\x00" in raw:
        raise ConfigError(
            f"{where}, line {number}: holds NUL bytes, so it is a binary file; piiport detect reads UTF-8 text",
            setting="FILE",
        )
    try:
        return raw.decode("utf-8").rstrip("\n").rstrip("\r")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{where}, line {number}: byte {raw[exc.start]:#04x} is not UTF-8; convert the file to UTF-8 "
            "(e.g. iconv -f latin1 -t utf-8)",
            setting="FILE",
        ) from exc


@main.command()
@click.option("--email", "emails", multiple=True, help="E-mail address of the subject (repeatable).")
@click.option("--phone", "phones", multiple=True, help="Phone number of the subject (repeatable).")
@click.option("--ip", "ips", multiple=True, help="IP address of the subject (repeatable).")
@click.option("--name", "names", multiple=True, help="Full name of the subject (repeatable).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "csv", "parquet"]),
    default=None,
    help="Data file format (default json, or export.format in the config).",
)
@click.option("--out", help="Output folder or s3://bucket/prefix (default ./exports).")
@click.option("--zip", "as_zip", is_flag=True, help="Write one zip file instead of a folder.")
@click.option("--request-id", help="Your own request id; also the package name.")
@click.option("--overwrite", is_flag=True, help="Replace an existing package with the same request id.")
@click.option("--no-expand", is_flag=True, help="Do not follow links to the subject's other identifiers.")
@click.option("--rescan", is_flag=True, help="Scan containers that changed since the scan again first.")
@click.option("--max-depth", type=click.IntRange(min=0), help="How far to follow foreign keys (default 3).")
@click.option(
    "--include-review",
    is_flag=True,
    help="Also export the records listed for review (a name alone, a shared IP), marked review.",
)
@click.option("--csv-raw", is_flag=True, help="Write CSV cells as they are, without neutralising formulas.")
@click.option(
    "--purpose",
    type=click.Choice(["access", "portability"]),
    default="access",
    show_default=True,
    help="access: all the subject's data (Art. 15); portability: consent/contract data, no inferred fields (Art. 20).",
)
@click.option("--lang", type=click.Choice(["en", "fr"]), help="Language of index.html (default export.lang, or en).")
@click.option("--no-redact", is_flag=True, help="Keep other people's identifiers in free text (default: redacted).")
@click.option(
    "--url-expiry", type=click.IntRange(1, 604800), help="Seconds the S3 download URL lasts (default 7 days)."
)
@click.option("--index", "index_url", help="Index URL (env PIIPORT_INDEX).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="YAML config file.")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print {request_id, found, complete, package, files, records, review, errors}.",
)
@handle_errors
def export(
    emails: tuple[str, ...],
    phones: tuple[str, ...],
    ips: tuple[str, ...],
    names: tuple[str, ...],
    fmt: str | None,
    out: str | None,
    as_zip: bool,
    request_id: str | None,
    overwrite: bool,
    no_expand: bool,
    rescan: bool,
    max_depth: int | None,
    include_review: bool,
    csv_raw: bool,
    purpose: str,
    lang: str | None,
    no_redact: bool,
    url_expiry: int | None,
    index_url: str | None,
    config_path: str | None,
    as_json: bool,
) -> None:
    """Export one subject's data as a portability package."""
    from piiport.api import export_subject
    from piiport.config import load_config

    result = export_subject(
        emails=emails,
        phones=phones,
        ips=ips,
        names=names,
        config=load_config(config_path, index=index_url),
        fmt=fmt,
        out=out,
        as_zip=as_zip,
        request_id=request_id,
        overwrite=overwrite,
        expand=not no_expand,
        rescan=rescan,
        max_depth=max_depth,
        url_expiry=url_expiry,
        include_review=include_review,
        csv_raw=csv_raw,
        purpose=purpose,
        lang=lang,
        redact=False if no_redact else None,
    )
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2))
    else:
        if not result.complete:
            click.echo(
                f"The answer is incomplete: {len(result.errors)} error(s); the containers below could not be read "
                "and may hold this subject's records.",
                err=True,
            )
        elif not result.found and not result.review:
            click.echo("No record holds these identifiers; wrote an empty package.", err=True)
        if result.review:
            click.echo(
                f"{result.review} record(s) match only by a name or a shared IP: listed for review in the manifest"
                + (", exported marked review." if include_review else "; not exported (--include-review adds them)."),
                err=True,
            )
        for error in result.errors:
            click.echo(f"warning: {error}", err=True)
        for source in result.missing_processing:
            click.echo(
                f"warning: source {source} contributed records but has no processing entry in the config "
                "(purposes, legal_basis, …); the manifest lists it in notes",
                err=True,
            )
        click.echo(result.package)
        if result.download_url:
            click.echo(result.download_url)
    if not result.ok:
        sys.exit(1)


@main.command()
@click.option("--email", "emails", multiple=True, help="E-mail address of the subject (repeatable).")
@click.option("--phone", "phones", multiple=True, help="Phone number of the subject (repeatable).")
@click.option("--ip", "ips", multiple=True, help="IP address of the subject (repeatable).")
@click.option("--name", "names", multiple=True, help="Full name of the subject (repeatable).")
@click.option("--no-expand", is_flag=True, help="Do not follow links to the subject's other identifiers.")
@click.option("--index", "index_url", help="Index URL (env PIIPORT_INDEX).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="YAML config file.")
@click.option("--json", "as_json", is_flag=True, help="Print {subject, found, locations: [...]} as JSON.")
@handle_errors
def locate(
    emails: tuple[str, ...],
    phones: tuple[str, ...],
    ips: tuple[str, ...],
    names: tuple[str, ...],
    no_expand: bool,
    index_url: str | None,
    config_path: str | None,
    as_json: bool,
) -> None:
    """Where a subject's data lives: source, container, field, records, match kinds, last scan. No values."""
    from piiport.api import locate as run_locate
    from piiport.config import load_config

    result = run_locate(
        emails=emails,
        phones=phones,
        ips=ips,
        names=names,
        config=load_config(config_path, index=index_url),
        expand=not no_expand,
    )
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2))
        return
    if not result.found:
        click.echo(f"No record holds {result.subject}.", err=True)
        return
    header = ("source", "container", "field", "types", "records", "matches", "last scanned")
    rows = [
        (
            x.source,
            x.container,
            x.field,
            ",".join(x.entity_types),
            str(x.records),
            ",".join(x.matches),
            (x.scanned_at or "never") + (" (failed)" if x.stale else ""),
        )
        for x in result.locations
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, *rows]:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())


@main.group()
def processing() -> None:
    """Processing information (purposes, legal basis, retention) of the config's sources."""


@processing.command("check")
@click.option("--index", "index_url", help="Index URL (env PIIPORT_INDEX).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="YAML config file.")
@handle_errors
def processing_check(index_url: str | None, config_path: str | None) -> None:
    """List the scanned sources that have no processing entry; exit 1 if there is any."""
    from piiport.api import missing_processing
    from piiport.config import load_config

    missing = missing_processing(config=load_config(config_path, index=index_url))
    if not missing:
        click.echo("Every scanned source has a processing entry.")
        return
    click.echo(f"{len(missing)} scanned source(s) without a processing entry (purposes, legal_basis, …):")
    for source in missing:
        click.echo(f"  {source}")
    sys.exit(1)


@main.command()
@click.option(
    "--dir",
    "root",
    default="piiport-demo",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Folder for the demo data, index and package.",
)
@click.option(
    "--lang", type=click.Choice(["en", "fr"]), default="en", show_default=True, help="Language of index.html."
)
@handle_errors
def demo(root: str, lang: str) -> None:
    """Build a small demo dataset, scan it, show the inventory and export one subject."""
    from discover.inventory import render
    from piiport.api import run_demo

    click.echo(f"Building the demo dataset in {root}/ and scanning it (loading the NLP model takes a few seconds)...")
    progress = Progress(sys.stderr.isatty())
    try:
        result = run_demo(root, progress=progress, lang=lang)
    finally:
        progress.done()
    _print_summary(result.scan)
    click.echo("\nInventory:")
    click.echo(render(result.inventory, "table"), nl=False)
    if result.export is not None:
        click.echo(f"\nExported the subject {result.export.masked_subject} to {result.export.package}")
    if not result.scan.ok:
        sys.exit(1)


def _store(config_path: str | None, index_url: str | None) -> Any:
    from piiport.config import load_config
    from piiport.service.store import Store, store_url

    return Store(store_url(load_config(config_path, index=index_url).index))


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1), help="Exports that run at once.")
@click.option("--index", "index_url", help="Index URL (env PIIPORT_INDEX).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="YAML config file.")
@handle_errors
def serve(host: str, port: int, workers: int, index_url: str | None, config_path: str | None) -> None:
    """Run the access-request HTTP API (OpenAPI at /openapi.json)."""
    from piiport.config import load_config
    from piiport.service.serve import run_server

    run_server(
        load_config(config_path, index=index_url),
        host=host,
        port=port,
        workers=workers,
        config_path=config_path,
        index_url=index_url,
    )


@main.group()
def token() -> None:
    """API tokens for `piiport serve`: create, list, revoke."""


@token.command("create")
@click.argument("name")
@click.option("--scope", "scopes", required=True, help="Comma-separated: requests:write,requests:read,...")
@click.option("--index", "index_url", help="Index URL (env PIIPORT_INDEX).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="YAML config file.")
@handle_errors
def token_create(name: str, scopes: str, index_url: str | None, config_path: str | None) -> None:
    """Create token NAME and print it, once: only its hash is kept."""
    from piiport.service.audit import AuditLog, os_actor
    from piiport.service.tokens import TokenStore, parse_scopes

    wanted = parse_scopes(scopes)
    with _store(config_path, index_url) as store:
        secret = TokenStore(store, AuditLog(store)).create(name, wanted, actor=os_actor())
    click.echo(secret)
    click.echo(f"Token {name!r} ({', '.join(wanted)}): store it now, it is not shown again.", err=True)


@token.command("list")
@click.option("--index", "index_url", help="Index URL (env PIIPORT_INDEX).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="YAML config file.")
@handle_errors
def token_list(index_url: str | None, config_path: str | None) -> None:
    """List tokens: name, scopes, created, revoked."""
    from piiport.service.audit import AuditLog
    from piiport.service.tokens import TokenStore

    with _store(config_path, index_url) as store:
        rows = TokenStore(store, AuditLog(store)).all()
    for t in rows:
        state = f"revoked {t.revoked_at}" if t.revoked_at else "active"
        click.echo(f"{t.name}\t{','.join(t.scopes)}\tcreated {t.created_at}\t{state}")


@token.command("revoke")
@click.argument("name")
@click.option("--index", "index_url", help="Index URL (env PIIPORT_INDEX).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="YAML config file.")
@handle_errors
def token_revoke(name: str, index_url: str | None, config_path: str | None) -> None:
    """Revoke token NAME; it stops working at once."""
    from piiport.service.audit import AuditLog, os_actor
    from piiport.service.tokens import TokenStore

    with _store(config_path, index_url) as store:
        TokenStore(store, AuditLog(store)).revoke(name, actor=os_actor())
    click.echo(f"Revoked token {name!r}.")


@main.command()
@click.option("--since", help="Entries at or after this UTC time (ISO-8601, e.g. 2026-11-30 or 2026-11-30T14:00).")
@click.option("--verify", is_flag=True, help="Check the hash chain; exit 1 if an entry was edited or deleted.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per entry.")
@click.option("--index", "index_url", help="Index URL (env PIIPORT_INDEX).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="YAML config file.")
@handle_errors
def audit(since: str | None, verify: bool, as_json: bool, index_url: str | None, config_path: str | None) -> None:
    """The audit trail: exports, token changes, reads of personal data."""
    from piiport.service.audit import AuditLog

    with _store(config_path, index_url) as store:
        log = AuditLog(store)
        if verify:
            result = log.verify()
            if not result.ok:
                click.echo(
                    f"audit trail broken: {result.problem} ({result.entries} entries verified before it)", err=True
                )
                sys.exit(1)
            click.echo(f"audit trail intact: {result.entries} entries")
            return
        for e in log.entries(since=since):
            if as_json:
                click.echo(json.dumps(e, sort_keys=True))
            else:
                extra = f" package {e['package_sha256'][:12]}" if e["package_sha256"] else ""
                rid = f" {e['request_id']}" if e["request_id"] else ""
                click.echo(f"{e['seq']:>6} {e['at']} {e['actor']} {e['action']}{rid} {e['outcome']}{extra}")


if __name__ == "__main__":
    main()
