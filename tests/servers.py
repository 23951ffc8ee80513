"""Create and drop uniquely named databases on the local PostgreSQL and MariaDB servers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from services import service_missing

PG_HOST = "postgresql+psycopg://postgres@127.0.0.1:5432"
MY_HOST = "mysql+pymysql://root@127.0.0.1:3306"


def _engine(url: str, **kw):
    from sqlalchemy import create_engine

    return create_engine(url, isolation_level="AUTOCOMMIT", **kw)


@contextmanager
def postgres_database(prefix: str = "piiport_t") -> Iterator[str]:
    """A fresh database; the test skips when the server is not there (fails under PIIPORT_REQUIRE_SERVICES=1)."""
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = _engine(f"{PG_HOST}/postgres")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        service_missing(f"PostgreSQL is not reachable on 127.0.0.1:5432 ({exc.orig}); start it as .ci/run does")
    try:
        yield f"{PG_HOST}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": name})
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@contextmanager
def mariadb_database() -> Iterator[str]:
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    name = f"piiport_t_{uuid.uuid4().hex[:10]}"
    admin = _engine(f"{MY_HOST}/")
    try:
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    except OperationalError as exc:
        service_missing(f"MariaDB is not reachable on 127.0.0.1:3306 ({exc.orig}); start it as .ci/run does")
    try:
        yield f"{MY_HOST}/{name}?charset=utf8mb4"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        admin.dispose()


def run_sql(url: str, statements: str) -> None:
    from sqlalchemy import text

    engine = _engine(url)
    with engine.connect() as conn:
        for statement in [s.strip() for s in statements.split(";\n") if s.strip()]:
            conn.execute(text(statement))
    engine.dispose()
