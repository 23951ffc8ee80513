"""Hidden buckets (``discover.index_hidden``): a rescan of a few key buckets of a range adds one
part and hides those buckets' records in the range's old parts.

Every read must then answer exactly as an index written in one go with the records as they
are after the rescan; deleting parts (a replaced range, a rewritten or pruned container, an old
generation) deletes their hidden buckets.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from servers import postgres_database

from connectors.base import ContainerRef, encode_int_key
from connectors.errors import ConfigError
from discover.extract import FIELD, TEXT, FindingGroup
from discover.identifiers import EMAIL, PERSON, PHONE
from discover.index import Index
from discover.index_direct import UnitTarget, UnitWrite, open_generation
from discover.index_hidden import int_key
from discover.index_schema import SCHEMA_VERSION
from discover.packing import Part, PartBuilder
from discover.rows import RecordRef

KEY = b"h" * 32
REF = ContainerRef("crm", "people", "table")
URL = "sqlite:///crm.db"
EMAILS = [f"user{i}@example.com" for i in range(8)]
PHONES = [f"+3361234560{i}" for i in range(6)]
NAMES = [f"name {i}" for i in range(6)]
#: Field: entity type, origin.
FIELDS = {"email": (EMAIL, FIELD), "phone": (PHONE, FIELD), "name": (PERSON, FIELD), "notes": (EMAIL, TEXT)}
IDENT_VALUES = [(EMAIL, v) for v in EMAILS] + [(PHONE, v) for v in PHONES] + [(PERSON, v) for v in NAMES]
LOW, HIGH, SPLIT = -60, 139, 40  # keys; range 0 holds keys below SPLIT, range 1 the others
#: Records whose keys are not one integer (text keys): never hidden, never re-read.
TEXT_KEYS = ['["r1"]', '["r2"]', "[1,2]"]

Rec = dict[str, str]  # field: value
Records = dict[str, Rec]  # stored key: record


def range_of(key: str) -> int:
    k = int_key(key)
    return 0 if k is None or k < SPLIT else 1


def build_part(index: Index, records: Mapping[str, Rec], batch: int, seal: bool = False) -> Part | None:
    """The records as the scan packs them: one block per ``batch`` records."""
    builder = PartBuilder(index.hasher.record_digester(REF.source, REF.name), index.sealer.seal if seal else None)
    keys = sorted(records)
    for start in range(0, len(keys), batch):
        chunk = keys[start : start + batch]
        groups = []
        for field, (etype, origin) in FIELDS.items():
            have = [k for k in chunk if field in records[k]]
            if have:
                spans = [3] * len(have) if origin == TEXT else None
                groups.append(
                    FindingGroup(
                        field,
                        etype,
                        origin,
                        have,
                        [index.ident(etype, records[k][field]) for k in have],
                        0.85 if origin == TEXT else 1.0,
                        spans,
                        [s + 20 for s in spans] if spans else None,
                    )
                )
        builder.add(groups)
    return builder.take()


def commit(write: Any, records: int, ranges: Mapping[int, tuple[str, str]] | None = None) -> None:
    write.commit(
        records=records,
        profiles=[],
        hits=[],
        skipped_records=0,
        skipped_fields=[],
        warnings=[],
        ranges=dict(ranges or {}),
    )


def write_parts(
    index: Index,
    parts: list[tuple[int, Mapping[str, Rec]]],
    batch: int,
    *,
    direct: bool,
    records: int,
    replace: list[int] | None = None,
    hide: Mapping[int, set[int]] | None = None,
    width: int = 0,
) -> None:
    """One container write: the driver's (``begin_container`` … ``add_part`` … ``commit``), or
    with ``direct`` a unit's direct write of the parts and then the container's commit."""
    run = index.start_run([REF.source])
    ranges = {r: (f"fp{run}", "{}") for r in ({r for r, _ in parts} | set(hide or {}))}
    built = [(r, build_part(index, recs, batch)) for r, recs in parts]
    if direct:
        cid, generation = open_generation(index, REF, run_id=run, url=URL)
        unit = UnitWrite(index, UnitTarget(cid, generation, 0))
        for r, part in built:
            if part is not None:
                unit.add_part(part, r)
        unit.commit()
        write = index.begin_container(
            REF, run_id=run, url=URL, replace=replace, generation=generation, hide=hide, hide_width=width
        )
    else:
        write = index.begin_container(REF, run_id=run, url=URL, replace=replace, hide=hide, hide_width=width)
        for r, part in built:
            if part is not None:
                write.add_part(part, r)
    commit(write, records, ranges)


def answers(index: Index, keys: list[str]) -> dict[str, Any]:
    """Every read of findings, container ids left out (the two indexes number containers apart)."""
    (cid,) = [c.id for c in index.containers() if (c.source, c.name) == (REF.source, REF.name)]

    def rows(found: list[Any]) -> list[tuple[Any, ...]]:
        return sorted(tuple(f)[1:] for f in found)

    out: dict[str, Any] = {
        "iter_findings": rows(list(index.iter_findings())),
        "count_findings": index.count_findings(),
        "container_record_counts": index.container_record_counts(REF.source, REF.name),
        "records_known": index.records_known(REF.source, REF.name, keys),
        "findings_in_all": rows(index.findings_in([RecordRef(cid, k) for k in keys])),
    }
    for etype, value in IDENT_VALUES:
        ident = index.ident(etype, value)
        out[f"findings_for {value}"] = rows(index.findings_for([ident]))
        out[f"findings_for owned {value}"] = rows(index.findings_for([ident], skip_owned=True))
        out[f"links {value}"] = sorted(
            (lk.ident, lk.entity_type, lk.strength, lk.record_key) for lk in index.links(ident)
        )
    for k in keys:
        out[f"findings_in {k}"] = rows(index.findings_in([RecordRef(cid, k)]))
    return out


def hidden_rows(index: Index) -> int:
    from sqlalchemy import func, select

    with index.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(index.t["hidden_buckets"])).scalar() or 0)


# -- the differential test ------------------------------------------------------------------------

record = st.fixed_dictionaries(
    {},
    optional={
        "email": st.sampled_from(EMAILS),
        "phone": st.sampled_from(PHONES),
        "name": st.sampled_from(NAMES),
        "notes": st.sampled_from(EMAILS),
    },
).filter(bool)
rescan = st.tuples(
    st.sampled_from([1, 3, 10, 25, 1000]),  # bucket width
    st.dictionaries(st.sampled_from([0, 1]), st.sets(st.integers(LOW, HIGH), min_size=1, max_size=6), min_size=1),
    # Per key re-read: its new findings, or None (the row is gone); keys absent keep theirs.
    st.dictionaries(st.integers(LOW, HIGH), st.one_of(st.none(), record), max_size=30),
)
scenario = st.fixed_dictionaries(
    {
        "records": st.dictionaries(st.integers(LOW, HIGH), record, max_size=60),
        "text_keyed": st.dictionaries(st.sampled_from(TEXT_KEYS), record),
        "parts": st.integers(1, 3),
        "batch": st.integers(1, 7),
        "rescans": st.lists(rescan, min_size=1, max_size=3),
    }
)


@pytest.fixture(params=["sqlite", "postgresql", "postgresql-direct"])
def two_indexes(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Index, Index, bool]]:
    """The index patched by rescans, the index written in one go, and whether writes are direct."""
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            urls = [f"sqlite:///{tmp_path / 'patched.db'}", f"sqlite:///{tmp_path / 'whole.db'}"]
        else:
            urls = [stack.enter_context(postgres_database(prefix="hidden")) for _ in range(2)]
        patched, whole = (stack.enter_context(Index(url, key=KEY)) for url in urls)
        yield patched, whole, request.param == "postgresql-direct"


def test_every_read_of_a_patched_range_answers_as_an_index_written_in_one_go(
    two_indexes: tuple[Index, Index, bool],
) -> None:
    patched, whole, direct = two_indexes
    examples = 40 if patched.engine.dialect.name == "sqlite" else 12

    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(scenario)
    def check(s: dict[str, Any]) -> None:
        model: Records = {encode_int_key(k): v for k, v in s["records"].items()}
        model.update(s["text_keyed"])
        ever = set(model)
        # The first scan: each range in a few parts.
        parts: list[tuple[int, Mapping[str, Rec]]] = []
        for r in (0, 1):
            keys = sorted(k for k in model if range_of(k) == r)
            parts.extend((r, {k: model[k] for k in keys[i :: s["parts"]]}) for i in range(s["parts"]))
        write_parts(patched, parts, s["batch"], direct=direct, records=len(model))
        for width, picked, changes in s["rescans"]:
            hide = {r: {k // width for k in ks} for r, ks in picked.items()}

            def reread(key: str, hide: dict[int, set[int]] = hide, width: int = width) -> bool:
                k = int_key(key)
                return k is not None and k // width in hide.get(range_of(key), set())

            # The rows of the buckets read again: as they were, changed, gone, or new.
            current = {k: v for k, v in model.items() if not reread(k)}
            fresh = {k: v for k, v in model.items() if reread(k)}
            for k, change in changes.items():
                key = encode_int_key(k)
                if reread(key):
                    ever.add(key)
                    if change is None:
                        fresh.pop(key, None)
                    else:
                        fresh[key] = change
            model = {**current, **fresh}
            new_parts = [(r, {k: v for k, v in fresh.items() if range_of(k) == r}) for r in sorted(hide)]
            write_parts(
                patched, new_parts, s["batch"], direct=direct, records=len(model), replace=[], hide=hide, width=width
            )
            write_parts(
                whole,
                [(r, {k: v for k, v in model.items() if range_of(k) == r}) for r in (0, 1)],
                s["batch"],
                direct=False,
                records=len(model),
            )
            keys = sorted(ever)
            assert answers(patched, keys) == answers(whole, keys)
        # The container forgotten: its hidden buckets too.
        assert patched.prune(REF.source, keep=[]) == 1 and whole.prune(REF.source, keep=[]) == 1
        assert hidden_rows(patched) == 0 and patched.count_findings() == 0

    check()


# -- what deletes hidden buckets ----------------------------------------------------------------------


def _hidden_index(index: Index, *, direct: bool = False) -> dict[str, Rec]:
    """Two ranges of ten records each (keys 0-9, 40-49), two parts per range; then keys 0-4 and
    40-44 (buckets 0 and 8 of width 5) read again: 0-4 changed, 40-44 gone."""
    model = {encode_int_key(k): {"email": EMAILS[k % 8], "phone": PHONES[k % 6]} for k in [*range(10), *range(40, 50)]}
    halves = []
    for r in (0, 1):
        keys = sorted(k for k in model if range_of(k) == r)
        halves.extend((r, {k: model[k] for k in keys[i::2]}) for i in (0, 1))
    write_parts(index, halves, 3, direct=direct, records=len(model))
    fresh = {encode_int_key(k): {"name": NAMES[k % 6]} for k in range(5)}
    write_parts(index, [(0, fresh), (1, {})], 3, direct=direct, records=15, replace=[], hide={0: {0}, 1: {8}}, width=5)
    return {**{k: v for k, v in model.items() if int_key(k) not in set(range(5)) | set(range(40, 45))}, **fresh}


def _emails_of(index: Index, k: int) -> list[str]:
    return sorted(f.record_key for f in index.findings_for([index.ident(EMAIL, EMAILS[k % 8])]))


def test_hidden_records_are_gone_from_reads_and_their_rows_go_with_their_parts(tmp_path: Path) -> None:
    index = Index(f"sqlite:///{tmp_path / 'index.db'}", key=KEY)
    _hidden_index(index)
    assert hidden_rows(index) == 4  # two old parts per range
    # user0@ was on keys 0 and 8 (hidden: 0) and 40, 48 (hidden: 40).
    assert _emails_of(index, 0) == ["[48]", "[8]"]
    assert index.count_findings() == 5 + 2 * 10 and index.container_record_counts("crm", "people") == 15
    # Range 0 replaced: its parts go, with their hidden buckets; range 1's stay.
    write_parts(index, [(0, {"[1]": {"email": EMAILS[0]}})], 3, direct=False, records=6, replace=[0])
    assert hidden_rows(index) == 2
    assert _emails_of(index, 0) == ["[1]", "[48]"]
    # The whole container rewritten: no hidden bucket left.
    write_parts(index, [(0, {"[1]": {"email": EMAILS[0]}})], 3, direct=False, records=1)
    assert hidden_rows(index) == 0 and _emails_of(index, 0) == ["[1]"]
    index.close()


def test_hiding_keeps_the_range_and_replaces_its_summary(tmp_path: Path) -> None:
    index = Index(f"sqlite:///{tmp_path / 'index.db'}", key=KEY)
    _hidden_index(index)
    from sqlalchemy import select

    k = index.t["key_ranges"]
    with index.engine.connect() as conn:
        ranges = sorted(conn.execute(select(k.c.range_no, k.c.fingerprint)).all())
    last = index.runs()[-1].id
    assert ranges == [(0, f"fp{last}"), (1, f"fp{last}")]
    index.close()


def test_a_range_cannot_be_both_replaced_and_hidden(tmp_path: Path) -> None:
    index = Index(f"sqlite:///{tmp_path / 'index.db'}", key=KEY)
    with pytest.raises(ValueError, match=r"ranges \[0\] are both replaced and hidden"):
        index.begin_container(REF, run_id=1, url=URL, replace=[0], hide={0: {1}}, hide_width=5)
    with pytest.raises(ValueError, match="hide_width must be a positive"):
        index.begin_container(REF, run_id=1, url=URL, replace=[], hide={0: {1}})
    index.close()


def test_sealed_and_text_keys_are_never_hidden(tmp_path: Path) -> None:
    index = Index(f"sqlite:///{tmp_path / 'index.db'}", key=KEY)
    run = index.start_run(["crm"])
    write = index.begin_container(REF, run_id=run, url=URL)
    sealed = build_part(index, {"[3]": {"email": EMAILS[3]}}, 2, seal=True)
    text = build_part(index, {'["3"]': {"email": EMAILS[4]}, "[3,4]": {"email": EMAILS[5]}}, 2)
    assert sealed is not None and text is not None
    write.add_part(sealed, 0)
    write.add_part(text, 0)
    commit(write, 3)
    write_parts(index, [], 2, direct=False, records=3, replace=[], hide={0: {0, 3}}, width=1)
    assert hidden_rows(index) == 2
    assert sorted(f.record_key for f in index.iter_findings()) == ['["3"]', "[3,4]", "[3]"]
    assert index.count_findings() == 3 and index.container_record_counts("crm", "people") == 3
    assert [int_key(k) for k in ("[3]", "[-12]", "[+3]", "[ 3]", "[3,4]", '["3"]', "sealed:AAAA")] == [
        3,
        -12,
        None,
        None,
        None,
        None,
        None,
    ]
    index.close()


def test_negative_keys_are_bucketed_by_floor_division(tmp_path: Path) -> None:
    index = Index(f"sqlite:///{tmp_path / 'index.db'}", key=KEY)
    model = {encode_int_key(k): {"email": EMAILS[k % 8]} for k in range(-12, 0)}
    write_parts(index, [(0, model)], 4, direct=False, records=12)
    # Width 5: bucket -1 holds -5..-1, bucket -2 holds -10..-6.
    write_parts(index, [(0, {})], 4, direct=False, records=7, replace=[], hide={0: {-1}}, width=5)
    assert sorted(int(f.record_key.strip("[]")) for f in index.iter_findings()) == list(range(-12, -5))
    index.close()


@pytest.fixture
def pg_url() -> Iterator[Callable[[], str]]:
    with contextlib.ExitStack() as stack:
        yield lambda: stack.enter_context(postgres_database(prefix="hidden"))


def test_direct_writes_hide_the_old_generation_only_and_drop_hidden_rows_with_it(
    pg_url: Callable[[], str],
) -> None:
    index = Index(pg_url(), key=KEY)
    expected = _hidden_index(index, direct=True)
    # The unit wrote the fresh part of range 0 under the new generation: it is not hidden.
    assert hidden_rows(index) == 4
    assert sorted({f.record_key for f in index.iter_findings()}) == sorted(expected)
    assert sorted(f.record_key for f in index.findings_for([index.ident(PERSON, NAMES[1])])) == ["[1]"]
    (row,) = index.containers()
    # The old parts moved to the new generation with their hidden rows.
    from sqlalchemy import select

    p, h = index.t["parts"], index.t["hidden_buckets"]
    with index.engine.connect() as conn:
        gens = set(conn.execute(select(p.c.generation).where(p.c.id.in_(select(h.c.part_id)))).scalars())
    assert gens == {row.generation}
    # A full direct rescan: the old generation dropped, its hidden rows too.
    write_parts(index, [(0, {"[1]": {"email": EMAILS[0]}})], 3, direct=True, records=1)
    assert hidden_rows(index) == 0 and _emails_of(index, 0) == ["[1]"]
    index.close()


def test_a_version_4_index_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "index.db"
    index = Index(f"sqlite:///{path}", key=KEY)
    write_parts(index, [(0, {"[1]": {"email": EMAILS[1]}})], 3, direct=False, records=1)
    index.close()
    with sqlite3.connect(path) as db:  # what piiport with schema 4 left: no hidden_buckets
        db.execute("DROP TABLE hidden_buckets")
        db.execute("UPDATE meta SET v = '4' WHERE k = 'schema_version'")
    index = Index(f"sqlite:///{path}", key=KEY, create=False)
    assert _emails_of(index, 1) == ["[1]"] and index.count_findings() == 1
    write_parts(index, [(0, {})], 3, direct=False, records=0, replace=[], hide={0: {1}}, width=1)
    assert _emails_of(index, 1) == [] and index.count_findings() == 0
    index.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT v FROM meta WHERE k = 'schema_version'").fetchone() == (SCHEMA_VERSION,) == ("5",)
        db.execute("UPDATE meta SET v = '6' WHERE k = 'schema_version'")
    with pytest.raises(ConfigError, match="index schema version 6 is not supported"):
        Index(f"sqlite:///{path}", key=KEY)
