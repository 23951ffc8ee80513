"""Phone numbers: the fast normaliser agrees with libphonenumber, the export side parses
identifiers with the scan's function, and phone columns of numbers that fit no region are indexed
by their digits (and nothing else is)."""

from __future__ import annotations

import json
import random
import re
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from connectors.base import Record
from connectors.errors import ConfigError
from discover.identifiers import PHONE, PHONE_DIGITS, normalise_phone, phone_digits
from discover.profile import Profiler
from discover.subjects import SHARED_DIGITS, Identifier, parse_identifiers
from piiport.cli import main

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from phone_strings import configs_for, numbers, reference, strings

REQUIRED = ("FR", "GB", "DE", "IT", "ES", "BE", "CH", "NL", "PT", "IE", "US", "CA", "BR", "IN", "AU", "MA")
DEFAULT = ("FR", "GB", "DE", "US")
SAMPLE = strings(3000, seed=20261130)
# Deterministic, and no example database (nothing written into the checkout; see below).
PROPERTY = settings(
    derandomize=True, database=None, deadline=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow]
)


def test_the_sample_covers_the_regions_and_the_ways_numbers_are_written() -> None:
    assert set(REQUIRED) <= {region for region, _ in SAMPLE} and len(SAMPLE) >= 2900
    texts = [t for _, t in SAMPLE]
    for needle in ("(0)", "00", "011 ", "x1", "ext", ";ext=", "#", "Tel: ", "tel:+", "/", ".", "-", "(", " (mobile)"):
        assert any(needle in t for t in texts), needle
    assert any(t.startswith("+39 0") for t in texts)  # Italy's leading 0
    assert any(t.startswith("+33 0") for t in texts)  # the national 0 after the calling code


def test_the_fast_path_agrees_with_libphonenumber_on_generated_strings() -> None:
    disagreements = []
    valid = 0
    for region, text in SAMPLE:
        for regions in configs_for(region):
            expected = reference(text, regions)
            if expected is None:
                continue
            valid += 1
            got = normalise_phone(text, regions)
            if got != expected:
                disagreements.append((regions, text, expected, got))
    assert valid >= 5000
    assert disagreements == []


@pytest.mark.parametrize(
    ("text", "regions", "e164"),
    [
        ("+33 05 56 96 96 96", ("FR",), "+33556969696"),  # the observed case
        ("+33 5 56 96 96 96", ("FR",), "+33556969696"),
        ("05 56 96 96 96", ("FR",), "+33556969696"),
        ("0033 (0)5 56 96 96 96", ("FR",), "+33556969696"),
        ("+44 (0)20 7031 3000", ("GB",), "+442070313000"),
        ("+44 (0) 20 7031 3000", DEFAULT, "+442070313000"),
        ("+49 (0)30 901820", ("DE",), "+4930901820"),
        ("030/901820", ("DE",), "+4930901820"),
        ("+41 (0)44 668 18 00", ("CH",), "+41446681800"),
        ("+39 06 6988 4821", ("IT",), "+390669884821"),  # Italy keeps its 0
        ("06 6988 4821", ("IT",), "+390669884821"),
        ("011 33 1 42 68 53 00", ("US",), "+33142685300"),  # the US international prefix
        ("+1 (212) 736-5000 ext. 12", ("US",), "+12127365000"),
        ("06 12 34 56 78 x123", ("FR",), "+33612345678"),
        ("+33612345678;ext=9", ("FR",), "+33612345678"),
        ("06 12 34 56 78 #12", ("FR",), "+33612345678"),
        ("33 6 12 34 56 78", ("FR",), "+33612345678"),  # the calling code without "+"
        ("Tel: 06.12.34.56.78.", ("FR",), "+33612345678"),
        ("tél. +33 (0)6 12 34 56 78 !", ("FR",), "+33612345678"),
        ("1-800-FLOWERS", ("US",), "+18003569377"),
        ("0612345678", ("GB", "FR"), "+33612345678"),  # possible in GB, valid in FR: the first where valid
    ],
)
def test_observed_and_typical_writings(text: str, regions: tuple[str, ...], e164: str) -> None:
    assert reference(text, regions) == e164
    assert normalise_phone(text, regions) == e164


def test_numbers_libphonenumber_finds_invalid_keep_todays_rules() -> None:
    # Possible for their country but unallocated (fictional ranges): kept, but not when strict.
    assert reference("+44 7700 900123", ("GB",)) is None
    assert normalise_phone("+44 7700 900123", ("GB",)) == "+447700900123"
    assert normalise_phone("07700 900123", ("GB",)) == "+447700900123"
    assert normalise_phone("+44 7700 900123", ("GB",), strict=True) is None
    # A number that fits no region, and text around an invalid number: nothing.
    assert normalise_phone("99 99 99 99 99", ("FR",)) is None
    assert normalise_phone("Tel: 07700 900123", ("GB",)) is None
    assert normalise_phone("06 12 34 56 78 (mobile)", ("FR",)) is None  # libphonenumber reads letters as digits


_POOL = [n for region in REQUIRED for n in numbers(region, random.Random(7), variants=6) if n.valid]


def _grouped(digits: str, sizes: list[int], sep: str) -> str:
    out, i = [], 0
    for size in sizes:
        if i >= len(digits):
            break
        out.append(digits[i : i + size])
        i += size
    if i < len(digits):
        out.append(digits[i:])
    return sep.join(out)


def _dials_00(region: str) -> bool:
    import phonenumbers

    meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
    return meta is not None and re.match(meta.international_prefix or "NonMatch", "0033") is not None


@st.composite
def writings(draw: st.DrawFn) -> tuple[str, str, str]:
    """(region, text, E.164): one valid number written in one of the ways people write it."""
    import phonenumbers

    number = draw(st.sampled_from(_POOL))
    e164 = f"+{number.code}{number.national}"
    written = phonenumbers.format_number(phonenumbers.parse(e164), phonenumbers.PhoneNumberFormat.NATIONAL)
    national = "".join(c for c in written if c.isdigit())
    sizes = draw(st.lists(st.integers(1, 4), min_size=1, max_size=8))
    sep = draw(st.sampled_from([" ", ".", "-", "/", "", " - "]))
    style = draw(st.sampled_from(["plus", "00", "national", "trunk0"]))
    junk = draw(st.booleans())
    if style == "plus":
        text = f"+{number.code}{draw(st.sampled_from([' ', '', '-', '.']))}{_grouped(number.national, sizes, sep)}"
    elif style == "00":
        text = f"00{number.code} {_grouped(number.national, sizes, sep)}"
        junk = junk and _dials_00(number.region)  # text around a number takes libphonenumber's reading only
    elif style == "trunk0" and number.region in ("FR", "GB", "DE", "CH", "NL", "BE", "IE") and national[0] == "0":
        text = f"+{number.code} (0){_grouped(national[1:], sizes, sep)}"
    else:
        text = _grouped(national, sizes, sep)
        if draw(st.booleans()) and sep == " " and " " in text:
            first, rest = text.split(" ", 1)
            text = f"({first}) {rest}"
    text += draw(st.sampled_from(["", " x12", "x7", " ext. 345", ";ext=9", " #12", " EXT:8"]))
    if junk:
        text = draw(st.sampled_from(["Tel: ", "tel. ", "phone ", ""])) + text + draw(st.sampled_from(["", "!", " ;"]))
    text += draw(st.sampled_from(["", ".", " "]))
    return number.region, text, e164


@PROPERTY
@given(writings())
@example(("FR", "+33 05 56 96 96 96", "+33556969696"))
def test_every_writing_of_a_number_normalises_to_its_e164(case: tuple[str, str, str]) -> None:
    region, text, e164 = case
    assert normalise_phone(text, (region,)) == e164
    if not text.lstrip("Telph.: ").startswith(("+", "00")):
        return
    assert normalise_phone(text, DEFAULT) == e164  # international writings: whatever the regions


@st.composite
def mangled(draw: st.DrawFn) -> str:
    """A valid number's international or national digits with characters of phone writing
    (and some that are not) inserted, dropped or replaced anywhere."""
    number = draw(st.sampled_from(_POOL))
    starts = [f"+{number.code}{number.national}", f"00{number.code}{number.national}", f"0{number.national}"]
    text = list(draw(st.sampled_from([*starts, number.national])))
    for _ in range(draw(st.integers(0, 6))):
        at = draw(st.integers(0, len(text)))
        op = draw(st.sampled_from(["insert", "insert", "drop", "replace"]))
        char = draw(st.sampled_from([*" +-.()/x#;ext=:T0", "(0)", " ext. ", ";ext=", " x"]))
        if op == "insert":
            text.insert(at, char)
        elif at < len(text):
            if op == "drop":
                del text[at]
            else:
                text[at] = char
    return "".join(text)


@PROPERTY
@given(mangled(), st.sampled_from([*((r,) for r in REQUIRED), DEFAULT, ("US", "GB", "IT", "BR", "IN")]))
def test_any_string_libphonenumber_finds_valid_gets_its_e164(text: str, regions: tuple[str, ...]) -> None:
    expected = reference(text, regions)
    if expected is not None:
        assert normalise_phone(text, regions) == expected


def test_the_export_side_parses_phones_with_the_scan_function() -> None:
    for text in ("+33 5 56 96 96 96", "+33 05 56 96 96 96", "05.56.96.96.96", "+44 7700 900123"):
        assert parse_identifiers(phones=[text], regions=("FR", "GB")) == [
            Identifier(PHONE, normalise_phone(text, ("FR", "GB")) or "")
        ]
    # Fits no region: its digits, as a phone column indexes it.
    assert parse_identifiers(phones=["9876 543 2101"], regions=("FR",)) == [Identifier(PHONE_DIGITS, "98765432101")]
    with pytest.raises(ConfigError, match=r"^1\*\*\*45 is not a valid phone number"):
        parse_identifiers(phones=["12345"], regions=DEFAULT)


# --- end to end: scan, then export by the number written another way ---------------------------


def _rows(db: Path, sql: str) -> list[dict[str, Any]]:
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute(sql)]


def _package(runner: CliRunner, *args: str) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    result = runner.invoke(main, ["export", *args, "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    package = Path(summary["package"])
    manifest = json.loads((package / "manifest.json").read_text(encoding="utf-8"))
    rows = {
        f["container"]: [
            {k: v for k, v in r.items() if not k.startswith("_piiport")}
            for r in json.loads((package / f["path"]).read_text(encoding="utf-8"))
        ]
        for f in manifest["files"]
    }
    return summary, rows


@pytest.mark.parametrize("workers", [2, 1])
def test_a_subject_stored_with_plus33_and_0_is_found_by_either_writing(
    runner: CliRunner, tmp_path: Path, detector, workers: int
) -> None:
    db = tmp_path / "crm.db"
    with sqlite3.connect(db) as conn:
        conn.executescript(
            """
            CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT, phone TEXT, city TEXT);
            CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers(id), total TEXT);
            CREATE TABLE calls (id INTEGER PRIMARY KEY, caller TEXT, minutes INTEGER);
            """
        )
        customers = [
            (1, "lea.garnier@example.fr", "+33 05 56 96 96 96", "Bordeaux"),
            (2, "marc.petit@example.fr", "05 56 96 96 97", "Bordeaux"),  # one digit apart
            (3, "ines.roux@example.fr", "+33 (0)6 12 34 56 78", "Paris"),
        ]
        customers += [(i, f"client{i}@example.fr", f"06 {i:02d} 11 22 33", "Lyon") for i in range(4, 40)]
        conn.executemany("INSERT INTO customers VALUES (?, ?, ?, ?)", customers)
        conn.executemany("INSERT INTO orders VALUES (?, ?, ?)", [(10, 1, "39.80"), (11, 2, "12.00"), (12, 1, "5.10")])
        conn.executemany(
            "INSERT INTO calls VALUES (?, ?, ?)",
            [(1, "0556969696", 3), (2, "+33 5 56 96 96 97", 1), (3, "05.56.96.96.96", 7)],
        )
    (tmp_path / "piiport.yaml").write_text(
        f"workers: {workers}\ndetection:\n  phone_regions: [FR]\nsources:\n  - name: crm\n    url: sqlite:///crm.db\n",
        encoding="utf-8",
    )
    scanned = runner.invoke(main, ["scan", "--config", "piiport.yaml", "--json"])
    assert scanned.exit_code == 0, scanned.output

    expected = {
        "customers": _rows(db, "SELECT * FROM customers WHERE id = 1"),
        "orders": _rows(db, "SELECT * FROM orders WHERE customer_id = 1 ORDER BY id"),
        "calls": _rows(db, "SELECT * FROM calls WHERE id IN (1, 3) ORDER BY id"),
    }
    for i, phone in enumerate(("+33 5 56 96 96 96", "05 56 96 96 96", "+33556969696", "0033 (0)5-56-96-96-96")):
        summary, rows = _package(runner, "--config", "piiport.yaml", "--phone", phone, "--request-id", f"r{i}")
        assert summary["found"] is True
        assert {k: sorted(v, key=lambda r: r["id"]) for k, v in rows.items()} == expected


# --- phone columns of numbers that fit no configured region -----------------------------------


def _no_region_numbers(count: int, seed: int) -> list[str]:
    """10 to 12 digits, no calling code, no national prefix, in a few writings: FR does not fit
    them (with DE configured libphonenumber finds most of them valid German numbers)."""
    rng = random.Random(seed)
    out: list[str] = []
    while len(out) < count:
        size = rng.choice((10, 11, 12))
        digits = str(rng.randint(2, 9)) + "".join(rng.choice("0123456789") for _ in range(size - 1))
        text = rng.choice(
            (
                f"{digits[:5]} {digits[5:]}",
                f"{digits[:4]} {digits[4:7]} {digits[7:]}",
                digits,
                f"{digits[:2]}-{digits[2:]}",
            )
        )
        if normalise_phone(text, ("FR",)) is None and text not in out:
            out.append(text)
    return out


def test_a_phone_column_of_numbers_that_fit_no_region_is_indexed_by_digits(detector) -> None:
    profiler = Profiler(detector, regions=("FR",), entities=("PHONE_NUMBER", "EMAIL_ADDRESS", "PERSON"), language="en")
    phones = _no_region_numbers(100, seed=3)
    amounts = [f"{random.Random(i).randint(1_000_000, 99_999_999) / 100:.2f}" for i in range(100)]
    columns: dict[str, list[str]] = {
        "phone": phones,
        "mobile_phone": phones,
        "téléphone": phones,
        "tel_fixe": phones,
        "customer_id": [str(1000 + i) for i in range(100)],
        "order_number": [str(100_000_000 + 7 * i) for i in range(100)],
        "postcode": [f"750{i % 20:02d}" for i in range(100)],
        "zip": [f"9410{i % 10}-{1000 + i}" for i in range(100)],
        "amount": amounts,
        "price": [f"{i * 13.5:.2f}" for i in range(100)],
        "telephone_count": [str(i % 4) for i in range(100)],
        "phone_amounts": amounts,  # a "phone" column holding amounts
        "phone_ids": [str(100_000_000 + i) for i in range(100)],  # a "phone" column holding ids
    }
    sample = [Record(str(i), {name: values[i] for name, values in columns.items()}) for i in range(100)]
    profiles = profiler.profile(sample)
    digits = {name for name, p in profiles.items() if p.entity_type == "PHONE_NUMBER" and p.phone_digits}
    assert digits == {"phone", "mobile_phone", "téléphone", "tel_fixe"}
    assert {name for name, p in profiles.items() if p.entity_type is not None} == digits
    assert "by digits" in profiles["phone"].reason
    assert "phone_digits" not in profiles["phone"].as_dict()  # the index keeps it in the reason


def test_digits_only_forms() -> None:
    assert phone_digits("9876 543 2101") == phone_digits("98765432101") == "98765432101"
    assert phone_digits("+999 1234 5678 x12") == "99912345678"
    assert phone_digits("(98) 7654-32101") == "98765432101"
    for not_a_number in (
        "123456",  # too short
        "1234567890123456",  # too long for E.164
        "Tel 9876 543 2101",  # not digits and separators
        "98765A43210",
        "1234567.89",  # an amount
        "12 345 678,50",
        "2026-01-15",  # dates
        "20260115",
        "15/01/2026",
    ):
        assert phone_digits(not_a_number) is None


@pytest.mark.parametrize("workers", [2, 1])
def test_no_region_phones_are_found_by_any_writing_and_nothing_else_is_indexed(
    runner: CliRunner, tmp_path: Path, detector, workers: int
) -> None:
    phones = _no_region_numbers(601, seed=11)
    rng = random.Random(5)
    db = tmp_path / "shop.db"
    with sqlite3.connect(db) as conn:
        conn.executescript(
            """
            CREATE TABLE members (id INTEGER PRIMARY KEY, customer_id INTEGER, order_number TEXT, postcode TEXT,
                zip TEXT, amount TEXT, price NUMERIC(10, 2), telephone_count INTEGER, phone TEXT);
            CREATE TABLE ledger (id INTEGER PRIMARY KEY, phone TEXT, memo TEXT);
            """
        )
        conn.executemany(
            "INSERT INTO members VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    i + 1,
                    5000 + i,
                    str(300_000_000 + i),
                    f"{rng.randint(10, 95):02d}{rng.randint(0, 999):03d}",
                    f"{rng.randint(10000, 99999)}-{rng.randint(1000, 9999)}",
                    f"{rng.randint(100_000, 9_999_999) / 100:.2f}",
                    rng.randint(100, 99_999) / 100,
                    rng.randint(0, 3),
                    phones[i],
                )
                for i in range(601)
            ],
        )
        conn.executemany(
            "INSERT INTO ledger VALUES (?, ?, ?)",
            [(i + 1, f"{rng.randint(1_000_000, 99_999_999) / 100:,.2f}", "balance") for i in range(300)],
        )
    (tmp_path / "piiport.yaml").write_text(
        f"workers: {workers}\ndetection:\n  phone_regions: [FR]\nsources:\n  - name: shop\n    url: sqlite:///shop.db\n",
        encoding="utf-8",
    )
    scanned = runner.invoke(main, ["scan", "--config", "piiport.yaml", "--json"])
    assert scanned.exit_code == 0, scanned.output
    assert json.loads(scanned.output)["totals"]["entities"].get("PHONE_DIGITS") == 601

    inventory = json.loads(runner.invoke(main, ["inventory", "--config", "piiport.yaml", "--format", "json"]).output)
    assert [(r["container"], r["field"], r["entity_type"], r["records"]) for r in inventory] == [
        ("members", "phone", "PHONE_NUMBER", 601)
    ]

    (member,) = _rows(db, "SELECT * FROM members WHERE id = 124")
    digits = "".join(c for c in member["phone"] if c.isdigit())
    for i, writing in enumerate((digits, f"{digits[:3]}.{digits[3:6]}.{digits[6:]}", f"({digits[:2]}) {digits[2:]}")):
        summary, rows = _package(runner, "--config", "piiport.yaml", "--phone", writing, "--request-id", f"p{i}")
        assert summary["found"] is True
        assert rows == {"members": [{**member, "price": f"{member['price']:.2f}"}]}  # decimals as exact text
    # The member's order number and ZIP+4 code were not indexed as phone numbers; an amount is none.
    for i, other in enumerate((member["order_number"], member["zip"])):
        summary, rows = _package(runner, "--config", "piiport.yaml", "--phone", other, "--request-id", f"n{i}")
        assert summary["found"] is False and rows == {}
    refused = runner.invoke(main, ["export", "--config", "piiport.yaml", "--phone", member["amount"]])
    assert refused.exit_code == 2
    assert f"--phone {member['amount'][0]}***" in refused.output and "is not a valid phone number" in refused.output


def test_the_same_digits_in_two_numbering_plans_never_merge_two_people(
    runner: CliRunner, tmp_path: Path, detector
) -> None:
    db = tmp_path / "two.db"
    with sqlite3.connect(db) as conn:
        conn.executescript(
            """
            CREATE TABLE in_customers (id INTEGER PRIMARY KEY, email TEXT, mobile TEXT);
            CREATE TABLE mx_customers (id INTEGER PRIMARY KEY, email TEXT, telefono TEXT);
            CREATE TABLE callbacks (id INTEGER PRIMARY KEY, phone TEXT, minutes INTEGER);
            """
        )
        numbers = _no_region_numbers(80, seed=21)
        conn.executemany(
            "INSERT INTO in_customers VALUES (?, ?, ?)",
            [(i, f"in{i}@example.in", n) for i, n in enumerate(numbers[:40])],
        )
        conn.executemany(
            "INSERT INTO mx_customers VALUES (?, ?, ?)",
            [(i, f"mx{i}@example.mx", n) for i, n in enumerate(numbers[40:])],
        )
        # Two people whose numbers are the same digits in two countries, and a log of numbers alone.
        conn.execute("UPDATE mx_customers SET telefono = ? WHERE id = 0", (numbers[5].replace(" ", "."),))
        conn.executemany(
            "INSERT INTO callbacks VALUES (?, ?, ?)",
            [(i, n, i % 7) for i, n in enumerate([numbers[5], *numbers[6:40]])],
        )
    (tmp_path / "piiport.yaml").write_text(
        "detection:\n  phone_regions: [FR]\nsources:\n  - name: two\n    url: sqlite:///two.db\n", encoding="utf-8"
    )
    assert runner.invoke(main, ["scan", "--config", "piiport.yaml"]).exit_code == 0

    _, rows = _package(runner, "--config", "piiport.yaml", "--email", "in5@example.in", "--request-id", "a")
    assert rows == {"in_customers": _rows(db, "SELECT * FROM in_customers WHERE id = 5")}
    # The call log's row with those digits could be either person's: for review, not exported.
    manifest = json.loads((tmp_path / "exports" / "a" / "manifest.json").read_text(encoding="utf-8"))
    assert [(r["container"], r["locator"]["key"], r["reason"]) for r in manifest["review"]] == [
        ("callbacks", [0], SHARED_DIGITS)
    ]
    # A number only one person has: the call log's row is theirs.
    _, rows = _package(runner, "--config", "piiport.yaml", "--email", "in6@example.in", "--request-id", "c")
    assert rows == {
        "in_customers": _rows(db, "SELECT * FROM in_customers WHERE id = 6"),
        "callbacks": _rows(db, "SELECT * FROM callbacks WHERE id = 1"),
    }
    _, rows = _package(runner, "--config", "piiport.yaml", "--email", "mx0@example.mx", "--request-id", "b")
    assert rows == {"mx_customers": _rows(db, "SELECT * FROM mx_customers WHERE id = 0")}
    refused = runner.invoke(main, ["export", "--config", "piiport.yaml", "--phone", numbers[5]])
    assert refused.exit_code == 1 and "matches 2 subjects" in refused.output
