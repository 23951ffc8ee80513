"""The change report: per-run snapshots, `piiport diff`, and `scan --fail-on new-pii`, on SQLite,
PostgreSQL and MariaDB sources and on files."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import pytest
from click.testing import CliRunner
from periodic import BACKENDS, execute, sql_source, write_config

from discover.index import Index
from piiport.cli import main

CREATE = """
CREATE TABLE customers (id INTEGER PRIMARY KEY, email VARCHAR(200), full_name VARCHAR(200), phone VARCHAR(40),
    note TEXT);
CREATE TABLE products (id INTEGER PRIMARY KEY, sku VARCHAR(40), label VARCHAR(200));
INSERT INTO customers VALUES (1, 'anna.roy@example.com', 'Anna Roy', '+33 6 12 34 56 78',
    'Wrote from anna.roy@example.com about the invoice.');
INSERT INTO customers VALUES (2, 'paul.henry@example.org', 'Paul Henry', '+33 6 23 45 67 89',
    'Asked for a copy, reply to paul.henry@example.org please.');
INSERT INTO customers VALUES (3, 'ines.faure@example.net', 'Inès Faure', '+44 20 7946 0958',
    'Delivery was late, nothing else to add.');
INSERT INTO customers VALUES (4, 'marc.petit@example.com', 'Marc Petit', '+33 6 98 76 54 32',
    'Parcel left at the reception desk.');
INSERT INTO products VALUES (1, 'SKU-001', 'Desk lamp');
INSERT INTO products VALUES (2, 'SKU-002', 'Notebook A5')
"""

CHANGE = """
CREATE TABLE leads (id INTEGER PRIMARY KEY, contact_email VARCHAR(200), source_campaign VARCHAR(40));
INSERT INTO leads VALUES (1, 'zoe.martin@example.com', 'spring');
INSERT INTO leads VALUES (2, 'hugo.leroy@example.org', 'spring');
INSERT INTO leads VALUES (3, 'lea.simon@example.net', 'autumn');
DROP TABLE products;
ALTER TABLE customers DROP COLUMN phone;
INSERT INTO customers VALUES (5, 'rosa.garcia@example.com', 'Rosa Garcia', 'Call back on +33 6 11 22 33 44 tomorrow.');
INSERT INTO customers VALUES (6, 'jules.moreau@example.org', 'Jules Moreau', 'Call back on +33 6 55 66 77 88 tonight.');
INSERT INTO customers VALUES (7, 'nadia.simon@example.net', 'Nadia Simon', 'Call back on +33 6 44 33 22 11 at noon.');
INSERT INTO customers VALUES (8, 'karim.dupont@example.com', 'Karim Dupont', 'Call back on +33 6 99 88 77 66 at six.')
"""


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.chdir(tmp_path)
    for var in ("PIIPORT_INDEX", "PIIPORT_CONFIG", "PIIPORT_INDEX_KEY"):
        monkeypatch.delenv(var, raising=False)
    return CliRunner()


@pytest.mark.parametrize("backend", BACKENDS)
def test_diff_reports_every_change_between_two_runs(backend: str, runner: CliRunner, tmp_path: Path, detector) -> None:
    with sql_source(backend, tmp_path) as url:
        execute(url, CREATE)
        cfg = str(write_config(tmp_path / "piiport.yaml", tmp_path / "idx" / "index.db", {"crm": url}))
        first = runner.invoke(main, ["scan", "--config", cfg, "--fail-on", "new-pii"])
        assert first.exit_code == 0, first.output  # a first run has nothing to compare with
        early = runner.invoke(main, ["diff", "--config", cfg])
        assert early.exit_code == 1
        assert "no finished scan run before run 1" in early.output

        execute(url, CHANGE)
        second = runner.invoke(main, ["scan", "--config", cfg, "--fail-on", "new-pii"])
        assert second.exit_code == 3, second.output
        assert "new personal data since run 1:" in second.output
        assert "crm/leads.contact_email: EMAIL_ADDRESS" in second.output

        result = runner.invoke(main, ["diff", "--config", cfg, "--format", "json"])
        assert result.exit_code == 0, result.output
        d = json.loads(result.output)
        assert (d["run_a"], d["run_b"], d["threshold"]) == (1, 2, 0.1)
        assert [(c["container"], c["kind"]) for c in d["new_containers"]] == [("leads", "table")]
        assert [c["container"] for c in d["removed_containers"]] == ["products"]
        assert {(f["container"], f["field"], tuple(f["entity_types"])) for f in d["new_fields"]} == {
            ("leads", "contact_email", ("EMAIL_ADDRESS",))
        }
        assert {(f["container"], f["field"]) for f in d["removed_fields"]} == {("customers", "phone")}
        assert {(t["container"], t["field"], t["entity_type"]) for t in d["new_entity_types"]} == {
            ("customers", "note", "PHONE_NUMBER")
        }
        note = [p for p in d["prevalence_changes"] if (p["field"], p["entity_type"]) == ("note", "EMAIL_ADDRESS")]
        assert [(p["before"], p["after"], p["delta"]) for p in note] == [(0.5, 0.25, -0.25)]
        assert d["began_failing"] == [] and d["stopped_failing"] == []

        # A higher threshold hides the prevalence change; md and table name the same changes.
        high = json.loads(
            runner.invoke(main, ["diff", "1", "2", "--config", cfg, "--format", "json", "--threshold", "0.3"]).output
        )
        assert high["prevalence_changes"] == []
        md = runner.invoke(main, ["diff", "--config", cfg, "--format", "md"]).output
        assert "### New personal-data fields" in md and "- crm/leads.contact\\_email: EMAIL\\_ADDRESS" in md
        table = runner.invoke(main, ["diff", "--config", cfg]).output
        assert table.startswith("Changes from run 1 to run 2:")
        assert "  crm/customers.note EMAIL_ADDRESS: 0.50 -> 0.25 (-0.25)" in table
        for text in (md, table, result.output):
            assert "zoe.martin" not in text and "example" not in text

        # Nothing changed: exit 0, and the default pair is now runs 2 and 3.
        third = runner.invoke(main, ["scan", "--config", cfg, "--fail-on", "new-pii"])
        assert third.exit_code == 0, third.output
        assert runner.invoke(main, ["diff", "--config", cfg]).output == "Changes from run 2 to run 3: no changes.\n"

        # The HTML report names the change too.
        report = runner.invoke(main, ["report", "--config", cfg, "--out", "r.html"])
        assert report.exit_code == 0, report.output
        page = (tmp_path / "r.html").read_text(encoding="utf-8")
        assert "From run 2 to run 3." in page and "No changes." in page


@pytest.mark.parametrize("workers", ["1", "2"])
def test_files_new_removed_and_failing_containers(workers: str, runner: CliRunner, tmp_path: Path, detector) -> None:
    files = tmp_path / "files"
    files.mkdir()
    (files / "signups.csv").write_text(
        "email,name\nzoe.roy@example.com,Zoé Roy\nhugo.leroy@example.org,Hugo Leroy\n", encoding="utf-8"
    )
    (files / "events.json").write_text(json.dumps([{"ip": "81.12.200.7", "action": "login"}]), encoding="utf-8")
    (files / "old.csv").write_text("sku,label\nSKU-1,Lamp\n", encoding="utf-8")
    cfg = str(write_config(tmp_path / "piiport.yaml", tmp_path / "idx" / "index.db", {"files": str(files)}))
    scan = ["scan", "--config", cfg, "--workers", workers, "--fail-on", "new-pii"]
    assert runner.invoke(main, scan).exit_code == 0

    (files / "events.json").write_text('[{"ip": "81.12.200.7", "act', encoding="utf-8")  # broken
    (files / "old.csv").unlink()
    (files / "leads.csv").write_text("contact\nlea.simon@example.net\n", encoding="utf-8")
    second = runner.invoke(main, scan)
    assert second.exit_code == 3, second.output  # new personal data wins over the error (exit 1)
    assert "events.json" in second.output

    d = json.loads(runner.invoke(main, ["diff", "--config", cfg, "--format", "json"]).output)
    assert [c["container"] for c in d["new_containers"]] == ["leads.csv"]
    assert [c["container"] for c in d["removed_containers"]] == ["old.csv"]
    assert [(f["container"], f["field"]) for f in d["new_fields"]] == [("leads.csv", "contact")]
    assert d["removed_fields"] == []  # a failing file keeps what the index knew, marked stale
    assert [c["container"] for c in d["began_failing"]] == ["events.json"]
    assert "events.json" in d["began_failing"][0]["error"]

    (files / "events.json").write_text(json.dumps([{"ip": "81.12.200.8"}]), encoding="utf-8")
    third = runner.invoke(main, scan)
    assert third.exit_code == 0, third.output
    d = json.loads(runner.invoke(main, ["diff", "--config", cfg, "--format", "json"]).output)
    assert [c["container"] for c in d["stopped_failing"]] == ["events.json"]
    assert d["began_failing"] == [] and d["new_fields"] == []

    # An errors-only run (no new personal data) exits 1, not 3.
    (files / "events.json").write_text("", encoding="utf-8")
    assert runner.invoke(main, scan).exit_code == 1


def test_snapshots_hold_counts_never_identifiers(tmp_path: Path, detector) -> None:
    from piiport.api import scan_sources

    files = tmp_path / "files"
    files.mkdir()
    (files / "people.csv").write_text("email\nunique.person@example.com\n", encoding="utf-8")
    with Index(f"sqlite:///{tmp_path / 'idx' / 'index.db'}") as idx:
        result = scan_sources([str(files)], index=idx, detector=detector)
        raw = idx.snapshot_data(result.run_id)
    assert raw is not None and len(raw) < 400
    text = zlib.decompress(raw).decode()
    assert "people.csv" in text and "EMAIL_ADDRESS" in text
    assert "unique" not in text and "u***" not in text


def test_unknown_run_and_bad_threshold_are_usage_errors(runner: CliRunner, tmp_path: Path, detector) -> None:
    (tmp_path / "a.csv").write_text("email\nx.y@example.com\n", encoding="utf-8")
    assert runner.invoke(main, ["scan", "a.csv"]).exit_code == 0
    result = runner.invoke(main, ["diff", "1", "9"])
    assert result.exit_code == 2
    assert result.output == "Error: there is no scan run 9 in the index (it has runs 1 to 1)\n"
    assert runner.invoke(main, ["diff", "--threshold", "2"]).exit_code == 2


def test_a_run_without_a_snapshot_is_named(runner: CliRunner, tmp_path: Path, detector) -> None:
    """Runs scanned by an earlier piiport have no snapshot: the diff says so instead of guessing."""
    import sqlite3

    (tmp_path / "a.csv").write_text("email\nx.y@example.com\n", encoding="utf-8")
    for _ in range(2):
        assert runner.invoke(main, ["scan", "a.csv"]).exit_code == 0
    with sqlite3.connect(tmp_path / ".piiport" / "index.db") as db:
        db.execute("DELETE FROM run_snapshots WHERE run_id = 1")
    result = runner.invoke(main, ["diff", "1", "2"])
    assert result.exit_code == 2
    assert "scan run 1 has no inventory snapshot" in result.output
    # By default the diff looks for the last two runs that have one.
    assert runner.invoke(main, ["diff"]).output.startswith("Error: the index has no finished scan run before run 2")


@pytest.mark.parametrize("server", ["postgresql", "mariadb"])
def test_snapshots_and_diff_in_an_index_kept_on_a_server(
    server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, detector
) -> None:
    from piiport.api import diff_runs, scan_sources

    monkeypatch.setenv("PIIPORT_INDEX_KEY", "00112233445566778899aabbccddeeff")
    files = tmp_path / "files"
    files.mkdir()
    (files / "a.csv").write_text("email\nx.y@example.com\n", encoding="utf-8")
    with sql_source(server, tmp_path) as url, Index(url) as idx:
        scan_sources([str(files)], index=idx, detector=detector)
        (files / "b.csv").write_text("phone\n+33 6 12 34 56 78\n", encoding="utf-8")
        scan_sources([str(files)], index=idx, detector=detector)
        d = diff_runs(index=idx)
    assert (d.run_a, d.run_b) == (1, 2)
    assert [(f.container, f.field, f.entity_types) for f in d.new_fields] == [("b.csv", "phone", ("PHONE_NUMBER",))]
