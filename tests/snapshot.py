"""Copy the `world` fixture's rows from a snapshot instead of building them for every test.

Building the world through the use cases (ten accounts with a password check and an argon2 hash each,
volunteers, residents, demands and their occurrences, many flushes) took 60-100 ms a test, on both
databases, for hundreds of tests. The rows it makes are the same every time, so each test process
builds the world once per database, keeps a copy of every row it added (SQLite: in memory; PostgreSQL:
in a schema of the test database), and later tests copy those rows back (a few INSERTs, on PostgreSQL
`INSERT ... SELECT` in one round trip) and get the same objects by id.

What a test sees stays what the build gave it:
- the same rows with the same ids, and on PostgreSQL the same sequence positions;
- timestamps the build took from the clock (created_at, the audit log, consent times) are moved
  forward by the time since the build, as if the world had just been built;
- the same ORM objects in the dict, in the test's session and expired, as the build's commit leaves
  them (put there by primary key, without a query: their first attribute read loads them, as before).

The copy is used only when the database is exactly as the `app` fixture left it: `mark_pristine` is
called there, and any statement other than a SELECT on any engine after it (a fixture that added rows
before `world`) makes `world` build the slow way. A snapshot is also rebuilt when something the build
depends on changes: the dates (today, next Monday) or the password-hash cost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import DateTime, event, inspect
from sqlalchemy.engine import Engine
from sqlalchemy.orm import make_transient_to_detached

from matcher import accounts, clock
from matcher.db import db as _db
from matcher.models import utcnow

SCHEMA = "linli_world_snapshot"  # PostgreSQL: where the copies live, next to the tables (not in the search path)
_SQLITE_FORMAT = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy stores a DateTime in SQLite

_writes = 0  # statements other than SELECT run on any engine of this process
_pristine_at: int | None = None


@event.listens_for(Engine, "before_cursor_execute")
def _count_writes(_conn, _cursor, statement, _parameters, _context, _executemany) -> None:
    """Count every statement that may write (a new engine's own SHOW and PRAGMA queries do not)."""
    global _writes
    verb = statement.lstrip()[:6].upper()
    if verb not in ("SELECT", "SHOW") and not (verb == "PRAGMA" and "=" not in statement):
        _writes += 1


def mark_pristine() -> None:
    """The database now holds only what the `app` fixture puts there (the seeded catalogue)."""
    global _pristine_at
    _pristine_at = _writes


def is_pristine() -> bool:
    """Nothing has written to any database since `mark_pristine`."""
    return _pristine_at is not None and _pristine_at == _writes


def _key(next_monday: date) -> tuple:
    """What the world's rows depend on besides the code."""
    hasher = accounts._hasher
    return (str(_db.engine.url), next_monday, date.today(), utcnow().date(), clock.local_today(),
            hasher.time_cost, hasher.memory_cost, hasher.parallelism)


@dataclass
class _Window:
    """When the build ran, on both clocks a timestamp may have been taken from (naive UTC and local)."""

    utc: tuple[datetime, datetime]
    local: tuple[datetime, datetime]
    end: datetime = field(init=False)

    def __post_init__(self) -> None:
        self.end = self.utc[1]

    def holds(self, value: Any) -> bool:
        return isinstance(value, datetime) and any(lo <= value <= hi for lo, hi in (self.utc, self.local))


@dataclass
class _Snapshot:
    key: tuple
    dialect: str
    tables: list  # the tables the build changed, parents first
    emptied: list  # those of them that held rows before the build (emptied before the copy)
    shifted: dict  # table name -> names of its DateTime columns holding build-time timestamps
    window: _Window
    refs: dict  # the world dict with (class, id) in place of each object
    rows: dict = field(default_factory=dict)  # SQLite: table name -> raw rows
    sequences: list = field(default_factory=list)  # PostgreSQL: (qualified name, last value) of used ones


_snapshots: dict[str, _Snapshot] = {}


def _raw_rows(connection, table) -> list[tuple]:
    columns = ", ".join(f'"{c.name}"' for c in table.columns)
    return sorted((tuple(row) for row in connection.exec_driver_sql(f'SELECT {columns} FROM "{table.name}"')), key=repr)


class Recorder:
    """Records the database before and after the world is built and keeps the difference."""

    def __init__(self, next_monday: date):
        self.key = _key(next_monday)
        self.usable = is_pristine()
        if self.usable:
            connection = _db.session.connection()
            self.before = {t.name: _raw_rows(connection, t) for t in _db.metadata.sorted_tables}
            _db.session.commit()
        self.started = (utcnow(), clock.local_now())

    def keep(self, world: dict) -> None:
        """Keep a snapshot of what the build added (only if the build started from the `app` state)."""
        ended = (utcnow(), clock.local_now())
        url = str(_db.engine.url)
        if not self.usable:
            return
        window = _Window(utc=(self.started[0], ended[0]), local=(self.started[1], ended[1]))
        connection = _db.session.connection()
        dialect = _db.engine.dialect.name
        tables, emptied, shifted, rows = [], [], {}, {}
        for table in _db.metadata.sorted_tables:
            after = _raw_rows(connection, table)
            if after == self.before[table.name]:
                continue
            tables.append(table)
            if self.before[table.name]:
                emptied.append(table)
            stamps = [i for i, c in enumerate(table.columns) if isinstance(c.type, DateTime)]
            names = [table.columns[i].name for i in stamps
                     if any(window.holds(_as_datetime(row[i], dialect)) for row in after)]
            if names:
                shifted[table.name] = names
            rows[table.name] = after
        snapshot = _Snapshot(key=self.key, dialect=dialect, tables=tables, emptied=emptied, shifted=shifted,
                             window=window, refs=_refs(world))
        if dialect == "postgresql":
            statements = [f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE', f'CREATE SCHEMA "{SCHEMA}"']
            for table in tables:
                columns = ", ".join(f'"{c.name}"' for c in table.columns)
                statements.append(f'CREATE TABLE "{SCHEMA}"."{table.name}" AS SELECT {columns} FROM "{table.name}"')
            connection.exec_driver_sql("; ".join(statements))
            snapshot.sequences = [
                (f'"{schema}"."{name}"', value) for schema, name, value in connection.exec_driver_sql(
                    "SELECT schemaname, sequencename, last_value FROM pg_sequences "
                    "WHERE schemaname = current_schema() AND last_value IS NOT NULL").all()]
        else:
            snapshot.rows = rows
        _db.session.commit()  # leaves the world's objects expired, as the build's own commit did
        _snapshots[url] = snapshot


def restore(next_monday: date) -> dict | None:
    """The world copied from this database's snapshot, or None when it has to be built."""
    snapshot = _snapshots.get(str(_db.engine.url))
    if snapshot is None or not is_pristine() or snapshot.key != _key(next_monday):
        return None
    delta = utcnow() - snapshot.window.end
    connection = _db.session.connection()
    if snapshot.dialect == "postgresql":
        statements = [f'DELETE FROM "{t.name}"' for t in reversed(snapshot.emptied)]
        for table in snapshot.tables:
            columns = ", ".join(f'"{c.name}"' for c in table.columns)
            values = ", ".join(_pg_value(c.name, snapshot, delta) if c.name in snapshot.shifted.get(table.name, ())
                               else f'"{c.name}"' for c in table.columns)
            statements.append(f'INSERT INTO "{table.name}" ({columns}) SELECT {values} FROM "{SCHEMA}"."{table.name}"')
        if snapshot.sequences:
            statements.append("SELECT " + ", ".join(f"setval('{name}', {value}, true)"
                                                    for name, value in snapshot.sequences))
        connection.exec_driver_sql("; ".join(statements))
    else:
        for table in reversed(snapshot.emptied):
            connection.exec_driver_sql(f'DELETE FROM "{table.name}"')
        for table in snapshot.tables:
            rows = snapshot.rows[table.name]
            if not rows:
                continue
            shifted = [i for i, c in enumerate(table.columns) if c.name in snapshot.shifted.get(table.name, ())]
            if shifted:
                rows = [_shift_sqlite_row(row, shifted, snapshot.window, delta) for row in rows]
            columns = ", ".join(f'"{c.name}"' for c in table.columns)
            marks = ", ".join("?" for _ in table.columns)
            connection.exec_driver_sql(f'INSERT INTO "{table.name}" ({columns}) VALUES ({marks})', rows)
    world = _load(snapshot.refs)
    _db.session.commit()  # leaves the objects expired, as the build's own commit did
    return world


def _as_datetime(value: Any, dialect: str) -> Any:
    if dialect == "sqlite" and isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return value
    return value


def _pg_value(column: str, snapshot: _Snapshot, delta: timedelta) -> str:
    """The column's value, moved by `delta` when the build took it from the clock."""
    (ulo, uhi), (llo, lhi) = snapshot.window.utc, snapshot.window.local
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return (f"""CASE WHEN "{column}" BETWEEN '{ulo.isoformat()}' AND '{uhi.isoformat()}' """
            f"""OR "{column}" BETWEEN '{llo.isoformat()}' AND '{lhi.isoformat()}' """
            f"""THEN "{column}" + interval '{micros} microseconds' ELSE "{column}" END""")


def _shift_sqlite_row(row: tuple, positions: list[int], window: _Window, delta: timedelta) -> tuple:
    values = list(row)
    for i in positions:
        moment = _as_datetime(values[i], "sqlite")
        if window.holds(moment):
            values[i] = (moment + delta).strftime(_SQLITE_FORMAT)
    return tuple(values)


def _refs(world: dict) -> dict:
    """The world dict with each ORM object replaced by its class and primary key."""
    return {group: {name: (type(obj), inspect(obj).identity) for name, obj in members.items()}
            for group, members in world.items()}


def _load(refs: dict) -> dict:
    """The world's objects, put into the session by primary key without a query.

    The build's commit left its objects persistent and expired (their first attribute read loads the
    row); `restore` commits after this, which expires these the same way."""
    return {group: {name: _attach(cls, identity) for name, (cls, identity) in members.items()}
            for group, members in refs.items()}


def _attach(cls: type, identity: tuple) -> Any:
    mapper = inspect(cls)
    obj = mapper.class_manager.new_instance()
    for column, value in zip(mapper.primary_key, identity, strict=True):
        setattr(obj, mapper.get_property_by_column(column).key, value)
    make_transient_to_detached(obj)
    _db.session.add(obj)
    return obj
