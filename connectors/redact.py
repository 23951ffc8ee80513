"""Keep credentials out of messages: every URL shown to a person goes through here."""

from __future__ import annotations

import re

_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@/\s]*)@")
_SECRET_PARAMS = re.compile(
    r"(?i)([?&](?:password|passwd|pwd|secret|token|sig|signature|x-amz-signature|x-amz-credential|x-amz-security-token)=)[^&\s]*"
)


def mask_url(url: str) -> str:
    """Return ``url`` (or a message holding URLs, such as a driver error) with any password and
    secret query parameter replaced by ``***``."""
    masked = _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:***@", url)
    return _SECRET_PARAMS.sub(r"\1***", masked)
