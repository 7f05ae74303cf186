"""Is this volunteer allowed on this occurrence right now? Hard rules for one pair, by the solver's own code.

Manual edits (assign by hand, move, an organization leader's swap) are checked here at once. The
pair is translated into a one-demand `linli.instance/1` whose volunteers carry their other
assignments of the week as commitments, and `solver.validation.check_schedule` names the broken
rules, so a manual change is judged exactly as the solver judges its own schedules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, select

from solver import parse_instance
from solver.validation import check_schedule

from . import problem, rules
from .db import db
from .models import Area, Assignment, AssignmentStatus, DemandOccurrence, Volunteer

# Rules about a single pair and a volunteer's week (9–12 concern whole teams and the solution).
PAIR_RULES = range(1, 9)
RULE_RE = re.compile(r"^rule (\d+) ")
POOL_KM = 15.0
POOL_SIZE = 300
# What breaking each pair rule means, for the people who read it.
RULE_LABELS = {
    1: _l("lacks a required skill or valid certificate"), 2: _l("gender does not match"),
    3: _l("not a member of the required organization"), 4: _l("not available at that time"),
    5: _l("lives beyond their travel range"), 6: _l("declined it or their organization handed it back"),
    7: _l("busy with another service then (including travel)"), 8: _l("weekly hours would be exceeded"),
}


@dataclass
class Candidate:
    """A volunteer judged for one occurrence: distance and the numbers of the hard rules broken."""

    volunteer: Volunteer
    distance_km: float
    broken: list[int] = field(default_factory=list)

    @property
    def eligible(self) -> bool:
        return not self.broken


def assess(occurrence: DemandOccurrence, volunteers: list[Volunteer], *,
           ignore_assignment_id: int | None = None) -> list[Candidate]:
    """Judge each volunteer for the occurrence against hard rules 1–8, given their other assignments."""
    if not volunteers:
        return []
    week = rules.week_monday(occurrence.starts_at.date())
    busy = and_(Assignment.status.in_(problem.FILLING), Assignment.occurrence_id != occurrence.id)
    if ignore_assignment_id is not None:
        busy = and_(busy, Assignment.id != ignore_assignment_id)
    facts = problem.load_volunteer_facts(volunteers, week, busy)
    lapsed = set(facts.lapsed_pairs(volunteers, occurrence))
    forbidden = lapsed | problem.handback_pairs([occurrence], facts, volunteers)
    declined = db.session.scalars(select(Assignment.volunteer_id).where(
        Assignment.occurrence_id == occurrence.id, Assignment.status == AssignmentStatus.DECLINED)).all()
    refused = {(f"d{occurrence.id}", f"v{vid}") for vid in declined}
    refused |= problem.handback_pairs([occurrence], facts, volunteers)
    forbidden |= refused
    demand = problem.demand_entry(occurrence)
    instance = {
        "schema": "linli.instance/1", "name": f"check d{occurrence.id}",
        "week_start": problem.stamp(problem.week_span(week)[0]),
        "volunteers": [facts.entry(v) for v in volunteers], "demands": [demand],
        "forbidden": [{"demand": d, "volunteer": v} for d, v in sorted(forbidden)],
    }
    inst = parse_instance(instance)
    out = []
    for v in volunteers:
        broken = set()
        for line in check_schedule(inst, [(demand["id"], f"v{v.id}")], []):
            match = RULE_RE.match(line)
            if match and int(match.group(1)) in PAIR_RULES:
                broken.add(int(match.group(1)))
        pair = (demand["id"], f"v{v.id}")
        if pair in lapsed:  # a certificate that lapses before the date: a skill problem, not a refusal
            broken.add(1)
            if pair not in refused:
                broken.discard(6)
        distance = rules.haversine_km(v.lat, v.lon, occurrence.demand.lat, occurrence.demand.lon)
        out.append(Candidate(v, round(distance * inst.detour_factor, 2), sorted(broken)))
    return out


def candidate_pool(occurrence: DemandOccurrence, *, name: str = "", limit: int = POOL_SIZE) -> list[Volunteer]:
    """Active volunteers of the district living within POOL_KM of the occurrence, nearest first.

    With `name`, the volunteers of the district whose name contains it, wherever they live.
    """
    district_path = "/" + occurrence.demand.community.path.strip("/").split("/")[0] + "/"
    stmt = select(Volunteer).join(Area, Volunteer.home_area_id == Area.id).where(
        Volunteer.active, Area.path.startswith(district_path))
    if name:
        stmt = stmt.where(Volunteer.real_name.contains(name))
    lat, lon = occurrence.demand.lat, occurrence.demand.lon
    near = [(rules.haversine_km(v.lat, v.lon, lat, lon), v) for v in db.session.scalars(stmt)]
    near = sorted((pair for pair in near if name or pair[0] <= POOL_KM), key=lambda p: (p[0], p[1].id))
    return [v for _d, v in near[:limit]]


def ranked_candidates(occurrence: DemandOccurrence, *, exclude: set[int] = frozenset(), name: str = "",
                      ignore_assignment_id: int | None = None) -> list[Candidate]:
    """Eligible volunteers nearest first, then the nearest ineligible ones with the rules they break."""
    pool = [v for v in candidate_pool(occurrence, name=name) if v.id not in exclude]
    judged = assess(occurrence, pool, ignore_assignment_id=ignore_assignment_id)
    return sorted(judged, key=lambda c: (not c.eligible, len(c.broken), c.distance_km))
