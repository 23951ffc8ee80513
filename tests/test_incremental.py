"""Incremental rescans: after any mix of inserts, updates and deletes, the index of an incremental
rescan answers exactly as the index of a fresh full scan (inventory, findings per identifier,
export packages), on SQLite, PostgreSQL and files, with one worker and the default count."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import random
import shutil
import sqlite3
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from servers import mariadb_database, postgres_database, run_sql

from connectors.base import SourceSpec
from connectors.errors import ConfigError
from connectors.options import SqlOptions
from connectors.sql import SqlTableReader
from discover.detector import Detector
from discover.index import Index
from discover.index_schema import SCHEMA_VERSION
from discover.scan import ScanResult, scan
from discover.settings import ScanSettings, default_workers
from piiport.api import export_subject
from piiport.cli import main
from piiport.config import Config

KEY = b"k" * 32
FIRST = ["Alice", "Bruno", "Chloé", "David", "Emma", "Farid", "Gina", "Hugo"]
LAST = ["Martin", "Dubois", "Nguyen", "Smith", "Lefèvre", "Ivanov"]


def _row(rng: random.Random, i: int) -> tuple[Any, ...]:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    email = None if rng.random() < 0.1 else f"{first.lower()}.{last.lower()}{rng.randint(1, 40)}@example.com"
    phone = (
        None if rng.random() < 0.2 else f"+33 6 12 {rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)}"
    )
    return (i, first, last, email, phone)


def _mix(rng: random.Random, keys: list[int]) -> list[tuple[str, tuple[Any, ...]]]:
    """A random mix of inserts (inside the key span and beyond its end), updates and deletes."""
    ops: list[tuple[str, tuple[Any, ...]]] = []
    for _ in range(rng.randint(1, 12)):
        kind = rng.choice(["insert", "insert_end", "update", "update_null", "delete"])
        if kind in ("insert", "insert_end") or not keys:
            new = max(keys, default=0) + rng.randint(1, 150) if kind == "insert_end" else rng.randint(1, 2000)
            if new in keys:
                continue
            keys.append(new)
            ops.append(("insert", _row(rng, new)))
        elif kind == "update":
            ops.append(("update", _row(rng, rng.choice(keys))))
        elif kind == "update_null":
            ops.append(("null", (rng.choice(keys),)))
        else:
            gone = rng.choice(keys)
            keys.remove(gone)
            ops.append(("delete", (gone,)))
    return ops


def _sql(op: str, values: tuple[Any, ...]) -> tuple[str, tuple[Any, ...]]:
    return {
        "insert": ("INSERT INTO people (id, first_name, last_name, email, phone) VALUES (?, ?, ?, ?, ?)", values),
        "update": (
            "UPDATE people SET first_name = ?, last_name = ?, email = ?, phone = ? WHERE id = ?",
            (*values[1:], values[0]),
        ),
        "null": ("UPDATE people SET email = NULL WHERE id = ?", values),
        "delete": ("DELETE FROM people WHERE id = ?", values),
    }[op]


def _scan(spec: SourceSpec, idx: Index, detector: Detector, workers: int, *, full: bool = False) -> ScanResult:
    settings = ScanSettings(workers=workers, unit_rows=60, full=full)
    result = scan([spec], index=idx, detector=detector, settings=settings)
    assert result.ok, result.errors
    return result


def _answers(idx: Index, spec: SourceSpec, out: Path, emails: list[str]) -> dict[str, Any]:
    """Everything a user can ask the index: inventory, profiles, each finding, exports."""
    names = {c.id: (c.source, c.name, c.records) for c in idx.containers()}
    findings = sorted(
        (names[f.container_id][:2], f.record_key, f.field, f.entity_type, f.ident, f.origin)
        for f in idx.iter_findings()
    )
    hits = [{k: v for k, v in asdict(h).items() if k != "container_id"} for h in idx.field_hits()]
    per_ident = {f[4]: sorted(str(r.record_key) for r in idx.findings_for([f[4]])) for f in findings}
    exports = {}
    for email in emails:
        target = out / email
        try:
            result = export_subject(
                emails=[email], config=Config(sources=(spec,)), index=idx, out=target, request_id="R1"
            )
        except (ValueError, RuntimeError) as exc:  # an ambiguous subject is refused the same way by both indexes
            exports[email] = type(exc).__name__ + str(exc)
            continue
        exports[email] = (
            result.records,
            sorted(
                (p.name, p.read_text())
                for p in Path(result.package).rglob("*")
                # The manifest and the page carry the time they were made; the data files are the answer.
                if p.is_file() and p.name not in ("manifest.json", "index.html")
            ),
        )
    return {
        "containers": sorted(names.values()),
        "hits": hits,
        "findings": findings,
        "per_ident": per_ident,
        "exports": exports,
    }


def _check_mixes(
    spec: SourceSpec,
    apply: Any,
    tmp_path: Path,
    detector: Detector,
    workers: int,
    mixes: int,
    seed: int,
    index_url: str | None = None,
) -> None:
    """``index_url``: where the incremental index is (default: an SQLite file)."""
    rng = random.Random(seed)
    keys = list(range(1, 401))
    incremental = Index(index_url or f"sqlite:///{tmp_path / 'inc' / 'index.db'}", key=KEY)
    first = _scan(spec, incremental, detector, workers)
    people = next(c for c in first.containers if c.container == "people")
    assert people.read == "full" and people.ranges_total > 4
    read_less = in_part = 0
    for mix in range(mixes):
        apply(_mix(rng, keys))
        result = _scan(spec, incremental, detector, workers)
        table = next(c for c in result.containers if c.container == "people")
        assert table.read in ("ranges", "unchanged")
        read_less += table.ranges_read < table.ranges_total
        in_part += table.ranges_in_part > 0
        full = Index(f"sqlite:///{tmp_path / f'full{mix}' / 'index.db'}", key=KEY)
        _scan(spec, full, detector, workers, full=True)
        emails = [f"{a.lower()}.{b.lower()}{n}@example.com" for a, b, n in [(FIRST[mix % 8], LAST[mix % 6], 3)]]
        got = _answers(incremental, spec, tmp_path / f"e-inc{mix}", emails)
        want = _answers(full, spec, tmp_path / f"e-full{mix}", emails)
        assert got == want, f"mix {mix}: the incremental index differs from a full scan's"
        full.close()
        shutil.rmtree(tmp_path / f"full{mix}")
    assert read_less >= mixes // 2  # most mixes touch a few ranges: the rest is not read again
    assert in_part >= 1  # and some ranges are read in part: their changed buckets only
    # Nothing written since: every table is unchanged (its version, or its file, as last time).
    again = _scan(spec, incremental, detector, workers)
    assert {c.read for c in again.containers} == {"unchanged"}
    incremental.close()


def _crm(db: Path) -> Any:
    """A SQLite source of two tables, and a function that applies a mix of changes to it."""
    rng = random.Random(7)
    with sqlite3.connect(db) as conn:
        conn.execute(
            "CREATE TABLE people (id INTEGER PRIMARY KEY, first_name TEXT, last_name TEXT, email TEXT, phone TEXT)"
        )
        conn.executemany("INSERT INTO people VALUES (?, ?, ?, ?, ?)", [_row(rng, i) for i in range(1, 401)])
        # A second table: its plan is made while the first one's write is open, with workers.
        conn.execute("CREATE TABLE staff (id INTEGER PRIMARY KEY, email TEXT)")
        conn.executemany("INSERT INTO staff VALUES (?, ?)", [(i, f"staff{i}@shop.example") for i in range(1, 200)])

    def apply(ops: list[tuple[str, tuple[Any, ...]]]) -> None:
        with sqlite3.connect(db) as conn:
            for op, values in ops:
                conn.execute(*_sql(op, values))

    return apply


@pytest.mark.parametrize("workers", [1, default_workers()], ids=lambda w: f"workers={w}")
def test_sqlite_incremental_matches_full_scan(tmp_path: Path, detector: Detector, workers: int) -> None:
    db = tmp_path / "crm.db"
    apply = _crm(db)
    spec = SourceSpec(name="crm", url=f"sqlite:///{db}")
    _check_mixes(spec, apply, tmp_path, detector, workers, mixes=6, seed=workers)


@pytest.mark.parametrize("workers", [1, default_workers()], ids=lambda w: f"workers={w}")
def test_incremental_into_a_postgresql_index_with_direct_writes_matches_full_scan(
    tmp_path: Path, detector: Detector, workers: int
) -> None:
    db = tmp_path / "crm.db"
    apply = _crm(db)
    spec = SourceSpec(name="crm", url=f"sqlite:///{db}")
    # Workers write the incremental index's key ranges themselves (on by default for PostgreSQL).
    with postgres_database(prefix="directwrites") as url:
        _check_mixes(spec, apply, tmp_path, detector, workers, mixes=4, seed=20 + workers, index_url=url)


def _applier(engine: Any, to_sql: Any = _sql) -> Any:
    """A function that applies a mix of changes through a SQLAlchemy engine; ``to_sql`` makes
    each change a statement with ``?`` placeholders and its values."""
    from sqlalchemy import text

    def apply(ops: list[tuple[str, tuple[Any, ...]]]) -> None:
        with engine.begin() as conn:
            for op, values in ops:
                sql, args = to_sql(op, values)
                names = [f"p{i}" for i in range(len(args))]
                for name in names:
                    sql = sql.replace("?", f":{name}", 1)
                conn.execute(text(sql), dict(zip(names, args, strict=True)))

    return apply


#: Each server's people table, and the seed and number of its mixes.
_SERVERS = {
    "postgresql": (
        postgres_database,
        "CREATE TABLE people (id integer PRIMARY KEY, first_name text, last_name text, email text, phone text)",
        3,
        5,
    ),
    "mariadb": (
        mariadb_database,
        "CREATE TABLE people (id INT PRIMARY KEY, first_name VARCHAR(40), last_name VARCHAR(40), "
        "email VARCHAR(100), phone VARCHAR(40))",
        5,
        4,
    ),
}


@pytest.mark.parametrize("server", sorted(_SERVERS))
def test_server_incremental_matches_full_scan(tmp_path: Path, detector: Detector, server: str) -> None:
    """The random mixes on PostgreSQL (bucket fingerprints by ``hashtextextended``, one grouped
    query) and MariaDB (by ``CRC32``, a query per range); changed buckets read back by key."""
    from sqlalchemy import create_engine

    database, ddl, seed, mixes = _SERVERS[server]
    rng = random.Random(seed + 8)
    with database() as url:
        run_sql(url, ddl)
        engine = create_engine(url)
        apply = _applier(engine)
        apply([("insert", _row(rng, i)) for i in range(1, 401)])
        spec = SourceSpec(name="crm", url=url)
        try:
            _check_mixes(spec, apply, tmp_path, detector, default_workers(), mixes=mixes, seed=seed)
        finally:
            engine.dispose()


#: Notes as staff write them: the ticket's holder, sometimes someone else (a namesake, a
#: colleague), e-mail addresses and phone numbers in prose, and notes without personal data.
_NOTES = [
    "Called {name} about the invoice, reach at {email}",
    "Customer asked to be called back on {phone} after 6pm",
    "Spoke with {other} from accounting; {name} will reply tomorrow",
    "Parcel returned to the depot, no answer at the door",
    "{name} ({email}) changed the delivery address, copy sent to {other_email}",
    "Refund approved",
]


def _ticket(rng: random.Random, i: int) -> tuple[Any, ...]:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    email = f"{first.lower()}.{last.lower()}{rng.randint(1, 30)}@example.com"
    other_first, other_last = rng.choice(FIRST), rng.choice(LAST)
    note = (
        None
        if rng.random() < 0.1
        else rng.choice(_NOTES).format(
            name=f"{first} {last}",
            email=email,
            phone=f"+33 6 {rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)}",
            other=f"{other_first} {other_last}",
            other_email=f"{other_first.lower()}.{other_last.lower()}{rng.randint(1, 30)}@example.com",
        )
    )
    return (i, email, note)


def _ticket_mix(rng: random.Random, keys: list[int]) -> list[tuple[str, tuple[Any, ...]]]:
    """Inserts (inside the key span and beyond its end), notes rewritten or emptied, deletes."""
    ops: list[tuple[str, tuple[Any, ...]]] = []
    for _ in range(rng.randint(2, 10)):
        kind = rng.choice(["insert", "insert_end", "update", "update", "null", "delete"])
        if kind in ("insert", "insert_end"):
            new = max(keys, default=0) + rng.randint(1, 60) if kind == "insert_end" else rng.randint(1, 700)
            if new not in keys:
                keys.append(new)
                ops.append(("INSERT INTO tickets (id, email, notes) VALUES (?, ?, ?)", _ticket(rng, new)))
        elif kind == "update":
            key, email, note = _ticket(rng, rng.choice(keys))
            ops.append(("UPDATE tickets SET email = ?, notes = ? WHERE id = ?", (email, note, key)))
        elif kind == "null":
            ops.append(("UPDATE tickets SET notes = NULL WHERE id = ?", (rng.choice(keys),)))
        else:
            gone = rng.choice(keys)
            keys.remove(gone)
            ops.append(("DELETE FROM tickets WHERE id = ?", (gone,)))
    return ops


#: Each source of the free-text mixes: how to make it, and the ticket table's DDL there.
_TICKET_SOURCES = {
    "sqlite": (None, "CREATE TABLE tickets (id INTEGER PRIMARY KEY, email TEXT, notes TEXT)"),
    "postgresql": (postgres_database, "CREATE TABLE tickets (id integer PRIMARY KEY, email text, notes text)"),
    "mariadb": (mariadb_database, "CREATE TABLE tickets (id INT PRIMARY KEY, email VARCHAR(100), notes TEXT)"),
}


@pytest.mark.parametrize(
    ("source", "workers"),
    [("sqlite", 1), ("sqlite", default_workers()), ("postgresql", default_workers()), ("mariadb", default_workers())],
    ids=["sqlite-workers=1", "sqlite-workers=default", "postgresql", "mariadb"],
)
def test_free_text_tables_are_re_read_in_part_and_match_full_scans(
    tmp_path: Path, detector: Detector, source: str, workers: int
) -> None:
    """A table with a free-text column (names found by NER, e-mails and phones in prose,
    namesakes, notes naming someone else) is kept by buckets too: a rescan after notes are
    rewritten, emptied, inserted and deleted re-reads the changed rows' buckets, not whole
    ranges, and the index answers exactly as a full scan's (inventory, findings, exports)."""
    from sqlalchemy import create_engine, text

    rng = random.Random({"sqlite": 60, "postgresql": 61, "mariadb": 62}[source] + workers)
    database, ddl = _TICKET_SOURCES[source]
    keys = list(range(1, 361))
    with contextlib.ExitStack() as stack:
        url = f"sqlite:///{tmp_path / 'crm.db'}" if database is None else stack.enter_context(database())
        engine = create_engine(url)
        stack.callback(engine.dispose)
        apply = _applier(engine, to_sql=lambda sql, values: (sql, values))  # the mixes are statements
        with engine.begin() as conn:
            conn.execute(text(ddl))
        apply([("INSERT INTO tickets (id, email, notes) VALUES (?, ?, ?)", _ticket(rng, i)) for i in keys])
        spec = SourceSpec(name="crm", url=url)
        settings = ScanSettings(workers=workers, text_unit_rows=60)
        incremental = Index(f"sqlite:///{tmp_path / 'inc' / 'index.db'}", key=KEY)
        stack.callback(incremental.close)
        first = scan([spec], index=incremental, detector=detector, settings=settings)
        assert first.ok, first.errors
        assert first.containers[0].entities.get("PERSON")  # found by NER in the notes
        assert first.containers[0].ranges_total >= 6
        in_part = 0
        for mix in range(3):
            apply(_ticket_mix(rng, keys))
            result = scan([spec], index=incremental, detector=detector, settings=settings)
            assert result.ok, result.errors
            tickets = result.containers[0]
            assert tickets.read in ("ranges", "unchanged")
            in_part += tickets.ranges_in_part > 0
            full = Index(f"sqlite:///{tmp_path / f'full{mix}' / 'index.db'}", key=KEY)
            assert scan([spec], index=full, detector=detector, settings=dataclasses.replace(settings, full=True)).ok
            # An address that holders, their namesakes and other people's notes may all carry, and
            # the holder of the highest key (a row inserted past the end, in some mixes).
            emails = [f"{FIRST[mix].lower()}.{LAST[mix].lower()}7@example.com"]
            emails.append(str(_email_of(engine, max(keys))))
            got = _answers(incremental, spec, tmp_path / f"e-inc{mix}", emails)
            want = _answers(full, spec, tmp_path / f"e-full{mix}", emails)
            assert got == want, f"mix {mix}: the incremental index differs from a full scan's"
            assert any(f[3] == "PERSON" and f[5] == "text" for f in got["findings"])
            full.close()
            shutil.rmtree(tmp_path / f"full{mix}")
        assert in_part >= 2  # the changed rows' buckets only, not whole ranges


def _email_of(engine: Any, key: int) -> str | None:
    from sqlalchemy import text

    with engine.connect() as conn:
        return conn.execute(text("SELECT email FROM tickets WHERE id = :k"), {"k": key}).scalar()


def test_files_changed_added_and_deleted(tmp_path: Path, detector: Detector) -> None:
    root = tmp_path / "exports"
    root.mkdir()
    (root / "a.csv").write_text("name,email\nAlice Martin,alice@example.com\n")
    (root / "b.csv").write_text("name,email\nBruno Dubois,bruno@example.org\n")
    (root / "c.csv").write_text("name,email\nChloe Nguyen,chloe@example.net\n")
    spec = SourceSpec(name="files", url=str(root))
    incremental = Index(f"sqlite:///{tmp_path / 'inc' / 'index.db'}", key=KEY)
    _scan(spec, incremental, detector, 1)
    (root / "b.csv").write_text("name,email\nBruno Dubois,bruno.dubois@example.org\nEmma Smith,emma@example.com\n")
    (root / "c.csv").unlink()
    (root / "d.csv").write_text("name,email\nDavid Ivanov,david@example.com\n")
    result = _scan(spec, incremental, detector, default_workers())
    assert {c.container: c.read for c in result.containers} == {"a.csv": "unchanged", "b.csv": "full", "d.csv": "full"}
    assert result.removed_containers == 1
    full = Index(f"sqlite:///{tmp_path / 'full' / 'index.db'}", key=KEY)
    _scan(spec, full, detector, 1, full=True)
    emails = ["alice@example.com", "emma@example.com", "chloe@example.net", "bruno@example.org"]
    assert _answers(incremental, spec, tmp_path / "e1", emails) == _answers(full, spec, tmp_path / "e2", emails)
    assert not incremental.findings_for([incremental.ident("EMAIL_ADDRESS", "chloe@example.net")])


def test_full_flag_and_changed_settings_read_everything(tmp_path: Path, detector: Detector) -> None:
    db = tmp_path / "crm.db"
    rng = random.Random(5)
    with sqlite3.connect(db) as conn:
        conn.execute(
            "CREATE TABLE people (id INTEGER PRIMARY KEY, first_name TEXT, last_name TEXT, email TEXT, phone TEXT)"
        )
        conn.executemany("INSERT INTO people VALUES (?, ?, ?, ?, ?)", [_row(rng, i) for i in range(1, 301)])
    spec = SourceSpec(name="crm", url=f"sqlite:///{db}")
    idx = Index(f"sqlite:///{tmp_path / 'idx' / 'index.db'}", key=KEY)
    _scan(spec, idx, detector, 1)
    assert _scan(spec, idx, detector, 1).containers[0].read == "unchanged"
    again = _scan(spec, idx, detector, 1, full=True).containers[0]
    assert (again.read, again.ranges_read) == ("full", again.ranges_total)
    # Another sample size may profile differently: the next scan reads everything.
    other = scan([spec], index=idx, detector=detector, settings=ScanSettings(unit_rows=60, sample_size=50))
    assert other.containers[0].read == "full"
    idx.close()


def test_watermark_column(tmp_path: Path, detector: Detector) -> None:
    """With ``changed_column``, a range is read again when its row count or the column's highest
    value changed; an update that leaves the column alone is missed (as the README says)."""
    db = tmp_path / "crm.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE people (id INTEGER PRIMARY KEY, email TEXT, updated_at TEXT)")
        conn.executemany(
            "INSERT INTO people VALUES (?, ?, '2026-01-01')", [(i, f"user{i}@example.com") for i in range(1, 301)]
        )
    spec = SourceSpec(name="crm", url=f"sqlite:///{db}", options=SqlOptions(changed_column="updated_at"))
    idx = Index(f"sqlite:///{tmp_path / 'idx' / 'index.db'}", key=KEY)
    _scan(spec, idx, detector, 1)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE people SET email = 'new@example.com', updated_at = '2026-02-01' WHERE id = 10")
        conn.execute("UPDATE people SET email = 'missed@example.com' WHERE id = 200")
    table = _scan(spec, idx, detector, 1).containers[0]
    assert (table.read, table.ranges_read) == ("ranges", 1)
    assert idx.findings_for([idx.ident("EMAIL_ADDRESS", "new@example.com")])
    assert not idx.findings_for([idx.ident("EMAIL_ADDRESS", "missed@example.com")])
    idx.close()


def _aged(path: Path) -> None:
    past = time.time() - 60
    os.utime(path, (past, past))


def test_an_unwritten_sqlite_file_is_not_read_and_a_written_one_is_fingerprinted(
    tmp_path: Path, detector: Detector
) -> None:
    db = tmp_path / "crm.db"
    rng = random.Random(9)
    with sqlite3.connect(db) as conn:
        conn.execute(
            "CREATE TABLE people (id INTEGER PRIMARY KEY, first_name TEXT, last_name TEXT, email TEXT, phone TEXT)"
        )
        conn.execute("CREATE TABLE other (id INTEGER PRIMARY KEY, note TEXT)")
        conn.executemany("INSERT INTO people VALUES (?, ?, ?, ?, ?)", [_row(rng, i) for i in range(1, 301)])
    _aged(db)
    spec = SourceSpec(name="crm", url=f"sqlite:///{db}")
    idx = Index(f"sqlite:///{tmp_path / 'idx' / 'index.db'}", key=KEY)
    _scan(spec, idx, detector, 1)
    calls: list[str] = []  # the tables fingerprinted, by SQL or from their pages
    real, stored = SqlTableReader.range_fingerprints, SqlTableReader.stored_bucket_prints

    def counted(self: SqlTableReader, *args: Any, **kwargs: Any) -> dict[int, str]:
        calls.append(self.table.name)
        return real(self, *args, **kwargs)

    def counted_stored(self: SqlTableReader, *args: Any, **kwargs: Any) -> dict[int, int] | None:
        calls.append(self.table.name)
        return stored(self, *args, **kwargs)

    SqlTableReader.range_fingerprints = counted  # type: ignore[method-assign]
    SqlTableReader.stored_bucket_prints = counted_stored  # type: ignore[method-assign]
    try:
        assert [c.read for c in _scan(spec, idx, detector, 1).containers] == ["unchanged", "unchanged"]
        assert calls == []  # nothing was asked of the database
        with sqlite3.connect(db) as conn:
            conn.execute("INSERT INTO other VALUES (1, 'x')")
        other, people = _scan(spec, idx, detector, 1).containers
        assert (other.container, other.read, other.ranges_read) == ("other", "ranges", 1)
        # The people table's pages are those of the last scan: not fingerprinted, not sampled.
        assert (people.container, people.read, calls) == ("people", "unchanged", ["other"])
        with sqlite3.connect(db) as conn:  # the same length in place: only the page's bytes differ
            old = conn.execute("SELECT email FROM people WHERE email IS NOT NULL LIMIT 1").fetchone()[0]
            conn.execute("UPDATE people SET email = ? WHERE email = ?", ("z" + old[1:], old))
        other, people = _scan(spec, idx, detector, 1).containers
        assert (other.read, people.read, people.ranges_read, calls) == ("unchanged", "ranges", 1, ["other", "people"])
        assert idx.findings_for([idx.ident("EMAIL_ADDRESS", "z" + old[1:])])
    finally:
        SqlTableReader.range_fingerprints = real  # type: ignore[method-assign]
        SqlTableReader.stored_bucket_prints = stored  # type: ignore[method-assign]
    idx.close()


def _people_scanned_once(tmp_path: Path, detector: Detector) -> tuple[SourceSpec, Path]:
    """A 100-row people table scanned once into a new index: its source and the index's path."""
    db = tmp_path / "crm.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE people (id INTEGER PRIMARY KEY, email TEXT)")
        conn.executemany("INSERT INTO people VALUES (?, ?)", [(i, f"user{i}@example.com") for i in range(1, 101)])
    spec = SourceSpec(name="crm", url=f"sqlite:///{db}")
    path = tmp_path / "idx" / "index.db"
    idx = Index(f"sqlite:///{path}", key=KEY)
    _scan(spec, idx, detector, 1)
    idx.close()
    return spec, path


def test_a_version_2_index_is_upgraded_and_read_whole_once(tmp_path: Path, detector: Detector) -> None:
    spec, path = _people_scanned_once(tmp_path, detector)
    with sqlite3.connect(path) as conn:  # what piiport 2 left: no incremental tables
        conn.execute("PRAGMA foreign_keys=OFF")
        for table in ("scan_state", "key_ranges", "range_parts", "hidden_buckets"):
            conn.execute(f"DROP TABLE {table}")
        conn.execute("UPDATE meta SET v = '2' WHERE k = 'schema_version'")
    idx = Index(f"sqlite:///{path}", key=KEY)
    assert _scan(spec, idx, detector, 1).containers[0].read == "full"
    assert _scan(spec, idx, detector, 1).containers[0].read == "unchanged"
    assert idx.findings_for([idx.ident("EMAIL_ADDRESS", "user7@example.com")])
    idx.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT v FROM meta WHERE k = 'schema_version'").fetchone() == (SCHEMA_VERSION,)
        assert conn.execute("SELECT count(*) FROM hidden_buckets").fetchone() == (0,)
        conn.execute("UPDATE meta SET v = '1' WHERE k = 'schema_version'")
    with pytest.raises(ConfigError, match="index schema version 1 is not supported by this piiport; scan into a new"):
        Index(f"sqlite:///{path}", key=KEY)


def test_a_version_3_index_is_upgraded_in_place_and_keeps_its_findings(tmp_path: Path, detector: Detector) -> None:
    spec, path = _people_scanned_once(tmp_path, detector)
    with sqlite3.connect(path) as conn:  # what piiport 3 left: no generation columns
        for table, column in (("parts", "unit_no"), ("parts", "generation"), ("containers", "generation")):
            conn.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        conn.execute("DROP TABLE hidden_buckets")
        conn.execute("UPDATE meta SET v = '3' WHERE k = 'schema_version'")
    idx = Index(f"sqlite:///{path}", key=KEY)
    assert len(idx.findings_for([idx.ident("EMAIL_ADDRESS", "user7@example.com")])) == 1
    assert idx.count_findings() == 100
    assert _scan(spec, idx, detector, 1).containers[0].read == "unchanged"
    idx.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT v FROM meta WHERE k = 'schema_version'").fetchone() == (SCHEMA_VERSION,)
        assert conn.execute("SELECT count(*) FROM hidden_buckets").fetchone() == (0,)


def test_cli_full_flag_and_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, detector: Detector) -> None:
    monkeypatch.chdir(tmp_path)
    for var in ("PIIPORT_INDEX", "PIIPORT_CONFIG", "PIIPORT_INDEX_KEY"):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "a.csv").write_text("name,email\nAlice Martin,alice@example.com\n")
    runner = CliRunner()

    def reads(*args: str) -> list[str]:
        result = runner.invoke(main, ["scan", *args, "--json"])
        assert result.exit_code == 0, result.output
        return [c["read"] for c in json.loads(result.output)["containers"]]

    assert reads("files") == ["full"]
    assert reads("files") == ["unchanged"]
    assert reads("files", "--full") == ["full"]
    (tmp_path / "piiport.yaml").write_text("incremental: false\nsources:\n  - path: files\n")
    assert reads("--config", "piiport.yaml") == ["full"]
    (tmp_path / "bad.yaml").write_text("sources:\n  - url: sqlite:///shop.db\n    changed_column: 5\n")
    bad = runner.invoke(main, ["scan", "--config", "bad.yaml"])
    assert bad.exit_code == 2
    assert "sources[0].changed_column must be a column name (changed_column: updated_at)" in bad.output
    (tmp_path / "bad2.yaml").write_text("incremental: sometimes\n")
    bad2 = runner.invoke(main, ["scan", "files", "--config", "bad2.yaml"])
    assert bad2.exit_code == 2 and "incremental must be true or false" in bad2.output


def test_mariadb_ranges_by_crc32(tmp_path: Path, detector: Detector) -> None:
    """MariaDB's fingerprint (CRC32 per row, XOR and sum per range): an update, a NULL where a
    value was, a delete and an insert past the end each re-read their range only, and the index
    answers as after a full scan."""
    rows = ",\n".join(f"({i}, 'user{i}@example.com', '+33 6 12 34 {i % 90 + 10:02d} 11')" for i in range(1, 301))
    with mariadb_database() as url:
        run_sql(
            url,
            "CREATE TABLE people (id INT PRIMARY KEY, email VARCHAR(100), phone VARCHAR(40));\n"
            f"INSERT INTO people VALUES {rows}",
        )
        spec = SourceSpec(name="crm", url=url)
        idx = Index(f"sqlite:///{tmp_path / 'idx' / 'index.db'}", key=KEY)
        first = _scan(spec, idx, detector, default_workers()).containers[0]
        assert first.ranges_total == 6
        assert _scan(spec, idx, detector, default_workers()).containers[0].read == "unchanged"
        run_sql(
            url,
            "UPDATE people SET email = 'renamed@example.com' WHERE id = 10;\n"
            "UPDATE people SET phone = NULL WHERE id = 130;\n"
            "DELETE FROM people WHERE id = 299;\n"
            "INSERT INTO people VALUES (1000, 'late@example.com', NULL)",
        )
        table = _scan(spec, idx, detector, default_workers()).containers[0]
        assert (table.read, table.ranges_read, table.ranges_total) == ("ranges", 4, 7)
        full = Index(f"sqlite:///{tmp_path / 'full' / 'index.db'}", key=KEY)
        _scan(spec, full, detector, 1, full=True)
        emails = ["renamed@example.com", "user10@example.com", "late@example.com", "user299@example.com"]
        assert _answers(idx, spec, tmp_path / "e1", emails) == _answers(full, spec, tmp_path / "e2", emails)
        idx.close()
        full.close()


def _counting(monkeypatch: pytest.MonkeyPatch, name: str) -> list[int]:
    """Count calls of one of ``SqlTableReader``'s methods (the real method still runs)."""
    calls: list[int] = []
    real = getattr(SqlTableReader, name)

    def counted(self: SqlTableReader, *args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(SqlTableReader, name, counted)
    return calls


def test_postgres_unchanged_table_is_neither_sampled_nor_fingerprinted(
    tmp_path: Path, detector: Detector, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL's table version (row versions' ``xmin``): an unchanged table costs one
    aggregate; an update of a column without personal data is a new version, so the ranges are
    fingerprinted again, and found unchanged; a new e-mail is read."""
    rows = ",\n".join(f"({i}, 'user{i}@example.com', 'note {i}')" for i in range(1, 301))
    with postgres_database() as url:
        run_sql(
            url,
            f"CREATE TABLE people (id integer PRIMARY KEY, email text, note text);\nINSERT INTO people VALUES {rows}",
        )
        spec = SourceSpec(name="crm", url=url)
        idx = Index(f"sqlite:///{tmp_path / 'idx' / 'index.db'}", key=KEY)
        first = _scan(spec, idx, detector, 1).containers[0]
        samples, prints = _counting(monkeypatch, "sample"), _counting(monkeypatch, "range_fingerprints")
        again = _scan(spec, idx, detector, 1).containers[0]
        assert (again.read, again.records, again.findings, samples, prints) == (
            "unchanged",
            300,
            first.findings,
            [],
            [],
        )
        run_sql(url, "UPDATE people SET note = 'edited' WHERE id = 5")
        table = _scan(spec, idx, detector, 1).containers[0]
        assert (table.read, len(samples), len(prints)) == ("unchanged", 1, 1)
        run_sql(url, "UPDATE people SET email = 'moved@example.com' WHERE id = 250")
        table = _scan(spec, idx, detector, 1).containers[0]
        assert (table.read, table.ranges_read) == ("ranges", 1)
        assert idx.findings_for([idx.ident("EMAIL_ADDRESS", "moved@example.com")])
        assert _scan(spec, idx, detector, 1).containers[0].read == "unchanged"
        assert len(samples) == 2
        idx.close()


def test_sqlite_wal_mode_and_a_new_column_are_not_taken_as_unchanged(
    tmp_path: Path, detector: Detector, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In WAL mode changed pages are in the -wal file: the table is fingerprinted, never skipped
    by its pages; a column added with a default changes every row without writing a page."""
    db = tmp_path / "crm.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE people (id INTEGER PRIMARY KEY, note TEXT)")
        conn.executemany("INSERT INTO people VALUES (?, ?)", [(i, f"note {i}") for i in range(1, 301)])
    spec = SourceSpec(name="crm", url=f"sqlite:///{db}")
    idx = Index(f"sqlite:///{tmp_path / 'idx' / 'index.db'}", key=KEY)
    _scan(spec, idx, detector, 1)
    with sqlite3.connect(db) as conn:
        conn.execute("ALTER TABLE people ADD COLUMN email TEXT DEFAULT 'shared@example.com'")
    table = _scan(spec, idx, detector, 1).containers[0]
    assert (table.read, table.entities) == ("full", {"EMAIL_ADDRESS": 300})
    prints = _counting(monkeypatch, "range_fingerprints")
    wal = sqlite3.connect(db)
    try:
        assert wal.execute("PRAGMA journal_mode=wal").fetchone() == ("wal",)
        wal.execute("UPDATE people SET email = 'walled@example.com' WHERE id = 7")
        wal.commit()
        # The buckets' fingerprints came from the pages (``connectors.sqlite_cells``); now they
        # come from SQL, computed otherwise: every range compares as changed, once.
        table = _scan(spec, idx, detector, 1).containers[0]
        assert (table.read, table.ranges_read, len(prints)) == ("ranges", table.ranges_total, 1)
        assert idx.findings_for([idx.ident("EMAIL_ADDRESS", "walled@example.com")])
        wal.execute("UPDATE people SET email = 'walled.again@example.com' WHERE id = 8")
        wal.commit()
        table = _scan(spec, idx, detector, 1).containers[0]
        assert (table.read, table.ranges_read, len(prints)) == ("ranges", 1, 2)
        assert idx.findings_for([idx.ident("EMAIL_ADDRESS", "walled.again@example.com")])
    finally:
        wal.close()
    idx.close()


def test_an_unchanged_table_with_free_text_runs_no_nlp(
    tmp_path: Path, detector: Detector, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A table whose name column is told from product names by NER at profiling, its file
    written since (another table): the rescan neither samples, profiles nor extracts, so the
    language model is never asked for."""
    db = tmp_path / "crm.db"
    names = [f"{a} {b}" for a in FIRST for b in LAST]
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE tickets (id INTEGER PRIMARY KEY, name TEXT, notes TEXT)")
        conn.executemany(
            "INSERT INTO tickets VALUES (?, ?, ?)",
            [(i, names[i % len(names)], f"Call back on +33 6 12 34 56 {i % 90 + 10}") for i in range(1, 121)],
        )
        conn.execute("CREATE TABLE other (id INTEGER PRIMARY KEY, note TEXT)")
    spec = SourceSpec(name="crm", url=f"sqlite:///{db}")
    idx = Index(f"sqlite:///{tmp_path / 'idx' / 'index.db'}", key=KEY)
    first = {c.container: c for c in _scan(spec, idx, detector, 1).containers}
    assert first["tickets"].entities.get("PERSON")  # found by NER in the notes
    engines: list[int] = []
    real = Detector.engine

    def counted(self: Detector, language: str | None = None) -> Any:
        engines.append(1)
        return real(self, language)

    monkeypatch.setattr(Detector, "engine", counted)
    samples = _counting(monkeypatch, "sample")
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO other VALUES (1, 'x')")
    again = {c.container: c for c in _scan(spec, idx, detector, 1).containers}
    assert (again["tickets"].read, again["tickets"].entities) == ("unchanged", first["tickets"].entities)
    assert (engines, len(samples)) == ([], 1)  # only the other table was sampled
    idx.close()


def _contacts_table(db: Path, rng: random.Random, *, wal: bool) -> Any:
    """900 people with an ``alias`` e-mail whose masked examples look alike (``x***@s***.example``),
    so a range's examples settle only at its first "z", far into it; and a function that applies
    mixes of inserts, updates and deletes, a tenth of them spread at random over the table."""

    def alias(i: int) -> str | None:
        # Masks alike but for a rare "y" and a "z" every 97 keys: a range's examples settle at its first "z".
        first = "z" if i % 97 == 50 else "y" if rng.random() < 0.02 else "x"
        return None if rng.random() < 0.05 else f"{first}{i}@same.example"

    with sqlite3.connect(db) as conn:
        if wal:
            conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(
            "CREATE TABLE people (id INTEGER PRIMARY KEY, first_name TEXT, last_name TEXT, email TEXT, phone TEXT, "
            "alias TEXT)"
        )
        conn.executemany(
            "INSERT INTO people VALUES (?, ?, ?, ?, ?, ?)", [(*_row(rng, i), alias(i)) for i in range(900)]
        )

    def apply(keys: list[int]) -> None:
        with sqlite3.connect(db) as conn:
            for op, values in _mix(rng, keys):
                sql, args = _sql(op, values)
                conn.execute(sql, args)
                if op in ("insert", "update"):
                    conn.execute("UPDATE people SET alias = ? WHERE id = ?", (alias(values[0]), values[0]))
            for key in rng.sample(keys, len(keys) // 100):  # 1% at random
                conn.execute("UPDATE people SET alias = ?, phone = NULL WHERE id = ?", (alias(key + 7), key))

    return apply


@pytest.mark.parametrize(
    ("workers", "wal"),
    [(1, False), (default_workers(), False), (default_workers(), True)],
    ids=["workers=1", "workers=default", "workers=default-wal"],
)
def test_rescans_by_buckets_match_full_scans(
    tmp_path: Path, detector: Detector, workers: int, wal: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ranges re-read in part (their changed buckets, and as much of their start as their masked
    examples need) leave the index answering as a full scan; in WAL mode, where the file's pages
    cannot say where rows changed, every bucket is fingerprinted instead."""
    import discover.buckets

    monkeypatch.setattr(discover.buckets, "BUCKETS_PER_RANGE", 15)  # buckets of 10 keys in ranges of 150
    rng = random.Random(40 + workers + 2 * wal)
    db = tmp_path / "crm.db"
    apply = _contacts_table(db, rng, wal=wal)
    spec = SourceSpec(name="crm", url=f"sqlite:///{db}")
    settings = ScanSettings(workers=workers, unit_rows=150)
    incremental = Index(f"sqlite:///{tmp_path / 'inc' / 'index.db'}", key=KEY)
    assert scan([spec], index=incremental, detector=detector, settings=settings).ok
    keys = list(range(900))
    patched = 0
    for mix in range(3):
        apply(keys)
        result = scan([spec], index=incremental, detector=detector, settings=settings)
        assert result.ok, result.errors
        people = result.containers[0]
        patched += people.buckets_read > 0
        full = Index(f"sqlite:///{tmp_path / f'full{mix}' / 'index.db'}", key=KEY)
        assert scan([spec], index=full, detector=detector, settings=dataclasses.replace(settings, full=True)).ok
        emails = [f"x{k}@same.example" for k in rng.sample(keys, 2)]
        got = _answers(incremental, spec, tmp_path / f"e-inc{mix}", emails)
        want = _answers(full, spec, tmp_path / f"e-full{mix}", emails)
        assert got == want, f"mix {mix}: the incremental index differs from a full scan's"
        full.close()
        shutil.rmtree(tmp_path / f"full{mix}")
    assert patched >= 2  # most rescans re-read buckets, not whole ranges
    incremental.close()


@pytest.mark.parametrize("index_kind", ["sqlite", "postgresql"])
@pytest.mark.parametrize("workers", [1, default_workers()], ids=lambda w: f"workers={w}")
def test_a_range_read_in_part_that_meets_a_note_is_read_whole(
    tmp_path: Path, detector: Detector, workers: int, index_kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A phone column declared NUMERIC: a range whose phones were all empty has no note, and is
    re-read in part when one changes; the changed row's text phone is a note ("read as text"),
    which a part cannot place among the range's, so the range is read whole after all (and its
    old findings cleared, not hidden): the index still answers as a full scan's."""
    import discover.buckets

    monkeypatch.setattr(discover.buckets, "BUCKETS_PER_RANGE", 10)
    db = tmp_path / "crm.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE people (id INTEGER PRIMARY KEY, email TEXT, phone NUMERIC)")
        conn.executemany(
            "INSERT INTO people VALUES (?, ?, ?)",
            [
                (
                    i,
                    f"{chr(97 + i % 26)}{i}@crm.example",
                    None if i < 300 else f"+33 6 12 34 {i % 90 + 10} {i % 80 + 10}",
                )
                for i in range(600)
            ],
        )
    spec = SourceSpec(name="crm", url=f"sqlite:///{db}")
    settings = ScanSettings(workers=workers, unit_rows=100)

    def check(incremental: Index) -> None:
        assert scan([spec], index=incremental, detector=detector, settings=settings).ok
        with sqlite3.connect(db) as conn:
            conn.execute("UPDATE people SET phone = '+33 6 99 88 77 66', email = 'moved@crm.example' WHERE id = 42")
            conn.execute("UPDATE people SET email = 'other@crm.example' WHERE id = 450")
        people = scan([spec], index=incremental, detector=detector, settings=settings).containers[0]
        # Planned in part: the range of id 42 (no note before); the range of id 450 had notes: whole.
        assert people.read == "ranges" and people.ranges_in_part == 1
        full = Index(f"sqlite:///{tmp_path / 'full' / 'index.db'}", key=KEY)
        assert scan([spec], index=full, detector=detector, settings=dataclasses.replace(settings, full=True)).ok
        emails = ["moved@crm.example", "other@crm.example", "p41@crm.example", "z337@crm.example"]
        got = _answers(incremental, spec, tmp_path / "e-inc", emails)
        assert got == _answers(full, spec, tmp_path / "e-full", emails)
        assert got["exports"]["moved@crm.example"][0] == 1
        full.close()

    if index_kind == "sqlite":
        check(Index(f"sqlite:///{tmp_path / 'inc' / 'index.db'}", key=KEY))
        return
    with postgres_database(prefix="escalate") as url:  # workers write the ranges themselves
        index = Index(url, key=KEY)
        try:
            check(index)
        finally:
            index.close()


@pytest.mark.parametrize("workers", [1, 2], ids=lambda w: f"workers={w}")  # 2: fingerprints spread over workers
def test_a_value_changed_only_in_overflow_pages_is_found(tmp_path: Path, detector: Detector, workers: int) -> None:
    """E-mails stored after a large value live in their records' overflow pages: an update of
    one to another of the same length writes no leaf page, and the rescan still finds it (the
    leaf's hash covers its overflow pages; each page is read at its own offset)."""
    db = tmp_path / "crm.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE people (id INTEGER PRIMARY KEY, photo BLOB, email TEXT)")
        conn.executemany(
            "INSERT INTO people VALUES (?, ?, ?)", [(i, b"x" * 6000, f"u{i:03d}@example.org") for i in range(1, 301)]
        )
    _aged(db)
    spec = SourceSpec(name="crm", url=f"sqlite:///{db}")
    idx = Index(f"sqlite:///{tmp_path / 'idx' / 'index.db'}", key=KEY)
    assert _scan(spec, idx, detector, workers).containers[0].entities == {"EMAIL_ADDRESS": 300}
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE people SET email = 'z007@example.org' WHERE id = 7")
    table = _scan(spec, idx, detector, workers).containers[0]
    assert (table.read, table.ranges_read) == ("ranges", 1)
    assert idx.findings_for([idx.ident("EMAIL_ADDRESS", "z007@example.org")])
    assert not idx.findings_for([idx.ident("EMAIL_ADDRESS", "u007@example.org")])
    idx.close()


def test_a_fingerprint_share_that_fails_in_a_worker_fails_only_its_table(
    tmp_path: Path, detector: Detector, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite fingerprints spread over two workers: an error in one share is that table's error,
    in one line, and the other table is read as usual."""
    db = tmp_path / "crm.db"
    with sqlite3.connect(db) as conn:
        # WAL mode: no fingerprints from the pages, which the scanning process reads itself.
        conn.execute("PRAGMA journal_mode=wal")
        for name in ("bad", "good"):
            conn.execute(f"CREATE TABLE {name} (id INTEGER PRIMARY KEY, email TEXT)")
            conn.executemany(
                f"INSERT INTO {name} VALUES (?, ?)", [(i, f"{name}{i}@example.org") for i in range(1, 301)]
            )
    real = SqlTableReader.range_fingerprints

    def failing(self: SqlTableReader, *args: Any, **kwargs: Any) -> dict[int, str]:
        if self.table.name == "bad" and kwargs.get("ranges") is not None:  # a share, in a worker
            raise RuntimeError("the disk is on fire")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(SqlTableReader, "range_fingerprints", failing)  # the workers fork after this
    spec = SourceSpec(name="crm", url=f"sqlite:///{db}")
    idx = Index(f"sqlite:///{tmp_path / 'idx' / 'index.db'}", key=KEY)
    result = scan([spec], index=idx, detector=detector, settings=ScanSettings(workers=2, unit_rows=60))
    by_name = {c.container: c for c in result.containers}
    assert by_name["good"].entities == {"EMAIL_ADDRESS": 300}
    assert [(e["container"], e["error"].splitlines()) for e in result.errors] == [
        ("bad", [by_name["bad"].error])
    ] and "the disk is on fire" in by_name["bad"].error
    idx.close()


@pytest.mark.parametrize("workers", [1, default_workers()], ids=lambda w: f"workers={w}")
def test_masked_examples_do_not_depend_on_where_the_ranges_fall(
    tmp_path: Path, detector: Detector, workers: int
) -> None:
    """A rescan keeps its first scan's key ranges; a fresh full scan of the grown table cuts
    wider ones. A row added past the last range makes a range of its own in the first index
    and sits after its range's first 200 hits in the second: both show the same masked
    examples (the first 3 distinct among the table's first 200 hits in key order)."""
    db = tmp_path / "crm.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE people (id INTEGER PRIMARY KEY, email TEXT)")
        conn.executemany("INSERT INTO people VALUES (?, ?)", [(i, f"p{i}@example.fr") for i in range(1, 1001)])
    spec = SourceSpec(name="crm", url=f"sqlite:///{db}")
    settings = ScanSettings(workers=workers, unit_rows=300)
    incremental = Index(f"sqlite:///{tmp_path / 'inc' / 'index.db'}", key=KEY)
    assert scan([spec], index=incremental, detector=detector, settings=settings).ok
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO people VALUES (1500, 'late@example.fr')")
        conn.execute("UPDATE people SET email = 'moved@example.fr' WHERE id = 7")
    assert scan([spec], index=incremental, detector=detector, settings=settings).ok
    full = Index(f"sqlite:///{tmp_path / 'full' / 'index.db'}", key=KEY)
    assert scan([spec], index=full, detector=detector, settings=settings).ok
    examples = [[json.loads(h.examples) for h in idx.field_hits()] for idx in (incremental, full)]
    assert examples[0] == examples[1] == [["p***@e***.fr", "m***@e***.fr"]]
    incremental.close()
    full.close()


@pytest.mark.parametrize("workers", [1, default_workers()], ids=lambda w: f"workers={w}")
def test_a_patch_whose_bucket_counts_break_reads_its_range_whole(
    tmp_path: Path, detector: Detector, workers: int
) -> None:
    """A column named with a "+" (taken for a first+last name pair by the bucket counts) whose
    range had no hit at the full scan gets one: the re-read's counts cannot be derived per
    bucket, and the range is read whole, where the scan used to end on an AssertionError."""
    db = tmp_path / "crm.db"
    with sqlite3.connect(db) as conn:
        conn.execute('CREATE TABLE tickets (id INTEGER PRIMARY KEY, "notes+extra" TEXT)')
        conn.executemany(
            "INSERT INTO tickets VALUES (?, ?)",
            [
                (i, "Parcel returned to the depot, no answer" if i < 121 else f"Spoke with Alice Martin{i % 5} today")
                for i in range(1, 241)
            ],
        )
    spec = SourceSpec(name="crm", url=f"sqlite:///{db}")
    settings = ScanSettings(workers=workers, text_unit_rows=60)
    incremental = Index(f"sqlite:///{tmp_path / 'inc' / 'index.db'}", key=KEY)
    assert scan([spec], index=incremental, detector=detector, settings=settings).ok
    with sqlite3.connect(db) as conn:
        conn.execute(
            'UPDATE tickets SET "notes+extra" = ? WHERE id = 5',
            ("Called Bruno Dubois about the invoice, reach at bruno@example.com",),
        )
    again = scan([spec], index=incremental, detector=detector, settings=settings)
    assert again.ok, again.errors
    full = Index(f"sqlite:///{tmp_path / 'full' / 'index.db'}", key=KEY)
    assert scan([spec], index=full, detector=detector, settings=dataclasses.replace(settings, full=True)).ok
    emails = ["bruno@example.com"]
    got = _answers(incremental, spec, tmp_path / "e-inc", emails)
    assert got == _answers(full, spec, tmp_path / "e-full", emails)
    full.close()
    incremental.close()
