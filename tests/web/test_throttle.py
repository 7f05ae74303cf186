"""Password guesses are throttled per address and per account, in a store every worker shares.

Two processes that each `create_app` on one database stand for two gunicorn workers: before, each
kept its own in-memory counter and the limit multiplied. (Two apps in one process are not enough to
show it: Flask-Limiter's one `limiter` object kept one memory store for both.) The throttle's clock
is stopped in these tests, so no run straddles a window boundary.
"""

from __future__ import annotations

import logging
import uuid

import pytest
from sqlalchemy import func, select

from matcher import throttle
from matcher.models import AuditEntry, ThrottleCounter
from tests.conftest import PASSWORD, REDIS_TEST_URL

WRONG = "not-the-password"


@pytest.fixture(autouse=True)
def stopped_clock(monkeypatch):
    """Ten seconds into an hour, and Redis not known to be down."""
    moment = 1_800_000_000 + 10.0  # a whole hour (and minute) plus ten seconds
    monkeypatch.setattr(throttle, "now", lambda: moment)
    monkeypatch.setattr(throttle, "_redis_down_until", {})
    return moment


def limited(make_app, address="5 per minute", account="100 per minute", **config):
    app = make_app(RATELIMIT_ENABLED=True, RATELIMIT_LOGIN=address, RATELIMIT_LOGIN_ACCOUNT=account, **config)
    return app


def post_login(client, username="coord", password=WRONG, address="192.0.2.10", **headers):
    return client.post("/login", data={"username": username, "password": password},
                       environ_base={"REMOTE_ADDR": address}, headers=headers)


def redis_or_skip() -> None:
    import redis

    try:
        redis.Redis.from_url(REDIS_TEST_URL, socket_connect_timeout=1).ping()
    except Exception as exc:
        pytest.skip(f"Redis not reachable at {REDIS_TEST_URL} ({type(exc).__name__}): the Redis store is untested")


WORKER = """
import json, sys
from matcher import throttle
from tests.conftest import make_test_config
from web import create_app

database, instance, moment, attempts, extra = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
throttle.now = lambda: moment
app = create_app(make_test_config(database, instance, RATELIMIT_ENABLED=True, **json.loads(extra)))
client = app.test_client()
codes = [client.post("/login", data={"username": "coord", "password": "wrong-guess"},
                     environ_base={"REMOTE_ADDR": "192.0.2.10"}).status_code for _ in range(attempts)]
print(json.dumps(codes))
"""


def run_worker(database: str, instance, moment: float, attempts: int, **config) -> list[int]:
    """A gunicorn worker stand-in: its own process (own memory), the same database; wrong guesses."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", WORKER, database, str(instance), str(moment), str(attempts),
                           json.dumps(config)], cwd=root, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


LIMITS = {"RATELIMIT_LOGIN": "3 per minute", "RATELIMIT_LOGIN_ACCOUNT": "100 per minute"}


def test_limit_holds_across_two_worker_processes_sharing_the_database(_schema, world, db, tmp_path, stopped_clock):
    """Before, each worker counted in its own memory: the second one let three more guesses through."""
    assert run_worker(_schema, tmp_path / "a", stopped_clock, 3, **LIMITS) == [401, 401, 401]
    assert run_worker(_schema, tmp_path / "b", stopped_clock, 2, **LIMITS) == [429, 429]
    assert db.session.scalar(select(func.count()).select_from(ThrottleCounter)) > 0


def test_limit_holds_across_two_worker_processes_sharing_redis(_schema, world, db, tmp_path, stopped_clock):
    redis_or_skip()
    config = {**LIMITS, "REDIS_URL": REDIS_TEST_URL, "RATELIMIT_KEY_PREFIX": f"linli-test-{uuid.uuid4().hex[:8]}"}
    assert run_worker(_schema, tmp_path / "a", stopped_clock, 3, **config) == [401, 401, 401]
    assert run_worker(_schema, tmp_path / "b", stopped_clock, 2, **config) == [429, 429]
    # Counted in Redis, not in the database; the keys expire with their window.
    assert db.session.scalar(select(func.count()).select_from(ThrottleCounter)) == 0
    import redis

    client = redis.Redis.from_url(REDIS_TEST_URL)
    keys = client.keys(f"{config['RATELIMIT_KEY_PREFIX']}:throttle:*")
    assert keys and all(client.ttl(k) > 0 for k in keys)
    client.delete(*keys)


def test_two_apps_in_one_process_share_the_count_too(make_app, world):
    first = limited(make_app, address="3 per minute").test_client()
    second = limited(make_app, address="3 per minute").test_client()
    codes = [post_login(c).status_code for c in (first, second, first, second, first)]
    assert codes == [401, 401, 401, 429, 429]


def test_logins_work_and_are_still_throttled_when_redis_is_down(make_app, world, db, caplog):
    app = limited(make_app, address="2 per minute", REDIS_URL="redis://127.0.0.1:1/0")
    client = app.test_client()
    with caplog.at_level(logging.WARNING, logger="matcher.throttle"):
        assert post_login(client, password=PASSWORD).status_code == 302
    assert any("Redis unreachable" in r.getMessage() for r in caplog.records)
    other = app.test_client()
    codes = [post_login(other).status_code for _ in range(3)]
    assert codes == [401, 401, 429]  # the database took over the counting
    assert db.session.scalar(select(func.count()).select_from(ThrottleCounter)) > 0


def test_an_account_is_throttled_across_addresses(make_app, world):
    client = limited(make_app, address="100 per minute", account="3 per minute").test_client()
    codes = [post_login(client, address=f"198.51.100.{i}").status_code for i in range(3)]
    assert codes == [401, 401, 401]
    # A fourth address, and even the right password: the account is closed for now.
    assert post_login(client, password=PASSWORD, address="198.51.100.99").status_code == 429
    # Other accounts are not.
    assert post_login(client, username="admin", password=PASSWORD, address="198.51.100.1").status_code == 302


def test_names_without_an_account_are_throttled_too(make_app, world):
    client = limited(make_app, address="100 per minute", account="2 per minute").test_client()
    codes = [post_login(client, username="nobody-here", address=f"198.51.100.{i}").status_code for i in range(3)]
    assert codes == [401, 401, 429]


def test_success_clears_the_account_count_but_not_the_address_count(make_app, world):
    client = limited(make_app, address="4 per minute", account="3 per minute").test_client()
    assert [post_login(client).status_code for _ in range(2)] == [401, 401]
    assert post_login(client, password=PASSWORD).status_code == 302  # not a guess: not counted
    client.post("/logout")
    # The account starts afresh (else the next one would be its 4th guess and refused) ...
    assert [post_login(client).status_code for _ in range(2)] == [401, 401]
    # ... the address does not: this is its 5th wrong guess.
    assert post_login(client).status_code == 429


def test_the_refusal_says_when_to_retry_in_the_pages_language(make_app, world, stopped_clock):
    client = limited(make_app, address="1 per minute").test_client()
    post_login(client)
    refused = post_login(client)
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "50"  # the minute window ends 50 s after the stopped clock
    assert "尝试次数过多" in refused.get_data(as_text=True)
    client.set_cookie("linli_lang", "en", domain="localhost")
    english = post_login(client)
    assert english.status_code == 429 and "Too many attempts" in english.get_data(as_text=True)


def test_the_window_passes(make_app, world, monkeypatch, stopped_clock):
    client = limited(make_app, address="1 per minute").test_client()
    assert [post_login(client).status_code for _ in range(2)] == [401, 429]
    monkeypatch.setattr(throttle, "now", lambda: stopped_clock + 60)
    assert post_login(client).status_code == 401


def test_behind_one_proxy_clients_are_told_apart(make_app, world):
    client = limited(make_app, address="2 per minute", PROXY_COUNT=1).test_client()
    proxy = "10.0.0.1"
    first = [post_login(client, address=proxy, **{"X-Forwarded-For": "203.0.113.1"}).status_code for _ in range(3)]
    assert first == [401, 401, 429]
    assert post_login(client, address=proxy, **{"X-Forwarded-For": "203.0.113.2"}).status_code == 401
    # A client cannot pick its address: with one proxy only the entry it appended counts.
    forged = post_login(client, address=proxy, **{"X-Forwarded-For": "192.0.2.77, 203.0.113.1"})
    assert forged.status_code == 429


def test_without_proxy_count_forwarded_headers_are_ignored(make_app, world):
    client = limited(make_app, address="2 per minute").test_client()
    codes = [post_login(client, address="10.0.0.1", **{"X-Forwarded-For": f"203.0.113.{i}"}).status_code
             for i in range(3)]
    assert codes == [401, 401, 429]


def test_password_change_is_throttled(make_app, world, db):
    client = limited(make_app, address="100 per minute", account="3 per minute").test_client()
    assert client.post("/login", data={"username": "coord", "password": PASSWORD}).status_code == 302
    data = {"current": WRONG, "new": "a-brand-new-passphrase", "repeat": "a-brand-new-passphrase"}
    codes = [client.post("/account/password", data=data).status_code for _ in range(3)]
    assert codes == [400, 400, 400]
    refused = client.post("/account/password", data={**data, "current": PASSWORD})
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert 'id="err-current"' in refused.get_data(as_text=True)
    actions = db.session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
    assert actions.count("change_password_failed") == 3 and actions.count("change_password_throttled") == 1
    assert "change_password" not in actions


def test_failed_and_throttled_logins_are_audited_without_the_password(make_app, world, db):
    client = limited(make_app, address="2 per minute").test_client()
    for _ in range(4):
        post_login(client, username="coord", password="secret-guess-1")
    post_login(client, username="nobody-here", password="secret-guess-2")
    entries = db.session.scalars(select(AuditEntry).where(AuditEntry.action.like("login_%"))
                                 .order_by(AuditEntry.id)).all()
    assert [(e.action, e.details["username"]) for e in entries] == [
        ("login_failed", "coord"), ("login_failed", "coord"), ("login_throttled", "coord")]
    assert entries[0].object_id == world["users"]["coord"].id and entries[0].user_id is None
    assert all("secret-guess" not in str(e.details) for e in entries)


def test_a_failed_login_for_a_name_without_account_is_audited(client, world, db):
    client.post("/login", data={"username": "nobody-here", "password": WRONG})
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "login_failed"))
    assert entry.details == {"username": "nobody-here"} and entry.object_id is None


def test_counters_hold_no_address_or_name(make_app, world, db):
    client = limited(make_app).test_client()
    post_login(client, username="coord", address="192.0.2.55")
    keys = db.session.scalars(select(ThrottleCounter.key)).all()
    assert keys and not any("coord" in k or "192.0.2.55" in k for k in keys)


def test_the_database_counter_is_atomic_under_parallel_hits(app, db):
    """Many threads (each its own connection, as workers would be) increment one counter: no hit is lost."""
    from concurrent.futures import ThreadPoolExecutor

    store = throttle.DatabaseStore()

    def hits(_n):
        with app.app_context():
            return [store.incr("parallel-key:60", 1_800_000_000, 60) for _ in range(5)]

    with ThreadPoolExecutor(max_workers=6) as pool:
        counts = [n for batch in pool.map(hits, range(6)) for n in batch]
    assert sorted(counts) == list(range(1, 31))
