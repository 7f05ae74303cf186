"""The demo district loader: shape, consistency, demo logins, determinism and refusal."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from decimal import Decimal

import phonenumbers
import pytest
from sqlalchemy import func, select

from matcher import rules
from matcher.accounts import check_password
from matcher.demo import DEMO_PASSWORD, load_demo, table_counts
from matcher.errors import DomainError
from matcher.models import (
    Area,
    AreaLevel,
    Assignment,
    AssignmentStatus,
    AvailabilitySlot,
    Category,
    Certificate,
    Demand,
    DemandOccurrence,
    DemandStatus,
    LocationKind,
    MemberRole,
    Membership,
    MemberStatus,
    Organization,
    OrgType,
    Resident,
    Role,
    Station,
    User,
    Volunteer,
)
from web import create_app

MONDAY = date(2026, 11, 30)
SMALL = 0.05
MOBILE_RE = re.compile(r"^\+861[3-9]\d{9}$")
DEMO_USERNAMES = {"admin", "coord", "worker", "leader", "volunteer"}


@pytest.fixture
def small(app, db):
    """The demo district at 5 % scale, loaded into the fixture's empty database."""
    return load_demo(week_start=MONDAY, scale=SMALL)


def _valid_e164(phone: str) -> bool:
    return phone.startswith("+") and phonenumbers.is_valid_number(phonenumbers.parse(phone))


def test_small_load_counts(small, db):
    counts = small.counts
    assert counts == table_counts()
    assert counts["areas"] == 1 + 2 + 10
    assert counts["stations"] == counts["areas"]
    assert counts["organizations"] == 5
    assert counts["volunteers"] == 200
    assert counts["users"] > counts["volunteers"]
    assert counts["residents"] == 25
    assert 60 <= counts["demand_occurrences"] <= 66
    assert counts["demands"] < counts["demand_occurrences"]
    for table in ("availability_slots", "volunteer_skills", "certificates", "memberships", "demand_skills"):
        assert counts[table] > 0, table
    assert small.seconds > 0
    assert len(small.logins) == 6


def test_area_tree_is_consistent(small, db):
    areas = {a.id: a for a in db.session.scalars(select(Area))}
    depth = {AreaLevel.DISTRICT: 1, AreaLevel.TOWNSHIP: 2, AreaLevel.COMMUNITY: 3}
    for area in areas.values():
        if area.parent_id is None:
            assert area.level == AreaLevel.DISTRICT
            assert area.path == f"/{area.id}/"
        else:
            assert area.path == f"{areas[area.parent_id].path}{area.id}/"
        assert area.path.count("/") - 1 == depth[area.level]
        assert area.name.endswith(("区", "街道", "镇", "乡", "社区", "村"))
    assert len({a.code for a in areas.values()}) == len(areas)
    district = next(a for a in areas.values() if a.level == AreaLevel.DISTRICT)
    stations = db.session.scalars(select(Station)).all()
    assert {s.area_id for s in stations} == set(areas)
    for s in stations:
        assert rules.within_area(s.lat, s.lon, district.lat, district.lon, district.radius_km)
        assert s.capacity > 0


def test_people_are_plausible(small, db):
    district = db.session.scalar(select(Area).where(Area.level == AreaLevel.DISTRICT))
    volunteers = db.session.scalars(select(Volunteer)).all()
    for v in volunteers:
        assert MOBILE_RE.match(v.phone) and _valid_e164(v.phone), v.phone
        assert rules.within_area(v.lat, v.lon, district.lat, district.lon, district.radius_km)
        assert 2 <= v.max_travel_km <= 10
        assert 0 < v.preferred_minutes_per_week <= v.max_minutes_per_week
        assert MONDAY.year - 80 <= v.birth_year <= MONDAY.year - 16
        assert v.user_id is not None
    assert len({v.phone for v in volunteers}) == len(volunteers)
    assert len({v.calendar_token for v in volunteers}) == len(volunteers)
    # Everyone has a weekly pattern; stars vary.
    with_slots = db.session.scalar(select(func.count(func.distinct(AvailabilitySlot.volunteer_id))))
    assert with_slots == len(volunteers)
    assert len({rules.star_level(v.total_hours) for v in volunteers}) >= 3
    # Certificates back certificate skills only, some expiring before the week is over.
    certs = db.session.scalars(select(Certificate)).all()
    assert all(c.skill.needs_certificate for c in certs)
    assert any(c.expires_on < MONDAY + timedelta(days=7) for c in certs)
    for r in db.session.scalars(select(Resident)):
        assert r.phone and _valid_e164(r.phone)
        assert r.consent_given_at is not None and r.consent_recorded_by_id is not None
        assert rules.within_area(r.lat, r.lon, district.lat, district.lon, district.radius_km)
    for o in db.session.scalars(select(Organization)):
        assert o.contact_phone and _valid_e164(o.contact_phone)
        assert o.areas and o.categories
        assert {a.path for a in o.areas} and all(a.path.startswith(district.path) for a in o.areas)
    assert {o.type for o in db.session.scalars(select(Organization))} == set(OrgType)


def test_each_organization_has_one_approved_leader(small, db):
    for org in db.session.scalars(select(Organization)):
        leaders = [m for m in org.memberships if m.role == MemberRole.LEADER]
        assert len(leaders) == 1, org.name
        assert leaders[0].status == MemberStatus.APPROVED
        assert leaders[0].volunteer.user.role == Role.ORG_LEADER


def test_occurrences_fall_in_the_week(small, db):
    week_end = MONDAY + timedelta(days=7)
    start_of_week = rules.occurrence_span(MONDAY, 0, 1)[0]
    end_of_week = rules.occurrence_span(week_end, 0, 1)[0]
    occurrences = db.session.scalars(select(DemandOccurrence)).all()
    for occ in occurrences:
        demand = occ.demand
        assert start_of_week <= occ.starts_at < occ.ends_at <= end_of_week
        assert occ.status == DemandStatus.OPEN
        assert (occ.ends_at - occ.starts_at).total_seconds() == demand.duration_minutes * 60
        assert occ.starts_at.hour * 60 + occ.starts_at.minute == demand.start_minute
        if demand.weekdays:
            assert occ.starts_at.weekday() in demand.weekday_list
        else:
            assert occ.starts_at.date() == demand.starts_on
    for demand in db.session.scalars(select(Demand)):
        assert demand.occurrences, demand.title
        assert demand.community.level == AreaLevel.COMMUNITY
        assert demand.min_people <= demand.people
        if demand.location_kind == LocationKind.HOME:
            assert demand.resident is not None and demand.resident.community_id == demand.community_id
        elif demand.location_kind == LocationKind.STATION:
            assert demand.station is not None and demand.station.area_id == demand.community_id
        expected = {s.code for s in demand.category.skills}
        got = {s.code for s in (demand.skills_any if demand.category.skills_any else demand.skills)}
        assert got == expected
        if demand.one_organization:
            assert demand.organizations
    # Recurring elderly care dominates the week.
    per_category = dict(db.session.execute(
        select(Category.code, func.count(DemandOccurrence.id))
        .join(Demand, Demand.category_id == Category.id).join(DemandOccurrence).group_by(Category.code)).all())
    assert per_category["elderly_care"] == max(per_category.values())


def test_demo_logins(small, db):
    logins = {username: role for role, username, _ in small.logins}
    assert DEMO_USERNAMES <= set(logins)
    township_logins = [u for u in logins if u.startswith("coord_")]
    assert len(township_logins) == 1 and township_logins[0].isascii()
    users = {u.username: u for u in db.session.scalars(select(User).where(User.username.in_(logins)))}
    for username, role in logins.items():
        assert users[username].role.value == role
        assert check_password(users[username], DEMO_PASSWORD), username
        assert not check_password(users[username], "wrong-password")
    assert users["admin"].role == Role.ADMIN
    assert users["coord"].area.level == AreaLevel.DISTRICT
    assert users[township_logins[0]].area.level == AreaLevel.TOWNSHIP
    worker = users["worker"]
    assert worker.role == Role.WORKER and worker.area.level == AreaLevel.COMMUNITY
    assert db.session.scalar(select(func.count(Resident.id)).where(Resident.community_id == worker.area_id)) > 0
    assert db.session.scalar(select(func.count(Demand.id)).where(Demand.created_by_id == worker.id)) > 0
    assert worker.area.path.startswith(users[township_logins[0]].area.path)
    leader = users["leader"]
    assert leader.role == Role.ORG_LEADER and leader.organization_id is not None
    assert leader.volunteer is not None
    assert db.session.scalar(select(Membership).where(
        Membership.organization_id == leader.organization_id, Membership.volunteer_id == leader.volunteer.id,
        Membership.role == MemberRole.LEADER, Membership.status == MemberStatus.APPROVED)) is not None
    vol = users["volunteer"]
    assert vol.role == Role.VOLUNTEER and vol.volunteer is not None
    assert vol.volunteer.skills and vol.volunteer.slots
    assert any(m.status == MemberStatus.APPROVED for m in vol.volunteer.memberships)
    # Nobody else has a usable password: imported accounts wait for activation.
    others = db.session.scalars(select(User).where(User.username.not_in(logins))).all()
    assert others and all(u.password_hash is None for u in others)


def _sample(db) -> dict[str, list]:
    """What must come out the same for the same seed (no ids: they depend on the database)."""
    return {
        "areas": db.session.execute(select(Area.code, Area.name, Area.lat, Area.lon).order_by(Area.code)).all(),
        "volunteers": db.session.execute(select(Volunteer.real_name, Volunteer.phone, Volunteer.lat)
                                         .order_by(Volunteer.id)).all(),
        "occurrences": db.session.execute(
            select(Area.code, Demand.title, DemandOccurrence.starts_at, DemandOccurrence.ends_at)
            .join(Demand, Demand.id == DemandOccurrence.demand_id).join(Area, Area.id == Demand.community_id)
            .order_by(DemandOccurrence.id)).all(),
        "logins": sorted(db.session.scalars(select(User.username).where(User.password_hash.is_not(None)))),
    }


def test_same_seed_gives_the_same_district(app, db, tmp_path):
    first = load_demo(week_start=MONDAY, seed=7, scale=SMALL)
    sample = _sample(db)
    # A second, fresh database (always SQLite) with the same seed.
    other = create_app({"TESTING": True, "SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/d.sqlite",
                        "ARGON2_TIME_COST": 1, "ARGON2_MEMORY_COST": 1024})
    with other.app_context():
        db.create_all()
        second = load_demo(week_start=MONDAY, seed=7, scale=SMALL)
        again = _sample(db)
        db.session.remove()
        db.engine.dispose()
    assert second.counts == first.counts
    assert [login[:2] for login in second.logins] == [login[:2] for login in first.logins]
    for key in sample:
        assert again[key] == sample[key], key
    assert len(sample["occurrences"]) == first.counts["demand_occurrences"]


def test_other_seed_gives_another_district(app, db, tmp_path):
    load_demo(week_start=MONDAY, seed=1, scale=SMALL)
    names = db.session.scalars(select(Volunteer.real_name).order_by(Volunteer.id)).all()
    other = create_app({"TESTING": True, "SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/d.sqlite",
                        "ARGON2_TIME_COST": 1, "ARGON2_MEMORY_COST": 1024})
    with other.app_context():
        db.create_all()
        load_demo(week_start=MONDAY, seed=2, scale=SMALL)
        other_names = db.session.scalars(select(Volunteer.real_name).order_by(Volunteer.id)).all()
        db.session.remove()
        db.engine.dispose()
    assert names != other_names


def test_loading_twice_refuses(small, db):
    before = table_counts()
    with pytest.raises(DomainError, match="already holds areas"):
        load_demo(week_start=MONDAY, scale=SMALL)
    db.session.rollback()
    assert table_counts() == before


def test_week_must_start_on_monday(app, db):
    with pytest.raises(DomainError, match="Monday"):
        load_demo(week_start=MONDAY + timedelta(days=1), scale=SMALL)
    assert db.session.scalar(select(func.count(Area.id))) == 0


def test_progress_is_echoed(app, db):
    lines: list[str] = []
    load_demo(week_start=MONDAY, scale=SMALL, echo=lines.append)
    assert any(line.startswith("volunteers: 200") for line in lines)
    assert any(line.startswith("occurrences:") for line in lines)


@pytest.mark.slow
def test_standard_district(app, db):
    summary = load_demo(week_start=MONDAY)
    counts = summary.counts
    communities = db.session.scalar(select(func.count(Area.id)).where(Area.level == AreaLevel.COMMUNITY))
    townships = db.session.scalar(select(func.count(Area.id)).where(Area.level == AreaLevel.TOWNSHIP))
    assert townships == 25
    assert 190 <= communities <= 210
    assert counts["organizations"] == 60
    assert counts["volunteers"] == 4000
    assert counts["residents"] == 500
    assert 1100 <= counts["demand_occurrences"] <= 1300
    assert summary.seconds < 60


def test_weak_demo_password_refused(app, db):
    with pytest.raises(DomainError) as caught:
        load_demo(week_start=MONDAY, scale=SMALL, password="linli123")
    assert caught.value.field == "password"
    assert db.session.scalar(select(func.count(Area.id))) == 0


def test_history_serves_the_demands_in_the_weeks_before(small, db):
    """`flask demo load --history-weeks N`: the week's demands served in the N weeks before, mostly by the same
    volunteer, each visit credited to the volunteer's total; the summary report then has figures."""
    from matcher.demo import add_history
    from matcher.reports import report_figures

    before_hours = {v.id: v.total_hours for v in db.session.scalars(select(Volunteer))}
    made = add_history(weeks=3, before=MONDAY, seed=5)
    assert made["occurrences"] > 0 and made["services"] > 0
    past = list(db.session.scalars(select(DemandOccurrence).where(DemandOccurrence.starts_at < datetime.combine(
        MONDAY, datetime.min.time()))))
    assert len(past) == made["occurrences"]
    assert min(o.starts_at for o in past) >= datetime.combine(MONDAY - timedelta(weeks=3), datetime.min.time())
    completed = list(db.session.scalars(select(Assignment).where(Assignment.status == AssignmentStatus.COMPLETED)))
    assert len(completed) == made["services"]
    assert len({(a.occurrence_id, a.volunteer_id) for a in completed}) == len(completed)
    credited: dict[int, Decimal] = {}
    for a in completed:
        credited[a.volunteer_id] = credited.get(a.volunteer_id, Decimal(0)) + a.credited_hours
    db.session.expire_all()
    for volunteer in db.session.scalars(select(Volunteer)):
        assert volunteer.total_hours == before_hours[volunteer.id] + credited.get(volunteer.id, Decimal(0))
    district = db.session.scalar(select(Area).where(Area.parent_id.is_(None)))
    figures = report_figures(district, MONDAY - timedelta(weeks=3), MONDAY - timedelta(days=1))
    assert figures["totals"]["services"] > 0 and figures["short"]["occurrences"] > 0
    assert figures["continuity"]["share"] is None or figures["continuity"]["share"] > 0.5
