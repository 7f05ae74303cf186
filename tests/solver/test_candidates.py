"""Candidate pairs: the grid and NumPy masks give exactly the pairs the scalar rules 1–6 allow."""

from __future__ import annotations

import numpy as np
import pytest

from solver.candidates import build_candidates
from solver.generate import generate_instance
from solver.instance import parse_instance
from solver.validation import gap_conflict, pair_rule_failures


@pytest.fixture(scope="module")
def township():
    doc = generate_instance("township", 7)
    doc["forbidden"] = [{"demand": "d3", "volunteer": v["id"]} for v in doc["volunteers"][:50]]
    # A few volunteers with very long and zero travel ranges exercise the range classes.
    doc["volunteers"][0]["max_travel_km"] = 500
    doc["volunteers"][1]["max_travel_km"] = 0
    return parse_instance(doc)


def scalar_pairs(inst) -> set[tuple[int, int]]:
    """Brute force over every pair with the plain-Python rules, minus commitment clashes."""
    out = set()
    for di, d in enumerate(inst.demands):
        for vi, v in enumerate(inst.volunteers):
            if pair_rule_failures(inst, d, v):
                continue
            if v.committed_minutes + d.minutes > v.max_minutes:
                continue
            if any(gap_conflict(inst, (d.start, d.end, d.lat, d.lon), (c.start, c.end, c.lat, c.lon))
                   for c in v.commitments):
                continue
            out.add((di, vi))
    return out


def test_candidates_equal_brute_force_rules(township):
    cands = build_candidates(township)
    got = set(zip(cands.demand.tolist(), cands.volunteer.tolist(), strict=True))
    assert len(got) == len(cands) > 500
    assert got == scalar_pairs(township)


def test_candidates_sorted_by_demand_then_distance(township):
    cands = build_candidates(township)
    for positions in cands.by_demand().values():
        assert np.all(np.diff(cands.km[positions]) >= 0)
    assert np.all(np.diff(cands.demand) >= 0)


def test_candidates_override_pin_added_despite_rules(make_instance, make_volunteer, make_demand):
    doc = make_instance([make_volunteer()], [make_demand(skills=["legal"])],
                        pinned=[{"demand": "d1", "volunteer": "v1", "override": True}])
    cands = build_candidates(parse_instance(doc))
    assert list(zip(cands.demand.tolist(), cands.volunteer.tolist(), strict=True)) == [(0, 0)]
