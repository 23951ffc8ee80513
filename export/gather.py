"""Gather a subject's records: read each again from its source, check it, follow foreign keys.

Nothing is exported from memory of the scan: every record is read fresh, and a record
that no longer holds the identifier it was found by (or a file that changed since the
scan) is reported in the manifest's errors instead of being exported.
"""

from __future__ import annotations

import fnmatch
import logging
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from connectors.base import ContainerRef, Relation, RelationalReader, SourceSpec, connect, decode_key
from connectors.errors import PiiportError
from connectors.flatten import flatten
from discover.extract import TEXT
from discover.identifiers import STRONG
from discover.masking import mask
from discover.plan import ExportPlan
from discover.rows import ContainerRow, FindingRow, RecordRef
from discover.subjects import MENTION, REFERENCED, REVIEW, STRONG_MATCH, WEAK_MATCH, Identifier, finding_values
from export.errors import ExportError
from export.follow import REFERENCE, UpwardFollower
from export.formats import LOCATOR, MATCH, Table

logger = logging.getLogger(__name__)

RELATED = "related"
#: Records exported but not the subject's own: nothing is followed or linked from them.
_NOT_THEIRS = (REVIEW, REFERENCED)
_FILE_KEY_KIND = {"csv": "row", "jsonl": "line", "text": "line", "json": "index", "parquet": "index"}


@dataclass(frozen=True)
class GatherOptions:
    regions: tuple[str, ...]
    max_depth: int = 3
    include_tables: tuple[str, ...] = ()
    exclude_tables: tuple[str, ...] = ()
    force_relations: tuple[str, ...] = ()
    ignore_relations: tuple[str, ...] = ()
    #: Catalogue rows the subject's rows point at, as context; how many hops from them.
    references: bool = True
    reference_depth: int = 2
    #: Export the records that match by a name alone (or a shared IP), marked ``review``.
    include_review: bool = False


@dataclass
class Gathered:
    tables: list[Table] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    third_party: list[dict[str, Any]] = field(default_factory=list)
    #: Records that match by a name alone or by a shared IP: not the subject's until staff decide.
    review: list[dict[str, Any]] = field(default_factory=list)
    #: Rows the subject shares with other people (a household address), exported marked ``shared``.
    shared: list[dict[str, Any]] = field(default_factory=list)
    #: (source, container, key) of referenced rows that are the subject's alone: what their fields hold is theirs.
    owned: set[tuple[str, str, str]] = field(default_factory=set)
    linked: list[Identifier] = field(default_factory=list)
    #: (source, container) pairs that changed since the scan; ``--rescan`` scans them again.
    stale: list[tuple[str, str]] = field(default_factory=list)


class _Place(NamedTuple):
    """Where a record read again sits: what its locator says of its container."""

    name: str
    kind: str
    version: dict[str, Any] | None = None

    @classmethod
    def of(cls, c: ContainerRow) -> _Place:
        return cls(c.name, c.kind, c.version)


def parse_relation(text: str) -> Relation:
    """``"orders.customer_id -> customers.id"`` (columns may be comma-separated for composite keys)."""
    try:
        left, right = (side.strip() for side in text.split("->"))
        child, child_cols = left.rsplit(".", 1)
        parent, parent_cols = right.rsplit(".", 1)
    except ValueError as exc:
        raise ExportError(
            f"relation {text!r} is not of the form 'child.column -> parent.column'", reason="config"
        ) from exc
    cols, ref_cols = tuple(child_cols.split(",")), tuple(parent_cols.split(","))
    if len(cols) != len(ref_cols):
        raise ExportError(f"relation {text!r} pairs {len(cols)} columns with {len(ref_cols)}", reason="config")
    return Relation(child.strip(), tuple(c.strip() for c in cols), parent.strip(), tuple(c.strip() for c in ref_cols))


def _matches(patterns: Sequence[str], source: str, container: str) -> bool:
    return any(fnmatch.fnmatchcase(container, p) or fnmatch.fnmatchcase(f"{source}:{container}", p) for p in patterns)


def _infer_fields(rows: Sequence[dict[str, Any]]) -> list[tuple[str, str]]:
    types: dict[str, str] = {}
    for row in rows:
        for key, value in row.items():
            if key in (LOCATOR, MATCH) or (key in types and types[key] != "text") or value is None:
                types.setdefault(key, "text")
                continue
            if isinstance(value, bool):
                types[key] = "bool"
            elif isinstance(value, int):
                types[key] = "int"
            elif isinstance(value, float):
                types[key] = "float"
            elif isinstance(value, (dict, list)):
                types[key] = "json"
            else:
                types[key] = "text"
    return [(k, v) for k, v in types.items() if k not in (LOCATOR, MATCH)]


class _SourceGatherer:
    """Gathers one source's part of the package."""

    def __init__(
        self,
        plan: ExportPlan,
        spec: SourceSpec,
        findings: Mapping[RecordRef, list[FindingRow]],
        foreign: Collection[RecordRef],
        options: GatherOptions,
        out: Gathered,
    ) -> None:
        self.plan = plan
        self.subject = plan.subject
        self.spec = spec
        self.containers = plan.containers
        self.by_name = plan.container_ids(spec.name)
        self.findings = findings
        #: Records holding another person's e-mail or phone in a field.
        self.foreign = foreign
        self.options = options
        self.out = out
        self.rows: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)  # container → key → row
        self.references: dict[str, dict[str, dict[str, Any]]] = {}
        self.review: dict[tuple[str, str], dict[str, Any]] = {}  # (container, key) → review list entry
        self.fields: dict[str, list[tuple[str, str]]] = {}
        self.precision: dict[str, dict[str, tuple[int, int]]] = {}
        self.linked: dict[tuple[str, str], None] = {}

    def run(self, container_ids: Sequence[int]) -> None:
        with connect(self.spec) as conn:
            for cid in container_ids:
                c = self.containers[cid]
                if _matches(self.options.exclude_tables, self.spec.name, c.name):
                    continue
                try:
                    self._matched(conn, cid, c)
                except PiiportError as exc:
                    self.out.errors.append(f"{self.spec.name}/{c.name}: {exc.message}")
            if any(c.kind == "table" for c in self.containers.values() if c.source == self.spec.name):
                try:
                    rels = self._relations(conn)
                    self._related(conn, rels)
                    self._upward(conn, rels)
                except PiiportError as exc:
                    self.out.errors.append(f"{self.spec.name}: following foreign keys failed: {exc.message}")
        for (container, key), entry in self.review.items():
            # A record that a foreign key showed to be theirs after all (a note on their account) is not for review.
            if self.rows[container].get(key, {MATCH: REVIEW})[MATCH] == REVIEW:
                self.out.review.append(entry)
        for role, tables in (("subject", self.rows), (REFERENCE, self.references)):
            for container, rows in sorted(tables.items()):
                if not rows:
                    continue
                keys = sorted(rows, key=_sort_key)
                ordered = [rows[k] for k in keys]
                fields = self.fields.get(container) or _infer_fields(ordered)
                self.out.tables.append(
                    Table(self.spec.name, container, fields, ordered, self.precision.get(container, {}), keys, role)
                )

    def _reader_meta(self, reader: Any, container: str) -> None:
        if container in self.fields:
            return
        if isinstance(reader, RelationalReader):
            self.fields[container] = [(f.name, f.type) for f in reader.all_fields()]
            self.precision[container] = reader.precision()

    def _locator(self, c: _Place, key: str, reader: Any) -> dict[str, Any]:
        if c.kind == "table":
            kind = reader.key_kind if isinstance(reader, RelationalReader) else "primary_key"
            loc: dict[str, Any] = {
                "source": self.spec.name,
                "container": c.name,
                "kind": kind,
                "key": key if kind == "row_hash" else decode_key(key),
            }
            if kind == "row_hash":
                loc["weak"] = True  # found again only while the row's content is unchanged
            return loc
        loc = {
            "source": self.spec.name,
            "container": c.name,
            "kind": _FILE_KEY_KIND.get(c.kind, "record"),
            "key": int(key) if key.isdigit() else key,
        }
        if c.version:
            loc["version"] = c.version
        return loc

    def _matched(self, conn: Any, cid: int, c: ContainerRow) -> None:
        name = c.name
        wanted = self.subject.records[cid]
        ref = ContainerRef(self.spec.name, name, c.kind, c.version)
        with conn.open(ref) as reader:
            current = reader.current_version() if c.version else None
            if c.version and current is None:
                self._stale(
                    name,
                    f"deleted since the scan; its {len(wanted)} record(s) were not exported: run the export again "
                    "with --rescan to drop it from the index",
                )
                return
            if c.version and current != c.version:
                self._stale(
                    name,
                    f"changed since the scan (size or modification time differ); its {len(wanted)} "
                    "record(s) were not exported: run the export again with --rescan",
                )
                return
            self._reader_meta(reader, name)
            fetched = dict(reader.fetch(list(wanted)))
            gone = len(set(wanted) - set(fetched))
            if gone:
                self._stale(name, f"{gone} record(s) found by the scan no longer exist; run again with --rescan")
            changed = 0
            for key, raw in fetched.items():
                hit = self._verify(cid, key, raw, wanted[key])
                if hit is None:
                    changed += 1
                    continue
                row = {**raw, LOCATOR: self._locator(_Place.of(c), key, reader), MATCH: wanted[key]}
                self._keep(cid, c.name, key, row, hit)
            if changed:
                self._stale(
                    name,
                    f"{changed} record(s) changed since the scan and no longer hold the identifier "
                    "they were found by; they were not exported: run again with --rescan",
                )

    def _stale(self, container: str, message: str) -> None:
        self.out.errors.append(f"{self.spec.name}/{container}: {message}")
        if (self.spec.name, container) not in self.out.stale:
            self.out.stale.append((self.spec.name, container))

    def _keep(self, cid: int, container: str, key: str, row: dict[str, Any], hit: _Hit) -> None:
        """A verified record: the subject's, or (matched by a name alone) one for the review list."""
        if row[MATCH] == REVIEW:
            self.review[(container, key)] = {
                "source": self.spec.name,
                "container": container,
                "locator": row[LOCATOR],
                "field": hit.field,
                "entity_type": hit.entity_type,
                "masked_value": mask(hit.entity_type, hit.value),
                "reason": self.subject.review.get(RecordRef(cid, key), ""),
            }
            if not self.options.include_review:
                return
        self.rows[container][key] = row

    def _followed(self) -> dict[str, dict[str, dict[str, Any]]]:
        """The rows foreign keys are followed from: the subject's own, not a namesake's (review),
        nor someone else's that refers to the subject, or mentions them in free text and holds
        another person's e-mail or phone in a field (a customer's row whose note names them)."""

        def theirs(table: str, key: str, row: dict[str, Any]) -> bool:
            if row[MATCH] == MENTION:
                cid = self.by_name.get(table)
                return cid is None or RecordRef(cid, key) not in self.foreign
            return row[MATCH] not in _NOT_THEIRS

        return {t: {k: r for k, r in rows.items() if theirs(t, k, r)} for t, rows in self.rows.items()}

    def _verify(self, cid: int, key: str, raw: dict[str, Any], match: str) -> _Hit | None:
        """The record still holds, where the scan saw it, an identifier of the kind it matched by.

        Returns that finding (field, entity type, value), or None.
        """
        flat = flatten(raw)
        hit: _Hit | None = None
        seen: list[tuple[str, str]] = []
        for f in self.findings.get(RecordRef(cid, key), []):
            strong, in_text = f.entity_type in STRONG, f.origin == TEXT
            for value in finding_values(flat, f, self.options.regions):
                if self.plan.ident(f.entity_type, value) != f.ident:
                    continue
                if hit is None and (
                    (match in (STRONG_MATCH, REFERENCED) and strong and not in_text)
                    or (match == WEAK_MATCH and not in_text)
                    or (match == MENTION and in_text)
                    or (match == REVIEW and not strong)
                ):
                    hit = _Hit(f.field, f.entity_type, value)
                if not in_text or strong:
                    seen.append((f.entity_type, value))
        # A namesake's record, or someone else's that refers to the subject, links nothing to them.
        if hit is not None and match not in _NOT_THEIRS:
            self.linked.update(dict.fromkeys(seen))
        return hit

    def _relations(self, conn: Any) -> list[Relation]:
        ignored = {parse_relation(r) for r in self.options.ignore_relations}
        rels = [r for r in conn.relations() if r not in ignored]
        for text in self.options.force_relations:
            rel = parse_relation(text)
            if rel.container in self.by_name or rel.ref_container in self.by_name:
                rels.append(rel)
        return rels

    def _related(self, conn: Any, rels: list[Relation]) -> None:
        person = self.plan.person_tables(self.spec.name) - {
            n for n in self.by_name if _matches(self.options.include_tables, self.spec.name, n)
        }
        # A namesake's record (review), or someone else's that refers to or mentions the subject,
        # is not the subject's: what points at it is not followed.
        frontier = {t: list(rows.values()) for t, rows in self._followed().items()}
        for _depth in range(self.options.max_depth):
            added: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for rel in rels:
                parents = frontier.get(rel.ref_container)
                child = rel.container
                if not parents or child in person or _matches(self.options.exclude_tables, self.spec.name, child):
                    continue
                values = {tuple(p.get(col) for col in rel.ref_columns) for p in parents}
                ref = ContainerRef(self.spec.name, child, "table")
                via = f"{child}.{','.join(rel.columns)} -> {rel.ref_container}.{','.join(rel.ref_columns)}"
                try:
                    with conn.open(ref) as reader:
                        self._reader_meta(reader, child)
                        c = _Place(child, "table")
                        for key, raw in reader.fetch_where(rel.columns, values):
                            if key in self.rows[child] and self.rows[child][key][MATCH] not in _NOT_THEIRS:
                                continue
                            locator = {**self._locator(c, key, reader), "via": via}
                            row = {**raw, LOCATOR: locator, MATCH: RELATED}
                            self.rows[child][key] = row
                            added[child].append(row)
                except PiiportError as exc:  # one unreadable table does not lose the others' rows
                    self.out.errors.append(f"{self.spec.name}/{child}: could not follow {via}: {exc.message}")
            if not added:
                break
            frontier = added

    def _upward(self, conn: Any, rels: list[Relation]) -> None:
        """The rows the subject's rows reference: theirs, shared, or catalogue context (``export.follow``)."""
        excluded = {n for n in self.by_name if _matches(self.options.exclude_tables, self.spec.name, n)}
        follower = UpwardFollower(
            conn=conn,
            plan=self.plan,
            source=self.spec.name,
            by_name=self.by_name,
            subject_idents=self.subject.idents,
            relations=rels,
            excluded=excluded,
            locate=lambda container, key, reader: self._locator(_Place(container, "table"), key, reader),
            open_meta=self._reader_meta,
        )
        rows = self._followed()
        found = follower.run(
            rows,
            max_depth=self.options.max_depth,
            reference_depth=self.options.reference_depth if self.options.references else 0,
        )
        for table, owned in found.owned.items():
            self.rows[table].update(owned)
            self.out.owned.update((self.spec.name, table, k) for k, row in owned.items() if row[MATCH] == RELATED)
        self.references = {t: r for t, r in found.references.items() if r}
        self.out.shared.extend(found.shared)
        self.out.errors.extend(found.errors)


def _sort_key(key: str) -> tuple[int, Any]:
    try:
        parts = decode_key(key) if key.startswith("[") else [int(key)]
        return (0, [str(p).zfill(20) if isinstance(p, int) else str(p) for p in parts])
    except (ValueError, TypeError):
        return (1, key)


def gather(plan: ExportPlan, *, specs: Mapping[str, SourceSpec], options: GatherOptions) -> Gathered:
    """Read the subject's records from their sources. Memory: the subject's records."""
    out = Gathered()
    subject, containers = plan.subject, plan.containers
    findings: dict[RecordRef, list[FindingRow]] = defaultdict(list)
    foreign: set[RecordRef] = set()  # records with someone else's e-mail or phone in a field
    for f in plan.findings:
        if f.ident in subject.idents:
            findings[f.ref].append(f)
        elif f.entity_type in STRONG and f.origin != TEXT:
            foreign.add(f.ref)

    by_source: dict[str, list[int]] = defaultdict(list)
    for cid, keys in subject.records.items():
        if keys and cid in containers:
            by_source[containers[cid].source].append(cid)
    linked: dict[tuple[str, str], None] = {}
    for source in sorted(by_source):
        spec = specs.get(source) or plan.source_spec(by_source[source][0])
        if spec is None:
            out.errors.append(
                f"{source}: the index does not keep its credentials; add the source to the config file "
                "(or set the driver's password variable) and export again"
            )
            continue
        gatherer = _SourceGatherer(plan, spec, findings, foreign, options, out)
        gatherer.run(sorted(by_source[source], key=lambda cid: containers[cid].name))
        linked.update(gatherer.linked)
    out.linked = [Identifier(t, v) for t, v in sorted(linked)]
    _third_party(plan, out)
    out.errors.extend(unread_at_scan(containers.values()))
    return out


def _mention_order(f: FindingRow) -> tuple[Any, ...]:
    return (f.container_id, _sort_key(f.record_key), f.field, f.entity_type, f.origin)


class _Hit(NamedTuple):
    """The finding a record read again was verified by, with the value it holds now."""

    field: str
    entity_type: str
    value: str


def unread_at_scan(containers: Iterable[ContainerRow]) -> list[str]:
    """Containers whose last scan failed: the index cannot say whether they hold the subject."""
    return [
        f"{c.source}/{c.name}: its last scan failed ({c.error or 'no error recorded'}), so its records "
        "of this subject may be missing: fix the cause and scan the source again"
        for c in containers
        if c.unread
    ]


def _third_party(plan: ExportPlan, out: Gathered) -> None:
    """Other people's identifiers inside exported records: reported so a reviewer can redact."""
    subject, containers = plan.subject, plan.containers
    ids = {(c.source, c.name): cid for cid, c in containers.items()}
    refs = [
        RecordRef(ids[(t.source, t.container)], key)
        for t in out.tables
        if (t.source, t.container) in ids
        for key in t.keys
    ]
    seen = set()
    # Sorted: the index answers in the order of its hash look-ups, which differs from process to process.
    for f in sorted(plan.findings_in(refs), key=_mention_order):
        if f.ident in subject.idents:
            continue
        c = containers[f.container_id]
        if f.origin != TEXT and (c.source, c.name, f.record_key) in out.owned:
            continue  # the phone on an address only the subject lives at is theirs
        item = (c.source, c.name, f.record_key, f.field, f.entity_type, f.origin)
        if item not in seen:
            seen.add(item)
            out.third_party.append(
                dict(zip(("source", "container", "record", "field", "entity_type", "origin"), item, strict=True))
            )
