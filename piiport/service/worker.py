"""The export supervisor: claims queued jobs and runs each in its own process, with a lease.

It runs as a thread of the server. A job's lease is renewed while its process runs; when a
server dies, its jobs' leases lapse (or, on the same host, its pid is gone) and any server
queues them again, to run from the start.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from piiport.service.jobs import Job, JobStore, owner_id
from piiport.service.scans import Scan, ScanStore
from piiport.service.store import Store

logger = logging.getLogger("piiport.service")


@dataclass
class _Running:
    job: Job | None
    scan: Scan | None
    claim: str
    process: subprocess.Popen[bytes]
    started: float


class Supervisor:
    def __init__(
        self,
        store: Store,
        *,
        packages: str,
        workers: int = 1,
        config_path: str | None = None,
        index_url: str | None = None,
        lease: float = 30.0,
        poll: float = 0.2,
        on_finished: Callable[[Job, float], None] | None = None,
        on_scan_finished: Callable[[Scan, float], None] | None = None,
        on_tick: Callable[[], None] | None = None,
    ) -> None:
        self.jobs = JobStore(store)
        self.scans = ScanStore(store)
        self.on_scan_finished = on_scan_finished
        self.packages = packages
        self.workers = workers
        self.config_path = config_path
        self.index_url = index_url
        self.lease = lease
        self.poll = poll
        self.on_finished = on_finished
        self.on_tick = on_tick
        self.owner = owner_id()
        self.running: dict[str, _Running] = {}
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="piiport-exports", daemon=True)
        self.last_tick = 0.0

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and time.monotonic() - self.last_tick < max(10.0, 20 * self.poll)

    def start(self) -> None:
        recovered = self.jobs.recover() + self.scans.recover()
        if recovered:
            logger.warning("queued again %d interrupted job(s): %s", len(recovered), ", ".join(recovered))
        self._thread.start()

    def nudge(self) -> None:
        """A job was queued: look now rather than at the next poll."""
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop claiming; give running exports back to the queue (they run again from the start)."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)
        for run in list(self.running.values()):
            run.process.terminate()
        for claim, run in list(self.running.items()):
            try:
                run.process.wait(5)
            except subprocess.TimeoutExpired:
                run.process.kill()
                run.process.wait()
            self._finished(claim, run, stopping=True)

    def _loop(self) -> None:
        last_renew = last_recover = time.monotonic()
        while not self._stop.is_set():
            self.last_tick = time.monotonic()
            try:
                self._reap()
                now = time.monotonic()
                if now - last_renew > self.lease / 6:
                    self.jobs.renew([c for c, r in self.running.items() if r.job], self.lease)
                    self.scans.renew([c for c, r in self.running.items() if r.scan], self.lease)
                    last_renew = now
                if now - last_recover > self.lease / 3:
                    self.jobs.recover()
                    self.scans.recover()
                    last_recover = now
                while self._exports() < self.workers and not self._stop.is_set():
                    job = self.jobs.claim(self.owner, self.lease)
                    if job is None:
                        break
                    self._spawn(job)
                # A scan runs beside the exports, one at a time per store (ScanStore.claim).
                if not any(r.scan for r in self.running.values()):
                    scan = self.scans.claim(self.owner, self.lease)
                    if scan is not None:
                        self._spawn_scan(scan)
                if self.on_tick is not None:
                    self.on_tick()
            except Exception as exc:  # the loop must outlive a store hiccup
                logger.error("export supervisor: %s: %s", type(exc).__name__, str(exc).splitlines()[0][:200])
            self._wake.wait(self.poll)
            self._wake.clear()

    def _exports(self) -> int:
        return sum(1 for r in self.running.values() if r.job)

    def _spawn_scan(self, scan: Scan) -> None:
        import os

        assert scan.claim is not None
        cmd = [sys.executable, "-m", "piiport.service.runscan", "--scan", scan.id, "--claim", scan.claim]
        cmd += ["--parent", str(os.getpid())]
        if self.config_path:
            cmd += ["--config", self.config_path]
        if self.index_url:
            cmd += ["--index", self.index_url]
        process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
        self.running[scan.claim] = _Running(None, scan, scan.claim, process, time.monotonic())

    def _spawn(self, job: Job) -> None:
        import os

        assert job.claim is not None
        cmd = [
            sys.executable,
            "-m",
            "piiport.service.runjob",
            "--job",
            job.id,
            "--claim",
            job.claim,
            "--parent",
            str(os.getpid()),
            "--packages",
            self.packages,
        ]
        if self.config_path:
            cmd += ["--config", self.config_path]
        if self.index_url:
            cmd += ["--index", self.index_url]
        process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
        self.running[job.claim] = _Running(job, None, job.claim, process, time.monotonic())

    def _reap(self) -> None:
        for claim, run in list(self.running.items()):
            if run.process.poll() is not None:
                self._finished(claim, run)

    def _finished(self, claim: str, run: _Running, *, stopping: bool = False) -> None:
        del self.running[claim]
        code = run.process.returncode
        if stopping:
            error = "the server stopped during the export; started again"
        elif code is not None and code < 0:
            error = f"the export process was killed by signal {-code}"
        else:
            error = f"the export process exited with code {code}"
        seconds = time.monotonic() - run.started
        if run.scan is not None:
            released = self.scans.release(run.scan.id, claim, error=error)
            if released:
                logger.warning("scan %s: %s; now %s", run.scan.id, error, released)
            scan = self.scans.get(run.scan.id)
            if scan is not None and self.on_scan_finished is not None and scan.status != "queued":
                self.on_scan_finished(scan, seconds)
            return
        assert run.job is not None
        released = self.jobs.release(run.job.id, claim, error=error)
        if released:
            logger.warning("job %s: %s; now %s", run.job.id, error, released)
        job = self.jobs.get(run.job.id)
        if job is not None and self.on_finished is not None and job.status != "queued":
            self.on_finished(job, seconds)
