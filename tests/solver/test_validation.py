"""The referee (`solver.validation`): each rule flagged on a hand-made schedule, and accepted when kept."""

from __future__ import annotations

import pytest

from solver import validate_solution
from tests.solver.builders import at, north


def solution_of(pairs, responsible=(), objective=None):
    return {"schema": "linli.solution/1", "status": "FEASIBLE" if objective is not None else "UNKNOWN",
            "objective": objective,
            "assignments": [{"demand": d, "volunteer": v} for d, v in pairs],
            "responsible": [{"demand": d, "organization": o} for d, o in responsible]}


@pytest.fixture
def doc(make_instance, make_volunteer, make_demand):
    return make_instance(
        [make_volunteer("v1", skills=["elder_care"], gender="F", organizations=["o1"]),
         make_volunteer("v2", organizations=["o2"], max_minutes_per_week=60),
         make_volunteer("v3", organizations=["o1"])],
        [make_demand("d1", skills=["elder_care"]),
         make_demand("d2", gender="F", start=at(0, 9, 30), end=at(0, 10, 30)),
         make_demand("d3", organizations=["o2"], start=at(0, 10), end=at(0, 11)),
         make_demand("d4", people=2, min_people=2, one_organization=True, start=at(0, 11), end=at(0, 11, 30)),
         make_demand("d5", location=north(9), start=at(0, 8), end=at(0, 8, 30))],
        forbidden=[{"demand": "d3", "volunteer": "v3"}],
    )


@pytest.mark.parametrize(("pairs", "responsible", "rule"), [
    ([("d1", "v2")], [], "rule 1 "),
    ([("d2", "v3")], [], "rule 2 "),
    ([("d3", "v1")], [], "rule 3 "),
    ([("d5", "v1")], [], "rule 5 "),
    ([("d3", "v3")], [], "rule 6 "),
    ([("d1", "v1"), ("d2", "v1")], [], "rule 7 "),
    ([("d3", "v2"), ("d4", "v2"), ("d4", "v3")], [], "rule 8 "),
    ([("d4", "v1")], [("d4", "o1")], "rule 9 "),
    ([("d4", "v1"), ("d4", "v2")], [("d4", "o1")], "rule 10 "),
    ([("d4", "v1"), ("d4", "v3")], [], "rule 10 "),
    ([("d1", "v1")], [("d1", "o1")], "rule 10 "),
    ([("d1", "v1"), ("d1", "v1")], [], "rule 12 "),
    ([("d1", "v9")], [], "rule 12 "),
])
def test_validation_flags_each_broken_rule(doc, pairs, responsible, rule):
    violations, _ = validate_solution(doc, solution_of(pairs, responsible))
    assert any(v.startswith(rule) for v in violations), violations


def test_validation_accepts_a_valid_schedule_and_scores_it(doc):
    pairs = [("d1", "v1"), ("d4", "v1"), ("d4", "v3")]
    violations, score = validate_solution(doc, solution_of(pairs, [("d4", "o1")], objective=450.0))
    assert violations == []
    assert score == pytest.approx(450.0)


def test_validation_flags_a_claimed_objective_off_by_more_than_the_tolerance(doc):
    violations, _ = validate_solution(doc, solution_of([("d1", "v1")], objective=150.02))
    assert violations == ["objective: claimed 150.02 but the recomputed score is 150.0000"]
    assert validate_solution(doc, solution_of([("d1", "v1")], objective=150.009))[0] == []


def test_validation_flags_missing_pins(doc):
    doc["pinned"] = [{"demand": "d1", "volunteer": "v1"}]
    violations, _ = validate_solution(doc, solution_of([]))
    assert violations == ["rule 11 (pinned): demand 'd1', volunteer 'v1' missing"]


def test_validation_rule_7_commitment_with_travel(make_instance, make_volunteer, make_demand):
    commitment = {"start": at(0, 10), "end": at(0, 11), "location": north(5)}
    doc = make_instance([make_volunteer(commitments=[commitment])], [make_demand()])
    violations, _ = validate_solution(doc, solution_of([("d1", "v1")]))
    assert violations == ["rule 7 (overlap or travel time): demand 'd1' and a commitment, volunteer 'v1'"]
