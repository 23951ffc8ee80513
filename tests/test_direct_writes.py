"""Workers writing a PostgreSQL index directly (``discover.index_direct``).

A direct-write scan must answer exactly as a scan whose findings the scanning process writes;
a retried unit must not double its findings; a scan killed in the middle of a container must
leave the index answering as before it started.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fixtures import CUSTOMERS, EMPLOYEES, exported_packages, shop_and_files
from servers import postgres_database

from connectors.base import SourceSpec
from connectors.errors import ConfigError
from discover.detector import Detector
from discover.index import Index
from discover.inventory import inventory
from discover.scan import run_unit, scan
from discover.settings import ScanSettings

KEY = b"d" * 32
SUBJECTS = [c[3] for c in CUSTOMERS] + [e[3] for e in EMPLOYEES] + ["nobody@example.com"]


@pytest.fixture
def pg_index() -> Iterator[Callable[[], str]]:
    """Fresh PostgreSQL databases for indexes, dropped after the test."""
    with contextlib.ExitStack() as stack:
        yield lambda: stack.enter_context(postgres_database(prefix="directwrites"))


def answers(index: Index, out: Path) -> dict[str, Any]:
    """What a user sees: the inventory, each finding, and each subject's exported records."""
    names = {c.id: (c.source, c.name, c.records, c.error) for c in index.containers()}
    findings = sorted(
        (names[f.container_id][:2], f.record_key, f.field, f.entity_type, f.ident, f.origin)
        for f in index.iter_findings()
    )
    rows = sorted(
        (r.source, r.container, r.field, r.entity_type, r.origin, r.records, r.non_null) for r in inventory(index)
    )
    packages = exported_packages(index, SUBJECTS, out)
    return {
        "containers": sorted(names.values()),
        "inventory": rows,
        "findings": findings,
        "count": index.count_findings(),
        "packages": packages,
    }


def scan_into(url: str, sources: list[SourceSpec], detector: Detector, settings: ScanSettings, out: Path) -> Any:
    index = Index(url, key=KEY)
    try:
        result = scan(sources, index=index, detector=detector, settings=settings)
        assert result.ok, result.errors
        assert result.totals()["findings"] > 0
        return answers(index, out)
    finally:
        index.close()


def unit_parts(url: str) -> int:
    """Parts the index holds that a worker wrote (tagged with their unit)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM parts WHERE unit_no IS NOT NULL")).scalar() or 0)
    finally:
        engine.dispose()


def test_a_direct_write_scan_answers_exactly_as_a_driver_written_one(
    tmp_path: Path, detector: Detector, workers: int, pg_index: Callable[[], str]
) -> None:
    sources = shop_and_files(tmp_path)
    driver_url, direct_url = pg_index(), pg_index()
    by_driver = scan_into(
        driver_url, sources, detector, ScanSettings(workers=workers, unit_rows=50, direct_writes=False), tmp_path / "a"
    )
    direct = scan_into(direct_url, sources, detector, ScanSettings(workers=workers, unit_rows=50), tmp_path / "b")
    assert unit_parts(driver_url) == 0
    assert unit_parts(direct_url) > 0  # on by default for a PostgreSQL index
    assert direct == by_driver
    alice = direct["packages"]["alice.martin@example.com"]
    assert alice[0] is True and alice[1] > 0
    # A second scan replaces the first generation: nothing doubles.
    again = scan_into(direct_url, sources, detector, ScanSettings(workers=workers, unit_rows=50), tmp_path / "c")
    assert again == by_driver


def _twice(task: Any, sink: Any = None, on_batch: Any = None) -> Any:
    """A unit run twice, as a retry after a lost worker does: the second run's result is kept."""
    run_unit(task, sink, on_batch)
    return run_unit(task, sink, on_batch)


def test_a_retried_unit_does_not_double_its_findings(
    tmp_path: Path, detector: Detector, workers: int, pg_index: Callable[[], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sources = shop_and_files(tmp_path)
    expected = scan_into(
        pg_index(), sources, detector, ScanSettings(workers=workers, unit_rows=50, direct_writes=False), tmp_path / "a"
    )
    monkeypatch.setattr(sys.modules["discover.scan"], "run_unit", _twice)  # what the runner calls or submits
    got = scan_into(pg_index(), sources, detector, ScanSettings(workers=workers, unit_rows=50), tmp_path / "b")
    assert got["count"] == expected["count"]
    assert got == expected


def test_direct_writes_on_an_sqlite_index_are_refused(tmp_path: Path, detector: Detector) -> None:
    index = Index(f"sqlite:///{tmp_path / 'idx' / 'index.db'}", key=KEY)
    with pytest.raises(ConfigError, match="direct writes need a PostgreSQL index"):
        scan(shop_and_files(tmp_path)[:1], index=index, detector=detector, settings=ScanSettings(direct_writes=True))
    assert index.runs()[-1].status == "interrupted"
    index.close()


KILLED_SCAN = """
import sys
from connectors.base import SourceSpec
from discover.index import Index
from discover.scan import scan
from discover.settings import ScanSettings

index = Index(sys.argv[1], key=b"d" * 32)
scan([SourceSpec(name="crm", url=sys.argv[2])], index=index, settings=ScanSettings(workers=2, unit_rows=100))
"""


def _people(db: Path, domain: str) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TABLE IF EXISTS people")
        conn.execute("CREATE TABLE people (id INTEGER PRIMARY KEY, email TEXT)")
        conn.executemany("INSERT INTO people VALUES (?, ?)", [(i, f"user{i}@{domain}") for i in range(1, 30_001)])


def _index_answers(index: Index) -> dict[str, Any]:
    names = {c.id: (c.source, c.name, c.records, c.error, c.stale) for c in index.containers()}
    return {
        "containers": sorted(names.values()),
        "inventory": sorted((r.container, r.field, r.entity_type, r.records, r.non_null) for r in inventory(index)),
        "count": index.count_findings(),
        "old": [len(index.findings_for([index.ident("EMAIL_ADDRESS", f"user{i}@old.example")])) for i in (1, 9999)],
        "new": [len(index.findings_for([index.ident("EMAIL_ADDRESS", f"user{i}@new.example")])) for i in (1, 9999)],
    }


def test_the_direct_write_path_leaves_the_old_generation_visible_after_a_killed_scan(
    tmp_path: Path, detector: Detector, pg_index: Callable[[], str]
) -> None:
    from sqlalchemy import text

    db = tmp_path / "crm.db"
    _people(db, "old.example")
    url = pg_index()
    index = Index(url, key=KEY)
    spec = SourceSpec(name="crm", url=f"sqlite:///{db}")
    assert scan([spec], index=index, detector=detector, settings=ScanSettings(workers=2, unit_rows=5_000)).ok
    before = _index_answers(index)
    assert before["old"] == [1, 1] and before["new"] == [0, 0]
    _people(db, "new.example")

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_SCAN, url, spec.url], env=env, cwd=tmp_path, start_new_session=True
    )
    pending = text(
        "SELECT count(*) FROM parts p JOIN containers c ON c.id = p.container_id WHERE p.generation <> c.generation"
    )
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            with index.engine.connect() as conn:
                if conn.execute(pending).scalar():
                    break  # units of the new generation are in the index; the container is not committed
            time.sleep(0.05)
        assert proc.poll() is None, "the scan ended before any unit of the new generation was written"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the scan and its workers, mid-container
        proc.wait()
    time.sleep(0.5)  # the server ends the killed processes' sessions
    assert _index_answers(index) == before

    # The next scan completes: the new generation only, the killed scan's parts gone.
    result = scan([spec], index=index, detector=detector, settings=ScanSettings(workers=2, unit_rows=5_000))
    assert result.ok, result.errors
    after = _index_answers(index)
    assert after["old"] == [0, 0] and after["new"] == [1, 1]
    assert after["count"] == before["count"]
    with index.engine.connect() as conn:
        assert conn.execute(pending).scalar() == 0
        gens = conn.execute(text("SELECT count(DISTINCT generation) FROM parts")).scalar()
    assert gens == 1
    index.close()


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("direct_writes: true\n", "direct writes need a PostgreSQL index"),
        ("direct_writes: sometimes\n", "direct_writes must be true or false"),
    ],
)
def test_a_bad_direct_writes_setting_is_one_line_and_exit_2(
    tmp_path: Path, runner: Any, shop_db: Path, config: str, message: str
) -> None:
    from piiport.cli import main

    (tmp_path / "piiport.yaml").write_text(config)
    result = runner.invoke(main, ["scan", "--config", "piiport.yaml", f"sqlite:///{shop_db}"])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.output


def _written_then_lost(task: Any, sink: Any = None, on_batch: Any = None) -> Any:
    """A unit of ``customers`` whose parts reach the index, and whose worker then reports a failure."""
    result = run_unit(task, sink, on_batch)
    if task.ref.name == "customers":
        raise ConnectionError("connection reset by peer")
    return result


def test_a_failed_container_keeps_its_previous_generation_and_drops_the_new_one(
    tmp_path: Path, detector: Detector, workers: int, pg_index: Callable[[], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy import text

    sources = shop_and_files(tmp_path)[:1]
    index = Index(pg_index(), key=KEY)
    settings = ScanSettings(workers=workers, unit_rows=50)
    assert scan(sources, index=index, detector=detector, settings=settings).ok
    alice = index.ident("EMAIL_ADDRESS", "alice.martin@example.com")
    before = sorted((f.container_id, f.record_key, f.field) for f in index.findings_for([alice]))
    monkeypatch.setattr(sys.modules["discover.scan"], "run_unit", _written_then_lost)
    result = scan(sources, index=index, detector=detector, settings=replace(settings, full=True))
    assert [e["container"] for e in result.errors] == ["customers"]
    assert "ConnectionError: connection reset by peer" in result.errors[0]["error"]
    assert sorted((f.container_id, f.record_key, f.field) for f in index.findings_for([alice])) == before
    customers = next(c for c in index.containers() if c.name == "customers")
    assert customers.stale is True
    with index.engine.connect() as conn:  # what its units wrote is gone; its previous generation stays
        generations = conn.execute(
            text("SELECT DISTINCT generation FROM parts WHERE container_id = :c"), {"c": customers.id}
        ).all()
    assert generations == [(customers.generation,)]
    index.close()
