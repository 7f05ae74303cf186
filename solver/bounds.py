"""The solver's own bound on a set of candidate pairs (a part or a whole component), in score units.

`part_bound(inst, cands, positions, time_limit)` always returns a valid upper bound on the score those
pairs and their volunteers can contribute (as `lp_bound` of the part's CP-SAT model, divided by SCALE,
but built directly from the instance, in exact floats, and never None). It combines three certified
bounds and keeps the smallest:

1. **The strengthened LP** (`build_formulation`): the plain LP's rows with rule 7 as cliques, x ≤ y for
   teams, per-organization rows and mixed-integer rounding rows for each volunteer's minutes. Solved
   with GLOP's dual simplex (by column generation above `COLUMN_GENERATION_PAIRS` pairs) and certified
   by its duals (`relaxation.certify`). Cut short by the time limit, the dual simplex's last duals still
   certify a bound (weak duality holds for any duals).
2. **A Lagrangian bound with exact team blocks.** The rows that couple demands (rule 7 cliques, rule 8,
   over-preferred hours, rounding rows, continuity `x ≤ z`) go into the objective with multipliers u ≥ 0;
   what is
   left splits into one block per demand (choose nobody, or a team of `min_people`..`people` of its
   candidates, all of one eligible organization when `one_organization`, pins included), one per
   resident (serves z, largest team m) and one per volunteer's hours above preferred. Each block is
   solved exactly (sort, prefix sums), so

       L(u) = Σ_rows u·rhs + Σ_blocks max (c − Aᵀu)·(block's variables) ≥ the score of every valid schedule

   for every u ≥ 0, and since the integer team blocks are smaller than their LP relaxations, L at the LP's
   own multipliers is never above the LP's bound — it removes the LP's fractional teams (a team of 2.4
   people, or 0.5 of two organizations) at no cost. Starting from the LP's multipliers (or from zero when
   no LP is available), a projected subgradient descent lowers L further in the time left.
3. `L(0)`, the per-demand relaxation (each demand's best team alone), always available.

Every row of the strengthened LP is valid for every schedule obeying the hard rules; the argument is
given next to each family in `build_formulation` (and checked against brute force in
tests/solver/test_bounds.py). It contains the plain LP's rows (cliques cover every conflicting pair; the
team, organization, minutes, hours and continuity rows are the plain ones, in hours where the plain LP
counts minutes), so its optimum is never above `relaxation.plain_lp_bound` over the same pairs.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from solver.candidates import Candidates
from solver.decomposition import pair_gains
from solver.geo import distance_km
from solver.instance import Instance
from solver.relaxation import LinearProgram, LpBuilder, certify, restrict_columns, solve_lp
from solver.validation import EPS

LP_SHARE = 0.75  # of the time left after building, for the LP (the rest: Lagrangian descent)
COLUMN_GENERATION_PAIRS = 100_000  # above this many pairs the LP starts from each demand's best pairs
COLUMNS_PER_DEMAND = 20  # ... at least this many of them (three per place when more)
COLUMNS_PER_VOLUNTEER = 4  # ... and each volunteer's best
MIN_DESCENT_SECONDS = 0.05


KINDS = {
    "lp": "the strengthened LP relaxation, solved, certified from its duals",
    "lp_cut_short": "the strengthened LP relaxation cut short by the time limit, certified from its last duals",
    "lagrangian": "a Lagrangian bound with exact teams at the LP's multipliers (tighter than the LP)",
    "lagrangian_descent": "a Lagrangian bound with exact teams, multipliers from a subgradient descent",
    "per_demand": "each demand's best team on its own (clashes, hours and continuity relaxed)",
    "per_demand_exact": "each demand's best team on its own, exact: nothing couples the demands",
}


@dataclass
class PartBound:
    """A certified upper bound (score units) on what the pairs at `positions` and their volunteers can
    score, which method gave it, and each pair's value in the relaxation (LP values when the LP was
    solved to optimality, else the best Lagrangian teams), aligned with `positions`, for rounding."""

    bound: float
    method: str
    positions: np.ndarray
    values: np.ndarray
    seconds: float
    timings: dict = field(default_factory=dict)
    kind: str = "per_demand"  # the method as a stable code: one of KINDS


# ---------------------------------------------------------------- the formulation


@dataclass
class _Formulation:
    """The strengthened LP with the block structure the Lagrangian bound needs.

    Variables: x per pair (score of the pair), y per team demand, r per (one_organization demand,
    eligible organization), over per volunteer (hours above preferred), z per (resident, volunteer), m per
    resident (largest team). Coupling rows are all of the form `a·v ≤ rhs`."""

    lp: LinearProgram
    positions: np.ndarray
    n_x: int
    coupling: np.ndarray  # row indices of the coupling rows
    # demand options: entries (x variable, option), per option its demand, team limits, pins
    ent_x: np.ndarray
    ent_opt: np.ndarray
    ent_forced: np.ndarray
    opt_dem: np.ndarray
    opt_lo: np.ndarray  # smallest team of a non-empty choice (pins included)
    opt_hi: np.ndarray
    opt_empty: np.ndarray  # the empty team is allowed (no pins on the demand)
    opt_valid: np.ndarray  # every pin of the demand is in this option
    n_dem: int
    # hours above preferred
    over_var: np.ndarray
    # residents: z entries and per resident its largest team m
    z_var: np.ndarray
    z_res: np.ndarray
    res_top: np.ndarray
    res_m: np.ndarray
    w_distinct: float
    # coupling rows as coordinates (local row index into `coupling`)
    cp_row: np.ndarray = field(init=False)
    cp_col: np.ndarray = field(init=False)
    cp_val: np.ndarray = field(init=False)
    cp_rhs: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        local = np.full(self.lp.n_rows, -1, dtype=np.int64)
        local[self.coupling] = np.arange(len(self.coupling))
        keep = local[self.lp.row] >= 0
        self.cp_row = local[self.lp.row[keep]]
        self.cp_col = self.lp.col[keep]
        self.cp_val = self.lp.val[keep]
        self.cp_rhs = self.lp.row_hi[self.coupling]


def _segments(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For sorted `keys`: the start of each run, the run of each element and its rank within the run."""
    if len(keys) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    lengths = np.diff(np.r_[starts, len(keys)])
    run = np.repeat(np.arange(len(starts)), lengths)
    return starts, run, np.arange(len(keys)) - starts[run]


def conflict_rows(inst: Instance, cands: Candidates, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Rule 7 rows over the pairs at `pos` for every volunteer at once: (row of each entry, local pair
    index of each entry, number of rows); each row says at most one of its pairs is chosen.

    Two demands of a volunteer conflict when they overlap or leave less than the travel time between
    them (the definition of `model.conflict_matrix`). Overlaps form an interval graph: the demands
    running at one demand's start are a clique, and the largest of them (those not contained in the
    next one's) cover every overlapping pair. Conflicts by travel time alone become two-element rows.
    Only pairs starting within the longest duration plus the volunteer's longest possible trip (twice
    its farthest demand from home, by the triangle inequality) are compared."""
    n = len(pos)
    empty = np.zeros(0, dtype=np.int64)
    if n < 2:
        return empty, empty, 0
    dem, vol = cands.demand[pos], cands.volunteer[pos]
    starts = np.array([d.start for d in inst.demands], dtype=np.int64)
    ends = np.array([d.end for d in inst.demands], dtype=np.int64)
    lat = np.array([d.lat for d in inst.demands])
    lon = np.array([d.lon for d in inst.demands])
    order = np.lexsort((np.arange(n), starts[dem], vol))
    vo, do = vol[order], dem[order]
    so, eo = starts[do], ends[do]
    vids, v_of = np.unique(vo, return_inverse=True)
    radius = np.zeros(len(vids))
    np.maximum.at(radius, v_of, cands.km[pos][order])
    reach = 2.0 * radius / inst.speed_kmh * 60.0 * (1.0 + 1e-9) + 1e-6
    longest = float((eo - so).max())
    origin = float(so.min()) - longest - float(reach.max()) - 1.0
    span = float(so.max()) - origin + 1.0
    key = v_of * span + (so - origin)
    first_of_volunteer = np.searchsorted(v_of, v_of)
    lo = np.searchsorted(key, v_of * span + (so - longest - reach[v_of] - origin), side="left")
    lo = np.maximum(lo, first_of_volunteer)
    counts = np.arange(n) - lo
    total = int(counts.sum())
    later = np.repeat(np.arange(n), counts)
    earlier = np.repeat(lo, counts) + (np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts))
    gap = so[later] - eo[earlier]  # the earlier-starting one first (ties: by position)
    overlap = gap < 0  # whole minutes: overlapping demands always conflict
    check = np.flatnonzero((gap >= 0) & (gap < reach[v_of[later]]))
    a, b = do[earlier[check]], do[later[check]]
    km = distance_km(lat[a], lon[a], lat[b], lon[b], inst.detour_factor)
    by_travel = check[gap[check] < km / inst.speed_kmh * 60.0 - EPS]
    # Cliques at each start time t of each volunteer, for its last demand L starting then (by position):
    # L, every demand overlapping L that starts no later (all run at t, or start at t), and every
    # demand ending exactly at t that conflicts with each demand starting at t (back to back at
    # another place: the usual travel conflict). Such a set is a clique: two demands running at t
    # overlap; one ending at t overlaps any that started before t, conflicts with those starting at t
    # by construction, and overlaps another ending at t. A clique is dropped when the next start time
    # of the volunteer comes before all its demands end (the next one then holds all of it).
    group_start = np.r_[True, (v_of[1:] != v_of[:-1]) | (so[1:] != so[:-1])]
    group = np.cumsum(group_start) - 1
    last = np.r_[group_start[1:], True]  # the last demand of its (volunteer, start) group
    group_size = np.bincount(group)
    back = by_travel[gap[by_travel] == 0]  # back-to-back conflicts, keyed by (earlier, later's group)
    key = earlier[back] * len(group_size) + group[later[back]]
    keys, hits = np.unique(key, return_counts=True)
    joins = keys[hits == group_size[keys % len(group_size)]]  # conflicts with all of the group
    joined = np.isin(earlier * len(group_size) + group[later], joins) & (gap == 0) & last[later]
    member = (overlap | joined) & last[later]
    size = 1 + np.bincount(later[member], minlength=n)
    min_end = eo.astype(float).copy()
    np.minimum.at(min_end, later[member], eo[earlier[member]].astype(float))
    same_next = np.r_[v_of[1:] == v_of[:-1], False] & last
    next_start = np.r_[so[1:], 0]
    kept = last & (size >= 2) & ~(same_next & (next_start < min_end))
    row_of = _ranks(kept, n)
    member &= kept[later]
    n_cliques = int(kept.sum())
    # Travel conflicts not in a clique: those with a gap, and back-to-back ones that did not join.
    covered = np.isin(earlier[by_travel] * len(group_size) + group[later[by_travel]], joins) & (gap[by_travel] == 0)
    pairs = by_travel[~covered]
    rows = np.r_[row_of[kept], row_of[later[member]], n_cliques + np.repeat(np.arange(len(pairs)), 2)]
    cols = np.r_[np.flatnonzero(kept), earlier[member], np.column_stack([earlier[pairs], later[pairs]]).ravel()]
    return rows, order[cols], n_cliques + len(pairs)


def _ranks(keys: np.ndarray, n: int) -> np.ndarray:
    """Row numbers 0.. for the True entries of a boolean mask over n groups (−1 elsewhere)."""
    out = np.full(n, -1, dtype=np.int64)
    out[keys] = np.arange(int(keys.sum()))
    return out


def _add_rounding_rows(b: LpBuilder, x: np.ndarray, minutes: np.ndarray, v_of: np.ndarray, nv: int,
                       left: np.ndarray, full: np.ndarray, paid: np.ndarray, over_var: np.ndarray,
                       room: np.ndarray) -> None:
    """Mixed-integer rounding rows for the minutes of each volunteer, one per distinct duration δ of
    its pairs.

    MIR (Nemhauser and Wolsey): if Σ a_p x_p − s ≤ β holds for integers x ≥ 0 and a real s ≥ 0, then
    with f = β − ⌊β⌋ > 0 and f_p = a_p − ⌊a_p⌋,
        Σ (⌊a_p⌋ + max(0, f_p − f)/(1 − f)) x_p − s/(1 − f) ≤ ⌊β⌋
    (split by whether Σ ⌊a_p⌋ x_p + the x with f_p > f is ≤ ⌊β⌋ or not). Applied in units of δ minutes
    to rule 8, Σ minutes·x ≤ minutes left (s = 0), and to the hours above preferred, Σ minutes·x −
    60·over ≤ preferred − committed (s = 60·over ≥ 0). Every valid schedule obeys both rows, so it
    obeys these; they cut off fractional schedules that fill a volunteer exactly up to the minutes."""
    order = np.argsort(v_of, kind="stable")
    starts = np.r_[0, np.cumsum(np.bincount(v_of, minlength=nv))]
    paid_row = _ranks(paid, nv)
    rr, rc, rv, rh = [], [], [], []
    for vl in np.flatnonzero(full | paid).tolist():
        idx = order[starts[vl]:starts[vl + 1]]
        if len(idx) < 2:
            continue
        a = minutes[idx].astype(np.int64)
        for delta in np.unique(a).tolist():
            for beta, slack in ((int(left[vl]), None), (int(room[vl]), paid_row[vl])):
                if slack is None and not full[vl] or slack is not None and slack < 0:
                    continue
                f = beta % delta
                if f == 0:
                    continue
                coef = a // delta + np.maximum(0, a % delta - f) / (delta - f)
                if coef.sum() <= beta // delta and slack is None:
                    continue
                r = len(rh)
                rr.extend([r] * len(idx))
                rc.extend(x[idx].tolist())
                rv.extend(coef.tolist())
                if slack is not None:
                    rr.append(r)
                    rc.append(int(over_var[slack]))
                    rv.append(-60.0 / (delta - f))
                rh.append(float(beta // delta))
    if rh:
        b.rows(rr, rc, rv, np.full(len(rh), -math.inf), rh)


def build_formulation(inst: Instance, cands: Candidates, positions: np.ndarray,
                      relax_over: frozenset[int] = frozenset()) -> _Formulation:
    """The strengthened LP over the pairs at `positions`; volunteers in `relax_over` get no
    over-preferred term (as `model.build_part_model`). Vectorized by row family; Python loops only over
    one_organization demands and over volunteers (for their conflict cliques)."""
    w = inst.weights
    pos = np.unique(np.asarray(positions, dtype=np.int64))
    dem, vol = cands.demand[pos], cands.volunteer[pos]
    n = len(pos)
    b = LpBuilder()
    minutes = np.array([d.minutes for d in inst.demands], dtype=float)[dem]
    pinned_keys = {(inst.demand_index[p.demand], inst.volunteer_index[p.volunteer]) for p in inst.pinned}
    forced = np.fromiter(((di, vi) in pinned_keys for di, vi in zip(dem.tolist(), vol.tolist(), strict=True)),
                         dtype=bool, count=n) if pinned_keys else np.zeros(n, dtype=bool)

    demand_ids, d_of = np.unique(dem, return_inverse=True)  # local demand of each pair
    nd = len(demand_ids)
    people = np.array([inst.demands[di].people for di in demand_ids.tolist()], dtype=np.int64)
    least = np.array([inst.demands[di].min_people for di in demand_ids.tolist()], dtype=np.int64)
    one_org = np.array([inst.demands[di].one_organization for di in demand_ids.tolist()], dtype=bool)
    size = np.bincount(d_of, minlength=nd)
    n_forced = np.bincount(d_of, weights=forced.astype(float), minlength=nd).astype(np.int64)
    by_d = np.argsort(d_of, kind="stable")
    d_start = np.r_[0, np.cumsum(size)]

    # One_organization: eligible organizations of each candidate; a candidate in none can never serve.
    x_hi = np.ones(n)
    eligible: dict[int, list[str]] = {}
    for i in np.flatnonzero(one_org[d_of]).tolist():
        d = inst.demands[int(dem[i])]
        eligible[i] = sorted(o for o in inst.volunteers[int(vol[i])].organizations
                             if not d.organizations or o in d.organizations)
        if not eligible[i]:
            x_hi[i] = 0.0
    x = b.variables(np.minimum(forced.astype(float), x_hi), x_hi, pair_gains(inst, cands, pos))

    # ---- demand blocks (kept whole in the Lagrangian bound)
    # Rule 9. A demand with min_people = 1 and not one_organization: Σx ≤ people. Otherwise y = staffed:
    #   Σx ≤ people·y, Σx ≥ min·y, x ≤ y   (a valid schedule has y = 1 iff anyone serves, and then
    #   min ≤ |team| ≤ people; x ≤ y: nobody serves an unstaffed demand).
    simple = ~one_org & (least <= 1)
    capped = simple & (size > people)
    if capped.any():
        row = _ranks(capped, nd)
        sel = capped[d_of]
        b.rows(row[d_of[sel]], x[sel], 1.0, np.full(int(capped.sum()), -math.inf), people[capped])
    team = ~simple
    y = np.full(nd, -1, dtype=np.int64)
    if team.any():
        k = int(team.sum())
        y[team] = b.variables(0.0, (size[team] >= least[team]).astype(float), np.zeros(k))
        row = _ranks(team, nd)
        sel = np.flatnonzero(team[d_of])
        for coef, lo, hi in ((people, -math.inf, 0.0), (least, 0.0, math.inf)):
            b.rows(np.r_[row[d_of[sel]], np.arange(k)], np.r_[x[sel], y[team]],
                   np.r_[np.ones(len(sel)), -coef[team].astype(float)], np.full(k, lo), hi)
        b.rows(np.r_[np.arange(len(sel)), np.arange(len(sel))], np.r_[x[sel], y[d_of[sel]]],
               np.r_[np.ones(len(sel)), -np.ones(len(sel))], np.full(len(sel), -math.inf), 0.0)

    # Options of the Lagrangian's demand blocks: the whole candidate list, or one per organization.
    plain = ~one_org
    opt_of = _ranks(plain, nd)
    sel = plain[d_of]
    ent_x, ent_opt = [x[sel]], [opt_of[d_of[sel]]]
    opt_dem, opt_lo, opt_hi = [np.flatnonzero(plain)], [np.maximum(np.maximum(least, n_forced), 1)[plain]], \
        [np.minimum(people, size)[plain]]
    opt_empty, opt_valid = [(n_forced == 0)[plain]], [np.ones(int(plain.sum()), dtype=bool)]
    n_opt = int(plain.sum())

    # Rule 10. r[o] = o responsible: Σ_o r = y; x ≤ Σ_{o ∋ v} r (everyone is a member of the responsible
    #   organization); Σ_{v ∈ o} x ≥ min·r[o] (the responsible organization fields the whole team);
    #   Σ_{v whose only eligible organization is o} x ≤ people·r[o] (those can serve only if o is
    #   responsible, and then at most `people` serve).
    rr, rc, rv, rl, rh = [], [], [], [], []

    def row(cols, vals, lo, hi):
        r = len(rl)
        rr.extend([r] * len(cols))
        rc.extend(cols)
        rv.extend(vals)
        rl.append(lo)
        rh.append(hi)

    o_ent_x, o_ent_opt, o_dem, o_lo, o_hi, o_empty, o_valid = [], [], [], [], [], [], []
    for local in np.flatnonzero(one_org).tolist():
        idx = by_d[d_start[local]:d_start[local + 1]].tolist()
        members: dict[str, list[int]] = {}
        for i in idx:
            for o in eligible[i]:
                members.setdefault(o, []).append(i)
        orgs = sorted(members)
        r_var = dict(zip(orgs, b.variables(0.0, 1.0, np.zeros(len(orgs))).tolist(), strict=True))
        row(list(r_var.values()) + [int(y[local])], [1.0] * len(orgs) + [-1.0], 0.0, 0.0)
        for i in idx:
            if eligible[i]:
                row([int(x[i])] + [r_var[o] for o in eligible[i]], [1.0] + [-1.0] * len(eligible[i]), -math.inf, 0.0)
        nf = int(n_forced[local])
        for o in orgs:
            mine = members[o]
            row([int(x[i]) for i in mine] + [r_var[o]], [1.0] * len(mine) + [-float(least[local])], 0.0, math.inf)
            only = [i for i in mine if len(eligible[i]) == 1]
            if len(only) > people[local]:
                row([int(x[i]) for i in only] + [r_var[o]], [1.0] * len(only) + [-float(people[local])],
                    -math.inf, 0.0)
            o_ent_x.extend(int(x[i]) for i in mine)
            o_ent_opt.extend([n_opt] * len(mine))
            o_dem.append(local)
            o_lo.append(max(int(least[local]), nf, 1))
            o_hi.append(min(int(people[local]), len(mine)))
            o_empty.append(nf == 0)
            o_valid.append(int(forced[mine].sum()) == nf)
            n_opt += 1
        if not orgs:  # nobody eligible: the demand stays empty
            o_dem.append(local)
            o_lo.append(1)
            o_hi.append(0)
            o_empty.append(True)
            o_valid.append(nf == 0)
            n_opt += 1
    if rl:
        b.rows(rr, rc, rv, rl, rh)
    ent_x.append(np.array(o_ent_x, dtype=np.int64))
    ent_opt.append(np.array(o_ent_opt, dtype=np.int64))
    opt_dem.append(np.array(o_dem, dtype=np.int64))
    opt_lo.append(np.array(o_lo, dtype=np.int64))
    opt_hi.append(np.array(o_hi, dtype=np.int64))
    opt_empty.append(np.array(o_empty, dtype=bool))
    opt_valid.append(np.array(o_valid, dtype=bool))
    coupling_first = b.m

    # ---- coupling rows, all `a·v ≤ rhs`
    # Rule 7: per volunteer, at most one demand of each clique of mutually conflicting demands.
    # Rule 8: Σ hours·x ≤ hours left after commitments.
    # Over-preferred (hours): Σ hours·x − over ≤ preferred − committed, over ∈ [fixed part, most possible]
    #   (over = max(0, committed + load − preferred)/60 satisfies both; no schedule loads more than
    #   the volunteer's maximum or all of its pairs).
    volunteer_ids, v_of = np.unique(vol, return_inverse=True)
    nv = len(volunteer_ids)
    cr, cc, n_cliques = conflict_rows(inst, cands, pos)
    if n_cliques:
        b.rows(cr, x[cc], 1.0, np.full(n_cliques, -math.inf), 1.0)
    vols = [inst.volunteers[vi] for vi in volunteer_ids.tolist()]
    committed = np.array([v.committed_minutes for v in vols], dtype=float)
    most_minutes = np.array([v.max_minutes for v in vols], dtype=float)
    preferred = np.array([v.preferred_minutes for v in vols], dtype=float)
    total = np.bincount(v_of, weights=minutes, minlength=nv)
    left = most_minutes - committed
    full = total > left + 1e-9
    if full.any():
        row = _ranks(full, nv)
        sel = full[v_of]
        b.rows(row[v_of[sel]], x[sel], minutes[sel] / 60.0, np.full(int(full.sum()), -math.inf), left[full] / 60.0)
    most = np.minimum(most_minutes, committed + total)
    relaxed = np.isin(volunteer_ids, np.array(sorted(relax_over), dtype=np.int64))
    paid = ~relaxed & (most > preferred)
    k = int(paid.sum())
    over_var = b.variables(np.maximum(0.0, committed[paid] - preferred[paid]) / 60.0,
                           (most[paid] - preferred[paid]) / 60.0, np.full(k, -w.over_preferred_hour))
    if k:
        row = _ranks(paid, nv)
        sel = np.flatnonzero(paid[v_of])
        b.rows(np.r_[row[v_of[sel]], np.arange(k)], np.r_[x[sel], over_var],
               np.r_[minutes[sel] / 60.0, -np.ones(k)], np.full(k, -math.inf), (preferred[paid] - committed[paid]) / 60.0)
    _add_rounding_rows(b, x, minutes, v_of, nv, left, full, paid, over_var, preferred - committed)

    # Continuity, for residents with two or more demands here: z[ρ,v] ≥ x for v's pairs on ρ's demands
    # (z = 1 when v serves ρ), cost w per z; the reward w·(largest team) is w·m with m ≤ Σ_v z and
    # m ≤ the largest `people` (the largest team's volunteers are distinct and serve ρ). The row
    # x − z ≤ 0 couples; m − Σz ≤ 0 stays in the resident's block.
    names: dict[str, int] = {}
    resident_local = np.array([-1 if inst.demands[di].resident is None
                               else names.setdefault(inst.demands[di].resident, len(names))
                               for di in demand_ids.tolist()], dtype=np.int64)
    count = np.bincount(resident_local[resident_local >= 0], minlength=len(names))
    res = resident_local[d_of] if n else np.zeros(0, dtype=np.int64)
    if n and len(count):
        with_z = np.flatnonzero((res >= 0) & (count[np.maximum(res, 0)] >= 2))
    else:
        with_z = np.zeros(0, dtype=np.int64)
    wd = w.distinct_volunteer_per_resident
    if len(with_z):
        key = res[with_z] * (len(inst.volunteers) + 1) + vol[with_z]
        uniq, z_of = np.unique(key, return_inverse=True)
        z_var = b.variables(0.0, 1.0, np.full(len(uniq), -wd))
        b.rows(np.r_[np.arange(len(with_z)), np.arange(len(with_z))], np.r_[x[with_z], z_var[z_of]],
               np.r_[np.ones(len(with_z)), -np.ones(len(with_z))], np.full(len(with_z), -math.inf), 0.0)
        res_ids, z_res = np.unique(uniq // (len(inst.volunteers) + 1), return_inverse=True)
        top = np.zeros(len(res_ids))
        np.maximum.at(top, np.searchsorted(res_ids, res[with_z]), people[d_of[with_z]].astype(float))
        res_m = b.variables(0.0, top, np.full(len(res_ids), wd))
        coupling_last = b.m
        b.rows(np.r_[np.arange(len(res_ids)), z_res], np.r_[res_m, z_var],
               np.r_[np.ones(len(res_ids)), -np.ones(len(z_var))], np.full(len(res_ids), -math.inf), 0.0)
    else:
        z_var = z_res = res_m = np.zeros(0, dtype=np.int64)
        top = np.zeros(0)
        coupling_last = b.m
    lp = b.build()
    ent = np.concatenate(ent_x)
    return _Formulation(
        lp=lp, positions=pos, n_x=n, coupling=np.arange(coupling_first, coupling_last, dtype=np.int64),
        ent_x=ent, ent_opt=np.concatenate(ent_opt), ent_forced=forced[ent],
        opt_dem=np.concatenate(opt_dem), opt_lo=np.concatenate(opt_lo), opt_hi=np.concatenate(opt_hi),
        opt_empty=np.concatenate(opt_empty), opt_valid=np.concatenate(opt_valid),
        n_dem=nd, over_var=over_var, z_var=z_var, z_res=z_res, res_top=top, res_m=res_m, w_distinct=wd)


# ---------------------------------------------------------------- the Lagrangian bound


@dataclass
class _Evaluation:
    value: float
    point: np.ndarray  # the blocks' best values of every variable (for the subgradient)


def lagrangian(f: _Formulation, u: np.ndarray, want_point: bool = False) -> _Evaluation:
    """L(u) for multipliers u ≥ 0 of the coupling rows: a valid upper bound for any such u."""
    lp = f.lp
    u = np.maximum(np.nan_to_num(u, nan=0.0, posinf=0.0, neginf=0.0), 0.0)
    reduced = lp.c - np.bincount(f.cp_col, weights=f.cp_val * u[f.cp_row], minlength=len(lp.c))
    total = lp.offset + float(np.dot(u, f.cp_rhs))
    point = np.zeros(len(lp.c)) if want_point else None

    # Demand blocks: the best team of each option (forced pins first, then by value), best option.
    n_opt = len(f.opt_dem)
    value = reduced[f.ent_x]
    order = np.lexsort((-value, ~f.ent_forced, f.ent_opt))
    opt_s, val_s = f.ent_opt[order], value[order]
    starts = np.searchsorted(opt_s, np.arange(n_opt))
    rank = np.arange(len(opt_s)) - starts[opt_s]
    prefix = np.cumsum(val_s)
    before = np.r_[0.0, prefix][starts]
    team = prefix - before[opt_s]
    k = rank + 1
    allowed = (k >= f.opt_lo[opt_s]) & (k <= f.opt_hi[opt_s])
    best = np.full(n_opt, -np.inf)
    np.maximum.at(best, opt_s[allowed], team[allowed])
    empty_better = f.opt_empty & (best <= 0.0)
    best = np.where(f.opt_empty, np.maximum(best, 0.0), best)
    best = np.where(f.opt_valid, best, -np.inf)
    demand_best = np.full(f.n_dem, -np.inf)
    np.maximum.at(demand_best, f.opt_dem, best)
    # A demand whose pins no option can hold has no valid schedule at all; any value is a bound then.
    demand_best = np.where(np.isfinite(demand_best), demand_best, 0.0)
    total += float(demand_best.sum())
    if want_point:
        size = np.zeros(n_opt, dtype=np.int64)
        hit = allowed & (team >= best[opt_s])
        size_hit = np.full(n_opt, np.iinfo(np.int64).max)
        np.minimum.at(size_hit, opt_s[hit], k[hit])
        size = np.where(empty_better | (size_hit == np.iinfo(np.int64).max), 0, size_hit)
        chosen = np.full(f.n_dem, n_opt)
        winners = np.flatnonzero(best >= demand_best[f.opt_dem])
        np.minimum.at(chosen, f.opt_dem[winners], winners)
        take = (chosen[f.opt_dem[opt_s]] == opt_s) & (rank < size[opt_s])
        point[f.ent_x[order[take]]] = 1.0

    # Hours above preferred: at either end of their range.
    rc = reduced[f.over_var]
    lo, hi = lp.lo[f.over_var], lp.hi[f.over_var]
    total += float(np.where(rc > 0, rc * hi, rc * lo).sum())
    if want_point:
        point[f.over_var] = np.where(rc > 0, hi, lo)

    # Residents: max Σ a·z + w·m with m ≤ Σz, m ≤ top, z ∈ [0, 1]: the best `top` of a + w that are
    # positive, and every other positive a.
    if len(f.z_var):
        a = reduced[f.z_var]
        order_z = np.lexsort((-a, f.z_res))
        res_s, a_s = f.z_res[order_z], a[order_z]
        first = np.searchsorted(res_s, np.arange(len(f.res_m)))
        rank_z = np.arange(len(res_s)) - first[res_s]
        wm = reduced[f.res_m][res_s]
        in_team = (rank_z < f.res_top[res_s]) & (a_s + wm > 0)
        gain = np.where(in_team, a_s + wm, np.maximum(a_s, 0.0))
        total += float(gain.sum())
        if want_point:
            point[f.z_var[order_z]] = (in_team | (a_s > 0)).astype(float)
            np.add.at(point, f.res_m[res_s[in_team]], 1.0)
    return _Evaluation(total, point)


def descend(f: _Formulation, u: np.ndarray, seconds: float, lower: float | None = None,
            max_iterations: int = 10_000) -> tuple[float, np.ndarray, int]:
    """Projected subgradient descent on L from `u` for `seconds`: the smallest L found, its
    multipliers and the number of iterations. Polyak steps towards `lower` (a known schedule's score)
    or, without one, towards 1% below the best L; the step factor halves when L stops improving."""
    started = time.monotonic()
    best_u = u = np.maximum(u, 0.0)
    current = lagrangian(f, u, want_point=True)
    best = current.value
    factor, stall, it = 1.0, 0, 0
    while it < max_iterations and time.monotonic() - started < seconds:
        it += 1
        activity = np.bincount(f.cp_row, weights=f.cp_val * current.point[f.cp_col], minlength=len(u))
        g = f.cp_rhs - activity
        g = np.where((u <= 0) & (g > 0), 0.0, g)  # the projection would undo these moves
        norm = float(np.dot(g, g))
        if norm <= 1e-12:
            break  # the blocks' point is feasible and complementary: L cannot go lower here
        target = lower if lower is not None and lower < best else best - 0.01 * max(1.0, abs(best))
        step = factor * max(current.value - target, 1e-6 * max(1.0, abs(best))) / norm
        u = np.maximum(u - step * g, 0.0)
        current = lagrangian(f, u, want_point=True)
        if current.value < best - 1e-9 * max(1.0, abs(best)):
            best, best_u, stall = current.value, u, 0
        else:
            stall += 1
            if stall >= 8:
                factor, stall = factor / 2.0, 0
                if factor < 1e-4:
                    break
                u = best_u
                current = lagrangian(f, u, want_point=True)
    return best, best_u, it


# ---------------------------------------------------------------- the bound of a part


def _initial_columns(f: _Formulation, inst: Instance, cands: Candidates, seed: np.ndarray | None) -> np.ndarray:
    """Pair columns of a first, smaller LP over many pairs: each demand's best pairs by their own score
    (a few more than it has places), each volunteer's best few, pins and the pairs of `seed`."""
    gain = f.lp.c[:f.n_x]
    dem = cands.demand[f.positions]
    vol = cands.volunteer[f.positions]
    people = np.array([d.people for d in inst.demands], dtype=np.int64)[dem]
    keep = np.zeros(len(f.lp.c), dtype=bool)
    order = np.lexsort((-gain, dem))
    _, _, rank = _segments(dem[order])
    keep[order[rank < np.maximum(COLUMNS_PER_DEMAND, 3 * people[order])]] = True
    order = np.lexsort((-gain, vol))
    _, _, rank = _segments(vol[order])
    keep[order[rank < COLUMNS_PER_VOLUNTEER]] = True
    keep[:f.n_x] |= f.lp.lo[:f.n_x] > 0
    if seed is not None and len(seed):
        keep[np.searchsorted(f.positions, seed)[np.isin(seed, f.positions)]] = True
    return keep


def _solve_relaxation(f: _Formulation, inst: Instance, cands: Candidates, seconds: float,
                      seed: np.ndarray | None, timings: dict):
    """The strengthened LP within `seconds`: whole when small, else by column generation (a first LP
    over each demand's best pairs, then every pair whose reduced cost under its duals is positive, until
    none is or the time is up). Returns (bound, duals, primal values when solved to optimality, status),
    the bound the smaller of the LP's certificate and the Lagrangian at its multipliers, for the duals
    of the round that gave the best one."""
    started = time.monotonic()
    if f.n_x <= COLUMN_GENERATION_PAIRS:
        solution = solve_lp(f.lp, seconds, "glop")
        timings["lp_rounds"] = 1
        return _both(f, solution.duals), solution.duals, solution.values, solution.status
    keep = _initial_columns(f, inst, cands, seed)
    best, best_duals, values, status, rounds = None, None, None, "LIMIT", 0
    while True:
        left = seconds - (time.monotonic() - started)
        if left < 0.05:
            break
        sub, cols, rows = restrict_columns(f.lp, keep, f.n_x)
        solution = solve_lp(sub, left, "glop")
        rounds += 1
        if solution.duals is None:
            status = solution.status
            break
        duals = np.zeros(f.lp.n_rows)
        duals[rows] = solution.duals
        value = _both(f, duals)
        if value is not None and (best is None or value < best):
            best, best_duals = value, duals
        if solution.status != "OPTIMAL":
            status = solution.status
            break
        reduced = f.lp.c - np.bincount(f.lp.col, weights=f.lp.val * duals[f.lp.row], minlength=len(f.lp.c))
        in_lp = np.zeros(len(f.lp.c), dtype=bool)
        in_lp[cols] = True
        enter = ~in_lp & (reduced > 1e-7 * max(1.0, float(np.abs(f.lp.c).max())))
        if not enter.any():  # no column can improve: the restricted optimum is the whole LP's
            status = "OPTIMAL"
            values = np.zeros(len(f.lp.c))
            values[cols] = solution.values
            break
        keep |= enter
    timings["lp_rounds"] = rounds
    timings["lp_columns"] = int(keep[:f.n_x].sum())
    return best, best_duals, values, status


def _both(f: _Formulation, duals: np.ndarray | None) -> float | None:
    """The smaller of the LP certificate and the Lagrangian bound for these duals."""
    if duals is None:
        return None
    values = [certify(f.lp, duals), lagrangian(f, np.maximum(duals[f.coupling], 0.0)).value]
    return min(v for v in values if v is not None)


def part_bound(inst: Instance, cands: Candidates, positions: np.ndarray, time_limit: float,
               relax_over: frozenset[int] = frozenset(), lower: float | None = None,
               seed: np.ndarray | None = None) -> PartBound:
    """A certified upper bound on what the pairs at `positions` (a union of exact components, or a
    region's bound pairs with `relax_over` its shared volunteers) and their volunteers can score,
    within about `time_limit` seconds (building included; never None: without time for an LP the
    Lagrangian bound at zero, the per-demand relaxation, is still there). `lower`, a known schedule's
    score on these pairs, steers the Lagrangian descent; `seed`, that schedule's pair positions, joins
    the first LP when the LP is solved by column generation. Neither affects validity."""
    started = time.monotonic()
    f = build_formulation(inst, cands, positions, relax_over)
    built = time.monotonic()
    timings = {"build": round(built - started, 3)}
    zero = lagrangian(f, np.zeros(len(f.coupling)), want_point=True)
    bound, method, values, kind = zero.value, "per-demand relaxation", zero.point[:f.n_x], "per_demand"
    u = np.zeros(len(f.coupling))
    left = time_limit - (time.monotonic() - started)
    lp_status = "skipped"
    if left > 0.2 and len(f.coupling):
        lp_started = time.monotonic()
        _, duals, lp_values, lp_status = _solve_relaxation(f, inst, cands, LP_SHARE * left, seed, timings)
        timings["lp"] = round(time.monotonic() - lp_started, 3)
        if duals is not None:
            certified = certify(f.lp, duals)
            if certified is not None and certified < bound:
                bound, kind = certified, "lp" if lp_status == "OPTIMAL" else "lp_cut_short"
                method = "LP relaxation, certified" if lp_status == "OPTIMAL" else \
                    "LP relaxation cut short, certified by its last duals"
                if lp_values is not None:
                    values = np.clip(lp_values[:f.n_x], 0.0, 1.0)
            u = np.maximum(duals[f.coupling], 0.0)
            at_lp = lagrangian(f, u, want_point=True)
            if at_lp.value < bound - 1e-9 * max(1.0, abs(bound)):
                bound, kind = at_lp.value, "lagrangian"
                method = "Lagrangian bound at the LP's multipliers (exact teams)" if lp_status == "OPTIMAL" else \
                    "Lagrangian bound at the multipliers of an LP cut short (exact teams)"
                if lp_values is None:
                    values = at_lp.point[:f.n_x]
    elif not len(f.coupling):  # nothing couples the demands: the blocks are the exact optimum
        method, kind = "per-demand optimum (nothing couples the demands)", "per_demand_exact"
    left = time_limit - (time.monotonic() - started)
    if lp_status != "OPTIMAL" and left > MIN_DESCENT_SECONDS and len(f.coupling):
        descent_started = time.monotonic()
        if lagrangian(f, u).value > zero.value:  # the duals of an LP stopped early can be worse than none
            u = np.zeros(len(f.coupling))
        value, best_u, iterations = descend(f, u, left, lower)
        timings["descent"] = round(time.monotonic() - descent_started, 3)
        timings["descent_iterations"] = iterations
        if value < bound - 1e-9 * max(1.0, abs(bound)):
            bound, method, kind = value, "Lagrangian bound (exact teams), subgradient descent", "lagrangian_descent"
            values = lagrangian(f, best_u, want_point=True).point[:f.n_x]
    # Float sums: pad by a relative 1e-9 as `certify` does.
    bound = bound + 1e-9 * abs(bound) + 1e-6
    timings["lp_status"] = lp_status
    return PartBound(bound, method, f.positions, values, time.monotonic() - started, timings, kind)
