"""One test per hard rule, both ways: the solver uses a pair the rule allows and never one it forbids;
a pin that breaks the rule makes the instance INFEASIBLE with a conflict naming the rule."""

from __future__ import annotations

import pytest

from tests.solver.builders import NO_WEIGHTS_BUT_PRIORITY, at, north, pairs


def conflict_rules(solution: dict) -> set[int]:
    return {c["rule"] for c in solution["conflicts"]}


# ---------------------------------------------------------------- rule 1: skills


def test_skills_required_held_is_assigned(make_instance, make_volunteer, make_demand, solved):
    doc = make_instance([make_volunteer(skills=["elder_care", "first_aid"])],
                        [make_demand(skills=["elder_care", "first_aid"])])
    assert pairs(solved(doc)) == {("d1", "v1")}


def test_skills_required_missing_one_is_unassigned(make_instance, make_volunteer, make_demand, solved):
    doc = make_instance([make_volunteer(skills=["elder_care"])],
                        [make_demand(skills=["elder_care", "first_aid"])])
    solution = solved(doc)
    assert pairs(solution) == set()
    assert solution["unfilled"] == [{"demand": "d1", "missing": 1, "reasons": ["no_candidate_with_skills"]}]


def test_skills_any_one_of_them_is_assigned(make_instance, make_volunteer, make_demand, solved):
    doc = make_instance([make_volunteer(skills=["first_aid"])],
                        [make_demand(skills_any=["medical", "first_aid"])])
    assert pairs(solved(doc)) == {("d1", "v1")}


def test_skills_any_none_of_them_is_unassigned(make_instance, make_volunteer, make_demand, solved):
    doc = make_instance([make_volunteer(skills=["legal"])], [make_demand(skills_any=["medical", "first_aid"])])
    assert pairs(solved(doc)) == set()


def test_skills_pinned_without_skill_is_infeasible(make_instance, make_volunteer, make_demand, solved):
    doc = make_instance([make_volunteer()], [make_demand(skills=["legal"])],
                        pinned=[{"demand": "d1", "volunteer": "v1"}])
    solution = solved(doc)
    assert solution["status"] == "INFEASIBLE"
    assert conflict_rules(solution) == {1}
    assert solution["assignments"] == [] and solution["objective"] is None


def test_pin_with_override_waives_skills_gender_and_range(make_instance, make_volunteer, make_demand, solved):
    doc = make_instance([make_volunteer(gender="M", home=north(50))],
                        [make_demand(skills=["legal"], gender="F")],
                        pinned=[{"demand": "d1", "volunteer": "v1", "override": True}])
    solution = solved(doc)
    assert solution["status"] == "OPTIMAL"
    assert pairs(solution) == {("d1", "v1")}
    assert "override" in solution["assignments"][0]["reasons"]


# ---------------------------------------------------------------- rule 2: gender


def test_gender_matching_is_assigned(make_instance, make_volunteer, make_demand, solved):
    doc = make_instance([make_volunteer(gender="F")], [make_demand(gender="F")])
    assert pairs(solved(doc)) == {("d1", "v1")}


def test_gender_other_or_unset_is_unassigned(make_instance, make_volunteer, make_demand, solved):
    doc = make_instance([make_volunteer("v1", gender="M"), make_volunteer("v2")], [make_demand(gender="F")])
    solution = solved(doc)
    assert pairs(solution) == set()
    assert solution["unfilled"][0]["reasons"] == ["no_candidate_of_gender"]


def test_gender_pinned_mismatch_is_infeasible(make_instance, make_volunteer, make_demand, solved):
    doc = make_instance([make_volunteer(gender="M")], [make_demand(gender="F")],
                        pinned=[{"demand": "d1", "volunteer": "v1"}])
    assert conflict_rules(solved(doc)) == {2}


# ---------------------------------------------------------------- rule 3: organizations


def test_organization_member_is_assigned(make_instance, make_volunteer, make_demand, solved):
    doc = make_instance([make_volunteer(organizations=["o2", "o3"])], [make_demand(organizations=["o3"])])
    assert pairs(solved(doc)) == {("d1", "v1")}


def test_organization_non_member_is_unassigned(make_instance, make_volunteer, make_demand, solved):
    doc = make_instance([make_volunteer(organizations=["o2"])], [make_demand(organizations=["o3"])])
    solution = solved(doc)
    assert pairs(solution) == set()
    assert solution["unfilled"][0]["reasons"] == ["no_candidate_in_organizations"]


# ---------------------------------------------------------------- rule 4: availability


def test_availability_touching_windows_are_merged(make_instance, make_volunteer, make_demand, solved):
    windows = [{"start": at(0, 8), "end": at(0, 9, 30)}, {"start": at(0, 9, 30), "end": at(0, 11)}]
    doc = make_instance([make_volunteer(availability=windows)], [make_demand(start=at(0, 9), end=at(0, 10))])
    assert pairs(solved(doc)) == {("d1", "v1")}


def test_availability_demand_past_window_end_is_unassigned(make_instance, make_volunteer, make_demand, solved):
    doc = make_instance([make_volunteer()], [make_demand(start=at(0, 11, 30), end=at(0, 12, 30))])
    solution = solved(doc)
    assert pairs(solution) == set()
    assert solution["unfilled"][0]["reasons"] == ["none_available_then"]


def test_availability_pinned_outside_window_is_infeasible(make_instance, make_volunteer, make_demand, solved):
    doc = make_instance([make_volunteer()], [make_demand(start=at(1, 9), end=at(1, 10))],
                        pinned=[{"demand": "d1", "volunteer": "v1"}])
    assert conflict_rules(solved(doc)) == {4}


# ---------------------------------------------------------------- rule 5: travel range


def test_range_within_limit_is_assigned(make_instance, make_volunteer, make_demand, solved):
    doc = make_instance([make_volunteer(max_travel_km=10)], [make_demand(location=north(7.0))])
    solution = solved(doc)
    assert pairs(solution) == {("d1", "v1")}
    assert solution["assignments"][0]["distance_km"] == pytest.approx(9.1, abs=1e-3)


def test_range_beyond_limit_is_unassigned(make_instance, make_volunteer, make_demand, solved):
    doc = make_instance([make_volunteer(max_travel_km=10)], [make_demand(location=north(8.0))])
    solution = solved(doc)
    assert pairs(solution) == set()
    assert solution["unfilled"][0]["reasons"] == ["none_within_range"]


def test_range_pinned_beyond_limit_is_infeasible(make_instance, make_volunteer, make_demand, solved):
    doc = make_instance([make_volunteer(max_travel_km=10)], [make_demand(location=north(8.0))],
                        pinned=[{"demand": "d1", "volunteer": "v1"}])
    assert conflict_rules(solved(doc)) == {5}


# ---------------------------------------------------------------- rule 6: forbidden


def test_forbidden_pair_is_replaced_by_another_volunteer(make_instance, make_volunteer, make_demand, solved):
    doc = make_instance([make_volunteer("v1"), make_volunteer("v2", home=north(1))], [make_demand()],
                        forbidden=[{"demand": "d1", "volunteer": "v1"}])
    assert pairs(solved(doc)) == {("d1", "v2")}


def test_forbidden_only_volunteer_leaves_demand_unfilled(make_instance, make_volunteer, make_demand, solved):
    doc = make_instance([make_volunteer()], [make_demand()], forbidden=[{"demand": "d1", "volunteer": "v1"}])
    solution = solved(doc)
    assert pairs(solution) == set()
    assert solution["unfilled"][0]["reasons"] == ["declined_or_forbidden"]


# ---------------------------------------------------------------- rule 7: overlap and travel


def test_no_overlap_with_travel_back_to_back_same_place_is_feasible(make_instance, make_volunteer, make_demand,
                                                                      solved):
    doc = make_instance([make_volunteer()], [make_demand("d1", start=at(0, 9), end=at(0, 10)),
                                             make_demand("d2", start=at(0, 10), end=at(0, 11))])
    assert pairs(solved(doc)) == {("d1", "v1"), ("d2", "v1")}


def test_no_overlap_with_travel_back_to_back_far_apart_is_infeasible(make_instance, make_volunteer, make_demand,
                                                                       solved):
    # 10 km apart × 1.3 detour at 25 km/h is 31.2 minutes; the gap is 30.
    doc = make_instance([make_volunteer()], [
        make_demand("d1", location=north(5), start=at(0, 9), end=at(0, 10)),
        make_demand("d2", location=north(-5), start=at(0, 10, 30), end=at(0, 11, 30)),
    ], weights=NO_WEIGHTS_BUT_PRIORITY)
    solution = solved(doc)
    assert len(pairs(solution)) == 1
    assert solution["unfilled"][0]["reasons"] == ["candidates_busy_elsewhere"]


def test_no_overlap_with_travel_enough_gap_far_apart_is_feasible(make_instance, make_volunteer, make_demand,
                                                                   solved):
    doc = make_instance([make_volunteer()], [
        make_demand("d1", location=north(5), start=at(0, 9), end=at(0, 10)),
        make_demand("d2", location=north(-5), start=at(0, 10, 32), end=at(0, 11, 32)),
    ])
    assert len(pairs(solved(doc))) == 2


def test_no_overlap_with_commitment_blocks_demand(make_instance, make_volunteer, make_demand, solved):
    commitment = {"start": at(0, 9, 30), "end": at(0, 10, 30), "location": north(1)}
    doc = make_instance([make_volunteer(commitments=[commitment])], [make_demand()])
    solution = solved(doc)
    assert pairs(solution) == set()
    assert solution["unfilled"][0]["reasons"] == ["candidates_busy_elsewhere"]


def test_no_overlap_pinned_overlapping_demands_is_infeasible(make_instance, make_volunteer, make_demand, solved):
    doc = make_instance([make_volunteer()], [make_demand("d1"), make_demand("d2", start=at(0, 9, 30),
                                                                            end=at(0, 10, 30))],
                        pinned=[{"demand": "d1", "volunteer": "v1"}, {"demand": "d2", "volunteer": "v1"}])
    assert conflict_rules(solved(doc)) == {7}


def test_no_overlap_higher_priority_wins_and_is_explained(make_instance, make_volunteer, make_demand, solved):
    doc = make_instance([make_volunteer()], [make_demand("d1", priority="low"),
                                             make_demand("d2", priority="urgent", start=at(0, 9, 30),
                                                         end=at(0, 10, 30))])
    solution = solved(doc)
    assert pairs(solution) == {("d2", "v1")}
    assert solution["unfilled"][0]["reasons"] == ["lower_priority_than_competing_demands"]


# ---------------------------------------------------------------- rule 8: weekly minutes


def test_weekly_minutes_enough_for_both_is_feasible(make_instance, make_volunteer, make_demand, solved):
    doc = make_instance([make_volunteer(max_minutes_per_week=120)],
                        [make_demand("d1"), make_demand("d2", start=at(0, 10), end=at(0, 11))])
    assert len(pairs(solved(doc))) == 2


def test_weekly_minutes_too_few_for_both_takes_one(make_instance, make_volunteer, make_demand, solved):
    doc = make_instance([make_volunteer(max_minutes_per_week=119)],
                        [make_demand("d1"), make_demand("d2", start=at(0, 10), end=at(0, 11))])
    solution = solved(doc)
    assert len(pairs(solution)) == 1
    assert solution["unfilled"][0]["reasons"] == ["weekly_hours_used_up"]


def test_weekly_minutes_commitments_count(make_instance, make_volunteer, make_demand, solved):
    commitment = {"start": at(1, 9), "end": at(1, 11), "location": north(0)}
    doc = make_instance([make_volunteer(max_minutes_per_week=150, commitments=[commitment])], [make_demand()])
    solution = solved(doc)
    assert pairs(solution) == set()
    assert solution["unfilled"][0]["reasons"] == ["weekly_hours_used_up"]


def test_weekly_minutes_pinned_over_limit_is_infeasible(make_instance, make_volunteer, make_demand, solved):
    doc = make_instance([make_volunteer(max_minutes_per_week=30)], [make_demand()],
                        pinned=[{"demand": "d1", "volunteer": "v1", "override": True}])
    assert conflict_rules(solved(doc)) == {8}


# ---------------------------------------------------------------- rule 9: team size


def test_team_size_minimum_reached_is_staffed(make_instance, make_volunteer, make_demand, solved):
    doc = make_instance([make_volunteer("v1"), make_volunteer("v2"), make_volunteer("v3")],
                        [make_demand(people=2, min_people=2)])
    assert len(pairs(solved(doc))) == 2


def test_team_size_below_minimum_sends_nobody(make_instance, make_volunteer, make_demand, solved):
    doc = make_instance([make_volunteer("v1")], [make_demand(people=3, min_people=2)])
    solution = solved(doc)
    assert pairs(solution) == set()
    assert solution["unfilled"] == [{"demand": "d1", "missing": 3, "reasons": ["below_minimum_team"]}]


def test_team_size_pins_beyond_people_is_infeasible(make_instance, make_volunteer, make_demand, solved):
    doc = make_instance([make_volunteer("v1"), make_volunteer("v2")], [make_demand(people=1)],
                        pinned=[{"demand": "d1", "volunteer": "v1"}, {"demand": "d1", "volunteer": "v2"}])
    assert conflict_rules(solved(doc)) == {9}


def test_team_size_pin_without_minimum_team_is_infeasible(make_instance, make_volunteer, make_demand, solved):
    doc = make_instance([make_volunteer("v1")], [make_demand(people=2, min_people=2)],
                        pinned=[{"demand": "d1", "volunteer": "v1"}])
    solution = solved(doc)
    assert solution["status"] == "INFEASIBLE"
    assert conflict_rules(solution) == {9}


# ---------------------------------------------------------------- rule 10: one organization


def test_one_organization_common_member_team_names_it(make_instance, make_volunteer, make_demand, solved):
    doc = make_instance([make_volunteer("v1", organizations=["o1", "o2"]),
                         make_volunteer("v2", organizations=["o2"])],
                        [make_demand(people=2, min_people=2, one_organization=True)])
    solution = solved(doc)
    assert len(pairs(solution)) == 2
    assert solution["responsible"] == [{"demand": "d1", "organization": "o2"}]


def test_one_organization_no_common_member_sends_nobody(make_instance, make_volunteer, make_demand, solved):
    doc = make_instance([make_volunteer("v1", organizations=["o1"]), make_volunteer("v2", organizations=["o2"])],
                        [make_demand(people=2, min_people=2, one_organization=True)])
    solution = solved(doc)
    assert pairs(solution) == set() and solution["responsible"] == []
    assert solution["unfilled"][0]["reasons"] == ["no_single_organization_team"]


def test_one_organization_must_be_listed_when_organizations_set(make_instance, make_volunteer, make_demand,
                                                                 solved):
    doc = make_instance([make_volunteer("v1", organizations=["o1", "o9"]),
                         make_volunteer("v2", organizations=["o1", "o9"])],
                        [make_demand(people=2, one_organization=True, organizations=["o9"])])
    solution = solved(doc)
    assert solution["responsible"] == [{"demand": "d1", "organization": "o9"}]


def test_one_organization_pinned_strangers_is_infeasible(make_instance, make_volunteer, make_demand, solved):
    doc = make_instance([make_volunteer("v1", organizations=["o1"]), make_volunteer("v2", organizations=["o2"])],
                        [make_demand(people=2, one_organization=True)],
                        pinned=[{"demand": "d1", "volunteer": "v1"}, {"demand": "d1", "volunteer": "v2"}])
    assert conflict_rules(solved(doc)) == {10}


# ---------------------------------------------------------------- rule 11: pins


def test_pins_hold_even_against_the_objective(make_instance, make_volunteer, make_demand, solved):
    doc = make_instance([make_volunteer("v1"), make_volunteer("v2", home=north(5))], [make_demand()],
                        pinned=[{"demand": "d1", "volunteer": "v2"}])
    solution = solved(doc)
    assert pairs(solution) == {("d1", "v2")}
    assert "pinned" in solution["assignments"][0]["reasons"]


def test_pins_absent_nearest_volunteer_is_chosen(make_instance, make_volunteer, make_demand, solved):
    doc = make_instance([make_volunteer("v1"), make_volunteer("v2", home=north(5))], [make_demand()])
    solution = solved(doc)
    assert pairs(solution) == {("d1", "v1")}
    assert "nearest_free" in solution["assignments"][0]["reasons"]


def test_team_size_pin_whose_only_helper_is_pinned_elsewhere_is_infeasible(make_instance, make_volunteer,
                                                                           make_demand, solved):
    doc = make_instance([make_volunteer("v1"), make_volunteer("v2")],
                        [make_demand("d1", people=2, min_people=2),
                         make_demand("d2", start=at(0, 9, 30), end=at(0, 10, 30))],
                        pinned=[{"demand": "d1", "volunteer": "v1"}, {"demand": "d2", "volunteer": "v2"}])
    solution = solved(doc)
    assert solution["status"] == "INFEASIBLE"
    assert [(c["demand"], c["volunteer"], c["rule"]) for c in solution["conflicts"]] == [("d1", "v1", 9)]
    assert "at most 1" in solution["conflicts"][0]["message"]
