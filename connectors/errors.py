"""The root of piiport's exception tree, and the errors of the bottom layer.

Each layer owns its errors under :class:`PiiportError`: configuration and source errors here,
detection, index and subject errors in ``discover.errors``, export errors in ``export.errors``.
Exit codes and hints that name command-line options belong to the CLI (``piiport.cli``).
"""

from __future__ import annotations

from typing import Any


class PiiportError(Exception):
    """Root of every error piiport raises on purpose.

    ``message`` says what went wrong, in one line. Subclasses carry structured fields (keyword
    arguments, kept through pickling) so that programs need not parse the message.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        # Exception pickles as cls(*args), which fails for subclasses whose __init__ takes other
        # arguments (keyword-only fields, a path): rebuild without calling __init__ instead.
        return (_rebuild, (type(self), self.args, self.__dict__))


def _rebuild(cls: type[PiiportError], args: tuple[Any, ...], state: dict[str, Any]) -> PiiportError:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class ConfigError(PiiportError):
    """A bad option, environment variable or configuration file."""

    def __init__(self, message: str, *, setting: str | None = None, path: str | None = None):
        super().__init__(message)
        self.setting = setting
        self.path = path


class SourceError(PiiportError):
    """A source or one of its containers cannot be read."""

    def __init__(self, message: str, *, source: str | None = None, container: str | None = None):
        super().__init__(message)
        self.source = source
        self.container = container


def wrong_password(detail: str) -> bool:
    """Whether a driver's message says the login failed (PostgreSQL, MySQL/MariaDB): the fix is the
    password, not a grant. MySQL's "Access denied for user" is a login failure only with
    "(using password"; without it, it is a missing grant."""
    lowered = detail.lower()
    return any(s in lowered for s in ("password authentication failed", "no password supplied", "(using password"))
