"""piiport's exception tree: every error it raises on purpose is a :class:`PiiportError`.

Each layer defines its own errors; this module gathers them for users of the library.
"""

from connectors.errors import ConfigError, PiiportError, SourceError
from discover.errors import (
    AmbiguousSubjectError,
    DetectionError,
    DetectorCrashedError,
    IndexBusyError,
    MissingIndexError,
)
from export.errors import ExportError, RequestIdError

__all__ = [
    "AmbiguousSubjectError",
    "ConfigError",
    "DetectionError",
    "DetectorCrashedError",
    "ExportError",
    "IndexBusyError",
    "MissingIndexError",
    "PiiportError",
    "RequestIdError",
    "SourceError",
]
