"""Subject export end to end against real SQLite databases and real files."""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import hashlib
import json
import sqlite3
import zipfile
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from fixtures import CUSTOMERS, EMPLOYEES

from connectors.base import SourceSpec
from discover.errors import AmbiguousSubjectError
from discover.index import Index
from discover.scan import scan
from export.errors import ExportError, RequestIdError
from export.formats import neutralised
from piiport.api import export_subject
from piiport.config import Config

META = ("_piiport_locator", "_piiport_match")


@pytest.fixture
def shop(shop_db: Path, index: Index, detector) -> Index:
    with sqlite3.connect(shop_db) as db:
        db.executescript(
            """
            CREATE TABLE payments (id INTEGER PRIMARY KEY, order_id INTEGER REFERENCES orders(id),
                paid_on DATE, captured_at DATETIME, amount NUMERIC(10, 2), refunded BOOLEAN);
            INSERT INTO payments VALUES (1, 10, '2026-01-05', '2026-01-05 10:22:01.000000', 39.80, 0);
            INSERT INTO payments VALUES (2, 11, '2026-02-11', '2026-02-11 08:00:00.000000', 349.00, 1);
            INSERT INTO payments VALUES (3, 12, '2026-03-01', '2026-03-01 09:30:00.000000', 4.50, 0);
            """
        )
    result = scan([SourceSpec(name="shop", url=f"sqlite:///{shop_db}")], index=index, detector=detector)
    assert result.ok
    return index


def _export(index: Index, tmp_path: Path, **kwargs: Any):
    kwargs.setdefault("out", tmp_path / "exports")
    # These tests compare exported values with the source's; redaction has its own (test_package_answer).
    kwargs.setdefault("redact", False)
    return export_subject(config=Config(), index=index, **kwargs)


def _source_rows(db: Path, table: str, where: str) -> list[dict[str, Any]]:
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute(f"SELECT * FROM {table} WHERE {where} ORDER BY rowid")]


def _read(package: Path, manifest: dict[str, Any], fmt: str) -> dict[str, list[dict[str, Any]]]:
    out = {}
    for f in manifest["files"]:
        path = package / f["path"]
        if fmt == "json":
            rows = json.loads(path.read_text(encoding="utf-8"))
        elif fmt == "csv":
            with open(path, encoding="utf-8", newline="") as fh:
                rows = list(csv.DictReader(fh))
        else:
            rows = pq.read_table(path).to_pylist()
        out[f["container"]] = [{k: v for k, v in r.items() if k not in META} for r in rows]
    return out


def _same(source: dict[str, Any], exported: dict[str, Any], fmt: str) -> bool:
    for key, value in source.items():
        got = exported[key]
        if value is None:
            ok = got in (None, "")
        elif isinstance(value, float):
            ok = decimal.Decimal(str(got)) == decimal.Decimal(str(value))
        elif fmt == "csv":  # text a spreadsheet would run as a formula gets a leading '
            ok = str(got) == (neutralised(value) if isinstance(value, str) else str(value))
        else:
            ok = got == value or str(got) == str(value)
        if not ok:
            return False
    return True


@pytest.mark.parametrize("fmt", ["json", "csv", "parquet"])
def test_round_trip_every_format(shop: Index, shop_db: Path, tmp_path: Path, fmt: str) -> None:
    result = _export(shop, tmp_path, emails=["Alice.Martin@example.com"], fmt=fmt)
    assert result.found and result.ok, result.errors
    package = Path(result.package)
    manifest = json.loads((package / "manifest.json").read_text(encoding="utf-8"))
    got = _read(package, manifest, fmt)
    assert sorted(got) == ["customers", "order_lines", "orders", "payments", "products", "tickets"]
    expected = {
        "customers": _source_rows(shop_db, "customers", "id = 1"),
        "orders": _source_rows(shop_db, "orders", "customer_id = 1"),
        "order_lines": _source_rows(shop_db, "order_lines", "order_id IN (10, 11)"),
        "payments": _source_rows(shop_db, "payments", "order_id IN (10, 11)"),
        "tickets": _source_rows(shop_db, "tickets", "customer_id = 1"),
        "products": _source_rows(shop_db, "products", "sku IN ('SKU-001', 'SKU-002')"),  # what the lines name
    }
    for container, rows in expected.items():
        assert len(got[container]) == len(rows), container
        for src, exp in zip(rows, got[container], strict=True):
            if container != "payments":
                assert _same(src, exp, fmt), (container, src, exp)
    assert manifest["totals"] == {"records": 9, "reference_records": 2, "files": 6}
    assert [f["container"] for f in manifest["files"] if f.get("reference")] == ["products"]
    assert {f["path"] for f in manifest["files"]} == {f"data/shop/{c}.{fmt}" for c in expected}


def test_parquet_keeps_source_types(shop: Index, tmp_path: Path) -> None:
    result = _export(shop, tmp_path, emails=["alice.martin@example.com"], fmt="parquet")
    table = pq.read_table(Path(result.package) / "data/shop/payments.parquet")
    types = {f.name: str(f.type) for f in table.schema}
    assert types["id"] == "int64" and types["paid_on"] == "date32[day]"
    assert types["captured_at"] == "timestamp[us]" and types["amount"] == "decimal128(10, 2)"
    assert types["refunded"] == "bool"
    rows = table.to_pylist()
    assert rows[0]["amount"] == decimal.Decimal("39.80") and rows[1]["refunded"] is True
    assert rows[0]["paid_on"] == dt.date(2026, 1, 5)
    assert rows[0]["captured_at"] == dt.datetime(2026, 1, 5, 10, 22, 1)
    as_json = _export(shop, tmp_path, emails=["alice.martin@example.com"], fmt="json", request_id="j")
    payments = json.loads((Path(as_json.package) / "data/shop/payments.json").read_text())
    assert payments[0]["amount"] == "39.80" and payments[0]["paid_on"] == "2026-01-05"
    assert payments[0]["captured_at"] == "2026-01-05T10:22:01"


def test_checksums_and_provenance(shop: Index, tmp_path: Path) -> None:
    result = _export(shop, tmp_path, emails=["alice.martin@example.com"])
    package = Path(result.package)
    manifest = json.loads((package / "manifest.json").read_text())
    for f in manifest["files"]:
        data = (package / f["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == f["sha256"] and len(data) == f["bytes"]
        for row in json.loads(data):
            loc = row["_piiport_locator"]
            assert loc["source"] == "shop" and loc["container"] == f["container"] and loc["key"]
    assert manifest["format_version"] == "1" and manifest["generator"]["name"] == "piiport"
    assert manifest["generated_at"].endswith("Z") and manifest["request_id"] == result.request_id
    linked = {(i["type"], i["value"]) for i in manifest["subject"]["identifiers_linked"]}
    assert ("PHONE_NUMBER", "+33612345678") in linked and ("PERSON", "alice martin") in linked


def test_no_other_subjects_identifier_except_reported_free_text(shop: Index, tmp_path: Path) -> None:
    result = _export(shop, tmp_path, emails=["alice.martin@example.com"])
    package = Path(result.package)
    text = "\n".join(p.read_text(encoding="utf-8") for p in (package / "data").rglob("*.json"))
    others = [c for c in CUSTOMERS if c[0] != 1]
    for _, first, last, email, phone, ip in others:
        for value in (phone, ip, f"{first} {last}", email):
            if email != "bruno.dubois@example.org" or value != email:  # the reported free-text mention
                assert value not in text, value
    for _, first, last, email, phone, _ in EMPLOYEES:  # the support rep is not in the customer's package
        assert email not in text and f"{first} {last}" not in text and phone not in text
    # Bruno's address is in a ticket about Alice: exported, and reported.
    assert text.count("bruno.dubois@example.org") == 1
    mentions = result.manifest["third_party_mentions"]
    assert mentions == [
        {
            "source": "shop",
            "container": "tickets",
            "record": "[3]",
            "field": "notes",
            "entity_type": "EMAIL_ADDRESS",
            "origin": "text",
        }
    ]


def test_employee_export_leaves_out_the_customers_they_support_and_their_manager(shop: Index, tmp_path: Path) -> None:
    result = _export(shop, tmp_path, emails=["samuel.girard@shop.example"])
    manifest = result.manifest
    assert {f["container"]: f["records"] for f in manifest["files"]} == {"employees": 1, "audit_log": 1}
    rows = json.loads((Path(result.package) / "data/shop/employees.json").read_text())
    assert [r["id"] for r in rows] == [1]  # not Talia, whose manager he is
    talia = _export(shop, tmp_path, emails=["talia.bonnet@shop.example"], request_id="t")
    rows = json.loads((Path(talia.package) / "data/shop/employees.json").read_text())
    assert [r["id"] for r in rows] == [2]  # not her manager either


def test_shared_phone_and_ambiguous_name_are_refused(shop: Index, shop_db: Path, tmp_path: Path, detector) -> None:
    with pytest.raises(AmbiguousSubjectError) as err:
        _export(shop, tmp_path, phones=["+33 1 42 68 53 00"])
    assert err.value.message == "phone number +33***00 is shared by 2 subjects (an office line or a team address)"
    assert err.value.matched == 2
    # Each employee's own e-mail still exports, without the colleague behind the shared line.
    assert (
        _export(shop, tmp_path, emails=["talia.bonnet@shop.example"], request_id="t").manifest["totals"]["records"] == 2
    )
    assert _export(shop, tmp_path, names=["alice martin"], request_id="n").found
    with sqlite3.connect(shop_db) as db:
        db.execute("INSERT INTO customers VALUES (9, 'Alice', 'Martin', 'alice.m@example.net', NULL, NULL, NULL)")
    scan([SourceSpec(name="shop", url=f"sqlite:///{shop_db}")], index=shop, detector=detector)
    with pytest.raises(AmbiguousSubjectError) as ambiguous:
        _export(shop, tmp_path, names=["Alice Martin"])
    assert ambiguous.value.message == "person a*** m*** matches 2 subjects"


def test_info_address_on_many_accounts_is_shared(tmp_path: Path, index: Index, detector) -> None:
    db = tmp_path / "b2b.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY, contact_name TEXT, email TEXT, phone TEXT)")
        conn.executemany(
            "INSERT INTO accounts VALUES (?,?,?,?)",
            [
                (1, "Nora Blake", "info@acme.example", "+44 20 7946 0001"),
                (2, "Owen Price", "info@acme.example", "+44 20 7946 0002"),
                (3, "Nora Blake", "nora@acme.example", "+44 20 7946 0001"),
            ],
        )
    scan([SourceSpec(name="b2b", url=f"sqlite:///{db}")], index=index, detector=detector)
    with pytest.raises(AmbiguousSubjectError, match="is shared by 2 subjects"):
        _export(index, tmp_path, emails=["info@acme.example"])
    nora = _export(index, tmp_path, emails=["nora@acme.example"])
    rows = json.loads((Path(nora.package) / "data/b2b/accounts.json").read_text())
    # Only Nora's own account: the phone also sits beside info@, so it counts as shared and links
    # nothing, and account 1 carries info@, which is not hers alone. Never Owen's, through info@.
    assert [r["id"] for r in rows] == [3]


def test_a_primary_key_that_is_an_email_is_sealed_in_the_index_and_still_exported(
    tmp_path: Path, index: Index, detector
) -> None:
    db = tmp_path / "newsletter.db"
    with sqlite3.connect(db) as conn:
        conn.executescript(
            """
            CREATE TABLE subscribers (email TEXT PRIMARY KEY, full_name TEXT, phone TEXT);
            CREATE TABLE clicks (id INTEGER PRIMARY KEY, subscriber TEXT REFERENCES subscribers(email), url TEXT);
            """
        )
        conn.executemany(
            "INSERT INTO subscribers VALUES (?,?,?)",
            [
                ("zoe.quinn@example.net", "Zoe Quinn", "+44 20 7946 0101"),
                ("yann.roux@example.net", "Yann Roux", "+33 6 12 34 56 01"),
                ("xena.wolf@example.net", "Xena Wolf", "+49 30 1234501"),
            ],
        )
        conn.executemany(
            "INSERT INTO clicks VALUES (?,?,?)",
            [(1, "zoe.quinn@example.net", "/a"), (2, "yann.roux@example.net", "/b")],
        )
    assert scan([SourceSpec(name="news", url=f"sqlite:///{db}")], index=index, detector=detector).ok
    stored: dict[str, list[str]] = {}
    with index.engine.connect() as conn:
        for name, meta in conn.exec_driver_sql(
            "SELECT c.name, b.meta FROM blocks b JOIN containers c ON c.id = b.container_id"
        ):
            stored.setdefault(name, []).extend(json.loads(meta)["keys"])
    assert len(stored["subscribers"]) == 3 and all(k.startswith("sealed:") for k in stored["subscribers"])
    assert set(stored["clicks"]) == {"[1]", "[2]"}  # a surrogate key stays as it is
    index.close()  # checkpoint the WAL into the file, then look at every byte of it
    assert index.path is not None
    raw = b"".join(p.read_bytes() for p in index.path.parent.glob("index.db*"))
    assert b"zoe.quinn" not in raw and b"yann.roux" not in raw
    # Through the phone, a linked identifier: the export opens the sealed key to read the row again.
    result = _export(index, tmp_path, phones=["+44 20 7946 0101"])
    rows = json.loads((Path(result.package) / "data/news/subscribers.json").read_text())
    assert [r["email"] for r in rows] == ["zoe.quinn@example.net"]
    assert rows[0]["_piiport_locator"]["key"] == ["zoe.quinn@example.net"]
    clicks = json.loads((Path(result.package) / "data/news/clicks.json").read_text())
    assert [c["id"] for c in clicks] == [1]
    assert not result.errors


def test_expansion_follows_strong_links_across_sources(shop: Index, tmp_path: Path, detector) -> None:
    files = tmp_path / "files"
    files.mkdir()
    (files / "sms_optin.csv").write_text("mobile,opted_in\n+33612345678,yes\n+44 20 7946 0958,no\n", encoding="utf-8")
    scan([SourceSpec(name="files", url=str(files))], index=shop, detector=detector)
    full = _export(shop, tmp_path, emails=["alice.martin@example.com"])
    assert "sms_optin.csv" in {f["container"] for f in full.manifest["files"]}
    narrow = _export(shop, tmp_path, emails=["alice.martin@example.com"], expand=False, request_id="narrow")
    assert "sms_optin.csv" not in {f["container"] for f in narrow.manifest["files"]}


def test_unknown_subject_gives_an_empty_package(shop: Index, tmp_path: Path) -> None:
    result = _export(shop, tmp_path, emails=["nobody@example.com"], request_id="req-empty")
    assert not result.found and result.ok and result.records == 0
    manifest = json.loads((Path(result.package) / "manifest.json").read_text())
    assert manifest["subject"]["found"] is False and manifest["files"] == []
    assert manifest["totals"] == {"records": 0, "reference_records": 0, "files": 0}
    assert manifest["complete"] is True and manifest["review"] == []
    assert manifest["notes"] == [
        "No record holds the given identifiers. This empty package is the answer to the request."
    ]
    assert result.as_dict() == {
        "request_id": "req-empty",
        "found": False,
        "package": str(tmp_path / "exports" / "req-empty"),
        "files": 0,
        "records": 0,
        "errors": [],
        "complete": True,
        "review": 0,
    }


def test_changed_rows_and_files_are_reported_not_exported(shop: Index, shop_db: Path, tmp_path: Path, detector) -> None:
    files = tmp_path / "files"
    files.mkdir()
    signups = files / "signups.csv"
    signups.write_text("email,name\nalice.martin@example.com,Alice Martin\n", encoding="utf-8")
    scan([SourceSpec(name="files", url=str(files))], index=shop, detector=detector)
    signups.write_text("email,name\nzed@example.com,Zed Zed\nalice.martin@example.com,Alice Martin\n", encoding="utf-8")
    with sqlite3.connect(shop_db) as db:
        db.execute("UPDATE tickets SET notes = 'cleared' WHERE id = 1")
    result = _export(shop, tmp_path, emails=["alice.martin@example.com"])
    assert not result.ok
    assert (
        "files/signups.csv: changed since the scan (size or modification time differ); its 1 record(s) were not exported: run the export again with --rescan"
        in result.errors
    )
    text = "\n".join(p.read_text() for p in Path(result.package).rglob("*.json"))
    assert "zed@example.com" not in text and "signups" not in {f["container"] for f in result.manifest["files"]}
    tickets = json.loads((Path(result.package) / "data/shop/tickets.json").read_text())
    assert [t["notes"] for t in tickets if t["id"] == 1] == ["cleared"]  # still Alice's ticket by its foreign key

    again = export_subject(
        config=Config(),
        index=shop,
        emails=["alice.martin@example.com"],
        out=tmp_path / "exports",
        rescan=True,
        detector=detector,
        request_id="after-rescan",
    )
    assert again.ok, again.errors
    rows = json.loads((Path(again.package) / "data/files/signups.csv.json").read_text())
    assert [(r["email"], r["_piiport_locator"]["key"]) for r in rows] == [("alice.martin@example.com", 2)]


def test_a_row_that_lost_the_identifier_is_not_exported(shop: Index, shop_db: Path, tmp_path: Path) -> None:
    with sqlite3.connect(shop_db) as db:
        db.execute("UPDATE customers SET email = 'someone.else@example.com', phone = NULL WHERE id = 1")
    result = _export(shop, tmp_path, emails=["alice.martin@example.com"])
    assert (
        "shop/customers: 1 record(s) changed since the scan and no longer hold the identifier they were found by; they were not exported: run again with --rescan"
        in result.errors
    )
    assert "customers" not in {f["container"] for f in result.manifest["files"]}


def test_request_id_is_never_silently_reused_and_zip(shop: Index, tmp_path: Path) -> None:
    first = _export(shop, tmp_path, emails=["alice.martin@example.com"], request_id="REQ-42", as_zip=True)
    assert first.package == str(tmp_path / "exports" / "REQ-42.zip")
    with pytest.raises(ExportError, match="a package for request id REQ-42 already exists"):
        _export(shop, tmp_path, emails=["bruno.dubois@example.org"], request_id="REQ-42")
    with zipfile.ZipFile(first.package) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        for f in manifest["files"]:
            assert hashlib.sha256(zf.read(f["path"])).hexdigest() == f["sha256"]
        assert zf.testzip() is None
    replaced = _export(shop, tmp_path, emails=["bruno.dubois@example.org"], request_id="REQ-42", overwrite=True)
    assert Path(replaced.package).is_dir() and not Path(first.package).exists()
    with pytest.raises(RequestIdError, match="is not usable as a file name"):
        _export(shop, tmp_path, emails=["bruno.dubois@example.org"], request_id="../escape")


def test_file_names_are_ascii_and_valid_on_windows() -> None:
    from export.naming import safe_component, unique_names

    assert safe_component("Clients/été 2026.csv") == "Clients__ete_2026.csv"
    assert safe_component("CON.csv") == "_CON.csv"
    assert safe_component("lpt1") == "_lpt1"
    assert safe_component("...") == "unnamed"
    names = unique_names([("s", "A.csv"), ("s", "a.csv"), ("s", "é.csv")], "json")
    assert len({n.lower() for n in names.values()}) == 3
    assert all(n.isascii() and not any(c in n for c in '<>:"\\|?*') for n in names.values())
    assert names == unique_names([("s", "é.csv"), ("s", "a.csv"), ("s", "A.csv")], "json")  # deterministic


def test_config_forces_tables_and_relations_in_or_out(shop: Index, tmp_path: Path) -> None:
    from piiport.config import ExportSettings

    def containers(**settings: Any) -> set[str]:
        cfg = Config(export=ExportSettings(**settings))
        result = export_subject(
            config=cfg,
            index=shop,
            emails=["alice.martin@example.com"],
            out=tmp_path / "o",
            overwrite=True,
            request_id="r",
        )
        return {f["container"] for f in result.manifest["files"]}

    default = containers()
    assert "employees" not in default and "orders" in default
    assert "orders" not in containers(exclude_tables=("orders",))
    assert "order_lines" not in containers(ignore_relations=("order_lines.order_id -> orders.id",))
    # Support reps are people, so never pulled in by a foreign key, unless the config says so.
    forced = containers(include_tables=("employees",), force_relations=("employees.id -> customers.support_rep_id",))
    assert "employees" in forced
    assert containers(max_depth=1) == default - {"order_lines", "payments", "products"}
    assert containers(references=False) == default - {"products"}
