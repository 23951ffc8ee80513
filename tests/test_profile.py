"""Column profiling against tables with known ground truth."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest

from connectors.base import Record, SourceSpec
from discover.index import Index
from discover.inventory import inventory
from discover.profile import Profiler, hint_for
from discover.scan import scan
from discover.settings import DetectionSettings, ScanSettings

NAMES = [
    "Alice Martin",
    "Bruno Dubois",
    "Chloé Lefèvre",
    "David Nguyen",
    "Emma Wilson",
    "Farid Haddad",
    "Grace Kim",
    "Hugo Moreau",
    "Inès Garcia",
    "Jules Bernard",
    "Karen Smith",
    "Liam Johnson",
]


def _sample(columns: dict[str, list[str]]) -> list[Record]:
    n = max(len(v) for v in columns.values())
    return [Record(str(i), {k: v[i % len(v)] for k, v in columns.items()}) for i in range(n)]


def test_pii_and_tricky_non_pii_columns(detector) -> None:
    rng = random.Random(1)
    columns = {
        "c1": NAMES,
        "contact": [f"{n.split()[0].lower()}@example.com" for n in NAMES],
        "tel": [
            f"+33 6 {rng.randint(10, 89)} {rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)}"
            for _ in NAMES
        ],
        "c4": [
            f"{rng.randint(100, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}" for _ in NAMES
        ],
        "name": ["Wireless Mouse", "Standing Desk", "USB-C Cable", "Office Chair", "Desk Lamp", "Monitor Arm"],
        "city": ["Paris", "Lyon", "London", "Berlin", "Madrid", "Boston"],
        "company": ["Acme Corp", "Globex Ltd", "Initech", "Umbrella SA", "Stark Industries", "Wayne Enterprises"],
        "order_no": [str(10_000_000 + i * 7919) for i in range(12)],
        "created": ["2026-01-05 10:22:01", "2026-02-11 08:00:00", "2025-12-31 23:59:59"],
        "uuid": ["3f2b8c1e-7d4a-4b8e-9c1f-2a6d5e7f8a9b", "a1b2c3d4-e5f6-47a8-b9c0-d1e2f3a4b5c6"],
        "version": ["1.2.0.4", "2.0.1.0", "10.4.2.1", "3.1.0.0"],
        "date_fr": ["05/01/2026", "11/02/2026", "31/12/2025"],
    }
    settings = DetectionSettings()
    profiler = Profiler(detector, regions=settings.phone_regions, entities=settings.entities, language="en")
    profiles = profiler.profile(_sample(columns))
    found = {f: p.entity_type for f, p in profiles.items() if p.entity_type}
    assert found == {"c1": "PERSON", "contact": "EMAIL_ADDRESS", "tel": "PHONE_NUMBER", "c4": "IP_ADDRESS"}
    assert not any(p.free_text for p in profiles.values())


def test_free_text_is_recognised_even_without_hits(detector) -> None:
    settings = DetectionSettings()
    profiler = Profiler(detector, regions=settings.phone_regions, entities=settings.entities, language="en")
    notes = ["The parcel arrived late and the box was damaged on one side.", "Please send a new invoice for March."]
    (profile,) = profiler.profile(_sample({"notes": notes})).values()
    assert profile.free_text and profile.entity_type is None


def test_identifiers_among_other_words_are_read_as_free_text(tmp_path: Path, index: Index, detector) -> None:
    """A cc list ("a@x.com, b@y.org") or a short note ("cc a@x.com", "tel: +33612345678") is
    neither prose nor one identifier a value: read as free text, every one in it is found."""
    db = tmp_path / "mail.db"
    with sqlite3.connect(db) as conn:
        conn.execute(
            "CREATE TABLE tickets (id INTEGER PRIMARY KEY, cc TEXT, memo TEXT, callback TEXT, status TEXT, ref TEXT, "
            "seen TEXT)"
        )
        conn.executemany(
            "INSERT INTO tickets VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    i,
                    f"u{i}@example.com, desk{i % 5}@shop.example.com" if i % 3 == 0 else None,
                    "cc anne.petit@example.fr" if i == 777 else None,  # on one row: profiled past the sample
                    f"tel: +336{i * 7919 % 10**8:08d}" if i % 4 == 0 else None,
                    "open",
                    # Not personal data: no valid address, no number written as a phone number.
                    f"ORD-{i}@batch ref 2026-{i:06d}",
                    f"2026-01-{i % 28 + 1:02d} 10:{i % 60:02d}:01",
                )
                for i in range(1, 3001)
            ],
        )
    assert scan([SourceSpec(name="s", url=f"sqlite:///{db}")], index=index, detector=detector).ok
    inv = {(r.field, r.entity_type): r.records for r in inventory(index)}
    assert inv == {("cc", "EMAIL_ADDRESS"): 1000, ("memo", "EMAIL_ADDRESS"): 1, ("callback", "PHONE_NUMBER"): 750}
    assert index.findings_for([index.ident("EMAIL_ADDRESS", "desk3@shop.example.com")])
    assert index.findings_for([index.ident("EMAIL_ADDRESS", "anne.petit@example.fr")])


def test_column_name_hints() -> None:
    assert hint_for("customer.emailAddress") == "email"
    assert hint_for("mobile_phone") == "phone"
    assert hint_for("last_login_ip") == "ip"
    assert hint_for("firstName") == "first"
    assert hint_for("nom") == "last"
    assert hint_for("product_name") is None
    assert hint_for("company_name") is None
    assert hint_for("username") is None
    assert hint_for("zip") is None


def _catalogue(path: Path, rng: random.Random) -> None:
    """A film catalogue of our own (title-case synopses full of role nouns, titles, job titles of the
    crew) beside a customer table with real names and free-text notes that name people."""
    roles = ["Butler", "Hunter", "Composer", "Scientist", "Baker", "Shepherd", "Tailor", "Teacher", "Astronaut"]
    adjectives = ["Brooding", "Whimsical", "Gritty", "Tender", "Restless", "Haunting", "Daring", "Solemn"]
    genres = ["Fable", "Chronicle", "Romance", "Thriller", "Western", "Saga", "Caper", "Mystery"]
    places = ["The Salt Marshes", "A Sunken City", "The Glass Canyon", "A Frozen Lighthouse", "The Amber Desert"]
    films = []
    for i in range(150):
        a, b, c = rng.sample(roles, 3)
        adjective, genre, place = rng.choice(adjectives), rng.choice(genres), rng.choice(places)
        synopsis = rng.choice(
            [
                f"A {adjective} {genre} About A {a} Who Must Outwit the {b} Near {place}",
                f"{adjective} {genre}: A {a} and Her {b} Confront The {c} Across {place}",
                f"The {a} and the {b}, a {adjective} {genre} Set in {place}",
            ]
        )
        title = rng.choice([f"The {adjective} {a}", f"{genre} of the {b}", f"The Last {c}"])
        crew = f"{rng.choice(['Senior', 'Lead', 'Assistant'])} {rng.choice(['Sound', 'Camera', 'Set'])} {a}"
        films.append((i + 1, title, synopsis, crew))
    customers = []
    for i, name in enumerate(NAMES * 10):
        first, last = name.split()
        note = rng.choice([f"Spoke with {name} about a late parcel.", f"{name} asked for a refund by post."])
        customers.append((i + 1, first, last, note))
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE film (film_id INTEGER PRIMARY KEY, title TEXT, description TEXT, crew_role TEXT)")
        db.executemany("INSERT INTO film VALUES (?,?,?,?)", films)
        db.execute("CREATE TABLE customer (id INTEGER PRIMARY KEY, first_name TEXT, last_name TEXT, notes TEXT)")
        db.executemany("INSERT INTO customer VALUES (?,?,?,?)", customers)


@pytest.mark.parametrize("workers", [1, 2])
def test_a_description_column_is_not_profiled_as_names(tmp_path: Path, detector, workers: int) -> None:
    _catalogue(tmp_path / "films.db", random.Random(5))
    index = Index(f"sqlite:///{tmp_path / 'index.db'}")
    try:
        spec = SourceSpec(name="films", url=f"sqlite:///{tmp_path / 'films.db'}")
        scan([spec], index=index, detector=detector, settings=ScanSettings(workers=workers))
        rows = {(r.container, r.field, r.entity_type): r for r in inventory(index)}
    finally:
        index.close()
    person = {(c, f): r.prevalence for (c, f, t), r in rows.items() if t == "PERSON"}
    # The film table holds nobody's name: not in its synopses, titles or crew roles.
    assert [k for k in person if k[0] == "film"] == []
    # The customer table still does, as columns and inside its notes.
    assert person == {("customer", "first_name"): 1.0, ("customer", "last_name"): 1.0, ("customer", "notes"): 1.0}


def test_identifiers_inside_values_count_only_for_the_types_scanned_for(detector) -> None:
    """A cc list is free text when e-mail addresses are looked for; a scan for phone numbers
    alone leaves it (its addresses would go through NER for nothing), and keeps short notes
    with numbers."""
    columns = {
        "cc": [f"u{i}@example.com, desk{i}@shop.example.com" for i in range(10)],
        "callback": [f"tel: +336{i * 7919:08d}" for i in range(10)],
    }
    settings = DetectionSettings()
    every = Profiler(detector, regions=settings.phone_regions, entities=settings.entities, language="en")
    assert {f: p.free_text for f, p in every.profile(_sample(columns)).items()} == {"cc": True, "callback": True}
    phones = Profiler(detector, regions=settings.phone_regions, entities=["PHONE_NUMBER"], language="en")
    assert {f: p.free_text for f, p in phones.profile(_sample(columns)).items()} == {"cc": False, "callback": True}
