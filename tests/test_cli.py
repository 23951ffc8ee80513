"""The CLI end to end: scan, inventory, detect, demo, exit codes and messages."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner
from fixtures import make_shop

from connectors.options import SqlOptions
from piiport.cli import main


def test_scan_then_inventory_in_every_format(runner: CliRunner, tmp_path: Path, detector) -> None:
    make_shop(tmp_path / "shop.db")
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "signups.csv").write_text("email,name\nzoe.roy@example.com,Zoé Roy\n", encoding="utf-8")
    result = runner.invoke(main, ["scan", "sqlite:///shop.db", "files", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["totals"]["containers"] == 8 and summary["errors"] == []
    assert {c["source"] for c in summary["containers"]} == {"shop", "files"}
    assert (tmp_path / ".piiport" / "index.db").exists()
    assert oct((tmp_path / ".piiport" / "index.key").stat().st_mode & 0o777) == "0o600"

    rows = json.loads(runner.invoke(main, ["inventory", "--format", "json"]).output)
    email = next(r for r in rows if r["container"] == "signups.csv" and r["field"] == "email")
    assert email["entity_type"] == "EMAIL_ADDRESS" and email["records"] == 1 and email["prevalence"] == 1.0
    assert email["examples"] == ["z***@e***.com"]
    for row in rows:
        assert {"source", "container", "field", "entity_type", "records", "prevalence"} <= set(row)
        assert 0 <= row["prevalence"] <= 1

    table = runner.invoke(main, ["inventory"]).output
    assert "signups.csv" in table and "zoe.roy" not in table
    parsed = list(csv.DictReader(io.StringIO(runner.invoke(main, ["inventory", "--format", "csv"]).output)))
    assert len(parsed) == len(rows)
    md = runner.invoke(main, ["inventory", "--format", "md"]).output
    assert md.startswith("| source | container |") and len(md.strip().splitlines()) == len(rows) + 2


def test_human_summary(runner: CliRunner, tmp_path: Path, detector) -> None:
    make_shop(tmp_path / "shop.db")
    result = runner.invoke(main, ["scan", "sqlite:///shop.db"])
    assert result.exit_code == 0
    assert result.output.startswith("Scanned 7 containers, ")
    assert "shop/customers: 4 records, personal data in first_name, last_name, email, phone, last_ip" in result.output


def test_scan_errors_exit_1_with_one_line_and_the_rest_is_scanned(
    runner: CliRunner, tmp_path: Path, detector, workers: int
) -> None:
    make_shop(tmp_path / "shop.db")
    result = runner.invoke(main, ["scan", "sqlite:///missing.db", "sqlite:///shop.db", "--workers", str(workers)])
    assert result.exit_code == 1
    assert "missing: source 'missing': SQLite file" in result.output and "not found; check the path" in result.output
    assert "Traceback" not in result.output
    assert "shop/customers" in result.output


def test_config_errors_exit_2(runner: CliRunner, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("sources:\n  - url: sqlite:///x.db\n    colour: blue\n", encoding="utf-8")
    result = runner.invoke(main, ["scan", "--config", str(bad)])
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"Error: config {bad}: unknown setting in sources[0]: 'colour'; "
        "allowed: changed_column, connect_timeout, exclude, include, language, max_concurrency, name, path, retries, "
        "retry_delay, schemas, url, views"
    )
    uk = tmp_path / "uk.yaml"
    uk.write_text("detection:\n  phone_regions: [FR, UK]\n", encoding="utf-8")
    result = runner.invoke(main, ["scan", "--config", str(uk), "x"])
    assert result.exit_code == 2 and "(the United Kingdom is GB)" in result.output
    broken = tmp_path / "broken.yaml"
    broken.write_text("index: [unclosed\n", encoding="utf-8")
    result = runner.invoke(main, ["inventory", "--config", str(broken)])
    assert result.exit_code == 2 and "not valid YAML at line" in result.output
    assert runner.invoke(main, ["scan"]).exit_code == 2
    assert runner.invoke(main, ["inventory", "--format", "xml"]).exit_code == 2


def test_config_file_sources_and_precedence(runner: CliRunner, tmp_path: Path, monkeypatch, detector) -> None:
    make_shop(tmp_path / "shop.db")
    cfg = tmp_path / "piiport.yaml"
    cfg.write_text(
        "index: sqlite:///from-file.db\nsources:\n  - name: crm\n    url: sqlite:///shop.db\n    exclude: ['audit_*', 'products']\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("PIIPORT_INDEX", f"sqlite:///{tmp_path / 'from-env.db'}")
    result = runner.invoke(main, ["scan", "--config", str(cfg), "--json"])
    assert result.exit_code == 0, result.output
    names = [c["container"] for c in json.loads(result.output)["containers"]]
    assert "audit_log" not in names and "products" not in names and "customers" in names
    assert (tmp_path / "from-env.db").exists() and not (tmp_path / "from-file.db").exists()  # env beats file
    result = runner.invoke(main, ["scan", "--config", str(cfg), "--index", f"sqlite:///{tmp_path / 'from-cli.db'}"])
    assert result.exit_code == 0 and (tmp_path / "from-cli.db").exists()  # command line beats env


def test_inventory_without_index_says_what_to_do(runner: CliRunner) -> None:
    result = runner.invoke(main, ["inventory"])
    assert result.exit_code == 2
    assert "no index at .piiport/index.db; run `piiport scan` first or pass --index" in result.output


def test_detect_lines_and_jsonl(runner: CliRunner, tmp_path: Path, detector) -> None:
    text = "Write to jane.doe@example.org\n\nJOHN SMITH, 81.12.200.7\n"
    result = runner.invoke(main, ["detect", "-"], input=text)
    assert result.exit_code == 0
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert len(lines) == 3 and lines[1] == {"entities": []}
    assert lines[0]["entities"] == [{"type": "EMAIL_ADDRESS", "start": 9, "end": 29, "score": 1.0}]
    assert {e["type"] for e in lines[2]["entities"]} == {"PERSON", "IP_ADDRESS"}

    doc = json.dumps({"text": "Line one\nJane Doe: jane@example.org", "id": 7})
    result = runner.invoke(main, ["detect", "--jsonl"], input=doc + "\n")
    (out,) = [json.loads(line) for line in result.output.splitlines()]
    email = next(e for e in out["entities"] if e["type"] == "EMAIL_ADDRESS")
    assert "Line one\nJane Doe: jane@example.org"[email["start"] : email["end"]] == "jane@example.org"

    bad = runner.invoke(main, ["detect", "--jsonl"], input='{"id": 1}\n')
    assert bad.exit_code == 2 and 'input line 1: needs a "text" string field' in bad.output
    fr = runner.invoke(main, ["detect", "--language", "fr"], input="Appelez le 06 12 34 56 78\n")
    assert [e["type"] for e in json.loads(fr.output)["entities"]] == ["PHONE_NUMBER"]
    de = runner.invoke(main, ["detect", "--language", "de"], input="x\n")
    assert de.exit_code == 2 and "no spaCy model configured for language 'de'" in de.output


def _mixed_texts() -> list[str]:
    """A few hundred texts as a ticket export holds them: names, e-mails, phones and IPs, texts
    with nothing, empty ones, one with newlines, and long ones."""
    texts: list[str] = []
    for i in range(300):
        kind = i % 7
        if kind == 0:
            texts.append(f"Spoke with Maria Rossi about order {i}; she asked for a refund.")
        elif kind == 1:
            texts.append(f"Reply to jules.kim{i}@example.org before Friday.")
        elif kind == 2:
            texts.append(f"Call back on +44 20 7946 {i:04d} or 06 12 34 {i % 100:02d} 78.")
        elif kind == 3:
            texts.append(f"login from 81.12.{i % 256}.7 failed")
        elif kind == 4:
            texts.append("" if i % 2 else "   ")
        elif kind == 5:
            texts.append("the box arrived damaged and the customer wants a replacement")
        else:
            texts.append(f"Line one\nJANE DOE wrote: jane{i}@example.com\n\nThanks, Hugo Martin")
    filler = "the order was shipped late and the customer asked for a refund because the box arrived damaged. "
    texts[10] = filler * 40 + "Write to Karen Brown at karen.brown@example.org or +44 20 7946 0958."
    texts[250] = filler * 25 + "\n" + filler * 15  # about 4,000 characters, nothing personal
    return texts


def test_detect_with_two_workers_answers_line_by_line_as_one(runner: CliRunner, tmp_path: Path, detector) -> None:
    texts = _mixed_texts()
    (tmp_path / "texts.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    one = runner.invoke(main, ["detect", "--jsonl", "--workers", "1", "texts.jsonl"])
    two = runner.invoke(main, ["detect", "--jsonl", "--workers", "2", "texts.jsonl"])
    assert one.exit_code == 0 and two.exit_code == 0, two.output
    assert two.output.splitlines() == one.output.splitlines()
    lines = [json.loads(line)["entities"] for line in two.output.splitlines()]
    assert len(lines) == len(texts)
    assert [e["type"] for e in lines[1]] == ["EMAIL_ADDRESS"] and lines[4] == [] and lines[5] == []
    assert [e["type"] for e in lines[10]] == ["PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER"] and lines[250] == []
    # Plain lines too (one text per line), with the default worker count.
    (tmp_path / "texts.txt").write_text("\n".join(t.replace("\n", " ") for t in texts[:80]) + "\n", encoding="utf-8")
    plain_one = runner.invoke(main, ["detect", "--workers", "1", "texts.txt"])
    plain_default = runner.invoke(main, ["detect", "texts.txt"])
    assert plain_default.exit_code == 0 and plain_default.output.splitlines() == plain_one.output.splitlines()


def test_detect_bad_input_is_one_line_after_the_answers_before_it(runner: CliRunner, tmp_path: Path, detector) -> None:
    good = [json.dumps({"text": f"Reply to jules.kim{i}@example.org"}) for i in range(200)]
    (tmp_path / "bad.jsonl").write_text("\n".join([*good, "{not json", *good]) + "\n", encoding="utf-8")
    result = runner.invoke(main, ["detect", "--jsonl", "--workers", "2", "bad.jsonl"])
    assert result.exit_code == 2
    *answers, error = result.output.splitlines()
    assert len(answers) == 200 and all(json.loads(a)["entities"][0]["type"] == "EMAIL_ADDRESS" for a in answers)
    assert error == "Error: input line 201: not valid JSON; with --jsonl each line is an object"

    (tmp_path / "photo.jpg").write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01" + bytes(range(256)) * 4)
    binary = runner.invoke(main, ["detect", "--workers", "2", "photo.jpg"])
    assert binary.exit_code == 2 and "Traceback" not in binary.output
    assert binary.output.splitlines() == [
        "Error: photo.jpg, line 1: holds NUL bytes, so it is a binary file; piiport detect reads UTF-8 text"
    ]


def _piiport(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("piiport")
    return subprocess.run(
        [str(exe), *args], cwd=cwd, capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})}
    )


def test_help_is_instant_because_it_imports_nothing_heavy(tmp_path: Path) -> None:
    # Instant by construction, not by a timing (which a busy machine makes flaky): no heavy module loads.
    result = _piiport("--help", cwd=tmp_path)
    assert result.returncode == 0 and "scan" in result.stdout and "export" in result.stdout
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, piiport.cli; print(sorted(m for m in ('spacy','presidio_analyzer','sqlalchemy','pyarrow','fastapi','uvicorn','prometheus_client') if m in sys.modules))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.strip() == "[]"


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    quiet = _piiport("scan", "sqlite:///nope.db", cwd=tmp_path)
    assert quiet.returncode == 1 and "Traceback" not in quiet.stderr
    loud = _piiport("--debug", "scan", "sqlite:///nope.db", "--config", "missing.yaml", cwd=tmp_path)
    assert loud.returncode != 0 and "Traceback" in loud.stderr


def test_demo_in_a_fresh_folder(tmp_path: Path) -> None:
    result = _piiport("demo", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Scanned 9 containers" in out
    for fragment in ("crm     customers", "tickets", "newsletter_signups.csv", "access.jsonl", "call_notes.txt"):
        assert fragment in out
    assert "@example.com" not in out  # masked examples only
    assert (tmp_path / "piiport-demo" / ".piiport" / "index.db").exists()
    assert "Exported the subject a***@e***.com to piiport-demo/exports/demo-request" in out
    manifest = json.loads((tmp_path / "piiport-demo/exports/demo-request/manifest.json").read_text())
    assert {f["container"] for f in manifest["files"]} >= {
        "customers",
        "orders",
        "order_lines",
        "newsletter_signups.csv",
    }
    assert "employees" not in {f["container"] for f in manifest["files"]}
    package = tmp_path / "piiport-demo/exports/demo-request"
    assert manifest["processing"] == "processing.json" and (package / "processing.json").is_file()
    assert '<html lang="en">' in (package / "index.html").read_text(encoding="utf-8")
    again = _piiport("demo", cwd=tmp_path)  # running it twice gives the same result
    assert again.returncode == 0 and again.stdout == out
    # From inside the demo folder (where `piiport serve` runs), the index still finds the sources.
    inside = _piiport(
        "export", "--email", "alice.martin@example.com", "--request-id", "in", "--json", cwd=tmp_path / "piiport-demo"
    )
    assert inside.returncode == 0, inside.stderr
    assert json.loads(inside.stdout)["errors"] == [] and json.loads(inside.stdout)["records"] > 0


def test_scan_then_export_parquet_as_a_new_user_would(runner: CliRunner, tmp_path: Path, detector) -> None:
    make_shop(tmp_path / "shop.db")
    assert runner.invoke(main, ["scan", "sqlite:///shop.db"]).exit_code == 0
    result = runner.invoke(main, ["export", "--email", "alice.martin@example.com", "--format", "parquet"])
    assert result.exit_code == 0, result.output
    package = Path(result.stdout.strip())  # warnings (no processing entry) go to stderr
    assert package.resolve().parent == tmp_path / "exports" and (package / "manifest.json").exists()
    import pyarrow.parquet as pq

    rows = pq.read_table(package / "data" / "shop" / "customers.parquet").to_pylist()
    assert [r["email"] for r in rows] == ["alice.martin@example.com"]


def test_export_json_output_and_exit_codes(runner: CliRunner, tmp_path: Path, detector) -> None:
    make_shop(tmp_path / "shop.db")
    runner.invoke(main, ["scan", "sqlite:///shop.db"])
    result = runner.invoke(
        main, ["export", "--email", "bruno.dubois@example.org", "--json", "--request-id", "T-1", "--zip"]
    )
    assert result.exit_code == 0
    out = json.loads(result.output)
    assert out == {
        "request_id": "T-1",
        "found": True,
        "package": str(Path("exports") / "T-1.zip"),
        # Bruno's customer row, order and order line, his ticket and the ticket that mentions his e-mail,
        # in four files; a fifth holds the product his order line references, as context (not a record).
        "files": 5,
        "records": 5,
        "errors": [],
        "complete": True,
        "review": 0,
    }
    again = runner.invoke(main, ["export", "--email", "bruno.dubois@example.org", "--request-id", "T-1", "--zip"])
    assert again.exit_code == 1 and "already exists" in again.output and "--overwrite" in again.output
    missing = runner.invoke(main, ["export", "--email", "nobody@example.com", "--json"])
    assert missing.exit_code == 0 and json.loads(missing.output)["found"] is False
    shared = runner.invoke(main, ["export", "--phone", "+33 1 42 68 53 00"])
    assert shared.exit_code == 1 and shared.output.startswith("Error: phone number +33***00 is shared by 2 subjects")
    bad = runner.invoke(main, ["export", "--email", "not-an-email"])
    assert bad.exit_code == 2 and "--email n***@*** is not a valid email address" in bad.output
    none = runner.invoke(main, ["export"])
    assert none.exit_code == 2 and "give at least one identifier; --email, --phone, --ip or --name" in none.output


def test_the_readme_config_example_is_valid(tmp_path: Path) -> None:
    from piiport.config import load_config

    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    block = readme.split("```yaml\n# piiport.yaml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "piiport.yaml"
    path.write_text(block, encoding="utf-8")
    cfg = load_config(path)
    assert [s.name for s in cfg.sources] == ["crm", "billing", "files"]
    assert cfg.sources[1].options == SqlOptions(views=False, retries=4, changed_column="updated_at", max_concurrency=4)
    assert cfg.scan.full is False  # incremental: true
    assert cfg.scan.executor == "local" and cfg.scan.scheduler is None
    assert cfg.sources[0].url == f"sqlite:///{tmp_path / 'crm.db'}"  # relative to the config file
    assert cfg.detection.phone_regions == ("FR", "GB", "DE", "US") and cfg.export.max_depth == 3


def test_scan_and_export_in_fresh_processes(tmp_path: Path) -> None:
    """As a user runs them: each command a new process, so no module is imported by an earlier step."""
    make_shop(tmp_path / "shop.db")
    assert _piiport("scan", "sqlite:///shop.db", cwd=tmp_path).returncode == 0
    result = _piiport("export", "--email", "alice.martin@example.com", "--format", "parquet", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["found"] and out["errors"] == [] and out["records"] == 7


def test_error_types_map_to_exit_codes_and_hints_in_the_cli() -> None:
    from connectors.flatten import TooDeep
    from connectors.s3 import S3Error
    from discover.executors import ExecutorError
    from piiport.cli import cli_message, exit_code
    from piiport.errors import (
        AmbiguousSubjectError,
        ConfigError,
        DetectorCrashedError,
        ExportError,
        IndexBusyError,
        MissingIndexError,
        RequestIdError,
    )

    cases = [
        (ConfigError("workers must be at least 1", setting="workers"), 2, "workers must be at least 1"),
        (ExecutorError("the dask executor needs Dask", setting="executor"), 2, "the dask executor needs Dask"),
        (ConfigError("a token named 't' already exists", setting="name"), 2, "a token named 't' already exists"),
        (
            MissingIndexError("no index at i.db", setting="index"),
            2,
            "no index at i.db; run `piiport scan` first or pass --index",
        ),
        (
            RequestIdError("request id 'a b' is bad", request_id="a b"),
            2,
            "request id 'a b' is bad; choose another --request-id",
        ),
        (
            ExportError("a package exists", reason="exists"),
            1,
            "a package exists; pass --overwrite to replace it, or use another --request-id",
        ),
        (ExportError("column x does not fit", reason="parquet"), 1, "column x does not fit"),
        (
            AmbiguousSubjectError("x matches 2 subjects", matched=2),
            1,
            "x matches 2 subjects; ask for an identifier that is the person's own, such as --email or --phone",
        ),
        (
            IndexBusyError("another scan holds the index"),
            1,
            "another scan holds the index; wait for it to finish, or use another index with --index",
        ),
        (DetectorCrashedError("a worker died"), 1, "a worker died; run again with fewer --workers or smaller inputs"),
        (S3Error("bucket b does not exist", code="NoSuchBucket"), 1, "bucket b does not exist"),
        (TooDeep("a.b"), 1, str(TooDeep("a.b"))),
        (
            ConfigError("n***@*** is not a valid email address", setting="identifiers.email"),
            2,
            "--email n***@*** is not a valid email address",
        ),
        # From a config file, the setting is the config's, not an option: no option, no hint.
        (ConfigError("config c.yaml: x is a file", setting="out", path="c.yaml"), 2, "config c.yaml: x is a file"),
    ]
    for error, code, line in cases:
        assert (exit_code(error), cli_message(error)) == (code, line), error
