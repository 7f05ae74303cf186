"""Who may open what: a (URL × role) table, and cross-scope loads by changing the id."""

import pytest

from matcher.models import Demand, Resident, Volunteer

# Pages that need a login: anonymous users are sent to the login page.
PAGES = ["/dashboard", "/demands", "/volunteers", "/organizations", "/residents", "/demands/new", "/residents/new"]

# Expected status per role for each page (GET).
TABLE = {
    "/dashboard": {"admin": 200, "coord": 200, "worker_a1": 200, "leader_a": 200, "vol_a": 200},
    "/demands": {"admin": 200, "coord": 200, "worker_a1": 200, "leader_a": 200, "vol_a": 200},
    "/volunteers": {"admin": 200, "coord": 200, "worker_a1": 200, "leader_a": 200, "vol_a": 200},
    "/organizations": {"admin": 200, "coord": 200, "worker_a1": 200, "leader_a": 200, "vol_a": 200},
    "/residents": {"admin": 200, "coord": 200, "worker_a1": 200, "leader_a": 403, "vol_a": 403},
    "/demands/new": {"admin": 403, "coord": 403, "worker_a1": 200, "leader_a": 403, "vol_a": 403},
    "/residents/new": {"admin": 403, "coord": 403, "worker_a1": 200, "leader_a": 403, "vol_a": 403},
}


@pytest.mark.parametrize("url", PAGES)
def test_anonymous_is_sent_to_login(client, world, url):
    response = client.get(url)
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


@pytest.mark.parametrize(("url", "username", "status"),
                         [(u, r, s) for u, row in TABLE.items() for r, s in row.items()])
def test_role_table(client, auth, world, url, username, status):
    auth.login(username)
    assert client.get(url).status_code == status


def _ids(world, key):
    return {
        "demand": world["demands"][key].id,
        "resident": world["residents"][key].id,
    }


@pytest.mark.parametrize("kind", ["demand", "resident"])
def test_worker_cannot_load_another_communitys_object_by_id(client, auth, world, kind):
    auth.login("worker_a1")
    own, other = _ids(world, "a1")[kind], _ids(world, "b1")[kind]
    assert client.get(f"/{kind}s/{own}").status_code == 200
    assert client.get(f"/{kind}s/{other}").status_code == 404


def test_worker_of_neighbour_community_in_same_township_cannot_see_resident(client, auth, world):
    auth.login("worker_a2")
    assert client.get(f"/residents/{world['residents']['a1'].id}").status_code == 404
    assert world["residents"]["a1"].name not in client.get("/residents").get_data(as_text=True)


def test_township_coordinator_sees_own_township_only(client, auth, world):
    auth.login("coord_a")
    assert client.get(f"/demands/{world['demands']['a1'].id}").status_code == 200
    assert client.get(f"/demands/{world['demands']['b1'].id}").status_code == 404
    listing = client.get("/demands").get_data(as_text=True)
    assert world["demands"]["a1"].title in listing


def test_district_coordinator_sees_both_townships(client, auth, world):
    auth.login("coord")
    for key in ("a1", "b1"):
        assert client.get(f"/demands/{world['demands'][key].id}").status_code == 200
        assert client.get(f"/residents/{world['residents'][key].id}").status_code == 200


def test_volunteer_sees_only_own_profile(client, auth, world):
    auth.login("vol_a")
    assert client.get(f"/volunteers/{world['volunteers']['a'].id}").status_code == 200
    assert client.get(f"/volunteers/{world['volunteers']['b'].id}").status_code == 404
    assert client.get(f"/residents/{world['residents']['a1'].id}").status_code == 404


def test_volunteer_sees_own_phone_but_coordinator_sees_it_masked(client, auth, world):
    auth.login("vol_a")
    assert "13812345678" in client.get(f"/volunteers/{world['volunteers']['a'].id}").get_data(as_text=True)
    auth.logout()
    auth.login("coord")
    page = client.get(f"/volunteers/{world['volunteers']['a'].id}").get_data(as_text=True)
    assert "13812345678" not in page and "138****5678" in page


def test_org_leader_sees_own_members_only(client, auth, world):
    auth.login("leader_a")
    assert client.get(f"/volunteers/{world['volunteers']['a'].id}").status_code == 200
    assert client.get(f"/volunteers/{world['volunteers']['b'].id}").status_code == 404
    assert client.get(f"/organizations/{world['orgs']['b'].id}").status_code == 404


def test_worker_cannot_cancel_another_communitys_demand(client, auth, world, db):
    auth.login("worker_a1")
    other = world["demands"]["b1"]
    assert client.post(f"/demands/{other.id}/cancel", data={"version": other.version}).status_code == 404
    db.session.expire_all()
    assert db.session.get(Demand, other.id).status.value == "open"


def test_coordinator_may_view_but_not_cancel_a_demand(client, auth, world, db):
    auth.login("coord_a")
    demand = world["demands"]["a1"]
    assert client.post(f"/demands/{demand.id}/cancel", data={"version": demand.version}).status_code == 403


def test_non_numeric_and_unknown_ids_are_404(client, auth, world):
    auth.login("admin")
    assert client.get("/demands/999999").status_code == 404
    assert client.get("/residents/abc").status_code == 404


def test_resident_phone_is_masked_until_revealed_and_the_reveal_is_audited(client, auth, world, db):
    from sqlalchemy import select

    from matcher.models import AuditEntry

    resident = world["residents"]["a1"]
    auth.login("worker_a1")
    page = client.get(f"/residents/{resident.id}").get_data(as_text=True)
    assert "13700001111" not in page and "137****1111" in page
    page = client.post(f"/residents/{resident.id}/reveal").get_data(as_text=True)
    assert "13700001111" in page
    assert "13700001111" not in client.get(f"/residents/{resident.id}?reveal=1").get_data(as_text=True)
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "reveal_phone")) is not None
    assert client.get(f"/residents/{resident.id}").headers["Cache-Control"] == "no-store"


def test_coordinator_cannot_reveal_a_residents_phone(client, auth, world):
    auth.login("coord")
    response = client.post(f"/residents/{world['residents']['a1'].id}/reveal")
    assert response.status_code == 403 and "13700001111" not in response.get_data(as_text=True)


def test_scope_helper_filters_every_model(world, db):
    from sqlalchemy import select

    from matcher.access import visible

    users = world["users"]
    def ids(model, user):
        return set(db.session.scalars(visible(select(model.id), model, user)))
    assert ids(Demand, users["worker_a1"]) == {world["demands"]["a1"].id}
    assert ids(Resident, users["worker_b1"]) == {world["residents"]["b1"].id}
    assert ids(Volunteer, users["vol_b"]) == {world["volunteers"]["b"].id}
    assert ids(Demand, users["admin"]) == {world["demands"]["a1"].id, world["demands"]["b1"].id}
    assert ids(Resident, users["leader_a"]) == set()


def test_lists_page_through_results(client, auth, world, db, app):
    from matcher.volunteers import create_volunteer

    for i in range(app.config["PAGE_SIZE"] + 3):
        create_volunteer({"real_name": f"测试{i:02d}", "phone": f"1590000{i:04d}", "home_area": world["areas"]["a1"].id,
                          "lat": "29.345", "lon": "107.705"}, user=None)
    db.session.commit()
    auth.login("coord")
    first = client.get("/volunteers")
    assert first.status_code == 200 and "page=2" in first.get_data(as_text=True)
    second = client.get("/volunteers?page=2")
    assert second.status_code == 200 and "page=1" in second.get_data(as_text=True)
    assert client.get("/volunteers?page=999").status_code == 200


def offer_to_a(world, db, demand, week_start):
    """Volunteer a's offer on the demand's first occurrence, in town_a's published week."""
    from matcher.models import Assignment, AssignmentStatus, Schedule, ScheduleStatus

    schedule = Schedule(area=world["areas"]["town_a"], week_start=week_start, status=ScheduleStatus.PUBLISHED)
    db.session.add(schedule)
    db.session.flush()
    offer = Assignment(schedule_id=schedule.id, occurrence_id=demand.occurrences[0].id,
                       volunteer_id=world["volunteers"]["a"].id, status=AssignmentStatus.OFFERED)
    db.session.add(offer)
    db.session.commit()
    return offer


def test_an_offer_shows_the_demand_but_not_the_resident(client, auth, world, db, next_monday):
    from matcher.models import AssignmentStatus

    demand = world["demands"]["a1"]
    demand.notes = "张大爷耳背，请大声说话"
    offer = offer_to_a(world, db, demand, next_monday)
    auth.login("vol_a")
    page = client.get(f"/demands/{demand.id}").get_data(as_text=True)
    assert demand.title in page and "张大爷" not in page
    offer.status = AssignmentStatus.ACCEPTED
    db.session.commit()
    assert "张大爷" in client.get(f"/demands/{demand.id}").get_data(as_text=True)


def test_a_volunteer_sees_a_point_demands_exact_address_only_while_holding_it(client, auth, world, db, next_monday):
    from matcher.demands import create_demand
    from matcher.models import AssignmentStatus

    demand = create_demand({"category": "culture_sports", "location_kind": "point", "lat": "29.3452",
                            "lon": "107.7049", "address": "桂花路88号西门口", "date": next_monday.isoformat(),
                            "start": "15:00", "end": "16:00"}, community=world["areas"]["a1"],
                           user=world["users"]["worker_a1"])
    offer = offer_to_a(world, db, demand, next_monday)
    auth.login("vol_a")
    page = client.get(f"/demands/{demand.id}").get_data(as_text=True)
    assert demand.title in page and "桂花路88号" not in page and "桂花社区" in page
    offer.status = AssignmentStatus.ACCEPTED
    db.session.commit()
    assert "桂花路88号西门口" in client.get(f"/demands/{demand.id}").get_data(as_text=True)
    auth.logout()
    auth.login("worker_a1")  # the demand's own worker sees it as always
    assert "桂花路88号西门口" in client.get(f"/demands/{demand.id}").get_data(as_text=True)


def test_a_coordinators_reach_is_their_own_areas_pool(world, db):
    from sqlalchemy import select

    from matcher.access import area_pool, user_pool

    users, vols = world["users"], world["volunteers"]

    def reach(user, area="district"):
        return set(db.session.scalars(select(Volunteer.id).where(user_pool(user), area_pool(world["areas"][area]))))

    assert reach(users["coord_a"]) == {vols["a"].id}  # even on the district's schedule
    assert reach(users["coord_b"]) == {vols["b"].id}
    assert reach(users["coord"]) == reach(users["admin"]) == {vols["a"].id, vols["b"].id}
    assert reach(users["coord"], "town_a") == {vols["a"].id}
    for name in ("worker_a1", "leader_a", "vol_a"):
        assert reach(users[name]) == set()


def test_a_full_phone_is_shown_in_national_format_as_a_tap_to_call_link(client, auth, world):
    resident = world["residents"]["a1"]
    auth.login("worker_a1")
    page = client.post(f"/residents/{resident.id}/reveal").get_data(as_text=True)
    assert '<a href="tel:+8613700001111"' in page and ">137 0000 1111</a>" in page
    assert "+8613700001111<" not in page
    auth.logout()
    auth.login("vol_a")
    page = client.get(f"/volunteers/{world['volunteers']['a'].id}").get_data(as_text=True)
    assert '<a href="tel:+8613812345678"' in page and ">138 1234 5678</a>" in page
