"""Writers for the package's data files: JSON, CSV and Parquet hold the same records.

JSON: an array of objects; dates ISO-8601, decimals as exact strings, bytes as base64.
CSV: UTF-8 with a header; nested values as JSON text. Parquet: column types kept from
the source (integers, decimals, dates, timestamps).
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import decimal
import io
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from export.errors import ExportError

LOCATOR = "_piiport_locator"
MATCH = "_piiport_match"
FORMATS = ("json", "csv", "parquet")


@dataclass
class Table:
    """One container's records for the package, with their field types."""

    source: str
    container: str
    fields: list[tuple[str, str]]  # (name, logical type)
    rows: list[dict[str, Any]]  # source values, plus LOCATOR and MATCH
    precision: dict[str, tuple[int, int]]  # decimal (precision, scale) per field where known
    keys: list[str] = field(default_factory=list)  # each row's record key, as the index stores it
    #: ``subject``: the subject's records; ``reference``: catalogue rows they point at, for context.
    role: str = "subject"
    #: Other people's identifiers replaced in this table's free text, per entity type (None: redaction off).
    redactions: dict[str, int] | None = None


def to_json_value(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(k): to_json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [to_json_value(v) for v in value]
    return value


def write_json(table: Table, fh: IO[bytes]) -> None:
    fh.write(b"[")
    for i, row in enumerate(table.rows):
        fh.write(b"\n" if i == 0 else b",\n")
        fh.write(json.dumps(to_json_value(row), ensure_ascii=False).encode())
    fh.write(b"\n]\n" if table.rows else b"]\n")


def csv_columns(table: Table) -> list[str]:
    """Declared fields first, then any key the rows add, then the provenance columns.

    Nested values stay whole (as JSON text in CSV and Parquet cells), so nothing is lost.
    """
    columns = dict.fromkeys(name for name, _ in table.fields)
    for row in table.rows:
        columns.update(dict.fromkeys(row))
    return [*(c for c in columns if c not in (LOCATOR, MATCH)), LOCATOR, MATCH]


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(to_json_value(value), ensure_ascii=False)
    converted = to_json_value(value)
    return converted if isinstance(converted, str) else str(converted)


#: A cell that starts with one of these is run as a formula by spreadsheet programs (OWASP, CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralised(cell: str) -> str:
    """``=cmd|' /C calc'!A0`` → ``'=cmd|' /C calc'!A0``: shown as text, never run."""
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


def write_csv(table: Table, fh: IO[bytes], *, neutralise: bool = True) -> None:
    """``neutralise``: prefix cells a spreadsheet would run as a formula with ``'``, except numbers
    (a negative amount is a number to a spreadsheet, not a formula)."""
    text = io.TextIOWrapper(fh, encoding="utf-8", newline="", write_through=True)
    writer = csv.writer(text, lineterminator="\r\n")
    columns = csv_columns(table)

    def cell(value: Any) -> str:
        out = _csv_cell(value)
        numeric = isinstance(value, (int, float, decimal.Decimal)) and not isinstance(value, bool)
        return neutralised(out) if neutralise and not numeric else out

    writer.writerow([cell(c) for c in columns])
    for row in table.rows:
        writer.writerow([cell(row.get(c)) for c in columns])
    text.flush()
    text.detach()


def _arrow_type(ltype: str, values: Sequence[Any], precision: tuple[int, int] | None) -> Any:
    import pyarrow as pa

    if ltype == "int":
        return pa.int64()
    if ltype == "float":
        return pa.float64()
    if ltype == "bool":
        return pa.bool_()
    if ltype == "date":
        return pa.date32()
    if ltype == "datetime":
        aware = any(isinstance(v, dt.datetime) and v.tzinfo is not None for v in values)
        return pa.timestamp("us", tz="UTC" if aware else None)
    if ltype == "bytes":
        return pa.binary()
    if ltype == "decimal":
        if precision and precision[0]:
            return pa.decimal128(precision[0], precision[1])
        digits = [v.as_tuple() for v in values if isinstance(v, decimal.Decimal)]
        scale = max((-d.exponent for d in digits if isinstance(d.exponent, int)), default=0)
        scale = max(scale, 0)
        whole = max((len(d.digits) + d.exponent for d in digits if isinstance(d.exponent, int)), default=1)
        return pa.decimal128(min(38, max(whole, 1) + scale), scale)
    return pa.string()


def _arrow_value(ltype: str, value: Any) -> Any:
    if value is None:
        return None
    if ltype in {"int", "float", "bool", "date", "datetime", "bytes", "decimal"}:
        if ltype == "datetime" and isinstance(value, dt.datetime) and value.tzinfo is not None:
            return value.astimezone(dt.timezone.utc)
        if ltype == "decimal" and not isinstance(value, decimal.Decimal):
            return decimal.Decimal(str(value))
        return value
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(to_json_value(value), ensure_ascii=False)
    converted = to_json_value(value)
    return converted if isinstance(converted, str) else str(converted)


def write_parquet(table: Table, fh: IO[bytes]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    types = dict(table.fields)
    arrays = []
    fields = []
    for column in csv_columns(table):
        ltype = types.get(column, "text")
        values = [r.get(column) for r in table.rows]
        arrow_type = _arrow_type(ltype, values, table.precision.get(column))
        try:
            arrays.append(pa.array([_arrow_value(ltype, v) for v in values], type=arrow_type))
        except (pa.ArrowInvalid, pa.ArrowTypeError, decimal.InvalidOperation) as exc:
            raise ExportError(
                f"{table.source}/{table.container}: column {column} does not fit Parquet type {arrow_type} ({exc}); "
                "export this subject as json or csv",
                reason="parquet",
            ) from exc
        fields.append(pa.field(column, arrow_type))
    pq.write_table(pa.Table.from_arrays(arrays, schema=pa.schema(fields)), fh)


WRITERS = {"json": write_json, "csv": write_csv, "parquet": write_parquet}
