"""Demands through the API: the list in scope, one demand with its ETag, posting, editing (If-Match) and
cancelling; the community worker's week, confirming a service and recording a rating. The pages' rules
(tests/web/test_demands.py, tests/web/test_community.py), and every answer as the OpenAPI description says."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import schemathesis
from sqlalchemy import func, select

from matcher import clock
from matcher.models import Assignment, AssignmentStatus, Demand, DemandStatus, TokenKind
from tests.matcher.builders import assign, member

PROBLEM = "application/problem+json"


@pytest.fixture
def spec(api):
    """The running app's OpenAPI description, to check every answer against."""
    return schemathesis.openapi.from_dict(api.get("openapi.json").json)


def checked(spec, response, path: str, method: str = "GET"):
    """The response, once it matches what the description says of `method path` (fails otherwise)."""
    spec["/api/v1/" + path][method].validate_response(response)
    return response


def problem_field(response) -> str:
    """The field a problem+json answer names first."""
    assert response.mimetype == PROBLEM, response.get_data(as_text=True)
    return response.json.get("field", "")


def demand_count(db) -> int:
    return db.session.scalar(select(func.count(Demand.id)))


def in_the_past(db, occ):
    """Move an occurrence to earlier today (local time): it took place."""
    now = clock.local_now().replace(second=0, microsecond=0)
    occ.starts_at, occ.ends_at = now - timedelta(hours=3), now - timedelta(hours=1, minutes=30)


def read_only(api, user):
    """A personal token of `user` holding only the "read" scope."""
    return api.as_user(user, kind=TokenKind.PERSONAL, scopes=["read"], days=30)


def new_demand(world, day, **overrides) -> dict:
    body = {"category": "culture_sports", "location_kind": "station", "station": world["stations"]["C1"].id,
            "date": day.isoformat(), "start": "19:00", "end": "21:00"}
    body.update(overrides)
    return body


# ------------------------------------------------------------------ the list and one demand


def test_the_list_is_the_persons_scope_paginated_and_filtered(api, world, spec, db, next_monday):
    a1, b1 = world["demands"]["a1"].id, world["demands"]["b1"].id
    api.as_user(world["users"]["worker_a1"])
    response = checked(spec, api.get("demands"), "demands")
    assert response.status_code == 200 and [d["id"] for d in response.json] == [a1]
    assert json.loads(response.headers["X-Pagination"])["total"] == 1
    assert response.json[0]["resident"]["name"] == "张大爷" and response.json[0]["can_change"] is True

    api.as_user(world["users"]["coord"])
    assert {d["id"] for d in checked(spec, api.get("demands"), "demands").json} == {a1, b1}
    first = checked(spec, api.get("demands?page_size=1"), "demands")
    paging = json.loads(first.headers["X-Pagination"])
    assert len(first.json) == 1 and paging["total"] == 2 and paging["total_pages"] == 2
    assert checked(spec, api.get("demands?page=99999999999"), "demands").json == []
    assert [d["id"] for d in api.get("demands?category=mediation").json] == [b1]
    assert [d["id"] for d in api.get(f"demands?community={world['areas']['a1'].id}").json] == [a1]
    assert api.get("demands?status=cancelled").json == []
    assert {d["id"] for d in api.get(f"demands?week={next_monday.isoformat()}").json} == {a1, b1}
    assert api.get(f"demands?week={(next_monday + timedelta(days=14)).isoformat()}").json[0]["id"] == a1

    for query, status, field in (("category=nope", 400, "category"), ("status=bogus", 422, "status"),
                                 ("colour=red", 422, "colour"), ("page_size=101", 422, "page_size"),
                                 ("week=9999-01-01", 400, "week"), ("week=0001-01-01", 400, "week"),
                                 ("community=9007199254740993", 422, "community"), ("q=" + "x" * 61, 422, "q"),
                                 ("q=a%00b", 422, "q")):
        response = checked(spec, api.get("demands?" + query), "demands")
        assert response.status_code == status and problem_field(response) == field, query

    # A volunteer sees only the demands of their own offers, without the resident or the exact place.
    api.as_user(world["users"]["vol_a"])
    assert api.get("demands").json == []
    assign(db, world["demands"]["a1"].occurrences[0], world["volunteers"]["a"], AssignmentStatus.OFFERED)
    db.session.commit()
    (seen,) = checked(spec, api.get("demands"), "demands").json
    assert seen["id"] == a1 and seen["resident"] is None and seen["notes"] is None
    assert seen["address"] is None and seen["lat"] is None and seen["station"] is None
    assert "桂花社区" in seen["place"] and "3栋" not in seen["place"] and seen["can_change"] is False


def test_one_demand_with_its_occurrences_and_etag_within_scope(api, world, spec):
    demand = world["demands"]["a1"]
    demand_id, occurrences = demand.id, len(demand.occurrences)
    api.as_user(world["users"]["worker_a1"])
    response = checked(spec, api.get(f"demands/{demand_id}"), "demands/{demand_id}")
    body = response.json
    assert response.status_code == 200 and response.headers["ETag"]
    assert len(body["occurrences"]) == occurrences and body["weekdays"] == [0, 3]
    assert body["start"] == "09:00" and body["end"] == "10:30" and body["lat"] == pytest.approx(29.3455)
    assert body["occurrences"][0]["starts_at"].endswith("+08:00")
    assert api.get(f"demands/{demand_id}", headers={"If-None-Match": response.headers["ETag"]}).status_code == 304

    # Another community's worker: as if it did not exist; a coordinator above: read, not change.
    api.as_user(world["users"]["worker_a2"])
    response = checked(spec, api.get(f"demands/{demand_id}"), "demands/{demand_id}")
    assert response.status_code == 404 and response.mimetype == PROBLEM
    api.as_user(world["users"]["coord_a"])
    body = checked(spec, api.get(f"demands/{demand_id}"), "demands/{demand_id}").json
    assert body["can_change"] is False and body["lat"] is None and body["address"] is None  # a home
    assert body["resident"]["name"] == "张大爷"
    for beyond in (2**31, 2**53 + 1, 2**63 - 1):  # beyond any row's id: 404, never a database error
        assert api.get(f"demands/{beyond}").status_code == 404, beyond
    assert api.get("demands/99999999999999999999").status_code == 404  # beyond any id


# ------------------------------------------------------------------ posting


def test_a_worker_posts_a_demand_for_the_community(api, world, spec, db, next_monday):
    api.as_user(world["users"]["worker_a1"])
    body = new_demand(world, next_monday, title="广场舞", weekdays=[1, 3], people=3, min_people=2,
                      priority="high", notes="带音响", skills=["first_aid"])
    response = checked(spec, api.post("demands", json=body), "demands", "POST")
    assert response.status_code == 201, response.json
    made = response.json
    assert made["title"] == "广场舞" and made["weekdays"] == [1, 3] and made["people"] == 3
    assert made["community"]["id"] == world["areas"]["a1"].id and made["skills"] == ["first_aid"]
    assert made["station"]["id"] == world["stations"]["C1"].id and made["occurrences"]
    assert response.headers["ETag"]
    demand = db.session.get(Demand, made["id"])
    assert demand.created_by_id == world["users"]["worker_a1"].id and demand.weekday_list == [1, 3]
    assert len(demand.occurrences) == len(made["occurrences"])
    # One-off: no weekdays, no recurrence.
    once = api.post("demands", json=new_demand(world, next_monday))
    assert once.status_code == 201 and once.json["weekdays"] == [] and len(once.json["occurrences"]) == 1


def test_only_a_workers_token_with_the_demands_scope_posts(api, world, spec, db, next_monday):
    before = demand_count(db)
    body = new_demand(world, next_monday)
    for username in ("vol_a", "coord", "leader_a", "admin"):
        response = checked(spec, api.as_user(world["users"][username]).post("demands", json=body), "demands", "POST")
        assert response.status_code == 403 and response.mimetype == PROBLEM, username
    read_only(api, world["users"]["worker_a1"])
    response = checked(spec, api.post("demands", json=body), "demands", "POST")
    assert response.status_code == 403 and "demands" in response.json["detail"]
    assert api.get("demands").status_code == 200  # reading is what it may do
    assert demand_count(db) == before


@pytest.mark.parametrize(("change", "status", "field"), [
    ({"end": "08:00"}, 400, "end"),
    ({"start": "25:99"}, 400, "start"),
    ({"start": "9:00"}, 422, "start"),
    ({"weekdays": [7]}, 422, "weekdays.0"),
    ({"weekdays": ["1"]}, 422, "weekdays.0"),
    ({"colour": "red"}, 422, "colour"),
    ({"people": 0}, 422, "people"),
    ({"people": "2"}, 422, "people"),
    ({"people": 1, "min_people": 2}, 400, "people"),
    ({"date": "0001-01-01"}, 400, "date"),
    ({"date": "9999-12-31"}, 400, "date"),
    ({"date": "2026-02-30"}, 422, "date"),
    ({"weekdays": [0], "repeat_until": "9999-12-31"}, 400, "repeat_until"),
    ({"station": 2**60}, 422, "station"),
    ({"resident": 2**31}, 422, "resident"),
    ({"station": 999999}, 400, "station"),
    ({"location_kind": "point", "lat": 1000, "lon": 107.7}, 422, "lat"),
    ({"location_kind": "point", "lat": 40.0, "lon": 116.4}, 400, "lat"),
    ({"location_kind": "home"}, 400, "location_kind"),
    ({"location_kind": "castle"}, 422, "location_kind"),
    ({"title": "a\u0000b"}, 422, "title"),
    ({"title": "x" * 121}, 422, "title"),
    ({"category": "nope"}, 400, "category"),
    ({"category": None}, 422, "category"),
    ({"skills": ["no_such_skill"]}, 400, "skills"),
    ({"priority": "whenever"}, 422, "priority"),
])
def test_a_bad_body_is_refused_naming_the_field_and_nothing_is_saved(api, world, spec, db, next_monday, change,
                                                                     status, field):
    api.as_user(world["users"]["worker_a1"])
    before = demand_count(db)
    response = checked(spec, api.post("demands", json=new_demand(world, next_monday, **change)), "demands", "POST")
    assert response.status_code == status, response.json
    assert problem_field(response) == field and response.json["errors"][field]
    assert demand_count(db) == before


def test_a_resident_of_another_community_or_no_body_is_refused(api, world, spec, db, next_monday):
    api.as_user(world["users"]["worker_a1"])
    other = world["residents"]["b1"].id
    response = api.post("demands", json=new_demand(world, next_monday, resident=other, location_kind="home"))
    assert response.status_code == 400 and problem_field(response) == "resident"
    missing = {k: v for k, v in new_demand(world, next_monday).items() if k != "category"}
    response = checked(spec, api.post("demands", json=missing), "demands", "POST")
    assert response.status_code == 422 and problem_field(response) == "category"
    assert api.post("demands", data="not json", content_type="application/json").status_code in (400, 422)


# ------------------------------------------------------------------ editing


def test_editing_needs_the_current_etag(api, world, spec, db):
    demand = world["demands"]["a1"]
    demand_id, version = demand.id, demand.version
    path = "demands/{demand_id}"
    api.as_user(world["users"]["worker_a1"])
    etag = api.get(f"demands/{demand_id}").headers["ETag"]

    response = checked(spec, api.patch(f"demands/{demand_id}", json={"people": 2}), path, "PATCH")
    assert response.status_code == 428 and response.mimetype == PROBLEM
    response = checked(spec, api.patch(f"demands/{demand_id}", json={"people": 2}, headers={"If-Match": '"stale"'}),
                       path, "PATCH")
    assert response.status_code == 412 and response.mimetype == PROBLEM
    response = api.patch(f"demands/{demand_id}", json={"end": "08:00"}, headers={"If-Match": etag})
    assert response.status_code == 400 and problem_field(response) == "end"
    db.session.expire_all()
    assert db.session.get(Demand, demand_id).people == 1

    response = checked(spec, api.patch(f"demands/{demand_id}", json={"people": 2, "notes": "轮椅"},
                                       headers={"If-Match": etag}), path, "PATCH")
    assert response.status_code == 200, response.json
    assert response.json["people"] == 2 and response.json["version"] == version + 1
    assert response.json["weekdays"] == [0, 3] and response.json["start"] == "09:00"  # the rest kept
    assert response.headers["ETag"] != etag
    db.session.expire_all()
    saved = db.session.get(Demand, demand_id)
    assert (saved.people, saved.notes, saved.version, saved.duration_minutes) == (2, "轮椅", version + 1, 90)
    # The old ETag is stale now: someone else's change is not overwritten.
    assert api.patch(f"demands/{demand_id}", json={"people": 3}, headers={"If-Match": etag}).status_code == 412
    assert api.patch(f"demands/{demand_id}", json={"people": 3},
                     headers={"If-Match": response.headers["ETag"]}).status_code == 200


def test_no_one_else_edits_a_communitys_demand(api, world, spec, db):
    demand_id = world["demands"]["a1"].id
    etag = api.as_user(world["users"]["worker_a1"]).get(f"demands/{demand_id}").headers["ETag"]
    api.as_user(world["users"]["worker_a2"])
    response = api.patch(f"demands/{demand_id}", json={"people": 2}, headers={"If-Match": etag})
    assert response.status_code == 404 and response.mimetype == PROBLEM
    for username in ("vol_a", "coord_a"):
        api.as_user(world["users"][username])
        assert api.patch(f"demands/{demand_id}", json={"people": 2}, headers={"If-Match": etag}).status_code == 403
    read_only(api, world["users"]["worker_a1"])
    assert api.patch(f"demands/{demand_id}", json={"people": 2}, headers={"If-Match": etag}).status_code == 403
    db.session.expire_all()
    assert db.session.get(Demand, demand_id).people == 1


# ------------------------------------------------------------------ cancelling


def test_cancelling_with_a_reason_once(api, world, spec, db):
    demand_id = world["demands"]["a1"].id
    path = "demands/{demand_id}/cancel"
    api.as_user(world["users"]["worker_a2"])
    assert api.post(f"demands/{demand_id}/cancel", json={"reason": "x"}).status_code == 404
    read_only(api, world["users"]["worker_a1"])
    assert api.post(f"demands/{demand_id}/cancel", json={"reason": "x"}).status_code == 403

    api.as_user(world["users"]["worker_a1"])
    response = checked(spec, api.post(f"demands/{demand_id}/cancel", json={}), path, "POST")
    assert response.status_code == 422 and problem_field(response) == "reason"
    response = checked(spec, api.post(f"demands/{demand_id}/cancel", json={"reason": "  "}), path, "POST")
    assert response.status_code == 400 and problem_field(response) == "reason"
    response = api.post(f"demands/{demand_id}/cancel", json={"reason": "住院了"}, headers={"If-Match": '"stale"'})
    assert response.status_code == 412
    db.session.expire_all()
    assert db.session.get(Demand, demand_id).status == DemandStatus.OPEN

    etag = api.get(f"demands/{demand_id}").headers["ETag"]
    response = checked(spec, api.post(f"demands/{demand_id}/cancel", json={"reason": "住院了"},
                                      headers={"If-Match": etag}), path, "POST")
    assert response.status_code == 200, response.json
    assert response.json["cancelled"] >= 2 and response.json["demand"]["status"] == "cancelled"
    assert all(o["status"] == "cancelled" for o in response.json["demand"]["occurrences"])
    db.session.expire_all()
    assert db.session.get(Demand, demand_id).status == DemandStatus.CANCELLED
    response = checked(spec, api.post(f"demands/{demand_id}/cancel", json={"reason": "again"}), path, "POST")
    assert response.status_code == 409 and response.mimetype == PROBLEM


# ------------------------------------------------------------------ the community's week


def test_the_week_shows_the_services_with_volunteers_masked(api, world, spec, db, next_monday):
    monday = world["demands"]["a1"].occurrences[0]
    assign(db, monday, world["volunteers"]["a"], AssignmentStatus.ACCEPTED)
    db.session.commit()
    api.as_user(world["users"]["worker_a1"])
    response = checked(spec, api.get(f"community/week?week={(next_monday + timedelta(days=2)).isoformat()}"),
                       "community/week")
    body = response.json
    assert response.status_code == 200 and body["week"] == next_monday.isoformat()
    assert body["community"]["name"] == "桂花社区" and len(body["services"]) == 2
    first = body["services"][0]
    assert first["state"] == "accepted" and first["accepted"] == 1 and first["resident"] == "张大爷"
    (person,) = first["assignments"]
    assert person["name"] == "李秀英" and person["phone"] == "138****5678" and person["status"] == "accepted"
    assert "13812345678" not in response.get_data(as_text=True)
    assert first["can_confirm"] is False  # not started yet
    assert checked(spec, api.get("community/week"), "community/week").status_code == 200  # the default week

    for query, status in (("week=not-a-date", 422), ("week=9999-01-01", 400), ("week=0001-01-01", 400),
                          ("weeks=2026-01-05", 422)):
        response = checked(spec, api.get("community/week?" + query), "community/week")
        assert response.status_code == status and problem_field(response) in ("week", "weeks"), query
    for username in ("coord", "vol_a", "leader_a"):
        assert api.as_user(world["users"][username]).get("community/week").status_code == 403, username


# ------------------------------------------------------------------ confirming and rating


def test_confirming_a_service_ticks_who_was_there(api, world, spec, db):
    monday = world["demands"]["a1"].occurrences[0]
    in_the_past(db, monday)
    accepted = assign(db, monday, world["volunteers"]["a"], AssignmentStatus.ACCEPTED)
    offered = assign(db, monday, member(world, db, "陈红", "13811112222"), AssignmentStatus.OFFERED)
    db.session.commit()
    occ_id, accepted_id, offered_id = monday.id, accepted.id, offered.id
    path = "occurrences/{occurrence_id}/confirm"

    api.as_user(world["users"]["worker_a2"])
    assert api.post(f"occurrences/{occ_id}/confirm", json={"present": [accepted_id]}).status_code == 404
    assert api.post(f"occurrences/{2**40}/confirm", json={}).status_code == 404
    read_only(api, world["users"]["worker_a1"])
    assert api.post(f"occurrences/{occ_id}/confirm", json={"present": [accepted_id]}).status_code == 403

    api.as_user(world["users"]["worker_a1"])
    response = checked(spec, api.post(f"occurrences/{occ_id}/confirm", json={"present": [accepted_id, offered_id]}),
                       path, "POST")
    assert response.status_code == 400 and problem_field(response) == "present"
    for present in (["x"], [2**60], [accepted_id] * 201):
        response = api.post(f"occurrences/{occ_id}/confirm", json={"present": present})
        assert response.status_code == 422 and problem_field(response).startswith("present"), present
    db.session.expire_all()
    assert db.session.get(Assignment, accepted_id).status == AssignmentStatus.ACCEPTED

    week = api.get(f"community/week?week={monday.starts_at.date().isoformat()}").json
    assert next(s for s in week["services"] if s["occurrence_id"] == occ_id)["can_confirm"] is True
    response = checked(spec, api.post(f"occurrences/{occ_id}/confirm", json={"present": [accepted_id]}), path, "POST")
    assert response.status_code == 200, response.json
    assert (response.json["completed"], response.json["no_show"], response.json["withdrawn"]) == (1, 0, 1)
    service = response.json["service"]
    assert service["status"] == "done" and service["can_confirm"] is False
    (done,) = [a for a in service["assignments"] if a["id"] == accepted_id]
    assert done["status"] == "completed" and done["attendance"] == "by_hand" and done["credited_hours"]
    db.session.expire_all()
    assert db.session.get(Assignment, accepted_id).status == AssignmentStatus.COMPLETED
    response = checked(spec, api.post(f"occurrences/{occ_id}/confirm", json={}), path, "POST")
    assert response.status_code == 409 and response.mimetype == PROBLEM


def test_a_service_not_started_yet_cannot_be_confirmed(api, world, spec, db):
    monday = world["demands"]["a1"].occurrences[0]
    accepted = assign(db, monday, world["volunteers"]["a"], AssignmentStatus.ACCEPTED)
    db.session.commit()
    occ_id, accepted_id = monday.id, accepted.id
    api.as_user(world["users"]["worker_a1"])
    response = checked(spec, api.post(f"occurrences/{occ_id}/confirm", json={"present": [accepted_id]}),
                       "occurrences/{occurrence_id}/confirm", "POST")
    assert response.status_code == 400 and response.mimetype == PROBLEM and response.json["detail"]
    db.session.expire_all()
    assert db.session.get(Assignment, accepted_id).status == AssignmentStatus.ACCEPTED


def test_recording_a_rating_of_a_completed_service(api, world, spec, db):
    monday = world["demands"]["a1"].occurrences[0]
    done = assign(db, monday, world["volunteers"]["a"], AssignmentStatus.COMPLETED)
    waiting = assign(db, world["demands"]["a1"].occurrences[1], world["volunteers"]["a"], AssignmentStatus.ACCEPTED)
    db.session.commit()
    done_id, waiting_id = done.id, waiting.id
    path = "assignments/{assignment_id}/rating"

    api.as_user(world["users"]["worker_b1"])
    assert api.post(f"assignments/{done_id}/rating", json={"rating": 4}).status_code == 404
    read_only(api, world["users"]["worker_a1"])
    assert api.post(f"assignments/{done_id}/rating", json={"rating": 4}).status_code == 403

    api.as_user(world["users"]["worker_a1"])
    for body, status, field in (({"rating": 6}, 422, "rating"), ({"rating": "4"}, 422, "rating"),
                                ({"rating": 0}, 422, "rating"), ({}, 422, "rating"),
                                ({"rating": 4, "comment": "x" * 501}, 422, "comment")):
        response = checked(spec, api.post(f"assignments/{done_id}/rating", json=body), path, "POST")
        assert response.status_code == status and problem_field(response) == field, body
    response = checked(spec, api.post(f"assignments/{waiting_id}/rating", json={"rating": 4}), path, "POST")
    assert response.status_code == 400 and problem_field(response) == "rating"
    for beyond in (99999999, 2**31, 2**53):
        assert api.post(f"assignments/{beyond}/rating", json={"rating": 4}).status_code == 404, beyond
    db.session.expire_all()
    assert db.session.get(Assignment, done_id).rating is None

    response = checked(spec, api.post(f"assignments/{done_id}/rating", json={"rating": 4, "comment": "准时"}),
                       path, "POST")
    assert response.status_code == 200, response.json
    assert (response.json["rating"], response.json["rating_comment"]) == (4, "准时")
    db.session.expire_all()
    rated = db.session.get(Assignment, done_id)
    assert (rated.rating, rated.rating_comment, rated.rated_by_id) == (4, "准时", world["users"]["worker_a1"].id)
