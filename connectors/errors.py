"""The one exception tree of piiport.

It lives in the bottom layer so that every layer can raise it without importing
upwards; ``piiport.errors`` re-exports it for users.
"""

from __future__ import annotations


class PiiportError(Exception):
    """Root of every error piiport raises on purpose.

    ``message`` says what went wrong and how to fix it, in one line. Subclasses carry
    structured fields so that programs need not parse the message.
    """

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(PiiportError):
    """A bad option, environment variable or configuration file."""

    exit_code = 2

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


class DetectionError(PiiportError):
    """The detector cannot be built or run (missing model, bad language)."""

    def __init__(self, message: str, *, language: str | None = None, model: str | None = None):
        super().__init__(message)
        self.language = language
        self.model = model


class IndexBusyError(PiiportError):
    """Another scan is writing the index (``run_id`` and ``since`` when known)."""

    def __init__(self, message: str, *, run_id: int | None = None, since: str | None = None):
        super().__init__(message)
        self.run_id = run_id
        self.since = since


class ExportError(PiiportError):
    """A subject cannot be exported (ambiguous identifier, existing request id, write error).

    A bad request id is a usage error (exit 2), as any other bad option is.
    """

    USAGE_REASONS = frozenset({"request_id"})

    def __init__(
        self, message: str, *, request_id: str | None = None, reason: str | None = None, matched: int | None = None
    ):
        super().__init__(message)
        self.request_id = request_id
        self.reason = reason
        self.exit_code = 2 if reason in self.USAGE_REASONS else 1
        #: With ``reason="ambiguous"``: how many subjects the identifiers matched.
        self.matched = matched


def wrong_password(detail: str) -> bool:
    """Whether a driver's message says the login failed (PostgreSQL, MySQL/MariaDB): the fix is the
    password, not a grant. MySQL's "Access denied for user" is a login failure only with
    "(using password"; without it, it is a missing grant."""
    lowered = detail.lower()
    return any(s in lowered for s in ("password authentication failed", "no password supplied", "(using password"))
