"""piiport: find personal data, index it per subject, export portability packages.

The public API is imported lazily so that ``import piiport`` (and ``piiport --help``)
stays instant.
"""

from __future__ import annotations

from typing import Any

from piiport.errors import ConfigError, DetectionError, ExportError, IndexBusyError, PiiportError, SourceError

__version__ = "0.1.0"

_LAZY = {
    "scan_sources": "piiport.api",
    "get_inventory": "piiport.api",
    "inventory_notes": "piiport.api",
    "detect_texts": "piiport.api",
    "open_index": "piiport.api",
    "build_detector": "piiport.api",
    "run_demo": "piiport.api",
    "export_subject": "piiport.api",
    "diff_runs": "piiport.api",
    "changes_of_run": "piiport.api",
    "check_retention": "piiport.api",
    "write_report": "piiport.api",
    "RunDiff": "discover.changes",
    "RetentionReport": "discover.retention",
    "ExportResult": "export",
    "load_config": "piiport.config",
    "Config": "piiport.config",
    "SourceSpec": "connectors.base",
}

__all__ = [
    "ConfigError",
    "DetectionError",
    "ExportError",
    "IndexBusyError",
    "PiiportError",
    "SourceError",
    "__version__",
    *sorted(_LAZY),
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'piiport' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
