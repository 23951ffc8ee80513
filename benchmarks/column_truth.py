"""A table set with known ground truth for column profiling: PII columns under varied names and
formats, and tricky columns that are not personal data."""

from __future__ import annotations

import random
import uuid


def build_columns(n: int = 120, seed: int = 7) -> tuple[dict[str, str], dict[str, list[str]]]:
    rng = random.Random(seed)
    first = [
        "Alice",
        "Bruno",
        "Chloé",
        "David",
        "Emma",
        "Farid",
        "Grace",
        "Hugo",
        "Inès",
        "Jules",
        "Karen",
        "Liam",
        "Maria",
        "Noah",
        "Olga",
        "Pablo",
        "Quentin",
        "Rosa",
        "Sven",
        "Tara",
    ]
    last = [
        "Martin",
        "Dubois",
        "Smith",
        "Müller",
        "García",
        "Rossi",
        "Nguyen",
        "Kim",
        "Brown",
        "O'Neil",
        "Lefèvre",
        "Jones",
        "Novak",
        "Silva",
        "Kowalski",
    ]
    domains = ["example.com", "mail.example.org", "exemple.fr", "corp.example.net"]

    def name() -> str:
        return f"{rng.choice(first)} {rng.choice(last)}"

    def email() -> str:
        local = f"{rng.choice(first).lower()}.{rng.choice(last).lower().replace(chr(39), '')}{rng.randint(1, 99)}"
        return f"{local}@{rng.choice(domains)}"

    def phone() -> str:
        return rng.choice(
            [
                f"+33 6 {rng.randint(10, 89)} {rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)}",
                f"06{rng.randint(10000000, 89999999)}",
                f"+44 20 7946 {rng.randint(1000, 9999)}",
                f"(415) {rng.randint(200, 999)}-{rng.randint(1000, 9999)}",
                f"+49 30 {rng.randint(1000000, 9999999)}",
            ]
        )

    def ip() -> str:
        if rng.random() < 0.2:
            return f"2001:db8:{rng.randint(0, 65535):x}::{rng.randint(1, 65535):x}"
        return f"{rng.randint(11, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"

    products = [
        "Wireless Mouse",
        "Standing Desk",
        "USB-C Cable",
        "Office Chair",
        "Desk Lamp",
        "Monitor Arm",
        "Paris Notebook",
        "Jackson Guitar Strap",
        "Victoria Sponge Mix",
        "Lincoln Pen Set",
    ]
    cities = ["Paris", "Lyon", "London", "Berlin", "Madrid", "Boston", "Victoria", "Charlotte", "Florence", "Austin"]
    companies = [
        "Acme Corp",
        "Globex Ltd",
        "Initech",
        "Umbrella SA",
        "Stark Industries",
        "Wayne Enterprises",
        "Johnson & Johnson",
        "Morgan Stanley",
        "Ford Motor",
        "Siemens AG",
    ]
    spec: dict[str, tuple[str, object]] = {
        "customer_name": ("PERSON", name),
        "c1": ("PERSON", name),
        "contact": ("EMAIL_ADDRESS", email),
        "c2": ("EMAIL_ADDRESS", email),
        "mobile": ("PHONE_NUMBER", phone),
        "c3": ("PHONE_NUMBER", phone),
        "remote_addr": ("IP_ADDRESS", ip),
        "c4": ("IP_ADDRESS", ip),
        "product_name": ("none", lambda: rng.choice(products)),
        "name": ("none", lambda: rng.choice(products)),
        "city": ("none", lambda: rng.choice(cities)),
        "company": ("none", lambda: rng.choice(companies)),
        "order_no": ("none", lambda: str(rng.randint(10_000_000, 99_999_999))),
        "reference": ("none", lambda: f"ORD-2026-{rng.randint(0, 99999):05d}"),
        "created_at": (
            "none",
            lambda: f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d} 10:{rng.randint(0, 59):02d}:00",
        ),
        "uuid": ("none", lambda: str(uuid.UUID(int=rng.getrandbits(128), version=4))),
        "version": (
            "none",
            lambda: f"{rng.randint(1, 12)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}.{rng.randint(0, 99)}",
        ),
        "description": (
            "FREE_TEXT",
            lambda: rng.choice(
                [
                    "Ergonomic design with adjustable height and a sturdy steel frame.",
                    "Ships in recycled packaging; assembly takes about ten minutes.",
                    "Compatible with most laptops and tablets, two year warranty included.",
                ]
            ),
        ),
        "status": ("none", lambda: rng.choice(["active", "closed", "pending"])),
        "zip": ("none", lambda: f"{rng.randint(10000, 99999)}"),
    }
    truth = {k: v[0] for k, v in spec.items()}
    columns = {k: [v[1]() for _ in range(n)] for k, v in spec.items()}  # type: ignore[operator]
    return truth, columns
