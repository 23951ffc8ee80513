"""Column profiling against tables with known ground truth."""

from __future__ import annotations

import random

from connectors.base import Record
from discover.profile import Profiler, hint_for
from discover.settings import DetectionSettings

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
