"""piiport's exception tree: every error it raises on purpose is a :class:`PiiportError`."""

from connectors.errors import ConfigError, DetectionError, ExportError, IndexBusyError, PiiportError, SourceError

__all__ = ["ConfigError", "DetectionError", "ExportError", "IndexBusyError", "PiiportError", "SourceError"]
