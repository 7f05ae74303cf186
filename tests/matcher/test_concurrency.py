"""Two acceptances at the same moment: never a double booking, never an overfilled demand.

The proof that matters is on PostgreSQL (row locks, `SELECT ... FOR UPDATE`); the same tests
also run on SQLite, where `lock_booking` starts the transaction with `BEGIN IMMEDIATE` instead.
Each case runs twice, the way pretix tests its quotas: first a control run with the locks off that shows
the race really happens (both succeed), then the real run where exactly one wins and the other
gets a Conflict. Two threads, each in its own app context and so its own session and database
connection, meet at a barrier and call `respond_to_offer`; a pause between the checks and the
write makes the race window wide enough to be hit every time.
"""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import func, select

from matcher import assignments
from matcher.db import db as _db
from matcher.errors import Conflict
from matcher.models import Assignment, AssignmentStatus, User

from .test_service import add_demand, first_occurrence, offer, publish

PAUSE_SECONDS = 0.4


@pytest.fixture
def pg(app, db):
    """The app; on SQLite the file database is shared by the threads' connections, so it works too."""
    if db.engine.dialect.name not in ("postgresql", "sqlite"):
        pytest.skip(f"no locking strategy for {db.engine.dialect.name}")
    return app


def race(app, attempts: list[tuple[int, str]], *, lock: bool) -> list[str]:
    """Run one acceptance per (assignment id, username) in parallel threads; return each outcome."""
    barrier = threading.Barrier(len(attempts))
    outcomes: list[str] = [""] * len(attempts)

    def pause() -> None:
        time.sleep(PAUSE_SECONDS)

    def worker(index: int, assignment_id: int, username: str) -> None:
        with app.app_context():
            try:
                user = _db.session.scalar(select(User).where(User.username == username))
                assignment = _db.session.get(Assignment, assignment_id)  # loaded as a request would
                barrier.wait(timeout=10)
                assignments.respond_to_offer(assignment, user=user, accept=True, lock=lock, _pause=pause)
                _db.session.commit()
                outcomes[index] = "accepted"
            except Conflict:
                _db.session.rollback()
                outcomes[index] = "conflict"
            except Exception as exc:  # report, don't hang the other thread
                _db.session.rollback()
                outcomes[index] = f"error: {type(exc).__name__}: {exc}"

    threads = [threading.Thread(target=worker, args=(i, aid, name)) for i, (aid, name) in enumerate(attempts)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    _db.session.expire_all()
    return outcomes


@pytest.fixture
def overlapping_offers(pg, world, next_monday):
    """Two offers to volunteer A at the same time (Monday 09:00–10:30 and 10:00–11:00)."""
    schedule = publish(world, next_monday)
    vol = world["volunteers"]["a"]
    first = offer(schedule, first_occurrence(world["demands"]["a1"]), vol)
    second = offer(schedule, add_demand(world, next_monday, "10:00", "11:00"), vol)
    return [(first.id, "vol_a"), (second.id, "vol_a")]


@pytest.fixture
def one_place(pg, world, next_monday):
    """One occurrence with a single place, offered to volunteers A and B."""
    schedule = publish(world, next_monday)
    occ = add_demand(world, next_monday, "14:00", "15:00", people=1)
    a = offer(schedule, occ, world["volunteers"]["a"])
    b = offer(schedule, occ, world["volunteers"]["b"])
    return occ.id, [(a.id, "vol_a"), (b.id, "vol_b")]


def accepted_count(**where) -> int:
    stmt = select(func.count(Assignment.id)).where(Assignment.status == AssignmentStatus.ACCEPTED)
    for key, value in where.items():
        stmt = stmt.where(getattr(Assignment, key) == value)
    return _db.session.scalar(stmt)


def test_control_without_lock_the_volunteer_is_double_booked(pg, overlapping_offers, world):
    outcomes = race(pg, overlapping_offers, lock=False)
    assert outcomes == ["accepted", "accepted"], "the race did not happen; the locked run proves nothing"
    assert accepted_count(volunteer_id=world["volunteers"]["a"].id) == 2


def test_with_lock_one_of_two_overlapping_acceptances_wins(pg, overlapping_offers, world):
    outcomes = race(pg, overlapping_offers, lock=True)
    assert sorted(outcomes) == ["accepted", "conflict"], outcomes
    assert accepted_count(volunteer_id=world["volunteers"]["a"].id) == 1


def test_control_without_lock_the_occurrence_is_overfilled(pg, one_place):
    occurrence_id, attempts = one_place
    outcomes = race(pg, attempts, lock=False)
    assert outcomes == ["accepted", "accepted"], "the race did not happen; the locked run proves nothing"
    assert accepted_count(occurrence_id=occurrence_id) == 2


def test_with_lock_one_place_goes_to_one_volunteer(pg, one_place):
    occurrence_id, attempts = one_place
    outcomes = race(pg, attempts, lock=True)
    assert sorted(outcomes) == ["accepted", "conflict"], outcomes
    assert accepted_count(occurrence_id=occurrence_id) == 1
