"""Scans on a Dask cluster: a LocalCluster of 2 worker processes on loopback, shared by the module.

The Dask scan must answer exactly as the local pool: same inventory, same export packages.
Units that kill their worker or fail with a connection error must still complete (retries).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fixtures import CUSTOMERS, EMPLOYEES, exported_packages, local_cluster, make_shop, shop_and_files

from connectors.base import SourceSpec
from connectors.options import SourceOptions
from discover.index import Index
from discover.inventory import inventory
from discover.scan import scan
from discover.settings import ScanSettings
from piiport.cli import main

distributed = pytest.importorskip("distributed")
pytestmark = pytest.mark.slow

SUBJECTS = [c[3] for c in CUSTOMERS] + [e[3] for e in EMPLOYEES] + ["nobody@example.com"]


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    import cloudpickle

    # The fault-injecting unit functions below run on the workers: ship them by value.
    cloudpickle.register_pickle_by_value(__import__(__name__))
    cluster = local_cluster()
    try:
        yield cluster.scheduler_address
    finally:
        cluster.close()
        cloudpickle.unregister_pickle_by_value(__import__(__name__))


def _answers(index: Index, out: Path) -> dict[str, Any]:
    """What a user sees: the inventory rows, and each subject's exported records."""
    rows = sorted(
        (r.source, r.container, r.field, r.entity_type, r.origin, r.records, r.non_null) for r in inventory(index)
    )
    return {"inventory": rows, "packages": exported_packages(index, SUBJECTS, out)}


def _scan(
    tmp_path: Path, name: str, sources: list[SourceSpec], detector, settings: ScanSettings, index_url: str | None = None
) -> dict[str, Any]:
    index = Index(index_url or f"sqlite:///{tmp_path / name / 'index.db'}", key=b"k" * 32)
    try:
        # A small unit size, so that a table is several units (tasks) on each executor.
        result = scan(sources, index=index, detector=detector, settings=settings)
        assert result.ok, result.errors
        assert result.totals()["findings"] > 0
        return _answers(index, tmp_path / name / "exports")
    finally:
        index.close()


def test_a_dask_scan_answers_exactly_as_a_local_scan(tmp_path: Path, detector, scheduler: str) -> None:
    sources = shop_and_files(tmp_path)
    local = _scan(tmp_path, "local", sources, detector, ScanSettings(workers=2, unit_rows=50))
    on_dask = _scan(
        tmp_path, "dask", sources, detector, ScanSettings(workers=2, unit_rows=50, executor="dask", scheduler=scheduler)
    )
    assert on_dask["inventory"] == local["inventory"]
    assert on_dask["packages"] == local["packages"]
    alice = on_dask["packages"]["alice.martin@example.com"]
    assert alice[0] is True and alice[1] > 0


def _test_dir(task: Any) -> Path:
    """The test's tmp_path: where its sources are (shop.db and files/ lie in it)."""
    return Path(task.spec.url.removeprefix("sqlite:///")).parent


def _one_at_a_time(task: Any) -> Any:
    """A unit that notes when another unit of its source runs at the same moment."""
    import time

    from discover.scan import run_unit

    folder = _test_dir(task)
    try:
        fd = os.open(folder / "running", os.O_CREAT | os.O_EXCL)
    except FileExistsError:
        (folder / "overlapped").touch()
        return run_unit(task)
    try:
        time.sleep(0.3)  # long enough that an uncapped second worker starts a unit meanwhile
        return run_unit(task)
    finally:
        os.close(fd)
        os.unlink(folder / "running")


@pytest.mark.parametrize("cap", [1, None])
def test_max_concurrency_caps_the_units_of_a_source_that_run_at_once(
    tmp_path: Path, detector, scheduler: str, monkeypatch: pytest.MonkeyPatch, cap: int | None
) -> None:
    sources = [s for s in shop_and_files(tmp_path) if s.name == "shop"]
    expected = _scan(tmp_path, "local", sources, detector, ScanSettings(workers=1))
    capped = [SourceSpec(name=s.name, url=s.url, options=SourceOptions(max_concurrency=cap)) for s in sources]
    monkeypatch.setattr(sys.modules["discover.scan"], "run_unit", _one_at_a_time)
    got = _scan(
        tmp_path, "dask", capped, detector, ScanSettings(workers=2, unit_rows=50, executor="dask", scheduler=scheduler)
    )
    assert got == expected
    assert (tmp_path / "overlapped").exists() is (cap is None)


def _dies_once(task: Any) -> Any:
    """A unit that kills its worker process on its first attempt (for one file)."""
    from discover.scan import run_unit

    marker = _test_dir(task) / "marker"
    if task.ref.name == "utf8.csv" and not marker.exists():
        marker.write_text("died")
        os._exit(1)
    return run_unit(task)


def _fails_twice(task: Any) -> Any:
    """A unit whose first two attempts lose their database connection."""
    from discover.scan import run_unit

    marker = _test_dir(task) / "marker"
    if task.ref.name == "customers":
        attempts = int(marker.read_text()) if marker.exists() else 0
        if attempts < 2:
            marker.write_text(str(attempts + 1))
            raise ConnectionError("connection reset by peer")
    return run_unit(task)


@pytest.mark.parametrize(("unit", "source"), [(_dies_once, "files"), (_fails_twice, "shop")])
def test_a_unit_that_fails_is_retried_and_the_scan_completes(
    tmp_path: Path, detector, scheduler: str, monkeypatch: pytest.MonkeyPatch, unit: Any, source: str
) -> None:
    marker = tmp_path / "marker"
    sources = [s for s in shop_and_files(tmp_path) if s.name == source]
    expected = _scan(tmp_path, "local", sources, detector, ScanSettings(workers=1))
    monkeypatch.setattr(sys.modules["discover.scan"], "run_unit", unit)  # what the runner submits as the task
    got = _scan(tmp_path, "dask", sources, detector, ScanSettings(workers=2, executor="dask", scheduler=scheduler))
    assert marker.exists()  # the fault happened
    assert got == expected


@pytest.mark.parametrize(
    ("config", "args", "message"),
    [
        ("executor: spark\n", [], "executor 'spark' is not one of: local, dask"),
        ("scheduler: tcp://127.0.0.1:1\n", [], "a scheduler address needs executor dask"),
        ("executor: dask\nscheduler: 127.0.0.1:8786\n", [], "is not an address such as tcp://host:8786"),
        ("sources:\n  - url: x.db\n    max_concurrency: 0\n", [], "max_concurrency must be a whole number"),
        ("", ["--executor", "dask", "--scheduler", "nope"], "is not an address such as tcp://host:8786"),
    ],
)
def test_a_bad_executor_setting_is_one_line_and_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, config: str, args: list[str], message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "piiport.yaml").write_text(config)
    result = CliRunner().invoke(main, ["scan", "--config", "piiport.yaml", *args, str(tmp_path)])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.output


def test_a_scan_with_no_unit_to_run_stops_the_cluster_it_started(tmp_path: Path, detector) -> None:
    """The LocalCluster starts beside listing; a scan that lists nothing must not leave it running."""
    import multiprocessing

    before = {p.pid for p in multiprocessing.active_children()}
    (tmp_path / "empty").mkdir()
    index = Index(f"sqlite:///{tmp_path / 'index.db'}")
    try:
        result = scan(
            [SourceSpec(name="empty", url=str(tmp_path / "empty"))],
            index=index,
            detector=detector,
            settings=ScanSettings(workers=2, executor="dask"),
        )
    finally:
        index.close()
    assert result.ok and result.totals()["findings"] == 0
    assert {p.pid for p in multiprocessing.active_children()} <= before


def test_a_scheduler_that_does_not_answer_is_one_line_and_exit_2(tmp_path: Path, monkeypatch) -> None:
    """The cluster is dialled in a thread; its failure still reaches the user as one line, exit 2."""
    import socket

    monkeypatch.chdir(tmp_path)
    make_shop(tmp_path / "shop.db")
    with socket.socket() as free:  # a port nobody listens on
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    result = CliRunner().invoke(
        main,
        ["scan", "--executor", "dask", "--scheduler", f"tcp://127.0.0.1:{port}", f"sqlite:///{tmp_path / 'shop.db'}"],
    )
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and f"cannot start Dask on tcp://127.0.0.1:{port}" in lines[0], result.output


def test_a_dask_scan_with_direct_writes_answers_as_a_driver_written_index(
    tmp_path: Path, detector, scheduler: str
) -> None:
    """Dask workers write their units into a PostgreSQL index themselves (on by default there)."""
    from servers import postgres_database

    sources = shop_and_files(tmp_path)
    local = _scan(tmp_path, "local", sources, detector, ScanSettings(workers=2, unit_rows=50))
    with postgres_database(prefix="directwrites") as url:
        settings = ScanSettings(workers=2, unit_rows=50, executor="dask", scheduler=scheduler)
        on_dask = _scan(tmp_path, "dask", sources, detector, settings, index_url=url)
        from sqlalchemy import create_engine, text

        engine = create_engine(url)
        with engine.connect() as conn:
            written_by_units = conn.execute(text("SELECT count(*) FROM parts WHERE unit_no IS NOT NULL")).scalar()
        engine.dispose()
    assert written_by_units
    assert on_dask["inventory"] == local["inventory"]
    assert on_dask["packages"] == local["packages"]
