"""Reading a table page by page in key order (keyset pagination: ``WHERE key > last ORDER BY key
LIMIT n``): memory stays at one page, and a dropped connection is retried from the last key read."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from connectors.base import KeyBuckets, KeyRange
from connectors.sql_fingerprint import floor_div_sql
from connectors.sql_keys import KeyLocator

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine


class Pager:
    """Pages of a table's rows (key columns first), each read through ``retry``."""

    def __init__(
        self, keys: KeyLocator, engine: Callable[[], Engine], retry: Callable[[Callable[..., list[Any]]], list[Any]]
    ) -> None:
        self.keys = keys
        #: The connector's engine, asked for at each read: a closed connector makes a new one.
        self.engine = engine
        self.retry = retry

    def driver_pages(self, size: int, unit: KeyRange | KeyBuckets | None, columns: list[Any]) -> Iterator[list[Any]]:
        """Keyset pages of an integer key read through the driver's cursor, as plain tuples.

        The same query as ``pages``; it skips SQLAlchemy's row objects, which cost as much
        as the read itself on a fast source. Only for types the driver returns as the
        extractor reads them (text, integers, IP addresses). Driver errors become
        SQLAlchemy's, so retries and messages are the same.
        """
        from sqlalchemy import bindparam, select
        from sqlalchemy.exc import DBAPIError

        key = self.keys.exprs[0]
        dialect = self.engine().dialect
        base = select(*self.keys.columns, *columns).order_by(key).limit(size)
        if unit is not None:
            base = base.where(key < bindparam("high"))
        if isinstance(unit, KeyBuckets):
            base = base.where(in_buckets(key, unit, dialect))
        first = base.where(key >= bindparam("low")) if unit is not None else base
        following = base.where(key > bindparam("after"))
        compiled = {name: stmt.compile(dialect=dialect) for name, stmt in (("first", first), ("after", following))}
        bounds: dict[str, Any] = {"low": unit[0], "high": unit[1]} if unit is not None else {}

        def page(after: Any) -> list[Any]:
            c = compiled["first" if after is None else "after"]
            values = {**bounds, "after": after}
            params = {**c.params, **{k: v for k, v in values.items() if k in c.params}}
            args: Any = [params[n] for n in c.positiontup or ()] if c.positional else params
            with self.engine().connect() as conn:
                cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
                try:
                    cursor.execute(str(c), args)
                    return list(cursor.fetchall())
                except dialect.loaded_dbapi.Error as exc:
                    raise DBAPIError.instance(str(c), args, exc, dialect.loaded_dbapi.Error, dialect=dialect) from exc
                finally:
                    cursor.close()

        yield from self.keyset(size, page, lambda row: row[0])

    def pages(self, size: int, unit: KeyRange | KeyBuckets | None, columns: list[Any]) -> Iterator[list[Any]]:
        """Keyset pages of the key columns and ``columns``, of a unit (``None``: the whole table)."""
        width = len(self.keys.columns)
        yield from self.keyset(
            size, lambda after: self.page(after, size, unit, columns), lambda row: tuple(row[i] for i in range(width))
        )

    def keyset(
        self, size: int, fetch: Callable[[Any], list[Any]], last_key: Callable[[Any], Any]
    ) -> Iterator[list[Any]]:
        """Keyset pagination: ``fetch(None)``, then ``fetch(last_key(last row))`` until a short or
        empty page; each read retried from where it was (``retry``)."""
        after: Any = None
        while True:
            rows = self.retry(lambda after=after: fetch(after))
            if not rows:
                return
            yield rows
            if len(rows) < size:
                return
            after = last_key(rows[-1])

    def page(
        self,
        after: tuple[Any, ...] | None,
        size: int,
        unit: KeyRange | KeyBuckets | None = None,
        columns: list[Any] | None = None,
    ) -> list[Any]:
        from sqlalchemy import select, tuple_

        exprs = self.keys.exprs
        cols = list(self.keys.table.columns) if columns is None else columns
        stmt = select(*self.keys.columns, *cols).order_by(*exprs).limit(size)
        if unit is not None:
            stmt = stmt.where(exprs[0] >= unit[0], exprs[0] < unit[1])
        if isinstance(unit, KeyBuckets):
            stmt = stmt.where(in_buckets(exprs[0], unit, self.engine().dialect))
        if after is not None:
            after_key = exprs[0] > after[0] if len(exprs) == 1 else tuple_(*exprs) > tuple_(*after)
            stmt = stmt.where(after_key)
        with self.engine().connect() as conn:
            return list(conn.execute(stmt).all())


#: Buckets whose keys number at most this are listed key by key (``in_buckets``). Beyond about
#: 2,350 listed keys SQLite's planner (3.40) scans the range and probes the list row by row,
#: which is slower than computing each row's bucket.
LISTED_KEYS = 2_000


def in_buckets(key: Any, unit: KeyBuckets, dialect: Any) -> Any:
    """Whether ``key // width`` is one of the unit's buckets, flooring negative keys as Python does
    (SQL truncates). Narrow buckets are listed as their keys, ``key IN (…)``: the database looks
    each up in the key's index (SQLite: a third of the time of computing the bucket of every row
    of the range); wide ones as ``bucket IN (…)``, the bucket by integer division
    (``floor_div_sql``: SQLAlchemy's ``//`` is ``FLOOR(key / width)``, which PostgreSQL computes
    in double precision, so that keys beyond 2**53 matched their neighbours' buckets too)."""
    from sqlalchemy import literal_column

    width = int(unit.width)
    # Integers written into the statement: the raw-cursor path takes no expanding parameters.
    if width * len(unit.buckets) <= LISTED_KEYS:
        keys = ",".join(str(int(b) * width + k) for b in unit.buckets for k in range(width))
        return key.op("IN")(literal_column(f"({keys})"))
    bucket: Any = literal_column(floor_div_sql(str(key.compile(dialect=dialect)), width, dialect.name))
    return bucket.op("IN")(literal_column("(" + ",".join(str(int(b)) for b in unit.buckets) + ")"))
