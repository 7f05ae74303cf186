"""One test per objective term, both ways: unpenalized, and penalized or rewarded by an exact amount."""

from __future__ import annotations

import pytest

from solver.geo import point_distance_km
from tests.solver.builders import HOME, at, north, pairs


def km_to(point: dict) -> float:
    return point_distance_km(HOME["lat"], HOME["lon"], point["lat"], point["lon"], 1.3)


# ---------------------------------------------------------------- coverage (priority)


def test_coverage_one_normal_position_scores_its_weight(make_instance, make_volunteer, make_demand, solved):
    solution = solved(make_instance([make_volunteer()], [make_demand()]))
    assert solution["status"] == "OPTIMAL"
    assert solution["objective"] == pytest.approx(150.0, abs=1e-9)
    assert solution["bound"] == pytest.approx(150.0, abs=0.01)


def test_coverage_custom_priorities_replace_the_defaults(make_instance, make_volunteer, make_demand, solved):
    doc = make_instance([make_volunteer()], [make_demand(priority="vital")],
                        weights={"priority": {"vital": 7, "minor": 1}})
    assert solved(doc)["objective"] == pytest.approx(7.0, abs=1e-9)


def test_coverage_unstaffed_demand_scores_nothing(make_instance, make_volunteer, make_demand, solved):
    solution = solved(make_instance([make_volunteer()], [make_demand(skills=["legal"])]))
    assert solution["objective"] == pytest.approx(0.0, abs=1e-9)


# ---------------------------------------------------------------- travel cost


def test_travel_cost_zero_distance_is_free(make_instance, make_volunteer, make_demand, solved):
    assert solved(make_instance([make_volunteer()], [make_demand()]))["objective"] == pytest.approx(150.0)


def test_travel_cost_two_km_away_costs_two_per_road_km(make_instance, make_volunteer, make_demand, solved):
    where = north(2)
    solution = solved(make_instance([make_volunteer()], [make_demand(location=where)]))
    assert solution["objective"] == pytest.approx(150.0 - 2 * km_to(where), abs=1e-6)
    assert km_to(where) == pytest.approx(2.6, abs=1e-9)


def test_travel_cost_costlier_than_low_priority_leaves_it_unfilled(make_instance, make_volunteer, make_demand,
                                                                    solved):
    doc = make_instance([make_volunteer(max_travel_km=60)], [make_demand(location=north(40), priority="low")])
    solution = solved(doc)
    assert pairs(solution) == set()
    assert solution["unfilled"][0]["reasons"] == ["not_worth_travel_or_overtime"]


# ---------------------------------------------------------------- hours over preferred


def test_over_preferred_within_preference_is_unpenalized(make_instance, make_volunteer, make_demand, solved):
    doc = make_instance([make_volunteer(preferred_minutes_per_week=120)], [make_demand(end=at(0, 11))])
    assert solved(doc)["objective"] == pytest.approx(150.0, abs=1e-9)


def test_over_preferred_one_hour_over_costs_twenty(make_instance, make_volunteer, make_demand, solved):
    doc = make_instance([make_volunteer(preferred_minutes_per_week=60)], [make_demand(end=at(0, 11))])
    assert solved(doc)["objective"] == pytest.approx(130.0, abs=1e-9)


def test_over_preferred_commitments_alone_count(make_instance, make_volunteer, make_demand, solved):
    commitment = {"start": at(2, 9), "end": at(2, 11), "location": HOME}
    doc = make_instance([make_volunteer(preferred_minutes_per_week=90, commitments=[commitment])],
                        [make_demand(skills=["legal"])])
    assert solved(doc)["objective"] == pytest.approx(-10.0, abs=1e-9)


# ---------------------------------------------------------------- continuity per resident


def test_continuity_same_volunteer_for_both_visits_is_unpenalized(make_instance, make_volunteer, make_demand,
                                                                    solved):
    week = [{"start": at(0, 8), "end": at(0, 12)}, {"start": at(1, 8), "end": at(1, 12)}]
    doc = make_instance([make_volunteer("v1", availability=week), make_volunteer("v2", availability=week)],
                        [make_demand("d1", resident="r1"),
                         make_demand("d2", resident="r1", start=at(1, 9), end=at(1, 10))])
    solution = solved(doc)
    assert len({v for _, v in pairs(solution)}) == 1
    assert solution["objective"] == pytest.approx(300.0, abs=1e-9)


def test_continuity_two_volunteers_for_two_visits_costs_thirty(make_instance, make_volunteer, make_demand, solved):
    doc = make_instance([make_volunteer("v1"),
                         make_volunteer("v2", availability=[{"start": at(1, 8), "end": at(1, 12)}])],
                        [make_demand("d1", resident="r1"),
                         make_demand("d2", resident="r1", start=at(1, 9), end=at(1, 10))])
    solution = solved(doc)
    assert pairs(solution) == {("d1", "v1"), ("d2", "v2")}
    assert solution["objective"] == pytest.approx(270.0, abs=1e-9)


def test_continuity_larger_team_counts_only_extra_faces(make_instance, make_volunteer, make_demand, solved):
    week = [{"start": at(0, 8), "end": at(0, 12)}, {"start": at(1, 8), "end": at(1, 12)}]
    doc = make_instance([make_volunteer("v1", availability=week), make_volunteer("v2", availability=week)],
                        [make_demand("d1", resident="r1", people=2),
                         make_demand("d2", resident="r1", start=at(1, 9), end=at(1, 10))])
    # Two distinct volunteers, largest team two: no penalty; 3 positions × 150.
    assert solved(doc)["objective"] == pytest.approx(450.0, abs=1e-9)


# ---------------------------------------------------------------- familiar bonus


def test_familiar_bonus_without_familiar_pair_is_nothing(make_instance, make_volunteer, make_demand, solved):
    doc = make_instance([make_volunteer()], [make_demand(resident="r1")])
    assert solved(doc)["objective"] == pytest.approx(150.0, abs=1e-9)


def test_familiar_bonus_rewards_forty_and_beats_a_closer_stranger(make_instance, make_volunteer, make_demand,
                                                                   solved):
    doc = make_instance([make_volunteer("v1"), make_volunteer("v2", home=north(1))],
                        [make_demand(resident="r1")], familiar=[{"resident": "r1", "volunteer": "v2"}])
    solution = solved(doc)
    assert pairs(solution) == {("d1", "v2")}
    assert solution["objective"] == pytest.approx(150.0 + 40.0 - 2 * km_to(north(1)), abs=1e-6)
    assert "familiar" in solution["assignments"][0]["reasons"]


# ---------------------------------------------------------------- keep previous


def test_keep_previous_default_weight_is_zero(make_instance, make_volunteer, make_demand, solved):
    doc = make_instance([make_volunteer("v1"), make_volunteer("v2", home=north(5))], [make_demand()],
                        previous=[{"demand": "d1", "volunteer": "v2"}])
    assert pairs(solved(doc)) == {("d1", "v1")}


def test_keep_previous_weight_keeps_the_published_pair(make_instance, make_volunteer, make_demand, solved):
    doc = make_instance([make_volunteer("v1"), make_volunteer("v2", home=north(5))], [make_demand()],
                        previous=[{"demand": "d1", "volunteer": "v2"}], weights={"keep_previous": 200})
    solution = solved(doc)
    assert pairs(solution) == {("d1", "v2")}
    assert solution["objective"] == pytest.approx(150.0 + 200.0 - 2 * km_to(north(5)), abs=1e-6)
    assert "kept_from_previous" in solution["assignments"][0]["reasons"]
