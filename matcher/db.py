"""The SQLAlchemy handle shared by the domain and the web layer.

`db` is unbound here and bound to an app in `web.create_app` (Flask-SQLAlchemy's
extension pattern). The naming convention keeps constraint names stable so that
Alembic migrations are the same on SQLite and PostgreSQL.
"""

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData
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


def flush_or_conflict(stale_message: object) -> None:
    """Flush; a concurrent change of a versioned row becomes a Conflict asking the person to reload."""
    from sqlalchemy.orm.exc import StaleDataError

    from .errors import Conflict

    try:
        db.session.flush()
    except StaleDataError:
        raise Conflict(str(stale_message)) from None
