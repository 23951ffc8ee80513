"""Discover hands export a plan: export reads the sources and writes the package, never the index."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import piiport
from connectors.base import SourceSpec
from connectors.redact import is_masked_url, mask_url
from discover.index import Index
from discover.name_fields import FULL_NAME_SCORE, combined_field, name_columns
from discover.plan import ExportPlan, ExportRequest, plan_export
from discover.rows import FindingRow, RecordRef
from discover.scan import scan
from discover.subjects import parse_identifiers
from export import GatherOptions
from export import export_subject as write_export
from piiport.api import export_subject
from piiport.config import Config

#: What differs between two packages of the same records: when each was made.
_TIMED = ("index.html",)


def _package(path: str) -> dict[str, Any]:
    """Every file of a package folder, the manifest without its time of making."""
    root = Path(path)
    out: dict[str, Any] = {}
    for f in sorted(root.rglob("*")):
        name = f.relative_to(root).as_posix()
        if f.is_dir() or name in _TIMED:
            continue
        if name == "manifest.json":
            manifest = json.loads(f.read_text(encoding="utf-8"))
            manifest.pop("generated_at")
            out[name] = manifest
        else:
            out[name] = f.read_bytes()
    return out


def _options(cfg: Config) -> GatherOptions:
    """What ``piiport.api.export_subject`` gathers with for a config."""
    return GatherOptions(
        regions=cfg.detection.phone_regions,
        max_depth=cfg.export.max_depth,
        references=cfg.export.references,
        reference_depth=cfg.export.reference_depth,
    )


def _export_from_plan(plan: ExportPlan, cfg: Config, out: Path) -> str:
    result = write_export(
        plan,
        specs={s.name: s for s in cfg.sources},
        options=_options(cfg),
        out=out,
        request_id="R1",
        generator_version=piiport.__version__,
        processing=cfg.processing,
    )
    return result.package


def _drop(index: Index, tmp_path: Path) -> None:
    """Close the index and delete its files: nothing can read it any more."""
    index.close()
    shutil.rmtree(tmp_path / "idx")


class _Materialised:
    """``RecordFindings`` read out of an index beforehand, as a cluster worker far from it would get them."""

    def __init__(self, index: Index) -> None:
        self.rows = list(index.iter_findings())
        self.asked: list[RecordRef] = []

    def findings_in(self, records: Any) -> list[FindingRow]:
        refs = set(records)
        self.asked.extend(refs)
        return [f for f in self.rows if f.ref in refs]


def _request(cfg: Config, email: str) -> ExportRequest:
    return ExportRequest(tuple(parse_identifiers(emails=[email], regions=cfg.detection.phone_regions)))


def test_files_export_from_a_plan_needs_no_index(tmp_path: Path, index: Index, detector) -> None:
    folder = tmp_path / "files"
    folder.mkdir()
    (folder / "people.csv").write_text(
        "email,first_name,last_name,notes\n"
        "alice@example.com,Alice,Martin,called back; her colleague bob@example.com was copied\n"
        "bob@example.com,Bob,Stone,\n",
        encoding="utf-8",
    )
    (folder / "log.jsonl").write_text('{"who": "alice@example.com", "ip": "10.1.2.3"}\n', encoding="utf-8")
    cfg = Config(sources=(SourceSpec(name="files", url=str(folder)),))
    assert scan(list(cfg.sources), index=index, detector=detector).ok
    usual = export_subject(
        config=cfg, index=index, emails=["alice@example.com"], out=tmp_path / "a", request_id="R1", redact=False
    )
    plan = plan_export(index, _request(cfg, "alice@example.com"))
    _drop(index, tmp_path)

    package = _export_from_plan(plan, cfg, tmp_path / "b")

    assert usual.records == 2 and usual.manifest["third_party_mentions"]  # theirs, and a colleague's address
    assert _package(package) == _package(usual.package)


def test_foreign_keys_are_followed_from_a_plan_with_the_index_gone(
    tmp_path: Path, shop_db: Path, index: Index, detector
) -> None:
    cfg = Config(sources=(SourceSpec(name="shop", url=f"sqlite:///{shop_db}"),))
    assert scan(list(cfg.sources), index=index, detector=detector).ok
    usual = export_subject(
        config=cfg, index=index, emails=["alice.martin@example.com"], out=tmp_path / "a", request_id="R1", redact=False
    )
    reached = _Materialised(index)
    plan = plan_export(index, _request(cfg, "alice.martin@example.com"), reached=reached)
    _drop(index, tmp_path)

    package = _export_from_plan(plan, cfg, tmp_path / "b")

    files = _package(usual.package)
    assert "data/shop/orders.json" in files and "data/shop/order_lines.json" in files  # reached by foreign keys
    assert _package(package) == files
    # Looked up: only the records following keys reached, which no plan can know beforehand.
    planned = {RecordRef(cid, key) for cid, keys in plan.subject.records.items() for key in keys}
    assert reached.asked and not set(reached.asked) & planned
    assert {r.container_id for r in reached.asked} >= {
        cid for cid, c in plan.containers.items() if c.name in ("orders", "order_lines")
    }


def test_an_ambiguous_request_fails_in_discover_before_export(tmp_path: Path, index: Index, detector) -> None:
    from discover.errors import AmbiguousSubjectError

    db = tmp_path / "office.db"
    with sqlite3.connect(db) as conn:
        conn.executescript(
            "CREATE TABLE staff (id INTEGER PRIMARY KEY, email TEXT, phone TEXT);"
            "INSERT INTO staff VALUES (1, 'ann@example.com', '+33 1 44 55 66 77');"
            "INSERT INTO staff VALUES (2, 'max@example.com', '+33 1 44 55 66 77');"
        )
    cfg = Config(sources=(SourceSpec(name="office", url=f"sqlite:///{db}"),))
    assert scan(list(cfg.sources), index=index, detector=detector).ok
    phone = ExportRequest(tuple(parse_identifiers(phones=["+33 1 44 55 66 77"], regions=("FR",))))
    with pytest.raises(AmbiguousSubjectError, match="shared by 2 subjects"):
        plan_export(index, phone)


@given(
    # Where a URL ends in a message (white space) mask_url cannot see past; quotes and <> it can.
    st.text(st.characters(blacklist_categories=("Cs", "Cc", "Z")), min_size=1, max_size=16)
)
def test_a_masked_url_is_recognised_by_the_test_plans_use(password: str) -> None:
    url = f"postgresql://scanner:{password}@db.example.com:5432/shop"
    assert is_masked_url(mask_url(url))
    assert not is_masked_url(url.replace(f":{password}@", "@"))


def test_an_index_url_with_a_password_is_not_used_to_read_again(tmp_path: Path, shop_db: Path, index: Index) -> None:
    """The scan records masked URLs; a plan does not try to connect with one."""
    from discover.plan import scanned_spec
    from discover.rows import ContainerRow

    def row(url: str) -> ContainerRow:
        return ContainerRow(1, "crm", "people", "table", url, None, 1, 0, None, None, None, False, None, None)

    masked = mask_url("postgresql://scanner:s3cret@db.example.com/crm")
    assert scanned_spec(row(masked)) is None
    assert scanned_spec(row(f"sqlite:///{shop_db}")) == SourceSpec(name="crm", url=f"sqlite:///{shop_db}")


def test_first_and_last_name_columns_are_written_and_read_as_one_field(shop_db: Path, index: Index, detector) -> None:
    assert scan([SourceSpec(name="shop", url=f"sqlite:///{shop_db}")], index=index, detector=detector).ok
    alice = index.ident("PERSON", "alice martin")
    (found,) = [f for f in index.findings_for([alice]) if f.origin == "field" and f.record_key == "[1]"]
    assert found.field == combined_field("first_name", "last_name")
    assert name_columns(found.field) == ("first_name", "last_name")
    assert found.score == pytest.approx(FULL_NAME_SCORE)
