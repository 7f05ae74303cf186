"""Use cases: good input is saved, bad input names the field and saves nothing."""

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from matcher.demands import cancel_demand, create_demand
from matcher.errors import Conflict, ValidationError
from matcher.models import Demand, DemandOccurrence, DemandStatus, Resident, Volunteer
from matcher.residents import create_resident
from matcher.volunteers import create_volunteer


def _demand_data(world, day, **overrides):
    data = {"category": "culture_sports", "location_kind": "station", "station": world["stations"]["C1"].id,
            "date": day.isoformat(), "start": "19:00", "end": "21:00", "priority": "normal"}
    data.update(overrides)
    return data


def test_single_demand_gets_one_occurrence_with_category_defaults(world, db, next_monday):
    demand = create_demand(_demand_data(world, next_monday), community=world["areas"]["a1"], user=None)
    assert len(demand.occurrences) == 1
    assert (demand.people, demand.min_people) == (4, 2)
    assert demand.occurrences[0].ends_at - demand.occurrences[0].starts_at == timedelta(hours=2)


def test_weekly_recurrence_expands_into_dated_occurrences(world, db, next_monday):
    until = next_monday + timedelta(days=13)
    demand = create_demand(_demand_data(world, next_monday, recurring="1", weekdays=["1", "4"],
                                        repeat_until=until.isoformat()),
                           community=world["areas"]["a1"], user=None)
    days = [o.starts_at.date() for o in demand.occurrences]
    assert days == [next_monday + timedelta(days=d) for d in (1, 4, 8, 11)]


def test_health_category_takes_skills_any(world, db, next_monday):
    demand = create_demand(_demand_data(world, next_monday, category="health"),
                           community=world["areas"]["a1"], user=None)
    assert {s.code for s in demand.skills_any} == {"medical", "first_aid"} and demand.skills == []


BAD_DEMANDS = [
    ({"end": "18:00"}, "end"),
    ({"people": "1", "min_people": "3"}, "people"),
    ({"location_kind": "point", "lat": "39.9", "lon": "116.4"}, "lat"),
    ({"location_kind": "point", "lat": "95", "lon": "107.7"}, "lat"),
    ({"category": "no_such_category"}, "category"),
    ({"skills": "elder_care,levitation"}, "skills"),
    ({"recurring": "1", "weekdays": []}, "weekdays"),
    ({"recurring": "1", "weekdays": ["9"]}, "weekdays"),
    ({"date": "2026-13-40"}, "date"),
    ({"start": "25:00"}, "start"),
    ({"priority": "whenever"}, "priority"),
    ({"location_kind": "home"}, "location_kind"),
    ({"people": "zero"}, "people"),
    ({"resident": "999999", "location_kind": "station"}, "resident"),
    ({"station": "999999"}, "station"),
]


@pytest.mark.parametrize("station", ["C2", "C3"])
def test_another_communitys_station_is_refused(world, db, next_monday, station):
    with pytest.raises(ValidationError) as info:
        create_demand(_demand_data(world, next_monday, station=world["stations"][station].id),
                      community=world["areas"]["a1"], user=None)
    assert "station" in info.value.errors


@pytest.mark.parametrize(("overrides", "field"), BAD_DEMANDS)
def test_bad_demand_names_the_field_and_saves_nothing(world, db, next_monday, overrides, field):
    before = (db.session.scalar(select(func.count(Demand.id))), db.session.scalar(select(func.count(DemandOccurrence.id))))
    with pytest.raises(ValidationError) as info:
        create_demand(_demand_data(world, next_monday, **overrides), community=world["areas"]["a1"], user=None)
    assert field in info.value.errors
    db.session.rollback()
    after = (db.session.scalar(select(func.count(Demand.id))), db.session.scalar(select(func.count(DemandOccurrence.id))))
    assert after == before


def test_resident_of_another_community_cannot_be_attached(world, db, next_monday):
    with pytest.raises(ValidationError) as info:
        create_demand(_demand_data(world, next_monday, resident=world["residents"]["b1"].id),
                      community=world["areas"]["a1"], user=None)
    assert "resident" in info.value.errors


def test_cancel_with_stale_version_is_a_conflict(world, db):
    demand = world["demands"]["a1"]
    with pytest.raises(Conflict):
        cancel_demand(demand, user=world["users"]["worker_a1"], version=demand.version + 5)
    cancel_demand(demand, user=world["users"]["worker_a1"], version=demand.version)
    assert demand.status == DemandStatus.CANCELLED
    assert all(o.status == DemandStatus.CANCELLED for o in demand.occurrences)


@pytest.mark.parametrize(("overrides", "field"), [
    ({"phone": "12345"}, "phone"),
    ({"phone": "1381234567x"}, "phone"),
    ({"name": ""}, "name"),
    ({"consent": ""}, "consent"),
    ({"lat": "31.2", "lon": "121.5"}, "lat"),
    ({"lat": "north"}, "lat"),
])
def test_bad_resident_names_the_field(world, db, overrides, field):
    data = {"name": "孙阿姨", "phone": "13600003333", "address": "桂花社区5栋", "lat": "29.345",
            "lon": "107.705", "consent": "1", **overrides}
    before = db.session.scalar(select(func.count(Resident.id)))
    with pytest.raises(ValidationError) as info:
        create_resident(data, community=world["areas"]["a1"], user=None)
    assert field in info.value.errors
    db.session.rollback()
    assert db.session.scalar(select(func.count(Resident.id))) == before


def test_resident_phone_is_stored_normalized(world, db):
    resident = create_resident({"name": "孙阿姨", "phone": "136 0000 3333", "address": "x", "lat": "29.345",
                                "lon": "107.705", "consent": "1"}, community=world["areas"]["a1"], user=None)
    assert resident.phone == "+8613600003333"


@pytest.mark.parametrize(("overrides", "field"), [
    ({"phone": "13812345678"}, "phone"),  # already registered by the world's volunteer
    ({"phone": "not a phone"}, "phone"),
    ({"skills": "elder_care,teleportation"}, "skills"),
    ({"availability": "8 09:00-10:00"}, "availability"),
    ({"availability": "1 12:00-09:00"}, "availability"),
    ({"preferred_minutes_per_week": "600", "max_minutes_per_week": "300"}, "preferred_minutes_per_week"),
    ({"max_travel_km": "-1"}, "max_travel_km"),
    ({"home_area": "999999"}, "home_area"),
])
def test_bad_volunteer_names_the_field(world, db, overrides, field):
    data = {"real_name": "周敏", "phone": "13500004444", "home_area": world["areas"]["a1"].id, "lat": "29.345",
            "lon": "107.705", **overrides}
    before = db.session.scalar(select(func.count(Volunteer.id)))
    with pytest.raises(ValidationError) as info:
        create_volunteer(data, user=None)
    assert field in info.value.errors
    db.session.rollback()
    assert db.session.scalar(select(func.count(Volunteer.id))) == before


def test_demand_form_shows_field_errors_and_saves_nothing(client, auth, world, db, next_monday):
    auth.login("worker_a1")
    before = db.session.scalar(select(func.count(Demand.id)))
    response = client.post("/demands/new", data=_demand_data(world, next_monday, end="18:00"))
    assert response.status_code == 400
    assert 'id="err-end"' in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count(Demand.id))) == before


def test_demand_form_posts_a_weekly_demand(client, auth, world, db, next_monday):
    auth.login("worker_a1")
    data = _demand_data(world, next_monday, recurring="1", weekdays=["0", "2"])
    response = client.post("/demands/new", data=data)
    assert response.status_code == 302
    demand = db.session.scalars(select(Demand).order_by(Demand.id.desc())).first()
    assert demand.weekday_list == [0, 2] and demand.community_id == world["areas"]["a1"].id
