"""Candidate (demand, volunteer) pairs: the pairs that pass the per-pair rules 1–6.

No Python loop over volunteers × demands: volunteers are bucketed into a latitude/longitude grid per
travel-range class, each demand looks only at the 3 × 3 cells around it, and the rules are NumPy masks
over that short list (skills, gender and organizations as boolean columns, availability windows by one
`searchsorted` over a flat, sorted key array, distance by vectorized haversine).

Afterwards pairs that can never be in a valid schedule because of the volunteer's fixed commitments
(rule 7 against a commitment, rule 8 with the commitments' minutes) are dropped too: no schedule that
obeys the hard rules contains them, so every bound stays valid.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from solver.geo import EARTH_RADIUS_KM, distance_km
from solver.instance import Instance
from solver.validation import EPS

KM_PER_DEGREE = 6371.0 * math.pi / 180.0
SLOT_MASK_CELLS = 50_000_000  # booleans (bytes) at most for the per-slot availability masks


@dataclass
class VolunteerArrays:
    """Column arrays over all volunteers, for vectorized rule checks."""

    lat: np.ndarray
    lon: np.ndarray
    max_km: np.ndarray
    skill: dict[str, np.ndarray]
    organization: dict[str, np.ndarray]
    gender: dict[str, np.ndarray]
    window_key: np.ndarray
    window_volunteer: np.ndarray
    window_end: np.ndarray
    time_origin: int
    time_span: int

    def skills_mask(self, skills, skills_any, idx: np.ndarray) -> np.ndarray:
        """Rule 1 over volunteers `idx`."""
        mask = np.ones(len(idx), dtype=bool)
        for s in skills:
            column = self.skill.get(s)
            if column is None:
                return np.zeros(len(idx), dtype=bool)
            mask &= column[idx]
        if skills_any:
            anyof = np.zeros(len(idx), dtype=bool)
            for s in skills_any:
                column = self.skill.get(s)
                if column is not None:
                    anyof |= column[idx]
            mask &= anyof
        return mask

    def gender_mask(self, gender, idx: np.ndarray) -> np.ndarray:
        """Rule 2 over volunteers `idx`."""
        if gender is None:
            return np.ones(len(idx), dtype=bool)
        column = self.gender.get(gender)
        return np.zeros(len(idx), dtype=bool) if column is None else column[idx]

    def organization_mask(self, organizations, idx: np.ndarray) -> np.ndarray:
        """Rule 3 over volunteers `idx`."""
        if not organizations:
            return np.ones(len(idx), dtype=bool)
        mask = np.zeros(len(idx), dtype=bool)
        for o in organizations:
            column = self.organization.get(o)
            if column is not None:
                mask |= column[idx]
        return mask

    def availability_mask(self, start: int, end: int, idx: np.ndarray) -> np.ndarray:
        """Rule 4 over volunteers `idx`: one merged window holds [start, end]."""
        if len(self.window_key) == 0:
            return np.zeros(len(idx), dtype=bool)
        query = idx.astype(np.int64) * self.time_span + (start - self.time_origin)
        pos = np.searchsorted(self.window_key, query, side="right") - 1
        safe = np.maximum(pos, 0)
        return (pos >= 0) & (self.window_volunteer[safe] == idx) & (self.window_end[safe] >= end)

    def range_km(self, lat: float, lon: float, idx: np.ndarray, detour: float) -> np.ndarray:
        """Distances in km from volunteers `idx` to a point: the haversine of `geo.distance_km` with
        the volunteers' radians and cosines worked out once."""
        p2 = math.radians(lat)
        dp = p2 - self.lat_rad[idx]
        dl = math.radians(lon) - self.lon_rad[idx]
        a = np.sin(dp / 2.0) ** 2 + self.cos_lat[idx] * math.cos(p2) * np.sin(dl / 2.0) ** 2
        return 2.0 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0))) * detour

    def __post_init__(self) -> None:
        self.lat_rad = np.radians(self.lat)
        self.lon_rad = np.radians(self.lon)
        self.cos_lat = np.cos(self.lat_rad)


def build_volunteer_arrays(inst: Instance) -> VolunteerArrays:
    """Column arrays and a flat sorted window index over all volunteers."""
    n = len(inst.volunteers)
    skill: dict[str, np.ndarray] = {}
    organization: dict[str, np.ndarray] = {}
    gender: dict[str, np.ndarray] = {}
    for i, v in enumerate(inst.volunteers):
        for s in v.skills:
            skill.setdefault(s, np.zeros(n, dtype=bool))[i] = True
        for o in v.organizations:
            organization.setdefault(o, np.zeros(n, dtype=bool))[i] = True
        if v.gender is not None:
            gender.setdefault(v.gender, np.zeros(n, dtype=bool))[i] = True
    times = [t for v in inst.volunteers for w in v.windows for t in w]
    times += [t for d in inst.demands for t in (d.start, d.end)]
    origin = min(times) if times else 0
    span = (max(times) - origin + 1) if times else 1
    wv = np.array([i for i, v in enumerate(inst.volunteers) for _ in v.windows], dtype=np.int64)
    ws = np.array([w[0] for v in inst.volunteers for w in v.windows], dtype=np.int64)
    we = np.array([w[1] for v in inst.volunteers for w in v.windows], dtype=np.int64)
    key = wv * span + (ws - origin)
    order = np.argsort(key, kind="stable")
    return VolunteerArrays(
        lat=np.array([v.lat for v in inst.volunteers], dtype=float),
        lon=np.array([v.lon for v in inst.volunteers], dtype=float),
        max_km=np.array([v.max_travel_km for v in inst.volunteers], dtype=float),
        skill=skill,
        organization=organization,
        gender=gender,
        window_key=key[order],
        window_volunteer=wv[order],
        window_end=we[order],
        time_origin=origin,
        time_span=span,
    )


@dataclass
class Candidates:
    """Candidate pairs as parallel arrays, sorted by demand then distance."""

    demand: np.ndarray
    volunteer: np.ndarray
    km: np.ndarray
    arrays: VolunteerArrays
    removed_busy: dict[int, int] = field(default_factory=dict)
    removed_hours: dict[int, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.demand)

    def by_demand(self) -> dict[int, np.ndarray]:
        """Positions of each demand's pairs."""
        return _group(self.demand)

    def by_volunteer(self) -> dict[int, np.ndarray]:
        """Positions of each volunteer's pairs."""
        return _group(self.volunteer)

    def subset(self, positions: np.ndarray) -> Candidates:
        """The pairs at `positions` (sorted) as candidates of their own (what a time-pressed search
        looks at); the removal counts, which explain unfilled demands, stay those of the whole."""
        positions = np.sort(np.asarray(positions, dtype=np.int64))
        return Candidates(self.demand[positions], self.volunteer[positions], self.km[positions], self.arrays,
                          self.removed_busy, self.removed_hours)


def _group(keys: np.ndarray) -> dict[int, np.ndarray]:
    if len(keys) == 0:
        return {}
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    cuts = np.flatnonzero(np.diff(sorted_keys)) + 1
    return {int(g[0]): p for g, p in zip(np.split(sorted_keys, cuts), np.split(order, cuts), strict=True)}


# ---------------------------------------------------------------- spatial grid


@dataclass
class _Grid:
    cell_lat: float
    cell_lon: float
    cells: dict[tuple[int, int], np.ndarray]
    single: bool

    def near(self, lat: float, lon: float) -> list[np.ndarray]:
        """Volunteer index arrays of the 3 × 3 cells around a point (all cells for a single-cell grid)."""
        if self.single:
            return list(self.cells.values())
        iy, ix = math.floor(lat / self.cell_lat), math.floor(lon / self.cell_lon)
        out = []
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                cell = self.cells.get((iy + dy, ix + dx))
                if cell is not None:
                    out.append(cell)
        return out


def _build_grids(inst: Instance, arrays: VolunteerArrays) -> list[_Grid]:
    """One grid per power-of-two travel-range class; a cell is at least the class's radius wide."""
    n = len(arrays.lat)
    if n == 0:
        return []
    radius = arrays.max_km / inst.detour_factor + 1e-6
    cls = np.ceil(np.log2(np.maximum(radius, 0.25))).astype(int)
    lats = np.concatenate([arrays.lat, [d.lat for d in inst.demands]])
    lons = np.concatenate([arrays.lon, [d.lon for d in inst.demands]])
    grids = []
    for c in np.unique(cls):
        members = np.flatnonzero(cls == c)
        reach = 2.0**c * 1.05
        cell_lat = reach / KM_PER_DEGREE
        max_lat = min(90.0, float(np.max(np.abs(lats))) + cell_lat)
        cos_lat = math.cos(math.radians(max_lat))
        cell_lon = reach / (KM_PER_DEGREE * cos_lat) if cos_lat > 0.02 else 400.0
        near_antimeridian = bool(np.any(np.abs(lons) > 180.0 - 2 * cell_lon))
        if cell_lat > 20.0 or cell_lon > 20.0 or near_antimeridian:
            grids.append(_Grid(cell_lat, cell_lon, {(0, 0): members}, True))
            continue
        iy = np.floor(arrays.lat[members] / cell_lat).astype(np.int64)
        ix = np.floor(arrays.lon[members] / cell_lon).astype(np.int64)
        cells: dict[tuple[int, int], list[int]] = defaultdict(list)
        for m, y, x in zip(members.tolist(), iy.tolist(), ix.tolist(), strict=True):
            cells[(y, x)].append(m)
        grids.append(_Grid(cell_lat, cell_lon, {k: np.array(v) for k, v in cells.items()}, False))
    return grids


def nearby_volunteers(grids: list[_Grid], lat: float, lon: float) -> np.ndarray:
    """Indices of volunteers whose travel-range class could reach the point."""
    parts = [cell for g in grids for cell in g.near(lat, lon)]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


# ---------------------------------------------------------------- building


def build_candidates(inst: Instance, arrays: VolunteerArrays | None = None) -> Candidates:
    """All pairs passing rules 1–6 (plus override pins), minus pairs ruled out by commitments."""
    arrays = arrays or build_volunteer_arrays(inst)
    grids = _build_grids(inst, arrays)
    forbidden: dict[int, set[int]] = defaultdict(set)
    for did, vid in inst.forbidden:
        forbidden[inst.demand_index[did]].add(inst.volunteer_index[vid])
    dem, vol, kms = [], [], []
    near: dict[tuple, np.ndarray] = {}
    # Rule 4 per time slot over all volunteers at once, when an instance has few distinct slots.
    n_slots = len({(d.start, d.end) for d in inst.demands})
    everyone = np.arange(len(inst.volunteers))
    slot_masks: dict[tuple[int, int], np.ndarray] | None = \
        {} if n_slots * len(everyone) <= SLOT_MASK_CELLS and n_slots * 4 <= len(inst.demands) else None
    static: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
    for di, d in enumerate(inst.demands):
        # Rules 1, 2, 3 and 5 depend only on the place and the demand's requirements, which many
        # demands share (a resident's visits, a community's weekly activities): worked out once each.
        key = (d.lat, d.lon, d.skills, d.skills_any, d.gender, d.organizations)
        found = static.get(key)
        if found is None:
            idx = near.get(key[:2])
            if idx is None:
                idx = near[key[:2]] = nearby_volunteers(grids, d.lat, d.lon)
            if len(idx):
                mask = arrays.skills_mask(d.skills, d.skills_any, idx)
                mask &= arrays.gender_mask(d.gender, idx)
                mask &= arrays.organization_mask(d.organizations, idx)
                idx = idx[mask]
            km = arrays.range_km(d.lat, d.lon, idx, inst.detour_factor)
            keep = km <= arrays.max_km[idx] + EPS
            idx, km = idx[keep], km[keep]
            order = np.argsort(km, kind="stable")
            found = static[key] = (idx[order].astype(np.int64), km[order])
        sub, km = found
        if len(sub) == 0:
            continue
        if slot_masks is None:
            keep = arrays.availability_mask(d.start, d.end, sub)  # rule 4
        else:
            slot = slot_masks.get((d.start, d.end))
            if slot is None:
                slot = slot_masks[(d.start, d.end)] = arrays.availability_mask(d.start, d.end, everyone)
            keep = slot[sub]
        if di in forbidden:  # rule 6
            keep &= ~np.isin(sub, list(forbidden[di]))
        dem.append(np.full(int(keep.sum()), di, dtype=np.int64))
        vol.append(sub[keep])
        kms.append(km[keep])
    cands = Candidates(
        demand=np.concatenate(dem) if dem else np.zeros(0, dtype=np.int64),
        volunteer=np.concatenate(vol) if vol else np.zeros(0, dtype=np.int64),
        km=np.concatenate(kms) if kms else np.zeros(0),
        arrays=arrays,
    )
    _add_override_pins(inst, cands)
    _drop_pairs_blocked_by_commitments(inst, cands)
    return cands


def _add_override_pins(inst: Instance, cands: Candidates) -> None:
    """Pins with override are candidates whatever rules 1–6 say."""
    overrides = [p for p in inst.pinned if p.override]
    if not overrides:
        return
    have = set(zip(cands.demand.tolist(), cands.volunteer.tolist(), strict=True))
    extra = []
    for pin in overrides:
        di, vi = inst.demand_index[pin.demand], inst.volunteer_index[pin.volunteer]
        if (di, vi) not in have:
            d, v = inst.demands[di], inst.volunteers[vi]
            km = float(distance_km(v.lat, v.lon, d.lat, d.lon, inst.detour_factor))
            extra.append((di, vi, km))
    if extra:
        _append(cands, extra)


def _append(cands: Candidates, extra: list[tuple[int, int, float]]) -> None:
    dem = np.concatenate([cands.demand, [e[0] for e in extra]]).astype(np.int64)
    vol = np.concatenate([cands.volunteer, [e[1] for e in extra]]).astype(np.int64)
    km = np.concatenate([cands.km, [e[2] for e in extra]])
    order = np.lexsort((km, dem))
    cands.demand, cands.volunteer, cands.km = dem[order], vol[order], km[order]


def _drop_pairs_blocked_by_commitments(inst: Instance, cands: Candidates) -> None:
    """Remove pairs that overlap (with travel) a fixed commitment or exceed the minutes left."""
    if len(cands) == 0:
        return
    minutes_left = np.array([v.max_minutes - v.committed_minutes for v in inst.volunteers], dtype=np.int64)
    duration = np.array([d.minutes for d in inst.demands], dtype=np.int64)
    too_long = duration[cands.demand] > minutes_left[cands.volunteer]
    busy = np.zeros(len(cands), dtype=bool)
    most = max((len(v.commitments) for v in inst.volunteers), default=0)
    if most:
        # Rule 7 against each volunteer's j-th commitment, for all pairs at once (the same test as
        # `validation.items_conflict`: the gap from the earlier item's end to the later one's start
        # must cover the travel between them).
        nv = len(inst.volunteers)
        cs, ce = np.full((most, nv), np.nan), np.full((most, nv), np.nan)
        clat, clon = np.zeros((most, nv)), np.zeros((most, nv))
        for vi, v in enumerate(inst.volunteers):
            for j, c in enumerate(v.commitments):
                cs[j, vi], ce[j, vi], clat[j, vi], clon[j, vi] = c.start, c.end, c.lat, c.lon
        pos = np.flatnonzero(~np.isnan(cs[0])[cands.volunteer] & ~too_long)
        dem, vol = cands.demand[pos], cands.volunteer[pos]
        ds = np.array([d.start for d in inst.demands], dtype=float)[dem]
        de = np.array([d.end for d in inst.demands], dtype=float)[dem]
        dlat = np.array([d.lat for d in inst.demands])[dem]
        dlon = np.array([d.lon for d in inst.demands])[dem]
        hit = np.zeros(len(pos), dtype=bool)
        for j in range(most):
            s_, e_ = cs[j, vol], ce[j, vol]
            has = ~np.isnan(s_)
            gap = np.where(s_ < ds, ds - e_, s_ - de)
            km = distance_km(clat[j, vol], clon[j, vol], dlat, dlon, inst.detour_factor)
            hit |= has & (gap < km / inst.speed_kmh * 60.0 - EPS)
        busy[pos] = hit
    for pos in np.flatnonzero(too_long).tolist():
        di = int(cands.demand[pos])
        cands.removed_hours[di] = cands.removed_hours.get(di, 0) + 1
    for pos in np.flatnonzero(busy).tolist():
        di = int(cands.demand[pos])
        cands.removed_busy[di] = cands.removed_busy.get(di, 0) + 1
    keep = ~(too_long | busy)
    cands.demand, cands.volunteer, cands.km = cands.demand[keep], cands.volunteer[keep], cands.km[keep]
