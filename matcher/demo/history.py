"""Past weeks of the demo district: its demands served week after week, so that the summary report, the
service records, the star lists and the exports have something to show (and the report's benchmark runs
on two years of the demo district, as the district would have them).

Each demand of the loaded week is repeated in the weeks before it at its weekday and time. Most places
are served by the demand's usual volunteer (a member living in the community or its street: the same
faces for the same resident), some by another, a few are left short with the solver's reason, some
offers are declined first; services are checked in and out, credited their hours and most are rated by
the community worker. Volunteers' total hours include them. Written in bulk; the random choices are
seeded, so the same seed makes the same history.
"""

from __future__ import annotations

import random
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import insert, select, update

from .. import rules
from ..db import db
from ..models import (
    Area,
    Assignment,
    AssignmentStatus,
    Demand,
    DemandOccurrence,
    DemandStatus,
    Membership,
    MemberStatus,
    RunGap,
    RunStatus,
    Schedule,
    ScheduleStatus,
    SolveRun,
    Volunteer,
)

SHORT_SHARE = 0.06      # places left short
DECLINED_SHARE = 0.05   # places whose first offer was declined
OTHER_VOLUNTEER = 0.15  # places served by someone else than the demand's usual volunteer
RATED_SHARE = 0.6       # services the worker rates
RATINGS = (5, 5, 5, 5, 5, 4, 4, 4, 3, 2)
SHORT_REASONS = (["no_candidate_with_skills"], ["none_available_then"], ["none_within_range"])
BATCH = 20_000


def add_history(*, weeks: int, before: date, seed: int = 2026,
                echo: Callable[[str], None] = lambda s: None) -> dict[str, int]:
    """Serve the district's demands in the `weeks` weeks before the Monday `before` (commits)."""
    started = time.perf_counter()
    rng = random.Random(seed)
    monday = rules.week_monday(before)
    parent = dict(db.session.execute(select(Area.id, Area.parent_id)).tuples().all())
    districts = list(db.session.scalars(select(Area.id).where(Area.parent_id.is_(None))))
    members = dict(db.session.execute(select(Membership.volunteer_id, Membership.organization_id)
                                      .where(Membership.status == MemberStatus.APPROVED)).tuples().all())
    by_community: dict[int, list[int]] = defaultdict(list)
    by_street: dict[int, list[int]] = defaultdict(list)
    for vid, home in db.session.execute(select(Volunteer.id, Volunteer.home_area_id).where(Volunteer.active)).all():
        by_community[home].append(vid)
        by_street[parent.get(home)].append(vid)
    everyone = [v for vs in by_community.values() for v in vs]
    demands = db.session.execute(select(
        Demand.id, Demand.community_id, Demand.start_minute, Demand.duration_minutes, Demand.weekdays,
        Demand.starts_on, Demand.people).where(Demand.status != DemandStatus.CANCELLED).order_by(Demand.id)).all()
    if not demands or not everyone:
        return {"occurrences": 0, "services": 0}
    schedules = {}
    for w in range(1, weeks + 1):
        week = monday - timedelta(weeks=w)
        for district in districts:
            schedules[(district, week)] = Schedule(area_id=district, week_start=week, status=ScheduleStatus.PUBLISHED,
                                                   published_at=datetime.combine(week - timedelta(days=3),
                                                                                 datetime.min.time()))
    db.session.add_all(schedules.values())
    db.session.flush()
    runs = {key: SolveRun(schedule_id=s.id, status=RunStatus.DONE, queued_at=s.published_at,
                          finished_at=s.published_at) for key, s in schedules.items()}
    db.session.add_all(runs.values())
    db.session.flush()

    def district_of(area_id: int) -> int:
        while parent.get(area_id) is not None:
            area_id = parent[area_id]
        return area_id

    occurrence_rows, plans = [], []
    for demand_id, community, start_minute, duration, weekdays, starts_on, people in demands:
        days = [int(x) for x in weekdays.split(",") if x != ""] or [starts_on.weekday()]
        pool = by_community.get(community) or by_street.get(parent.get(community)) or everyone
        usual = [pool[(demand_id * 7 + k) % len(pool)] for k in range(people)]
        run_key = district_of(community)
        for w in range(1, weeks + 1):
            week = monday - timedelta(weeks=w)
            for day in days:
                at = datetime.combine(week + timedelta(days=day), datetime.min.time()) + timedelta(minutes=start_minute)
                occurrence_rows.append({"demand_id": demand_id, "starts_at": at,
                                        "ends_at": at + timedelta(minutes=duration), "status": DemandStatus.DONE})
                plans.append((usual, pool, duration, runs[(run_key, week)].id, schedules[(run_key, week)].id))
    ids: list[int] = []
    for i in range(0, len(occurrence_rows), BATCH):
        ids += db.session.scalars(insert(DemandOccurrence).returning(DemandOccurrence.id),
                                  occurrence_rows[i:i + BATCH]).all()
    assignment_rows, gap_rows = [], []
    hours: dict[int, Decimal] = defaultdict(Decimal)
    for occ_id, row, (usual, pool, duration, run_id, schedule_id) in zip(ids, occurrence_rows, plans, strict=True):
        at, end = row["starts_at"], row["ends_at"]
        used: set[int] = set()

        def someone_else(pool=pool, used=used) -> int | None:
            for _try in range(8):
                other = pool[rng.randrange(len(pool))]
                if other not in used:
                    return other
            return None

        for place, volunteer in enumerate(usual):
            if rng.random() < SHORT_SHARE:
                gap_rows.append({"run_id": run_id, "occurrence_id": occ_id, "missing": 1,
                                 "reasons": SHORT_REASONS[(occ_id + place) % len(SHORT_REASONS)]})
                continue
            if rng.random() < OTHER_VOLUNTEER or volunteer in used:
                volunteer = someone_else()
            if volunteer is None:
                continue
            used.add(volunteer)
            offered = at - timedelta(days=rng.randint(3, 8))
            if rng.random() < DECLINED_SHARE:
                assignment_rows.append({
                    "schedule_id": schedule_id, "occurrence_id": occ_id, "volunteer_id": volunteer,
                    "organization_id": members.get(volunteer), "status": AssignmentStatus.DECLINED,
                    "decline_kind": "not_free", "offered_at": offered, "responded_at": offered + timedelta(hours=5),
                    "reasons": ["skills_match"], "created_at": offered, "updated_at": offered + timedelta(hours=5)})
                volunteer = someone_else()
                if volunteer is None:
                    continue
                used.add(volunteer)
            credited = rules.credited_hours(duration)
            rated = rng.random() < RATED_SHARE
            assignment_rows.append({
                "schedule_id": schedule_id, "occurrence_id": occ_id, "volunteer_id": volunteer,
                "organization_id": members.get(volunteer), "status": AssignmentStatus.COMPLETED,
                "offered_at": offered, "responded_at": offered + timedelta(hours=rng.randint(1, 40)),
                "reasons": ["skills_match", "nearest_free"], "checked_in_at": at - timedelta(minutes=rng.randint(0, 15)),
                "checked_out_at": end + timedelta(minutes=rng.randint(0, 10)), "credited_hours": credited,
                "attendance": "checked", "rating": rng.choice(RATINGS) if rated else None,
                "created_at": offered, "updated_at": end})
            hours[volunteer] += Decimal(credited)
    for i in range(0, len(assignment_rows), BATCH):
        db.session.execute(insert(Assignment), assignment_rows[i:i + BATCH])
    for i in range(0, len(gap_rows), BATCH):
        db.session.execute(insert(RunGap), gap_rows[i:i + BATCH])
    for volunteer, extra in hours.items():
        db.session.execute(update(Volunteer).where(Volunteer.id == volunteer)
                           .values(total_hours=Volunteer.total_hours + extra))
    db.session.commit()
    services = sum(1 for r in assignment_rows if r["status"] == AssignmentStatus.COMPLETED)
    echo(f"history: {weeks} weeks before {monday}: {len(ids)} services ({services} volunteers' visits), "
         f"{len(gap_rows)} places short, in {time.perf_counter() - started:.1f} s")
    return {"occurrences": len(ids), "services": services, "short": len(gap_rows)}
