"""The database's clock in SQL: leases are judged by one clock, not by each worker's.

A worker whose wall clock runs ahead must not see every lease as expired (and re-queue
runs other workers are executing), nor one that runs behind hand out leases that never
expire. So lease deadlines are written and compared as ``now() ± seconds`` evaluated by
the database. SQLite (the embedded default) has no interval type: there the expression
is ``strftime(... 'now', '+N seconds')``, in the text format SQLAlchemy stores datetimes in.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Float, literal
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from shared.models import UTCDateTime


class db_now_plus(FunctionElement[Any]):  # noqa: N801 - reads as the SQL function it is
    """The database's current UTC time plus ``seconds`` (negative: minus)."""

    type = UTCDateTime()
    name = "db_now_plus"
    inherit_cache = True


def now_plus(seconds: float | ColumnElement[Any]) -> db_now_plus:
    """``now() + seconds`` on the database's clock; ``seconds`` a number or a bound parameter."""
    offset = seconds if isinstance(seconds, ColumnElement) else literal(float(seconds), Float)
    return db_now_plus(offset)


@compiles(db_now_plus)
def _default(element: db_now_plus, compiler: SQLCompiler, **kw: Any) -> str:
    # PostgreSQL: now() is the transaction's start (a lone statement's own time).
    offset = compiler.process(list(element.clauses)[0], **kw)
    return f"(now() + make_interval(secs => CAST({offset} AS DOUBLE PRECISION)))"


@compiles(db_now_plus, "sqlite")
def _sqlite(element: db_now_plus, compiler: SQLCompiler, **kw: Any) -> str:
    offset = compiler.process(list(element.clauses)[0], **kw)
    return f"strftime('%Y-%m-%d %H:%M:%f', 'now', printf('%+.3f seconds', {offset}))"
