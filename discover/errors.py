"""Errors of the detection layer: the detector, the index, resolving a subject."""

from __future__ import annotations

from connectors.errors import ConfigError, PiiportError


class DetectionError(PiiportError):
    """The detector cannot be built or run (missing model, bad language, a worker that died)."""

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


class AmbiguousSubjectError(PiiportError):
    """The request's identifiers match more than one subject (``matched`` of them): export refuses it."""

    reason = "ambiguous"

    def __init__(self, message: str, *, matched: int):
        super().__init__(message)
        self.matched = matched


class MissingIndexError(ConfigError):
    """There is no index at the configured place (nothing was scanned into it yet)."""


class DetectorCrashedError(DetectionError):
    """A detection worker process died (out of memory, or killed)."""
