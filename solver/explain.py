"""Explanations a coordinator can act on: why each volunteer was chosen, why a demand is short.

Unfilled reason codes (most specific first; several may apply):
- `no_volunteers`: the instance has no volunteer at all.
- `no_candidate_with_skills`: no volunteer in the instance holds the skills (rule 1).
- `no_candidate_of_gender`: the skilled volunteers are all of another gender (rule 2).
- `no_candidate_in_organizations`: no skilled volunteer belongs to the demand's organizations (rule 3).
- `none_available_then`: no remaining volunteer has an availability window around the time (rule 4).
- `none_within_range`: the available ones live beyond their travel range (rule 5).
- `declined_or_forbidden`: the only remaining volunteers declined or are forbidden (rule 6).
- `candidates_busy_elsewhere`: candidates serve other demands or commitments at that time (rule 7).
- `lower_priority_than_competing_demands`: candidates are busy on demands of higher priority.
- `weekly_hours_used_up`: candidates have no weekly minutes left (rule 8).
- `below_minimum_team`: fewer free candidates than `min_people`, so nobody can be sent (rule 9).
- `no_single_organization_team`: no organization can field the team alone (rule 10).
- `not_worth_travel_or_overtime`: a free candidate exists but sending them costs more (travel, hours
  over preferred, continuity) than the position is worth under the weights.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from solver.candidates import Candidates
from solver.geo import point_distance_km
from solver.instance import Instance
from solver.validation import gap_conflict


def _busy_items(inst: Instance, pairs: list[tuple[int, int]]) -> dict[int, list[tuple]]:
    items: dict[int, list[tuple]] = defaultdict(list)
    for di, vi in pairs:
        d = inst.demands[di]
        items[vi].append((d.start, d.end, d.lat, d.lon, di))
    return items


def explain_assignments(inst: Instance, cands: Candidates, pairs: list[tuple[int, int]]) -> dict:
    """Reason codes per assigned pair: pinned, override, kept_from_previous, familiar,
    same_volunteer_for_resident, skills_match, organization_team, nearest_free."""
    pins = {(p.demand, p.volunteer): p.override for p in inst.pinned}
    items = _busy_items(inst, pairs)
    minutes = defaultdict(int)
    for di, vi in pairs:
        minutes[vi] += inst.demands[di].minutes
    team: dict[int, set[int]] = defaultdict(set)
    resident_vols: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for di, vi in pairs:
        team[di].add(vi)
        if inst.demands[di].resident is not None:
            resident_vols[inst.demands[di].resident][vi] += 1
    positions = cands.by_demand()
    km_of = pair_km(inst, cands, pairs)
    out = {}
    for di, vi in pairs:
        d, v = inst.demands[di], inst.volunteers[vi]
        reasons = []
        if (d.id, v.id) in pins:
            reasons.append("pinned")
            if pins[(d.id, v.id)]:
                reasons.append("override")
        if (d.id, v.id) in inst.previous:
            reasons.append("kept_from_previous")
        if d.resident is not None and (d.resident, v.id) in inst.familiar:
            reasons.append("familiar")
        if d.resident is not None and resident_vols[d.resident][vi] > 1:
            reasons.append("same_volunteer_for_resident")
        if d.skills or d.skills_any:
            reasons.append("skills_match")
        if d.one_organization:
            reasons.append("organization_team")
        mine = positions.get(di, np.zeros(0, dtype=np.int64))
        km = km_of.get((di, vi))
        closer_free = False
        for p in mine.tolist():
            other = int(cands.volunteer[p])
            if km is None or float(cands.km[p]) >= km:
                break
            if other in team[di]:
                continue
            if _is_free(inst, items, minutes, other, di):
                closer_free = True
                break
        if not closer_free:
            reasons.append("nearest_free")
        out[(di, vi)] = reasons
    return out


def pair_km(inst: Instance, cands: Candidates, pairs: list[tuple[int, int]]) -> dict[tuple[int, int], float]:
    """Distances of the given candidate pairs, looked up by a binary search over the pairs' codes
    (a pair that is not a candidate, such as an override pin added later, is computed directly)."""
    if not pairs:
        return {}
    nv = max(1, len(inst.volunteers))
    codes = cands.demand * nv + cands.volunteer
    order = np.argsort(codes, kind="stable")
    wanted = np.array([di * nv + vi for di, vi in pairs], dtype=np.int64)
    at = np.minimum(np.searchsorted(codes[order], wanted), max(0, len(codes) - 1))
    out = {}
    for (di, vi), a, code in zip(pairs, at.tolist(), wanted.tolist(), strict=True):
        if len(codes) and codes[order[a]] == code:
            out[(di, vi)] = float(cands.km[order[a]])
        else:
            d, v = inst.demands[di], inst.volunteers[vi]
            out[(di, vi)] = point_distance_km(v.lat, v.lon, d.lat, d.lon, inst.detour_factor)
    return out


def _is_free(inst: Instance, items, minutes, vi: int, di: int) -> bool:
    """Could volunteer `vi` also take demand `di` on top of the schedule (rules 7 and 8)?"""
    d, v = inst.demands[di], inst.volunteers[vi]
    if v.committed_minutes + minutes[vi] + d.minutes > v.max_minutes:
        return False
    mine = (d.start, d.end, d.lat, d.lon)
    return not any(gap_conflict(inst, mine, it) for it in items[vi])


def explain_unfilled(inst: Instance, cands: Candidates, pairs: list[tuple[int, int]]) -> list[dict]:
    """One entry per demand with fewer than `people` volunteers: how many are missing and why."""
    team: dict[int, set[int]] = defaultdict(set)
    for di, vi in pairs:
        team[di].add(vi)
    items = _busy_items(inst, pairs)
    minutes = defaultdict(int)
    for di, vi in pairs:
        minutes[vi] += inst.demands[di].minutes
    positions = cands.by_demand()
    cache: dict = {}
    out = []
    for di, d in enumerate(inst.demands):
        missing = d.people - len(team[di])
        if missing <= 0:
            continue
        mine = positions.get(di)
        if mine is None or len(mine) == 0:
            reasons = _reasons_without_candidates(inst, cands, di, cache)
        else:
            reasons = _reasons_with_candidates(inst, cands, di, mine, team, items, minutes)
        out.append({"demand": d.id, "missing": missing, "reasons": reasons})
    return out


def _reasons_without_candidates(inst: Instance, cands: Candidates, di: int, cache: dict) -> list[str]:
    """Which per-pair rule emptied the candidate list (checked over all volunteers, vectorized; the
    skill, gender and organization masks are shared by demands with the same requirements)."""
    d = inst.demands[di]
    arrays = cands.arrays
    key = (d.skills, d.skills_any, d.gender, d.organizations)
    if key not in cache:
        idx = np.arange(len(inst.volunteers))
        mask = np.ones(len(idx), dtype=bool)
        code = None
        for name, stage in (("no_candidate_with_skills", arrays.skills_mask(d.skills, d.skills_any, idx)),
                            ("no_candidate_of_gender", arrays.gender_mask(d.gender, idx)),
                            ("no_candidate_in_organizations", arrays.organization_mask(d.organizations, idx))):
            mask &= stage
            if not mask.any():
                code = name
                break
        cache[key] = (code, np.flatnonzero(mask))
    code, sub = cache[key]
    if not inst.volunteers:
        return ["no_volunteers"]
    if code is not None:
        return [code]
    sub = sub[arrays.availability_mask(d.start, d.end, sub)]
    if len(sub) == 0:
        return ["none_available_then"]
    km = arrays.range_km(d.lat, d.lon, sub, inst.detour_factor)
    sub = sub[km <= arrays.max_km[sub] + 1e-6]
    if len(sub) == 0:
        return ["none_within_range"]
    reasons = []
    if cands.removed_busy.get(di):
        reasons.append("candidates_busy_elsewhere")
    if cands.removed_hours.get(di):
        reasons.append("weekly_hours_used_up")
    forbidden = {inst.volunteer_index[v] for dd, v in inst.forbidden if dd == d.id}
    if forbidden & set(sub.tolist()):
        reasons.append("declined_or_forbidden")
    return reasons or ["candidates_busy_elsewhere"]


def _reasons_with_candidates(inst, cands, di, mine, team, items, minutes) -> list[str]:
    """Why the candidates that exist are not on this demand."""
    d = inst.demands[di]
    w = inst.weights.priority
    busy = higher = hours = free = 0
    free_orgs: dict[str, int] = defaultdict(int)
    for p in mine.tolist():
        vi = int(cands.volunteer[p])
        if vi in team[di]:
            continue
        v = inst.volunteers[vi]
        mine_item = (d.start, d.end, d.lat, d.lon)
        clashes = [it for it in items[vi] if gap_conflict(inst, mine_item, it)]
        if clashes:
            busy += 1
            if any(w[inst.demands[it[4]].priority] > w[d.priority] for it in clashes):
                higher += 1
        elif v.committed_minutes + minutes[vi] + d.minutes > v.max_minutes:
            hours += 1
        else:
            free += 1
            for o in v.organizations:
                free_orgs[o] += 1
    reasons = []
    if higher:
        reasons.append("lower_priority_than_competing_demands")
    if busy > higher or (busy and not higher):
        reasons.append("candidates_busy_elsewhere")
    if hours or cands.removed_hours.get(di):
        reasons.append("weekly_hours_used_up")
    if not team[di] and (len(mine) < d.min_people or 0 < free < d.min_people):
        reasons.append("below_minimum_team")
    if d.one_organization and not team[di] and free >= d.min_people:
        if max(free_orgs.values(), default=0) < d.min_people:
            reasons.append("no_single_organization_team")
    if free and not reasons:
        reasons.append("not_worth_travel_or_overtime")
    if not reasons:
        reasons.append("candidates_busy_elsewhere")
    return reasons
