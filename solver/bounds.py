"""The solver's own bound on a set of candidate pairs (a part or a whole component), in score units.

`part_bound(inst, cands, positions, time_limit)` always returns a valid upper bound on the score those
pairs and their volunteers can contribute (as `lp_bound` of the part's CP-SAT model, divided by SCALE,
but built directly from the instance, in exact floats, and never None). It combines three certified
bounds and keeps the smallest:

1. **The strengthened LP** (`_Formulation`), solved with GLOP's dual simplex and certified by its duals
   (`relaxation.certify`). Cut short by the time limit, the dual simplex's last duals still certify a
   bound (weak duality holds for any duals), usually within a few per mille of the optimum.
2. **A Lagrangian bound with exact team blocks.** The rows that couple demands (rule 7 cliques, rule 8,
   over-preferred hours, continuity `x ≤ z`) are moved into the objective with multipliers u ≥ 0; what is
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
given next to each family in `_Formulation`. Its LP relaxation contains the plain one's rows (cliques
cover every conflicting pair; x ≤ y with Σx ≤ people·y and Σx ≥ min·y include the plain team rows), so
its optimum is never above `relaxation.plain_lp_bound` over the same pairs.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from solver.candidates import Candidates
from solver.decomposition import pair_gains
from solver.instance import Instance
from solver.model import conflict_matrix
from solver.relaxation import LinearProgram, LpBuilder, certify, solve_lp

LP_SHARE = 0.75  # of the time left after building, for the LP (the rest: Lagrangian descent)
MIN_DESCENT_SECONDS = 0.05


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


def volunteer_cliques(conflict: np.ndarray, starts: np.ndarray) -> list[np.ndarray]:
    """Cliques covering every edge of one volunteer's conflict graph (rule 7 between its demands).

    The demands are cut, in order of start, into runs that no conflict crosses (a morning, a day), and
    each run is covered on its own (`_run_cliques`)."""
    k = len(starts)
    order = np.lexsort((np.arange(k), starts))
    sub = conflict[np.ix_(order, order)]
    position = np.arange(k)
    reach = np.where(sub.any(axis=1), k - 1 - np.argmax(sub[:, ::-1], axis=1), position)
    cut = np.flatnonzero(np.maximum.accumulate(reach)[:-1] < position[1:]) + 1
    out = []
    for run in np.split(np.arange(k), cut):
        if len(run) >= 2:
            out += [order[run[c]] for c in _run_cliques(sub[np.ix_(run, run)])]
    return out


def _run_cliques(conflict: np.ndarray) -> list[np.ndarray]:
    """Cliques covering every edge of a conflict graph whose demands are numbered by start.

    For each demand i: i with every conflicting demand that starts no later. When the conflicts are
    plain overlaps that set is a clique (everything running at i's start); travel time can break that,
    and then the set is trimmed greedily. Edges left uncovered become two-element cliques; cliques
    contained in another are dropped."""
    k = len(conflict)
    eye = np.eye(k, dtype=bool)
    if (conflict | eye).all():  # the common case: everything overlaps everything
        return [np.arange(k)]
    product = _sparse_product if k >= SPARSE_RUN else _dense_product
    member = np.tril(conflict) | eye  # [i, j]: j conflicts with i and starts no later
    member = member[member.sum(axis=1) >= 2]
    if len(member):
        sizes = member.sum(axis=1)
        # a set is a clique when each of its members conflicts with all the others
        inside = (product(member, conflict | eye) * member).sum(axis=1)
        for c in np.flatnonzero(inside < sizes * sizes).tolist():
            idx = np.flatnonzero(member[c])
            keep = [int(idx[-1])]  # the set's own demand, the latest; then the others latest first
            for j in idx[-2::-1].tolist():
                if conflict[j, keep].all():
                    keep.append(j)
            member[c] = False
            member[c, keep] = True
        member = member[member.sum(axis=1) >= 2]
        packed = np.packbits(member, axis=1)
        _, first = np.unique(packed.view(np.dtype((np.void, packed.shape[1]))).ravel(), return_index=True)
        member = member[np.sort(first)]
    if len(member):
        sizes = member.sum(axis=1)
        contained = (product(member, member.T) >= sizes[:, None]) & (sizes[:, None] < sizes[None, :])
        member = member[~contained.any(axis=1)]
        covered = product(member.T, member) > 0
    else:
        covered = np.zeros_like(conflict)
    rest = np.argwhere(np.triu(conflict & ~covered, 1))
    return [np.flatnonzero(m) for m in member] + [np.array(e, dtype=np.int64) for e in rest.tolist()]


SPARSE_RUN = 48  # runs of this many demands and more: sparse products (BLAS threads stall when shared)


def _dense_product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b of 0/1 matrices, as counts."""
    return (a.astype(np.float32) @ b.astype(np.float32)).round().astype(np.int64)


def _sparse_product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b of 0/1 matrices, as counts, through scipy's sparse product (one thread, no BLAS)."""
    from scipy.sparse import csr_matrix

    return np.asarray((csr_matrix(a, dtype=np.int32) @ csr_matrix(b, dtype=np.int32)).todense(), dtype=np.int64)


def build_formulation(inst: Instance, cands: Candidates, positions: np.ndarray,
                      relax_over: frozenset[int] = frozenset()) -> _Formulation:
    """The strengthened LP over the pairs at `positions`; volunteers in `relax_over` get no
    over-preferred term (as `model.build_part_model`)."""
    w = inst.weights
    pos = np.unique(np.asarray(positions, dtype=np.int64))
    dem, vol = cands.demand[pos], cands.volunteer[pos]
    n = len(pos)
    b = LpBuilder()
    minutes = np.array([d.minutes for d in inst.demands], dtype=float)[dem]
    pinned_keys = {(inst.demand_index[p.demand], inst.volunteer_index[p.volunteer]) for p in inst.pinned}
    forced = np.fromiter(((di, vi) in pinned_keys for di, vi in zip(dem.tolist(), vol.tolist(), strict=True)),
                         dtype=bool, count=n) if pinned_keys else np.zeros(n, dtype=bool)

    # Demands in local numbering (sorted pairs come grouped by demand: candidates are demand-major).
    order_d = np.argsort(dem, kind="stable")
    d_starts, _, _ = _segments(dem[order_d])
    demand_ids = dem[order_d][d_starts] if n else np.zeros(0, dtype=np.int64)
    groups = np.split(order_d, d_starts[1:]) if n else []

    # One_organization: eligible organizations of each candidate; a candidate in none can never serve.
    x_hi = np.ones(n)
    eligible: dict[int, list[str]] = {}
    for di, idx in zip(demand_ids.tolist(), groups, strict=True):
        d = inst.demands[di]
        if not d.one_organization:
            continue
        for i in idx.tolist():
            orgs = sorted(o for o in inst.volunteers[int(vol[i])].organizations
                          if not d.organizations or o in d.organizations)
            eligible[i] = orgs
            if not orgs:
                x_hi[i] = 0.0
    x = b.variables(np.minimum(forced.astype(float), x_hi), x_hi, pair_gains(inst, cands, pos))

    # ---- demand blocks (kept whole in the Lagrangian bound)
    # Rule 9. For a demand with min_people > 1 or one_organization, y = staffed:
    #   Σx ≤ people·y, Σx ≥ min·y, x ≤ y   (a valid schedule has y = 1 iff anyone serves, and then
    #   min ≤ |team| ≤ people; x ≤ y: nobody serves an unstaffed demand).
    # Rule 10. r[o] = o responsible: Σ_o r = y; x ≤ Σ_{o ∋ v} r (everyone is a member of the responsible
    #   organization); Σ_{v ∈ o} x ≥ min·r[o] (the responsible organization fields the whole team);
    #   Σ_{v whose only eligible organization is o} x ≤ people·r[o] (those can serve only if o is
    #   responsible, and then at most `people` serve).
    rows_r, rows_c, rows_v, rows_lo, rows_hi = [], [], [], [], []
    ent_x, ent_opt, opt_dem, opt_lo, opt_hi, opt_empty, opt_valid = [], [], [], [], [], [], []

    def row(cols, vals, lo, hi):
        r = len(rows_lo)
        rows_r.extend([r] * len(cols))
        rows_c.extend(cols)
        rows_v.extend(vals)
        rows_lo.append(lo)
        rows_hi.append(hi)

    for local, (di, idx) in enumerate(zip(demand_ids.tolist(), groups, strict=True)):
        d = inst.demands[di]
        xs = x[idx].tolist()
        n_forced = int(forced[idx].sum())
        if d.min_people <= 1 and not d.one_organization:
            if len(xs) > d.people:
                row(xs, [1.0] * len(xs), -math.inf, d.people)
        else:
            y = int(b.variables(0.0, 1.0 if len(xs) >= d.min_people else 0.0, [0.0])[0])
            row(xs + [y], [1.0] * len(xs) + [-float(d.people)], -math.inf, 0.0)
            row(xs + [y], [1.0] * len(xs) + [-float(d.min_people)], 0.0, math.inf)
            for xi in xs:
                row([xi, y], [1.0, -1.0], -math.inf, 0.0)
            if d.one_organization:
                orgs = sorted({o for i in idx.tolist() for o in eligible[i]})
                r_var = dict(zip(orgs, b.variables(0.0, 1.0, np.zeros(len(orgs))).tolist(), strict=True))
                row(list(r_var.values()) + [y], [1.0] * len(orgs) + [-1.0], 0.0, 0.0)
                for i in idx.tolist():
                    if eligible[i]:
                        row([int(x[i])] + [r_var[o] for o in eligible[i]], [1.0] + [-1.0] * len(eligible[i]),
                            -math.inf, 0.0)
                for o in orgs:
                    members = [i for i in idx.tolist() if o in eligible[i]]
                    row([int(x[i]) for i in members] + [r_var[o]], [1.0] * len(members) + [-float(d.min_people)],
                        0.0, math.inf)
                    only = [i for i in members if len(eligible[i]) == 1]
                    if len(only) > d.people:
                        row([int(x[i]) for i in only] + [r_var[o]], [1.0] * len(only) + [-float(d.people)],
                            -math.inf, 0.0)
                    pins_in = int(forced[members].sum()) if members else 0
                    opt = len(opt_dem)
                    ent_x.extend(int(x[i]) for i in members)
                    ent_opt.extend([opt] * len(members))
                    opt_dem.append(local)
                    opt_lo.append(max(d.min_people, n_forced, 1))
                    opt_hi.append(min(d.people, len(members)))
                    opt_empty.append(n_forced == 0)
                    opt_valid.append(pins_in == n_forced)
                if not orgs:  # nobody eligible: the demand stays empty
                    opt_dem.append(local)
                    opt_lo.append(1)
                    opt_hi.append(0)
                    opt_empty.append(True)
                    opt_valid.append(n_forced == 0)
                continue
        opt = len(opt_dem)
        ent_x.extend(xs)
        ent_opt.extend([opt] * len(xs))
        opt_dem.append(local)
        opt_lo.append(max(d.min_people, n_forced, 1))
        opt_hi.append(min(d.people, len(xs)))
        opt_empty.append(n_forced == 0)
        opt_valid.append(True)
    if rows_lo:
        b.rows(rows_r, rows_c, rows_v, rows_lo, rows_hi)
    coupling_first = b.m

    # ---- coupling rows, all `a·v ≤ rhs`
    # Rule 7: per volunteer, at most one demand of each clique of mutually conflicting demands.
    # Rule 8: Σ hours·x ≤ hours left after commitments.
    # Over-preferred (hours): Σ hours·x − over ≤ preferred − committed, over ∈ [fixed part, most possible].
    order_v = np.argsort(vol, kind="stable")
    v_starts, _, _ = _segments(vol[order_v])
    vol_groups = np.split(order_v, v_starts[1:]) if n else []
    cr, cc = [], []
    n_cliques = 0
    kr, kc, kv, kh = [], [], [], []
    over_vols, over_lo, over_hi, over_rhs = [], [], [], []
    for idx in vol_groups:
        vi = int(vol[idx[0]])
        v = inst.volunteers[vi]
        if len(idx) >= 2:
            dis = dem[idx]
            conflict = conflict_matrix(inst, dis.tolist())
            if conflict.any():
                starts = np.array([inst.demands[int(di)].start for di in dis.tolist()])
                for clique in volunteer_cliques(conflict, starts):
                    cr.extend([n_cliques] * len(clique))
                    cc.extend(x[idx[clique]].tolist())
                    n_cliques += 1
        hours = minutes[idx] / 60.0
        left = (v.max_minutes - v.committed_minutes) / 60.0
        if hours.sum() > left + 1e-9:
            kr.extend([len(kh)] * len(idx))
            kc.extend(x[idx].tolist())
            kv.extend(hours.tolist())
            kh.append(left)
        most = min(v.max_minutes, v.committed_minutes + int(minutes[idx].sum()))
        if vi not in relax_over and most > v.preferred_minutes:
            over_vols.append(idx)
            over_lo.append(max(0, v.committed_minutes - v.preferred_minutes) / 60.0)
            over_hi.append((most - v.preferred_minutes) / 60.0)
            over_rhs.append((v.preferred_minutes - v.committed_minutes) / 60.0)
    if n_cliques:
        b.rows(cr, cc, 1.0, np.full(n_cliques, -math.inf), 1.0)
    if kh:
        b.rows(kr, kc, kv, np.full(len(kh), -math.inf), kh)
    over_var = b.variables(over_lo, over_hi, np.full(len(over_vols), -w.over_preferred_hour))
    if over_vols:
        lengths = [len(idx) for idx in over_vols]
        all_idx = np.concatenate(over_vols)
        row_of = np.repeat(np.arange(len(over_vols)), lengths)
        b.rows(np.r_[row_of, np.arange(len(over_vols))], np.r_[x[all_idx], over_var],
               np.r_[minutes[all_idx] / 60.0, -np.ones(len(over_vols))], np.full(len(over_vols), -math.inf), over_rhs)

    # Continuity, for residents with two or more demands here: z[ρ,v] ≥ x for v's pairs on ρ's demands
    # (z = 1 when v serves ρ), cost w per z; the reward w·(largest team) is w·m with m ≤ Σ_v z and
    # m ≤ the largest `people` (the largest team's volunteers are distinct and serve ρ). The row
    # x − z ≤ 0 couples; m − Σz ≤ 0 stays in the resident's block.
    resident_of = np.full(len(inst.demands), -1, dtype=np.int64)
    names: dict[str, int] = {}
    for di in demand_ids.tolist():
        r = inst.demands[di].resident
        if r is not None:
            resident_of[di] = names.setdefault(r, len(names))
    count = np.bincount(resident_of[demand_ids][resident_of[demand_ids] >= 0], minlength=len(names))
    res = resident_of[dem]
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
        z_res_global = uniq // (len(inst.volunteers) + 1)
        res_ids, z_res = np.unique(z_res_global, return_inverse=True)
        people = np.array([d.people for d in inst.demands], dtype=float)
        top = np.zeros(len(res_ids))
        np.maximum.at(top, np.searchsorted(res_ids, res[with_z]), people[dem[with_z]])
        res_m = b.variables(0.0, top, np.full(len(res_ids), wd))
        coupling_last = b.m
        b.rows(np.r_[np.arange(len(res_ids)), z_res], np.r_[res_m, z_var],
               np.r_[np.ones(len(res_ids)), -np.ones(len(z_var))], np.full(len(res_ids), -math.inf), 0.0)
    else:
        z_var = z_res = res_m = np.zeros(0, dtype=np.int64)
        top = np.zeros(0)
        coupling_last = b.m
    lp = b.build()
    opt_dem_a = np.array(opt_dem, dtype=np.int64)
    return _Formulation(
        lp=lp, positions=pos, n_x=n, coupling=np.arange(coupling_first, coupling_last, dtype=np.int64),
        ent_x=np.array(ent_x, dtype=np.int64), ent_opt=np.array(ent_opt, dtype=np.int64),
        ent_forced=forced[np.array(ent_x, dtype=np.int64)] if ent_x else np.zeros(0, dtype=bool),
        opt_dem=opt_dem_a, opt_lo=np.array(opt_lo, dtype=np.int64), opt_hi=np.array(opt_hi, dtype=np.int64),
        opt_empty=np.array(opt_empty, dtype=bool), opt_valid=np.array(opt_valid, dtype=bool),
        n_dem=len(demand_ids), over_var=over_var, z_var=z_var, z_res=z_res, res_top=top, res_m=res_m,
        w_distinct=wd)


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


def part_bound(inst: Instance, cands: Candidates, positions: np.ndarray, time_limit: float,
               relax_over: frozenset[int] = frozenset(), lower: float | None = None) -> PartBound:
    """A certified upper bound on what the pairs at `positions` (a union of exact components, or a
    region's bound pairs with `relax_over` its shared volunteers) and their volunteers can score,
    within about `time_limit` seconds (building included; never None: without time for an LP the
    Lagrangian bound at zero, the per-demand relaxation, is still there). `lower`, a known schedule's
    score on these pairs, only steers the Lagrangian descent."""
    started = time.monotonic()
    f = build_formulation(inst, cands, positions, relax_over)
    built = time.monotonic()
    timings = {"build": round(built - started, 3)}
    zero = lagrangian(f, np.zeros(len(f.coupling)), want_point=True)
    bound, method, values = zero.value, "per-demand relaxation", zero.point[:f.n_x]
    u = np.zeros(len(f.coupling))
    left = time_limit - (time.monotonic() - started)
    lp_status = "skipped"
    if left > 0.2 and len(f.coupling):
        solution = solve_lp(f.lp, LP_SHARE * left, "glop")
        lp_status = solution.status
        timings["lp"] = round(solution.seconds, 3)
        certified = certify(f.lp, solution.duals)
        if certified is not None and certified < bound:
            bound = certified
            method = "LP relaxation, certified" if solution.status == "OPTIMAL" else \
                "LP relaxation cut short, certified by its last duals"
            if solution.values is not None:
                values = np.clip(solution.values[:f.n_x], 0.0, 1.0)
        if solution.duals is not None:
            u = np.maximum(solution.duals[f.coupling], 0.0)
            at_lp = lagrangian(f, u, want_point=True)
            if at_lp.value < bound - 1e-9 * max(1.0, abs(bound)):
                bound, method = at_lp.value, "Lagrangian bound at the LP's multipliers (exact teams)"
                if solution.values is None:
                    values = at_lp.point[:f.n_x]
    elif not len(f.coupling):  # nothing couples the demands: the blocks are the exact optimum
        method = "per-demand optimum (nothing couples the demands)"
    left = time_limit - (time.monotonic() - started)
    if lp_status != "OPTIMAL" and left > MIN_DESCENT_SECONDS and len(f.coupling):
        descent_started = time.monotonic()
        value, best_u, iterations = descend(f, u, left, lower)
        timings["descent"] = round(time.monotonic() - descent_started, 3)
        timings["descent_iterations"] = iterations
        if value < bound - 1e-9 * max(1.0, abs(bound)):
            bound, method = value, "Lagrangian bound (exact teams), subgradient descent"
            if lp_status != "OPTIMAL":
                values = lagrangian(f, best_u, want_point=True).point[:f.n_x]
    # Float sums: pad by a relative 1e-9 as `certify` does.
    bound = bound + 1e-9 * abs(bound) + 1e-6
    timings["lp_status"] = lp_status
    return PartBound(bound, method, f.positions, values, time.monotonic() - started, timings)
