"""Fixtures for solver tests: tiny hand-built instances from factory functions."""

from __future__ import annotations

import copy

import pytest

from solver import solve, validate_solution
from tests.solver.builders import HOME, WEEK, at


@pytest.fixture
def make_volunteer():
    """Factory: a volunteer at HOME, free Monday 08:00–12:00, with overrides."""
    def make(vid: str = "v1", **overrides) -> dict:
        base = {
            "id": vid, "home": dict(HOME), "skills": [], "availability": [{"start": at(0, 8), "end": at(0, 12)}],
            "max_minutes_per_week": 480, "max_travel_km": 10,
        }
        return base | overrides
    return make


@pytest.fixture
def make_demand():
    """Factory: a one-person demand at HOME, Monday 09:00–10:00, with overrides."""
    def make(did: str = "d1", **overrides) -> dict:
        base = {"id": did, "location": dict(HOME), "start": at(0, 9), "end": at(0, 10), "people": 1}
        return base | overrides
    return make


@pytest.fixture
def make_instance():
    """Factory: an instance document from volunteers, demands and top-level overrides."""
    def make(volunteers, demands, **top) -> dict:
        doc = {"schema": "linli.instance/1", "name": "test", "week_start": WEEK,
               "volunteers": volunteers, "demands": demands}
        return copy.deepcopy(doc | top)
    return make


@pytest.fixture
def solved():
    """Solve an instance, assert the referee accepts it, return the solution."""
    def run(doc: dict, time_limit: float = 5, **kwargs) -> dict:
        solution = solve(doc, time_limit=time_limit, workers=kwargs.pop("workers", 2), **kwargs)
        if solution["status"] in ("OPTIMAL", "FEASIBLE"):
            violations, score = validate_solution(doc, solution)
            assert violations == []
            assert solution["objective"] <= solution["bound"] + 1e-6
        return solution
    return run

