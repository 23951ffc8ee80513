"""The audit trail and API tokens from the command line: every export is recorded, edits are detected."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from fixtures import make_shop

from discover.identifiers import EMAIL
from discover.index import Index
from piiport.cli import main


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.chdir(tmp_path)
    for var in ("PIIPORT_INDEX", "PIIPORT_CONFIG", "PIIPORT_INDEX_KEY"):
        monkeypatch.delenv(var, raising=False)
    return CliRunner()


@pytest.fixture
def scanned(runner: CliRunner, tmp_path: Path, detector) -> Path:
    make_shop(tmp_path / "shop.db")
    assert runner.invoke(main, ["scan", "sqlite:///shop.db", "--json"]).exit_code == 0
    return tmp_path


def _entries(runner: CliRunner) -> list[dict]:
    result = runner.invoke(main, ["audit", "--json"])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.output.splitlines()]


def test_a_cli_export_is_audited_with_keyed_hashes_and_the_package_sha256(runner: CliRunner, scanned: Path) -> None:
    result = runner.invoke(main, ["export", "--email", "Alice.Martin@example.com", "--zip", "--request-id", "T-1"])
    assert result.exit_code == 0, result.output
    refused = runner.invoke(main, ["export", "--phone", "+33 1 42 68 53 00", "--request-id", "T-2"])
    assert refused.exit_code == 1
    entries = _entries(runner)
    assert [(e["action"], e["request_id"], e["outcome"]) for e in entries] == [
        ("export.started", "T-1", "started"),
        ("export", "T-1", "done"),
        ("export.started", "T-2", "started"),
        ("export", "T-2", "refused"),
    ]
    with Index("sqlite:///.piiport/index.db", create=False) as idx:
        keyed = idx.ident(EMAIL, "alice.martin@example.com").hex()
    assert entries[1]["identifiers"] == [keyed]
    assert entries[1]["actor"].startswith("os:")
    package = scanned / "exports" / "T-1.zip"
    assert entries[1]["package_sha256"] == hashlib.sha256(package.read_bytes()).hexdigest()
    store = scanned / ".piiport" / "service.db"
    assert oct(store.stat().st_mode & 0o777) == "0o600"
    assert b"alice.martin" not in store.read_bytes().lower()
    assert "alice.martin" not in runner.invoke(main, ["audit"]).output


def test_verify_detects_an_edit_and_a_deletion(runner: CliRunner, scanned: Path) -> None:
    for rid in ("A-1", "A-2", "A-3"):
        assert (
            runner.invoke(main, ["export", "--email", "bruno.dubois@example.org", "--request-id", rid]).exit_code == 0
        )
    ok = runner.invoke(main, ["audit", "--verify"])
    assert ok.exit_code == 0 and ok.output.strip() == "audit trail intact: 6 entries"

    with sqlite3.connect(scanned / ".piiport" / "service.db") as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def tamper(case: str, sql: str) -> str:
        """Tamper with a copy of the store, then verify it."""
        shutil.copytree(scanned / ".piiport", scanned / case)
        with sqlite3.connect(scanned / case / "service.db") as conn:
            conn.execute(sql)
        result = runner.invoke(main, ["audit", "--verify", "--index", f"sqlite:///{case}/index.db"])
        assert result.exit_code == 1
        return result.output.strip()

    assert tamper("edited", "UPDATE piiport_audit SET outcome = 'failed' WHERE seq = 2") == (
        "audit trail broken: entry 2 was altered (its hash does not match) (1 entries verified before it)"
    )
    assert tamper("deleted", "DELETE FROM piiport_audit WHERE seq = 3") == (
        "audit trail broken: entry 3 is missing (next is 4) (2 entries verified before it)"
    )
    assert tamper("truncated", "DELETE FROM piiport_audit WHERE seq = 6") == (
        "audit trail broken: entries after 5 are missing (the head says 6) (5 entries verified before it)"
    )
    rehashed = "UPDATE piiport_audit SET actor = 'os:mallory', hash = 'f' || substr(hash, 2) WHERE seq = 4"
    assert tamper("rehashed", rehashed).startswith("audit trail broken: entry 4 was altered")
    assert runner.invoke(main, ["audit", "--verify"]).exit_code == 0


def test_tokens_are_printed_once_stored_hashed_listed_and_revoked(runner: CliRunner, scanned: Path) -> None:
    created = runner.invoke(main, ["token", "create", "ticketing", "--scope", "requests:write,requests:read"])
    assert created.exit_code == 0, created.output
    secret = created.stdout.strip()
    assert secret.startswith("ppt_") and len(secret) > 40
    store = (scanned / ".piiport" / "service.db").read_bytes()
    assert secret.encode() not in store
    assert hashlib.sha256(secret.encode()).hexdigest().encode() in store

    listed = runner.invoke(main, ["token", "list"])
    assert listed.exit_code == 0 and listed.output.startswith("ticketing\trequests:write,requests:read\tcreated ")
    assert secret not in listed.output

    bad_scope = runner.invoke(main, ["token", "create", "x", "--scope", "requests:delete"])
    assert bad_scope.exit_code == 2 and "unknown scope 'requests:delete'" in bad_scope.output
    twice = runner.invoke(main, ["token", "create", "ticketing", "--scope", "audit:read"])
    assert twice.exit_code == 2 and "already exists" in twice.output

    assert runner.invoke(main, ["token", "revoke", "ticketing"]).exit_code == 0
    assert "revoked 20" in runner.invoke(main, ["token", "list"]).output
    again = runner.invoke(main, ["token", "revoke", "ticketing"])
    assert again.exit_code == 2 and "no active token named 'ticketing'" in again.output
    assert [e["action"] for e in _entries(runner)] == ["token.create", "token.revoke"]


def test_a_python_api_export_is_audited_under_its_actor(runner: CliRunner, scanned: Path) -> None:
    from piiport.api import export_subject
    from piiport.config import Config

    result = export_subject(
        emails=["david.nguyen@example.com"],
        config=Config(),
        request_id="PY-1",
        actor="crm-closure",
        out=scanned / "out",
    )
    assert (
        result.ok
        and result.sha256 == hashlib.sha256((scanned / "out" / "PY-1" / "manifest.json").read_bytes()).hexdigest()
    )
    assert [(e["action"], e["actor"], e["outcome"], e["package_sha256"]) for e in _entries(runner)] == [
        ("export.started", "crm-closure", "started", None),
        ("export", "crm-closure", "done", result.sha256),
    ]
