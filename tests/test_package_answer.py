"""The package that answers the whole request: processing information, index.html, portability, redaction, locate."""

from __future__ import annotations

import json
import re
import sqlite3
import zipfile
from pathlib import Path
from typing import Any

import html5lib
import pytest
from click.testing import CliRunner
from conftest import make_shop

from connectors.base import SourceSpec
from connectors.errors import ConfigError
from discover.errors import AmbiguousSubjectError
from discover.index import Index
from discover.scan import scan
from export.page_text import NBSP, NNBSP, TEXT, words
from piiport.api import export_subject, locate, run_demo
from piiport.cli import main
from piiport.config import load_config

META = ("_piiport_locator", "_piiport_match")
XSS = "<img src=x onerror=alert(1)> <script>alert(2)</script>"
NOTE = (
    "Alice asked us to stop writing to her neighbour Bruno Dubois (bruno.dubois@example.org); "
    "her own address is alice.martin@example.com."
)
PROCESSING = """
processing:
  - source: shop
    purposes: ["customer account management", "billing"]
    legal_basis: contract
    categories: ["identity", "contact", "orders"]
    recipients: ["payment processor (EU)"]
    retention: "3 years after the end of the contract"
    origin: subject
    automated_decisions: false
  - source: shop
    container: customers
    fields:
      last_ip: {portability: false}
  - source: shop
    container: tickets
    purposes: ["customer support"]
    legal_basis: legitimate_interests
    retention: "2 years"
"""


@pytest.fixture
def shop(tmp_path: Path, index: Index, detector) -> Index:
    db = make_shop(tmp_path / "shop.db")
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO tickets VALUES (5, 1, ?)", (NOTE,))
        conn.execute("INSERT INTO tickets VALUES (6, 1, ?)", (XSS,))
        conn.execute("INSERT INTO tickets VALUES (7, 1, ?)", ("Connection from 203.0.113.77 was blocked.",))
        conn.execute(
            "INSERT INTO tickets VALUES (8, 1, ?)", ("Bruno Dubois logged in from 198.51.100.23 on her account.",)
        )
    assert scan([SourceSpec(name="shop", url=f"sqlite:///{db}")], index=index, detector=detector).ok
    return index


def _config(tmp_path: Path, body: str = PROCESSING) -> Any:
    path = tmp_path / "piiport.yaml"
    path.write_text(body, encoding="utf-8")
    return load_config(path)


def _export(shop: Index, tmp_path: Path, detector, body: str = PROCESSING, **kwargs: Any):
    kwargs.setdefault("out", tmp_path / "exports")
    return export_subject(
        emails=["alice.martin@example.com"], config=_config(tmp_path, body), index=shop, detector=detector, **kwargs
    )


def _rows(package: Path, path: str) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k not in META} for r in json.loads((package / path).read_text())]


# -- processing information -----------------------------------------------------------------------


def test_processing_json_holds_the_contributing_sources_entries(shop: Index, tmp_path: Path, detector) -> None:
    result = _export(shop, tmp_path, detector)
    package = Path(result.package)
    assert result.manifest["processing"] == "processing.json"
    entries = json.loads((package / "processing.json").read_text())
    assert entries == [
        {
            "source": "shop",
            "purposes": ["customer account management", "billing"],
            "legal_basis": "contract",
            "categories": ["identity", "contact", "orders"],
            "recipients": ["payment processor (EU)"],
            "retention": "3 years after the end of the contract",
            "origin": "subject",
            "automated_decisions": False,
        },
        {
            "source": "shop",
            "container": "tickets",
            "purposes": ["customer support"],
            "legal_basis": "legitimate_interests",
            "categories": ["identity", "contact", "orders"],
            "recipients": ["payment processor (EU)"],
            "retention": "2 years",
            "origin": "subject",
            "automated_decisions": False,
        },
    ]
    document = result.manifest["documents"][0]
    assert document["path"] == "processing.json"
    assert document["sha256"] == __import__("hashlib").sha256((package / "processing.json").read_bytes()).hexdigest()
    assert result.missing_processing == []
    assert not any("processing" in n for n in result.manifest["notes"])


def test_a_source_without_processing_entry_is_in_the_notes_and_the_cli_warns(
    shop: Index, tmp_path: Path, detector, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _export(shop, tmp_path, detector, body="processing: []\n")
    assert result.missing_processing == ["shop"]
    assert json.loads((Path(result.package) / "processing.json").read_text()) == []
    assert any(
        "No processing information is configured for these sources" in n and "shop" in n
        for n in result.manifest["notes"]
    )

    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty.yaml").write_text(f"index: {shop.url}\n", encoding="utf-8")
    runner = CliRunner()
    out = runner.invoke(
        main, ["export", "--email", "alice.martin@example.com", "--config", "empty.yaml", "--out", "cli", "--no-redact"]
    )
    assert out.exit_code == 0, out.output
    assert "warning: source shop contributed records but has no processing entry" in out.stderr
    check = runner.invoke(main, ["processing", "check", "--config", "empty.yaml"])
    assert check.exit_code == 1 and check.output.splitlines() == [
        "1 scanned source(s) without a processing entry (purposes, legal_basis, …):",
        "  shop",
    ]
    (tmp_path / "full.yaml").write_text(f"index: {shop.url}\n{PROCESSING}", encoding="utf-8")
    good = runner.invoke(main, ["processing", "check", "--config", "full.yaml"])
    assert good.exit_code == 0 and good.output == "Every scanned source has a processing entry.\n"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "processing:\n  - {source: crm, purposes: [x], legal_basis: consnet}\n",
            "processing[0].legal_basis 'consnet' is not one of consent, contract, legal_obligation, vital_interests, "
            "public_task, legitimate_interests",
        ),
        (
            "processing:\n  - {source: crm, legal_basis: contract}\n",
            "processing[0] (crm) needs purposes and a legal_basis",
        ),
        (
            "processing:\n  - {source: crm, purposes: [x], legal_basis: contract, origin: partner}\n",
            "processing[0].origin must be subject or 'third_party: <name>'",
        ),
        (
            "processing:\n  - {source: crm, container: t, fields: {score: {portability: false}}}\n",
            "processing[0] (crm/t) needs purposes and a legal_basis, or an entry for the whole source crm",
        ),
        (
            "processing:\n  - {source: crm, purposes: [x], legal_basis: contract, retain: 1}\n",
            "unknown setting in processing[0]: 'retain'",
        ),
        ("export: {lang: de}\n", "export.lang 'de' is not one of en, fr"),
    ],
)
def test_bad_processing_config_is_one_line_and_exit_2(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        _config(tmp_path, body)
    assert message in err.value.message
    runner = CliRunner()
    out = runner.invoke(main, ["processing", "check", "--config", str(tmp_path / "piiport.yaml")])
    assert out.exit_code == 2
    assert len(out.output.strip().splitlines()) == 1 and "Traceback" not in out.output


def test_third_party_origin_is_parsed_in_both_spellings(tmp_path: Path) -> None:
    cfg = _config(
        tmp_path,
        "processing:\n"
        "  - {source: a, purposes: [x], legal_basis: consent, origin: 'third_party: Acme Data'}\n"
        "  - {source: b, purposes: [x], legal_basis: consent, origin: {third_party: Acme Data}}\n",
    )
    assert [e.origin for e in cfg.processing.entries] == ["third_party: Acme Data", "third_party: Acme Data"]


# -- index.html -----------------------------------------------------------------------------------


def _parse(html: str) -> Any:
    parser = html5lib.HTMLParser(strict=True, namespaceHTMLElements=False)
    return parser.parse(html)


def test_index_html_is_valid_self_contained_and_escapes_every_value(shop: Index, tmp_path: Path, detector) -> None:
    result = _export(shop, tmp_path, detector, request_id="REQ-1")
    package = Path(result.package)
    html = (package / "index.html").read_text(encoding="utf-8")
    tree = _parse(html)  # strict: a parse error raises
    assert tree.find(".//script") is None and tree.find(".//img") is None and tree.find(".//iframe") is None
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    cells = ["".join(td.itertext()) for td in tree.iter("td")]
    assert XSS in cells
    # Nothing outside the package: every link is a file of the package or an anchor of the page.
    for a in tree.iter("a"):
        href = a.get("href")
        assert href.startswith("#") or (package / href).is_file(), href
    assert tree.find(".//link") is None and "http://" not in html and "https://" not in html
    # What a person reads: the request, the processing information, the records, the checksums.
    text = " ".join(tree.itertext())
    assert "REQ-1" in text and "customer account management, billing" in text and "3 years after the end" in text
    assert "the performance of a contract with you" in text and "our legitimate interests" in text
    for f in result.manifest["files"]:
        assert f["sha256"] in text and f["path"] in text
    assert result.manifest["page"]["path"] == "index.html" and result.manifest["page"]["lang"] == "en"
    assert result.manifest["page"]["sha256"] == __import__("hashlib").sha256(html.encode()).hexdigest()
    # ``files`` stays the data files: scripts that read it see no html or processing.json there.
    assert all(f["path"].startswith("data/") for f in result.manifest["files"])


def test_index_html_escapes_hostile_container_and_field_names(tmp_path: Path, index: Index, detector) -> None:
    folder = tmp_path / "drop"
    folder.mkdir()
    (folder / "<b>x<script>.csv").write_text(
        '"<i>name</i>",email\n"<svg onload=alert(3)>",alice.martin@example.com\n', encoding="utf-8"
    )
    assert scan([SourceSpec(name="drop", url=str(folder))], index=index, detector=detector).ok
    result = export_subject(emails=["alice.martin@example.com"], index=index, out=tmp_path / "out", detector=detector)
    html = (Path(result.package) / "index.html").read_text(encoding="utf-8")
    tree = _parse(html)
    assert tree.find(".//script") is None and tree.find(".//svg") is None and tree.find(".//b") is None
    assert tree.find(".//i") is None
    assert "&lt;b&gt;x&lt;script&gt;.csv" in html and "&lt;i&gt;name&lt;/i&gt;" in html


def test_index_html_in_french(shop: Index, tmp_path: Path, detector) -> None:
    result = _export(shop, tmp_path, detector, lang="fr", as_zip=True)
    with zipfile.ZipFile(result.package) as z:
        html = z.read("index.html").decode()
        assert sorted(n for n in z.namelist() if not n.startswith("data/")) == [
            "index.html",
            "manifest.json",
            "processing.json",
        ]
    tree = _parse(html)
    assert tree.get("lang") == "fr"
    text = "".join(tree.itertext())
    for phrase in (
        "Vos données personnelles",
        f"Finalités du traitement{NBSP}:",
        f"Base légale{NBSP}:",
        f"Destinataires{NBSP}:",
        f"Durée de conservation{NBSP}:",
        f"Source des données{NBSP}:",
        "Prise de décision automatisée",
        "l’exécution d’un contrat conclu avec vous",
        "notre intérêt légitime",
        "Ce dossier répond à votre demande d’accès",
        "vous-même",
    ):
        assert phrase in text, phrase
    assert re.search(rf"Établi le (1er|\d{{1,2}}) [a-zéû]+ \d{{4}} à \d{{1,2}}{NBSP}h{NBSP}\d\d UTC", text)
    assert result.manifest["lang"] == "fr"


def test_french_words_follow_french_typesetting() -> None:
    assert set(TEXT["fr"]) == set(TEXT["en"])
    for key, value in words("fr").items():
        for mark in ":;?!":
            assert f" {mark}" not in value, (key, value)
        assert " »" not in value and "« " not in value
        assert "'" not in value, (key, value)  # the typographic apostrophe
    assert f"sont affichés{NNBSP};" in words("fr")["shown"]


@pytest.mark.browser
def test_index_html_renders_in_chromium(shop: Index, tmp_path: Path, detector) -> None:
    from browser import chromium, full_page_png

    result = _export(shop, tmp_path, detector)
    page = Path(result.package) / "index.html"
    with chromium() as driver:
        png = full_page_png(driver, page.as_uri(), tmp_path / "index.png")
        from selenium.common.exceptions import NoAlertPresentException
        from selenium.webdriver.common.by import By

        with pytest.raises(NoAlertPresentException):
            driver.switch_to.alert.text  # noqa: B018  (the injected onerror/script never ran)
        cells = [td.text for td in driver.find_elements(By.TAG_NAME, "td")]
        assert XSS in cells
        assert driver.find_element(By.TAG_NAME, "h1").text == "Your personal data"
        assert driver.execute_script("return document.images.length + document.scripts.length") == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


# -- portability ----------------------------------------------------------------------------------


def test_portability_keeps_consent_and_contract_data_without_inferred_fields(
    shop: Index, tmp_path: Path, detector
) -> None:
    result = _export(shop, tmp_path, detector, purpose="portability")
    package = Path(result.package)
    m = result.manifest
    assert m["purpose"] == "portability" and result.purpose == "portability"
    assert [f["path"] for f in m["files"]] == [
        "data/shop/customers.json",
        "data/shop/order_lines.json",
        "data/shop/orders.json",
    ]
    assert _rows(package, "data/shop/customers.json") == [
        {
            "id": 1,
            "first_name": "Alice",
            "last_name": "Martin",
            "email": "alice.martin@example.com",
            "phone": "+33 6 12 34 56 78",
            "support_rep_id": 2,
        }
    ]
    assert [f["name"] for f in m["files"][0]["fields"]] == [
        "id",
        "first_name",
        "last_name",
        "email",
        "phone",
        "support_rep_id",
    ]
    assert _rows(package, "data/shop/orders.json") == [
        {"id": 10, "customer_id": 1, "ordered_at": "2026-01-05", "total": "39.8", "reference": "ORD-2026-00010"},
        {"id": 11, "customer_id": 1, "ordered_at": "2026-02-11", "total": "349", "reference": "ORD-2026-00011"},
    ]
    assert m["left_out"] == [
        {"source": "shop", "container": "customers", "field": "last_ip", "reason": "field"},
        {
            "source": "shop",
            "container": "tickets",
            "records": 6,
            "reason": "legal_basis",
            "legal_basis": "legitimate_interests",
        },
    ]
    for path in package.rglob("*"):  # what was left out is named, never shown (the manifest lists identifiers)
        assert path.name == "manifest.json" or path.is_dir() or b"81.12.200.7" not in path.read_bytes(), path
    assert "81.12.200.7" not in json.dumps(m["left_out"])
    html = (package / "index.html").read_text(encoding="utf-8")
    assert "portability of your personal data (GDPR Article 20)" in html
    assert "shop / tickets — processed on another legal basis (our legitimate interests" in html
    # The access package of the same subject has everything.
    access = _export(shop, tmp_path, detector, request_id="access")
    assert access.manifest["purpose"] == "access" and access.manifest["left_out"] == []
    assert {f["container"] for f in access.manifest["files"]} == {
        "customers",
        "order_lines",
        "orders",
        "tickets",
        "products",
    }


def test_portability_without_processing_information_leaves_everything_out(
    shop: Index, tmp_path: Path, detector
) -> None:
    result = _export(shop, tmp_path, detector, body="", purpose="portability")
    assert result.manifest["files"] == [] and result.records == 0
    assert [(x["container"], x["reason"]) for x in result.manifest["left_out"]] == [
        ("customers", "no_entry"),
        ("order_lines", "no_entry"),
        ("orders", "no_entry"),
        ("tickets", "no_entry"),
    ]


# -- third-party redaction --------------------------------------------------------------------------


def test_redaction_replaces_other_peoples_identifiers_and_keeps_the_subjects(
    shop: Index, tmp_path: Path, detector
) -> None:
    result = _export(shop, tmp_path, detector)
    package = Path(result.package)
    notes = {r["id"]: r["notes"] for r in _rows(package, "data/shop/tickets.json")}
    assert notes == {
        1: "Alice Martin called from +33 6 12 34 56 78 about order ORD-2026-00010.",
        3: "Invoice re-sent to alice.martin@example.com and to [EMAIL_ADDRESS] by mistake.",
        5: "Alice asked us to stop writing to her neighbour [PERSON] ([EMAIL_ADDRESS]); her own address is "
        "alice.martin@example.com.",
        6: XSS,
        7: "Connection from 203.0.113.77 was blocked.",  # on her account, naming nobody else: her connection
        8: "[PERSON] logged in from [IP_ADDRESS] on her account.",  # beside another person: maybe theirs
    }
    tickets = next(f for f in result.manifest["files"] if f["container"] == "tickets")
    assert tickets["redactions"] == {"EMAIL_ADDRESS": 2, "IP_ADDRESS": 1, "PERSON": 2}
    assert next(f for f in result.manifest["files"] if f["container"] == "customers")["redactions"] == {}
    assert result.manifest["redaction"] == {"enabled": True}
    # No unredacted copy anywhere the export wrote: the package, and the folder it was staged in.
    for path in (tmp_path / "exports").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert b"bruno.dubois@example.org" not in data and b"Bruno Dubois" not in data, path
            assert b"198.51.100.23" not in data, path
    assert sorted(p.name for p in (tmp_path / "exports").iterdir()) == [result.request_id]


def test_no_redact_keeps_the_text_as_stored(shop: Index, tmp_path: Path, detector) -> None:
    result = _export(shop, tmp_path, detector, redact=False)
    notes = {r["id"]: r["notes"] for r in _rows(Path(result.package), "data/shop/tickets.json")}
    assert notes[5] == NOTE
    assert result.manifest["redaction"] == {"enabled": False}
    assert all("redactions" not in f for f in result.manifest["files"])


# -- locate ---------------------------------------------------------------------------------------


def test_locate_lists_where_the_subject_is_without_values(shop: Index, tmp_path: Path) -> None:
    result = locate(emails=["alice.martin@example.com"], index=shop)
    scanned = {c["name"]: c["scanned_at"] for c in shop.containers()}
    got = [(x.container, x.field, x.entity_types, x.records, x.matches) for x in result.locations]
    assert got == [
        ("customers", "email", ["EMAIL_ADDRESS"], 1, ["strong"]),
        ("customers", "first_name+last_name", ["PERSON"], 1, ["strong"]),
        ("customers", "last_ip", ["IP_ADDRESS"], 1, ["strong"]),
        ("customers", "phone", ["PHONE_NUMBER"], 1, ["strong"]),
        ("tickets", "notes", ["EMAIL_ADDRESS", "PERSON", "PHONE_NUMBER"], 3, ["mention"]),
    ]
    assert all(x.source == "shop" and x.scanned_at == scanned[x.container] and not x.stale for x in result.locations)
    assert "alice" not in json.dumps(result.as_dict()).replace("a***@e***.com", "")


def test_locate_cli_refuses_an_ambiguous_identifier_and_prints_no_values(
    shop: Index, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    table = runner.invoke(main, ["locate", "--email", "alice.martin@example.com", "--index", shop.url])
    assert table.exit_code == 0, table.output
    lines = table.output.splitlines()
    assert lines[0].split() == ["source", "container", "field", "types", "records", "matches", "last", "scanned"]
    assert len(lines) == 6 and "alice" not in table.output and "+33" not in table.output
    as_json = json.loads(
        runner.invoke(main, ["locate", "--email", "alice.martin@example.com", "--index", shop.url, "--json"]).output
    )
    assert as_json["found"] is True and len(as_json["locations"]) == 5
    shared = runner.invoke(main, ["locate", "--phone", "+33 1 42 68 53 00", "--index", shop.url])
    assert shared.exit_code == 1
    assert shared.output.strip() == (
        "Error: phone number +33***00 is shared by 2 subjects (an office line or a team address); "
        "ask for an identifier that is the person's own, such as --email or --phone"
    )
    with pytest.raises(AmbiguousSubjectError, match="matches 2 subjects"):
        locate(names=["Alice Martin", "Bruno Dubois"], index=shop)


# -- the demo -------------------------------------------------------------------------------------


def test_demo_package_has_processing_and_a_french_page(tmp_path: Path, detector) -> None:
    result = run_demo(tmp_path / "demo", detector=detector, lang="fr")
    assert result.export is not None
    package = Path(result.export.package)
    entries = json.loads((package / "processing.json").read_text())
    assert [(e["source"], e.get("container"), e["legal_basis"]) for e in entries] == [
        ("crm", None, "contract"),
        ("crm", "tickets", "legitimate_interests"),
        ("files", None, "consent"),
    ]
    html = (package / "index.html").read_text(encoding="utf-8")
    assert '<html lang="fr">' in html and "Comment nous traitons vos données personnelles" in html
    assert result.export.missing_processing == []
