"""Retention rules: records past the limit counted in the source, on SQLite (dates as text),
PostgreSQL and MariaDB, and files by modification time."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner
from periodic import BACKENDS, execute, sql_source, write_config

from connectors.errors import ConfigError
from discover.retention import MaxAge
from piiport.cli import main

NOW = datetime.now(timezone.utc).replace(microsecond=0)
RULES = """retention:
  - source: crm
    container: prospects
    date_column: created_at
    max_age: 3y
    basis: "prospects, charter: 3 years"
  - source: crm
    container: consent_log
    date_column: ts
    max_age: 13mo
    basis: "cookie consent, 13 months"
"""


def ago(**kw: float) -> datetime:
    return NOW - timedelta(**kw)


def _populate(backend: str, url: str) -> None:
    kind = {"sqlite": "TEXT", "postgresql": "TIMESTAMP", "mariadb": "DATETIME"}[backend]
    iso = "%Y-%m-%dT%H:%M:%S"
    if backend == "sqlite":  # what SQLite applications store: ISO text in several shapes
        created = [
            ago(days=4 * 365).strftime("%Y-%m-%d"),
            ago(days=5 * 365 + 3).strftime("%Y-%m-%d %H:%M:%S"),
            ago(days=365).strftime(iso) + "Z",
            ago(days=10).strftime(iso),
            "not a date",
        ]
    else:
        created = [
            ago(days=4 * 365).strftime("%Y-%m-%d 00:00:00"),
            ago(days=5 * 365 + 3).strftime("%Y-%m-%d %H:%M:%S"),
            ago(days=365).strftime("%Y-%m-%d %H:%M:%S"),
            ago(days=10).strftime("%Y-%m-%d %H:%M:%S"),
            None,
        ]
    rows = ";\n".join(
        f"INSERT INTO prospects VALUES ({i + 1}, 'prospect{i}@example.com', "
        + ("NULL" if value is None else f"'{value}'")
        + ")"
        for i, value in enumerate(created)
    )
    # Past the limit, but with no personal data: the index holds nothing of it.
    old = ago(days=4 * 365 + 10).strftime("%Y-%m-%d" if backend == "sqlite" else "%Y-%m-%d 00:00:00")
    rows += f";\nINSERT INTO prospects VALUES (6, NULL, '{old}')"
    execute(
        url,
        f"""
CREATE TABLE prospects (id INTEGER PRIMARY KEY, email VARCHAR(200), created_at {kind});
{rows};
CREATE TABLE consent_log (id INTEGER PRIMARY KEY, visitor_ip VARCHAR(40), ts VARCHAR(40));
INSERT INTO consent_log VALUES (1, '81.12.200.7', '{ago(days=730).strftime("%Y-%m-%dT%H:%M:%S")}');
INSERT INTO consent_log VALUES (2, '81.12.200.8', '{ago(days=30).strftime("%Y-%m-%dT%H:%M:%S")}');
INSERT INTO consent_log VALUES (3, '81.12.200.9', NULL)
""",
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_retention_counts_records_past_the_limit_in_the_source(
    backend: str, runner: CliRunner, tmp_path: Path, detector
) -> None:
    with sql_source(backend, tmp_path) as url:
        _populate(backend, url)
        cfg = str(write_config(tmp_path / "piiport.yaml", tmp_path / "idx" / "index.db", {"crm": url}, RULES))
        assert runner.invoke(main, ["scan", "--config", cfg]).exit_code == 0

        result = runner.invoke(main, ["retention", "--config", cfg, "--json"])
        assert result.exit_code == 3, result.output
        report = json.loads(result.output)
        assert report["breached"] is True
        prospects, consent = report["rules"]
        assert (prospects["expired"], prospects["unit"], prospects["breached"]) == (3, "records", True)
        assert prospects["oldest"].startswith(ago(days=5 * 365 + 3).strftime("%Y-%m-%d"))
        assert prospects["in_index"] == 2  # the two expired prospects with an e-mail, not row 6
        assert prospects["unreadable"] == (1 if backend == "sqlite" else 0)
        assert prospects["basis"] == "prospects, charter: 3 years" and prospects["max_age"] == "3y"
        assert (consent["expired"], consent["in_index"], consent["error"]) == (1, 1, None)
        assert consent["oldest"].startswith(ago(days=730).strftime("%Y-%m-%d"))

        text = runner.invoke(main, ["retention", "--config", cfg])
        assert text.exit_code == 3
        first = text.output.splitlines()[0]
        assert first.startswith("BREACH  crm/prospects (max 3y, prospects, charter: 3 years): 3 records older than ")
        assert first.endswith(
            "; 2 of them in the index; 1 value(s) are not dates" if backend == "sqlite" else "; 2 of them in the index"
        )
        assert "prospect0" not in text.output and "81.12" not in text.output

        # Within the limits: exit 0.
        execute(url, "DELETE FROM prospects WHERE id IN (1, 2, 6);\nDELETE FROM consent_log WHERE id = 1")
        ok = runner.invoke(main, ["retention", "--config", cfg, "--json"])
        assert ok.exit_code == 0, ok.output
        assert [r["expired"] for r in json.loads(ok.output)["rules"]] == [0, 0]


def test_file_rules_use_the_modification_time(runner: CliRunner, tmp_path: Path, detector) -> None:
    files = tmp_path / "files"
    (files / "exports").mkdir(parents=True)
    for name, rows in (("a.csv", 3), ("b.csv", 2), ("c.csv", 1)):
        path = files / "exports" / name
        path.write_text("email\n" + "".join(f"p{i}.{name[0]}@example.com\n" for i in range(rows)), encoding="utf-8")
    (files / "notes.txt").write_text("nothing personal\n", encoding="utf-8")
    extra = "retention:\n  - {source: files, container: 'exports/*.csv', mtime: true, max_age: 13mo, basis: exports}\n"
    cfg = str(write_config(tmp_path / "piiport.yaml", tmp_path / "idx" / "index.db", {"files": str(files)}, extra))
    assert runner.invoke(main, ["scan", "--config", cfg]).exit_code == 0
    for name, age_days in (("a.csv", 800), ("b.csv", 500), ("c.csv", 20)):
        stamp = ago(days=age_days).timestamp()
        os.utime(files / "exports" / name, (stamp, stamp))
    result = runner.invoke(main, ["retention", "--config", cfg, "--json"])
    assert result.exit_code == 3, result.output
    (rule,) = json.loads(result.output)["rules"]
    assert (rule["expired"], rule["unit"], rule["in_index"]) == (2, "files", 5)
    assert rule["oldest"].startswith(ago(days=800).strftime("%Y-%m-%d"))


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (
            "{source: crm, container: t, date_column: d, max_age: 3 years}",
            "retention[0]: max_age '3 years' is not an age; write a whole number and a unit: 3y, 13mo, 6w or 30d",
        ),
        (
            "{source: web, container: t, date_column: d, max_age: 3y}",
            "retention[0]: no source is named 'web'; sources: crm, files",
        ),
        (
            "{source: crm, container: t, date_column: d, mtime: true, max_age: 3y}",
            "retention[0] needs either date_column (a table) or mtime: true (files), not both",
        ),
        (
            "{source: crm, container: t, max_age: 3y}",
            "retention[0] needs either date_column (a table) or mtime: true (files), not both",
        ),
        (
            "{source: files, container: t, date_column: d, max_age: 3y}",
            "retention[0]: source 'files' holds files; use mtime: true instead of date_column",
        ),
        (
            "{source: crm, container: t, date_column: d, max_age: 3y, keep: 1}",
            "unknown setting in retention[0]: 'keep'",
        ),
        ("{source: crm, date_column: d, max_age: 3y}", "retention[0] needs container"),
    ],
)
def test_a_bad_rule_is_one_line_and_exit_2(rule: str, message: str, runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "files").mkdir()
    cfg = write_config(
        tmp_path / "piiport.yaml",
        tmp_path / "idx" / "index.db",
        {"crm": "sqlite:///crm.db", "files": str(tmp_path / "files")},
        f"retention:\n  - {rule}\n",
    )
    result = runner.invoke(main, ["retention", "--config", str(cfg)])
    assert result.exit_code == 2
    assert len(result.output.splitlines()) == 1
    assert message in result.output


def test_a_rule_that_cannot_be_checked_is_an_error_for_that_rule(runner: CliRunner, tmp_path: Path, detector) -> None:
    with sql_source("sqlite", tmp_path) as url:
        _populate("sqlite", url)
        extra = RULES.replace("date_column: ts", "date_column: created")
        cfg = str(write_config(tmp_path / "piiport.yaml", tmp_path / "idx" / "index.db", {"crm": url}, extra))
        assert runner.invoke(main, ["scan", "--config", cfg]).exit_code == 0
        result = runner.invoke(main, ["retention", "--config", cfg])
    assert result.exit_code == 3  # the other rule is breached: policy first
    assert result.output.splitlines()[1] == (
        "ERROR   crm/consent_log (max 13mo, cookie consent, 13 months): retention rule crm/consent_log: 13mo after "
        "created: table consent_log has no column 'created'; columns: id, visitor_ip, ts"
    )


def test_max_age_is_calendar_arithmetic() -> None:
    end_of_march = datetime(2026, 3, 31, 12, 0, tzinfo=timezone.utc)
    assert MaxAge.parse("13mo").cutoff(end_of_march) == datetime(2025, 2, 28, 12, 0, tzinfo=timezone.utc)
    assert MaxAge.parse("3y").cutoff(datetime(2028, 2, 29, tzinfo=timezone.utc)) == datetime(
        2025, 2, 28, tzinfo=timezone.utc
    )
    assert MaxAge.parse("30d").cutoff(end_of_march) == datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
    assert MaxAge.parse(" 2w ").cutoff(end_of_march) == datetime(2026, 3, 17, 12, 0, tzinfo=timezone.utc)
    with pytest.raises(ConfigError, match="not an age"):
        MaxAge.parse("0d")


def test_a_table_without_a_key_says_the_index_cannot_tell(runner: CliRunner, tmp_path: Path, detector) -> None:
    with sql_source("postgresql", tmp_path) as url:
        old = ago(days=800).strftime("%Y-%m-%d %H:%M:%S")
        execute(
            url,
            f"CREATE TABLE consent_log (visitor_ip VARCHAR(40), ts TIMESTAMP);\n"
            f"INSERT INTO consent_log VALUES ('81.12.200.7', '{old}')",
        )
        extra = "retention:\n  - {source: crm, container: consent_log, date_column: ts, max_age: 13mo}\n"
        cfg = str(write_config(tmp_path / "piiport.yaml", tmp_path / "idx" / "index.db", {"crm": url}, extra))
        assert runner.invoke(main, ["scan", "--config", cfg]).exit_code == 0
        result = runner.invoke(main, ["retention", "--config", cfg])
    assert result.exit_code == 3
    assert result.output.rstrip().endswith(
        "1 records older than "
        + result.output.split("older than ")[1].split(";")[0]
        + f"; oldest {old.replace(' ', 'T')}Z; the index cannot tell which of them it holds (the table has no key)"
    )
