"""Detection quality of `piiport detect` against a labelled file in the presidio-research format.

    python benchmarks/accuracy.py --data synth_dataset_v2.json     # or PIIPORT_EVAL_DATA=...
    python benchmarks/accuracy.py --vanilla                        # also vanilla Presidio, same model
    python benchmarks/accuracy.py --data fr_set.json --language fr
    python benchmarks/accuracy.py --columns                        # column profiling confusion table

The file is a JSON list of {"full_text", "spans": [{"entity_type", "start_position",
"end_position"}]}. Scoring is benchmarks/scoring.py's, shared with run.py: same entity type and
overlapping character ranges, each labelled span and each prediction counted once. Only PERSON,
EMAIL_ADDRESS, PHONE_NUMBER and IP_ADDRESS are scored; spans of other types are ignored.

The English development set is presidio-research's synth_dataset_v2.json (MIT licence), not
shipped with piiport: get it from https://github.com/microsoft/presidio-research (data/) and
pass --data PATH, set PIIPORT_EVAL_DATA, or put it at benchmarks/data/synth_dataset_v2.json
(ignored by git).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from scoring import ENTITIES, Span, score

DATA_ENV = "PIIPORT_EVAL_DATA"
LOCAL_DATA = Path(__file__).resolve().parent / "data" / "synth_dataset_v2.json"
GET_DATA = (
    "presidio-research's synth_dataset_v2.json (MIT licence; https://github.com/microsoft/presidio-research, data/)"
)


def data_path(given: Path | None) -> Path:
    """The labelled file: --data, else $PIIPORT_EVAL_DATA, else benchmarks/data/; exits with one line if absent."""
    path = given or (Path(os.environ[DATA_ENV]) if os.environ.get(DATA_ENV) else LOCAL_DATA)
    if not path.is_file():
        where = "--data" if given else (DATA_ENV if os.environ.get(DATA_ENV) else str(LOCAL_DATA))
        sys.exit(f"accuracy.py: no labelled file at {path} ({where}); pass --data PATH or set {DATA_ENV} to {GET_DATA}")
    return path


def load(path: Path) -> tuple[list[str], list[list[Span]]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    texts = [d["full_text"] for d in data]
    gold = [
        [(s["entity_type"], s["start_position"], s["end_position"]) for s in d["spans"] if s["entity_type"] in ENTITIES]
        for d in data
    ]
    return texts, gold


def piiport_detect(texts: Sequence[str], language: str) -> list[list[Span]]:
    """Run the real CLI, one JSON object per line in and out."""
    exe = str(Path(sys.executable).with_name("piiport"))
    payload = "".join(json.dumps({"text": t}) + "\n" for t in texts)
    out = subprocess.run(
        [exe, "detect", "--jsonl", "--language", language], input=payload, capture_output=True, text=True, check=True
    ).stdout
    return [[(e["type"], e["start"], e["end"]) for e in json.loads(line)["entities"]] for line in out.splitlines()]


def vanilla_detect(texts: Sequence[str], model: str, language: str) -> list[list[Span]]:
    """Vanilla Presidio: AnalyzerEngine with its default recognizers and the same spaCy model."""
    import tldextract
    import tldextract.tldextract as tld
    from presidio_analyzer import AnalyzerEngine, BatchAnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    tld.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)
    provider = NlpEngineProvider(
        nlp_configuration={"nlp_engine_name": "spacy", "models": [{"lang_code": language, "model_name": model}]}
    )
    engine = BatchAnalyzerEngine(AnalyzerEngine(nlp_engine=provider.create_engine(), supported_languages=[language]))
    results = engine.analyze_iterator(list(texts), language=language, batch_size=64)
    return [[(r.entity_type, r.start, r.end) for r in rs if r.entity_type in ENTITIES] for rs in results]


def print_table(results: dict[str, dict[str, dict[str, float]]]) -> None:
    names = list(results)
    print(
        f"{'entity':<14}" + "".join(f"{n + ' P':>12}{n + ' R':>12}{n + ' F1':>12}" for n in names) + f"{'support':>9}"
    )
    for etype in (*ENTITIES, "micro"):
        row = f"{etype:<14}"
        for n in names:
            m = results[n][etype]
            row += f"{m['precision']:>12.3f}{m['recall']:>12.3f}{m['f1']:>12.3f}"
        print(row + f"{int(results[names[0]][etype]['support']):>9}")


def columns_report() -> None:
    """Profile a table set with known ground truth; print the confusion table and, per column,
    the share of values the inventory would claim hold a PERSON."""
    sys.path.insert(0, str(Path(__file__).parent))
    from column_truth import MAX_FALSE_PERSON, PERSON_IN_TEXT, build_columns

    from connectors.base import Record
    from discover.profile import Profiler
    from piiport.api import build_detector

    detector = build_detector()
    settings = detector.settings
    profiler = Profiler(detector, regions=settings.phone_regions, entities=settings.entities, language="en")
    truth, columns = build_columns()
    confusion: dict[tuple[str, str], int] = defaultdict(int)
    wrong = []
    person_share: dict[str, float] = {}
    for name, values in columns.items():
        sample = [Record(str(i), {name: v}) for i, v in enumerate(values)]
        profile = profiler.profile(sample)[name]
        got = profile.entity_type or ("FREE_TEXT" if profile.free_text else "none")
        confusion[(truth[name], got)] += 1
        if got != truth[name]:
            wrong.append((name, truth[name], got))
        if got == "PERSON":
            person_share[name] = 1.0  # a name column: every value counts as a name
        elif profile.free_text:
            found = detector.analyze(values, language="en")
            person_share[name] = sum(any(e.type == "PERSON" for e in ents) for ents in found) / len(values)
        else:
            person_share[name] = 0.0
    labels = sorted({t for t, _ in confusion} | {g for _, g in confusion})
    print("truth / found".ljust(16) + "".join(f"{lab:>15}" for lab in labels))
    for t in labels:
        print(f"{t:<16}" + "".join(f"{confusion[(t, g)]:>15}" for g in labels))
    print(f"{len(columns)} columns, {len(wrong)} misclassified" + (f": {wrong}" if wrong else ""))
    false_person = {
        n: s
        for n, s in person_share.items()
        if truth[n] != "PERSON" and n not in PERSON_IN_TEXT and s > MAX_FALSE_PERSON
    }
    print("PERSON claimed per column (share of values):")
    for name, share in person_share.items():
        if share or name in PERSON_IN_TEXT:
            print(f"  {name:<16}{share:>7.3f}" + ("  (names expected)" if name in PERSON_IN_TEXT else ""))
    print(
        f"{len(false_person)} column(s) without names claim PERSON above {MAX_FALSE_PERSON:.0%}"
        + (f": {false_person}" if false_person else "")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, help=f"labelled file (default: ${DATA_ENV}, then {LOCAL_DATA})")
    parser.add_argument("--language", default="en")
    parser.add_argument("--model", default=None, help="spaCy model for vanilla (default: piiport's for the language)")
    parser.add_argument("--vanilla", action="store_true", help="also score vanilla Presidio with the same model")
    parser.add_argument("--columns", action="store_true", help="column profiling confusion table instead")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    if args.columns:
        columns_report()
        return
    args.data = data_path(args.data)
    texts, gold = load(args.data)
    results = {"piiport": score(piiport_detect(texts, args.language), gold)}
    if args.vanilla:
        from discover.settings import DEFAULT_MODELS

        model = args.model or DEFAULT_MODELS[args.language]
        results["vanilla"] = score(vanilla_detect(texts, model, args.language), gold)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(f"{args.data.name}: {len(texts)} texts, language {args.language}")
        print_table(results)


if __name__ == "__main__":
    main()
