"""Builders shared by the domain tests: a published week, a demand, an offer (each commits, as the
setup of a real request would have)."""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from sqlalchemy import select

from matcher import checkin, rules
from matcher.accounts import create_user
from matcher.assignments import issue_checkin_codes
from matcher.db import db as _db
from matcher.demands import create_demand
from matcher.models import (
    Assignment,
    AssignmentStatus,
    Demand,
    DemandOccurrence,
    Membership,
    MemberStatus,
    Role,
    Schedule,
    ScheduleStatus,
    utcnow,
)
from matcher.volunteers import create_volunteer

# A well-formed code that is not the service's: real codes change every minute (see `code_at`).
CODE = "123456"


def publish(world, week_start: date, township: str = "town_a") -> Schedule:
    """A published schedule for a township's week (its occurrences have their code secrets).

    The helpers commit, as the setup of a real request would have."""
    schedule = Schedule(area=world["areas"][township], week_start=week_start, status=ScheduleStatus.PUBLISHED,
                        published_at=utcnow())
    _db.session.add(schedule)
    issue_checkin_codes(_db.session.scalars(select(DemandOccurrence)))
    _db.session.commit()
    return schedule


def add_demand(world, day: date, start: str, end: str, *, community: str = "a1", people: int = 1,
               title: str = "") -> DemandOccurrence:
    """A single demand at the community's station; returns its one occurrence."""
    worker = {"a1": "worker_a1", "a2": "worker_a2", "b1": "worker_b1"}[community]
    station = world["stations"][world["areas"][community].code]
    demand = create_demand({"category": "culture_sports", "location_kind": "station", "station": station.id,
                            "date": day.isoformat(), "start": start, "end": end, "people": people,
                            "min_people": 1, "skills": "", "title": title},
                           community=world["areas"][community], user=world["users"][worker])
    occ = demand.occurrences[0]
    _db.session.commit()
    return occ


def code_at(occ: DemandOccurrence, when: datetime, purpose: str = checkin.CHECK_IN) -> str:
    """The code the community worker's page shows for `purpose` at the local time `when`."""
    return checkin.code_at(occ.checkin_secret, purpose, when.replace(tzinfo=ZoneInfo("Asia/Shanghai")).timestamp())


def token_at(occ: DemandOccurrence, when: datetime, purpose: str = checkin.CHECK_IN, *, key: str = "test-secret",
             occurrence_id: int | None = None) -> str:
    """The QR code's token for `purpose` made at the local time `when` (for another occurrence id if given)."""
    return checkin.make_token(key, occ.id if occurrence_id is None else occurrence_id, purpose,
                              when.replace(tzinfo=ZoneInfo("Asia/Shanghai")).timestamp())


def first_occurrence(demand: Demand) -> DemandOccurrence:
    return demand.occurrences[0]


def offer(schedule: Schedule, occ: DemandOccurrence, volunteer, status=AssignmentStatus.OFFERED) -> Assignment:
    a = Assignment(schedule_id=schedule.id, occurrence_id=occ.id, volunteer_id=volunteer.id, status=status,
                   offered_at=utcnow(), reasons=["skills_match", "nearest_free"], distance_km=0.4)
    _db.session.add(a)
    _db.session.commit()
    return a


def at(day: date, hhmm: str) -> datetime:
    """The local datetime of HH:MM on a day."""
    h, m = map(int, hhmm.split(":"))
    return datetime.combine(day, time(h, m))


def form(demand, **overrides):
    """The edit form's values for a demand, as the page would send them."""
    data = {"category": demand.category.code, "title": demand.title,
            "resident": demand.resident_id or "", "location_kind": demand.location_kind.value,
            "station": demand.station_id or "", "date": demand.starts_on.isoformat(),
            "start": rules.format_minutes(demand.start_minute),
            "end": rules.format_minutes(demand.start_minute + demand.duration_minutes),
            "recurring": "1" if demand.weekdays else "", "weekdays": [str(d) for d in demand.weekday_list],
            "people": demand.people, "min_people": demand.min_people, "priority": demand.priority.value}
    data.update(overrides)
    return data


def member(world, db, name, phone, *, skills="elder_care", availability="0 08:00-12:00", status=MemberStatus.APPROVED,
           org="a", username: str | None = None, locale: str | None = None, **extra):
    """A member of an organization living in community a1; with `username`, one who can sign in."""
    account = None
    if username:
        account = create_user(username=username, password="correct horse battery", role=Role.VOLUNTEER)
        account.locale = locale
    vol = create_volunteer({"real_name": name, "phone": phone, "home_area": world["areas"]["a1"].id,
                            "lat": 29.344, "lon": 107.704, "skills": skills, "availability": availability, **extra},
                           user=None, account=account)
    db.session.add(Membership(organization=world["orgs"][org], volunteer=vol, status=status))
    db.session.flush()
    return vol


def assign(db, occ, vol, status=AssignmentStatus.OFFERED, org=None, schedule=None):
    a = Assignment(occurrence_id=occ.id, volunteer_id=vol.id, status=status,
                   organization_id=org.id if org else None, schedule_id=schedule.id if schedule else None)
    db.session.add(a)
    db.session.flush()
    return a
