"""A reference point for W1: a bare single-process loop that stores a row per identifier.

    python benchmarks/bare_loop.py              # 1,000,000 rows
    python benchmarks/bare_loop.py --rows 100000

No start-up, no profiling, no pool: read the table with sqlite3, check each e-mail and IP with a
regex, reduce each phone to its digits, hash the four identifiers with keyed BLAKE2b, and bulk
insert them (one row per identifier) into a fresh SQLite file; then build the identifier index.
Each time is printed as a ratio to a plain ``SELECT *`` read of the same table, as in run.py.
It shows how much of piiport's W1 figure is the storage layout itself.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from run import plain_read
from workloads import build_w1

_EMAIL = re.compile(r"^[\w.+-]+@[\w-]+(\.[\w-]+)+$")
_IP = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
_NOT_DIGITS = re.compile(r"\D+")


def bare_loop(source: Path, index: Path) -> tuple[float, float]:
    """Seconds to load the identifiers, and to load them and build the identifier index."""
    keyed = hashlib.blake2b(key=b"k" * 32, digest_size=16)

    def digest(value: str) -> bytes:
        h = keyed.copy()
        h.update(value.encode())
        return h.digest()

    start = time.perf_counter()
    with sqlite3.connect(source) as src, sqlite3.connect(index) as dst:
        dst.execute("PRAGMA journal_mode=WAL")
        dst.execute("PRAGMA synchronous=NORMAL")
        dst.execute("CREATE TABLE findings (record_key INTEGER, entity_type TEXT, ident BLOB)")
        cur = src.execute("SELECT id, first_name, last_name, email, phone, ip FROM customers")
        while rows := cur.fetchmany(10_000):
            out = []
            for key, first, last, email, phone, ip in rows:
                if _EMAIL.match(email):
                    out.append((key, "e", digest(email.lower())))
                digits = _NOT_DIGITS.sub("", phone)
                if 8 <= len(digits) <= 15:
                    out.append((key, "p", digest(digits)))
                if _IP.match(ip):
                    out.append((key, "i", digest(ip)))
                out.append((key, "n", digest(f"{first} {last}".lower())))
            dst.executemany("INSERT INTO findings VALUES (?, ?, ?)", out)
        dst.commit()
        loaded = time.perf_counter() - start
        dst.execute("CREATE INDEX ix_ident ON findings (ident)")
        dst.commit()
    return loaded, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="piiport-bare-") as tmp:
        work = Path(tmp)
        w1 = build_w1(work / "w1.db", args.rows)
        read = min(plain_read(w1, "customers") for _ in range(3))
        loaded, indexed = bare_loop(w1, work / "bare.db")
    print(f"W1 {args.rows:,} rows; plain read {read:.2f}s")
    print(f"bare loop, load only           {loaded / read:5.1f}x  ({loaded:.1f}s)")
    print(f"bare loop, with identifier index {indexed / read:5.1f}x  ({indexed:.1f}s)")


if __name__ == "__main__":
    main()
