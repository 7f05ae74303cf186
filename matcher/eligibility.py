"""Is this volunteer allowed on this occurrence right now? Hard rules for one pair, by the solver's own code.

Manual edits (assign by hand, move, an organization leader's swap) are checked here at once. The
pair is translated into a one-demand `linli.instance/1` whose volunteers carry their other
assignments of the week as commitments, and the solver's referee (`solver.validation.find_violations`)
returns the broken rules as findings (rule number, pair, facts), so a manual change is judged exactly
as the solver judges its own schedules. The wording of each rule is here, next to its short label,
and is built from those facts: there is no second implementation of a rule.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, select

from solver import parse_instance
from solver.validation import Finding, find_violations

from . import problem, rules
from .db import db
from .models import (
    FILLING,
    Assignment,
    AssignmentStatus,
    DemandOccurrence,
    Organization,
    Skill,
    Volunteer,
)

# Rules about a single pair and a volunteer's week (9–12 concern whole teams and the solution).
PAIR_RULES = range(1, 9)
POOL_KM = 15.0
POOL_SIZE = 300
# What breaking each pair rule means, in a few words (tags on the candidate list).
RULE_LABELS = {
    1: _l("lacks a required skill or valid certificate"), 2: _l("gender does not match"),
    3: _l("not a member of the required organization"), 4: _l("not available at that time"),
    5: _l("lives beyond their travel range"), 6: _l("declined it or their organization handed it back"),
    7: _l("busy with another service then (including travel)"), 8: _l("weekly hours would be exceeded"),
}


@dataclass
class Candidate:
    """A volunteer judged for one occurrence: distance and the referee's findings on hard rules 1–8."""

    volunteer: Volunteer
    distance_km: float
    findings: list[Finding] = field(default_factory=list)

    @property
    def broken(self) -> list[int]:
        """The numbers of the rules broken, in order."""
        return sorted({int(f.rule) for f in self.findings})

    @property
    def eligible(self) -> bool:
        return not self.findings


def assess(occurrence: DemandOccurrence, volunteers: list[Volunteer], *,
           ignore_assignment_id: int | None = None) -> list[Candidate]:
    """Judge each volunteer for the occurrence against hard rules 1–8, given their other assignments.

    Their other assignments that take time while planning (`FILLING`) are commitments;
    `ignore_assignment_id` is one left out (the one being moved or swapped away).
    """
    if not volunteers:
        return []
    week = rules.week_monday(occurrence.starts_at.date())
    busy = and_(Assignment.status.in_(FILLING), Assignment.occurrence_id != occurrence.id)
    if ignore_assignment_id is not None:
        busy = and_(busy, Assignment.id != ignore_assignment_id)
    facts = problem.load_volunteer_facts(volunteers, week, busy)
    lapsed = set(facts.lapsed_pairs(volunteers, occurrence))
    judged_ids = {v.id for v in volunteers}
    # Only the judged volunteers' refusals: the instance knows no one else (a pair naming anybody
    # else is an unknown volunteer to the solver's parser).
    declined = db.session.scalars(select(Assignment.volunteer_id).where(
        Assignment.occurrence_id == occurrence.id, Assignment.status == AssignmentStatus.DECLINED,
        Assignment.volunteer_id.in_(judged_ids))).all()
    refused = {(f"d{occurrence.id}", f"v{vid}") for vid in declined}
    refused |= problem.handback_pairs([occurrence], facts, volunteers)
    demand = problem.demand_entry(occurrence)
    known = {f"v{vid}" for vid in judged_ids}
    instance = {
        "schema": "linli.instance/1", "name": f"check d{occurrence.id}",
        "week_start": problem.stamp(problem.week_span(week)[0]),
        "volunteers": [facts.entry(v) for v in volunteers], "demands": [demand],
        "forbidden": [{"demand": d, "volunteer": v} for d, v in sorted(lapsed | refused) if v in known],
    }
    inst = parse_instance(instance)
    # One referee call for all the pairs: each volunteer is on this demand alone, so the rules of a pair
    # (1–6) and of a volunteer's week (7, 8) find exactly what a call per pair would (the team rules,
    # 9 and up, are left out).
    found: dict[str, list[Finding]] = defaultdict(list)
    for f in find_violations(inst, [(demand["id"], f"v{v.id}") for v in volunteers], []):
        if isinstance(f.rule, int) and f.rule in PAIR_RULES:
            found[f.volunteer].append(f)
    out = []
    for v in volunteers:
        pair = (demand["id"], f"v{v.id}")
        findings = found[pair[1]]
        if pair in lapsed:
            # A certificate that lapses before the date is a skill problem, not a refusal (rule 6).
            if pair not in refused:
                findings = [f for f in findings if f.rule != 6]
            if not any(f.rule == 1 for f in findings):
                findings.append(Finding(1, pair[0], pair[1], {"missing": [], "any_of": [], "lapsed": True},
                                        f"rule 1 (skills): certificate lapses, demand {pair[0]!r}, volunteer {pair[1]!r}"))
        findings.sort(key=lambda f: int(f.rule))
        distance = rules.haversine_km(v.lat, v.lon, occurrence.demand.lat, occurrence.demand.lon)
        out.append(Candidate(v, round(distance * inst.detour_factor, 2), findings))
    return out


# --------------------------------------------------------------------------- the rules in words


def _skill_names(codes: list[str]) -> str:
    names = {code: name for code, name in db.session.execute(select(Skill.code, Skill.name_zh).where(Skill.code.in_(codes)))}
    return ", ".join(names.get(c, c) for c in codes)


def _minute(occurrence: DemandOccurrence, minutes: int):
    """The local time `minutes` after the start of the occurrence's week (the instance's clock)."""
    return problem.week_span(rules.week_monday(occurrence.starts_at.date()))[0] + timedelta(minutes=minutes)


def _other_service(volunteer: Volunteer, occurrence: DemandOccurrence, data: dict) -> DemandOccurrence | None:
    """The volunteer's other occurrence a rule-7 finding points at (commitments carry no id)."""
    if data.get("other_demand"):
        return db.session.get(DemandOccurrence, problem.ref_id(data["other_demand"]))
    return db.session.scalar(select(DemandOccurrence).join(Assignment, Assignment.occurrence_id == DemandOccurrence.id)
                             .where(Assignment.volunteer_id == volunteer.id,
                                    DemandOccurrence.starts_at == _minute(occurrence, data["other_start"]),
                                    DemandOccurrence.ends_at == _minute(occurrence, data["other_end"]))
                             .limit(1))


def explain(finding: Finding, occurrence: DemandOccurrence, volunteer: Volunteer) -> str:
    """One broken rule as a sentence a coordinator or a leader can act on, from the referee's facts."""
    data, day = finding.data, occurrence.starts_at.date()
    if finding.rule == 1:
        if data.get("lapsed") or not (data.get("missing") or data.get("any_of")):
            return str(_l("skills: a needed certificate is not valid on %(d)s", d=day.isoformat()))
        if data.get("missing"):
            return str(_l("skills: lacks %(s)s (or the certificate is not valid on %(d)s)",
                          s=_skill_names(data["missing"]), d=day.isoformat()))
        return str(_l("skills: needs one of %(s)s", s=_skill_names(data["any_of"])))
    if finding.rule == 2:
        return str(_l("gender: this service asks for a volunteer of the other gender"))
    if finding.rule == 3:
        ids = [problem.ref_id(o) for o in data.get("organizations", [])]
        names = db.session.scalars(select(Organization.name).where(Organization.id.in_(ids))).all()
        return str(_l("organization: only for members of %(o)s", o=", ".join(names)))
    if finding.rule == 4:
        return str(_l("availability: not free %(d)s %(a)s–%(b)s", d=day.isoformat(),
                      a=occurrence.starts_at.strftime("%H:%M"), b=occurrence.ends_at.strftime("%H:%M")))
    if finding.rule == 5:
        return str(_l("travel range: %(k).1f km away, travels at most %(m).1f km", k=data["km"], m=data["max_km"]))
    if finding.rule == 6:
        return str(RULE_LABELS[6])
    if finding.rule == 7:
        other = _other_service(volunteer, occurrence, data)
        if other is None:
            return str(RULE_LABELS[7])
        return str(_l("overlap: busy with '%(t)s' %(a)s–%(b)s (including travel time)", t=other.demand.title,
                      a=other.starts_at.strftime("%m-%d %H:%M"), b=other.ends_at.strftime("%H:%M")))
    if finding.rule == 8:
        needs = int((occurrence.ends_at - occurrence.starts_at).total_seconds() // 60)
        return str(_l("weekly minutes: %(u)d used of %(m)d, this service needs %(n)d",
                      u=data["minutes"] - needs, m=data["limit"], n=needs))
    return finding.text


def explanations(candidate: Candidate, occurrence: DemandOccurrence) -> list[str]:
    """Every broken rule of a judged volunteer as a sentence (empty: the volunteer may take it)."""
    return [explain(f, occurrence, candidate.volunteer) for f in candidate.findings]


def candidate_pool(occurrence: DemandOccurrence, pool, *, name: str = "", limit: int = POOL_SIZE) -> list[Volunteer]:
    """Active volunteers of the pool (a filter on Volunteer: `access.area_pool`, narrowed by
    `access.user_pool`) living within POOL_KM of the occurrence, nearest first.

    With `name`, the pool's volunteers whose name contains it, wherever they live.
    """
    lat, lon = occurrence.demand.lat, occurrence.demand.lon
    stmt = select(Volunteer.id, Volunteer.lat, Volunteer.lon).where(Volunteer.active, pool)
    if name:
        stmt = stmt.where(Volunteer.real_name.contains(name))
    else:  # a box around the place, nearest first on a flat map (cheap in SQL); the exact distance after
        scale = max(math.cos(math.radians(lat)), 0.01)
        dlat, dlon = POOL_KM / 110.574, POOL_KM / (111.320 * scale)
        flat = ((Volunteer.lat - lat) * (Volunteer.lat - lat)
                + (Volunteer.lon - lon) * (Volunteer.lon - lon) * (scale * scale))
        # Over a district the flat order and the great-circle one differ by far less than the margin.
        stmt = (stmt.where(Volunteer.lat.between(lat - dlat, lat + dlat), Volunteer.lon.between(lon - dlon, lon + dlon))
                .order_by(flat, Volunteer.id).limit(limit + limit // 2 + 10))
    near = sorted(((rules.haversine_km(vlat, vlon, lat, lon), vid) for vid, vlat, vlon in db.session.execute(stmt)))
    chosen = [vid for d, vid in near if name or d <= POOL_KM][:limit]
    loaded = {v.id: v for v in db.session.scalars(select(Volunteer).where(Volunteer.id.in_(chosen)))}
    return [loaded[vid] for vid in chosen if vid in loaded]


def ranked_candidates(occurrence: DemandOccurrence, pool, *, exclude: set[int] = frozenset(), name: str = "",
                      ignore_assignment_id: int | None = None) -> list[Candidate]:
    """The pool's eligible volunteers nearest first, then the nearest ineligible ones with the rules they break."""
    candidates = [v for v in candidate_pool(occurrence, pool, name=name) if v.id not in exclude]
    judged = assess(occurrence, candidates, ignore_assignment_id=ignore_assignment_id)
    return sorted(judged, key=lambda c: (not c.eligible, len(c.broken), c.distance_km))
