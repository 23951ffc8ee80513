"""Record keys that hold personal data (an e-mail used as a primary key) are sealed in the index.

The index must not hold identifiers in plaintext, yet export needs a record's key to read it
again. Such keys are encrypted with AES-SIV under a key derived from the index key: the
same record key always seals to the same token, so the index can still match records by
key, and only a holder of the index key can open it. Keys of other containers (row
numbers, surrogate ids) stay as they are.
"""

from __future__ import annotations

import base64
import hashlib

SEALED_PREFIX = "sealed:"
_CONTEXT = b"piiport record keys v1"


class KeySealer:
    """Seals and opens record keys under one index key."""

    def __init__(self, index_key: bytes) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESSIV

        # A separate 512-bit key (AES-SIV-256), so that the hashing key is never used for encryption.
        self._siv = AESSIV(hashlib.blake2b(_CONTEXT, key=index_key[:64], digest_size=64).digest())

    def seal(self, record_key: str) -> str:
        token = self._siv.encrypt(record_key.encode(), None)
        return SEALED_PREFIX + base64.urlsafe_b64encode(token).decode().rstrip("=")

    def open(self, stored: str) -> str:
        """The record key as the source knows it; keys that were never sealed come back as they are."""
        if not stored.startswith(SEALED_PREFIX):
            return stored
        token = stored[len(SEALED_PREFIX) :]
        return self._siv.decrypt(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)), None).decode()
