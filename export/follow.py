"""Follow foreign keys up from the subject's rows: to the rows they own, and to catalogue rows.

``gather`` follows keys down (the subject's orders, their lines). This module follows them
the other way, from a row of the subject to the row it references (README, "Exporting a
subject"):

- **owned**: a referenced row of a table that holds personal data, which no row other than
  the subject's own references, is theirs (a customer's address): exported, ``related``.
- **shared**: one that rows of other people's records reference too (a household address
  on two customers) is the personal data of each of them: exported to each, marked
  ``shared``, and listed in the manifest so a reviewer sees it (Art. 15(4)).
- A referenced row that carries another person's e-mail or name (a support rep's employee
  row), or that another entity references (a store's address), is not the subject's and is
  left out.
- **reference**: referenced rows of tables that hold nobody's personal data (film, country,
  language) make the records intelligible (Art. 15): exported as context, marked
  ``reference``, in files of their own, up to ``reference_depth`` hops from the subject's rows.
  A row with any finding of the index is never a reference row.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from connectors.base import Connector, ContainerReader, ContainerRef, Relation, RelationalReader
from connectors.errors import PiiportError
from discover.extract import FIELD
from discover.identifiers import EMAIL, PERSON
from discover.plan import ExportPlan
from discover.rows import FindingRow, RecordRef
from export.formats import LOCATOR, MATCH

RELATED = "related"
SHARED = "shared"
REFERENCE = "reference"
#: Identifiers that make a row a person's own record. A phone does not: addresses, stores
#: and sites carry phones of whoever lives or works there.
_PERSONAL = (EMAIL, PERSON)


@dataclass
class Upward:
    """What following keys up found, per container and record key."""

    owned: dict[str, dict[str, dict[str, Any]]] = field(default_factory=lambda: defaultdict(dict))
    references: dict[str, dict[str, dict[str, Any]]] = field(default_factory=lambda: defaultdict(dict))
    #: (container, key) of shared rows, with the tables whose other rows reference them.
    shared: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TableKinds:
    """What the index's profiles say of each table of a source."""

    #: Tables with a typed personal-data field (e-mail, phone, IP or name column).
    personal: frozenset[str]
    #: Tables whose rows are people's own records (an e-mail or name column).
    people: frozenset[str]


def table_kinds(plan: ExportPlan, by_name: Mapping[str, int]) -> TableKinds:
    personal, people = set(), set()
    for name, cid in by_name.items():
        for p in plan.profiles.get(cid, ()):
            if p.entity_type and not p.free_text:
                personal.add(name)
                if p.entity_type in _PERSONAL:
                    people.add(name)
    return TableKinds(frozenset(personal), frozenset(people))


class UpwardFollower:
    """Follows one source's foreign keys up from the subject's rows. Memory: the rows it adds."""

    def __init__(
        self,
        *,
        conn: Connector,
        plan: ExportPlan,
        source: str,
        by_name: Mapping[str, int],
        subject_idents: Collection[bytes],
        relations: Sequence[Relation],
        excluded: Collection[str],
        locate: Callable[[str, str, ContainerReader], dict[str, Any]],
        open_meta: Callable[[ContainerReader, str], None],
    ) -> None:
        self.conn = conn
        self.plan = plan
        self.source = source
        self.by_name = by_name
        self.idents = subject_idents
        self.relations = [r for r in relations if r.container not in excluded and r.ref_container not in excluded]
        self.kinds = table_kinds(plan, by_name)
        self.locate = locate  # (container, key, reader) -> locator dict
        self.open_meta = open_meta  # (reader, container) -> None: records the container's fields
        self.out = Upward()
        self.into: dict[str, list[Relation]] = defaultdict(list)
        for rel in self.relations:
            self.into[rel.ref_container].append(rel)

    def run(self, rows: Mapping[str, Mapping[str, dict[str, Any]]], *, max_depth: int, reference_depth: int) -> Upward:
        """``rows``: the subject's rows so far (container → key → row); they are not changed."""
        out = self.out = Upward()
        own: dict[str, set[str]] = {t: set(r) for t, r in rows.items()}
        frontier = {t: list(r.values()) for t, r in rows.items() if r}
        ref_frontier: dict[str, list[dict[str, Any]]] = {}
        for _depth in range(max_depth):
            added: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for table, parents in self._parents(frontier).items():
                fresh = {
                    k: v for k, v in parents.items() if k not in own.get(table, ()) and k not in out.references[table]
                }
                if not fresh:
                    continue
                if table not in self.by_name:
                    continue  # not scanned: nothing vouches for what it holds
                if table not in self.kinds.personal:
                    if reference_depth >= 1:
                        for key, row in self._catalogue(table, fresh).items():
                            out.references[table][key] = {**row, MATCH: REFERENCE}
                            ref_frontier.setdefault(table, []).append(out.references[table][key])
                    continue
                for key, (row, others) in self._owned(table, fresh, own).items():
                    row = {**row, MATCH: SHARED if others else RELATED}
                    if others:
                        out.shared.append(
                            {"source": self.source, "container": table, "locator": row[LOCATOR], "with": others}
                        )
                    out.owned[table][key] = row
                    own.setdefault(table, set()).add(key)
                    added[table].append(row)
            if not added:
                break
            frontier = added
        self._deeper_references(out, ref_frontier, own, reference_depth)
        return out

    def _deeper_references(
        self,
        out: Upward,
        frontier: dict[str, list[dict[str, Any]]],
        own: Mapping[str, set[str]],
        reference_depth: int,
    ) -> None:
        """Catalogue rows that reference rows point at, up to ``reference_depth`` hops in all."""
        for _depth in range(1, reference_depth):
            added: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for table, parents in self._parents(frontier).items():
                if table not in self.by_name or table in self.kinds.personal:
                    continue
                fresh = {
                    k: v for k, v in parents.items() if k not in own.get(table, ()) and k not in out.references[table]
                }
                for key, row in self._catalogue(table, fresh).items():
                    out.references[table][key] = {**row, MATCH: REFERENCE}
                    added[table].append(out.references[table][key])
            if not added:
                break
            frontier = added

    def _parents(self, frontier: Mapping[str, list[dict[str, Any]]]) -> dict[str, dict[str, dict[str, Any]]]:
        """The rows that the frontier's rows reference, read fresh, per table and key."""
        out: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        for rel in self.relations:
            children = frontier.get(rel.container)
            if not children:
                continue
            values = {tuple(c.get(col) for col in rel.columns) for c in children}
            values = {v for v in values if all(x is not None for x in v)}
            if not values:
                continue
            via = f"{rel.container}.{','.join(rel.columns)} -> {rel.ref_container}.{','.join(rel.ref_columns)}"
            try:
                with self.conn.open(ContainerRef(self.source, rel.ref_container, "table")) as opened:
                    reader = _relational(opened)
                    self.open_meta(reader, rel.ref_container)
                    for key, raw in reader.fetch_where(rel.ref_columns, values):
                        if key not in out[rel.ref_container]:
                            loc = {**self.locate(rel.ref_container, key, reader), "via": via}
                            out[rel.ref_container][key] = {**raw, LOCATOR: loc}
            except PiiportError as exc:
                self.out.errors.append(f"{self.source}/{rel.ref_container}: could not follow {via}: {exc.message}")
        return out

    def _findings(self, table: str, keys: Collection[str]) -> dict[str, list[FindingRow]]:
        cid = self.by_name[table]
        found: dict[str, list[FindingRow]] = defaultdict(list)
        for f in self.plan.findings_in([RecordRef(cid, k) for k in keys]):
            found[f.record_key].append(f)
        return found

    def _catalogue(self, table: str, rows: Mapping[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """Rows that hold nobody's personal data: no finding at all, in a field or in free text."""
        findings = self._findings(table, list(rows))
        return {k: v for k, v in rows.items() if not findings.get(k)}

    def _owned(
        self, table: str, rows: Mapping[str, dict[str, Any]], own: Mapping[str, set[str]]
    ) -> dict[str, tuple[dict[str, Any], list[str]]]:
        """The rows that are the subject's, each with the tables of other people's rows that share it."""
        findings = self._findings(table, list(rows))
        candidates = {
            k: v
            for k, v in rows.items()
            if not any(
                f.origin == FIELD and f.entity_type in _PERSONAL and f.ident not in self.idents
                for f in findings.get(k, [])
            )
        }
        others: dict[str, set[str]] = {k: set() for k in candidates}
        entity: set[str] = set()  # referenced by a row that is nobody's record: an entity's row
        for rel in self.into.get(table, []):
            pending = {k for k in candidates if k not in entity}
            if not pending:
                break
            by_value: dict[tuple[Any, ...], list[str]] = defaultdict(list)
            for k in pending:
                by_value[tuple(candidates[k].get(col) for col in rel.ref_columns)].append(k)
            mine = own.get(rel.container, set())
            try:
                with self.conn.open(ContainerRef(self.source, rel.container, "table")) as opened:
                    reader = _relational(opened)
                    for child_key, value in reader.keys_where(rel.columns, list(by_value)):
                        if child_key in mine:
                            continue
                        for k in by_value.get(value, []):
                            if rel.container in self.kinds.people:
                                others[k].add(rel.container)
                            else:
                                entity.add(k)
                        if all(k in entity for k in pending):
                            break
            except PiiportError as exc:
                # Who else references these rows is unknown, so none of them is taken for the subject's.
                entity.update(pending)
                self.out.errors.append(
                    f"{self.source}/{rel.container}: could not check who else references {table} rows: {exc.message}"
                )
        return {k: (candidates[k], sorted(others[k])) for k in candidates if k not in entity}


def _relational(reader: ContainerReader) -> RelationalReader:
    """The reader of a table a foreign key names: only sources with relational readers have relations."""
    if not isinstance(reader, RelationalReader):
        raise TypeError(f"{type(reader).__name__} reads a table with foreign keys but is not a RelationalReader")
    return reader
