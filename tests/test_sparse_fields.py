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
from fixtures import package_tables, scanned
from servers import mariadb_database, postgres_database, run_sql

from connectors.base import FieldInfo, Record, SourceSpec, connect
from discover.index import Index
from discover.inventory import inventory
from discover.profile import NO_VALUES, Profiler
from discover.scan import Sampling, profile_container, scan
from discover.settings import ScanSettings
from discover.sparse import MAX_FIELDS, FieldCensus, undecided

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


def _customers(connector: Any) -> Any:
    return next(c for c in connector.containers() if c.name == "customers")


def _package_rows(index: Index, tmp_path: Path, email: str) -> dict[str, list[Any]]:
    """Per container, the ids (or lines) of the records the subject's package holds."""
    tables, manifest = package_tables(index, tmp_path / "out", email)
    assert manifest["complete"], manifest
    return {c: sorted(r.get("id", r.get("line")) for r in rows) for c, rows in tables.items()}


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
    scanned(index, detector, workers, SourceSpec(name="crm", url=f"sqlite:///{_sqlite(tmp_path / 'crm.db')}"))
    _check_table(index, tmp_path)


def test_the_profile_says_which_fields_were_profiled_past_the_sample(tmp_path: Path, detector) -> None:
    db = _sqlite(tmp_path / "crm.db")
    profiler = Profiler(detector, regions=["FR"], entities=["EMAIL_ADDRESS", "PERSON", "PHONE_NUMBER"], language="en")
    spec = SourceSpec(name="crm", url=f"sqlite:///{db}")
    with connect(spec) as connector, connector.open(_customers(connector)) as reader:
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
    scanned(index, detector, workers, SourceSpec(name="crm", url=server))
    _check_table(index, tmp_path)
    with connect(SourceSpec(name="crm", url=server)) as connector, connector.open(_customers(connector)) as reader:
        keys = [r.key for r in reader.sparse_sample(["notes", "backup_email", "meta", "fax", "tier"], 1)]
    assert keys == ["[1500]", "[3100]", "[4400]"]  # the first row by key of each, once each


@pytest.mark.servers
def test_a_postgresql_rescan_reads_only_the_changed_ranges_though_the_rows_moved(
    tmp_path: Path, index: Index, detector
) -> None:
    with postgres_database() as url:
        _load(url, _SERVERS["postgresql"][1])
        spec = SourceSpec(name="crm", url=url)
        settings = ScanSettings(unit_rows=500, text_unit_rows=500)
        assert scan([spec], index=index, detector=detector, settings=settings).ok
        # An update writes the row anew at the end of the table: row 3100, the first of the two
        # with a backup address, now comes after row 5200 in the table's physical order.
        run_sql(url, "UPDATE customers SET notes = notes || ' (2)' WHERE id = 3100")
        with connect(spec) as connector, connector.open(_customers(connector)) as reader:
            assert [r.key for r in reader.sparse_sample(["backup_email"], 1)] == ["[3100]"]
        result = scan([spec], index=index, detector=detector, settings=settings)
        assert result.ok, result.errors
        table = result.containers[0]
        assert (table.read, table.ranges_read, table.ranges_total) == ("ranges", 1, 13)


def _files(root: Path) -> Path:
    root.mkdir()
    with open(root / "events.jsonl", "w", encoding="utf-8") as fh:
        for i in range(ROWS):
            doc: dict[str, Any] = {"id": i, "event": "page_view", "user": f"user{i}@example.com"}
            if i == 4321:  # a record with personal data in both passes
                doc["support"] = {"email": SUBJECT, "agent": "desk 4"}
            fh.write(json.dumps(doc) + "\n")
            if i == 5000:
                fh.write('{"id": 5000.5, "event": \n')  # one malformed line, skipped and counted once
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
        ("events.jsonl", "user", "EMAIL_ADDRESS"): (ROWS, ROWS),
        ("events.jsonl", "support.email", "EMAIL_ADDRESS"): (1, 1),
        ("leads.csv", "backup_email", "EMAIL_ADDRESS"): (1, 1),
    }
    rows = _package_rows(index, tmp_path, SUBJECT)
    assert rows == {"events.jsonl": [4321], "leads.csv": ["777"]}
    # Records counted once, not once a pass; the malformed line too.
    events = next(c for c in result.containers if c.container == "events.jsonl")
    assert (events.records, events.skipped_records, len(events.warnings)) == (ROWS, 1, 1)
    assert index.container_record_counts("files", "events.jsonl") == ROWS
    assert index.container_record_counts("files", "leads.csv") == 1


def test_the_rows_looked_for_are_the_first_by_key_with_a_value(tmp_path: Path) -> None:
    db = _sqlite(tmp_path / "crm.db")
    with (
        connect(SourceSpec(name="crm", url=f"sqlite:///{db}")) as connector,
        connector.open(_customers(connector)) as reader,
    ):
        assert [r.key for r in reader.sparse_sample(["notes", "backup_email", "fax"], 1)] == ["[1500]", "[3100]"]
        # Row 3100 has a value in both: it is read once.
        assert [r.key for r in reader.sparse_sample(["notes", "backup_email"], 5)] == ["[1500]", "[3100]", "[5200]"]


def test_the_census_follows_a_bounded_number_of_fields() -> None:
    census = FieldCensus(["id"], size=2)
    census.add(Record(f"[{i}]", {"id": i, f"scores.user{i}": i, "note": "x" if i < 5 else None}) for i in range(800))
    assert len(census.values) == MAX_FIELDS and census.unfollowed == 800 + 1 - MAX_FIELDS
    assert census.values["note"] == ["x", "x"]  # full after two: no more kept


def test_a_json_column_the_sample_held_as_paths_is_not_looked_for_again(detector) -> None:
    profiler = Profiler(detector, regions=["FR"], entities=["EMAIL_ADDRESS", "PERSON"], language="en")
    sample = [Record(f"[{i}]", {"id": i, "meta.lang": "fr", "tags[]": ["a"]}) for i in range(50)]
    known = [FieldInfo("id", "int"), FieldInfo("meta", "json"), FieldInfo("tags", "other"), FieldInfo("memo", "text")]
    profiles = profiler.profile(sample, known)
    assert profiles["meta"].reason == profiles["tags"].reason == profiles["memo"].reason == NO_VALUES
    # meta and tags had values, read as paths; only memo was empty.
    assert undecided(profiles, {f.name: f.type for f in known}) == ["memo"]


def test_fields_past_the_census_bound_are_said_not_scanned(tmp_path: Path, index: Index, detector) -> None:
    root = tmp_path / "logs"
    root.mkdir()
    with open(root / "scores.jsonl", "w", encoding="utf-8") as fh:
        for i in range(ROWS):  # an object keyed by user id: a path per record
            fh.write(json.dumps({"id": i, "scores": {f"u{i}": i % 7}}) + "\n")
    result = scan([SourceSpec(name="logs", url=str(root))], index=index, detector=detector)
    assert result.ok, result.errors
    unfollowed = ROWS - 200 - MAX_FIELDS  # the sample's 200 paths are decided
    assert result.containers[0].notes == [
        f"{unfollowed:,} field(s) with no value in the profiling sample were not looked for further "
        f"(more than {MAX_FIELDS}: keys that are data, such as ids, make a path each); not scanned"
    ]
