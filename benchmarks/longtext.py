"""One long text against the same text in 1,000-character lines: `piiport detect`'s cost per character.

    python benchmarks/longtext.py              # 1,000,000 characters
    python benchmarks/longtext.py --chars 200000

The text is W2's notes (benchmarks/workloads.py: ordinary words, about a third of the notes
with a name, an e-mail, a phone or an IP) joined by spaces into one line. The same characters,
with the space nearest each 1,000th character made a line break, are the baseline. Both are
analysed in this process by one detector (built and warmed up first, so model loading counts
in neither), as `piiport detect` analyses its input. Target: the long text takes at most 2x
the time of the lines. Before long texts were cut into chunks, one 200,000-character line took
6x the time of its lines, and a text over 1,000,000 characters failed (spaCy E088).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from workloads import note


def long_text(chars: int, seed: int = 3) -> str:
    rng = random.Random(seed)
    parts: list[str] = []
    size = i = 0
    while size < chars:
        text, _ = note(rng, i)
        parts.append(text)
        size += len(text) + 1
        i += 1
    return " ".join(parts)[:chars]


def as_lines(text: str, width: int = 1000) -> list[str]:
    """The same characters, cut at the space nearest before each ``width``-th character."""
    lines, pos = [], 0
    while len(text) - pos > width:
        cut = text.rfind(" ", pos, pos + width)
        cut = cut if cut > pos else pos + width
        lines.append(text[pos:cut])
        pos = cut + 1
    lines.append(text[pos:])
    return lines


def timed(detect, texts: list[str]) -> tuple[float, float, int]:
    wall, cpu = time.perf_counter(), time.process_time()
    found = sum(len(entities) for entities in detect(texts))
    return time.perf_counter() - wall, time.process_time() - cpu, found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chars", type=int, default=1_000_000, help="length of the long text (default 1,000,000)")
    args = parser.parse_args()

    from piiport.api import build_detector, detect_texts

    detector = build_detector()
    detector.analyze(["Warm up: call Jane Doe on +1 415 555 2671."])
    text = long_text(args.chars)
    lines = as_lines(text)

    def detect(texts: list[str]):
        return detect_texts(texts, detector=detector)

    line_wall, line_cpu, line_found = timed(detect, lines)
    long_wall, long_cpu, long_found = timed(detect, [text])
    print(f"text: {len(text):,} characters on one line; baseline: the same in {len(lines):,} lines")
    print(f"lines:     {line_wall:6.1f} s wall, {line_cpu:6.1f} s CPU, {line_found:,} entities")
    print(f"long text: {long_wall:6.1f} s wall, {long_cpu:6.1f} s CPU, {long_found:,} entities")
    print(f"long / lines: {long_wall / line_wall:.2f}x wall, {long_cpu / line_cpu:.2f}x CPU (target <= 2x)")


if __name__ == "__main__":
    main()
