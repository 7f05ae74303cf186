"""A scripted client plays a volunteer's week through the JSON API only, on SQLite and PostgreSQL.

The community worker (on her phone) posts a service, the coordinator opens the week, solves it, follows
the run, reads its gaps and publishes; the volunteer signs in on her phone with her password, reads her
offers, accepts one and declines the other with a reason, changes her free time, sees her week with the
resident's name; on the day she checks in and out with the codes the worker's phone shows; the worker
rates the service; the volunteer's record shows the hours and the rating. Every step is an HTTP request
to /api/v1; the one thing the script does outside it is the clock: the service is moved to "now" (it is
next week), as the day arriving would, and fifty minutes of service pass between check-in and check-out.
"""

from __future__ import annotations

import time
from datetime import timedelta

from matcher import clock
from matcher.models import Assignment, DemandOccurrence
from tests.api.conftest import ApiClient
from tests.conftest import PASSWORD


def sign_in(client: ApiClient, username: str, device: str) -> str:
    response = client.post("auth/token", token="", json={"username": username, "password": PASSWORD,
                                                        "device": device})
    assert response.status_code == 201, response.json
    return response.json["token"]


def ok(response, status: int = 200):
    assert response.status_code == status, (response.status_code, response.json)
    return response.json


def test_a_volunteers_week_through_the_api(app, world, next_monday, db):
    client = ApiClient(app)
    worker = sign_in(client, "worker_a1", "社工的手机")
    coord = sign_in(client, "coord", "协调员的电脑")
    volunteer = sign_in(client, "vol_a", "李秀英的手机")
    wednesday = next_monday + timedelta(days=2)

    # The worker posts a service on Wednesday afternoon at the community's station (vol_a is free then).
    posted = ok(client.post("demands", token=worker, json={
        "category": "culture_sports", "title": "书法课", "location_kind": "station",
        "station": world["stations"]["C1"].id, "date": wednesday.isoformat(), "start": "15:00", "end": "16:00",
        "people": 1, "min_people": 1, "priority": "normal"}), 201)
    assert posted["title"] == "书法课"

    # The coordinator opens the district's week, solves it and follows the run to its end.
    schedule = ok(client.post("schedules", token=coord, json={"area_id": world["areas"]["district"].id,
                                                              "week": next_monday.isoformat()}), 201)
    started = ok(client.post(f"schedules/{schedule['id']}/solve", token=coord, json={"time_limit": 5}), 202)
    run = started
    deadline = time.monotonic() + 60
    while True:
        run = ok(client.get(f"runs/{started['run_id']}", token=coord))
        if run["status"] in ("done", "failed") or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert run["status"] == "done", run
    gaps = ok(client.get(f"runs/{started['run_id']}/gaps", token=coord))
    assert isinstance(gaps, list)  # Thursday's elder care finds nobody free: a gap with the solver's reason
    current = client.get(f"schedules/{schedule['id']}", token=coord)
    etag = current.headers["ETag"]
    assert client.post(f"schedules/{schedule['id']}/publish", token=coord).status_code == 428
    ok(client.post(f"schedules/{schedule['id']}/publish", token=coord, headers={"If-Match": etag}))
    assert ok(client.get(f"schedules/{schedule['id']}", token=coord))["status"] == "published"

    # The volunteer reads her offers: no resident's name nor address before she accepts.
    offers = ok(client.get("me/offers", token=volunteer))
    by_title = {o["title"]: o for o in offers}
    assert "书法课" in by_title and len(offers) >= 2, [o["title"] for o in offers]
    elder = next(o for o in offers if o["category"]["code"] == "elderly_care")
    assert elder["resident"] is None and "3栋" not in elder["place"]
    accepted = ok(client.post(f"me/offers/{elder['id']}/accept", token=volunteer))
    assert accepted["status"] == "accepted" and accepted["resident"]["name"] == "张大爷"
    assert "3栋2单元" in accepted["place"] and accepted["resident"]["phone"].startswith("137")
    declined = ok(client.post(f"me/offers/{by_title['书法课']['id']}/decline", token=volunteer,
                              json={"kind": "not_free", "reason": "周三要接孙子"}))
    assert declined["status"] == "declined"

    # She is away next Friday: a dated change to her free time (If-Match from her last read).
    profile = client.get("me/profile", token=volunteer)
    body = {k: v for k, v in profile.json.items() if k not in ("real_name", "home_area")}
    friday = next_monday + timedelta(days=4)
    body["exceptions"] = [{"date": friday.isoformat(), "kind": "away", "start": "", "end": "", "note": "回老家"}]
    changed = ok(client.put("me/profile", token=volunteer, json=body, headers={"If-Match": profile.headers["ETag"]}))
    assert changed["exceptions"][0]["date"] == friday.isoformat()
    stale = client.put("me/profile", token=volunteer, json=body, headers={"If-Match": profile.headers["ETag"]})
    assert stale.status_code == 412

    week = ok(client.get("me/week", token=volunteer, query_string={"week": next_monday.isoformat()}))
    assert [s["id"] for s in week] == [elder["id"]]

    # The day comes (the script's one step outside the API: the service starts 20 minutes ago).
    occurrence = db.session.get(DemandOccurrence, elder["occurrence_id"])
    now = clock.local_now().replace(second=0, microsecond=0)
    occurrence.starts_at, occurrence.ends_at = now - timedelta(minutes=20), now + timedelta(minutes=70)
    db.session.commit()

    codes = ok(client.get(f"occurrences/{elder['occurrence_id']}/codes", token=worker))
    wrong = "000000" if codes["check_in"]["code"] != "000000" else "111111"
    refused = client.post(f"me/services/{elder['id']}/check-in", token=volunteer, json={"code": wrong})
    assert refused.status_code == 400 and refused.json["field"] == "code"
    checked_in = ok(client.post(f"me/services/{elder['id']}/check-in", token=volunteer,
                                json={"code": codes["check_in"]["code"]}))
    assert checked_in["status"] == "checked_in"
    # (the clock again: fifty minutes of service pass)
    held = db.session.get(Assignment, elder["id"])
    held.checked_in_at -= timedelta(minutes=50)
    db.session.commit()
    codes = ok(client.get(f"occurrences/{elder['occurrence_id']}/codes", token=worker))
    done = ok(client.post(f"me/services/{elder['id']}/check-out", token=volunteer,
                          json={"token": codes["check_out"]["token"]}))
    assert done["status"] == "completed" and done["credited_hours"] is not None

    ok(client.post(f"assignments/{elder['id']}/rating", token=worker, json={"rating": 5, "comment": "很耐心"}))
    record = ok(client.get("me/record", token=volunteer))
    assert float(record["total_hours"]) == float(done["credited_hours"]) == 1.0
    assert [(s["id"], s["rating"]) for s in record["services"]] == [(elder["id"], 5)]

    # The phone signs out: its token stops working.
    mine = ok(client.get("me/tokens", token=volunteer))
    this = next(t for t in mine if t["name"] == "李秀英的手机")
    assert client.delete(f"me/tokens/{this['id']}", token=volunteer).status_code == 204
    assert client.get("me/offers", token=volunteer).status_code == 401
