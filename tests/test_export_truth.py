"""Packages that are right on data shaped like a real sample database, the export side.

A rental store (customer -> address -> city -> country; staff and store -> address; rental ->
inventory -> film -> language; film_actor -> actor; payment -> customer, rental, staff) with a
household address two customers share, a customer who lives at a store's address, and an
actor in the catalogue who is the namesake of a customer.
"""

from __future__ import annotations

import gzip
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from servers import postgres_database, run_sql

from connectors.base import SourceSpec
from discover.index import Index
from discover.scan import scan
from discover.subjects import NAME_ONLY
from piiport.api import export_subject
from piiport.cli import main
from piiport.config import Config, ExportSettings

SCHEMA = """
CREATE TABLE country (country_id INTEGER PRIMARY KEY, country TEXT);
CREATE TABLE city (city_id INTEGER PRIMARY KEY, city TEXT, country_id INTEGER REFERENCES country(country_id));
CREATE TABLE address (address_id INTEGER PRIMARY KEY, address TEXT, district TEXT,
    city_id INTEGER REFERENCES city(city_id), postal_code TEXT, phone TEXT);
CREATE TABLE staff (staff_id INTEGER PRIMARY KEY, first_name TEXT, last_name TEXT, email TEXT,
    address_id INTEGER REFERENCES address(address_id), username TEXT);
CREATE TABLE store (store_id INTEGER PRIMARY KEY, manager_staff_id INTEGER REFERENCES staff(staff_id),
    address_id INTEGER REFERENCES address(address_id));
CREATE TABLE customer (customer_id INTEGER PRIMARY KEY, store_id INTEGER REFERENCES store(store_id),
    first_name TEXT, last_name TEXT, email TEXT, address_id INTEGER REFERENCES address(address_id), active INTEGER);
CREATE TABLE language (language_id INTEGER PRIMARY KEY, name TEXT);
CREATE TABLE film (film_id INTEGER PRIMARY KEY, title TEXT, release_year INTEGER,
    language_id INTEGER REFERENCES language(language_id), rental_rate NUMERIC(4, 2));
CREATE TABLE actor (actor_id INTEGER PRIMARY KEY, first_name TEXT, last_name TEXT);
CREATE TABLE film_actor (actor_id INTEGER REFERENCES actor(actor_id), film_id INTEGER REFERENCES film(film_id),
    PRIMARY KEY (actor_id, film_id));
CREATE TABLE inventory (inventory_id INTEGER PRIMARY KEY, film_id INTEGER REFERENCES film(film_id),
    store_id INTEGER REFERENCES store(store_id));
CREATE TABLE rental (rental_id INTEGER PRIMARY KEY, rental_date TEXT,
    inventory_id INTEGER REFERENCES inventory(inventory_id), customer_id INTEGER REFERENCES customer(customer_id),
    staff_id INTEGER REFERENCES staff(staff_id));
CREATE TABLE payment (payment_id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customer(customer_id),
    staff_id INTEGER REFERENCES staff(staff_id), rental_id INTEGER REFERENCES rental(rental_id),
    amount NUMERIC(5, 2), payment_date TEXT)
"""

ROWS: dict[str, list[tuple[Any, ...]]] = {
    "country": [(1, "France"), (2, "United Kingdom"), (3, "Canada")],
    "city": [(10, "Lyon", 1), (11, "London", 2), (12, "Toronto", 3)],
    "address": [
        (1, "47 MySakila Drive", "Rhone", 10, "69001", "+33 4 72 00 00 01"),  # store 1
        (2, "28 MySQL Boulevard", "Greater London", 11, "SW1A 1AA", "+44 20 7946 0001"),  # store 2
        (3, "23 Workhaven Lane", "Rhone", 10, "69003", "+33 4 72 00 00 03"),  # staff 1
        (4, "1411 Lillydale Drive", "Greater London", 11, "E1 6AN", "+44 20 7946 0004"),  # staff 2
        (5, "1913 Hanoi Way", "Rhone", 10, "69007", "+33 4 78 00 11 22"),  # Jennifer Davis alone
        (6, "692 Joliet Street", "Greater London", 11, "N1 9GU", "+44 20 7946 0006"),  # the Smiths' household
        (7, "1566 Inegl Manor", "Ontario", 12, "M5V 2T6", "+1 416 555 0107"),
    ],
    "staff": [
        (1, "Mike", "Hillyer", "mike.hillyer@sakilastaff.com", 3, "mike"),
        (2, "Jon", "Stephens", "jon.stephens@sakilastaff.com", 4, "jon"),
    ],
    "store": [(1, 1, 1), (2, 2, 2)],
    "customer": [
        (1, 1, "Jennifer", "Davis", "jennifer.davis@sakilacustomer.org", 5, 1),
        (2, 1, "Mary", "Smith", "mary.smith@sakilacustomer.org", 6, 1),
        (3, 2, "John", "Smith", "john.smith@sakilacustomer.org", 6, 1),
        (4, 2, "Linda", "Williams", "linda.williams@sakilacustomer.org", 7, 1),
        (5, 1, "Ruth", "Martinez", "ruth.martinez@sakilacustomer.org", 1, 0),  # gave the store's address
    ],
    "language": [(1, "English"), (2, "Italian"), (3, "Japanese")],
    "film": [
        (1, "ACADEMY DINOSAUR", 2006, 1, "0.99"),
        (2, "ACE GOLDFINGER", 2006, 1, "4.99"),
        (3, "ADAPTATION HOLES", 2006, 2, "2.99"),
        (4, "AFFAIR PREJUDICE", 2006, 3, "2.99"),
    ],
    "actor": [(1, "Penelope", "Guiness"), (2, "Jennifer", "Davis"), (3, "Nick", "Wahlberg")],
    "film_actor": [(1, 1), (2, 1), (2, 2), (2, 4), (3, 3)],
    "inventory": [(1, 1, 1), (2, 2, 1), (3, 3, 2), (4, 4, 2)],
    "rental": [
        (1, "2026-01-05 10:00:00", 1, 1, 1),
        (2, "2026-01-19 16:30:00", 3, 1, 2),
        (3, "2026-02-02 11:00:00", 2, 2, 1),
        (4, "2026-02-03 12:00:00", 4, 4, 2),
        (5, "2026-02-04 09:15:00", 2, 3, 1),
    ],
    "payment": [
        (1, 1, 1, 1, "2.99", "2026-01-05"),
        (2, 1, 2, 2, "4.99", "2026-01-19"),
        (3, 2, 1, 3, "0.99", "2026-02-02"),
        (4, 4, 2, 4, "2.99", "2026-02-03"),
        (5, 3, 1, 5, "0.99", "2026-02-04"),
    ],
}
TABLE_ORDER = [
    "country",
    "city",
    "address",
    "staff",
    "store",
    "customer",
    "language",
    "film",
    "actor",
    "film_actor",
    "inventory",
    "rental",
    "payment",
]
#: Each table's key, to name the exported rows.
KEYS = {t: f"{t}_id" for t in TABLE_ORDER}
KEYS["film_actor"] = "actor_id,film_id"


def _insert_sql() -> str:
    out = []
    for table in TABLE_ORDER:
        for row in ROWS[table]:
            values = ", ".join("NULL" if v is None else str(v) if isinstance(v, int) else f"'{v}'" for v in row)
            out.append(f"INSERT INTO {table} VALUES ({values})")
    return ";\n".join(out)


def make_rental(path: Path) -> Path:
    with sqlite3.connect(path) as db:
        db.executescript(SCHEMA + ";\n" + _insert_sql() + ";")
    return path


@pytest.fixture
def rental(tmp_path: Path, index: Index, detector) -> Index:
    db = make_rental(tmp_path / "rental.db")
    result = scan([SourceSpec(name="rental", url=f"sqlite:///{db}")], index=index, detector=detector)
    assert result.ok, result.errors
    return index


def _export(index: Index, tmp_path: Path, cfg: Config | None = None, **kwargs: Any):
    kwargs.setdefault("out", tmp_path / "exports")
    kwargs.setdefault("overwrite", True)
    kwargs.setdefault("request_id", "r")
    return export_subject(config=cfg or Config(), index=index, **kwargs)


def _package(result: Any) -> dict[str, list[tuple[Any, str]]]:
    """``{path: [(key, _piiport_match), ...]}`` of a JSON package, reference files marked ``(ref)``."""
    package = Path(result.package)
    out = {}
    for f in result.manifest["files"]:
        rows = json.loads((package / f["path"]).read_text(encoding="utf-8"))
        cols = KEYS[f["container"]].split(",")
        keys = [tuple(r[c] for c in cols) if len(cols) > 1 else r[cols[0]] for r in rows]
        out[f["path"] + (" (ref)" if f.get("reference") else "")] = [
            (k, r["_piiport_match"]) for k, r in zip(keys, rows, strict=True)
        ]
    return out


JENNIFER = {
    "data/rental/address.json": [(5, "related")],
    "data/rental/customer.json": [(1, "strong")],
    "data/rental/payment.json": [(1, "related"), (2, "related")],
    "data/rental/rental.json": [(1, "related"), (2, "related")],
    "data/rental/city.json (ref)": [(10, "reference")],
    "data/rental/country.json (ref)": [(1, "reference")],
    "data/rental/film.json (ref)": [(1, "reference"), (3, "reference")],
    "data/rental/inventory.json (ref)": [(1, "reference"), (3, "reference")],
    "data/rental/store.json (ref)": [(1, "reference"), (2, "reference")],
}


def test_customer_gets_own_address_and_catalogue_context_not_the_namesake_actor(rental: Index, tmp_path: Path) -> None:
    result = _export(rental, tmp_path, emails=["jennifer.davis@sakilacustomer.org"])
    assert result.found and result.complete and result.ok, result.errors
    # Her own address (5) is hers; the stores' (1, 2) and the staff's (3, 4) addresses are not; the
    # actor Jennifer Davis, the film_actor rows that point at her, and staff rows are not in it.
    assert _package(result) == JENNIFER
    manifest = result.manifest
    assert manifest["totals"] == {"records": 6, "reference_records": 8, "files": 9}
    locator = json.loads((Path(result.package) / "data/rental/address.json").read_text())[0]["_piiport_locator"]
    assert locator == {
        "source": "rental",
        "container": "address",
        "kind": "primary_key",
        "key": [5],
        "via": "customer.address_id -> address.address_id",
    }
    assert manifest["review"] == [
        {
            "source": "rental",
            "container": "actor",
            "locator": {"source": "rental", "container": "actor", "kind": "primary_key", "key": [2]},
            "field": "first_name+last_name",
            "entity_type": "PERSON",
            "masked_value": "j*** d***",
            "reason": NAME_ONLY,
        }
    ]
    assert result.review == 1 and result.as_dict()["review"] == 1
    assert manifest["shared_records"] == [] and manifest["complete"] is True
    assert manifest["third_party_mentions"] == []  # the phone of an address only she lives at is hers
    assert [i["type"] for i in manifest["subject"]["identifiers_linked"]] == ["EMAIL_ADDRESS", "PERSON"]


def test_same_package_when_two_workers_scan_tables_in_key_ranges(tmp_path: Path, index: Index, detector) -> None:
    from discover.settings import ScanSettings

    db = make_rental(tmp_path / "rental.db")
    settings = ScanSettings(workers=2, unit_rows=2)  # every table in ranges of two keys, on two processes
    assert scan(
        [SourceSpec(name="rental", url=f"sqlite:///{db}")], index=index, detector=detector, settings=settings
    ).ok
    result = _export(index, tmp_path, emails=["jennifer.davis@sakilacustomer.org"])
    assert _package(result) == JENNIFER and [r["container"] for r in result.manifest["review"]] == ["actor"]


def test_include_review_adds_the_namesake_marked_but_nothing_that_points_at_it(rental: Index, tmp_path: Path) -> None:
    result = _export(rental, tmp_path, emails=["jennifer.davis@sakilacustomer.org"], include_review=True)
    assert _package(result) == {**JENNIFER, "data/rental/actor.json": [(2, "review")]}
    assert result.review == 1 and len(result.manifest["review"]) == 1


def test_a_name_alone_request_finds_the_customer_and_lists_the_namesake(
    rental: Index, tmp_path: Path, detector
) -> None:
    result = _export(rental, tmp_path, names=["Jennifer Davis"])
    assert _package(result) == JENNIFER
    assert [r["container"] for r in result.manifest["review"]] == ["actor"]
    # A second customer of that name makes the name ambiguous again: refused, as before.
    from discover.errors import AmbiguousSubjectError

    db = tmp_path / "rental.db"
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO customer VALUES (6, 2, 'Jennifer', 'Davis', 'jdavis@example.net', 7, 1)")
    scan([SourceSpec(name="rental", url=f"sqlite:///{db}")], index=rental, detector=detector)
    with pytest.raises(AmbiguousSubjectError, match=r"person j\*\*\* d\*\*\* matches 2 subjects"):
        _export(rental, tmp_path, names=["Jennifer Davis"])


def test_a_household_address_goes_to_each_marked_shared(rental: Index, tmp_path: Path) -> None:
    for n, (email, customer, rentals) in enumerate(
        [("mary.smith@sakilacustomer.org", 2, [3]), ("john.smith@sakilacustomer.org", 3, [5])]
    ):
        result = _export(rental, tmp_path, emails=[email], request_id=f"s{n}")
        got = _package(result)
        assert got["data/rental/address.json"] == [(6, "shared")]
        assert got["data/rental/customer.json"] == [(customer, "strong")]
        assert got["data/rental/rental.json"] == [(r, "related") for r in rentals]
        assert result.manifest["shared_records"] == [
            {
                "source": "rental",
                "container": "address",
                "locator": {
                    "source": "rental",
                    "container": "address",
                    "kind": "primary_key",
                    "key": [6],
                    "via": "customer.address_id -> address.address_id",
                },
                "with": ["customer"],
            }
        ]
        assert any("shared_records" in note for note in result.manifest["notes"])
        # The household's phone may be the other person's: listed for the reviewer.
        assert result.manifest["third_party_mentions"] == [
            {
                "source": "rental",
                "container": "address",
                "record": "[6]",
                "field": "phone",
                "entity_type": "PHONE_NUMBER",
                "origin": "field",
            }
        ]


def test_a_stores_address_is_not_the_customers(rental: Index, tmp_path: Path) -> None:
    result = _export(rental, tmp_path, emails=["ruth.martinez@sakilacustomer.org"])
    got = _package(result)
    assert "data/rental/address.json" not in got and got["data/rental/customer.json"] == [(5, "strong")]
    # The store she shops at is context; its address and manager are not.
    assert got["data/rental/store.json (ref)"] == [(1, "reference")]
    assert set(got) == {"data/rental/customer.json", "data/rental/store.json (ref)"}


def test_reference_depth_and_switch(rental: Index, tmp_path: Path) -> None:
    deeper = _export(
        rental, tmp_path, Config(export=ExportSettings(reference_depth=3)), emails=["jennifer.davis@sakilacustomer.org"]
    )
    # Films 1 and 3 are in English and Italian: each language once.
    assert _package(deeper)["data/rental/language.json (ref)"] == [(1, "reference"), (2, "reference")]
    off = _export(
        rental, tmp_path, Config(export=ExportSettings(references=False)), emails=["jennifer.davis@sakilacustomer.org"]
    )
    assert _package(off) == {k: v for k, v in JENNIFER.items() if not k.endswith("(ref)")}
    api_off = _export(rental, tmp_path, emails=["jennifer.davis@sakilacustomer.org"], references=False)
    assert _package(api_off) == _package(off)
    one = _export(rental, tmp_path, emails=["jennifer.davis@sakilacustomer.org"], reference_depth=1)
    assert {k for k in _package(one) if k.endswith("(ref)")} == {
        "data/rental/city.json (ref)",
        "data/rental/inventory.json (ref)",
        "data/rental/store.json (ref)",
    }


# -- an honest "not found" ------------------------------------------------------------------------


def _index(tmp_path: Path) -> list[str]:
    """The CLI option that opens the ``index`` fixture's database."""
    return ["--index", f"sqlite:///{tmp_path / 'idx' / 'index.db'}"]


EMPTY_NOTE = "No record holds the given identifiers. This empty package is the answer to the request."


def test_a_container_that_failed_to_scan_makes_not_found_incomplete(
    runner: CliRunner, tmp_path: Path, detector
) -> None:
    files = tmp_path / "crm-exports"
    files.mkdir()
    (files / "signups.csv").write_text("email,name\nmary.smith@example.org,Mary Smith\n", encoding="utf-8")
    with gzip.open(files / "orders.jsonl.gz", "wb") as fh:
        fh.write(b"".join(b'{"id": %d, "email": "jane.doe@example.com"}\n' % i for i in range(2000)))
    (files / "orders.jsonl.gz").write_bytes((files / "orders.jsonl.gz").read_bytes()[:-30])
    assert runner.invoke(main, ["scan", "crm-exports"]).exit_code == 1

    result = runner.invoke(main, ["export", "--email", "jane.doe@example.com", "--request-id", "q1"])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0] == (
        "The answer is incomplete: 1 error(s); the containers below could not be read and may hold this "
        "subject's records."
    )
    assert lines[1].startswith("warning: crm-exports/orders.jsonl.gz: its last scan failed (orders.jsonl.gz: corrupt")
    assert lines[1].endswith("so its records of this subject may be missing: fix the cause and scan the source again")
    assert "jane.doe" not in result.output and "empty package" not in result.output
    manifest = json.loads((tmp_path / "exports" / "q1" / "manifest.json").read_text())
    assert (manifest["complete"], manifest["subject"]["found"], manifest["files"]) == (False, False, [])
    assert EMPTY_NOTE not in manifest["notes"] and manifest["notes"][0].startswith("This answer is incomplete")

    as_json = runner.invoke(main, ["export", "--email", "jane.doe@example.com", "--json"])
    out = json.loads(as_json.output)
    assert as_json.exit_code == 1 and (out["complete"], out["found"], len(out["errors"])) == (False, False, 1)

    # Fixed and scanned again: the same request is a complete answer, and "not found" is the answer.
    (files / "orders.jsonl.gz").unlink()
    assert runner.invoke(main, ["scan", "crm-exports"]).exit_code == 0
    fixed = runner.invoke(main, ["export", "--email", "jane.doe@example.com", "--json", "--request-id", "q2"])
    out = json.loads(fixed.output)
    assert fixed.exit_code == 0 and (out["complete"], out["found"], out["errors"]) == (True, False, [])
    manifest = json.loads((tmp_path / "exports" / "q2" / "manifest.json").read_text())
    assert manifest["complete"] is True and manifest["notes"] == [EMPTY_NOTE]


@pytest.mark.servers
def test_a_source_whose_password_is_not_in_the_config_is_incomplete(runner: CliRunner, tmp_path: Path) -> None:
    with postgres_database() as pg:
        run_sql(pg, SCHEMA + ";\n" + _insert_sql())
        # The local server trusts every password: the scan works, and the index keeps the URL masked.
        with_password = pg.replace("postgres@", "postgres:pw-kept-nowhere@")
        assert runner.invoke(main, ["scan", with_password]).exit_code == 0
        result = runner.invoke(
            main, ["export", "--email", "jennifer.davis@sakilacustomer.org", "--json", "--request-id", "pw"]
        )
    assert result.exit_code == 1 and "pw-kept-nowhere" not in result.output
    out = json.loads(result.output)
    assert (out["complete"], out["found"], out["files"]) == (False, False, 0)
    (error,) = out["errors"]
    assert "the index does not keep its credentials; add the source to the config file" in error
    manifest = json.loads((tmp_path / "exports" / "pw" / "manifest.json").read_text())
    assert manifest["complete"] is False and EMPTY_NOTE not in manifest["notes"]


@pytest.mark.servers
def test_postgres_follows_the_same_rules_and_an_unreadable_table_is_reported(
    tmp_path: Path, index: Index, detector
) -> None:
    role = f"piiport_ro_{abs(hash(str(tmp_path))) % 10**8}"
    with postgres_database() as pg:
        run_sql(pg, SCHEMA + ";\n" + _insert_sql())
        assert scan([SourceSpec(name="rental", url=pg)], index=index, detector=detector).ok
        result = _export(index, tmp_path, emails=["jennifer.davis@sakilacustomer.org"])
        assert _package(result) == JENNIFER and result.complete
        assert [r["container"] for r in result.manifest["review"]] == ["actor"]
        smith = _export(index, tmp_path, emails=["mary.smith@sakilacustomer.org"], request_id="m")
        assert _package(smith)["data/rental/address.json"] == [(6, "shared")]
        ruth = _export(index, tmp_path, emails=["ruth.martinez@sakilacustomer.org"], request_id="ruth")
        assert set(_package(ruth)) == {"data/rental/customer.json", "data/rental/store.json (ref)"}

        # Payments may not be read by the scanning user: the rest is still exported, and the answer is incomplete.
        run_sql(
            pg,
            f"CREATE ROLE {role} LOGIN;\nGRANT SELECT ON ALL TABLES IN SCHEMA public TO {role};\n"
            f"REVOKE SELECT ON payment FROM {role}",
        )
        try:
            limited = SourceSpec(name="rental", url=pg.replace("postgres@", f"{role}@"))
            assert not scan([limited], index=index, detector=detector).ok
            cfg = Config(sources=(limited,))
            partial = _export(index, tmp_path, cfg, emails=["jennifer.davis@sakilacustomer.org"], request_id="p")
        finally:
            run_sql(pg, f"REASSIGN OWNED BY {role} TO postgres;\nDROP OWNED BY {role};\nDROP ROLE {role}")
    assert _package(partial) == {k: v for k, v in JENNIFER.items() if "payment" not in k}
    assert not partial.complete and partial.manifest["complete"] is False
    assert [e.split(":")[0] for e in partial.errors] == ["rental/payment", "rental/payment", "rental/payment"]
    assert "could not follow payment.customer_id -> customer.customer_id" in partial.errors[0]
    assert "its last scan failed" in partial.errors[-1]


# -- CSV formula injection ---------------------------------------------------------------------------


@pytest.fixture
def support(tmp_path: Path, index: Index, detector) -> Index:
    db = tmp_path / "support.db"
    with sqlite3.connect(db) as conn:
        conn.executescript(
            """
            CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, email TEXT, phone TEXT);
            CREATE TABLE notes (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers(id), body TEXT,
                credit NUMERIC(6, 2));
            """
        )
        conn.execute(
            "INSERT INTO customers VALUES (1, 'Alice Martin', 'alice.martin@example.com', '+33 6 12 34 56 78')"
        )
        conn.executemany(
            "INSERT INTO notes VALUES (?, 1, ?, ?)",
            [
                (1, "=cmd|' /C calc'!A0", "-5.00"),
                (2, "+SUM(A1:A9)", None),
                (3, "-2+3", "1.50"),
                (4, "@import(evil)", None),
                (5, "\tTabbed", None),
                (6, "\rReturn", None),
                (7, "Plain note, a = b", "12.00"),
            ],
        )
    assert scan([SourceSpec(name="support", url=f"sqlite:///{db}")], index=index, detector=detector).ok
    return index


def notes_csv(prefix: str) -> str:
    """The exact notes.csv; ``prefix`` is what goes before a cell a spreadsheet would run."""
    rows = [
        (1, f"{prefix}=cmd|' /C calc'!A0", "-5.00"),  # a number stays a number: -5.00 has no prefix
        (2, f"{prefix}+SUM(A1:A9)", ""),
        (3, f"{prefix}-2+3", "1.50"),
        (4, f"{prefix}@import(evil)", ""),
        (5, f"{prefix}\tTabbed", ""),
        (6, f'"{prefix}\rReturn"', ""),
        (7, '"Plain note, a = b"', "12.00"),
    ]
    return "id,customer_id,body,credit,_piiport_locator,_piiport_match\r\n" + "".join(
        f'{i},1,{body},{credit},"{{""source"": ""support"", ""container"": ""notes"", ""kind"": ""primary_key"", '
        f'""key"": [{i}], ""via"": ""notes.customer_id -> customers.id""}}",related\r\n'
        for i, body, credit in rows
    )


def test_csv_cells_that_would_run_as_formulas_are_neutralised(support: Index, tmp_path: Path) -> None:
    result = _export(support, tmp_path, emails=["alice.martin@example.com"], fmt="csv")
    package = Path(result.package)
    assert (package / "data/support/notes.csv").read_bytes().decode() == notes_csv("'")
    customers = (package / "data/support/customers.csv").read_bytes().decode()
    assert customers.splitlines()[1].startswith("1,Alice Martin,alice.martin@example.com,'+33 6 12 34 56 78,")
    assert result.manifest["csv_neutralised"] is True
    assert any("start with an added '" in note and "'+33" in note for note in result.manifest["notes"])


def test_csv_raw_and_other_formats_keep_the_exact_values(support: Index, tmp_path: Path, runner: CliRunner) -> None:
    raw = _export(support, tmp_path, emails=["alice.martin@example.com"], fmt="csv", csv_raw=True, request_id="raw")
    text = (Path(raw.package) / "data/support/notes.csv").read_bytes().decode()
    assert text == notes_csv("")
    assert raw.manifest["csv_neutralised"] is False
    assert not any("added '" in note for note in raw.manifest["notes"])
    as_json = _export(support, tmp_path, emails=["alice.martin@example.com"], request_id="j")
    rows = json.loads((Path(as_json.package) / "data/support/notes.json").read_text(encoding="utf-8"))
    assert [r["body"] for r in rows][:2] == ["=cmd|' /C calc'!A0", "+SUM(A1:A9)"]
    assert as_json.manifest["csv_neutralised"] is False
    # The CLI flag does what the API option does.
    cli = runner.invoke(
        main,
        [
            "export",
            "--email",
            "alice.martin@example.com",
            "--format",
            "csv",
            "--csv-raw",
            "--request-id",
            "c",
            *_index(tmp_path),
        ],
    )
    assert cli.exit_code == 0, cli.output
    assert (tmp_path / "exports" / "c" / "data/support/notes.csv").read_bytes().decode() == text


# -- IP addresses other subjects hold, names in free text ----------------------------------------------


@pytest.fixture
def crm(tmp_path: Path, index: Index, detector) -> Index:
    db = tmp_path / "crm.db"
    with sqlite3.connect(db) as conn:
        conn.executescript(
            """
            CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, email TEXT, last_ip TEXT);
            CREATE TABLE access_log (id INTEGER PRIMARY KEY, ip TEXT, path TEXT);
            CREATE TABLE notes (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers(id), body TEXT);
            CREATE TABLE memos (id INTEGER PRIMARY KEY, body TEXT);
            """
        )
        conn.executemany(
            "INSERT INTO customers VALUES (?, ?, ?, ?)",
            [
                (1, "Alice Martin", "alice.martin@example.com", "81.12.200.7"),  # the office's NAT address
                (2, "Bruno Dubois", "bruno.dubois@example.org", "81.12.200.7"),
                (3, "Chloé Lefèvre", "chloe.lefevre@example.net", "176.31.4.150"),
            ],
        )
        conn.executemany(
            "INSERT INTO access_log VALUES (?, ?, ?)",
            [
                (1, "81.12.200.7", "/login"),
                (2, "176.31.4.150", "/cart"),
                (3, "176.31.4.150", "/pay"),
                (4, "8.8.8.8", "/"),
            ],
        )
        conn.executemany(
            "INSERT INTO notes VALUES (?, ?, ?)",
            [(1, 1, "Alice Martin asked for a refund."), (2, 3, "Delivery left with a neighbour.")],
        )
        conn.executemany(
            "INSERT INTO memos VALUES (?, ?)",
            [(1, "Spoke to Alice Martin about her invoice."), (2, "Team lunch moved to Friday.")],
        )
    assert scan([SourceSpec(name="crm", url=f"sqlite:///{db}")], index=index, detector=detector).ok
    return index


def test_an_ip_other_subjects_hold_is_for_review_an_own_ip_is_theirs(crm: Index, tmp_path: Path) -> None:
    from discover.subjects import SHARED_IP

    alice = _export(crm, tmp_path, emails=["alice.martin@example.com"], request_id="a")
    assert {f["container"]: f["records"] for f in alice.manifest["files"]} == {"customers": 1, "notes": 1}
    assert [
        (r["container"], r["locator"]["key"], r["masked_value"], r["reason"]) for r in alice.manifest["review"]
    ] == [("access_log", [1], "81.12.*.*", SHARED_IP)]
    chloe = _export(crm, tmp_path, emails=["chloe.lefevre@example.net"], request_id="c")
    log = json.loads((Path(chloe.package) / "data/crm/access_log.json").read_text())
    assert [(r["id"], r["_piiport_match"]) for r in log] == [(2, "weak"), (3, "weak")]
    assert chloe.manifest["review"] == [] and chloe.review == 0


def test_a_name_in_free_text_alone_is_for_review(crm: Index, tmp_path: Path, runner: CliRunner) -> None:
    from discover.subjects import NAME_IN_TEXT_ONLY, SHARED_IP

    result = _export(crm, tmp_path, names=["Alice Martin"])
    # The note on her account names her and is hers (unchanged); a memo that only names her is for review.
    assert {f["container"]: f["records"] for f in result.manifest["files"]} == {"customers": 1, "notes": 1}
    assert [(r["container"], r["locator"]["key"], r["field"], r["reason"]) for r in result.manifest["review"]] == [
        ("access_log", [1], "ip", SHARED_IP),
        ("memos", [1], "body", NAME_IN_TEXT_ONLY),
    ]
    cli = runner.invoke(
        main,
        ["export", "--name", "Alice Martin", "--request-id", "cli", "--include-review", *_index(tmp_path)],
    )
    assert cli.exit_code == 0, cli.output
    assert (
        "2 record(s) match only by a name or a shared IP: listed for review in the manifest, exported marked review."
        in cli.output
    )
    memos = json.loads((tmp_path / "exports" / "cli" / "data/crm/memos.json").read_text())
    assert [(r["id"], r["_piiport_match"]) for r in memos] == [(1, "review")]
