"""piiport: find personal data, index it per subject, export portability packages.

The public API is imported lazily so that ``import piiport`` (and ``piiport --help``)
stays instant.
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Any

#: piiport's other top-level packages. Their names are generic (PyPI has packages called so):
#: each carries ``__piiport__ = True``, checked here before anything imports them.
OWN_PACKAGES = ("connectors", "discover", "export")


class ShadowedPackageError(ImportError):
    """A foreign package of the same name as one of ``OWN_PACKAGES`` comes first on ``sys.path``.

    Not a :class:`PiiportError`: that root lives in ``connectors``, which may be the package shadowed.
    """


def _check_own_packages() -> None:
    import importlib
    import importlib.util
    from pathlib import Path

    for name in OWN_PACKAGES:
        try:
            module = importlib.import_module(name)
        except Exception:
            spec = importlib.util.find_spec(name)
            if spec and spec.origin and Path(spec.origin).parent == Path(__file__).parent.parent / name:
                raise  # our own package is broken: its own error says how
            module = None
        if module is not None and getattr(module, "__piiport__", None) is True:
            continue
        spec = importlib.util.find_spec(name) if module is None else module.__spec__
        where = (spec.origin or next(iter(spec.submodule_search_locations or []), None)) if spec else None
        raise ShadowedPackageError(
            f"the package {name!r} imported from {where or 'an unknown place'} is not piiport's own; "
            "install piiport in a virtual environment of its own (python -m venv, or pipx)",
            name=name,
            path=where,
        )


def _one_line(kind: type[BaseException], error: BaseException, tb: TracebackType | None) -> None:
    # A broken install is no bug of the caller's: the CLI (and any script) says so in one line.
    if isinstance(error, ShadowedPackageError):
        print(f"Error: {error}", file=sys.stderr)
    else:
        _previous_hook(kind, error, tb)


try:
    _check_own_packages()
except ShadowedPackageError:
    _previous_hook = sys.excepthook
    sys.excepthook = _one_line
    raise

from piiport.errors import (  # noqa: E402
    AmbiguousSubjectError,
    ConfigError,
    DetectionError,
    ExportError,
    IndexBusyError,
    PiiportError,
    RequestIdError,
    SourceError,
)

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
    "locate": "piiport.api",
    "missing_processing": "piiport.api",
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
    "AmbiguousSubjectError",
    "ConfigError",
    "DetectionError",
    "ExportError",
    "IndexBusyError",
    "PiiportError",
    "RequestIdError",
    "ShadowedPackageError",
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
