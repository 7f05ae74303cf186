"""One solve from instance to solution: parse, check pins, candidates, greedy warm start, parts, CP-SAT,
referee check, bound, explanations. The whole call keeps to `time_limit` (reading and building included).
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from solver.bounds import part_bound
from solver.candidates import Candidates, build_candidates
from solver.conflicts import find_pin_conflicts, find_team_conflicts, unsatisfiable_pin_conflicts
from solver.decomposition import Part, pair_gains, plan_parts, relaxation_bound, sub_instance
from solver.executors import PartExecutor, ProcessExecutor, local_processes
from solver.explain import explain_assignments, explain_unfilled, pair_km
from solver.greedy import Schedule, build_greedy
from solver.instance import Instance, InstanceError, parse_instance
from solver.model import PartResult, build_part_model
from solver.search import search_part
from solver.validation import check_schedule, score_pairs

SOLUTION_SCHEMA = "linli.solution/1"
MAX_PART_PAIRS = 60_000  # above this a component is split by region (heuristic, bound by relaxation)
REGION_PAIRS = 30_000  # target size of one region of a split component (about one district)
PARALLEL_MIN_PAIRS = 20_000  # below this, extra processes cost more than they save
SPAWN_SECONDS = 3.0  # rough cost of starting a worker process that imports OR-Tools
SHIP_SECONDS = 1.0  # a shipped part's reading and candidate building on the other side, and the way back
MIN_PART_SECONDS = 0.3  # a part given less than this keeps its warm start
# What one process builds, relaxes and searches usefully in a second (2-core machine, measured on
# districts and cities); above `seconds × processes × this` pairs the search keeps each demand's best.
SEARCH_PAIRS_PER_SECOND = 1_500
MIN_SEARCH_PAIRS = 60_000  # a district is always searched whole
MIN_PAIRS_PER_DEMAND = 8
BOUND_SHARE = 0.4  # of a part's time after building its model, for its bound (and LP-guided warm start)
# When the search was pruned, the bound over every pair: the strengthened LP up to this many pairs (its
# formulation needs ~3 KB a pair), given this share of the time limit (at most WHOLE_BOUND_SECONDS).
WHOLE_BOUND_PAIRS = 600_000
WHOLE_BOUND_SHARE = 0.3
WHOLE_BOUND_SECONDS = 20.0

Progress = Callable[[dict], None]

# What `stats.bound_methods` may name: the bound is a sum over parts, each bounded by one of these.
BOUND_METHODS = {
    "model_lp": "the linear relaxation of the part's model (every rule, cliques of clashing demands), "
                "certified from its duals",
    "cp_sat": "CP-SAT's proven bound for the part (proved optimal, or tighter than the LP)",
    "lp_cut_short": "the same linear relaxation cut short by the time limit, certified from its last duals",
    "lagrangian": "a Lagrangian bound with exact teams at the LP's multipliers (tighter than the LP)",
    "regions_lp": "the regions' linear relaxations over every pair of their demands, certified",
    "per_demand": "each demand's best team on its own (hours, clashes and continuity relaxed)",
}


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
          progress: Progress | None = None, executor: PartExecutor | None = None) -> dict:
    """Solve one instance within `time_limit` seconds of wall time; never raises on bad input.

    `executor` runs parts elsewhere (solver/rq_parts.py: RQ workers on other machines); without one,
    parts run in worker processes here when `workers` ≥ 2 and the week splits, else in this process."""
    started = time.monotonic()
    progress = _guarded(progress)
    try:
        return _solve(instance, float(time_limit), int(workers), progress, started, executor)
    except InstanceError as exc:
        _emit(progress, "done", started, status="INVALID_INPUT")
        return empty_solution("INVALID_INPUT", message=str(exc))


class _Clock:
    """The deadline and the seconds each phase took (reported in `stats.phases`)."""

    def __init__(self, started: float, time_limit: float):
        self.started = started
        self.deadline = started + max(0.1, time_limit)
        self.last = started
        self.phases: dict[str, float] = {}

    def mark(self, phase: str) -> None:
        now = time.monotonic()
        self.phases[phase] = round(self.phases.get(phase, 0.0) + now - self.last, 3)
        self.last = now

    def left(self) -> float:
        return self.deadline - time.monotonic()


def _reserve(inst: Instance, cands: Candidates) -> float:
    """Seconds kept after the search for completing, checking, bounding, explaining and writing (about
    one microsecond per candidate pair and 0.4 ms per demand on 2 cores, measured on cities)."""
    return 0.15 + 1.2e-6 * len(cands) + 0.4e-3 * len(inst.demands)


def _solve(source, time_limit: float, workers: int, progress: Progress | None, started: float,
           executor: PartExecutor | None) -> dict:
    clock = _Clock(started, time_limit)
    _emit(progress, "building", started)
    inst = parse_instance(source)
    conflicts = find_pin_conflicts(inst)
    if conflicts:
        _emit(progress, "done", started, status="INFEASIBLE")
        return empty_solution("INFEASIBLE", inst.name, "the pinned pairs cannot all hold", conflicts)
    clock.mark("parse")
    cands = build_candidates(inst)
    conflicts = find_team_conflicts(inst, cands)
    if conflicts:
        _emit(progress, "done", started, status="INFEASIBLE")
        return empty_solution("INFEASIBLE", inst.name, "the pinned pairs cannot all hold", conflicts)
    clock.mark("candidates")
    pool = None
    remote = executor.capacity() if executor is not None else 0  # asked once: it may change meanwhile
    if not remote and workers >= 2 and local_processes(workers) >= 2 and len(cands) > MAX_PART_PAIRS \
            and clock.left() > 4 * SPAWN_SECONDS:
        # Probably several big parts: start worker processes now, their start-up overlaps the greedy.
        pool = _start_pool(local_processes(workers))
    runner, lanes = (executor, remote) if remote else (pool, pool.capacity() if pool is not None else 1)
    try:
        return _solve_built(inst, cands, clock, workers, progress, runner if remote else None, runner, lanes)
    finally:
        if pool is not None:
            pool.close()


def _solve_built(inst: Instance, cands: Candidates, clock: _Clock, workers: int, progress: Progress | None,
                 executor: PartExecutor | None, runner: PartExecutor | None, lanes: int) -> dict:
    """The solve once candidates are built: `executor` is a remote one with workers now, `runner` what
    runs parts side by side (that executor, or worker processes here, or None) with `lanes` at once."""
    started = clock.started
    reserve = _reserve(inst, cands)
    search = _search_candidates(inst, cands, clock.left() - reserve, lanes)
    pruned = search is not cands
    seed = [(inst.demand_index[d], inst.volunteer_index[v]) for d, v in sorted(inst.previous)]
    greedy = build_greedy(inst, search, seed=seed)  # the warm start, and the schedule of parts not reached
    clock.mark("greedy")
    parts, n_components = plan_parts(inst, search, MAX_PART_PAIRS, min(REGION_PAIRS, MAX_PART_PAIRS))
    if pruned:  # the bound covers every pair separately; regions need no bound models of their own
        for part in parts:
            part.extended = None
            part.exact = False
    clock.mark("plan")
    _emit(progress, "solving", started, objective=None, bound=None)
    # A search over fewer pairs than there are: the bound over every pair is worked out at the end,
    # in time kept for it (the strengthened LP and Lagrangian while it fits in memory and time).
    bound_seconds = 0.0
    if pruned and len(cands) <= WHOLE_BOUND_PAIRS:
        bound_seconds = min(WHOLE_BOUND_SECONDS, max(0.5, WHOLE_BOUND_SHARE * (clock.deadline - clock.started)))
    end = clock.deadline - reserve - bound_seconds
    if runner is not None and (executor is not None or (len(parts) >= 2 and _worth_shipping(parts))):
        outcomes, where = _dispatch(inst, search, parts, greedy, end, workers, runner, lanes, progress, started)
    else:
        outcomes, where = _solve_here(inst, search, parts, greedy, end, workers, progress, started), "this process"
    clock.mark("search")

    pairs: list[tuple[int, int]] = []
    responsible: dict[int, str] = {}
    notes = []
    fallbacks = 0
    for part, out in zip(parts, outcomes, strict=True):
        if out.status == "INFEASIBLE" and part.exact:  # a proof only when the part is exact
            dids = {inst.demands[int(d)].id for d in np.unique(search.demand[part.positions])}
            _emit(progress, "done", started, status="INFEASIBLE")
            return empty_solution("INFEASIBLE", inst.name, "the pinned pairs cannot all hold",
                                  unsatisfiable_pin_conflicts(inst, dids))
        owned = _owned(search, part.positions)
        chosen_here = out.schedule
        if chosen_here is None:
            fallbacks += 1
            chosen_here = _restrict(inst, out.fallback, owned) if out.fallback is not None else None
            if chosen_here is None or not chosen_here.pairs:
                chosen_here = _restrict(inst, greedy, owned)
        pairs += [p for p in chosen_here.pairs if p in owned]
        responsible.update(chosen_here.responsible)
    if fallbacks:
        notes.append(f"{fallbacks} of {len(parts)} part(s) were not solved in time; their warm start "
                     "(LP-rounded or greedy) is used")
    if pruned:
        notes.append(f"time allowed a search over the best {len(search)} of {len(cands)} candidate pairs")
    chosen = Schedule(pairs, responsible)
    if (pruned or fallbacks or any(not p.exact for p in parts)) and \
            clock.left() > 1.5e-6 * len(search) + 0.3e-3 * len(inst.demands):
        chosen = _complete_across_regions(inst, search, chosen)
    if _violations(inst, chosen):
        notes.append("solver schedule failed validation; greedy schedule used")
        chosen = greedy
        if _violations(inst, chosen):
            _emit(progress, "done", started, status="UNKNOWN")
            return empty_solution("UNKNOWN", inst.name, "no valid schedule found within the time limit")
    objective = score_pairs(inst, _id_pairs(inst, chosen.pairs))
    greedy_objective = score_pairs(inst, _id_pairs(inst, greedy.pairs))
    if objective < greedy_objective and chosen is not greedy and not _violations(inst, greedy):
        notes.append("the merged parts scored below the greedy schedule, which is used")
        chosen, objective = greedy, greedy_objective
    clock.mark("merge")
    if pruned:
        bound, method = _whole_bound(inst, cands, objective, min(bound_seconds, clock.left() - reserve))
    else:
        bound, method = _bound(inst, cands, parts, outcomes, objective)
    clock.mark("bound")
    status = "OPTIMAL" if bound is not None and bound - objective <= 0.01 + 1e-9 else "FEASIBLE"
    solution = _solution_document(inst, cands, chosen, status, objective, bound)
    clock.mark("output")
    solution["message"] = "; ".join(dict.fromkeys(notes))
    solution["stats"] = {
        "candidates": len(cands),
        "searched_pairs": len(search),
        "components": n_components,
        "parts": len(parts),
        "exact_parts": sum(p.exact for p in parts),
        "parts_not_solved": fallbacks,
        "parts_solved_in": where,
        "part_results": [{"pairs": len(p.positions), "exact": p.exact, "status": o.status,
                          "seconds": round(o.seconds, 2)} | o.timings for p, o in zip(parts, outcomes, strict=True)],
        "bound_methods": method,
        "greedy_objective": round(greedy_objective, 4),
        "phases": clock.phases,
        "build_seconds": round(sum(clock.phases.get(k, 0.0) for k in ("parse", "candidates", "greedy", "plan")), 3),
        "solve_seconds": clock.phases.get("search", 0.0),
        "total_seconds": round(time.monotonic() - started, 3),
    }
    _emit(progress, "done", started, status=status, objective=solution["objective"], bound=solution["bound"])
    return solution


def _start_pool(processes: int) -> ProcessExecutor | None:
    try:
        return ProcessExecutor(processes)
    except (OSError, RuntimeError):  # no worker processes on this host: parts run here
        return None


def _worth_shipping(parts: list[Part]) -> bool:
    """Worker processes pay off when the parts besides the biggest hold enough pairs."""
    sizes = sorted((len(p.positions) for p in parts), reverse=True)
    return len(sizes) >= 2 and sum(sizes[1:]) >= PARALLEL_MIN_PAIRS


def _owned(cands: Candidates, positions: np.ndarray) -> set[tuple[int, int]]:
    return set(zip(cands.demand[positions].tolist(), cands.volunteer[positions].tolist(), strict=True))


def _search_candidates(inst: Instance, cands: Candidates, seconds: float, lanes: int) -> Candidates:
    """The pairs the search can take on in the time left: all of them when they fit, else each
    demand's best `k` by their own score (at least MIN_PAIRS_PER_DEMAND), plus every pin and every
    pair of the published schedule. Dropping pairs never makes a schedule invalid; the bound still
    covers all of them."""
    cap = int(max(MIN_SEARCH_PAIRS, seconds * max(1, lanes) * SEARCH_PAIRS_PER_SECOND))
    if len(cands) <= cap:
        return cands
    with_pairs = len(np.unique(cands.demand))
    k = max(MIN_PAIRS_PER_DEMAND, cap // max(1, with_pairs))
    gain = pair_gains(inst, cands)
    order = np.lexsort((-gain, cands.demand))
    dem = cands.demand[order]
    starts = np.flatnonzero(np.r_[True, dem[1:] != dem[:-1]])
    rank = np.arange(len(dem)) - np.repeat(starts, np.diff(np.r_[starts, len(dem)]))
    keep = np.zeros(len(cands), dtype=bool)
    keep[order[rank < k]] = True
    must = {(inst.demand_index[p.demand], inst.volunteer_index[p.volunteer]) for p in inst.pinned}
    must |= {(inst.demand_index[d], inst.volunteer_index[v]) for d, v in inst.previous}
    if must:
        nv = len(inst.volunteers)
        codes = cands.demand * nv + cands.volunteer
        keep |= np.isin(codes, np.array([di * nv + vi for di, vi in must], dtype=np.int64))
    return cands.subset(np.flatnonzero(keep))


@dataclass
class _Outcome:
    """What became of one part: its schedule (None when it was not solved in time), the warm start
    to fall back on, its bounds and timings."""

    status: str
    schedule: Schedule | None
    fallback: Schedule | None = None
    bound: float | None = None
    region_bound: float | None = None
    objective: float | None = None
    seconds: float = 0.0
    timings: dict = field(default_factory=dict)


def _outcome_from_result(cands: Candidates, result: PartResult) -> _Outcome:
    solved = bool(result.positions) or result.status in ("OPTIMAL", "FEASIBLE")
    schedule = Schedule([(int(cands.demand[p]), int(cands.volunteer[p])) for p in result.positions],
                        dict(result.responsible)) if solved else None
    return _Outcome(result.status, schedule, result.hint, result.bound, result.region_bound, result.objective,
                    result.seconds, result.timings)


def _solve_here(inst: Instance, cands: Candidates, parts: list[Part], greedy: Schedule, end: float,
                workers: int, progress: Progress | None, started: float) -> list[_Outcome]:
    """Solve the parts one after another in this process, each given a share of the time left by
    its size; parts the deadline leaves no useful time for keep the greedy schedule."""
    outcomes: list[_Outcome] = []
    remaining_pairs = sum(len(p.positions) for p in parts)
    done_objective, done_bound = 0.0, 0.0
    for i, part in enumerate(parts):
        left = end - time.monotonic()
        size = len(part.positions)
        share = left * size / max(1, remaining_pairs)
        remaining_pairs -= size
        if left < MIN_PART_SECONDS or share < min(MIN_PART_SECONDS, 0.5 * left):
            outcomes.append(_Outcome("NOT_REACHED", None))
            continue
        report = None
        if progress is not None:
            def report(obj, bnd, i=i, base_o=done_objective, base_b=done_bound):
                progress({"phase": "solving", "objective": round(base_o + obj, 2),
                          "bound": round(base_b + bnd, 2), "part": i + 1, "parts": len(parts),
                          "elapsed": round(time.monotonic() - started, 3)})
        result = solve_part(inst, cands, part.positions, greedy, max(0.05, share), workers, report,
                            part.extended, part.shared)
        outcomes.append(_outcome_from_result(cands, result))
        done_objective += result.objective or 0.0
        done_bound += result.bound if result.bound is not None else 0.0
    return outcomes


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


def _bound(inst: Instance, cands: Candidates, parts: list[Part], outcomes: list[_Outcome],
           objective: float) -> tuple[float | None, list[str]]:
    """Sum of the parts' proven bounds (exact parts) and relaxation bounds (split components), plus
    the fixed over-preferred cost of volunteers without any candidate pair; and which bounds those are
    (`BOUND_METHODS`)."""
    total = 0.0
    methods = set()
    split: dict[int, list[tuple[Part, _Outcome]]] = defaultdict(list)
    for part, out in zip(parts, outcomes, strict=True):
        if part.exact and out.bound is not None and math.isfinite(out.bound):
            total += out.bound
            methods.add(out.timings.get("bound_method", "model_lp"))
        elif part.exact:
            total += relaxation_bound(inst, cands, part.positions)
            methods.add("per_demand")
        else:
            split[part.component].append((part, out))
    for regions in split.values():
        value, method = _split_component_bound(inst, cands, regions)
        total += value
        methods.update(method.split("+"))
    total -= _fixed_over_cost(inst, _without_pairs(inst, cands))
    if total < objective - 1e-6 * max(1.0, abs(objective)):
        return None, sorted(methods)  # cannot happen for a valid bound; report none rather than a wrong one
    return max(total, objective), sorted(methods)  # float noise only


def _whole_bound(inst: Instance, cands: Candidates, objective: float,
                 seconds: float) -> tuple[float | None, list[str]]:
    """A bound over every candidate pair when the search looked at fewer: `bounds.part_bound` over all
    pairs in `seconds` when there are few enough of them, else the per-demand relaxation; plus the
    fixed cost of volunteers without pairs."""
    fixed = _fixed_over_cost(inst, _without_pairs(inst, cands))
    total, method = relaxation_bound(inst, cands, np.arange(len(cands))), "per_demand"
    if len(cands) <= WHOLE_BOUND_PAIRS and seconds > 0.3:
        pb = part_bound(inst, cands, np.arange(len(cands)), seconds, lower=objective + fixed)
        if pb.bound < total:
            total, method = pb.bound, bound_code(pb)
    total -= fixed
    if total < objective - 1e-6 * max(1.0, abs(objective)):
        return None, [method]
    return max(total, objective), [method]


def _split_component_bound(inst: Instance, cands: Candidates,
                           regions: list[tuple[Part, _Outcome]]) -> tuple[float, str]:
    """Bound of a region-split component: the sum of the regions' bounds over every pair of their
    demands (`part_bound`; for a region not reached, its per-demand relaxation), less the fixed
    over-preferred cost of shared volunteers, counted once; or the component's per-demand relaxation
    when that is lower.

    Valid because any schedule restricted to one region's demands is feasible for that region's bound
    model (it holds every pair of those demands; a resident's demands share a region), the score splits
    by demand except the over-preferred term, and for shared volunteers that term is replaced by its
    fixed part, which is never more than the true cost."""
    whole = regions[0][0].whole
    cheap = relaxation_bound(inst, cands, whole)
    fixed_cost = partial(_fixed_over_cost, inst)
    shared = regions[0][0].shared
    total, methods = -fixed_cost(shared), set()
    for part, out in regions:
        if out.region_bound is not None and math.isfinite(out.region_bound):
            total += out.region_bound
            methods.add("regions_lp")
        else:  # not reached: its per-demand relaxation, shared volunteers' fixed cost counted once above
            extended = part.extended if part.extended is not None else part.positions
            total += relaxation_bound(inst, cands, extended) + fixed_cost(
                set(cands.volunteer[extended].tolist()) & shared)
            methods.add("per_demand")
    if total <= cheap:
        return total, "regions_lp" if methods == {"regions_lp"} else "regions_lp+per_demand"
    return cheap, "per_demand"


def bound_code(pb) -> str:
    """A `bounds.PartBound`'s kind as a `BOUND_METHODS` code."""
    return {"lp": "model_lp", "lp_cut_short": "lp_cut_short", "lagrangian": "lagrangian",
            "lagrangian_descent": "lagrangian"}.get(pb.kind, "per_demand")


def solve_part(inst: Instance, cands: Candidates, positions: np.ndarray, hint: Schedule,
               time_limit: float, workers: int, report=None, bound_positions: np.ndarray | None = None,
               shared: frozenset[int] = frozenset()) -> PartResult:
    """Build and solve one part's model; model building counts against `time_limit`.

    First the part's bound (`bounds.part_bound`: the strengthened LP, certified, and a Lagrangian bound
    with exact teams; never None), whose relaxed values, rounded, may give a better warm start than
    `hint`; then the search (`search.search_part`) for the rest of the time. For a region of a split
    component, `bound_positions` holds every pair of its demands: its bound over those pairs (hours over
    preferred relaxed for `shared` volunteers) is the region's share of a valid bound."""
    started = time.monotonic()
    pm = build_part_model(inst, cands, positions)
    built = time.monotonic()
    over = positions if bound_positions is None else bound_positions
    owned = set(zip(cands.demand[positions].tolist(), cands.volunteer[positions].tolist(), strict=True))
    warm = score_pairs(inst, _id_pairs(inst, [p for p in hint.pairs if p in owned])) \
        - _fixed_cost_outside(inst, cands, positions)
    pb = part_bound(inst, cands, over, max(0.05, BOUND_SHARE * (time_limit - (built - started))), shared,
                    lower=warm if bound_positions is None else None)
    bound_done = time.monotonic()
    lp = pb.bound if bound_positions is None else None
    guided = [(int(cands.demand[p]), int(cands.volunteer[p]))
              for p, value in zip(pb.positions.tolist(), pb.values.tolist(), strict=True) if value > 0.5 and p in pm.x]
    if guided:
        rounded = build_greedy(inst, cands, positions=positions, seed=guided)
        hint = _better(inst, hint, rounded, positions, cands)
    if report is not None:
        warm = score_pairs(inst, _id_pairs(inst, [p for p in hint.pairs if p in owned])) \
            - _fixed_cost_outside(inst, cands, positions)
        report(warm, lp if lp is not None else math.inf)
        if lp is not None:
            inner = report

            def report(objective, bound):
                inner(objective, min(bound, lp))
    left = time_limit - (time.monotonic() - started)
    search_started = time.monotonic()
    result = search_part(pm, inst, cands, hint, max(0.0, left), workers, report)
    result.hint = hint
    result.region_bound = pb.bound if bound_positions is not None else None
    result.timings = {"build": round(built - started, 2), "lp": round(bound_done - built, 2),
                      "cp_sat": round(time.monotonic() - search_started, 2)}
    if lp is not None:
        cp_sat = result.bound if result.bound is not None and math.isfinite(result.bound) else math.inf
        result.bound = min(cp_sat, lp)
        result.timings["bound_method"] = "cp_sat" if cp_sat < lp else bound_code(pb)
    else:
        result.bound = None  # a region's model is not the whole: its share of the bound is region_bound
    result.seconds = time.monotonic() - started
    return result


def _fixed_cost_outside(inst: Instance, cands: Candidates, positions: np.ndarray) -> float:
    """The (negative) fixed over-preferred score of volunteers not in the part, which `score_pairs`
    includes; subtracted so a part's warm-start score is comparable with its model objective."""
    inside = set(cands.volunteer[positions].tolist())
    return -_fixed_over_cost(inst, (vi for vi in range(len(inst.volunteers)) if vi not in inside))


def _fixed_over_cost(inst: Instance, volunteers) -> float:
    """The over-preferred cost the volunteers' commitments alone already incur (no schedule avoids it)."""
    w = inst.weights.over_preferred_hour
    return sum(w * max(0, inst.volunteers[vi].committed_minutes - inst.volunteers[vi].preferred_minutes) / 60.0
               for vi in volunteers)


def _without_pairs(inst: Instance, cands: Candidates) -> list[int]:
    """Volunteers with no candidate pair at all."""
    used = np.zeros(len(inst.volunteers), dtype=bool)
    used[cands.volunteer] = True
    return np.flatnonzero(~used).tolist()


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
    """Solve a part sent as plain data and return plain data; runs anywhere (a worker process here, an
    RQ worker on another machine).

    Payload: `instance` (a `linli.instance/1` sub-instance), `pairs` (the [demand, volunteer] id pairs
    to decide; all of the sub-instance's candidate pairs when absent), for a region `bound_pairs` (every
    pair of its demands, for its bound model) and `shared_volunteers`, `time_limit`, `deadline_unix`
    (wall clock; the part stops by it whatever `time_limit` says), `workers` (CP-SAT threads), `hint`
    ([demand, volunteer] pairs) and `hint_responsible`. Answer: status, chosen id pairs, responsible
    organizations, bounds, objective, seconds, timings, and the warm start as `fallback`."""
    started = time.monotonic()
    left = float(payload["time_limit"])
    if payload.get("deadline_unix") is not None:
        left = min(left, float(payload["deadline_unix"]) - time.time())
    inst = parse_instance(payload["instance"])
    cands = build_candidates(inst)
    index = {(d, v): p for p, (d, v) in enumerate(zip(cands.demand.tolist(), cands.volunteer.tolist(), strict=True))}

    def positions_of(pairs) -> np.ndarray:
        found = [index.get((inst.demand_index.get(d, -1), inst.volunteer_index.get(v, -1))) for d, v in pairs]
        return np.array(sorted(p for p in found if p is not None), dtype=np.int64)

    positions = np.arange(len(cands)) if payload.get("pairs") is None else positions_of(payload["pairs"])
    bound_positions = None if payload.get("bound_pairs") is None else positions_of(payload["bound_pairs"])
    shared = frozenset(inst.volunteer_index[v] for v in payload.get("shared_volunteers", [])
                       if v in inst.volunteer_index)
    hint = Schedule([(inst.demand_index[d], inst.volunteer_index[v]) for d, v in payload.get("hint", [])
                     if d in inst.demand_index and v in inst.volunteer_index],
                    {inst.demand_index[d]: o for d, o in payload.get("hint_responsible", {}).items()
                     if d in inst.demand_index})
    left -= time.monotonic() - started
    result = solve_part(inst, cands, positions, hint, max(0.05, left), int(payload.get("workers", 1)), None,
                        bound_positions, shared)
    fallback = result.hint
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
        "fallback": [(inst.demands[d].id, inst.volunteers[v].id) for d, v in fallback.pairs] if fallback else [],
        "fallback_responsible": {inst.demands[d].id: o for d, o in fallback.responsible.items()} if fallback else {},
    }


def part_payloads(inst: Instance, cands: Candidates, parts: list[Part], greedy: Schedule,
                  seconds: list[float], deadline_unix: float, threads: int) -> list[dict]:
    """Each part as plain data for `solve_shipped_part` (to another process or machine): the
    sub-instance of its demands and volunteers, the pairs it decides, its share of time, the deadline
    and the greedy schedule's pairs within it as a hint."""
    payloads = []
    for part, limit in zip(parts, seconds, strict=True):
        every = part.positions if part.extended is None else np.union1d(part.positions, part.extended)
        sub = sub_instance(inst, cands, every)
        owned = _owned(cands, part.positions)
        region = {}
        if part.extended is not None:
            region = {"bound_pairs": _id_pairs(inst, sorted(_owned(cands, part.extended))),
                      "shared_volunteers": sorted(inst.volunteers[vi].id for vi in
                                                  set(cands.volunteer[part.extended].tolist()) & part.shared)}
        hint = _restrict(inst, greedy, owned)
        payloads.append(region | {
            "instance": sub,
            "pairs": _id_pairs(inst, sorted(owned)),
            "time_limit": round(limit, 3),
            "deadline_unix": deadline_unix,
            "workers": threads,
            "hint": _id_pairs(inst, hint.pairs),
            "hint_responsible": {inst.demands[di].id: o for di, o in hint.responsible.items()},
        })
    return payloads


def _dispatch(inst: Instance, cands: Candidates, parts: list[Part], greedy: Schedule, end: float,
              workers: int, runner: PartExecutor, lanes: int, progress: Progress | None,
              started: float) -> tuple[list[_Outcome], str]:
    """Solve the parts side by side on `runner` (worker processes here, or RQ workers anywhere).
    With fewer lanes than parts, each part gets time in proportion to its size, so the waves end by
    the deadline (largest first); every part also stops at the wall-clock deadline whatever its share."""
    lanes = max(1, lanes)
    sizes = [len(p.positions) for p in parts]
    budget = max(0.1, end - time.monotonic() - SHIP_SECONDS)
    if len(parts) <= lanes:
        seconds = [budget] * len(parts)
    else:
        total = sum(sizes)
        # Waves of parts: shares of the lanes' time by size, less a margin for each part's own reading
        # and building, which its time limit does not hold back exactly.
        seconds = [min(budget, max(MIN_PART_SECONDS, 0.85 * budget * lanes * s / total)) for s in sizes]
    deadline_unix = time.time() + (end - time.monotonic()) - 0.2
    order = sorted(range(len(parts)), key=lambda i: -sizes[i])
    threads = max(1, workers // lanes)
    payloads = part_payloads(inst, cands, [parts[i] for i in order], greedy, [seconds[i] for i in order],
                             deadline_unix, threads)
    answers: dict[int, dict] = {}
    for k, out in runner.run(payloads, deadline_unix + 0.15):
        answers[order[k]] = out
        if progress is not None:
            done = [o["objective"] for o in answers.values() if o["objective"] is not None]
            progress({"phase": "solving", "objective": round(sum(done), 2), "bound": None,
                      "part": len(answers), "parts": len(parts), "elapsed": round(time.monotonic() - started, 3)})
    outcomes = []
    for i in range(len(parts)):
        out = answers.get(i)
        if out is None:
            outcomes.append(_Outcome("NOT_REACHED", None))
            continue

        def pairs_of(ids):
            return [(inst.demand_index[d], inst.volunteer_index[v]) for d, v in ids]

        solved = bool(out["pairs"]) or out["status"] in ("OPTIMAL", "FEASIBLE")
        responsible = {inst.demand_index[d]: o for d, o in out["responsible"].items()}
        fallback = Schedule(pairs_of(out["fallback"]),
                            {inst.demand_index[d]: o for d, o in out["fallback_responsible"].items()})
        outcomes.append(_Outcome(out["status"], Schedule(pairs_of(out["pairs"]), responsible) if solved else None,
                                 fallback if out["fallback"] else None, out["bound"], out["region_bound"],
                                 out["objective"], out["seconds"],
                                 out["timings"] | ({"worker": out["worker"]} if out.get("worker") else {})))
    return outcomes, getattr(runner, "name", type(runner).__name__) + f" ({lanes} at once)"


def _solution_document(inst: Instance, cands: Candidates, schedule: Schedule, status: str,
                       objective: float, bound: float | None) -> dict:
    """The `linli.solution/1` document with explanations."""
    km_of = pair_km(inst, cands, schedule.pairs)
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
