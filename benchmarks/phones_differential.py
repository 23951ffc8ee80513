"""The phone normaliser against libphonenumber on generated strings: zero disagreements expected.

    python benchmarks/phones_differential.py                   # 60,000 strings, 26 regions
    python benchmarks/phones_differential.py --count 5000 --seed 3
    python benchmarks/phones_differential.py --column-only --baseline 487486d   # W1's phone column, then and now

Each string (``phone_strings.py``: valid and possible numbers of each region, written the ways
people write them) is normalised with its own region configured, then with two multi-region
lists; wherever libphonenumber parses it as a valid number (the first region, in order, where
``phonenumbers.parse`` + ``is_valid_number`` succeed), ``normalise_phone`` must give the same
E.164. Also printed: how many strings took the fast path, what the fast path kept that
libphonenumber finds invalid (the documented fallback), and the time per string of the
normaliser against ``phonenumbers.parse`` alone on the same strings and regions, and per value
on W1's phone column (``workloads.phone``, regions FR, GB, DE, US; ``--baseline REF`` also times
``discover/identifiers.py`` as it was at git revision REF, interleaved, best of 5).
Exit code 1 on any disagreement.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from phone_strings import REGIONS, configs_for, reference, strings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=60_000, help="strings to generate (default 60,000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--column", type=int, default=200_000, help="W1 phone values to time (default 200,000)")
    parser.add_argument("--column-only", action="store_true", help="only time W1's phone column")
    parser.add_argument("--baseline", help="a git revision whose discover/identifiers.py to time as well")
    args = parser.parse_args(argv)
    column(args.column, args.baseline)
    if args.column_only:
        return 0

    import phonenumbers

    import discover.e164 as e164
    from discover.identifiers import normalise_phone, phone_normaliser

    started = time.perf_counter()
    pairs = strings(args.count, seed=args.seed)
    generated = time.perf_counter() - started

    slow = Counter[str]()
    handed = e164._slow

    def counting_slow(text: str, regions: object) -> str | None:
        slow["calls"] += 1
        return handed(text, regions)  # type: ignore[arg-type]

    e164._slow = counting_slow  # type: ignore[assignment]
    checks = valid = kept_invalid = 0
    disagreements: list[tuple[tuple[str, ...], str, str, str | None]] = []
    per_region: Counter[str] = Counter()
    started = time.perf_counter()
    for region, text in pairs:
        for regions in configs_for(region):
            checks += 1
            expected = reference(text, regions)
            got = normalise_phone(text, regions)
            if expected is None:
                kept_invalid += got is not None
                continue
            valid += 1
            per_region[region] += 1
            if got != expected:
                disagreements.append((regions, text, expected, got))
    checked = time.perf_counter() - started
    e164._slow = handed  # type: ignore[assignment]

    # Speed: the normaliser (regions compiled once) against phonenumbers.parse alone, same strings.
    by_region: dict[str, list[str]] = {}
    for region, text in pairs:
        by_region.setdefault(region, []).append(text)
    times = {"all": [0.0, 0.0, 0], "digits and separators": [0.0, 0.0, 0]}
    for region, texts in by_region.items():
        normalise = phone_normaliser((region,))
        normalise(texts[0])
        shaped = [t for t in texts if e164.phone_shaped(t)]
        for label, group in (("all", texts), ("digits and separators", shaped)):
            started = time.perf_counter()
            for text in group:
                normalise(text)
            times[label][0] += time.perf_counter() - started
            started = time.perf_counter()
            for text in group:
                try:  # noqa: SIM105 - a with-block would add its own cost to the timed loop
                    phonenumbers.parse(text, region)
                except phonenumbers.NumberParseException:
                    pass
            times[label][1] += time.perf_counter() - started
            times[label][2] += len(group)

    n = len(pairs)
    print(f"strings: {n:,} in {len(by_region)} regions ({', '.join(sorted(by_region))})")
    print(f"generated in {generated:.1f} s")
    print(f"checks (string x region list): {checks:,}; valid per libphonenumber: {valid:,}; in {checked:.1f} s")
    print(f"disagreements: {len(disagreements)}")
    print(f"handed to phonenumbers (not digits and separators): {slow['calls']:,} of {checks:,} normalisations")
    print(f"kept though libphonenumber finds them invalid (possible length, fallback rule): {kept_invalid:,}")
    for label, (fast, parse, count) in times.items():
        print(
            f"time per string ({label}, {int(count):,}), own region: normaliser {fast / count * 1e6:.1f} µs, "
            f"phonenumbers.parse alone {parse / count * 1e6:.1f} µs ({parse / fast:.1f}x)"
        )
    missing = [r for r in REGIONS if per_region[r] == 0]
    if missing:
        print(f"regions without a valid string: {', '.join(missing)}")
    for regions, text, expected, got in disagreements[:20]:
        print(f"  {regions}: {text!r} libphonenumber {expected} normaliser {got}")
    return 1 if disagreements or missing else 0


def column(count: int, baseline: str | None) -> None:
    """µs per value of the phone normaliser on W1's phone column, best of 5 (and a baseline's)."""
    import importlib.util
    import subprocess
    import tempfile

    from workloads import phone

    from discover.identifiers import phone_normaliser

    regions = ("FR", "GB", "DE", "US")
    normalisers = {"now": phone_normaliser(regions)}
    if baseline:
        root = Path(__file__).resolve().parents[1]
        source = subprocess.run(
            ["git", "show", f"{baseline}:discover/identifiers.py"], cwd=root, check=True, capture_output=True, text=True
        ).stdout
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "baseline_identifiers.py"
            path.write_text(source, encoding="utf-8")
            spec = importlib.util.spec_from_file_location("baseline_identifiers", path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        normalisers[baseline] = module.phone_normaliser(regions)
    values = [phone(i) for i in range(count)]
    best = dict.fromkeys(normalisers, float("inf"))
    for _ in range(5):
        for name, normalise in normalisers.items():
            started = time.perf_counter()
            list(map(normalise, values))
            best[name] = min(best[name], time.perf_counter() - started)
    figures = ", ".join(f"{name} {seconds / count * 1e6:.2f} µs" for name, seconds in best.items())
    print(f"W1 phone column ({count:,} values, FR GB DE US), per value, best of 5: {figures}")


if __name__ == "__main__":
    raise SystemExit(main())
