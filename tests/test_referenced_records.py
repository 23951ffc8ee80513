"""A record that holds two people's identifiers: a customer row whose ``referred_by_email`` is
another customer's address. It is its owner's record; to the other person it is a record that
refers to them (``referenced``): exported to them, its owner's identifiers listed for the
reviewer, and never a link between the two, so neither package takes in the other's records."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from fixtures import package_tables, scanned

from connectors.base import SourceSpec
from discover.index import Index

ALICE, BRUNO, CHLOE = "alice.martin@example.com", "bruno.dubois@example.org", "chloe.garnier@example.net"
CHLOE_NEWS = "chloe.news@example.net"
EMMA, NOE = "emma.leroy@example.com", "noe.faure@example.org"
DAN = "dan.roux@example.com"
#: A note on Bruno's account names his wife, who is no customer.
JEANNE = "jeanne.roux@example.net"
JEANNE_NOTE = f"His wife {JEANNE} handles the invoices"
#: Alice's emergency contact, who is no customer.
EVE_PHONE = "+33 7 11 22 33 44"
#: Customers' names: first names by row, last names by eight rows.
FIRST = ["Hugo", "Emma", "Farid", "Gaëlle", "Inès", "Jules", "Karim", "Léa"]
LAST = ["Bernard", "Petit", "Robert", "Richard", "Durand", "Leroy", "Moreau", "Simon", "Roux", "Morel"]


def _shop(path: Path) -> Path:
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE customers (id INTEGER PRIMARY KEY, full_name TEXT, email TEXT, phone TEXT, "
            "newsletter_email TEXT, referred_by_email TEXT, emergency_contact_phone TEXT, notes TEXT)"
        )
        db.execute(
            "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers(id), item TEXT)"
        )
        db.execute("CREATE TABLE newsletter_signups (id INTEGER PRIMARY KEY, email TEXT, signed_up TEXT)")
        # An agent's own row: both columns name the agent's role, and are one person's.
        db.execute("CREATE TABLE agents (id INTEGER PRIMARY KEY, agent_email TEXT, agent_phone TEXT)")
        db.executemany(
            "INSERT INTO agents VALUES (?, ?, ?)",
            [(i, f"agent{i}@shop.example", f"+33 1 40 00 {i + 10:02d} {i + 20:02d}") for i in range(1, 31)],
        )
        db.execute("CREATE TABLE calls (id INTEGER PRIMARY KEY, agent_phone TEXT, minutes INTEGER)")
        db.executemany(
            "INSERT INTO calls VALUES (?, ?, ?)",
            [(i, f"+33 1 40 00 {i % 30 + 11:02d} {i % 30 + 21:02d}", i) for i in range(1, 91)],
        )
        db.execute("CREATE TABLE referrals (id INTEGER PRIMARY KEY, referrer_email TEXT, referred_email TEXT)")
        db.executemany("INSERT INTO referrals VALUES (?, ?, ?)", [(1, BRUNO, ALICE), (2, ALICE, DAN)])
        rows: list[tuple[Any, ...]] = [
            (1, "Alice Martin", ALICE, "+33 6 12 34 56 78", None, BRUNO, EVE_PHONE, None),  # Bruno referred Alice
            (2, "Bruno Dubois", BRUNO, "+33 6 98 76 54 32", None, None, None, JEANNE_NOTE),
            (3, "Chloé Garnier", CHLOE, "+33 6 55 44 33 22", CHLOE_NEWS, None, None, None),  # one person, two addresses
            # Noé's account holds only his address: nothing told his address apart from Emma's.
            (4, "Emma Leroy", EMMA, "+33 6 41 52 63 74", None, NOE, None, None),
            (5, None, NOE, None, None, None, None, None),
            (6, "Dan Roux", DAN, "+33 6 23 45 67 89", None, ALICE, None, None),  # Alice referred Dan in turn
        ]
        for i in range(7, 301):
            referrer = f"c{i - 1}@example.com" if i % 3 == 0 and i > 7 else None  # customers referring others
            rows.append(
                (
                    i,
                    f"{FIRST[i % 8]} {LAST[i // 8 % 10]}",
                    f"c{i}@example.com",
                    f"+33 6 {i % 90 + 10} 00 {i % 80 + 10} 11",
                    BRUNO if i == 8 else None,  # a friend's address typed as the newsletter's
                    referrer,
                    None,
                    None,
                )
            )
        db.executemany("INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        db.executemany(
            "INSERT INTO orders VALUES (?, ?, ?)",
            [
                *((n, 1, item) for n, item in ((1, "lamp"), (2, "desk"), (3, "chair"))),
                (10, 2, "bike"),
                (20, 3, "tent"),
                (40, 4, "kayak"),
                (50, 5, "book"),
                (60, 6, "map"),
            ],
        )
        db.executemany(
            "INSERT INTO newsletter_signups VALUES (?, ?, ?)",
            [(1, CHLOE_NEWS, "2026-01-02"), *((i, f"c{i}@example.com", "2026-02-03") for i in range(2, 40))],
        )
    return path


@pytest.fixture
def shop(tmp_path: Path, index: Index, detector, workers: int) -> Index:
    scanned(index, detector, workers, SourceSpec(name="shop", url=f"sqlite:///{_shop(tmp_path / 'shop.db')}"))
    return index


def _export(
    index: Index, tmp_path: Path, email: str | None = None, **request: Any
) -> tuple[dict[str, list[tuple[Any, str]]], dict[str, Any]]:
    """Per container, the ids of the package's rows and how each matched; and the manifest."""
    tables, manifest = package_tables(index, tmp_path / "out", email, **request)
    return {c: sorted((r["id"], r["_piiport_match"]) for r in rows) for c, rows in tables.items()}, manifest


ALICE_OWN = {
    "customers": [(1, "strong"), (6, "referenced")],
    "orders": [(1, "related"), (2, "related"), (3, "related")],
    "referrals": [(1, "referenced"), (2, "referenced")],
}


def test_the_referrer_gets_the_rows_that_name_them_and_nothing_else_of_the_customer(
    shop: Index, tmp_path: Path
) -> None:
    tables, manifest = _export(shop, tmp_path, BRUNO)
    assert tables == {
        "customers": [(1, "referenced"), (2, "strong"), (8, "referenced")],
        "orders": [(10, "related")],
        "referrals": [(1, "referenced")],
    }
    # Alice's identifiers in her row are hers: listed for the reviewer, never linked to Bruno.
    mentions = {(m["record"], m["field"]) for m in manifest["third_party_mentions"] if m["container"] == "customers"}
    assert {("[1]", "email"), ("[1]", "phone"), ("[1]", "full_name"), ("[1]", "emergency_contact_phone")} <= mentions
    linked = {i["value"] for i in manifest["subject"]["identifiers_linked"]}
    assert linked == {BRUNO, "+33698765432", "bruno dubois"}


def test_a_customer_who_was_referred_and_referred_someone_gets_their_own_records(shop: Index, tmp_path: Path) -> None:
    tables, manifest = _export(shop, tmp_path, ALICE)
    assert tables == ALICE_OWN
    mentions = {(m["record"], m["field"]) for m in manifest["third_party_mentions"] if m["container"] == "customers"}
    assert {("[1]", "referred_by_email"), ("[1]", "emergency_contact_phone"), ("[6]", "email")} <= mentions
    # The same answer by her phone, or by her name alone.
    assert _export(shop, tmp_path, phones=["+33 6 12 34 56 78"])[0] == ALICE_OWN
    assert _export(shop, tmp_path, names=["Alice Martin"])[0] == ALICE_OWN


def test_an_emergency_contact_who_is_no_customer_gets_the_row_that_names_them_only(shop: Index, tmp_path: Path) -> None:
    tables, manifest = _export(shop, tmp_path, phones=[EVE_PHONE])
    assert tables == {"customers": [(1, "referenced")]}
    assert manifest["subject"]["found"]


def test_a_referrer_known_by_an_address_alone_is_not_taken_for_the_customer(shop: Index, tmp_path: Path) -> None:
    assert _export(shop, tmp_path, EMMA)[0] == {"customers": [(4, "strong")], "orders": [(40, "related")]}
    assert _export(shop, tmp_path, NOE)[0] == {
        "customers": [(4, "referenced"), (5, "strong")],
        "orders": [(50, "related")],
    }


def test_two_addresses_of_one_person_still_link(shop: Index, tmp_path: Path) -> None:
    tables, manifest = _export(shop, tmp_path, CHLOE)
    assert CHLOE_NEWS in [i["value"] for i in manifest["subject"]["identifiers_linked"]]
    assert tables == {"customers": [(3, "strong")], "orders": [(20, "related")], "newsletter_signups": [(1, "strong")]}


def test_columns_of_one_role_on_a_record_are_one_persons(shop: Index, tmp_path: Path) -> None:
    tables, manifest = _export(shop, tmp_path, "agent3@shop.example")
    assert tables == {"agents": [(3, "strong")], "calls": [(2, "strong"), (32, "strong"), (62, "strong")]}
    assert "+33140001323" in {i["value"] for i in manifest["subject"]["identifiers_linked"]}


def test_a_person_named_in_a_note_on_someone_elses_account_gets_the_note_not_the_account(
    shop: Index, tmp_path: Path
) -> None:
    assert _export(shop, tmp_path, JEANNE)[0] == {"customers": [(2, "mention")]}  # not Bruno's orders


#: A French schema, as the charter's company writes its own: the same roles under French names.
PAUL = "paul.girard@example.fr"  # Alice's sponsor (parrain), no customer
SOPHIE = "sophie.laurent@boutique.example"  # a member of staff who edits customers' records


def _boutique(path: Path) -> Path:
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE clients (id INTEGER PRIMARY KEY, nom_complet TEXT, email TEXT, telephone TEXT, "
            "email_parrain TEXT, telephone_urgence TEXT)"
        )
        db.execute(
            "CREATE TABLE commandes (id INTEGER PRIMARY KEY, client_id INTEGER REFERENCES clients(id), article TEXT)"
        )
        db.execute("CREATE TABLE historique (id INTEGER PRIMARY KEY, email_client TEXT, modifie_par_email TEXT)")
        rows: list[tuple[Any, ...]] = [
            (1, "Alice Martin", ALICE, "+33 6 12 34 56 78", PAUL, EVE_PHONE),
            (2, "Bruno Dubois", BRUNO, "+33 6 98 76 54 32", None, None),
        ]
        rows += [
            (i, None, f"c{i}@example.fr", f"+33 6 {i % 90 + 10} 00 {i % 80 + 10} 11", None, None) for i in range(3, 301)
        ]
        db.executemany("INSERT INTO clients VALUES (?, ?, ?, ?, ?, ?)", rows)
        db.executemany(
            "INSERT INTO commandes VALUES (?, ?, ?)",
            [(1, 1, "lampe"), (2, 1, "bureau"), (3, 2, "vélo"), *((i, i, "livre") for i in range(10, 200))],
        )
        db.executemany(
            "INSERT INTO historique VALUES (?, ?, ?)",
            [
                (1, ALICE, SOPHIE),
                (2, BRUNO, SOPHIE),
                *((i, f"c{i}@example.fr", f"agent{i % 7}@boutique.example") for i in range(3, 120)),
            ],
        )
    return path


def test_french_role_columns_are_another_persons(tmp_path: Path, index: Index, detector, workers: int) -> None:
    """``telephone_urgence``, ``email_parrain``, ``modifie_par_email``: an emergency contact, a
    sponsor and a member of staff, none of them a customer, each get the rows that name them,
    not the customer's account and orders (as ``emergency_contact_phone`` does in English)."""
    scanned(index, detector, workers, SourceSpec(name="boutique", url=f"sqlite:///{_boutique(tmp_path / 'b.db')}"))
    assert _export(index, tmp_path, phones=[EVE_PHONE])[0] == {"clients": [(1, "referenced")]}
    assert _export(index, tmp_path, PAUL)[0] == {"clients": [(1, "referenced")]}
    assert _export(index, tmp_path, SOPHIE)[0] == {"historique": [(1, "referenced"), (2, "referenced")]}
    assert _export(index, tmp_path, ALICE)[0] == {
        "clients": [(1, "strong")],
        "commandes": [(1, "related"), (2, "related")],
        "historique": [(1, "strong")],
    }
