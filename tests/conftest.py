"""Shared fixtures: the app on SQLite and on PostgreSQL, a client, login helper and factories.

Every test that uses `app` runs twice: once on a fresh SQLite file and once on a fresh
PostgreSQL database (created for the session and dropped after). Where PostgreSQL is not
reachable those runs are skipped, and the session summary says so plainly.
"""

from __future__ import annotations

import os
import uuid
from datetime import date, timedelta

import pytest
from flask.testing import FlaskClient
from flask_babel import force_locale

from matcher import rules
from matcher.accounts import create_user
from matcher.catalogue import seed_catalogue
from matcher.db import db as _db
from matcher.demands import create_demand
from matcher.models import Area, AreaLevel, Organization, OrgType, Role, Station
from matcher.residents import create_resident
from matcher.volunteers import create_volunteer
from web import create_app

from . import snapshot

POSTGRES_ADMIN_URL = os.environ.get("LINLI_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
# Databases 8-15 of the local Redis, one per pytest-xdist worker ("gw0" -> 15, "gw1" -> 14, ...), since
# some tests empty theirs.
_WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0")[2:] or 0)
REDIS_TEST_URL = os.environ.get("LINLI_TEST_REDIS", f"redis://127.0.0.1:6379/{15 - _WORKER % 8}")
PASSWORD = "correct-horse-battery"
_skipped: dict[str, str] = {}


def postgres_available() -> str | None:
    """None when PostgreSQL answers, else the reason."""
    import psycopg

    try:
        with psycopg.connect(POSTGRES_ADMIN_URL, connect_timeout=3):
            return None
    except Exception as exc:  # any connection failure
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"


@pytest.fixture(scope="session")
def postgres_database():
    """A fresh PostgreSQL database for this test session; dropped afterwards."""
    problem = postgres_available()
    if problem:
        _skipped["postgresql"] = f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL} ({problem})"
        pytest.skip(_skipped["postgresql"])
    import psycopg

    name = f"linli_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _reuse_url_builders() -> None:
    """Build each URL rule's builder function once per test process instead of once per app.

    Every test makes a fresh app (`make_app`), and werkzeug compiles two Python functions for each of
    the ~230 rules of each new URL map: 0.15 s of the 0.23 s an app took to create, five minutes of
    CPU over the suite. The compiled function depends only on the rule's text, its parsed parts and its
    defaults (it reads the converters from the rule it is bound to when called), and every test app has
    the same rules, so it is kept by those. Test-only: a server makes its app once."""
    from werkzeug.routing.rules import Rule

    compile_builder = Rule._compile_builder
    built: dict[tuple, object] = {}

    def reused(self, append_unknown: bool = True):
        defaults = tuple(sorted((k, type(self._converters.get(k)).__name__, repr(v))
                                for k, v in (self.defaults or {}).items()))
        key = (self.rule, tuple(self._trace), defaults, append_unknown)
        if key not in built:
            built[key] = compile_builder(self, append_unknown)
        return built[key]

    Rule._compile_builder = reused


_reuse_url_builders()


def make_test_config(database_url: str, instance_path: str, **overrides) -> dict:
    """The configuration tests run with: real database, low hash cost, CSRF off unless asked."""
    config = {
        "TESTING": True,
        "SECRET_KEY": "test-secret",
        "SQLALCHEMY_DATABASE_URI": database_url,
        "WTF_CSRF_ENABLED": False,
        "ARGON2_TIME_COST": 1,
        "ARGON2_MEMORY_COST": 1024,
        "SESSION_COOKIE_SECURE": False,
        "REMEMBER_COOKIE_SECURE": False,
        "RATELIMIT_ENABLED": False,
        "SERVER_NAME": "localhost",
        # Tests count rows they have not committed: the report's second connection would not see them
        # (tests/matcher/test_reports.py tries the parallel path on committed rows).
        "REPORT_PARALLEL": False,
    }
    config.update(overrides)
    return config


@pytest.fixture(scope="session", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request, tmp_path_factory):
    """The database each app-level test runs on: a fresh SQLite file, then fresh PostgreSQL."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("sqlite") / "test.sqlite"
        return f"sqlite:///{path}"
    return request.getfixturevalue("postgres_database")


@pytest.fixture(scope="session")
def _schema(database_url, tmp_path_factory):
    """Create the tables once per database."""
    app = create_app(make_test_config(database_url, str(tmp_path_factory.mktemp("instance"))))
    with app.app_context():
        _db.create_all()
        yield database_url
        _db.session.remove()
        _db.engine.dispose()


def _empty_tables() -> None:
    """Empty every table; on PostgreSQL also start every id sequence again (ids 1, 2, ... in each test).

    PostgreSQL: DELETE and setval, not TRUNCATE ... RESTART IDENTITY. A TRUNCATE makes new files for
    each of the ~30 tables and their indexes and took 120-230 ms, twice a test; deleting the few rows a
    test leaves takes ~5 ms and leaves the same state (autovacuum reclaims the dead rows)."""
    statements = [f'DELETE FROM "{t.name}"' for t in reversed(_db.metadata.sorted_tables)]
    connection = _db.session.connection()
    if _db.engine.dialect.name == "postgresql":
        statements.append("SELECT setval(quote_ident(schemaname) || '.' || quote_ident(sequencename), start_value,"
                          " false) FROM pg_sequences WHERE schemaname = current_schema()")
        connection.exec_driver_sql("; ".join(statements))  # one round trip
    else:  # one statement per call; plain SQL, as SQLAlchemy would compile it again for each test's engine
        for statement in statements:
            connection.exec_driver_sql(statement)
    _db.session.commit()


class FreshContextClient(FlaskClient):
    """Runs each request in its own app context, as a server would (fresh `g` and session)."""

    def open(self, *args, **kwargs):
        with self.application.app_context():
            return super().open(*args, **kwargs)


@pytest.fixture
def make_app(_schema, tmp_path):
    """Build an app on the session's database with extra config (e.g. CSRF on)."""
    made = []

    def factory(**overrides):
        app = create_app(make_test_config(_schema, str(tmp_path / f"instance{len(made)}"), **overrides))
        app.test_client_class = FreshContextClient
        made.append(app)
        return app

    yield factory
    from web.jobs import stop_outbox_thread

    stop_outbox_thread()  # a sender thread of this test must not carry on against the next test's tables
    for app in made:
        with app.app_context():
            _db.engine.dispose()


@pytest.fixture
def app(make_app):
    """The app with empty tables and the catalogue seeded, inside an app context."""
    app = make_app()
    # Operations called directly by tests (outside a request) speak English, so tests can match
    # messages; requests still choose their language (Chinese by default) as in production.
    with app.app_context(), force_locale("en"):
        _empty_tables()
        seed_catalogue()
        _db.session.commit()
        snapshot.mark_pristine()
        yield app
        _db.session.rollback()
        _db.session.remove()
        _empty_tables()
        _db.engine.dispose()


@pytest.fixture
def db(app):
    return _db


@pytest.fixture
def client(app):
    return app.test_client()


class Auth:
    """Log a test client in and out."""

    def __init__(self, client):
        self.client = client

    def login(self, username: str, password: str = PASSWORD):
        return self.client.post("/login", data={"username": username, "password": password})

    def logout(self):
        return self.client.post("/logout")


@pytest.fixture
def auth(client):
    return Auth(client)


@pytest.fixture
def next_monday() -> date:
    return rules.week_monday(date.today()) + timedelta(days=7)


@pytest.fixture
def world(app, next_monday):
    """A small district: two townships, three communities, users of every role, one demand each.

    Built once per database and test process and then copied for each test (see tests/snapshot.py);
    built here whenever a test changed the database before asking for it."""
    restored = snapshot.restore(next_monday)
    if restored is not None:
        return restored
    recorder = snapshot.Recorder(next_monday)
    built = _build_world(next_monday)
    recorder.keep(built)
    return built


def _build_world(next_monday: date) -> dict:
    """The world's rows, made through the use cases."""
    district = add_area(AreaLevel.DISTRICT, "青溪区", "D1", None, 29.33, 107.72, radius=35)
    town_a = add_area(AreaLevel.TOWNSHIP, "东城街道", "T1", district, 29.34, 107.70, radius=6)
    town_b = add_area(AreaLevel.TOWNSHIP, "南山镇", "T2", district, 29.25, 107.80, radius=8)
    comm_a1 = add_area(AreaLevel.COMMUNITY, "桂花社区", "C1", town_a, 29.345, 107.705)
    comm_a2 = add_area(AreaLevel.COMMUNITY, "枫林社区", "C2", town_a, 29.335, 107.695)
    comm_b1 = add_area(AreaLevel.COMMUNITY, "石桥村", "C3", town_b, 29.255, 107.805)
    stations = {}
    for comm in (comm_a1, comm_a2, comm_b1):
        stations[comm.code] = Station(area=comm, name=f"{comm.name}新时代文明实践站", lat=comm.lat, lon=comm.lon,
                                      address=f"{comm.name}活动中心")
        _db.session.add(stations[comm.code])
    org_a = Organization(name="东城助老服务队", type=OrgType.LIFE_SERVICES, home_area=town_a, areas=[town_a])
    org_b = Organization(name="南山调解队", type=OrgType.RURAL_COUNCIL, home_area=town_b, areas=[town_b])
    _db.session.add_all([org_a, org_b])
    _db.session.flush()
    users = {
        "admin": create_user(username="admin", password=PASSWORD, role=Role.ADMIN),
        "coord": create_user(username="coord", password=PASSWORD, role=Role.COORDINATOR, area_id=district.id),
        "coord_a": create_user(username="coord_a", password=PASSWORD, role=Role.COORDINATOR, area_id=town_a.id),
        "coord_b": create_user(username="coord_b", password=PASSWORD, role=Role.COORDINATOR, area_id=town_b.id),
        "worker_a1": create_user(username="worker_a1", password=PASSWORD, role=Role.WORKER, area_id=comm_a1.id),
        "worker_a2": create_user(username="worker_a2", password=PASSWORD, role=Role.WORKER, area_id=comm_a2.id),
        "worker_b1": create_user(username="worker_b1", password=PASSWORD, role=Role.WORKER, area_id=comm_b1.id),
        "leader_a": create_user(username="leader_a", password=PASSWORD, role=Role.ORG_LEADER,
                                organization_id=org_a.id),
        "vol_a": create_user(username="vol_a", password=PASSWORD, role=Role.VOLUNTEER),
        "vol_b": create_user(username="vol_b", password=PASSWORD, role=Role.VOLUNTEER),
    }
    from matcher.models import Membership, MemberStatus

    vol_a = create_volunteer({"real_name": "李秀英", "phone": "13812345678", "home_area": comm_a1.id,
                              "lat": 29.346, "lon": 107.706, "gender": "F", "skills": "elder_care,first_aid",
                              "availability": "0 08:00-12:00; 2 14:00-18:00"}, user=None, account=users["vol_a"])
    vol_b = create_volunteer({"real_name": "王强", "phone": "13987654321", "home_area": comm_b1.id,
                              "lat": 29.256, "lon": 107.806, "gender": "M", "skills": "mediation"},
                             user=None, account=users["vol_b"])
    _db.session.add_all([
        Membership(organization=org_a, volunteer=vol_a, status=MemberStatus.APPROVED),
        Membership(organization=org_b, volunteer=vol_b, status=MemberStatus.APPLIED),
    ])
    residents = {
        "a1": create_resident({"name": "张大爷", "phone": "13700001111", "address": "桂花社区3栋2单元",
                               "lat": 29.3455, "lon": 107.7052, "consent": "1"}, community=comm_a1,
                              user=users["worker_a1"]),
        "b1": create_resident({"name": "赵奶奶", "phone": "13700002222", "address": "石桥村五组",
                               "lat": 29.2555, "lon": 107.8052, "consent": "1"}, community=comm_b1,
                              user=users["worker_b1"]),
    }
    demands = {
        "a1": create_demand({"category": "elderly_care", "resident": residents["a1"].id, "location_kind": "home",
                             "date": next_monday.isoformat(), "start": "09:00", "end": "10:30",
                             "recurring": "1", "weekdays": ["0", "3"]}, community=comm_a1,
                            user=users["worker_a1"]),
        "b1": create_demand({"category": "mediation", "location_kind": "station", "station": stations["C3"].id,
                             "date": next_monday.isoformat(), "start": "14:00", "end": "16:00"},
                            community=comm_b1, user=users["worker_b1"]),
    }
    _db.session.commit()
    return {
        "areas": {"district": district, "town_a": town_a, "town_b": town_b, "a1": comm_a1, "a2": comm_a2,
                  "b1": comm_b1},
        "stations": stations, "orgs": {"a": org_a, "b": org_b}, "users": users,
        "volunteers": {"a": vol_a, "b": vol_b}, "residents": residents, "demands": demands,
    }


def add_area(level, name, code, parent, lat, lon, radius=2.0) -> Area:
    """An area with its materialized path (the tests build their own districts with it)."""
    area = Area(level=level, name=name, code=code, parent=parent, lat=lat, lon=lon, radius_km=radius)
    _db.session.add(area)
    _db.session.flush()
    area.path = (parent.path if parent else "/") + f"{area.id}/"
    _db.session.flush()
    return area


def pytest_xdist_make_scheduler(config, log):
    """Under pytest-xdist (`make test` runs `-n auto --dist loadgroup`) the browser tests run on one
    worker, one after another: each starts gunicorn and Chromium, and two at once on two cores only slow
    each other past their timeouts. Everything else spreads over the workers test by test.

    (xdist's own `xdist_group` mark does not work with pytest 9.2, whose node ids are no longer the
    attribute xdist rewrites; this scheduler groups by node id instead. Redis-backed tests do not need
    a group: each worker has its own Redis database, `REDIS_TEST_URL`.)"""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class BrowserTestsTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "tests/e2e" if nodeid.startswith("tests/e2e/") else nodeid

    return BrowserTestsTogether(config, log)


def pytest_terminal_summary(terminalreporter):
    """Say plainly which real-service runs were skipped and why."""
    for name, reason in _skipped.items():
        terminalreporter.write_line(f"NOTE: {name} runs skipped: {reason}", yellow=True, bold=True)
