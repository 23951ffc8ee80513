"""Load on `piiport serve`, bounded and on loopback only.

    python benchmarks/service_load.py                 # 20 clients, 200 POSTs over 50 request ids
    python benchmarks/service_load.py --workers 1

Builds the demo dataset in a temporary folder, scans it, creates a token, starts `piiport serve`
on a free loopback port, then 20 client threads post 200 requests that reuse 50 distinct request
ids (same body per id, so every repeat is an idempotent 200). It checks that exactly 50 jobs exist,
all `done`, and that the audit trail holds exactly 50 `export` entries for them (and that its
chain verifies), then prints POST latency p50/p95 and exports per minute (first POST to last
job finished).
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def main() -> int:
    import httpx

    from piiport.api import run_demo
    from piiport.service.audit import AuditLog
    from piiport.service.store import Store, store_url
    from piiport.service.tokens import TokenStore

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--posts", type=int, default=200)
    parser.add_argument("--ids", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2, help="export processes of the server")
    parser.add_argument("--timeout", type=float, default=600, help="give up after this many seconds")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="piiport-load-") as tmp:
        root = Path(tmp)
        demo = run_demo(root / "demo")
        index_url = f"sqlite:///{root / 'demo' / '.piiport' / 'index.db'}"
        subject = demo.export.manifest["subject"]["identifiers_given"][0]["value"] if demo.export else ""
        with Store(store_url(index_url)) as store:
            token = TokenStore(store, AuditLog(store)).create(
                "load", ("requests:write", "requests:read"), actor="bench"
            )
        port = _free_port()
        log = open(root / "server.log", "wb")  # noqa: SIM115 - open for the server's whole life
        server = subprocess.Popen(
            [sys.executable, "-m", "piiport.cli", "serve", "--index", index_url, "--port", str(port),
             "--workers", str(args.workers)],
            cwd=root, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {token}"}
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit(f"the server did not start; see {root / 'server.log'}")
                time.sleep(0.2)

            latencies: list[float] = []
            codes: dict[int, int] = {}
            lock = threading.Lock()
            queue = list(range(args.posts))

            def client() -> None:
                with httpx.Client(base_url=base, headers=headers, timeout=60) as http:
                    while True:
                        with lock:
                            if not queue:
                                return
                            n = queue.pop(0)
                        rid = n % args.ids
                        body = {
                            "identifiers": {"email": [subject]},
                            "format": ("json", "csv")[rid % 2],
                            "request_id": f"LOAD-{rid:03d}",
                        }
                        started = time.perf_counter()
                        response = http.post("/v1/requests", json=body)
                        elapsed = time.perf_counter() - started
                        with lock:
                            latencies.append(elapsed)
                            codes[response.status_code] = codes.get(response.status_code, 0) + 1

            began = time.time()
            threads = [threading.Thread(target=client) for _ in range(args.clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()

            with httpx.Client(base_url=base, headers=headers, timeout=60) as http:
                give_up = time.monotonic() + args.timeout
                while True:
                    jobs = http.get("/v1/requests", params={"limit": 200}).json()["items"]
                    if all(j["status"] not in ("queued", "running") for j in jobs) or time.monotonic() > give_up:
                        break
                    time.sleep(0.5)
        finally:
            server.terminate()
            server.wait(30)
            log.close()

        with Store(store_url(index_url)) as store:
            audit = AuditLog(store)
            exports = [
                e for e in audit.entries() if e["action"] == "export" and (e["request_id"] or "").startswith("LOAD-")
            ]
            chain = audit.verify()
        statuses = sorted({j["status"] for j in jobs})
        span = max(_ts(j["finished_at"]) for j in jobs) - began
        latencies.sort()
        report = {
            "clients": args.clients,
            "posts": args.posts,
            "request_ids": args.ids,
            "export_workers": args.workers,
            "responses": {str(k): v for k, v in sorted(codes.items())},
            "jobs": len(jobs),
            "job_statuses": statuses,
            "audit_export_entries": len(exports),
            "audit_chain_intact": chain.ok,
            "post_latency_ms_p50": round(1000 * statistics.median(latencies), 1),
            "post_latency_ms_p95": round(1000 * latencies[int(0.95 * (len(latencies) - 1))], 1),
            "exports_per_minute": round(len(jobs) / span * 60, 1),
            "seconds_first_post_to_last_export": round(span, 1),
        }
        print(json.dumps(report, indent=2))
        ok = (
            len(jobs) == args.ids
            and statuses == ["done"]
            and len(exports) == args.ids
            and chain.ok
            and sum(codes.values()) == args.posts
            and set(codes) <= {200, 202}
        )
        print("OK" if ok else "FAILED: expected exactly one done job and one export entry per request id")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
