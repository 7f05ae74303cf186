"""Whom a schedule draws on: a street's (township's) schedule only its pool, whatever page or path.

The pool of a street: the volunteers who live in it and the approved members of the organizations
that serve it; the district's: the whole district. A street coordinator never reaches beyond their
street's pool (candidate list, name search, assigning by id, moving, the solver's instance and its
download).
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from matcher import problem
from matcher.access import area_pool
from matcher.errors import ValidationError
from matcher.models import (
    Assignment,
    AssignmentStatus,
    AuditEntry,
    Membership,
    MemberStatus,
    Notification,
    Organization,
    OrgType,
    RunStatus,
    SolveRun,
    Volunteer,
)
from matcher.schedules import assign_by_hand, get_schedule, move_assignment
from tests.web.test_community import field_message


@pytest.fixture
def street(world, db, next_monday):
    """Town a's schedule of next week; volunteer b (town b) could travel to town a."""
    world["volunteers"]["b"].max_travel_km = 30.0
    schedule = get_schedule(world["areas"]["town_a"], next_monday)
    db.session.commit()
    occ = world["demands"]["a1"].occurrences[0]
    return {"schedule": schedule.id, "occ": occ.id,
            "url": f"/schedules/{schedule.id}/occurrences/{occ.id}"}


def _login(client, auth, username):
    assert auth.login(username).status_code == 302
    client.post("/language/en", data={"next": "/dashboard"})


def _candidates(page: str) -> str:
    return page.split('id="candidates"')[1].split("</table>")[0]


@pytest.mark.parametrize("username", ["coord_a", "coord"])
def test_a_street_schedule_lists_and_finds_only_its_pool(client, auth, world, street, username):
    _login(client, auth, username)
    listed = client.get(street["url"])
    assert listed.status_code == 200
    assert "李秀英" in _candidates(listed.get_data(as_text=True))
    assert 'id="pool-note"' in listed.get_data(as_text=True)
    found = client.get(street["url"], query_string={"q": "王强"})
    assert found.status_code == 200 and "王强" not in _candidates(found.get_data(as_text=True))
    assert "王强" not in _candidates(client.get(street["url"], query_string={"q": "王"}).get_data(as_text=True))


def test_assigning_an_outside_volunteer_by_id_is_refused_as_if_unknown(client, auth, world, db, street):
    _login(client, auth, "coord_a")
    outside = client.post(street["url"], data={"volunteer": world["volunteers"]["b"].id,
                                               "override_reason": "the family asked"})
    assert outside.status_code == 400
    unknown = client.post(street["url"], data={"volunteer": 987654, "override_reason": "the family asked"})
    assert unknown.status_code == 400
    assert field_message(outside, "volunteer") == field_message(unknown, "volunteer")
    assert db.session.scalar(select(func.count(Assignment.id))) == 0
    assert db.session.scalar(select(func.count(Notification.id))) == 0
    # The pool's own volunteer is assigned as before.
    assert client.post(street["url"], data={"volunteer": world["volunteers"]["a"].id}).status_code == 302


def test_members_of_an_organization_serving_the_street_are_in_its_pool(client, auth, world, db, street):
    vol_b = world["volunteers"]["b"]
    db.session.add(Membership(organization=world["orgs"]["a"], volunteer=vol_b, status=MemberStatus.APPROVED))
    db.session.commit()
    _login(client, auth, "coord_a")
    found = client.get(street["url"], query_string={"q": "王强"})
    assert "王强" in _candidates(found.get_data(as_text=True))
    assert client.post(street["url"], data={"volunteer": vol_b.id,
                                            "override_reason": "member of the street's team"}).status_code == 302


def test_an_organization_serving_the_whole_district_brings_its_members_to_every_street(world, db):
    vol_b = world["volunteers"]["b"]
    org = Organization(name="青溪区应急队", type=OrgType.LIFE_SERVICES, home_area=world["areas"]["district"],
                       areas=[world["areas"]["district"]])
    db.session.add(org)
    db.session.flush()

    def pool(town):
        return set(db.session.scalars(select(Volunteer.id).where(area_pool(world["areas"][town]))))

    assert vol_b.id not in pool("town_a")
    db.session.add(Membership(organization=org, volunteer=vol_b, status=MemberStatus.APPLIED))
    db.session.flush()
    assert vol_b.id not in pool("town_a")  # an application is not a membership
    db.session.scalar(select(Membership).where(Membership.organization_id == org.id)).status = MemberStatus.APPROVED
    db.session.flush()
    assert vol_b.id in pool("town_a") and world["volunteers"]["a"].id in pool("town_a")
    assert pool("town_b") == {vol_b.id}


def test_a_street_schedules_instance_holds_only_its_pool(world, db, street, next_monday):
    from datetime import timedelta

    from matcher.models import Schedule

    instance = problem.build_instance(db.session.get(Schedule, street["schedule"]))
    assert {v["id"] for v in instance["volunteers"]} == {f"v{world['volunteers']['a'].id}"}
    district = get_schedule(world["areas"]["district"], next_monday + timedelta(days=7))
    ids = {v["id"] for v in problem.build_instance(district)["volunteers"]}
    assert ids == {f"v{v.id}" for v in world["volunteers"].values()}


def test_hand_edits_refuse_an_outside_volunteer(world, db, street):
    from matcher.models import Schedule

    schedule = db.session.get(Schedule, street["schedule"])
    monday, thursday = world["demands"]["a1"].occurrences[:2]
    with pytest.raises(ValidationError) as info:
        assign_by_hand(schedule, monday, world["volunteers"]["b"], user=world["users"]["coord_a"],
                       override_reason="any reason")
    assert "volunteer" in info.value.errors
    # An assignment made before the rule: moving it is refused too.
    old = Assignment(schedule_id=schedule.id, occurrence_id=monday.id, volunteer_id=world["volunteers"]["b"].id,
                     status=AssignmentStatus.PROPOSED)
    db.session.add(old)
    db.session.flush()
    with pytest.raises(ValidationError):
        move_assignment(old, thursday, user=world["users"]["coord_a"], override_reason="any reason")


def _run(db, schedule_id, volunteers) -> SolveRun:
    run = SolveRun(schedule_id=schedule_id, status=RunStatus.DONE, params={"time_limit": 5},
                   instance={"schema": "linli.instance/1", "volunteers": [{"id": f"v{v.id}"} for v in volunteers],
                             "demands": []})
    db.session.add(run)
    db.session.commit()
    return run


def test_a_saved_instance_with_outside_volunteers_is_not_downloaded(client, auth, world, db, street):
    old = _run(db, street["schedule"], [world["volunteers"]["a"], world["volunteers"]["b"]])
    current = _run(db, street["schedule"], [world["volunteers"]["a"]])
    _login(client, auth, "coord_a")
    refused = client.get(f"/runs/{old.id}/instance.json")
    assert refused.status_code == 302 and "/schedules/" in refused.headers["Location"]
    assert db.session.scalar(select(func.count(AuditEntry.id)).where(AuditEntry.action == "export_instance")) == 0
    download = client.get(f"/runs/{current.id}/instance.json")
    assert download.status_code == 200
    assert [v["id"] for v in download.get_json()["volunteers"]] == [f"v{world['volunteers']['a'].id}"]
    assert db.session.scalar(select(func.count(AuditEntry.id)).where(AuditEntry.action == "export_instance")) == 1


def test_the_district_schedule_seen_in_part_keeps_to_the_street_and_its_pool(client, auth, world, db, next_monday):
    """A street's coordinator on the district's schedule: candidates, search, assigning and the map's
    homes stay within the street's pool, as on a street schedule; the district's coordinator sees all."""
    world["volunteers"]["b"].max_travel_km = 40.0
    schedule = get_schedule(world["areas"]["district"], next_monday)
    db.session.commit()
    occ = sorted(world["demands"]["a1"].occurrences, key=lambda o: o.starts_at)[0]
    url = f"/schedules/{schedule.id}/occurrences/{occ.id}"
    _login(client, auth, "coord")
    assert "王强" in _candidates(client.get(url, query_string={"q": "王"}).get_data(as_text=True))
    client.post("/logout")
    _login(client, auth, "coord_a")
    page = client.get(url).get_data(as_text=True)
    assert "李秀英" in _candidates(page) and "王强" not in _candidates(page)
    assert "王强" not in _candidates(client.get(url, query_string={"q": "王"}).get_data(as_text=True))
    outside = client.post(url, data={"volunteer": world["volunteers"]["b"].id, "override_reason": "asked"})
    assert outside.status_code == 400 and db.session.scalar(select(func.count(Assignment.id))) == 0
    # Someone the district put on the street's service: their home is not drawn on the street's map.
    assign_by_hand(schedule, occ, world["volunteers"]["b"], user=None, override_reason="district decision")
    db.session.commit()
    view = client.get(f"/schedules/{schedule.id}").get_data(as_text=True)
    assert view.count('class="map-line"') == 0
    client.post("/logout")
    _login(client, auth, "coord")
    # The district's coordinator sees the homes street by street (the whole district opens as an overview).
    street = client.get(f"/schedules/{schedule.id}?street={world['areas']['town_a'].id}").get_data(as_text=True)
    assert street.count('class="map-line"') == 1


def test_hand_edits_outside_the_street_s_part_are_refused_in_the_domain(world, db, next_monday):
    from matcher.errors import DomainError
    from matcher.schedules import remove_assignment, set_pinned

    schedule = get_schedule(world["areas"]["district"], next_monday)
    b1 = world["demands"]["b1"].occurrences[0]
    world["volunteers"]["a"].max_travel_km = 40.0
    with pytest.raises(DomainError):
        assign_by_hand(schedule, b1, world["volunteers"]["a"], user=world["users"]["coord_a"],
                       override_reason="any reason")
    theirs = assign_by_hand(schedule, b1, world["volunteers"]["a"], user=world["users"]["coord"],
                            override_reason="any reason")
    with pytest.raises(DomainError):
        set_pinned(theirs, False, user=world["users"]["coord_a"])
    with pytest.raises(DomainError):
        remove_assignment(theirs, user=world["users"]["coord_a"])
    assert theirs.pinned and theirs.status == AssignmentStatus.PROPOSED
