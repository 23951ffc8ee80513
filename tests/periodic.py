"""Helpers for the periodic-inventory tests: one SQL source on SQLite, PostgreSQL or MariaDB,
changed between scans with the same statements."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from servers import mariadb_database, postgres_database, run_sql

BACKENDS = ["sqlite", "postgresql", "mariadb"]


@contextlib.contextmanager
def sql_source(backend: str, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database of the backend; yields its URL."""
    if backend == "sqlite":
        path = tmp_path / "crm.db"
        sqlite3.connect(path).close()
        yield f"sqlite:///{path}"
    elif backend == "postgresql":
        with postgres_database() as url:
            yield url
    else:
        with mariadb_database() as url:
            yield url


def execute(url: str, statements: str) -> None:
    """Run ``;\\n``-separated statements (SQLite through its own driver: the URL is a file)."""
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url[len("sqlite:///") :]) as db:
            for statement in [s.strip() for s in statements.split(";\n") if s.strip()]:
                db.execute(statement)
        return
    run_sql(url, statements)


def write_config(path: Path, index: Path, sources: dict[str, str], extra: str = "") -> Path:
    lines = [f"index: sqlite:///{index}", "sources:"]
    for name, url in sources.items():
        key = "url" if "://" in url else "path"
        lines += [f"  - name: {name}", f"    {key}: {url}"]
    path.write_text("\n".join(lines) + "\n" + extra, encoding="utf-8")
    return path
