"""Read-only figures for dashboards: counts and coverage within a user's scope."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import and_, func, select

from .access import visible
from .db import among, db
from .models import (
    FILLING,
    Assignment,
    Demand,
    DemandOccurrence,
    DemandStatus,
    Membership,
    MemberStatus,
    Organization,
    Resident,
    RunStatus,
    User,
    Volunteer,
)
from .models._types import CLOSED, ReviewState
from .problem import schedules_positions


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
    awaiting_review: int = 0

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
        select(DemandOccurrence.id, DemandOccurrence.status, Demand.people, func.count(Assignment.id).label("taken"))
        .join(Demand)
        .outerjoin(Assignment, and_(Assignment.occurrence_id == DemandOccurrence.id, Assignment.status.in_(FILLING)))
        .where(DemandOccurrence.demand_id.in_(demand_ids), DemandOccurrence.starts_at >= start,
               DemandOccurrence.starts_at < end, DemandOccurrence.status != DemandStatus.CANCELLED)
        .group_by(DemandOccurrence.id, DemandOccurrence.status, Demand.people)
    ).all()
    positions = sum(r.people for r in occ_rows)
    filled = sum(min(r.taken, r.people) for r in occ_rows)

    def count(model) -> int:
        return db.session.scalar(visible(select(func.count(model.id)), model, user)) or 0

    pending = db.session.scalar(
        visible(select(func.count(Membership.id)), Membership, user).where(Membership.status == MemberStatus.APPLIED)
    ) or 0
    # Demands waiting in the review queue (审单), whatever their week: what a coordinator has to do.
    awaiting_review = db.session.scalar(
        visible(select(func.count(Demand.id)), Demand, user).where(
            Demand.review == ReviewState.PENDING,
            Demand.status.not_in(CLOSED))
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
        awaiting_review=awaiting_review,
    )


@dataclass
class ScheduleFigures:
    """Coverage and quality figures of a schedule as it stands."""

    wanted: dict[str, int]
    filled: dict[str, int]
    occurrences: int
    short: int
    travel_km: float
    volunteers: int
    max_minutes: int
    mean_minutes: float
    over_preferred: int
    score: float | None
    bound: float | None

    @property
    def gap(self) -> float | None:
        """Relative distance of the last run's score from its proven bound."""
        return relative_gap(self.score, self.bound)

    @property
    def coverage(self) -> float:
        total = sum(self.wanted.values())
        return sum(self.filled.values()) / total if total else 0.0


def relative_gap(score: float | None, bound: float | None) -> float | None:
    """How far a run's score is from its proven bound, relative to the bound (0: proven best)."""
    if score is None or bound is None:
        return None
    return (bound - score) / abs(bound) if bound else bound - score


@dataclass
class ScheduleSummary:
    """What the list of schedules shows of one: places filled of those needed, the last run's gap."""

    filled: int
    needed: int
    gap: float | None

    @property
    def coverage(self) -> float:
        return self.filled / self.needed if self.needed else 0.0


def schedule_summaries(schedules, parts: dict | None = None) -> dict[int, ScheduleSummary]:
    """Per schedule id: places filled (capped per demand) of those needed now, and the relative gap of
    its newest finished run (None before any). With `parts` (schedule id → an area below the schedule's,
    or None), a schedule seen in part counts only the occurrences of that part."""
    positions = schedules_positions(list(schedules))
    out = {}
    for schedule in schedules:
        rows = positions[schedule.id]
        part = (parts or {}).get(schedule.id)
        if part is not None:  # a street's part of the district's week: its own places
            rows = [r for r in rows if r.path.startswith(part.path)]
        finished = [r for r in schedule.runs if r.status in (RunStatus.DONE, RunStatus.SUPERSEDED)]
        last = max(finished, key=lambda r: r.id, default=None)
        out[schedule.id] = ScheduleSummary(
            filled=sum(min(r.filled, r.people) for r in rows), needed=sum(r.people for r in rows),
            gap=relative_gap(last.score, last.bound) if last else None)
    return out


def schedule_figures(schedule, occurrences, last_run) -> ScheduleFigures:
    """Positions wanted and filled by priority, travel, load spread and the last run's score and bound."""
    from collections import defaultdict

    wanted: dict[str, int] = defaultdict(int)
    filled: dict[str, int] = defaultdict(int)
    rows = db.session.execute(
        select(Assignment.occurrence_id, Assignment.volunteer_id, Assignment.distance_km)
        .where(among(Assignment.occurrence_id, [o.id for o in occurrences]), Assignment.status.in_(FILLING))
    ).all()
    per_occ: dict[int, int] = defaultdict(int)
    minutes: dict[int, int] = defaultdict(int)
    by_id = {o.id: o for o in occurrences}
    for occ_id, vol_id, _dist in rows:
        per_occ[occ_id] += 1
        occ = by_id[occ_id]
        minutes[vol_id] += int((occ.ends_at - occ.starts_at).total_seconds() // 60)
    short = 0
    for occ in occurrences:
        p = occ.demand.priority.value
        wanted[p] += occ.demand.people
        filled[p] += min(per_occ[occ.id], occ.demand.people)
        short += per_occ[occ.id] < occ.demand.people
    preferred: dict[int, int] = {}
    if minutes:
        stmt = select(Volunteer.id, Volunteer.preferred_minutes_per_week).where(among(Volunteer.id, minutes))
        preferred = {vid: pref for vid, pref in db.session.execute(stmt).all()}
    return ScheduleFigures(
        wanted=dict(wanted), filled=dict(filled), occurrences=len(occurrences), short=short,
        travel_km=round(sum(r[2] or 0 for r in rows), 1), volunteers=len(minutes),
        max_minutes=max(minutes.values(), default=0),
        mean_minutes=round(sum(minutes.values()) / len(minutes), 1) if minutes else 0.0,
        over_preferred=sum(1 for v, m in minutes.items() if m > preferred.get(v, m)),
        score=last_run.score if last_run else None, bound=last_run.bound if last_run else None,
    )
