"""Faults a user meets at the command line: one clear line, the right exit code, no traceback.

The table ``CASES`` runs each fault as a user would, ``piiport`` in a fresh process in an
empty folder; add a row for a new fault. Beside it: long texts, passwords in URLs, file
modes, config ranges, request ids and ``--no-expand``.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from servers import postgres_database, run_sql

from connectors.redact import mask_url
from discover import chunking
from discover.chunking import CHUNK_CHARS, OVERLAP_CHARS, split_text
from discover.index import Index
from piiport.api import export_subject, scan_sources
from piiport.config import Config, load_config

PIIPORT = str(Path(sys.executable).with_name("piiport"))


def piiport(
    *args: str, cwd: Path, stdin: bytes | None = None, umask: int | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PIIPORT_")}, **(env or {})}
    return subprocess.run(
        [PIIPORT, *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        timeout=300,
        env=env,
        preexec_fn=(lambda: os.umask(umask)) if umask is not None else None,
    )


def empty_index(folder: Path) -> None:
    """The default index of a folder, with nothing scanned into it (export needs one to exist)."""
    Index(f"sqlite:///{folder / '.piiport' / 'index.db'}", key=None).close()


# -- the no-traceback harness ----------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One CLI fault: files to create, the command, its exit code and its one line on stderr."""

    id: str
    argv: tuple[str, ...]
    exit_code: int
    stderr: str
    files: dict[str, bytes] = field(default_factory=dict)
    setup: Callable[[Path], None] | None = None
    stdin: bytes | None = None


def _config_case(name: str, yaml: str, line: str) -> Case:
    return Case(
        f"config-{name}",
        ("scan", "--config", "c.yaml"),
        2,
        f"Error: config c.yaml: {line}",
        files={"c.yaml": yaml.encode(), "a.csv": b"name,email\nAlma Perez,alma@x.example\n"},
    )


def _request_id_case(rid: str, line: str) -> Case:
    return Case(
        f"request-id-{rid}",
        ("export", "--email", "alma@example.com", "--request-id", rid),
        2,
        f"Error: request id {rid!r} {line}",
        setup=empty_index,
    )


RESERVED = "is a reserved file name on Windows (CON, PRN, AUX, NUL, COM1-9, LPT1-9); choose another --request-id"
NOT_A_FILE_NAME = (
    "is not usable as a file name; use letters, digits, '.', '_' and '-' (at most 100 characters, not ending in '.'); "
    "choose another --request-id"
)

CASES = [
    # numbers out of range in the config
    _config_case(
        "retries-0",
        "sources:\n  - url: sqlite:///a.db\n    retries: 0\n",
        "sources[0].retries is 0; it must be a whole number from 1 to 100",
    ),
    _config_case(
        "retries-negative",
        "sources:\n  - url: sqlite:///a.db\n    retries: -3\n",
        "sources[0].retries is -3; it must be a whole number from 1 to 100",
    ),
    _config_case(
        "retry_delay-0",
        "sources:\n  - url: sqlite:///a.db\n    retry_delay: 0\n",
        "sources[0].retry_delay is 0.0; it must be a number of seconds greater than 0 and at most 300",
    ),
    _config_case(
        "connect_timeout-negative",
        "sources:\n  - url: sqlite:///a.db\n    connect_timeout: -1\n",
        "sources[0].connect_timeout is -1; it must be a whole number from 1 to 3600",
    ),
    _config_case(
        "multipart-0",
        "s3:\n  multipart_threshold_mb: 0\n",
        "s3.multipart_threshold_mb is 0; it must be a whole number from 5 to 5120",
    ),
    _config_case(
        "max_depth-negative",
        "export:\n  max_depth: -1\n",
        "export.max_depth is -1; it must be a whole number from 1 to 100",
    ),
    _config_case(
        "max_depth-0", "export:\n  max_depth: 0\n", "export.max_depth is 0; it must be a whole number from 1 to 100"
    ),
    # --out is a file; binary input to detect
    Case(
        "out-is-a-file",
        ("export", "--email", "alma@example.com", "--out", "taken"),
        2,
        "Error: --out taken is a file, not a folder; give a folder for the package",
        files={"taken": b"not a folder\n"},
        setup=empty_index,
    ),
    Case(
        "out-inside-a-file",
        ("export", "--email", "alma@example.com", "--out", "taken/pk", "--zip"),
        2,
        "Error: --out taken/pk is inside a file, not a folder; give a folder",
        files={"taken": b"not a folder\n"},
        setup=empty_index,
    ),
    Case(
        "detect-nul-bytes",
        ("detect", "blob.bin"),
        2,
        "Error: blob.bin, line 2: holds NUL bytes, so it is a binary file; piiport detect reads UTF-8 text",
        files={"blob.bin": b"Call Alma Perez\n\x7fELF\x02\x01\x01\x00\x00\x00\n"},
    ),
    Case(
        "detect-latin-1",
        ("detect", "notes.txt"),
        2,
        "Error: notes.txt, line 1: byte 0xe9 is not UTF-8; convert the file to UTF-8 (e.g. iconv -f latin1 -t utf-8)",
        files={"notes.txt": "Chlo\xe9 Lef\xe8vre called\n".encode("latin-1")},
    ),
    Case(
        "detect-stdin-binary",
        ("detect", "-"),
        2,
        "Error: standard input, line 1: byte 0xff is not UTF-8; convert the file to UTF-8 (e.g. iconv -f latin1 -t utf-8)",
        stdin=b"\xff\xfe binary\n",
    ),
    # request ids are usage errors; Windows reserved names are refused
    _request_id_case("CON", RESERVED),
    _request_id_case("nul.txt", RESERVED),
    _request_id_case("Com1.zip", RESERVED),
    _request_id_case("lpt9", RESERVED),
    _request_id_case("aux.tar.gz", RESERVED),
    _request_id_case("bad id", NOT_A_FILE_NAME),
    _request_id_case("ends-in-dot.", NOT_A_FILE_NAME),
    _request_id_case("../escape", NOT_A_FILE_NAME),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_cli_fault_gives_one_line_and_its_exit_code(case: Case, tmp_path: Path) -> None:
    for name, content in case.files.items():
        (tmp_path / name).write_bytes(content)
    if case.setup:
        case.setup(tmp_path)
    result = piiport(*case.argv, cwd=tmp_path, stdin=case.stdin)
    stderr = result.stderr.decode()
    assert "Traceback" not in stderr
    assert stderr.splitlines() == [case.stderr]
    assert result.returncode == case.exit_code


def test_windows_names_that_only_look_reserved_are_accepted(tmp_path: Path) -> None:
    empty_index(tmp_path)
    for rid in ("COM10", "CONSOLE", "nul-2026", "LPT0"):
        result = piiport("export", "--email", "alma@example.com", "--request-id", rid, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert (tmp_path / "exports" / rid / "manifest.json").exists()


# -- long texts ------------------------------------------------------------------------------------

FILLER = "the order was shipped late and the box arrived damaged please check the invoice before friday".split()  # noqa: SIM905


def _record(rng: random.Random, names: Any, i: int) -> tuple[str, tuple[str, str]]:
    """A self-contained note that plants one entity, and the entity (type, text).

    Each name word occurs once in the whole text: a word of a name found in a text is a name
    wherever else it occurs in that text, which a piece on its own cannot know.
    """
    first, last = names.unique.first_name(), names.unique.last_name()
    words = " ".join(rng.choice(FILLER) for _ in range(rng.randint(3, 12)))
    kind = i % 4
    if kind == 0:
        value = f"{first} {last}"
        return f"Spoke with {value} about it, {words}.", ("PERSON", value)
    if kind == 1:
        value = f"{first.lower()}.{last.lower()}{i}@example.org"
        return f"Reply to {value} today, {words}.", ("EMAIL_ADDRESS", value)
    if kind == 2:
        value = f"+44 20 7946 {i % 10000:04d}"
        return f"Call back on {value} today, {words}.", ("PHONE_NUMBER", value)
    value = f"{81 + i % 100}.{i % 256}.{i // 256 % 256}.{1 + i % 250}"
    return f"Login from {value} noted, {words}.", ("IP_ADDRESS", value)


def _spans(entities) -> list[tuple[str, int, int, float]]:
    return [(e.type, e.start, e.end, round(e.score, 4)) for e in entities]


PAD = "the parcel was shipped late and the box arrived damaged please check it before friday".split()  # noqa: SIM905


def _pad(length: int) -> str:
    """Lower-case words, exactly ``length`` characters, ending in a space."""
    words = " ".join(PAD[i % len(PAD)] for i in range(length // 3 + 2))
    return words[: length - 1].rstrip().ljust(length - 1, "e") + " "


def _entities_across_cuts(names: Any) -> tuple[str, list[tuple[str, int, int, int]]]:
    """Notes, and at every cut between two chunks a name or phone across the cut, and an e-mail
    or IP across the middle of the overlap (where findings pass from one chunk to the next).

    Where the cuts fall follows from ``split_text``'s rule: a chunk ends after the last white
    space before ``CHUNK_CHARS``, the next starts after the last white space before its end
    minus ``OVERLAP_CHARS`` (both within a quarter chunk), and the middle of the overlap divides them.
    Returns the text and the planted (type, start, end, boundary it spans).
    """
    rng = random.Random(14)
    text, planted, start, i = "", [], 0, 0
    size, overlap = CHUNK_CHARS, OVERLAP_CHARS
    for k in range(6):
        end = start + size  # the chunk ends here, after a space planted at end - 1
        next_start = end - overlap  # after a space planted at next_start - 1
        keep_to = (next_start + end) // 2
        while len(text) < next_start - 300:
            text += _record(rng, names, i)[0] + " "
            i += 1
        text += _pad(next_start - len(text))
        lead, value = (
            ("Reply to ", f"x{k}.{names.unique.last_name().lower()}@example.org")
            if k % 2
            else (
                "Login from ",
                f"81.{k}.200.{k + 7}",
            )
        )
        text += _pad(keep_to - 4 - len(lead) - len(text)) + lead
        planted.append(("EMAIL_ADDRESS" if k % 2 else "IP_ADDRESS", len(text), len(text) + len(value), keep_to))
        text += value + " noted. "
        lead, value = (
            ("Spoke with ", ["Derek Gray", "Kenneth Jackson", "Alma Perez"][k // 2])
            if k % 2
            else (
                "Call back on ",
                f"+44 20 7946 {k:04d}",
            )
        )
        at = end - 1 - value.rindex(" ")  # the value's last space at end - 1
        text += _pad(at - len(lead) - len(text)) + lead
        planted.append(("PERSON" if k % 2 else "PHONE_NUMBER", at, at + len(value), end))
        text += value + " today. "
        start = next_start
    while len(text) < start + size + 2000:
        text += _record(rng, names, i)[0] + " "
        i += 1
    return text, planted


def test_long_text_findings_are_those_of_the_text_in_one_piece(detector, monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunking changes no finding: the same text analysed whole gives the same entities, scores
    included, and entities across the cuts and across the overlaps' middles are found once, whole.

    (The text cut into its notes would not do as the reference: the detector reads context across
    them, such as "invoice" before a number, or a first name that NER finds only beside its
    surname's sentence.)
    """
    from faker import Faker

    names = Faker("en_US")
    names.seed_instance(14)
    long, planted = _entities_across_cuts(names)
    chunks = split_text(long)
    assert len(chunks) >= 7
    for (etype, s, e, boundary), chunk in zip(planted[1::2], chunks, strict=False):
        assert s < chunk.end == boundary < e, etype  # the planted name or phone straddles the cut
    for (etype, s, e, boundary), chunk in zip(planted[::2], chunks, strict=False):
        assert s < chunk.keep_to == boundary < e, etype

    monkeypatch.setattr(chunking, "CHUNK_CHARS", 10 * len(long))
    whole = _spans(detector.analyze([long])[0])
    monkeypatch.undo()
    found = _spans(detector.analyze([long])[0])
    assert found == whole
    spans = [(t, s, e) for t, s, e, _ in found]
    for etype, s, e, _ in planted:
        assert spans.count((etype, s, e)) == 1, (etype, long[s:e])
        assert not [x for x in spans if x[0] == etype and x[1] < e and s < x[2] and x[1:] != (s, e)]
    assert {t for t, *_ in found} == {"PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "IP_ADDRESS"}


def _million_character_line() -> tuple[str, list[tuple[str, int, int]]]:
    """Over spaCy's 1,000,000-character limit: lower-case filler, entities at the start, middle and end."""
    rng = random.Random(1)
    filler = " ".join(rng.choice(FILLER) for _ in range(200_000))
    text, spans = "", []
    for prefix, etype, value in (
        ("Write to ", "EMAIL_ADDRESS", "alma.perez@example.com"),
        (" and ", "PERSON", "Alma Perez"),
        (" " + filler[:500_000] + " call ", "PERSON", "Boris Klein"),
        (" on ", "PHONE_NUMBER", "+44 20 7946 0958"),
        (" from ", "IP_ADDRESS", "81.12.200.7"),
        (" " + filler[500_000:1_000_000] + " Regards, ", "PERSON", "Chloe Garcia"),
    ):
        text += prefix
        spans.append((etype, len(text), len(text) + len(value)))
        text += value
    return text, spans


def test_a_text_over_a_million_characters_is_analysed(detector) -> None:
    text, planted = _million_character_line()
    assert len(text) > 1_000_000
    found = [(e.type, e.start, e.end) for e in detector.analyze([text])[0]]
    assert sorted(found) == sorted(planted)


def test_detect_a_million_character_line_from_the_cli(tmp_path: Path) -> None:
    text, planted = _million_character_line()
    (tmp_path / "big.log").write_text(text + "\n", encoding="utf-8")
    result = piiport("detect", "big.log", cwd=tmp_path)
    assert result.returncode == 0 and result.stderr == b""
    lines = result.stdout.decode().splitlines()
    assert len(lines) == 1
    found = [(e["type"], e["start"], e["end"]) for e in json.loads(lines[0])["entities"]]
    assert sorted(found) == sorted(planted)


def test_chunks_cut_at_line_breaks_then_spaces_and_cover_the_text() -> None:
    lines = ("word " * 199 + "\n") * 40  # a line break in every stretch of 1,000 characters
    chunks = split_text(lines)
    for a, b in itertools.pairwise(chunks):
        assert lines[a.end - 1] == lines[b.start - 1] == "\n"
    text = "word " * 8000  # one line
    chunks = split_text(text)
    assert chunks[0].start == 0 and chunks[-1].end == len(text) and chunks[-1].keep_to == len(text)
    for a, b in itertools.pairwise(chunks):
        assert text[a.end - 1] == text[b.start - 1] == " "
        assert a.keep_to == b.keep_from and b.start < a.keep_to < a.end
        assert a.keep_to - b.start >= OVERLAP_CHARS // 4 and a.end - a.keep_to >= OVERLAP_CHARS // 4
    assert split_text("short") == split_text("short", 10, 2)[:1]
    assert len(split_text("x" * 9000)) == 3  # no white space at all: cut anyway


# -- passwords with @, : and / ---------------------------------------------------------------------

PASSWORDS = ["p@ss@TAILat", "p:ss:TAILcolon", "p/ss/TAILslash", "a@b:c/TAILall"]


def test_mask_url_masks_up_to_the_last_at_of_the_authority() -> None:
    cases = {
        "postgresql://u:p@ss@host/db": "postgresql://u:***@host/db",
        "postgresql://u:p:ss@host:5432/db": "postgresql://u:***@host:5432/db",
        "postgresql+psycopg://u:p/ss@host/db?sslmode=require": "postgresql+psycopg://u:***@host/db?sslmode=require",
        "mysql+pymysql://u:a@b:c/d@host/db?x=y@z": "mysql+pymysql://u:***@host/db?x=y@z",
        "cannot reach 'postgresql://u:p@ss@h/db': refused": "cannot reach 'postgresql://u:***@h/db': refused",
        "postgresql://host:5432/db": "postgresql://host:5432/db",
        "postgresql://u@host/db": "postgresql://u@host/db",
        "a postgresql://u:x@h/db and mysql://v:y@z@h2/db": "a postgresql://u:***@h/db and mysql://v:***@h2/db",
        "s3://b/k?X-Amz-Signature=abc&x=1": "s3://b/k?X-Amz-Signature=***&x=1",
        # A password holding what ends a URL inside a message (a quote, < or >) is still masked whole.
        "postgresql://u:a<b@db.example.com/shop": "postgresql://u:***@db.example.com/shop",
        "mysql://u:p@x'y@host/db": "mysql://u:***@host/db",
        'see "postgresql://u:a"b@h/db" now': 'see "postgresql://u:***@h/db" now',
    }
    assert {url: mask_url(url) for url in cases} == cases


@pytest.mark.parametrize("password", PASSWORDS)
def test_a_password_never_leaks_from_a_failed_scan(password: str, tmp_path: Path) -> None:
    url = f"postgresql+psycopg://scanner:{password}@127.0.0.1:1/crm"
    tail = password[2:]  # everything after the first special character
    for args in (("scan", url), ("scan", url, "--json")):
        result = piiport(*args, cwd=tmp_path)
        assert result.returncode == 1
        out = result.stdout + result.stderr
        assert b"TAIL" not in out and tail.encode() not in out
        assert b'127.0.0.1\\", port 1 failed' in out or b'"127.0.0.1", port 1 failed' in out  # the right host
    raw = b"".join(p.read_bytes() for p in (tmp_path / ".piiport").iterdir())
    assert b"TAIL" not in raw and tail.encode() not in raw
    bad_index = piiport("inventory", "--index", url, cwd=tmp_path, env={"PIIPORT_INDEX_KEY": "ab" * 16})
    assert bad_index.returncode == 2 and b"TAIL" not in bad_index.stdout + bad_index.stderr
    assert bad_index.stderr.decode().startswith(
        "Error: cannot open index postgresql+psycopg://scanner:***@127.0.0.1:1/crm"
    )


@pytest.mark.parametrize("password", PASSWORDS[::3])
def test_a_password_with_at_reaches_the_right_host_and_stays_out_of_the_index(
    password: str, tmp_path: Path, detector
) -> None:
    with postgres_database() as base:
        run_sql(
            base,
            "CREATE TABLE people (id INT PRIMARY KEY, email TEXT);\nINSERT INTO people VALUES (1, 'alma@example.com')",
        )
        # The local server trusts every password: the scan connects only if the host is read right.
        url = base.replace("postgres@", f"postgres:{password}@")
        idx = Index(f"sqlite:///{tmp_path / 'idx' / 'index.db'}")
        try:
            result = scan_sources([url], index=idx, detector=detector)
            assert result.ok, result.errors
            assert [c.container for c in result.containers] == ["people"]
            assert {c.url for c in idx.containers()} == {base.replace("postgres@", "postgres:***@")}
        finally:
            idx.close()
        raw = b"".join(p.read_bytes() for p in (tmp_path / "idx").iterdir())
        assert b"TAIL" not in raw and password.encode() not in raw


# -- file modes ------------------------------------------------------------------------------------


def _modes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): oct(p.stat().st_mode & 0o777) for p in sorted(root.rglob("*"))}


def test_index_and_packages_are_private_under_umask_022(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("name,email\nAlma Perez,alma@example.com\n", encoding="utf-8")
    assert piiport("scan", "a.csv", cwd=tmp_path, umask=0o022).returncode == 0
    index_modes = _modes(tmp_path / ".piiport")
    assert index_modes["index.db"] == index_modes["index.key"] == "0o600"
    assert set(index_modes.values()) == {"0o600"}  # -wal and -shm too, while they exist
    assert oct((tmp_path / ".piiport").stat().st_mode & 0o777) == "0o700"
    # While a reader holds the index open, its -wal and -shm exist: they get the database's mode.
    with sqlite3.connect(tmp_path / ".piiport" / "index.db") as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("SELECT count(*) FROM containers").fetchall()
        assert {n: m for n, m in _modes(tmp_path / ".piiport").items() if "-" in n} == {
            "index.db-shm": "0o600",
            "index.db-wal": "0o600",
        }
    for args in (("--request-id", "R-zip", "--zip"), ("--request-id", "R-dir"), ("--format", "parquet")):
        result = piiport("export", "--email", "alma@example.com", *args, cwd=tmp_path, umask=0o022)
        assert result.returncode == 0, result.stderr
    modes = _modes(tmp_path / "exports")
    assert modes.pop("R-zip.zip") == "0o600"
    assert {m for n, m in modes.items() if (tmp_path / "exports" / n).is_dir()} == {"0o700"}
    files = {n: m for n, m in modes.items() if (tmp_path / "exports" / n).is_file()}
    # Two packages: a manifest, a data file, index.html and processing.json each.
    assert set(files.values()) == {"0o600"} and len(files) == 8
    assert oct((tmp_path / "exports").stat().st_mode & 0o777) == "0o700"


# -- export.out from the config file ---------------------------------------------------------------


def test_export_out_is_relative_to_the_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    for out, expected in (
        ("packages", str(conf / "packages")),
        ("../outbox/pk", str(conf / "../outbox/pk")),
        (str(tmp_path / "abs"), str(tmp_path / "abs")),
        ("s3://bucket/requests", "s3://bucket/requests"),
    ):
        (conf / "piiport.yaml").write_text(f"export:\n  out: {out}\n", encoding="utf-8")
        assert load_config(conf / "piiport.yaml").export.out == expected
    assert load_config(None).export.out == "exports"  # no config file: the working directory's


# -- --name --no-expand ----------------------------------------------------------------------------


def test_name_without_expansion_exports_only_the_records_that_hold_the_name(tmp_path: Path, detector) -> None:
    db = tmp_path / "crm.db"
    with sqlite3.connect(db) as conn:
        conn.executescript(
            """
            CREATE TABLE customers (id INTEGER PRIMARY KEY, full_name TEXT, email TEXT);
            CREATE TABLE newsletter (id INTEGER PRIMARY KEY, email TEXT, topic TEXT);
            CREATE TABLE visits (id INTEGER PRIMARY KEY, full_name TEXT, city TEXT);
            INSERT INTO customers VALUES (1, 'Alma Perez', 'alma.perez@example.com'),
                (2, 'Boris Klein', 'boris.klein@example.com');
            INSERT INTO newsletter VALUES (1, 'alma.perez@example.com', 'deals'),
                (2, 'boris.klein@example.com', 'news');
            INSERT INTO visits VALUES (1, 'Alma Perez', 'Lyon'), (2, 'Boris Klein', 'Metz');
            """
        )
    idx = Index(f"sqlite:///{tmp_path / 'idx' / 'index.db'}")
    try:
        assert scan_sources([f"sqlite:///{db}"], index=idx, detector=detector).ok

        def package(expand: bool, include_review: bool = False) -> tuple[dict[str, list[tuple[int, str]]], set]:
            result = export_subject(
                names=["Alma Perez"],
                config=Config(),
                index=idx,
                out=tmp_path / "pk",
                expand=expand,
                include_review=include_review,
            )
            manifest = json.loads((Path(result.package) / "manifest.json").read_text())
            assert manifest["subject"]["expanded"] is expand
            data = {
                f["container"]: [
                    (row["id"], row["_piiport_match"])
                    for row in json.loads((Path(result.package) / f["path"]).read_text())
                ]
                for f in manifest["files"]
            }
            return data, {(r["container"], str(r["locator"]["key"])) for r in manifest["review"]}

        # Without expansion a name is all there is: its records are for review (a name is no
        # proof of identity), and the newsletter row, which holds only the e-mail, is nowhere.
        assert package(expand=False) == ({}, {("customers", "[1]"), ("visits", "[1]")})
        assert package(expand=False, include_review=True) == (
            {"customers": [(1, "review")], "visits": [(1, "review")]},
            {("customers", "[1]"), ("visits", "[1]")},
        )
        assert package(expand=True) == (
            {"customers": [(1, "strong")], "newsletter": [(1, "strong")]},
            {("visits", "[1]")},
        )
    finally:
        idx.close()
