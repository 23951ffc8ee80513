"""Read-only access to the places personal data lives. Knows nothing of detection."""

from connectors.base import (
    Connector,
    ContainerReader,
    ContainerRef,
    FieldInfo,
    Record,
    Relation,
    SourceSpec,
    connect,
    known_schemes,
    register,
    url_scheme,
)
from connectors.errors import ConfigError, DetectionError, ExportError, PiiportError, SourceError
from connectors.redact import mask_url

__all__ = [
    "ConfigError",
    "Connector",
    "ContainerReader",
    "ContainerRef",
    "DetectionError",
    "ExportError",
    "FieldInfo",
    "PiiportError",
    "Record",
    "Relation",
    "SourceError",
    "SourceSpec",
    "connect",
    "known_schemes",
    "mask_url",
    "register",
    "url_scheme",
]
