"""Phone numbers to E.164 exactly as libphonenumber reads them, without its per-value cost.

``phonenumbers.parse`` and ``is_valid_number`` cost 25 to 90 µs a value, too slow for typed
columns (the W1 hot path). A stored number is nearly always digits and separators with an
optional ``+`` and extension; for those strings this module replays libphonenumber's own
steps (international prefix, country code, national prefix, possible lengths, number types)
on the digits, with each region's metadata compiled once. Any other string (letters, non-ASCII
digits, ``tel:`` URIs, text around the number) is handed to ``phonenumbers`` itself.

The rule, per string and for the configured regions in order:
1. the first region in which libphonenumber parses the string as a valid number gives the
   E.164, always the same one libphonenumber gives (``+33 05 56 96 96 96`` and
   ``05 56 96 96 96`` are both ``+33556969696``; Italy keeps its leading 0);
2. otherwise a number written with ``+``, ``00`` (even where a region dials abroad otherwise,
   as Australia's ``0011``) or a region's international prefix, whose length is possible for
   its country (8 to 15 digits in all), keeps libphonenumber's E.164; a national number keeps
   the first region whose national prefix and possible lengths fit it (a ``0`` national prefix
   must be written): fictional and unallocated ranges (``+44 7700 900123``) still index;
3. otherwise ``None``. Strings outside the digits-and-separators shape only take rule 1.

``tests/test_phones.py`` and ``benchmarks/phones_differential.py`` check rule 1 against
``phonenumbers`` on generated strings.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

# Digits and separators, an optional leading "+", an optional extension as libphonenumber reads
# one (x, ext, extn, extension, #, ;ext=). The body's digits are the number libphonenumber sees.
_SHAPE = re.compile(
    r"(\+?)([0-9 .()/-]*)(?:(?:[ \t]*(?:x|ext|extn|extension|\#)[:.]?[ \t-]*[0-9]{1,6}|;ext=[0-9]{1,6})[ .()/-]*)?",
    re.IGNORECASE,
)
_NON_DIGIT_BYTES = bytes(b for b in range(128) if not 48 <= b <= 57)
_MAX_INPUT = 250  # libphonenumber refuses longer strings
# Digits and separators that are not phone numbers: a date with 7 or more digits, an amount
# (a decimal part of one or two digits: "1 234 567.89", "1234567,5").
_DATE = re.compile(
    r"^(?:19|20)\d\d-[01]\d-[0-3]\d(?:$|[ T])|^\d{1,2}[/.-]\d{1,2}[/.-](?:19|20)\d\d$"
    r"|^(?:19|20)\d\d(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])$"
)
_AMOUNT = re.compile(r"^[+-]?\d{1,3}(?:[ ,.']\d{3})*[.,]\d{1,2}$|^[+-]?\d+[.,]\d{1,2}$")
_MIN_NSN, _MAX_NSN = 2, 17
_ANY_TWO_DIGITS = re.compile(r"\d.*\d", re.DOTALL)

# How a number was written: with "+" or an international prefix, with the default region's
# calling code but no "+", or nationally.
_INTERNATIONAL, _BARE_CODE, _NATIONAL = range(3)
# libphonenumber's length verdicts
_POSSIBLE, _LOCAL_ONLY, _TOO_SHORT, _TOO_LONG, _INVALID_LENGTH = range(5)


class _NoNumber(Exception):
    """Where libphonenumber's parse raises."""


class _BadCountryCode(_NoNumber):
    """libphonenumber's INVALID_COUNTRY_CODE: after a "+" it retries without it."""


def _pattern(desc: Any) -> re.Pattern[str] | None:
    pattern = desc.national_number_pattern if desc is not None else None
    return re.compile(pattern) if pattern else None


@dataclass(frozen=True)
class _Plan:
    """One region's (or non-geographic calling code's) metadata, compiled for parsing."""

    code: int
    code_text: str
    idd: re.Pattern[str] | None
    national_prefix: str
    prefix_for_parsing: re.Pattern[str] | None
    transform: str | None
    general: re.Pattern[str] | None
    lengths: tuple[int, ...]
    local_lengths: tuple[int, ...]
    prefix_digits: str | None  # the national prefix for parsing when it is plain digits

    def viable(self, number: str) -> bool:
        return self.general is not None and self.general.fullmatch(number) is not None

    def length(self, number: str) -> int:
        """libphonenumber's ``_test_number_length`` for an unknown type."""
        size, lengths = len(number), self.lengths
        if not lengths:
            return _INVALID_LENGTH
        if size in self.local_lengths:
            return _LOCAL_ONLY
        if lengths[0] == size:
            return _POSSIBLE
        if lengths[0] > size:
            return _TOO_SHORT
        if lengths[-1] < size:
            return _TOO_LONG
        return _POSSIBLE if size in lengths[1:] else _INVALID_LENGTH

    def strip_national_prefix(self, number: str) -> tuple[str, bool]:
        """libphonenumber's ``_maybe_strip_national_prefix_carrier_code``: the number, and
        whether a national prefix was taken off."""
        pattern = self.prefix_for_parsing
        if not number or pattern is None:
            return number, False
        found = pattern.match(number)
        if found is None:
            return number, False
        viable = self.viable(number)
        groups = found.groups()
        if not self.transform or groups[-1] is None:
            rest = number[found.end() :]
        else:
            rest = pattern.sub(self.transform, number, count=1)
        if viable and not self.viable(rest):
            return number, False
        return rest, True


def _plan(meta: Any) -> _Plan:
    general = meta.general_desc
    lengths = tuple(general.possible_length) if general is not None else ()
    prefix = meta.national_prefix_for_parsing or ""
    return _Plan(
        code=meta.country_code,
        code_text=str(meta.country_code),
        idd=re.compile(meta.international_prefix) if meta.international_prefix else None,
        national_prefix=meta.national_prefix or "",
        prefix_for_parsing=re.compile(meta.national_prefix_for_parsing) if meta.national_prefix_for_parsing else None,
        transform=meta.national_prefix_transform_rule,
        general=_pattern(general),
        lengths=lengths,
        local_lengths=tuple(general.possible_length_local_only or ()) if general is not None else (),
        prefix_digits=prefix if (prefix.isdigit() or not prefix) and not meta.national_prefix_transform_rule else None,
    )


@lru_cache(maxsize=512)
def _region_plan(region: str) -> _Plan | None:
    from phonenumbers import PhoneMetadata

    meta = PhoneMetadata.metadata_for_region(region)
    return _plan(meta) if meta is not None else None


@lru_cache(maxsize=512)
def _country_plan(code: int) -> _Plan | None:
    """The metadata libphonenumber parses a number of this calling code with (its main region's)."""
    from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneMetadata

    regions = COUNTRY_CODE_TO_REGION_CODE.get(code)
    if not regions:
        return None
    if regions[0] == "001":
        meta = PhoneMetadata.metadata_for_nongeo_region(code)
        return _plan(meta) if meta is not None else None
    return _region_plan(regions[0])


def _type_patterns(meta: Any) -> dict[int, str]:
    """libphonenumber's ``_number_type_helper(nsn, meta) != UNKNOWN`` as one regex per length
    of the national significant number: the general pattern as a look-ahead, then the
    alternatives of the number types possible at that length."""
    general = meta.general_desc
    if general is None or not general.national_number_pattern:
        return {}
    kinds = [
        meta.premium_rate,
        meta.toll_free,
        meta.shared_cost,
        meta.voip,
        meta.personal_number,
        meta.pager,
        meta.uan,
        meta.voicemail,
        meta.fixed_line,
    ]
    if not meta.same_mobile_and_fixed_line_pattern:
        kinds.append(meta.mobile)
    kinds = [k for k in kinds if k is not None and k.national_number_pattern]
    general_lengths = set(general.possible_length or ())
    out: dict[int, str] = {}
    for size in range(_MIN_NSN, _MAX_NSN + 1):
        if general_lengths and size not in general_lengths:
            continue
        fitting = [k.national_number_pattern for k in kinds if not k.possible_length or size in k.possible_length]
        if fitting:
            alternatives = "|".join(f"(?:{p})" for p in fitting)
            out[size] = f"(?=(?:{general.national_number_pattern})\\Z)(?:{alternatives})"
    return out


class _Validity:
    """libphonenumber's ``is_valid_number`` for one calling code, as a function of the national
    significant number. The region is found as ``region_code_for_number`` finds it: in order,
    the first region whose leading digits match decides, unless a region without leading
    digits before it finds the number valid. Regions are combined into one regex per length."""

    def __init__(self, regions: list[tuple[str | None, dict[int, str]]]) -> None:
        self.regions = regions
        leads = [(i, lead) for i, (lead, _) in enumerate(regions) if lead is not None]
        # An alternation tries its branches in order: the first region whose leading digits match.
        self.lead = re.compile("|".join(f"(?P<r{i}>{lead})" for i, lead in leads)) if leads else None
        # Per position of that region (len(regions): none matched), per length: the regions
        # without leading digits before it, as one regex; compiled when first needed.
        self.before: list[dict[int, re.Pattern[str] | None]] = [{} for _ in range(len(regions) + 1)]
        self.alone: list[dict[int, re.Pattern[str] | None]] = [{} for _ in regions]

    def _compile(self, indexes: Sequence[int], size: int) -> re.Pattern[str] | None:
        sources = [self.regions[i][1][size] for i in indexes if size in self.regions[i][1]]
        return re.compile("|".join(f"(?:{x})" for x in sources)) if sources else None

    def __call__(self, nsn: str) -> bool:
        size = len(nsn)
        upto = len(self.regions)
        if self.lead is not None:
            found = self.lead.match(nsn)
            if found is not None:
                upto = next(int(k[1:]) for k, v in found.groupdict().items() if v is not None)
        patterns = self.before[upto]
        if size not in patterns:
            patterns[size] = self._compile([i for i in range(upto) if self.regions[i][0] is None], size)
        pattern = patterns[size]
        if pattern is not None and pattern.fullmatch(nsn) is not None:
            return True
        if upto == len(self.regions):
            return False
        alone = self.alone[upto]
        if size not in alone:
            alone[size] = self._compile([upto], size)
        pattern = alone[size]
        return pattern is not None and pattern.fullmatch(nsn) is not None


def _single(patterns: dict[int, str]) -> Callable[[str], bool]:
    """``_Validity`` for a calling code of one region (most): one regex per length."""
    compiled = {size: re.compile(source) for size, source in patterns.items()}
    get = compiled.get

    def valid(nsn: str) -> bool:
        pattern = get(len(nsn))
        return pattern is not None and pattern.fullmatch(nsn) is not None

    return valid


@lru_cache(maxsize=512)
def _validator(code: int) -> Callable[[str], bool]:
    from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneMetadata

    regions = COUNTRY_CODE_TO_REGION_CODE.get(code) or ()
    if regions[:1] == ("001",):
        meta = PhoneMetadata.metadata_for_nongeo_region(code)
        return _single(_type_patterns(meta) if meta is not None else {})
    metas = [m for m in (PhoneMetadata.metadata_for_region(r) for r in regions) if m is not None]
    if len(metas) == 1:  # one region: its leading digits are never consulted
        return _single(_type_patterns(metas[0]))
    return _Validity([(m.leading_digits, _type_patterns(m)) for m in metas])


@lru_cache(maxsize=1)
def _calling_codes() -> dict[str, int]:
    from phonenumbers import COUNTRY_CODE_TO_REGION_CODE

    return {str(c): c for c in COUNTRY_CODE_TO_REGION_CODE}


def _split_country_code(number: str, codes: dict[str, int]) -> tuple[int, str]:
    """libphonenumber's ``_extract_country_code`` (calling codes never start with 0)."""
    if len(number) >= 1 and number[0] != "0":
        code = codes.get(number[:1]) or codes.get(number[:2]) or codes.get(number[:3])
        if code is not None:
            return code, number[len(str(code)) :]
    return 0, number


def _country_code(digits: str, plus: bool, home: _Plan, codes: dict[str, int]) -> tuple[int, str, int]:
    """libphonenumber's ``_maybe_extract_country_code``: (calling code or 0, the rest, how the
    number was written)."""
    international = plus
    full = digits
    if not plus and home.idd is not None:
        found = home.idd.match(digits)
        if found is not None:
            rest = digits[found.end() :]
            if rest[:1] != "0":  # calling codes never start with 0
                full, international = rest, True
    if international:
        if len(full) <= _MIN_NSN:
            raise _NoNumber
        code, rest = _split_country_code(full, codes)
        if code:
            return code, rest, _INTERNATIONAL
        raise _BadCountryCode
    if full.startswith(home.code_text):
        rest, _ = home.strip_national_prefix(full[len(home.code_text) :])
        if (not home.viable(full) and home.viable(rest)) or home.length(full) == _TOO_LONG:
            return home.code, rest, _BARE_CODE
    return 0, "", _NATIONAL


def _parse(digits: str, plus: bool, home: _Plan, codes: dict[str, int]) -> tuple[int, str, int, bool]:
    """libphonenumber's ``parse`` of a digits-and-separators string with ``home`` as the default
    region: (calling code, national significant number, how it was written, national prefix
    taken off). Raises ``_NoNumber`` where ``parse`` raises."""
    try:
        code, national, written = _country_code(digits, plus, home, codes)
    except _BadCountryCode:
        if not plus:
            raise
        code, national, written = _country_code(digits, False, home, codes)
        if code == 0:
            raise _NoNumber from None
    if code:
        plan = _country_plan(code)  # the calling code's main region, as libphonenumber takes
        if plan is None:
            raise _NoNumber
    else:
        national, plan, code = digits, home, home.code
    if len(national) < _MIN_NSN:
        raise _NoNumber
    stripped, took_prefix = plan.strip_national_prefix(national)
    if plan.length(stripped) not in (_TOO_SHORT, _LOCAL_ONLY, _INVALID_LENGTH):
        national = stripped
    else:
        took_prefix = False
    if len(national) > _MAX_NSN:
        raise _NoNumber
    return code, national, written, took_prefix


def _national_lengths(home: _Plan) -> frozenset[int] | None:
    """Lengths of a digit string written nationally in ``home`` that can give a number of a
    possible length for its calling code (in any of its regions, where validity is decided),
    with or without the national prefix; ``None``: any length may."""
    from phonenumbers import COUNTRY_CODE_TO_REGION_CODE

    plans = [_region_plan(r) for r in COUNTRY_CODE_TO_REGION_CODE.get(home.code, ())]
    if home.prefix_digits is None or not plans or any(p is None or not p.lengths for p in plans):
        return None
    lengths = {n for p in plans if p is not None for n in p.lengths}
    return frozenset(lengths | {n + len(home.prefix_digits) for n in lengths})


def _fallback(code: int, national: str, written: int, took_prefix: bool, home: _Plan) -> bool:
    """Rule 2 of the module docstring, for a number libphonenumber finds invalid."""
    if written == _INTERNATIONAL:
        plan = _country_plan(code)
        return plan is not None and plan.length(national) == _POSSIBLE and 8 <= len(str(code)) + len(national) <= 15
    if written == _BARE_CODE:
        return False  # the home calling code without "+" ("33 6 …"): only a valid number is taken
    if home.national_prefix == "0" and not took_prefix:
        return False  # a "0" national prefix is always written in national numbers (FR, GB, DE)
    return home.length(national) == _POSSIBLE


def _slow(text: str, regions: Sequence[str]) -> str | None:
    """libphonenumber itself, for strings outside the fast shape: valid numbers only."""
    if len(text) > _MAX_INPUT or not _ANY_TWO_DIGITS.search(text):
        return None
    import phonenumbers

    for region in regions:
        try:
            number = phonenumbers.parse(text, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return None


_BY_CODE: dict[int, tuple[_Plan | None, Callable[[str], bool]]] = {}


def _international(code: int, national: str) -> str | None:
    """The end of libphonenumber's ``parse`` for a number written with "+" and a known calling
    code, which no default region changes, then rules 1 and 2."""
    entry = _BY_CODE.get(code)
    if entry is None:
        entry = _BY_CODE[code] = (_country_plan(code), _validator(code))
    plan, valid = entry
    if plan is None or len(national) < _MIN_NSN:
        return None
    npp = plan.prefix_for_parsing
    if npp is not None and npp.match(national):
        stripped, _ = plan.strip_national_prefix(national)
        if plan.length(stripped) not in (_TOO_SHORT, _LOCAL_ONLY, _INVALID_LENGTH):
            national = stripped
    if len(national) > _MAX_NSN:
        return None
    if valid(national) or _fallback(code, national, _INTERNATIONAL, False, plan):
        return f"+{code}{national}"
    return None


@lru_cache(maxsize=64)
def phone_parser(regions: tuple[str, ...]) -> Callable[[str], str | None]:
    """For fixed regions, a function of the value: its E.164 form by the rules of the module
    docstring, or ``None``. The regions' metadata is compiled once, not per value (the scan's
    hot path); ``is_valid`` tells rule 1 from rule 2."""
    plans = tuple(p for p in (_region_plan(r) for r in regions) if p is not None)
    codes = _calling_codes()
    shape = _SHAPE.fullmatch
    validator = _validator
    split = _split_country_code
    international = _international
    homes = tuple((p, _validator(p.code), _national_lengths(p)) for p in plans)

    def parse(value: str) -> str | None:
        if type(value) is not str:
            return None
        text = value.strip()
        found = shape(text) if text.isascii() and len(text) <= _MAX_INPUT else None
        if found is None:
            return _slow(text, regions)
        plus, body = found.groups()
        digits = body.encode().translate(None, _NON_DIGIT_BYTES).decode()
        if len(digits) < 3:  # libphonenumber reads such strings its own way: ask it
            return _slow(text, regions)
        if plus and digits[0] != "0":
            # After "+" a known calling code decides alone; an unknown one is read again
            # without the "+" in each region, as libphonenumber does.
            code = codes.get(digits[:1]) or codes.get(digits[:2]) or codes.get(digits[:3])
            if code is not None:
                return international(code, digits[len(str(code)) :])
        kept: str | None = None
        for home, home_valid, national_lengths in homes:
            if plus or (home.idd is not None and home.idd.match(digits)) or digits.startswith(home.code_text):
                try:
                    code, national, written, took_prefix = _parse(digits, bool(plus), home, codes)
                except _NoNumber:
                    continue
                valid = validator(code)
            else:
                # A national number (the common case): ``_parse`` without the calls, and not at
                # all where no length fits.
                if national_lengths is not None and len(digits) not in national_lengths:
                    continue
                code, national, written, took_prefix, valid = home.code, digits, _NATIONAL, False, home_valid
                npp = home.prefix_for_parsing
                if npp is not None and npp.match(digits):
                    stripped, took_prefix = home.strip_national_prefix(digits)
                    if took_prefix and home.length(stripped) in (_POSSIBLE, _TOO_LONG):
                        national = stripped
                    else:
                        took_prefix = False
                if len(national) > _MAX_NSN:
                    continue
            if valid(national):
                return f"+{code}{national}"
            if kept is None and _fallback(code, national, written, took_prefix, home):
                kept = f"+{code}{national}"
        if digits[:2] == "00" and digits[2:3] != "0":
            # "00" is the international prefix of most of the world, if not of every region
            # configured (Australia dials 0011): read so before any national reading.
            code, rest = split(digits[2:], codes)
            if code:
                return international(code, rest) or kept
        return kept

    return parse


def is_valid(e164: str) -> bool:
    """Whether libphonenumber deems an E.164 number valid (rule 1, not rule 2)."""
    code, national = _split_country_code(e164[1:], _calling_codes())
    return code != 0 and _validator(code)(national)


def phone_shaped(value: str) -> bool:
    """Digits and separators, with an optional "+" and extension: how phone columns hold numbers."""
    text = value.strip()
    return text.isascii() and _SHAPE.fullmatch(text) is not None and any(c.isdigit() for c in text)


def digits_only(value: str) -> str | None:
    """The canonical form of a phone number that fits no configured region: its digits, without
    a leading "+" or extension, when the value is digits and separators only, not a date or an
    amount, and holds 7 to 15 digits (E.164's maximum). ``None`` for anything else."""
    text = value.strip()
    found = _SHAPE.fullmatch(text) if text.isascii() else None
    if found is None or _DATE.match(text) or _AMOUNT.match(text):
        return None
    digits = found.group(2).encode().translate(None, _NON_DIGIT_BYTES).decode()
    return digits if 7 <= len(digits) <= 15 else None
