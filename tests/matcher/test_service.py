"""The volunteer's operations: answering offers, checking in and out, the profile, the calendar token."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import delete, select

from matcher import assignments, volunteers
from matcher.db import db as _db
from matcher.demands import create_demand
from matcher.errors import AccessDenied, Conflict, DomainError, ValidationError
from matcher.models import (
    Assignment,
    AssignmentStatus,
    AuditEntry,
    Demand,
    DemandOccurrence,
    Notification,
    Schedule,
    ScheduleStatus,
    utcnow,
)

CODE = "123456"


# --- helpers (also used by the concurrency and web tests) --------------------------------------------


def publish(world, week_start: date, township: str = "town_a") -> Schedule:
    """A published schedule for a township's week; every occurrence gets the check-in code CODE.

    The helpers commit, as the setup of a real request would have."""
    schedule = Schedule(area=world["areas"][township], week_start=week_start, status=ScheduleStatus.PUBLISHED,
                        published_at=utcnow())
    _db.session.add(schedule)
    for occ in _db.session.scalars(select(DemandOccurrence)):
        occ.checkin_code = CODE
    _db.session.commit()
    return schedule


def add_demand(world, day: date, start: str, end: str, *, community: str = "a1", people: int = 1,
               title: str = "") -> DemandOccurrence:
    """A single demand at the community's station; returns its one occurrence (code CODE)."""
    worker = {"a1": "worker_a1", "a2": "worker_a2", "b1": "worker_b1"}[community]
    station = world["stations"][world["areas"][community].code]
    demand = create_demand({"category": "culture_sports", "location_kind": "station", "station": station.id,
                            "date": day.isoformat(), "start": start, "end": end, "people": people,
                            "min_people": 1, "skills": "", "title": title},
                           community=world["areas"][community], user=world["users"][worker])
    occ = demand.occurrences[0]
    occ.checkin_code = CODE
    _db.session.commit()
    return occ


def first_occurrence(demand: Demand) -> DemandOccurrence:
    return demand.occurrences[0]


def offer(schedule: Schedule, occ: DemandOccurrence, volunteer, status=AssignmentStatus.OFFERED) -> Assignment:
    a = Assignment(schedule_id=schedule.id, occurrence_id=occ.id, volunteer_id=volunteer.id, status=status,
                   offered_at=utcnow(), reasons=["skills_match", "nearest_free"], distance_km=0.4)
    _db.session.add(a)
    _db.session.commit()
    return a


# --- fixtures ------------------------------------------------------------------------------------------


@pytest.fixture
def week(world, db, next_monday):
    schedule = publish(world, next_monday)
    occ = first_occurrence(world["demands"]["a1"])  # Monday 09:00–10:30 at the resident's home in C1
    return {"schedule": schedule, "occ": occ, "monday": next_monday}


# --- respond_to_offer ----------------------------------------------------------------------------------


def test_accept_an_offer(world, db, week):
    a = offer(week["schedule"], week["occ"], world["volunteers"]["a"])
    assignments.respond_to_offer(a, user=world["users"]["vol_a"], accept=True)
    db.session.commit()
    assert a.status == AssignmentStatus.ACCEPTED and a.responded_at is not None
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "accept", AuditEntry.object_id == a.id))


def test_only_the_own_volunteer_may_answer(world, db, week):
    a = offer(week["schedule"], week["occ"], world["volunteers"]["a"])
    for other in ("vol_b", "coord_a"):
        with pytest.raises(AccessDenied):
            assignments.respond_to_offer(a, user=world["users"][other], accept=True)
    assert a.status == AssignmentStatus.OFFERED


def test_only_an_open_offer_can_be_answered(world, db, week):
    a = offer(week["schedule"], week["occ"], world["volunteers"]["a"], status=AssignmentStatus.DECLINED)
    with pytest.raises(Conflict):
        assignments.respond_to_offer(a, user=world["users"]["vol_a"], accept=True)


def test_a_withdrawn_offer_cannot_be_answered(world, db, week):
    a = offer(week["schedule"], week["occ"], world["volunteers"]["a"])
    db.session.execute(delete(Assignment).where(Assignment.id == a.id))  # e.g. a repair run removed it
    with pytest.raises(Conflict, match="withdrawn"):
        assignments.respond_to_offer(a, user=world["users"]["vol_a"], accept=True)


def test_accept_refused_when_it_overlaps_an_accepted_service(world, db, week):
    vol = world["volunteers"]["a"]
    offer(week["schedule"], week["occ"], vol, status=AssignmentStatus.ACCEPTED)
    overlapping = add_demand(world, week["monday"], "10:00", "11:00")
    a = offer(week["schedule"], overlapping, vol)
    with pytest.raises(Conflict, match="overlaps"):
        assignments.respond_to_offer(a, user=world["users"]["vol_a"], accept=True)
    db.session.rollback()
    assert db.session.get(Assignment, a.id).status == AssignmentStatus.OFFERED


def test_accept_counts_travel_time_between_places(world, db, week):
    vol = world["volunteers"]["a"]
    offer(week["schedule"], week["occ"], vol, status=AssignmentStatus.ACCEPTED)  # ends 10:30 in C1
    near = add_demand(world, week["monday"], "10:35", "11:30", community="a1")  # same community: minutes away
    far = add_demand(world, week["monday"], "10:40", "11:30", community="b1")  # ~12 km: about 37 min by road
    a_far = offer(week["schedule"], far, vol)
    with pytest.raises(Conflict):
        assignments.respond_to_offer(a_far, user=world["users"]["vol_a"], accept=True)
    db.session.rollback()
    a_near = offer(week["schedule"], db.session.get(DemandOccurrence, near.id), vol)
    assignments.respond_to_offer(a_near, user=world["users"]["vol_a"], accept=True)
    assert a_near.status == AssignmentStatus.ACCEPTED


def test_accept_refused_when_the_occurrence_is_full(world, db, week):
    occ = add_demand(world, week["monday"], "14:00", "15:00", people=1)
    offer(week["schedule"], occ, world["volunteers"]["b"], status=AssignmentStatus.ACCEPTED)
    a = offer(week["schedule"], occ, world["volunteers"]["a"])
    with pytest.raises(Conflict, match="all the volunteers"):
        assignments.respond_to_offer(a, user=world["users"]["vol_a"], accept=True)


def test_decline_needs_a_reason_and_notifies_the_coordinators(world, db, week):
    a = offer(week["schedule"], week["occ"], world["volunteers"]["a"])
    with pytest.raises(ValidationError) as err:
        assignments.respond_to_offer(a, user=world["users"]["vol_a"], accept=False, reason="  ")
    assert "reason" in err.value.errors
    assert a.status == AssignmentStatus.OFFERED
    assignments.respond_to_offer(a, user=world["users"]["vol_a"], accept=False, reason="Away visiting family")
    db.session.commit()
    assert a.status == AssignmentStatus.DECLINED and a.decline_reason == "Away visiting family"
    notified = {n.user_id for n in db.session.scalars(select(Notification).where(Notification.kind == "offer_declined"))}
    users = world["users"]
    # The district and township A coordinators contain community A1; township B's does not.
    assert notified == {users["coord"].id, users["coord_a"].id}


def test_decline_reopens_a_scheduled_occurrence_left_short(world, db, week):
    occ = week["occ"]
    occ.status = "scheduled"
    a = offer(week["schedule"], occ, world["volunteers"]["a"])
    assignments.respond_to_offer(a, user=world["users"]["vol_a"], accept=False, reason="ill")
    assert occ.status == "open"


# --- check in and out -------------------------------------------------------------------------------------


def at(day: date, hhmm: str) -> datetime:
    h, m = map(int, hhmm.split(":"))
    return datetime.combine(day, time(h, m))


@pytest.fixture
def accepted(world, db, week):
    return offer(week["schedule"], week["occ"], world["volunteers"]["a"], status=AssignmentStatus.ACCEPTED)


def test_check_in_needs_the_right_code(world, db, week, accepted):
    with pytest.raises(ValidationError) as err:
        assignments.check_in(week["occ"], "000000", user=world["users"]["vol_a"], now=at(week["monday"], "09:00"))
    assert "code" in err.value.errors
    assert accepted.status == AssignmentStatus.ACCEPTED


def test_check_in_not_too_early_nor_after_the_end(world, db, week, accepted):
    user = world["users"]["vol_a"]
    with pytest.raises(DomainError, match="opens"):
        assignments.check_in(week["occ"], CODE, user=user, now=at(week["monday"], "07:59"))
    with pytest.raises(DomainError, match="ended"):
        assignments.check_in(week["occ"], CODE, user=user, now=at(week["monday"], "10:31"))
    assignments.check_in(week["occ"], CODE, user=user, now=at(week["monday"], "08:00"))
    assert accepted.status == AssignmentStatus.CHECKED_IN


def test_check_in_needs_an_accepted_assignment(world, db, week, accepted):
    with pytest.raises(DomainError, match="no accepted"):
        assignments.check_in(week["occ"], CODE, user=world["users"]["vol_b"], now=at(week["monday"], "09:00"))


def test_check_out_credits_rounded_hours(world, db, week, accepted):
    user, occ, vol = world["users"]["vol_a"], week["occ"], world["volunteers"]["a"]
    start = at(week["monday"], "09:00")
    total = Decimal("0")
    for minutes, hours in [(14, "0"), (15, "0.5"), (44, "0.5"), (45, "1.0"), (90, "1.5")]:
        accepted.status, accepted.checked_in_at = AssignmentStatus.ACCEPTED, None
        assignments.check_in(occ, CODE, user=user, now=start)
        assignments.check_out(occ, CODE, user=user, now=start + timedelta(minutes=minutes))
        db.session.commit()
        total += Decimal(hours)
        assert accepted.status == AssignmentStatus.COMPLETED
        assert (minutes, accepted.credited_hours) == (minutes, Decimal(hours))
        assert accepted.checked_out_at == start + timedelta(minutes=minutes)
        assert db.session.get(type(vol), vol.id).total_hours == total
    actions = set(db.session.scalars(select(AuditEntry.action).where(AuditEntry.object_id == accepted.id)))
    assert {"check_in", "check_out"} <= actions


def test_total_hours_add_up_and_rounding_is_configurable(world, db, week, accepted, app):
    user, occ, vol = world["users"]["vol_a"], week["occ"], world["volunteers"]["a"]
    vol.total_hours = Decimal("99.5")
    app.config["HOURS_STEP_MINUTES"] = 60
    start = at(week["monday"], "09:00")
    assignments.check_in(occ, CODE, user=user, now=start)
    assignments.check_out(occ, CODE, user=user, now=start + timedelta(minutes=80))  # nearest whole hour: 1
    db.session.commit()
    assert accepted.credited_hours == Decimal("1.0")
    assert vol.total_hours == Decimal("100.5")


def test_check_out_needs_check_in_and_the_code(world, db, week, accepted):
    user, occ = world["users"]["vol_a"], week["occ"]
    with pytest.raises(Conflict, match="Check in first"):
        assignments.check_out(occ, CODE, user=user, now=at(week["monday"], "10:00"))
    assignments.check_in(occ, CODE, user=user, now=at(week["monday"], "09:00"))
    with pytest.raises(ValidationError):
        assignments.check_out(occ, "999999", user=user, now=at(week["monday"], "10:00"))
    assert accepted.status == AssignmentStatus.CHECKED_IN
    assignments.check_out(occ, CODE, user=user, now=at(week["monday"], "10:00"))
    with pytest.raises(Conflict, match="already checked out"):
        assignments.check_out(occ, CODE, user=user, now=at(week["monday"], "10:05"))


# --- profile and calendar token ------------------------------------------------------------------------------

GOOD_PROFILE = {"availability": "0 08:00-12:00; 4 14:00-18:00", "exceptions": "away 2030-01-07 08:00-12:00 trip",
                "max_minutes_per_week": "300", "preferred_minutes_per_week": "120", "max_travel_km": "6",
                "skills": "elder_care,lecturing", "lat": "29.347", "lon": "107.707", "address": "桂花社区5栋"}


def test_update_profile(world, db):
    vol = world["volunteers"]["a"]
    volunteers.update_profile(vol, GOOD_PROFILE, user=world["users"]["vol_a"])
    db.session.commit()
    assert [(s.weekday, s.start_minute, s.end_minute) for s in vol.slots] == [(0, 480, 720), (4, 840, 1080)]
    assert [(e.kind.value, e.starts_at, e.ends_at, e.note) for e in vol.exceptions] == [
        ("away", datetime(2030, 1, 7, 8), datetime(2030, 1, 7, 12), "trip")]
    assert (vol.max_minutes_per_week, vol.preferred_minutes_per_week, vol.max_travel_km) == (300, 120, 6.0)
    assert [s.code for s in vol.skills] == ["elder_care", "lecturing"]
    assert (vol.lat, vol.lon, vol.address) == (29.347, 107.707, "桂花社区5栋")
    values = volunteers.profile_values(vol)
    assert values["availability"] == "0 08:00-12:00; 4 14:00-18:00"
    assert values["exceptions"] == "away 2030-01-07 08:00-12:00 trip"


BAD_FIELDS = [
    ("availability", "monday 9-12"),
    ("availability", "0 12:00-09:00"),
    ("exceptions", "holiday 2030-01-07"),
    ("exceptions", "away 2030-13-07"),
    ("max_minutes_per_week", "lots"),
    ("max_minutes_per_week", "-5"),
    ("preferred_minutes_per_week", "400"),  # above the maximum of 300
    ("max_travel_km", "500"),
    ("skills", "juggling"),
    ("lat", "39.9"),  # Beijing: outside the district
    ("lon", ""),
]


def test_update_profile_bad_input_changes_nothing(world, db):
    vol = world["volunteers"]["a"]
    before = volunteers.profile_values(vol)
    for field, value in BAD_FIELDS:
        data = dict(GOOD_PROFILE, **{field: value})
        with pytest.raises(ValidationError) as err:
            volunteers.update_profile(vol, data, user=world["users"]["vol_a"])
        assert field in err.value.errors, (field, value, err.value.errors)
        db.session.rollback()
        assert volunteers.profile_values(db.session.get(type(vol), vol.id)) == before


def test_update_profile_only_ones_own(world, db):
    with pytest.raises(AccessDenied):
        volunteers.update_profile(world["volunteers"]["a"], GOOD_PROFILE, user=world["users"]["vol_b"])


def test_regenerate_calendar_token(world, db):
    vol = world["volunteers"]["a"]
    old = vol.calendar_token
    new = volunteers.regenerate_calendar_token(vol, user=world["users"]["vol_a"])
    assert new != old and vol.calendar_token == new and len(new) >= 24
    with pytest.raises(AccessDenied):
        volunteers.regenerate_calendar_token(vol, user=world["users"]["vol_b"])


def test_hours_to_next_star():
    assert volunteers.hours_to_next_star(Decimal("99.5"), [100, 300]) == Decimal("0.5")
    assert volunteers.hours_to_next_star(Decimal("100"), [100, 300]) == Decimal("200.0")
    assert volunteers.hours_to_next_star(400, [100, 300]) is None


def test_a_forgotten_check_out_credits_no_more_than_the_service_plus_grace(world, db, week, accepted):
    user, occ = world["users"]["vol_a"], week["occ"]  # Monday 09:00-10:30: 90 minutes
    assignments.check_in(occ, CODE, user=user, now=at(week["monday"], "09:00"))
    assignments.check_out(occ, CODE, user=user, now=at(week["monday"], "20:00"))  # 11 hours later
    assert accepted.credited_hours == Decimal("2.5")  # 90 minutes + 60 minutes of grace


def test_check_out_closes_half_a_day_after_the_end(world, db, week, accepted):
    user, occ = world["users"]["vol_a"], week["occ"]
    assignments.check_in(occ, CODE, user=user, now=at(week["monday"], "09:00"))
    with pytest.raises(DomainError, match="closed"):
        assignments.check_out(occ, CODE, user=user, now=at(week["monday"] + timedelta(days=3), "09:00"))
    assert accepted.status == AssignmentStatus.CHECKED_IN


def test_cancelling_a_demand_withdraws_offers_tells_people_and_stops_check_in(world, db, week, accepted):
    from matcher.demands import cancel_demand
    from matcher.models import Notification

    occ, demand = week["occ"], week["occ"].demand
    other = offer(week["schedule"], occ, world["volunteers"]["b"])
    other_id = other.id
    db.session.commit()
    cancel_demand(demand, user=world["users"]["worker_a1"], version=demand.version)
    db.session.commit()
    assert db.session.get(type(accepted), other_id) is None  # the pending offer is withdrawn
    kinds = {(n.user_id, n.kind) for n in db.session.scalars(select(Notification))}
    assert (world["users"]["vol_a"].id, "service_cancelled") in kinds
    assert (world["users"]["coord_a"].id, "demand_cancelled") in kinds
    with pytest.raises(Conflict, match="cancelled"):
        assignments.check_in(occ, CODE, user=world["users"]["vol_a"], now=at(week["monday"], "09:00"))
