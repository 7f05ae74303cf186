"""The library API the web service calls: solve with progress, generator determinism, LP certificate."""

from __future__ import annotations

import numpy as np
import pytest

from solver import solve, validate_solution
from solver.generate import generate_instance
from solver.relaxation import certified_bound


def test_solve_reports_progress_phases_in_order():
    events = []
    solution = solve(generate_instance("township", 4), time_limit=3, progress=events.append)
    phases = [e["phase"] for e in events]
    assert phases[0] == "building" and phases[-1] == "done"
    assert "solving" in phases
    assert all("elapsed" in e for e in events)
    assert events[-1]["objective"] == solution["objective"] and events[-1]["bound"] == solution["bound"]


def test_solve_accepts_json_text_and_reports_stats():
    import json

    doc = generate_instance("township", 5)
    solution = solve(json.dumps(doc), time_limit=2)
    assert validate_solution(doc, solution)[0] == []
    # CP-SAT starts from the greedy (or better) hint; model rounding is below 1/6000 per assignment.
    assert solution["objective"] >= solution["stats"]["greedy_objective"] - 0.1
    assert solution["stats"]["candidates"] > 0


def test_generate_is_deterministic_by_seed_and_sized_by_preset():
    a, b, c = generate_instance("township", 1), generate_instance("township", 1), generate_instance("township", 2)
    assert a == b and a != c
    assert (len(a["volunteers"]), len(a["demands"])) == (500, 150)
    priorities = [d.get("priority", "normal") for d in a["demands"]]
    assert 0 < priorities.count("urgent") < 0.1 * len(priorities)
    assert any(d.get("one_organization") for d in a["demands"]) and a["familiar"]


def test_certified_bound_holds_for_any_duals():
    # max x + y  s.t.  x + y <= 1, 0 <= x, y <= 1: optimum 1.
    args = (np.array([1.0, 1.0]), 0.0, np.zeros(2), np.ones(2), [[0, 1]], [[1.0, 1.0]], [-np.inf], [1.0])
    assert certified_bound(*args, np.array([1.0])) == pytest.approx(1.0, abs=1e-5)
    for y in (0.0, 0.3, 2.0, -1.0):
        assert certified_bound(*args, np.array([y])) >= 1.0


def test_solve_without_volunteers_explains_and_scores_zero(make_instance, make_demand):
    solution = solve(make_instance([], [make_demand()]), time_limit=2)
    assert solution["status"] == "OPTIMAL" and solution["objective"] == 0.0 and solution["bound"] == 0.0
    assert solution["unfilled"] == [{"demand": "d1", "missing": 1, "reasons": ["no_volunteers"]}]


@pytest.mark.parametrize(("lat", "lon"), [(0.0, 179.99), (89.9, 0.0)])
def test_solve_near_antimeridian_and_pole_finds_the_pair(make_instance, make_volunteer, make_demand, lat, lon):
    # The grid falls back to one cell where longitude cells would wrap or degenerate.
    far_side = {"lat": lat, "lon": -lon if lon else 180.0}
    doc = make_instance([make_volunteer(home={"lat": lat, "lon": lon}, max_travel_km=50)],
                        [make_demand(location=far_side)])
    solution = solve(doc, time_limit=2)
    assert [(a["demand"], a["volunteer"]) for a in solution["assignments"]] == [("d1", "v1")]
    assert validate_solution(doc, solution)[0] == []


def test_assignment_reasons_name_continuity_skills_and_team(make_instance, make_volunteer, make_demand):
    from tests.solver.builders import at

    week = [{"start": at(0, 8), "end": at(0, 12)}, {"start": at(1, 8), "end": at(1, 12)}]
    doc = make_instance(
        [make_volunteer("v1", skills=["elder_care"], organizations=["o1"], availability=week),
         make_volunteer("v2", organizations=["o1"], availability=week)],
        [make_demand("d1", resident="r1", skills=["elder_care"]),
         make_demand("d2", resident="r1", skills=["elder_care"], start=at(1, 9), end=at(1, 10)),
         make_demand("d3", people=2, one_organization=True, start=at(1, 10), end=at(1, 11))])
    solution = solve(doc, time_limit=2)
    reasons = {(a["demand"], a["volunteer"]): a["reasons"] for a in solution["assignments"]}
    assert reasons[("d1", "v1")] == ["same_volunteer_for_resident", "skills_match", "nearest_free"]
    assert "organization_team" in reasons[("d3", "v2")]
    assert solution["responsible"] == [{"demand": "d3", "organization": "o1"}]


def test_solve_survives_a_failing_progress_callback(make_instance, make_volunteer, make_demand):
    calls = []

    def broken(event):
        calls.append(event)
        raise RuntimeError("display went away")

    solution = solve(make_instance([make_volunteer()], [make_demand()]), time_limit=2, progress=broken)
    assert solution["status"] == "OPTIMAL" and len(calls) == 1
