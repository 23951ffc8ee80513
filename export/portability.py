"""The portability profile (GDPR Art. 20): only data processed on consent or contract, no inferred data.

What is left out is named (source, container, field) with the reason, never with values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from export.formats import Table
from export.processing import PORTABLE_BASES, Processing

ACCESS = "access"
PORTABILITY = "portability"
PURPOSES = (ACCESS, PORTABILITY)


def portable(tables: Sequence[Table], processing: Processing) -> tuple[list[Table], list[dict[str, Any]]]:
    """The tables a portability package holds, and what was left out and why.

    Reference rows (catalogue context) are not the subject's data and are left out silently.
    """
    kept: list[Table] = []
    left: list[dict[str, Any]] = []
    for t in tables:
        if t.role != "subject":
            continue
        entry = processing.effective(t.source, t.container)
        where = {"source": t.source, "container": t.container, "records": len(t.rows)}
        if entry is None or entry.legal_basis is None:
            left.append({**where, "reason": "no_entry"})
        elif entry.legal_basis not in PORTABLE_BASES:
            left.append({**where, "reason": "legal_basis", "legal_basis": entry.legal_basis})
        elif entry.portability is False:
            left.append({**where, "reason": "container"})
        else:
            dropped = [
                f
                for f in entry.not_portable_fields
                if any(f == name for name, _ in t.fields) or any(f in row for row in t.rows)
            ]
            if dropped:
                rows = [{k: v for k, v in row.items() if k not in dropped} for row in t.rows]
                fields = [(n, ty) for n, ty in t.fields if n not in dropped]
                t = replace(t, rows=rows, fields=fields)
                left.extend(
                    {"source": t.source, "container": t.container, "field": f, "reason": "field"} for f in dropped
                )
            kept.append(t)
    return kept, left
