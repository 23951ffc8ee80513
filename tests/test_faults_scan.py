"""Scan-side faults: each gives one line naming the container and the fix, the scan goes
on, the summary is printed and nothing already indexed is lost; with one worker and with the
default count. CLI cases run as a subprocess: one error line on stderr, no traceback, the exit code."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from fixtures import package_tables, scanned
from servers import mariadb_database, run_sql

from connectors.base import SourceSpec
from connectors.flatten import MAX_DEPTH
from discover.index import Index
from discover.scan import scan
from discover.settings import ScanSettings
from piiport.cli import main

ALMA = "name,email\nAlma Perez,alma@x.example\n"


def piiport(cwd: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``piiport ARGS`` in a fresh process, as a user runs it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIIPORT_")}
    return subprocess.run(
        [sys.executable, "-m", "piiport.cli", *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=timeout
    )


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


def scan_errors(proc: subprocess.CompletedProcess[str]) -> list[str]:
    """The error lines of a scan summary on stderr (after ``N error(s):``)."""
    assert "Traceback" not in proc.stderr + proc.stdout
    head, *lines = proc.stderr.splitlines()
    assert head == f"{len(lines)} error(s):", proc.stderr
    return lines


# -- the headline bug: a failed container beside an open transaction ------------------------------


def test_a_corrupt_file_among_good_ones_prints_the_summary_and_keeps_the_good_file(
    tmp_path: Path, workers: int
) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.csv").write_text(ALMA, encoding="utf-8")
    (tmp_path / "d" / "b.json").write_text("", encoding="utf-8")
    proc = piiport(tmp_path, "scan", "d", "--workers", str(workers))
    assert proc.returncode == 1
    assert scan_errors(proc) == [
        "  d: b.json: not valid JSON (it does not start with [ or {); a .json file must hold an array of objects "
        "or one object"
    ]
    assert proc.stdout.startswith("Scanned 2 containers, 1 records: 2 findings")
    inv = piiport(tmp_path, "inventory", "--format", "json")
    assert inv.returncode == 0 and inv.stderr == ""
    rows = json.loads(inv.stdout)
    assert [r["examples"] for r in rows if r["field"] == "email"] == [["a***@x***.example"]]


def test_failures_between_good_containers_are_all_recorded(tmp_path: Path, index: Index, detector, workers) -> None:
    """Failures at every place in the queue: first, between good ones, last; profiling and reading."""
    root = tmp_path / "d"
    root.mkdir()
    (root / "a_empty.json").write_text("", encoding="utf-8")
    for n in range(4):
        (root / f"b{n}.csv").write_text(f"name,email\nP{n} Q,p{n}@x.example\n", encoding="utf-8")
        (root / f"c{n}.jsonl").write_text('{"email": "ok@x.example"}\n' if n % 2 else "", encoding="utf-8")
        (root / f"d{n}.txt").write_bytes(b"\x00binary")
    (root / "z_truncated.json").write_text('[{"email": "z@x.example"}, {"email": ', encoding="utf-8")
    result = scan(
        [SourceSpec(name="d", url=str(root))], index=index, detector=detector, settings=ScanSettings(workers=workers)
    )
    failed = {e["container"] for e in result.errors}
    assert failed == {"a_empty.json", "z_truncated.json"} | {f"d{n}.txt" for n in range(4)}
    stored = {c.name: c for c in index.containers()}
    assert {n for n, c in stored.items() if c.error} == failed
    for n in range(4):
        assert index.findings_for([index.ident("EMAIL_ADDRESS", f"p{n}@x.example")])
    assert [r.status for r in index.runs()] == ["errors"]


# -- 3 and 4: a second scan, a killed scan ----------------------------------------------------------


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait(condition, seconds: float = 120) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_second_scan_is_refused_and_a_killed_scan_takes_its_workers_along(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.csv").write_text(ALMA, encoding="utf-8")
    assert piiport(tmp_path, "scan", "d").returncode == 0  # a non-empty index
    big = tmp_path / "big"
    big.mkdir()
    for f in range(6):
        lines = (f"Customer Alice Martin called about order {i}, write to alice{i}@mail.example." for i in range(4000))
        (big / f"notes{f}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIIPORT_")}
    slow = subprocess.Popen(
        [sys.executable, "-m", "piiport.cli", "scan", "big", "--workers", "2"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    workers: list[int] = []
    try:
        assert _wait(lambda: len(_children(slow.pid)) == 2), "the scan did not start its pool"
        workers = _children(slow.pid)
        second = piiport(tmp_path, "scan", "d")
        assert second.returncode == 1
        line = one_error_line(second)
        assert line.startswith("Error: another scan holds the index sqlite:///.piiport/index.db (run 2, running since ")
        assert line.endswith("); wait for it to finish, or use another index with --index")
        running = piiport(tmp_path, "inventory")
        assert running.returncode == 0 and one_error_line(running).startswith("note: a scan is running (run 2, since ")

        slow.send_signal(signal.SIGKILL)
        slow.wait()
        assert _wait(lambda: not any(_alive(w) for w in workers), 30), "pool workers outlived their parent"
    finally:
        if slow.poll() is None:
            slow.kill()
            slow.wait()
        for w in workers:
            if _alive(w):
                os.kill(w, signal.SIGKILL)

    inv = piiport(tmp_path, "inventory")
    assert inv.returncode == 0
    assert one_error_line(inv).startswith("note: scan run 2 (started ")
    assert "was interrupted before it finished" in inv.stderr and "scan big again" in inv.stderr
    assert piiport(tmp_path, "scan", "d").returncode == 0  # the lock died with the killed scan
    with sqlite3.connect(tmp_path / ".piiport" / "index.db") as db:
        assert db.execute("SELECT id, status FROM runs ORDER BY id").fetchall() == [
            (1, "ok"),
            (2, "interrupted"),
            (3, "ok"),
        ]
    assert "scan run 2" in piiport(tmp_path, "inventory").stderr  # big was not scanned again


def test_the_scan_lock_is_free_after_a_scan_and_held_during_one(tmp_path: Path, index: Index, detector) -> None:
    from discover.errors import IndexBusyError

    (tmp_path / "a.csv").write_text(ALMA, encoding="utf-8")
    seen = []

    def progress(event: str, data: dict) -> None:
        if event == "container":
            other = Index(index.url)
            try:
                with pytest.raises(IndexBusyError) as busy, other.scan_lock():
                    pass
                seen.append(busy.value.run_id)
                assert other.scan_in_progress()
            finally:
                other.close()

    result = scan(
        [SourceSpec(name="f", url=str(tmp_path / "a.csv"))], index=index, detector=detector, progress=progress
    )
    assert seen == [result.run_id]
    assert not index.scan_in_progress()


# -- 5: unreadable folders, what is skipped -------------------------------------------------------


@pytest.fixture
def unreadable(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Path], None]]:
    """Make a folder unreadable: chmod 000, and for root (which reads it anyway) an EACCES from scandir."""
    made: list[Path] = []
    real_scandir = os.scandir

    def deny(path: Path) -> None:
        path.chmod(0)
        made.append(path)
        if os.geteuid() == 0:

            def scandir(p: object = ".") -> object:
                if any(Path(os.fsdecode(p)) == m for m in made):  # type: ignore[arg-type]
                    raise PermissionError(13, "Permission denied", os.fsdecode(p))  # type: ignore[arg-type]
                return real_scandir(p)  # type: ignore[arg-type]

            monkeypatch.setattr(os, "scandir", scandir)

    yield deny
    for path in made:
        path.chmod(0o700)


def test_unreadable_folder_is_an_error_and_what_was_indexed_under_it_stays(
    tmp_path: Path, index: Index, detector, settings, unreadable
) -> None:
    root = tmp_path / "d"
    (root / "locked").mkdir(parents=True)
    (root / "a.csv").write_text(ALMA, encoding="utf-8")
    (root / "locked" / "b.csv").write_text("email\nbob@x.example\n", encoding="utf-8")
    spec = SourceSpec(name="d", url=str(root))
    assert scan([spec], index=index, detector=detector, settings=settings).ok
    unreadable(root / "locked")
    result = scan([spec], index=index, detector=detector, settings=settings)
    assert result.errors == [
        {
            "source": "d",
            "container": "locked/",
            "error": "source 'd': cannot list the folder locked/ (Permission denied); give the scanning user read "
            "and execute access to it, or exclude it",
        }
    ]
    assert result.removed_containers == 0
    assert index.findings_for([index.ident("EMAIL_ADDRESS", "bob@x.example")])  # kept, not pruned
    assert index.findings_for([index.ident("EMAIL_ADDRESS", "alma@x.example")])


def test_unreadable_folder_in_the_cli(tmp_path: Path, monkeypatch, detector, unreadable) -> None:
    monkeypatch.chdir(tmp_path)
    for var in ("PIIPORT_INDEX", "PIIPORT_CONFIG", "PIIPORT_INDEX_KEY"):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / "d" / "locked").mkdir(parents=True)
    (tmp_path / "d" / "a.csv").write_text(ALMA, encoding="utf-8")
    unreadable(tmp_path / "d" / "locked")
    result = CliRunner().invoke(main, ["scan", "d"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert result.stderr.splitlines() == [
        "1 error(s):",
        "  d: source 'd': cannot list the folder locked/ (Permission denied); give the scanning user read and "
        "execute access to it, or exclude it",
    ]
    assert "d/a.csv: 1 records" in result.stdout


def test_skipped_entries_are_counted_in_the_summary(tmp_path: Path) -> None:
    root = tmp_path / "d"
    (root / ".git").mkdir(parents=True)
    (root / ".git" / "people.csv").write_text(ALMA, encoding="utf-8")
    (root / ".hidden.csv").write_text(ALMA, encoding="utf-8")
    (root / "README.md").write_text("# not data\n", encoding="utf-8")
    (root / "a.csv").write_text(ALMA, encoding="utf-8")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "b.csv").write_text("email\nb@x.example\n", encoding="utf-8")
    (root / "linked").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    proc = piiport(tmp_path, "scan", "d", "--json")
    assert proc.returncode == 0 and proc.stderr == ""
    summary = json.loads(proc.stdout)
    assert summary["skipped"] == {"d": {"hidden": 2, "symlinked_folder": 1, "unknown_format": 1}}
    assert [c["container"] for c in summary["containers"]] == ["a.csv"]
    human = piiport(tmp_path, "scan", "d")
    assert (
        "  d: not scanned: hidden files and folders (names starting with a dot) 2, symbolic links to folders "
        "(not followed) 1, files of an unknown format 1"
    ) in human.stdout.splitlines()


# -- 1: text in a SQLite NUMERIC column --------------------------------------------------------------


def _numeric_db(path: Path) -> Path:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, email TEXT, amount NUMERIC, due DATE)")
        db.executemany(
            "INSERT INTO orders VALUES (?, ?, ?, ?)",
            [(i, f"buyer{i}@x.example", "abc" if i == 7 else i * 1.5, "2026-01-02") for i in range(1, 41)],
        )
    return path


def test_text_in_a_numeric_column_is_read_as_text_and_counted(tmp_path: Path, index: Index, detector, settings):
    db = _numeric_db(tmp_path / "shop.db")
    result = scan([SourceSpec(name="shop", url=f"sqlite:///{db}")], index=index, detector=detector, settings=settings)
    assert result.ok, result.errors
    (orders,) = result.containers
    assert orders.records == 40
    assert orders.notes == ["column amount: 1 value(s) of the profiling sample are not numbers; read as text"]
    assert index.findings_for([index.ident("EMAIL_ADDRESS", "buyer7@x.example")])
    proc = piiport(tmp_path, "scan", f"sqlite:///{db}")
    assert proc.returncode == 0 and proc.stderr == ""
    assert "  shop/orders: column amount: 1 value(s) of the profiling sample are not numbers; read as text" in (
        proc.stdout.splitlines()
    )
    export = piiport(tmp_path, "export", "--email", "buyer7@x.example", "--json")
    assert export.returncode == 0, export.stderr
    package = Path(tmp_path / json.loads(export.stdout)["package"])
    (rows,) = [json.loads(p.read_text()) for p in (package / "data").rglob("*.json")]
    assert rows[0]["amount"] == "abc"


# -- 6: a file deleted after the scan ----------------------------------------------------------------


def test_deleted_file_says_deleted_and_rescan_drops_it(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.csv").write_text(ALMA, encoding="utf-8")
    (tmp_path / "d" / "b.csv").write_text("name,email\nBob Stone,bob@x.example\n", encoding="utf-8")
    assert piiport(tmp_path, "scan", "d").returncode == 0
    (tmp_path / "d" / "a.csv").unlink()
    first = piiport(tmp_path, "export", "--email", "alma@x.example", "--json")
    assert first.returncode == 1 and "Traceback" not in first.stderr
    assert json.loads(first.stdout)["errors"] == [
        "d/a.csv: deleted since the scan; its 1 record(s) were not exported: run the export again with --rescan "
        "to drop it from the index"
    ]
    again = piiport(tmp_path, "export", "--email", "alma@x.example", "--rescan", "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["errors"] == []
    inventory = json.loads(piiport(tmp_path, "inventory", "--format", "json").stdout)
    assert {r["container"] for r in inventory} == {"b.csv"}  # forgotten; the other file stays


# -- 11: key file, empty, damaged and locked index, wrong password -----------------------------------


def test_missing_key_file_is_refused_for_an_index_with_data(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text(ALMA, encoding="utf-8")
    assert piiport(tmp_path, "scan", "a.csv").returncode == 0
    key = tmp_path / ".piiport" / "index.key"
    key.unlink()
    proc = piiport(tmp_path, "scan", "a.csv")
    assert proc.returncode == 2
    assert one_error_line(proc) == (
        "Error: key file .piiport/index.key is missing, but the index .piiport/index.db already holds data written "
        "with a key; restore the key file from backup (or set PIIPORT_INDEX_KEY to the key); a new key cannot read "
        "this index"
    )
    assert not key.exists()  # no new key written


def test_empty_damaged_and_locked_index_get_advice_that_fits(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text(ALMA, encoding="utf-8")
    assert piiport(tmp_path, "scan", "a.csv").returncode == 0
    db = tmp_path / ".piiport" / "index.db"
    saved = db.read_bytes()
    for wal in db.parent.glob("index.db-*"):
        wal.unlink()

    db.write_bytes(b"")
    for command in (["inventory"], ["scan", "a.csv"]):
        proc = piiport(tmp_path, *command)
        assert proc.returncode == 2
        assert one_error_line(proc) == (
            "Error: .piiport/index.db is empty, so it is not a piiport index (was it truncated?); restore it from "
            "backup, or delete it to start a new index"
        )
    assert db.stat().st_size == 0  # nothing written into it

    db.write_bytes(os.urandom(8192))
    proc = piiport(tmp_path, "inventory")
    assert proc.returncode == 2
    line = one_error_line(proc)
    assert line.endswith(
        "file is not a database; the index file is damaged: restore it from backup, or scan into a new index"
    )
    assert "check the URL" not in line

    db.write_bytes(saved)
    locker = sqlite3.connect(db, timeout=0)
    try:
        locker.execute("PRAGMA locking_mode=EXCLUSIVE")
        locker.execute("BEGIN EXCLUSIVE")
        proc = piiport(tmp_path, "inventory")
    finally:
        locker.close()
    assert proc.returncode == 1
    line = one_error_line(proc)
    assert line.endswith(
        "database is locked; another piiport process is writing it; wait for it to finish, or use another index with --index"
    )


def test_other_tables_are_not_a_piiport_index(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "shop.db") as db:
        db.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY)")
    proc = piiport(tmp_path, "inventory", "--index", "sqlite:///shop.db")
    assert proc.returncode == 2
    assert one_error_line(proc) == (
        "Error: sqlite:///shop.db is not a piiport index (it holds other tables); give the URL of a piiport index, "
        "or of an empty database for a new one"
    )


@pytest.fixture
def maria_user() -> Iterator[tuple[str, str]]:
    """A MariaDB database with a good and a forbidden table, and a user with a password who may
    SELECT the good one and only INSERT into the other (so it sees the table, but not its rows)."""
    with mariadb_database() as url:
        run_sql(
            url,
            "CREATE TABLE customers (id INT PRIMARY KEY, email VARCHAR(100));\n"
            "INSERT INTO customers VALUES (1, 'carla@x.example'), (2, 'dan@x.example');\n"
            "CREATE TABLE salaries (id INT PRIMARY KEY, email VARCHAR(100), amount INT);\n"
            "INSERT INTO salaries VALUES (1, 'carla@x.example', 100)",
        )
        user = f"pp_{uuid.uuid4().hex[:8]}"
        database = url.rsplit("/", 1)[1].split("?")[0]
        admin = url.rsplit("/", 1)[0] + "/"
        grants = []
        for host in ("%", "localhost"):
            grants += [
                f"CREATE USER '{user}'@'{host}' IDENTIFIED BY 'right-pw'",
                f"GRANT SELECT ON `{database}`.customers TO '{user}'@'{host}'",
                f"GRANT INSERT ON `{database}`.salaries TO '{user}'@'{host}'",
            ]
        run_sql(admin, ";\n".join(grants))
        try:
            yield user, database
        finally:
            run_sql(admin, f"DROP USER '{user}'@'%';\nDROP USER '{user}'@'localhost'")


@pytest.mark.servers
def test_mariadb_table_the_user_may_not_select_beside_a_good_one(maria_user, index: Index, detector, settings):
    user, database = maria_user
    url = f"mysql+pymysql://{user}:right-pw@127.0.0.1:3306/{database}"
    result = scan([SourceSpec(name="hr", url=url)], index=index, detector=detector, settings=settings)
    (error,) = result.errors
    assert error["container"] == "salaries"
    assert "SELECT command denied" in error["error"] and "right-pw" not in error["error"]
    assert error["error"].endswith("grant the scanning user SELECT on it, or exclude it")
    assert next(c for c in result.containers if c.container == "customers").records == 2
    assert index.findings_for([index.ident("EMAIL_ADDRESS", "dan@x.example")])
    assert {c.name: bool(c.error) for c in index.containers()} == {"customers": False, "salaries": True}


@pytest.mark.servers
def test_wrong_password_gets_password_advice(maria_user, tmp_path: Path) -> None:
    user, database = maria_user
    (tmp_path / "a.csv").write_text(ALMA, encoding="utf-8")
    granted = piiport(tmp_path, "scan", f"mysql+pymysql://{user}:right-pw@127.0.0.1:3306/{database}")
    assert granted.returncode == 1
    (line,) = scan_errors(granted)
    assert "salaries" in line and line.endswith("grant the scanning user SELECT on it, or exclude it")
    assert "right-pw" not in granted.stdout + granted.stderr
    assert "/customers: 2 records, personal data in email" in granted.stdout
    source = piiport(tmp_path, "scan", f"mysql+pymysql://{user}:wrong-pw@127.0.0.1:3306/{database}")
    assert source.returncode == 1
    (line,) = scan_errors(source)
    assert "Access denied for user" in line and "(using password: YES)" in line
    assert line.endswith("check the user and password (in the URL, PGPASSWORD or ~/.pgpass, MYSQL_PWD)")
    assert "grant" not in line and "wrong-pw" not in line

    index_url = f"mysql+pymysql://{user}:wrong-pw@127.0.0.1:3306/{database}"
    proc = subprocess.run(
        [sys.executable, "-m", "piiport.cli", "inventory", "--index", index_url],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "PIIPORT_INDEX_KEY": "0" * 64},
        timeout=120,
    )
    assert proc.returncode == 2
    line = one_error_line(proc)
    assert line.endswith("check the user and password of the index URL (or PGPASSWORD, ~/.pgpass, MYSQL_PWD)")
    assert "check the URL and that" not in line and "wrong-pw" not in line


# -- 13: JSON nested 5,000 levels deep ---------------------------------------------------------------


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_deeply_nested_json_gives_the_limit_and_the_path(tmp_path: Path, index: Index, detector, settings) -> None:
    root = tmp_path / "d"
    root.mkdir()
    (root / "a.csv").write_text(ALMA, encoding="utf-8")
    (root / "deep.json").write_text('{"a": [1, {"b": ' + _deep(5000) + "}]}", encoding="utf-8")
    (root / "deep.jsonl").write_text(
        '{"email": "kept@x.example"}\n{"b": ' + _deep(5000) + "}\n" + '{"c": ' + _deep(700) + "}\n", encoding="utf-8"
    )
    result = scan([SourceSpec(name="d", url=str(root))], index=index, detector=detector, settings=settings)
    limit = f"piiport reads at most {MAX_DEPTH} levels: flatten the data or exclude it"
    assert result.errors == [
        {
            "source": "d",
            "container": "deep.json",
            "error": f"deep.json: JSON nested deeper than 500 levels, at a[1].b[0] (497 times); {limit}",
        }
    ]
    lines = next(c for c in result.containers if c.container == "deep.jsonl")
    assert (lines.records, lines.skipped_records) == (1, 2)
    assert lines.warnings == [
        f"line 2: JSON nested deeper than 500 levels, at b[0] (499 times); {limit}; skipped",
        f"record 3: JSON nested deeper than 500 levels, at c[] (499 times); {limit}; skipped",
    ]
    assert index.findings_for([index.ident("EMAIL_ADDRESS", "kept@x.example")])
    assert index.findings_for([index.ident("EMAIL_ADDRESS", "alma@x.example")])


def test_deeply_nested_json_in_the_cli(tmp_path: Path) -> None:
    (tmp_path / "deep.json").write_text(_deep(5000), encoding="utf-8")
    proc = piiport(tmp_path, "scan", "deep.json")
    assert proc.returncode == 1
    assert scan_errors(proc) == [
        "  deep.json: deep.json: JSON nested deeper than 500 levels, at [0] (500 times); piiport reads at most 500 "
        "levels: flatten the data or exclude it"
    ]


def test_a_server_that_is_down_in_the_cli(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text(ALMA, encoding="utf-8")
    proc = piiport(tmp_path, "scan", "postgresql+psycopg://piiport:s3cr3t@127.0.0.1:1/crm", "a.csv")
    assert proc.returncode == 1
    (line,) = scan_errors(proc)
    assert line.startswith("  crm: source 'crm': ")
    assert line.endswith("check that the server is running and the URL is right") and "s3cr3t" not in proc.stderr
    assert "a.csv: 1 records" in proc.stdout
    assert json.loads(piiport(tmp_path, "inventory", "--format", "json").stdout)  # the good file is indexed


# -- bytes that are not UTF-8 in a text column of a SQLite table -------------------------------------


def test_bytes_in_a_text_column_do_not_fail_the_table(tmp_path: Path, index: Index, detector, workers) -> None:
    """SQLite keeps any value in any column: a BLOB that is not UTF-8 in a personal-data text
    column (a legacy import) used to fail the table's fingerprints, and with them its whole scan
    ("user-defined function raised exception"): none of its people were indexed."""
    db = tmp_path / "crm.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT, note TEXT)")
        conn.executemany(
            "INSERT INTO customers VALUES (?, ?, ?)", [(i, f"c{i}@shop.example", None) for i in range(1, 401)]
        )
        conn.execute("UPDATE customers SET email = ? WHERE id = 12", (b"\xff\xfe\x00legacy",))
        conn.execute("UPDATE customers SET note = ? WHERE id = 7", (b"\x89PNG\xff",))
    spec = SourceSpec(name="crm", url=f"sqlite:///{db}")
    (customers,) = scanned(index, detector, workers, spec).containers
    assert (customers.records, customers.entities) == (400, {"EMAIL_ADDRESS": 399})
    tables, _ = package_tables(index, tmp_path / "out", "c7@shop.example")
    assert [row["id"] for row in tables["customers"]] == [7]
    # A rescan reads again the range where another undecodable value was written, and finds the new address.
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE customers SET email = ? WHERE id = 300", (b"\xfe\xff",))
        conn.execute("UPDATE customers SET email = 'ana.ruiz@example.org' WHERE id = 301")
    (again,) = scanned(index, detector, workers, spec).containers
    assert (again.read, again.ranges_read, again.entities) == ("ranges", 1, {"EMAIL_ADDRESS": 398})
    tables, _ = package_tables(index, tmp_path / "out2", "ana.ruiz@example.org")
    assert [row["id"] for row in tables["customers"]] == [301]
