"""A small, realistic, deterministic demo dataset: a CRM database and some files."""

from __future__ import annotations

import csv
import json
import random
import sqlite3
from dataclasses import dataclass
from pathlib import Path

FIRST = [
    "Alice",
    "Bruno",
    "Chloé",
    "David",
    "Emma",
    "Farid",
    "Gabrielle",
    "Hugo",
    "Inès",
    "Jules",
    "Karim",
    "Léa",
    "Marc",
    "Nadia",
    "Olivier",
    "Pauline",
    "Quentin",
    "Rosa",
    "Samuel",
    "Talia",
]
LAST = [
    "Martin",
    "Bernard",
    "Dubois",
    "Thomas",
    "Robert",
    "Richard",
    "Petit",
    "Durand",
    "Leroy",
    "Moreau",
    "Simon",
    "Laurent",
    "Lefèvre",
    "Michel",
    "Garcia",
    "Fournier",
    "Girard",
    "Bonnet",
    "Dupont",
    "Lambert",
]
DOMAINS = ["example.com", "example.org", "mail.example.net"]
PRODUCTS = [
    ("Desk lamp", "19.90"),
    ("Notebook A5", "4.50"),
    ("Fountain pen", "32.00"),
    ("Office chair", "149.00"),
    ("USB-C cable", "9.99"),
    ("Monitor stand", "45.00"),
]


@dataclass(frozen=True)
class DemoData:
    root: Path
    crm: Path
    files: Path
    #: The e-mail address of the customer the demo exports.
    subject_email: str


def _phone(rng: random.Random, i: int) -> str:
    style = i % 3
    if style == 0:
        return f"+33 6 {rng.randint(10, 89)} {rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)}"
    if style == 1:
        return f"06 {rng.randint(10, 89)} {rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)}"
    return f"+44 7700 900{rng.randint(100, 999)}"


def _ip(rng: random.Random, first_octets: tuple[int, ...]) -> str:
    return f"{rng.choice(first_octets)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def build(root: Path) -> DemoData:
    """Write the demo dataset under ``root`` (replacing an earlier one)."""
    rng = random.Random(2026)
    root.mkdir(parents=True, exist_ok=True)
    files = root / "files"
    files.mkdir(exist_ok=True)
    crm = root / "crm.db"
    if crm.exists():
        crm.unlink()

    people = []
    for i in range(20):
        first, last = FIRST[i], LAST[(i * 7) % len(LAST)]
        local = f"{first.lower().replace('é', 'e').replace('è', 'e')}.{last.lower().replace('è', 'e')}"
        people.append((first, last, f"{local}@{DOMAINS[i % 3]}", _phone(rng, i)))

    with sqlite3.connect(crm) as db:
        db.executescript(
            """
            CREATE TABLE employees (
                id INTEGER PRIMARY KEY, first_name TEXT NOT NULL, last_name TEXT NOT NULL,
                email TEXT NOT NULL, phone TEXT, manager_id INTEGER REFERENCES employees(id));
            CREATE TABLE customers (
                id INTEGER PRIMARY KEY, first_name TEXT, last_name TEXT, email TEXT, phone TEXT,
                city TEXT, created_at TEXT, last_login_ip TEXT,
                support_rep_id INTEGER REFERENCES employees(id));
            CREATE TABLE products (sku TEXT PRIMARY KEY, name TEXT NOT NULL, price NUMERIC NOT NULL);
            CREATE TABLE orders (
                id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers(id),
                ordered_at TEXT NOT NULL, status TEXT NOT NULL, total NUMERIC NOT NULL);
            CREATE TABLE order_lines (
                order_id INTEGER NOT NULL REFERENCES orders(id), line_no INTEGER NOT NULL,
                sku TEXT NOT NULL REFERENCES products(sku), quantity INTEGER NOT NULL,
                PRIMARY KEY (order_id, line_no));
            CREATE TABLE tickets (
                id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers(id),
                opened_at TEXT NOT NULL, subject TEXT, notes TEXT);
            """
        )
        staff = people[15:]
        for i, (first, last, _email, phone) in enumerate(staff, start=1):
            email = f"{first.lower()}.{last.lower()}@shop.example"
            db.execute(
                "INSERT INTO employees VALUES (?,?,?,?,?,?)", (i, first, last, email, phone, None if i == 1 else 1)
            )
        for number, (name, price) in enumerate(PRODUCTS, start=1):
            db.execute("INSERT INTO products VALUES (?,?,?)", (f"SKU-{number:03d}", name, price))
        order_id = 0
        for cid, (first, last, email, phone) in enumerate(people[:15], start=1):
            ip = _ip(rng, (81, 92, 176, 212))
            db.execute(
                "INSERT INTO customers VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    cid,
                    first,
                    last,
                    email,
                    phone,
                    rng.choice(["Paris", "Lyon", "Lille", "Nantes"]),
                    f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                    ip,
                    1 + cid % 4,
                ),
            )
            for _ in range(1 + cid % 3):
                order_id += 1
                lines = [(PRODUCTS[rng.randrange(len(PRODUCTS))], rng.randint(1, 3)) for _ in range(1 + order_id % 3)]
                total = sum(float(p[1]) * q for p, q in lines)
                db.execute(
                    "INSERT INTO orders VALUES (?,?,?,?,?)",
                    (
                        order_id,
                        cid,
                        f"2026-{rng.randint(1, 10):02d}-{rng.randint(1, 28):02d}",
                        rng.choice(["paid", "shipped", "delivered"]),
                        f"{total:.2f}",
                    ),
                )
                for line_no, ((pname, _), qty) in enumerate(lines, start=1):
                    sku = next(f"SKU-{n:03d}" for n, p in enumerate(PRODUCTS, start=1) if p[0] == pname)
                    db.execute("INSERT INTO order_lines VALUES (?,?,?,?)", (order_id, line_no, sku, qty))
        notes = [
            (1, "Order late", "{p} called from {ph} about a late parcel; promised a refund."),
            (2, "Address change", "Customer asked to update the delivery address. Confirmed by mail to {e}."),
            (3, "Complaint", "{p} says the chair arrived broken. Her neighbour {o} signed for it."),
            (1, "Invoice", "Sent the invoice again to {e}, cc {oe} at the customer's request."),
            (5, "Login issue", "Cannot log in since yesterday, connection from {ip} was blocked."),
        ]
        for tid, (cid, subject, tmpl) in enumerate(notes, start=1):
            first, last, email, phone = people[cid - 1]
            other = people[(cid + 5) % 15]
            text = tmpl.format(
                p=f"{first} {last}", ph=phone, e=email, o=f"{other[0]} {other[1]}", oe=other[2], ip="203.0.113.77"
            )
            db.execute("INSERT INTO tickets VALUES (?,?,?,?,?)", (tid, cid, f"2026-10-{tid:02d}", subject, text))

    with open(files / "newsletter_signups.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, delimiter=";")
        writer.writerow(["signup_date", "email", "full_name", "consent"])
        for i in range(0, 20, 2):
            first, last, email, _ = people[i]
            writer.writerow([f"2026-0{1 + i % 9}-1{i % 10}", email, f"{first} {last}", "yes"])

    with open(files / "access.jsonl", "w", encoding="utf-8") as fh:
        for i in range(30):
            fh.write(
                json.dumps(
                    {
                        "ts": f"2026-11-0{1 + i % 9}T10:{i:02d}:00Z",
                        "client": {
                            "ip": _ip(rng, (81, 92, 176)),
                            "agent": "Mozilla/5.0",
                        },
                        "path": rng.choice(["/", "/cart", "/account", "/checkout"]),
                        "status": rng.choice([200, 200, 200, 302, 404]),
                    }
                )
                + "\n"
            )

    with open(files / "call_notes.txt", "w", encoding="utf-8") as fh:
        fh.write("Weekly support notes\n")
        fh.write(f"Spoke with {people[0][0]} {people[0][1]} about the refund, reachable on {people[0][3]}.\n")
        fh.write(f"{people[6][0]} {people[6][1]} wants invoices sent to {people[6][2]} from now on.\n")
        fh.write("Nothing else to report this week.\n")

    return DemoData(root=root, crm=crm, files=files, subject_email=people[0][2])


def change_for_nightly(root: Path) -> None:
    """What a day of business does to the demo data in ``root`` (built by :func:`build`): a new
    table of webinar sign-ups with e-mails, more customers (some older than the charter's three
    years), and a support-notes file overwritten with binary garbage by a broken backup job."""
    with sqlite3.connect(root / "crm.db") as db:
        db.execute(
            "CREATE TABLE webinar_signups (id INTEGER PRIMARY KEY, email TEXT NOT NULL, full_name TEXT, "
            "signed_up_at TEXT NOT NULL)"
        )
        for i in range(8):
            first, last = FIRST[(i * 3) % len(FIRST)], LAST[(i * 5 + 2) % len(LAST)]
            email = f"{first.lower().replace('é', 'e').replace('è', 'e')}.{last.lower().replace('è', 'e')}@example.org"
            db.execute(
                "INSERT INTO webinar_signups VALUES (?,?,?,?)", (i + 1, email, f"{first} {last}", f"2026-11-2{i}")
            )
        start = db.execute("SELECT MAX(id) FROM customers").fetchone()[0]
        for n in range(6):
            first, last = FIRST[(n * 7 + 1) % len(FIRST)], LAST[(n * 11 + 3) % len(LAST)]
            db.execute(
                "INSERT INTO customers (id, first_name, last_name, email, city, created_at) VALUES (?,?,?,?,?,?)",
                (
                    start + n + 1,
                    first,
                    last,
                    f"{first[0].lower()}.{last.lower().replace('è', 'e')}@{DOMAINS[n % 3]}",
                    "Paris",
                    f"20{19 + n % 3}-0{1 + n}-15" if n < 4 else "2026-11-29",
                ),
            )
    (root / "files" / "call_notes.txt").write_bytes(b"\x00\x00\x1f\x8b" + bytes(range(256)) * 4)
