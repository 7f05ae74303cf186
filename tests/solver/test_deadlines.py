"""The time limit is kept whatever the shape: a search over fewer pairs when the time cannot take them
all, parts the deadline does not reach keep the greedy schedule, worker processes that overstay are
dropped, and the whole command (start-up included) ends within its limit plus a margin."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from solver import parse_instance, solve, validate_solution
from solver.candidates import build_candidates
from solver.decomposition import pair_gains, relaxation_bound
from solver.executors import ProcessExecutor
from solver.generate import generate_instance
from solver.pipeline import _search_candidates

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def township():
    doc = generate_instance("township", 3)
    inst = parse_instance(doc)
    return doc, inst, build_candidates(inst)


def test_search_keeps_each_demands_best_pairs_and_every_pin(township, monkeypatch):
    doc, inst, cands = township
    monkeypatch.setattr("solver.pipeline.MIN_SEARCH_PAIRS", 300)
    monkeypatch.setattr("solver.pipeline.MIN_PAIRS_PER_DEMAND", 2)
    gains = pair_gains(inst, cands)
    worst = int(np.argmin(np.where(cands.demand == 0, gains, np.inf)))  # demand 0's least attractive pair
    pinned = {(0, int(cands.volunteer[worst]))}
    doc = dict(doc, pinned=[{"demand": inst.demands[0].id, "volunteer": inst.volunteers[int(cands.volunteer[worst])].id}])
    inst = parse_instance(doc)
    search = _search_candidates(inst, cands, 0.0, 1)  # no time at all: the smallest search
    assert len(search) < len(cands)
    assert pinned <= set(zip(search.demand.tolist(), search.volunteer.tolist(), strict=True))
    kept = set(zip(search.demand.tolist(), search.volunteer.tolist(), strict=True)) - pinned
    # Of every demand, a dropped pair is never better than a kept one (pins aside).
    for di in np.unique(cands.demand).tolist():
        mine = np.flatnonzero(cands.demand == di)
        kept_gain = [gains[p] for p in mine if (di, int(cands.volunteer[p])) in kept]
        dropped = [gains[p] for p in mine if (di, int(cands.volunteer[p])) not in kept]
        if dropped:
            assert max(dropped) <= min(kept_gain) + 1e-9


def test_a_pruned_search_is_valid_and_bounded_over_every_pair(township, monkeypatch):
    doc, inst, cands = township
    monkeypatch.setattr("solver.pipeline.SEARCH_PAIRS_PER_SECOND", 1)
    monkeypatch.setattr("solver.pipeline.MIN_SEARCH_PAIRS", 200)
    monkeypatch.setattr("solver.pipeline.MIN_PAIRS_PER_DEMAND", 2)
    solution = solve(doc, time_limit=3, workers=1)
    stats = solution["stats"]
    assert stats["searched_pairs"] < stats["candidates"] == len(cands)
    assert "best" in solution["message"]
    assert validate_solution(doc, solution)[0] == []
    # The bound covers every pair: the strengthened LP / Lagrangian over all of them, never above the
    # per-demand relaxation of all of them, never below the schedule.
    assert len(stats["bound_methods"]) == 1
    assert solution["objective"] <= solution["bound"] <= relaxation_bound(inst, cands, np.arange(len(cands))) + 0.01


def test_parts_the_deadline_does_not_reach_keep_the_greedy(township, monkeypatch):
    doc, _, _ = township
    monkeypatch.setattr("solver.pipeline.MAX_PART_PAIRS", 300)
    monkeypatch.setattr("solver.pipeline.REGION_PAIRS", 300)
    monkeypatch.setattr("solver.pipeline.MIN_PART_SECONDS", 10.0)  # no part is worth starting
    started = time.monotonic()
    solution = solve(doc, time_limit=2, workers=1)
    assert time.monotonic() - started < 4
    stats = solution["stats"]
    assert stats["parts"] >= 2 and stats["parts_not_solved"] == stats["parts"]
    assert {r["status"] for r in stats["part_results"]} == {"NOT_REACHED"}
    assert validate_solution(doc, solution)[0] == []
    assert solution["objective"] >= stats["greedy_objective"] - 1e-3
    assert "not solved in time" in solution["message"]


def _slow_payload(doc: dict, seconds: float, deadline_in: float | None = None) -> dict:
    return {"instance": doc, "time_limit": seconds, "deadline_unix": time.time() + (deadline_in or seconds),
            "workers": 1, "hint": []}


def test_process_executor_drops_parts_that_overstay_the_deadline():
    doc = generate_instance("district", 1)  # takes far longer than 3 s to prove optimal
    executor = ProcessExecutor(2)
    try:
        started = time.time()
        answers = list(executor.run([_slow_payload(doc, 30), _slow_payload(doc, 30)], started + 3))
        assert time.time() - started < 5
        assert answers == []
    finally:
        closing = time.time()
        executor.close()
        assert time.time() - closing < 3  # killed, not waited for


def test_process_executor_answers_within_its_deadline(township):
    doc, _, _ = township
    executor = ProcessExecutor(2)
    try:
        payloads = [_slow_payload(doc, 2, 15), _slow_payload(doc, 2, 15)]
        answers = dict(executor.run(payloads, time.time() + 20))
    finally:
        executor.close()
    assert set(answers) == {0, 1}
    assert all(a["status"] in ("OPTIMAL", "FEASIBLE") for a in answers.values())


def test_the_whole_command_keeps_a_short_limit_on_a_district(tmp_path):
    """A district with far-travelling volunteers (about 280,000 pairs) under a 2 s limit: the command,
    interpreter start-up included, answers with a valid schedule within the limit plus 5 s."""
    instance = tmp_path / "district.json"
    instance.write_text(json.dumps(generate_instance("district", 2, ("long_travel",))))
    out = tmp_path / "solution.json"
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "solver", "solve", str(instance), "--time-limit", "2", "-o", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    wall = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    solution = json.loads(out.read_text())
    assert solution["status"] in ("OPTIMAL", "FEASIBLE")
    assert validate_solution(json.loads(instance.read_text()), solution)[0] == []
    assert wall < 2 + 5, f"{wall:.1f} s for a 2 s limit"
