"""Detection quality: our own small labelled sets, the French path, and column profiling ground truth."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from discover.detector import Detector
from discover.index import Index
from discover.inventory import inventory
from discover.scan import scan

ROOT = Path(__file__).parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from accuracy import score  # noqa: E402
from column_truth import MAX_FALSE_PERSON, PERSON_IN_TEXT, build_columns  # noqa: E402

FR_SET = Path(__file__).parent / "data" / "fr_labelled.json"

# Phone numbers as people write them across countries; libphonenumber rejects most of these
# for the default regions, the lenient recognizer must not.
EN_SET = [
    ("Please call me back on 905-674-3793 after lunch.", [("PHONE_NUMBER", "905-674-3793")]),
    (
        "My office line is +46 (0)8 928 571 38, ask for Ingrid Berg.",
        [("PHONE_NUMBER", "+46 (0)8 928 571 38"), ("PERSON", "Ingrid Berg")],
    ),
    ("Reach the desk at 345-899-3560x4587 any time.", [("PHONE_NUMBER", "345-899-3560x4587")]),
    ("Her number in Paris is 03.93.92.16.85.", [("PHONE_NUMBER", "03.93.92.16.85")]),
    ("Text 9498777106 if the parcel is late.", [("PHONE_NUMBER", "9498777106")]),
    ("Card 4111 1111 1111 1111 was declined on 2019-05-12.", []),
    ("The invoice total was 1 234 567 yen, order 12345.", []),
    ("Logged in from 10.20.30.40 as MARIA GONZALEZ.", [("IP_ADDRESS", "10.20.30.40"), ("PERSON", "MARIA GONZALEZ")]),
    ("Write to tom.hale@example.co.uk about the refund.", [("EMAIL_ADDRESS", "tom.hale@example.co.uk")]),
]


def _labelled(items: list[tuple[str, list[tuple[str, str]]]]) -> tuple[list[str], list[list[tuple[str, int, int]]]]:
    texts, gold = [], []
    for text, spans in items:
        texts.append(text)
        gold.append([(etype, text.index(value), text.index(value) + len(value)) for etype, value in spans])
    return texts, gold


def _predict(detector: Detector, texts: list[str], language: str = "en") -> list[list[tuple[str, int, int]]]:
    return [[(e.type, e.start, e.end) for e in ents] for ents in detector.analyze(texts, language=language)]


def test_phones_in_many_countries_formats_and_no_lookalikes(detector: Detector) -> None:
    texts, gold = _labelled(EN_SET)
    figures = score(_predict(detector, texts), gold)
    assert figures["PHONE_NUMBER"]["recall"] == 1.0 and figures["PHONE_NUMBER"]["precision"] == 1.0, figures
    assert figures["micro"]["f1"] >= 0.9, figures


def test_french_set(detector: Detector) -> None:
    data = json.loads(FR_SET.read_text(encoding="utf-8"))
    texts = [d["full_text"] for d in data]
    gold = [[(s["entity_type"], s["start_position"], s["end_position"]) for s in d["spans"]] for d in data]
    figures = score(_predict(detector, texts, "fr"), gold)
    for etype in ("PHONE_NUMBER", "EMAIL_ADDRESS", "IP_ADDRESS"):
        assert figures[etype]["recall"] == 1.0 and figures[etype]["precision"] == 1.0, (etype, figures[etype])
    assert figures["PERSON"]["f1"] >= 0.8, figures["PERSON"]


def test_every_pii_column_is_found_and_no_other(detector: Detector) -> None:
    from connectors.base import Record
    from discover.profile import Profiler

    settings = detector.settings
    profiler = Profiler(detector, regions=settings.phone_regions, entities=settings.entities, language="en")
    truth, columns = build_columns()
    found = {}
    for name, values in columns.items():
        profile = profiler.profile([Record(str(i), {name: v}) for i, v in enumerate(values)])[name]
        found[name] = profile.entity_type or ("FREE_TEXT" if profile.free_text else "none")
    assert found == truth


def test_columns_without_names_claim_no_person_and_notes_with_names_do(detector: Detector) -> None:
    """The share of values the inventory would report as holding a PERSON, per free-text column."""
    truth, columns = build_columns()
    share = {}
    for name in [n for n, t in truth.items() if t == "FREE_TEXT"]:
        found = detector.analyze(columns[name])
        share[name] = sum(any(e.type == "PERSON" for e in ents) for ents in found) / len(found)
    assert {n for n, s in share.items() if s > MAX_FALSE_PERSON} == set(PERSON_IN_TEXT), share
    assert all(share[n] >= 0.9 for n in PERSON_IN_TEXT), share


def test_language_is_set_per_source(tmp_path: Path, index: Index, detector: Detector) -> None:
    from piiport.config import load_config

    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "appels.txt").write_text(
        "Merci de rappeler Jean-Pierre Moreau au 06 98 76 54 32 demain.\n", encoding="utf-8"
    )
    cfg_file = tmp_path / "piiport.yaml"
    cfg_file.write_text("sources:\n  - name: fr\n    path: notes\n    language: fr\n", encoding="utf-8")
    (spec,) = load_config(cfg_file).sources
    assert spec.language == "fr"
    scan([spec], index=index, detector=detector)
    found = {(r.field, r.entity_type) for r in inventory(index)}
    assert found == {("line", "PERSON"), ("line", "PHONE_NUMBER")}
    assert index.findings_for([index.ident("PHONE_NUMBER", "+33698765432")])


@pytest.mark.parametrize("text", ["06 12 34 56 78", "+33 6 12 34 56 78", "0033 6 12 34 56 78"])
def test_french_phone_formats_normalise_alike(text: str) -> None:
    from discover.identifiers import normalise_phone

    assert normalise_phone(text, ("FR", "GB", "DE", "US")) == "+33612345678"
