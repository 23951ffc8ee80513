"""Scanning real files of every supported format, plain and gzipped, and bad input."""

from __future__ import annotations

import gzip
import json
import sqlite3
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fixtures import PEOPLE, csv_text, write_all_formats

from connectors.base import SourceSpec, connect
from discover.index import Index
from discover.inventory import inventory
from discover.scan import scan


def _by_container(index: Index) -> dict[str, set[tuple[str, str]]]:
    out: dict[str, set[tuple[str, str]]] = {}
    for r in inventory(index):
        out.setdefault(r.container, set()).add((r.field, r.entity_type))
    return out


def test_every_format_and_entity_type(tmp_path: Path, index: Index, detector) -> None:
    root = tmp_path / "data"
    write_all_formats(root)
    result = scan([SourceSpec(name="files", url=str(root))], index=index, detector=detector)
    assert result.ok, result.errors
    inv = _by_container(index)
    csv_expect = {("full_name", "PERSON"), ("email", "EMAIL_ADDRESS"), ("phone", "PHONE_NUMBER"), ("ip", "IP_ADDRESS")}
    for name in ["utf8.csv", "bom.csv", "latin1.csv", "gz_utf8.csv.gz"]:
        assert inv[name] == csv_expect, name
    nested = {
        ("name", "PERSON"),
        ("contact.email", "EMAIL_ADDRESS"),
        ("contact.phone", "PHONE_NUMBER"),
        ("ip", "IP_ADDRESS"),
        ("note", "PERSON"),
    }
    for name in ["array.json", "lines.jsonl", "lines.ndjson", "gz_array.json.gz", "gz_lines.jsonl.gz"]:
        assert inv[name] == nested, name
    assert inv["one.json"] == {("owner.email", "EMAIL_ADDRESS"), ("owner.name", "PERSON")}
    assert inv["table.parquet"] == {("full_name", "PERSON"), ("email", "EMAIL_ADDRESS")}
    assert inv["gz_table.parquet.gz"] == {("email", "EMAIL_ADDRESS")}
    for name in ["notes.txt", "gz_notes.txt.gz"]:
        assert inv[name] == {("line", "PERSON"), ("line", "EMAIL_ADDRESS"), ("line", "PHONE_NUMBER")}, name
    for name in ["sub/server.log", "gz_server.log.gz"]:
        assert inv[name] == {("line", "IP_ADDRESS")}, name
    # A latin-1 file decodes correctly: the accented name hashes like its UTF-8 twin.
    chloe = index.ident("PERSON", "chloe lefevre")
    containers = {c.id: c.name for c in index.containers()}
    assert {"latin1.csv", "utf8.csv"} <= {containers[f.container_id] for f in index.findings_for([chloe])}


def test_every_file_locator_finds_its_record(tmp_path: Path, index: Index, detector) -> None:
    root = tmp_path / "data"
    write_all_formats(root)
    spec = SourceSpec(name="files", url=str(root))
    scan([spec], index=index, detector=detector)
    containers = {c.id: c.name for c in index.containers()}
    wanted: dict[str, set[str]] = {}
    for f in index.iter_findings():
        wanted.setdefault(containers[f.container_id], set()).add(f.record_key)
    with connect(spec) as conn:
        refs = {r.name: r for r in conn.containers()}
        for name, keys in wanted.items():
            with conn.open(refs[name]) as reader:
                docs = dict(reader.fetch(keys))
            assert set(docs) == keys, name
            text = json.dumps(docs, ensure_ascii=False)
            assert any(p[1] in text or p[3] in text or p[0] in text for p in PEOPLE), name


def test_include_exclude_patterns(tmp_path: Path, index: Index, detector) -> None:
    root = tmp_path / "data"
    write_all_formats(root)
    spec = SourceSpec(name="files", url=str(root), include=("*.csv", "sub/*"), exclude=("latin1*",))
    result = scan([spec], index=index, detector=detector)
    assert sorted(c.container for c in result.containers) == ["bom.csv", "sub/server.log", "utf8.csv"]


def test_bad_inputs_are_reported_per_container_and_the_scan_goes_on(
    tmp_path: Path, index: Index, detector, settings
) -> None:
    root = tmp_path / "bad"
    root.mkdir()
    (root / "good.csv").write_text(csv_text(), encoding="utf-8")
    (root / "corrupt_row.csv").write_text(
        csv_text() + "Dan Brown,dan@example.com\n" + "Eve Adams,eve@example.com,+33 6 98 76 54 32,10.1.2.3,Lyon\n",
        encoding="utf-8",
    )
    (root / "binary.txt").write_bytes(b"\x00\x01\x02 not text \xff\xfe")
    (root / "bad_utf8.json").write_bytes(b'[{"email": "x\xff@example.com"}]')
    buf = pa.BufferOutputStream()
    pq.write_table(pa.table({"email": [p[1] for p in PEOPLE]}), buf)
    (root / "truncated.parquet").write_bytes(buf.getvalue().to_pybytes()[:-40])
    with gzip.open(root / "truncated.jsonl.gz", "wb") as fh:
        fh.write(b'{"email": "a@example.com"}\n' * 2000)
    (root / "truncated.jsonl.gz").write_bytes((root / "truncated.jsonl.gz").read_bytes()[:-30])

    result = scan([SourceSpec(name="files", url=str(root))], index=index, detector=detector, settings=settings)
    errors = {e["container"]: e["error"] for e in result.errors}
    assert set(errors) == {"binary.txt", "bad_utf8.json", "truncated.parquet", "truncated.jsonl.gz"}
    assert (
        errors["binary.txt"]
        == "binary.txt: the file holds NUL bytes, so it is binary, not text; exclude it or give it the right suffix"
    )
    assert errors["bad_utf8.json"].startswith("bad_utf8.json: not valid UTF-8")
    assert "truncated" in errors["truncated.parquet"]
    assert errors["truncated.jsonl.gz"].startswith("truncated.jsonl.gz: corrupt or truncated gzip data")
    by_name = {c.container: c for c in result.containers}
    assert by_name["good.csv"].records == 3 and by_name["good.csv"].error is None
    corrupt = by_name["corrupt_row.csv"]
    assert (corrupt.records, corrupt.skipped_records) == (4, 1)
    assert corrupt.warnings == ["row 4: 2 fields where the header has 5; skipped"]
    assert index.findings_for([index.ident("EMAIL_ADDRESS", "eve@example.com")])  # rows after the bad one
    (run,) = index.runs()
    assert {e["container"] for e in run.summary["errors"]} == set(errors)
    stored = {c.name: c for c in index.containers()}
    assert {n for n, c in stored.items() if c.error} == set(errors)  # every error recorded in the index
    assert stored["good.csv"].records == 3 and not stored["good.csv"].stale
    assert index.findings_for([index.ident("EMAIL_ADDRESS", PEOPLE[0][1])])


def test_containers_gone_from_the_source_are_forgotten(tmp_path: Path, index: Index, detector) -> None:
    root = tmp_path / "d"
    root.mkdir()
    (root / "people.jsonl").write_text(json.dumps({"email": "gone@example.com"}) + "\n", encoding="utf-8")
    (root / "other.csv").write_text(csv_text(), encoding="utf-8")
    spec = SourceSpec(name="files", url=str(root))
    scan([spec], index=index, detector=detector)
    gone = index.ident("EMAIL_ADDRESS", "gone@example.com")
    assert index.findings_for([gone])
    (root / "people.jsonl").unlink()
    result = scan([spec], index=index, detector=detector)
    assert result.ok and result.removed_containers == 1
    assert not index.findings_for([gone])
    assert [c.name for c in index.containers()] == ["other.csv"]


def test_stale_findings_survive_a_failed_rescan(tmp_path: Path, index: Index, detector, settings) -> None:
    root = tmp_path / "d"
    root.mkdir()
    path = root / "people.json"
    path.write_text(json.dumps([{"email": "keep@example.com"}]), encoding="utf-8")
    (root / "zz.csv").write_text(csv_text(), encoding="utf-8")  # a container after the failing one
    spec = SourceSpec(name="files", url=str(root))
    scan([spec], index=index, detector=detector, settings=settings)
    path.write_text('[{"email": "keep@example.com"}, {"email": ', encoding="utf-8")
    result = scan([spec], index=index, detector=detector, settings=settings)
    assert result.errors and "truncated" in result.errors[0]["error"]
    assert index.findings_for([index.ident("EMAIL_ADDRESS", "keep@example.com")])
    assert index.findings_for([index.ident("EMAIL_ADDRESS", PEOPLE[0][1])])
    container = next(c for c in index.containers() if c.name == "people.json")
    assert container.stale == 1 and "truncated" in container.error


def test_file_that_disappears_mid_scan(tmp_path: Path, index: Index, detector, settings) -> None:
    root = tmp_path / "d"
    root.mkdir()
    (root / "a.csv").write_text(csv_text(), encoding="utf-8")
    (root / "b.csv").write_text(csv_text(), encoding="utf-8")
    (root / "c.csv").write_text(csv_text(), encoding="utf-8")

    def progress(event: str, data: dict[str, object]) -> None:
        if event == "container" and data["container"] == "a.csv":
            (root / "b.csv").unlink()  # listed, then gone before it is read

    result = scan(
        [SourceSpec(name="files", url=str(root))], index=index, detector=detector, progress=progress, settings=settings
    )
    assert [e["container"] for e in result.errors] == ["b.csv"]
    assert result.errors[0]["error"] == "b.csv: the file disappeared during the scan; scan again when it is back"
    assert [c.records for c in result.containers if c.container != "b.csv"] == [3, 3]
    assert {c.name: c.records for c in index.containers()} == {"a.csv": 3, "b.csv": None, "c.csv": 3}


def test_missing_and_locked_sqlite(tmp_path: Path, index: Index, detector, shop_db: Path, settings) -> None:
    locker = sqlite3.connect(shop_db, timeout=0)
    locker.execute("PRAGMA locking_mode=EXCLUSIVE")
    locker.execute("BEGIN EXCLUSIVE")
    try:
        result = scan(
            [
                SourceSpec(name="missing", url=f"sqlite:///{tmp_path / 'nope.db'}"),
                SourceSpec(name="locked", url=f"sqlite:///{shop_db}"),
                SourceSpec(name="files", url=str(tmp_path / "nothing-here")),
            ],
            index=index,
            detector=detector,
            settings=settings,
        )
    finally:
        locker.rollback()
        locker.close()
    errors = {e["source"]: e["error"] for e in result.errors}
    assert errors["missing"] == f"source 'missing': SQLite file {tmp_path / 'nope.db'} not found; check the path"
    assert errors["locked"].startswith("source 'locked': database is locked")
    assert errors["locked"].endswith("another program holds a write lock; retry when it is done")
    assert errors["files"] == f"source 'files': {tmp_path / 'nothing-here'} does not exist; check the path"
    assert not (tmp_path / "nope.db").exists()  # a scan never creates a database


@pytest.mark.parametrize("chunk", [7, 64, 1 << 16])
def test_json_arrays_stream_across_chunk_boundaries(tmp_path: Path, chunk: int, monkeypatch) -> None:
    from connectors.files import JsonFormat

    docs = [{"n": i, "v": 12345.678 * i, "s": "é" * (i % 5)} for i in range(50)]
    path = tmp_path / "big.json"
    path.write_text(json.dumps(docs), encoding="utf-8")
    monkeypatch.setattr(JsonFormat, "chunk_chars", chunk)
    with connect(SourceSpec(name="f", url=str(path))) as conn:
        (ref,) = conn.containers()
        with conn.open(ref) as reader:
            got = [r.values for batch in reader.batches(7) for r in batch]
    assert got == docs


def test_a_big_file_in_a_pool_spills_to_a_private_file_and_loses_nothing(tmp_path: Path, detector, monkeypatch) -> None:
    import importlib

    from discover.settings import ScanSettings

    scan_module = importlib.import_module("discover.scan")  # the module, not the function of that name

    firsts = ["Alice", "Bruno", "Chloe", "David", "Emma", "Farid", "Grace", "Hugo", "Ines", "Jonas"] * 6
    lasts = ["Martin", "Dubois", "Lefevre", "Nguyen", "Murphy", "Haddad", "Schmidt", "Rossi", "Novak", "Silva"] * 5
    rows = ["full_name,email,phone"] + [
        f"{firsts[i % 60]} {lasts[i // 60]},user{i}@example.com,+44 20 7946 {i:04d}" for i in range(3000)
    ]
    root = tmp_path / "big"
    root.mkdir()
    (root / "contacts.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    spill = tmp_path / "spill"
    spill.mkdir()
    spilled: list[tuple[str, int]] = []
    read_back = scan_module.UnitResult.all_parts

    def watched(self: scan_module.UnitResult):
        if self.spill is not None:
            spilled.append((self.spill, Path(self.spill).stat().st_mode & 0o777))
        return read_back(self)

    monkeypatch.setattr(scan_module.UnitResult, "all_parts", watched)
    monkeypatch.setenv("PIIPORT_INDEX_KEY", "00112233445566778899aabbccddeeff")  # one key: comparable hashes
    found = {}
    for workers in (1, 2):
        index = Index(f"sqlite:///{tmp_path / f'index-{workers}' / 'index.db'}")
        settings = ScanSettings(workers=workers, batch_size=200, unit_findings_in_memory=500, spill_dir=str(spill))
        assert scan([SourceSpec(name="f", url=str(root))], index=index, detector=detector, settings=settings).ok
        found[workers] = sorted((f.record_key, f.entity_type, f.ident) for f in index.iter_findings())
        index.close()
    assert len(found[1]) == 9000 and found[2] == found[1]
    # Only the pool spills (in-process, parts go straight into the index); the file is private and removed.
    assert spilled and all(mode == 0o600 for _, mode in spilled)
    assert not list(spill.iterdir())


def test_a_sqlite_database_given_as_a_path_says_how_to_scan_it(tmp_path: Path, index: Index, detector) -> None:
    with sqlite3.connect(tmp_path / "crm.db") as db:
        db.execute("CREATE TABLE customer (id INTEGER PRIMARY KEY, email TEXT)")
    (tmp_path / "notes.bin").write_bytes(b"not a format piiport reads\n")
    result = scan(
        [
            SourceSpec(name="crm", url=str(tmp_path / "crm.db")),
            SourceSpec(name="other", url=str(tmp_path / "notes.bin")),
        ],
        index=index,
        detector=detector,
    )
    errors = sorted(e["error"] for e in result.errors)
    assert errors == [
        f"source 'crm': crm.db is a SQLite database, not a file to read as text; scan it as sqlite:///{tmp_path / 'crm.db'}",
        "source 'other': notes.bin has no known suffix; known: .csv, .json, .jsonl, .log, .ndjson, .parquet, .pq, "
        ".tsv, .txt (and .gz variants)",
    ]
