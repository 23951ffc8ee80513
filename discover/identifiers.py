"""Normalise identifier values so that the same person's value always hashes the same.

E-mail: lower-cased. Phone: E.164, parsed with the configured default regions. IP:
canonical ``ipaddress`` text. Name: case- and accent-folded, whitespace collapsed.
E-mail and phone are strong (they link records into one subject); names and IPs are weak.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Callable, Sequence
from functools import lru_cache

from discover.emails import decode_email

EMAIL = "EMAIL_ADDRESS"
PHONE = "PHONE_NUMBER"
IP = "IP_ADDRESS"
PERSON = "PERSON"
ENTITY_TYPES = (PERSON, EMAIL, PHONE, IP)
STRONG = frozenset({EMAIL, PHONE})

# Labels then a TLD: the same language as the usual "label(.label)*.tld", about a quarter faster.
# "@" is not in the local part's class, so backtracking into it can never find an "@": a failed match
# gives the run back one character at a time (linear), and the language is that of a possessive
# "++", which Python 3.10 does not support. Inputs are stripped, so \Z (not $) ends them.
_EMAIL_RE = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.)+[^\W\d_]{2,63}\Z")
_PHONE_CHARS = re.compile(r"^[+(]?[0-9][0-9 ().\-/]{5,22}[0-9](?:\s*(?:x|ext\.?)\s*\d{1,6})?$", re.IGNORECASE)
_SPACES = re.compile(r"\s+")
_NAME_CHARS = re.compile(r"^[^\W\d_]+(?:[ '’.\-][^\W\d_]*)*\.?$")


def is_strong(entity_type: str) -> bool:
    return entity_type in STRONG


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


_NOT_DIGITS = re.compile(r"\D+")
_EXTENSION = re.compile(r"\s*(?:x|ext\.?)\s*\d{1,6}$", re.IGNORECASE)


_NON_DIGIT_BYTES = bytes(b for b in range(128) if not 48 <= b <= 57)


def _digits(text: str) -> str:
    """The digits of a text; a byte translation when the text is ASCII (the common case)."""
    if text.isascii():
        return text.encode().translate(None, _NON_DIGIT_BYTES).decode()
    return _NOT_DIGITS.sub("", text)


@lru_cache(maxsize=256)
def _region_rules(region: str) -> tuple[str, str, frozenset[int]]:
    """Country calling code, trunk prefix and possible national-number lengths of a region."""
    from phonenumbers import PhoneMetadata

    meta = PhoneMetadata.metadata_for_region(region)
    if meta is None:
        return "", "", frozenset()
    desc = meta.general_desc
    lengths = frozenset((desc.possible_length or ()) if desc is not None else ())
    return str(meta.country_code), meta.national_prefix or "", lengths


@lru_cache(maxsize=1)
def _country_codes() -> frozenset[str]:
    import phonenumbers

    return frozenset(str(c) for c in phonenumbers.COUNTRY_CODE_TO_REGION_CODE)


@lru_cache(maxsize=64)
def phone_normaliser(regions: tuple[str, ...]) -> Callable[[str], str | None]:
    """``normalise_phone`` for fixed regions, as a function of the value: the regions' rules
    and the calling codes are looked up once, not per value (the hot path of a scan)."""
    rules = tuple(_region_rules(region) for region in regions)
    codes = _country_codes()
    shape = _PHONE_CHARS.match
    digits_of = _digits

    def e164(value: str) -> str | None:
        if type(value) is not str:
            return None
        text = value.strip()
        if not shape(text):
            return None
        if "x" in text or "X" in text:
            text = _EXTENSION.sub("", text)
        if text[:1] == "+" or (text[:2] == "00" and text[:3] != "000"):
            digits = digits_of(text.replace("(0)", "") if "(0)" in text else text)  # "+44 (0)20": 0 not dialled
            if text[:1] == "0":
                digits = digits[2:]
            if not 8 <= len(digits) <= 15:
                return None
            return "+" + digits if (digits[:1] in codes or digits[:2] in codes or digits[:3] in codes) else None
        digits = digits_of(text)
        size = len(digits)
        for code, trunk, lengths in rules:
            if trunk and digits.startswith(trunk) and size - len(trunk) in lengths:
                return f"+{code}{digits[len(trunk) :]}"
            if trunk != "0" and size in lengths:  # "0" trunk prefixes are always written (FR, GB, DE)
                return f"+{code}{digits}"
        return None

    return e164


def normalise_phone(value: str, regions: Sequence[str], *, strict: bool = False) -> str | None:
    """E.164 form of a phone number.

    International numbers (``+33 …``, ``0033 …``) keep their digits. National numbers take the
    first default region, in order, whose trunk prefix and number length fit: ``06 12 34 56 78``
    is French with FR first, ``(415) 555-2671`` American. This costs a few dictionary look-ups,
    not a full parse, so typed columns and free text normalise alike and fast. ``strict`` also
    asks libphonenumber whether the number is valid (profiling columns with no name hint).
    """
    e164 = phone_normaliser(regions if type(regions) is tuple else tuple(regions))(value)
    if e164 is None or not strict:
        return e164
    import phonenumbers

    try:
        return e164 if phonenumbers.is_valid_number(phonenumbers.parse(e164)) else None
    except phonenumbers.NumberParseException:
        return None


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
    return None
