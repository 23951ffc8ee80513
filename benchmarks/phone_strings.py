"""Phone strings as people write them, built from numbers libphonenumber deems valid, and the
reference normalisation they are checked against (``tests/test_phones.py``,
``benchmarks/phones_differential.py``).

Numbers: ``phonenumbers.example_number_for_type`` for every number type of a region, then
random numbers made by varying the trailing digits of those examples, kept when valid (and a
few kept when only possible, for the fallback rule). Writings: E.164, libphonenumber's
international and national formats, ``00`` and the region's own international prefix
(``011`` from the US), ``+33 05 …`` and ``+44 (0)20 …``, the calling code without ``+``,
dots, dashes, slashes, no separators, random digit groups, parentheses, extensions
(``x123``, ``ext. 123``, ``;ext=123``, ``#123``), leading and trailing text, RFC 3966.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

REGIONS = (
    "FR", "GB", "DE", "IT", "ES", "BE", "CH", "NL", "PT", "IE", "US", "CA", "BR", "IN", "AU", "MA",
    "AT", "SE", "PL", "JP", "MX", "AR", "ZA", "SG", "CN", "RU",
)  # fmt: skip
#: Region lists the normaliser is configured with in the check, besides each region alone.
CONFIGS: tuple[tuple[str, ...], ...] = (("FR", "GB", "DE", "US"), ("US", "GB", "IT", "BR", "IN"))

_TYPES = (
    "FIXED_LINE", "MOBILE", "TOLL_FREE", "PREMIUM_RATE", "SHARED_COST", "VOIP",
    "PERSONAL_NUMBER", "PAGER", "UAN", "VOICEMAIL",
)  # fmt: skip
_EXTENSIONS = (
    " x123", "x7", " ext. 45", " ext 1234", " EXT:12", ";ext=7", " #12", " x 99", " extension 5", " x1234567",
)  # fmt: skip
_LEADING = ("Tel: ", "phone ", "(", "tel. ", "mobile: ", "  ", "T ", "<", "n° ")
_TRAILING = (" (mobile)", " - home", ".", ")", " ", ">", " !", ";", " (bureau)", " / fax")


@dataclass(frozen=True)
class Number:
    region: str
    code: int
    national: str  # national significant number, leading zeros included (Italy)
    valid: bool
    example: bool = False  # libphonenumber's example number of a type


def reference(text: str, regions: Sequence[str]) -> str | None:
    """What libphonenumber says: the E.164 of the first region in which ``text`` parses as a valid number."""
    import phonenumbers

    for region in regions:
        try:
            number = phonenumbers.parse(text, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return None


def numbers(region: str, rng: random.Random, variants: int) -> list[Number]:
    """Example numbers of every type, then up to ``variants`` random valid ones (and a few
    possible-but-invalid ones) made by varying the examples' trailing digits."""
    import phonenumbers

    examples = []
    for name in _TYPES:
        example = phonenumbers.example_number_for_type(region, getattr(phonenumbers.PhoneNumberType, name))
        if example is not None:
            examples.append(example)
    out: dict[str, Number] = {}
    for e in examples:
        nsn = phonenumbers.national_significant_number(e)
        out[nsn] = Number(region, e.country_code, nsn, True, example=True)
    tries = 0
    valid = 0
    while valid < variants and tries < variants * 20 and examples:
        tries += 1
        base = rng.choice(examples)
        nsn = phonenumbers.national_significant_number(base)
        keep = rng.randint(max(1, len(nsn) // 3), len(nsn) - 1)
        candidate = nsn[:keep] + "".join(rng.choice("0123456789") for _ in range(len(nsn) - keep))
        if candidate in out:
            continue
        parsed = phonenumbers.parse(f"+{base.country_code}{candidate}")
        if phonenumbers.is_valid_number(parsed):
            out[candidate] = Number(region, base.country_code, candidate, True)
            valid += 1
        elif phonenumbers.is_possible_number(parsed) and rng.random() < 0.15:
            out[candidate] = Number(region, base.country_code, candidate, False)
    return list(out.values())


def _groups(digits: str, rng: random.Random) -> list[str]:
    out, i = [], 0
    while i < len(digits):
        size = rng.randint(1, 4)
        out.append(digits[i : i + size])
        i += size
    return out


def writings(number: Number, rng: random.Random) -> Iterator[str]:
    """Ways people write ``number`` (some only make sense dialled from its own region)."""
    import phonenumbers

    parsed = phonenumbers.parse(f"+{number.code}{number.national}")
    fmt = phonenumbers.PhoneNumberFormat
    e164 = f"+{number.code}{number.national}"
    international = phonenumbers.format_number(parsed, fmt.INTERNATIONAL)
    national = phonenumbers.format_number(parsed, fmt.NATIONAL)
    rest = international.split(" ", 1)[1] if " " in international else number.national
    meta = phonenumbers.PhoneMetadata.metadata_for_region(number.region)
    trunk = (meta.national_prefix or "") if meta is not None else ""
    idd = (meta.preferred_international_prefix or meta.international_prefix or "") if meta is not None else ""

    yield e164
    yield international
    yield national
    yield phonenumbers.format_number(parsed, fmt.RFC3966)
    yield f"00{number.code} {rest}"
    yield f"00 {number.code} {rest}"
    if idd.isdigit():
        yield f"{idd} {number.code} {rest}"
    yield f"{number.code}{number.national}"
    yield f"{number.code} {rest}"
    if trunk:
        yield f"+{number.code} {trunk}{rest}"  # +33 05 56 …
        yield f"+{number.code} ({trunk}){rest}"  # +44 (0)20 …
        yield f"+{number.code} ({trunk}) {rest}"
        yield f"00{number.code} ({trunk}){rest}"
    for sep in (".", "-", "/", ""):
        yield international.replace(" ", sep)
        yield national.replace(" ", sep)
    digits = [d for d in national if d.isdigit()]
    national_digits = "".join(digits)
    groups = _groups(national_digits, rng)
    yield " ".join(groups)
    yield rng.choice((".", "-", " ", "/")).join(groups)
    if len(groups) > 1:
        yield f"({groups[0]}) {' '.join(groups[1:])}"
    yield f"+{number.code} " + " ".join(_groups(number.national, rng))
    yield f"+{number.code} ({number.national[:2]}) {number.national[2:]}"
    yield rng.choice((international, national, e164)) + rng.choice(_EXTENSIONS)
    yield rng.choice(_LEADING) + rng.choice((international, national, e164))
    yield rng.choice((international, national, e164)) + rng.choice(_TRAILING)
    yield rng.choice(_LEADING) + national + rng.choice(_EXTENSIONS) + rng.choice(("", " ", ".")).rstrip()
    yield f" {e164} "


def strings(count: int, *, seed: int, regions: Sequence[str] = REGIONS) -> list[tuple[str, str]]:
    """About ``count`` (region, string) pairs spread evenly over ``regions``, seeded."""
    rng = random.Random(seed)
    per_region = max(1, count // len(regions))
    out: list[tuple[str, str]] = []
    for region in regions:
        texts: list[str] = []
        pool = numbers(region, rng, variants=max(4, per_region // 20))
        examples, made = [n for n in pool if n.example], [n for n in pool if not n.example]
        order = (
            [n for pair in zip(examples, made, strict=False) for n in pair]
            + examples[len(made) :]
            + made[len(examples) :]
        )
        # Every type's example and random numbers alternate, each number in every writing.
        while len(texts) < per_region and order:
            texts.extend(writings(order[len(texts) % len(order)], rng))
        out.extend((region, t) for t in texts[:per_region])
    return out


def configs_for(region: str) -> list[tuple[str, ...]]:
    """The region lists a string of ``region`` is checked under: the region alone, then the
    multi-region lists (national writings of other regions must not be misread there)."""
    return [(region,), *CONFIGS]
