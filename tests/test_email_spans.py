"""E-mail spans are the address alone, whatever surrounds it in logs, URLs, headers and prose.

Each shape is checked twice: the exact offsets `piiport detect` prints, and a scan of log,
text and database free text followed by `piiport export --email`, which must find exactly
the subject's lines.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from discover.identifiers import normalise_email
from piiport.cli import main

JANE = "jane.doe@example.com"

# (text, the e-mail spans it holds). One line per shape an address is written in, and more of each class.
SHAPES: list[tuple[str, list[str]]] = [
    ("2026-01-01 10:00:00 login ok user=jane.doe@example.com from 10.1.2.3", [JANE]),
    (
        'ts=2026-01-01T10:00:00Z level=info msg="sent" email="jane.doe@example.com" to=jane.doe@example.com',
        [JANE, JANE],
    ),
    ("{user=jane.doe@example.com, role=admin}", [JANE]),
    ("Email: jane.doe@example.com", [JANE]),
    ("E-mail : jane.doe@example.com", [JANE]),
    ("GET /unsubscribe?email=jane.doe%40example.com&ref=newsletter HTTP/1.1 200", ["jane.doe%40example.com"]),
    ("POST /send?from=ops%40example.com&to=Jane.Doe%40Example.com", ["ops%40example.com", "Jane.Doe%40Example.com"]),
    ("GET /r?next=%2Fhome%3Femail%3Djane.doe%40example.com 302", ["jane.doe%40example.com"]),
    ("GET /send?from=ops&to=jane.doe@example.com&x=1", [JANE]),
    ("<a href='mailto:jane.doe@example.com'>write</a>", [JANE]),
    ("Reply-To: <jane.doe@example.com>", [JANE]),
    ('From: "Doe, Jane" <jane.doe@example.com>', [JANE]),
    ("Jane (jane.doe@example.com) called twice", [JANE]),
    ("user='jane.doe@example.com' and user=\"jane.doe@example.com\"", [JANE, JANE]),
    ("quoted ‘jane.doe@example.com’ and “jane.doe@example.com” and «jane.doe@example.com»", [JANE, JANE, JANE]),
    ("Write to jane.doe@example.com.", [JANE]),
    ("jane.doe@example.com, jane.doe@example.com; jane.doe@example.com: done", [JANE, JANE, JANE]),
    ("Is it jane.doe@example.com? Yes, jane.doe@example.com! (or jane.doe@example.com)", [JANE, JANE, JANE]),
    ("path=/users/jane.doe@example.com|status=ok", [JANE]),
    ("more in the thread...jane.doe@example.com replied", [JANE]),
    ("o'brien+news@mail.example.co.uk wrote", ["o'brien+news@mail.example.co.uk"]),
]
# Other people's addresses that contain Jane's, or that Jane's contains: never hers.
OTHERS = [
    "2026-01-01 10:00:05 login ok user=maryjane.doe@example.com from 10.1.2.9",
    "2026-01-01 10:00:06 bounce to=jane.doe@example.community",
    "2026-01-01 10:00:07 GET /unsubscribe?email=jane.doe2%40example.com",
    "2026-01-01 10:00:08 login ok user=john.roe@example.com from 10.1.2.3",
]


def _spans(text: str, wanted: list[str]) -> list[dict[str, object]]:
    """The expected e-mail entities of ``text``: each wanted address, in order, at its offsets."""
    out: list[dict[str, object]] = []
    at = 0
    for address in wanted:
        start = text.index(address, at)
        at = start + len(address)
        out.append({"type": "EMAIL_ADDRESS", "start": start, "end": at})
    return out


def test_detect_gives_the_address_alone_for_every_shape(runner: CliRunner, detector) -> None:
    texts = [t for t, _ in SHAPES] + OTHERS
    payload = "".join(json.dumps({"text": t}) + "\n" for t in texts)
    result = runner.invoke(main, ["detect", "--jsonl"], input=payload)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    got = [
        [{k: e[k] for k in ("type", "start", "end")} for e in line["entities"] if e["type"] == "EMAIL_ADDRESS"]
        for line in lines
    ]
    other_addresses = [
        ["maryjane.doe@example.com"],
        ["jane.doe@example.community"],
        ["jane.doe2%40example.com"],
        ["john.roe@example.com"],
    ]
    want = [_spans(t, w) for t, w in SHAPES] + [_spans(t, w) for t, w in zip(OTHERS, other_addresses, strict=True)]
    assert got == want


def test_an_email_in_a_logfmt_login_line_has_exact_offsets(runner: CliRunner, detector) -> None:
    line = "2026-01-01 10:00:00 login ok user=jane.doe@example.com from 10.1.2.3\n"
    result = runner.invoke(main, ["detect", "-"], input=line)
    entities = [(e["type"], e["start"], e["end"]) for e in json.loads(result.output)["entities"]]
    assert entities == [("EMAIL_ADDRESS", 34, 54), ("IP_ADDRESS", 60, 68)]


@pytest.mark.parametrize(
    ("value", "address"),
    [
        ('"Jane Doe" <Jane.Doe@Example.com>', JANE),
        ("Doe, Jane <jane.doe@example.com>", JANE),
        ("<mailto:jane.doe@example.com>", JANE),
        ("mailto:jane.doe@example.com?subject=Hello", JANE),
        ("MAILTO:JANE.DOE@EXAMPLE.COM", JANE),
        ("jane.doe%40example.com", JANE),
        ("  <jane.doe@example.com>  ", JANE),
        ("a%2Bb@example.com", "a%2bb@example.com"),  # has an "@": a literal local part, not decoded
        ('"Jane Doe" <not an address>', None),
        ("jane.doe%41example.com", None),
    ],
)
def test_typed_values_normalise_to_the_address(value: str, address: str | None) -> None:
    assert normalise_email(value) == address


def _sources(tmp_path: Path) -> list[str]:
    """A .log file, a .txt file and a SQLite table with a free-text column and a decorated e-mail column."""
    lines = [t for t, _ in SHAPES]
    log = lines[:10] + OTHERS[:2]
    txt = lines[10:] + OTHERS[2:]
    (tmp_path / "app.log").write_text("\n".join(log) + "\n", encoding="utf-8")
    (tmp_path / "mail.txt").write_text("\n".join(txt) + "\n", encoding="utf-8")
    with sqlite3.connect(tmp_path / "crm.db") as db:
        db.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, message TEXT)")
        db.executemany(
            "INSERT INTO events VALUES (?, ?)",
            [
                (1, "Ticket opened by user=jane.doe@example.com via web form, awaiting triage"),
                (2, "Customer asked to be removed: GET /optout?email=jane.doe%40example.com was logged"),
                (3, "Callback requested by user=john.roe@example.com about an invoice"),
                (4, "Forwarded to “maryjane.doe@example.com” for a second opinion on the refund"),
            ],
        )
        db.execute("CREATE TABLE contacts (id INTEGER PRIMARY KEY, email TEXT)")
        db.executemany(
            "INSERT INTO contacts VALUES (?, ?)",
            [
                (1, '"Jane Doe" <Jane.Doe@example.com>'),
                (2, "mailto:jane.doe@example.com"),
                (3, "<john.roe@example.com>"),
                (4, "Mary Jane <maryjane.doe@example.com>"),
            ],
        )
    return ["app.log", "mail.txt", "sqlite:///crm.db"]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_scan_then_export_finds_every_line_of_the_subject(
    runner: CliRunner, tmp_path: Path, detector, workers: str
) -> None:
    scan = runner.invoke(main, ["scan", "--workers", workers, *_sources(tmp_path)])
    assert scan.exit_code == 0, scan.output
    # The lines as stored (ops%40example.com is someone else's and would be redacted by default).
    result = runner.invoke(main, ["export", "--email", JANE, "--request-id", "R-1", "--json", "--no-redact"])
    assert result.exit_code == 0, result.output
    package = tmp_path / "exports" / "R-1"

    def rows(path: str) -> list[tuple[object, object, str]]:
        data = json.loads((package / "data" / path).read_text(encoding="utf-8"))
        return [
            (r["_piiport_locator"]["key"], r.get("line") or r.get("message") or r["email"], r["_piiport_match"])
            for r in data
        ]

    lines = [t for t, _ in SHAPES]
    assert rows("app.log/app.log.json") == [(i + 1, t, "mention") for i, t in enumerate(lines[:10])]
    assert rows("mail.txt/mail.txt.json") == [(i + 1, t, "mention") for i, t in enumerate(lines[10:20])]
    assert rows("crm/events.json") == [
        ([1], "Ticket opened by user=jane.doe@example.com via web form, awaiting triage", "mention"),
        ([2], "Customer asked to be removed: GET /optout?email=jane.doe%40example.com was logged", "mention"),
    ]
    assert rows("crm/contacts.json") == [
        ([1], '"Jane Doe" <Jane.Doe@example.com>', "strong"),
        ([2], "mailto:jane.doe@example.com", "strong"),
    ]
