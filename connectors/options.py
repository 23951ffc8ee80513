"""Typed options of a source, one frozen dataclass per connector kind.

The dataclass is the one source of truth: the config file's keys, their types and defaults
are read from its fields (``parse_options``), so a new option is added here and nowhere else.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from connectors.errors import ConfigError

# Field metadata: ``range`` is (low, high, whether ``low`` itself is allowed): zero retries, delays
# or timeouts are typos, not wishes; ``at_least`` is a lower bound alone; ``expects`` replaces the
# type's wording in messages.
_TIMEOUT = {"range": (1, 3600, True)}
_SECONDS = {"range": (1, 3600, True), "expects": "a number of seconds"}


@dataclass(frozen=True)
class SourceOptions:
    """Options every source takes."""

    #: At most this many units of the source run at once (a database that allows few connections).
    max_concurrency: int | None = field(default=None, metadata={"at_least": 1})


@dataclass(frozen=True)
class SqlOptions(SourceOptions):
    """A database source (``sqlite://``, ``postgresql://``, ``mysql://`` …)."""

    #: Schemas to scan (PostgreSQL); none: every schema but the system ones.
    schemas: tuple[str, ...] = ()
    #: Scan views as well as tables.
    views: bool = False
    #: Reads retried after a dropped connection, waiting ``retry_delay`` seconds, then twice that, ….
    retries: int = field(default=4, metadata={"range": (1, 100, True)})
    retry_delay: float = field(default=0.5, metadata={"range": (0, 300, False), "expects": "a number of seconds"})
    connect_timeout: int = field(default=10, metadata=_TIMEOUT)
    #: A column that grows on every change (``updated_at``), for every table or per table.
    changed_column: str | Mapping[str, str] | None = field(
        default=None,
        metadata={
            "expects": "a column name (changed_column: updated_at) or a mapping of table to column "
            "({orders: updated_at})"
        },
    )

    def changed_column_of(self, table: str) -> str | None:
        """The watermark column named for ``table``, if any."""
        if isinstance(self.changed_column, Mapping):
            return self.changed_column.get(table)
        return self.changed_column


@dataclass(frozen=True)
class S3Options(SourceOptions):
    """An ``s3://bucket/prefix`` source. Credentials come from boto3's chain, never from here."""

    region: str | None = None
    endpoint_url: str | None = None
    profile: str | None = None
    max_attempts: int = field(default=5, metadata={"range": (1, 100, True)})
    connect_timeout: float = field(default=10, metadata=_SECONDS)
    read_timeout: float = field(default=60, metadata=_SECONDS)


OptionsT = TypeVar("OptionsT", bound=SourceOptions)


def coerce(kind: type[OptionsT], options: SourceOptions, source: str) -> OptionsT:
    """``options`` as ``kind``: the common options of a plain ``SourceOptions`` carry over; options
    meant for another kind of source are a ConfigError."""
    if isinstance(options, kind):
        return options
    if type(options) is SourceOptions:
        return kind(**{f.name: getattr(options, f.name) for f in dataclasses.fields(SourceOptions)})
    raise ConfigError(
        f"source {source!r}: {type(options).__name__} given to a source that takes {kind.__name__}",
        setting="options",
    )


def option_names(kind: type[SourceOptions]) -> list[str]:
    return sorted(f.name for f in dataclasses.fields(kind))


def parse_options(kind: type[OptionsT], raw: Mapping[str, Any], where: str) -> OptionsT:
    """``kind`` from a config mapping: each value checked against its field's type and range.

    ``where`` prefixes the one-line error (``config x.yaml: sources[0].``).
    """
    hints = typing.get_type_hints(kind)
    fields = {f.name: f for f in dataclasses.fields(kind)}
    known = set(fields)
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in known:
            raise ConfigError(
                f"{where}{key} is not an option of this source; known: {', '.join(sorted(known))}", setting=key
            )
        if value is None:
            continue
        meta = fields[key].metadata
        checked = _check(hints[key], value, f"{where}{key}", key, meta)
        if "at_least" in meta and checked < meta["at_least"]:
            raise ConfigError(f"{where}{key} must be a whole number of at least {meta['at_least']}", setting=key)
        values[key] = checked
    return kind(**values)


def _check(hint: Any, value: Any, where: str, key: str, meta: Mapping[str, Any]) -> Any:
    """``value`` converted to ``hint`` (a scalar, an optional, a tuple of str, a str mapping) and
    checked against the field's ``meta`` (its range; what the message says is wanted)."""
    args = typing.get_args(hint)
    expects = meta.get("expects")
    what = expects or _describe(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        arms = [a for a in args if a is not type(None)]
        if len(arms) == 1:
            return _check(arms[0], value, where, key, meta)
        for arm in arms:
            try:
                return _check(arm, value, where, key, {})
            except ConfigError:
                continue
        raise ConfigError(f"{where} must be {expects or ' or '.join(_describe(a) for a in arms)}", setting=key)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false", setting=key)
        return value
    if hint in (int, float):
        if isinstance(value, bool) or not isinstance(value, int if hint is int else (int, float)):
            raise ConfigError(f"{where} must be {what}", setting=key)
        number = hint(value)
        if "range" in meta:
            low, high, low_ok = meta["range"]
            if (number < low if low_ok else number <= low) or number > high:
                bounds = f"from {low:g} to {high:g}" if low_ok else f"greater than {low:g} and at most {high:g}"
                raise ConfigError(f"{where} is {number}; it must be {what} {bounds}", setting=key)
        return number
    if hint is str:
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{where} must be {what}", setting=key)
        return value
    origin = typing.get_origin(hint)
    if origin is tuple:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in items):
            raise ConfigError(f"{where} must be {what}", setting=key)
        return tuple(str(v) for v in items)
    if origin in (Mapping, dict):
        if not (
            isinstance(value, dict)
            and value
            and all(isinstance(k, str) and isinstance(v, str) and v for k, v in value.items())
        ):
            raise ConfigError(f"{where} must be {what}", setting=key)
        return dict(value)
    raise TypeError(f"option type {hint!r} has no check")  # a new option type needs a rule here


def _describe(hint: Any) -> str:
    if hint is bool:
        return "true or false"
    if hint is int:
        return "a whole number"
    if hint is float:
        return "a number"
    if hint is str:
        return "a non-empty string"
    if typing.get_origin(hint) is tuple:
        return "a list of strings"
    return "a mapping of names to strings"


__all__ = ["S3Options", "SourceOptions", "SqlOptions", "coerce", "option_names", "parse_options"]
