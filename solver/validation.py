"""Every hard rule and the objective restated in plain Python, independent of the model.

This is the referee: the tests check every solve with it, `python -m solver validate` prints its verdict,
and `solve` reports the objective computed here (not the CP-SAT value). No OR-Tools, no NumPy.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

from solver.geo import point_distance_km
from solver.instance import Demand, Instance, Volunteer, parse_instance

EPS = 1e-6


class SolutionError(ValueError):
    """A solution document that cannot be read at all (not a rule violation)."""


# ---------------------------------------------------------------- per-pair rules 1–6


def skills_ok(d: Demand, v: Volunteer) -> bool:
    """Rule 1: every skill of `d.skills` and, when `skills_any` is set, at least one of those."""
    return d.skills <= v.skills and (not d.skills_any or bool(d.skills_any & v.skills))


def gender_ok(d: Demand, v: Volunteer) -> bool:
    """Rule 2: the demand's gender, when set, is the volunteer's."""
    return d.gender is None or v.gender == d.gender


def organization_ok(d: Demand, v: Volunteer) -> bool:
    """Rule 3: a member of one of the demand's organizations, when set."""
    return not d.organizations or bool(d.organizations & v.organizations)


def availability_ok(d: Demand, v: Volunteer) -> bool:
    """Rule 4: the demand lies inside one merged availability window."""
    return any(s <= d.start and d.end <= e for s, e in v.windows)


def range_ok(inst: Instance, d: Demand, v: Volunteer) -> bool:
    """Rule 5: home-to-demand distance within the volunteer's travel limit."""
    return pair_km(inst, d, v) <= v.max_travel_km + EPS


def pair_km(inst: Instance, d: Demand, v: Volunteer) -> float:
    """Distance in km from the volunteer's home to the demand."""
    return point_distance_km(v.lat, v.lon, d.lat, d.lon, inst.detour_factor)


def pair_rule_failures(inst: Instance, d: Demand, v: Volunteer) -> list[int]:
    """Numbers of the per-pair rules 1–6 that the pair breaks (empty when it may be assigned)."""
    failures = []
    if not skills_ok(d, v):
        failures.append(1)
    if not gender_ok(d, v):
        failures.append(2)
    if not organization_ok(d, v):
        failures.append(3)
    if not availability_ok(d, v):
        failures.append(4)
    if not range_ok(inst, d, v):
        failures.append(5)
    if (d.id, v.id) in inst.forbidden:
        failures.append(6)
    return failures


RULE_NAMES = {
    1: "skills",
    2: "gender",
    3: "organization",
    4: "availability",
    5: "travel range",
    6: "forbidden",
    7: "overlap or travel time",
    8: "weekly minutes",
    9: "team size",
    10: "one organization",
    11: "pinned",
    12: "duplicate or unknown id",
}


# ---------------------------------------------------------------- rule 7


def items_conflict(a: tuple, b: tuple, detour_factor: float, speed_kmh: float) -> bool:
    """Rule 7, the one definition: two timed items `(start, end, lat, lon)` (times in minutes) clash
    when they overlap or leave too little time to travel from the earlier to the later."""
    if b[0] < a[0]:
        a, b = b, a
    km = point_distance_km(a[2], a[3], b[2], b[3], detour_factor)
    return b[0] - a[1] < km / speed_kmh * 60.0 - EPS


def gap_conflict(inst: Instance, a: tuple, b: tuple) -> bool:
    """Rule 7 for two timed items of an instance (see `items_conflict`)."""
    return items_conflict(a, b, inst.detour_factor, inst.speed_kmh)


# ---------------------------------------------------------------- objective


def score_pairs(inst: Instance, pairs: list[tuple[str, str]]) -> float:
    """The contract's score for a list of known (demand id, volunteer id) pairs."""
    w = inst.weights
    demands = {d.id: d for d in inst.demands}
    volunteers = {v.id: v for v in inst.volunteers}
    assigned: dict[str, int] = defaultdict(int)
    minutes = {v.id: v.committed_minutes for v in inst.volunteers}
    serving: dict[str, set[str]] = defaultdict(set)
    score = 0.0
    for did, vid in pairs:
        d, v = demands[did], volunteers[vid]
        assigned[did] += 1
        minutes[vid] += d.minutes
        score += w.priority[d.priority]
        score -= w.travel_km * pair_km(inst, d, v)
        if d.resident is not None:
            serving[d.resident].add(vid)
            if (d.resident, vid) in inst.familiar:
                score += w.familiar_bonus
        if (did, vid) in inst.previous:
            score += w.keep_previous
    for vid, total in minutes.items():
        score -= w.over_preferred_hour * max(0, total - volunteers[vid].preferred_minutes) / 60.0
    best: dict[str, int] = defaultdict(int)
    for d in inst.demands:
        if d.resident is not None:
            best[d.resident] = max(best[d.resident], assigned[d.id])
    for resident, vols in serving.items():
        score -= w.distinct_volunteer_per_resident * (len(vols) - best[resident])
    return score


def objective_matches(claimed: float, score: float) -> bool:
    """The contract's tolerance: equal within 0.01 + 1e-6 × |score|."""
    return abs(claimed - score) <= 0.01 + 1e-6 * abs(score)


# ---------------------------------------------------------------- whole solution


def _read_pairs(solution) -> tuple[list[tuple[str, str]], list[dict]]:
    if not isinstance(solution, dict):
        raise SolutionError("solution: must be a JSON object")
    items = solution.get("assignments") or []
    responsible = solution.get("responsible") or []
    if not isinstance(items, list) or not isinstance(responsible, list):
        raise SolutionError("solution: 'assignments' and 'responsible' must be lists")
    pairs = []
    for i, a in enumerate(items):
        if not isinstance(a, dict) or not isinstance(a.get("demand"), str) or not isinstance(
            a.get("volunteer"), str
        ):
            raise SolutionError(f"assignments[{i}]: needs string fields 'demand' and 'volunteer'")
        pairs.append((a["demand"], a["volunteer"]))
    for i, r in enumerate(responsible):
        if not isinstance(r, dict) or not isinstance(r.get("demand"), str) or not isinstance(
            r.get("organization"), str
        ):
            raise SolutionError(f"responsible[{i}]: needs string fields 'demand' and 'organization'")
    return pairs, responsible


@dataclass(frozen=True)
class Finding:
    """One broken rule as facts, so a caller can word it without re-implementing the rule.

    `rule` is the rule number 1..12 or "objective"; `demand`/`volunteer` the ids the finding is about
    (None when it is about several or none); `data` the rule-specific facts as JSON-safe plain values
    (times in minutes since the instance's week start); `text` the referee's readable line.
    """

    rule: int | str
    demand: str | None
    volunteer: str | None
    data: dict = field(hash=False)  # a dict is unhashable; `text` already tells findings apart
    text: str

    def __str__(self) -> str:
        return self.text


def check_schedule(inst: Instance, pairs: list[tuple[str, str]], responsible: list[dict]) -> list[str]:
    """All hard-rule violations of a schedule, one readable line each, naming rule, demand, volunteer."""
    return [f.text for f in find_violations(inst, pairs, responsible)]


def find_violations(inst: Instance, pairs: list[tuple[str, str]], responsible: list[dict]) -> list[Finding]:
    """All hard-rule violations of a schedule as `Finding`s, in the order of `check_schedule`'s lines."""
    demands = {d.id: d for d in inst.demands}
    volunteers = {v.id: v for v in inst.volunteers}
    overrides = {(p.demand, p.volunteer) for p in inst.pinned if p.override}
    out: list[Finding] = []
    seen: set[tuple[str, str]] = set()
    good: list[tuple[str, str]] = []
    for did, vid in pairs:
        if did not in demands or vid not in volunteers:
            out.append(Finding(12, did, vid, {"kind": "unknown_id"},
                               f"rule 12 (unknown id): demand {did!r}, volunteer {vid!r}"))
            continue
        if (did, vid) in seen:
            out.append(Finding(12, did, vid, {"kind": "duplicate_pair"},
                               f"rule 12 (duplicate pair): demand {did!r}, volunteer {vid!r}"))
            continue
        seen.add((did, vid))
        good.append((did, vid))
        if (did, vid) not in overrides:
            d, v = demands[did], volunteers[vid]
            for rule in pair_rule_failures(inst, d, v):
                out.append(Finding(rule, did, vid, _pair_facts(inst, rule, d, v),
                                   f"rule {rule} ({RULE_NAMES[rule]}): demand {did!r}, volunteer {vid!r}"))
    by_volunteer: dict[str, list[str]] = defaultdict(list)
    team: dict[str, list[str]] = defaultdict(list)
    for did, vid in good:
        by_volunteer[vid].append(did)
        team[did].append(vid)
    for vid, dids in by_volunteer.items():
        out.extend(_volunteer_findings(inst, volunteers[vid], [demands[d] for d in dids]))
    for did, vids in team.items():
        d = demands[did]
        if not d.min_people <= len(vids) <= d.people:
            out.append(Finding(
                9, did, None,
                {"count": len(vids), "volunteers": list(vids), "min_people": d.min_people, "people": d.people},
                f"rule 9 (team size): demand {did!r} has {len(vids)} volunteers "
                f"({', '.join(repr(v) for v in vids)}), needs 0 or {d.min_people}..{d.people}",
            ))
    out.extend(_responsible_findings(inst, team, responsible))
    for pin in inst.pinned:
        if (pin.demand, pin.volunteer) not in seen:
            out.append(Finding(11, pin.demand, pin.volunteer, {},
                               f"rule 11 (pinned): demand {pin.demand!r}, volunteer {pin.volunteer!r} missing"))
    return out


def _pair_facts(inst: Instance, rule: int, d: Demand, v: Volunteer) -> dict:
    """The `data` of a broken per-pair rule 1–6: what the demand asks and the volunteer lacks."""
    if rule == 1:
        any_fails = bool(d.skills_any) and not d.skills_any & v.skills
        return {"missing": sorted(d.skills - v.skills), "any_of": sorted(d.skills_any) if any_fails else []}
    if rule == 2:
        return {"wanted": d.gender, "gender": v.gender}
    if rule == 3:
        return {"organizations": sorted(d.organizations)}
    if rule == 4:
        return {"start": d.start, "end": d.end}
    if rule == 5:
        return {"km": round(pair_km(inst, d, v), 2), "max_km": v.max_travel_km}
    return {}


def _volunteer_findings(inst: Instance, v: Volunteer, dids: list[Demand]) -> list[Finding]:
    """Rules 7 and 8 for one volunteer's demands and commitments."""
    out = []
    items = [(d.start, d.end, d.lat, d.lon, d.id) for d in dids]
    items += [(c.start, c.end, c.lat, c.lon, None) for c in v.commitments]
    items.sort(key=lambda t: (t[0], t[1]))
    for i, a in enumerate(items):
        for b in items[i + 1 :]:
            if a[4] is None and b[4] is None:
                continue
            if gap_conflict(inst, a, b):
                names = " and ".join(f"demand {x[4]!r}" if x[4] else "a commitment" for x in (a, b))
                # The finding is about a demand; `data` describes the other item (a commitment wins).
                mine, other = (b, a) if a[4] is None else (a, b)
                out.append(Finding(
                    7, mine[4], v.id,
                    {"other_demand": other[4], "other_start": other[0], "other_end": other[1],
                     "other_lat": other[2], "other_lon": other[3], "commitment": other[4] is None},
                    f"rule 7 (overlap or travel time): {names}, volunteer {v.id!r}",
                ))
    total = v.committed_minutes + sum(d.minutes for d in dids)
    if total > v.max_minutes:
        out.append(Finding(
            8, dids[0].id if len(dids) == 1 else None, v.id,
            {"minutes": total, "limit": v.max_minutes, "committed": v.committed_minutes,
             "demands": [d.id for d in dids]},
            f"rule 8 (weekly minutes): volunteer {v.id!r} has {total} minutes, limit {v.max_minutes} "
            f"(demands {', '.join(repr(d.id) for d in dids)})",
        ))
    return out


def _responsible_findings(inst: Instance, team: dict, responsible: list[dict]) -> list[Finding]:
    """Rule 10 and the `responsible` list: exactly the staffed one_organization demands, each once.

    `data["kind"]` tells the five cases apart: not_applicable, repeated, missing, foreign_organization,
    not_member.
    """
    out = []
    demands = {d.id: d for d in inst.demands}
    volunteers = {v.id: v for v in inst.volunteers}
    named: dict[str, list[str]] = defaultdict(list)
    for r in responsible:
        named[r["demand"]].append(r["organization"])
    for did, orgs in named.items():
        d = demands.get(did)
        if d is None or not d.one_organization or not team.get(did):
            out.append(Finding(10, did, None, {"kind": "not_applicable"},
                               f"rule 10 (one organization): responsible names demand {did!r}, "
                               "which is not a staffed one_organization demand"))
        elif len(orgs) > 1:
            out.append(Finding(10, did, None, {"kind": "repeated", "count": len(orgs)},
                               f"rule 10 (one organization): demand {did!r} named responsible {len(orgs)} times"))
    for did, vids in team.items():
        d = demands[did]
        if not d.one_organization:
            continue
        if did not in named:
            out.append(Finding(10, did, None, {"kind": "missing"},
                               f"rule 10 (one organization): demand {did!r} is staffed but has no responsible"))
            continue
        org = named[did][0]
        if d.organizations and org not in d.organizations:
            out.append(Finding(10, did, None, {"kind": "foreign_organization", "organization": org},
                               f"rule 10 (one organization): demand {did!r}: {org!r} is not one of its "
                               "organizations"))
        for vid in vids:
            if org not in volunteers[vid].organizations:
                out.append(Finding(10, did, vid, {"kind": "not_member", "organization": org},
                                   f"rule 10 (one organization): demand {did!r}, volunteer {vid!r} "
                                   f"is not a member of {org!r}"))
    return out


def _objective_findings(solution: dict, score: float) -> list[Finding]:
    """The claimed `objective` against the recomputed score (rule "objective")."""
    claimed = solution.get("objective")
    if claimed is not None:
        if isinstance(claimed, bool) or not isinstance(claimed, (int, float)) or not math.isfinite(claimed):
            # repr keeps `data` JSON-safe whatever was claimed (NaN, a string, a list)
            return [Finding("objective", None, None, {"kind": "not_a_number", "claimed": repr(claimed)},
                            f"objective: claimed value {claimed!r} is not a number")]
        if not objective_matches(float(claimed), score):
            return [Finding("objective", None, None, {"kind": "mismatch", "claimed": claimed, "score": score},
                            f"objective: claimed {claimed} but the recomputed score is {score:.4f}")]
    elif solution.get("status") in ("OPTIMAL", "FEASIBLE"):
        return [Finding("objective", None, None, {"kind": "missing", "status": solution.get("status")},
                        "objective: missing for a solved status")]
    return []


def validate_solution(instance: Instance | dict | str, solution: dict) -> tuple[list[str], float]:
    """Check a `linli.solution/1` dict against an instance: (violations, recomputed score).

    Violations are broken hard rules, a wrong `responsible` list and a claimed `objective` that differs
    from the recomputed score. Raises `InstanceError`/`SolutionError` on unreadable input.
    """
    inst = instance if isinstance(instance, Instance) else parse_instance(instance)
    pairs, responsible = _read_pairs(solution)
    violations = check_schedule(inst, pairs, responsible)
    known = {d.id for d in inst.demands}, {v.id for v in inst.volunteers}
    scored = list(dict.fromkeys(p for p in pairs if p[0] in known[0] and p[1] in known[1]))
    score = score_pairs(inst, scored)
    violations += [f.text for f in _objective_findings(solution, score)]
    return violations, score
