"""The search of one part: a drop-in for the CP-SAT step of `pipeline.solve_part`
(`model.solve_part_model`) that gets more out of the same seconds on two cores.

`search_part(pm, inst, cands, hint, time_limit, workers, report)` returns a `PartResult` with the
semantics of `solve_part_model`: status, chosen pair positions, responsible organizations, CP-SAT's
bound in score units (only from a solve of the whole, uncut model that returned a solution), seconds
and the model objective. Every schedule it returns is a solution of the part's model: either the hint,
after CP-SAT has checked it against the model with every variable fixed, or a solution CP-SAT found
for the model itself or for the model with some variables fixed to the incumbent (a restriction, so
still a solution of the whole).

Two searches share the incumbent (numbers from bench/search_tuning.py, see bench/search-tuning.md):

1. **The whole model, LP-driven** (always): CP-SAT with presolve off, one worker, the linear relaxation
   loaded at once (`add_lp_constraints_lazily` off) and no hint. Presolve turns the model's redundant
   LP-tightening rows (`x ≤ y`, `most ≤ Σ serves`, the responsible organization's minimum team) into
   clauses and leaves CP-SAT's LP a tenth of its rows; without presolve its LP is as tight as the model
   and the branch-and-cut of the single worker proves every township part optimal in 0.05–0.5 s (today's
   one presolve round and two workers stay 0.2–0.5% below after 1 s) and district parts in 13–22 s. One
   worker beats two or more on two shared cores (the others take CPU from the one that proves). Loading
   the LP at once brings a district's first LP-guided solution from ~12 s to ~2–4 s. The hint is left
   out because CP-SAT then first follows it for seconds on a district (4.5 s on a shaped one) and its
   later dives are worse; the checked hint stays our incumbent, so nothing is lost by it.
2. **Our large neighbourhood search** (parts of at least `LNS_MIN_PAIRS` pairs with two or more workers,
   in a second thread, started once the whole-model search has not improved for 15% of the time, or has
   found nothing in half of it): a seed demand (the worst served, weighted by priority × missing people,
   or a random one) grows a neighbourhood over the candidate graph towards demands close in time (a
   resident's demands together); every other pair is fixed to the incumbent by two linear rows and
   CP-SAT (again without presolve: with it, the same neighbourhood is not even improved in 2 s) solves the
   rest for at most 0.5 s; neighbourhoods solved to optimality grow, the others shrink. It polishes the
   whole-model search's solutions when that search stalls (shaped districts in 24 s: +0.005% and
   +0.15%). Run from the start it only slows the whole-model search down (−0.7% at 5 s on one).

Tried and dropped: CP-SAT with more workers than cores (4, 8, 16: 8 is good on townships but slower than
one worker without presolve), more presolve rounds, `linearization_level` 0 or 2, `symmetry_level` 0,
`use_lns_only`, `repair_hint`, two workers without presolve, an objective cut at the hint's value, the
hint for the whole-model search, lazily loaded LP rows, `cut_level` 0, the LNS with presolve, the LNS
alone (optimal on townships in 1 s but proves nothing; 0.1–0.5% behind on districts). Not tried: a local
search on the hint before CP-SAT (the LNS is that local search, with exact moves) and symmetry or dominance
cuts (nothing left to prove faster at township size; they would cost the bound's validity checks).
"""

from __future__ import annotations

import heapq
import math
import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from ortools.sat.python import cp_model

from solver.candidates import Candidates
from solver.greedy import Schedule
from solver.instance import Instance
from solver.model import SCALE, PartModel, PartResult, add_schedule_hint

LNS_MIN_PAIRS = 4000  # below this the whole-model search alone proves optimality in about a second
REPORT_EVERY = 0.5  # seconds between progress reports


@dataclass
class SearchSettings:
    """Switches for measuring (bench/search_tuning.py); the defaults are what `search_part` uses."""

    presolve: bool = False
    lazy_lp: bool = False
    whole: bool = True  # run the whole-model search (off only to measure or test the LNS alone)
    full_workers: int = 1
    lns: bool = True
    lns_min_pairs: int = LNS_MIN_PAIRS
    lns_start_pairs: int = 600  # free pairs of the first neighbourhood (adapted as it goes)
    lns_slice: float = 0.5  # seconds of one neighbourhood solve at most
    lns_presolve: bool = False
    whole_hint: bool = False  # hint the whole-model search with the incumbent
    # The LNS starts when the whole-model search has not improved for max(lns_stall × time limit,
    # lns_stall_min seconds), or has found nothing in half the time.
    lns_stall: float = 0.15
    lns_stall_min: float = 1.0
    seed: int = 1
    trace: list | None = None  # if set, gets (seconds, score, source) for every improvement


class _Incumbent:
    """The best solution known: a value for every model variable and its objective (model units)."""

    def __init__(self, values: np.ndarray | None, objective: int | None,
                 report: Callable[[float, float], None] | None):
        self.lock = threading.Lock()
        self.values = values
        self.objective = objective
        self.source = "hint"
        self.report = report
        self.bound = math.inf
        self.last_report = -math.inf
        self.history: list[tuple[float, int, str]] = []  # (monotonic time, objective, source), for measuring

    def offer(self, values: np.ndarray, objective: int, source: str) -> bool:
        """Replace the incumbent if `objective` is higher; report progress at most every REPORT_EVERY s."""
        with self.lock:
            if self.objective is not None and objective <= self.objective:
                return False
            self.values, self.objective, self.source = values, objective, source
            now = time.monotonic()
            self.history.append((now, objective, source))
            if self.report is not None and now - self.last_report >= REPORT_EVERY:
                self.last_report = now
                self.report(objective / SCALE, self.bound / SCALE)
            return True

    def snapshot(self) -> tuple[np.ndarray | None, int | None]:
        """The incumbent's values and objective, read together."""
        with self.lock:
            return self.values, self.objective


def search_part(pm: PartModel, inst: Instance, cands: Candidates, hint: Schedule, time_limit: float,
                workers: int, report: Callable[[float, float], None] | None = None,
                settings: SearchSettings | None = None) -> PartResult:
    """Search the part's model for `time_limit` seconds from `hint` (the pipeline's warm start).

    `report(objective, bound)` (score units, bound ∞ until known) is called on improvements, at most
    every `REPORT_EVERY` seconds, from a worker thread. Returns the best schedule found, never worse than
    the hint when the hint is a solution of the model; status `OPTIMAL` only when the whole-model search
    proved it."""
    settings = settings or SearchSettings()
    started = time.monotonic()
    deadline = started + max(0.0, time_limit)
    values, objective = _checked_hint(pm, inst, cands, hint, deadline)
    incumbent = _Incumbent(values, objective, report)

    stop = threading.Event()
    lns_thread = None
    if (settings.lns and workers >= 2 and values is not None and len(pm.x) >= settings.lns_min_pairs):
        lns = _NeighbourhoodSearch(pm, inst, cands, incumbent, deadline, stop, settings)
        lns_thread = threading.Thread(target=lns.run, name="lns", daemon=True)
        lns_thread.start()
    if settings.whole:
        full = _solve_whole(pm, incumbent, deadline, settings)
    else:
        full = _Outcome("UNKNOWN")
        if lns_thread is not None:
            lns_thread.join(max(0.0, deadline - time.monotonic()))
    stop.set()
    if lns_thread is not None:
        lns.halt()
        lns_thread.join(max(0.0, deadline - time.monotonic()) + 0.5)

    values, objective = incumbent.snapshot()
    seconds = time.monotonic() - started
    if settings.trace is not None:
        settings.trace += [(round(t - started, 3), o / SCALE, s) for t, o, s in incumbent.history]
    if values is None:
        return PartResult(full.status, [], {}, None, seconds, None)
    proved = full.status == "OPTIMAL" and full.objective is not None and full.objective >= objective
    bound = full.bound / SCALE if full.bound is not None else None
    chosen = [p for p, x in pm.x.items() if values[x.index]]
    responsible = {di: o for di, choice in pm.responsible.items() for o, r in choice.items() if values[r.index]}
    return PartResult("OPTIMAL" if proved else "FEASIBLE", chosen, responsible, bound, seconds,
                      objective / SCALE)


# ---------------------------------------------------------------- the hint


def _checked_hint(pm: PartModel, inst: Instance, cands: Candidates, hint: Schedule,
                  deadline: float) -> tuple[np.ndarray | None, int | None]:
    """The hint as a value for every variable and its objective, after CP-SAT has checked it against
    the model with every variable fixed (milliseconds for a township, ~0.1 s for a district);
    (None, None) when it is not a solution of the model."""
    pm.model.clear_hints()
    add_schedule_hint(pm, inst, cands, hint)
    proto = pm.model.proto
    n = len(proto.variables)
    hinted = proto.solution_hint
    if len(hinted.vars) != n:
        return None, None
    values = np.empty(n, dtype=np.int64)
    values[np.array(list(hinted.vars), dtype=np.int64)] = np.array(list(hinted.values), dtype=np.int64)
    solver = cp_model.CpSolver()
    solver.parameters.fix_variables_to_their_hinted_value = True
    solver.parameters.num_workers = 1
    solver.parameters.max_time_in_seconds = max(0.5, deadline - time.monotonic())
    status = solver.solve(pm.model)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None, None
    return values, _model_units(solver.objective_value)


def _model_units(objective_value: float) -> int:
    """CP-SAT's objective value as the integer it is (model units)."""
    return int(round(objective_value))


# ---------------------------------------------------------------- the whole model


@dataclass
class _Outcome:
    status: str
    bound: float | None = None  # model units
    objective: int | None = None


class _Improvements(cp_model.CpSolverSolutionCallback):
    """Hands every solution of the whole-model search to the incumbent."""

    def __init__(self, incumbent: _Incumbent, source: str):
        super().__init__()
        self.incumbent = incumbent
        self.source = source

    def on_solution_callback(self) -> None:
        """Called by CP-SAT on each improving solution."""
        objective = _model_units(self.objective_value)
        if self.incumbent.objective is None or objective > self.incumbent.objective:
            self.incumbent.bound = self.best_objective_bound
            values = np.array(self.response_proto.solution, dtype=np.int64)
            self.incumbent.offer(values, objective, self.source)


def _solve_whole(pm: PartModel, incumbent: _Incumbent, deadline: float, settings: SearchSettings) -> _Outcome:
    """CP-SAT on the whole model, hinted with the incumbent, until the deadline or a proof."""
    left = deadline - time.monotonic()
    if left <= 0.02:
        return _Outcome("UNKNOWN")
    solver = cp_model.CpSolver()
    p = solver.parameters
    p.max_time_in_seconds = left
    p.num_workers = max(1, settings.full_workers)
    p.random_seed = settings.seed
    p.cp_model_presolve = settings.presolve
    if settings.presolve:
        p.max_presolve_iterations = 1
    p.add_lp_constraints_lazily = settings.lazy_lp
    values, _ = incumbent.snapshot()
    pm.model.clear_hints()
    if values is not None and settings.whole_hint:
        _set_hint(pm.model, values)
    status = solver.solve(pm.model, _Improvements(incumbent, "whole"))
    name = solver.status_name(status)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        # Without a solution CP-SAT's reported bound is not a proven one; the LP bound is used instead.
        return _Outcome(name)
    objective = _model_units(solver.objective_value)
    incumbent.offer(np.array(solver.response_proto.solution, dtype=np.int64), objective, "whole")
    return _Outcome(name, solver.best_objective_bound, objective)


def _set_hint(model: cp_model.CpModel, values: np.ndarray) -> None:
    """Hint every variable of `model` with `values` (by variable index)."""
    model.clear_hints()
    hint = model.proto.solution_hint
    hint.vars.extend(range(len(values)))
    hint.values.extend(values.tolist())


# ---------------------------------------------------------------- large neighbourhood search


class _NeighbourhoodSearch:
    """Our LNS: free the pairs of a few related demands, fix every other pair to the incumbent, let
    CP-SAT improve the rest for a short slice; grow neighbourhoods solved to optimality, shrink those
    that ran out of time."""

    def __init__(self, pm: PartModel, inst: Instance, cands: Candidates, incumbent: _Incumbent,
                 deadline: float, stop: threading.Event, settings: SearchSettings):
        self.pm, self.inst, self.incumbent = pm, inst, incumbent
        self.deadline, self.stop, self.settings = deadline, stop, settings
        self.rng = random.Random(settings.seed)
        self.template = pm.model.clone()
        self.template.clear_hints()
        self.positions = list(pm.x)
        self.index = np.array([pm.x[p].index for p in self.positions], dtype=np.int64)
        self.by_demand: dict[int, list[int]] = defaultdict(list)  # demand → rows of self.positions
        self.by_volunteer: dict[int, list[int]] = defaultdict(list)
        for row, p in enumerate(self.positions):
            self.by_demand[int(cands.demand[p])].append(row)
            self.by_volunteer[int(cands.volunteer[p])].append(row)
        self.volunteer_of = np.array([int(cands.volunteer[p]) for p in self.positions], dtype=np.int64)
        self.demand_of = np.array([int(cands.demand[p]) for p in self.positions], dtype=np.int64)
        self.resident_demands: dict[str, list[int]] = defaultdict(list)
        for di in self.by_demand:
            if inst.demands[di].resident is not None:
                self.resident_demands[inst.demands[di].resident].append(di)
        self.size = settings.lns_start_pairs
        self.solver: cp_model.CpSolver | None = None
        self.solver_lock = threading.Lock()
        self.stats = {"solves": 0, "improved": 0, "optimal": 0}

    def run(self) -> None:
        """Wait until the whole-model search stalls, then neighbourhood after neighbourhood until the
        deadline or `stop`."""
        if not self._wait_for_stall():
            return
        while not self.stop.is_set():
            left = self.deadline - time.monotonic()
            if left < 0.05:
                return
            values, objective = self.incumbent.snapshot()
            free = self._neighbourhood(values)
            sub = self._restricted(free, values)
            limit = min(self.settings.lns_slice, left)
            solver = cp_model.CpSolver()
            p = solver.parameters
            p.max_time_in_seconds = limit
            p.num_workers = 1
            p.random_seed = self.rng.randrange(1 << 30)
            p.cp_model_presolve = self.settings.lns_presolve
            p.max_presolve_iterations = 1
            with self.solver_lock:
                if self.stop.is_set():
                    return
                self.solver = solver
            status = solver.solve(sub)
            self.stats["solves"] += 1
            if status == cp_model.OPTIMAL:
                self.stats["optimal"] += 1
                self.size = min(int(self.size * 1.25) + 1, len(self.positions))
            elif status == cp_model.FEASIBLE or status == cp_model.UNKNOWN:
                self.size = max(50, int(self.size * 0.8))
            if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
                found = _model_units(solver.objective_value)
                if found > objective and self.incumbent.offer(
                        np.array(solver.response_proto.solution, dtype=np.int64), found, "lns"):
                    self.stats["improved"] += 1

    def _wait_for_stall(self) -> bool:
        """Sleep while the whole-model search is improving; False if stopped meanwhile."""
        s = self.settings
        started = time.monotonic()
        total = self.deadline - started
        quiet = max(s.lns_stall_min, s.lns_stall * total)
        while not self.stop.is_set():
            if not s.whole:
                return True
            now = time.monotonic()
            with self.incumbent.lock:
                found = [t for t, _, source in self.incumbent.history if source == "whole"]
            if (found and now - found[-1] >= quiet) or (not found and now - started >= total / 2):
                return True
            self.stop.wait(0.05)
        return False

    def halt(self) -> None:
        """Stop the neighbourhood solve under way (called once `stop` is set)."""
        with self.solver_lock:
            if self.solver is not None:
                self.solver.stop_search()

    def _restricted(self, free: np.ndarray, values: np.ndarray) -> cp_model.CpModel:
        """The model with every pair outside `free` (rows) fixed to the incumbent, hinted with it."""
        sub = self.template.clone()
        fixed = np.ones(len(self.positions), dtype=bool)
        fixed[free] = False
        idx = self.index[fixed]
        on = idx[values[idx] == 1]
        off = idx[values[idx] == 0]
        proto = sub.proto
        for refs, value in ((on, 1), (off, 0)):
            if len(refs):
                ct = proto.constraints.add()
                ct.linear.vars.extend(refs.tolist())
                ct.linear.coeffs.extend([1] * len(refs))
                ct.linear.domain.extend([value * len(refs), value * len(refs)])
        _set_hint(sub, values)
        return sub

    def _neighbourhood(self, values: np.ndarray) -> np.ndarray:
        """Rows of the pairs to free: a seed demand (worst served, or random), then demands reached
        through shared candidate volunteers, nearest in start time first, until `size` pairs."""
        inst = self.inst
        assigned = np.zeros(len(inst.demands), dtype=np.int64)
        np.add.at(assigned, self.demand_of, values[self.index])
        demands = list(self.by_demand)
        if self.rng.random() < 0.5:
            weights = [inst.weights.priority[inst.demands[di].priority] * (inst.demands[di].people - assigned[di])
                       + 1.0 for di in demands]
            seed = self.rng.choices(demands, weights)[0]
        else:
            seed = self.rng.choice(demands)
        start = inst.demands[seed].start
        chosen: set[int] = set()
        rows: list[int] = []
        frontier = [(0.0, seed)]
        seen = {seed}
        while frontier and len(rows) < self.size:
            _, di = heapq.heappop(frontier)
            group = [di]
            resident = inst.demands[di].resident
            if resident is not None:
                group = self.resident_demands[resident]
            for dj in group:
                if dj in chosen:
                    continue
                chosen.add(dj)
                rows += self.by_demand[dj]
                for row in self.by_demand[dj]:
                    for other in self.by_volunteer[int(self.volunteer_of[row])]:
                        dk = int(self.demand_of[other])
                        if dk not in seen:
                            seen.add(dk)
                            gap = abs(inst.demands[dk].start - start) / 60.0
                            heapq.heappush(frontier, (gap + self.rng.random(), dk))
        return np.array(rows, dtype=np.int64)
