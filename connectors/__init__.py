"""Read-only access to the places personal data lives. Knows nothing of detection."""

from connectors.base import (
    ENTRY_POINT_GROUP,
    Connector,
    ContainerReader,
    ContainerRef,
    FieldInfo,
    Record,
    Relation,
    RelationalReader,
    SourceSpec,
    connect,
    connector_class,
    known_schemes,
    register,
    url_scheme,
)
from connectors.errors import ConfigError, PiiportError, SourceError
from connectors.options import S3Options, SourceOptions, SqlOptions
from connectors.redact import mask_url

#: piiport checks this marker at import: a foreign ``connectors`` package first on the path has none.
__piiport__ = True

__all__ = [
    "ENTRY_POINT_GROUP",
    "ConfigError",
    "Connector",
    "ContainerReader",
    "ContainerRef",
    "FieldInfo",
    "PiiportError",
    "Record",
    "Relation",
    "RelationalReader",
    "S3Options",
    "SourceError",
    "SourceOptions",
    "SourceSpec",
    "SqlOptions",
    "connect",
    "connector_class",
    "known_schemes",
    "mask_url",
    "register",
    "url_scheme",
]
