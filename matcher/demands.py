"""Use cases that change a demand and its dated occurrences: post, edit, cancel, expand, and the
review (审单) of an area that reviews its communities' demands before dispatch.

A demand is one resident's or station's need, one-off or weekly; `occurrence_times` expands it
into dated occurrences, and is the one expansion every path uses (posting, editing, the demo
district). Each function validates (every bad field named together), flushes and never commits.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import literal, select

from . import rules
from .access import can_change
from .assignments import withdraw
from .audit import record_audit
from .clock import local_now, local_today
from .db import db, flush_or_conflict
from .errors import AccessDenied, Conflict, ValidationError
from .fields import (
    DEMAND_PAST_DAYS,
    Fields,
    check_location,
    organizations_by_id,
    skills_by_code,
)
from .models import (
    CLOSED,
    STANDING,
    Area,
    AreaLevel,
    Assignment,
    Category,
    Demand,
    DemandOccurrence,
    DemandStatus,
    Gender,
    LocationKind,
    Priority,
    Resident,
    Role,
    Schedule,
    ScheduleStatus,
    Station,
    User,
)
from .models._types import ReviewState
from .notifications import demand_link, notify, tell_coordinators, tell_volunteers
from .settings import demand_horizon_days

# How far ahead weekly demands are expanded into dated occurrences.
OCCURRENCE_HORIZON_WEEKS = 8
STALE_DEMAND = _l("This demand was changed by someone else; reload and try again.")
WEEKDAYS = {str(d) for d in range(7)}


def occurrence_times(starts_on: date, weekdays: Iterable[int], repeat_until: date | None, start_minute: int,
                     duration_minutes: int, since: date, through: date) -> list[tuple[datetime, datetime]]:
    """(start, end) of each occurrence dated from `since` through `through` (inclusive), in order."""
    return [rules.occurrence_span(day, start_minute, duration_minutes)
            for day in rules.occurrence_dates(starts_on, weekdays, repeat_until, since,
                                              through + timedelta(days=1))]


def demand_times(demand: Demand, since: date, through: date) -> list[tuple[datetime, datetime]]:
    """The demand's occurrence times from `since` through `through` (see `occurrence_times`)."""
    return occurrence_times(demand.starts_on, demand.weekday_list, demand.repeat_until, demand.start_minute,
                            demand.duration_minutes, since, through)


def read_demand_what(f: Fields, community: Area, default_title: str = "") -> dict[str, Any]:
    """Category, title and resident of a demand form (the resident must live in the community)."""
    category = None
    code = f.text("category", required=True, max_length=40)
    if code and "category" not in f.errors:
        category = db.session.scalar(select(Category).where(Category.code == code, Category.active))
        if category is None:
            f.fail("category", _l("Unknown category '%(c)s'.", c=code))
    resident = None
    resident_id = f.integer("resident", minimum=1, default=0)
    if resident_id:
        resident = db.session.get(Resident, resident_id)
        if resident is None or resident.community_id != community.id:
            f.fail("resident", _l("No such resident in this community."))
            resident = None
    title = f.text("title", max_length=120) or (category.name_zh if category else default_title)
    return {"category": category, "title": title, "resident": resident}


def read_demand_place(f: Fields, community: Area, resident: Resident | None) -> dict[str, Any]:
    """Where: the resident's home, a station, or a point inside the district."""
    kind = f.choice("location_kind", LocationKind, required=True)
    station, lat, lon = None, None, None
    address = f.text("address", max_length=200)
    if kind == LocationKind.HOME:
        if resident is None:
            f.fail("location_kind", _l("A visit at home needs a resident."))
        else:
            lat, lon, address = resident.lat, resident.lon, resident.address
    elif kind == LocationKind.STATION:
        station_id = f.integer("station", minimum=1)
        station = db.session.get(Station, station_id) if station_id else None
        if station is not None and station.area_id not in (community.id, community.parent_id):
            station = None  # another community's venue: not this community's to book
        if station_id and station is None:
            f.fail("station", _l("No such station in this community or its township."))
        elif station is not None:
            lat, lon, address = station.lat, station.lon, station.address or station.name
    elif kind == LocationKind.POINT:
        lat, lon = f.number("lat"), f.number("lon")
        check_location(f, lat, lon, community)
    return {"location_kind": kind, "station": station, "lat": lat, "lon": lon, "address": address}


def read_demand_when(f: Fields, *, current_start: date | None = None, current_until: date | None = None,
                     allow_past: bool = False) -> dict[str, Any]:
    """A date and time, or a weekly recurrence.

    The date lies from today to `demand_horizon_days()` ahead (a setting, a year by default), and so
    does the end of a weekly recurrence, which is on or after its first date. `allow_past` accepts
    dates from DEMAND_PAST_DAYS ago (recording a service already given: scripts and tests, never the
    form). The values an edited demand has now (`current_start`, `current_until`) are accepted
    wherever they lie, so a demand with past occurrences can still be edited.
    """
    today = local_today()
    earliest = today - timedelta(days=DEMAND_PAST_DAYS) if allow_past else today
    horizon_days = demand_horizon_days()
    latest = today + timedelta(days=horizon_days)
    day = f.date("date")
    if day is not None and day != current_start:
        if day < earliest:
            if allow_past:
                f.fail("date", _l("Enter a date from %(a)s to %(b)s.", a=earliest.isoformat(), b=latest.isoformat()))
            else:
                f.fail("date", _l("The date %(d)s has passed: choose today (%(t)s) or a later day.",
                                  d=day.isoformat(), t=earliest.isoformat()))
            day = None
        elif day > latest:
            f.fail("date", _l("The date is too far ahead: a demand is posted at most %(n)d days ahead "
                              "(until %(d)s).", n=horizon_days, d=latest.isoformat()))
            day = None
    start, end = f.clock("start"), f.clock("end")
    if start is not None and end is not None and end <= start:
        f.fail("end", _l("The end must be after the start."))
    weekdays: list[int] = []
    repeat_until = None
    if f.flag("recurring"):
        raw = f.items("weekdays")
        if not raw:
            f.fail("weekdays", _l("A weekly recurrence needs at least one day."))
        elif any(d not in WEEKDAYS for d in raw):
            f.fail("weekdays", _l("Weekdays are numbers 0 (Monday) to 6 (Sunday)."))
        else:
            weekdays = sorted({int(d) for d in raw})
        repeat_until = f.date("repeat_until", required=False)
        if repeat_until is not None and repeat_until != current_until and repeat_until > latest:
            f.fail("repeat_until", _l("A weekly recurrence may run at most %(n)d days ahead (until %(d)s).",
                                      n=horizon_days, d=latest.isoformat()))
            repeat_until = None
        if repeat_until and day and repeat_until < day:
            f.fail("repeat_until", _l("The recurrence must end on or after its first date."))
    duration = end - start if start is not None and end is not None else None
    return {"starts_on": day, "start_minute": start, "duration_minutes": duration,
            "weekdays": ",".join(map(str, weekdays)), "repeat_until": repeat_until}


def read_demand_team(f: Fields, data: Mapping[str, Any], category: Category | None,
                     previous_category_id: int | None = None) -> dict[str, Any]:
    """Headcount, minimum, priority, gender, skills and notes.

    Skills are read when the form sends them; otherwise a new (or changed) category brings its own.
    """
    people = f.integer("people", minimum=1, maximum=200, default=category.default_people if category else 1)
    min_people = f.integer("min_people", minimum=1, maximum=200,
                           default=category.default_min_people if category else 1)
    if people is not None and min_people is not None and people < min_people:
        f.fail("people", _l("The headcount cannot be below the minimum team (%(m)d).", m=min_people))
    values = {"people": people, "min_people": min_people,
              "priority": f.choice("priority", Priority, default=Priority.NORMAL),
              "gender": f.choice("gender", Gender), "notes": f.text("notes", max_length=2000)}
    if "skills" in data or "skills_any" in data:
        values["skills"], values["skills_any"] = skills_by_code(f, "skills"), skills_by_code(f, "skills_any")
    elif category is not None and category.id != previous_category_id:
        values["skills"], values["skills_any"] = (
            ([], list(category.skills)) if category.skills_any else (list(category.skills), []))
    return values


def create_demand(data: Mapping[str, Any], *, community: Area, user: User | None, allow_past: bool = False) -> Demand:
    """Post a demand for a community and expand its occurrences; raises ValidationError.

    Its date lies from today to the horizon (`read_demand_when`; `allow_past` for recording a
    service already given, never from the form).
    """
    f = Fields(data)
    if community.level != AreaLevel.COMMUNITY:
        f.fail("community", _l("Demands are posted for a village or community."))
    values = read_demand_what(f, community)
    values.update(read_demand_place(f, community, values["resident"]))
    values.update(read_demand_when(f, allow_past=allow_past))
    values.update(read_demand_team(f, data, values["category"]))
    organizations = organizations_by_id(f, "organizations")
    f.check()
    demand = Demand(community=community, created_by=user, status=DemandStatus.OPEN, organizations=organizations,
                    one_organization=f.flag("one_organization"), **values)
    db.session.add(demand)
    db.session.flush()
    materialize_occurrences(demand, demand.starts_on + timedelta(weeks=OCCURRENCE_HORIZON_WEEKS))
    record_audit(user, "create", demand, community=community.id)
    submit_for_review(demand, user=user)
    return demand


def materialize_occurrences(demand: Demand, through: date) -> list[DemandOccurrence]:
    """Create the demand's missing occurrences dated up to `through` (inclusive); return the new ones."""
    existing = {o.starts_at for o in demand.occurrences}
    created = []
    for start, end in demand_times(demand, demand.starts_on, through):
        if start in existing:
            continue
        occ = DemandOccurrence(demand=demand, starts_at=start, ends_at=end, status=DemandStatus.OPEN)
        db.session.add(occ)
        created.append(occ)
    db.session.flush()
    return created


TIMING = ("starts_on", "start_minute", "duration_minutes", "weekdays", "repeat_until")


def update_demand(demand: Demand, data: Mapping[str, Any], *, user: User, version: int | None) -> dict[str, int]:
    """Change a demand before it is served (its community's worker only).

    Validates like `create_demand` (every bad field named, nothing written). When the time or the
    recurrence changed, future occurrences are re-dated: one whose start is unchanged keeps its id
    (and its assignments); one no longer wanted is removed, or cancelled (its offers withdrawn) when
    people were already on it. If any of its occurrences lies in a published schedule's week, the
    coordinators over the community are told, and so are the volunteers offered or booked on its
    coming occurrences. Where the community's area reviews demands, a returned demand, or one changed
    in more than its title or notes before anyone is offered or booked on it, waits for review
    again (`submit_for_review`). Returns counts {"added", "removed", "notified"}.
    """
    if not can_change(user, demand):
        raise AccessDenied(str(_l("Only the community's worker can edit this demand.")))
    if version is None:
        raise ValidationError({"version": str(_l("The form is incomplete; reload the page and try again."))})
    if version != demand.version:
        raise Conflict(str(STALE_DEMAND))
    if demand.status in CLOSED:
        raise Conflict(str(_l("This demand is already closed (%(s)s) and cannot be edited.", s=demand.status.value)))
    f = Fields(data)
    values = read_demand_what(f, demand.community, demand.title)
    values.update(read_demand_place(f, demand.community, values["resident"]))
    values.update(read_demand_when(f, current_start=demand.starts_on, current_until=demand.repeat_until))
    values.update(read_demand_team(f, data, values["category"], demand.category_id))
    f.check()
    now = local_now()
    weeks_before = _future_weeks(demand, now)
    retimed = any(getattr(demand, k) != values[k] for k in TIMING)
    changed = sorted(k for k, v in values.items() if getattr(demand, k) != v)
    for key, value in values.items():
        setattr(demand, key, value)
    demand.one_organization = f.flag("one_organization") if "one_organization" in data else demand.one_organization
    added = removed = 0
    if retimed:
        added, removed = _redate_occurrences(demand, now)
    flush_or_conflict(STALE_DEMAND)
    notified = 0
    published = _published_schedules(demand.community, weeks_before | _future_weeks(demand, now))
    if published and changed:
        notified = tell_coordinators(demand.community, "demand_changed", link=demand_link(demand.id),
                                     params={"t": demand.title, "c": demand.community.name})
        notified += tell_volunteers("offer_changed", _standing_assignments(demand, now),
                                    _l("Check the time and place before you go."))
    record_audit(user, "update", demand, fields=changed, added=added, removed=removed, notified=notified)
    if demand.review == ReviewState.RETURNED or (set(changed) - IMMATERIAL
                                                 and not _standing_assignments(demand, now)):
        submit_for_review(demand, user=user)
    flush_or_conflict(STALE_DEMAND)
    return {"added": added, "removed": removed, "notified": notified}


def _future_weeks(demand: Demand, now: datetime) -> set[date]:
    return {rules.week_monday(o.starts_at.date()) for o in demand.occurrences
            if o.starts_at >= now and o.status not in CLOSED}


def _standing_assignments(demand: Demand, now: datetime) -> list[Assignment]:
    """Offers and bookings on the demand's coming occurrences that still take place."""
    ids = [o.id for o in demand.occurrences if o.id is not None and o.starts_at >= now and o.status not in CLOSED]
    return list(db.session.scalars(select(Assignment).where(Assignment.occurrence_id.in_(ids),
                                                            Assignment.status.in_(STANDING))))


def _published_schedules(community: Area, weeks: set[date]) -> list[Schedule]:
    if not weeks:
        return []
    return list(db.session.scalars(
        select(Schedule).join(Area, Schedule.area_id == Area.id)
        .where(Schedule.status == ScheduleStatus.PUBLISHED, Schedule.week_start.in_(weeks),
               literal(community.path).startswith(Area.path))))


def _redate_occurrences(demand: Demand, now: datetime) -> tuple[int, int]:
    """Bring future occurrences in line with the demand's (new) time and recurrence."""
    horizon = max(now.date(), demand.starts_on) + timedelta(weeks=OCCURRENCE_HORIZON_WEEKS)
    wanted = {start: end for start, end in demand_times(demand, now.date(), horizon) if start >= now}
    occ_ids = [o.id for o in demand.occurrences if o.id is not None]
    staffed = defaultdict(list)
    for a in db.session.scalars(select(Assignment).where(Assignment.occurrence_id.in_(occ_ids))):
        staffed[a.occurrence_id].append(a)
    by_start = {o.starts_at: o for o in demand.occurrences}
    removed = 0
    for occ in list(demand.occurrences):
        if occ.starts_at < now or occ.status == DemandStatus.DONE:
            continue
        if occ.starts_at in wanted:
            occ.ends_at = wanted[occ.starts_at]
            if occ.status == DemandStatus.CANCELLED:
                occ.status = DemandStatus.OPEN
        elif occ.status == DemandStatus.CANCELLED:
            continue
        elif staffed[occ.id]:
            occ.status = DemandStatus.CANCELLED
            withdraw(staffed[occ.id], _l("The service no longer takes place at that time."))
            removed += 1
        else:
            demand.occurrences.remove(occ)
            removed += 1
    added = 0
    for start, end in wanted.items():
        if start not in by_start:
            db.session.add(DemandOccurrence(demand=demand, starts_at=start, ends_at=end, status=DemandStatus.OPEN))
            added += 1
    return added, removed


CANCEL_REASON_LIMIT = 300


def cancel_demand(demand: Demand, *, user: User, version: int | None = None, reason: Any = None) -> dict[str, int]:
    """Cancel a demand's coming occurrences (its community's worker only), for a stated reason.

    The reason is required (a ValidationError on "reason" otherwise, nothing written). Pending
    offers are withdrawn; the volunteers offered or booked and the coordinators over the community
    are told, with the reason. A stale version is a Conflict. Returns counts {"cancelled", "notified"}.
    """
    if not can_change(user, demand):
        raise AccessDenied(str(_l("Only the community's worker can cancel this demand.")))
    if version is not None and version != demand.version:
        raise Conflict(str(STALE_DEMAND))
    if demand.status in CLOSED:
        raise Conflict(str(_l("This demand is already closed (%(s)s).", s=demand.status.value)))
    f = Fields({"reason": reason})
    why = f.text("reason", max_length=CANCEL_REASON_LIMIT, required=_l(
        "Say why the demand is cancelled: the volunteers and coordinators are told."))
    f.check()
    demand.status = DemandStatus.CANCELLED
    now, cancelled, notified = local_now(), 0, 0
    for occ in demand.occurrences:
        if occ.starts_at >= now and occ.status not in CLOSED:
            occ.status = DemandStatus.CANCELLED
            cancelled += 1
            notified += withdraw(db.session.scalars(select(Assignment).where(Assignment.occurrence_id == occ.id)),
                                 _l("The demand was cancelled: %(r)s", r=why))["told"]
    if cancelled:
        notified += tell_coordinators(demand.community, "demand_cancelled", link=demand_link(demand.id),
                                      params={"t": demand.title, "c": demand.community.name, "r": why})
    record_audit(user, "cancel", demand, occurrences=cancelled, notified=notified, reason=why)
    flush_or_conflict(STALE_DEMAND)
    return {"cancelled": cancelled, "notified": notified}


# --------------------------------------------------------------------------- review (审单)
#
# A township or district may review its communities' demands before they are dispatched
# (`Area.review_demands`; a community inherits it from any area above it). A new demand there, or
# one changed in what, where, when or who (not only its title or notes) before anyone is offered
# or booked on it, waits as `pending`: never planned (`problem.schedule_occurrences` leaves out
# AWAITING_REVIEW) until a coordinator over it (or the admin) approves it, or returns it to the
# community's worker with a reason; editing a returned demand sends it for review again.
#
# Urgent demands are not let through on their own: the priority is the worker's choice, so that
# would let any demand skip the review. They head the queue, their notice to the coordinators says
# "urgent", and one click approves them.

# Edits that do not send a demand for review again.
IMMATERIAL = {"title", "notes"}
RETURN_REASON_LIMIT = 300


def reviewing_area(community: Area) -> Area | None:
    """The nearest township or district above the community that reviews demands, or None."""
    ancestors = [int(x) for x in community.path.strip("/").split("/") if x and int(x) != community.id]
    if not ancestors:
        return None
    areas = {a.id: a for a in db.session.scalars(select(Area).where(Area.id.in_(ancestors), Area.review_demands))}
    return next((areas[i] for i in reversed(ancestors) if i in areas), None)


def submit_for_review(demand: Demand, *, user: User | None) -> bool:
    """Hold the demand for review where its area asks for one and tell the coordinators; True if held."""
    if reviewing_area(demand.community) is None:
        return False
    was = demand.review
    demand.review = ReviewState.PENDING
    if was != ReviewState.PENDING:
        event = "demand_review_urgent" if demand.priority == Priority.URGENT else "demand_review"
        tell_coordinators(demand.community, event, link=demand_link(demand.id),
                          params={"t": demand.title, "c": demand.community.name})
        record_audit(user, "submit_review", demand, priority=demand.priority.value)
    return True


def can_review(user: User, demand: Demand) -> bool:
    """The admin, or a coordinator whose area contains the demand's community."""
    if user.role == Role.ADMIN:
        return True
    if user.role != Role.COORDINATOR or user.area_id is None:
        return False
    area = db.session.get(Area, user.area_id)
    return area is not None and area.contains(demand.community)


def _community_workers(community: Area) -> list[User]:
    return list(db.session.scalars(select(User).where(User.role == Role.WORKER, User.active,
                                                      User.area_id == community.id).order_by(User.id)))


def _check_reviewable(demand: Demand, user: User) -> None:
    if not can_review(user, demand):
        raise AccessDenied(str(_l("Only a coordinator over the community can review this demand.")))
    if demand.review != ReviewState.PENDING or demand.status in CLOSED:
        raise Conflict(str(_l("This demand is not waiting for review.")))


def approve_demand(demand: Demand, *, user: User) -> None:
    """Let a demand waiting for review be dispatched; the community's workers are told."""
    _check_reviewable(demand, user)
    demand.review = ReviewState.APPROVED
    demand.review_note = ""
    notify(_community_workers(demand.community), "demand_approved", link=demand_link(demand.id),
           params={"t": demand.title})
    record_audit(user, "approve_demand", demand, priority=demand.priority.value)
    flush_or_conflict(STALE_DEMAND)


def approve_demands(demands: Iterable[Demand], *, user: User) -> int:
    """Approve every demand given that waits for review and the user may review; returns how many."""
    count = 0
    for demand in demands:
        if demand.review == ReviewState.PENDING and demand.status not in CLOSED and can_review(user, demand):
            approve_demand(demand, user=user)
            count += 1
    return count


def return_demand(demand: Demand, *, user: User, reason: Any) -> None:
    """Send a demand waiting for review back to its community's workers with a reason (required)."""
    _check_reviewable(demand, user)
    f = Fields({"reason": reason})
    why = f.text("reason", max_length=RETURN_REASON_LIMIT, required=_l(
        "Say what the worker should change: they see it on the demand."))
    f.check()
    demand.review = ReviewState.RETURNED
    demand.review_note = why
    notify(_community_workers(demand.community), "demand_returned", link=demand_link(demand.id),
           params={"t": demand.title, "r": why})
    record_audit(user, "return_demand", demand, reason=why)
    flush_or_conflict(STALE_DEMAND)


def review_areas(user: User) -> list[Area]:
    """The townships and districts whose review setting the user may change: the admin all, a
    coordinator their own area and the townships under it."""
    stmt = select(Area).where(Area.level.in_([AreaLevel.DISTRICT, AreaLevel.TOWNSHIP]))
    if user.role != Role.ADMIN:
        area = db.session.get(Area, user.area_id) if user.role == Role.COORDINATOR and user.area_id else None
        if area is None or area.level == AreaLevel.COMMUNITY:
            return []
        stmt = stmt.where(Area.path.startswith(area.path))
    return list(db.session.scalars(stmt.order_by(Area.path)))


def set_area_review(area: Area, on: bool, *, user: User) -> int:
    """Turn the review of an area's demands on or off (a coordinator of it or above, or the admin).

    Turning it off lets through the demands waiting for it that no other area reviews (returned
    ones stay with their worker). Returns how many were let through.
    """
    if area.id not in {a.id for a in review_areas(user)}:
        raise AccessDenied(str(_l("Only a coordinator of this area can change its review.")))
    released = 0
    if area.review_demands != on:
        area.review_demands = on
        db.session.flush()
        if not on:
            waiting = db.session.scalars(select(Demand).join(Area, Demand.community_id == Area.id).where(
                Area.path.startswith(area.path), Demand.review == ReviewState.PENDING))
            for demand in waiting:
                if reviewing_area(demand.community) is None:
                    demand.review = ReviewState.APPROVED
                    released += 1
        record_audit(user, "set_review", area, on=on, released=released)
        db.session.flush()
    return released
