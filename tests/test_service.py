"""`piiport serve` end to end: a real uvicorn server on a free loopback port, a real HTTP client.

One server serves most tests of this module; the crash and restart tests run their own, on
their own index, and kill them with SIGKILL.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import schemathesis
from fixtures import make_shop
from hypothesis import HealthCheck, given, settings
from services import service_missing

from discover.index import Index
from piiport.api import scan_sources
from piiport.config import Config
from piiport.service.audit import AuditLog
from piiport.service.jobs import JobStore
from piiport.service.store import Store, store_url
from piiport.service.tokens import SCOPES, TokenStore

ALICE = "alice.martin@example.com"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    root: Path
    index_url: str
    port: int
    log: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, workers: int = 1, *args: str, env: dict[str, str] | None = None) -> None:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "piiport.cli",
                    "serve",
                    "--index",
                    self.index_url,
                    "--port",
                    str(self.port),
                    "--workers",
                    str(workers),
                    *args,
                ],
                cwd=self.root,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={k: v for k, v in os.environ.items() if not k.startswith("PIIPORT_")} | (env or {}),
            )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"server did not become ready:\n{self.log.read_text()}")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


def _scanned(root: Path, detector, shop: Path) -> str:
    index_url = f"sqlite:///{root / '.piiport' / 'index.db'}"
    result = scan_sources([f"sqlite:///{shop}"], config=Config(index=index_url), detector=detector)
    assert result.ok
    return index_url


def _tokens(index_url: str) -> dict[str, str]:
    with Store(store_url(index_url)) as store:
        tokens = TokenStore(store, AuditLog(store))
        return {
            "rw": tokens.create("ticketing", ("requests:write", "requests:read"), actor="os:test"),
            "read": tokens.create("viewer", ("requests:read", "inventory:read"), actor="os:test"),
            "audit": tokens.create("dpo", ("audit:read",), actor="os:test"),
            "all": tokens.create("robot", SCOPES, actor="os:test"),
        }


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, detector) -> Iterator[tuple[Server, dict[str, str]]]:
    root = tmp_path_factory.mktemp("served")
    index_url = _scanned(root, detector, make_shop(root / "shop.db"))
    tokens = _tokens(index_url)
    server = Server(root, index_url, _free_port(), root / "server.log")
    server.start(workers=2)
    yield server, tokens
    server.stop()


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _wait(
    client: httpx.Client, job_id: str, token: str, *, until: tuple[str, ...] = ("done",), timeout: float = 90
) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        doc = client.get(f"/v1/requests/{job_id}", headers=_auth(token)).json()
        if doc["status"] in until or doc["status"] in ("failed", "refused", "incomplete", "done", "expired"):
            return doc
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} still {doc['status']}")


def test_the_whole_flow_post_poll_download_verify(served) -> None:
    server, tokens = served
    with httpx.Client(base_url=server.url, timeout=30) as client:
        posted = client.post(
            "/v1/requests",
            json={"identifiers": {"email": [ALICE]}, "format": "csv", "request_id": "FLOW-1"},
            headers=_auth(tokens["rw"]),
        )
        assert posted.status_code == 202, posted.text
        job = posted.json()
        assert job["status"] in ("queued", "running") and job["request_id"] == "FLOW-1"
        assert job["identifiers"] == [{"type": "EMAIL_ADDRESS", "masked": "a***@e***.com"}]
        assert job["links"] == {"self": f"/v1/requests/{job['id']}", "package": f"/v1/requests/{job['id']}/package"}
        assert ALICE not in posted.text

        done = _wait(client, job["id"], tokens["rw"])
        assert done["status"] == "done", done
        assert done["manifest"]["found"] is True and done["manifest"]["errors"] == []
        assert done["manifest"]["files"] >= 3 and done["manifest"]["records"] >= 6
        assert done["attempts"] == 1 and done["started_at"] and done["finished_at"]

        package = client.get(job["links"]["package"], headers=_auth(tokens["rw"]))
        assert package.status_code == 200 and package.headers["content-type"] == "application/zip"
        assert hashlib.sha256(package.content).hexdigest() == done["package_sha256"]
        with zipfile.ZipFile(io.BytesIO(package.content)) as zf:
            manifest = json.loads(zf.read("manifest.json"))
            assert manifest["request_id"] == "FLOW-1" and manifest["format"] == "csv"
            for f in manifest["files"]:
                assert hashlib.sha256(zf.read(f["path"])).hexdigest() == f["sha256"]
            customers = next(f for f in manifest["files"] if f["container"] == "customers")
            rows = zf.read(customers["path"]).decode().splitlines()
        assert len(rows) == 2 and ALICE in rows[1]

        audit = client.get("/v1/audit", headers=_auth(tokens["audit"])).json()["entries"]
        mine = [(e["action"], e["outcome"], e["actor"]) for e in audit if e["request_id"] == "FLOW-1"]
        assert mine == [
            ("export.started", "started", "token:ticketing"),
            ("export", "done", "token:ticketing"),
            ("package.download", "ok", "token:ticketing"),
        ]
        assert ALICE not in json.dumps(audit)
    assert ALICE not in server.log.read_text()
    store = server.root / ".piiport" / "service.db"
    stored = b"".join(p.read_bytes() for p in store.parent.glob("service.db*"))
    assert oct(store.stat().st_mode & 0o777) == "0o600" and b"alice.martin" not in stored.lower()


def test_missing_unknown_revoked_token_401_wrong_scope_403(served) -> None:
    server, tokens = served
    body = {"identifiers": {"email": [ALICE]}}
    with httpx.Client(base_url=server.url, timeout=30) as client:
        missing = client.post("/v1/requests", json=body)
        assert missing.status_code == 401 and missing.json()["error"]["code"] == "unauthorized"
        assert missing.headers["www-authenticate"] == "Bearer"
        unknown = client.get("/v1/requests", headers=_auth("ppt_" + "x" * 43))
        assert unknown.status_code == 401 and unknown.json()["error"]["message"] == "unknown or revoked token"
        wrong = client.post("/v1/requests", json=body, headers=_auth(tokens["read"]))
        assert wrong.status_code == 403
        assert wrong.json() == {
            "error": {"code": "forbidden", "message": "token 'viewer' lacks the scope requests:write", "field": None}
        }
        assert client.get("/v1/audit", headers=_auth(tokens["rw"])).status_code == 403
        with Store(store_url(server.index_url)) as store:
            tokens_store = TokenStore(store, AuditLog(store))
            temp = tokens_store.create("temp", ("requests:read",), actor="os:test")
            assert client.get("/v1/requests", headers=_auth(temp)).status_code == 200
            tokens_store.revoke("temp", actor="os:test")
        assert client.get("/v1/requests", headers=_auth(temp)).status_code == 401
    assert tokens["rw"] not in server.log.read_text()


def test_idempotent_by_request_id_200_same_job_409_other_body(served) -> None:
    server, tokens = served
    body = {"identifiers": {"phone": ["+33 6 12 34 56 78"]}, "request_id": "IDEM-1"}
    with httpx.Client(base_url=server.url, timeout=30, headers=_auth(tokens["rw"])) as client:
        first = client.post("/v1/requests", json=body)
        assert first.status_code == 202
        same = client.post("/v1/requests", json={**body, "identifiers": {"phone": ["+33612345678"]}})
        assert same.status_code == 200 and same.json()["id"] == first.json()["id"]
        other = client.post("/v1/requests", json={**body, "format": "parquet"})
        assert other.status_code == 409
        assert other.json()["error"]["field"] == "request_id" and first.json()["id"] in other.json()["error"]["message"]
        assert _wait(client, first.json()["id"], tokens["rw"])["status"] == "done"
        listed = client.get("/v1/requests", params={"limit": 200}).json()["items"]
        assert [j["request_id"] for j in listed].count("IDEM-1") == 1


def test_413_over_64_kb_422_over_20_identifiers_and_no_echo(served) -> None:
    server, tokens = served
    with httpx.Client(base_url=server.url, timeout=30, headers=_auth(tokens["rw"])) as client:
        big = client.post("/v1/requests", json={"identifiers": {"name": ["x" * 70_000]}})
        assert big.status_code == 413 and big.json()["error"]["code"] == "too_large"

        def chunks() -> Iterator[bytes]:
            yield b'{"identifiers": {"name": ["'
            for _ in range(70):
                yield b"y" * 1024
            yield b'"]}}'

        chunked = client.post("/v1/requests", content=chunks(), headers={"content-type": "application/json"})
        assert chunked.status_code == 413

        emails = [f"person{i}@example.com" for i in range(21)]
        many = client.post(
            "/v1/requests", json={"identifiers": {"email": emails[:11], "ip": [f"10.0.0.{i}" for i in range(10)]}}
        )
        assert many.status_code == 422
        assert many.json()["error"] == {
            "code": "too_many",
            "message": "21 identifiers; at most 20 per request",
            "field": "identifiers",
        }
        bad = client.post("/v1/requests", json={"identifiers": {"email": ["jeanne.secret@nowhere"]}})
        assert bad.status_code == 422 and bad.json()["error"]["field"] == "identifiers.email"
        assert "jeanne.secret" not in bad.text and "j***@n***" in bad.text
        unknown = client.post("/v1/requests", json={"identifiers": {"email": [ALICE]}, "formt": "csv"})
        assert unknown.status_code == 422 and unknown.json()["error"]["field"] == "formt"
        assert client.post("/v1/requests", json={"identifiers": {}}).json()["error"]["field"] == "identifiers"
        assert client.get("/v1/requests", params={"status": "bogus"}).status_code == 422
        reserved = client.post("/v1/requests", json={"identifiers": {"email": [ALICE]}, "request_id": "com1.zip"})
        assert reserved.status_code == 422 and reserved.json()["error"]["field"] == "request_id"
        assert "reserved file name on Windows" in reserved.json()["error"]["message"]
    assert "jeanne.secret" not in server.log.read_text()


def test_a_shared_phone_is_refused_with_the_number_of_subjects(served) -> None:
    server, tokens = served
    with httpx.Client(base_url=server.url, timeout=30, headers=_auth(tokens["rw"])) as client:
        posted = client.post("/v1/requests", json={"identifiers": {"phone": ["+33 1 42 68 53 00"]}})
        doc = _wait(client, posted.json()["id"], tokens["rw"])
        assert doc["status"] == "refused"
        assert doc["error"]["code"] == "ambiguous" and doc["error"]["subjects_matched"] == 2
        assert client.get(doc["links"]["package"]).status_code == 404


def test_list_is_paginated_and_filtered_and_delete_purges_the_package(served) -> None:
    server, tokens = served
    with httpx.Client(base_url=server.url, timeout=30, headers=_auth(tokens["rw"])) as client:
        ids = [
            client.post(
                "/v1/requests", json={"identifiers": {"email": ["david.nguyen@example.com"]}, "request_id": f"PAGE-{i}"}
            ).json()["id"]
            for i in range(3)
        ]
        for job_id in ids:
            _wait(client, job_id, tokens["rw"])
        seen, cursor = [], None
        while True:
            page = client.get(
                "/v1/requests", params={"limit": 2, "status": "done", **({"cursor": cursor} if cursor else {})}
            ).json()
            assert len(page["items"]) <= 2 and all(j["status"] == "done" for j in page["items"])
            seen += [j["id"] for j in page["items"]]
            cursor = page["next"]
            if not cursor:
                break
        assert set(ids) <= set(seen) and len(seen) == len(set(seen))
        future = client.get("/v1/requests", params={"since": "2999-01-01T00:00:00Z"}).json()
        assert future == {"items": [], "next": None}

        zip_path = server.root / ".piiport" / "packages" / "PAGE-0.zip"
        assert zip_path.exists()
        purged = client.delete(f"/v1/requests/{ids[0]}/package")
        assert purged.status_code == 200 and purged.json()["package_available"] is False
        assert purged.json()["status"] == "done" and not zip_path.exists()
        gone = client.get(f"/v1/requests/{ids[0]}/package")
        assert gone.status_code == 410 and gone.json()["error"]["code"] == "gone"


def test_inventory_is_the_cli_json_and_operations_endpoints(served) -> None:
    server, tokens = served
    cli = subprocess.run(
        [sys.executable, "-m", "piiport.cli", "inventory", "--format", "json", "--index", server.index_url],
        capture_output=True,
        text=True,
        check=True,
    )
    with httpx.Client(base_url=server.url, timeout=30) as client:
        api = client.get("/v1/inventory", headers=_auth(tokens["read"]))
        assert api.status_code == 200 and api.json() == json.loads(cli.stdout)
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["index"] == "ok"
        metrics = client.get("/metrics").text
        assert 'piiport_jobs{status="done"}' in metrics and "piiport_export_duration_seconds_bucket" in metrics
        schema = client.get("/openapi.json").json()
        assert {"/v1/requests", "/v1/requests/{job_id}", "/v1/requests/{job_id}/package", "/v1/audit"} <= set(
            schema["paths"]
        )
        assert client.get("/nope").json()["error"]["code"] == "not_found"


# --- schemathesis: generated requests against /openapi.json -----------------------------------------


def test_no_generated_request_gives_a_5xx(served) -> None:
    """Every operation of /openapi.json, with bounded generated inputs (schemathesis + hypothesis)."""
    server, tokens = served
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 9
    seen: list[int] = []

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=12, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck)
        )
        def call(case) -> None:
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {tokens['all']}"}
            response = case.call(base_url=server.url, timeout=30)
            seen.append(response.status_code)
            assert response.status_code < 500, (case.method, case.path, response.status_code, response.text[:300])
            if response.status_code >= 400 and response.headers.get("content-type", "") == "application/json":
                assert set(response.json()["error"]) == {"code", "message", "field"}

        call()
    assert len(seen) >= 50 and any(code < 300 for code in seen) and any(code == 422 for code in seen)


# --- crash and restart: their own server and index ------------------------------------------------


def _big_shop(path: Path) -> Path:
    """The shop, with enough orders for Alice that her export takes a few seconds."""
    make_shop(path)
    with sqlite3.connect(path) as db:
        db.executemany(
            "INSERT INTO orders VALUES (?,?,?,?,?)",
            ((100 + i, 1, "2026-04-01", "9.90", f"ORD-BULK-{i:07d}") for i in range(50_000)),
        )
    return path


@pytest.fixture(scope="module")
def crashable(tmp_path_factory: pytest.TempPathFactory, detector) -> tuple[Server, dict[str, str]]:
    root = tmp_path_factory.mktemp("crash")
    index_url = _scanned(root, detector, _big_shop(root / "shop.db"))
    return Server(root, index_url, _free_port(), root / "server.log"), _tokens(index_url)


def test_kill_9_during_an_export_then_restart_completes_it_once(crashable) -> None:
    server, tokens = crashable
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=30, headers=_auth(tokens["rw"])) as client:
            job = client.post("/v1/requests", json={"identifiers": {"email": [ALICE]}, "request_id": "CRASH-1"}).json()
            running = _wait(client, job["id"], tokens["rw"], until=("running",))
            assert running["status"] == "running"
            with Store(store_url(server.index_url)) as store:
                deadline = time.monotonic() + 60
                while not any(e["request_id"] == "CRASH-1" for e in AuditLog(store).entries()):
                    assert time.monotonic() < deadline
                    time.sleep(0.05)
                time.sleep(0.3)  # into the export's reading and writing
                server.kill()
                entries = AuditLog(store).entries()
                interrupted = JobStore(store).get(job["id"])
            assert interrupted is not None and interrupted.status == "running"
            assert [e["action"] for e in entries if e["request_id"] == "CRASH-1"] == ["export.started"]

            server.start()
            done = _wait(client, job["id"], tokens["rw"], timeout=180)
            assert done["status"] == "done" and done["attempts"] == 2
            packages = server.root / ".piiport" / "packages"
            assert sorted(p.name for p in packages.iterdir()) == ["CRASH-1.zip"]
            with zipfile.ZipFile(packages / "CRASH-1.zip") as zf:
                manifest = json.loads(zf.read("manifest.json"))
            assert manifest["totals"]["records"] > 50_000
            audit = client.get("/v1/audit", params={"limit": 1000}, headers=_auth(tokens["audit"])).json()["entries"]
            assert [(e["action"], e["outcome"]) for e in audit if e["request_id"] == "CRASH-1"] == [
                ("export.started", "started"),
                ("export.started", "started"),
                ("export", "done"),
            ]
    finally:
        server.stop()


def test_a_job_acknowledged_before_a_kill_runs_after_the_restart(crashable) -> None:
    server, tokens = crashable
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=30, headers=_auth(tokens["rw"])) as client:
            posted = client.post(
                "/v1/requests", json={"identifiers": {"email": ["bruno.dubois@example.org"]}, "request_id": "QUEUED-1"}
            )
            assert posted.status_code == 202
            server.kill()
            with Store(store_url(server.index_url)) as store:
                stored = JobStore(store).by_request_id("QUEUED-1")
            assert stored is not None and stored.status in ("queued", "running")
            server.start()
            done = _wait(client, posted.json()["id"], tokens["rw"], timeout=120)
            assert done["status"] == "done"
            assert (server.root / ".piiport" / "packages" / "QUEUED-1.zip").exists()
    finally:
        server.stop()
    with Index(server.index_url, create=False) as idx:
        assert idx.count_findings() > 0


class _Receiver:
    """A callback endpoint on loopback: answers 500 to the first call, then 200."""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.calls: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.calls.append((dict(self.headers.items()), body))
                self.send_response(500 if len(receiver.calls) == 1 else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/piiport"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_callbacks_are_signed_retried_allow_listed_and_packages_expire(crashable, tmp_path: Path) -> None:
    server, tokens = crashable
    config = tmp_path / "piiport.yaml"
    config.write_text(
        "export: {package_ttl: 4s}\n"
        "service: {callback_hosts: [127.0.0.1], callback_secret: s3cret, callback_retries: 3, callback_backoff: 0.3}\n"
    )
    receiver = _Receiver()
    server.start(1, "--config", str(config))
    try:
        with httpx.Client(base_url=server.url, timeout=30, headers=_auth(tokens["rw"])) as client:
            refused = client.post(
                "/v1/requests",
                json={"identifiers": {"email": [ALICE]}, "callback_url": "http://169.254.169.254/latest/meta-data"},
            )
            assert refused.status_code == 422 and refused.json()["error"]["field"] == "callback_url"
            assert "169.254.169.254 is not in service.callback_hosts" in refused.json()["error"]["message"]

            job = client.post(
                "/v1/requests",
                json={
                    "identifiers": {"email": ["chloe.lefevre@example.net"]},
                    "request_id": "HOOK-1",
                    "callback_url": receiver.url,
                },
            ).json()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and len(client.get(job["links"]["self"]).json()["callbacks"]) < 2:
                time.sleep(0.2)
            doc = client.get(job["links"]["self"]).json()
            assert doc["status"] == "done"
            assert [(a["attempt"], a["ok"], a["status"]) for a in doc["callbacks"]] == [(1, False, 500), (2, True, 200)]
            assert len(receiver.calls) == 2
            headers, body = receiver.calls[1]
            stamp, mac = headers["Piiport-Signature"].split(",")
            expected = hmac.new(b"s3cret", f"{stamp[2:]}.".encode() + body, hashlib.sha256).hexdigest()
            assert mac == f"v1={expected}"
            sent = json.loads(body)
            assert sent["id"] == job["id"] and sent["status"] == "done" and sent["manifest"]["found"] is True
            assert b"chloe" not in body

            package = server.root / ".piiport" / "packages" / "HOOK-1.zip"
            assert package.exists()
            expired = _wait(client, job["id"], tokens["rw"], until=("expired",), timeout=60)
            while expired["status"] != "expired" and time.monotonic() < deadline + 30:
                time.sleep(0.3)
                expired = client.get(job["links"]["self"]).json()
            assert expired["status"] == "expired" and expired["package_available"] is False
            assert not package.exists()
            assert client.get(job["links"]["package"]).status_code == 410
            audit = client.get("/v1/audit", params={"limit": 1000}, headers=_auth(tokens["audit"])).json()["entries"]
            assert ("package.expire", "service") in [
                (e["action"], e["actor"]) for e in audit if e["request_id"] == "HOOK-1"
            ]
    finally:
        server.stop()
        receiver.server.shutdown()


# --- the staff console ------------------------------------------------------------------------------


def test_console_cookies_csrf_and_no_external_assets(served) -> None:
    server, tokens = served
    with httpx.Client(base_url=server.url, timeout=30) as client:
        assert client.get("/console/requests").headers["location"] == "/console/signin"
        signin = client.get("/console/signin")
        assert "<script" not in signin.text and "http" not in signin.text.replace('lang="en"', "")
        login = signin.cookies["piiport_login"]
        forged = client.post("/console/signin", data={"token": tokens["rw"], "csrf": "guess"})
        assert forged.status_code == 403
        assert client.post("/console/signin", data={"token": "ppt_nope", "csrf": login}).status_code == 401
        ok = client.post("/console/signin", data={"token": tokens["rw"], "csrf": login})
        assert ok.status_code == 303
        cookie = ok.headers["set-cookie"]
        assert "piiport_session=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
        assert tokens["rw"] not in cookie
        form = client.get("/console/requests/new").text
        csrf = form.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        no_csrf = client.post("/console/requests", data={"email": "david.nguyen@example.com"})
        assert no_csrf.status_code == 403
        created = client.post(
            "/console/requests", data={"email": "david.nguyen@example.com", "csrf": csrf, "format": "json"}
        )
        assert created.status_code == 303 and created.headers["location"].startswith("/console/requests/job_")
        page = client.get(created.headers["location"]).text
        assert "d***@e***.com" in page and "david.nguyen" not in page and "<script" not in page
        bad = client.post("/console/requests", data={"email": "not-an-email", "csrf": csrf})
        assert bad.status_code == 422 and "not a valid email address" in bad.text and "not-an-email" not in bad.text
    with httpx.Client(base_url=server.url, timeout=30) as viewer:
        login = viewer.get("/console/signin").cookies["piiport_login"]
        viewer.post("/console/signin", data={"token": tokens["audit"], "csrf": login})
        assert viewer.get("/console/requests").status_code == 403


@pytest.mark.browser
def test_console_in_a_real_browser(served, tmp_path: Path) -> None:
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        service_missing("needs Debian's chromium and chromium-driver (.ci/run installs them)")
    from selenium import webdriver
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.chrome.service import Service as DriverService
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    server, tokens = served
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or ""
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1200,900",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(flag)
    options.add_experimental_option(
        "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False}
    )
    driver = webdriver.Chrome(service=DriverService(shutil.which("chromedriver")), options=options)
    try:
        driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
        # The request page reloads itself every 2 s until the job ends: an element can go stale mid-check.
        wait = WebDriverWait(
            driver, 90, poll_frequency=0.3, ignored_exceptions=(NoSuchElementException, StaleElementReferenceException)
        )
        driver.get(server.url + "/")
        wait.until(lambda d: d.find_elements(By.ID, "token"))
        driver.find_element(By.ID, "token").send_keys(tokens["rw"])
        driver.find_element(By.ID, "signin").click()
        wait.until(lambda d: d.current_url.endswith("/console/requests"))
        driver.get(server.url + "/console/requests/new")
        driver.find_element(By.ID, "email").send_keys("chloe.lefevre@example.net")
        driver.find_element(By.ID, "request_id").send_keys("CONSOLE-1")
        driver.find_element(By.ID, "create").click()
        wait.until(lambda d: "/console/requests/job_" in d.current_url)
        wait.until(lambda d: d.find_element(By.ID, "status").text == "done")
        assert "c***@e***.net" in driver.page_source and "chloe.lefevre" not in driver.page_source
        driver.save_screenshot(str(tmp_path / "console.png"))
        driver.find_element(By.ID, "download").click()
        wait.until(lambda d: (downloads / "CONSOLE-1.zip").exists())
    finally:
        driver.quit()
    with zipfile.ZipFile(downloads / "CONSOLE-1.zip") as zf:
        manifest = json.loads(zf.read("manifest.json"))
        for f in manifest["files"]:
            assert hashlib.sha256(zf.read(f["path"])).hexdigest() == f["sha256"]
    assert manifest["request_id"] == "CONSOLE-1" and manifest["subject"]["found"] is True
    assert (tmp_path / "console.png").stat().st_size > 10_000


def test_background_scans_run_one_at_a_time(crashable, tmp_path: Path) -> None:
    server, tokens = crashable
    config = tmp_path / "piiport.yaml"
    config.write_text(f"sources:\n  - name: shop\n    url: sqlite:///{server.root / 'shop.db'}\n")
    server.start(1, "--config", str(config))
    try:
        with httpx.Client(base_url=server.url, timeout=30, headers=_auth(tokens["all"])) as client:
            assert client.post("/v1/scans", headers=_auth(tokens["rw"])).status_code == 403
            unknown = client.post("/v1/scans", json={"sources": ["crm"]})
            assert unknown.status_code == 422 and unknown.json()["error"]["message"] == (
                "no source named 'crm'; configured: shop"
            )
            first = client.post("/v1/scans")
            second = client.post("/v1/scans", json={"sources": ["shop"]})
            assert first.status_code == second.status_code == 202 and first.json()["status"] == "queued"
            docs = {}
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline and len(docs) < 2:
                for scan in (first.json(), second.json()):
                    doc = client.get(scan["links"]["self"]).json()
                    if doc["status"] not in ("queued", "running"):
                        docs[scan["id"]] = doc
                time.sleep(0.5)
            a, b = docs[first.json()["id"]], docs[second.json()["id"]]
            assert a["status"] == b["status"] == "done", (a, b)
            assert a["totals"]["containers"] == b["totals"]["containers"] == 7 and a["errors"] == []
            assert b["started_at"] >= a["finished_at"]
            # The supervisor observes a scan's duration when it reaps its process, just after the row says done.
            while "piiport_scan_duration_seconds_count 2.0" not in client.get("/metrics").text:
                assert time.monotonic() < deadline
                time.sleep(0.2)
    finally:
        server.stop()


# --- a team: two servers sharing one PostgreSQL index and store ------------------------------------


@pytest.mark.servers
def test_two_servers_share_a_postgresql_store_and_run_each_job_once(
    tmp_path: Path, detector, monkeypatch: pytest.MonkeyPatch
) -> None:
    from servers import postgres_database

    key = "5f" * 32
    monkeypatch.setenv("PIIPORT_INDEX_KEY", key)
    subjects = [ALICE, "bruno.dubois@example.org", "chloe.lefevre@example.net", "david.nguyen@example.com"]
    with postgres_database() as pg:
        result = scan_sources(
            [f"sqlite:///{make_shop(tmp_path / 'shop.db')}"], config=Config(index=pg), detector=detector
        )
        assert result.ok
        tokens = _tokens(pg)
        servers = [Server(tmp_path, pg, _free_port(), tmp_path / f"server{i}.log") for i in (1, 2)]
        for server in servers:
            server.start(2, env={"PIIPORT_INDEX_KEY": key})
        try:
            clients = [httpx.Client(base_url=s.url, timeout=30, headers=_auth(tokens["rw"])) for s in servers]
            ids = []
            for n in range(12):
                body = {"identifiers": {"email": [subjects[n % 4]]}, "request_id": f"TEAM-{n}"}
                posted = clients[n % 2].post("/v1/requests", json=body)
                assert posted.status_code == 202, posted.text
                ids.append(posted.json()["id"])
            again = clients[1].post("/v1/requests", json={"identifiers": {"email": [ALICE]}, "request_id": "TEAM-0"})
            assert again.status_code == 200 and again.json()["id"] == ids[0]
            docs = [_wait(clients[i % 2], job_id, tokens["rw"], timeout=180) for i, job_id in enumerate(ids)]
            assert [d["status"] for d in docs] == ["done"] * 12 and {d["attempts"] for d in docs} == {1}
            for c in clients:
                c.close()
        finally:
            for server in servers:
                server.stop()
        with Store(store_url(pg)) as store:
            owners = {JobStore(store).get(job_id).owner.split(":")[1] for job_id in ids}  # type: ignore[union-attr]
            log = AuditLog(store)
            started = [e["request_id"] for e in log.entries() if e["action"] == "export.started"]
            assert log.verify().ok
    assert sorted(started) == sorted(f"TEAM-{n}" for n in range(12))
    assert owners == {str(s.process.pid) for s in servers if s.process}
    assert sorted(p.name for p in (tmp_path / "exports").iterdir()) == sorted(f"TEAM-{n}.zip" for n in range(12))


@pytest.mark.s3
def test_packages_on_s3_redirect_to_the_presigned_url_and_delete_removes_the_object(crashable, tmp_path: Path) -> None:
    import boto3
    from s3server import moto_server

    server, tokens = crashable
    aws = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    with moto_server() as endpoint:
        client = boto3.client("s3", endpoint_url=endpoint, **{k.lower(): v for k, v in aws.items() if "KEY" in k})
        client.create_bucket(Bucket="privacy")
        config = tmp_path / "piiport.yaml"
        config.write_text(f"export: {{out: s3://privacy/packages}}\ns3: {{endpoint_url: '{endpoint}'}}\n")
        server.start(1, "--config", str(config), env=aws)
        try:
            with httpx.Client(base_url=server.url, timeout=30, headers=_auth(tokens["rw"])) as api:
                job = api.post(
                    "/v1/requests", json={"identifiers": {"email": ["bruno.dubois@example.org"]}, "request_id": "S3-1"}
                ).json()
                done = _wait(api, job["id"], tokens["rw"])
                assert done["status"] == "done", done
                redirect = api.get(job["links"]["package"])
                assert redirect.status_code == 307
                location = redirect.headers["location"]
                assert location.startswith(f"{endpoint}/privacy/packages/S3-1.zip?") and "Signature" in location
                body = httpx.get(location, timeout=30).content
                assert hashlib.sha256(body).hexdigest() == done["package_sha256"]
                keys = [o["Key"] for o in client.list_objects_v2(Bucket="privacy").get("Contents", [])]
                assert keys == ["packages/S3-1.zip"]
                assert api.delete(job["links"]["package"]).status_code == 200
                assert client.list_objects_v2(Bucket="privacy").get("KeyCount") == 0
                assert api.get(job["links"]["package"]).status_code == 410
        finally:
            server.stop()
