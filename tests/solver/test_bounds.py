"""Bounds: the plain LP yardstick, the LP of the CP-SAT model and the solver's own bound
(`solver.bounds.part_bound`) against brute force on tiny instances, against each other on generated
townships of every shape, and under a time limit too small for any LP."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from solver import bounds as bounds_module
from solver import parse_instance, solve
from solver import relaxation as relaxation_module
from solver.bounds import KINDS, build_formulation, conflict_rows, lagrangian, part_bound
from solver.candidates import build_candidates
from solver.decomposition import relaxation_bound
from solver.generate import generate_instance
from solver.model import SCALE, build_part_model, conflict_matrix
from solver.relaxation import LpBuilder, certify, lp_bound, plain_lp_bound, solve_lp
from tests.solver.test_properties import TOO_MANY, brute_force_optimum, instances

SHAPES = ["", "teams", "cross_area", "either_or", "familiar", "long_travel", "scarce",
          "teams,cross_area,either_or,familiar"]


def fixed_cost_without_pairs(inst, cands) -> float:
    """The score of volunteers without candidate pairs (commitments above preferred), which part
    bounds leave to the caller."""
    used = set(cands.volunteer.tolist())
    w = inst.weights.over_preferred_hour
    return -sum(w * max(0, v.committed_minutes - v.preferred_minutes) / 60.0
                for vi, v in enumerate(inst.volunteers) if vi not in used)


def all_bounds(doc: dict, time_limit: float = 10.0) -> dict:
    """Every bound of the whole instance, in score units."""
    inst = parse_instance(doc)
    cands = build_candidates(inst)
    everything = np.arange(len(cands))
    outside = fixed_cost_without_pairs(inst, cands)
    own = part_bound(inst, cands, everything, time_limit)
    assert own.kind in KINDS
    model, _ = lp_bound(build_part_model(inst, cands, everything).model, time_limit)
    return {"inst": inst, "cands": cands, "plain": plain_lp_bound(inst, cands, time_limit=60),
            "own": own.bound + outside, "own_method": own.method,
            "model": None if model is None else model / SCALE + outside,
            "relaxation": relaxation_bound(inst, cands, everything) + outside}


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances())
def test_every_bound_is_above_the_best_valid_schedule(doc):
    best = brute_force_optimum(doc)
    if best is None or best is TOO_MANY:
        return
    bounds = all_bounds(doc)
    assert bounds["plain"] is not None
    assert bounds["plain"] >= best - 1e-6
    assert bounds["own"] >= best - 1e-6
    assert bounds["model"] is not None and bounds["model"] >= best - 1e-6
    assert bounds["own"] <= bounds["plain"] + 1e-6 * max(1.0, abs(bounds["plain"]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances(), st.integers(0, 2**32 - 1))
def test_the_lagrangian_bound_holds_for_any_multipliers(doc, seed):
    best = brute_force_optimum(doc)
    if best is None or best is TOO_MANY:
        return
    inst = parse_instance(doc)
    cands = build_candidates(inst)
    f = build_formulation(inst, cands, np.arange(len(cands)))
    outside = fixed_cost_without_pairs(inst, cands)
    rng = np.random.default_rng(seed)
    for scale in (0.0, 1.0, 30.0, 1000.0):
        u = rng.exponential(scale, len(f.coupling)) * (rng.random(len(f.coupling)) < 0.7)
        assert lagrangian(f, u).value + outside >= best - 1e-6


@pytest.mark.parametrize("shape", SHAPES)
def test_own_bound_is_never_looser_than_the_plain_lp(shape):
    bounds = all_bounds(generate_instance("township", 1, shape))
    plain = bounds["plain"]
    assert plain is not None
    assert bounds["own"] <= plain + 1e-6 * abs(plain)
    # The model's coefficients are rounded towards a larger score by less than 1/SCALE per assignment
    # (travel); at most Σ people assignments.
    rounding = sum(d.people for d in bounds["inst"].demands) / SCALE
    assert bounds["model"] <= plain + 1e-6 * abs(plain) + rounding
    assert bounds["own"] <= bounds["relaxation"] + 1e-6


@pytest.mark.parametrize("shape", ["", "teams,cross_area,either_or,familiar"])
def test_a_bound_comes_even_without_time_for_an_lp(shape):
    doc = generate_instance("township", 2, shape)
    inst = parse_instance(doc)
    cands = build_candidates(inst)
    everything = np.arange(len(cands))
    quick = part_bound(inst, cands, everything, 1e-4)
    assert np.isfinite(quick.bound) and quick.kind == "per_demand"
    assert quick.bound <= relaxation_bound(inst, cands, everything) + 1e-6
    assert len(quick.values) == len(cands)
    solution = solve(doc, time_limit=5, workers=1)
    assert quick.bound + fixed_cost_without_pairs(inst, cands) >= solution["objective"] - 1e-6
    # A little time for the descent alone tightens it.
    descent = part_bound(inst, cands, everything, 0.5)
    assert descent.bound <= quick.bound + 1e-6


def test_an_lp_cut_short_still_certifies_a_valid_bound():
    doc = generate_instance("township", 1, "teams")
    inst = parse_instance(doc)
    cands = build_candidates(inst)
    f = build_formulation(inst, cands, np.arange(len(cands)))
    optimum = certify(f.lp, solve_lp(f.lp, 60).duals)
    for limit in (1e-3, 0.01, 0.05):
        partial = solve_lp(f.lp, limit)
        value = certify(f.lp, partial.duals)
        assert value is None or value >= optimum - 1e-6 * abs(optimum)


def test_certify_is_weak_duality_for_any_duals():
    # max x + y  s.t.  x + y ≤ 1 (row 0), x − y ≥ −0.5 (row 1), 0 ≤ x, y ≤ 1: optimum 1.
    b = LpBuilder()
    x = b.variables([0.0, 0.0], [1.0, 1.0], [1.0, 1.0])
    b.rows([0, 0, 1, 1], [x[0], x[1], x[0], x[1]], [1.0, 1.0, 1.0, -1.0], [-np.inf, -0.5], [1.0, np.inf])
    lp = b.build()
    assert certify(lp, np.array([1.0, 0.0])) == pytest.approx(1.0, abs=1e-5)
    rng = np.random.default_rng(1)
    for _ in range(200):
        assert certify(lp, rng.normal(0, 3, 2)) >= 1.0 - 1e-9


@pytest.mark.parametrize("shape", ["", "long_travel", "cross_area"])
def test_conflict_rows_are_cliques_covering_every_conflict(shape):
    inst = parse_instance(generate_instance("township", 3, shape))
    cands = build_candidates(inst)
    rows, cols, n_rows = conflict_rows(inst, cands, np.arange(len(cands)))
    assert n_rows == (rows.max() + 1 if len(rows) else 0)
    covered = set()
    for r in range(n_rows):
        members = np.sort(cols[rows == r])
        assert len(members) >= 2 and len(set(cands.volunteer[members].tolist())) == 1
        conflict = conflict_matrix(inst, cands.demand[members].tolist())
        assert (conflict | np.eye(len(members), dtype=bool)).all()
        covered |= {(int(a), int(b)) for a in members for b in members if a < b}
    for positions in cands.by_volunteer().values():
        positions = np.sort(positions)
        conflict = conflict_matrix(inst, cands.demand[positions].tolist())
        for a, b in np.argwhere(np.triu(conflict, 1)).tolist():
            assert (int(positions[a]), int(positions[b])) in covered


def test_column_generation_reaches_the_whole_lp(monkeypatch):
    doc = generate_instance("township", 1, "long_travel")
    inst = parse_instance(doc)
    cands = build_candidates(inst)
    everything = np.arange(len(cands))
    whole = part_bound(inst, cands, everything, 60)
    monkeypatch.setattr(bounds_module, "COLUMN_GENERATION_PAIRS", 0)
    monkeypatch.setattr(bounds_module, "COLUMNS_PER_DEMAND", 2)
    monkeypatch.setattr(bounds_module, "COLUMNS_PER_VOLUNTEER", 1)
    generated = part_bound(inst, cands, everything, 60)
    assert generated.timings["lp_rounds"] >= 2
    assert generated.bound == pytest.approx(whole.bound, rel=1e-5)
    short = part_bound(inst, cands, everything, 0.3)
    solution = solve(doc, time_limit=5, workers=1)
    assert short.bound + fixed_cost_without_pairs(inst, cands) >= solution["objective"] - 1e-6


def test_the_plain_lp_by_column_generation_is_the_plain_lp(monkeypatch):
    inst = parse_instance(generate_instance("township", 2, "long_travel"))
    cands = build_candidates(inst)
    direct = plain_lp_bound(inst, cands)
    monkeypatch.setattr(relaxation_module, "PLAIN_COLUMN_GENERATION_ROWS", 0)
    generated = plain_lp_bound(inst, cands)
    assert direct is not None and generated == pytest.approx(direct, rel=1e-6)
