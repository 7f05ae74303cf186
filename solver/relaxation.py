"""LP relaxation bound of a built CP-SAT model, solved with GLOP and certified by its duals.

CP-SAT's own bound on these models moves slowly with two workers, so we also solve the linear
relaxation of the model as written (linear rows, at-most-one rows, variable bounds; `lin_max` rows are
dropped, which only loosens it). The LP solver's floating-point answer is not trusted as is: the bound
is recomputed from its dual values by weak duality, which holds for *any* dual vector,

    max c·x  s.t.  l ≤ A x ≤ u,  lo ≤ x ≤ hi    ≤    Σ_r y_r⁺ u_r − y_r⁻ l_r + Σ_j max_{x_j} (c − Aᵀy)_j x_j

so a slightly inaccurate LP answer gives a slightly weaker bound, never an invalid one.
"""

from __future__ import annotations

import math

import numpy as np
from ortools.linear_solver import pywraplp
from ortools.sat.python import cp_model


def lp_bound(model: cp_model.CpModel, time_limit: float = 10.0) -> tuple[float | None, np.ndarray | None]:
    """A certified upper bound on the model's maximized objective (model units) and the LP's primal
    values by variable index (for LP-guided rounding); (None, None) when the LP is not solved."""
    proto = model.proto
    n = len(proto.variables)
    lo = np.array([v.domain[0] for v in proto.variables], dtype=float)
    hi = np.array([list(v.domain)[-1] for v in proto.variables], dtype=float)
    rows_idx: list[list[int]] = []
    rows_coef: list[list[float]] = []
    rows_lo: list[float] = []
    rows_hi: list[float] = []
    for ct in proto.constraints:
        if len(ct.enforcement_literal):
            continue
        kind = next((k for k in ("linear", "at_most_one", "exactly_one") if getattr(ct, f"has_{k}")()), None)
        if kind == "linear":
            refs, coefs = list(ct.linear.vars), [float(c) for c in ct.linear.coeffs]
            if any(r < 0 for r in refs):
                continue
            rows_idx.append(refs)
            rows_coef.append(coefs)
            rows_lo.append(_finite(ct.linear.domain[0]))
            rows_hi.append(_finite(list(ct.linear.domain)[-1]))
        elif kind in ("at_most_one", "exactly_one"):
            lits = list(getattr(ct, kind).literals)
            if any(r < 0 for r in lits):
                continue
            rows_idx.append(lits)
            rows_coef.append([1.0] * len(lits))
            rows_lo.append(-math.inf if kind == "at_most_one" else 1.0)
            rows_hi.append(1.0)
    obj = proto.objective
    sign = -1.0 if obj.scaling_factor < 0 else 1.0  # maximize is stored negated with factor −1
    c = np.zeros(n)
    for ref, coef in zip(obj.vars, obj.coeffs, strict=True):
        if ref < 0:
            return None, None
        c[ref] += sign * coef
    offset = sign * obj.offset

    solver = pywraplp.Solver.CreateSolver("GLOP")
    if solver is None:
        return None, None
    solver.SetTimeLimit(int(max(0.1, time_limit) * 1000))
    inf = solver.infinity()
    xs = [solver.NumVar(float(lo[j]), float(hi[j]), "") for j in range(n)]
    cons = []
    for refs, coefs, rl, rh in zip(rows_idx, rows_coef, rows_lo, rows_hi, strict=True):
        ct = solver.RowConstraint(rl if math.isfinite(rl) else -inf, rh if math.isfinite(rh) else inf, "")
        for r, a in zip(refs, coefs, strict=True):
            ct.SetCoefficient(xs[r], a)
        cons.append(ct)
    objective = solver.Objective()
    for j in np.flatnonzero(c).tolist():
        objective.SetCoefficient(xs[j], float(c[j]))
    objective.SetMaximization()
    status = solver.Solve()
    if status not in (pywraplp.Solver.OPTIMAL, pywraplp.Solver.FEASIBLE):
        return None, None
    duals = np.array([ct.dual_value() for ct in cons], dtype=float)
    values = np.array([x.solution_value() for x in xs], dtype=float)
    return certified_bound(c, offset, lo, hi, rows_idx, rows_coef, rows_lo, rows_hi, duals), values


def _finite(value: int) -> float:
    """CP-SAT writes ±2^63 for an open side of a domain."""
    return float(value) if abs(value) < 2**62 else math.copysign(math.inf, value)


def certified_bound(c, offset, lo, hi, rows_idx, rows_coef, rows_lo, rows_hi, duals) -> float | None:
    """Weak-duality bound of max c·x over the box and rows for the given row duals (any values)."""
    reduced = c.astype(float).copy()
    total = float(offset)
    for y, refs, coefs, rl, rh in zip(duals, rows_idx, rows_coef, rows_lo, rows_hi, strict=True):
        if y > 0 and not math.isfinite(rh):
            y = 0.0
        if y < 0 and not math.isfinite(rl):
            y = 0.0
        if y == 0:
            continue
        total += y * (rh if y > 0 else rl)
        for r, a in zip(refs, coefs, strict=True):
            reduced[r] -= y * a
    best = np.where(reduced > 0, reduced * hi, reduced * lo)
    total += float(best.sum())
    if not math.isfinite(total):
        return None
    # Float sums above are a few ulps off at most; pad by a relative 1e-9 to stay on the safe side.
    return total + 1e-9 * abs(total) + 1e-6
