"""Linear relaxations, solved with GLOP (dual simplex) or PDLP and certified by weak duality.

The LP solver's floating-point answer is never trusted as is: a bound is recomputed from dual values,
because for `max c·x + offset  s.t.  l ≤ A x ≤ u,  lo ≤ x ≤ hi` and *any* row duals `y`,

    c·x + offset  ≤  offset + Σ_r (y_r⁺ u_r − y_r⁻ l_r) + Σ_j max((c − Aᵀy)_j lo_j, (c − Aᵀy)_j hi_j)

so a slightly inaccurate LP answer gives a slightly weaker bound, never an invalid one. That also holds
for the duals of a dual simplex stopped by its time limit: once it has reached dual feasibility every
iteration lowers that bound, so an unfinished LP still yields a valid (somewhat looser) bound.

Two relaxations live here:

- `lp_bound(model)`: the LP of a built CP-SAT model as written (linear rows, at-most-one rows, variable
  bounds; `lin_max` rows are dropped, which only loosens it), in model units.
- `plain_lp_bound(inst, cands)`: the yardstick, the plain linear relaxation of the contract's model over
  every candidate pair, built directly from the instance (not from a CP-SAT model) in score units. Tests
  and the benchmark compare the solver's own bound with it; see its docstring for the formulation.

`LinearProgram`, `solve_lp` and `certify` are shared with `solver.bounds`.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
from ortools.linear_solver import linear_solver_pb2
from ortools.linear_solver.python import model_builder_helper
from ortools.sat.python import cp_model

from solver.candidates import Candidates
from solver.decomposition import pair_gains
from solver.instance import Instance
from solver.model import conflict_matrix

PDLP_ROWS = 400_000  # `method="auto"`: above this many rows PDLP (first order) instead of GLOP
SPARSE_NONZEROS = 40_000  # above this many nonzeros the LP goes to OR-Tools as a scipy sparse matrix
PLAIN_COLUMN_GENERATION_ROWS = 300_000  # a plain LP with more rows is solved by column generation


# ---------------------------------------------------------------- a linear program as arrays


@dataclass
class LinearProgram:
    """`max c·x + offset  s.t.  row_lo ≤ A x ≤ row_hi,  lo ≤ x ≤ hi`, the matrix A as coordinates
    (`row`, `col`, `val`; one entry per nonzero). Infinite sides are ±inf."""

    c: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    offset: float
    row: np.ndarray
    col: np.ndarray
    val: np.ndarray
    row_lo: np.ndarray
    row_hi: np.ndarray

    @property
    def n_rows(self) -> int:
        return len(self.row_lo)


@dataclass
class LpBuilder:
    """Collects variables and rows family by family (vectorized) into a `LinearProgram`."""

    c: list = field(default_factory=list)
    lo: list = field(default_factory=list)
    hi: list = field(default_factory=list)
    row: list = field(default_factory=list)
    col: list = field(default_factory=list)
    val: list = field(default_factory=list)
    row_lo: list = field(default_factory=list)
    row_hi: list = field(default_factory=list)
    n: int = 0
    m: int = 0
    offset: float = 0.0

    def variables(self, lo, hi, c) -> np.ndarray:
        """Add variables (arrays of equal length, or scalars broadcast to `len(c)`); their indices."""
        c = np.atleast_1d(np.asarray(c, dtype=float))
        k = len(c)
        self.c.append(c)
        self.lo.append(np.broadcast_to(np.asarray(lo, dtype=float), (k,)).copy())
        self.hi.append(np.broadcast_to(np.asarray(hi, dtype=float), (k,)).copy())
        first = self.n
        self.n += k
        return np.arange(first, first + k, dtype=np.int64)

    def rows(self, row, col, val, lo, hi) -> np.ndarray:
        """Add `len(lo)` rows: entry i puts `val[i]` at (new row `row[i]`, variable `col[i]`), `row`
        counting from 0 within this call. Returns the new rows' indices."""
        lo = np.atleast_1d(np.asarray(lo, dtype=float))
        k = len(lo)
        self.row_lo.append(lo)
        self.row_hi.append(np.broadcast_to(np.asarray(hi, dtype=float), (k,)).copy())
        row = np.asarray(row, dtype=np.int64)
        self.row.append(row + self.m)
        self.col.append(np.asarray(col, dtype=np.int64))
        self.val.append(np.broadcast_to(np.asarray(val, dtype=float), row.shape).copy())
        first = self.m
        self.m += k
        return np.arange(first, first + k, dtype=np.int64)

    def build(self) -> LinearProgram:
        def cat(parts, dtype):
            return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)

        return LinearProgram(cat(self.c, float), cat(self.lo, float), cat(self.hi, float), float(self.offset),
                             cat(self.row, np.int64), cat(self.col, np.int64), cat(self.val, float),
                             cat(self.row_lo, float), cat(self.row_hi, float))


def certify(lp: LinearProgram, duals: np.ndarray | None) -> float | None:
    """Weak-duality bound of the LP for the given row duals (any values; a dual of the wrong sign for
    a one-sided row counts as 0). None when the duals leave it unbounded."""
    if duals is None or len(duals) != lp.n_rows:
        return None
    y = np.nan_to_num(np.asarray(duals, dtype=float), nan=0.0, posinf=0.0, neginf=0.0)
    y = np.where((y > 0) & ~np.isfinite(lp.row_hi), 0.0, y)
    y = np.where((y < 0) & ~np.isfinite(lp.row_lo), 0.0, y)
    reduced = lp.c - np.bincount(lp.col, weights=lp.val * y[lp.row], minlength=len(lp.c))
    side = np.where(y > 0, np.where(np.isfinite(lp.row_hi), lp.row_hi, 0.0),
                    np.where(np.isfinite(lp.row_lo), lp.row_lo, 0.0))
    with np.errstate(invalid="ignore"):
        best = np.where(reduced > 0, reduced * lp.hi, np.where(reduced < 0, reduced * lp.lo, 0.0))
    total = lp.offset + float(np.dot(y, side)) + float(best.sum())
    if not math.isfinite(total):
        return None
    # Float sums above are a few ulps off at most; pad by a relative 1e-9 to stay on the safe side.
    return total + 1e-9 * abs(total) + 1e-6


def certified_bound(c, offset, lo, hi, rows_idx, rows_coef, rows_lo, rows_hi, duals) -> float | None:
    """Weak-duality bound of max c·x over the box and rows (lists of indices and coefficients) for the
    given row duals (any values)."""
    lengths = [len(r) for r in rows_idx]
    lp = LinearProgram(
        np.asarray(c, dtype=float), np.asarray(lo, dtype=float), np.asarray(hi, dtype=float), float(offset),
        np.repeat(np.arange(len(rows_idx), dtype=np.int64), lengths),
        np.array([r for refs in rows_idx for r in refs], dtype=np.int64),
        np.array([a for coefs in rows_coef for a in coefs], dtype=float),
        np.asarray(rows_lo, dtype=float), np.asarray(rows_hi, dtype=float))
    return certify(lp, np.asarray(duals, dtype=float))


# ---------------------------------------------------------------- solving


@dataclass
class LpSolution:
    """What an LP solve left: `status` OPTIMAL, LIMIT (stopped early, by the time limit or numerical
    trouble: duals there, primal values not), or FAILED (nothing); duals per row and values per variable
    when available."""

    status: str
    duals: np.ndarray | None
    values: np.ndarray | None
    seconds: float
    method: str


def _to_proto(lp: LinearProgram) -> linear_solver_pb2.MPModelProto:
    proto = linear_solver_pb2.MPModelProto(maximize=True, objective_offset=lp.offset)
    variable = linear_solver_pb2.MPVariableProto
    proto.variable.extend(variable(lower_bound=a, upper_bound=b, objective_coefficient=c)
                          for a, b, c in zip(lp.lo.tolist(), lp.hi.tolist(), lp.c.tolist(), strict=True))
    order = np.argsort(lp.row, kind="stable")
    ends = np.cumsum(np.bincount(lp.row, minlength=lp.n_rows)).tolist()
    cols, vals = lp.col[order].tolist(), lp.val[order].tolist()
    constraint = linear_solver_pb2.MPConstraintProto
    proto.constraint.extend(
        constraint(lower_bound=a, upper_bound=b, var_index=cols[s:e], coefficient=vals[s:e])
        for a, b, s, e in zip(lp.row_lo.tolist(), lp.row_hi.tolist(), [0] + ends[:-1], ends, strict=True))
    return proto


def _to_helper(lp: LinearProgram) -> model_builder_helper.ModelBuilderHelper:
    """The LP as OR-Tools' model builder fills it from a sparse matrix (no Python loop over rows)."""
    from scipy.sparse import csr_matrix  # imported here: 0.2 s, worth it only for big LPs

    matrix = csr_matrix((lp.val, (lp.row, lp.col)), shape=(lp.n_rows, len(lp.c)))
    helper = model_builder_helper.ModelBuilderHelper()
    helper.fill_model_from_sparse_data(lp.lo, lp.hi, lp.c, lp.row_lo, lp.row_hi, matrix)
    helper.set_maximize(True)
    helper.set_objective_offset(lp.offset)
    return helper


def _parameters(method: str) -> str:
    if method == "pdlp":
        return ("num_threads: 2 termination_criteria { simple_optimality_criteria { "
                "eps_optimal_relative: 1e-6 eps_optimal_absolute: 1e-6 } }")
    # Dual simplex: much faster than primal on these models (at-most-one rows), and its duals stay
    # dual feasible once phase 1 is over, so a solve cut short by the limit still certifies a bound.
    # GLOP's presolve costs more than it saves here (2–4 times slower with the rounding rows).
    return "use_dual_simplex: true use_preprocessing: false"


def solve_lp(lp: LinearProgram, time_limit: float, method: str = "auto") -> LpSolution:
    """Solve the LP within `time_limit` seconds (building the solver's model included) with GLOP's
    dual simplex (`method="glop"`), PDLP (`"pdlp"`) or by size (`"auto"`). The duals are returned
    whatever the status (any duals certify a bound); primal values only for an optimal solve."""
    started = time.monotonic()
    if method == "auto":
        method = "pdlp" if lp.n_rows > PDLP_ROWS else "glop"
    if lp.n_rows == 0:  # each variable at its better end
        values = np.where(lp.c > 0, lp.hi, np.where(lp.c < 0, lp.lo, np.clip(0.0, lp.lo, lp.hi)))
        return LpSolution("OPTIMAL", np.zeros(0), values, time.monotonic() - started, method)
    try:
        if len(lp.row) > SPARSE_NONZEROS:
            helper = _to_helper(lp)
            solver = model_builder_helper.ModelSolverHelper(method)
            solver.set_time_limit_in_seconds(max(0.05, time_limit - (time.monotonic() - started)))
            solver.set_solver_specific_parameters(_parameters(method))
            solver.solve(helper)
            status = solver.status()
            optimal = status == model_builder_helper.SolveStatus.OPTIMAL
            duals = np.asarray(solver.dual_values(), dtype=float) if solver.has_response() else None
            values = np.asarray(solver.variable_values(), dtype=float) if optimal and solver.has_solution() else None
        else:
            request = linear_solver_pb2.MPModelRequest(
                model=_to_proto(lp),
                solver_type=linear_solver_pb2.MPModelRequest.PDLP_LINEAR_PROGRAMMING if method == "pdlp"
                else linear_solver_pb2.MPModelRequest.GLOP_LINEAR_PROGRAMMING,
                solver_time_limit_seconds=max(0.05, time_limit - (time.monotonic() - started)),
                solver_specific_parameters=_parameters(method))
            response = linear_solver_pb2.MPSolutionResponse()
            response.ParseFromString(
                model_builder_helper.ModelSolverHelper(method).solve_serialized_request(request.SerializeToString()))
            optimal = response.status == linear_solver_pb2.MPSOLVER_OPTIMAL
            duals = np.array(response.dual_value, dtype=float)
            values = np.array(response.variable_value, dtype=float) if optimal else None
    except Exception:  # the LP solver missing or failing leaves the caller's fallback bound
        return LpSolution("FAILED", None, None, time.monotonic() - started, method)
    if duals is not None and len(duals) != lp.n_rows:
        duals = None
    if values is not None and len(values) != len(lp.c):
        values = None
    status = "OPTIMAL" if optimal and values is not None else "LIMIT" if duals is not None else "FAILED"
    return LpSolution(status, duals, values, time.monotonic() - started, method)


def restrict_columns(lp: LinearProgram, keep: np.ndarray, n_x: int) -> tuple[LinearProgram, np.ndarray, np.ndarray]:
    """A smaller LP for finding duals: the pair columns (the first `n_x`) where `keep` is True, the other
    columns where `keep` is True or a row with a kept pair uses them or no row with a pair does, and
    the rows among those columns that hold a kept pair or no pair at all. With the kept columns' and
    rows' indices in the original, to map values and duals back (dropped rows get dual 0; any duals
    certify the whole LP)."""
    is_x = lp.col < n_x
    has_x = np.zeros(lp.n_rows, dtype=bool)
    has_x[lp.row[is_x]] = True
    has_kept_x = np.zeros(lp.n_rows, dtype=bool)
    has_kept_x[lp.row[is_x & keep[lp.col]]] = True
    # Other columns stay when a row with a kept pair uses them, or when no row with a pair does
    # (a resident's largest team); a volunteer's `serves` column goes with its pairs.
    near_kept = np.zeros(len(lp.c), dtype=bool)
    near_kept[lp.col[has_kept_x[lp.row]]] = True
    near_pair = np.zeros(len(lp.c), dtype=bool)
    near_pair[lp.col[has_x[lp.row]]] = True
    cols = np.flatnonzero(np.where(np.arange(len(lp.c)) < n_x, keep, keep | near_kept | ~near_pair))
    col_kept = np.zeros(len(lp.c), dtype=bool)
    col_kept[cols] = True
    has_kept = np.zeros(lp.n_rows, dtype=bool)
    has_kept[lp.row[col_kept[lp.col]]] = True
    rows = np.flatnonzero(has_kept & (has_kept_x | ~has_x))
    row_map = np.full(lp.n_rows, -1, dtype=np.int64)
    row_map[rows] = np.arange(len(rows))
    col_map = np.full(len(lp.c), -1, dtype=np.int64)
    col_map[cols] = np.arange(len(cols))
    nz = (row_map[lp.row] >= 0) & (col_map[lp.col] >= 0)
    sub = LinearProgram(lp.c[cols], lp.lo[cols], lp.hi[cols], lp.offset, row_map[lp.row[nz]], col_map[lp.col[nz]],
                        lp.val[nz], lp.row_lo[rows], lp.row_hi[rows])
    return sub, cols, rows


# ---------------------------------------------------------------- the LP of a built CP-SAT model


def model_lp(model: cp_model.CpModel) -> LinearProgram | None:
    """The linear relaxation of a CP-SAT model (maximized objective, model units): linear rows without
    enforcement and with positive references, at-most-one and exactly-one rows, variable domains as
    bounds. Other constraints are dropped, which only loosens it. None when the objective is not linear
    in plain variables."""
    proto = model.proto
    n = len(proto.variables)
    lo = np.array([v.domain[0] for v in proto.variables], dtype=float)
    hi = np.array([v.domain[len(v.domain) - 1] for v in proto.variables], dtype=float)
    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    row_lo: list[float] = []
    row_hi: list[float] = []
    for ct in proto.constraints:
        if len(ct.enforcement_literal):
            continue
        kind = next((k for k in ("linear", "at_most_one", "exactly_one") if getattr(ct, f"has_{k}")()), None)
        if kind == "linear":
            refs = list(ct.linear.vars)
            if any(r < 0 for r in refs):
                continue
            rows.extend([len(row_lo)] * len(refs))
            cols.extend(refs)
            vals.extend(ct.linear.coeffs)
            row_lo.append(_finite(ct.linear.domain[0]))
            row_hi.append(_finite(ct.linear.domain[len(ct.linear.domain) - 1]))
        elif kind in ("at_most_one", "exactly_one"):
            lits = list(getattr(ct, kind).literals)
            if any(r < 0 for r in lits):
                continue
            rows.extend([len(row_lo)] * len(lits))
            cols.extend(lits)
            vals.extend([1.0] * len(lits))
            row_lo.append(-math.inf if kind == "at_most_one" else 1.0)
            row_hi.append(1.0)
    obj = proto.objective
    if any(r < 0 for r in obj.vars):
        return None
    sign = -1.0 if obj.scaling_factor < 0 else 1.0  # maximize is stored negated with factor −1
    c = np.zeros(n)
    np.add.at(c, np.array(obj.vars, dtype=np.int64), sign * np.array(obj.coeffs, dtype=float))
    return LinearProgram(c, lo, hi, sign * obj.offset, np.array(rows, dtype=np.int64),
                         np.array(cols, dtype=np.int64), np.array(vals, dtype=float),
                         np.array(row_lo, dtype=float), np.array(row_hi, dtype=float))


def lp_bound(model: cp_model.CpModel, time_limit: float = 10.0) -> tuple[float | None, np.ndarray | None]:
    """A certified upper bound on the model's maximized objective (model units) and the LP's primal
    values by variable index (for LP-guided rounding). If the LP is cut short by `time_limit` the bound
    comes from the dual simplex's last duals (valid, looser) and the values are None; (None, None) when
    no bound could be had."""
    started = time.monotonic()
    lp = model_lp(model)
    if lp is None:
        return None, None
    solution = solve_lp(lp, time_limit - (time.monotonic() - started), "glop")
    return certify(lp, solution.duals), solution.values


def _finite(value: int) -> float:
    """CP-SAT writes ±2^63 for an open side of a domain."""
    return float(value) if abs(value) < 2**62 else math.copysign(math.inf, value)


# ---------------------------------------------------------------- the yardstick


def plain_lp_bound(inst: Instance, cands: Candidates, positions: np.ndarray | None = None,
                   time_limit: float = 600.0, method: str = "auto") -> float | None:
    """The plain LP relaxation of the contract's model over the candidate pairs at `positions` (every
    pair when None), solved to optimality and certified by its duals; None if not solved in time.

    Score units. With `positions` None it bounds the score of the whole instance (the fixed
    over-preferred cost of volunteers without pairs included); with `positions` a union of exact
    components, the share of those pairs and their volunteers (as the solver's part bounds are).

    Formulation (one row per rule, no strengthening; x, y, r, over, z, m continuous):

    - x[p] ∈ [0, 1] per pair, x = 1 for pins; objective priority − travel + familiar + keep-previous;
    - rule 9: Σ_p x ≤ people where min_people = 1, else (and for one_organization) with y[d] ∈ [0, 1]:
      Σ_p x ≤ people·y, Σ_p x ≥ min_people·y;
    - rule 10: r[d,o] ∈ [0, 1] per eligible organization (a candidate's, within `organizations` when
      set), Σ_o r = y, x[p] ≤ Σ_{o ∋ v} r[d,o] (x = 0 for a volunteer in no eligible organization);
    - rule 7: x_a + x_b ≤ 1 for each two conflicting demands of one volunteer (pairwise, no cliques);
    - rule 8: Σ minutes·x ≤ max − committed for each volunteer;
    - over-preferred: over[v] ≥ committed + Σ minutes·x − preferred, over ≥ max(0, committed −
      preferred), cost w/60 per minute; over ≤ min(max, committed + Σ minutes of v's pairs) − preferred
      (no schedule loads more; a finite box keeps the dual certificate finite);
    - continuity, for residents with two or more demands: z[ρ,v] ≥ x[p] for each pair of v on ρ's
      demands, cost w per z; the reward w·max_d assigned(d) is relaxed to w·m[ρ] with m ≤ Σ_v z[ρ,v]
      and m ≤ max people: every valid schedule satisfies both (the largest team's volunteers are
      distinct volunteers serving ρ), so the LP's value is ≥ the score of every valid schedule.

    Above `PLAIN_COLUMN_GENERATION_ROWS` rows (the pairwise rule-7 rows of a long-travel district run
    into millions) it is solved by column generation, which reaches the same optimum.
    """
    started = time.monotonic()
    w = inst.weights
    pos = np.arange(len(cands), dtype=np.int64) if positions is None else np.unique(np.asarray(positions, np.int64))
    dem = cands.demand[pos]
    vol = cands.volunteer[pos]
    b = LpBuilder()
    n = len(pos)
    gain = pair_gains(inst, cands, pos)  # priority − travel + familiar + keep-previous of each pair
    pinned = {(inst.demand_index[p.demand], inst.volunteer_index[p.volunteer]) for p in inst.pinned}
    x_lo = np.array([float((di, vi) in pinned) for di, vi in zip(dem.tolist(), vol.tolist(), strict=True)])
    x_hi = np.ones(n)
    by_demand: dict[int, list[int]] = defaultdict(list)
    by_volunteer: dict[int, list[int]] = defaultdict(list)
    for i, (di, vi) in enumerate(zip(dem.tolist(), vol.tolist(), strict=True)):
        by_demand[di].append(i)
        by_volunteer[vi].append(i)

    # Rule 10 first: it may close pairs (x ≤ 0) before the variables are made.
    org_rows: list[tuple[int, list[int], list[str]]] = []
    for di, idx in by_demand.items():
        d = inst.demands[di]
        if not d.one_organization:
            continue
        for i in idx:
            orgs = [o for o in inst.volunteers[int(vol[i])].organizations
                    if not d.organizations or o in d.organizations]
            if not orgs:
                x_hi[i] = 0.0
            org_rows.append((di, [i], orgs))
    x = b.variables(np.minimum(x_lo, x_hi), x_hi, gain)

    # Rule 9 (and the staffed variable of one_organization demands).
    staffed: dict[int, int] = {}
    team_row, team_col, team_val, team_lo, team_hi = [], [], [], [], []
    for di, idx in by_demand.items():
        d = inst.demands[di]
        if d.min_people <= 1 and not d.one_organization:
            if len(idx) > d.people:
                r = len(team_lo)
                team_row += [r] * len(idx)
                team_col += [int(x[i]) for i in idx]
                team_val += [1.0] * len(idx)
                team_lo.append(-math.inf)
                team_hi.append(d.people)
            continue
        y = int(b.variables(0.0, 1.0, [0.0])[0])
        staffed[di] = y
        for coef_y, lo_, hi_ in ((-d.people, -math.inf, 0.0), (-d.min_people, 0.0, math.inf)):
            r = len(team_lo)
            team_row += [r] * (len(idx) + 1)
            team_col += [int(x[i]) for i in idx] + [y]
            team_val += [1.0] * len(idx) + [float(coef_y)]
            team_lo.append(lo_)
            team_hi.append(hi_)
    if team_lo:
        b.rows(team_row, team_col, team_val, team_lo, team_hi)

    # Rule 10: Σ_o r = y and x ≤ Σ_{o ∋ v} r.
    responsible: dict[tuple[int, str], int] = {}
    rr, rc, rv, rl, rh = [], [], [], [], []
    for di, _, orgs in org_rows:
        for o in orgs:
            if (di, o) not in responsible:
                responsible[(di, o)] = int(b.variables(0.0, 1.0, [0.0])[0])
    for di in {di for di, _, _ in org_rows}:
        choice = [v for (d_, _), v in responsible.items() if d_ == di]
        r = len(rl)
        rr += [r] * (len(choice) + 1)
        rc += choice + [staffed[di]]
        rv += [1.0] * len(choice) + [-1.0]
        rl.append(0.0)
        rh.append(0.0)
    for di, (i,), orgs in org_rows:
        if not orgs:
            continue
        r = len(rl)
        rr += [r] * (len(orgs) + 1)
        rc += [int(x[i])] + [responsible[(di, o)] for o in orgs]
        rv += [1.0] + [-1.0] * len(orgs)
        rl.append(-math.inf)
        rh.append(0.0)
    if rl:
        b.rows(rr, rc, rv, rl, rh)

    # Rules 7 and 8 and the over-preferred term, per volunteer.
    cr, cc = [], []
    kr, kc, kv, kh = [], [], [], []
    over_idx: list[int] = []
    over_lo: list[float] = []
    over_hi: list[float] = []
    over_pref: list[float] = []
    for vi, idx in by_volunteer.items():
        v = inst.volunteers[vi]
        dis = [int(dem[i]) for i in idx]
        if len(idx) >= 2:
            conflict = conflict_matrix(inst, dis)
            for a_, b_ in np.argwhere(np.triu(conflict, 1)).tolist():
                r = len(cr) // 2
                cr += [r, r]
                cc += [int(x[idx[a_]]), int(x[idx[b_]])]
        minutes = [inst.demands[d].minutes for d in dis]
        left = v.max_minutes - v.committed_minutes
        if sum(minutes) > left:
            r = len(kh)
            kr += [r] * len(idx)
            kc += [int(x[i]) for i in idx]
            kv += minutes
            kh.append(left)
        if v.committed_minutes + sum(minutes) > v.preferred_minutes:
            over_idx.append(vi)
            over_lo.append(max(0, v.committed_minutes - v.preferred_minutes))
            over_hi.append(min(v.max_minutes, v.committed_minutes + sum(minutes)) - v.preferred_minutes)
            over_pref.append(v.preferred_minutes - v.committed_minutes)
    if cr:
        b.rows(cr, cc, 1.0, np.full(len(cr) // 2, -math.inf), 1.0)
    if kh:
        b.rows(kr, kc, kv, np.full(len(kh), -math.inf), kh)
    if over_idx:
        over = b.variables(over_lo, over_hi, np.full(len(over_idx), -w.over_preferred_hour / 60.0))
        orow, ocol, oval = [], [], []
        for r, vi in enumerate(over_idx):
            idx = by_volunteer[vi]
            orow += [r] * (len(idx) + 1)
            ocol += [int(x[i]) for i in idx] + [int(over[r])]
            oval += [float(inst.demands[int(dem[i])].minutes) for i in idx] + [-1.0]
        b.rows(orow, ocol, oval, np.full(len(over_idx), -math.inf), over_pref)

    # Continuity.
    of_resident: dict[str, list[int]] = defaultdict(list)
    for di in by_demand:
        if inst.demands[di].resident is not None:
            of_resident[inst.demands[di].resident].append(di)
    zr, zc, zv = [], [], []
    mr, mc, mv = [], [], []
    n_most = 0
    wd = w.distinct_volunteer_per_resident
    for dis in of_resident.values():
        if len(dis) < 2:
            continue
        serves: dict[int, int] = {}
        for di in dis:
            for i in by_demand[di]:
                vi = int(vol[i])
                if vi not in serves:
                    serves[vi] = int(b.variables(0.0, 1.0, [-wd])[0])
                r = len(zr) // 2
                zr += [r, r]
                zc += [int(x[i]), serves[vi]]
                zv += [1.0, -1.0]
        top = max(inst.demands[di].people for di in dis)
        m = int(b.variables(0.0, float(top), [wd])[0])
        mr += [n_most] * (len(serves) + 1)
        n_most += 1
        mc += [m] + list(serves.values())
        mv += [1.0] + [-1.0] * len(serves)
    if zr:
        b.rows(zr, zc, zv, np.full(len(zr) // 2, -math.inf), 0.0)
    if mr:
        b.rows(mr, mc, mv, np.full(n_most, -math.inf), 0.0)

    if positions is None:  # volunteers without pairs still pay for commitments above preferred
        used = set(by_volunteer)
        b.offset -= sum(w.over_preferred_hour * max(0, v.committed_minutes - v.preferred_minutes) / 60.0
                        for vi, v in enumerate(inst.volunteers) if vi not in used)
    lp = b.build()
    left = time_limit - (time.monotonic() - started)
    if lp.n_rows <= PLAIN_COLUMN_GENERATION_ROWS:
        solution = solve_lp(lp, left, method)
        return certify(lp, solution.duals) if solution.status == "OPTIMAL" else None
    return _by_column_generation(lp, n, dem, vol, gain, left, method)


def _by_column_generation(lp: LinearProgram, n_x: int, dem: np.ndarray, vol: np.ndarray, gain: np.ndarray,
                          seconds: float, method: str) -> float | None:
    """The LP's optimum, certified, by column generation over its first `n_x` (pair) columns: a first
    LP over each demand's and each volunteer's best pairs by their own score (pins too), then every
    column whose reduced cost under the duals is positive, until the restricted optimum's duals certify
    it for the whole LP (None if time runs out). Sub-LPs by GLOP unless `method` says otherwise."""
    started = time.monotonic()
    keep = np.zeros(len(lp.c), dtype=bool)
    for key, k in ((dem, 20), (vol, 4)):
        order = np.lexsort((-gain, key))
        first = np.r_[True, key[order][1:] != key[order][:-1]]
        start = np.maximum.accumulate(np.where(first, np.arange(len(order)), 0))
        keep[order[np.arange(len(order)) - start < k]] = True
    keep[:n_x] |= lp.lo[:n_x] > 0
    tolerance = 1e-7 * max(1.0, float(np.abs(lp.c).max()))
    while True:
        left = seconds - (time.monotonic() - started)
        if left < 0.05:
            return None
        sub, cols, rows = restrict_columns(lp, keep, n_x)
        solution = solve_lp(sub, left, "glop" if method == "auto" else method)
        if solution.status != "OPTIMAL":
            return None
        duals = np.zeros(lp.n_rows)
        duals[rows] = solution.duals
        whole, restricted = certify(lp, duals), certify(sub, solution.duals)
        if whole is not None and restricted is not None and whole <= restricted + 1e-8 * max(1.0, abs(restricted)):
            return whole  # the restricted optimum is certified for every column: it is the LP's
        reduced = lp.c - np.bincount(lp.col, weights=lp.val * duals[lp.row], minlength=len(lp.c))
        in_lp = np.zeros(len(lp.c), dtype=bool)
        in_lp[cols] = True
        enter = ~in_lp & (reduced > tolerance)
        if not enter.any():
            return whole
        keep |= enter
