"""Files and S3 objects are sampled and profiled in the task that extracts them, on a worker.

The scanning process only lists them (and checks their versions). What the index answers must
be exactly what the scanning process's own profiling gave (``profile_in_tasks=False``, the path
tables keep), on the local pool and on a Dask LocalCluster; a corrupt file must fail alone, with
the same error, at one worker and at the default count.
"""

from __future__ import annotations

import logging
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fixtures import CUSTOMERS, PEOPLE, exported_packages, local_cluster, shop_and_files, write_all_formats
from s3server import moto_server

from connectors.base import SourceSpec
from connectors.options import S3Options
from discover.detector import Detector
from discover.index import Index
from discover.inventory import inventory
from discover.scan import ScanResult, scan
from discover.settings import ScanSettings, default_workers

distributed = pytest.importorskip("distributed")
pytestmark = pytest.mark.slow

SUBJECTS = [p[1] for p in PEOPLE] + [CUSTOMERS[3][3], "nobody@example.com"]
#: Credentials for moto's server; the endpoint itself reaches workers in the source's options.
AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    """A LocalCluster of 2 worker processes, started with the S3 test credentials in its environment."""
    with pytest.MonkeyPatch.context() as mp:
        for key, value in AWS.items():
            mp.setenv(key, value)
        cluster = local_cluster()
        try:
            yield cluster.scheduler_address
        finally:
            cluster.close()


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with moto_server() as url:
        yield url


def answers(index: Index, out: Path) -> dict[str, Any]:
    """What a user sees: containers, profiles, the inventory (with masked examples), exports."""
    names = {c.id: (c.source, c.name) for c in index.containers()}
    containers = sorted(
        (c.source, c.name, c.records, c.skipped_records, c.skipped_fields, c.warnings, c.error)
        for c in index.containers()
    )
    profiles = sorted(
        (*names[p.container_id], p.field, p.entity_type, p.name_part, p.free_text, p.sampled, p.hit_rate, p.reason)
        for p in index.profiles()
    )
    rows = sorted(
        (r.source, r.container, r.field, r.entity_type, r.origin, r.records, r.non_null, r.prevalence, r.examples)
        for r in inventory(index)
    )
    packages = exported_packages(index, SUBJECTS, out)
    return {"containers": containers, "profiles": profiles, "inventory": rows, "packages": packages}


def scan_answers(
    tmp_path: Path, name: str, sources: list[SourceSpec], detector: Detector, settings: ScanSettings
) -> tuple[ScanResult, dict[str, Any]]:
    index = Index(f"sqlite:///{tmp_path / name / 'index.db'}", key=b"p" * 32)
    try:
        result = scan(sources, index=index, detector=detector, settings=settings)
        return result, answers(index, tmp_path / name / "exports")
    finally:
        index.close()


def profiled_in(caplog: pytest.LogCaptureFixture) -> dict[str, int]:
    """Per container, the process that drew its sample, as the scan logs it at debug level."""
    found = {}
    for record in caplog.records:
        m = re.fullmatch(r"(.+?)/(.+): profiled in process (\d+)", record.getMessage())
        if m:
            found[f"{m[1]}/{m[2]}"] = int(m[3])
    return found


def test_files_profiled_in_tasks_answer_as_the_scanning_process_profiling_them(
    tmp_path: Path, detector: Detector, scheduler: str, caplog: pytest.LogCaptureFixture
) -> None:
    sources = shop_and_files(tmp_path)  # the shop's tables keep their profile in the scanning process
    files = [c for c in sources if c.name == "files"]
    _, expected = scan_answers(
        tmp_path, "driver", sources, detector, ScanSettings(workers=1, unit_rows=50, profile_in_tasks=False)
    )
    assert any(p[0] == "files" and p[5] for p in expected["profiles"])  # free text, sampled with NER
    assert ("files", "utf8.csv", "full_name", "PERSON", "full") in {p[:5] for p in expected["profiles"]}
    assert expected["packages"][PEOPLE[0][1]][0] is True

    runs = {
        "in process": ScanSettings(workers=1, unit_rows=50),
        "local pool": ScanSettings(workers=2, unit_rows=50),
        "dask": ScanSettings(workers=2, unit_rows=50, executor="dask", scheduler=scheduler),
    }
    for label, settings in runs.items():
        caplog.clear()
        with caplog.at_level(logging.DEBUG, logger="discover.scan"):
            result, got = scan_answers(tmp_path, label.replace(" ", "-"), sources, detector, settings)
        assert result.ok, result.errors
        assert got == expected, label
        where = profiled_in(caplog)
        file_names = {c.container for c in result.containers if c.source == "files"}
        assert {k.split("/", 1)[1] for k in where if k.startswith("files/")} == file_names
        tables = {k: pid for k, pid in where.items() if k.startswith("shop/")}
        assert tables and set(tables.values()) == {os.getpid()}, label  # a table: here, before its units
        file_pids = {pid for k, pid in where.items() if k.startswith("files/")}
        if label == "in process":
            assert file_pids == {os.getpid()}
        else:
            assert os.getpid() not in file_pids, label  # every file sampled by a worker process

    # Profiling in tasks switched off: the files are sampled here, as before.
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="discover.scan"):
        _, again = scan_answers(
            tmp_path, "driver-2", files, detector, ScanSettings(workers=2, unit_rows=50, profile_in_tasks=False)
        )
    assert set(profiled_in(caplog).values()) == {os.getpid()}
    assert again["profiles"] == [p for p in expected["profiles"] if p[0] == "files"]


def test_s3_objects_profiled_in_tasks_answer_as_the_scanning_process_profiling_them(
    tmp_path: Path, detector: Detector, scheduler: str, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    for key, value in {**AWS, "AWS_ENDPOINT_URL": s3_endpoint}.items():
        monkeypatch.setenv(key, value)  # this process's reads (export); workers get the endpoint below
    client = boto3.client("s3")
    bucket = f"piiport-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    root = tmp_path / "data"
    write_all_formats(root)
    for path in sorted(root.rglob("*")):
        if path.is_file():
            client.upload_file(str(path), bucket, f"in/{path.relative_to(root).as_posix()}")
    sources = [SourceSpec(name="s3", url=f"s3://{bucket}/in/", options=S3Options(endpoint_url=s3_endpoint))]

    _, expected = scan_answers(tmp_path, "driver", sources, detector, ScanSettings(workers=1, profile_in_tasks=False))
    assert len(expected["containers"]) == 16 and expected["packages"][PEOPLE[1][1]][0] is True
    for label, settings in {
        "local pool": ScanSettings(workers=2),
        "dask": ScanSettings(workers=2, executor="dask", scheduler=scheduler),
    }.items():
        result, got = scan_answers(tmp_path, label.replace(" ", "-"), sources, detector, settings)
        assert result.ok, result.errors
        assert got == expected, label


@pytest.fixture(params=["1", "default", "dask"], ids=lambda w: f"workers={w}")
def fault_settings(request: pytest.FixtureRequest, scheduler: str) -> ScanSettings:
    """One worker, the default count the CLI uses (one per core), and Dask (a failed task is retried)."""
    if request.param == "dask":
        return ScanSettings(workers=2, executor="dask", scheduler=scheduler)
    return ScanSettings(workers=1 if request.param == "1" else default_workers())


def test_a_corrupt_file_among_good_ones_fails_alone_with_the_same_error(
    tmp_path: Path, detector: Detector, fault_settings: ScanSettings
) -> None:
    root = tmp_path / "d"
    write_all_formats(root)
    (root / "b_empty.json").write_text("", encoding="utf-8")  # fails when sampled
    (root / "m_truncated.json").write_text('[{"email": "z@x.example"}, {"email": ', encoding="utf-8")
    (root / "n.txt").write_bytes(b"\x00binary")
    sources = [SourceSpec(name="d", url=str(root))]
    before, expected = scan_answers(
        tmp_path, "driver", sources, detector, ScanSettings(workers=1, profile_in_tasks=False)
    )
    errors = {e["container"]: e["error"] for e in before.errors}
    assert set(errors) == {"b_empty.json", "m_truncated.json", "n.txt"}
    result, got = scan_answers(tmp_path, "tasks", sources, detector, fault_settings)
    assert {e["container"]: e["error"] for e in result.errors} == errors
    assert got == expected  # the good files are all there, and each error is in the index


def test_a_rescan_submits_only_the_changed_files_and_reports_every_container_in_order(
    tmp_path: Path, detector: Detector, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "d"
    write_all_formats(root)
    spec = SourceSpec(name="d", url=str(root))
    index = Index(f"sqlite:///{tmp_path / 'idx' / 'index.db'}", key=b"p" * 32)
    try:
        first = scan([spec], index=index, detector=detector, settings=ScanSettings(workers=2))
        assert first.ok
        (root / "utf8.csv").write_text("email\nnew.person@example.com\n", encoding="utf-8")
        events: list[str] = []

        def progress(event: str, data: dict[str, Any]) -> None:
            if event == "container":
                events.append(str(data["container"]))

        caplog.clear()
        with caplog.at_level(logging.DEBUG, logger="discover.scan"):
            again = scan([spec], index=index, detector=detector, settings=ScanSettings(workers=2), progress=progress)
        assert again.ok
        assert events == [c.container for c in first.containers]  # listing order, every container
        assert {c.container: c.read for c in again.containers if c.read != "unchanged"} == {"utf8.csv": "full"}
        assert list(profiled_in(caplog)) == ["d/utf8.csv"]  # the unchanged files were never sampled
        assert index.findings_for([index.ident("EMAIL_ADDRESS", "new.person@example.com")])
    finally:
        index.close()
