"""The volunteer's pages: offers, my week and its calendar feed, check-in/out, record, profile."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from icalendar import Calendar
from sqlalchemy import select

from matcher import clock, volunteers
from matcher.models import Assignment, AssignmentStatus, Notification, Volunteer
from tests.conftest import PASSWORD
from tests.matcher.builders import CODE, GOOD_PROFILE, add_demand, first_occurrence, offer, publish

SAME_SITE = {"Referer": "https://localhost/login"}  # CSRF over HTTPS checks the referrer
PAGES = ["/me/offers", "/me/week", "/checkin", "/me/record", "/me/profile"]


@pytest.fixture
def setup(world, db, next_monday):
    schedule = publish(world, next_monday)
    home_visit = offer(schedule, first_occurrence(world["demands"]["a1"]), world["volunteers"]["a"])
    return {"schedule": schedule, "offer": home_visit, "monday": next_monday}


def login(client, auth, username):
    auth.login(username)
    client.post("/language/en", data={"next": "/dashboard"})


def status_of(db, assignment_id):
    db.session.expire_all()
    return db.session.get(Assignment, assignment_id).status


def test_pages_render_for_a_volunteer_and_need_a_profile(client, auth, world, setup):
    for url in PAGES:
        assert client.get(url).status_code == 302, url  # anonymous: to the login page
    login(client, auth, "vol_a")
    for url in PAGES:
        response = client.get(url)
        assert response.status_code == 200, url
        assert response.headers["Cache-Control"] == "no-store"
    nav = client.get("/dashboard").get_data(as_text=True)
    assert "/me/offers" in nav and "/me/record" in nav
    auth.logout()
    for username in ("worker_a1", "coord_a", "leader_a", "admin"):  # no volunteer profile
        login(client, auth, username)
        assert "/me/offers" not in client.get("/dashboard").get_data(as_text=True)
        for url in PAGES:
            assert client.get(url).status_code == 404, (username, url)
        assert client.post(f"/me/offers/{setup['offer'].id}/accept").status_code == 404
        auth.logout()


def test_offer_shows_what_when_why_but_no_address_until_accepted(client, auth, world, db, setup):
    login(client, auth, "vol_a")
    page = client.get("/me/offers").get_data(as_text=True)
    assert f'id="offer-{setup["offer"].id}"' in page
    assert "Your skills match what this service needs." in page
    assert "0.4 km" in page
    resident = world["residents"]["a1"]
    assert resident.name not in page and resident.address not in page
    response = client.post(f"/me/offers/{setup['offer'].id}/accept")
    assert response.status_code == 302
    assert status_of(db, setup["offer"].id) == AssignmentStatus.ACCEPTED
    week = client.get(response.headers["Location"]).get_data(as_text=True)
    assert resident.name in week and resident.address in week
    # While the service is accepted, the assigned volunteer may call the resident (reliability guide).
    assert "13700001111" in week


def test_another_volunteers_offer_is_not_found(client, auth, world, db, setup):
    login(client, auth, "vol_b")
    oid = setup["offer"].id
    assert f"offer-{oid}" not in client.get("/me/offers").get_data(as_text=True)
    assert client.post(f"/me/offers/{oid}/accept").status_code == 404
    assert client.post(f"/me/offers/{oid}/decline", data={"reason": "no"}).status_code == 404
    assert status_of(db, oid) == AssignmentStatus.OFFERED


def test_decline_needs_a_reason_then_tells_the_coordinator(client, auth, world, db, setup):
    login(client, auth, "vol_a")
    oid = setup["offer"].id
    response = client.post(f"/me/offers/{oid}/decline", data={"reason": ""})
    assert response.status_code == 400
    assert 'id="err-reason"' in response.get_data(as_text=True)
    assert status_of(db, oid) == AssignmentStatus.OFFERED
    response = client.post(f"/me/offers/{oid}/decline", data={"reason": "Away that day"})
    assert response.status_code == 302
    assert status_of(db, oid) == AssignmentStatus.DECLINED
    assert db.session.scalar(select(Notification).where(Notification.user_id == world["users"]["coord_a"].id))


def test_accepting_an_overlapping_offer_shows_why_and_changes_nothing(client, auth, world, db, setup):
    clash = offer(setup["schedule"], add_demand(world, setup["monday"], "10:00", "11:00", title="Film night"),
                  world["volunteers"]["a"])
    login(client, auth, "vol_a")
    assert client.post(f"/me/offers/{setup['offer'].id}/accept").status_code == 302
    response = client.post(f"/me/offers/{clash.id}/accept")
    assert response.status_code == 409
    assert "overlaps" in response.get_data(as_text=True)
    assert status_of(db, clash.id) == AssignmentStatus.OFFERED


def test_calendar_feed(client, auth, world, db, setup):
    vol = world["volunteers"]["a"]
    token = vol.calendar_token
    assert client.get("/calendar/not-a-token.ics").status_code == 404
    empty = Calendar.from_ical(client.get(f"/calendar/{token}.ics").data)
    assert not empty.walk("VEVENT")  # an offer is not in the calendar until accepted
    login(client, auth, "vol_a")
    client.post(f"/me/offers/{setup['offer'].id}/accept")
    assert f"/calendar/{token}.ics" in client.get("/me/week").get_data(as_text=True)
    auth.logout()
    response = client.get(f"/calendar/{token}.ics")  # no login needed
    assert response.status_code == 200
    assert response.mimetype == "text/calendar"
    assert response.headers["Cache-Control"] == "no-store"
    events = Calendar.from_ical(response.data).walk("VEVENT")
    assert len(events) == 1
    occ = first_occurrence(world["demands"]["a1"])
    event = events[0]
    assert event.decoded("dtstart").replace(tzinfo=None) == occ.starts_at
    assert str(event["dtstart"].dt.tzinfo) == "Asia/Shanghai"
    assert world["residents"]["a1"].address in str(event["location"])
    assert "/checkin?occurrence=" in str(event["description"])
    login(client, auth, "vol_a")
    assert client.post("/me/calendar/regenerate").status_code == 302
    db.session.expire_all()
    assert db.session.get(Volunteer, vol.id).calendar_token != token
    assert client.get(f"/calendar/{token}.ics").status_code == 404


def test_check_in_and_out_with_the_form(client, auth, world, db, setup):
    now = clock.local_now().replace(second=0, microsecond=0)
    a = setup["offer"]
    occ = a.occurrence
    occ.starts_at, occ.ends_at = now - timedelta(minutes=20), now + timedelta(minutes=70)
    a.status = AssignmentStatus.ACCEPTED
    db.session.commit()
    login(client, auth, "vol_a")
    page = client.get(f"/checkin?occurrence={occ.id}&code={CODE}").get_data(as_text=True)
    assert f'value="{CODE}"' in page and f'<option value="{occ.id}" selected' in page
    response = client.post("/checkin", data={"occurrence": occ.id, "code": "000000"})
    assert response.status_code == 400 and 'id="err-code"' in response.get_data(as_text=True)
    assert status_of(db, a.id) == AssignmentStatus.ACCEPTED
    assert client.post("/checkin", data={"occurrence": "", "code": CODE}).status_code == 400
    assert client.post("/checkin", data={"occurrence": occ.id, "code": CODE}).status_code == 302
    assert status_of(db, a.id) == AssignmentStatus.CHECKED_IN
    held = db.session.get(Assignment, a.id)
    held.checked_in_at = now - timedelta(minutes=50)  # served 50 minutes: one hour credited
    db.session.commit()
    response = client.post("/checkin", data={"occurrence": occ.id, "code": CODE}, follow_redirects=True)
    assert response.status_code == 200
    assert "1.0 hours credited" in response.get_data(as_text=True)
    assert status_of(db, a.id) == AssignmentStatus.COMPLETED
    assert db.session.get(Volunteer, world["volunteers"]["a"].id).total_hours == Decimal("1.0")


def test_check_in_for_someone_elses_service_is_refused(client, auth, world, db, setup):
    login(client, auth, "vol_b")
    occ_id = setup["offer"].occurrence_id
    response = client.post("/checkin", data={"occurrence": occ_id, "code": CODE})
    assert response.status_code == 400
    assert "Choose one of your accepted services." in response.get_data(as_text=True)


def test_profile_form(client, auth, world, db):
    login(client, auth, "vol_a")
    vol_id = world["volunteers"]["a"].id
    before = volunteers.profile_values(world["volunteers"]["a"])
    bad = dict(GOOD_PROFILE, availability="mornings", max_travel_km="far", lat="39.9")
    response = client.post("/me/profile", data=bad)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    for field in ("availability", "max_travel_km", "lat"):
        assert f'id="err-{field}"' in page
    db.session.expire_all()
    assert volunteers.profile_values(db.session.get(Volunteer, vol_id)) == before
    good = dict(GOOD_PROFILE, skills=["elder_care", "lecturing"])
    assert client.post("/me/profile", data=good).status_code == 302
    db.session.expire_all()
    vol = db.session.get(Volunteer, vol_id)
    assert vol.max_travel_km == 6.0 and [s.code for s in vol.skills] == ["elder_care", "lecturing"]


def test_record_shows_hours_stars_and_rated_services(client, auth, world, db, setup):
    vol = world["volunteers"]["a"]
    vol.total_hours = Decimal("320.5")
    a = setup["offer"]
    a.status, a.credited_hours, a.rating, a.rating_comment = AssignmentStatus.COMPLETED, Decimal("1.5"), 5, "Very kind"
    db.session.commit()
    login(client, auth, "vol_a")
    page = client.get("/me/record").get_data(as_text=True)
    assert "320.5" in page
    assert "★★☆☆☆" in page and "Star level: 2" in page
    assert 'id="to-next">279.5<' in page  # 600 − 320.5
    assert "Very kind" in page and "1.5" in page
    week = client.get(f"/me/week?week={setup['monday']}").get_data(as_text=True)
    assert "Completed" in week
    resident = world["residents"]["a1"]
    assert resident.name not in week and resident.address not in week  # the service is over


def _csrf_token(html: str) -> str:
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)


def test_answering_needs_the_csrf_token(make_app, world, db, setup):
    app = make_app(WTF_CSRF_ENABLED=True)
    client = app.test_client()
    token = _csrf_token(client.get("/login").get_data(as_text=True))
    assert client.post("/login", data={"username": "vol_a", "password": PASSWORD, "csrf_token": token},
                       headers=SAME_SITE).status_code == 302
    url = f"/me/offers/{setup['offer'].id}/accept"
    assert client.post(url, headers=SAME_SITE).status_code == 400
    assert status_of(db, setup["offer"].id) == AssignmentStatus.OFFERED
    token = _csrf_token(client.get("/me/offers").get_data(as_text=True))
    assert client.post(url, data={"csrf_token": token}, headers=SAME_SITE).status_code == 302
    assert status_of(db, setup["offer"].id) == AssignmentStatus.ACCEPTED
