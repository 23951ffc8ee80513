"""Keep credentials out of messages: every URL shown to a person goes through here.

A password may hold raw ``@``, ``:`` or ``/`` (``postgresql://u:p@ss@host/db``). The
user info of a URL therefore ends at the *last* ``@`` of its authority, as libpq reads it,
not at the first, which is where a naive parser (and SQLAlchemy's) stops: that would leave
the tail of the password in the host name, and so in every message that names the host.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

_SCHEME = re.compile(r"[a-zA-Z][a-zA-Z0-9+.\-]*://")
# A URL inside a message ends at white space or at a quote around it; masking also tries the
# longer reading (to white space only), so a password holding a quote or ``<`` is still masked.
_END = re.compile(r"""[\s'"<>]""")
_LOOSE_END = re.compile(r"\s")
_SECRET_PARAMS = re.compile(
    r"(?i)([?&](?:password|passwd|pwd|secret|token|sig|signature|x-amz-signature|x-amz-credential|x-amz-security-token)=)[^&\s]*"
)


@dataclass(frozen=True)
class UserInfo:
    """Where the user and password of a URL are: ``url[user_start:pw_start-1]`` is the user."""

    user_start: int
    pw_start: int
    #: the index of the ``@`` that ends the user info
    at: int


def find_userinfo(url: str, start: int = 0, *, loose: bool = False) -> UserInfo | None:
    """The user and password of the URL whose ``scheme://`` ends at ``start``, if it has a password.

    The user info runs to the last ``@`` before the query (``?``, ``#``) that follows the first
    ``@``, so a password's own ``@``, ``:``, ``/``, ``?`` and ``#`` stay inside it; the user name
    is what precedes the first ``:`` and holds no ``/``, ``?`` or ``#`` (else the ``:`` is a port).
    With ``loose``, the URL runs to the next white space even past a quote or ``<``/``>``.
    """
    end_match = (_LOOSE_END if loose else _END).search(url, start)
    end = end_match.start() if end_match else len(url)
    first_at = url.find("@", start, end)
    if first_at < 0:
        return None
    query = re.compile(r"[?#]").search(url, first_at, end)
    at = url.rfind("@", start, query.start() if query else end)
    colon = url.find(":", start, at)
    if colon < 0 or re.search(r"[/?#]", url[start:colon]):
        return None
    return UserInfo(user_start=start, pw_start=colon + 1, at=at)


#: What stands for a password in a masked URL (``user:***@host``).
MASK = "***"
_MASKED_USERINFO = f":{MASK}@"


def is_masked_url(url: str) -> bool:
    """Whether ``url`` went through :func:`mask_url` with a password in it: it cannot connect as it is."""
    return _MASKED_USERINFO in url


def mask_url(url: str) -> str:
    """Return ``url`` (or a message holding URLs, such as a driver error) with any password and
    secret query parameter replaced by ``***``."""
    out: list[str] = []
    pos = 0
    for match in _SCHEME.finditer(url):
        if match.start() < pos:
            continue  # a scheme-like run inside a password already masked
        strict, loose = find_userinfo(url, match.end()), find_userinfo(url, match.end(), loose=True)
        # The reading that masks more wins: a password may hold a quote, ``<`` or ``>``.
        info = max((i for i in (strict, loose) if i is not None), key=lambda i: i.at, default=None)
        if info is None:
            continue
        out.append(url[pos : info.pw_start])
        out.append(MASK)
        pos = info.at
    out.append(url[pos:])
    return _SECRET_PARAMS.sub(rf"\1{MASK}", "".join(out))


def quote_password(url: str) -> str:
    """``url`` with its password percent-encoded, so that a URL parser finds the right host.

    A password already percent-encoded (``p%40ss``) is left as it is.
    """
    match = _SCHEME.match(url)
    info = find_userinfo(url, match.end()) if match else None
    if info is None:
        return url
    password = url[info.pw_start : info.at]
    if not re.search(r"[@:/?#\[\]]", password):
        return url
    return url[: info.pw_start] + quote(password, safe="%") + url[info.at :]
