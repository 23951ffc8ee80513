"""Background scans of the configured sources, one at a time per index (``POST /v1/scans``).

Claimed like export jobs (a conditional UPDATE with a claim token and a lease), with one more
condition: no other scan of this store is running.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, text, update

from piiport.service.jobs import MAX_ATTEMPTS, owner_dead
from piiport.service.store import Store, scans, utcnow


@dataclass(frozen=True)
class Scan:
    id: str
    status: str
    created_at: str
    started_at: str | None
    finished_at: str | None
    sources: list[str]
    actor: str
    attempts: int
    claim: str | None
    result: dict[str, Any]

    def document(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "sources": self.sources,
            "attempts": self.attempts,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            **self.result,
            "links": {"self": f"/v1/scans/{self.id}"},
        }


def _scan(row: Any) -> Scan:
    return Scan(
        id=row.id,
        status=row.status,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        sources=json.loads(row.sources),
        actor=row.actor,
        attempts=row.attempts,
        claim=row.claim,
        result=json.loads(row.result) if row.result else {},
    )


class ScanStore:
    def __init__(self, store: Store) -> None:
        self.store = store

    def create(self, sources: list[str], *, actor: str) -> Scan:
        scan_id = "scan_" + secrets.token_hex(10)
        with self.store.engine.begin() as conn:
            conn.execute(
                insert(scans).values(
                    id=scan_id,
                    status="queued",
                    created_at=utcnow(),
                    sources=json.dumps(sources),
                    actor=actor,
                    attempts=0,
                )
            )
        found = self.get(scan_id)
        assert found is not None
        return found

    def get(self, scan_id: str) -> Scan | None:
        with self.store.reader.connect() as conn:
            row = conn.execute(select(scans).where(scans.c.id == scan_id)).first()
        return _scan(row) if row else None

    def claim(self, owner: str, lease_seconds: float) -> Scan | None:
        """The oldest queued scan, unless a scan is running already."""
        token = secrets.token_hex(16)
        pick = "SELECT id FROM piiport_scans WHERE status = 'queued' ORDER BY created_at, id LIMIT 1"
        if self.store.is_postgres:
            pick += " FOR UPDATE SKIP LOCKED"
        statement = text(
            "UPDATE piiport_scans SET status = 'running', claim = :c, owner = :o, lease_until = :l, "
            f"attempts = attempts + 1, started_at = :now WHERE id = ({pick}) AND status = 'queued' "
            "AND NOT EXISTS (SELECT 1 FROM piiport_scans AS other WHERE other.status = 'running')"
        )
        values = {"c": token, "o": owner, "l": time.time() + lease_seconds, "now": utcnow()}
        with self.store.engine.begin() as conn:
            if self.store.is_postgres:
                # One scan at a time across servers: the NOT EXISTS alone races under READ COMMITTED.
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": 0x7363616E})
            if not conn.execute(statement, values).rowcount:
                return None
            row = conn.execute(select(scans).where(scans.c.claim == token)).first()
        return _scan(row) if row else None

    def renew(self, claims: list[str], lease_seconds: float) -> None:
        if claims:
            with self.store.engine.begin() as conn:
                conn.execute(
                    update(scans)
                    .where(scans.c.claim.in_(claims), scans.c.status == "running")
                    .values(lease_until=time.time() + lease_seconds)
                )

    def finish(self, scan_id: str, claim: str, *, status: str, result: dict[str, Any]) -> bool:
        with self.store.engine.begin() as conn:
            return bool(
                conn.execute(
                    update(scans)
                    .where(scans.c.id == scan_id, scans.c.claim == claim, scans.c.status == "running")
                    .values(
                        status=status, finished_at=utcnow(), result=json.dumps(result), claim=None, lease_until=None
                    )
                ).rowcount
            )

    def release(self, scan_id: str, claim: str, *, error: str) -> str | None:
        found = self.get(scan_id)
        if found is None or found.claim != claim or found.status != "running":
            return None
        if found.attempts >= MAX_ATTEMPTS:
            failed = {"error": {"code": "crashed", "message": error}}
            return "failed" if self.finish(scan_id, claim, status="failed", result=failed) else None
        with self.store.engine.begin() as conn:
            done = conn.execute(
                update(scans)
                .where(scans.c.id == scan_id, scans.c.claim == claim, scans.c.status == "running")
                .values(status="queued", claim=None, owner=None, lease_until=None)
            ).rowcount
        return "queued" if done else None

    def recover(self) -> list[str]:
        now = time.time()
        with self.store.reader.connect() as conn:
            running = conn.execute(
                select(scans.c.id, scans.c.claim, scans.c.owner, scans.c.lease_until).where(scans.c.status == "running")
            ).all()
        return [
            r.id
            for r in running
            if ((r.lease_until or 0) < now or owner_dead(r.owner))
            and self.release(r.id, r.claim, error="the server running it stopped; started again")
        ]
