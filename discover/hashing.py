"""Keyed hashing of identifiers: the index never holds a value in plaintext.

BLAKE2b in keyed mode (a MAC, like HMAC-SHA256 but about twice as fast here). The key
comes from ``PIIPORT_INDEX_KEY`` or a key file with mode 0600 created beside the index.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Callable
from pathlib import Path

from connectors.errors import ConfigError
from connectors.private import private_dir

KEY_ENV = "PIIPORT_INDEX_KEY"
_DIGEST_SIZE = 16


class IdentifierHasher:
    """Hashes ``(entity_type, normalised value)`` pairs under one secret key."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ConfigError("the index key must be at least 16 bytes", setting=KEY_ENV)
        # BLAKE2b takes keys up to 64 bytes; longer ones are compressed first.
        self.key = key if len(key) <= 64 else hashlib.blake2b(key).digest()
        # Keying BLAKE2b costs a compression of the key block; copying a keyed state does not.
        self._keyed = hashlib.blake2b(key=self.key, digest_size=_DIGEST_SIZE)

    def digest(self, entity_type: str, normalised: str) -> bytes:
        return self.digester(entity_type)(normalised)

    def digester(self, entity_type: str) -> Callable[[str], bytes]:
        """``digest`` for one entity type, as a function of the value: the same hashes, with the
        type prefix absorbed once instead of per value (the hot path of a scan)."""
        prefixed = self._keyed.copy()
        prefixed.update(f"{entity_type}\x00".encode())
        copy = prefixed.copy

        def digest(normalised: str) -> bytes:
            h = copy()
            h.update(normalised.encode())
            return h.digest()

        return digest

    def record_digester(self, source: str, container: str) -> Callable[[str], bytes]:
        """The identity of a record, by its key as the source knows it: how the index finds a
        record's findings without a row (or a plaintext key) per record."""
        return self.digester(f"__record__\x00{source}\x00{container}")

    def fingerprint(self) -> str:
        """Identifies the key without revealing it, so an index can refuse a wrong key."""
        return self.digest("__key_check__", "piiport").hex()


def load_key(*, key_file: Path | None, create: bool) -> bytes:
    """The index key: ``PIIPORT_INDEX_KEY`` (hex, or any string of 16+ characters), else the key file."""
    env = os.environ.get(KEY_ENV)
    if env:
        try:
            key = bytes.fromhex(env)
        except ValueError:
            key = env.encode()
        if len(key) < 16:
            raise ConfigError(
                f"{KEY_ENV} is too short; use at least 16 bytes, e.g. the output of `openssl rand -hex 32`",
                setting=KEY_ENV,
            )
        return key
    if key_file is None:
        raise ConfigError(
            f"this index is not a local file, so there is no key file beside it; set {KEY_ENV} "
            "(e.g. to the output of `openssl rand -hex 32`) or give key_file in the config",
            setting=KEY_ENV,
        )
    if key_file.exists():
        key = key_file.read_bytes().strip()
        try:
            return bytes.fromhex(key.decode())
        except (UnicodeDecodeError, ValueError) as exc:
            raise ConfigError(f"key file {key_file} is not hex; restore it from backup", path=str(key_file)) from exc
    if not create:
        raise ConfigError(
            f"key file {key_file} not found; run `piiport scan` first or set {KEY_ENV}", path=str(key_file)
        )
    private_dir(key_file.parent)
    key = secrets.token_bytes(32)
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key.hex() + "\n")
    return key
