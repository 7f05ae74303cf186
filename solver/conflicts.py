"""Pins that cannot all hold: each conflicting pin with the rule it breaks (status INFEASIBLE)."""

from __future__ import annotations

from collections import defaultdict

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
