"""What leaves: gather a subject's records and write the portability package. Decides nothing about what is personal."""

from export.gather import GatherOptions
from export.subject_export import ExportResult, export_subject

__all__ = ["ExportResult", "GatherOptions", "export_subject"]
