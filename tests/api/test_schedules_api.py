"""The coordinator's schedules through the API: list, one schedule, solve and follow the run, gaps, apply,
publish with If-Match; the pages' scoping (a street's part of the district's week) and the token's scopes."""

from __future__ import annotations

import json
import time

from sqlalchemy import func, select

from matcher.models import (
    Assignment,
    AssignmentStatus,
    RunStatus,
    Schedule,
    ScheduleStatus,
    SolveRun,
    TokenKind,
)
from matcher.schedules import assign_by_hand, get_schedule


def _town_a_week(world, db, next_monday) -> Schedule:
    schedule = get_schedule(world["areas"]["town_a"], next_monday)
    db.session.commit()
    return schedule


def _district_week(world, db, next_monday) -> Schedule:
    schedule = get_schedule(world["areas"]["district"], next_monday)
    db.session.commit()
    return schedule


def _follow(api, run_url: str, seconds: float = 60) -> dict:
    """Poll the run until it is no longer active (the solve runs in a thread of the test's server)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        run = api.get(run_url)
        assert run.status_code == 200, run.get_json()
        body = run.get_json()
        if not body["active"]:
            return body
        time.sleep(0.2)
    raise AssertionError("the run did not finish")


def test_a_coordinator_lists_and_reads_the_schedules_of_their_township(api, world, db, next_monday):
    schedule = _town_a_week(world, db, next_monday)
    api.as_user(world["users"]["coord_a"])
    listed = api.get("schedules")
    assert listed.status_code == 200
    assert [s["id"] for s in listed.get_json()] == [schedule.id]
    item = listed.get_json()[0]
    assert item["status"] == "draft" and item["week_start"] == next_monday.isoformat()
    assert item["area"]["id"] == world["areas"]["town_a"].id and item["part"] is None
    assert item["places_needed"] == 2 and item["places_filled"] == 0 and item["latest_run"] is None
    assert json.loads(listed.headers["X-Pagination"])["total"] == 1
    one = api.get(f"schedules/{schedule.id}")
    assert one.status_code == 200 and one.headers.get("ETag")
    body = one.get_json()
    assert (body["occurrences"], body["filled"], body["short"]) == (2, 0, 2)
    assert body["figures"]["coverage"] == 0.0 and body["may_solve"] and not body["solved"]
    # An unchanged schedule answers 304 to its own ETag.
    assert api.get(f"schedules/{schedule.id}", headers={"If-None-Match": one.headers["ETag"]}).status_code == 304
    # Filters: the week, the state; a state the API does not know is named.
    assert len(api.get("schedules", query_string={"week": next_monday.isoformat()}).get_json()) == 1
    assert api.get("schedules", query_string={"status": "published"}).get_json() == []
    bad = api.get("schedules", query_string={"status": "bogus"})
    assert bad.status_code == 422 and bad.get_json()["field"] == "status"
    assert bad.mimetype == "application/problem+json"
    assert api.get("schedules", query_string={"page": 2}).get_json() == []


def test_another_township_s_schedule_is_neither_listed_nor_found(api, world, db, next_monday):
    schedule = _town_a_week(world, db, next_monday)
    run = SolveRun(schedule=schedule, status=RunStatus.DONE, instance={"demands": []}, solution={"assignments": []},
                   score=1.0, bound=1.0)
    db.session.add(run)
    db.session.commit()
    api.as_user(world["users"]["coord_b"])
    assert api.get("schedules").get_json() == []
    for path in (f"schedules/{schedule.id}", f"runs/{run.id}", f"runs/{run.id}/gaps"):
        response = api.get(path)
        assert response.status_code == 404 and response.mimetype == "application/problem+json", path
    assert api.post(f"schedules/{schedule.id}/solve", json={}).status_code == 404
    assert api.post(f"schedules/{schedule.id}/publish", headers={"If-Match": '"x"'}).status_code == 404
    assert api.post(f"runs/{run.id}/apply").status_code == 404
    assert db.session.scalar(select(func.count(SolveRun.id))) == 1


def test_workers_volunteers_and_leaders_are_refused(api, world, db, next_monday):
    schedule = _town_a_week(world, db, next_monday)
    for username in ("worker_a1", "vol_a", "leader_a"):
        api.as_user(world["users"][username])
        for response in (api.get("schedules"), api.get(f"schedules/{schedule.id}")):
            assert response.status_code == 403, username
            assert response.mimetype == "application/problem+json"


def test_a_token_without_the_schedules_scope_may_read_but_not_solve_or_publish(api, world, db, next_monday):
    schedule = _town_a_week(world, db, next_monday)
    api.as_user(world["users"]["coord_a"], kind=TokenKind.PERSONAL, scopes=["read"])
    etag = api.get(f"schedules/{schedule.id}").headers["ETag"]
    solve = api.post(f"schedules/{schedule.id}/solve", json={"time_limit": 5})
    assert solve.status_code == 403 and "schedules" in solve.get_json()["detail"]
    assert api.post(f"schedules/{schedule.id}/publish", headers={"If-Match": etag}).status_code == 403
    assert db.session.scalar(select(func.count(SolveRun.id))) == 0
    api.as_user(world["users"]["coord_a"], kind=TokenKind.PERSONAL, scopes=["records"])
    assert api.get("schedules").status_code == 403
    assert api.get(f"schedules/{schedule.id}").status_code == 403


def test_solve_start_follow_to_finished_and_read_the_gaps(api, world, db, next_monday):
    schedule = _town_a_week(world, db, next_monday)
    api.as_user(world["users"]["coord_a"])
    started = api.post(f"schedules/{schedule.id}/solve", json={"time_limit": 5})
    assert started.status_code == 202, started.get_json()
    body = started.get_json()
    assert body["created"] and body["location"] == started.headers["Location"].removeprefix("http://localhost")
    assert body["location"] == f"/api/v1/runs/{body['run_id']}"
    # A second start while it runs starts nothing new: the same run is given back.
    again = api.post(f"schedules/{schedule.id}/solve")
    assert again.status_code == 202 and again.get_json()["run_id"] == body["run_id"]
    done = _follow(api, body["location"])
    assert done["status"] == "done", done["message"]
    assert done["figures"] is not None and done["score"] is not None and done["gap"] is not None
    # Volunteer a is free on Monday morning only: Monday's service is filled, Thursday's is not.
    assert done["figures"]["places_wanted"] == 2 and done["figures"]["places_filled"] == 1
    assert done["unmet_places"] == 1
    gaps = api.get(done["links"]["gaps"])
    assert gaps.status_code == 200
    (gap,) = gaps.get_json()
    thursday = sorted(world["demands"]["a1"].occurrences, key=lambda o: o.starts_at)[1]
    assert gap["occurrence_id"] in {o.id for o in world["demands"]["a1"].occurrences}
    assert gap["missing"] == 1 and gap["reasons"] and len(gap["reason_texts"]) == len(gap["reasons"])
    assert gap["community"]["name"] == "桂花社区" and thursday.id == gap["occurrence_id"]
    one = api.get(f"schedules/{schedule.id}").get_json()
    assert one["solved"] and one["latest_run"]["id"] == body["run_id"] and one["latest_run"]["status"] == "done"
    assert (one["filled"], one["short"]) == (1, 1)
    # The draft's run applied itself: applying it again is refused.
    applied = api.post(f"runs/{body['run_id']}/apply")
    assert applied.status_code == 409 and applied.mimetype == "application/problem+json"


def test_bad_solve_bodies_are_named(api, world, db, next_monday):
    schedule = _town_a_week(world, db, next_monday)
    api.as_user(world["users"]["coord_a"])
    for body, field in (({"time_limit": "soon"}, "time_limit"), ({"time_limit": 0}, "time_limit"),
                        ({"time_limt": 5}, "time_limt")):
        response = api.post(f"schedules/{schedule.id}/solve", json=body)
        assert response.status_code == 422 and response.get_json()["field"] == field, body
    assert db.session.scalar(select(func.count(SolveRun.id))) == 0


def test_publish_needs_if_match_and_refuses_a_stale_etag(api, world, db, next_monday):
    schedule = _town_a_week(world, db, next_monday)
    monday = min(world["demands"]["a1"].occurrences, key=lambda o: o.starts_at)
    assign_by_hand(schedule, monday, world["volunteers"]["a"], user=None)
    db.session.commit()
    api.as_user(world["users"]["coord_a"])
    url = f"schedules/{schedule.id}"
    etag = api.get(url).headers["ETag"]
    missing = api.post(f"{url}/publish")
    assert missing.status_code == 428 and missing.mimetype == "application/problem+json"
    assert api.post(f"{url}/publish", headers={"If-Match": '"not-the-etag"'}).status_code == 412
    # A run added since the read: the ETag read before is stale.
    db.session.add(SolveRun(schedule=schedule, status=RunStatus.FAILED, message="test"))
    db.session.commit()
    stale = api.post(f"{url}/publish", headers={"If-Match": etag})
    assert stale.status_code == 412 and stale.get_json()["status"] == 412
    assert db.session.get(Schedule, schedule.id).status == ScheduleStatus.DRAFT
    etag = api.get(url).headers["ETag"]
    published = api.post(f"{url}/publish", headers={"If-Match": etag})
    assert published.status_code == 200, published.get_json()
    body = published.get_json()
    assert body["offered"] == 1 and body["schedule"]["status"] == "published"
    assert published.headers["ETag"] != etag
    db.session.expire_all()
    assert db.session.scalar(select(Assignment.status)) == AssignmentStatus.OFFERED
    twice = api.post(f"{url}/publish", headers={"If-Match": published.headers["ETag"]})
    assert twice.status_code == 409


def test_a_street_coordinator_sees_their_part_of_the_district_week_and_cannot_solve_or_publish(
        api, world, db, next_monday):
    schedule = _district_week(world, db, next_monday)
    run = SolveRun(schedule=schedule, status=RunStatus.DONE, instance={"demands": []}, solution={"assignments": []},
                   score=1.0, bound=1.0)
    db.session.add(run)
    db.session.flush()
    a1 = world["demands"]["a1"].occurrences[0]
    b1 = world["demands"]["b1"].occurrences[0]
    from matcher.models import RunGap

    db.session.add_all([RunGap(run=run, occurrence_id=a1.id, missing=1, reasons=["no_candidate_free"]),
                        RunGap(run=run, occurrence_id=b1.id, missing=1, reasons=["no_candidate_free"])])
    db.session.commit()
    api.as_user(world["users"]["coord_a"])
    item = api.get("schedules").get_json()[0]
    assert item["id"] == schedule.id and item["part"]["id"] == world["areas"]["town_a"].id
    assert item["places_needed"] == 2  # a1 on Monday and Thursday, not b1 of the other street
    one = api.get(f"schedules/{schedule.id}").get_json()
    assert one["occurrences"] == 2 and not one["may_solve"] and one["part"]["name"] == "东城街道"
    followed = api.get(f"runs/{run.id}")
    assert followed.status_code == 200 and followed.get_json()["unmet_places"] == 1
    assert [g["occurrence_id"] for g in api.get(f"runs/{run.id}/gaps").get_json()] == [a1.id]
    etag = api.get(f"schedules/{schedule.id}").headers["ETag"]
    assert api.post(f"schedules/{schedule.id}/solve", json={"time_limit": 5}).status_code == 404
    assert api.post(f"schedules/{schedule.id}/publish", headers={"If-Match": etag}).status_code == 404
    assert api.post(f"runs/{run.id}/apply").status_code == 404
    # The district's coordinator sees the whole.
    api.as_user(world["users"]["coord"])
    whole = api.get(f"schedules/{schedule.id}").get_json()
    assert whole["occurrences"] == 3 and whole["may_solve"] and whole["part"] is None
    assert len(api.get(f"runs/{run.id}/gaps").get_json()) == 2


def test_the_openapi_description_documents_the_schedule_operations(api, world):
    api.as_user(world["users"]["coord"])
    spec = api.get("openapi.json").get_json()
    publish = spec["paths"]["/api/v1/schedules/{schedule_id}/publish"]["post"]
    assert {"412", "428", "200"} <= set(publish["responses"])
    assert any(p.get("name") == "If-Match" for p in publish.get("parameters", []))
    for path in ("/api/v1/schedules", "/api/v1/schedules/{schedule_id}", "/api/v1/runs/{run_id}",
                 "/api/v1/runs/{run_id}/gaps", "/api/v1/schedules/{schedule_id}/solve",
                 "/api/v1/schedules/{schedule_id}/publish", "/api/v1/runs/{run_id}/apply"):
        for method, operation in spec["paths"][path].items():
            if method in ("get", "post"):
                assert operation.get("summary") and operation.get("description"), path


def test_an_id_no_table_can_hold_is_a_404_not_a_500(api, world):
    api.as_user(world["users"]["coord"])
    for path in ("schedules/99999999999", "runs/99999999999", "runs/99999999999/gaps"):
        response = api.get(path)
        assert response.status_code == 404 and response.mimetype == "application/problem+json", path
    assert api.post("schedules/99999999999/solve", json={}).status_code == 404
