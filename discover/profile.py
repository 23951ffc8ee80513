"""Stage 1: decide what each field holds from a bounded random sample.

Column-name hints and the share of sampled values that validate decide the plan:
typed identifier fields (e-mail, phone, IP) are read with validators only, name fields
are taken as names, free-text fields go through Presidio in full.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from connectors.base import FieldInfo, Record
from discover.detector import Detector
from discover.e164 import digits_only, phone_shaped
from discover.identifiers import (
    EMAIL,
    IP,
    PERSON,
    PHONE,
    looks_like_name,
    normalise_email,
    normalise_ip,
    normalise_phone,
)

#: The reason of a field the sample held no value of (``discover.sparse`` looks further).
NO_VALUES = "no values in sample"

_NON_TEXT_TYPES = {"int", "float", "decimal", "bool", "date", "datetime", "bytes"}
_DATE_LIKE = re.compile(r"^\d{4}-\d{2}-\d{2}|^\d{1,2}/\d{1,2}/\d{2,4}$|^\d{1,2}\.\d{1,2}\.\d{4}$|^\d{8}$")

_HINTS: list[tuple[str, re.Pattern[str]]] = [
    ("email", re.compile(r"(^|_)(e_?mail|mail|courriel|email_address)(_|$)")),
    (
        "phone",
        re.compile(
            r"(^|_)(phone|phones|phone_?number|tel|tels|telephone|telefon|telefono|telefone|mobile|mobil|"
            r"cell|cellphone|cell_?phone|fax|gsm|portable|msisdn)(_|$)"
        ),
    ),
    (
        "ip",
        re.compile(r"(^|_)(ip|ipv4|ipv6|ip_address|ipaddr|ip_addr|remote_addr|client_addr|remote_ip|client_ip)(_|$)"),
    ),
    ("first", re.compile(r"(^|_)(first_?name|given_?name|fore_?name|prenom|fname)(_|$)")),
    ("last", re.compile(r"(^|_)(last_?name|sur_?name|family_?name|nom_?de_?famille|lname|nom)(_|$)")),
    (
        "full",
        re.compile(
            r"^(name|full_?name|display_?name|contact(_name)?|customer_?name|client_?name|person(_name)?|"
            r"employee_?name|rep_?name|author(_name)?|owner_?name|nom_?complet|patient_?name|user_?full_?name)$"
        ),
    ),
]
_ZIP4 = re.compile(r"^\d{5}-\d{4}$")
# Phone-named columns that hold something else about the phone: never indexed by digits alone.
_NOT_A_PHONE = re.compile(
    r"(^|_)(count|cnt|nb|num_of|id|ids|type|kind|status|verified|validated|confirmed|flag|consent|opt_?in|"
    r"opt_?out|ext|extension|country|prefix|code|area_?code|at|date|time|ts|updated|created)(_|$)"
)
# Names of things that are not people, even when the column is called "name".
_NOT_A_PERSON = re.compile(
    r"(product|company|business|org|organi[sz]ation|brand|item|sku|file|city|town|country|street|"
    r"region|state|category|domain|host|server|table|column|project|team|department|dept|store|shop|"
    r"app|service|device|model|plan|tag|group|role|event|campaign|vendor|supplier|merchant|bank|user_?name|login)"
)


@dataclass(frozen=True)
class FieldProfile:
    """What a field holds, decided from a sample."""

    field: str
    entity_type: str | None = None
    name_part: str | None = None
    free_text: bool = False
    sampled: int = 0
    hit_rate: float = 0.0
    null_share: float = 0.0
    distinct_share: float = 0.0
    reason: str = ""
    #: A phone column whose numbers that fit no configured region are indexed by their digits
    #: (``PHONE_DIGITS``). The index keeps it in ``reason``, not in a column of its own.
    phone_digits: bool = False

    @property
    def is_pii(self) -> bool:
        return self.entity_type is not None or self.free_text

    def as_dict(self) -> dict[str, Any]:
        """The row the index stores."""
        row = asdict(self)
        del row["phone_digits"]
        return row


# Columns that hold someone else's identifier than the record's holder's: a referrer, a
# recipient, an emergency contact, a manager (``discover.subjects``: such a record links nothing).
# Not bare "to" or "from": ``ship_to_phone`` and ``reply_to`` are the customer's own.
_ANOTHER_PERSON = re.compile(
    r"(?:^|_)(referrer|referred|referral|referee|sponsor|invited|inviter|invitee|recipient|sender|cc|bcc|"
    r"manager|supervisor|emergency|guardian|parent|spouse|partner|beneficiary|gift|assignee|assigned|"
    r"approver|reviewer|witness|kin|agent|author|admin|actor|target|operator|tutor|teacher|coach|doctor|"
    r"buyer|seller|landlord|tenant|"
    r"(?:created|updated|modified|changed|deleted|approved|performed|requested|submitted|reported|"
    r"reviewed|sent|entered|validated)_by|"
    # French names (accents removed): the charter's company and its customers write them so.
    r"parrain|marraine|filleul|filleule|apporteur|destinataire|expediteur|emetteur|urgence|tuteur|"
    r"tutrice|conjoint|conjointe|epoux|epouse|compagnon|compagne|pere|mere|beneficiaire|temoin|"
    r"mandataire|medecin|acheteur|vendeur|bailleur|locataire|auteur|enseignant|formateur|conseiller|"
    r"conseillere|gestionnaire|responsable|superieur|employeur|cotitulaire|"
    r"(?:cree|creee|modifie|modifiee|valide|validee|approuve|saisi|saisie|envoye|recommande|parraine|"
    r"invite|signale|supprime)_par)(?:_|$)"
)


def another_persons_role(field: str) -> str | None:
    """The role a field's name gives another person than the record's holder
    (``referred_by_email``: ``referred``; ``emergency_contact_phone``: ``emergency``;
    ``recipient.email``: ``recipient``), or None. Fields of one role on one record are one
    person's (``agent_email`` and ``agent_phone`` on an agent's own row)."""
    for part in field.replace("[]", "").split("."):
        if (found := _ANOTHER_PERSON.search(_field_name(part))) is not None:
            return found.group(1)
    return None


def _field_name(field: str) -> str:
    """A field's leaf name in snake case, accents removed (``téléphone`` → ``telephone``)."""
    leaf = field.rsplit(".", 1)[-1].replace("[]", "")
    name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", leaf).lower().replace("-", "_").replace(" ", "_")
    if not name.isascii():
        name = "".join(c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c))
    return name


def hint_for(field: str) -> str | None:
    """The kind of identifier a field's name suggests, or ``None``."""
    name = _field_name(field)
    for kind, pattern in _HINTS:
        if pattern.search(name):
            if kind in {"full", "last", "first"} and _NOT_A_PERSON.search(name):
                return None
            return kind
    return None


def _values(sample: Sequence[Record], field: str) -> tuple[list[str], int]:
    """Non-null string values of a field (list values flattened) and the number of nulls."""
    out: list[str] = []
    nulls = 0
    for record in sample:
        value = record.values.get(field)
        items = value if isinstance(value, list) else [value]
        for item in items:
            if item is None or isinstance(item, (bytes, bytearray, memoryview)):
                nulls += 1
                continue
            text = str(item).strip()
            if text:
                out.append(text)
            else:
                nulls += 1
    return out, nulls


def _rate(values: Sequence[str], check: Any) -> float:
    return sum(1 for v in values if check(v)) / len(values) if values else 0.0


#: Share of a field's values holding an e-mail address or a phone number among other words for
#: it to be read as free text.
_IDENTIFIERS_INSIDE = 0.2
_PHONE_TOKEN = re.compile(r"(?<![\w+])\+?\d[\d .()\-]{5,18}\d(?![\w])")
_EMAIL_TOKEN = re.compile(r"[^\s,;:<>()\[\]\"']+@[^\s,;:<>()\[\]\"']+")


def holds_email(value: str) -> bool:
    """Whether a value holds a valid e-mail address among other words or addresses."""
    return any(normalise_email(token) is not None for token in _EMAIL_TOKEN.findall(value))


def is_free_text(values: Sequence[str]) -> bool:
    """Prose-like values: several words on average, or long strings."""
    if not values:
        return False
    words = sum(len(v.split()) for v in values) / len(values)
    length = sum(len(v) for v in values) / len(values)
    return words >= 4 or (length >= 40 and words >= 2)


class Profiler:
    """Profiles the fields of one container from its sample."""

    def __init__(self, detector: Detector, *, regions: Sequence[str], entities: Iterable[str], language: str) -> None:
        self.detector = detector
        self.regions = tuple(regions)
        self.entities = set(entities)
        self.language = language

    def profile(self, sample: Sequence[Record], known: Sequence[FieldInfo] = ()) -> dict[str, FieldProfile]:
        # Plain str: reflected column names are SQLAlchemy str subclasses, slow for sqlite3 to bind.
        types = {str(f.name): f.type for f in known}
        names: list[str] = [str(f.name) for f in known]
        for record in sample:
            for key in record.values:
                if key not in types:
                    types[key] = "text"
                    names.append(key)
        return {name: self.profile_field(name, types[name], sample) for name in names}

    def profile_field(self, field: str, ftype: str, sample: Sequence[Record]) -> FieldProfile:
        values, nulls = _values(sample, field)
        total = len(values) + nulls
        base = FieldProfile(
            field=field,
            sampled=len(values),
            null_share=round(nulls / total, 4) if total else 1.0,
            distinct_share=round(len(set(values)) / len(values), 4) if values else 0.0,
        )
        hint = "ip" if ftype == "ip" else hint_for(field)  # inet, cidr, INET6 columns
        if not values:
            return replace(base, reason=NO_VALUES)
        if not may_hold_identifiers(field, ftype):
            return replace(base, reason=f"{ftype} values")

        decided = self._typed(values, hint)
        digits = hint == "phone" and PHONE in self.entities and phone_digits_column(field, ftype, values)
        if decided is None and digits:
            rate = sum(1 for v in values if digits_only(v)) / len(values)
            decided = PHONE, rate, "phone-shaped values and column name; numbers that fit no phone region by digits"
        elif decided is not None and decided[0] == PHONE and digits:
            decided = (*decided[:2], decided[2] + "; numbers that fit no phone region by digits")
        if decided is not None:
            entity, rate, reason = decided
            if entity in self.entities:
                return replace(
                    base,
                    entity_type=entity,
                    hit_rate=round(rate, 4),
                    reason=reason,
                    phone_digits=entity == PHONE and digits,
                )
        if is_free_text(values):
            return replace(base, free_text=True, reason="free text")
        inside = _rate(values, lambda v: self._holds_email(v) or self._holds_phone(v))
        if inside >= _IDENTIFIERS_INSIDE:
            # Lists of addresses ("a@x.com, b@y.org") and short notes ("cc a@x.com", "tel:
            # +33612345678"): too short for prose, not one identifier each; read as free text,
            # which finds each of them.
            return replace(
                base,
                free_text=True,
                hit_rate=round(inside, 4),
                reason="e-mail addresses or phone numbers inside the values",
            )
        if PERSON in self.entities:
            person = self._person(values, hint)
            if person is not None:
                part, rate, reason = person
                return replace(base, entity_type=PERSON, name_part=part, hit_rate=round(rate, 4), reason=reason)
        return replace(base, reason="no identifier found in sample")

    def _holds_email(self, value: str) -> bool:
        """``holds_email``, when e-mail addresses are scanned for."""
        return EMAIL in self.entities and holds_email(value)

    def _holds_phone(self, value: str) -> bool:
        """Whether a value holds a valid phone number among other words (a number alone is
        ``_typed``'s to decide: an order number can be a valid one). Only numbers written as
        phone numbers are, international (``+33…``) or with a trunk prefix (``06…``): not
        ``2026-004512`` or a timestamp's digits."""
        if PHONE not in self.entities:
            return False
        text = value.strip()
        return any(
            token != text
            and token[0] in "+0"
            and phone_shaped(token)
            and normalise_phone(token, self.regions, strict=True) is not None
            for token in _PHONE_TOKEN.findall(text)
        )

    def _typed(self, values: Sequence[str], hint: str | None) -> tuple[str, float, str] | None:
        email = _rate(values, lambda v: normalise_email(v) is not None)
        if email >= (0.3 if hint == "email" else 0.5):
            return EMAIL, email, "e-mail values" + (" and column name" if hint == "email" else "")
        ip = _rate(values, lambda v: normalise_ip(v) is not None)
        if ip >= (0.5 if hint == "ip" else 0.8) and (hint == "ip" or _address_like(values)):
            return IP, ip, "IP values" + (" and column name" if hint == "ip" else "")
        not_dates = [v for v in values if not _DATE_LIKE.match(v)]
        if _counted_up(values):
            return None  # ids and order numbers, however valid as phone numbers their digits are
        if hint == "phone":
            rate = (
                _rate(not_dates, lambda v: normalise_phone(v, self.regions) is not None) * len(not_dates) / len(values)
            )
            if rate >= 0.5:
                return PHONE, rate, "phone values and column name"
        else:
            # With no name hint only numbers written as numbers count (libphonenumber also reads
            # "ORD-2026-00123" as a number, after its letters), and not US ZIP+4 codes.
            formatted = [
                v
                for v in not_dates
                if (re.search(r"[+\s().\-]", v) or v.startswith("0")) and phone_shaped(v) and not _ZIP4.match(v)
            ]
            strict = _rate(formatted, lambda v: normalise_phone(v, self.regions, strict=True) is not None)
            rate = strict * len(formatted) / len(values)
            if rate >= 0.8:
                return PHONE, rate, "valid phone numbers"
        return None

    def _person(self, values: Sequence[str], hint: str | None) -> tuple[str, float, str] | None:
        shaped = _rate(values, looks_like_name)
        if hint in {"first", "last"} and shaped >= 0.7:
            return hint, shaped, f"{hint}-name column"
        if shaped < (0.6 if hint == "full" else 0.8):
            return None
        if len(set(values)) < 0.3 * len(values):
            # Full names of people are mostly distinct; a few names repeated are a catalogue
            # ("Desk Lamp", "Wireless Mouse"), which the NER model may still call people.
            return None
        # A generic "name" column may hold product names; the values must read as people.
        found = self.detector.analyze(list(values), language=self.language)
        # The name must be most of the value: "Jackson" in "Jackson Guitar Strap" is not.
        ner = sum(
            1
            for value, ents in zip(values, found, strict=True)
            if any(e.type == PERSON and (e.end - e.start) >= 0.8 * len(value.strip()) for e in ents)
        ) / len(values)
        if ner >= (0.4 if hint == "full" else 0.6):
            return "full", ner, "person names" + (" and column name" if hint else "")
        return None


def may_hold_identifiers(field: str, ftype: str) -> bool:
    """Whether values of this type could be taken for an identifier (``profile_field``): text,
    or any other type in a phone-named column (numbers)."""
    return ftype not in _NON_TEXT_TYPES or hint_for(field) == "phone"


def phone_digits_column(field: str, ftype: str, values: Sequence[str]) -> bool:
    """A phone-named column whose values are phone numbers even where they fit no configured
    region: nearly all digit groups of 7 to 15 digits (``digits_only``: not dates or amounts), of
    a few lengths only, not a dense run of integers (ids), and the name says nothing else
    (``phone_count``)."""
    if ftype in {"float", "decimal"} or _NOT_A_PHONE.search(_field_name(field)) or not values:
        return False
    lengths = Counter(len(d) for v in values if (d := digits_only(v)) is not None)
    shaped = sum(lengths.values())
    if shaped < 0.8 * len(values) or sum(n for _, n in lengths.most_common(3)) < 0.9 * shaped:
        return False
    return not _counted_up(values)


def _counted_up(values: Sequence[str]) -> bool:
    """Ids and order numbers counted up: integers whose spread is about their count (a sample
    of phone numbers spreads over millions)."""
    integers = sorted({int(v) for v in values if v.isdigit()})
    return len(integers) >= 0.8 * len(values) and integers[-1] - integers[0] < 10 * len(integers)


def _address_like(values: Sequence[str]) -> bool:
    """IPv4 addresses in real data have large octets; version strings (1.2.0.4) do not."""
    v6 = sum(1 for v in values if ":" in v)
    big = sum(1 for v in values if "." in v and any(p.isdigit() and int(p) >= 100 for p in v.split(".")))
    return (v6 + big) / len(values) >= 0.3
