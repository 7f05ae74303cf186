"""The community worker's pages: the week, check-in code, confirm, rate, edit; scope and bad input."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from flask_babel import force_locale
from sqlalchemy import select

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
from tests.matcher.builders import assign, form, member
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


def test_checkin_code_page_has_the_code_and_a_qr_svg_in_scope_only(client, auth, world, db, monday):
    monday.checkin_code = "482913"
    db.session.commit()
    auth.login("worker_a1")
    response = client.get(f"/community/occurrences/{monday.id}/code")
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "<svg" in page and "482 913" in page
    assert f"occurrence={monday.id}" in page and "code=482913" in page
    assert "<script" not in page
    assert client.get(f"/community/occurrences/{world['demands']['b1'].occurrences[0].id}/code").status_code == 404
    assert client.get("/community/occurrences/999999/code").status_code == 404
    auth.logout()
    auth.login("worker_a2")
    assert client.get(f"/community/occurrences/{monday.id}/code").status_code == 404


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
    assert monday.status == DemandStatus.DONE


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
