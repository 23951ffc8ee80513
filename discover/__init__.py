"""What is personal data: detection, field profiles, identifiers, the index. Never writes packages.

Names are imported lazily, so that importing ``discover.errors`` (as ``piiport.errors`` does)
loads neither the detector nor the index.
"""

from __future__ import annotations

from typing import Any

#: piiport checks this marker at import: a foreign ``discover`` package first on the path has none.
__piiport__ = True

_LAZY = {
    "DEFAULT_INDEX": "discover.index",
    "ContainerResult": "discover.scan",
    "DetectionSettings": "discover.settings",
    "Detector": "discover.detector",
    "Entity": "discover.detector",
    "Index": "discover.index",
    "InventoryRow": "discover.inventory",
    "ScanResult": "discover.scan",
    "ScanSettings": "discover.settings",
    "inventory": "discover.inventory",
    "scan": "discover.scan",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'discover' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
