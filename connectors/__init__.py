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
from connectors.errors import ConfigError, PiiportError, SourceError
from connectors.redact import mask_url

#: piiport checks this marker at import: a foreign ``connectors`` package first on the path has none.
__piiport__ = True

__all__ = [
    "ConfigError",
    "Connector",
    "ContainerReader",
    "ContainerRef",
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
