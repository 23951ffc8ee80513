"""Normalise identifier values so that the same person's value always hashes the same.

E-mail: lower-cased. Phone: E.164, parsed as libphonenumber parses it with the configured
default regions (``discover.e164``); in a phone column, a number that fits no region: its
digits (``PHONE_DIGITS``). IP: canonical ``ipaddress`` text. Name: case- and accent-folded,
whitespace collapsed. E-mail and E.164 phone are strong (they link records into one subject);
names, IPs and digits-only phones are weak: the same digits may be two people's numbers in
two numbering plans.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Callable, Sequence
from functools import lru_cache

from discover.e164 import digits_only, is_valid, phone_parser
from discover.emails import decode_email

EMAIL = "EMAIL_ADDRESS"
PHONE = "PHONE_NUMBER"
IP = "IP_ADDRESS"
PERSON = "PERSON"
ENTITY_TYPES = (PERSON, EMAIL, PHONE, IP)
#: A phone number that fits no configured region, by its digits: found in phone columns only,
#: hashed apart from E.164 numbers (its own type), never linking two subjects.
PHONE_DIGITS = "PHONE_DIGITS"
#: The types of the identifiers the index holds.
INDEXED_TYPES = (*ENTITY_TYPES, PHONE_DIGITS)
STRONG = frozenset({EMAIL, PHONE})

# Labels then a TLD: the same language as the usual "label(.label)*.tld", about a quarter faster.
# "@" is not in the local part's class, so backtracking into it can never find an "@": a failed match
# gives the run back one character at a time (linear), and the language is that of a possessive
# "++", which Python 3.10 does not support. Inputs are stripped, so \Z (not $) ends them.
_EMAIL_RE = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.)+[^\W\d_]{2,63}\Z")
_SPACES = re.compile(r"\s+")
_NAME_CHARS = re.compile(r"^[^\W\d_]+(?:[ '’.\-][^\W\d_]*)*\.?$")


def normalise_email(value: str) -> str | None:
    """The lower-cased address of an e-mail value, or ``None``.

    The address is what a value holds around its decorations: ``"Jane" <jane@x.org>`` and
    ``<mailto:jane@x.org>`` (the last ``<…>``), ``mailto:jane@x.org?subject=…``, and the
    percent-encoded ``jane%40x.org`` of a URL query string (decoded only when there is no ``@``).
    """
    candidate = value.strip()
    if candidate[-1:] == ">":
        candidate = candidate[candidate.rfind("<") + 1 : -1].strip()
    elif candidate[:1] == "<":
        candidate = candidate[1:].strip()
    if candidate[:7].lower() == "mailto:":
        candidate = candidate[7:].partition("?")[0]
    if "%" in candidate and "@" not in candidate:
        candidate = decode_email(candidate)
    if len(candidate) > 254 or not _EMAIL_RE.match(candidate):
        return None
    return candidate.lower()


@lru_cache(maxsize=64)
def phone_normaliser(regions: tuple[str, ...]) -> Callable[[str], str | None]:
    """``normalise_phone`` for fixed regions, as a function of the value: the regions' metadata
    is compiled once, not per value (the hot path of a scan)."""
    return phone_parser(regions)


def normalise_phone(value: str, regions: Sequence[str], *, strict: bool = False) -> str | None:
    """E.164 form of a phone number, as libphonenumber parses it (``discover.e164`` has the rules).

    A number valid in one of the default regions, in order, gets libphonenumber's E.164: ``06 12
    34 56 78`` and ``+33 06 12 34 56 78`` are French with FR first, ``(415) 555-2671`` American.
    A number libphonenumber deems only possible still gets one (fictional ranges), unless
    ``strict``: profiling columns with no name hint takes valid numbers only.
    """
    e164 = phone_parser(regions if type(regions) is tuple else tuple(regions))(value)
    if e164 is None or (strict and not is_valid(e164)):
        return None
    return e164


def phone_digits(value: str) -> str | None:
    """The digits-only form of a phone number that fits no configured region (``discover.e164``)."""
    return digits_only(value) if type(value) is str else None


_CANONICAL_IPV4 = re.compile(r"^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$")


def normalise_ip(value: str) -> str | None:
    text = value.strip()
    if _CANONICAL_IPV4.match(text):  # already canonical: skip the ipaddress parse
        return text
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
    if value.isascii():  # nothing to decompose or fold beyond case: the common case, kept fast
        return " ".join(value.lower().split())
    decomposed = unicodedata.normalize("NFKD", value)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _SPACES.sub(" ", stripped.casefold().replace("’", "'")).strip()


def normalise_name(value: str) -> str | None:
    folded = fold_name(value)
    if not folded or len(folded) > 120 or not _NAME_CHARS.match(folded):
        return None
    return folded


def looks_like_name(value: str) -> bool:
    """A value shaped like a personal name: letters, 1 to 5 words, starting with a capital.

    (Lower-case codes such as ``active`` are not names; this also spares loading the NER
    model to check a status column.)
    """
    text = value.strip()
    if not text or len(text) > 80 or not text[0].isupper() or not _NAME_CHARS.match(text):
        return False
    return 1 <= len(text.split()) <= 5


def normalise_found(entity_type: str, text: str, regions: Sequence[str]) -> str | None:
    """The identifier of a value found by a detector: as ``normalise``, but a PERSON span the
    name pattern rejects is still a name, folded."""
    value = normalise(entity_type, text, regions)
    if value is None and entity_type == PERSON:
        value = fold_name(text) or None
    return value


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
    if entity_type == PHONE_DIGITS:
        return phone_digits(value)
    return None
