"""Scanning a real SQLite database: profiles, findings, locators, the index's privacy."""

from __future__ import annotations

import itertools
import json
import sqlite3
from dataclasses import asdict
from pathlib import Path

from fixtures import CUSTOMERS, EMPLOYEES, raw_bytes_of_index

from connectors.base import SourceSpec, connect
from discover.index import Index
from discover.inventory import inventory
from discover.scan import scan


def _spec(db: Path, name: str = "shop") -> SourceSpec:
    return SourceSpec(name=name, url=f"sqlite:///{db}")


def _inv(index: Index) -> dict[tuple[str, str, str], object]:
    return {(r.container, r.field, r.entity_type): r for r in inventory(index)}


def test_profiles_find_every_pii_column_and_no_other(shop_db: Path, index: Index, detector) -> None:
    result = scan([_spec(shop_db)], index=index, detector=detector)
    assert result.ok, result.errors
    inv = _inv(index)
    structured = {(c, f, e) for (c, f, e), r in inv.items() if r.origin == "field"}  # type: ignore[attr-defined]
    assert structured == {
        ("customers", "first_name", "PERSON"),
        ("customers", "last_name", "PERSON"),
        ("customers", "email", "EMAIL_ADDRESS"),
        ("customers", "phone", "PHONE_NUMBER"),
        ("customers", "last_ip", "IP_ADDRESS"),
        ("employees", "first_name", "PERSON"),
        ("employees", "last_name", "PERSON"),
        ("employees", "email", "EMAIL_ADDRESS"),
        ("employees", "phone", "PHONE_NUMBER"),
        ("audit_log", "actor_email", "EMAIL_ADDRESS"),
    }
    # Product names, version strings (1.2.0.4), order references and dates are not personal data.
    assert not any(c in {"products", "orders", "order_lines"} for c, _, _ in inv)


def test_free_text_is_scanned_in_full_and_all_caps_names_are_found(shop_db: Path, index: Index, detector) -> None:
    scan([_spec(shop_db)], index=index, detector=detector)
    inv = _inv(index)
    assert inv[("tickets", "notes", "PERSON")].records == 2  # type: ignore[attr-defined]
    assert inv[("tickets", "notes", "EMAIL_ADDRESS")].records == 1  # type: ignore[attr-defined]
    assert inv[("tickets", "notes", "PHONE_NUMBER")].records == 1  # type: ignore[attr-defined]
    ident = index.ident("PERSON", "bruno dubois")
    hits = index.findings_for([ident])
    assert any(h.field == "notes" and h.origin == "text" for h in hits)  # found though written in capitals


def test_counts_prevalence_and_masked_examples(shop_db: Path, index: Index, detector) -> None:
    scan([_spec(shop_db)], index=index, detector=detector)
    row = _inv(index)[("customers", "email", "EMAIL_ADDRESS")]
    assert (row.records, row.non_null, row.prevalence) == (4, 4, 1.0)  # type: ignore[attr-defined]
    assert "a***@e***.com" in row.examples  # type: ignore[attr-defined]
    assert all("@example" not in e for e in row.examples)  # type: ignore[attr-defined]


def test_index_holds_no_plaintext(shop_db: Path, index: Index, detector) -> None:
    scan([_spec(shop_db)], index=index, detector=detector)
    raw = raw_bytes_of_index(index)
    for _, first, last, email, phone, ip in CUSTOMERS:
        for value in (email, phone, ip, f"{first} {last}", last, "+33612345678"):
            assert value.encode() not in raw, value
            assert value.lower().encode() not in raw, value
    for _, first, last, email, _, _ in EMPLOYEES:
        assert email.encode() not in raw and f"{first} {last}".encode() not in raw and last.encode() not in raw


def test_every_locator_finds_its_record_again(shop_db: Path, index: Index, detector) -> None:
    scan([_spec(shop_db)], index=index, detector=detector)
    containers = {c.id: c.name for c in index.containers()}
    by_container: dict[str, set[str]] = {}
    for f in index.iter_findings():
        by_container.setdefault(containers[f.container_id], set()).add(f.record_key)
    with connect(_spec(shop_db)) as conn:
        refs = {r.name: r for r in conn.containers()}
        for name, keys in by_container.items():
            with conn.open(refs[name]) as reader:
                fetched = dict(reader.fetch(keys))
            assert set(fetched) == keys, name
    # A table without a primary key is located by rowid.
    assert by_container["audit_log"] == {"[1]", "[2]"}


def test_rescan_replaces_and_other_sources_add(shop_db: Path, tmp_path: Path, index: Index, detector) -> None:
    scan([_spec(shop_db)], index=index, detector=detector)
    first = sorted((f.container_id, f.record_key, f.field) for f in index.iter_findings())
    scan([_spec(shop_db)], index=index, detector=detector)
    assert sorted((f.container_id, f.record_key, f.field) for f in index.iter_findings()) == first

    with sqlite3.connect(shop_db) as db:
        db.execute("DELETE FROM customers WHERE id = 4")
        db.execute("UPDATE customers SET email = 'alice.new@example.com' WHERE id = 1")
    scan([_spec(shop_db)], index=index, detector=detector)
    assert not index.findings_for([index.ident("EMAIL_ADDRESS", "david.nguyen@example.com")])
    assert not [
        f for f in index.findings_for([index.ident("EMAIL_ADDRESS", "alice.martin@example.com")]) if f.origin == "field"
    ]
    assert index.findings_for([index.ident("EMAIL_ADDRESS", "alice.new@example.com")])

    other = tmp_path / "other.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE signups (id INTEGER PRIMARY KEY, email TEXT)")
        db.execute("INSERT INTO signups VALUES (1, 'zoe@example.com')")
    scan([_spec(other, "other")], index=index, detector=detector)
    assert {c.source for c in index.containers()} == {"shop", "other"}
    assert index.findings_for([index.ident("EMAIL_ADDRESS", "alice.new@example.com")])


def test_links_shared_office_phone_is_linked_to_two_emails(shop_db: Path, index: Index, detector) -> None:
    scan([_spec(shop_db)], index=index, detector=detector)
    phone = index.ident("PHONE_NUMBER", "+33142685300")
    rows = [(link.entity_type, link.strength) for link in index.links(phone)]
    assert sorted(rows) == [
        ("EMAIL_ADDRESS", "strong"),
        ("EMAIL_ADDRESS", "strong"),
        ("PERSON", "weak"),
        ("PERSON", "weak"),
    ]
    # Free-text mentions never link: the ticket that mentions two customers' e-mails adds no link.
    alice = index.ident("EMAIL_ADDRESS", "alice.martin@example.com")
    bruno = index.ident("EMAIL_ADDRESS", "bruno.dubois@example.org")
    assert index.links(alice) and index.links(bruno)  # both have links, from their own records
    assert bruno not in {link.ident for link in index.links(alice)}
    assert alice not in {link.ident for link in index.links(bruno)}


def test_scan_runs_are_recorded(shop_db: Path, tmp_path: Path, index: Index, detector) -> None:
    scan(
        [_spec(shop_db), SourceSpec(name="gone", url=f"sqlite:///{tmp_path / 'missing.db'}")],
        index=index,
        detector=detector,
    )
    (run,) = index.runs()
    assert run.status == "errors" and run.finished_at
    assert run.summary["totals"]["containers"] == 7
    assert run.summary["errors"] == [
        {
            "source": "gone",
            "container": "",
            "error": f"source 'gone': SQLite file {tmp_path / 'missing.db'} not found; check the path",
        }
    ]
    assert json.dumps(asdict(run))  # serialisable for --json


def test_wrong_key_is_refused(shop_db: Path, tmp_path: Path, detector) -> None:
    from connectors.errors import ConfigError

    url = f"sqlite:///{tmp_path / 'k' / 'index.db'}"
    Index(url, key=b"0" * 32).close()
    try:
        Index(url, key=b"1" * 32)
    except ConfigError as exc:
        assert "different key" in exc.message
    else:
        raise AssertionError("a wrong key must be refused")


def test_first_load_ends_in_wal_and_an_interrupted_scan_leaves_a_usable_index(
    shop_db: Path, tmp_path: Path, detector, settings
) -> None:
    import pytest

    first = Index(f"sqlite:///{tmp_path / 'a' / 'index.db'}")
    assert scan([_spec(shop_db)], index=first, detector=detector).ok
    with first.engine.connect() as conn:
        # The first load runs with a rollback journal; readers beside later scans need WAL back.
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    first.close()

    def stop(event: str, data: dict[str, object]) -> None:
        if event == "records":
            raise KeyboardInterrupt

    broken = Index(f"sqlite:///{tmp_path / 'b' / 'index.db'}")
    with pytest.raises(KeyboardInterrupt):
        scan([_spec(shop_db)], index=broken, detector=detector, progress=stop, settings=settings)
    assert [r.status for r in broken.runs()] == ["interrupted"]
    broken.close()
    again = Index(f"sqlite:///{tmp_path / 'b' / 'index.db'}")
    with again.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
    assert not list(again.iter_findings())  # the interrupted container was rolled back
    assert scan([_spec(shop_db)], index=again, detector=detector).ok
    assert list(again.iter_findings())


def test_a_large_table_in_many_parts_is_found_by_identifier_and_by_record(
    tmp_path: Path, index: Index, detector, monkeypatch
) -> None:
    """Thousands of rows in parts of a few thousand findings, merged by the writer into parts of
    6,000 entries: bucketed postings, several rows per look-up, each identifier and each record
    found exactly, through a pool and a rescan."""
    import discover.index_write as index_write
    from discover.index import RecordRef
    from discover.settings import ScanSettings

    monkeypatch.setattr(index_write, "MERGED_PART_ENTRIES", 6_000)

    db = tmp_path / "big.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE members (id INTEGER PRIMARY KEY, email TEXT, phone TEXT, signup_ip TEXT)")
        conn.executemany(
            "INSERT INTO members VALUES (?, ?, ?, ?)",
            [
                (i, f"member{i}@example.org", f"+44 20 7946 {i:04d}", f"10.{i // 65536}.{i // 256 % 256}.{i % 256}")
                for i in range(1, 8001)
            ],
        )
    settings = ScanSettings(workers=2, unit_rows=3000, batch_size=500, unit_findings_in_memory=4000)
    for _ in range(2):  # the rescan replaces every part
        assert scan([_spec(db, "club")], index=index, detector=detector, settings=settings).ok
    with index.engine.connect() as conn:
        parts = conn.exec_driver_sql("SELECT count(*) FROM parts").scalar()
        codes = [c for (c,) in conn.exec_driver_sql("SELECT code FROM postings")]
    # 32,000 entries in stored parts of at most 6,000, bucketed by leading bits
    assert parts is not None and parts >= 6 and max(codes) > 2
    cid = index.containers()[0].id
    for i in (1, 2999, 3000, 3001, 4567, 8000):
        hits = index.findings_for([index.ident("EMAIL_ADDRESS", f"member{i}@example.org")])
        assert [(h.record_key, h.field) for h in hits] == [(f"[{i}]", "email")]
        record = index.findings_in([RecordRef(cid, f"[{i}]")])
        assert sorted(f.entity_type for f in record) == ["EMAIL_ADDRESS", "IP_ADDRESS", "PHONE_NUMBER"]
        assert index.ident("PHONE_NUMBER", f"+44207946{i:04d}") in {f.ident for f in record}
    assert not index.findings_for([index.ident("EMAIL_ADDRESS", "member8001@example.org")])
    assert not index.findings_in([RecordRef(cid, "[8001]")])
    assert index.count_findings() == 24_000


def _numbered_table(db: Path, ids: list[int], *, primary_key: bool = True) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute(f"CREATE TABLE people (id INTEGER {'PRIMARY KEY' if primary_key else ''}, email TEXT)")
        conn.executemany("INSERT INTO people VALUES (?, ?)", [(i, f"p{i}@example.org") for i in ids])


def _sampled_ids(db: Path, size: int, seed: int) -> tuple[list[int], list[str]]:
    from sqlalchemy import event

    statements: list[str] = []
    with connect(_spec(db)) as conn:
        event.listen(conn.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
        (ref,) = conn.containers()
        with conn.open(ref) as reader:
            records = reader.sample(size, seed=seed)
    assert all(r.values["email"] == f"p{json.loads(r.key)[0]}@example.org" for r in records)
    return [json.loads(r.key)[0] for r in records], statements


def test_sample_of_a_large_table_is_drawn_by_key_spread_and_repeatable(tmp_path: Path) -> None:
    db = tmp_path / "big.db"
    _numbered_table(db, list(range(1, 20_001)))
    ids, statements = _sampled_ids(db, 100, seed=3)
    assert len(set(ids)) == 100 and sorted(ids) != list(range(1, 101))
    assert min(ids) < 3000 and max(ids) > 17_000 and 7000 < sum(ids) / 100 < 13_000
    # Rows fetched by key: nothing sorts the whole table.
    assert not any("random()" in s.lower() for s in statements)
    assert _sampled_ids(db, 100, seed=3)[0] == ids
    assert _sampled_ids(db, 100, seed=4)[0] != ids


def test_sample_falls_back_to_sorting_where_keys_are_sparse_or_absent(tmp_path: Path) -> None:
    sparse = tmp_path / "sparse.db"
    _numbered_table(sparse, [i * 1000 for i in range(1, 5001)])  # one key in a thousand exists
    ids, statements = _sampled_ids(sparse, 100, seed=0)
    assert len(set(ids)) == 100 and all(i % 1000 == 0 for i in ids)
    assert any("random()" in s.lower() for s in statements)
    rowid = tmp_path / "rowid.db"
    _numbered_table(rowid, list(range(1, 5001)), primary_key=False)  # located by rowid: still drawn by key
    ids, statements = _sampled_ids(rowid, 100, seed=0)
    assert len(set(ids)) == 100 and not any("random()" in s.lower() for s in statements)


def test_units_cover_the_key_range_once_and_end_in_smaller_ranges(tmp_path: Path) -> None:
    db = tmp_path / "big.db"
    _numbered_table(db, list(range(1, 20_001)))
    with connect(_spec(db)) as conn:
        (ref,) = conn.containers()
        with conn.open(ref) as reader:
            units = reader.units(1000)
    assert units[0] == (1, 1001) and units[-1][1] == 20_001
    assert all(a[1] == b[0] for a, b in itertools.pairwise(units))  # contiguous: every row in exactly one unit
    sizes = [high - low for low, high in units]
    assert sizes[:18] == [1000] * 18 and sizes[18:] == [250] * 8


_MANY_THREADS = """
import sys, threading
from concurrent.futures import ThreadPoolExecutor
from sqlalchemy import text
from connectors.base import SourceSpec, connect

connector = connect(SourceSpec(name="s", url=sys.argv[1]))
barrier = threading.Barrier(12)

def work(_):
    barrier.wait()
    with connector.engine.connect() as conn:
        return tuple(conn.execute(text("SELECT count(*), sum(length(v || id)) FROM t")).one())

answers = set()
for _ in range(3):
    with ThreadPoolExecutor(12) as pool:
        answers.update(pool.map(work, range(12)))
print(len(answers))
"""


def test_a_sqlite_source_serves_many_threads_at_once(tmp_path: Path) -> None:
    """Fingerprints are read by a few threads at once: each must get a connection of its own
    (a pool of one connection per thread closed them under each other and crashed the process)."""
    import subprocess
    import sys

    db = tmp_path / "t.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
        conn.executemany("INSERT INTO t VALUES (?, ?)", [(i, "x" * 50) for i in range(300_000)])
    run = subprocess.run(
        [sys.executable, "-c", _MANY_THREADS, f"sqlite:///{db}"], capture_output=True, text=True, timeout=120
    )
    assert (run.returncode, run.stdout.strip()) == (0, "1"), run.stderr[-500:]
