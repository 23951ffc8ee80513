"""Deterministic benchmark workloads (seeded): W1 structured rows, W2 free-text notes with planted entities,
and a source of many small files."""

from __future__ import annotations

import json
import random
import shutil
import sqlite3
from pathlib import Path

CITIES = ["Paris", "Lyon", "Leeds", "Berlin", "Boston", "Lille", "Porto", "Ghent"]

FIRST = [
    "Alice",
    "Bruno",
    "Chloe",
    "David",
    "Emma",
    "Farid",
    "Grace",
    "Hugo",
    "Ines",
    "Jules",
    "Karen",
    "Liam",
    "Maria",
    "Noah",
    "Olga",
    "Pablo",
    "Quinn",
    "Rosa",
    "Sven",
    "Tara",
    "Umar",
    "Vera",
    "Wendy",
    "Yusuf",
]
LAST = [
    "Martin",
    "Dubois",
    "Smith",
    "Muller",
    "Garcia",
    "Rossi",
    "Nguyen",
    "Kim",
    "Brown",
    "Schmidt",
    "Lefevre",
    "Jones",
    "Novak",
    "Silva",
    "Kowalski",
    "Haddad",
    "Olsen",
    "Ivanova",
    "Murphy",
    "Tanaka",
]
WORDS = (  # noqa: SIM905 - a sentence is easier to read than a list
    "the order was shipped late and the customer asked for a refund because the box arrived damaged "
    "please check the invoice and confirm the delivery date with the warehouse team before friday "
    "our support desk will follow up next week about the replacement part and the warranty terms"
).split()


def phone(i: int) -> str:
    """Mixed national and international formats, several countries."""
    k = i % 6
    if k == 0:
        return f"+33 6 {i % 90 + 10:02d} {i // 90 % 100:02d} {i // 9000 % 100:02d} {i // 900000 % 100:02d}"
    if k == 1:
        return f"06 {i % 80 + 10:02d} {i // 80 % 100:02d} {i // 8000 % 100:02d} {i // 800000 % 100:02d}"
    if k == 2:
        return f"+44 7700 9{i % 100000:05d}"
    if k == 3:
        return f"+49 30 {i % 10000000:07d}"
    if k == 4:
        return f"+1 415 {200 + i % 800:03d} {i % 10000:04d}"
    return f"020 7946 {i % 10000:04d}"


def build_w1(path: Path, rows: int, *, seed: int = 1) -> Path:
    """A customers table of unique values: id, names, email, phone, ip, created_at, amount, status."""
    rng = random.Random(seed)
    path.unlink(missing_ok=True)
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE customers (id INTEGER PRIMARY KEY, first_name TEXT, last_name TEXT, email TEXT, "
            "phone TEXT, ip TEXT, created_at TEXT, amount NUMERIC, status TEXT)"
        )
        data = (
            (
                i,
                rng.choice(FIRST),
                rng.choice(LAST),
                f"user{i}@example{i % 50}.com",
                phone(i),
                f"{10 + i % 200}.{i // 200 % 256}.{i // 51200 % 256}.{i % 250 + 1}",
                f"2025-{i % 12 + 1:02d}-{i % 28 + 1:02d} 10:00:00",
                f"{i % 1000}.{i % 100:02d}",
                rng.choice(["active", "closed", "pending"]),
            )
            for i in range(rows)
        )
        db.executemany("INSERT INTO customers VALUES (?,?,?,?,?,?,?,?,?)", data)
    return path


def note(rng: random.Random, i: int) -> tuple[str, list[tuple[str, int, int]]]:
    """A 10-40 word note; about a third mention a person, an e-mail, a phone or an IP (spans known)."""
    words = [rng.choice(WORDS) for _ in range(rng.randint(10, 40))]
    words[0] = words[0].capitalize()
    text = " ".join(words) + "."
    spans: list[tuple[str, int, int]] = []
    if i % 3 == 0:
        kind = rng.choice(["PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "IP_ADDRESS"])
        if kind == "PERSON":
            value = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
            prefix = "Spoke with "
        elif kind == "EMAIL_ADDRESS":
            value = f"{rng.choice(FIRST).lower()}.{rng.choice(LAST).lower()}{i}@example.org"
            prefix = "Reply to "
        elif kind == "PHONE_NUMBER":
            value = phone(i)
            prefix = "Call back on "
        else:
            value = f"{81 + i % 100}.{i % 256}.{i // 256 % 256}.{1 + i % 250}"
            prefix = "Login from "
        start = len(text) + 1 + len(prefix)
        text = f"{text} {prefix}{value} today."
        spans.append((kind, start, start + len(value)))
    return text, spans


def build_w2(path: Path, notes: int, *, seed: int = 2) -> tuple[Path, dict[int, list[tuple[str, int, int]]]]:
    """A tickets table of notes, and the planted spans per ticket id."""
    rng = random.Random(seed)
    path.unlink(missing_ok=True)
    truth: dict[int, list[tuple[str, int, int]]] = {}
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE tickets (id INTEGER PRIMARY KEY, notes TEXT)")
        rows = []
        for i in range(notes):
            text, spans = note(rng, i)
            truth[i] = spans
            rows.append((i, text))
        db.executemany("INSERT INTO tickets VALUES (?, ?)", rows)
    return path, truth


def build_many_files(root: Path, files: int, *, rows: int = 4, seed: int = 1) -> Path:
    """``files`` small files, CSV and JSON in turn, of ``rows`` people each (a full name, an
    e-mail, a city): a source whose cost is per container, not per row."""
    rng = random.Random(seed)
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    for n in range(files):
        people = [
            (f"{rng.choice(FIRST)} {rng.choice(LAST)}", f"person{n}.{k}@example{n % 50}.org", rng.choice(CITIES))
            for k in range(rows)
        ]
        folder = root / f"batch{n // 500:03d}"
        folder.mkdir(exist_ok=True)
        if n % 2:
            records = [{"name": name, "email": email, "city": city} for name, email, city in people]
            (folder / f"people{n:06d}.json").write_text(json.dumps(records), encoding="utf-8")
        else:
            lines = ["name,email,city"] + [",".join(p) for p in people]
            (folder / f"people{n:06d}.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root
