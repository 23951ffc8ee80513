"""The audit trail: append-only, hash-chained entries of exports, token changes and reads of personal data.

Each entry's hash covers its fields and the previous entry's hash, and a head row holds the
newest entry's hash: an edited, inserted or deleted entry breaks the chain, and ``verify``
says where. Identifiers appear only as keyed hashes under the index key, never in plaintext.
"""

from __future__ import annotations

import getpass
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, text, update

from piiport.service.store import Store, audit, audit_head, utcnow

GENESIS = "0" * 64
#: Serialises appends on PostgreSQL (SQLite's BEGIN IMMEDIATE does that there).
_PG_LOCK = 0x70696970


def os_actor() -> str:
    """The actor of a command-line or Python API call: the OS user."""
    try:
        return f"os:{getpass.getuser()}"
    except (KeyError, OSError):
        return "os:unknown"


def entry_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    body = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(f"{prev_hash}\n{body}".encode()).hexdigest()


_FIELDS = ("seq", "at", "actor", "action", "request_id", "identifiers", "outcome", "package_sha256", "detail")


def _fields(row: Any) -> dict[str, Any]:
    m = row._mapping
    return {
        **{k: m[k] for k in _FIELDS if k not in {"identifiers", "detail"}},
        "identifiers": json.loads(m["identifiers"]),
        "detail": json.loads(m["detail"]),
    }


@dataclass(frozen=True)
class Verification:
    ok: bool
    entries: int
    #: The first problem found, one line, naming the entry.
    problem: str | None = None


class AuditLog:
    def __init__(self, store: Store) -> None:
        self.store = store

    def append(
        self,
        *,
        actor: str,
        action: str,
        outcome: str,
        request_id: str | None = None,
        identifiers: Sequence[str] = (),
        package_sha256: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Add one entry; ``identifiers`` are hex keyed hashes, never values."""
        with self.store.engine.begin() as conn:
            if self.store.is_postgres:
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK})
            last = conn.execute(select(audit.c.seq, audit.c.hash).order_by(audit.c.seq.desc()).limit(1)).first()
            seq, prev = (last.seq + 1, last.hash) if last else (1, GENESIS)
            fields = {
                "seq": seq,
                "at": utcnow(),
                "actor": actor,
                "action": action,
                "request_id": request_id,
                "identifiers": list(identifiers),
                "outcome": outcome,
                "package_sha256": package_sha256,
                "detail": detail or {},
            }
            digest = entry_hash(prev, fields)
            conn.execute(
                insert(audit).values(
                    **fields
                    | {"identifiers": json.dumps(fields["identifiers"]), "detail": json.dumps(fields["detail"])},
                    prev_hash=prev,
                    hash=digest,
                )
            )
            if last is None:
                conn.execute(insert(audit_head).values(id=1, seq=seq, hash=digest))
            else:
                conn.execute(update(audit_head).where(audit_head.c.id == 1).values(seq=seq, hash=digest))
        return fields | {"hash": digest}

    def entries(
        self, *, since: str | None = None, after_seq: int = 0, limit: int | None = None
    ) -> list[dict[str, Any]]:
        query = select(audit).where(audit.c.seq > after_seq).order_by(audit.c.seq)
        if since:
            query = query.where(audit.c.at >= since)
        if limit:
            query = query.limit(limit)
        with self.store.reader.connect() as conn:
            return [_fields(r) | {"hash": r.hash} for r in conn.execute(query)]

    def verify(self) -> Verification:
        """Walk the chain from the first entry; any edit, insertion or deletion breaks it."""
        prev, count, expected_seq = GENESIS, 0, 1
        with self.store.reader.connect() as conn:
            head = conn.execute(select(audit_head.c.seq, audit_head.c.hash)).first()
            for row in conn.execute(select(audit).order_by(audit.c.seq)):
                if row.seq != expected_seq:
                    return Verification(False, count, f"entry {expected_seq} is missing (next is {row.seq})")
                if row.prev_hash != prev:
                    return Verification(False, count, f"entry {row.seq} does not follow entry {row.seq - 1}")
                if entry_hash(prev, _fields(row)) != row.hash:
                    return Verification(False, count, f"entry {row.seq} was altered (its hash does not match)")
                prev, count, expected_seq = row.hash, count + 1, expected_seq + 1
        if head is None:
            return Verification(count == 0, count, None if count == 0 else "the chain head is missing")
        if head.seq != count or head.hash != prev:
            return Verification(False, count, f"entries after {count} are missing (the head says {head.seq})")
        return Verification(True, count)
