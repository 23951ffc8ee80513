"""Which driver errors are worth a retry: decided by the error's type and code, never its wording
(messages change between versions and are translated by the server's locale)."""

from __future__ import annotations

from typing import Any

#: PostgreSQL SQLSTATEs that end with the connection but not the server's will: admin, crash or
#: startup shutdown (57P01..03), a serialization failure or deadlock (40001, 40P01). Class 08 is
#: every connection exception.
_PG_TRANSIENT = frozenset({"57P01", "57P02", "57P03", "40001", "40P01"})
#: MySQL/MariaDB client and server codes: can't connect (2002 socket, 2003 TCP), server gone away
#: (2006), lost connection during a query (2013), lock wait timeout (1205), deadlock (1213).
_MYSQL_TRANSIENT = frozenset({2002, 2003, 2006, 2013, 1205, 1213})
#: S3 error codes that say "later": throttling and the store's own 5xx answers.
S3_TRANSIENT = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestTimeout",
        "RequestTimeTooSkewed",
        "InternalError",
        "ServiceUnavailable",
        "500",
        "502",
        "503",
        "504",
    }
)


def pg_transient(sqlstate: str | None) -> bool:
    """A psycopg error's SQLSTATE; None is a failure on the client side of the connection
    (refused, reset, timed out), where no server answered with a state."""
    return sqlstate is None or sqlstate.startswith("08") or sqlstate in _PG_TRANSIENT


def mysql_transient(code: int | None) -> bool:
    return code in _MYSQL_TRANSIENT


def driver_transient(orig: BaseException) -> bool | None:
    """Whether a DB-API error from psycopg, PyMySQL or mysqlclient is transient; None for another
    driver's, whose codes are not known here."""
    psycopg = _module("psycopg")
    if psycopg is not None and isinstance(orig, psycopg.Error):
        return isinstance(orig, psycopg.OperationalError) and pg_transient(orig.sqlstate)
    for name in ("pymysql", "MySQLdb"):
        driver = _module(name)
        if driver is not None and isinstance(orig, driver.MySQLError):
            first = orig.args[0] if orig.args else None
            return mysql_transient(first if isinstance(first, int) else None)
    return None


def _module(name: str) -> Any:
    """A driver module if it is installed; it is imported by now if it raised the error."""
    import sys

    return sys.modules.get(name)
