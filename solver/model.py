"""The CP-SAT model of one part of the week: one Boolean per candidate pair, rules and terms by name.

Scaling: the objective is the contract's score × `SCALE`, with every coefficient rounded in the
direction that can only overstate the score (rewards up, penalties down). Every schedule's model value
is therefore ≥ SCALE × its true score, so CP-SAT's proven bound / SCALE is a valid bound on the true
score; the reported objective is always recomputed in plain Python (`validation.score_pairs`).
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from ortools.sat.python import cp_model

from solver.candidates import Candidates
from solver.geo import distance_km
from solver.greedy import Schedule
from solver.instance import Instance
from solver.validation import EPS

SCALE = 6000  # score units → model units; 6000 keeps 20/h per minute (=2000) and 2/km exact enough


def up(value: float) -> int:
    """A reward coefficient in model units, rounded up."""
    return math.ceil(value * SCALE - 1e-9)


def down(value: float) -> int:
    """A penalty coefficient in model units, rounded down."""
    return math.floor(value * SCALE + 1e-9)


@dataclass
class PartModel:
    """A built model with its variables keyed by instance indices."""

    model: cp_model.CpModel
    positions: np.ndarray
    x: dict[int, cp_model.IntVar]  # pair position → Boolean
    staffed: dict[int, cp_model.IntVar] = field(default_factory=dict)
    responsible: dict[int, dict[str, cp_model.IntVar]] = field(default_factory=dict)
    over: dict[int, cp_model.IntVar] = field(default_factory=dict)
    serves: dict[tuple[str, int], cp_model.IntVar] = field(default_factory=dict)
    most: dict[str, cp_model.IntVar] = field(default_factory=dict)
    terms: dict[str, cp_model.LinearExpr] = field(default_factory=dict)


# ---------------------------------------------------------------- hard rules


def add_team_size(pm: PartModel, inst: Instance, by_demand: dict[int, list[int]]) -> None:
    """Hard, rule 9: a demand gets nobody, or between `min_people` and `people` volunteers."""
    for di, ps in by_demand.items():
        d = inst.demands[di]
        xs = [pm.x[p] for p in ps]
        if d.min_people <= 1 and not d.one_organization:
            if len(xs) > d.people:
                pm.model.add(sum(xs) <= d.people)
            continue
        y = pm.model.new_bool_var(f"staffed_{d.id}")
        pm.staffed[di] = y
        pm.model.add(sum(xs) <= d.people * y)
        pm.model.add(sum(xs) >= d.min_people * y)
        # Redundant x ≤ y rows make the LP relaxation see that a partial team earns nothing.
        for x in xs:
            pm.model.add(x <= y)
        if len(xs) < d.min_people:
            pm.model.add(y == 0)


def add_one_organization(
    pm: PartModel, inst: Instance, by_demand: dict[int, list[int]], cands: Candidates
) -> None:
    """Hard, rule 10: a staffed one_organization demand has one responsible organization (chosen by
    the solver) of which every volunteer on it is a member, and which is one of `organizations` if set."""
    for di, ps in by_demand.items():
        d = inst.demands[di]
        if not d.one_organization:
            continue
        orgs = sorted({o for p in ps for o in inst.volunteers[int(cands.volunteer[p])].organizations
                       if not d.organizations or o in d.organizations})
        choice = {o: pm.model.new_bool_var(f"responsible_{d.id}_{o}") for o in orgs}
        pm.responsible[di] = choice
        pm.model.add(sum(choice.values()) == pm.staffed[di])
        members: dict[str, list] = defaultdict(list)
        for p in ps:
            member = [o for o in inst.volunteers[int(cands.volunteer[p])].organizations if o in choice]
            for o in member:
                members[o].append(pm.x[p])
            if member:
                pm.model.add(pm.x[p] <= sum(choice[o] for o in member))
            else:
                pm.model.add(pm.x[p] == 0)
        # Redundant: the responsible organization alone fields at least the minimum team (tightens LP).
        for o, r in choice.items():
            pm.model.add(sum(members[o]) >= d.min_people * r)


def conflict_matrix(inst: Instance, dis: list[int]) -> np.ndarray:
    """Rule 7 between demands: True where two demands overlap or leave too little travel time.

    Distances are computed only where the gap between two demands could be shorter than the travel
    between them: by the triangle inequality no two of them are farther apart than twice the farthest
    from the first, which bounds every travel time (`reach`); demands that overlap conflict anyway."""
    ds = [inst.demands[i] for i in dis]
    s = np.array([d.start for d in ds], dtype=float)
    e = np.array([d.end for d in ds], dtype=float)
    lat = np.array([d.lat for d in ds])
    lon = np.array([d.lon for d in ds])
    first_i = s[:, None] <= s[None, :]
    gap = np.where(first_i, s[None, :] - e[:, None], s[:, None] - e[None, :])
    conflict = gap < -EPS
    if len(ds) == 0:
        return conflict
    farthest = float(distance_km(lat, lon, lat[0], lon[0], inst.detour_factor).max())
    reach = 2.0 * farthest / inst.speed_kmh * 60.0 * (1.0 + 1e-9) + 1e-6
    check = (gap >= -EPS) & (gap < reach)
    np.fill_diagonal(check, False)
    a, b = np.nonzero(check)
    if len(a):
        km = distance_km(lat[a], lon[a], lat[b], lon[b], inst.detour_factor)
        conflict[a, b] = gap[a, b] < km / inst.speed_kmh * 60.0 - EPS
    np.fill_diagonal(conflict, False)
    return conflict


def conflict_cliques(conflict: np.ndarray, starts: list[int]) -> list[list[int]]:
    """Cover the conflict graph with cliques: each demand with everything running at its start, then
    extended greedily; edges left uncovered become two-element cliques."""
    k = len(starts)
    order = sorted(range(k), key=lambda i: starts[i])
    cliques: list[frozenset[int]] = []
    for i in order:
        clique = [i]
        for j in order:
            if j != i and all(conflict[j, c] for c in clique):
                clique.append(j)
        if len(clique) > 1:
            cliques.append(frozenset(clique))
    cliques = list(dict.fromkeys(cliques))
    maximal = [c for c in cliques if not any(c < other for other in cliques)]
    covered = np.zeros_like(conflict)
    for c in maximal:
        idx = np.array(sorted(c))
        covered[np.ix_(idx, idx)] = True
    rest = np.argwhere(np.triu(conflict & ~covered, 1))
    return [sorted(c) for c in maximal] + [[int(a), int(b)] for a, b in rest]


def add_no_overlap_with_travel(pm: PartModel, inst: Instance, by_volunteer: dict[int, list[int]],
                               cands: Candidates) -> None:
    """Hard, rule 7: a volunteer's demands neither overlap nor leave less than the travel time between
    them; expressed as at-most-one constraints over cliques of mutually conflicting demands."""
    for _vi, ps in by_volunteer.items():
        if len(ps) < 2:
            continue
        dis = [int(cands.demand[p]) for p in ps]
        conflict = conflict_matrix(inst, dis)
        if not conflict.any():
            continue
        for clique in conflict_cliques(conflict, [inst.demands[d].start for d in dis]):
            pm.model.add_at_most_one(pm.x[ps[i]] for i in clique)


def add_weekly_minutes(pm: PartModel, inst: Instance, by_volunteer: dict[int, list[int]],
                       cands: Candidates) -> None:
    """Hard, rule 8: demands plus commitments stay within `max_minutes_per_week`."""
    for vi, ps in by_volunteer.items():
        v = inst.volunteers[vi]
        left = v.max_minutes - v.committed_minutes
        durations = [inst.demands[int(cands.demand[p])].minutes for p in ps]
        if sum(durations) > left:
            pm.model.add(sum(m * pm.x[p] for m, p in zip(durations, ps, strict=True)) <= left)


def add_pins(pm: PartModel, inst: Instance, pair_position: dict[tuple[int, int], int]) -> None:
    """Hard, rule 11: every pinned pair is in the schedule (rule 6 is excluded by the candidates)."""
    for pin in inst.pinned:
        key = (inst.demand_index[pin.demand], inst.volunteer_index[pin.volunteer])
        if key in pair_position:
            pm.model.add(pm.x[pair_position[key]] == 1)


# ---------------------------------------------------------------- objective terms


def coverage_expr(pm: PartModel, inst: Instance, cands: Candidates) -> cp_model.LinearExpr:
    """Soft, reward: `weights.priority[d.priority]` per volunteer placed on a demand."""
    coefs = [up(inst.weights.priority[inst.demands[int(cands.demand[p])].priority]) for p in pm.x]
    return cp_model.LinearExpr.weighted_sum(list(pm.x.values()), coefs)


def travel_cost_expr(pm: PartModel, inst: Instance, cands: Candidates) -> cp_model.LinearExpr:
    """Soft, cost: `weights.travel_km` per km from home to demand, per assignment."""
    coefs = [down(inst.weights.travel_km * float(cands.km[p])) for p in pm.x]
    return cp_model.LinearExpr.weighted_sum(list(pm.x.values()), coefs)


def over_preferred_expr(pm: PartModel, inst: Instance, by_volunteer: dict[int, list[int]],
                        cands: Candidates) -> cp_model.LinearExpr:
    """Soft, cost: `weights.over_preferred_hour` per hour of demands and commitments above the
    volunteer's preferred minutes (modelled per minute)."""
    per_minute = down(inst.weights.over_preferred_hour / 60.0)
    terms = []
    for vi, ps in by_volunteer.items():
        v = inst.volunteers[vi]
        durations = [inst.demands[int(cands.demand[p])].minutes for p in ps]
        most = min(v.max_minutes, v.committed_minutes + sum(durations))
        if most <= v.preferred_minutes:
            continue
        low = max(0, v.committed_minutes - v.preferred_minutes)
        over = pm.model.new_int_var(low, most - v.preferred_minutes, f"over_{v.id}")
        load = v.committed_minutes + sum(m * pm.x[p] for m, p in zip(durations, ps, strict=True))
        pm.model.add(over >= load - v.preferred_minutes)
        pm.over[vi] = over
        terms.append(per_minute * over)
    return sum(terms)


def continuity_expr(pm: PartModel, inst: Instance, by_demand: dict[int, list[int]],
                    cands: Candidates) -> cp_model.LinearExpr:
    """Soft, cost: `weights.distinct_volunteer_per_resident` per volunteer a resident sees beyond the
    largest team of any of the resident's demands (|distinct volunteers| − max assigned)."""
    per_resident: dict[str, list[int]] = defaultdict(list)
    for di in by_demand:
        if inst.demands[di].resident is not None:
            per_resident[inst.demands[di].resident].append(di)
    weight = down(inst.weights.distinct_volunteer_per_resident)
    terms = []
    for resident, dis in per_resident.items():
        if len(dis) < 2:
            continue
        pairs_of: dict[int, list[int]] = defaultdict(list)
        for di in dis:
            for p in by_demand[di]:
                pairs_of[int(cands.volunteer[p])].append(p)
        serves = []
        for vi, ps in pairs_of.items():
            z = pm.model.new_bool_var(f"serves_{resident}_{vi}")
            for p in ps:
                pm.model.add(z >= pm.x[p])
            pm.serves[(resident, vi)] = z
            serves.append(z)
        top = max(inst.demands[di].people for di in dis)
        most = pm.model.new_int_var(0, top, f"most_{resident}")
        if top == 1:
            # Teams of one: the largest team is 1 as soon as any visit is staffed (a linear, LP-tight
            # form of the max for the common elderly-care case).
            pm.model.add(most <= sum(pm.x[p] for di in dis for p in by_demand[di]))
        else:
            pm.model.add_max_equality(most, [sum(pm.x[p] for p in by_demand[di]) for di in dis])
        # Redundant but vital for the LP bound: no team is larger than the set of distinct volunteers,
        # so the relaxation cannot earn a reward from `most` without paying for volunteers.
        pm.model.add(most <= sum(serves))
        pm.most[resident] = most
        terms.append(weight * (sum(serves) - most))
    return sum(terms)


def familiar_expr(pm: PartModel, inst: Instance, cands: Candidates) -> cp_model.LinearExpr:
    """Soft, reward: `weights.familiar_bonus` per assignment to a resident the volunteer knows."""
    bonus = up(inst.weights.familiar_bonus)
    terms = []
    for p, x in pm.x.items():
        d = inst.demands[int(cands.demand[p])]
        if d.resident is not None and (d.resident, inst.volunteers[int(cands.volunteer[p])].id) in inst.familiar:
            terms.append(bonus * x)
    return sum(terms)


def keep_previous_expr(pm: PartModel, inst: Instance, cands: Candidates) -> cp_model.LinearExpr:
    """Soft, reward: `weights.keep_previous` per pair of the published schedule that stays."""
    bonus = up(inst.weights.keep_previous)
    terms = []
    for p, x in pm.x.items():
        key = (inst.demands[int(cands.demand[p])].id, inst.volunteers[int(cands.volunteer[p])].id)
        if key in inst.previous:
            terms.append(bonus * x)
    return sum(terms)


# ---------------------------------------------------------------- assembling


def build_part_model(inst: Instance, cands: Candidates, positions: np.ndarray,
                     relax_over: frozenset[int] = frozenset()) -> PartModel:
    """The whole model for the candidate pairs at `positions`: hard rules, then the objective.
    Volunteers in `relax_over` get no over-preferred term (used only for bound models of regions)."""
    positions = np.asarray(sorted(int(p) for p in positions), dtype=np.int64)
    pm = PartModel(model=cp_model.CpModel(), positions=positions, x={})
    by_demand: dict[int, list[int]] = defaultdict(list)
    by_volunteer: dict[int, list[int]] = defaultdict(list)
    pair_position = {}
    for p in positions.tolist():
        di, vi = int(cands.demand[p]), int(cands.volunteer[p])
        pm.x[p] = pm.model.new_bool_var(f"x_{inst.demands[di].id}_{inst.volunteers[vi].id}")
        by_demand[di].append(p)
        by_volunteer[vi].append(p)
        pair_position[(di, vi)] = p

    # Hard rules (1–6 are enforced by the candidate pairs themselves).
    add_team_size(pm, inst, by_demand)
    add_one_organization(pm, inst, by_demand, cands)
    add_no_overlap_with_travel(pm, inst, by_volunteer, cands)
    add_weekly_minutes(pm, inst, by_volunteer, cands)
    add_pins(pm, inst, pair_position)

    # Soft terms, in model units (score × SCALE).
    pm.terms = {
        "coverage": coverage_expr(pm, inst, cands),
        "travel": travel_cost_expr(pm, inst, cands),
        "over_preferred": over_preferred_expr(
            pm, inst, {vi: ps for vi, ps in by_volunteer.items() if vi not in relax_over}, cands),
        "continuity": continuity_expr(pm, inst, by_demand, cands),
        "familiar": familiar_expr(pm, inst, cands),
        "keep_previous": keep_previous_expr(pm, inst, cands),
    }
    t = pm.terms
    pm.model.maximize(t["coverage"] - t["travel"] - t["over_preferred"] - t["continuity"]
                      + t["familiar"] + t["keep_previous"])
    return pm


def add_schedule_hint(pm: PartModel, inst: Instance, cands: Candidates, schedule: Schedule) -> None:
    """Warm start: hint every variable with the value it takes in `schedule`."""
    chosen = set(schedule.pairs)
    value = {}
    for p, x in pm.x.items():
        value[p] = int((int(cands.demand[p]), int(cands.volunteer[p])) in chosen)
        pm.model.add_hint(x, value[p])
    team: dict[int, int] = defaultdict(int)
    load: dict[int, int] = defaultdict(int)
    for p, v in value.items():
        if v:
            di, vi = int(cands.demand[p]), int(cands.volunteer[p])
            team[di] += 1
            load[vi] += inst.demands[di].minutes
    for di, y in pm.staffed.items():
        pm.model.add_hint(y, int(team[di] > 0))
    for di, choice in pm.responsible.items():
        for o, r in choice.items():
            pm.model.add_hint(r, int(team[di] > 0 and schedule.responsible.get(di) == o))
    for vi, over in pm.over.items():
        v = inst.volunteers[vi]
        pm.model.add_hint(over, max(0, v.committed_minutes + load[vi] - v.preferred_minutes))
    served = {(inst.demands[int(cands.demand[p])].resident, int(cands.volunteer[p]))
              for p, v in value.items() if v}
    for key, z in pm.serves.items():
        pm.model.add_hint(z, int(key in served))
    best: dict[str, int] = defaultdict(int)
    for di, n in team.items():
        resident = inst.demands[di].resident
        if resident is not None:
            best[resident] = max(best[resident], n)
    for resident, most in pm.most.items():
        pm.model.add_hint(most, best[resident])


class _ProgressReporter(cp_model.CpSolverSolutionCallback):
    """Forwards improving solutions to a callback, at most every `every` seconds."""

    def __init__(self, report: Callable[[float, float], None], every: float = 0.5):
        super().__init__()
        self.report = report
        self.every = every
        self.last = -math.inf

    def on_solution_callback(self) -> None:
        """Called by CP-SAT on each improving solution."""
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            self.report(self.objective_value, self.best_objective_bound)


@dataclass
class PartResult:
    """What a solved part returns: chosen pair positions, responsible organizations, bound, status."""

    status: str
    positions: list[int]
    responsible: dict[int, str]
    bound: float | None  # score units, valid upper bound for the part (None when unknown)
    seconds: float
    objective: float | None = None  # model objective in score units (approximate; for progress only)
    hint: Schedule | None = None  # the warm start, used as the part's schedule if CP-SAT finds none
    timings: dict = field(default_factory=dict)  # seconds spent building, in the LP and in CP-SAT
    region_bound: float | None = None  # a region's share of its component's bound (bound model's LP)


def solve_part_model(pm: PartModel, inst: Instance, cands: Candidates, time_limit: float, workers: int,
                     on_progress: Callable[[float, float], None] | None = None) -> PartResult:
    """Run CP-SAT on a built model within `time_limit` seconds."""
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(0.05, time_limit)
    solver.parameters.num_workers = max(1, workers)
    solver.parameters.random_seed = 1
    if time_limit < 10:
        # Full presolve of a district-sized model takes ~2 s before the hint is even tried; one round
        # keeps most of its benefit and leaves short (repair) solves time to improve the warm start.
        solver.parameters.max_presolve_iterations = 1
    started = time.monotonic()
    callback = _ProgressReporter(lambda o, b: on_progress(o / SCALE, b / SCALE)) if on_progress else None
    status = solver.solve(pm.model, callback)
    seconds = time.monotonic() - started
    name = solver.status_name(status)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        # Without a solution CP-SAT's reported bound is not a proven one; the LP bound is used instead.
        return PartResult(name, [], {}, None, seconds, None)
    chosen = [p for p, x in pm.x.items() if solver.boolean_value(x)]
    responsible = {}
    for di, choice in pm.responsible.items():
        for o, r in choice.items():
            if solver.boolean_value(r):
                responsible[di] = o
    return PartResult(name, chosen, responsible, solver.best_objective_bound / SCALE, seconds,
                      solver.objective_value / SCALE)
