"""The accounts pages: scope, creating, locking, unlocking, one-time reset links and the public reset page."""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta

from sqlalchemy import func, select

from matcher.models import AccountLink, AuditEntry, LinkPurpose, Role, User, utcnow
from tests.conftest import PASSWORD, Auth
from tests.web.test_route_matrix import changed_tables, table_state

NEW_PASSWORD = "a-brand-new-passphrase"
_LINK = re.compile(r"/reset/([A-Za-z0-9_\-]{20,})")


def signed_in(app, username: str, *, english: bool = True):
    client = app.test_client()
    assert Auth(client).login(username).status_code == 302
    if english:
        client.post("/language/en")
    return client


def test_a_street_coordinator_sees_and_manages_only_their_street(app, world, db):
    users = world["users"]
    client = signed_in(app, "coord_a")
    page = client.get("/accounts").get_data(as_text=True)
    assert "worker_a1" in page and "leader_a" in page and "vol_a" in page
    for other in ("worker_b1", "vol_b", "coord_b", "coord", "admin"):
        assert f">{other}<" not in page
    before = table_state()
    for other in ("worker_b1", "coord_b", "coord", "admin"):
        uid = users[other].id
        assert client.get(f"/accounts/{uid}").status_code == 404
        assert client.post(f"/accounts/{uid}/lock", data={"reason": "test"}).status_code == 404
        assert client.post(f"/accounts/{uid}/link").status_code == 404
        assert client.post(f"/accounts/{uid}/edit", data={"role": "worker",
                                                          "area": world["areas"]["a1"].id}).status_code == 404
    assert not changed_tables(before, table_state())
    assert client.get(f"/accounts/{users['worker_a1'].id}").status_code == 200


def test_a_coordinator_cannot_make_a_coordinator_but_an_administrator_can(app, world, db):
    town_a = world["areas"]["town_a"].id
    client = signed_in(app, "coord")
    before = table_state()
    refused = client.post("/accounts/new", data={"username": "coord_new", "role": "coordinator", "area": town_a})
    assert refused.status_code == 400
    assert "Only an administrator can give this role." in refused.get_data(as_text=True)
    assert not changed_tables(before, table_state())
    admin = signed_in(app, "admin")
    made = admin.post("/accounts/new", data={"username": "coord_new", "display_name": "新协调员",
                                             "role": "coordinator", "area": town_a})
    assert made.status_code == 200
    text = made.get_data(as_text=True)
    assert "/activate/" in text and "<svg" in text  # the one-time link, with its QR code
    account = db.session.scalar(select(User).where(User.username == "coord_new"))
    assert account.role == Role.COORDINATOR and account.password_hash is None
    # Its activity reads as words: the role's label and the area's name, not codes and ids.
    activity = text[text.index('id="account-audit"'):]
    assert "role: Coordinator" in activity and f"area: {world['areas']['town_a'].name}" in activity
    assert "role: coordinator" not in activity and f"area: {town_a}<" not in activity
    changed = admin.post(f"/accounts/{account.id}/edit", data={"role": "worker", "area": world["areas"]["a1"].id})
    assert changed.status_code == 302
    activity = admin.get(f"/accounts/{account.id}").get_data(as_text=True)
    activity = activity[activity.index('id="account-audit"'):]
    assert "before: role: Coordinator; area: " in activity and "after: role: Community worker" in activity


def test_bad_account_input_says_what_is_wrong_and_changes_nothing(app, world, db):
    client = signed_in(app, "coord_a")
    before = table_state()
    for data, message in [
        ({"username": "w_new", "role": "boss", "area": world["areas"]["a1"].id}, "Unknown role"),
        ({"username": "w_new", "role": "worker", "area": world["areas"]["b1"].id}, "Choose an area from the list."),
        ({"username": "w_new", "role": "worker", "area": "99999999999999999999999"}, "Choose an area from the list."),
        ({"username": "w_new", "role": "org_leader", "organization": world["orgs"]["b"].id},
         "Choose an organization from the list."),
        ({"username": "worker_a1", "role": "worker", "area": world["areas"]["a1"].id}, "This username is taken."),
    ]:
        response = client.post("/accounts/new", data=data)
        assert response.status_code == 400, data
        assert message in response.get_data(as_text=True), data
    worker = world["users"]["worker_a1"].id
    response = client.post(f"/accounts/{worker}/edit", data={"role": "worker", "area": world["areas"]["b1"].id})
    assert response.status_code == 400 and "Choose an area from the list." in response.get_data(as_text=True)
    response = client.post(f"/accounts/{worker}/lock", data={"reason": ""})
    assert response.status_code == 400 and "Say why" in response.get_data(as_text=True)
    assert client.get("/accounts", query_string={"role": "boss"}).status_code == 400
    assert client.get("/accounts", query_string={"state": "asleep"}).status_code == 400
    assert client.get("/accounts", query_string={"area": world["areas"]["town_b"].id}).status_code == 400
    assert not changed_tables(before, table_state())


def test_the_list_searches_filters_and_shows_the_last_sign_in_in_beijing_time(app, world, db):
    world["users"]["worker_a1"].last_login_at = datetime(2026, 1, 5, 16, 30)  # UTC: 00:30 next day in Beijing
    world["users"]["worker_a2"].password_hash = None
    db.session.commit()
    client = signed_in(app, "admin")
    page = client.get("/accounts", query_string={"q": "worker_a1"}).get_data(as_text=True)
    assert "2026-01-06 00:30" in page and "worker_a2" not in page
    page = client.get("/accounts", query_string={"q": "138 1234"}).get_data(as_text=True)
    assert ">vol_a<" in page and ">vol_b<" not in page
    page = client.get("/accounts", query_string={"state": "not_activated"}).get_data(as_text=True)
    assert ">worker_a2<" in page and ">worker_a1<" not in page
    page = client.get("/accounts", query_string={"area": world["areas"]["town_b"].id, "role": "worker"})
    assert ">worker_b1<" in page.get_data(as_text=True) and ">worker_a1<" not in page.get_data(as_text=True)
    record = client.get(f"/accounts/{world['users']['worker_a1'].id}").get_data(as_text=True)
    assert "2026-01-06 00:30" in record


def test_the_nav_link_is_for_administrators_and_coordinators(app, world):
    assert 'href="/accounts"' in signed_in(app, "coord_a").get("/dashboard").get_data(as_text=True)
    assert 'href="/accounts"' in signed_in(app, "admin").get("/dashboard").get_data(as_text=True)
    assert 'href="/accounts"' not in signed_in(app, "worker_a1").get("/dashboard").get_data(as_text=True)


def test_locking_ends_sessions_and_blocks_sign_in_and_unlocking_lets_in(app, world, db):
    worker = world["users"]["worker_a1"]
    workers_phone = signed_in(app, "worker_a1")
    assert workers_phone.get("/community/week").status_code == 200
    coordinator = signed_in(app, "coord_a")
    locked = coordinator.post(f"/accounts/{worker.id}/lock", data={"reason": "Left the community office"})
    assert locked.status_code == 302
    assert "/login" in workers_phone.get("/community/week").headers["Location"]  # signed out everywhere
    page = coordinator.get(f"/accounts/{worker.id}").get_data(as_text=True)
    assert "Left the community office" in page and "coord_a" in page and "Locked an account" in page

    stranger = app.test_client()
    stranger.post("/language/en")
    wrong = stranger.post("/login", data={"username": "worker_a1", "password": "not-the-password"})
    assert wrong.status_code == 401 and "locked" not in wrong.get_data(as_text=True)
    right = stranger.post("/login", data={"username": "worker_a1", "password": PASSWORD})
    assert right.status_code == 403
    assert "This account is locked. Please contact your coordinator." in right.get_data(as_text=True)
    assert stranger.get("/dashboard").status_code == 302  # not signed in
    assert db.session.scalar(select(func.count(AuditEntry.id)).where(AuditEntry.action == "login_locked")) == 1

    assert coordinator.post(f"/accounts/{worker.id}/unlock").status_code == 302
    assert Auth(app.test_client()).login("worker_a1").status_code == 302


def test_nobody_locks_themselves(app, world, db):
    admin = signed_in(app, "admin")
    uid = world["users"]["admin"].id
    response = admin.post(f"/accounts/{uid}/lock", data={"reason": "oops"})
    assert response.status_code == 400 and "your own account" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(User, uid).active


def test_a_reset_link_is_shown_once_works_once_and_keeps_the_token_out_of_logs_and_audit(app, world, db, caplog):
    caplog.set_level(logging.DEBUG)
    worker = world["users"]["worker_a1"]
    workers_phone = signed_in(app, "worker_a1")
    coordinator = signed_in(app, "coord_a")
    made = coordinator.post(f"/accounts/{worker.id}/link")
    assert made.status_code == 200 and "<svg" in made.get_data(as_text=True)
    token = _LINK.search(made.get_data(as_text=True)).group(1)
    # Shown once: the account's page afterwards lists the open link, never its address.
    later = coordinator.get(f"/accounts/{worker.id}").get_data(as_text=True)
    assert token not in later and "Reset link" in later and "Made a password reset link" in later

    person = app.test_client()
    person.post("/language/en")
    assert person.get(f"/reset/{token}").status_code == 200
    differ = person.post(f"/reset/{token}", data={"password": NEW_PASSWORD, "repeat": NEW_PASSWORD + "x"})
    assert differ.status_code == 400 and "The two new passwords differ." in differ.get_data(as_text=True)
    weak = person.post(f"/reset/{token}", data={"password": "password", "repeat": "password"})
    assert weak.status_code == 400
    done = person.post(f"/reset/{token}", data={"password": NEW_PASSWORD, "repeat": NEW_PASSWORD})
    assert done.status_code == 302 and "/login" in done.headers["Location"]
    assert "/login" in workers_phone.get("/community/week").headers["Location"]  # other sessions ended
    assert Auth(app.test_client()).login("worker_a1", NEW_PASSWORD).status_code == 302

    used = person.get(f"/reset/{token}")
    assert used.status_code == 404 and "This link does not work" in used.get_data(as_text=True)
    assert person.post(f"/reset/{token}", data={"password": "another-horse-battery",
                                                "repeat": "another-horse-battery"}).status_code == 404
    audit = repr([(e.action, e.details) for e in db.session.scalars(select(AuditEntry))])
    assert "make_reset_link" in audit and "reset_password" in audit
    assert token not in audit and token not in caplog.text
    assert db.session.scalar(select(AccountLink.token_hash)) != token


def test_an_expired_or_revoked_reset_link_gets_one_clear_message(app, world, db):
    worker = world["users"]["worker_a1"]
    coordinator = signed_in(app, "coord_a")
    token = _LINK.search(coordinator.post(f"/accounts/{worker.id}/link").get_data(as_text=True)).group(1)
    link = db.session.scalar(select(AccountLink).where(AccountLink.purpose == LinkPurpose.RESET))
    link.expires_at = utcnow() - timedelta(minutes=1)
    db.session.commit()
    person = app.test_client()
    person.post("/language/en")
    expired = person.get(f"/reset/{token}")
    assert expired.status_code == 404 and "This link does not work" in expired.get_data(as_text=True)

    token = _LINK.search(coordinator.post(f"/accounts/{worker.id}/link").get_data(as_text=True)).group(1)
    assert person.get(f"/reset/{token}").status_code == 200
    assert coordinator.post(f"/accounts/{worker.id}/revoke").status_code == 302
    revoked = person.post(f"/reset/{token}", data={"password": NEW_PASSWORD, "repeat": NEW_PASSWORD})
    assert revoked.status_code == 404
    assert person.get("/reset/no-such-token").status_code == 404


def test_reset_attempts_are_throttled(make_app, world, db):
    app = make_app(RATELIMIT_ENABLED=True, RATELIMIT_LOGIN="3 per minute")
    client = app.test_client()
    answers = [client.get(f"/reset/guess-{n}").status_code for n in range(5)]
    assert answers[:3] == [404, 404, 404] and answers[3:] == [429, 429]
    with app.app_context():
        assert db.session.scalar(select(func.count(AuditEntry.id)).where(
            AuditEntry.action == "reset_throttled")) == 1


def test_the_command_line_makes_a_reset_link_for_an_administrator_without_a_browser(app, world, db):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["accounts", "reset-link", "admin", "--base-url", "https://linli.example.org/"])
    assert result.exit_code == 0, result.output
    token = re.search(r"https://linli\.example\.org/reset/(\S+)", result.output).group(1)
    person = app.test_client()
    assert person.post(f"/reset/{token}", data={"password": NEW_PASSWORD, "repeat": NEW_PASSWORD}).status_code == 302
    assert Auth(app.test_client()).login("admin", NEW_PASSWORD).status_code == 302
    missing = runner.invoke(args=["accounts", "reset-link", "nobody"])
    assert missing.exit_code == 2 and "no account named" in missing.output
