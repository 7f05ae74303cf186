"""Splitting the week into parts that can be solved separately (and shipped elsewhere as plain data).

Exact split: connected components of the graph whose nodes are demands and volunteers and whose edges are
candidate pairs, plus links between demands of one resident (the continuity term couples them) and the
volunteers and demands of pins. Components cannot interact, so their optima and bounds add up. Small
components are packed together into groups of bounded size.

Heuristic split (only for components too large for one model): recursive bisection of the component's
demands by location; each volunteer is given to the one region holding most of its candidate pairs, so
regions share no volunteer and their schedules combine into a valid one. The bound for such a component
comes from the regions' *bound models* (every pair of the region's demands, with the over-preferred
term of volunteers shared between regions relaxed; see `pipeline._bound`), or from `relaxation_bound`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from solver.candidates import Candidates
from solver.instance import Instance

SMALL_GRAPH = 50_000  # edges below which components are found in Python


@dataclass
class Part:
    """Candidate pair positions solved as one model; `exact` when its bound counts for the whole."""

    positions: np.ndarray
    exact: bool
    component: int
    whole: np.ndarray | None = None  # for a region: all pair positions of its component (for the bound)
    extended: np.ndarray | None = None  # for a region: all pairs of its demands (for its bound model)
    shared: frozenset[int] = frozenset()  # volunteers with pairs in several regions of the component


class _UnionFind:
    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, a: int) -> int:
        """Root of `a`, compressing the path."""
        root = a
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[a] != root:
            self.parent[a], a = root, self.parent[a]
        return root

    def union(self, a: int, b: int) -> None:
        """Join the sets of `a` and `b` (the smaller root wins, for determinism)."""
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def find_components(inst: Instance, cands: Candidates) -> list[np.ndarray]:
    """Pair positions of each connected component (demands, volunteers, residents, pins), in C
    (scipy's connected components over a sparse graph: millions of pairs in well under a second)."""
    if len(cands) == 0:
        return []
    nd, nv = len(inst.demands), len(inst.volunteers)
    rows = [cands.demand]
    cols = [nd + cands.volunteer]
    # A resident's demands (those with pairs) are linked in a chain: continuity couples them.
    with_pairs = np.zeros(nd, dtype=bool)
    with_pairs[cands.demand] = True
    chain: dict[str, int] = {}
    a, b = [], []
    for di, d in enumerate(inst.demands):
        if d.resident is not None and with_pairs[di]:
            first = chain.setdefault(d.resident, di)
            if first != di:
                a.append(first)
                b.append(di)
    rows.append(np.array(a, dtype=np.int64))
    cols.append(np.array(b, dtype=np.int64))
    r, c = np.concatenate(rows), np.concatenate(cols)
    if len(r) < SMALL_GRAPH:  # importing scipy costs 0.2 s, a lot of a township's 3 s
        uf = _UnionFind(nd + nv)
        for a_, b_ in zip(r.tolist(), c.tolist(), strict=True):
            uf.union(a_, b_)
        labels = np.array([uf.find(i) for i in range(nd + nv)], dtype=np.int64)
    else:
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        graph = coo_matrix((np.ones(len(r), dtype=np.int8), (r, c)), shape=(nd + nv, nd + nv))
        _, labels = connected_components(graph, directed=False)
    roots = labels[cands.demand]
    order = np.argsort(roots, kind="stable")
    cuts = np.flatnonzero(np.diff(roots[order])) + 1
    return [np.sort(chunk) for chunk in np.split(order, cuts)]


def plan_parts(inst: Instance, cands: Candidates, max_pairs: int,
               region_pairs: int | None = None) -> tuple[list[Part], int]:
    """Parts to solve: small components packed into groups of at most `max_pairs` pairs, components
    above `max_pairs` split into regions of about `region_pairs` (default `max_pairs`) pairs.
    Returns the parts and the number of components."""
    region_pairs = region_pairs or max_pairs
    components = sorted(find_components(inst, cands), key=len, reverse=True)
    parts: list[Part] = []
    batch: list[np.ndarray] = []
    batch_size = 0
    for ci, comp in enumerate(components):
        if len(comp) > max_pairs:
            regions = split_by_region(inst, cands, comp, region_pairs)
            seen: dict[int, int] = defaultdict(int)
            for region in regions:
                for vi in set(cands.volunteer[region.extended].tolist()):
                    seen[vi] += 1
            shared = frozenset(vi for vi, n in seen.items() if n > 1)
            for region in regions:
                parts.append(Part(region.owned, False, ci, comp, region.extended, shared))
            continue
        if batch and batch_size + len(comp) > max_pairs:
            parts.append(Part(np.sort(np.concatenate(batch)), True, -1))
            batch, batch_size = [], 0
        batch.append(comp)
        batch_size += len(comp)
    if batch:
        parts.append(Part(np.sort(np.concatenate(batch)), True, -1))
    return parts, len(components)


@dataclass
class Region:
    """One region of a split component: the pairs it owns (its volunteers only) and, for the bound,
    every pair of its demands whatever the volunteer's region."""

    owned: np.ndarray
    extended: np.ndarray


def split_by_region(inst: Instance, cands: Candidates, positions: np.ndarray, max_pairs: int) -> list[Region]:
    """Heuristic: bisect a component's demands by location into regions of about `max_pairs` pairs and
    give every volunteer to one region."""
    nd = len(inst.demands)
    uf = _UnionFind(nd)
    first_of_resident: dict[str, int] = {}
    dis = sorted(set(cands.demand[positions].tolist()))
    for di in dis:
        resident = inst.demands[di].resident
        if resident is not None:
            uf.union(first_of_resident.setdefault(resident, di), di)
    pinned_to: dict[int, int] = {}
    for pin in inst.pinned:
        di, vi = inst.demand_index[pin.demand], inst.volunteer_index[pin.volunteer]
        if vi in pinned_to:
            uf.union(pinned_to[vi], di)
        pinned_to.setdefault(vi, di)
    weight: dict[int, int] = defaultdict(int)
    for di in cands.demand[positions].tolist():
        weight[di] += 1
    units: dict[int, list[int]] = defaultdict(list)
    for di in dis:
        units[uf.find(di)].append(di)
    unit_list = list(units.values())
    pts = np.array([[inst.demands[u[0]].lat, inst.demands[u[0]].lon] for u in unit_list])
    sizes = np.array([sum(weight[d] for d in u) for u in unit_list], dtype=float)
    regions: list[list[int]] = []
    _bisect(np.arange(len(unit_list)), pts, sizes, max_pairs, regions)
    region_of_demand = {}
    for r, members in enumerate(regions):
        for ui in members:
            for di in unit_list[ui]:
                region_of_demand[di] = r
    count: dict[int, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for di, vi in zip(cands.demand[positions].tolist(), cands.volunteer[positions].tolist(), strict=True):
        count[vi][region_of_demand[di]] += 1
    region_of_volunteer = {}
    for vi, per in count.items():
        if vi in pinned_to and pinned_to[vi] in region_of_demand:
            region_of_volunteer[vi] = region_of_demand[pinned_to[vi]]
        else:
            region_of_volunteer[vi] = max(per, key=lambda r: (per[r], -r))
    out: list[list[int]] = [[] for _ in regions]
    extended: list[list[int]] = [[] for _ in regions]
    for p in positions.tolist():
        r = region_of_demand[int(cands.demand[p])]
        extended[r].append(p)
        if region_of_volunteer[int(cands.volunteer[p])] == r:
            out[r].append(p)
    # A region may own no pair (its volunteers all went elsewhere) and still counts for the bound.
    return [Region(np.array(sorted(o), dtype=np.int64), np.array(sorted(e), dtype=np.int64))
            for o, e in zip(out, extended, strict=True) if e]


def _bisect(idx: np.ndarray, pts: np.ndarray, sizes: np.ndarray, limit: float, out: list) -> None:
    if sizes[idx].sum() <= limit or len(idx) <= 1:
        out.append(idx.tolist())
        return
    lat, lon = pts[idx, 0], pts[idx, 1]
    spread_lat = lat.max() - lat.min()
    spread_lon = (lon.max() - lon.min()) * math.cos(math.radians(float(lat.mean())))
    axis = lat if spread_lat >= spread_lon else lon
    order = idx[np.argsort(axis, kind="stable")]
    cumulative = np.cumsum(sizes[order])
    cut = int(np.searchsorted(cumulative, cumulative[-1] / 2.0)) + 1
    cut = min(max(cut, 1), len(order) - 1)
    _bisect(order[:cut], pts, sizes, limit, out)
    _bisect(order[cut:], pts, sizes, limit, out)


def pair_gains(inst: Instance, cands: Candidates, positions: np.ndarray | None = None) -> np.ndarray:
    """Each pair's own score when chosen: priority − travel + familiar + keep-previous (the terms of
    the objective that belong to one pair), vectorized."""
    w = inst.weights
    positions = np.arange(len(cands)) if positions is None else np.asarray(positions, dtype=np.int64)
    dem, vol = cands.demand[positions], cands.volunteer[positions]
    priority = np.array([w.priority[d.priority] for d in inst.demands], dtype=float)
    gain = priority[dem] - w.travel_km * cands.km[positions]
    nv = max(1, len(inst.volunteers))
    if inst.familiar and w.familiar_bonus:
        residents: dict[str, int] = {}
        code = np.array([residents.setdefault(d.resident, len(residents)) if d.resident is not None else -1
                         for d in inst.demands], dtype=np.int64)
        known = np.array([residents[r] * nv + inst.volunteer_index[v] for r, v in inst.familiar
                          if r in residents], dtype=np.int64)
        resident = code[dem]
        gain += w.familiar_bonus * ((resident >= 0) & np.isin(resident * nv + vol, known))
    if inst.previous and w.keep_previous:
        kept = np.array([inst.demand_index[d] * nv + inst.volunteer_index[v] for d, v in inst.previous],
                        dtype=np.int64)
        gain += w.keep_previous * np.isin(dem * nv + vol, kept)
    return gain


def relaxation_bound(inst: Instance, cands: Candidates, positions: np.ndarray) -> float:
    """A valid upper bound on the score of the pairs at `positions` (a whole component): each demand
    takes its best team size alone, with no overlap, hours, continuity or over-preferred costs beyond
    those fixed by commitments (all dropped terms can only lower the score). Vectorized."""
    w = inst.weights
    positions = np.asarray(positions, dtype=np.int64)
    if len(positions) == 0:
        return 0.0
    gain = pair_gains(inst, cands, positions)
    dem = cands.demand[positions]
    order = np.lexsort((-gain, dem))  # by demand, best gain first
    dem, gain = dem[order], gain[order]
    starts = np.flatnonzero(np.r_[True, dem[1:] != dem[:-1]])
    rank = np.arange(len(dem)) - np.repeat(starts, np.diff(np.r_[starts, len(dem)]))
    people = np.array([d.people for d in inst.demands], dtype=np.int64)
    least = np.array([d.min_people for d in inst.demands], dtype=np.int64)
    prefix = np.cumsum(gain)
    before = np.r_[0.0, prefix][starts]  # prefix sum before each demand's block
    team_value = prefix - np.repeat(before, np.diff(np.r_[starts, len(dem)]))  # value of the best rank+1
    allowed = (rank + 1 >= least[dem]) & (rank + 1 <= people[dem])
    best = np.zeros(len(starts))
    block = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(dem)]))
    np.maximum.at(best, block[allowed], team_value[allowed])
    total = float(best.sum())
    for vi in np.unique(cands.volunteer[positions]).tolist():
        v = inst.volunteers[vi]
        total -= w.over_preferred_hour * max(0, v.committed_minutes - v.preferred_minutes) / 60.0
    return total


def sub_instance(inst: Instance, cands: Candidates, positions: np.ndarray) -> dict:
    """A plain `linli.instance/1` document holding only the part's demands and volunteers, whose own
    candidate pairs are exactly the part's pairs (sent to another process or machine as is)."""
    dis = sorted(set(cands.demand[positions].tolist()))
    vis = sorted(set(cands.volunteer[positions].tolist()))
    dids = {inst.demands[i].id for i in dis}
    vids = {inst.volunteers[i].id for i in vis}
    raw = inst.raw
    # By construction a part owns every candidate pair among its demands and volunteers (components
    # are closed; regions own their volunteers outright), so the sub-instance yields the same pairs.
    forbidden = [{"demand": d, "volunteer": v} for d, v in inst.forbidden if d in dids and v in vids]
    return {
        "schema": raw.get("schema"),
        "name": raw.get("name", ""),
        "week_start": raw["week_start"],
        "travel": raw.get("travel") or {},
        "weights": raw.get("weights") or {},
        "volunteers": [raw["volunteers"][i] for i in vis],
        "demands": [raw["demands"][i] for i in dis],
        "pinned": [{"demand": p.demand, "volunteer": p.volunteer, "override": p.override}
                   for p in inst.pinned if p.demand in dids and p.volunteer in vids],
        "forbidden": forbidden,
        "previous": [{"demand": d, "volunteer": v} for d, v in inst.previous if d in dids and v in vids],
        "familiar": [{"resident": r, "volunteer": v} for r, v in inst.familiar if v in vids],
    }

