"""Normalise identifier values so that the same person's value always hashes the same.

E-mail: lower-cased. Phone: E.164, parsed with the configured default regions. IP:
canonical ``ipaddress`` text. Name: case- and accent-folded, whitespace collapsed.
E-mail and phone are strong (they link records into one subject); names and IPs are weak.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache

EMAIL = "EMAIL_ADDRESS"
PHONE = "PHONE_NUMBER"
IP = "IP_ADDRESS"
PERSON = "PERSON"
ENTITY_TYPES = (PERSON, EMAIL, PHONE, IP)
STRONG = frozenset({EMAIL, PHONE})

_EMAIL_RE = re.compile(
    r"^[\w.!#$%&'*+/=?^`{|}~-]+@[^\W_](?:[\w-]{0,61}[^\W_])?(?:\.[^\W_](?:[\w-]{0,61}[^\W_])?)*\.[^\W\d_]{2,63}$"
)
_PHONE_CHARS = re.compile(r"^[+(]?[0-9][0-9 ().\-/]{5,22}[0-9](?:\s*(?:x|ext\.?)\s*\d{1,6})?$", re.IGNORECASE)
_SPACES = re.compile(r"\s+")
_NAME_CHARS = re.compile(r"^[^\W\d_]+(?:[ '’.\-][^\W\d_]*)*\.?$")


def is_strong(entity_type: str) -> bool:
    return entity_type in STRONG


def normalise_email(value: str) -> str | None:
    candidate = value.strip().strip("<>").strip()
    if candidate.lower().startswith("mailto:"):
        candidate = candidate[7:]
    if len(candidate) > 254 or not _EMAIL_RE.match(candidate):
        return None
    return candidate.lower()


@lru_cache(maxsize=65536)
def _parse_phone(value: str, regions: tuple[str, ...], strict: bool) -> str | None:
    import phonenumbers

    text = value.strip()
    if text.startswith("00") and not text.startswith("000"):
        text = "+" + text[2:]
    fallback: str | None = None
    for region in regions if not text.startswith("+") else (None,):
        try:
            number = phonenumbers.parse(text, region)
        except phonenumbers.NumberParseException:
            continue
        formatted = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        if phonenumbers.is_valid_number(number):
            return formatted
        if fallback is None and phonenumbers.is_possible_number(number):
            fallback = formatted
    return None if strict else fallback


def normalise_phone(value: str, regions: Sequence[str], *, strict: bool = False) -> str | None:
    """E.164 form of a phone number, trying each default region in order.

    A number valid in some region wins; with ``strict`` false a merely possible number
    (fictional 555 numbers, new ranges) is accepted too, which suits a column already
    known to hold phones.
    """
    if not isinstance(value, str) or not _PHONE_CHARS.match(value.strip()):
        return None
    return _parse_phone(value, tuple(regions), strict)


def normalise_ip(value: str) -> str | None:
    text = value.strip()
    if "/" in text:  # an inet/cidr value with a prefix: the address part identifies
        text = text.split("/", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:81.12.200.7 is the IPv4 host 81.12.200.7
    return address.compressed


def fold_name(value: str) -> str:
    decomposed = unicodedata.normalize("NFKD", value)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _SPACES.sub(" ", stripped.casefold().replace("’", "'")).strip()


def normalise_name(value: str) -> str | None:
    folded = fold_name(value)
    if not folded or len(folded) > 120 or not _NAME_CHARS.match(folded):
        return None
    return folded


def looks_like_name(value: str) -> bool:
    """A value shaped like a personal name: letters, 1 to 5 words, not all lower-case."""
    text = value.strip()
    if not text or len(text) > 80 or not _NAME_CHARS.match(text):
        return False
    return 1 <= len(text.split()) <= 5


def normalise(entity_type: str, value: str, regions: Sequence[str]) -> str | None:
    """The normalised identifier, or ``None`` when ``value`` is not a valid one of its type."""
    if entity_type == EMAIL:
        return normalise_email(value)
    if entity_type == PHONE:
        return normalise_phone(value, regions)
    if entity_type == IP:
        return normalise_ip(value)
    if entity_type == PERSON:
        return normalise_name(value)
    return None
