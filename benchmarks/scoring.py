"""The one scorer of the benchmarks (accuracy.py, run.py): lenient, one-to-one span matching.

A prediction matches a labelled span of the same entity type whose character range overlaps it;
each labelled span and each prediction counts once, so two predictions over one labelled span
are one true positive and one false positive. Spans of types outside ``ENTITIES`` are ignored.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

ENTITIES = ("PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "IP_ADDRESS")
Span = tuple[str, int, int]


def score(predicted: Sequence[Sequence[Span]], gold: Sequence[Sequence[Span]]) -> dict[str, dict[str, float]]:
    """Precision, recall, F1 and support per entity type and ``micro`` over all; text by text."""
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"tp": 0, "fp": 0, "fn": 0})
    for pred, want in zip(predicted, gold, strict=True):
        used: set[int] = set()
        for etype, start, end in pred:
            if etype not in ENTITIES:
                continue
            hit = next(
                (i for i, (t, s, e) in enumerate(want) if i not in used and t == etype and start < e and s < end), None
            )
            if hit is None:
                counts[etype]["fp"] += 1
            else:
                used.add(hit)
                counts[etype]["tp"] += 1
        for i, (etype, _, _) in enumerate(want):
            if i not in used and etype in ENTITIES:
                counts[etype]["fn"] += 1
    out = {}
    total = {"tp": 0, "fp": 0, "fn": 0}
    for etype in (*ENTITIES, "micro"):
        c = total if etype == "micro" else counts[etype]
        if etype != "micro":
            for k in total:
                total[k] += c[k]
        p = c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else 0.0
        r = c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else 0.0
        out[etype] = {
            "precision": p,
            "recall": r,
            "f1": 2 * p * r / (p + r) if p + r else 0.0,
            "support": c["tp"] + c["fn"],
        }
    return out


def score_by_key(found: dict[int, list[Span]], truth: dict[int, list[Span]]) -> dict[str, dict[str, float]]:
    """``score`` for texts keyed by record id: every key of ``truth``; a key missing in ``found`` predicted nothing."""
    keys = sorted(truth)
    return score([found.get(k, []) for k in keys], [truth[k] for k in keys])
