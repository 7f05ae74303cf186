"""The week pages' read models: a community's or an organization's services of a week, with
who is on each and the gap the newest applied run left. Nothing here changes a row.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from . import problem, rules
from .access import team_assignment_filter, team_occurrence_filter
from .db import db
from .models import (
    BOOKED,
    CLOSED,
    FILLING,
    PENDING,
    STANDING,
    Area,
    Assignment,
    AssignmentStatus,
    Demand,
    DemandOccurrence,
    Organization,
    RunGap,
    RunStatus,
    Schedule,
    SolveRun,
    Volunteer,
)


@dataclass
class OccurrenceRow:
    """One occurrence on the worker's or the leader's week page."""

    occurrence: DemandOccurrence
    assignments: list[Assignment]
    gap: RunGap | None = None  # the RunGap of the newest applied run, if it left this occurrence short

    @property
    def accepted(self) -> int:
        return sum(1 for a in self.assignments if a.status in BOOKED)

    @property
    def state(self) -> str:
        occ = self.occurrence
        if occ.status in CLOSED:
            return occ.status.value
        if self.accepted:
            return "accepted"
        if any(a.status in PENDING for a in self.assignments):
            return "scheduled"
        return "open"


def week_rows(occurrences: list[DemandOccurrence], community_ids: Iterable[int] | None = None,
              week_start: date | None = None) -> list[OccurrenceRow]:
    """Rows with each occurrence's assignments (declined left out) and its newest gap."""
    ids = [o.id for o in occurrences]
    by_occ: dict[int, list[Assignment]] = defaultdict(list)
    for a in db.session.scalars(select(Assignment).where(
            Assignment.occurrence_id.in_(ids), Assignment.status != AssignmentStatus.DECLINED)
            .options(selectinload(Assignment.volunteer)).order_by(Assignment.id)):
        by_occ[a.occurrence_id].append(a)
    gaps = newest_gaps(ids, occurrences, week_start)
    return [OccurrenceRow(o, by_occ[o.id], gaps.get(o.id)) for o in occurrences]


def newest_gaps(occurrence_ids: list[int], occurrences: list[DemandOccurrence], week_start: date | None) -> dict:
    """Per occurrence, the gap recorded by the newest applied run of a schedule containing it.

    Three statements whatever the number of communities: the week's schedules of the communities'
    areas and their ancestors, the newest applied run of each, and those runs' gaps of these occurrences.
    """
    if not occurrence_ids or week_start is None:
        return {}
    areas = {int(part) for o in occurrences for part in o.demand.community.path.strip("/").split("/") if part}
    schedules = db.session.scalars(select(Schedule.id).where(
        Schedule.week_start == week_start, Schedule.area_id.in_(sorted(areas)))).all()
    if not schedules:
        return {}
    newest = select(SolveRun.schedule_id, func.max(SolveRun.id).label("run_id")).where(
        SolveRun.schedule_id.in_(schedules), SolveRun.applied_at.is_not(None)).group_by(SolveRun.schedule_id)
    runs = [run_id for _sid, run_id in db.session.execute(newest)]
    result: dict[int, Any] = {}
    if runs:
        for gap in db.session.scalars(select(RunGap).where(RunGap.run_id.in_(runs),
                                                           RunGap.occurrence_id.in_(occurrence_ids))):
            current = result.get(gap.occurrence_id)
            if current is None or current.run_id < gap.run_id:
                result[gap.occurrence_id] = gap
    return result


def community_week(community: Area, week_start: date) -> list[OccurrenceRow]:
    """The community's occurrences of a week (cancelled ones included), in time order."""
    start, end = problem.week_span(week_start)
    occs = db.session.scalars(
        select(DemandOccurrence).join(Demand)
        .where(Demand.community_id == community.id, DemandOccurrence.starts_at >= start,
               DemandOccurrence.starts_at < end)
        .options(selectinload(DemandOccurrence.demand).selectinload(Demand.community),
                 selectinload(DemandOccurrence.demand).selectinload(Demand.resident))
        .order_by(DemandOccurrence.starts_at, DemandOccurrence.id)).all()
    return week_rows(list(occs), week_start=week_start)


def organization_week(organization: Organization, week_start: date) -> list[OccurrenceRow]:
    """Occurrences of a week dispatched to the organization (see `access.team_occurrence_filter`)."""
    start, end = problem.week_span(week_start)
    occs = db.session.scalars(
        select(DemandOccurrence)
        .where(team_occurrence_filter(organization.id),
               DemandOccurrence.starts_at >= start, DemandOccurrence.starts_at < end)
        .options(selectinload(DemandOccurrence.demand).selectinload(Demand.community),
                 selectinload(DemandOccurrence.demand).selectinload(Demand.resident))
        .order_by(DemandOccurrence.starts_at, DemandOccurrence.id)).all()
    return week_rows(list(occs), week_start=week_start)


def community_has_week(community: Area, week_start: date) -> bool:
    """Whether `community_week` would list anything, in one small statement (a page choosing its week)."""
    start, end = problem.week_span(week_start)
    return db.session.scalar(select(DemandOccurrence.id).join(Demand).where(
        Demand.community_id == community.id, DemandOccurrence.starts_at >= start,
        DemandOccurrence.starts_at < end).limit(1)) is not None


def organization_has_week(organization: Organization, week_start: date) -> bool:
    """Whether `organization_week` would list anything, in one small statement."""
    start, end = problem.week_span(week_start)
    return db.session.scalar(select(DemandOccurrence.id).where(
        team_occurrence_filter(organization.id), DemandOccurrence.starts_at >= start,
        DemandOccurrence.starts_at < end).limit(1)) is not None


def team_assignment_ids(organization_id: int, occurrence_ids: list[int]) -> set[int]:
    """Ids of the organization's assignments on these occurrences."""
    return set(db.session.scalars(select(Assignment.id).where(
        Assignment.occurrence_id.in_(occurrence_ids), team_assignment_filter(organization_id))))


@dataclass
class ScheduleSheets:
    """A schedule's week as tables for a spreadsheet (plain values; codes for the web layer to word):
    `services` one row per service, `people` one row per volunteer's service, `gaps` the services short."""

    services: list[list[Any]]
    people: list[list[Any]]
    gaps: list[list[Any]]


SERVICE_COLUMNS = ("日期", "星期", "时间", "街道", "社区", "服务", "类别", "优先级", "需要人数", "已安排", "负责组织", "志愿者")
PEOPLE_COLUMNS = ("志愿者", "手机号", "日期", "时间", "服务", "社区", "状态")
GAP_COLUMNS = ("日期", "时间", "社区", "服务", "优先级", "缺少人数", "原因")
_WEEKDAY = "一二三四五六日"


def schedule_sheets(schedule: Schedule, part: Area | None, *, word=str) -> ScheduleSheets:
    """The schedule's services within `part` (None: all), their volunteers and its gaps, in time order.

    `word(code)` words a status, priority or reason code (the web layer's labels); phones are masked;
    the gaps' reasons are the newest finished run's."""
    occurrences = problem.page_occurrences(schedule, within=part)
    shown = (*FILLING, AssignmentStatus.DECLINED)
    assignments = problem.page_assignments(occurrences, shown)
    volunteers = {row.id: row for row in db.session.execute(
        select(Volunteer.id, Volunteer.real_name, Volunteer.phone).where(
            Volunteer.id.in_({a.volunteer_id for a in assignments})))} if assignments else {}
    organizations = {oid: name for oid, name in db.session.execute(select(Organization.id, Organization.name).where(
        Organization.id.in_({o.responsible_organization_id for o in occurrences if o.responsible_organization_id})))}
    by_occ: dict[int, list] = defaultdict(list)
    for a in assignments:
        by_occ[a.occurrence_id].append(a)
    run = db.session.scalar(select(SolveRun).where(
        SolveRun.schedule_id == schedule.id, SolveRun.status.in_([RunStatus.DONE, RunStatus.SUPERSEDED]))
        .order_by(SolveRun.id.desc()).limit(1))
    reasons = {g.occurrence_id: g.reasons for g in db.session.scalars(
        select(RunGap).where(RunGap.run_id == run.id))} if run is not None else {}
    services, people, gaps = [], [], []
    for o in occurrences:
        d = o.demand
        day, time_text = o.starts_at.date().isoformat(), f"{o.starts_at:%H:%M}-{o.ends_at:%H:%M}"
        on_it = [a for a in by_occ[o.id] if a.status in FILLING]
        street = d.community.parent.name if d.community.parent is not None else ""
        services.append([day, "周" + _WEEKDAY[o.starts_at.weekday()], time_text, street, d.community.name, d.title,
                         d.category.name_zh if d.category else "", word(d.priority.value), d.people, len(on_it),
                         organizations.get(o.responsible_organization_id, ""),
                         "、".join(volunteers[a.volunteer_id].real_name for a in on_it)])
        for a in by_occ[o.id]:
            v = volunteers[a.volunteer_id]
            people.append([v.real_name, rules.mask_phone(v.phone), day, time_text, d.title, d.community.name,
                           word(a.status.value)])
        if len(on_it) < d.people:
            gaps.append([day, time_text, d.community.name, d.title, word(d.priority.value), d.people - len(on_it),
                         "；".join(word(r) for r in reasons.get(o.id, []))])
    people.sort(key=lambda row: (row[0], row[2], row[3]))
    return ScheduleSheets(services, people, gaps)


# --------------------------------------------------------------------------- the printable week


def standing_rows(rows: list[OccurrenceRow]) -> list[OccurrenceRow]:
    """The rows as the published schedule stands, for the printed week sheet: each keeps only its
    `STANDING` assignments (offered or booked), so draft proposals and no-shows are left off and each
    row's state follows from what is left."""
    return [OccurrenceRow(r.occurrence, [a for a in r.assignments if a.status in STANDING], r.gap) for r in rows]


# ======================================================================= an organization's and a volunteer's week
# Spreadsheet rows for the leader's and the volunteer's exports (web/exports.py, issue 12), in the manner
# of `schedule_sheets`: plain values, codes worded by the web layer, phones masked unless the caller passes
# another `phone`. A fixed handful of statements whatever the number of services.

TEAM_SERVICE_COLUMNS = ("日期", "星期", "时间", "社区", "服务", "类别", "优先级", "需要人数", "已接受", "状态",
                        "本队志愿者")
MY_WEEK_COLUMNS = ("日期", "星期", "时间", "服务", "类别", "社区", "地点", "状态", "记入时长")


def organization_sheets(organization: Organization, week_start: date, *, word=str,
                        phone=rules.mask_phone) -> ScheduleSheets:
    """The organization's week (`organization_week`) as tables: its services (`TEAM_SERVICE_COLUMNS`, the
    state worded by `word`), its members on them (`PEOPLE_COLUMNS`, other organizations' volunteers left
    out) and the services left short with the newest applied run's reasons (`GAP_COLUMNS`)."""
    from .models import Category

    db.session.scalars(select(Category)).all()  # the few categories, so each demand's is at hand
    rows = organization_week(organization, week_start)
    ours = team_assignment_ids(organization.id, [r.occurrence.id for r in rows])
    services, people, gaps = [], [], []
    for row in rows:
        o, d = row.occurrence, row.occurrence.demand
        day, time_text = o.starts_at.date().isoformat(), f"{o.starts_at:%H:%M}-{o.ends_at:%H:%M}"
        members = [a for a in row.assignments if a.id in ours]
        services.append([day, "周" + _WEEKDAY[o.starts_at.weekday()], time_text, d.community.name, d.title,
                         d.category.name_zh if d.category else "", word(d.priority.value), d.people, row.accepted,
                         word(row.state), "、".join(a.volunteer.real_name for a in members)])
        for a in members:
            people.append([a.volunteer.real_name, phone(a.volunteer.phone), day, time_text, d.title,
                           d.community.name, word(a.status.value)])
        if row.gap is not None:
            gaps.append([day, time_text, d.community.name, d.title, word(d.priority.value), row.gap.missing,
                         "；".join(word(r) for r in row.gap.reasons)])
    people.sort(key=lambda r: (r[0], r[2], r[3]))
    return ScheduleSheets(services, people, gaps)


def volunteer_week_rows(volunteer: Volunteer, week_start: date, *, word=str, place=None) -> list[list[Any]]:
    """The volunteer's booked services of a week (as "my week" lists them: accepted, checked in, done) as
    `MY_WEEK_COLUMNS` rows; `place(assignment)` says where (the web layer's rule: the exact address only
    while the service is held)."""
    start, end = problem.week_span(week_start)
    assignments = db.session.scalars(
        select(Assignment).join(DemandOccurrence, Assignment.occurrence_id == DemandOccurrence.id)
        .where(Assignment.volunteer_id == volunteer.id, Assignment.status.in_(BOOKED),
               DemandOccurrence.starts_at >= start, DemandOccurrence.starts_at < end)
        .options(*(selectinload(Assignment.occurrence).selectinload(DemandOccurrence.demand).selectinload(rel)
                   for rel in (Demand.category, Demand.community, Demand.station, Demand.resident)))
        .order_by(DemandOccurrence.starts_at, Assignment.id)).all()
    out = []
    for a in assignments:
        o, d = a.occurrence, a.occurrence.demand
        out.append([o.starts_at.date().isoformat(), "周" + _WEEKDAY[o.starts_at.weekday()],
                    f"{o.starts_at:%H:%M}-{o.ends_at:%H:%M}", d.title, d.category.name_zh if d.category else "",
                    d.community.name, place(a) if place is not None else d.community.name, word(a.status.value),
                    float(a.credited_hours) if a.credited_hours is not None else ""])
    return out
