"""The coordinator's greedy schedule: the benchmark baseline and the solver's warm start.

Demands are taken by priority, then start time; each gets the nearest free eligible volunteers
(volunteers already serving the resident, familiar or kept from `previous` first), respecting every hard
rule. Pins are placed first; `seed` pairs (the previous schedule, in a repair) next where they still fit.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from solver.candidates import Candidates
from solver.instance import Instance
from solver.validation import gap_conflict


@dataclass
class Schedule:
    """A schedule as index pairs plus the responsible organization of one_organization demands."""

    pairs: list[tuple[int, int]] = field(default_factory=list)
    responsible: dict[int, str] = field(default_factory=dict)


class _Board:
    """Each volunteer's booked items and minutes, for feasibility checks."""

    def __init__(self, inst: Instance):
        self.inst = inst
        self.items: dict[int, list[tuple]] = defaultdict(list)
        self.minutes = [v.committed_minutes for v in inst.volunteers]
        for vi, v in enumerate(inst.volunteers):
            for c in v.commitments:
                self.items[vi].append((c.start, c.end, c.lat, c.lon))

    def fits(self, vi: int, di: int) -> bool:
        """Rules 7 and 8: can volunteer `vi` also take demand `di`?"""
        d = self.inst.demands[di]
        if self.minutes[vi] + d.minutes > self.inst.volunteers[vi].max_minutes:
            return False
        item = (d.start, d.end, d.lat, d.lon)
        return not any(gap_conflict(self.inst, item, other) for other in self.items[vi])

    def book(self, vi: int, di: int) -> None:
        """Record that `vi` serves `di`."""
        d = self.inst.demands[di]
        self.minutes[vi] += d.minutes
        self.items[vi].append((d.start, d.end, d.lat, d.lon))

    def release(self, vi: int, di: int) -> None:
        """Undo `book`."""
        d = self.inst.demands[di]
        self.minutes[vi] -= d.minutes
        self.items[vi].remove((d.start, d.end, d.lat, d.lon))


def _pair_value(inst: Instance, di: int, vi: int, km: float) -> float:
    """Marginal score of adding the pair, ignoring the over-preferred and continuity terms."""
    w = inst.weights
    d, v = inst.demands[di], inst.volunteers[vi]
    value = w.priority[d.priority] - w.travel_km * km
    if d.resident is not None and (d.resident, v.id) in inst.familiar:
        value += w.familiar_bonus
    if (d.id, v.id) in inst.previous:
        value += w.keep_previous
    return value


def build_greedy(
    inst: Instance,
    cands: Candidates,
    positions: np.ndarray | None = None,
    seed: list[tuple[int, int]] | None = None,
    fixed: Schedule | None = None,
) -> Schedule:
    """Greedy schedule over the candidate pairs at `positions` (all when None). `fixed` is a valid
    schedule kept as it is and completed (used to fill what region-split parts left open)."""
    positions = np.arange(len(cands)) if positions is None else np.sort(positions)
    board = _Board(inst)
    team: dict[int, list[int]] = defaultdict(list)
    serving: dict[str, set[int]] = defaultdict(set)
    options: dict[int, list[tuple[int, float]]] = defaultdict(list)
    for p in positions.tolist():
        options[int(cands.demand[p])].append((int(cands.volunteer[p]), float(cands.km[p])))
    pinned: dict[int, list[int]] = defaultdict(list)
    for pin in inst.pinned:
        di, vi = inst.demand_index[pin.demand], inst.volunteer_index[pin.volunteer]
        if di in options and any(v == vi for v, _ in options[di]):
            pinned[di].append(vi)
            board.book(vi, di)
            team[di].append(vi)
    for di, vi in fixed.pairs if fixed else []:
        if vi not in team[di]:
            pinned[di].append(vi)
            board.book(vi, di)
            team[di].append(vi)
    seeded: dict[int, list[int]] = defaultdict(list)
    for di, vi in seed or []:
        if di in options and vi not in team[di] and any(v == vi for v, _ in options[di]):
            seeded[di].append(vi)
    # Seed pairs (the published schedule in a repair) stay where they still fit: placed before any
    # demand is filled, so a neighbour's demand cannot take a volunteer who is kept elsewhere.
    for di in sorted(seeded, key=lambda di: -inst.weights.priority[inst.demands[di].priority]):
        for vi in seeded[di]:
            if len(team[di]) < inst.demands[di].people and board.fits(vi, di) and \
                    _shares_organization(inst, di, team[di] + [vi]):
                board.book(vi, di)
                team[di].append(vi)
    # Demands whose pins are short of the minimum team go first: without them the schedule is invalid.
    order = sorted(options, key=lambda di: (not (pinned[di] and len(team[di]) < inst.demands[di].min_people),
                                            -inst.weights.priority[inst.demands[di].priority],
                                            inst.demands[di].start, di))
    schedule = Schedule()
    for di in order:
        d = inst.demands[di]
        ranked = sorted(
            options[di],
            key=lambda o: (o[0] not in seeded[di],
                           not (d.resident and (o[0] in serving[d.resident]
                                                or (d.resident, inst.volunteers[o[0]].id) in inst.familiar)),
                           o[1]),
        )
        orgs = _organization_choices(inst, di, ranked, team[di])
        best: tuple | None = None
        for org in orgs:
            chosen = _fill(inst, board, di, ranked, team[di], org)
            if best is None or len(chosen) > len(best[1]):
                best = (org, chosen)
            for vi in chosen:
                board.release(vi, di)
        org, chosen = best if best is not None else (None, [])
        members = team[di] + chosen
        if len(members) < d.min_people and not pinned[di]:
            for vi in team[di]:
                board.release(vi, di)
            team[di] = []
            continue
        for vi in chosen:
            board.book(vi, di)
        team[di] = members
        if members and d.resident:
            serving[d.resident].update(members)
        if members and d.one_organization and org is not None:
            schedule.responsible[di] = org
    schedule.pairs = [(di, vi) for di in sorted(team) for vi in team[di]]
    return schedule


def _shares_organization(inst: Instance, di: int, members: list[int]) -> bool:
    """For a one_organization demand: some eligible organization has every member."""
    d = inst.demands[di]
    if not d.one_organization:
        return True
    common = set.intersection(*(set(inst.volunteers[vi].organizations) for vi in members))
    return bool(common & d.organizations) if d.organizations else bool(common)


def _organization_choices(inst: Instance, di: int, ranked: list, fixed: list[int]) -> list[str | None]:
    """Organizations that could take a one_organization demand (None: no such restriction)."""
    d = inst.demands[di]
    if not d.one_organization:
        return [None]
    counts: dict[str, int] = defaultdict(int)
    for vi, _ in ranked:
        for o in inst.volunteers[vi].organizations:
            if not d.organizations or o in d.organizations:
                counts[o] += 1
    orgs = [o for o in counts if all(o in inst.volunteers[vi].organizations for vi in fixed)]
    return sorted(orgs, key=lambda o: (-counts[o], o))[:6]


def _fill(inst: Instance, board: _Board, di: int, ranked: list, fixed: list[int], org: str | None) -> list[int]:
    """Book the best free volunteers for one demand (tentatively) and return them."""
    d = inst.demands[di]
    chosen: list[int] = []
    for vi, km in ranked:
        if len(fixed) + len(chosen) >= d.people:
            break
        if vi in fixed or (org is not None and org not in inst.volunteers[vi].organizations):
            continue
        if _pair_value(inst, di, vi, km) <= 0 or not board.fits(vi, di):
            continue
        board.book(vi, di)
        chosen.append(vi)
    return chosen
