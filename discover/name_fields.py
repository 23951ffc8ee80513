"""How the scan records a name found in name columns: written by ``discover.extract``, read by
``discover.subjects``. One place, so the writer and the reader cannot drift apart.
"""

from __future__ import annotations

#: A first and a last name column make one name; its findings name both fields, joined by this.
COMBINED = "+"
#: A full name (one column, or first + last together) scores this; a lone first or last name
#: scores ``PART_NAME_SCORE`` and is no evidence that two records are two people.
FULL_NAME_SCORE = 0.9
PART_NAME_SCORE = 0.6


def combined_field(first: str, last: str) -> str:
    """The field of the findings of a first and a last name column taken together."""
    return f"{first}{COMBINED}{last}"


def name_columns(field: str) -> tuple[str, ...]:
    """The columns a finding's field names: (first, last) for a combined name, else the field alone."""
    parts = tuple(field.split(COMBINED))
    return parts if len(parts) == 2 else (field,)
