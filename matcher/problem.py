"""Translate between the database and the solver's JSON contract (`linli.instance/1`, `linli.solution/1`).

Out: `build_instance` reads one schedule's area and week and writes the instance the solver reads.
In: `read_solution` reads a solution back in database ids (pairs, responsible organizations, gaps),
`compare` says what it would change in a schedule, and `apply_solution` writes it as assignments and
responsible organizations (`schedules.apply_run` is the use case around it: locks, withdrawals,
notices, audit).
Ids in the instance are the database ids with a one-letter prefix: `d<occurrence>`, `v<volunteer>`,
`o<organization>`, `r<resident>`, so any saved instance can be replayed with `python -m solver`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import aliased, selectinload

from solver.instance import DEFAULT_PRIORITY_WEIGHTS, DEFAULT_WEIGHTS, merge_windows

from . import rules
from .access import area_pool
from .db import among, db
from .models import (
    BOOKED,
    CLOSED,
    FILLING,
    STANDING,
    Area,
    AreaLevel,
    Assignment,
    AssignmentStatus,
    AvailabilityException,
    AvailabilitySlot,
    Category,
    Certificate,
    Demand,
    DemandOccurrence,
    DemandStatus,
    ExceptionKind,
    Handback,
    Membership,
    MemberStatus,
    Priority,
    Schedule,
    ScheduleStatus,
    Skill,
    Volunteer,
    demand_organizations,
    volunteer_skills,
)
from .models._types import AWAITING_REVIEW, DeclineReason
from .volunteers import guardian_problem

OFFSET = "+08:00"  # the service's local time (Asia/Shanghai, no daylight saving)
FAMILIAR_WEEKS = 6
REPAIR_KEEP_PREVIOUS = 200


def stamp(moment: datetime) -> str:
    """ISO 8601 local time with the service's offset, whole minutes."""
    return moment.strftime("%Y-%m-%dT%H:%M") + OFFSET


def parse_stamp(text: str) -> datetime:
    """The naive local datetime of an instance time."""
    return datetime.fromisoformat(text).replace(tzinfo=None)


def week_span(week_start: date) -> tuple[datetime, datetime]:
    """Start and end (exclusive) of a week as local datetimes."""
    start = datetime.combine(week_start, time())
    return start, start + timedelta(days=7)


def area_ids_within(area: Area) -> list[int]:
    """Ids of the area and every area below it."""
    return list(db.session.scalars(select(Area.id).where(Area.path.startswith(area.path))))


def subtract_windows(windows, holes) -> list[tuple[datetime, datetime]]:
    """Windows minus holes (both lists of (start, end))."""
    result = []
    for start, end in windows:
        pieces = [(start, end)]
        for h_start, h_end in holes:
            next_pieces = []
            for s, e in pieces:
                if h_end <= s or h_start >= e:
                    next_pieces.append((s, e))
                    continue
                if s < h_start:
                    next_pieces.append((s, h_start))
                if h_end < e:
                    next_pieces.append((h_end, e))
            pieces = next_pieces
        result.extend(pieces)
    return result


@dataclass(frozen=True)
class SlotRow:
    """A weekly free-time slot read as a plain row (`AvailabilitySlot`'s fields)."""

    weekday: int
    start_minute: int
    end_minute: int


def availability(volunteer: Volunteer, week_start: date, exceptions: list[AvailabilityException],
                 slots: list[SlotRow] | None = None) -> list[tuple[datetime, datetime]]:
    """The week's free windows: weekly pattern (`slots`, else the volunteer's own), minus dated absences,
    plus dated extra time."""
    windows = []
    first = datetime.combine(week_start, time())
    for slot in volunteer.slots if slots is None else slots:
        day = first + timedelta(days=(slot.weekday - week_start.weekday()) % 7)  # the slot's day in this week
        windows.append((day + timedelta(minutes=slot.start_minute), day + timedelta(minutes=slot.end_minute)))
    away = [(e.starts_at, e.ends_at) for e in exceptions if e.kind == ExceptionKind.AWAY]
    extra = [(e.starts_at, e.ends_at) for e in exceptions if e.kind == ExceptionKind.EXTRA]
    return list(merge_windows(subtract_windows(list(merge_windows(windows)), away) + extra))


@dataclass
class SkillValidity:
    """For certificate skills: the date a volunteer's certificate stops counting (None: never)."""

    held: set[str]
    expires: dict[str, date | None]

    def holds_on(self, code: str, day: date) -> bool:
        if code not in self.held:
            return False
        until = self.expires.get(code)
        return until is None or day < until


def skill_validity(skills: list[tuple[str, bool]], certificates: list[tuple[str, date | None]],
                   week_start: date) -> SkillValidity:
    """Which skills count this week, and until when: a certificate skill only before its certificate expires.

    A certificate that lapsed by the week's start gives nothing; one that lapses during the week
    keeps its expiry date here so the days after it can be excluded pair by pair.
    """
    held, expires = set(), {}
    by_skill: dict[str, date | None] = {}
    for code, expires_on in certificates:
        current = by_skill.get(code, date.min)
        if expires_on is None or current is None:
            by_skill[code] = None
        else:
            by_skill[code] = max(current, expires_on)
    for code, needs_certificate in skills:
        if not needs_certificate:
            held.add(code)
        elif code in by_skill:
            held.add(code)
            expires[code] = by_skill[code]
    for code, until in by_skill.items():  # a certificate implies the skill
        held.add(code)
        expires[code] = until
    week_end = week_start + timedelta(days=7)
    for code, until in list(expires.items()):
        if until is not None and until <= week_start:
            held.discard(code)
            del expires[code]
        elif until is None or until >= week_end:
            del expires[code]
    return SkillValidity(held, expires)


def schedule_occurrences(schedule: Schedule) -> list[DemandOccurrence]:
    """The occurrences a schedule covers: its area's demands in its week that still need serving, with
    what the solver's instance needs of their demands (the pages read `page_occurrences`)."""
    start, end = week_span(schedule.week_start)
    demand = selectinload(DemandOccurrence.demand)
    return list(db.session.scalars(
        select(DemandOccurrence).join(Demand)
        .where(Demand.community_id.in_(area_ids_within(schedule.area)),
               DemandOccurrence.starts_at >= start, DemandOccurrence.starts_at < end, *still_planned())
        .options(demand.selectinload(Demand.category), demand.selectinload(Demand.organizations),
                 demand.selectinload(Demand.community).selectinload(Area.parent),
                 demand.selectinload(Demand.skills), demand.selectinload(Demand.skills_any),
                 demand.selectinload(Demand.resident))
        .order_by(DemandOccurrence.starts_at, DemandOccurrence.id)
    ))


@dataclass(frozen=True)
class PlaceRow:
    """An area as the review pages show it (a community, or its street as `parent`)."""

    id: int
    name: str
    path: str
    lat: float
    lon: float
    parent: PlaceRow | None = None


@dataclass(frozen=True)
class CategoryRow:
    id: int
    code: str
    name_zh: str
    name_en: str


@dataclass(frozen=True)
class OrganizationRef:
    id: int


@dataclass(frozen=True)
class DemandRow:
    """What the review pages show of an occurrence's demand, read as plain rows."""

    id: int
    title: str
    people: int
    min_people: int
    priority: Priority
    lat: float
    lon: float
    category: CategoryRow | None
    community: PlaceRow
    organizations: tuple[OrganizationRef, ...]


@dataclass(frozen=True)
class OccurrenceRow:
    """One occurrence of `schedule_occurrences` as the review pages read it (the same attribute paths as
    the ORM objects: `o.demand.community.parent.name`), built from plain rows: a district's thousand
    services are not loaded as ORM objects to draw a grid."""

    id: int
    starts_at: datetime
    ends_at: datetime
    status: DemandStatus
    responsible_organization_id: int | None
    demand: DemandRow


def page_occurrences(schedule: Schedule, *, within: Area | None = None,
                     between: tuple[datetime, datetime] | None = None) -> list[OccurrenceRow]:
    """`schedule_occurrences` for the pages, as plain rows, in three statements whatever the count:
    `within` narrows them to an area below the schedule's (a street), `between` to a window of the week."""
    start, end = week_span(schedule.week_start)
    if between is not None:
        start, end = max(start, between[0]), min(end, between[1])
    community, street = aliased(Area), aliased(Area)
    rows = db.session.execute(
        select(DemandOccurrence.id, DemandOccurrence.starts_at, DemandOccurrence.ends_at, DemandOccurrence.status,
               DemandOccurrence.responsible_organization_id, Demand.id.label("demand_id"), Demand.title,
               Demand.people, Demand.min_people, Demand.priority, Demand.lat, Demand.lon, Demand.category_id,
               community.id.label("c_id"), community.name.label("c_name"), community.path.label("c_path"),
               community.lat.label("c_lat"), community.lon.label("c_lon"), street.id.label("s_id"),
               street.name.label("s_name"), street.path.label("s_path"), street.lat.label("s_lat"),
               street.lon.label("s_lon"))
        .join(Demand, DemandOccurrence.demand_id == Demand.id)
        .join(community, Demand.community_id == community.id)
        .outerjoin(street, community.parent_id == street.id)
        .where(community.path.startswith((within or schedule.area).path),
               DemandOccurrence.starts_at >= start, DemandOccurrence.starts_at < end, *still_planned())
        .order_by(DemandOccurrence.starts_at, DemandOccurrence.id)).all()
    if not rows:
        return []
    categories = {c.id: CategoryRow(c.id, c.code, c.name_zh, c.name_en) for c in db.session.execute(
        select(Category.id, Category.code, Category.name_zh, Category.name_en))}
    organizations: dict[int, list[OrganizationRef]] = defaultdict(list)
    demand_ids = sorted({r.demand_id for r in rows})
    for demand_id, org_id in db.session.execute(
            select(demand_organizations.c.demand_id, demand_organizations.c.organization_id)
            .where(among(demand_organizations.c.demand_id, demand_ids))
            .order_by(demand_organizations.c.organization_id)):
        organizations[demand_id].append(OrganizationRef(org_id))
    places: dict[int, PlaceRow] = {}
    demands: dict[int, DemandRow] = {}
    out = []
    for r in rows:
        place = places.get(r.c_id)
        if place is None:
            parent = PlaceRow(r.s_id, r.s_name, r.s_path, r.s_lat, r.s_lon) if r.s_id is not None else None
            place = places[r.c_id] = PlaceRow(r.c_id, r.c_name, r.c_path, r.c_lat, r.c_lon, parent)
        demand = demands.get(r.demand_id)
        if demand is None:
            demand = demands[r.demand_id] = DemandRow(
                r.demand_id, r.title, r.people, r.min_people, r.priority, r.lat, r.lon,
                categories.get(r.category_id), place, tuple(organizations.get(r.demand_id, ())))
        out.append(OccurrenceRow(r.id, r.starts_at, r.ends_at, r.status, r.responsible_organization_id, demand))
    return out


@dataclass(frozen=True)
class Home:
    lat: float
    lon: float


@dataclass(frozen=True)
class AssignmentRow:
    """An assignment as the review pages read it (plain row); `volunteer` carries the home when asked for,
    `occurrence` the `OccurrenceRow` it belongs to."""

    id: int
    occurrence_id: int
    volunteer_id: int
    status: AssignmentStatus
    offered_at: datetime | None
    seen_at: datetime | None
    occurrence: OccurrenceRow | None = None
    volunteer: Home | None = None


def page_assignments(occurrences: list[OccurrenceRow], statuses, *, homes: bool = False) -> list[AssignmentRow]:
    """The assignments of the given occurrences in the given statuses, as plain rows in one statement
    (with the volunteers' homes, for the map, when `homes`)."""
    if not occurrences:
        return []
    by_id = {o.id: o for o in occurrences}
    columns = [Assignment.id, Assignment.occurrence_id, Assignment.volunteer_id, Assignment.status,
               Assignment.offered_at, Assignment.seen_at]
    stmt = select(*columns, *((Volunteer.lat, Volunteer.lon) if homes else ()))
    if homes:
        stmt = stmt.join(Volunteer, Assignment.volunteer_id == Volunteer.id)
    stmt = stmt.where(among(Assignment.occurrence_id, by_id), Assignment.status.in_(list(statuses)))
    return [AssignmentRow(r.id, r.occurrence_id, r.volunteer_id, r.status, r.offered_at, r.seen_at,
                          by_id[r.occurrence_id], Home(r.lat, r.lon) if homes else None)
            for r in db.session.execute(stmt.order_by(Assignment.id))]


def in_schedule(schedule: Schedule, occurrence_id: int) -> bool:
    """Whether the schedule covers the occurrence (one of `schedule_occurrences`), in one small query."""
    start, end = week_span(schedule.week_start)
    return db.session.scalar(
        select(DemandOccurrence.id).join(Demand).join(Area, Demand.community_id == Area.id)
        .where(DemandOccurrence.id == occurrence_id, Area.path.startswith(schedule.area.path),
               DemandOccurrence.starts_at >= start, DemandOccurrence.starts_at < end, *still_planned())) is not None


def still_planned() -> list:
    """The conditions on an occurrence (joined to its demand) that a schedule covers: neither a draft nor
    cancelled, and not waiting for review."""
    return [DemandOccurrence.status.not_in([DemandStatus.CANCELLED, DemandStatus.DRAFT]),
            Demand.status.not_in([DemandStatus.CANCELLED, DemandStatus.DRAFT]),
            # 审单: a demand waiting for its area's review (or returned) is not planned yet.
            or_(Demand.review.is_(None), Demand.review.not_in(AWAITING_REVIEW))]


def schedules_positions(schedules: list[Schedule]) -> dict[int, list[Any]]:
    """Per schedule id, the occurrences it covers (those of `schedule_occurrences`) as light rows: `id`,
    `people` wanted, `filled` (assignments taking a place), `path` of the community; for a list of
    schedules in one query."""
    if not schedules:
        return {}
    weeks = sorted({s.week_start for s in schedules})
    paths = sorted({s.area.path for s in schedules})
    filled = (select(func.count(Assignment.id)).where(Assignment.occurrence_id == DemandOccurrence.id,
                                                      Assignment.status.in_(FILLING))
              .correlate(DemandOccurrence).scalar_subquery())
    rows = db.session.execute(
        select(DemandOccurrence.id, DemandOccurrence.starts_at, Demand.people, filled.label("filled"),
               Area.path.label("path"))
        .join(Demand, DemandOccurrence.demand_id == Demand.id).join(Area, Demand.community_id == Area.id)
        .where(or_(*(Area.path.startswith(p) for p in paths)),
               or_(*(and_(DemandOccurrence.starts_at >= week_span(w)[0], DemandOccurrence.starts_at < week_span(w)[1])
                     for w in weeks)), *still_planned())
        .order_by(DemandOccurrence.starts_at, DemandOccurrence.id)).all()
    by_week: dict[date, list[Any]] = defaultdict(list)
    for row in rows:
        by_week[rules.week_monday(row.starts_at.date())].append(row)
    return {s.id: [r for r in by_week[s.week_start] if r.path.startswith(s.area.path)] for s in schedules}


def candidate_volunteers(area: Area) -> list[Volunteer]:
    """The active volunteers a schedule of `area` draws on (`access.area_pool`): the whole district's
    for the district; for a township, those of its pool who live within their travel range of it."""
    vols = db.session.scalars(
        select(Volunteer).where(Volunteer.active, area_pool(area)).order_by(Volunteer.id)
    ).all()
    if area.level == AreaLevel.DISTRICT:
        return list(vols)
    return [v for v in vols
            if rules.haversine_km(v.lat, v.lon, area.lat, area.lon) <= area.radius_km + v.max_travel_km]


# The parts of a day a person names when saying they are not free ("Tuesday morning"), in minutes.
DAY_PARTS = ((0, 12 * 60), (12 * 60, 18 * 60), (18 * 60, 24 * 60))


def day_part_span(starts_at: datetime, ends_at: datetime) -> tuple[datetime, datetime]:
    """The parts of the day (morning, afternoon, evening) a service touches, as one span."""
    midnight = datetime.combine(starts_at.date(), time())
    first = (starts_at - midnight).total_seconds() / 60
    last = (ends_at - midnight).total_seconds() / 60
    begin = max(a for a, _b in DAY_PARTS if a <= first)
    end = min((b for _a, b in DAY_PARTS if b >= last), default=24 * 60)
    if ends_at.date() > starts_at.date():
        end = max(end, int(last))
    return midnight + timedelta(minutes=begin), midnight + timedelta(minutes=end)


@dataclass
class DeclineLimits:
    """What a volunteer's declines of one week say about the rest of that week.

    `not_free`: the parts of the day of each service declined as "not free then" (taken out of the
    availability); `too_far_km`: the shortest road distance of a service declined as "too far" (services
    that far from home or farther are forbidden pairs). Declines for another reason forbid only their own
    service (every decline does)."""

    not_free: list[tuple[datetime, datetime]] = field(default_factory=list)
    too_far_km: float | None = None


def decline_limits(volunteers: list[Volunteer], week_start: date) -> dict[int, DeclineLimits]:
    """The volunteers' structured declines of services in the week (any area's), as `DeclineLimits`."""
    start, end = week_span(week_start)
    by_id = {v.id: v for v in volunteers}
    out: dict[int, DeclineLimits] = {}
    if not by_id:
        return out
    for a, occ in db.session.execute(
        select(Assignment, DemandOccurrence).join(DemandOccurrence, Assignment.occurrence_id == DemandOccurrence.id)
        .where(among(Assignment.volunteer_id, by_id), Assignment.status == AssignmentStatus.DECLINED,
               Assignment.decline_kind.in_([DeclineReason.NOT_FREE, DeclineReason.TOO_FAR]),
               DemandOccurrence.starts_at >= start, DemandOccurrence.starts_at < end)
        .options(selectinload(DemandOccurrence.demand))
    ):
        limits = out.setdefault(a.volunteer_id, DeclineLimits())
        if a.decline_kind == DeclineReason.NOT_FREE:
            limits.not_free.append(day_part_span(occ.starts_at, occ.ends_at))
        else:
            v = by_id[a.volunteer_id]
            km = rules.road_km(v.lat, v.lon, occ.demand.lat, occ.demand.lon)
            limits.too_far_km = km if limits.too_far_km is None else min(limits.too_far_km, km)
    return out


def too_far_pairs(occurrences: list[DemandOccurrence], volunteers: list[Volunteer],
                  declines: dict[int, DeclineLimits]) -> set[tuple[str, str]]:
    """Pairs excluded because the volunteer declined a service as too far that was no farther from home."""
    out = set()
    for v in volunteers:
        limit = declines[v.id].too_far_km if v.id in declines else None
        if limit is None:
            continue
        for occ in occurrences:
            if rules.road_km(v.lat, v.lon, occ.demand.lat, occ.demand.lon) >= limit - 1e-6:
                out.add((f"d{occ.id}", f"v{v.id}"))
    return out


@dataclass
class VolunteerFacts:
    """What the instance needs to know about a set of volunteers for one week, loaded in batches."""

    week_start: date
    memberships: dict[int, list[str]]
    validity: dict[int, SkillValidity]
    exceptions: dict[int, list[AvailabilityException]]
    commitments: dict[int, list[dict[str, Any]]]
    declines: dict[int, DeclineLimits] = field(default_factory=dict)
    slots: dict[int, list[SlotRow]] = field(default_factory=dict)

    def entry(self, v: Volunteer) -> dict[str, Any]:
        """The volunteer as a `linli.instance/1` volunteer (minus the time they declined as not free)."""
        windows = availability(v, self.week_start, self.exceptions[v.id], self.slots.get(v.id, []))
        limits = self.declines.get(v.id)
        if limits is not None and limits.not_free:
            windows = subtract_windows(windows, limits.not_free)
        entry = {
            "id": f"v{v.id}", "home": {"lat": v.lat, "lon": v.lon},
            "skills": sorted(self.validity[v.id].held), "organizations": sorted(self.memberships[v.id]),
            "availability": [{"start": stamp(s), "end": stamp(e)} for s, e in windows],
            "commitments": self.commitments[v.id],
            "max_minutes_per_week": v.max_minutes_per_week,
            "preferred_minutes_per_week": min(v.preferred_minutes_per_week, v.max_minutes_per_week),
            "max_travel_km": v.max_travel_km,
        }
        if v.gender is not None:
            entry["gender"] = v.gender.value
        return entry

    def lapsed_pairs(self, volunteers: list[Volunteer], occ: DemandOccurrence) -> list[tuple[str, str]]:
        """Pairs excluded because a needed certificate lapses before the occurrence's date."""
        d, day = occ.demand, occ.starts_at.date()
        needed = [s.code for s in d.skills]
        any_of = [s.code for s in d.skills_any]
        out = []
        for v in volunteers:
            val = self.validity[v.id]
            if not val.expires:
                continue
            if any(c in val.held and not val.holds_on(c, day) for c in needed) or (
                any_of and any(c in val.held for c in any_of) and not any(val.holds_on(c, day) for c in any_of)
            ):
                out.append((f"d{occ.id}", f"v{v.id}"))
        return out


def commitment_entry(occ: DemandOccurrence) -> dict[str, Any]:
    """An occurrence as a fixed commitment of a volunteer."""
    return {"start": stamp(occ.starts_at), "end": stamp(occ.ends_at),
            "location": {"lat": occ.demand.lat, "lon": occ.demand.lon}}


def load_volunteer_facts(volunteers: list[Volunteer], week_start: date, commitment_filter) -> VolunteerFacts:
    """Batch-load skills, free time, memberships, certificates, exceptions and commitments (assignments
    matching the filter), as plain rows: a page judging 300 candidates, or a district's instance, does
    not load thousands of ORM objects for them."""
    start, end = week_span(week_start)
    vol_ids = [v.id for v in volunteers]
    skills: dict[int, list[tuple[str, bool]]] = defaultdict(list)
    for vid, code, needs in db.session.execute(
            select(volunteer_skills.c.volunteer_id, Skill.code, Skill.needs_certificate)
            .join(Skill, Skill.id == volunteer_skills.c.skill_id).where(among(volunteer_skills.c.volunteer_id, vol_ids))):
        skills[vid].append((code, needs))
    slots: dict[int, list[SlotRow]] = defaultdict(list)
    for vid, weekday, first, last in db.session.execute(
            select(AvailabilitySlot.volunteer_id, AvailabilitySlot.weekday, AvailabilitySlot.start_minute,
                   AvailabilitySlot.end_minute).where(among(AvailabilitySlot.volunteer_id, vol_ids))
            .order_by(AvailabilitySlot.volunteer_id, AvailabilitySlot.weekday, AvailabilitySlot.start_minute)):
        slots[vid].append(SlotRow(weekday, first, last))
    memberships = defaultdict(list)
    for vid, oid in db.session.execute(
        select(Membership.volunteer_id, Membership.organization_id)
        .where(Membership.status == MemberStatus.APPROVED, among(Membership.volunteer_id, vol_ids))
    ):
        memberships[vid].append(f"o{oid}")
    certificates: dict[int, list[tuple[str, date | None]]] = defaultdict(list)
    for vid, code, expires_on in db.session.execute(
            select(Certificate.volunteer_id, Skill.code, Certificate.expires_on)
            .join(Skill, Skill.id == Certificate.skill_id).where(among(Certificate.volunteer_id, vol_ids))):
        certificates[vid].append((code, expires_on))
    exceptions = defaultdict(list)
    for exc in db.session.scalars(select(AvailabilityException).where(
            among(AvailabilityException.volunteer_id, vol_ids), AvailabilityException.ends_at > start,
            AvailabilityException.starts_at < end)):
        exceptions[exc.volunteer_id].append(exc)
    commitments = defaultdict(list)
    for row in db.session.execute(
        select(Assignment.volunteer_id, DemandOccurrence.starts_at, DemandOccurrence.ends_at, Demand.lat, Demand.lon)
        .join(DemandOccurrence, Assignment.occurrence_id == DemandOccurrence.id)
        .join(Demand, DemandOccurrence.demand_id == Demand.id)
        .join(Schedule, Assignment.schedule_id == Schedule.id)
        .where(among(Assignment.volunteer_id, vol_ids), commitment_filter,
               DemandOccurrence.starts_at >= start, DemandOccurrence.starts_at < end)
        .order_by(Assignment.id)
    ):
        commitments[row.volunteer_id].append({"start": stamp(row.starts_at), "end": stamp(row.ends_at),
                                              "location": {"lat": row.lat, "lon": row.lon}})
    validity = {v.id: skill_validity(skills[v.id], certificates[v.id], week_start) for v in volunteers}
    return VolunteerFacts(week_start, memberships, validity, exceptions, commitments,
                          decline_limits(volunteers, week_start), slots)


def demand_entry(occ: DemandOccurrence) -> dict[str, Any]:
    """An occurrence as a `linli.instance/1` demand."""
    d = occ.demand
    entry = {
        "id": f"d{occ.id}", "category": d.category.code if d.category else "other",
        "location": {"lat": d.lat, "lon": d.lon},
        "start": stamp(occ.starts_at), "end": stamp(occ.ends_at),
        "skills": [s.code for s in d.skills], "skills_any": [s.code for s in d.skills_any],
        "people": d.people, "min_people": d.min_people, "priority": d.priority.value,
        "organizations": [f"o{o.id}" for o in d.organizations], "one_organization": d.one_organization,
    }
    if d.resident_id:
        entry["resident"] = f"r{d.resident_id}"
    if d.gender is not None:
        entry["gender"] = d.gender.value
    return entry


def handback_pairs(occurrences: list[DemandOccurrence], facts: VolunteerFacts,
                   volunteers: list[Volunteer]) -> set[tuple[str, str]]:
    """Pairs excluded because the volunteer's organization handed that occurrence back.

    A volunteer who is also a member of another organization that did not hand it back stays eligible.
    """
    rows = db.session.execute(select(Handback.occurrence_id, Handback.organization_id).where(
        among(Handback.occurrence_id, [o.id for o in occurrences]))).all()
    returned = defaultdict(set)
    for occ_id, org_id in rows:
        returned[occ_id].add(f"o{org_id}")
    out = set()
    for occ_id, orgs in returned.items():
        for v in volunteers:
            mine = set(facts.memberships[v.id])
            if mine and mine <= orgs:
                out.add((f"d{occ_id}", f"v{v.id}"))
    return out


def build_instance(schedule: Schedule, *, repair: bool | None = None,
                   weights: dict[str, Any] | None = None) -> dict[str, Any]:
    """The solver instance for a schedule (repair mode when it is published)."""
    repair = schedule.status == ScheduleStatus.PUBLISHED if repair is None else repair
    start, _end = week_span(schedule.week_start)
    occurrences = schedule_occurrences(schedule)
    occ_ids = [o.id for o in occurrences]
    # A minor without a guardian's consent recorded is never offered a service (judged on the week's
    # first day: under 18 then means under 18 on some day of the week).
    volunteers = [v for v in candidate_volunteers(schedule.area) if guardian_problem(v, schedule.week_start) is None]
    vol_ids = [v.id for v in volunteers]
    # Other areas' published, accepted services are fixed commitments.
    facts = load_volunteer_facts(volunteers, schedule.week_start, and_(
        Assignment.status.in_(BOOKED), Schedule.id != schedule.id, Schedule.status == ScheduleStatus.PUBLISHED))
    instance_volunteers = [facts.entry(v) for v in volunteers]
    demands = [demand_entry(occ) for occ in occurrences]
    lapsing = [v for v in volunteers if facts.validity[v.id].expires]
    forbidden = {pair for occ in occurrences for pair in facts.lapsed_pairs(lapsing, occ)}
    forbidden |= handback_pairs(occurrences, facts, volunteers)
    forbidden |= too_far_pairs(occurrences, volunteers, facts.declines)

    vol_set = set(vol_ids)
    own = db.session.scalars(select(Assignment).where(among(Assignment.occurrence_id, occ_ids))).all()
    pinned, previous = [], []
    for a in own:
        pair = (f"d{a.occurrence_id}", f"v{a.volunteer_id}")
        if a.volunteer_id not in vol_set:
            continue
        if a.status == AssignmentStatus.DECLINED:
            forbidden.add(pair)
        elif a.status in BOOKED or a.pinned:
            pinned.append({"demand": pair[0], "volunteer": pair[1],
                           "override": bool(a.override_reason) or a.status in BOOKED})
            forbidden.discard(pair)
        if repair and a.status in STANDING:
            previous.append({"demand": pair[0], "volunteer": pair[1]})
    pinned_pairs = {(p["demand"], p["volunteer"]) for p in pinned}

    familiar = set()
    residents = {o.demand.resident_id for o in occurrences if o.demand.resident_id}
    if residents:
        since = start - timedelta(weeks=FAMILIAR_WEEKS)
        for rid, vid in db.session.execute(
            select(Demand.resident_id, Assignment.volunteer_id).join(DemandOccurrence, Demand.occurrences)
            .join(Assignment, Assignment.occurrence_id == DemandOccurrence.id)
            .where(among(Demand.resident_id, residents), Assignment.status == AssignmentStatus.COMPLETED,
                   DemandOccurrence.starts_at >= since, DemandOccurrence.starts_at < start,
                   among(Assignment.volunteer_id, vol_ids))
        ):
            familiar.add((f"r{rid}", f"v{vid}"))

    merged_weights = {"priority": dict(DEFAULT_PRIORITY_WEIGHTS), **DEFAULT_WEIGHTS, **(weights or {})}
    if repair:
        merged_weights["keep_previous"] = merged_weights.get("keep_previous") or REPAIR_KEEP_PREVIOUS
    return {
        "schema": "linli.instance/1",
        "name": f"{schedule.area.name} {schedule.week_start.isoformat()}{' repair' if repair else ''}",
        "week_start": stamp(start),
        "travel": {"speed_kmh": rules.TRAVEL_SPEED_KMH, "detour_factor": rules.DETOUR_FACTOR},
        "weights": merged_weights,
        "volunteers": instance_volunteers,
        "demands": demands,
        "pinned": pinned,
        "forbidden": [{"demand": d, "volunteer": v} for d, v in sorted(forbidden - pinned_pairs)],
        "previous": previous,
        "familiar": [{"resident": r, "volunteer": v} for r, v in sorted(familiar)],
    }


def ref_id(text: str) -> int:
    """The database id behind an instance id such as 'd42'."""
    return int(text[1:])


def release_pins(instance: dict[str, Any], pairs: set[tuple[str, str]]) -> dict[str, Any]:
    """A copy of the instance with the given pinned pairs fixed outside the model.

    Used when pins cannot all hold (typically an accepted volunteer whose teammate declined and no
    one can complete the minimum team): the volunteer keeps that time as a commitment, the demand
    asks for one person fewer (a demand left needing nobody is dropped), so the rest of the week can
    still be scheduled around them.
    """
    out = {**instance, "volunteers": [dict(v) for v in instance["volunteers"]],
           "demands": [dict(d) for d in instance["demands"]]}
    demands = {d["id"]: d for d in out["demands"]}
    volunteers = {v["id"]: v for v in out["volunteers"]}
    for did, vid in sorted(pairs):
        d, v = demands[did], volunteers[vid]
        v["commitments"] = [*v.get("commitments", []),
                            {"start": d["start"], "end": d["end"], "location": d["location"]}]
        d["people"] -= 1
        d["min_people"] = max(1, min(d.get("min_people", 1) - 1, d["people"]))
    gone = {did for did, d in demands.items() if d["people"] < 1}
    out["demands"] = [d for d in out["demands"] if d["id"] not in gone]

    def keep(items):
        return [p for p in items if (p["demand"], p["volunteer"]) not in pairs and p["demand"] not in gone]

    for key in ("pinned", "forbidden", "previous"):
        out[key] = keep(instance.get(key, []))
    return out


# --------------------------------------------------------------------------- the solution back in


@dataclass
class SolutionRows:
    """A `linli.solution/1` read back in database ids."""

    pairs: dict[tuple[int, int], dict[str, Any]]  # (occurrence id, volunteer id) -> reasons, distance_km
    responsible: dict[int, int]  # occurrence id -> organization id
    gaps: list[tuple[int, int, list[str]]]  # (occurrence id, places missing, reason codes)


def read_solution(solution: dict[str, Any]) -> SolutionRows:
    """The solution's assignments, responsible organizations and gaps, in database ids."""
    return SolutionRows(
        pairs={(ref_id(a["demand"]), ref_id(a["volunteer"])): a for a in solution.get("assignments", [])},
        responsible={ref_id(r["demand"]): ref_id(r["organization"]) for r in solution.get("responsible", [])},
        gaps=[(ref_id(g["demand"]), g["missing"], g.get("reasons", [])) for g in solution.get("unfilled", [])])


@dataclass
class Changes:
    """What writing a solution into a schedule does, as (occurrence id, volunteer id) pairs."""

    kept: list[tuple[int, int]]
    added: list[tuple[int, int]]
    removed: list[tuple[int, int]]

    def counts(self) -> dict[str, int]:
        return {"kept": len(self.kept), "added": len(self.added), "removed": len(self.removed)}


def compare(schedule_id: int, solution: dict[str, Any]) -> Changes:
    """The solution against the schedule as it stands: pairs kept, added and removed.

    Booked and pinned assignments are never removed (the solver keeps pins), so they are not
    listed as removed even when a solution leaves them out.
    """
    proposed = set(read_solution(solution).pairs)
    current = {(a.occurrence_id, a.volunteer_id): a for a in db.session.scalars(
        select(Assignment).where(Assignment.schedule_id == schedule_id, Assignment.status.in_(FILLING))
        .execution_options(populate_existing=True))}
    removable = {pair for pair, a in current.items() if a.status not in BOOKED and not a.pinned}
    return Changes(kept=sorted(proposed & set(current)), added=sorted(proposed - set(current)),
                   removed=sorted(removable - proposed))


@dataclass
class Written:
    """What `apply_solution` wrote: the changes, the assignments it created, the ones left to withdraw,
    and the occurrences of the instance (whose status the caller refreshes once the withdrawals are done)."""

    changes: Changes
    created: list[Assignment]
    dropped: list[Assignment]
    occurrences: list[DemandOccurrence]


def pin_reasons(override: bool) -> list[str]:
    """The reasons of a pair the coordinator set by hand: the override when a rule was broken, else the pin."""
    return ["override"] if override else ["pinned"]


def apply_solution(schedule: Schedule, instance: dict[str, Any], solution: dict[str, Any], *,
                   published: bool, now: datetime) -> Written:
    """Write a solution into the schedule: new pairs become proposals (offers once published), kept
    ones get the solver's reasons, each occurrence of the instance its responsible organization.

    The pairs the solution leaves out are returned as `dropped`, not deleted: the caller withdraws
    them (`assignments.withdraw`, which tells the volunteers who had the offer) and then refreshes
    the occurrences' status.
    """
    rows = read_solution(solution)
    changes = compare(schedule.id, solution)
    by_pair = {(a.occurrence_id, a.volunteer_id): a for a in db.session.scalars(
        select(Assignment).where(Assignment.schedule_id == schedule.id))}
    dropped = [by_pair[pair] for pair in changes.removed]
    created = []
    for pair in changes.added:
        if pair in by_pair:  # e.g. a declined pair cannot come back (it is forbidden), but be safe
            continue
        info = rows.pairs[pair]
        a = Assignment(schedule_id=schedule.id, occurrence_id=pair[0], volunteer_id=pair[1],
                       organization_id=rows.responsible.get(pair[0]),
                       status=AssignmentStatus.OFFERED if published else AssignmentStatus.PROPOSED,
                       offered_at=now if published else None,
                       reasons=info.get("reasons", []), distance_km=info.get("distance_km"))
        db.session.add(a)
        created.append(a)
    for pair in changes.kept:
        a, info = by_pair[pair], rows.pairs[pair]
        if a.pinned:  # the coordinator's decision: its reason is the pin (or the override), not the solver's
            a.reasons = pin_reasons(bool(a.override_reason))
        elif a.status not in BOOKED:  # a booked service keeps the reasons it was accepted on
            a.reasons = info.get("reasons", a.reasons)
        a.distance_km = info.get("distance_km", a.distance_km)
        a.organization_id = rows.responsible.get(pair[0], a.organization_id)
    db.session.flush()
    occurrences = db.session.scalars(select(DemandOccurrence).where(
        DemandOccurrence.id.in_(ref_id(d["id"]) for d in instance["demands"]))).all()
    for occ in occurrences:
        if occ.status not in CLOSED:
            occ.responsible_organization_id = rows.responsible.get(occ.id)
    return Written(changes, created, dropped, list(occurrences))
