"""Retention checks: records kept past the limit a rule sets, counted inside the source.

A database rule runs one ``COUNT`` with a ``WHERE`` on the date column in the source database
(no row, and so no personal data, leaves it); a file rule compares each file's modification
time. Nothing here prints or stores a value other than counts and dates.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from connectors.base import SourceSpec, url_scheme
from connectors.errors import ConfigError, PiiportError

if TYPE_CHECKING:
    from connectors.sql import SqlConnector
    from discover.index import Index

_AGE = re.compile(r"^\s*(\d+)\s*(y|mo|w|d)\s*$")
_UNITS = {"y": "year(s)", "mo": "month(s)", "w": "week(s)", "d": "day(s)"}


@dataclass(frozen=True)
class MaxAge:
    amount: int
    unit: str  # y, mo, w, d

    @classmethod
    def parse(cls, text: str) -> MaxAge:
        m = _AGE.match(str(text))
        if not m or int(m.group(1)) == 0:
            raise ConfigError(
                f"max_age {text!r} is not an age; write a whole number and a unit: 3y, 13mo, 6w or 30d",
                setting="max_age",
            )
        return cls(int(m.group(1)), m.group(2))

    def cutoff(self, now: datetime) -> datetime:
        """The oldest moment still within the limit: records older than this are past it."""
        if self.unit in ("d", "w"):
            return now - timedelta(days=self.amount * (7 if self.unit == "w" else 1))
        months = self.amount * (12 if self.unit == "y" else 1)
        year, month = divmod(now.year * 12 + now.month - 1 - months, 12)
        month += 1
        # The same day of the month, or the month's last day (29 February, 31st).
        day = now.day
        while True:
            try:
                return now.replace(year=year, month=month, day=day)
            except ValueError:
                day -= 1

    def __str__(self) -> str:
        return f"{self.amount}{self.unit}"


@dataclass(frozen=True)
class RetentionRule:
    """Records of ``container`` in ``source`` may be kept ``max_age`` after ``date_column`` (or
    a file's modification time, with ``mtime``). ``container`` is a glob for file sources."""

    source: str
    container: str
    max_age: MaxAge
    date_column: str | None = None
    mtime: bool = False
    basis: str = ""

    def describe(self) -> str:
        on = "file modification time" if self.mtime else self.date_column
        return f"{self.source}/{self.container}: {self.max_age} after {on}"


@dataclass(frozen=True)
class RetentionResult:
    source: str
    container: str
    max_age: str
    basis: str
    cutoff: str
    #: Records (tables) or files (mtime rules) past the limit.
    expired: int
    unit: str
    #: The oldest date found (the whole container, not only what is past the limit).
    oldest: str | None
    #: Of the records past the limit, those the index holds personal data for (for a file rule,
    #: the records of the files past the limit); None for a table without a key (row hash).
    in_index: int | None
    #: Values of the date column that are not dates (text columns in SQLite), not counted.
    unreadable: int = 0
    error: str | None = None

    @property
    def breached(self) -> bool:
        return self.expired > 0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "breached": self.breached}


@dataclass(frozen=True)
class RetentionReport:
    results: list[RetentionResult]

    @property
    def breached(self) -> bool:
        return any(r.breached for r in self.results)

    @property
    def errors(self) -> list[RetentionResult]:
        return [r for r in self.results if r.error]

    def as_dict(self) -> dict[str, Any]:
        return {"breached": self.breached, "rules": [r.as_dict() for r in self.results]}


def check(
    rules: list[RetentionRule], sources: dict[str, SourceSpec], *, index: Index | None, now: datetime | None = None
) -> RetentionReport:
    """Check every rule; a rule whose source cannot be read is an error for that rule only."""
    now = now or datetime.now(timezone.utc)
    out = []
    for rule in rules:
        cutoff = rule.max_age.cutoff(now)
        base: dict[str, Any] = {
            "source": rule.source,
            "container": rule.container,
            "max_age": str(rule.max_age),
            "basis": rule.basis,
            "cutoff": cutoff.isoformat(timespec="seconds").replace("+00:00", "Z"),
        }
        try:
            spec = sources[rule.source]
            if rule.mtime:
                out.append(_check_files(rule, spec, cutoff, index, base))
            else:
                out.append(_check_table(rule, spec, cutoff, index, base))
        except PiiportError as exc:
            out.append(
                RetentionResult(
                    **base,
                    expired=0,
                    unit="files" if rule.mtime else "records",
                    oldest=None,
                    in_index=0,
                    error=exc.message,
                )
            )
    return RetentionReport(out)


def _check_files(
    rule: RetentionRule, spec: SourceSpec, cutoff: datetime, index: Index | None, base: dict[str, Any]
) -> RetentionResult:
    if url_scheme(spec.url) != "file":
        raise ConfigError(f"retention rule {rule.describe()}: mtime rules need a local file source", setting="mtime")
    root = Path(spec.url).expanduser()
    if not root.exists():
        raise PiiportError(f"retention rule {rule.describe()}: {root} not found; check the source's path")
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    expired = 0
    in_index = 0
    oldest: float | None = None
    matched = 0
    for path in files:
        name = path.name if root.is_file() else path.relative_to(root).as_posix()
        if not fnmatch.fnmatchcase(name, rule.container):
            continue
        matched += 1
        mtime = path.stat().st_mtime
        oldest = mtime if oldest is None else min(oldest, mtime)
        if mtime < cutoff.timestamp():
            expired += 1
            if index is not None:
                in_index += index.container_record_counts(spec.name, name)
    if not matched:
        raise PiiportError(
            f"retention rule {rule.describe()}: no file of source {spec.name!r} matches {rule.container!r}; "
            "fix the container pattern"
        )
    return RetentionResult(
        **base,
        expired=expired,
        unit="files",
        oldest=_iso(datetime.fromtimestamp(oldest, timezone.utc)) if oldest is not None else None,
        in_index=in_index,
    )


def _check_table(
    rule: RetentionRule, spec: SourceSpec, cutoff: datetime, index: Index | None, base: dict[str, Any]
) -> RetentionResult:
    from sqlalchemy import text

    from connectors.sql import SqlConnector

    if url_scheme(spec.url) in ("file", "s3"):
        raise ConfigError(
            f"retention rule {rule.describe()}: source {spec.name!r} holds files; use mtime: true", setting="retention"
        )
    assert rule.date_column is not None
    connector = SqlConnector(spec)
    try:
        table = connector.tables().get(rule.container)
        if table is None:
            raise PiiportError(
                f"retention rule {rule.describe()}: source {spec.name!r} has no table {rule.container!r}; "
                "fix the container name (schema.table outside the default schema)"
            )
        if rule.date_column not in table.c:
            raise PiiportError(
                f"retention rule {rule.describe()}: table {rule.container} has no column {rule.date_column!r}; "
                f"columns: {', '.join(table.c.keys())}"
            )
        engine = connector.engine
        quote = engine.dialect.identifier_preparer.quote
        qualified = (quote(table.schema) + "." if table.schema else "") + quote(table.name)
        col = quote(rule.date_column)
        dialect = engine.dialect.name
        params: dict[str, Any] = {}
        if dialect == "sqlite":
            # SQLite keeps dates as text (ISO 8601, with T or a space, or a bare date) or numbers:
            # julianday() reads the texts, and is NULL for what is not a date.
            params["cutoff"] = cutoff.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
            past = f"julianday({col}) < julianday(:cutoff)"
            sql = (
                f"SELECT SUM(CASE WHEN {past} THEN 1 ELSE 0 END), "
                f"datetime(MIN(julianday({col}))), "
                f"SUM(CASE WHEN {col} IS NOT NULL AND julianday({col}) IS NULL THEN 1 ELSE 0 END) "
                f"FROM {qualified}"
            )
        else:
            is_text = table.c[rule.date_column].type.python_type is str if _has_python_type(table, rule) else False
            expr = f"CAST({col} AS {'timestamptz' if dialect == 'postgresql' else 'DATETIME'})" if is_text else col
            if dialect == "postgresql":
                params["cutoff"] = cutoff
            else:  # MySQL/MariaDB compare DATETIME values without a zone: in UTC
                params["cutoff"] = cutoff.astimezone(timezone.utc).replace(tzinfo=None)
            past = f"{expr} < :cutoff"
            sql = f"SELECT SUM(CASE WHEN {past} THEN 1 ELSE 0 END), MIN({expr}), 0 FROM {qualified}"
        with connector.translate_errors(rule.container), engine.connect() as conn:
            expired, oldest, unreadable = conn.execute(text(sql), params).one()
        in_index: int | None = 0
        if index is not None and expired:
            in_index = _expired_in_index(connector, rule, index, past, params)
    finally:
        connector.close()
    if dialect == "sqlite" and isinstance(oldest, str):  # datetime() gives "YYYY-MM-DD HH:MM:SS", in UTC
        oldest = oldest.replace(" ", "T") + "Z"
    return RetentionResult(
        **base,
        expired=int(expired or 0),
        unit="records",
        oldest=_iso(oldest),
        in_index=in_index,
        unreadable=int(unreadable or 0),
    )


def _expired_in_index(
    connector: SqlConnector, rule: RetentionRule, index: Index, past: str, params: dict[str, Any]
) -> int | None:
    """How many of the records past the limit the index holds personal data for: their keys (only
    the key columns are read) looked up in the index. None for a table located by row hash,
    whose key is the whole row."""
    from sqlalchemy import select, text

    from connectors.base import ContainerRef, encode_key
    from connectors.sql import SqlTableReader

    reader = connector.open(ContainerRef(rule.source, rule.container, "table"))
    if not isinstance(reader, SqlTableReader) or reader.key_kind == "row_hash":
        return None
    width = len(reader.key_columns)
    stmt = select(*reader.key_columns).select_from(reader.table).where(text(past).bindparams(**params))
    with connector.translate_errors(rule.container), connector.engine.connect() as conn:
        rows = conn.execution_options(stream_results=True, yield_per=2000).execute(stmt)
        return index.records_known(rule.source, rule.container, (encode_key(list(row[:width])) for row in rows))


def _has_python_type(table: Any, rule: RetentionRule) -> bool:
    try:
        table.c[rule.date_column].type.python_type  # noqa: B018 - some types have none
    except NotImplementedError:
        return False
    return True


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        naive: datetime = value.astimezone(timezone.utc).replace(tzinfo=None) if value.tzinfo is not None else value
        return naive.isoformat(timespec="seconds") + "Z"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


__all__ = ["MaxAge", "RetentionReport", "RetentionResult", "RetentionRule", "check"]
