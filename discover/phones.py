"""A lenient phone recognizer for free text, beside Presidio's libphonenumber one.

libphonenumber only accepts numbers valid in the configured regions, so numbers written
in other countries' formats (or with fictional ranges) go unseen. This recognizer takes
digit groups shaped like phone numbers and rejects shapes that are something else.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

# An extension ("x12", "ext. 345"); Presidio matches patterns ignoring case.
_EXTENSION_PATTERN = r"[ ]?(?:x|ext\.?)[ ]?\d{1,6}"
# An optional extension; then no time, path or more digits ("-Office" may follow).
_TAIL = rf"(?:{_EXTENSION_PATTERN})?(?![\w@/:]|-\d|\.\d)"
_GROUPED = (
    r"(?<![\w@/.+:-])"
    r"(?:(?:\+|00)\d{1,3}[ .-]?(?:\(0\)[ .-]?)?)?"  # +44, 0033, +46 (0)
    r"(?:\(\d{1,5}\)[ .-]?)?"  # (415), (0)
    r"\d{1,5}(?:[ .-]\d{1,6}){1,5}" + _TAIL
)
_RUN = r"(?<![\w@/.+:-])\+?\d{7,12}" + _TAIL  # an unbroken run: a phone only when context says so
_DATE = re.compile(r"^\d{4}[-./]\d{1,2}[-./]\d{1,2}$|^\d{1,2}[-./]\d{1,2}[-./]\d{4}$")
_DATE_PREFIX = re.compile(r"^\d{4}-\d{1,2}-\d{1,2}\b")
_SSN = re.compile(r"^\d{3}-\d{2}-\d{4}$")
_TWO_GROUPS = re.compile(r"^\d{1,5}[ ]\d{2,5}$")
_IPV4 = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$")
_THOUSANDS = re.compile(r"^\d{1,3}(?:[ .]\d{3})+$")
_EXTENSION = re.compile(_EXTENSION_PATTERN + "$", re.IGNORECASE)


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def plausible_phone(text: str) -> bool:
    """Digit count and shape of a phone number, and not a card, SSN, date, IP or amount."""
    core = _EXTENSION.sub("", text.strip())
    digits = re.sub(r"\D", "", core)
    if not 7 <= len(digits) <= 15:
        return False
    if _DATE.match(core) or _DATE_PREFIX.match(core) or _SSN.match(core) or _IPV4.match(core):
        return False
    if len(digits) >= 13 and _luhn(digits):
        return False  # a payment card number
    separated = re.search(r"[ .()-]", core) is not None or core.startswith("+")
    return separated or 7 <= len(digits) <= 12  # an unbroken run of digits is a phone only if short


_OTHER_NUMBERS = re.compile(
    r"\b(?:card|cc|credit|debit|licen[cs]e|passport|ssn|social security|zip|postal|post code|postcode|"
    r"account|iban|order|invoice|tracking|serial|"
    r"carte|permis|compte|commande|facture|code postal|"  # French
    r"karte|konto|bestellung|rechnung|postleitzahl)\b[^\d\n]{0,20}$",  # German
    re.IGNORECASE,
)
_CURRENCY = re.compile(r"[$€£¥]\s*$|^\s*(?:[$€£¥]|eur|usd|gbp|euros?|dollars?|pounds?|yen)\b", re.IGNORECASE)


def other_number(text: str, start: int, end: int) -> bool:
    """A match that is some other number: named as a card, licence, ZIP… just before it, or an
    amount (digits grouped by thousands next to a currency)."""
    if _OTHER_NUMBERS.search(text[max(0, start - 40) : start]):
        return True
    if _THOUSANDS.match(text[start:end]):
        return bool(_CURRENCY.search(text[max(0, start - 3) : start]) or _CURRENCY.search(text[end : end + 10]))
    return False


def house_number(text: str, start: int, end: int, context: Sequence[str]) -> bool:
    """Two bare number groups by a capitalised word (``370 3911 Fourth Avenue``, ``Suite 541 6343``)
    are an address, unless a phone word comes just before."""
    if not _TWO_GROUPS.match(text[start:end]):
        return False
    before = text[max(0, start - 40) : start]
    words = re.findall(r"[^\W\d_]+", before.lower())
    if words and words[-1] in context:
        return False
    after_capital = re.match(r"\s+[A-Z][a-z]", text[end : end + 4]) is not None
    before_capital = re.search(r"(?:^|\s)[A-Z][a-z]*\.?\s+$", before) is not None
    return after_capital or before_capital


def lenient_phone_recognizer(*, supported_language: str, context: list[str]) -> Any:
    """Phone-shaped digit groups (score 0.4), and unbroken digit runs that only context words
    (``phone``, ``tel``, ...) lift above the threshold (score 0.1). Presidio is imported here, lazily."""
    from presidio_analyzer import Pattern, PatternRecognizer

    words = [c.lower() for c in context]

    class LenientPhoneRecognizer(PatternRecognizer):
        def validate_result(self, pattern_text: str) -> Any:
            return plausible_phone(pattern_text)

        def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None, regex_flags: Any = None) -> Any:
            results = super().analyze(text, entities, nlp_artifacts, regex_flags)
            return [
                r
                for r in results
                if not house_number(text, r.start, r.end, words) and not other_number(text, r.start, r.end)
            ]

    return LenientPhoneRecognizer(
        supported_entity="PHONE_NUMBER",
        patterns=[Pattern("phone-shaped", _GROUPED, 0.4), Pattern("digit-run", _RUN, 0.1)],
        context=context,
        supported_language=supported_language,
        name=f"LenientPhoneRecognizer_{supported_language}",
    )
