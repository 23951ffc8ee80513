"""API tokens: a random secret shown once; the store keeps only its SHA-256 and the token's scopes."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from connectors.errors import ConfigError
from piiport.service.audit import AuditLog
from piiport.service.store import Store, tokens, utcnow

SCOPES = ("requests:write", "requests:read", "inventory:read", "scans:write", "audit:read")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
PREFIX = "ppt_"


@dataclass(frozen=True)
class Token:
    name: str
    scopes: tuple[str, ...]
    created_at: str
    revoked_at: str | None = None


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_scopes(value: str) -> tuple[str, ...]:
    scopes = tuple(dict.fromkeys(s.strip() for s in value.split(",") if s.strip()))
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown or not scopes:
        raise ConfigError(
            f"unknown scope {unknown[0]!r}; use one or more of {', '.join(SCOPES)}" if unknown else "give a --scope",
            setting="scope",
        )
    return scopes


class TokenStore:
    def __init__(self, store: Store, audit_log: AuditLog) -> None:
        self.store = store
        self.audit = audit_log

    def create(self, name: str, scopes: tuple[str, ...], *, actor: str) -> str:
        """A new token; the secret is returned once and never stored."""
        if not _NAME.match(name):
            raise ConfigError(
                f"token name {name!r} is not usable; use letters, digits, '.', '_' and '-' (at most 64)",
                setting="name",
            )
        secret = PREFIX + secrets.token_urlsafe(32)
        try:
            with self.store.engine.begin() as conn:
                conn.execute(
                    insert(tokens).values(
                        name=name, secret_hash=_digest(secret), scopes=",".join(scopes), created_at=utcnow()
                    )
                )
        except IntegrityError as exc:
            raise ConfigError(
                f"a token named {name!r} already exists; revoke it first or choose another name", setting="name"
            ) from exc
        self.audit.append(actor=actor, action="token.create", outcome="ok", detail={"token": name, "scopes": scopes})
        return secret

    def all(self) -> list[Token]:
        with self.store.reader.connect() as conn:
            rows = conn.execute(select(tokens).order_by(tokens.c.name)).all()
        return [Token(r.name, tuple(r.scopes.split(",")), r.created_at, r.revoked_at) for r in rows]

    def revoke(self, name: str, *, actor: str) -> None:
        with self.store.engine.begin() as conn:
            done = conn.execute(
                update(tokens).where(tokens.c.name == name, tokens.c.revoked_at.is_(None)).values(revoked_at=utcnow())
            ).rowcount
        if not done:
            raise ConfigError(f"no active token named {name!r}; see `piiport token list`", setting="name")
        self.audit.append(actor=actor, action="token.revoke", outcome="ok", detail={"token": name})

    def active(self, name: str) -> Token | None:
        with self.store.reader.connect() as conn:
            r = conn.execute(select(tokens).where(tokens.c.name == name, tokens.c.revoked_at.is_(None))).first()
        return Token(r.name, tuple(r.scopes.split(",")), r.created_at) if r else None

    def authenticate(self, secret: str) -> Token | None:
        """The active token with this secret. Every stored hash is compared, in constant time."""
        presented = _digest(secret)
        with self.store.reader.connect() as conn:
            rows = conn.execute(select(tokens).where(tokens.c.revoked_at.is_(None))).all()
        match = None
        for r in rows:
            if hmac.compare_digest(presented, r.secret_hash):
                match = Token(r.name, tuple(r.scopes.split(",")), r.created_at)
        return match
