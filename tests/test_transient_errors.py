"""Which server errors a read retries: decided by the driver's error class and code, against the
real servers (a backend killed under the read, a lock wait, a cancelled statement, a refused login)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from servers import mariadb_database, postgres_database, run_sql

from connectors.base import SourceSpec
from connectors.errors import SourceError
from connectors.options import SqlOptions
from connectors.sql import SqlConnector, with_retry

pytestmark = pytest.mark.servers


def _counted(connector: SqlConnector, statements: Callable[[int], list[str]]) -> tuple[Callable[[], Any], list[int]]:
    """A read that runs ``statements(attempt)`` on a fresh connection; the attempts are counted."""
    from sqlalchemy import text

    attempts: list[int] = []

    def call() -> Any:
        attempts.append(len(attempts) + 1)
        with connector.engine.connect() as conn:
            result = None
            for sql in statements(len(attempts)):
                result = conn.execute(text(sql))
            return result.scalar() if result is not None else None

    return call, attempts


def _retry(connector: SqlConnector, call: Callable[[], Any]) -> Any:
    return with_retry(connector, "t", call, retries=3, delay=0.01)


def test_postgres_a_killed_backend_is_retried_and_a_cancelled_statement_is_not() -> None:
    with postgres_database() as url:
        connector = SqlConnector(SourceSpec(name="db", url=url, options=SqlOptions()))
        try:
            # 57P01 (admin shutdown): the connection is gone, the server is fine: read again.
            killed, attempts = _counted(
                connector, lambda n: ["SELECT pg_terminate_backend(pg_backend_pid())"] if n == 1 else ["SELECT 42"]
            )
            assert _retry(connector, killed) == 42 and attempts == [1, 2]
            # 57014 (query cancelled by statement_timeout) is an OperationalError too, but
            # reading again would time out again: one error, no retry.
            slow, attempts = _counted(connector, lambda n: ["SET statement_timeout = '50ms'", "SELECT pg_sleep(2)"])
            with pytest.raises(SourceError) as caught:
                _retry(connector, slow)
            assert attempts == [1]
            assert caught.value.message.startswith("source 'db', table t: canceling statement due to statement timeout")
        finally:
            connector.close()


def test_mariadb_a_lock_wait_timeout_is_retried_and_a_refused_login_is_not() -> None:
    from sqlalchemy import create_engine, text

    with mariadb_database() as url:
        run_sql(url, "CREATE TABLE t (id int PRIMARY KEY, email text);\nINSERT INTO t VALUES (1, 'a@example.com')")
        holder = create_engine(url).connect()
        holder.begin()
        holder.execute(text("SELECT * FROM t WHERE id = 1 FOR UPDATE"))  # holds the row lock
        connector = SqlConnector(SourceSpec(name="db", url=url, options=SqlOptions()))

        def statements(n: int) -> list[str]:
            if n == 2:
                holder.rollback()  # the other transaction ends between the tries
            return ["SET SESSION innodb_lock_wait_timeout = 1", "SELECT id FROM t WHERE id = 1 FOR UPDATE"]

        try:
            locked, attempts = _counted(connector, statements)
            assert _retry(connector, locked) == 1 and attempts == [1, 2]  # 1205, then the row
        finally:
            holder.close()
            connector.close()
        # 1045 (access denied) is an OperationalError as well: a wrong password is not retried.
        bad = SqlConnector(
            SourceSpec(name="db", url=url.replace("root@", "piiport_nobody:wrong@"), options=SqlOptions(retry_delay=5))
        )
        try:
            login, attempts = _counted(bad, lambda n: ["SELECT 1"])
            with pytest.raises(SourceError) as caught:
                _retry(bad, login)
            assert attempts == [1]  # with retries, 5 s, 10 s and 20 s would have passed first
            assert "Access denied for user 'piiport_nobody'" in caught.value.message
            assert "wrong" not in caught.value.message
        finally:
            bad.close()
