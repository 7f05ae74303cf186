"""Login, logout that really ends sessions, password storage, CSRF, redirects, rate limits, headers."""

import re
from pathlib import Path

import pytest
from sqlalchemy import select

from matcher.models import User
from tests.conftest import PASSWORD


def test_login_with_right_password_reaches_dashboard(client, auth, world):
    response = auth.login("coord")
    assert response.status_code == 302 and response.headers["Location"].endswith("/dashboard")
    assert client.get("/dashboard").status_code == 200


def test_a_volunteer_signs_in_with_their_mobile_number_too(client, world, db):
    """Imported volunteers get usernames like "v3723"; they remember their phone (vol_a: 13812345678)."""
    response = client.post("/login", data={"username": "13812345678", "password": PASSWORD})
    assert response.status_code == 302 and response.headers["Location"].endswith("/dashboard")
    assert db.session.scalar(select(User.last_login_at).where(User.username == "vol_a")) is not None
    client.post("/logout")
    # Not with the wrong password, a landline-shaped or unknown number.
    for name in ("13812345678", "02312345678", "13899999999"):
        password = "not-the-password" if name == "13812345678" else PASSWORD
        assert client.post("/login", data={"username": name, "password": password}).status_code == 401


def test_wrong_password_is_refused_with_a_message(client, auth, world):
    response = auth.login("coord", "not-the-password")
    assert response.status_code == 401
    assert client.get("/dashboard").status_code == 302


def test_unactivated_account_cannot_log_in(client, auth, world, db):
    from matcher.accounts import create_user
    from matcher.models import Role

    create_user(username="imported", password=None, role=Role.VOLUNTEER)
    db.session.commit()
    assert auth.login("imported", "").status_code in (200, 401)
    assert client.get("/dashboard").status_code == 302


def test_passwords_are_stored_as_argon2id(world, db):
    user = db.session.scalar(select(User).where(User.username == "coord"))
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash


def test_logout_ends_the_session_even_if_the_cookie_is_replayed(app, world):
    client = app.test_client()
    client.post("/login", data={"username": "coord", "password": PASSWORD, "remember": "y"})
    cookies = {c.key: c.value for c in client._cookies.values()}
    assert "linli_session" in cookies
    client.post("/logout")
    replay = app.test_client()
    for name, value in cookies.items():
        replay.set_cookie(name, value, domain="localhost")
    assert replay.get("/dashboard").status_code == 302


def test_password_change_ends_other_sessions(app, world, db):
    from matcher.accounts import set_password

    client = app.test_client()
    client.post("/login", data={"username": "coord", "password": PASSWORD})
    assert client.get("/dashboard").status_code == 200
    user = db.session.scalar(select(User).where(User.username == "coord"))
    set_password(user, "a-brand-new-passphrase")
    db.session.commit()
    assert client.get("/dashboard").status_code == 302


@pytest.mark.parametrize("password", ["short", "password123", "12345678"])
def test_weak_passwords_are_refused(world, db, password):
    from matcher.accounts import password_problem

    assert password_problem(password) is not None


@pytest.mark.parametrize(("target", "followed"), [
    ("/volunteers", True), ("https://evil.example/", False), ("//evil.example/x", False),
    ("/\\evil.example", False), ("javascript:alert(1)", False),
])
def test_next_parameter_is_only_followed_to_local_paths(client, world, target, followed):
    response = client.post(f"/login?next={target}", data={"username": "coord", "password": PASSWORD})
    location = response.headers["Location"]
    assert (location.endswith(target) if followed else location.endswith("/dashboard"))


def test_session_and_remember_cookies_are_hardened(make_app, world):
    app = make_app(SESSION_COOKIE_SECURE=True, REMEMBER_COOKIE_SECURE=True)
    client = app.test_client()
    response = client.post("/login", data={"username": "coord", "password": PASSWORD, "remember": "y"},
                           base_url="https://localhost")
    cookies = response.headers.getlist("Set-Cookie")
    for name in ("linli_session", "linli_remember"):
        cookie = next(c for c in cookies if c.startswith(name + "="))
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    remember = next(c for c in cookies if c.startswith("linli_remember="))
    assert "Expires=" in remember  # bounded lifetime (14 days), not Flask-Login's 365


# The test client speaks HTTPS (PREFERRED_URL_SCHEME), where Flask-WTF also checks the referrer.
SAME_SITE = {"Referer": "https://localhost/login"}


def _csrf_token(html: str) -> str:
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)


def test_post_without_csrf_token_is_refused(make_app, world):
    app = make_app(WTF_CSRF_ENABLED=True)
    client = app.test_client()
    client.get("/login")
    response = client.post("/login", data={"username": "coord", "password": PASSWORD}, headers=SAME_SITE)
    assert response.status_code == 400
    assert client.get("/dashboard").status_code == 302


def test_post_with_csrf_token_is_accepted_and_forms_without_it_change_nothing(make_app, world, db):
    from matcher.models import Resident

    app = make_app(WTF_CSRF_ENABLED=True)
    client = app.test_client()
    token = _csrf_token(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"username": "worker_a1", "password": PASSWORD, "csrf_token": token},
                           headers=SAME_SITE)
    assert response.status_code == 302
    before = db.session.query(Resident).count()
    data = {"name": "新居民", "address": "桂花社区1栋", "lat": "29.345", "lon": "107.705", "consent": "1"}
    assert client.post("/residents/new", data=data, headers=SAME_SITE).status_code == 400
    assert db.session.query(Resident).count() == before
    token = _csrf_token(client.get("/residents/new").get_data(as_text=True))
    assert client.post("/residents/new", data={**data, "csrf_token": token}, headers=SAME_SITE).status_code == 302
    assert db.session.query(Resident).count() == before + 1


def test_login_is_rate_limited(make_app, world):
    app = make_app(RATELIMIT_ENABLED=True, RATELIMIT_LOGIN="3 per minute")
    client = app.test_client()
    codes = [client.post("/login", data={"username": "coord", "password": "wrong-password"}).status_code
             for _ in range(4)]
    assert codes[:3] == [401, 401, 401] and codes[3] == 429


@pytest.mark.parametrize("url", ["/login", "/dashboard", "/demands", "/volunteers", "/organizations",
                                 "/residents", "/healthz", "/no-such-page"])
def test_security_headers_on_main_routes(client, auth, world, url):
    auth.login("admin")
    headers = client.get(url).headers
    csp = headers["Content-Security-Policy"]
    assert "object-src 'none'" in csp and "base-uri 'none'" in csp and "frame-ancestors 'none'" in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["X-Request-ID"]


def test_hsts_when_configured(make_app, world):
    client = make_app(HSTS=True).test_client()
    assert "max-age" in client.get("/login").headers["Strict-Transport-Security"]


def test_ui_is_chinese_by_default_and_english_on_request(client, auth, world):
    page = client.get("/login").get_data(as_text=True)
    assert "登录" in page
    auth.login("coord")
    client.post("/language/en", data={"next": "/dashboard"})
    page = client.get("/dashboard").get_data(as_text=True)
    assert "Dashboard" in page and "Coverage" in page
    client.post("/language/zh_CN", data={"next": "/dashboard"})
    assert "覆盖率" in client.get("/dashboard").get_data(as_text=True)


def test_healthz_reports_the_database(client):
    body = client.get("/healthz").get_json()
    assert body == {"status": "ok", "checks": {"database": "ok"}}


def test_healthz_names_a_failed_redis(make_app):
    client = make_app(REDIS_URL="redis://127.0.0.1:1/0").test_client()
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["redis"].startswith("failed")


def test_revealing_personal_data_needs_a_fresh_login(app, world):
    """A session restored from the remember cookie may browse, but not reveal a resident's phone."""
    client = app.test_client()
    client.post("/login", data={"username": "worker_a1", "password": PASSWORD, "remember": "y"})
    remember = next(c.value for c in client._cookies.values() if c.key == "linli_remember")
    later = app.test_client()  # a new browser session: only the remember cookie is left
    later.set_cookie("linli_remember", remember, domain="localhost")
    resident = world["residents"]["a1"]
    assert later.get(f"/residents/{resident.id}").status_code == 200
    reveal = later.post(f"/residents/{resident.id}/reveal")
    assert reveal.status_code == 302 and "/login" in reveal.headers["Location"]
    assert "13700001111" not in reveal.get_data(as_text=True)
    # Signing in again on the login page it was sent to makes the session fresh.
    assert later.get(reveal.headers["Location"]).status_code == 200
    again = later.post(reveal.headers["Location"], data={"username": "worker_a1", "password": PASSWORD})
    assert again.status_code == 302
    assert "13700001111" in later.post(f"/residents/{resident.id}/reveal").get_data(as_text=True)


@pytest.mark.parametrize(("data", "field"), [
    ({"current": "wrong-password", "new": "a-brand-new-passphrase", "repeat": "a-brand-new-passphrase"}, "current"),
    ({"current": PASSWORD, "new": "a-brand-new-passphrase", "repeat": "something-else-entirely"}, "repeat"),
    ({"current": PASSWORD, "new": "password123", "repeat": "password123"}, "new"),
])
def test_bad_password_change_names_the_field_and_changes_nothing(client, auth, world, db, data, field):
    auth.login("coord")
    response = client.post("/account/password", data=data)
    assert response.status_code == 400 and f'id="err-{field}"' in response.get_data(as_text=True)
    assert client.get("/dashboard").status_code == 200  # still signed in, password unchanged


def test_changing_the_password_signs_out_everywhere(app, world):
    first, second = app.test_client(), app.test_client()
    for c in (first, second):
        c.post("/login", data={"username": "coord", "password": PASSWORD})
    response = first.post("/account/password", data={"current": PASSWORD, "new": "a-brand-new-passphrase",
                                                      "repeat": "a-brand-new-passphrase"})
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert first.get("/dashboard").status_code == 302 and second.get("/dashboard").status_code == 302
    assert first.post("/login", data={"username": "coord", "password": "a-brand-new-passphrase"}).status_code == 302


# --- issue 8: accounts and sessions ----------------------------------------------------------------


def test_a_csrf_token_from_before_the_login_is_refused_after_it(make_app, world):
    app = make_app(WTF_CSRF_ENABLED=True)
    client = app.test_client()
    before = _csrf_token(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"username": "coord", "password": PASSWORD, "csrf_token": before},
                           headers=SAME_SITE)
    assert response.status_code == 302
    after = _csrf_token(client.get("/account/password").get_data(as_text=True))
    assert after != before
    data = {"current": PASSWORD, "new": "a-brand-new-passphrase", "repeat": "a-brand-new-passphrase"}
    assert client.post("/account/password", data={**data, "csrf_token": before}, headers=SAME_SITE).status_code == 400
    assert client.get("/dashboard").status_code == 200  # nothing changed, still signed in


@pytest.fixture
def verify_calls(monkeypatch):
    """Count argon2 verifications (the costly step whose absence would tell names apart)."""
    from argon2 import PasswordHasher

    calls = []
    real = PasswordHasher.verify

    def spy(self, hash, password):
        calls.append(hash)
        return real(self, hash, password)

    monkeypatch.setattr(PasswordHasher, "verify", spy)
    return calls


@pytest.mark.parametrize("username", ["coord", "nobody-here", "inactive", "imported"])
def test_every_failed_login_costs_one_argon2_verification(client, world, db, verify_calls, username):
    from matcher.accounts import create_user
    from matcher.models import Role

    create_user(username="imported", password=None, role=Role.VOLUNTEER)  # not activated: no hash
    world["users"]["vol_b"].active = False
    world["users"]["vol_b"].username = "inactive"
    db.session.commit()
    assert client.post("/login", data={"username": username, "password": "not-the-password"}).status_code == 401
    assert len(verify_calls) == 1 and verify_calls[0].startswith("$argon2id$")


def test_the_calendar_feed_survives_logout_but_not_a_password_change(client, auth, world, db):
    volunteer = world["volunteers"]["a"]
    token = volunteer.calendar_token
    auth.login("vol_a")
    auth.logout()
    assert client.get(f"/calendar/{token}.ics").status_code == 200
    auth.login("vol_a")
    response = client.post("/account/password", data={"current": PASSWORD, "new": "a-brand-new-passphrase",
                                                      "repeat": "a-brand-new-passphrase"})
    assert response.status_code == 302
    assert client.get(f"/calendar/{token}.ics").status_code == 404
    db.session.expire_all()
    assert client.get(f"/calendar/{volunteer.calendar_token}.ics").status_code == 200


def test_a_foreign_host_is_refused(make_app, world):
    client = make_app(TRUSTED_HOSTS=["linli.example.org"]).test_client()
    assert client.get("/login", headers={"Host": "evil.example"}).status_code == 400
    assert client.get("/login", headers={"Host": "linli.example.org"}).status_code == 200


def test_by_default_only_local_hosts_are_served(make_app):
    client = make_app().test_client()
    assert client.get("/login").status_code == 200  # the test client's localhost
    assert client.get("/login", headers={"Host": "127.0.0.1:8000"}).status_code == 200
    assert client.get("/login", headers={"Host": "evil.example"}).status_code == 400


def test_instance_folder_secret_and_database_are_private(monkeypatch, tmp_path):
    """Created for the owner only, even under a permissive umask, and never chmod'ed afterwards."""
    import os
    import pathlib

    from matcher.db import db as database
    from web import create_app

    instance = tmp_path / "fresh" / "instance"
    monkeypatch.setenv("LINLI_INSTANCE_PATH", str(instance))
    monkeypatch.setattr(pathlib.Path, "chmod", lambda self, mode: None)  # a late chmod would not count
    old = os.umask(0o022)
    try:
        app = create_app({"TESTING": True, "RATELIMIT_ENABLED": False, "ARGON2_TIME_COST": 1,
                          "ARGON2_MEMORY_COST": 1024})
        with app.app_context():
            database.create_all()
            database.engine.dispose()
    finally:
        os.umask(old)
    assert (instance.stat().st_mode & 0o777) == 0o700
    assert ((instance / "secret_key").stat().st_mode & 0o777) == 0o600
    assert ((instance / "linli.sqlite").stat().st_mode & 0o777) == 0o600
    # A second start reads the same secret.
    again = create_app({"TESTING": True, "RATELIMIT_ENABLED": False})
    assert again.config["SECRET_KEY"] == app.config["SECRET_KEY"]


def test_the_access_log_never_shows_a_calendar_token(tmp_path):
    import runpy
    from datetime import timedelta
    from types import SimpleNamespace

    from gunicorn.config import Config

    settings = runpy.run_path(str(Path(__file__).resolve().parents[2] / "gunicorn.conf.py"))
    cfg = Config()
    cfg.set("accesslog", str(tmp_path / "access.log"))
    cfg.set("access_log_format", settings["access_log_format"])
    logger = settings["logger_class"](cfg)
    token = "s3cr3t-T0ken_abcdefghijklmnopqrstuv"
    environ = {"REQUEST_METHOD": "GET", "RAW_URI": f"/calendar/{token}.ics", "PATH_INFO": f"/calendar/{token}.ics",
               "QUERY_STRING": "", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "192.0.2.1"}
    response = SimpleNamespace(status="200 OK", sent=120, headers=[("X-Request-ID", "abc123")])
    request = SimpleNamespace(headers=[("USER-AGENT", "phone calendar")])
    logger.access(response, request, environ, timedelta(milliseconds=5))
    for handler in logger.access_log.handlers:
        handler.flush()
    line = (tmp_path / "access.log").read_text()
    assert '"GET /calendar/[token].ics" 200' in line and "rid=abc123" in line
    assert token not in line
