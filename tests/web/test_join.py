"""People in: registering, invitations by link, activation by link, guardian consent, and what they log."""

from __future__ import annotations

import logging
import re
from datetime import date

import pytest
from sqlalchemy import func, select

from matcher import throttle
from matcher.accounts import create_user
from matcher.clock import local_today
from matcher.models import (
    AccountLink,
    AuditEntry,
    Membership,
    MemberStatus,
    Notification,
    Role,
    User,
    Volunteer,
)
from matcher.volunteers import create_volunteer
from tests.web.test_community import field_message

NEW_PASSWORD = "lantern-orchard-cobalt"


def adult_birth_date() -> str:
    return date(local_today().year - 30, 5, 1).isoformat()


def minor_birth_date() -> str:
    return date(local_today().year - 15, 5, 1).isoformat()


def form(world, **changes) -> dict:
    data = {"real_name": "刘新", "phone": "13955556666", "password": NEW_PASSWORD, "repeat": NEW_PASSWORD,
            "birth_date": adult_birth_date(), "home_area": str(world["areas"]["a1"].id),
            "organizations": [str(world["orgs"]["a"].id)], "skills": ["elder_care"],
            "slot_day": ["0", "3", ""], "slot_start": ["09:00", "14:00", ""], "slot_end": ["12:00", "17:00", ""]}
    data.update(changes)
    return data


def english(client):
    client.post("/language/en", data={"next": "/dashboard"})


def test_a_person_registers_applies_and_is_signed_in(client, world, db):
    english(client)
    assert client.get("/register").status_code == 200
    response = client.post("/register", data=form(world))
    assert response.status_code == 302 and response.headers["Location"].endswith("/me/offers")
    volunteer = db.session.scalar(select(Volunteer).where(Volunteer.phone == "+8613955556666"))
    assert volunteer.user.username == "13955556666" and volunteer.user.role == Role.VOLUNTEER
    assert volunteer.user.last_login_at is not None  # signed in at once, and the accounts pages say so
    assert volunteer.birth_date == date.fromisoformat(adult_birth_date())
    assert volunteer.birth_year == volunteer.birth_date.year
    assert [(s.weekday, s.start_minute, s.end_minute) for s in volunteer.slots] == [(0, 540, 720), (3, 840, 1020)]
    assert [s.code for s in volunteer.skills] == ["elder_care"]
    assert (volunteer.lat, volunteer.lon) == (world["areas"]["a1"].lat, world["areas"]["a1"].lon)
    assert [(m.organization_id, m.status) for m in volunteer.memberships] == [
        (world["orgs"]["a"].id, MemberStatus.APPLIED)]
    page = client.get("/me/offers").get_data(as_text=True)
    assert "Welcome!" in page and "waits for approval by 东城助老服务队" in page
    assert "once 东城助老服务队 approves you" not in page  # said once on the page, not again in the welcome
    # The offers page keeps saying what they wait for (not only in the one-time welcome).
    again = client.get("/me/offers").get_data(as_text=True)
    assert "Welcome!" not in again and "waits for approval by 东城助老服务队" in again
    # The leader and the community's worker are told.
    told = set(db.session.scalars(select(Notification.user_id).where(Notification.kind == "new_applicant")))
    assert told == {world["users"]["leader_a"].id, world["users"]["worker_a1"].id}
    actions = set(db.session.scalars(select(AuditEntry.action)))
    assert {"register", "apply_member"} <= actions
    # They sign in with their phone number afterwards.
    client.post("/logout")
    assert client.post("/login", data={"username": "13955556666", "password": NEW_PASSWORD}).status_code == 302


@pytest.mark.parametrize("changes, field", [
    ({"phone": "12345"}, "phone"),
    ({"phone": "02388888888"}, "phone"),  # a landline: no account name, no messages
    ({"phone": "13812345678"}, "phone"),  # vol_a's
    ({"password": "12345678", "repeat": "12345678"}, "password"),
    ({"password": "13955556666x", "repeat": "13955556666x"}, "password"),
    ({"repeat": "something-else-entirely"}, "repeat"),
    ({"birth_date": ""}, "birth_date"),
    ({"birth_date": "2026-02-30"}, "birth_date"),
    ({"home_area": "999999"}, "home_area"),
    ({"organizations": []}, "organizations"),
    ({"slot_day": ["0"], "slot_start": ["12:00"], "slot_end": ["09:00"]}, "availability"),
    ({"skills": ["no_such_skill"]}, "skills"),
])
def test_bad_registrations_name_the_field_and_write_nothing(client, world, db, changes, field):
    english(client)
    before = db.session.scalar(select(func.count(User.id)))
    response = client.post("/register", data=form(world, **changes))
    assert response.status_code == 400
    assert field_message(response, field)
    assert db.session.scalar(select(func.count(User.id))) == before
    assert db.session.scalar(select(func.count(AuditEntry.id)).where(AuditEntry.action == "register")) == 0


def test_registration_uses_the_free_time_picker_and_keeps_its_rows(client, world):
    page = client.get("/register").get_data(as_text=True)
    assert "data-time-rows" in page and "free_time.js" in page
    response = client.post("/register", data=form(world, real_name=""))
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert 'name="slot_start" step="300" value="09:00"' in page and 'value="14:00"' in page
    assert '<option value="3" selected>' in page


def test_an_organization_must_serve_the_home_community(client, world, db):
    response = client.post("/register", data=form(world, organizations=[str(world["orgs"]["b"].id)]))
    assert response.status_code == 400 and field_message(response, "organizations")


def test_a_duplicate_phone_is_told_without_naming_anyone(client, world):
    english(client)
    response = client.post("/register", data=form(world, phone="138 1234 5678"))
    assert "already registered" in field_message(response, "phone")
    assert "李秀英" not in response.get_data(as_text=True)


def test_a_minor_needs_the_guardian_and_is_not_offered_before_consent(client, auth, world, db):
    english(client)
    response = client.post("/register", data=form(world, birth_date=minor_birth_date()))
    assert response.status_code == 400
    for field in ("guardian_name", "guardian_phone", "guardian_relation", "guardian_consent"):
        assert field_message(response, field)
    response = client.post("/register", data=form(world, birth_date=minor_birth_date(), guardian_name="刘母",
                                                  guardian_phone="13955557777", guardian_relation="母亲",
                                                  guardian_consent="1"))
    assert response.status_code == 302
    volunteer = db.session.scalar(select(Volunteer).where(Volunteer.phone == "+8613955556666"))
    assert volunteer.guardian_name == "刘母" and volunteer.guardian_consent_at is None
    client.post("/logout")
    # The leader sees the applicant as 14 to 17, needing consent, and records it.
    auth.login("leader_a")
    english(client)
    membership = volunteer.memberships[0]
    page = client.get("/team/members").get_data(as_text=True)
    assert "14 to 17" in page and "needs guardian consent" in page
    bad = client.post(f"/team/members/{membership.id}/guardian-consent",
                      data={"guardian_name": "刘母", "guardian_phone": "13955557777", "guardian_relation": "母亲"})
    assert bad.status_code == 400 and field_message(bad, "guardian_consent")
    ok = client.post(f"/team/members/{membership.id}/guardian-consent",
                     data={"guardian_name": "刘母", "guardian_phone": "13955557777", "guardian_relation": "母亲",
                           "guardian_consent": "1"})
    assert ok.status_code == 302
    db.session.expire_all()
    volunteer = db.session.get(Volunteer, volunteer.id)
    assert volunteer.guardian_consent_at is not None
    assert volunteer.guardian_consent_by_id == world["users"]["leader_a"].id
    assert db.session.scalar(select(AuditEntry.action).where(AuditEntry.object_id == volunteer.id,
                                                             AuditEntry.action == "record_guardian_consent"))


def test_the_members_page_shows_what_applicants_entered(client, auth, world, db):
    client.post("/register", data=form(world))
    client.post("/logout")
    auth.login("leader_a")
    english(client)
    page = client.get("/team/members").get_data(as_text=True)
    assert "刘新" in page and "18 or older" in page and "09:00" in page and "14:00" in page
    # The dashboard's count of applications leads to them.
    dashboard = client.get("/dashboard").get_data(as_text=True)
    assert re.search(r'<a class="stat" id="stat-applications" href="/team/members"><span class="num">1</span>',
                     dashboard)


def test_a_refused_applicant_is_told_they_get_no_offers(client, auth, world, db):
    english(client)
    client.post("/register", data=form(world))
    page = client.get("/me/offers").get_data(as_text=True)
    assert "waits for approval" in page and 'id="unvetted"' not in page
    client.post("/logout")
    membership = db.session.scalar(select(Membership).join(Volunteer).where(Volunteer.phone == "+8613955556666"))
    auth.login("leader_a")
    assert client.post(f"/team/members/{membership.id}/reject").status_code == 302
    client.post("/logout")
    client.post("/login", data={"username": "13955556666", "password": NEW_PASSWORD})
    english(client)
    page = client.get("/me/offers").get_data(as_text=True)
    # Not "offers appear when a coordinator publishes": none will while no organization approved them.
    assert 'id="unvetted"' in page and "the offers appear here" not in page
    # ... and the way on: apply again (or to another organization serving the community) on the profile.
    assert 'href="/me/profile#organizations"' in page
    profile = client.get("/me/profile").get_data(as_text=True)
    assert f'<option value="{world["orgs"]["a"].id}">东城助老服务队</option>' in profile
    assert "南山调解队" not in profile  # it does not serve their community
    before = db.session.scalar(select(func.count()).select_from(Membership))
    response = client.post("/me/organizations", data={"organization": str(world["orgs"]["b"].id)})
    assert response.status_code == 400 and 'id="err-organization"' in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Membership)) == before
    assert client.post("/me/organizations", data={"organization": str(world["orgs"]["a"].id)}).status_code == 302
    volunteer = db.session.scalar(select(Volunteer).where(Volunteer.phone == "+8613955556666"))
    db.session.refresh(volunteer)
    assert [(m.organization_id, m.status) for m in volunteer.memberships] == [(world["orgs"]["a"].id, MemberStatus.APPLIED)]
    told = db.session.scalars(select(Notification.user_id).where(Notification.kind == "new_applicant")).all()
    assert told.count(world["users"]["leader_a"].id) == 2  # at registering, and now
    # Applied already: not offered again, and a second post is refused without a change.
    assert client.post("/me/organizations", data={"organization": str(world["orgs"]["a"].id)}).status_code == 400
    assert 'id="unvetted"' not in client.get("/me/offers").get_data(as_text=True)


def test_registrations_are_throttled_per_address(make_app, world, db, monkeypatch):
    monkeypatch.setattr(throttle, "now", lambda: 1_800_000_010.0)
    monkeypatch.setattr(throttle, "_redis_down_until", {})
    app = make_app(RATELIMIT_ENABLED=True, RATELIMIT_REGISTER="2 per hour")
    client = app.test_client()
    for _ in range(2):
        assert client.post("/register", data={}, environ_base={"REMOTE_ADDR": "192.0.2.44"}).status_code == 400
    refused = client.post("/register", data=form(world), environ_base={"REMOTE_ADDR": "192.0.2.44"})
    assert refused.status_code == 429 and "Retry-After" in refused.headers
    with app.app_context():
        assert db.session.scalar(select(Volunteer.id).where(Volunteer.phone == "+8613955556666")) is None
    other = client.post("/register", data=form(world), environ_base={"REMOTE_ADDR": "192.0.2.45"})
    assert other.status_code == 302


# --- invitations ------------------------------------------------------------------------------------------


def make_invitation(client, auth, username: str, note: str = "王阿姨") -> str:
    auth.login(username)
    response = client.post("/invitations", data={"note": note})
    assert response.status_code == 200
    url = re.search(r'id="invite-url">([^<]+)<', response.get_data(as_text=True)).group(1)
    assert "<svg" in response.get_data(as_text=True)  # the QR code
    auth.logout()
    return url.split("localhost", 1)[1]


def test_a_leaders_invitation_approves_at_once_and_works_once(client, auth, world, db):
    path = make_invitation(client, auth, "leader_a")
    page = client.get(path)
    assert page.status_code == 200 and "东城助老服务队" in page.get_data(as_text=True)
    data = form(world)
    del data["organizations"]
    assert client.post(path, data=data).status_code == 302
    volunteer = db.session.scalar(select(Volunteer).where(Volunteer.phone == "+8613955556666"))
    assert [(m.organization_id, m.status) for m in volunteer.memberships] == [
        (world["orgs"]["a"].id, MemberStatus.APPROVED)]
    link = db.session.scalar(select(AccountLink))
    assert link.state == "used" and link.used_by_id == volunteer.user_id
    client.post("/logout")
    assert client.get(path).status_code == 404
    assert client.post(path, data=form(world, phone="13955558888")).status_code == 404


def test_a_workers_invitation_leads_to_an_application(client, auth, world, db):
    path = make_invitation(client, auth, "worker_a1")
    data = form(world, home_area=str(world["areas"]["a2"].id))  # the invitation's community wins
    assert client.post(path, data=data).status_code == 302
    volunteer = db.session.scalar(select(Volunteer).where(Volunteer.phone == "+8613955556666"))
    assert volunteer.home_area_id == world["areas"]["a1"].id
    assert [m.status for m in volunteer.memberships] == [MemberStatus.APPLIED]


def test_invitations_are_listed_and_revoked_by_their_maker_only(client, auth, world, db):
    make_invitation(client, auth, "leader_a", note="李大爷")
    link = db.session.scalar(select(AccountLink))
    auth.login("worker_a1")
    assert "李大爷" not in client.get("/invitations").get_data(as_text=True)
    assert client.post(f"/invitations/{link.id}/revoke").status_code == 404
    auth.logout()
    auth.login("leader_a")
    assert "李大爷" in client.get("/invitations").get_data(as_text=True)
    assert client.post(f"/invitations/{link.id}/revoke").status_code == 302
    db.session.expire_all()
    assert db.session.get(AccountLink, link.id).state == "revoked"
    assert {"make_invite_link", "revoke_invite_link"} <= set(db.session.scalars(select(AuditEntry.action)))
    for username, status in {"vol_a": 403, "coord": 403, "admin": 403}.items():
        auth.logout()
        auth.login(username)
        assert client.get("/invitations").status_code == status


def test_an_overlong_note_is_refused(client, auth, world, db):
    auth.login("leader_a")
    response = client.post("/invitations", data={"note": "x" * 121})
    assert response.status_code == 400 and field_message(response, "note")
    assert db.session.scalar(select(func.count(AccountLink.id))) == 0


# --- activation -------------------------------------------------------------------------------------------


@pytest.fixture
def imported(world, db):
    """A pre-registered member of organization a whose account has no password."""
    account = create_user(username="13811119999", password=None, role=Role.VOLUNTEER)
    volunteer = create_volunteer({"real_name": "赵丽", "phone": "13811119999", "home_area": world["areas"]["a1"].id,
                                  "lat": 29.346, "lon": 107.706}, user=None, account=account)
    db.session.add(Membership(organization=world["orgs"]["a"], volunteer=volunteer, status=MemberStatus.APPROVED))
    db.session.commit()
    return volunteer.id


def make_activation(client, auth, volunteer_id: int, username: str = "leader_a") -> str:
    auth.login(username)
    response = client.post(f"/volunteers/{volunteer_id}/activation-link")
    assert response.status_code == 200, username
    url = re.search(r'id="activation-url">([^<]+)<', response.get_data(as_text=True)).group(1)
    auth.logout()
    return url.split("localhost", 1)[1]


def test_an_imported_volunteer_activates_by_link(client, auth, world, db, imported):
    path = make_activation(client, auth, imported)
    english(client)
    assert client.get(path).status_code == 200
    wrong = client.post(path, data={"phone_last4": "0000", "birth_date": adult_birth_date(),
                                    "password": NEW_PASSWORD, "repeat": NEW_PASSWORD})
    assert wrong.status_code == 400 and field_message(wrong, "phone_last4")
    assert db.session.scalar(select(User.password_hash).where(User.username == "13811119999")) is None
    ok = client.post(path, data={"phone_last4": "9999", "birth_date": adult_birth_date(),
                                 "password": NEW_PASSWORD, "repeat": NEW_PASSWORD})
    assert ok.status_code == 302
    client.post("/logout")
    assert client.post("/login", data={"username": "13811119999", "password": NEW_PASSWORD}).status_code == 302
    assert db.session.get(Volunteer, imported).birth_date == date.fromisoformat(adult_birth_date())
    assert db.session.get(Volunteer, imported).user.last_login_at is not None
    client.post("/logout")
    assert client.get(path).status_code == 404  # used up
    actions = set(db.session.scalars(select(AuditEntry.action)))
    assert {"make_activate_link", "activation_failed", "activate_account"} <= actions


def test_too_many_wrong_digits_end_the_activation_link(client, auth, world, db, imported):
    path = make_activation(client, auth, imported)
    for _ in range(4):
        assert client.post(path, data={"phone_last4": "0000"}).status_code == 400
    assert client.post(path, data={"phone_last4": "0000"}).status_code == 404
    assert client.get(path).status_code == 404


def test_activation_links_are_made_within_scope_only(client, auth, world, db, imported):
    for username in ("admin", "coord", "coord_a", "worker_a1", "leader_a"):
        make_activation(client, auth, imported, username)
    assert db.session.scalar(select(func.count(AccountLink.id)).where(AccountLink.revoked_at.is_(None))) == 1
    for username, status in {"worker_b1": 404, "coord_b": 404, "vol_a": 403}.items():
        auth.login(username)
        assert client.post(f"/volunteers/{imported}/activation-link").status_code == status, username
        auth.logout()
    # An active account gets no link.
    auth.login("leader_a")
    response = client.post(f"/volunteers/{world['volunteers']['a'].id}/activation-link")
    assert response.status_code == 302
    assert db.session.scalar(select(func.count(AccountLink.id)).where(
        AccountLink.user_id == world["users"]["vol_a"].id)) == 0


def test_a_childs_phone_is_hidden_from_community_workers(client, auth, world, db):
    child = create_volunteer({"real_name": "小明", "phone": "13811117777", "home_area": world["areas"]["a1"].id,
                              "lat": 29.346, "lon": 107.706}, user=None)
    child.birth_date = date(local_today().year - 12, 1, 1)
    child.birth_year = child.birth_date.year
    db.session.add(Membership(organization=world["orgs"]["a"], volunteer=child, status=MemberStatus.APPROVED))
    db.session.commit()
    auth.login("worker_a1")
    assert "7777" not in client.get(f"/volunteers/{child.id}").get_data(as_text=True)
    assert "7777" not in client.get("/volunteers").get_data(as_text=True)
    auth.logout()
    auth.login("leader_a")
    assert "7777" in client.get(f"/volunteers/{child.id}").get_data(as_text=True)


# --- tokens stay out of logs and the audit ----------------------------------------------------------------


def test_no_token_in_the_log_or_the_audit(client, auth, world, db, imported, caplog):
    with caplog.at_level(logging.DEBUG):
        invite = make_invitation(client, auth, "leader_a")
        activate = make_activation(client, auth, imported)
        data = form(world)
        del data["organizations"]
        client.post(invite, data=data)
        client.post("/logout")
        client.post(activate, data={"phone_last4": "0000"})
        client.post(activate, data={"phone_last4": "9999", "birth_date": adult_birth_date(),
                                    "password": NEW_PASSWORD, "repeat": NEW_PASSWORD})
    tokens = [invite.rsplit("/", 1)[1], activate.rsplit("/", 1)[1]]
    assert all(len(t) > 30 for t in tokens)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    details = " ".join(str(d) for d in db.session.scalars(select(AuditEntry.details)))
    stored = " ".join(db.session.scalars(select(AccountLink.token_hash)))
    for token in tokens:
        assert token not in logged and token not in details and token not in stored
    assert len(db.session.scalars(select(AuditEntry.details)).all()) > 5


def test_signed_in_people_are_sent_to_their_dashboard(client, auth, world):
    auth.login("vol_a")
    assert client.get("/register").status_code == 302
    assert client.get("/join/whatever").status_code == 302
    assert client.get("/activate/whatever").status_code == 302


def test_unknown_links_are_not_found(client, world):
    for path in ("/join/nope", "/activate/nope", "/join/" + "x" * 500):
        assert client.get(path).status_code == 404


def test_the_access_log_shows_no_link_token():
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("gunicorn_conf", Path(__file__).parents[2] / "gunicorn.conf.py")
    conf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conf)
    line = '"GET /join/AbC-123_x HTTP/1.1" /activate/tok?x=1 /reset/zz /calendar/q.ics /volunteers/3'
    assert conf.redact(line) == ('"GET /join/[token] HTTP/1.1" /activate/[token]?x=1 /reset/[token] '
                                 '/calendar/[token].ics /volunteers/3')
