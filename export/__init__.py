"""What leaves: gather a subject's records and write the portability package. Decides nothing about what is personal.

Names are imported lazily, so that the config (which reads ``export.processing``) stays cheap to load.
"""

from __future__ import annotations

from typing import Any

#: piiport checks this marker at import: a foreign ``export`` package first on the path has none.
__piiport__ = True

_LAZY = {
    "GatherOptions": "export.gather",
    "ExportResult": "export.subject_export",
    "export_subject": "export.subject_export",
}

__all__ = ["ExportResult", "GatherOptions", "export_subject"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'export' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
