"""Who a strong identifier belongs to: two e-mails on one person's own row are one holder."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from connectors.base import SourceSpec
from discover.errors import AmbiguousSubjectError
from discover.index import Index
from discover.scan import scan
from discover.settings import ScanSettings
from piiport.api import export_subject

ROWS = [
    # id, name, email, newsletter_email, phone
    (1, "Maëlle Rousseau", "maelle.rousseau@example.fr", "maelle.news@example.org", "+33 6 11 22 33 44"),
    (2, "Yusuf Demir", "yusuf.demir@example.com", None, "+33 6 55 66 77 88"),
    # Two employees on one office line: that phone belongs to nobody alone.
    (3, "Ines Caron", "ines.caron@shop.example", None, "+33 1 40 00 00 00"),
    (4, "Paul Masson", "paul.masson@shop.example", None, "+33 1 40 00 00 00"),
]


@pytest.fixture
def scanned(tmp_path: Path, workers: int, detector) -> tuple[Index, Path]:
    db = tmp_path / "crm.db"
    with sqlite3.connect(db) as conn:
        conn.execute(
            "CREATE TABLE people (id INTEGER PRIMARY KEY, full_name TEXT, email TEXT, newsletter_email TEXT, phone TEXT)"
        )
        conn.executemany("INSERT INTO people VALUES (?,?,?,?,?)", ROWS)
    index = Index(f"sqlite:///{tmp_path / 'idx' / 'index.db'}")
    result = scan(
        [SourceSpec(name="crm", url=f"sqlite:///{db}")],
        index=index,
        detector=detector,
        settings=ScanSettings(workers=workers),
    )
    assert not result.errors
    return index, tmp_path


def _records(package: Path) -> list[dict]:
    return json.loads((package / "data" / "crm" / "people.json").read_text())


def test_a_phone_beside_two_emails_of_one_row_finds_that_person(scanned: tuple[Index, Path]) -> None:
    index, tmp = scanned
    result = export_subject(phones=["06 11 22 33 44"], index=index, out=tmp / "out", request_id="R1")
    assert result.found
    records = _records(Path(result.package))
    assert [r["id"] for r in records] == [1]
    assert records[0]["_piiport_match"] == "strong"


def test_the_newsletter_email_reaches_the_same_person(scanned: tuple[Index, Path]) -> None:
    index, tmp = scanned
    result = export_subject(emails=["maelle.news@example.org"], index=index, out=tmp / "out", request_id="R2")
    assert [r["id"] for r in _records(Path(result.package))] == [1]


def test_an_office_line_of_two_employees_is_still_refused(scanned: tuple[Index, Path]) -> None:
    index, tmp = scanned
    with pytest.raises(AmbiguousSubjectError, match="shared by 2 subjects") as caught:
        export_subject(phones=["+33 1 40 00 00 00"], index=index, out=tmp / "out", request_id="R3")
    assert caught.value.reason == "ambiguous"
