"""Shared fixtures: the real Presidio + spaCy detector (built once), real SQLite databases, real files."""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from discover.detector import Detector
from discover.index import Index
from discover.settings import ScanSettings, default_workers
from piiport.api import build_detector


def pytest_configure(config: pytest.Config) -> None:
    # Hypothesis caches what it learns of the code under ./.hypothesis: not in the checkout.
    try:
        from hypothesis.configuration import set_hypothesis_home_dir
    except ImportError:  # an environment from before the test extra had it: test_phones.py says so
        return
    set_hypothesis_home_dir(Path(tempfile.gettempdir()) / f"piiport-hypothesis-{os.getuid()}")


@pytest.fixture(scope="session")
def detector() -> Detector:
    # The same cached instance the CLI uses in-process, so CLI tests do not rebuild it.
    return build_detector()


@pytest.fixture(params=["1", "default"], ids=lambda w: f"workers={w}")
def workers(request: pytest.FixtureRequest) -> int:
    """Fault tests run with one worker and with the default count the CLI uses (one per core)."""
    return 1 if request.param == "1" else default_workers()


@pytest.fixture
def settings(workers: int) -> ScanSettings:
    return ScanSettings(workers=workers)


@pytest.fixture
def index(tmp_path: Path) -> Iterator[Index]:
    idx = Index(f"sqlite:///{tmp_path / 'idx' / 'index.db'}")
    yield idx
    idx.close()


CUSTOMERS = [
    (1, "Alice", "Martin", "alice.martin@example.com", "+33 6 12 34 56 78", "81.12.200.7"),
    (2, "Bruno", "Dubois", "bruno.dubois@example.org", "06 23 45 67 89", "92.168.10.20"),
    (3, "Chloé", "Lefèvre", "chloe.lefevre@example.net", "+44 20 7946 0958", "176.31.4.150"),
    (4, "David", "Nguyen", "david.nguyen@example.com", "(415) 555-2671", "212.47.230.11"),
]
EMPLOYEES = [
    (1, "Samuel", "Girard", "samuel.girard@shop.example", "+33 1 42 68 53 00", None),
    (2, "Talia", "Bonnet", "talia.bonnet@shop.example", "+33 1 42 68 53 00", 1),  # shared office line
]


def make_shop(path: Path) -> Path:
    """A small shop database with foreign keys, a table without primary key, and free-text notes."""
    with sqlite3.connect(path) as db:
        db.executescript(
            """
            CREATE TABLE employees (id INTEGER PRIMARY KEY, first_name TEXT, last_name TEXT, email TEXT,
                phone TEXT, manager_id INTEGER REFERENCES employees(id));
            CREATE TABLE customers (id INTEGER PRIMARY KEY, first_name TEXT, last_name TEXT, email TEXT,
                phone TEXT, last_ip TEXT, support_rep_id INTEGER REFERENCES employees(id));
            CREATE TABLE products (sku TEXT PRIMARY KEY, name TEXT, version TEXT, price NUMERIC);
            CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers(id),
                ordered_at TEXT, total NUMERIC, reference TEXT);
            CREATE TABLE order_lines (order_id INTEGER REFERENCES orders(id), line_no INTEGER,
                sku TEXT REFERENCES products(sku), quantity INTEGER, PRIMARY KEY (order_id, line_no));
            CREATE TABLE tickets (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers(id),
                notes TEXT);
            CREATE TABLE audit_log (happened_at TEXT, actor_email TEXT, action TEXT);
            """
        )
        db.executemany("INSERT INTO employees VALUES (?,?,?,?,?,?)", EMPLOYEES)
        db.executemany("INSERT INTO customers VALUES (?,?,?,?,?,?,?)", [(*c, 1 + c[0] % 2) for c in CUSTOMERS])
        db.executemany(
            "INSERT INTO products VALUES (?,?,?,?)",
            [
                ("SKU-001", "Wireless Mouse", "1.2.0.4", "19.90"),
                ("SKU-002", "Standing Desk", "2.0.1.0", "349.00"),
                ("SKU-003", "Paris Notebook", "1.0.0.1", "4.50"),
            ],
        )
        db.executemany(
            "INSERT INTO orders VALUES (?,?,?,?,?)",
            [
                (10, 1, "2026-01-05", "39.80", "ORD-2026-00010"),
                (11, 1, "2026-02-11", "349.00", "ORD-2026-00011"),
                (12, 2, "2026-03-01", "4.50", "ORD-2026-00012"),
            ],
        )
        db.executemany(
            "INSERT INTO order_lines VALUES (?,?,?,?)",
            [(10, 1, "SKU-001", 2), (11, 1, "SKU-002", 1), (12, 1, "SKU-003", 1)],
        )
        db.executemany(
            "INSERT INTO tickets VALUES (?,?,?)",
            [
                (1, 1, "Alice Martin called from +33 6 12 34 56 78 about order ORD-2026-00010."),
                (2, 2, "Customer says BRUNO DUBOIS is not his name, his wife Emma Dubois placed the order."),
                (3, 1, "Invoice re-sent to alice.martin@example.com and to bruno.dubois@example.org by mistake."),
                (4, 3, "No personal details in this note, just a delivery delay."),
            ],
        )
        db.executemany(
            "INSERT INTO audit_log VALUES (?,?,?)",
            [
                ("2026-05-01T10:00:00", "samuel.girard@shop.example", "refund"),
                ("2026-05-02T11:00:00", "talia.bonnet@shop.example", "login"),
            ],
        )
    return path


@pytest.fixture
def shop_db(tmp_path: Path) -> Path:
    return make_shop(tmp_path / "shop.db")


def raw_bytes_of_index(idx: Index) -> bytes:
    """Every byte the index keeps on disk: the database, its WAL and shared memory, the key file."""
    assert idx.path is not None
    return b"".join(p.read_bytes() for p in sorted(idx.path.parent.iterdir()) if p.is_file())
