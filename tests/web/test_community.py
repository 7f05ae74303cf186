"""The community worker's pages: the week, check-in code, confirm, rate, edit; scope and bad input."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import segno
from flask_babel import force_locale
from sqlalchemy import select

from matcher import checkin, clock, rules
from matcher.models import (
    Assignment,
    AssignmentStatus,
    DemandStatus,
    Notification,
    RunGap,
    RunStatus,
    Schedule,
    ScheduleStatus,
    SolveRun,
    utcnow,
)
from tests.matcher.builders import assign, code_at, form, member
from web.templating import REASONS


def field_message(response, field: str) -> str:
    """The message shown next to a form field (fails when there is none)."""
    match = re.search(rf'<p class="error" id="err-{field}">([^<]+)</p>', response.get_data(as_text=True))
    assert match and match.group(1).strip(), f"no message for {field}"
    return match.group(1)


@pytest.fixture
def monday(world):
    return world["demands"]["a1"].occurrences[0]


def _in_the_past(db, occ):
    now = datetime.now().replace(second=0, microsecond=0)
    occ.starts_at, occ.ends_at = now - timedelta(hours=3), now - timedelta(hours=1, minutes=30)


def test_only_community_workers_open_the_week_and_the_edit_form(client, auth, world):
    demand_id = world["demands"]["a1"].id
    expected = {"worker_a1": (200, 200), "worker_a2": (200, 404), "coord": (403, 403), "leader_a": (403, 403),
                "vol_a": (403, 403), "admin": (403, 403)}
    for username, (week_status, edit_status) in expected.items():
        auth.login(username)
        assert client.get("/community/week").status_code == week_status, username
        assert client.get(f"/demands/{demand_id}/edit").status_code == edit_status, username
        auth.logout()
    assert client.get("/community/week").status_code == 302  # signed out: to the login page


def test_week_shows_state_volunteers_masked_and_gap_reasons(client, auth, world, db, next_monday, monday):
    schedule = Schedule(area=world["areas"]["town_a"], week_start=next_monday, status=ScheduleStatus.PUBLISHED)
    db.session.add(schedule)
    db.session.flush()
    run = SolveRun(schedule=schedule, status=RunStatus.DONE, applied_at=utcnow())
    db.session.add(run)
    db.session.flush()
    thursday = world["demands"]["a1"].occurrences[1]
    db.session.add(RunGap(run=run, occurrence_id=thursday.id, missing=1, reasons=["none_available_then"]))
    assign(db, monday, world["volunteers"]["a"], AssignmentStatus.ACCEPTED)
    db.session.commit()
    auth.login("worker_a1")
    page = client.get(f"/community/week?week={next_monday.isoformat()}").get_data(as_text=True)
    assert "李秀英" in page and "138****5678" in page and "13812345678" not in page
    with force_locale("zh_CN"):
        assert str(REASONS["none_available_then"]) in page
    assert "state-accepted" in page and "state-open" in page
    assert client.get("/community/week?week=not-a-date").status_code == 400


def _code(page: str, purpose: str) -> str | None:
    match = re.search(rf'<p class="code" id="code-{purpose}"[^>]*>([^<]+)</p>', page)
    return re.sub(r"\D", "", match.group(1)) if match else None


def test_checkin_code_page_shows_changing_codes_and_qr_codes_in_scope_only(client, auth, world, db, monday,
                                                                          monkeypatch):
    encoded = []
    make = segno.make
    monkeypatch.setattr(segno, "make", lambda content, **kw: encoded.append(content) or make(content, **kw))
    now = clock.local_now().replace(second=0, microsecond=0)
    monday.starts_at, monday.ends_at = now + timedelta(minutes=30), now + timedelta(minutes=120)
    assign(db, monday, world["volunteers"]["a"], AssignmentStatus.ACCEPTED)
    db.session.commit()
    occ_id = monday.id
    auth.login("worker_a1")
    week = rules.week_monday((now + timedelta(minutes=30)).date())  # the service's week (late at night: the next)
    assert f"/community/occurrences/{occ_id}/code" in client.get(
        f"/community/week?week={week.isoformat()}").get_data(as_text=True)
    response = client.get(f"/community/occurrences/{occ_id}/code")
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "<svg" in page
    code = _code(page, "in")
    assert code in {code_at(monday, clock.local_now()), code_at(monday, clock.local_now() - timedelta(minutes=1))}
    assert _code(page, "out") is None  # check-out only once the service started
    # The QR code holds the check-in URL with a signed token for this occurrence and purpose, no code.
    (url,) = encoded
    query = parse_qs(urlsplit(url).query)
    assert url.startswith("https://localhost/checkin?") and query["occurrence"] == [str(occ_id)]
    assert "code" not in query and checkin.verify_token(
        "test-secret", query["t"][0], occ_id, checkin.CHECK_IN, time.time(), 180)
    assert 'data-refresh-in="' in page and 'class="countdown-seconds"' in page
    # The page refreshes itself with a same-origin script (the CSP allows no inline script).
    assert '<script src="/static/checkin_code.js"' in page and "<script>" not in page
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    script = client.get("/static/checkin_code.js")
    assert script.status_code == 200 and "location.reload" in script.get_data(as_text=True)
    script.close()
    assert client.get(f"/community/occurrences/{world['demands']['b1'].occurrences[0].id}/code").status_code == 404
    assert client.get("/community/occurrences/999999/code").status_code == 404
    auth.logout()
    auth.login("worker_a2")
    assert client.get(f"/community/occurrences/{occ_id}/code").status_code == 404


def test_check_out_codes_show_once_the_service_started(client, auth, world, db, monday):
    now = clock.local_now().replace(second=0, microsecond=0)
    monday.starts_at, monday.ends_at = now - timedelta(minutes=30), now + timedelta(minutes=60)
    db.session.commit()
    occ_id = monday.id
    auth.login("worker_a1")
    page = client.get(f"/community/occurrences/{occ_id}/code").get_data(as_text=True)
    code_in, code_out = _code(page, "in"), _code(page, "out")
    assert code_in and code_out and code_in != code_out
    assert page.count("<svg") == 2
    db.session.expire_all()
    monday = db.session.get(type(monday), occ_id)
    monday.starts_at, monday.ends_at = now - timedelta(hours=3), now - timedelta(hours=2)  # over: check-out only
    db.session.commit()
    page = client.get(f"/community/occurrences/{occ_id}/code").get_data(as_text=True)
    assert _code(page, "in") is None and _code(page, "out")
    monday.starts_at, monday.ends_at = now + timedelta(days=3), now + timedelta(days=3, hours=1)  # far ahead
    db.session.commit()
    page = client.get(f"/community/occurrences/{occ_id}/code").get_data(as_text=True)
    assert _code(page, "in") is None and _code(page, "out") is None and "data-refresh-in" not in page


def test_confirm_with_a_bad_tick_is_400_and_changes_nothing_then_confirms(client, auth, world, db, monday):
    _in_the_past(db, monday)
    accepted = assign(db, monday, world["volunteers"]["a"], AssignmentStatus.ACCEPTED)
    offered = assign(db, monday, member(world, db, "陈红", "13811112222"), AssignmentStatus.OFFERED)
    db.session.commit()
    ids = (monday.id, accepted.id, offered.id)
    auth.login("worker_a2")
    assert client.post(f"/community/occurrences/{ids[0]}/confirm", data={"present": ids[1]}).status_code == 404
    auth.logout()
    auth.login("worker_a1")
    response = client.post(f"/community/occurrences/{ids[0]}/confirm", data={"present": [ids[1], ids[2]]})
    assert response.status_code == 400 and field_message(response, "present")
    db.session.expire_all()
    assert db.session.get(Assignment, ids[1]).status == AssignmentStatus.ACCEPTED
    response = client.post(f"/community/occurrences/{ids[0]}/confirm", data={"present": ids[1]})
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Assignment, ids[1]).status == AssignmentStatus.COMPLETED
    assert db.session.get(Assignment, ids[1]).attendance == "by_hand"
    assert monday.status == DemandStatus.DONE
    # The week says the attendance was confirmed by hand, and so does the volunteer's record.
    week = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "attendance-by-hand" in week
    auth.logout()
    auth.login("vol_a")
    client.post("/language/en", data={"next": "/dashboard"})
    assert "confirmed by hand" in client.get("/me/record").get_data(as_text=True)


def test_rating_form_refuses_six_and_stores_four(client, auth, world, db, monday):
    done = assign(db, monday, world["volunteers"]["a"], AssignmentStatus.COMPLETED)
    db.session.commit()
    done_id = done.id
    auth.login("worker_b1")
    assert client.post(f"/community/assignments/{done_id}/rate", data={"rating": "4"}).status_code == 404
    auth.logout()
    auth.login("worker_a1")
    response = client.post(f"/community/assignments/{done_id}/rate", data={"rating": "6", "comment": "x"})
    assert response.status_code == 400 and field_message(response, "rating")
    db.session.expire_all()
    assert db.session.get(Assignment, done_id).rating is None
    assert client.post(f"/community/assignments/{done_id}/rate",
                       data={"rating": "4", "comment": "准时"}).status_code == 302
    db.session.expire_all()
    rated = db.session.get(Assignment, done_id)
    assert (rated.rating, rated.rating_comment, rated.rated_by_id) == (4, "准时", world["users"]["worker_a1"].id)


def test_edit_demand_bad_input_stale_version_and_success(client, auth, world, db):
    demand = world["demands"]["a1"]
    data, demand_id, version = form(demand), demand.id, demand.version
    auth.login("worker_a1")
    assert f"/demands/{demand_id}/edit" in client.get(f"/demands/{demand_id}").get_data(as_text=True)
    page = client.get(f"/demands/{demand_id}/edit").get_data(as_text=True)
    assert 'value="09:00"' in page and f'name="version" value="{version}"' in page
    response = client.post(f"/demands/{demand_id}/edit", data={**data, "end": "08:00", "version": version})
    assert response.status_code == 400 and field_message(response, "end")
    assert client.post(f"/demands/{demand_id}/edit", data={**data, "people": "2", "version": version - 1}
                       ).status_code == 409
    db.session.expire_all()
    assert (demand.duration_minutes, demand.people) == (90, 1)
    assert client.post(f"/demands/{demand_id}/edit", data={**data, "people": "2", "version": version}
                       ).status_code == 302
    db.session.expire_all()
    assert demand.people == 2 and demand.version == version + 1


def test_notifications_list_badge_and_mark_read_own_only(client, auth, world, db):
    mine = Notification(user_id=world["users"]["coord"].id, kind="x", text="需求已修改",
                        link_endpoint="demands.view", link_args={"demand_id": 1})
    other = Notification(user_id=world["users"]["coord_a"].id, kind="x", text="别人的消息")
    db.session.add_all([mine, other])
    db.session.commit()
    mine_id, other_id = mine.id, other.id
    auth.login("coord")
    page = client.get("/notifications").get_data(as_text=True)
    assert "需求已修改" in page and "别人的消息" not in page and 'class="badge"' in page
    assert client.post(f"/notifications/{other_id}/read").status_code == 404
    assert client.post(f"/notifications/{mine_id}/read", data={"open": "1"}).headers["Location"].endswith("/demands/1")
    db.session.expire_all()
    assert db.session.get(Notification, mine_id).read_at is not None
    assert db.session.get(Notification, other_id).read_at is None
    assert 'class="badge"' not in client.get("/notifications").get_data(as_text=True)
    assert db.session.scalar(select(Notification.read_at).where(Notification.id == other_id)) is None


def test_confirming_on_the_previous_week_works_and_refusals_show_at_the_service(client, auth, world, db):
    """Issue 9, defect 9: from the previous week's page a service that took place is confirmed; one not
    started yet has no confirm button, and confirming it (or confirming twice) answers on the week page,
    next to the service, not as a bare error page."""
    demand = world["demands"]["a1"]
    past, later = demand.occurrences[0], demand.occurrences[1]
    last_monday = rules.week_monday(clock.local_today()) - timedelta(days=7)
    past.starts_at = datetime.combine(last_monday, datetime.min.time()).replace(hour=9)
    past.ends_at = past.starts_at + timedelta(minutes=90)
    later.starts_at = clock.local_now().replace(second=0, microsecond=0) + timedelta(hours=2)
    later.ends_at = later.starts_at + timedelta(minutes=90)
    served = assign(db, past, world["volunteers"]["a"], AssignmentStatus.ACCEPTED)
    waiting = assign(db, later, world["volunteers"]["a"], AssignmentStatus.ACCEPTED)
    db.session.commit()
    ids = {"past": past.id, "later": later.id, "served": served.id, "waiting": waiting.id}
    auth.login("worker_a1")
    client.post("/language/en", data={"next": "/dashboard"})
    page = client.get(f"/community/week?week={last_monday.isoformat()}").get_data(as_text=True)
    assert f"/community/occurrences/{ids['past']}/confirm" in page
    response = client.post(f"/community/occurrences/{ids['past']}/confirm", data={"present": ids["served"]})
    assert response.status_code == 302 and f"week={last_monday.isoformat()}" in response.headers["Location"]
    db.session.expire_all()
    assert db.session.get(Assignment, ids["served"]).status == AssignmentStatus.COMPLETED

    # Confirmed already: said on the week page, at the service.
    response = client.post(f"/community/occurrences/{ids['past']}/confirm", data={"present": ids["served"]})
    body = response.get_data(as_text=True)
    assert response.status_code == 409 and f'id="occ-{ids["past"]}"' in body
    assert "confirmed already" in field_message(response, "confirm")

    # Not started yet: no button; posting anyway is answered at the service, and nothing changes.
    week = rules.week_monday(later.starts_at.date()).isoformat()
    page = client.get(f"/community/week?week={week}").get_data(as_text=True)
    assert f"/community/occurrences/{ids['later']}/confirm" not in page
    assert "Can be confirmed once it has started" in page
    response = client.post(f"/community/occurrences/{ids['later']}/confirm", data={"present": ids["waiting"]})
    assert response.status_code == 400 and f'id="occ-{ids["later"]}"' in response.get_data(as_text=True)
    assert "has not started yet" in field_message(response, "confirm")
    db.session.expire_all()
    assert db.session.get(Assignment, ids["waiting"]).status == AssignmentStatus.ACCEPTED
