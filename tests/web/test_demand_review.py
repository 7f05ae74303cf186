"""The review (审单, issue 9, 19): a township or district may review its communities' demands before
they are dispatched; a demand waiting for review (or returned) is never planned; coordinators
approve (one or many) or return it with a reason; the worker is told; everything is audited."""

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from matcher.demands import (
    approve_demand,
    approve_demands,
    create_demand,
    return_demand,
    set_area_review,
    update_demand,
)
from matcher.errors import AccessDenied, Conflict, ValidationError
from matcher.models import AuditEntry, Demand, Notification
from matcher.models._types import ReviewState
from matcher.problem import build_instance, schedule_occurrences
from matcher.schedules import get_schedule


def _post(world, next_monday, community="a1", **overrides):
    worker = {"a1": "worker_a1", "a2": "worker_a2", "b1": "worker_b1"}[community]
    station = world["stations"][world["areas"][community].code]
    data = {"category": "culture_sports", "location_kind": "station", "station": station.id,
            "date": next_monday.isoformat(), "start": "19:00", "end": "21:00", "priority": "normal",
            "title": "Film night"}
    data.update(overrides)
    return create_demand(data, community=world["areas"][community], user=world["users"][worker])


def _planned(world, next_monday, demand, town="town_a"):
    schedule = get_schedule(world["areas"][town], next_monday)
    return {o.demand_id for o in schedule_occurrences(schedule)} >= {demand.id}


def _notes(user, kind):
    from matcher.db import db

    return db.session.scalars(select(Notification).where(Notification.user_id == user.id,
                                                         Notification.kind == kind)).all()


def _audits(action):
    from matcher.db import db

    return db.session.scalars(select(AuditEntry).where(AuditEntry.action == action)).all()


def test_without_review_a_demand_is_planned_at_once(world, db, next_monday):
    demand = _post(world, next_monday)
    assert demand.review is None and _planned(world, next_monday, demand)


def test_a_demand_under_review_is_not_planned_until_approved(world, db, next_monday):
    """Issue 9, 19: there was no 审单: a demand went straight into the solve."""
    set_area_review(world["areas"]["town_a"], True, user=world["users"]["coord_a"])
    demand = _post(world, next_monday)
    db.session.commit()
    assert demand.review == ReviewState.PENDING
    assert not _planned(world, next_monday, demand)
    instance = build_instance(get_schedule(world["areas"]["town_a"], next_monday))
    assert not any(d["id"].endswith(str(o.id)) for d in instance["demands"] for o in demand.occurrences)
    # The coordinators over the community are told, the district's too.
    assert _notes(world["users"]["coord_a"], "demand_review") and _notes(world["users"]["coord"], "demand_review")
    assert not _notes(world["users"]["coord_b"], "demand_review")
    approve_demand(demand, user=world["users"]["coord_a"])
    db.session.commit()
    assert demand.review == ReviewState.APPROVED and _planned(world, next_monday, demand)
    assert _notes(world["users"]["worker_a1"], "demand_approved")
    assert [e.object_id for e in _audits("approve_demand")] == [demand.id]
    assert _audits("set_review")[0].details == {"on": True, "released": 0}


def test_communities_inherit_the_review_of_their_district(world, db, next_monday):
    set_area_review(world["areas"]["district"], True, user=world["users"]["coord"])
    assert _post(world, next_monday, community="b1").review == ReviewState.PENDING


def test_returning_needs_a_reason_tells_the_worker_and_an_edit_sends_it_again(world, db, next_monday):
    set_area_review(world["areas"]["town_a"], True, user=world["users"]["coord_a"])
    demand = _post(world, next_monday)
    db.session.commit()
    for reason in ("", "  ", None, "x" * 301):
        with pytest.raises(ValidationError) as info:
            return_demand(demand, user=world["users"]["coord_a"], reason=reason)
        assert list(info.value.errors) == ["reason"]
        db.session.rollback()
    assert demand.review == ReviewState.PENDING and not _audits("return_demand")
    return_demand(demand, user=world["users"]["coord_a"], reason="Say which film; the station is booked that night")
    db.session.commit()
    assert (demand.review, demand.review_note) == (ReviewState.RETURNED,
                                                   "Say which film; the station is booked that night")
    assert not _planned(world, next_monday, demand)
    told = _notes(world["users"]["worker_a1"], "demand_returned")
    assert len(told) == 1 and "the station is booked that night" in told[0].text
    assert _audits("return_demand")[0].details["reason"].startswith("Say which film")
    with pytest.raises(Conflict):
        approve_demand(demand, user=world["users"]["coord_a"])  # back with the worker, not in the queue
    data = {"category": "culture_sports", "location_kind": "station", "station": demand.station_id,
            "date": demand.starts_on.isoformat(), "start": "19:00", "end": "21:00", "title": "Film night: 地道战"}
    update_demand(demand, data, user=world["users"]["worker_a1"], version=demand.version)
    db.session.commit()
    assert demand.review == ReviewState.PENDING
    assert len(_notes(world["users"]["coord_a"], "demand_review")) == 2


def test_only_coordinators_over_the_community_review(world, db, next_monday):
    set_area_review(world["areas"]["district"], True, user=world["users"]["coord"])
    demand = _post(world, next_monday)
    for user in ("coord_b", "worker_a1", "leader_a", "vol_a"):
        with pytest.raises(AccessDenied):
            approve_demand(demand, user=world["users"][user])
    with pytest.raises(AccessDenied):
        set_area_review(world["areas"]["town_b"], False, user=world["users"]["coord_a"])
    assert approve_demands([demand], user=world["users"]["coord_b"]) == 0
    assert approve_demands([demand], user=world["users"]["coord"]) == 1


def test_a_material_edit_of_an_approved_demand_is_reviewed_again_a_new_title_is_not(world, db, next_monday):
    set_area_review(world["areas"]["town_a"], True, user=world["users"]["coord_a"])
    demand = _post(world, next_monday)
    approve_demand(demand, user=world["users"]["coord_a"])
    db.session.commit()
    data = {"category": "culture_sports", "location_kind": "station", "station": demand.station_id,
            "date": demand.starts_on.isoformat(), "start": "19:00", "end": "21:00", "title": "Another title"}
    update_demand(demand, data, user=world["users"]["worker_a1"], version=demand.version)
    assert demand.review == ReviewState.APPROVED
    update_demand(demand, {**data, "end": "22:00"}, user=world["users"]["worker_a1"], version=demand.version)
    assert demand.review == ReviewState.PENDING


def test_turning_review_off_lets_the_waiting_demands_through(world, db, next_monday):
    set_area_review(world["areas"]["town_a"], True, user=world["users"]["coord_a"])
    waiting, returned = _post(world, next_monday), _post(world, next_monday, start="08:00", end="09:00")
    return_demand(returned, user=world["users"]["coord_a"], reason="Too early")
    assert set_area_review(world["areas"]["town_a"], False, user=world["users"]["coord_a"]) == 1
    assert (waiting.review, returned.review) == (ReviewState.APPROVED, ReviewState.RETURNED)


def test_urgent_demands_are_flagged_and_head_the_queue(client, auth, world, db, next_monday):
    set_area_review(world["areas"]["town_a"], True, user=world["users"]["coord_a"])
    normal = _post(world, next_monday, title="Normal one")
    urgent = _post(world, next_monday + timedelta(days=3), title="Urgent one", priority="urgent")
    db.session.commit()
    assert _notes(world["users"]["coord_a"], "demand_review_urgent")
    auth.login("coord_a")
    page = client.get("/demands", query_string={"review": "pending"}).get_data(as_text=True)
    assert page.index("Urgent one") < page.index("Normal one")
    assert f'name="demand" value="{urgent.id}"' in page and f'name="demand" value="{normal.id}"' in page


def test_the_queue_batch_approves_and_skips_what_is_out_of_scope(client, auth, world, db, next_monday):
    set_area_review(world["areas"]["district"], True, user=world["users"]["coord"])
    mine = [_post(world, next_monday, start=f"1{i}:00", end=f"1{i}:30") for i in range(3)]
    theirs = _post(world, next_monday, community="b1")
    db.session.commit()
    auth.login("coord_a")
    response = client.post("/demands/review/approve",
                           data={"demand": [str(mine[0].id), str(mine[1].id), str(theirs.id), "١", "9" * 30]})
    assert response.status_code == 302
    db.session.expire_all()
    states = {d.id: db.session.get(Demand, d.id).review for d in (*mine, theirs)}
    assert states == {mine[0].id: ReviewState.APPROVED, mine[1].id: ReviewState.APPROVED,
                      mine[2].id: ReviewState.PENDING, theirs.id: ReviewState.PENDING}
    assert client.post("/demands/review/approve", data={}).status_code == 400


def test_return_on_the_page_needs_a_reason_and_shows_it_to_the_worker(client, auth, world, db, next_monday):
    set_area_review(world["areas"]["town_a"], True, user=world["users"]["coord_a"])
    demand = _post(world, next_monday)
    db.session.commit()
    auth.login("coord_a")
    client.post("/language/en")
    page = client.get(f"/demands/{demand.id}").get_data(as_text=True)
    assert 'id="review-actions"' in page
    response = client.post(f"/demands/{demand.id}/return", data={"reason": " "})
    assert response.status_code == 400 and 'id="err-reason"' in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Demand, demand.id).review == ReviewState.PENDING
    assert client.post(f"/demands/{demand.id}/return", data={"reason": "Which film?"}).status_code == 302
    auth.logout()
    auth.login("worker_a1")
    client.post("/language/en")
    page = client.get(f"/demands/{demand.id}").get_data(as_text=True)
    assert 'id="review-note"' in page and "Which film?" in page
    assert 'id="review-actions"' not in page
    auth.logout()
    auth.login("coord_b")
    assert client.post(f"/demands/{demand.id}/approve").status_code == 404  # another township's demand


def test_the_settings_page_turns_an_areas_review_on_and_off(client, auth, world, db):
    auth.login("coord_a")
    page = client.get("/demands/review-settings").get_data(as_text=True)
    town_a, town_b = world["areas"]["town_a"], world["areas"]["town_b"]
    assert f'id="area-{town_a.id}"' in page and f'id="area-{town_b.id}"' not in page
    assert client.post("/demands/review-settings", data={"area": town_a.id, "review": "1"}).status_code == 302
    db.session.expire_all()
    assert db.session.get(type(town_a), town_a.id).review_demands is True
    assert client.post("/demands/review-settings", data={"area": town_b.id, "review": "1"}).status_code == 404
    assert db.session.get(type(town_b), town_b.id).review_demands is False
    assert db.session.scalar(select(func.count(AuditEntry.id)).where(AuditEntry.action == "set_review")) == 1
    auth.logout()
    auth.login("worker_a1")
    assert client.get("/demands/review-settings").status_code == 403


def test_the_workers_week_marks_a_demand_waiting_for_review(client, auth, world, db, next_monday):
    set_area_review(world["areas"]["town_a"], True, user=world["users"]["coord_a"])
    demand = _post(world, next_monday, title="Waiting film")
    db.session.commit()
    auth.login("worker_a1")
    client.post("/language/en")
    page = client.get("/community/week", query_string={"week": next_monday.isoformat()}).get_data(as_text=True)
    card = page[page.index("Waiting film"):]
    assert "review-state" in card[:600] and "Awaiting review" in card[:600]
    approve_demand(demand, user=world["users"]["coord_a"])
    db.session.commit()
    page = client.get("/community/week", query_string={"week": next_monday.isoformat()}).get_data(as_text=True)
    card = page[page.index("Waiting film"):]
    assert "review-state" not in card[:600]


def test_a_demand_posted_under_review_says_so_once(client, auth, world, db, next_monday):
    set_area_review(world["areas"]["town_a"], True, user=world["users"]["coord_a"])
    db.session.commit()
    auth.login("worker_a1")
    client.post("/language/en")
    station = world["stations"][world["areas"]["a1"].code]
    response = client.post("/demands/new", data={
        "category": "culture_sports", "location_kind": "station", "station": station.id, "title": "Chess club",
        "date": next_monday.isoformat(), "start": "19:00", "end": "21:00", "priority": "normal"},
        follow_redirects=True)
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "Demand posted" in page
    assert 'id="review-pending"' in page
    assert "before it is dispatched" not in page  # no second notice saying the same


def test_the_coordinators_dashboard_counts_and_links_the_queue(client, auth, world, db, next_monday):
    auth.login("coord_a")
    assert 'id="stat-review"' not in client.get("/dashboard").get_data(as_text=True)  # nothing waits
    set_area_review(world["areas"]["town_a"], True, user=world["users"]["coord_a"])
    _post(world, next_monday)
    _post(world, next_monday, title="Second film")
    db.session.commit()
    page = client.get("/dashboard").get_data(as_text=True)
    assert ('<a class="stat" id="stat-review" href="/demands?review=pending"><span class="num">2</span>'
            in page)
    auth.logout()
    auth.login("coord_b")  # another township's coordinator has nothing to review
    assert 'id="stat-review"' not in client.get("/dashboard").get_data(as_text=True)


def test_a_returned_demand_cancelled_asks_for_no_edit(client, auth, world, db, next_monday):
    set_area_review(world["areas"]["town_a"], True, user=world["users"]["coord_a"])
    demand = _post(world, next_monday)
    return_demand(demand, user=world["users"]["coord_a"], reason="Which film?")
    db.session.commit()
    auth.login("worker_a1")
    client.post("/language/en")
    assert 'id="review-note"' in client.get(f"/demands/{demand.id}").get_data(as_text=True)
    response = client.post(f"/demands/{demand.id}/cancel", data={"reason": "The resident moved away",
                                                                 "version": demand.version})
    assert response.status_code == 302
    page = client.get(f"/demands/{demand.id}").get_data(as_text=True)
    main = page[page.index("<main"):]  # (the unread notice in the header may still quote the return)
    assert 'id="review-note"' not in main and "send it for review again" not in main
    assert 'id="review-state"' not in main
