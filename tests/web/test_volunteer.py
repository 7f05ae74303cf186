"""The volunteer's pages: offers, my week and its calendar feed, check-in/out, record, profile."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from icalendar import Calendar
from sqlalchemy import select

from matcher import checkin, clock, volunteers
from matcher.models import Assignment, AssignmentStatus, AuditEntry, Notification, Volunteer
from tests.conftest import PASSWORD
from tests.matcher.builders import (
    add_demand,
    code_at,
    first_occurrence,
    offer,
    publish,
    token_at,
)
from tests.matcher.test_volunteers import PROFILE

SAME_SITE = {"Referer": "https://localhost/login"}  # CSRF over HTTPS checks the referrer
PAGES = ["/me/offers", "/me/week", "/checkin", "/me/record", "/me/profile"]


@pytest.fixture
def setup(world, db, next_monday):
    schedule = publish(world, next_monday)
    home_visit = offer(schedule, first_occurrence(world["demands"]["a1"]), world["volunteers"]["a"])
    return {"schedule": schedule, "offer": home_visit, "monday": next_monday}


def now_code(occ, purpose=checkin.CHECK_IN):
    """The code the worker's page shows now."""
    return code_at(occ, clock.local_now(), purpose)


def now_token(occ, purpose=checkin.CHECK_IN, **kwargs):
    """The token of the QR code the worker's page shows now."""
    return token_at(occ, clock.local_now(), purpose, **kwargs)


def wrong_code(occ, purpose=checkin.CHECK_IN):
    """A well-formed code that is not good now (nor a minute ago)."""
    now = clock.local_now()
    valid = {code_at(occ, now, purpose), code_at(occ, now - timedelta(seconds=checkin.STEP), purpose)}
    return next(c for c in ("000000", "111111", "222222") if c not in valid)


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
    # While the service is accepted, the assigned volunteer may call the resident (reliability guide),
    # but the phone is masked until they ask for it (see test_the_residents_phone_is_revealed_on_request).
    assert "137****1111" in week and "13700001111" not in week


def test_the_residents_phone_is_revealed_on_request_and_audited(client, auth, world, db, setup):
    a = setup["offer"]
    a.status = AssignmentStatus.ACCEPTED
    db.session.commit()
    aid, resident_id = a.id, world["residents"]["a1"].id
    week_url = f"/me/week?week={setup['monday'].isoformat()}"
    login(client, auth, "vol_b")  # not theirs
    assert client.post(f"/me/assignments/{aid}/reveal-phone").status_code == 404
    auth.logout()
    login(client, auth, "vol_a")
    page = client.get(week_url).get_data(as_text=True)
    assert "137****1111" in page and "13700001111" not in page and f"/me/assignments/{aid}/reveal-phone" in page
    assert client.get(f"/me/assignments/{aid}/reveal-phone").status_code == 302  # a GET reveals nothing
    assert not db.session.scalar(select(AuditEntry).where(AuditEntry.action == "reveal_phone"))
    response = client.post(f"/me/assignments/{aid}/reveal-phone")
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and 'href="tel:+8613700001111"' in page and ">137 0000 1111</a>" in page
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "reveal_phone"))
    assert (entry.user_id, entry.object_type, entry.object_id) == (world["users"]["vol_a"].id, "resident",
                                                                   resident_id)
    assert "13700001111" not in client.get(week_url).get_data(as_text=True)  # masked again
    done = db.session.get(Assignment, aid)
    done.status = AssignmentStatus.COMPLETED  # the service is over: no more reveals
    db.session.commit()
    assert client.post(f"/me/assignments/{aid}/reveal-phone").status_code == 404


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
    assert 'id="err-kind"' in response.get_data(as_text=True)  # why: not free, too far, or another reason
    # The page says so at the top, linking to the offer; the form posts to the offer's anchor.
    assert f'id="offer-errors"><a href="#offer-{oid}">' in response.get_data(as_text=True)
    assert f'action="/me/offers/{oid}/decline#offer-{oid}"' in response.get_data(as_text=True)
    response = client.post(f"/me/offers/{oid}/decline", data={"kind": "other", "reason": ""})
    assert response.status_code == 400
    assert 'id="err-reason"' in response.get_data(as_text=True)  # another reason needs the words
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


def _running_now(db, a):
    """Make the assignment's service run now (started 20 minutes ago) and accepted."""
    now = clock.local_now().replace(second=0, microsecond=0)
    occ = a.occurrence
    occ.starts_at, occ.ends_at = now - timedelta(minutes=20), now + timedelta(minutes=70)
    a.status = AssignmentStatus.ACCEPTED
    db.session.commit()
    return occ


def test_check_in_and_out_with_the_form(client, auth, world, db, setup):
    a = setup["offer"]
    occ = _running_now(db, a)
    login(client, auth, "vol_a")
    page = client.get(f"/checkin?occurrence={occ.id}&code=123456").get_data(as_text=True)
    assert 'value="123456"' in page and f'<option value="{occ.id}" selected' in page
    assert "Check-in code (6 digits)" in page
    response = client.post("/checkin", data={"occurrence": occ.id, "code": wrong_code(occ)})
    assert response.status_code == 400 and 'id="err-code"' in response.get_data(as_text=True)
    assert status_of(db, a.id) == AssignmentStatus.ACCEPTED
    assert client.post("/checkin", data={"occurrence": "", "code": now_code(occ)}).status_code == 400
    assert client.post("/checkin", data={"occurrence": occ.id, "code": now_code(occ)}).status_code == 302
    assert status_of(db, a.id) == AssignmentStatus.CHECKED_IN
    held = db.session.get(Assignment, a.id)
    held.checked_in_at = held.checked_in_at - timedelta(minutes=50)  # served 50 minutes: one hour credited
    db.session.commit()
    page = client.get(f"/checkin?occurrence={occ.id}").get_data(as_text=True)
    assert "Check-out code (6 digits)" in page
    # The check-in code, still on the worker's screen, does not check out.
    response = client.post("/checkin", data={"occurrence": occ.id, "code": now_code(occ)})
    assert response.status_code == 400 and "This code is not valid" in response.get_data(as_text=True)
    assert status_of(db, a.id) == AssignmentStatus.CHECKED_IN
    response = client.post("/checkin", data={"occurrence": occ.id, "code": now_code(occ, checkin.CHECK_OUT)},
                           follow_redirects=True)
    assert response.status_code == 200
    assert "1.0 hours credited" in response.get_data(as_text=True)
    assert status_of(db, a.id) == AssignmentStatus.COMPLETED
    assert db.session.get(Volunteer, world["volunteers"]["a"].id).total_hours == Decimal("1.0")
    assert db.session.get(Assignment, a.id).attendance == "checked"


def test_check_in_and_out_by_scanning_the_qr_codes(client, auth, world, db, setup):
    a = setup["offer"]
    occ = _running_now(db, a)
    occ_id, aid = occ.id, a.id
    other = add_demand(world, setup["monday"], "14:00", "15:00", title="Elsewhere")
    login(client, auth, "vol_a")
    # A token for another service does not check in here.
    response = client.post("/checkin", data={"occurrence": occ_id, "t": now_token(other, occurrence_id=other.id)})
    assert response.status_code == 400 and "This code is not valid" in response.get_data(as_text=True)
    token = now_token(occ)
    page = client.get(f"/checkin?occurrence={occ_id}&t={token}").get_data(as_text=True)
    assert 'id="scanned"' in page and f'name="t" value="{token}"' in page and 'name="code"' not in page
    assert client.post("/checkin", data={"occurrence": occ_id, "t": token}).status_code == 302
    assert status_of(db, aid) == AssignmentStatus.CHECKED_IN
    # The check-in QR code does not check out; the check-out one does.
    response = client.post("/checkin", data={"occurrence": occ_id, "t": token})
    assert response.status_code == 400 and 'name="code"' in response.get_data(as_text=True)
    assert client.post("/checkin", data={"occurrence": occ_id, "t": now_token(occ, checkin.CHECK_OUT)}
                       ).status_code == 302
    assert status_of(db, aid) == AssignmentStatus.COMPLETED


def test_failed_attempts_are_kept_and_the_sixth_is_refused_even_with_the_right_code(client, auth, world, db, setup):
    a = setup["offer"]
    occ = _running_now(db, a)
    occ_id, aid = occ.id, a.id
    login(client, auth, "vol_a")
    for _ in range(5):
        response = client.post("/checkin", data={"occurrence": occ_id, "code": wrong_code(occ)})
        assert response.status_code == 400
    response = client.post("/checkin", data={"occurrence": occ_id, "code": now_code(occ)})
    assert response.status_code == 429
    page = response.get_data(as_text=True)
    assert "Too many wrong codes" in page and "ask the community worker" in page
    assert status_of(db, aid) == AssignmentStatus.ACCEPTED
    actions = db.session.scalars(select(AuditEntry.action).where(AuditEntry.object_id == occ_id,
                                                                 AuditEntry.action.like("checkin_%"))).all()
    assert sorted(actions) == ["checkin_failed"] * 5 + ["checkin_throttled"]


def test_the_answer_to_a_bad_code_does_not_depend_on_the_services_time(client, auth, world, db, setup):
    a = setup["offer"]
    a.status = AssignmentStatus.ACCEPTED  # next Monday: far from open
    db.session.commit()
    occ_id = a.occurrence_id
    login(client, auth, "vol_a")
    far = client.post("/checkin", data={"occurrence": occ_id, "code": "000000"}).get_data(as_text=True)
    _running_now(db, db.session.get(Assignment, a.id))
    occ = db.session.get(Assignment, a.id).occurrence
    near = client.post("/checkin", data={"occurrence": occ_id, "code": wrong_code(occ)}).get_data(as_text=True)

    def message(page):
        return re.search(r'<p class="error" id="err-code">([^<]+)</p>', page).group(1)

    assert message(far) == message(near) and "This code is not valid" in message(far)
    assert "Check-in opens at" not in far


@pytest.mark.parametrize("raw", ["²", "１２", "٣", "1" * 40, "-1", "1.0"])
def test_an_unreadable_service_id_is_400_with_a_message(client, auth, world, db, setup, raw):
    login(client, auth, "vol_a")
    for response in (client.get("/checkin", query_string={"occurrence": raw}),
                     client.post("/checkin", data={"occurrence": raw, "code": "123456"})):
        assert response.status_code == 400
        assert "Choose one of your accepted services." in response.get_data(as_text=True)


@pytest.mark.parametrize("typed", ["１２３４５６", "²²²²²²", "12 34", "一二三四五六"])
def test_odd_digits_in_the_code_get_the_code_message_not_an_error(client, auth, world, db, setup, typed):
    a = setup["offer"]
    occ = _running_now(db, a)
    login(client, auth, "vol_a")
    response = client.post("/checkin", data={"occurrence": occ.id, "code": typed})
    assert response.status_code == 400
    assert "This code is not valid" in response.get_data(as_text=True)


def test_the_right_code_in_full_width_digits_checks_in(client, auth, world, db, setup):
    a = setup["offer"]
    occ = _running_now(db, a)
    login(client, auth, "vol_a")
    typed = now_code(occ).translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    assert client.post("/checkin", data={"occurrence": occ.id, "code": typed}).status_code == 302
    assert status_of(db, a.id) == AssignmentStatus.CHECKED_IN


def test_check_in_for_someone_elses_service_is_refused(client, auth, world, db, setup):
    login(client, auth, "vol_b")
    occ_id = setup["offer"].occurrence_id
    response = client.post("/checkin", data={"occurrence": occ_id, "code": "123456"})
    assert response.status_code == 400
    assert "Choose one of your accepted services." in response.get_data(as_text=True)


def test_profile_form(client, auth, world, db):
    """Issue 9, defect 11: free time as weekday and time rows, dated rows, limits in hours."""
    login(client, auth, "vol_a")
    vol_id = world["volunteers"]["a"].id
    before = volunteers.profile_values(world["volunteers"]["a"])
    page = client.get("/me/profile").get_data(as_text=True)
    # The world's volunteer is free Mondays 08:00-12:00 and Wednesdays 14:00-18:00: two rows, plus spare ones.
    assert page.count('name="slot_day"') >= 3 and 'value="08:00"' in page and 'value="18:00"' in page
    assert 'type="time"' in page and 'name="max_hours_per_week"' in page and 'step="0.5"' in page
    assert "free_time.js" in page and "0 09:00-12:00" not in page  # no coded text any more
    bad = dict(PROFILE, slot_day=["0", "2"], slot_start=["08:00", "15:00"], slot_end=["12:00", "14:00"],
               max_travel_km="far", lat="39.9", max_hours_per_week="2.3")
    response = client.post("/me/profile", data=bad)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    for field in ("availability", "max_hours_per_week", "max_travel_km", "lat"):
        assert f'id="err-{field}"' in page
    assert "Row 2: the end (14:00) must be after the start (15:00)." in page
    assert 'value="15:00"' in page  # the rows as sent, to correct them
    db.session.expire_all()
    assert volunteers.profile_values(db.session.get(Volunteer, vol_id)) == before
    good = dict(PROFILE, skills=["elder_care", "lecturing"])
    assert client.post("/me/profile", data=good).status_code == 302
    db.session.expire_all()
    vol = db.session.get(Volunteer, vol_id)
    assert vol.max_travel_km == 6.0 and [s.code for s in vol.skills] == ["elder_care", "lecturing"]
    assert [(s.weekday, s.start_minute, s.end_minute) for s in vol.slots] == [(0, 480, 720), (4, 840, 1080)]
    assert (vol.max_minutes_per_week, vol.preferred_minutes_per_week) == (300, 150)  # hours in, minutes stored


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


@pytest.mark.parametrize(("offset", "opens_on"), [
    (-1, 7 * 0),  # the Sunday before: the coming week, not the one ending today
    (-4, 7 * 0),  # a Thursday with nothing left this week while next week has a service: next week
    (0, 0),  # the Monday of the service: the current week
    (5, 0),  # Saturday: still the current week (nothing next week)
    (6, 7),  # Sunday: the coming week
])
def test_my_week_opens_on_the_current_week_and_on_the_coming_one_on_sunday(client, auth, world, db, setup,
                                                                             monkeypatch, offset, opens_on):
    setup["offer"].status = AssignmentStatus.ACCEPTED
    db.session.commit()
    monday = setup["monday"]
    monkeypatch.setattr(clock, "local_today", lambda: monday + timedelta(days=offset))
    login(client, auth, "vol_a")
    page = client.get("/me/week").get_data(as_text=True)
    assert f"Week of {(monday + timedelta(days=opens_on)).isoformat()}" in page


# --- a weekly service answered as a series (issue 9, defect 18) --------------------------------------------


@pytest.fixture
def series(world, db, next_monday):
    """Volunteer a offered both dates of the weekly home visit a1 (Monday and Thursday 09:00)."""
    schedule = publish(world, next_monday)
    demand = world["demands"]["a1"]
    week_occs = [o for o in demand.occurrences if o.starts_at.date() < next_monday + timedelta(days=7)]
    offers = [offer(schedule, o, world["volunteers"]["a"]) for o in week_occs]
    return {"schedule": schedule, "demand": demand, "offers": offers, "monday": next_monday}


def _series_form(series, answer, **extra):
    return {"answer": answer, "offer": [str(a.id) for a in series["offers"]], **extra}


def test_a_weekly_service_is_one_card_with_its_dates_and_each_date_still_answerable(client, auth, world, db,
                                                                                      series):
    login(client, auth, "vol_a")
    page = client.get("/me/offers").get_data(as_text=True)
    card = page[page.index(f'id="series-{series["demand"].id}"'):]
    assert len(series["offers"]) == 2
    assert "Accept all 2 dates" in card and "Decline all 2 dates" in card
    for a in series["offers"]:
        assert a.occurrence.starts_at.strftime("%Y-%m-%d") in card
        assert f'/me/offers/{a.id}/accept' in card  # one by one still possible
    assert page.count('class="card offer') == 1
    # One date on its own:
    first, second = series["offers"]
    assert client.post(f"/me/offers/{first.id}/accept").status_code == 302
    assert status_of(db, first.id) == AssignmentStatus.ACCEPTED
    page = client.get("/me/offers").get_data(as_text=True)
    assert f'id="offer-{second.id}"' in page and "Accept all" not in page  # a single date left


def test_accept_all_answers_each_date_and_reports_a_clash(client, auth, world, db, series):
    first, second = series["offers"]
    # Volunteer a already holds a service overlapping the Thursday visit.
    thursday = second.occurrence.starts_at.date()
    busy = offer(series["schedule"], add_demand(world, thursday, "09:30", "10:30", title="Film night"),
                 world["volunteers"]["a"], status=AssignmentStatus.ACCEPTED)
    login(client, auth, "vol_a")
    response = client.post(f"/me/offers/series/{series['demand'].id}", data=_series_form(series, "accept"))
    assert response.status_code == 302
    assert (status_of(db, first.id), status_of(db, second.id)) == (AssignmentStatus.ACCEPTED,
                                                                     AssignmentStatus.OFFERED)
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Accepted 1 of 2 dates" in page
    assert second.occurrence.starts_at.strftime("%Y-%m-%d %H:%M") in page and "Film night" in page
    assert status_of(db, busy.id) == AssignmentStatus.ACCEPTED


def test_accept_all_when_no_date_can_be_taken_changes_nothing(client, auth, world, db, series):
    for a in series["offers"]:
        offer(series["schedule"], add_demand(world, a.occurrence.starts_at.date(), "09:00", "10:00",
                                              title=f"Busy {a.id}"), world["volunteers"]["a"],
              status=AssignmentStatus.ACCEPTED)
    login(client, auth, "vol_a")
    response = client.post(f"/me/offers/series/{series['demand'].id}", data=_series_form(series, "accept"))
    assert response.status_code == 409
    assert "nothing was changed" in response.get_data(as_text=True)
    assert {status_of(db, a.id) for a in series["offers"]} == {AssignmentStatus.OFFERED}


def test_decline_all_needs_a_reason_then_declines_each_date_and_tells_once(client, auth, world, db, series):
    login(client, auth, "vol_a")
    url = f"/me/offers/series/{series['demand'].id}"
    response = client.post(url, data=_series_form(series, "decline"))
    assert response.status_code == 400 and 'id="err-kind"' in response.get_data(as_text=True)
    assert f'id="offer-errors"><a href="#series-{series["demand"].id}">' in response.get_data(as_text=True)
    assert client.post(url, data=_series_form(series, "maybe")).status_code == 400
    assert {status_of(db, a.id) for a in series["offers"]} == {AssignmentStatus.OFFERED}
    response = client.post(url, data=_series_form(series, "decline", kind="not_free", reason="周一周四上午要带孙子"))
    assert response.status_code == 302
    db.session.expire_all()
    declined = [db.session.get(Assignment, a.id) for a in series["offers"]]
    assert {(a.status, a.decline_kind.value) for a in declined} == {(AssignmentStatus.DECLINED, "not_free")}
    told = db.session.scalars(select(Notification).where(Notification.user_id == world["users"]["coord_a"].id,
                                                         Notification.kind == "offer_declined")).all()
    assert len(told) == 1


def test_series_of_another_volunteer_or_unknown_offers_is_not_found(client, auth, world, db, series):
    login(client, auth, "vol_b")
    url = f"/me/offers/series/{series['demand'].id}"
    assert client.post(url, data=_series_form(series, "accept")).status_code == 404
    assert {status_of(db, a.id) for a in series["offers"]} == {AssignmentStatus.OFFERED}
