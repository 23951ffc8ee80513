"""Test data shaped like production, shared by the test modules: a shop database and files of every format.

Test modules import these from here, never from one another or from conftest.
"""

from __future__ import annotations

import gzip
import json
import sqlite3
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from connectors.base import SourceSpec
from discover.index import Index

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


def raw_bytes_of_index(idx: Index) -> bytes:
    """Every byte the index keeps on disk: the database, its WAL and shared memory, the key file."""
    assert idx.path is not None
    return b"".join(p.read_bytes() for p in sorted(idx.path.parent.iterdir()) if p.is_file())


PEOPLE = [
    ("Alice Martin", "alice.martin@example.com", "+33 6 12 34 56 78", "81.12.200.7"),
    ("Bruno Dubois", "bruno.dubois@example.org", "+44 20 7946 0958", "92.168.10.20"),
    ("Chloé Lefèvre", "chloe.lefevre@example.net", "+49 30 901820", "176.31.4.150"),
]


def csv_text(delimiter: str = ",") -> str:
    rows = [delimiter.join(["full_name", "email", "phone", "ip", "city"])]
    rows += [delimiter.join([n, e, p, i, "Paris"]) for n, e, p, i in PEOPLE]
    return "\n".join(rows) + "\n"


def records() -> list[dict[str, object]]:
    return [
        {"name": n, "contact": {"email": e, "phone": p}, "ip": i, "note": f"{n} wrote in."} for n, e, p, i in PEOPLE
    ]


def write_all_formats(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "utf8.csv").write_text(csv_text(), encoding="utf-8")
    (root / "bom.csv").write_text(csv_text(";"), encoding="utf-8-sig")
    (root / "latin1.csv").write_bytes(csv_text("\t").encode("latin-1"))
    (root / "array.json").write_text(json.dumps(records()), encoding="utf-8")
    (root / "one.json").write_text(
        json.dumps({"owner": {"email": PEOPLE[0][1], "name": PEOPLE[0][0]}}), encoding="utf-8"
    )
    (root / "lines.jsonl").write_text("\n".join(json.dumps(r) for r in records()) + "\n", encoding="utf-8")
    (root / "lines.ndjson").write_text("\n".join(json.dumps(r) for r in records()) + "\n", encoding="utf-8")
    pq.write_table(
        pa.table({"full_name": [p[0] for p in PEOPLE], "email": [p[1] for p in PEOPLE], "amount": [1.5, 2.0, 3.25]}),
        root / "table.parquet",
    )
    (root / "notes.txt").write_text(
        "\n".join(f"Call {n} on {p} or write to {e}." for n, e, p, _ in PEOPLE) + "\n", encoding="utf-8"
    )
    (root / "sub").mkdir(exist_ok=True)
    (root / "sub" / "server.log").write_text(
        "\n".join(f"2026-11-01T10:00:0{k} GET /login from {i}" for k, (_, _, _, i) in enumerate(PEOPLE)) + "\n",
        encoding="utf-8",
    )
    for name in ["utf8.csv", "array.json", "lines.jsonl", "notes.txt", "sub/server.log"]:
        src = root / name
        with gzip.open(root / f"gz_{src.name}.gz", "wb") as fh:
            fh.write(src.read_bytes())
    buf = pa.BufferOutputStream()
    pq.write_table(pa.table({"email": [p[1] for p in PEOPLE]}), buf)
    with gzip.open(root / "gz_table.parquet.gz", "wb") as fh:
        fh.write(buf.getvalue().to_pybytes())


def shop_and_files(tmp_path: Path) -> list[SourceSpec]:
    """The shop database (with enough audit rows that its tables split into several units) and a
    folder of every file format: a ``shop`` and a ``files`` source."""
    shop = make_shop(tmp_path / "shop.db")
    with sqlite3.connect(shop) as db:
        db.executemany(
            "INSERT INTO audit_log VALUES (?, ?, ?)",
            [(f"2026-01-{1 + i % 28:02d}", CUSTOMERS[i % 4][3], f"login {i}") for i in range(300)],
        )
    files = tmp_path / "files"
    write_all_formats(files)
    return [SourceSpec(name="shop", url=f"sqlite:///{shop}"), SourceSpec(name="files", url=str(files))]


def local_cluster() -> Any:
    """A Dask LocalCluster of 2 single-threaded worker processes on loopback, no dashboard."""
    import distributed

    return distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    )


def exported_packages(index: Index, subjects: list[str], out: Path) -> dict[str, Any]:
    """Per subject's e-mail: what its export found, its records, each file's content and the review."""
    from piiport.api import export_subject
    from piiport.config import Config

    packages = {}
    for email in subjects:
        result = export_subject(emails=[email], config=Config(), index=index, out=out, request_id=email.split("@")[0])
        package = Path(result.package)
        files = {f["path"]: json.loads((package / f["path"]).read_text("utf-8")) for f in result.manifest["files"]}
        packages[email] = (result.found, result.records, files, result.manifest.get("review"))
    return packages


def package_tables(
    index: Index, out: Path, email: str | None = None, **request: Any
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, Any]]:
    """A subject's export by e-mail (or by ``request``: ``phones=[…]``, ``names=[…]``),
    unredacted (the rows compare with the source's): per container, the rows its package holds,
    and the manifest."""
    from piiport.api import export_subject
    from piiport.config import Config

    if email is not None:
        request["emails"] = [email]
    rid = (
        "-".join(str(v) for values in request.values() for v in values).split("@")[0].replace(" ", "").replace("+", "")
    )
    result = export_subject(config=Config(), index=index, out=out, request_id=rid, redact=False, **request)
    tables: dict[str, list[dict[str, Any]]] = {}
    for f in result.manifest["files"]:
        tables[f["container"]] = json.loads((Path(result.package) / f["path"]).read_text("utf-8"))
    return tables, result.manifest


def scanned(index: Index, detector: Any, workers: int, *specs: SourceSpec) -> Any:
    """A scan of ``specs`` at ``workers`` that read every container (its ``ScanResult``)."""
    from discover.scan import scan
    from discover.settings import ScanSettings

    result = scan(list(specs), index=index, detector=detector, settings=ScanSettings(workers=workers))
    assert result.ok, result.errors
    return result
