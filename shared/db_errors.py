"""Which database errors are the request's own data (permanent) and which are an outage.

One classification for the API and the worker: a value the database refuses (PostgreSQL's
``DataError`` for a NUL byte or an over-long string, an integrity violation, a string the
driver cannot encode) fails again however often it is retried, so it is the client's 4xx
or a run's permanent failure, never ``503 database unreachable`` and never a retry.
"""

from __future__ import annotations

from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from shared.errors import Conflict, InvalidRequest

# Not reaching the database, or it giving up on us: the same statement may work later.
_OUTAGES = (OperationalError, InterfaceError, PoolTimeout, ConnectionError, TimeoutError, OSError)


def is_bad_data(exc: BaseException) -> bool:
    """The statement's values cannot be stored: the same values fail again."""
    return isinstance(exc, DataError | IntegrityError | UnicodeError)


def is_transient(exc: BaseException) -> bool:
    """The database was unreachable or failed the statement for its own reasons: retry."""
    if is_bad_data(exc):
        return False
    if isinstance(exc, _OUTAGES):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def client_error(exc: BaseException) -> InvalidRequest | Conflict | None:
    """The 4xx a client gets for its own bad data (None when ``exc`` is not that)."""
    if not is_bad_data(exc):
        return None
    reason = _reason(exc)
    if isinstance(exc, IntegrityError):
        return Conflict(f"the request conflicts with stored data ({reason})")
    return InvalidRequest(
        f"a value in the request cannot be stored ({reason}); check its strings' length and "
        "characters"
    )


def _reason(exc: BaseException) -> str:
    # The driver's first line names the problem (e.g. "value too long for type character
    # varying(128)"), not the value; SQLAlchemy's wrapper would add the statement.
    orig = getattr(exc, "orig", None) or exc
    if isinstance(orig, UnicodeError):
        return "a string holds a character that cannot be encoded"
    first = str(orig).strip().splitlines()
    return first[0][:200] if first else type(orig).__name__
