"""What is personal data: detection, field profiles, identifiers, the index. Never writes packages."""

from discover.detector import Detector, Entity
from discover.index import DEFAULT_INDEX, Index
from discover.inventory import InventoryRow, inventory
from discover.scan import ContainerResult, ScanResult, scan
from discover.settings import DetectionSettings, ScanSettings

__all__ = [
    "DEFAULT_INDEX",
    "ContainerResult",
    "DetectionSettings",
    "Detector",
    "Entity",
    "Index",
    "InventoryRow",
    "ScanResult",
    "ScanSettings",
    "inventory",
    "scan",
]
