"""A table set with known ground truth for column profiling: PII columns under varied names and
formats, and tricky columns that are not personal data."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable

# Free-text columns whose values name real people: the detector must find PERSON in most of
# them. In every other column a PERSON claim above MAX_FALSE_PERSON of the values is an error.
PERSON_IN_TEXT = frozenset({"support_note", "cast_note"})
MAX_FALSE_PERSON = 0.05


def build_columns(n: int = 120, seed: int = 7) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Ground truth (column -> PERSON, EMAIL_ADDRESS, PHONE_NUMBER, IP_ADDRESS, FREE_TEXT or none)
    and ``n`` values per column, the same for a given seed."""
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
        # Title-case prose full of role nouns: a catalogue's blurbs read as names to a small NER model.
        "synopsis": ("FREE_TEXT", lambda: _synopsis(rng)),
        "c5": ("FREE_TEXT", lambda: _synopsis(rng)),
        "job_title": ("none", lambda: _job_title(rng)),
        "c6": ("none", lambda: _job_title(rng)),
        "product_title": ("none", lambda: _product(rng)),
        "c7": ("none", lambda: _product(rng)),
        "title": ("none", lambda: _work_title(rng)),
        "c8": ("none", lambda: _work_title(rng)),
        # Free text that does name people, some in title case too: still found.
        "support_note": ("FREE_TEXT", lambda: _support_note(rng, name)),
        "cast_note": ("FREE_TEXT", lambda: _cast_note(rng, name)),
    }
    truth = {k: v[0] for k, v in spec.items()}
    columns = {k: [v[1]() for _ in range(n)] for k, v in spec.items()}  # type: ignore[operator]
    return truth, columns


# Word lists of our own for the catalogue-like columns (no sample database's text).
_ROLES = """
    Beekeeper Lighthouse-Keeper Butler Hunter Composer Scientist Astronaut Librarian Blacksmith Detective
    Pilot Gardener Chef Sailor Shepherd Monk Surgeon Pirate Clockmaker Juggler Mermaid Robot Cowboy Squire
    Duchess Knight Magician Nurse Baker Mechanic Poet Dentist Miner Hermit Widow Orphan Architect Falconer
    Smuggler Tailor Ranger Archivist Cartographer Stuntman Ballerina Sheriff Accountant Diplomat Botanist
    Explorer Inventor Lumberjack Fisherman Prince Princess Witch Wizard Dragon Giant Teacher Student Crocodile
""".split()  # noqa: SIM905 - words read better as text
_ADJECTIVES = """
    Brooding Whimsical Sprawling Tender Gritty Luminous Restless Daring Quiet Feverish Bittersweet Rollicking
    Haunting Sly Breathless Stormy Gentle Reckless Curious Solemn Giddy Frantic Wistful Dazzling Sombre
""".split()  # noqa: SIM905 - words read better as text
_GENRES = """
    Chronicle Fable Odyssey Melodrama Romance Thriller Comedy Mystery Western Saga Parable Farce Tragedy
    Documentary Caper Musical Adventure Epic Satire Fantasy
""".split()  # noqa: SIM905 - words read better as text
_VERBS = """
    Outwit Rescue Befriend Confront Chase Unmask Protect Escape Challenge Tame Forgive Follow Outrun Marry
""".split()  # noqa: SIM905 - words read better as text
_PLACES = [
    "The Salt Marshes",
    "A Frozen Lighthouse",
    "The Amber Desert",
    "A Floating Market",
    "The Old Observatory",
    "A Mountain Monastery",
    "The Glass Canyon",
    "A Sunken City",
    "The Northern Fjords",
    "A Midnight Carnival",
    "The Copper Mines",
    "An Abandoned Zeppelin",
]


def _role(rng: random.Random) -> str:
    return rng.choice(_ROLES).replace("-", " ")


def _article(word: str) -> str:
    return "An" if word[0] in "AEIOU" else "A"


def _synopsis(rng: random.Random) -> str:
    adjective, genre = rng.choice(_ADJECTIVES), rng.choice(_GENRES)
    r1, r2, r3 = _role(rng), _role(rng), _role(rng)
    verb, place = rng.choice(_VERBS), rng.choice(_PLACES)
    templates = [
        f"{_article(adjective)} {adjective} {genre} About {_article(r1)} {r1} Who Must {verb} the {r2} Near {place}",
        f"{adjective} {genre}: {_article(r1)} {r1} and Her {r2} {verb} {_article(r3).lower()} {r3} Across {place}",
        f"The {r1} and the {r2}, {_article(adjective).lower()} {adjective} {genre} Set in {place}",
        f"{_article(r1)} {r1} Teams Up With {_article(r2)} {r2} to {verb} {_article(r3)} {r3} in {place}",
    ]
    return rng.choice(templates)


def _job_title(rng: random.Random) -> str:
    level = rng.choice(["Senior", "Junior", "Lead", "Principal", "Staff", "Associate", "Chief", "Head", "Regional"])
    area = rng.choice(
        ["Data", "Product", "Sales", "Marketing", "Research", "Customer Success", "Security", "Finance", "Logistics"]
    )
    role = rng.choice(["Engineer", "Manager", "Designer", "Analyst", "Scientist", "Officer", "Director", "Consultant"])
    if level == "Head":
        return f"Head of {area}"
    if level == "Chief":
        return f"Chief {area} Officer"
    return f"{level} {area} {role}"


def _product(rng: random.Random) -> str:
    # Brand words that are also given or family names, as many product lines use.
    brand = rng.choice(["Harper", "Madison", "Parker", "Kestrel", "Aurora", "Marlow", "Everett", "Nimbus", "Sloane"])
    line = rng.choice(["Pro", "Mini", "Max", "Classic", "Travel", "Studio", "Home", "Air"])
    noun = rng.choice(
        ["Headphones", "Espresso Grinder", "Desk Lamp", "Backpack", "Fountain Pen", "Blender", "Tent", "Kettle"]
    )
    return f"{brand} {line} {noun}"


def _work_title(rng: random.Random) -> str:
    adjective, noun = (
        rng.choice(_ADJECTIVES),
        rng.choice(
            ["Orchard", "Harbour", "Lantern", "Winter", "Compass", "Garden", "Mirror", "Voyage", "River", "Kingdom"]
        ),
    )
    role = _role(rng)
    return rng.choice(
        [
            f"The {adjective} {noun}",
            f"{noun} of the {role}",
            f"The {role}'s {noun}",
            f"{adjective} {role}",
            f"The Last {role}",
            f"{role} in {rng.choice(_PLACES)}",
        ]
    )


def _support_note(rng: random.Random, name: Callable[[], str]) -> str:
    return rng.choice(
        [
            f"Spoke with {name()} about the late parcel; a refund was agreed.",
            f"Customer {name()} asked to change the delivery address before Friday.",
            f"{name()} called twice about the invoice and wants a copy by post.",
            f"Escalated to {name()} after the second failed payment.",
        ]
    )


def _cast_note(rng: random.Random, name: Callable[[], str]) -> str:
    role = _role(rng)
    return rng.choice(
        [
            f"{name()} Plays the {role} Opposite {name()}",
            f"Directed by {name()}, With {name()} as the {role}",
            f"Starring {name()} and {name()} in a {rng.choice(_GENRES)}",
        ]
    )
