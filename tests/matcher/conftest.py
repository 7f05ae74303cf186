"""Fixtures shared by the domain tests: the published week of the `world`, an accepted service, and
the first occurrence of demand a1 (`monday`)."""

from __future__ import annotations

import pytest

from matcher.models import AssignmentStatus

from .builders import first_occurrence, offer, publish


@pytest.fixture
def week(world, db, next_monday):
    """The town's published schedule for next week and the first occurrence of demand a1 (Monday 09:00)."""
    schedule = publish(world, next_monday)
    occ = first_occurrence(world["demands"]["a1"])  # Monday 09:00–10:30 at the resident's home in C1
    return {"schedule": schedule, "occ": occ, "monday": next_monday}


@pytest.fixture
def accepted(world, db, week):
    """Volunteer a's accepted assignment on that occurrence."""
    return offer(week["schedule"], week["occ"], world["volunteers"]["a"], status=AssignmentStatus.ACCEPTED)


@pytest.fixture
def monday(world):
    """The first occurrence of demand a1: next Monday 09:00–10:30 at 张大爷's home."""
    return world["demands"]["a1"].occurrences[0]
