"""The packed findings format: what goes in comes out, by identifier and by record, at any part size."""

from __future__ import annotations

import hashlib

import pytest

from discover.extract import FIELD, TEXT, FindingGroup
from discover.packing import DecodedBlock, PartBuilder, bucket_codes, search


def _h(text: str) -> bytes:
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


def _record(key: str) -> bytes:
    return _h("record:" + key)


@pytest.mark.parametrize("rows", [3, 5_000])  # one bucket row (0 bits), and many
def test_every_finding_is_found_by_its_identifier_and_by_its_record(rows: int) -> None:
    builder = PartBuilder(_record)
    keys = [f"[{i}]" for i in range(rows)]
    for start in range(0, rows, 1000):
        batch = keys[start : start + 1000]
        odd = [k for k in batch if int(k[1:-1]) % 2]
        builder.add(
            [
                FindingGroup("email", "EMAIL_ADDRESS", FIELD, batch, [_h("e" + k) for k in batch], 1.0),
                # A sparse column, and a text with two mentions in one record: positions repeat.
                FindingGroup("phone", "PHONE_NUMBER", FIELD, odd, [_h("p" + k) for k in odd], 1.0),
                FindingGroup(
                    "notes",
                    "PERSON",
                    TEXT,
                    [batch[0], batch[0]],
                    [_h("n1"), _h("n2")],
                    [0.85, 0.5],
                    [3, 20],
                    [9, 31],
                ),
            ]
        )
    part = builder.take()
    assert part is not None and builder.take() is None
    assert part.findings == rows + rows // 2 + 2 * len(part.blocks)
    blocks = {b.block_no: DecodedBlock(b.meta, b.data) for b in part.blocks}
    postings = dict(part.postings)

    def lookup(ident: bytes) -> list[tuple[int, int]]:
        return [hit for code in bucket_codes(ident) if code in postings for hit in search(postings[code], ident)]

    for i in (0, 1, rows - 1):
        key = keys[i]
        [(block_no, pos)] = lookup(_h("e" + key))
        f = blocks[block_no].finding(pos)
        assert (blocks[block_no].keys[f.record], f.field, f.entity_type, f.ident) == (
            key,
            "email",
            "EMAIL_ADDRESS",
            _h("e" + key),
        )
        [(block_no, record)] = lookup(_record(key))
        found = {(f.field, f.ident) for f in blocks[block_no].of_record(record)}
        expected = {("email", _h("e" + key))} | ({("phone", _h("p" + key))} if i % 2 else set())
        assert found - {("notes", _h("n1")), ("notes", _h("n2"))} == expected
    # Per-finding scores and spans come back exactly; an unknown identifier finds nothing.
    hits = lookup(_h("n2"))
    assert len(hits) == len(part.blocks)
    f = blocks[hits[0][0]].finding(hits[0][1])
    assert (f.score, f.origin, f.span_start, f.span_end) == (0.5, TEXT, 20, 31)
    assert lookup(_h("nobody")) == []


def test_record_keys_are_stored_sealed_and_looked_up_by_their_plain_form() -> None:
    builder = PartBuilder(_record, seal=lambda key: "sealed:" + key[::-1])
    builder.add([FindingGroup("email", "EMAIL_ADDRESS", FIELD, ["alice@example.com"], [_h("x")], 1.0)])
    part = builder.take()
    assert part is not None
    assert "alice@example.com" not in part.blocks[0].meta and "sealed:moc.elpmaxe@ecila" in part.blocks[0].meta
    ((_code, entries),) = part.postings
    assert list(search(entries, _record("alice@example.com"))) == [(0, 0)]


def test_a_record_missing_from_the_first_group_keeps_its_own_findings() -> None:
    """Records are numbered by first appearance: here [1] (no e-mail) comes after [0] and [2], so
    the phone group's positions are 0, 2, 1. Each record must still get only its own findings."""
    builder = PartBuilder(_record)
    builder.add(
        [
            FindingGroup("email", "EMAIL_ADDRESS", FIELD, ["[0]", "[2]"], [_h("e0"), _h("e2")], 1.0),
            FindingGroup("phone", "PHONE_NUMBER", FIELD, ["[0]", "[1]", "[2]"], [_h("p0"), _h("p1"), _h("p2")], 1.0),
        ]
    )
    part = builder.take()
    assert part is not None
    [block] = [DecodedBlock(b.meta, b.data) for b in part.blocks]
    for key, idents in {"[0]": {_h("e0"), _h("p0")}, "[1]": {_h("p1")}, "[2]": {_h("e2"), _h("p2")}}.items():
        found = block.of_record(block.keys.index(key))
        assert {f.ident for f in found} == idents
        assert {block.keys[f.record] for f in found} == {key}
