"""The week pages' read models: a community's or an organization's services of a week, with
who is on each and the gap the newest applied run left. Nothing here changes a row.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import literal, select
from sqlalchemy.orm import selectinload

from . import problem
from .access import team_assignment_filter, team_occurrence_filter
from .db import db
from .models import (
    BOOKED,
    CLOSED,
    PENDING,
    Area,
    Assignment,
    AssignmentStatus,
    Demand,
    DemandOccurrence,
    Organization,
    RunGap,
    Schedule,
    SolveRun,
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
    """Per occurrence, the gap recorded by the newest applied run of a schedule containing it."""
    if not occurrence_ids or week_start is None:
        return {}
    communities = {o.demand.community for o in occurrences}
    result: dict[int, Any] = {}
    for community in communities:
        schedules = db.session.scalars(select(Schedule.id).join(Area, Schedule.area_id == Area.id).where(
            Schedule.week_start == week_start, literal(community.path).startswith(Area.path))).all()
        if not schedules:
            continue
        for sid in schedules:
            run_id = db.session.scalar(select(SolveRun.id).where(
                SolveRun.schedule_id == sid, SolveRun.applied_at.is_not(None)).order_by(SolveRun.id.desc()).limit(1))
            if run_id is None:
                continue
            for gap in db.session.scalars(select(RunGap).where(RunGap.run_id == run_id,
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
        .options(selectinload(DemandOccurrence.demand).selectinload(Demand.community))
        .order_by(DemandOccurrence.starts_at, DemandOccurrence.id)).all()
    return week_rows(list(occs), week_start=week_start)


def organization_week(organization: Organization, week_start: date) -> list[OccurrenceRow]:
    """Occurrences of a week dispatched to the organization (see `access.team_occurrence_filter`)."""
    start, end = problem.week_span(week_start)
    occs = db.session.scalars(
        select(DemandOccurrence)
        .where(team_occurrence_filter(organization.id),
               DemandOccurrence.starts_at >= start, DemandOccurrence.starts_at < end)
        .options(selectinload(DemandOccurrence.demand).selectinload(Demand.community))
        .order_by(DemandOccurrence.starts_at, DemandOccurrence.id)).all()
    return week_rows(list(occs), week_start=week_start)


def team_assignment_ids(organization_id: int, occurrence_ids: list[int]) -> set[int]:
    """Ids of the organization's assignments on these occurrences."""
    return set(db.session.scalars(select(Assignment.id).where(
        Assignment.occurrence_id.in_(occurrence_ids), team_assignment_filter(organization_id))))
