"""The referee (`solver.validation`): each rule flagged on a hand-made schedule, and accepted when kept."""

from __future__ import annotations

import dataclasses
import json

import pytest

from solver import parse_instance, validate_solution
from solver.validation import Finding, check_schedule, find_violations
from tests.solver.builders import HOME, at, north


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


# ---------------------------------------------------------------- structured findings


def findings_of(doc, pairs, responsible=()):
    return find_violations(parse_instance(doc), list(pairs),
                           [{"demand": d, "organization": o} for d, o in responsible])


def only(found):
    assert len(found) == 1, found
    json.dumps(found[0].data, allow_nan=False)  # callers may ship `data` as JSON
    return found[0]


def test_finding_rule_1_names_missing_skills_and_the_failed_any_of(make_instance, make_volunteer, make_demand):
    doc = make_instance([make_volunteer(skills=["elder_care"])],
                        [make_demand("d1", skills=["legal", "elder_care", "first_aid"],
                                     skills_any=["medical", "driving"]),
                         make_demand("d2", skills=["legal"], skills_any=["medical", "elder_care"],
                                     start=at(0, 11), end=at(0, 12))])
    assert findings_of(doc, [("d1", "v1"), ("d2", "v1")]) == [
        Finding(1, "d1", "v1", {"missing": ["first_aid", "legal"], "any_of": ["driving", "medical"]},
                "rule 1 (skills): demand 'd1', volunteer 'v1'"),
        Finding(1, "d2", "v1", {"missing": ["legal"], "any_of": []},  # the any-of part holds
                "rule 1 (skills): demand 'd2', volunteer 'v1'"),
    ]


def test_finding_rule_2_names_wanted_and_actual_gender(make_instance, make_volunteer, make_demand):
    doc = make_instance([make_volunteer("v1", gender="M"), make_volunteer("v2")],
                        [make_demand(gender="F", people=2)])
    found = findings_of(doc, [("d1", "v1"), ("d1", "v2")])
    assert [(f.rule, f.demand, f.volunteer, f.data) for f in found] == [
        (2, "d1", "v1", {"wanted": "F", "gender": "M"}),
        (2, "d1", "v2", {"wanted": "F", "gender": None}),
    ]


def test_finding_rule_3_names_the_demand_organizations(make_instance, make_volunteer, make_demand):
    doc = make_instance([make_volunteer(organizations=["o3"])], [make_demand(organizations=["o2", "o1"])])
    f = only(findings_of(doc, [("d1", "v1")]))
    assert (f.rule, f.demand, f.volunteer, f.data) == (3, "d1", "v1", {"organizations": ["o1", "o2"]})


def test_finding_rule_4_gives_the_demand_time_in_week_minutes(make_instance, make_volunteer, make_demand):
    doc = make_instance([make_volunteer()], [make_demand(start=at(1, 9), end=at(1, 10, 30))])
    f = only(findings_of(doc, [("d1", "v1")]))
    assert (f.rule, f.demand, f.volunteer, f.data) == (4, "d1", "v1", {"start": 1980, "end": 2070})


def test_finding_rule_5_gives_distance_and_limit(make_instance, make_volunteer, make_demand):
    doc = make_instance([make_volunteer()], [make_demand(location=north(12))])
    f = only(findings_of(doc, [("d1", "v1")]))
    assert (f.rule, f.demand, f.volunteer, f.data) == (5, "d1", "v1", {"km": 15.6, "max_km": 10})  # 12 km × 1.3


def test_finding_rule_6_has_no_data(make_instance, make_volunteer, make_demand):
    doc = make_instance([make_volunteer()], [make_demand()], forbidden=[{"demand": "d1", "volunteer": "v1"}])
    assert findings_of(doc, [("d1", "v1")]) == [
        Finding(6, "d1", "v1", {}, "rule 6 (forbidden): demand 'd1', volunteer 'v1'")]


@pytest.mark.parametrize(("hours", "text"), [
    ((10, 11), "rule 7 (overlap or travel time): demand 'd1' and a commitment, volunteer 'v1'"),
    ((8, 9), "rule 7 (overlap or travel time): a commitment and demand 'd1', volunteer 'v1'"),
])
def test_finding_rule_7_describes_the_commitment(make_instance, make_volunteer, make_demand, hours, text):
    commitment = {"start": at(0, hours[0]), "end": at(0, hours[1]), "location": north(5)}
    doc = make_instance([make_volunteer(commitments=[commitment])], [make_demand()])
    assert findings_of(doc, [("d1", "v1")]) == [Finding(
        7, "d1", "v1",
        {"other_demand": None, "other_start": hours[0] * 60, "other_end": hours[1] * 60,
         "other_lat": north(5)["lat"], "other_lon": HOME["lon"], "commitment": True},
        text)]


def test_finding_rule_7_two_demands_is_about_the_earlier(make_instance, make_volunteer, make_demand):
    doc = make_instance([make_volunteer()],
                        [make_demand("d1"), make_demand("d2", location=north(1), start=at(0, 9, 30),
                                                        end=at(0, 10, 30))])
    f = only(findings_of(doc, [("d2", "v1"), ("d1", "v1")]))
    assert (f.rule, f.demand, f.volunteer) == (7, "d1", "v1")
    assert f.data == {"other_demand": "d2", "other_start": 570, "other_end": 630,
                      "other_lat": north(1)["lat"], "other_lon": HOME["lon"], "commitment": False}
    assert f.text == "rule 7 (overlap or travel time): demand 'd1' and demand 'd2', volunteer 'v1'"


def test_finding_rule_8_one_demand_names_it(make_instance, make_volunteer, make_demand):
    commitment = {"start": at(0, 11, 30), "end": at(0, 12), "location": dict(HOME)}
    doc = make_instance([make_volunteer(max_minutes_per_week=60, commitments=[commitment])], [make_demand()])
    f = only(findings_of(doc, [("d1", "v1")]))
    assert (f.rule, f.demand, f.volunteer) == (8, "d1", "v1")
    assert f.data == {"minutes": 90, "limit": 60, "committed": 30, "demands": ["d1"]}


def test_finding_rule_8_several_demands_names_none(make_instance, make_volunteer, make_demand):
    doc = make_instance([make_volunteer(max_minutes_per_week=90)],
                        [make_demand("d1"), make_demand("d2", start=at(0, 10), end=at(0, 10, 45))])
    f = only(findings_of(doc, [("d1", "v1"), ("d2", "v1")]))
    assert (f.rule, f.demand, f.volunteer) == (8, None, "v1")
    assert f.data == {"minutes": 105, "limit": 90, "committed": 0, "demands": ["d1", "d2"]}
    assert f.text == "rule 8 (weekly minutes): volunteer 'v1' has 105 minutes, limit 90 (demands 'd1', 'd2')"


def test_finding_is_frozen_and_prints_its_text(make_instance, make_volunteer, make_demand):
    doc = make_instance([make_volunteer()], [make_demand()], forbidden=[{"demand": "d1", "volunteer": "v1"}])
    f = only(findings_of(doc, [("d1", "v1")]))
    assert str(f) == f.text and len({f, f}) == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        f.rule = 5


def test_check_schedule_is_the_text_of_find_violations(doc):
    doc["pinned"] = [{"demand": "d5", "volunteer": "v3"}]
    inst = parse_instance(doc)
    pairs = [("d1", "v2"), ("d2", "v3"), ("d3", "v1"), ("d5", "v1"), ("d3", "v3"), ("d1", "v1"),
             ("d2", "v1"), ("d4", "v1"), ("d4", "v2"), ("d3", "v2"), ("d1", "v9"), ("d1", "v1")]
    responsible = [{"demand": "d4", "organization": "o1"}, {"demand": "d1", "organization": "o1"}]
    found = find_violations(inst, pairs, responsible)
    assert check_schedule(inst, pairs, responsible) == [f.text for f in found]
    assert {f.rule for f in found} == set(range(1, 13)) - {4}
    assert [(f.rule, f.demand, f.volunteer, f.data) for f in found if f.rule in (9, 10, 11, 12)] == [
        (12, "d1", "v9", {"kind": "unknown_id"}),
        (12, "d1", "v1", {"kind": "duplicate_pair"}),
        (9, "d1", None, {"count": 2, "volunteers": ["v2", "v1"], "min_people": 1, "people": 1}),
        (9, "d2", None, {"count": 2, "volunteers": ["v3", "v1"], "min_people": 1, "people": 1}),
        (9, "d3", None, {"count": 3, "volunteers": ["v1", "v3", "v2"], "min_people": 1, "people": 1}),
        (10, "d1", None, {"kind": "not_applicable"}),
        (10, "d4", "v2", {"kind": "not_member", "organization": "o1"}),
        (11, "d5", "v3", {}),
    ]
