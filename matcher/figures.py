"""Read-only figures for dashboards: counts and coverage within a user's scope."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import func, select

from .access import visible
from .db import db
from .models import (
    Assignment,
    AssignmentStatus,
    Demand,
    DemandOccurrence,
    DemandStatus,
    Membership,
    MemberStatus,
    Organization,
    Resident,
    User,
    Volunteer,
)

FILLING = (
    AssignmentStatus.PROPOSED, AssignmentStatus.OFFERED, AssignmentStatus.ACCEPTED,
    AssignmentStatus.CHECKED_IN, AssignmentStatus.COMPLETED,
)


@dataclass
class WeekFigures:
    """What a dashboard shows for one week."""

    week_start: date
    occurrences: int
    open_occurrences: int
    positions: int
    filled: int
    volunteers: int
    organizations: int
    residents: int
    pending_members: int

    @property
    def coverage(self) -> float:
        """Share of wanted positions that have a volunteer (0..1)."""
        return self.filled / self.positions if self.positions else 0.0


def week_figures(user: User, week_start: date) -> WeekFigures:
    """Counts within the user's scope for the week starting on `week_start` (a Monday)."""
    start = datetime.combine(week_start, time())
    end = start + timedelta(days=7)
    demand_ids = visible(select(Demand.id), Demand, user).scalar_subquery()
    occ_rows = db.session.execute(
        select(DemandOccurrence.id, DemandOccurrence.status, Demand.people)
        .join(Demand)
        .where(DemandOccurrence.demand_id.in_(demand_ids), DemandOccurrence.starts_at >= start,
               DemandOccurrence.starts_at < end, DemandOccurrence.status != DemandStatus.CANCELLED)
    ).all()
    positions = sum(r.people for r in occ_rows)
    filled_by_occ = dict(
        db.session.execute(
            select(Assignment.occurrence_id, func.count())
            .where(Assignment.occurrence_id.in_([r.id for r in occ_rows]), Assignment.status.in_(FILLING))
            .group_by(Assignment.occurrence_id)
        ).all()
    ) if occ_rows else {}
    filled = sum(min(filled_by_occ.get(r.id, 0), r.people) for r in occ_rows)

    def count(model) -> int:
        return db.session.scalar(visible(select(func.count(model.id)), model, user)) or 0

    pending = db.session.scalar(
        visible(select(func.count(Membership.id)), Membership, user).where(Membership.status == MemberStatus.APPLIED)
    ) or 0
    return WeekFigures(
        week_start=week_start,
        occurrences=len(occ_rows),
        open_occurrences=sum(1 for r in occ_rows if r.status == DemandStatus.OPEN),
        positions=positions,
        filled=filled,
        volunteers=count(Volunteer),
        organizations=count(Organization),
        residents=count(Resident),
        pending_members=pending,
    )
