"""The job store: access requests persisted before they are acknowledged, claimed by one worker at a time.

A job is claimed with one conditional UPDATE (``WHERE status = 'queued'``, plus ``FOR UPDATE
SKIP LOCKED`` on PostgreSQL, inside ``BEGIN IMMEDIATE`` on SQLite) that stamps a fresh claim
token and a lease; every later write names that claim, so a worker that lost its job (lease
expired, server restarted) cannot overwrite what the new owner writes.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from piiport.service.store import Store, jobs, utcnow

STATUSES = ("queued", "running", "done", "incomplete", "refused", "failed", "expired")
FINAL = frozenset({"done", "incomplete", "refused", "failed", "expired"})
MAX_ATTEMPTS = 3


class Conflict(Exception):
    """The request id is taken by a job with a different body."""

    def __init__(self, job: Job) -> None:
        super().__init__(job.id)
        self.job = job


@dataclass(frozen=True)
class Job:
    id: str
    request_id: str
    status: str
    created_at: str
    started_at: str | None
    finished_at: str | None
    body_hash: str
    sealed: str | None
    params: dict[str, Any]
    actor: str
    attempts: int
    claim: str | None
    owner: str | None
    result: dict[str, Any]
    package: str | None
    callbacks: list[dict[str, Any]]


def _job(row: Any) -> Job:
    return Job(
        id=row.id,
        request_id=row.request_id,
        status=row.status,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        body_hash=row.body_hash,
        sealed=row.sealed,
        params=json.loads(row.params),
        actor=row.actor,
        attempts=row.attempts,
        claim=row.claim,
        owner=row.owner,
        result=json.loads(row.result) if row.result else {},
        package=row.package,
        callbacks=json.loads(row.callbacks) if row.callbacks else [],
    )


def new_job_id() -> str:
    return "job_" + secrets.token_hex(10)


def owner_id() -> str:
    """Who runs a job: host, server pid and a nonce (a reused pid is not the same server)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def owner_dead(owner: str | None) -> bool:
    """The owner was a server on this host that is gone (its lease has not expired yet)."""
    if not owner:
        return True
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class JobStore:
    def __init__(self, store: Store) -> None:
        self.store = store

    def create(
        self, *, request_id: str, body_hash: str, sealed: str, params: dict[str, Any], actor: str
    ) -> tuple[Job, bool]:
        """The new job (True), or the job this request id already has with the same body (False).

        Committed before it returns, so an acknowledged request survives a crash."""
        job_id = new_job_id()
        try:
            with self.store.engine.begin() as conn:
                conn.execute(
                    insert(jobs).values(
                        id=job_id,
                        request_id=request_id,
                        status="queued",
                        created_at=utcnow(),
                        body_hash=body_hash,
                        sealed=sealed,
                        params=json.dumps(params),
                        actor=actor,
                        attempts=0,
                    )
                )
        except IntegrityError:
            existing = self.by_request_id(request_id)
            if existing is None:  # pragma: no cover - deleted in between
                raise
            if existing.body_hash != body_hash:
                raise Conflict(existing) from None
            return existing, False
        job = self.get(job_id)
        assert job is not None
        return job, True

    def get(self, job_id: str) -> Job | None:
        with self.store.reader.connect() as conn:
            row = conn.execute(select(jobs).where(jobs.c.id == job_id)).first()
        return _job(row) if row else None

    def by_request_id(self, request_id: str) -> Job | None:
        with self.store.reader.connect() as conn:
            row = conn.execute(select(jobs).where(jobs.c.request_id == request_id)).first()
        return _job(row) if row else None

    def page(
        self,
        *,
        status: str | None = None,
        since: str | None = None,
        after: tuple[str, str] | None = None,
        limit: int,
        newest_first: bool = False,
    ) -> list[Job]:
        """Oldest first; ``after`` is the (created_at, id) of the last job of the previous page."""
        order = (jobs.c.created_at.desc(), jobs.c.id.desc()) if newest_first else (jobs.c.created_at, jobs.c.id)
        query = select(jobs).order_by(*order).limit(limit)
        if status:
            query = query.where(jobs.c.status == status)
        if since:
            query = query.where(jobs.c.created_at >= since)
        if after:
            query = query.where(
                (jobs.c.created_at > after[0]) | ((jobs.c.created_at == after[0]) & (jobs.c.id > after[1]))
            )
        with self.store.reader.connect() as conn:
            return [_job(r) for r in conn.execute(query)]

    def counts(self) -> dict[str, int]:
        with self.store.reader.connect() as conn:
            rows = conn.execute(select(jobs.c.status, func.count()).group_by(jobs.c.status)).all()
        return {status: 0 for status in STATUSES} | {r[0]: r[1] for r in rows}

    def claim(self, owner: str, lease_seconds: float) -> Job | None:
        """Take the oldest queued job, or None. Exactly one caller gets each job."""
        token = secrets.token_hex(16)
        values = {"c": token, "o": owner, "l": time.time() + lease_seconds, "now": utcnow()}
        pick = "SELECT id FROM piiport_jobs WHERE status = 'queued' ORDER BY created_at, id LIMIT 1"
        if self.store.is_postgres:
            pick += " FOR UPDATE SKIP LOCKED"
        statement = text(
            "UPDATE piiport_jobs SET status = 'running', claim = :c, owner = :o, lease_until = :l, "
            f"attempts = attempts + 1, started_at = :now WHERE id = ({pick}) AND status = 'queued'"
        )
        with self.store.engine.begin() as conn:
            if not conn.execute(statement, values).rowcount:
                return None
            row = conn.execute(select(jobs).where(jobs.c.claim == token)).first()
        return _job(row) if row else None

    def renew(self, claims: list[str], lease_seconds: float) -> None:
        if not claims:
            return
        with self.store.engine.begin() as conn:
            conn.execute(
                update(jobs)
                .where(jobs.c.claim.in_(claims), jobs.c.status == "running")
                .values(lease_until=time.time() + lease_seconds)
            )

    def finish(
        self,
        job_id: str,
        claim: str,
        *,
        status: str,
        result: dict[str, Any],
        package: str | None = None,
        callback: bool = False,
    ) -> bool:
        """Record the outcome, if this claim still holds the job. The sealed identifiers go.

        ``callback``: the job has a callback_url, to be called now."""
        assert status in FINAL
        with self.store.engine.begin() as conn:
            return bool(
                conn.execute(
                    update(jobs)
                    .where(jobs.c.id == job_id, jobs.c.claim == claim, jobs.c.status == "running")
                    .values(
                        status=status,
                        finished_at=utcnow(),
                        result=json.dumps(result),
                        package=package,
                        sealed=None,
                        claim=None,
                        lease_until=None,
                        callback_due=time.time() if callback else None,
                    )
                ).rowcount
            )

    def release(self, job_id: str, claim: str, *, error: str) -> str | None:
        """A worker died or stopped: queue the job again from the start, or fail it after MAX_ATTEMPTS.

        Returns the new status, or None when the claim no longer held the job."""
        job = self.get(job_id)
        if job is None or job.claim != claim or job.status != "running":
            return None
        if job.attempts >= MAX_ATTEMPTS:
            return (
                "failed"
                if self.finish(job_id, claim, status="failed", result={"error": {"code": "crashed", "message": error}})
                else None
            )
        with self.store.engine.begin() as conn:
            done = conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.claim == claim, jobs.c.status == "running")
                .values(
                    status="queued", claim=None, owner=None, lease_until=None, result=json.dumps({"last_error": error})
                )
            ).rowcount
        return "queued" if done else None

    def recover(self) -> list[str]:
        """Queue again the jobs whose worker is gone: lease expired, or a server of this host that died."""
        now = time.time()
        with self.store.reader.connect() as conn:
            running = conn.execute(
                select(jobs.c.id, jobs.c.claim, jobs.c.owner, jobs.c.lease_until).where(jobs.c.status == "running")
            ).all()
        recovered = []
        for r in running:
            gone = (r.lease_until or 0) < now or owner_dead(r.owner)
            if gone and self.release(r.id, r.claim, error="the server running it stopped; started again"):
                recovered.append(r.id)
        return recovered

    def update_result(self, job_id: str, **changes: Any) -> None:
        job = self.get(job_id)
        if job is None:
            return
        with self.store.engine.begin() as conn:
            conn.execute(update(jobs).where(jobs.c.id == job_id).values(result=json.dumps(job.result | changes)))

    def set_package(self, job_id: str, package: str | None, *, status: str | None = None) -> None:
        values: dict[str, Any] = {"package": package}
        if status:
            values["status"] = status
        with self.store.engine.begin() as conn:
            conn.execute(update(jobs).where(jobs.c.id == job_id).values(**values))

    def take_callbacks(self, *, lease: float, limit: int = 8) -> list[Job]:
        """Jobs whose callback is due, each taken by one server (its due time moves past the lease)."""
        now = time.time()
        with self.store.reader.connect() as conn:
            due = conn.execute(
                select(jobs.c.id, jobs.c.callback_due).where(jobs.c.callback_due <= now).limit(limit)
            ).all()
        taken = []
        for job_id, was in due:
            with self.store.engine.begin() as conn:
                won = conn.execute(
                    update(jobs).where(jobs.c.id == job_id, jobs.c.callback_due == was).values(callback_due=now + lease)
                ).rowcount
            job = self.get(job_id) if won else None
            if job is not None:
                taken.append(job)
        return taken

    def callback_attempted(self, job_id: str, attempt: dict[str, Any], *, next_due: float | None) -> None:
        with self.store.engine.begin() as conn:
            row = conn.execute(select(jobs.c.callbacks).where(jobs.c.id == job_id)).first()
            attempts = json.loads(row.callbacks) if row and row.callbacks else []
            conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id)
                .values(callbacks=json.dumps([*attempts, attempt]), callback_due=next_due)
            )

    def expirable(self, cutoff: str, limit: int = 50) -> list[Job]:
        """Finished jobs whose package is older than the cutoff (an ISO time)."""
        with self.store.reader.connect() as conn:
            rows = conn.execute(
                select(jobs)
                .where(
                    jobs.c.status.in_(("done", "incomplete")), jobs.c.package.isnot(None), jobs.c.finished_at < cutoff
                )
                .limit(limit)
            ).all()
        return [_job(r) for r in rows]

    def expire(self, job: Job) -> bool:
        with self.store.engine.begin() as conn:
            return bool(
                conn.execute(
                    update(jobs)
                    .where(jobs.c.id == job.id, jobs.c.status == job.status, jobs.c.package == job.package)
                    .values(status="expired", package=None, result=json.dumps(job.result | {"expired_at": utcnow()}))
                ).rowcount
            )
