"""One solve from instance to solution: parse, check pins, candidates, greedy warm start, parts, CP-SAT,
referee check, bound, explanations. The whole call keeps to `time_limit` (reading and building included).
"""

from __future__ import annotations

import math
import multiprocessing
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool

import numpy as np

from solver.candidates import Candidates, build_candidates
from solver.conflicts import find_pin_conflicts, find_team_conflicts, unsatisfiable_pin_conflicts
from solver.decomposition import Part, plan_parts, relaxation_bound, sub_instance
from solver.explain import explain_assignments, explain_unfilled
from solver.greedy import Schedule, build_greedy
from solver.instance import Instance, InstanceError, parse_instance
from solver.model import SCALE, PartResult, add_schedule_hint, build_part_model, solve_part_model
from solver.relaxation import lp_bound
from solver.validation import check_schedule, score_pairs

SOLUTION_SCHEMA = "linli.solution/1"
MAX_PART_PAIRS = 60_000  # above this a component is split by region (heuristic, bound by relaxation)
REGION_PAIRS = 30_000  # target size of one region of a split component (about one district)
PARALLEL_MIN_PAIRS = 20_000  # below this, extra processes cost more than they save
SPAWN_SECONDS = 3.0  # rough cost of starting a worker process that imports OR-Tools

Progress = Callable[[dict], None]


def empty_solution(status: str, name: str = "", message: str = "", conflicts=None) -> dict:
    """A solution document without a schedule (invalid input, infeasible pins, nothing found)."""
    return {
        "schema": SOLUTION_SCHEMA,
        "instance": name,
        "status": status,
        "objective": None,
        "bound": None,
        "assignments": [],
        "responsible": [],
        "unfilled": [],
        "conflicts": conflicts or [],
        "message": message,
        "stats": {},
    }


def round_bound_up(value: float) -> float:
    """Round a bound up to two decimals (never down, float noise included)."""
    return math.ceil(value * 100.0 - 1e-7) / 100.0 + 0.0


def _guarded(progress: Progress | None) -> Progress | None:
    """A progress callback that cannot break the solve: after its first exception it is dropped."""
    if progress is None:
        return None
    broken = False

    def call(event: dict) -> None:
        nonlocal broken
        if broken:
            return
        try:
            progress(event)
        except Exception:  # the caller's display failing must not lose the schedule
            broken = True

    return call


def _emit(progress: Progress | None, phase: str, started: float, **fields) -> None:
    if progress is not None:
        progress({"phase": phase, "elapsed": round(time.monotonic() - started, 3)} | fields)


def solve(instance: dict | str, *, time_limit: float = 30, workers: int = 2,
          progress: Progress | None = None) -> dict:
    """Solve one instance within `time_limit` seconds; never raises on bad input."""
    started = time.monotonic()
    progress = _guarded(progress)
    try:
        return _solve(instance, float(time_limit), int(workers), progress, started)
    except InstanceError as exc:
        _emit(progress, "done", started, status="INVALID_INPUT")
        return empty_solution("INVALID_INPUT", message=str(exc))


def _solve(source, time_limit: float, workers: int, progress: Progress | None, started: float) -> dict:
    deadline = started + max(0.1, time_limit)
    _emit(progress, "building", started)
    inst = parse_instance(source)
    conflicts = find_pin_conflicts(inst)
    if conflicts:
        _emit(progress, "done", started, status="INFEASIBLE")
        return empty_solution("INFEASIBLE", inst.name, "the pinned pairs cannot all hold", conflicts)
    cands = build_candidates(inst)
    conflicts = find_team_conflicts(inst, cands)
    if conflicts:
        _emit(progress, "done", started, status="INFEASIBLE")
        return empty_solution("INFEASIBLE", inst.name, "the pinned pairs cannot all hold", conflicts)
    seed = [(inst.demand_index[d], inst.volunteer_index[v]) for d, v in sorted(inst.previous)]
    greedy = build_greedy(inst, cands, seed=seed)
    parts, n_components = plan_parts(inst, cands, MAX_PART_PAIRS, min(REGION_PAIRS, MAX_PART_PAIRS))
    build_seconds = time.monotonic() - started
    reserve = 0.1 + 0.03 * time_limit + 0.4 * len(inst.demands) / 1000.0  # explanations and output
    budget = deadline - time.monotonic() - reserve
    _emit(progress, "solving", started, objective=None, bound=None)
    solve_started = time.monotonic()
    results = _solve_parts(inst, cands, parts, greedy, budget, workers, progress, started)
    solve_seconds = time.monotonic() - solve_started

    pairs: list[tuple[int, int]] = []
    responsible: dict[int, str] = {}
    notes = []
    for part, result in zip(parts, results, strict=True):
        if result.status == "INFEASIBLE" and part.exact:  # a proof only when the part is exact
            dids = {inst.demands[int(d)].id for d in np.unique(cands.demand[part.positions])}
            _emit(progress, "done", started, status="INFEASIBLE")
            return empty_solution("INFEASIBLE", inst.name, "the pinned pairs cannot all hold",
                                  unsatisfiable_pin_conflicts(inst, dids))
        if result.positions or result.status in ("OPTIMAL", "FEASIBLE"):
            pairs += [(int(cands.demand[p]), int(cands.volunteer[p])) for p in result.positions]
            responsible.update(result.responsible)
        else:
            fallback = result.hint or build_greedy(inst, cands, positions=part.positions, seed=seed)
            owned = set(zip(cands.demand[part.positions].tolist(), cands.volunteer[part.positions].tolist(),
                            strict=True))
            pairs += [p for p in fallback.pairs if p in owned]
            responsible.update(fallback.responsible)
            notes.append("CP-SAT found no schedule in time for a part; its warm start (LP-rounded or greedy) is used")
    chosen = Schedule(pairs, responsible)
    if any(not p.exact for p in parts):
        chosen = _complete_across_regions(inst, cands, chosen)
    if _violations(inst, chosen):
        notes.append("solver schedule failed validation; greedy schedule used")
        chosen = greedy
        if _violations(inst, chosen):
            _emit(progress, "done", started, status="UNKNOWN")
            return empty_solution("UNKNOWN", inst.name, "no valid schedule found within the time limit")
    objective = score_pairs(inst, _id_pairs(inst, chosen.pairs))
    bound = _bound(inst, cands, parts, results, objective)
    status = "OPTIMAL" if bound is not None and bound - objective <= 0.01 + 1e-9 else "FEASIBLE"
    solution = _solution_document(inst, cands, chosen, status, objective, bound)
    solution["message"] = "; ".join(dict.fromkeys(notes))
    solution["stats"] = {
        "candidates": len(cands),
        "components": n_components,
        "parts": len(parts),
        "exact_parts": sum(p.exact for p in parts),
        "part_results": [{"pairs": len(p.positions), "exact": p.exact, "status": r.status,
                          "seconds": round(r.seconds, 2)} | r.timings for p, r in zip(parts, results, strict=True)],
        "greedy_objective": round(score_pairs(inst, _id_pairs(inst, greedy.pairs)), 4),
        "build_seconds": round(build_seconds, 3),
        "solve_seconds": round(solve_seconds, 3),
        "total_seconds": round(time.monotonic() - started, 3),
    }
    _emit(progress, "done", started, status=status, objective=solution["objective"], bound=solution["bound"])
    return solution


def _complete_across_regions(inst: Instance, cands: Candidates, schedule: Schedule) -> Schedule:
    """Regions own their volunteers outright, so demands near a border may stay short although a
    volunteer of the next region is free; fill them greedily and keep the result if it scores higher."""
    completed = build_greedy(inst, cands, fixed=schedule)
    before = score_pairs(inst, _id_pairs(inst, schedule.pairs))
    after = score_pairs(inst, _id_pairs(inst, completed.pairs))
    return completed if after > before and not _violations(inst, completed) else schedule


def _id_pairs(inst: Instance, pairs) -> list[tuple[str, str]]:
    return [(inst.demands[di].id, inst.volunteers[vi].id) for di, vi in pairs]


def _violations(inst: Instance, schedule: Schedule) -> list[str]:
    responsible = [{"demand": inst.demands[di].id, "organization": o}
                   for di, o in schedule.responsible.items()
                   if any(d == di for d, _ in schedule.pairs)]
    return check_schedule(inst, _id_pairs(inst, schedule.pairs), responsible)


def _bound(inst: Instance, cands: Candidates, parts: list[Part], results: list[PartResult],
           objective: float) -> float | None:
    """Sum of the parts' proven bounds (exact parts) and relaxation bounds (split components), plus
    the fixed over-preferred cost of volunteers without any candidate pair."""
    w = inst.weights
    total = 0.0
    split: dict[int, list[tuple[Part, PartResult]]] = defaultdict(list)
    for part, result in zip(parts, results, strict=True):
        if part.exact and result.bound is not None and math.isfinite(result.bound):
            total += result.bound
        elif part.exact:
            total += relaxation_bound(inst, cands, part.positions)
        else:
            split[part.component].append((part, result))
    for regions in split.values():
        total += _split_component_bound(inst, cands, regions)
    used = set(cands.volunteer.tolist())
    for vi, v in enumerate(inst.volunteers):
        if vi not in used:
            total -= w.over_preferred_hour * max(0, v.committed_minutes - v.preferred_minutes) / 60.0
    if total < objective - 1e-6 * max(1.0, abs(objective)):
        return None  # cannot happen for a valid bound; report none rather than a wrong one
    return max(total, objective)  # float noise only


def _split_component_bound(inst: Instance, cands: Candidates, regions: list[tuple[Part, PartResult]]) -> float:
    """Bound of a region-split component: the sum of the regions' bound-model LPs when all were solved,
    plus the fixed over-preferred cost of shared volunteers, counted once; else the relaxation bound.

    Valid because any schedule restricted to one region's demands is feasible for that region's bound
    model (it holds every pair of those demands; a resident's demands share a region), the score splits
    by demand except the over-preferred term, and for shared volunteers that term is replaced by its
    fixed part, which is never more than the true cost."""
    whole = regions[0][0].whole
    if any(r.region_bound is None or not math.isfinite(r.region_bound) for _, r in regions):
        return relaxation_bound(inst, cands, whole)
    w = inst.weights.over_preferred_hour
    fixed = sum(w * max(0, inst.volunteers[vi].committed_minutes - inst.volunteers[vi].preferred_minutes) / 60.0
                for vi in regions[0][0].shared)
    return min(sum(r.region_bound for _, r in regions) - fixed, relaxation_bound(inst, cands, whole))


def _solve_parts(inst: Instance, cands: Candidates, parts: list[Part], greedy: Schedule, budget: float,
                 workers: int, progress: Progress | None, started: float) -> list[PartResult]:
    """Solve every part: in worker processes when several big parts and workers allow, else in turn."""
    sizes = [len(p.positions) for p in parts]
    big = sorted(sizes, reverse=True)
    if workers >= 2 and len(parts) >= 2 and big[1] >= PARALLEL_MIN_PAIRS and budget > 4 * SPAWN_SECONDS:
        pool_started = time.monotonic()
        try:
            return _solve_parts_in_processes(inst, cands, parts, greedy, budget, workers, progress, started)
        except (OSError, RuntimeError, BrokenProcessPool):
            # No worker processes here (restricted host, a killed worker): solve in this process instead.
            budget -= time.monotonic() - pool_started
    results: list[PartResult] = []
    remaining_pairs = sum(sizes)
    done_objective, done_bound = 0.0, 0.0
    for i, part in enumerate(parts):
        left = max(0.05, budget - sum(r.seconds for r in results))
        share = max(0.2, left * len(part.positions) / max(1, remaining_pairs))
        remaining_pairs -= len(part.positions)
        report = None
        if progress is not None:
            def report(obj, bnd, i=i, base_o=done_objective, base_b=done_bound):
                progress({"phase": "solving", "objective": round(base_o + obj, 2),
                          "bound": round(base_b + bnd, 2), "part": i + 1, "parts": len(parts),
                          "elapsed": round(time.monotonic() - started, 3)})
        result = solve_part(inst, cands, part.positions, greedy, share, workers, report, part.extended,
                            part.shared)
        results.append(result)
        done_objective += result.objective or 0.0
        done_bound += result.bound if result.bound is not None else 0.0
    return results


def solve_part(inst: Instance, cands: Candidates, positions: np.ndarray, hint: Schedule,
               time_limit: float, workers: int, report=None, bound_positions: np.ndarray | None = None,
               shared: frozenset[int] = frozenset()) -> PartResult:
    """Build and solve one part's model; model building counts against `time_limit`.

    For a region of a split component, `bound_positions` holds every pair of its demands: the LP of
    that bound model (over-preferred relaxed for `shared` volunteers) is the region's share of a valid
    bound, and its values guide the warm start of the region's own model."""
    started = time.monotonic()
    pm = build_part_model(inst, cands, positions)
    bm = pm if bound_positions is None else build_part_model(inst, cands, bound_positions, shared)
    built = time.monotonic()
    lp_limit = max(0.1, 0.4 * (time_limit - (built - started)))
    lp, values = lp_bound(bm.model, lp_limit)
    lp = lp / SCALE if lp is not None else None
    lp_done = time.monotonic()
    region_bound = None
    if bound_positions is not None:
        region_bound, lp = lp, None
    if values is not None:
        guided = [(int(cands.demand[p]), int(cands.volunteer[p])) for p, x in bm.x.items()
                  if values[x.index] > 0.5 and p in pm.x]
        rounded = build_greedy(inst, cands, positions=positions, seed=guided)
        hint = _better(inst, hint, rounded, positions, cands)
    add_schedule_hint(pm, inst, cands, hint)
    if report is not None:
        owned = set(zip(cands.demand[positions].tolist(), cands.volunteer[positions].tolist(), strict=True))
        warm = score_pairs(inst, _id_pairs(inst, [p for p in hint.pairs if p in owned]))
        report(warm - _fixed_cost_outside(inst, cands, positions), lp if lp is not None else math.inf)
    left = time_limit - (time.monotonic() - started)
    if report is not None and lp is not None:
        inner = report

        def report(objective, bound):
            inner(objective, min(bound, lp))
    cpsat_started = time.monotonic()
    result = solve_part_model(pm, inst, cands, left, workers, report)
    result.hint = hint
    result.region_bound = region_bound
    result.timings = {"build": round(built - started, 2), "lp": round(lp_done - built, 2),
                      "cp_sat": round(time.monotonic() - cpsat_started, 2)}
    if lp is not None:
        result.bound = lp if result.bound is None or not math.isfinite(result.bound) else min(result.bound, lp)
    result.seconds = time.monotonic() - started
    return result


def _fixed_cost_outside(inst: Instance, cands: Candidates, positions: np.ndarray) -> float:
    """The (negative) fixed over-preferred score of volunteers not in the part, which `score_pairs`
    includes; subtracted so a part's warm-start score is comparable with its model objective."""
    inside = set(cands.volunteer[positions].tolist())
    w = inst.weights.over_preferred_hour
    return -sum(w * max(0, v.committed_minutes - v.preferred_minutes) / 60.0
                for vi, v in enumerate(inst.volunteers) if vi not in inside)


def _restrict(inst: Instance, schedule: Schedule, owned: set[tuple[int, int]]) -> Schedule:
    """The schedule's pairs that a part owns, without teams that fall below their minimum there (a
    region does not own every volunteer of a schedule made for the whole instance)."""
    team: dict[int, list[int]] = defaultdict(list)
    for di, vi in schedule.pairs:
        if (di, vi) in owned:
            team[di].append(vi)
    keep = {di for di, vs in team.items() if len(vs) >= inst.demands[di].min_people}
    return Schedule([(di, vi) for di in sorted(keep) for vi in team[di]],
                    {di: o for di, o in schedule.responsible.items() if di in keep})


def _better(inst: Instance, a: Schedule, b: Schedule, positions: np.ndarray, cands: Candidates) -> Schedule:
    """Of two schedules restricted to the part's pairs, the one with the higher score (ties: `a`)."""
    owned = set(zip(cands.demand[positions].tolist(), cands.volunteer[positions].tolist(), strict=True))
    a, b = _restrict(inst, a, owned), _restrict(inst, b, owned)
    score_a = score_pairs(inst, _id_pairs(inst, a.pairs))
    score_b = score_pairs(inst, _id_pairs(inst, b.pairs))
    return b if score_b > score_a else a


def solve_shipped_part(payload: dict) -> dict:
    """Solve a part sent as plain data (`instance`, `time_limit`, `workers`, `hint` id pairs) and return
    plain data: status, id pairs, responsible organizations, bound and seconds. Runs anywhere."""
    started = time.monotonic()
    inst = parse_instance(payload["instance"])
    cands = build_candidates(inst)
    hint_pairs = [(inst.demand_index[d], inst.volunteer_index[v]) for d, v in payload.get("hint", [])
                  if d in inst.demand_index and v in inst.volunteer_index]
    responsible = {inst.demand_index[d]: o for d, o in payload.get("hint_responsible", {}).items()
                   if d in inst.demand_index}
    hint = Schedule(hint_pairs, responsible)
    left = payload["time_limit"] - (time.monotonic() - started)
    if payload.get("deadline_unix") is not None:  # the coordinator's wall clock, when on the same host
        left = min(left, payload["deadline_unix"] - time.time())
    everything = np.arange(len(cands))
    if payload.get("owned_volunteers") is None:
        result = solve_part(inst, cands, everything, hint, left, payload.get("workers", 1))
    else:  # a region: solve its own volunteers' pairs, bound over all pairs of its demands
        owned = {inst.volunteer_index[v] for v in payload["owned_volunteers"]}
        positions = np.array([p for p in everything.tolist() if int(cands.volunteer[p]) in owned], dtype=np.int64)
        shared = frozenset(inst.volunteer_index[v] for v in payload.get("shared_volunteers", []))
        result = solve_part(inst, cands, positions, hint, left, payload.get("workers", 1), None, everything, shared)
    return {
        "status": result.status,
        "pairs": [(inst.demands[int(cands.demand[p])].id, inst.volunteers[int(cands.volunteer[p])].id)
                  for p in result.positions],
        "responsible": {inst.demands[di].id: o for di, o in result.responsible.items()},
        "bound": result.bound,
        "region_bound": result.region_bound,
        "objective": result.objective,
        "seconds": time.monotonic() - started,
        "timings": result.timings,
        "fallback": [(inst.demands[d].id, inst.volunteers[v].id) for d, v in result.hint.pairs] if result.hint else [],
        "fallback_responsible": {inst.demands[d].id: o for d, o in result.hint.responsible.items()}
        if result.hint else {},
    }


def _solve_parts_in_processes(inst: Instance, cands: Candidates, parts: list[Part], greedy: Schedule,
                              budget: float, workers: int, progress: Progress | None = None,
                              started: float = 0.0) -> list[PartResult]:
    """Ship parts as sub-instances to a process pool (the same payload could go to another machine)."""
    pool_size = min(workers, len(parts))
    per_worker = max(1, workers // pool_size)
    total = sum(len(p.positions) for p in parts)
    usable = budget - SPAWN_SECONDS
    payloads = []
    greedy_pairs = _id_pairs(inst, greedy.pairs)
    for part in parts:
        sub = sub_instance(inst, cands, part.positions if part.extended is None else part.extended)
        dids = {d["id"] for d in sub["demands"]}
        vids = {v["id"] for v in sub["volunteers"]}
        region = {}
        if part.extended is not None:
            owned = set(cands.volunteer[part.positions].tolist())
            region = {"owned_volunteers": [inst.volunteers[vi].id for vi in sorted(owned)],
                      "shared_volunteers": [v for v in vids if inst.volunteer_index[v] in part.shared]}
        payloads.append(region | {
            "instance": sub,
            "time_limit": max(0.5, 0.9 * usable * min(1.0, pool_size * len(part.positions) / total)),
            "workers": per_worker,
            "deadline_unix": time.time() + budget - 0.5,
            "hint": [(d, v) for d, v in greedy_pairs if d in dids and v in vids],
            "hint_responsible": {inst.demands[di].id: o for di, o in greedy.responsible.items()
                                 if inst.demands[di].id in dids},
        })
    order = sorted(range(len(parts)), key=lambda i: -len(parts[i].positions))
    context = multiprocessing.get_context("spawn")
    shipped: dict[int, dict] = {}
    with ProcessPoolExecutor(max_workers=pool_size, mp_context=context) as pool:
        futures = {pool.submit(solve_shipped_part, payloads[i]): i for i in order}
        for future in as_completed(futures):
            try:
                shipped[futures[future]] = future.result()
            except BrokenProcessPool:
                raise
            except Exception as exc:  # a part that failed falls back to its greedy schedule
                shipped[futures[future]] = {"status": f"ERROR: {exc.__class__.__name__}", "pairs": [],
                                            "responsible": {}, "bound": None, "region_bound": None,
                                            "objective": None, "seconds": 0.0, "timings": {},
                                            "fallback": [], "fallback_responsible": {}}
            if progress is not None:
                done = [o["objective"] for o in shipped.values() if o["objective"] is not None]
                progress({"phase": "solving", "objective": round(sum(done), 2), "bound": None,
                          "part": len(shipped), "parts": len(parts),
                          "elapsed": round(time.monotonic() - started, 3)})
    results = []
    for i, _part in enumerate(parts):
        out = shipped[i]
        index = {(int(cands.demand[p]), int(cands.volunteer[p])): int(p) for p in parts[i].positions}
        positions = [index[(inst.demand_index[d], inst.volunteer_index[v])] for d, v in out["pairs"]]
        responsible = {inst.demand_index[d]: o for d, o in out["responsible"].items()}
        hint = Schedule([(inst.demand_index[d], inst.volunteer_index[v]) for d, v in out["fallback"]],
                        {inst.demand_index[d]: o for d, o in out["fallback_responsible"].items()}) \
            if out["fallback"] else None
        results.append(PartResult(out["status"], positions, responsible, out["bound"], out["seconds"],
                                  out["objective"], hint, out["timings"], out["region_bound"]))
    return results


def _solution_document(inst: Instance, cands: Candidates, schedule: Schedule, status: str,
                       objective: float, bound: float | None) -> dict:
    """The `linli.solution/1` document with explanations."""
    km_of = {(int(d), int(v)): float(k) for d, v, k in zip(cands.demand, cands.volunteer, cands.km, strict=True)}
    reasons = explain_assignments(inst, cands, schedule.pairs)
    staffed = {di for di, _ in schedule.pairs}
    assignments = [
        {"demand": inst.demands[di].id, "volunteer": inst.volunteers[vi].id,
         "distance_km": round(km_of.get((di, vi), 0.0), 3), "reasons": reasons[(di, vi)]}
        for di, vi in sorted(schedule.pairs)
    ]
    responsible = [{"demand": inst.demands[di].id, "organization": o}
                   for di, o in sorted(schedule.responsible.items())
                   if di in staffed and inst.demands[di].one_organization]
    return {
        "schema": SOLUTION_SCHEMA,
        "instance": inst.name,
        "status": status,
        "objective": objective,
        "bound": None if bound is None else round_bound_up(bound),
        "assignments": assignments,
        "responsible": responsible,
        "unfilled": explain_unfilled(inst, cands, schedule.pairs),
        "conflicts": [],
        "message": "",
        "stats": {},
    }
