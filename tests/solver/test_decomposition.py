"""Decomposition: components are closed, regions share no volunteer, shipped parts solve as plain data."""

from __future__ import annotations

import json

import numpy as np
import pytest

from solver import solve, validate_solution
from solver.candidates import build_candidates
from solver.decomposition import find_components, plan_parts, relaxation_bound, split_by_region, sub_instance
from solver.generate import generate_instance
from solver.instance import parse_instance
from solver.pipeline import solve_shipped_part


@pytest.fixture(scope="module")
def township():
    doc = generate_instance("township", 2)
    inst = parse_instance(doc)
    return doc, inst, build_candidates(inst)


def test_components_partition_pairs_and_share_nothing(township):
    _, inst, cands = township
    comps = find_components(inst, cands)
    assert sum(len(c) for c in comps) == len(cands)
    seen_v, seen_d = set(), set()
    for comp in comps:
        vs, ds = set(cands.volunteer[comp].tolist()), set(cands.demand[comp].tolist())
        assert not vs & seen_v and not ds & seen_d
        seen_v |= vs
        seen_d |= ds


def test_components_keep_a_residents_demands_together(township):
    _, inst, cands = township
    where = {}
    for ci, comp in enumerate(find_components(inst, cands)):
        for di in set(cands.demand[comp].tolist()):
            resident = inst.demands[di].resident
            if resident is not None:
                assert where.setdefault(resident, ci) == ci


def test_regions_share_no_volunteer_and_cover_their_pairs(township):
    _, inst, cands = township
    regions = [r.owned for r in split_by_region(inst, cands, np.arange(len(cands)), max_pairs=400)]
    assert len(regions) >= 3
    owners = {}
    for r, positions in enumerate(regions):
        for vi in set(cands.volunteer[positions].tolist()):
            assert owners.setdefault(vi, r) == r


def test_plan_parts_splits_only_big_components(township):
    _, inst, cands = township
    parts, n_components = plan_parts(inst, cands, max_pairs=10**6)
    assert len(parts) == 1 and parts[0].exact and n_components >= 1
    parts, _ = plan_parts(inst, cands, max_pairs=300)
    assert any(not p.exact for p in parts)


def test_sub_instance_reproduces_the_parts_pairs_and_solves_shipped(township):
    _, inst, cands = township
    comp = max(find_components(inst, cands), key=len)
    doc = json.loads(json.dumps(sub_instance(inst, cands, comp)))  # plain JSON, as to another machine
    sub = parse_instance(doc)
    assert len(build_candidates(sub)) == len(comp)
    out = solve_shipped_part({"instance": doc, "time_limit": 3, "workers": 1, "hint": []})
    assert out["status"] in ("OPTIMAL", "FEASIBLE")
    fake = {"assignments": [{"demand": d, "volunteer": v} for d, v in out["pairs"]],
            "responsible": [{"demand": d, "organization": o} for d, o in out["responsible"].items()]}
    assert validate_solution(sub, fake)[0] == []


def test_relaxation_bound_is_above_the_solved_score(township):
    doc, inst, cands = township
    solution = solve(doc, time_limit=3)
    assert relaxation_bound(inst, cands, np.arange(len(cands))) >= solution["objective"]


def test_solve_with_forced_region_split_is_valid(township, monkeypatch):
    doc, _, _ = township
    monkeypatch.setattr("solver.pipeline.MAX_PART_PAIRS", 400)
    solution = solve(doc, time_limit=4, workers=1)
    assert solution["stats"]["parts"] > solution["stats"]["exact_parts"]
    violations, score = validate_solution(doc, solution)
    assert violations == []
    assert solution["bound"] >= solution["objective"]


def test_solve_ships_parts_to_a_process_pool(township, monkeypatch):
    doc, _, _ = township
    monkeypatch.setattr("solver.pipeline.MAX_PART_PAIRS", 600)
    monkeypatch.setattr("solver.pipeline.REGION_PAIRS", 600)
    monkeypatch.setattr("solver.pipeline.PARALLEL_MIN_PAIRS", 1)
    monkeypatch.setattr("solver.pipeline.SPAWN_SECONDS", 1.0)
    events = []
    solution = solve(doc, time_limit=8, workers=2, progress=events.append)
    assert solution["stats"]["parts"] >= 2
    assert all(r["status"] in ("OPTIMAL", "FEASIBLE") for r in solution["stats"]["part_results"])
    assert validate_solution(doc, solution)[0] == []
    assert any(e.get("part") for e in events if e["phase"] == "solving")


def test_solve_falls_back_to_one_process_when_workers_cannot_start(township, monkeypatch):
    doc, _, _ = township

    def no_processes(*args, **kwargs):
        raise OSError("no process spawning on this host")

    monkeypatch.setattr("solver.pipeline.MAX_PART_PAIRS", 600)
    monkeypatch.setattr("solver.pipeline.REGION_PAIRS", 600)
    monkeypatch.setattr("solver.pipeline.PARALLEL_MIN_PAIRS", 1)
    monkeypatch.setattr("solver.pipeline.SPAWN_SECONDS", 0.5)
    monkeypatch.setattr("solver.pipeline.ProcessExecutor", no_processes)
    solution = solve(doc, time_limit=4, workers=2)
    assert solution["stats"]["parts"] >= 2
    assert validate_solution(doc, solution)[0] == []
