"""Who is who: resolve the identifiers a request gives to one subject and its records.

Rules (the README's "Exporting a subject" states them for users):
- E-mail and phone are strong: records that share one belong to one subject, and the
  subject grows over such links (``expand``).
- A strong identifier is *shared* when the records it joins belong to different people:
  a phone on records with two different e-mail addresses (or two different full names),
  an e-mail on records with two different phones and two different full names
  (``info@company``). A shared identifier links nothing, and a request by it alone is
  refused as ambiguous.
- Names, IPs and digits-only phone numbers (``PHONE_DIGITS``: a phone column's number that
  fits no configured region) are weak: they attach to a subject but never merge two subjects.
  A request by one of them alone is refused when it matches more than one subject.
- Only identifiers in typed or name columns link. Identifiers inside free text find the
  record (a note that mentions the subject) but never link it to anyone.
- A record can hold two people's strong identifiers: a customer row whose ``referred_by_email``
  is another customer's address. Where every column that holds an identifier is another
  person's (its name gives a role and the record holds another strong identifier outside it,
  or the container has the holder's own record with it in the column of records' own
  identifiers), the record refers to them (``referenced``): it is exported to them
  (``REFERENCED``) but links nothing, so neither person's package takes in the other's records.
- A name is no proof of identity: a record that matches the subject by a name alone (a
  namesake in a catalogue, a note that only names them) is not theirs but for review, and
  so is a record matched only by an IP address, or a digits-only phone number, that other
  subjects' records also hold.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from connectors.errors import ConfigError
from discover.errors import AmbiguousSubjectError
from discover.extract import FIELD, TEXT
from discover.identifiers import (
    EMAIL,
    IP,
    PERSON,
    PHONE,
    PHONE_DIGITS,
    STRONG,
    normalise,
    normalise_found,
    phone_digits,
)
from discover.index import Index
from discover.masking import mask
from discover.name_fields import FULL_NAME_SCORE, name_columns
from discover.profile import another_persons_role
from discover.rows import FindingRow, RecordRef

STRONG_MATCH = "strong"
WEAK_MATCH = "weak"
MENTION = "mention"
#: Someone else's record that holds the subject's e-mail or phone as a reference to them (a
#: customer row's ``referred_by_email``): theirs to see, but it links nothing and is not followed.
REFERENCED = "referenced"
#: Matches by a name alone, or by an IP other subjects hold too: staff decide (``--include-review``).
REVIEW = "review"

NAME_ONLY = "matches the subject by name only"
NAME_IN_TEXT_ONLY = "names the subject in free text, and nothing else ties it to them"
SHARED_IP = "matches by an IP address that other subjects' records also hold"
SHARED_DIGITS = "matches by a phone number's digits that other subjects' records also hold"
#: How much less often a column must be empty than the next of its type to be the records' own.
_OWNER_MARGIN = 0.2
#: Weak identifiers that tie a record to the subject unless other subjects hold them too.
_TELLING = (IP, PHONE_DIGITS)


@dataclass(frozen=True)
class Identifier:
    """An identifier a request gives, normalised."""

    entity_type: str
    value: str

    @property
    def masked(self) -> str:
        return mask(self.entity_type, self.value)


def parse_identifiers(
    *,
    emails: Iterable[str] = (),
    phones: Iterable[str] = (),
    ips: Iterable[str] = (),
    names: Iterable[str] = (),
    regions: Sequence[str],
) -> list[Identifier]:
    """Normalise request identifiers; a value that is not valid for its type is a usage error.

    A phone number is normalised by the function the scan uses: its E.164 form, or, when it
    fits no configured region, its digits (``PHONE_DIGITS``), as phone columns index such numbers.
    """
    out: list[Identifier] = []
    for entity_type, values, setting in (
        (EMAIL, emails, "identifiers.email"),
        (PHONE, phones, "identifiers.phone"),
        (IP, ips, "identifiers.ip"),
        (PERSON, names, "identifiers.name"),
    ):
        for raw in values:
            value = normalise(entity_type, raw, regions)
            if value is None and entity_type == PHONE and (digits := phone_digits(raw)) is not None:
                out.append(Identifier(PHONE_DIGITS, digits))
                continue
            if value is None:
                raise ConfigError(
                    f"{mask(entity_type, raw.strip())} is not a valid {entity_type.lower().replace('_', ' ')}"
                    + ("; give it in international form (+33 …) or set phone_regions" if entity_type == PHONE else ""),
                    setting=setting,
                )
            out.append(Identifier(entity_type, value))
    if not out:
        raise ConfigError("give at least one identifier", setting="identifiers")
    return list(dict.fromkeys(out))


@dataclass
class Subject:
    """A resolved subject: its identifier hashes and the records that hold its data."""

    given: list[Identifier]
    strong: set[bytes] = field(default_factory=set)
    weak: set[bytes] = field(default_factory=set)
    types: dict[bytes, str] = field(default_factory=dict)
    #: container id → record key → how it matched (strong, weak, mention, referenced, review)
    records: dict[int, dict[str, str]] = field(default_factory=lambda: defaultdict(dict))
    #: Why each ``review`` record is only for review.
    review: dict[RecordRef, str] = field(default_factory=dict)

    @property
    def found(self) -> bool:
        return any(self.records.values())

    @property
    def idents(self) -> set[bytes]:
        return self.strong | self.weak


class _Graph:
    """Index look-ups with memoisation; one resolution asks the same questions repeatedly."""

    def __init__(self, index: Index) -> None:
        self.index = index
        self._placed: dict[bytes, list[FindingRow]] = {}
        #: Per identifier: container id → field → keys of the records that hold it there.
        self._where: dict[bytes, dict[int, dict[str, set[str]]]] = {}
        self._records: dict[bytes, list[RecordRef]] = {}
        self._findings: dict[RecordRef, list[FindingRow]] = {}
        self._owners: dict[int, dict[str, str | None]] = {}

    def placements(self, ident: bytes) -> list[FindingRow]:
        """The findings of ``ident`` in typed or name columns."""
        if ident not in self._placed:
            self.place([ident])
        return self._placed[ident]

    def place(self, idents: Iterable[bytes]) -> None:
        """Read where identifiers sit (``placements``), all those not read yet in one look-up."""
        missing = list(dict.fromkeys(i for i in idents if i not in self._placed))
        if not missing:
            return
        for ident in missing:
            self._placed[ident] = []
            self._where[ident] = defaultdict(lambda: defaultdict(set))
        for row in self.index.findings_for(missing, origin=FIELD):
            if row.ident in self._where:
                self._placed[row.ident].append(row)
                self._where[row.ident][row.container_id][row.field].add(row.record_key)

    def records_with(self, ident: bytes) -> list[RecordRef]:
        if ident not in self._records:
            self._records[ident] = sorted(
                {RecordRef(r.container_id, r.record_key) for r in self.placements(ident)},
                key=lambda r: (r.container_id, r.record_key),
            )
        return self._records[ident]

    def owner_column(self, container_id: int, entity_type: str) -> str | None:
        """The container's column of its records' own e-mail (or phone): the one of that type
        filled on most records, if clearly so (``referred_by_email`` is filled on few rows,
        ``email`` on nearly all); None when two are filled alike (a sender and a recipient)."""
        if container_id not in self._owners:
            by_type: dict[str, list[tuple[float, str]]] = defaultdict(list)
            for p in self.index.profiles(container_id):
                if p.entity_type in STRONG and not p.free_text:
                    by_type[p.entity_type].append((p.null_share, p.field))
            owners: dict[str, str | None] = {}
            for etype, columns in by_type.items():
                columns.sort()
                clear = len(columns) == 1 or columns[1][0] - columns[0][0] >= _OWNER_MARGIN
                owners[etype] = columns[0][1] if clear else None
            self._owners[container_id] = owners
        return self._owners[container_id].get(entity_type)

    def may_refer(self, ref: RecordRef, ident: bytes) -> bool:
        """Whether every column where ``ref`` holds ``ident`` may be another person's: its name
        gives a role (``referred_by_email``, ``emergency_contact_phone``: ``another_persons_role``),
        or the container has a record of the holder's own with ``ident`` in its column of
        records' own identifiers (``owner_column``), where ``ref`` does not hold it. Read from
        where ``ident`` sits only; ``referenced`` decides."""
        return self._columns(ref, ident) is not None

    def _columns(self, ref: RecordRef, ident: bytes) -> list[tuple[str | None, str | None]] | None:
        """The columns where ``ref`` holds ``ident``, each as its role (by name) and the owner
        column (``owner_column``) whose own record of the holder's makes it another person's;
        None when one of them is neither (the holder's own column)."""
        placed = self._where_of(ident).get(ref.container_id, {})
        fields = [f for f, keys in placed.items() if ref.record_key in keys]
        if not fields:
            return None
        owner = self.owner_column(ref.container_id, self.placements(ident)[0].entity_type)
        owns_elsewhere = owner is not None and any(k != ref.record_key for k in placed.get(owner, ()))
        out: list[tuple[str | None, str | None]] = []
        for f in fields:
            role = another_persons_role(f)
            if role is None and not (owns_elsewhere and f != owner):
                return None
            out.append((role, owner if role is None else None))
        return out

    def referenced(self, ref: RecordRef, ident: bytes) -> bool:
        """Whether ``ref`` is someone else's record that refers to ``ident``'s holder (Alice's
        customer row naming Bruno in ``referred_by_email``). Each column where it holds
        ``ident`` is another person's: by its role, when the record holds another e-mail or phone
        outside that role (``referred_by_email`` beside ``email``; ``sender_email`` beside
        ``recipient_email``; not ``agent_phone`` beside ``agent_email``, one agent's); by the
        holder's own record elsewhere, when the record holds another in the owner column. Such a
        record ties nothing to ``ident``."""
        columns = self._columns(ref, ident)
        if columns is None:
            return False
        others = [
            (f.field, another_persons_role(f.field))
            for f in self.findings_of([ref])
            if f.entity_type in STRONG and f.ident != ident
        ]
        for role, owner in columns:
            if role is not None and not any(r != role for _, r in others):
                return False  # the same role's only: the holder's own (an agent's e-mail and phone)
            if owner is not None and not any(field == owner for field, _ in others):
                return False
        return True

    def _where_of(self, ident: bytes) -> dict[int, dict[str, set[str]]]:
        self.placements(ident)
        return self._where[ident]

    def holder_findings(self, ident: bytes) -> Iterator[tuple[RecordRef, FindingRow]]:
        """The other findings in typed or name columns of the records that carry ``ident`` there,
        where those records are its holder's: not a record that only refers to it, nor a strong
        identifier that such a record holds of someone it refers to (``referenced``)."""
        refs = self.records_with(ident)
        found = self.findings_of(refs)  # every record in one look-up, not one by one
        self.place(f.ident for f in found if f.entity_type in STRONG)
        for ref in refs:
            if self.referenced(ref, ident):
                continue
            for f in self.findings_of([ref]):
                if f.ident != ident and not (f.entity_type in STRONG and self.referenced(ref, f.ident)):
                    yield ref, f

    def findings_of(self, refs: Sequence[RecordRef]) -> list[FindingRow]:
        missing = [r for r in refs if r not in self._findings]
        if missing:
            grouped: dict[RecordRef, list[FindingRow]] = {r: [] for r in missing}
            for row in self.index.findings_in(missing, origin=FIELD):
                grouped[RecordRef(row.container_id, row.record_key)].append(row)
            self._findings.update(grouped)
        return [f for r in refs for f in self._findings[r]]

    def co_identifiers(self, ident: bytes) -> dict[str, set[bytes]]:
        """Identifiers on the records that carry ``ident`` in a typed or name column, by type."""
        out: dict[str, set[bytes]] = defaultdict(set)
        for _, f in self.holder_findings(ident):
            if f.entity_type != PERSON or f.score >= FULL_NAME_SCORE:
                out[f.entity_type].add(f.ident)
        return out

    def co_groups(self, ident: bytes) -> dict[str, int]:
        """How many distinct holders the co-identifiers of ``ident`` point to, by type.

        Identifiers of one type that sit on the same record belong to one holder (a customer row
        with a login e-mail and a newsletter e-mail is one person), so they count once; the groups
        are joined across records that share one of them."""
        parent: dict[bytes, bytes] = {}

        def find(x: bytes) -> bytes:
            while parent.setdefault(x, x) != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        per_record: dict[tuple[RecordRef, str], list[bytes]] = defaultdict(list)
        types: dict[bytes, str] = {}
        for ref, f in self.holder_findings(ident):
            if f.entity_type != PERSON or f.score >= FULL_NAME_SCORE:
                per_record[(ref, f.entity_type)].append(f.ident)
                types[f.ident] = f.entity_type
        for members in per_record.values():
            for other in members[1:]:
                parent[find(other)] = find(members[0])
        counts: dict[str, int] = defaultdict(int)
        for member, etype in types.items():
            if find(member) == member:
                counts[etype] += 1
        return counts

    def sharers(self, ident: bytes, entity_type: str) -> int:
        """How many people a strong identifier seems to belong to (1 when it is not shared)."""
        co = self.co_groups(ident)
        if entity_type == PHONE:
            return max(1, co[EMAIL], co[PERSON])
        if entity_type == EMAIL and co[PHONE] >= 2 and co[PERSON] >= 2:
            return max(co[PHONE], co[PERSON])
        return 1

    def component(self, seeds: Iterable[tuple[bytes, str]], *, expand: bool) -> tuple[set[bytes], dict[bytes, str]]:
        """Strong identifiers reachable from ``seeds`` over unshared strong links."""
        types: dict[bytes, str] = {}
        found: set[bytes] = set()
        frontier = [(i, t) for i, t in seeds if self.sharers(i, t) == 1]
        while frontier:
            ident, etype = frontier.pop()
            if ident in found:
                continue
            found.add(ident)
            types[ident] = etype
            if not expand:
                continue
            for co_type in STRONG:
                for other in self.co_identifiers(ident)[co_type]:
                    if other not in found and self.sharers(other, co_type) == 1:
                        frontier.append((other, co_type))
        return found, types


def resolve(index: Index, identifiers: Sequence[Identifier], *, expand: bool = True) -> Subject:
    """Resolve request identifiers to one subject, or raise ``AmbiguousSubjectError``."""
    graph = _Graph(index)
    subject = Subject(given=list(identifiers))
    hashed = [(index.ident(i.entity_type, i.value), i) for i in identifiers]
    strong_given = [(h, i) for h, i in hashed if i.entity_type in STRONG]
    weak_given = [(h, i) for h, i in hashed if i.entity_type not in STRONG]

    for h, ident in strong_given:
        n = graph.sharers(h, ident.entity_type)
        if n > 1:
            raise AmbiguousSubjectError(
                f"{ident.entity_type.lower().replace('_', ' ')} {ident.masked} is shared by {n} subjects "
                "(an office line or a team address)",
                matched=n,
            )
    seeds = [(h, i.entity_type) for h, i in strong_given]
    if not seeds:
        seeds = _seeds_from_weak(graph, weak_given)
        if not expand:
            return _by_weak_only(index, graph, subject, seeds, weak_given)
    subject.strong, subject.types = graph.component(seeds, expand=expand)

    # Weak identifiers: those given, and those on the subject's own records (not on a record
    # that only refers to them: the names there are its holder's).
    own_records = {r for s in subject.strong for r in graph.records_with(s) if not graph.referenced(r, s)}
    for f in graph.findings_of(sorted(own_records, key=lambda r: (r.container_id, r.record_key))):
        if f.entity_type not in STRONG:
            subject.weak.add(f.ident)
            subject.types[f.ident] = f.entity_type
    for h, i in weak_given:
        subject.weak.add(h)
        subject.types[h] = i.entity_type

    _collect_records(index, graph, subject, given_weak={h for h, _ in weak_given})
    return subject


def _by_weak_only(
    index: Index,
    graph: _Graph,
    subject: Subject,
    seeds: Sequence[tuple[bytes, str]],
    weak_given: Sequence[tuple[bytes, Identifier]],
) -> Subject:
    """A request by names or IPs without expansion: the records that hold them, nothing more.

    The e-mails and phones on those records still say whose records they are (a record with
    someone else's e-mail is not the subject's), but they pull in no record of their own.
    """
    subject.strong, subject.types = graph.component(seeds, expand=False)
    for h, i in weak_given:
        subject.weak.add(h)
        subject.types[h] = i.entity_type
    _collect_records(index, graph, subject, given_weak={h for h, _ in weak_given}, by_strong=False)
    return subject


def _seeds_from_weak(graph: _Graph, weak_given: Sequence[tuple[bytes, Identifier]]) -> list[tuple[bytes, str]]:
    """A request by names or IPs only: they must point at one subject at most.

    Records that carry no e-mail or phone (log lines, say) belong to no known subject and
    do not make a request ambiguous; records of two different subjects do.
    """
    components: list[frozenset[bytes]] = []
    seeds: list[tuple[bytes, str]] = []
    for h, ident in weak_given:
        for ref in graph.records_with(h):
            strong = [
                (f.ident, f.entity_type)
                for f in graph.findings_of([ref])
                if f.entity_type in STRONG and not graph.referenced(ref, f.ident)
            ]
            comp, _ = graph.component(strong, expand=True)
            if comp and frozenset(comp) not in components:
                components.append(frozenset(comp))
                seeds.extend(strong)
        if len(components) > 1:
            raise AmbiguousSubjectError(
                f"{ident.entity_type.lower().replace('_', ' ')} {ident.masked} matches {len(components)} subjects",
                matched=len(components),
            )
    return seeds


def _collect_records(
    index: Index, graph: _Graph, subject: Subject, *, given_weak: set[bytes], by_strong: bool = True
) -> None:
    """Every record with the subject's data, and how it matched (``by_strong=False``: by weak identifiers only)."""
    strong_rows = index.findings_for(subject.strong) if subject.strong and by_strong else []
    # The records that may only refer to the subject, read in one go rather than one by one.
    graph.place(r.ident for r in strong_rows)
    maybe = {
        ref
        for r in strong_rows
        if r.origin == FIELD and graph.may_refer(ref := RecordRef(r.container_id, r.record_key), r.ident)
    }
    graph.findings_of(sorted(maybe, key=lambda r: (r.container_id, r.record_key)))
    for row in strong_rows:
        matches = subject.records[row.container_id]
        if row.origin != FIELD:
            matches.setdefault(row.record_key, MENTION)
        elif graph.referenced(RecordRef(row.container_id, row.record_key), row.ident):
            if matches.get(row.record_key) != STRONG_MATCH:
                matches[row.record_key] = REFERENCED
        else:
            matches[row.record_key] = STRONG_MATCH
    if not subject.weak:
        return
    # With the strong records matched above, a weak identifier in a field of a record that holds
    # an e-mail or phone field is on one of those or on someone else's (a namesake): skipping
    # such entries in the postings keeps this from reading a block per namesake. Without them
    # (``by_strong=False``) such a record of the subject's is for review, so it must be read.
    weak_rows = index.findings_for(subject.weak, skip_owned=by_strong)
    refs = sorted(
        {RecordRef(r.container_id, r.record_key) for r in weak_rows if r.origin == FIELD},
        key=lambda r: (r.container_id, r.record_key),
    )
    strong_on: dict[RecordRef, set[bytes]] = defaultdict(set)
    for f in graph.findings_of(refs):
        if f.entity_type in STRONG:
            strong_on[RecordRef(f.container_id, f.record_key)].add(f.ident)
    shared = {i for i in subject.weak if subject.types.get(i) in _TELLING and _held_by_others(graph, i, subject)}
    in_field: dict[RecordRef, set[bytes]] = defaultdict(set)
    in_text: dict[RecordRef, set[bytes]] = defaultdict(set)
    for row in weak_rows:
        ref = RecordRef(row.container_id, row.record_key)
        if ref.record_key in subject.records[ref.container_id]:
            continue
        if row.origin == FIELD:
            # A record that carries someone else's e-mail or phone is that person's record.
            if strong_on[ref] <= subject.strong:
                in_field[ref].add(row.ident)
        elif row.origin == TEXT and row.ident in given_weak:
            in_text[ref].add(row.ident)
    for ref, idents in in_field.items():
        if any(subject.types.get(i) in _TELLING and i not in shared for i in idents):
            subject.records[ref.container_id][ref.record_key] = WEAK_MATCH
        else:
            _for_review(subject, ref, _shared_reason(subject, idents & shared) or NAME_ONLY)
    for ref, idents in in_text.items():
        if ref in in_field:
            continue
        if any(subject.types.get(i) in _TELLING and i not in shared for i in idents):
            subject.records[ref.container_id][ref.record_key] = MENTION
        else:
            _for_review(subject, ref, _shared_reason(subject, idents & shared) or NAME_IN_TEXT_ONLY)


def _shared_reason(subject: Subject, shared: set[bytes]) -> str | None:
    if not shared:
        return None
    return SHARED_IP if any(subject.types.get(i) == IP for i in shared) else SHARED_DIGITS


def _for_review(subject: Subject, ref: RecordRef, reason: str) -> None:
    subject.records[ref.container_id][ref.record_key] = REVIEW
    subject.review[ref] = reason


def _held_by_others(graph: _Graph, ident: bytes, subject: Subject) -> bool:
    """Whether records of other people (records with an e-mail or phone that are not the subject's) hold it."""
    for ref in graph.records_with(ident):
        if subject.records[ref.container_id].get(ref.record_key) == STRONG_MATCH:
            continue
        if any(f.entity_type in STRONG for f in graph.findings_of([ref])):
            return True
    return False


def finding_values(values: dict[str, Any], finding: FindingRow, regions: Sequence[str]) -> list[str]:
    """Normalised values a record holds where a finding was made, to check it is still there.

    ``values`` is the record flattened the way the scan flattened it.
    """
    from discover.extract import value_texts
    from discover.identifiers import fold_name

    def texts(name: str) -> list[str]:
        return value_texts(values.get(name))

    etype = finding.entity_type
    parts = name_columns(finding.field)
    if len(parts) == 2:  # combined first + last name columns
        firsts, lasts = texts(parts[0]), texts(parts[1])
        return [fold_name(f"{firsts[0]} {lasts[0]}")] if firsts and lasts else []
    out: list[str] = []
    for text in texts(parts[0]):
        if finding.origin == TEXT and finding.span_start is not None:
            text = text[finding.span_start : finding.span_end]
        value = normalise_found(etype, text, regions)
        if value is not None:
            out.append(value)
    return out
