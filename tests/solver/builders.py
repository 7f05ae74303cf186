"""Helpers for hand-built solver test instances (times, places, pairs)."""

from __future__ import annotations

WEEK = "2026-11-30T00:00+08:00"
HOME = {"lat": 29.30, "lon": 107.70}
NO_WEIGHTS_BUT_PRIORITY = {
    "travel_km": 0, "over_preferred_hour": 0, "distinct_volunteer_per_resident": 0,
    "familiar_bonus": 0, "keep_previous": 0,
}


def at(day: int, hour: int, minute: int = 0) -> str:
    """An ISO time on day `day` (0 = Monday 2026-11-30) of the test week."""
    return f"2026-{11 if day == 0 else 12}-{30 if day == 0 else day:02d}T{hour:02d}:{minute:02d}+08:00"


def north(km: float) -> dict:
    """A point `km` kilometres of great-circle distance north of HOME."""
    return {"lat": HOME["lat"] + km / (6371.0 * 3.141592653589793 / 180.0), "lon": HOME["lon"]}


def pairs(solution: dict) -> set[tuple[str, str]]:
    """The (demand, volunteer) pairs of a solution."""
    return {(a["demand"], a["volunteer"]) for a in solution["assignments"]}
