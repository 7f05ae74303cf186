"""Pins that cannot all hold: each conflicting pin with the rule it breaks (status INFEASIBLE)."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from solver.candidates import Candidates
from solver.instance import Instance
from solver.validation import RULE_NAMES, gap_conflict, pair_rule_failures


def _conflict(demand: str, volunteer: str, rule: int, message: str) -> dict:
    return {"demand": demand, "volunteer": volunteer, "rule": rule,
            "message": f"rule {rule} ({RULE_NAMES[rule]}): {message}"}


def find_pin_conflicts(inst: Instance) -> list[dict]:
    """Every pin that breaks a rule on its own or together with other pins and commitments."""
    out: list[dict] = []
    demands = {d.id: d for d in inst.demands}
    volunteers = {v.id: v for v in inst.volunteers}
    by_volunteer: dict[str, list[str]] = defaultdict(list)
    by_demand: dict[str, list[str]] = defaultdict(list)
    for pin in inst.pinned:
        d, v = demands[pin.demand], volunteers[pin.volunteer]
        by_volunteer[v.id].append(d.id)
        by_demand[d.id].append(v.id)
        if not pin.override:
            for rule in pair_rule_failures(inst, d, v):
                out.append(_conflict(d.id, v.id, rule, f"volunteer {v.id!r} cannot serve demand {d.id!r}"))
    for vid, dids in by_volunteer.items():
        v = volunteers[vid]
        items = [(demands[x].start, demands[x].end, demands[x].lat, demands[x].lon, x) for x in dids]
        for i, a in enumerate(items):
            for b in items[i + 1:]:
                if gap_conflict(inst, a, b):
                    out.append(_conflict(a[4], vid, 7, f"pinned demands {a[4]!r} and {b[4]!r} collide"))
            for c in v.commitments:
                if gap_conflict(inst, a, (c.start, c.end, c.lat, c.lon)):
                    out.append(_conflict(a[4], vid, 7, f"demand {a[4]!r} collides with a commitment"))
        total = v.committed_minutes + sum(demands[x].minutes for x in dids)
        if total > v.max_minutes:
            for x in dids:
                out.append(_conflict(x, vid, 8, f"pins and commitments need {total} of {v.max_minutes} minutes"))
    for did, vids in by_demand.items():
        d = demands[did]
        if len(vids) > d.people:
            for vid in vids:
                out.append(_conflict(did, vid, 9, f"{len(vids)} pins for {d.people} places"))
        if d.one_organization:
            common = set.intersection(*(set(volunteers[x].organizations) for x in vids))
            if d.organizations:
                common &= d.organizations
            if not common:
                for vid in vids:
                    out.append(_conflict(did, vid, 10, "the pinned volunteers share no eligible organization"))
    return out


def unsatisfiable_pin_conflicts(inst: Instance, demand_ids: set[str]) -> list[dict]:
    """Pins in a part the model proved infeasible although each pin is fine alone: usually a team that
    cannot reach `min_people` (rule 9) or one organization (rule 10) around the pins."""
    return [_conflict(p.demand, p.volunteer, 9,
                      f"no valid team around the pins of demand {p.demand!r} (minimum team, organization, "
                      "or other pins of these volunteers)")
            for p in inst.pinned if p.demand in demand_ids]


def find_team_conflicts(inst: Instance, cands: Candidates) -> list[dict]:
    """Pinned demands whose team cannot reach `min_people`: too few other candidates are free around
    the pins (by their own pins and commitments, weekly minutes, and a common organization for
    one_organization demands). A proof of infeasibility naming the pins concerned (rule 9)."""
    pins_of: dict[str, list[str]] = defaultdict(list)
    pinned_demands_of: dict[str, list[str]] = defaultdict(list)
    for pin in inst.pinned:
        pins_of[pin.demand].append(pin.volunteer)
        pinned_demands_of[pin.volunteer].append(pin.demand)
    demands = {d.id: d for d in inst.demands}
    positions = cands.by_demand()
    out = []
    for did, vids in pins_of.items():
        d = demands[did]
        if len(vids) >= d.min_people:
            continue
        free = []
        for p in positions.get(inst.demand_index[did], np.zeros(0, dtype=np.int64)).tolist():
            v = inst.volunteers[int(cands.volunteer[p])]
            if v.id in vids:
                continue
            others = [demands[x] for x in pinned_demands_of[v.id]]
            busy = any(gap_conflict(inst, (d.start, d.end, d.lat, d.lon), (o.start, o.end, o.lat, o.lon))
                       for o in others)
            minutes = v.committed_minutes + d.minutes + sum(o.minutes for o in others)
            if not busy and minutes <= v.max_minutes:
                free.append(v)
        if d.one_organization:
            common = set.intersection(*(set(inst.volunteers[inst.volunteer_index[x]].organizations) for x in vids))
            if d.organizations:
                common &= d.organizations
            best = max((sum(o in v.organizations for v in free) for o in common), default=0)
        else:
            best = len(free)
        if len(vids) + best < d.min_people:
            for vid in vids:
                out.append(_conflict(did, vid, 9, f"demand {did!r} needs {d.min_people} volunteers but at most "
                                                  f"{len(vids) + best} can serve it with its pins"))
    return out
