"""The SQLAlchemy handle shared by the domain and the web layer.

`db` is unbound here and bound to an app in `web.create_app` (Flask-SQLAlchemy's
extension pattern). The naming convention keeps constraint names stable so that
Alembic migrations are the same on SQLite and PostgreSQL.
"""

import sqlite3
from collections.abc import Iterable

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import Integer, MetaData, any_, bindparam, event
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base with the project's naming convention."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)


@event.listens_for(Engine, "connect")
def _sqlite_write_ahead_log(dbapi_connection, _record) -> None:
    """An SQLite database file runs in write-ahead-log mode: readers never wait for a writer (a volunteer
    accepting an offer does not hold up the pages of everyone else), and a writer waits for another
    writer rather than failing. Commits still reach the disk before they return (synchronous stays FULL).
    The mode is kept in the file; an in-memory database answers "memory" and is left as it is."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
        finally:
            cursor.close()


def among(column, ids: Iterable[int]):
    """`column IN (ids)` for a list of integer ids that may be long (a district's thousand volunteers).
    On PostgreSQL it is one array parameter, `column = ANY(:ids)`: an IN list would be rendered as a
    parameter each, cast each, split by the driver and parsed again by the server (80 ms of a review
    page's CPU for 8,000 of them). Elsewhere a plain IN."""
    ids = list(ids)
    if db.session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, ids, type_=ARRAY(Integer)))
    return column.in_(ids)


def flush_or_conflict(stale_message: object) -> None:
    """Flush; a concurrent change of a versioned row becomes a Conflict asking the person to reload."""
    from sqlalchemy.orm.exc import StaleDataError

    from .errors import Conflict

    try:
        db.session.flush()
    except StaleDataError:
        raise Conflict(str(stale_message)) from None
