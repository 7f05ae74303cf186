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
from .db import among, db, flush_or_conflict
from .errors import AccessDenied, Conflict, ValidationError
from .fields import (
    DEMAND_PAST_DAYS,
    MAX_ROW_ID,
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


def read_demand_what(f: Fields, community: Area, default_title: str = "",
                     categories: Mapping[str, Category] | None = None) -> dict[str, Any]:
    """Category, title and resident of a demand form (the resident must live in the community).

    `categories` is the active categories by code, loaded once by an import for all its rows (else the
    category is looked up)."""
    category = None
    code = f.text("category", required=True, max_length=40)
    if code and "category" not in f.errors:
        if categories is not None:
            category = categories.get(code)
        else:
            category = db.session.scalar(select(Category).where(Category.code == code, Category.active))
        if category is None:
            f.fail("category", _l("Unknown category '%(c)s'.", c=code))
    resident = None
    resident_id = f.integer("resident", minimum=1, maximum=MAX_ROW_ID, default=0)
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
        station_id = f.integer("station", minimum=1, maximum=MAX_ROW_ID)
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


def create_demand(data: Mapping[str, Any], *, community: Area, user: User | None, allow_past: bool = False,
                  categories: Mapping[str, Category] | None = None) -> Demand:
    """Post a demand for a community and expand its occurrences; raises ValidationError.

    Its date lies from today to the horizon (`read_demand_when`; `allow_past` for recording a
    service already given, never from the form).
    """
    f = Fields(data)
    if community.level != AreaLevel.COMMUNITY:
        f.fail("community", _l("Demands are posted for a village or community."))
    values = read_demand_what(f, community, categories=categories)
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


def update_demand(demand: Demand, data: Mapping[str, Any], *, user: User, version: int | None,
                  categories: Mapping[str, Category] | None = None) -> dict[str, int]:
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
    values = read_demand_what(f, demand.community, demand.title, categories)
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


# ============================================================================ the demands export
# Read models for the demands spreadsheet (web/exports.py, issue 12): the list page's filters as one
# query, and one row per demand with its week's staffing, plus the week's services left short with the
# solver's reasons. A fixed handful of statements whatever the number of demands. Nothing is changed.

DEMAND_EXPORT_COLUMNS = ("编号", "社区", "居民", "居民电话", "服务", "类别", "优先级", "日期安排", "时间", "地点",
                         "需要人数", "状态", "审核", "创建人", "创建时间", "本周服务", "已排满", "缺人")
UNMET_COLUMNS = ("日期", "时间", "社区", "服务", "优先级", "需要人数", "已安排", "缺少人数", "原因")
_EXPORT_WEEKDAYS = "一二三四五六日"


class DemandFilters:
    """The demands list's filters (?q=, status, category, review), already read and checked."""

    def __init__(self, q: str = "", status: DemandStatus | None = None, category: Category | None = None,
                 review: ReviewState | None = None):
        self.q, self.status, self.category, self.review = q, status, category, review


def filtered_demands(user: User, filters: DemandFilters):
    """The SELECT of the demands list: the user's scope, search by title, status, category, review, in the
    list's order (the review queue: urgent first, then the soonest)."""
    from sqlalchemy import case

    from .access import visible

    stmt = visible(select(Demand), Demand, user)
    if filters.q:
        stmt = stmt.where(Demand.title.contains(filters.q))  # as the list page searches
    if filters.status is not None:
        stmt = stmt.where(Demand.status == filters.status)
    if filters.category is not None:
        stmt = stmt.where(Demand.category_id == filters.category.id)
    order = (Demand.starts_on.desc(), Demand.id.desc())
    if filters.review is not None:
        stmt = stmt.where(Demand.review == filters.review)
        if filters.review == ReviewState.PENDING:
            urgency = case({p.value: i for i, p in enumerate(Priority)}, value=Demand.priority)
            order = (urgency, Demand.starts_on, Demand.id)
    return stmt.order_by(*order)


class DemandSheets:
    """The demands export's tables: `demands` one row per demand (`DEMAND_EXPORT_COLUMNS`), `unmet` one row
    per service of the week left short (`UNMET_COLUMNS`)."""

    def __init__(self, demands: list[list[Any]], unmet: list[list[Any]]):
        self.demands, self.unmet = demands, unmet


def demand_sheets(user: User, filters: DemandFilters, week_start: date, *, word=str, review_word=str,
                  phone=rules.mask_phone) -> DemandSheets:
    """The demands `user` sees through `filters`, with the week's services staffed and short, and those short
    with the reasons of the newest applied run (as the community's week page shows them).

    `word(code)` words a status, priority, place kind or reason code and `review_word(state)` a review state
    (the web layer's labels); `phone` shows a resident's phone (masked unless the caller may reveal it). The
    resident's name is given where the user may see the resident (as the demand page does), else left out;
    a home's address is never given (the demand page leaves it out too)."""
    from datetime import UTC
    from zoneinfo import ZoneInfo

    from sqlalchemy import func
    from sqlalchemy.orm import selectinload

    from .access import visible
    from .clock import DEFAULT_TIMEZONE
    from .db import among
    from .settings import setting
    from .weeks import newest_gaps

    demands = list(db.session.scalars(filtered_demands(user, filters).options(
        selectinload(Demand.community), selectinload(Demand.category), selectinload(Demand.resident),
        selectinload(Demand.station), selectinload(Demand.created_by))))
    ids = [d.id for d in demands]
    resident_ids = {d.resident_id for d in demands if d.resident_id is not None}
    shown_residents = set(db.session.scalars(visible(select(Resident.id).where(
        among(Resident.id, resident_ids)), Resident, user))) if resident_ids else set()
    start = datetime.combine(week_start, datetime.min.time())
    occurrences = list(db.session.scalars(select(DemandOccurrence).where(
        among(DemandOccurrence.demand_id, ids), DemandOccurrence.starts_at >= start,
        DemandOccurrence.starts_at < start + timedelta(days=7))
        .order_by(DemandOccurrence.starts_at, DemandOccurrence.id))) if ids else []
    occ_ids = [o.id for o in occurrences]
    standing = dict(db.session.execute(select(Assignment.occurrence_id, func.count(Assignment.id)).where(
        among(Assignment.occurrence_id, occ_ids), Assignment.status.in_(STANDING))
        .group_by(Assignment.occurrence_id)).all()) if occ_ids else {}
    gaps = newest_gaps(occ_ids, occurrences, week_start)
    zone = ZoneInfo(setting("TIMEZONE", DEFAULT_TIMEZONE))

    by_demand: dict[int, list[DemandOccurrence]] = defaultdict(list)
    unmet = []
    for o in occurrences:
        if o.status == DemandStatus.CANCELLED:
            continue
        by_demand[o.demand_id].append(o)
        d = o.demand
        on_it = standing.get(o.id, 0)
        if o.status not in CLOSED and on_it < d.people:
            gap = gaps.get(o.id)
            unmet.append([o.starts_at.date().isoformat(), f"{o.starts_at:%H:%M}-{o.ends_at:%H:%M}", d.community.name,
                          d.title, word(d.priority.value), d.people, on_it, d.people - on_it,
                          "；".join(word(r) for r in gap.reasons) if gap is not None else ""])
    rows = []
    for d in demands:
        week = by_demand[d.id]
        staffed = sum(1 for o in week if o.status in CLOSED or standing.get(o.id, 0) >= d.people)
        resident = d.resident if d.resident_id in shown_residents else None
        if d.weekday_list:
            days = "、".join("周" + _EXPORT_WEEKDAYS[w] for w in d.weekday_list)
            until = f"至{d.repeat_until.isoformat()}" if d.repeat_until else ""
            when = f"每{days}（{d.starts_on.isoformat()}起{until}）"
        else:
            when = d.starts_on.isoformat()
        place = word(d.location_kind.value)
        if d.station is not None:
            place += f"：{d.station.name}"
        if d.location_kind != LocationKind.HOME and d.address:
            place += f" {d.address}"
        creator = (d.created_by.display_name or d.created_by.username) if d.created_by is not None else ""
        created = d.created_at.replace(tzinfo=UTC).astimezone(zone).strftime("%Y-%m-%d %H:%M")
        rows.append([d.id, d.community.name, resident.name if resident else "",
                     phone(resident.phone) if resident and resident.phone else "", d.title,
                     d.category.name_zh if d.category else "", word(d.priority.value), when,
                     f"{rules.format_minutes(d.start_minute)}-{rules.format_minutes(d.start_minute + d.duration_minutes)}",
                     place, d.people, word(d.status.value), review_word(d.review) if d.review else "", creator, created,
                     len(week), staffed, len(week) - staffed])
    return DemandSheets(rows, unmet)


# --------------------------------------------------------------------------- the import
# A community's demands from a spreadsheet (community workers for their community, coordinators for
# their area): each row is read by the form's own readers (`read_demand_what`, `read_demand_place`,
# `read_demand_when`, `read_demand_team`), so the same rules and messages apply, and written by
# `create_demand` (or `update_demand`). A demand is found again by its natural key: community,
# resident (or, without one, its title), category, first date and start time; importing the same file
# twice changes nothing, and a row whose key matches with other details (headcount, end, weekdays,
# place, notes) updates that demand (its community's worker only, as on the form).

IMPORT_COLUMNS = (
    ("community", "所在社区", "Community", True),
    ("resident", "居民姓名", "Resident", False),
    ("resident_phone", "居民电话", "Resident's phone", False),
    ("category", "服务类别", "Category", True),
    ("title", "标题", "Title", False),
    ("date", "日期", "Date", True),
    ("time", "时间", "Time", True),
    ("weekly", "每周重复", "Weekly on", False),
    ("until", "重复至", "Repeat until", False),
    ("place", "服务地点", "Place", False),
    ("people", "人数", "People", False),
    ("min_people", "最少人数", "Minimum people", False),
    ("priority", "优先级", "Priority", False),
    ("notes", "备注", "Notes", False),
)
IMPORT_TITLES = {key: zh for key, zh, _en, _req in IMPORT_COLUMNS}
PRIORITY_NAMES = {"紧急": Priority.URGENT, "高": Priority.HIGH, "普通": Priority.NORMAL, "一般": Priority.NORMAL,
                  "低": Priority.LOW, **{p.value: p for p in Priority}}
# The form's field names → the spreadsheet's columns (for the messages of the shared readers).
FIELD_COLUMNS = {"category": "category", "resident": "resident", "title": "title", "location_kind": "place",
                 "station": "place", "address": "place", "lat": "place", "date": "date", "start": "time",
                 "end": "time", "weekdays": "weekly", "repeat_until": "until", "people": "people",
                 "min_people": "min_people", "priority": "priority", "gender": "notes", "notes": "notes",
                 "community": "community", "lon": "place", "starts_on": "date", "start_minute": "time",
                 "duration_minutes": "time"}


def import_example() -> dict[str, str]:
    day = local_today() + timedelta(days=7)
    return {"community": "桂花社区", "resident": "李秀英", "resident_phone": "13800138001", "category": "助老服务",
            "title": "陪同就医", "date": day.isoformat(), "time": "09:00-11:00", "weekly": "",
            "until": "", "place": "", "people": "1", "min_people": "1", "priority": "普通", "notes": "需轮椅"}


def _natural_key(community_id: int, resident_id: int | None, category_id: int, starts_on: date, start: int,
                 title: str) -> tuple:
    return (community_id, resident_id, category_id, starts_on, start, "" if resident_id else title)


def plan_demands(sheet, user: User, progress=None) -> Any:
    """Judge every row of a demand list without writing anything."""
    from .imports import (
        CellProblem,
        Plan,
        RowPlan,
        cell_date,
        cell_time_range,
        community_cell,
        duplicates,
        importer_scope,
        mainland_mobile,
        no_progress,
        read_rows,
        split_items,
    )
    from .rosters import WEEKDAY_NAMES

    progress = progress or no_progress
    scope = importer_scope(user)
    categories: dict[str, Category] = {}
    by_code: dict[str, Category] = {}
    for c in db.session.scalars(select(Category).where(Category.active)):
        categories.update({c.code: c, c.name_zh: c, c.name_en.lower(): c})
        by_code[c.code] = c
    residents: dict[tuple, list[Resident]] = defaultdict(list)
    stations: dict[tuple, list[Station]] = defaultdict(list)
    if scope.communities:
        for r in db.session.scalars(select(Resident).where(Resident.community_id.in_(list(scope.communities)))):
            residents[(r.community_id, r.name)].append(r)
            if r.phone:
                residents[(r.community_id, r.phone)].append(r)
        parents = {a.parent_id for a in scope.communities.values() if a.parent_id}
        for s in db.session.scalars(select(Station).where(Station.area_id.in_(list(scope.communities) + list(parents)))):
            stations[(s.area_id, s.name)].append(s)

    def judge(number: int, cells: dict[str, str], fail) -> dict | None:
        community = None
        if not cells.get("community"):
            fail("community", _l("Enter the demand's community."))
        else:
            community, problem = community_cell(scope, cells["community"])
            if problem:
                fail("community", problem)
        category = None
        text = cells.get("category", "")
        if not text:
            fail("category", _l("Enter the category of service."))
        else:
            category = categories.get(text) or categories.get(text.lower())
            if category is None:
                fail("category", _l("Unknown category '%(c)s': use the names of the category list.", c=text[:20]))
        day = cell_date(cells.get("date", ""))
        if day is None:
            fail("date", _l("'%(d)s' is not a date: write it as 2026-12-07.", d=cells.get("date", "")[:20]))
        span = cell_time_range(cells.get("time", ""))
        if span is None:
            fail("time", _l("Cannot read '%(t)s': write the start and end as 09:00-11:00 (start before end).",
                            t=cells.get("time", "")[:20]))
        weekdays = []
        for part in split_items(cells.get("weekly", "")):
            found = WEEKDAY_NAMES.get(part.removeprefix("周").removeprefix("星期").lower())
            if found is None:
                fail("weekly", _l("Cannot read '%(d)s': write weekdays as 周一；周四.", d=part[:10]))
            elif found not in weekdays:
                weekdays.append(found)
        until = None
        if cells.get("until"):
            until = cell_date(cells["until"])
            if until is None:
                fail("until", _l("'%(d)s' is not a date: write it as 2026-12-07.", d=cells["until"][:20]))
            elif not weekdays:
                fail("until", _l("A repeat end needs the weekdays it repeats on (每周重复)."))
        priority = Priority.NORMAL
        if cells.get("priority"):
            priority = PRIORITY_NAMES.get(cells["priority"].lower())
            if priority is None:
                fail("priority", _l("Write 紧急, 高, 普通 or 低."))
        if community is None:
            return None
        resident = None
        name, phone_text = cells.get("resident", ""), cells.get("resident_phone", "")
        if phone_text:
            phone, problem = mainland_mobile(phone_text)
            if problem and not (phone := rules.normalize_phone(phone_text.replace(" ", ""))):
                fail("resident_phone", problem)
            else:
                found = residents.get((community.id, phone), [])
                if len(found) == 1:
                    resident = found[0]
                else:
                    fail("resident_phone", _l("No resident with this phone in %(c)s: import or register the "
                                              "resident first.", c=community.name))
        elif name:
            found = residents.get((community.id, name), [])
            if len(found) == 1:
                resident = found[0]
            elif not found:
                fail("resident", _l("No resident '%(n)s' in %(c)s: import or register the resident first.",
                                    n=name[:20], c=community.name))
            else:
                fail("resident", _l("Several residents of %(c)s are called '%(n)s': add the resident's phone.",
                                    n=name[:20], c=community.name))
        if resident is not None and name and resident.name != name:
            fail("resident", _l("The phone belongs to %(n)s, not to this name.", n=resident.name))
        place = cells.get("place", "")
        station = None
        if place and place not in ("居民家", "家中", "上门"):
            options = stations.get((community.id, place)) or stations.get((community.parent_id, place)) or []
            if len(options) != 1:
                fail("place", _l("No station '%(s)s' in this community or its street: write a station's name, "
                                 "or leave it blank for the resident's home.", s=place[:30]))
            else:
                station = options[0]
        elif resident is None and not (name or phone_text):
            fail("place", _l("Name a resident (served at home) or a station."))
        if category is None or day is None or span is None:
            return None
        data = {"category": category.code, "resident": str(resident.id) if resident else "",
                "title": cells.get("title", ""), "location_kind": "station" if station else "home",
                "station": str(station.id) if station else "", "date": day.isoformat(),
                "start": f"{span[0] // 60:02d}:{span[0] % 60:02d}", "end": f"{span[1] // 60:02d}:{span[1] % 60:02d}",
                "recurring": "1" if weekdays else "", "weekdays": [str(d) for d in sorted(weekdays)],
                "repeat_until": until.isoformat() if until else "", "priority": priority.value if priority else "",
                "notes": cells.get("notes", "")}
        if cells.get("people"):
            data["people"] = cells["people"]
        if cells.get("min_people"):
            data["min_people"] = cells["min_people"]
        f = Fields(data)
        values = read_demand_what(f, community, categories=by_code)
        values.update(read_demand_place(f, community, values["resident"]))
        # The row's own dates are accepted here wherever they lie: whether a past first date (or a repeat
        # end beyond the horizon) may stand depends on the demand it finds again, judged below.
        values.update(read_demand_when(f, current_start=day, current_until=until))
        values.update(read_demand_team(f, data, values["category"]))
        for key, message in f.errors.items():
            fail(FIELD_COLUMNS.get(key, "notes"), message)
        if f.errors:
            return None
        key = _natural_key(community.id, resident.id if resident else None, category.id, day, span[0], values["title"])
        return {"community": community, "data": data, "values": values, "key": key,
                "name": values["title"], "phone": resident.phone if resident else ""}

    parsed, problems = read_rows(sheet, IMPORT_COLUMNS, judge, progress)
    parsed = [(n, v, bad or v is None) for n, v, bad in parsed]
    duplicates(parsed, lambda v: v["key"], IMPORT_TITLES["date"],
               _l("The same demand (resident, category, date and start) is on row %(r)d."), problems)
    bad_rows = {p.row for p in problems}
    good = [(n, v) for n, v, bad in parsed if not bad and n not in bad_rows]
    known: dict[tuple, Demand] = {}
    if good:
        days = {v["key"][3] for _n, v in good}
        for d in db.session.scalars(select(Demand).where(
                Demand.community_id.in_({v["community"].id for _n, v in good}), Demand.starts_on.in_(days),
                Demand.status.not_in(CLOSED))):
            known.setdefault(_natural_key(d.community_id, d.resident_id, d.category_id, d.starts_on,
                                          d.start_minute, d.title), d)
    rows = []
    for number, v in good:
        existing = known.get(v["key"])
        # The dates as the form judges them: a new demand's from today on; a known one's present dates stand
        # wherever they lie (last week's weekly list imported again is unchanged, not refused).
        f = Fields(v["data"])
        if existing is None:
            read_demand_when(f)
        else:
            read_demand_when(f, current_start=existing.starts_on, current_until=existing.repeat_until)
        if f.errors:
            problems.extend(CellProblem(number, IMPORT_TITLES[FIELD_COLUMNS.get(key, "notes")], str(message))
                            for key, message in f.errors.items())
            continue
        if existing is None:
            rows.append(RowPlan(number, "create", v["name"], v["phone"] or "", values=v))
            continue
        changes = sorted({IMPORT_TITLES[FIELD_COLUMNS.get(k, "notes")] for k, x in v["values"].items()
                          if k not in ("skills", "skills_any", "category") and getattr(existing, k) != x})
        if changes and not can_change(user, existing):
            problems.append(CellProblem(number, IMPORT_TITLES["date"], str(_l(
                "This demand is posted already; only its community's worker can change it (%(f)s).",
                f="、".join(changes)))))
            continue
        rows.append(RowPlan(number, "update" if changes else "same", v["name"], v["phone"] or "",
                            changes=changes, values=v, target_id=existing.id))
    problems.sort(key=lambda p: (p.row, p.column))
    return Plan(rows, problems)


def write_demands(plan, user: User) -> None:
    """Write a good plan: new demands posted with `create_demand`, known ones changed with `update_demand`
    (the categories and the demands to change loaded once for the whole file)."""
    categories = {c.code: c for c in db.session.scalars(select(Category).where(Category.active))}
    ids = [r.target_id for r in plan.rows if r.action == "update"]
    demands = {d.id: d for d in db.session.scalars(select(Demand).where(among(Demand.id, ids)))} if ids else {}
    for r in plan.rows:
        if r.action == "create":
            create_demand(r.values["data"], community=r.values["community"], user=user, categories=categories)
        elif r.action == "update":
            demand = demands[r.target_id]
            update_demand(demand, r.values["data"], user=user, version=demand.version, categories=categories)


def _import_kind():
    from .imports import Kind

    return Kind(
        name="demands", title=_l("Demands"), sheet="需求清单", columns=IMPORT_COLUMNS, example=import_example,
        roles=(Role.ADMIN, Role.COORDINATOR, Role.WORKER), plan=plan_demands, write=write_demands,
        notes=_l("One row per demand: a one-off (date and time) or weekly (每周重复: 周一；周四, until 重复至). A demand "
                 "is found again by community, resident (or title), category, date and start time: importing the "
                 "same list again changes nothing. The resident must be registered in the community first; "
                 "without a station the service is at the resident's home."),
        list_endpoint="demands.index")


IMPORT = _import_kind()
