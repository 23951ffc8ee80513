"""S3 as a source and as the package destination, against a real S3 HTTP endpoint on loopback."""

from __future__ import annotations

import hashlib
import io
import json
import tracemalloc
import urllib.request
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures import write_all_formats
from s3server import FaultProxy, moto_server

from connectors.base import SourceSpec, connect
from connectors.options import S3Options
from discover.index import Index
from discover.inventory import inventory
from discover.scan import scan
from discover.settings import ScanSettings
from export.errors import ExportError
from piiport.api import export_subject
from piiport.config import Config, S3Settings

pytestmark = pytest.mark.s3


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture
def s3(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch):
    """A boto3 client and a fresh bucket; the code under test finds the endpoint through AWS_ENDPOINT_URL."""
    import boto3

    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": s3_endpoint,
    }.items():
        monkeypatch.setenv(key, value)
    client = boto3.client("s3")
    bucket = f"piiport-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    return client, bucket


def _upload_tree(client, bucket: str, root: Path, prefix: str) -> None:
    for path in sorted(root.rglob("*")):
        if path.is_file():
            client.upload_file(str(path), bucket, f"{prefix}/{path.relative_to(root).as_posix()}")


def _inventory(index: Index) -> dict[str, set[tuple[str, str]]]:
    out: dict[str, set[tuple[str, str]]] = {}
    for r in inventory(index):
        out.setdefault(r.container, set()).add((r.field, r.entity_type))
    return out


def test_every_format_scans_like_local_files(s3, tmp_path: Path, detector) -> None:
    client, bucket = s3
    root = tmp_path / "data"
    write_all_formats(root)
    _upload_tree(client, bucket, root, "exports/2026")
    client.put_object(Bucket=bucket, Key="exports/2026/readme.md", Body=b"not a data file")
    local = Index(f"sqlite:///{tmp_path / 'l' / 'i.db'}")
    remote = Index(f"sqlite:///{tmp_path / 'r' / 'i.db'}")
    local_result = scan([SourceSpec(name="s", url=str(root))], index=local, detector=detector)
    result = scan([SourceSpec(name="s", url=f"s3://{bucket}/exports/2026")], index=remote, detector=detector)
    assert result.ok, result.errors
    assert _inventory(remote) == _inventory(local)
    # Same containers as the local tree; readme.md is not a data format.
    assert sorted(c.container for c in result.containers) == sorted(c.container for c in local_result.containers)
    container = next(c for c in remote.containers() if c["name"] == "table.parquet")
    assert container["version"]["bucket"] == bucket and container["version"]["key"] == "exports/2026/table.parquet"
    assert container["version"]["etag"].startswith('"')


def test_include_exclude_globs(s3, tmp_path: Path, index: Index, detector) -> None:
    client, bucket = s3
    root = tmp_path / "data"
    write_all_formats(root)
    _upload_tree(client, bucket, root, "in")
    spec = SourceSpec(name="s", url=f"s3://{bucket}/in/", include=("*.csv", "sub/*"), exclude=("latin1*",))
    result = scan([spec], index=index, detector=detector)
    assert sorted(c.container for c in result.containers) == ["bom.csv", "sub/server.log", "utf8.csv"]


def test_listing_is_paginated(s3, index: Index, detector) -> None:
    client, bucket = s3
    for i in range(1005):  # more than one page of 1000 keys
        client.put_object(Bucket=bucket, Key=f"many/{i:04d}.txt", Body=b"x\n")
    client.put_object(Bucket=bucket, Key="many/zz.txt", Body=b"mail me at pat@example.com\n")
    with connect(SourceSpec(name="s", url=f"s3://{bucket}/many")) as conn:
        names = [r.name for r in conn.containers()]
    assert len(names) == 1006 and names[-1] == "zz.txt"


def test_large_object_streams_with_bounded_memory(s3, tmp_path: Path, index: Index, detector) -> None:
    """Peak memory must not grow with the object: a 25 MB object costs what a 2.5 MB one does.

    (The fixed part, about 12 MB here, is botocore parsing the S3 service model for a new client.)
    """
    client, bucket = s3
    peaks = {}
    for lines in (2_000, 20_000):
        path = tmp_path / f"big{lines}.jsonl"
        with open(path, "w", encoding="utf-8") as fh:
            for i in range(lines):
                fh.write(json.dumps({"id": i, "email": f"user{i}@example.com", "payload": "x" * 1200}) + "\n")
        client.upload_file(str(path), bucket, f"logs{lines}/big.jsonl")  # multipart above 8 MB
        tracemalloc.start()
        try:
            result = scan(
                [SourceSpec(name=f"s{lines}", url=f"s3://{bucket}/logs{lines}")],
                index=index,
                detector=detector,
                settings=ScanSettings(batch_size=500),
            )
            peaks[path.stat().st_size] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert result.ok and result.containers[0].records == lines
    (small, small_peak), (big, big_peak) = sorted(peaks.items())
    print(
        f"peak traced memory: {small / 1e6:.1f} MB object {small_peak / 1e6:.1f} MB, "
        f"{big / 1e6:.1f} MB object {big_peak / 1e6:.1f} MB"
    )
    assert big > 9 * small
    assert big_peak - small_peak < 3_000_000, peaks


def test_export_from_s3_source_and_changed_object(s3, tmp_path: Path, index: Index, detector) -> None:
    client, bucket = s3
    client.put_object(
        Bucket=bucket,
        Key="crm/signups.csv",
        Body=b"email,name\nalice.martin@example.com,Alice Martin\nbob@example.com,Bob Stone\n",
    )
    spec = SourceSpec(name="bucket", url=f"s3://{bucket}/crm")
    scan([spec], index=index, detector=detector)
    cfg = Config(sources=(spec,))
    result = export_subject(config=cfg, index=index, emails=["alice.martin@example.com"], out=tmp_path / "x")
    rows = json.loads((Path(result.package) / "data/bucket/signups.csv.json").read_text())
    assert [r["name"] for r in rows] == ["Alice Martin"]
    loc = rows[0]["_piiport_locator"]
    assert loc["version"]["bucket"] == bucket and loc["version"]["key"] == "crm/signups.csv" and loc["version"]["etag"]
    client.put_object(Bucket=bucket, Key="crm/signups.csv", Body=b"email,name\nbob@example.com,Bob Stone\n")
    changed = export_subject(config=cfg, index=index, emails=["alice.martin@example.com"], out=tmp_path / "x")
    assert changed.errors and "changed since the scan" in changed.errors[0] and not changed.found


@pytest.mark.parametrize("as_zip", [True, False])
def test_package_upload_presigned_download_and_checksums(
    s3, tmp_path: Path, shop_db: Path, index: Index, detector, as_zip: bool
) -> None:
    client, bucket = s3
    scan([SourceSpec(name="shop", url=f"sqlite:///{shop_db}")], index=index, detector=detector)
    result = export_subject(
        config=Config(),
        index=index,
        emails=["alice.martin@example.com"],
        as_zip=as_zip,
        out=f"s3://{bucket}/packages",
        request_id="REQ-7",
        url_expiry=3600,
    )
    suffix = ".zip" if as_zip else ""
    assert result.package == f"s3://{bucket}/packages/REQ-7{suffix}"
    assert result.as_dict()["download_url"].startswith("http://127.0.0.1")
    assert "X-Amz-Expires=3600" in result.download_url
    with urllib.request.urlopen(result.download_url) as resp:  # plain HTTP, no AWS client
        downloaded = resp.read()
    if as_zip:
        with zipfile.ZipFile(io.BytesIO(downloaded)) as zf:
            manifest = json.loads(zf.read("manifest.json"))
            for f in manifest["files"]:
                assert hashlib.sha256(zf.read(f["path"])).hexdigest() == f["sha256"]
        key = "packages/REQ-7.zip"
    else:
        manifest = json.loads(downloaded)
        for f in manifest["files"]:
            body = client.get_object(Bucket=bucket, Key=f"packages/REQ-7/{f['path']}")["Body"].read()
            assert hashlib.sha256(body).hexdigest() == f["sha256"] and len(body) == f["bytes"]
        key = "packages/REQ-7/manifest.json"
    assert manifest["totals"]["records"] == 7
    assert client.head_object(Bucket=bucket, Key=key)["ServerSideEncryption"] == "AES256"
    with pytest.raises(ExportError, match=r"^a package for request id REQ-7 already exists at s3://"):
        export_subject(
            config=Config(),
            index=index,
            emails=["alice.martin@example.com"],
            as_zip=as_zip,
            out=f"s3://{bucket}/packages",
            request_id="REQ-7",
        )


def test_kms_encryption_and_multipart_upload(s3, tmp_path: Path, index: Index, detector) -> None:
    client, bucket = s3
    rows = "\n".join(json.dumps({"email": "big@example.com", "n": i, "blob": "y" * 2000}) for i in range(3500))
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "events.jsonl").write_text(rows + "\n", encoding="utf-8")
    scan([SourceSpec(name="ev", url=str(tmp_path / "src"))], index=index, detector=detector)
    cfg = Config(s3=S3Settings(sse="aws:kms", kms_key_id="alias/piiport", multipart_threshold_mb=5))
    result = export_subject(
        config=cfg, index=index, emails=["big@example.com"], out=f"s3://{bucket}/p", request_id="big"
    )
    head = client.head_object(Bucket=bucket, Key="p/big/data/ev/events.jsonl.json")
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["ETag"].strip('"').endswith("-2")  # a 7 MB file in 5 MB parts
    body = client.get_object(Bucket=bucket, Key="p/big/data/ev/events.jsonl.json")["Body"].read()
    assert hashlib.sha256(body).hexdigest() == result.manifest["files"][0]["sha256"]


def test_missing_bucket_deleted_and_corrupt_objects(s3, index: Index, detector, settings) -> None:
    client, bucket = s3
    for name in ("a.csv", "b.csv", "c.csv"):
        client.put_object(Bucket=bucket, Key=f"d/{name}", Body=f"email\n{name[0]}@example.com\n".encode())
    client.put_object(Bucket=bucket, Key="d/broken.jsonl.gz", Body=b"\x1f\x8b\x08\x00 not gzip at all")
    client.put_object(Bucket=bucket, Key="d/empty.json", Body=b"")

    def progress(event: str, data: dict) -> None:
        if event == "container" and data["container"] == "a.csv":
            client.delete_object(Bucket=bucket, Key="d/b.csv")

    result = scan(
        [
            SourceSpec(name="nobucket", url="s3://no-such-bucket-piiport/x"),
            SourceSpec(name="s", url=f"s3://{bucket}/d"),
        ],
        index=index,
        detector=detector,
        progress=progress,
        settings=settings,
    )
    errors = {(e["source"], e["container"]): e["error"] for e in result.errors}
    assert errors[("nobucket", "")] == (
        "source 'nobucket': bucket no-such-bucket-piiport does not exist; check the URL and region"
    )
    assert errors[("s", "b.csv")] == (f"s3://{bucket}/d/b.csv: the object was deleted after it was listed; scan again")
    assert errors[("s", "broken.jsonl.gz")].startswith("broken.jsonl.gz: corrupt or truncated gzip data")
    assert errors[("s", "empty.json")].startswith("empty.json: not valid JSON")
    assert len(errors) == 4
    assert {c.container: c.records for c in result.containers if not c.error} == {"a.csv": 1, "c.csv": 1}
    # The good objects' findings are in the index, and every failed one is recorded there.
    assert index.findings_for([index.ident("EMAIL_ADDRESS", "c@example.com")])
    stored = {c["name"]: c for c in index.containers()}
    assert {n for n, c in stored.items() if c["error"]} == {"b.csv", "broken.jsonl.gz", "empty.json"}


def test_throttling_and_5xx_are_retried(s3, s3_endpoint: str, index: Index, detector, monkeypatch, settings) -> None:
    client, bucket = s3
    client.put_object(Bucket=bucket, Key="t/people.csv", Body=b"email\nslow@example.com\n")
    with FaultProxy(s3_endpoint, fail=3) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        result = scan([SourceSpec(name="s", url=f"s3://{bucket}/t")], index=index, detector=detector, settings=settings)
        assert proxy.failed == 3
    assert result.ok and result.containers[0].records == 1
    with FaultProxy(s3_endpoint, fail=10_000) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        down = scan(
            [SourceSpec(name="s", url=f"s3://{bucket}/t", options=S3Options(max_attempts=3))],
            index=index,
            detector=detector,
            settings=settings,
        )
    assert down.errors[0]["error"] == "source 's': the store kept answering SlowDown after retries; try again later"


def test_access_denied_at_the_client_boundary(s3, index: Index, detector) -> None:
    from botocore.stub import Stubber

    from connectors.s3 import S3Connector, S3Error

    _, bucket = s3
    connector = S3Connector(SourceSpec(name="s", url=f"s3://{bucket}/secret"))
    with Stubber(connector.client) as stub:
        stub.add_client_error("list_objects_v2", service_error_code="AccessDenied", http_status_code=403)
        with pytest.raises(S3Error, match=r"^source 's': access denied") as err:
            list(connector.containers())
    assert str(err.value) == (
        f"source 's': access denied (AccessDenied); give the credentials s3:ListBucket and s3:GetObject on {bucket}"
    )
    assert err.value.code == "AccessDenied"
