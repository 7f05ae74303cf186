"""Property tests: random small instances, solved and checked against the referee and brute force.

Every solve must give a valid schedule (or INFEASIBLE exactly when no schedule holds the pins), a
reported objective equal to the recomputed score, a bound never below the objective nor below the
true optimum found by enumerating every subset of allowed pairs, and OPTIMAL only when it is.
"""

from __future__ import annotations

import itertools
from unittest.mock import patch

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from solver import parse_instance, solve, validate_solution
from solver.validation import check_schedule, pair_rule_failures, score_pairs
from tests.solver.builders import HOME, WEEK, at

KM_PER_DEGREE = 111.19492664455873


def point(km_north: float, km_east: float) -> dict:
    return {"lat": HOME["lat"] + km_north / KM_PER_DEGREE, "lon": HOME["lon"] + km_east / 97.0}


@st.composite
def volunteers(draw, vid: str) -> dict:
    windows = []
    for _ in range(draw(st.sampled_from([1, 1, 1, 2, 0]))):
        start = draw(st.integers(8 * 2, 9 * 2))
        length = draw(st.integers(6, 12))
        windows.append({"start": at(0, start // 2, 30 * (start % 2)),
                        "end": at(0, (start + length) // 2, 30 * ((start + length) % 2))})
    max_minutes = draw(st.sampled_from([60, 120, 240]))
    v = {"id": vid, "home": point(draw(st.floats(0, 6)), draw(st.floats(0, 6))),
         "skills": draw(st.sampled_from([[], ["a"], ["a", "b"], ["b"]])),
         "organizations": draw(st.sampled_from([[], ["o1"], ["o1", "o2"], ["o2"]])),
         "availability": windows, "max_minutes_per_week": max_minutes,
         "preferred_minutes_per_week": draw(st.integers(0, max_minutes)),
         "max_travel_km": draw(st.sampled_from([4, 10, 15]))}
    gender = draw(st.sampled_from([None, "F", "M"]))
    if gender:
        v["gender"] = gender
    if draw(st.booleans()) and draw(st.booleans()):
        h = draw(st.integers(8, 13))
        v["commitments"] = [{"start": at(0, h), "end": at(0, h, 45), "location": point(1, 1)}]
    return v


@st.composite
def demands(draw, did: str) -> dict:
    start = draw(st.integers(8 * 2, 12 * 2))
    length = draw(st.integers(1, 4))
    people = draw(st.integers(1, 3))
    d = {"id": did, "location": point(draw(st.floats(0, 6)), draw(st.floats(0, 6))),
         "start": at(0, start // 2, 30 * (start % 2)),
         "end": at(0, (start + length) // 2, 30 * ((start + length) % 2)),
         "skills": draw(st.sampled_from([[], [], ["a"]])),
         "skills_any": draw(st.sampled_from([[], [], ["a", "b"], ["b"]])),
         "people": people, "min_people": draw(st.integers(1, people)),
         "priority": draw(st.sampled_from(["urgent", "high", "normal", "low"])),
         "organizations": draw(st.sampled_from([[], [], ["o1"]])),
         "one_organization": draw(st.sampled_from([False, False, True]))}
    for key, options in (("gender", [None, None, "F"]), ("resident", [None, "r1", "r2"])):
        value = draw(st.sampled_from(options))
        if value:
            d[key] = value
    return d


@st.composite
def instances(draw) -> dict:
    nv, nd = draw(st.integers(2, 5)), draw(st.integers(1, 4))
    vs = [draw(volunteers(f"v{i}")) for i in range(nv)]
    ds = [draw(demands(f"d{i}")) for i in range(nd)]
    all_pairs = [(d["id"], v["id"]) for d in ds for v in vs]
    chosen = draw(st.lists(st.sampled_from(all_pairs), unique=True, max_size=4))
    doc = {"schema": "linli.instance/1", "name": "random", "week_start": WEEK, "volunteers": vs, "demands": ds,
           "weights": {"keep_previous": draw(st.sampled_from([0, 200])),
                       "travel_km": draw(st.sampled_from([0, 2, 30]))},
           "familiar": [{"resident": r, "volunteer": v} for r, v in
                        draw(st.lists(st.tuples(st.sampled_from(["r1", "r2"]), st.sampled_from([v["id"] for v in vs])),
                                      unique=True, max_size=2))]}
    roles = [draw(st.sampled_from(["pin", "override", "forbid", "previous", "previous", "none", "none"]))
             for _ in chosen]
    doc["pinned"] = [{"demand": d, "volunteer": v, "override": r == "override"}
                     for (d, v), r in zip(chosen, roles, strict=True) if r in ("pin", "override") and draw(
                         st.booleans())]
    pinned = {(p["demand"], p["volunteer"]) for p in doc["pinned"]}
    doc["forbidden"] = [{"demand": d, "volunteer": v} for (d, v), r in zip(chosen, roles, strict=True)
                        if r == "forbid" and (d, v) not in pinned]
    doc["previous"] = [{"demand": d, "volunteer": v} for (d, v), r in zip(chosen, roles, strict=True)
                       if r == "previous"]
    return doc


TOO_MANY = object()


def brute_force_optimum(doc: dict):
    """Best score over every subset of allowed pairs (None when no subset obeys the hard rules;
    TOO_MANY above 14 allowed pairs, where enumeration would be too slow)."""
    inst = parse_instance(doc)
    overrides = {(p.demand, p.volunteer) for p in inst.pinned if p.override}
    allowed = [(d.id, v.id) for d in inst.demands for v in inst.volunteers
               if (d.id, v.id) in overrides or not pair_rule_failures(inst, d, v)]
    if len(allowed) > 14:
        return TOO_MANY
    best = None
    for r in range(len(allowed) + 1):
        for subset in itertools.combinations(allowed, r):
            responsible = _responsible(inst, subset)
            if responsible is None or check_schedule(inst, list(subset), responsible):
                continue
            score = score_pairs(inst, list(subset))
            best = score if best is None else max(best, score)
    return best


def _responsible(inst, subset) -> list[dict] | None:
    out = []
    for d in inst.demands:
        team = [v for dd, v in subset if dd == d.id]
        if not (d.one_organization and team):
            continue
        vols = [next(x for x in inst.volunteers if x.id == v) for v in team]
        common = set.intersection(*(set(v.organizations) for v in vols))
        if d.organizations:
            common &= d.organizations
        if not common:
            return None
        out.append({"demand": d.id, "organization": sorted(common)[0]})
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances())
def test_properties_random_instances_are_solved_validly_and_bounded(doc):
    solution = solve(doc, time_limit=5, workers=1)
    best = brute_force_optimum(doc)
    if best is None:
        assert solution["status"] == "INFEASIBLE"
        return
    if solution["status"] == "INFEASIBLE":  # only possible when pins clash; brute force must agree
        assert best is TOO_MANY
        return
    assert solution["status"] in ("OPTIMAL", "FEASIBLE")
    violations, score = validate_solution(doc, solution)
    assert violations == []
    assert abs(solution["objective"] - score) <= 0.01 + 1e-6 * abs(score)
    assert solution["objective"] <= solution["bound"] + 1e-9
    if best is TOO_MANY:
        return
    assert solution["bound"] >= best - 1e-9
    assert solution["objective"] <= best + 1e-6
    if solution["status"] == "OPTIMAL":
        assert solution["objective"] >= best - 0.01


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances())
def test_properties_region_split_keeps_schedules_valid_and_bounds_true(doc):
    with patch("solver.pipeline.MAX_PART_PAIRS", 2), patch("solver.pipeline.REGION_PAIRS", 2):
        solution = solve(doc, time_limit=5, workers=1)
    best = brute_force_optimum(doc)
    if best is None or solution["status"] == "INFEASIBLE":
        assert solution["status"] == "INFEASIBLE" and best in (None, TOO_MANY)
        return
    violations, score = validate_solution(doc, solution)
    assert violations == []
    assert solution["objective"] <= solution["bound"] + 1e-9
    if best is not TOO_MANY:
        assert solution["bound"] >= best - 1e-9
