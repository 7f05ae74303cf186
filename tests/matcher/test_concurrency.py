"""Two bookings at the same moment: never a double booking, never an overfilled demand.

Every path that can leave a volunteer holding a service or fill a place takes `lock_booking`
first: accepting an offer, a leader handing an accepted service to another member (a swap), and a
coordinator assigning by hand. The proof that matters is on PostgreSQL (row locks, `SELECT ... FOR
UPDATE`); the same tests also run on SQLite, where `lock_booking` starts the transaction with
`BEGIN IMMEDIATE` instead. Each case runs twice, the way pretix tests its quotas: first a control
run with the locks off that shows the race really happens (both succeed), then the real run where
exactly one wins and the other is refused. Two threads, each in its own app context and so its own
session and database connection, meet at a barrier and call the use case; a pause between the
checks and the write makes the race window wide enough to be hit every time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from sqlalchemy import func, select

from matcher import assignments, schedules, teams
from matcher.db import db as _db
from matcher.errors import Conflict, ValidationError
from matcher.models import (
    FILLING,
    Assignment,
    AssignmentStatus,
    DemandOccurrence,
    Membership,
    MemberStatus,
    Schedule,
    ScheduleStatus,
    User,
    Volunteer,
)

from .builders import add_demand, first_occurrence, member, offer, publish

PAUSE_SECONDS = 0.4


@pytest.fixture
def pg(app, db):
    """The app; on SQLite the file database is shared by the threads' connections, so it works too."""
    if db.engine.dialect.name not in ("postgresql", "sqlite"):
        pytest.skip(f"no locking strategy for {db.engine.dialect.name}")
    return app


# One attempt: (username, a function of (user, lock, pause) that runs the use case in the thread's session).
Attempt = tuple[str, Callable[..., object]]


def race_paths(app, attempts: list[Attempt], *, lock: bool) -> list[str]:
    """Run the attempts in parallel threads; each outcome is "ok", "conflict" or "refused"."""
    barrier = threading.Barrier(len(attempts))
    outcomes: list[str] = [""] * len(attempts)

    def pause() -> None:
        time.sleep(PAUSE_SECONDS)

    def worker(index: int, username: str, call) -> None:
        with app.app_context():
            try:
                user = _db.session.scalar(select(User).where(User.username == username))
                prepared = call(user)  # load what a request would load, before the barrier
                barrier.wait(timeout=10)
                prepared(lock, pause)
                _db.session.commit()
                outcomes[index] = "ok"
            except Conflict:
                _db.session.rollback()
                outcomes[index] = "conflict"
            except ValidationError:  # the rule check saw the winner's booking
                _db.session.rollback()
                outcomes[index] = "refused"
            except Exception as exc:  # report, don't hang the other thread
                _db.session.rollback()
                outcomes[index] = f"error: {type(exc).__name__}: {exc}"

    threads = [threading.Thread(target=worker, args=(i, name, call)) for i, (name, call) in enumerate(attempts)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    _db.session.expire_all()
    return outcomes


def race(app, attempts: list[tuple[int, str]], *, lock: bool) -> list[str]:
    """Accept each (assignment id, username) offer in parallel; outcomes "accepted" or "conflict"."""
    def accepting(assignment_id: int):
        def prepare(user):
            assignment = _db.session.get(Assignment, assignment_id)  # loaded as a request would
            return lambda lock, pause: assignments.respond_to_offer(assignment, user=user, accept=True,
                                                                    lock=lock, _pause=pause)
        return prepare

    outcomes = race_paths(app, [(name, accepting(aid)) for aid, name in attempts], lock=lock)
    return ["accepted" if o == "ok" else o for o in outcomes]


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


# --------------------------------------------------------------------------- a swap hands over an accepted service


def approved_member(world, name: str, phone: str, username: str) -> Volunteer:
    """A new approved member of organization A who can sign in, free on Mondays and Thursdays."""
    vol = member(world, _db, name, phone, username=username, gender="F", skills="elder_care,first_aid",
                 availability="0 08:00-12:00; 3 08:00-12:00")
    _db.session.commit()
    return vol


@pytest.fixture
def two_accepted_services(pg, world, next_monday):
    """Two accepted services of organization A at the same hour, by A and by another member, and a
    third member C free then: handing both to C at once would book C twice."""
    schedule = publish(world, next_monday)
    org = world["orgs"]["a"]
    other = approved_member(world, "周敏", "13811113333", "vol_zhou")
    spare = approved_member(world, "陈红", "13811112222", "vol_chen")
    first = offer(schedule, first_occurrence(world["demands"]["a1"]), world["volunteers"]["a"],
                  status=AssignmentStatus.ACCEPTED)
    second = offer(schedule, add_demand(world, next_monday, "09:00", "10:30", community="a1"), other,
                   status=AssignmentStatus.ACCEPTED)
    for a in (first, second):
        a.organization_id = org.id
    _db.session.commit()
    return spare.id, [first.id, second.id]


def swapping(assignment_id: int, volunteer_id: int):
    def prepare(user):
        assignment = _db.session.get(Assignment, assignment_id)
        volunteer = _db.session.get(Volunteer, volunteer_id)
        return lambda lock, pause: teams.swap_member(assignment, volunteer, user=user, lock=lock, _pause=pause)
    return prepare


def held_by(volunteer_id: int) -> int:
    return _db.session.scalar(select(func.count(Assignment.id)).where(
        Assignment.volunteer_id == volunteer_id, Assignment.status == AssignmentStatus.ACCEPTED))


def test_control_without_lock_two_swaps_book_one_member_twice(pg, two_accepted_services):
    spare, services = two_accepted_services
    outcomes = race_paths(pg, [("leader_a", swapping(a, spare)) for a in services], lock=False)
    assert outcomes == ["ok", "ok"], "the race did not happen; the locked run proves nothing"
    assert held_by(spare) == 2


def test_with_lock_only_one_swap_books_the_member(pg, two_accepted_services):
    spare, services = two_accepted_services
    outcomes = race_paths(pg, [("leader_a", swapping(a, spare)) for a in services], lock=True)
    assert sorted(outcomes) in (["conflict", "ok"], ["ok", "refused"]), outcomes
    assert held_by(spare) == 1


# --------------------------------------------------------------------------- two coordinators, one last place


@pytest.fixture
def last_place(pg, world, next_monday):
    """A draft township week with an occurrence of one place, and two volunteers to put on it."""
    schedule = Schedule(area=world["areas"]["town_a"], week_start=next_monday, status=ScheduleStatus.DRAFT)
    _db.session.add(schedule)
    # Volunteer b lives in the other township: an approved member of organization a, which serves
    # town_a, so b is in the township's pool.
    _db.session.add(Membership(organization=world["orgs"]["a"], volunteer=world["volunteers"]["b"],
                               status=MemberStatus.APPROVED))
    _db.session.commit()
    occ = add_demand(world, next_monday, "09:00", "10:00", people=1)
    return schedule.id, occ.id, [world["volunteers"]["a"].id, world["volunteers"]["b"].id]


def assigning(schedule_id: int, occurrence_id: int, volunteer_id: int):
    def prepare(user):
        schedule = _db.session.get(Schedule, schedule_id)
        occurrence = _db.session.get(DemandOccurrence, occurrence_id)
        volunteer = _db.session.get(Volunteer, volunteer_id)
        return lambda lock, pause: schedules.assign_by_hand(
            schedule, occurrence, volunteer, user=user, override_reason="agreed by phone", lock=lock,
            _pause=pause)
    return prepare


def filling(occurrence_id: int) -> int:
    return _db.session.scalar(select(func.count(Assignment.id)).where(
        Assignment.occurrence_id == occurrence_id, Assignment.status.in_(FILLING)))


def test_control_without_lock_two_hand_edits_overfill_the_occurrence(pg, last_place):
    schedule_id, occurrence_id, volunteers = last_place
    attempts = [("coord", assigning(schedule_id, occurrence_id, volunteers[0])),
                ("coord_a", assigning(schedule_id, occurrence_id, volunteers[1]))]
    assert race_paths(pg, attempts, lock=False) == ["ok", "ok"], "the race did not happen"
    assert filling(occurrence_id) == 2


def test_with_lock_the_last_place_goes_to_one_hand_edit(pg, last_place):
    schedule_id, occurrence_id, volunteers = last_place
    attempts = [("coord", assigning(schedule_id, occurrence_id, volunteers[0])),
                ("coord_a", assigning(schedule_id, occurrence_id, volunteers[1]))]
    assert sorted(race_paths(pg, attempts, lock=True)) == ["conflict", "ok"]
    assert filling(occurrence_id) == 1
