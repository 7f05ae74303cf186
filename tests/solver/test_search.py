"""The part search (`solver.search.search_part`): valid schedules, never worse than the hint, the
deadline kept, a bound that is one, and repeatable results for a fixed seed."""

from __future__ import annotations

import time

import numpy as np
import pytest

from solver.candidates import build_candidates
from solver.generate import generate_instance
from solver.greedy import Schedule, build_greedy
from solver.instance import parse_instance
from solver.model import build_part_model, solve_part_model
from solver.search import SearchSettings, search_part
from solver.validation import check_schedule, score_pairs
from tests.solver.builders import at


def _prepared(doc: dict):
    """Instance, candidates, the model of all pairs (one part) and the greedy warm start."""
    inst = parse_instance(doc)
    cands = build_candidates(inst)
    pm = build_part_model(inst, cands, np.arange(len(cands)))
    return inst, cands, pm, build_greedy(inst, cands)


def _schedule(inst, cands, result) -> tuple[list[tuple[str, str]], list[dict]]:
    pairs = [(inst.demands[int(cands.demand[p])].id, inst.volunteers[int(cands.volunteer[p])].id)
             for p in result.positions]
    staffed = {d for d, _ in pairs}
    responsible = [{"demand": inst.demands[di].id, "organization": o}
                   for di, o in result.responsible.items() if inst.demands[di].id in staffed]
    return pairs, responsible


def _id_pairs(inst, schedule: Schedule) -> list[tuple[str, str]]:
    return [(inst.demands[di].id, inst.volunteers[vi].id) for di, vi in schedule.pairs]


def _checked(inst, cands, hint: Schedule, result) -> float:
    """Assert the result is a valid schedule at least as good as the hint; return its score."""
    pairs, responsible = _schedule(inst, cands, result)
    assert check_schedule(inst, pairs, responsible) == []
    score = score_pairs(inst, pairs)
    assert score >= score_pairs(inst, _id_pairs(inst, hint)) - 1e-6
    if result.bound is not None:
        assert score <= result.bound + 1e-6
    return score


@pytest.fixture(scope="module")
def townships() -> list[dict]:
    """Township seed 1 as generated, and seed 2 with the teams and scarce shapes (smaller, harder)."""
    return [generate_instance("township", 1), generate_instance("township", 2, "teams,either_or,scarce")]


def test_generated_instances_valid_and_not_worse_than_hint(townships):
    for doc in townships:
        inst, cands, pm, hint = _prepared(doc)
        result = search_part(pm, inst, cands, hint, 3.0, 2)
        assert result.status in ("OPTIMAL", "FEASIBLE")
        score = _checked(inst, cands, hint, result)
        assert score > score_pairs(inst, _id_pairs(inst, hint))  # the greedy leaves room on these


def test_at_least_as_good_as_todays_cp_sat_step(townships):
    doc = townships[1]
    inst, cands, pm, hint = _prepared(doc)
    ours = _checked(inst, cands, hint, search_part(pm, inst, cands, hint, 2.0, 2))
    inst, cands, pm, hint = _prepared(doc)
    from solver.model import add_schedule_hint
    add_schedule_hint(pm, inst, cands, hint)
    today = solve_part_model(pm, inst, cands, 2.0, 2)
    assert ours >= score_pairs(inst, _schedule(inst, cands, today)[0]) - 1e-6


@pytest.mark.parametrize("limit", [0.0, 0.05, 0.3])
def test_short_deadline_returns_the_hint_or_better_quickly(townships, limit):
    inst, cands, pm, hint = _prepared(townships[0])
    started = time.monotonic()
    result = search_part(pm, inst, cands, hint, limit, 2)
    assert time.monotonic() - started < limit + 0.5
    assert result.status in ("OPTIMAL", "FEASIBLE")
    _checked(inst, cands, hint, result)


def test_fixed_seed_repeats(townships):
    inst, cands, pm, hint = _prepared(townships[1])
    first = search_part(pm, inst, cands, hint, 5.0, 1)
    inst, cands, pm, hint = _prepared(townships[1])
    second = search_part(pm, inst, cands, hint, 5.0, 1)
    assert first.status == second.status == "OPTIMAL"
    assert first.objective == pytest.approx(second.objective)


def test_neighbourhood_search_alone_improves_validly(townships):
    inst, cands, pm, hint = _prepared(townships[0])
    trace: list = []
    settings = SearchSettings(whole=False, lns_min_pairs=0, trace=trace)
    result = search_part(pm, inst, cands, hint, 1.5, 2, settings=settings)
    assert result.status == "FEASIBLE" and result.bound is None  # no proof without the whole model
    score = _checked(inst, cands, hint, result)
    assert trace and all(source == "lns" for _, _, source in trace)
    assert score == pytest.approx(trace[-1][1], abs=0.5)  # model units round travel per pair


def test_progress_reports_improvements(townships):
    inst, cands, pm, hint = _prepared(townships[0])
    seen: list[tuple[float, float]] = []
    result = search_part(pm, inst, cands, hint, 3.0, 2, lambda o, b: seen.append((o, b)))
    assert seen and seen[0][0] > score_pairs(inst, _id_pairs(inst, hint)) - 1.0
    assert max(o for o, _ in seen) <= result.objective + 1e-6


def test_hint_that_breaks_a_rule_is_never_returned(make_volunteer, make_demand, make_instance):
    # v1 cannot serve both overlapping demands; a hint that says so is not a solution of the model.
    doc = make_instance([make_volunteer("v1"), make_volunteer("v2")],
                        [make_demand("d1"), make_demand("d2", start=at(0, 9, 30), end=at(0, 10, 30))])
    inst, cands, pm, _ = _prepared(doc)
    bad = Schedule([(0, 0), (1, 0)], {})
    result = search_part(pm, inst, cands, bad, 2.0, 2)
    assert result.status == "OPTIMAL"
    pairs, responsible = _schedule(inst, cands, result)
    assert check_schedule(inst, pairs, responsible) == [] and len(pairs) == 2
    assert search_part(pm, inst, cands, bad, 0.0, 2).positions == []  # nothing checked, nothing returned


def test_one_organization_teams_name_their_organization(make_volunteer, make_demand, make_instance):
    vols = [make_volunteer(f"v{i}", organizations=["o1"] if i < 2 else ["o2"]) for i in range(3)]
    doc = make_instance(vols, [make_demand("d1", people=2, min_people=2, one_organization=True)])
    inst, cands, pm, hint = _prepared(doc)
    result = search_part(pm, inst, cands, hint, 2.0, 2)
    assert result.responsible == {0: "o1"}
    _checked(inst, cands, hint, result)
