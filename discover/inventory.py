"""Inventory: where personal data lives, per source, container and field, with masked examples."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from discover.index import Index

COLUMNS = ("source", "container", "field", "entity_type", "origin", "records", "non_null", "prevalence", "examples")


@dataclass(frozen=True)
class InventoryRow:
    source: str
    container: str
    field: str
    entity_type: str
    origin: str  # "field": a column of that type; "text": found inside free text
    records: int
    non_null: int
    prevalence: float
    examples: tuple[str, ...]
    stale: bool = False

    def as_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["examples"] = list(self.examples)
        return d


def inventory(index: Index) -> list[InventoryRow]:
    """One row per source, container, field and entity type with at least one hit."""
    return [
        InventoryRow(
            source=h.source,
            container=h.container,
            field=h.field,
            entity_type=h.entity_type,
            origin=h.origin,
            records=h.records,
            non_null=h.non_null,
            prevalence=h.prevalence,
            examples=tuple(json.loads(h.examples or "[]")),
            stale=h.stale,
        )
        for h in index.field_hits()
    ]


def notes(index: Index) -> list[str]:
    """What a reader of the inventory should know about the scans behind it: a scan running
    now, and scans that were interrupted (killed) and not done again since."""
    out = []
    for run in index.interrupted_runs():
        out.append(
            f"scan run {run.id} (started {run.started_at}) was interrupted before it finished; containers "
            f"it had not reached are missing or from an earlier scan: scan {', '.join(run.sources)} again"
        )
    if index.scan_in_progress():
        running = [r for r in index.runs() if r.status == "running"]
        since = f" (run {running[-1].id}, since {running[-1].started_at})" if running else ""
        out.append(f"a scan is running{since}; this inventory shows the containers it has finished so far")
    return out


def render(rows: Sequence[InventoryRow], fmt: str) -> str:
    """Render as ``table``, ``json``, ``csv`` or ``md``."""
    if fmt == "json":
        return json.dumps([r.as_dict() for r in rows], indent=2, ensure_ascii=False)
    cells = [
        [
            r.source,
            r.container,
            r.field,
            r.entity_type,
            r.origin,
            str(r.records),
            str(r.non_null),
            f"{r.prevalence:.2f}",
            ", ".join(r.examples),
        ]
        for r in rows
    ]
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(cells)
        return buf.getvalue()
    if fmt == "md":
        lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in cells]
        return "\n".join(lines) + "\n"
    if not cells:
        return "No personal data found in the index.\n"
    widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(COLUMNS)]
    fmt_row = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt_row.format(*COLUMNS), fmt_row.format(*("-" * w for w in widths))]
    lines += [fmt_row.format(*row) for row in cells]
    return "\n".join(line.rstrip() for line in lines) + "\n"
