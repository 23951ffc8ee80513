"""Fields filled on a few records only: a profiling sample of 200 records holds none of their
values, yet the scan must read them and the export must find the subject's rows in them
(``discover.sparse``). On SQLite, PostgreSQL and MariaDB tables and on CSV and JSON Lines files,
with namesakes, at one worker and at the default count."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from servers import mariadb_database, postgres_database, run_sql

from connectors.base import Record, SourceSpec, connect
from discover.index import Index
from discover.inventory import inventory
from discover.profile import NO_VALUES, Profiler
from discover.scan import Sampling, profile_container, scan
from discover.settings import ScanSettings
from discover.sparse import MAX_FIELDS, FieldCensus
from piiport.api import export_subject
from piiport.config import Config

ROWS = 6000
SUBJECT = "marie.martin@example.fr"
#: Rows with a value in the sparse columns, by id: (notes, backup_email, meta).
SPARSE = {
    1500: ("Called back about the invoice, cc marie.martin@example.fr", None, None),
    3100: ("customer asked for a paper copy of the contract", "jean.dupont@example.org", None),
    4400: (None, None, {"contact": {"email": "paul.durand@example.net"}}),
    5200: (None, "lea.roux@example.com", None),
}


def _rows() -> list[tuple[Any, ...]]:
    """Customers; every tenth is a Marie Martin (namesakes, each with her own address)."""
    out = []
    for i in range(1, ROWS + 1):
        first, last = ("Marie", "Martin") if i % 10 == 0 else ("Luc", f"Client{i}")
        notes, backup, meta = SPARSE.get(i, (None, None, None))
        out.append(
            (i, first, last, f"user{i}@example.com", notes, backup, None if meta is None else json.dumps(meta), None)
        )
    return out


_COLUMNS = "id, first_name, last_name, email, notes, backup_email, meta, fax"


def _sqlite(path: Path) -> Path:
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE customers (id INTEGER PRIMARY KEY, first_name TEXT, last_name TEXT, email TEXT, "
            "notes TEXT, backup_email TEXT, meta TEXT, fax TEXT)"
        )
        db.executemany(f"INSERT INTO customers ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", _rows())
    return path


def _load(url: str, ddl: str) -> None:
    from sqlalchemy import create_engine, text

    run_sql(url, ddl)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(f"INSERT INTO customers ({_COLUMNS}) VALUES (:id, :first, :last, :email, :notes, :ref, :meta, :fax)"),
            [
                dict(zip(("id", "first", "last", "email", "notes", "ref", "meta", "fax"), r, strict=True))
                for r in _rows()
            ],
        )
    engine.dispose()


def _package_rows(index: Index, tmp_path: Path, email: str) -> dict[str, list[Any]]:
    """Per container, the ids (or lines) of the records the subject's package holds."""
    result = export_subject(
        emails=[email], config=Config(), index=index, out=tmp_path / "out", request_id=email.split("@")[0], redact=False
    )
    assert result.complete, result.manifest
    out = {}
    for f in result.manifest["files"]:
        rows = json.loads((Path(result.package) / f["path"]).read_text("utf-8"))
        out[f["container"]] = sorted(r.get("id", r.get("line")) for r in rows)
    return out


def _check_table(index: Index, tmp_path: Path) -> None:
    inv = {(r.container, r.field, r.entity_type): r.records for r in inventory(index)}
    assert inv[("customers", "notes", "EMAIL_ADDRESS")] == 1
    assert inv[("customers", "backup_email", "EMAIL_ADDRESS")] == 2
    assert inv[("customers", "meta.contact.email", "EMAIL_ADDRESS")] == 1
    assert not any(f == "fax" for _, f, _ in inv)  # empty on every row: nothing to read
    # Her own row only: not the 600 other Marie Martins.
    assert _package_rows(index, tmp_path, SUBJECT) == {"customers": [1500]}
    assert _package_rows(index, tmp_path, "jean.dupont@example.org") == {"customers": [3100]}
    assert _package_rows(index, tmp_path, "paul.durand@example.net") == {"customers": [4400]}


def test_sqlite_columns_filled_on_a_few_rows_are_scanned(tmp_path: Path, index: Index, detector, workers: int) -> None:
    db = _sqlite(tmp_path / "crm.db")
    result = scan(
        [SourceSpec(name="crm", url=f"sqlite:///{db}")],
        index=index,
        detector=detector,
        settings=ScanSettings(workers=workers),
    )
    assert result.ok, result.errors
    _check_table(index, tmp_path)


def test_the_profile_says_which_fields_were_profiled_past_the_sample(tmp_path: Path, detector) -> None:
    db = _sqlite(tmp_path / "crm.db")
    profiler = Profiler(detector, regions=["FR"], entities=["EMAIL_ADDRESS", "PERSON", "PHONE_NUMBER"], language="en")
    spec = SourceSpec(name="crm", url=f"sqlite:///{db}")
    with connect(spec) as connector, connector.open(next(connector.containers())) as reader:
        profiles = profile_container(reader, profiler, Sampling.of(ScanSettings())).profiles
    assert profiles["fax"].reason == NO_VALUES and not profiles["fax"].is_pii
    notes = profiles["notes"]
    assert notes.free_text and notes.reason == "free text; a sparse field, profiled from records that hold a value"
    assert notes.sampled == 2 and notes.null_share == 1.0  # the random sample's share: it held none
    assert profiles["backup_email"].entity_type == "EMAIL_ADDRESS"
    assert profiles["meta.contact.email"].entity_type == "EMAIL_ADDRESS"
    assert profiles["email"].reason == "e-mail values and column name"  # drawn from the sample as before


def test_a_value_written_later_in_a_sparse_column_is_found_by_the_incremental_rescan(
    tmp_path: Path, index: Index, detector
) -> None:
    db = _sqlite(tmp_path / "crm.db")
    spec = SourceSpec(name="crm", url=f"sqlite:///{db}")
    scan([spec], index=index, detector=detector)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE customers SET backup_email = 'anne.petit@example.com' WHERE id = 2600")
    result = scan([spec], index=index, detector=detector)
    assert result.ok and result.containers[0].read == "ranges"  # only the changed range re-read
    assert _package_rows(index, tmp_path, "anne.petit@example.com") == {"customers": [2600]}


_SERVERS = {
    "postgresql": (
        postgres_database,
        # An enum column empty on every row: looked for with IS NOT NULL only ('' is no enum value).
        "CREATE TYPE tier AS ENUM ('gold', 'silver');\n"
        "CREATE TABLE customers (id int PRIMARY KEY, first_name text, last_name varchar(80), email text, "
        "notes text, backup_email varchar(200), meta jsonb, fax text, tier tier, external_id uuid)",
    ),
    "mariadb": (
        mariadb_database,
        "CREATE TABLE customers (id int PRIMARY KEY, first_name varchar(80), last_name varchar(80), "
        "email varchar(200), notes text, backup_email varchar(200), meta json, fax varchar(40), "
        "tier enum('gold', 'silver'))",
    ),
}


@pytest.fixture(scope="module", params=sorted(_SERVERS))
def server(request: pytest.FixtureRequest) -> Iterator[str]:
    """The customers table in a database of its own on the local server."""
    database, ddl = _SERVERS[request.param]
    with database() as url:
        _load(url, ddl)
        yield url


@pytest.mark.servers
def test_server_columns_filled_on_a_few_rows_are_scanned(
    server: str, tmp_path: Path, index: Index, detector, workers: int
) -> None:
    result = scan(
        [SourceSpec(name="crm", url=server)], index=index, detector=detector, settings=ScanSettings(workers=workers)
    )
    assert result.ok, result.errors
    _check_table(index, tmp_path)


def _files(root: Path) -> Path:
    root.mkdir()
    with open(root / "events.jsonl", "w", encoding="utf-8") as fh:
        for i in range(ROWS):
            doc: dict[str, Any] = {"id": i, "event": "page_view", "path": f"/p/{i % 40}"}
            if i == 4321:
                doc["support"] = {"email": SUBJECT, "agent": "desk 4"}
            fh.write(json.dumps(doc) + "\n")
    with open(root / "leads.csv", "w", encoding="utf-8") as fh:
        fh.write("id,status,backup_email,comment\n")
        for i in range(ROWS):
            backup = SUBJECT if i == 777 else ""
            fh.write(f"{i},open,{backup},\n")
    return root


@pytest.mark.parametrize("in_tasks", [True, False], ids=["profiled-in-tasks", "profiled-first"])
def test_file_fields_filled_on_a_few_records_are_scanned(
    tmp_path: Path, index: Index, detector, workers: int, in_tasks: bool
) -> None:
    root = _files(tmp_path / "files")
    result = scan(
        [SourceSpec(name="files", url=str(root))],
        index=index,
        detector=detector,
        settings=ScanSettings(workers=workers, profile_in_tasks=in_tasks),
    )
    assert result.ok, result.errors
    inv = {(r.container, r.field, r.entity_type): (r.records, r.non_null) for r in inventory(index)}
    assert inv == {
        ("events.jsonl", "support.email", "EMAIL_ADDRESS"): (1, 1),
        ("leads.csv", "backup_email", "EMAIL_ADDRESS"): (1, 1),
    }
    rows = _package_rows(index, tmp_path, SUBJECT)
    assert rows.keys() == {"events.jsonl", "leads.csv"} and all(len(v) == 1 for v in rows.values())
    assert sum(c.records for c in result.containers) == 2 * ROWS  # records counted once, not per pass


def test_the_census_follows_a_bounded_number_of_fields() -> None:
    census = FieldCensus(["id"], size=2)
    census.add(Record(f"[{i}]", {"id": i, f"scores.user{i}": i, "note": "x" if i < 5 else None}) for i in range(800))
    assert len(census.values) == MAX_FIELDS and census.unfollowed == 800 + 1 - MAX_FIELDS
    assert census.values["note"] == ["x", "x"]  # full after two: no more kept
