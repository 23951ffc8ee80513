"""Look-ups that stay fast as a container grows: merged parts, and namesakes skipped in the postings."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

import discover.index_write as index_write
from connectors.base import SourceSpec
from connectors.errors import ConfigError
from discover.identifiers import EMAIL, PERSON, PHONE, fold_name
from discover.index import Index, RecordRef
from discover.index_schema import SCHEMA_VERSION
from discover.scan import scan
from discover.settings import ScanSettings
from piiport.api import export_subject

FIRST = ["Alice", "Bruno", "Chloe", "David", "Emma"]
LAST = ["Martin", "Dubois", "Smith"]


def _customers(path: Path, rows: int) -> Path:
    """Unique e-mails and phones; names repeat every 15 rows (namesakes); some rows have no e-mail or phone."""
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE customers (id INTEGER PRIMARY KEY, first_name TEXT, last_name TEXT, email TEXT, phone TEXT)"
        )
        db.executemany(
            "INSERT INTO customers VALUES (?,?,?,?,?)",
            [
                (
                    i,
                    FIRST[i % 5],
                    LAST[i % 3],
                    None if i % 97 == 0 else f"user{i}@example.com",
                    None if i % 97 == 0 else f"+33 6 12 {i // 100 % 100:02d} {i % 100:02d} 00",
                )
                for i in range(1, rows + 1)
            ],
        )
    return path


@pytest.fixture
def big_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, detector, workers: int) -> Index:
    # Small units and a small merge size, so one container arrives as many parts and is stored as a few.
    monkeypatch.setattr(index_write, "MERGED_PART_ENTRIES", 3_000)
    db = _customers(tmp_path / "crm.db", 3_000)
    index = Index(f"sqlite:///{tmp_path / 'idx' / 'index.db'}")
    settings = ScanSettings(workers=workers, unit_rows=200, batch_size=100, unit_findings_in_memory=600)
    result = scan([SourceSpec(name="crm", url=f"sqlite:///{db}")], index=index, detector=detector, settings=settings)
    assert not result.errors
    return index


def test_a_container_of_many_parts_finds_every_record(big_index: Index) -> None:
    for i in (1, 2, 150, 199, 200, 201, 1_234, 2_999, 3_000):
        found = big_index.findings_for([big_index.ident(EMAIL, f"user{i}@example.com")])
        assert [(f.record_key, f.field) for f in found] == [(f"[{i}]", "email")]
        record = big_index.findings_in([RecordRef(found[0].container_id, f"[{i}]")])
        assert sorted((f.field, f.entity_type) for f in record) == [
            ("email", EMAIL),
            ("first_name+last_name", PERSON),
            ("phone", PHONE),
        ]
    assert big_index.count_findings() == 3 * 3_000 - 2 * (3_000 // 97)


def test_namesakes_with_their_own_email_are_skipped_in_the_postings(big_index: Index) -> None:
    name = big_index.ident(PERSON, fold_name("Alice Martin"))  # rows 15, 30, 45, ...
    every = big_index.findings_for([name])
    assert sorted(int(f.record_key.strip("[]")) for f in every) == list(range(15, 3_001, 15))
    unowned = big_index.findings_for([name], skip_owned=True)
    # Only the namesakes without an e-mail or phone of their own (every 97th row) are left to check.
    assert sorted(int(f.record_key.strip("[]")) for f in unowned) == [i for i in range(15, 3_001, 15) if i % 97 == 0]


def test_export_of_a_subject_with_many_namesakes(big_index: Index, tmp_path: Path) -> None:
    result = export_subject(emails=["user30@example.com"], index=big_index, out=tmp_path / "out", request_id="REQ-1")
    assert (result.found, result.records) == (True, 1)
    (data,) = [f for f in result.manifest["files"] if f["container"] == "customers"]
    rows = json.loads((tmp_path / "out" / "REQ-1" / data["path"]).read_text())
    assert [r["id"] for r in (rows["records"] if isinstance(rows, dict) else rows)] == [30]
    # The namesakes without an e-mail or phone are for review; those with their own are not.
    assert sorted(e["locator"]["key"] for e in result.manifest["review"]) == [
        [i] for i in range(15, 3_001, 15) if i % 97 == 0
    ]


def test_an_index_of_schema_version_2_is_upgraded_in_place(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'index.db'}"
    Index(url).close()
    with sqlite3.connect(tmp_path / "index.db") as db:
        db.execute("UPDATE meta SET v = '2' WHERE k = 'schema_version'")
    Index(url, create=False).close()
    with sqlite3.connect(tmp_path / "index.db") as db:
        assert db.execute("SELECT v FROM meta WHERE k = 'schema_version'").fetchone() == (SCHEMA_VERSION,)
        db.execute("UPDATE meta SET v = '1' WHERE k = 'schema_version'")
    with pytest.raises(ConfigError, match="index schema version 1 is not supported"):
        Index(url, create=False)
