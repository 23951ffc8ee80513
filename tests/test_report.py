"""The HTML report: self-contained, every value escaped, parsed by html5lib and rendered by
headless Chromium."""

from __future__ import annotations

import html
import json
import os
import sqlite3
import stat
import subprocess
import zlib
from pathlib import Path

import html5lib
import pytest
from browser import CHROMIUM, FLAGS, missing
from click.testing import CliRunner
from periodic import write_config
from services import service_missing

from piiport.cli import main

EVIL = "<img src=x onerror=alert(1)>"
EVIL_FIELD = "<script>alert(1)</script>"


@pytest.fixture
def hostile(runner: CliRunner, tmp_path: Path, detector) -> str:
    """An index of two runs over a table, a field and files named like markup, one file failing."""
    with sqlite3.connect(tmp_path / "shop.db") as db:
        db.execute(f'CREATE TABLE "{EVIL}" (id INTEGER PRIMARY KEY, "{EVIL_FIELD}" TEXT, note TEXT)')
        db.executemany(
            f'INSERT INTO "{EVIL}" VALUES (?, ?, ?)',
            [(1, "zoe.roy@example.com", "fine"), (2, "hugo.leroy@example.org", "ok")],
        )
    files = tmp_path / "files"
    files.mkdir()
    (files / f"{EVIL}.csv").write_text("email\nlea.simon@example.net\n", encoding="utf-8")
    extra = f"retention:\n  - {{source: files, container: '*.csv', mtime: true, max_age: 30d, basis: '{EVIL}'}}\n"
    cfg = str(
        write_config(
            tmp_path / "piiport.yaml",
            tmp_path / "idx" / "index.db",
            {"shop": f"sqlite:///{tmp_path / 'shop.db'}", "files": str(files)},
            extra,
        )
    )
    assert runner.invoke(main, ["scan", "--config", cfg]).exit_code == 0
    (files / "<svg onload=alert(2)>.json").write_text('[{"email": ', encoding="utf-8")  # fails
    (files / "<i>new.csv").write_text("contact\nmarc.petit@example.com\n", encoding="utf-8")
    stamp = (files / f"{EVIL}.csv").stat().st_mtime - 90 * 86400
    os.utime(files / f"{EVIL}.csv", (stamp, stamp))
    assert runner.invoke(main, ["scan", "--config", cfg]).exit_code == 1
    return cfg


def _elements(tree) -> list:
    return list(tree.iter())


def _tag(el) -> str:
    return el.tag.rsplit("}", 1)[-1] if isinstance(el.tag, str) else ""


def test_every_value_is_escaped_and_the_page_is_self_contained(runner: CliRunner, tmp_path: Path, hostile: str) -> None:
    out = tmp_path / "report.html"
    out.write_text("old", encoding="utf-8")
    out.chmod(0o644)
    result = runner.invoke(main, ["report", "--config", hostile, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output == f"{out}\n"
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    page = out.read_text(encoding="utf-8")

    parser = html5lib.HTMLParser(strict=True, namespaceHTMLElements=True)
    tree = parser.parse(page)  # strict: raises on any parse error
    tags = [_tag(el) for el in _elements(tree)]
    assert "img" not in tags and "script" not in tags and "i" not in tags
    assert tags.count("svg") == 1  # the trend chart, nothing injected
    for el in _elements(tree):
        for name in el.attrib:
            attr = name[1] if isinstance(name, tuple) else name
            assert not attr.lower().startswith("on"), (el.tag, attr)
            assert attr not in ("src", "href"), (el.tag, attr)  # no external asset, no link out
    assert "url(" not in page and "@import" not in page and "<link" not in page

    text = "".join(tree.itertext())
    for name in (EVIL, EVIL_FIELD, "<svg onload=alert(2)>.json", "<i>new.csv"):
        assert name in text
    assert "Changes since the previous run" in text and "From run 1 to run 2." in text
    assert "New personal-data fields" in text and "Containers that began failing" in text
    assert "breached: 1 files past the limit" in text  # the retention rule on the back-dated file
    assert "z***@e***.com" in text
    for plain in ("zoe.roy", "lea.simon", "marc.petit", "example.com"):
        assert plain not in page

    runner.invoke(main, ["report", "--config", hostile, "--out", str(out), "--no-examples"])
    bare = out.read_text(encoding="utf-8")
    assert "***" not in bare and "Masked examples" not in bare and html.escape(EVIL_FIELD) in bare


def _png_size_and_colours(png: bytes) -> tuple[int, int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    pos, data = 8, b""
    while pos < len(png):
        length = int.from_bytes(png[pos : pos + 4], "big")
        if png[pos + 4 : pos + 8] == b"IDAT":
            data += png[pos + 8 : pos + 8 + length]
        pos += 12 + length
    return width, height, len(set(zlib.decompress(data)))


@pytest.mark.browser
def test_the_report_renders_in_headless_chromium(runner: CliRunner, tmp_path: Path, hostile: str) -> None:
    reason = missing()
    if reason:
        service_missing(reason)
    out = tmp_path / "report.html"
    assert runner.invoke(main, ["report", "--config", hostile, "--out", str(out)]).exit_code == 0
    profile = tmp_path / "chromium-profile"
    base = [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}"]
    dom = subprocess.run(
        [*base, "--dump-dom", out.as_uri()], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    assert "<img" not in dom and "<script" not in dom  # the browser built no element from a name
    assert "&lt;img src=x onerror=alert(1)&gt;" in dom
    png = tmp_path / "report.png"
    subprocess.run(
        [*base, f"--screenshot={png}", "--window-size=1200,1600", "--hide-scrollbars", out.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    width, height, colours = _png_size_and_colours(png.read_bytes())
    assert (width, height) == (1200, 1600)
    assert colours > 20  # text, tiles and the chart, not a blank page


def test_a_report_before_any_second_run_says_so(runner: CliRunner, tmp_path: Path, detector) -> None:
    (tmp_path / "a.csv").write_text("email\nx.y@example.com\n", encoding="utf-8")
    assert runner.invoke(main, ["scan", "a.csv"]).exit_code == 0
    assert runner.invoke(main, ["report", "--out", "r.html"]).exit_code == 0
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "This is the first scan run" in page and "No retention rules are configured" in page
    assert "None: every container was read." in page
    summary = json.loads(runner.invoke(main, ["inventory", "--format", "json"]).output)
    assert summary[0]["container"] == "a.csv" and "a.csv" in page


def test_report_without_an_index_is_one_line(runner: CliRunner) -> None:
    result = runner.invoke(main, ["report", "--out", "r.html"])
    assert result.exit_code == 2
    assert result.output == "Error: no index at .piiport/index.db; run `piiport scan` first or pass --index\n"
