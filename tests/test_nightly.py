"""Done when: a nightly run of the demo data, changed between runs, gives a diff and a report a
DPO can read. Runs the README's nightly script (docs/nightly.sh) as cron would, in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import html5lib

from piiport.demo_data import change_for_nightly

ROOT = Path(__file__).resolve().parent.parent
NIGHTLY = ROOT / "docs" / "nightly.sh"
CONFIG = """index: sqlite:///piiport-demo/.piiport/index.db
sources:
  - name: crm
    url: sqlite:///piiport-demo/crm.db
  - name: files
    path: piiport-demo/files
retention:
  - source: crm
    container: customers
    date_column: created_at
    max_age: 3y
    basis: "prospects, charter: 3 years"
  - source: files
    container: newsletter_signups.csv
    mtime: true
    max_age: 13mo
    basis: "cookie and consent records, charter: 13 months"
"""


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIIPORT_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PIIPORT_CONFIG"] = str(tmp_path / "piiport.yaml")
    env["PIIPORT_REPORT_DIR"] = str(tmp_path / "reports")
    env["PIIPORT_WORKERS"] = "2"
    return env


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args), cwd=tmp_path, env=_env(tmp_path), capture_output=True, text=True, timeout=600, check=False
    )


def test_a_nightly_run_of_the_changed_demo_gives_a_diff_and_a_readable_report(tmp_path: Path) -> None:
    (tmp_path / "reports").mkdir()
    (tmp_path / "piiport.yaml").write_text(CONFIG, encoding="utf-8")
    demo = _run(tmp_path, "piiport", "demo")
    assert demo.returncode == 0, demo.stderr

    quiet = _run(tmp_path, "sh", str(NIGHTLY))  # nothing changed since the demo's own scan
    assert quiet.returncode == 0, quiet.stdout + quiet.stderr
    assert "ok      crm/customers (max 3y, prospects, charter: 3 years): 0 records older than" in quiet.stdout

    change_for_nightly(tmp_path / "piiport-demo")
    night = _run(tmp_path, "sh", str(NIGHTLY))
    assert night.returncode == 3, night.stdout + night.stderr
    assert "new personal data since run 2:" in night.stderr
    assert "  crm/webinar_signups.email: EMAIL_ADDRESS" in night.stderr
    assert "files: call_notes.txt: the file holds NUL bytes" in night.stderr
    assert "BREACH  crm/customers (max 3y, prospects, charter: 3 years): 4 records older than" in night.stdout

    diff = json.loads(_run(tmp_path, "piiport", "diff", "--format", "json").stdout)
    assert (diff["run_a"], diff["run_b"]) == (2, 3)
    assert [c["container"] for c in diff["new_containers"]] == ["webinar_signups"]
    new = {(f["container"], f["field"]) for f in diff["new_fields"]}
    assert {("webinar_signups", "email"), ("webinar_signups", "full_name")} <= new
    assert [c["container"] for c in diff["began_failing"]] == ["call_notes.txt"]
    md = _run(tmp_path, "piiport", "diff", "--format", "md").stdout
    assert md.startswith("## Changes from run 2 to run 3\n")

    reports = sorted((tmp_path / "reports").iterdir())
    assert len(reports) == 1 and oct(reports[0].stat().st_mode & 0o777) == "0o600"
    page = reports[0].read_text(encoding="utf-8")
    tree = html5lib.HTMLParser(strict=True, namespaceHTMLElements=False).parse(page)
    text = " ".join(" ".join(tree.itertext()).split())
    assert "From run 2 to run 3." in text
    assert "New personal-data fields (2)" in text and "webinar_signups" in text
    assert "Containers that began failing (1)" in text
    assert "breached: 4 records past the limit" in text
    assert "call_notes.txt" in text and "NUL bytes" in text
    tags = [el.tag.rsplit("}", 1)[-1] for el in tree.iter() if isinstance(el.tag, str)]
    assert tags.count("svg") == 1 and tags.count("circle") == 3  # three runs on the trend chart
    for email_like in ("@example.org", "@example.com", "@shop.example"):
        assert email_like not in page
