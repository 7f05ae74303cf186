"""Invalid input: each kind of bad field gives INVALID_INPUT with a message naming item and field."""

from __future__ import annotations

import copy

import pytest

from solver import solve

GOOD = {
    "schema": "linli.instance/1",
    "week_start": "2026-11-30T00:00+08:00",
    "volunteers": [{"id": "v1", "home": {"lat": 29.3, "lon": 107.7}, "max_minutes_per_week": 180,
                    "max_travel_km": 5, "skills": ["a"],
                    "availability": [{"start": "2026-11-30T08:00+08:00", "end": "2026-11-30T12:00+08:00"}],
                    "commitments": [{"start": "2026-12-01T08:00+08:00", "end": "2026-12-01T09:00+08:00",
                                     "location": {"lat": 29.3, "lon": 107.7}}]}],
    "demands": [{"id": "d1", "location": {"lat": 29.3, "lon": 107.7}, "people": 2, "min_people": 1,
                 "start": "2026-11-30T09:00+08:00", "end": "2026-11-30T10:00+08:00"}],
    "pinned": [{"demand": "d1", "volunteer": "v1"}],
    "familiar": [{"resident": "r1", "volunteer": "v1"}],
}


def mutate(path, value):
    doc = copy.deepcopy(GOOD)
    *head, last = path
    target = doc
    for key in head:
        target = target[key]
    if value is DELETE:
        del target[last]
    else:
        target[last] = value
    return doc


DELETE = object()

CASES = [
    ("wrong schema", mutate(["schema"], "linli.instance/2"), ["schema"]),
    ("missing week_start", mutate(["week_start"], DELETE), ["week_start"]),
    ("missing volunteer id", mutate(["volunteers", 0, "id"], DELETE), ["position 0", "'id'"]),
    ("empty volunteer id", mutate(["volunteers", 0, "id"], ""), ["position 0", "'id'"]),
    ("id not a string", mutate(["demands", 0, "id"], 7), ["position 0", "'id'"]),
    ("missing home", mutate(["volunteers", 0, "home"], DELETE), ["'v1'", "'home'"]),
    ("latitude out of range", mutate(["volunteers", 0, "home", "lat"], 91), ["'v1'", "lat"]),
    ("longitude out of range", mutate(["demands", 0, "location", "lon"], -181), ["'d1'", "lon"]),
    ("coordinate not a number", mutate(["demands", 0, "location", "lat"], "29.3"), ["'d1'", "lat"]),
    ("missing availability", mutate(["volunteers", 0, "availability"], DELETE), ["'v1'", "availability"]),
    ("window end before start", mutate(["volunteers", 0, "availability", 0, "end"], "2026-11-30T07:00+08:00"),
     ["'v1'", "availability[0]", "'end'"]),
    ("non-zero seconds", mutate(["demands", 0, "start"], "2026-11-30T09:00:30+08:00"), ["'d1'", "'start'"]),
    ("time without offset", mutate(["demands", 0, "end"], "2026-11-30T10:00"), ["'d1'", "'end'"]),
    ("not a time", mutate(["demands", 0, "end"], "tomorrow"), ["'d1'", "'end'"]),
    ("demand end not after start", mutate(["demands", 0, "end"], "2026-11-30T09:00+08:00"), ["'d1'", "'end'"]),
    ("commitment without location", mutate(["volunteers", 0, "commitments", 0, "location"], DELETE),
     ["'v1'", "commitments[0]", "location"]),
    ("negative minutes", mutate(["volunteers", 0, "max_minutes_per_week"], -1), ["'v1'", "max_minutes_per_week"]),
    ("minutes not an integer", mutate(["volunteers", 0, "max_minutes_per_week"], 60.5),
     ["'v1'", "max_minutes_per_week"]),
    ("negative travel", mutate(["volunteers", 0, "max_travel_km"], -2), ["'v1'", "max_travel_km"]),
    ("negative preferred", mutate(["volunteers", 0, "preferred_minutes_per_week"], -5),
     ["'v1'", "preferred_minutes_per_week"]),
    ("skills not a list", mutate(["volunteers", 0, "skills"], "a"), ["'v1'", "skills"]),
    ("people below one", mutate(["demands", 0, "people"], 0), ["'d1'", "people"]),
    ("people a boolean", mutate(["demands", 0, "people"], True), ["'d1'", "people"]),
    ("min_people above people", mutate(["demands", 0, "min_people"], 3), ["'d1'", "min_people"]),
    ("min_people zero", mutate(["demands", 0, "min_people"], 0), ["'d1'", "min_people"]),
    ("unknown priority", mutate(["demands", 0, "priority"], "critical"), ["'d1'", "priority"]),
    ("one_organization not boolean", mutate(["demands", 0, "one_organization"], "yes"),
     ["'d1'", "one_organization"]),
    ("negative weight", mutate(["weights"], {"travel_km": -1}), ["weights", "travel_km"]),
    ("negative priority weight", mutate(["weights"], {"priority": {"normal": -5}}), ["weights", "normal"]),
    ("zero speed", mutate(["travel"], {"speed_kmh": 0}), ["travel", "speed_kmh"]),
    ("negative detour", mutate(["travel"], {"detour_factor": -1.3}), ["travel", "detour_factor"]),
    ("unknown pinned demand", mutate(["pinned", 0, "demand"], "d9"), ["pinned[0]", "demand", "'d9'"]),
    ("unknown pinned volunteer", mutate(["pinned", 0, "volunteer"], "v9"), ["pinned[0]", "volunteer", "'v9'"]),
    ("override not boolean", mutate(["pinned", 0, "override"], 1), ["pinned[0]", "override"]),
    ("unknown forbidden demand", mutate(["forbidden"], [{"demand": "dx", "volunteer": "v1"}]),
     ["forbidden[0]", "'dx'"]),
    ("unknown previous volunteer", mutate(["previous"], [{"demand": "d1", "volunteer": "vx"}]),
     ["previous[0]", "'vx'"]),
    ("unknown familiar volunteer", mutate(["familiar", 0, "volunteer"], "vx"), ["familiar[0]", "'vx'"]),
    ("pinned and forbidden", mutate(["forbidden"], [{"demand": "d1", "volunteer": "v1"}]),
     ["pinned[0]", "forbidden"]),
    ("volunteers not a list", mutate(["volunteers"], {"v1": {}}), ["volunteers"]),
]


def duplicate(kind: str):
    doc = copy.deepcopy(GOOD)
    doc[kind].append(copy.deepcopy(doc[kind][0]))
    return doc


CASES += [("duplicate volunteer", duplicate("volunteers"), ["position 1", "duplicate", "'v1'"]),
          ("duplicate demand", duplicate("demands"), ["position 1", "duplicate", "'d1'"])]


def test_instance_errors_baseline_is_valid():
    assert solve(GOOD, time_limit=2)["status"] == "OPTIMAL"


@pytest.mark.parametrize(("case", "doc", "words"), CASES, ids=[c[0] for c in CASES])
def test_instance_errors_are_reported_by_item_and_field(case, doc, words):
    solution = solve(doc, time_limit=2)
    assert solution["status"] == "INVALID_INPUT", case
    assert solution["assignments"] == [] and solution["objective"] is None
    for word in words:
        assert word in solution["message"], (case, solution["message"])


@pytest.mark.parametrize("text", ["{not json", "[]", "null", '"linli"', ""])
def test_instance_errors_text_that_is_not_an_instance(text):
    solution = solve(text, time_limit=2)
    assert solution["status"] == "INVALID_INPUT"
    assert solution["message"].startswith("instance")


def test_instance_errors_empty_optional_values_count_as_unset():
    doc = copy.deepcopy(GOOD)
    doc["demands"][0] |= {"gender": "", "skills": [], "priority": "", "resident": "", "category": ""}
    doc["volunteers"][0]["availability"] = []
    solution = solve(doc, time_limit=2)
    assert solution["status"] == "INFEASIBLE"  # the pin now breaks rule 4: valid input, no availability
