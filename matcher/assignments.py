"""Use cases that change an assignment (one volunteer on one occurrence) after it was made.

Answering an offer, checking in and out, the community worker confirming a service and
recording the resident's rating, crediting hours, withdrawing offers, and the one refresh of an
occurrence's status that every path calls after changing who is on it. Each function validates,
flushes and never commits; the caller commits.

Booking safety (a volunteer is never booked on two overlapping services, an occurrence is never
overfilled) rests on `lock_booking`: every path that can leave a volunteer holding a service or
fill a place (accepting here, a swap in `teams`, a hand edit in `schedules`) calls it before its
checks. It takes the volunteer's row and then the occurrence's row, always in that order, so two
bookings that touch the same volunteer or the same occurrence run one after the other:

- PostgreSQL: `SELECT ... FOR UPDATE` on both rows (READ COMMITTED, so the checks that follow see
  whatever the other transaction committed while we waited);
- SQLite: `FOR UPDATE` does nothing there, so the transaction is started with `BEGIN IMMEDIATE`,
  which takes the database's single write lock at once; a second writer waits (the driver's busy
  timeout) until the first commits, and its checks then read the committed state. When the
  connection is already inside a write transaction it holds that lock already.
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.orm import selectinload

from . import rules
from .access import can_change
from .audit import record_audit
from .clock import local_now
from .db import db, flush_or_conflict
from .errors import AccessDenied, Conflict, DomainError, ValidationError
from .fields import Fields
from .models import (
    BOOKED,
    CLOSED,
    FILLING,
    HELD,
    PENDING,
    Assignment,
    AssignmentStatus,
    DemandOccurrence,
    DemandStatus,
    User,
    Volunteer,
    utcnow,
)
from .notifications import demand_link, tell_coordinators, tell_volunteers
from .settings import setting
from .volunteers import volunteer_of

# Check-in opens this long before the start.
CHECKIN_EARLY = timedelta(minutes=60)
STALE_OFFER = _l("This offer changed in the meantime; reload the page and try again.")
STALE_ASSIGNMENT = _l("This service was changed meanwhile (e.g. a volunteer checked in); reload and try again.")


# --------------------------------------------------------------------------- the booking lock


def lock_booking(volunteer_id: int, occurrence_id: int) -> None:
    """Serialize bookings that touch this volunteer or this occurrence (see the module docstring)."""
    lock_bookings([volunteer_id], [occurrence_id])


def lock_bookings(volunteer_ids: Iterable[int], occurrence_ids: Iterable[int]) -> None:
    """`lock_booking` for many rows at once (applying a run): all volunteers, then all occurrences,
    each in id order, so it cannot deadlock with single bookings that take the same order."""
    connection = db.session.connection()
    if connection.dialect.name == "sqlite":
        raw = connection.connection.dbapi_connection
        if not raw.in_transaction:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        return
    volunteer_ids, occurrence_ids = sorted(set(volunteer_ids)), sorted(set(occurrence_ids))
    if volunteer_ids:
        db.session.execute(select(Volunteer.id).where(Volunteer.id.in_(volunteer_ids))
                           .order_by(Volunteer.id).with_for_update())
    if occurrence_ids:
        db.session.execute(select(DemandOccurrence.id).where(DemandOccurrence.id.in_(occurrence_ids))
                           .order_by(DemandOccurrence.id).with_for_update())


def booking_clash(volunteer_id: int, occurrence: DemandOccurrence, *, exclude: int | None = None) -> Assignment | None:
    """The volunteer's booked assignment that overlaps `occurrence` (travel time included), if any."""
    demand = occurrence.demand
    window = timedelta(hours=12)
    stmt = (select(Assignment).join(DemandOccurrence, Assignment.occurrence_id == DemandOccurrence.id)
            .where(Assignment.volunteer_id == volunteer_id, Assignment.status.in_(BOOKED),
                   DemandOccurrence.starts_at < occurrence.ends_at + window,
                   DemandOccurrence.ends_at > occurrence.starts_at - window)
            .execution_options(populate_existing=True))
    if exclude is not None:
        stmt = stmt.where(Assignment.id != exclude)
    for other in db.session.scalars(stmt):
        o = other.occurrence
        if rules.too_close(occurrence.starts_at, occurrence.ends_at, demand.lat, demand.lon,
                           o.starts_at, o.ends_at, o.demand.lat, o.demand.lon):
            return other
    return None


def clash_message(clash: Assignment, *, own: bool) -> str:
    """Why a booking is refused: the overlapping service, named (to the volunteer, or about them)."""
    when = clash.occurrence.starts_at.strftime("%Y-%m-%d %H:%M")
    if own:
        return str(_l("You already accepted “%(t)s” on %(when)s, which overlaps this one (travel time "
                      "included).", t=clash.occurrence.demand.title, when=when))
    return str(_l("%(n)s already has “%(t)s” on %(when)s, which overlaps this one (travel time included).",
                  n=clash.volunteer.real_name, t=clash.occurrence.demand.title, when=when))


def booked_places(occurrence_id: int, *, exclude: int | None = None) -> int:
    """How many volunteers hold a place on the occurrence for good (accepted, checked in or done)."""
    stmt = select(func.count(Assignment.id)).where(Assignment.occurrence_id == occurrence_id,
                                                   Assignment.status.in_(BOOKED))
    if exclude is not None:
        stmt = stmt.where(Assignment.id != exclude)
    return db.session.scalar(stmt) or 0


def filled_places(occurrence_id: int) -> int:
    """How many places of the occurrence are taken while planning (proposals and offers included)."""
    return db.session.scalar(select(func.count(Assignment.id)).where(
        Assignment.occurrence_id == occurrence_id, Assignment.status.in_(FILLING))) or 0


def check_bookable(volunteer_id: int, occurrence: DemandOccurrence, *, exclude: int | None = None,
                   own: bool = True) -> None:
    """Refuse (Conflict) booking the volunteer on a cancelled, past or full occurrence, or over a clash.

    `exclude` is an assignment left out of both checks (the offer being accepted, the service being
    handed over). Call it after `lock_booking`, so that it reads what any competing booking committed.
    """
    if occurrence.status == DemandStatus.CANCELLED or occurrence.demand.status == DemandStatus.CANCELLED:
        raise Conflict(str(_l("This service was cancelled.")))
    if occurrence.ends_at <= local_now():
        raise Conflict(str(_l("This service is over; it can no longer be accepted.")))
    clash = booking_clash(volunteer_id, occurrence, exclude=exclude)
    if clash is not None:
        raise Conflict(clash_message(clash, own=own))
    if booked_places(occurrence.id, exclude=exclude) >= occurrence.demand.people:
        raise Conflict(str(_l("This service already has all the volunteers it needs.")))


# --------------------------------------------------------------------------- occurrence status


def refresh_occurrence_status(occurrences: Iterable[DemandOccurrence]) -> None:
    """Scheduled when the minimum team is on it (proposals and offers count), else open; closed ones stay."""
    occurrences = [o for o in occurrences if o.status not in CLOSED]
    if not occurrences:
        return
    db.session.flush()
    counts = Counter(db.session.scalars(select(Assignment.occurrence_id).where(
        Assignment.occurrence_id.in_([o.id for o in occurrences]), Assignment.status.in_(FILLING))))
    for occ in occurrences:
        occ.status = DemandStatus.SCHEDULED if counts[occ.id] >= occ.demand.min_people else DemandStatus.OPEN


def withdraw(assignments: Iterable[Assignment], why: Any = "") -> dict[str, int]:
    """Take unanswered offers back and tell who is affected; the occurrence no longer needs them.

    Proposals (never shown) are simply removed; offers are removed and their volunteers told;
    volunteers who had accepted keep their record and are told the service no longer takes place.
    Returns counts {"withdrawn", "told"}.
    """
    assignments = list(assignments)
    offered = [a for a in assignments if a.status == AssignmentStatus.OFFERED]
    held = [a for a in assignments if a.status in HELD]
    told = tell_volunteers("offer_withdrawn", offered, why) + tell_volunteers("service_cancelled", held, why)
    withdrawn = 0
    for a in assignments:
        if a.status in PENDING:
            db.session.delete(a)
            withdrawn += 1
    return {"withdrawn": withdrawn, "told": told}


def issue_checkin_codes(occurrences: Iterable[DemandOccurrence]) -> None:
    """Give each occurrence without one its six-digit check-in code."""
    for occ in occurrences:
        if not occ.checkin_code:
            occ.checkin_code = f"{secrets.randbelow(10**6):06d}"


# --------------------------------------------------------------------------- answering an offer


def _own_assignment(assignment: Assignment, user: User) -> Volunteer:
    volunteer = volunteer_of(user)
    if volunteer is None or assignment.volunteer_id != volunteer.id:
        raise AccessDenied(str(_l("This offer is not yours.")))
    return volunteer


def respond_to_offer(assignment: Assignment, *, user: User, accept: bool, reason: str = "",
                     lock: bool = True, _pause: Callable[[], None] | None = None) -> Assignment:
    """Accept or decline an offer made to the user's own volunteer profile.

    Accepting is refused (Conflict) when the volunteer already holds an overlapping service,
    travel time between the two places included, or when the occurrence is already full.
    Declining needs a reason and tells the area's coordinators that a gap opened.
    `lock=False` skips the row locks; it exists only for the control run of the concurrency test.
    `_pause` (tests only) is called between the checks and the write.
    """
    volunteer = _own_assignment(assignment, user)
    reason = (reason or "").strip()
    if not accept:
        if not reason:
            raise ValidationError({"reason": str(_l("Say why you decline, so the coordinator can plan."))})
        if len(reason) > 200:
            raise ValidationError({"reason": str(_l("At most %(n)d characters.", n=200))})
    if lock:
        lock_booking(volunteer.id, assignment.occurrence_id)
        try:
            db.session.refresh(assignment)
        except InvalidRequestError:  # the row is gone: a repair run withdrew the offer meanwhile
            raise Conflict(str(_l("This offer was withdrawn; see your other offers."))) from None
    if assignment.status != AssignmentStatus.OFFERED:
        raise Conflict(str(_l("This offer is no longer open (it is %(s)s).", s=assignment.status.value)))
    occurrence = assignment.occurrence
    if accept:
        check_bookable(volunteer.id, occurrence, exclude=assignment.id)
    if _pause is not None:
        _pause()
    assignment.responded_at = utcnow()
    if accept:
        assignment.status = AssignmentStatus.ACCEPTED
        flush_or_conflict(STALE_OFFER)
        record_audit(user, "accept", assignment, occurrence=occurrence.id)
    else:
        assignment.status = AssignmentStatus.DECLINED
        assignment.decline_reason = reason
        flush_or_conflict(STALE_OFFER)
        refresh_occurrence_status([occurrence])
        demand = occurrence.demand
        tell_coordinators(demand.community, "offer_declined",
                          _l("A volunteer declined “%(t)s” on %(when)s: %(r)s", t=demand.title,
                             when=occurrence.starts_at.strftime("%Y-%m-%d %H:%M"), r=reason),
                          demand_link(demand.id))
        record_audit(user, "decline", assignment, occurrence=occurrence.id)
    db.session.flush()
    return assignment


# --------------------------------------------------------------------------- check-in and check-out


def _check_code(occurrence: DemandOccurrence, code: str) -> None:
    code = (code or "").strip()
    if not code:
        raise ValidationError({"code": str(_l("Enter the code shown by the community worker or the station."))})
    if not occurrence.checkin_code or not secrets.compare_digest(code, occurrence.checkin_code):
        raise ValidationError({"code": str(_l("This code is not the one for this service; check it and try again."))})


def _held_assignment(occurrence: DemandOccurrence, user: User) -> Assignment:
    volunteer = volunteer_of(user)
    assignment = None
    if volunteer is not None:
        assignment = db.session.scalar(select(Assignment).where(
            Assignment.occurrence_id == occurrence.id, Assignment.volunteer_id == volunteer.id))
    if assignment is None or assignment.status not in BOOKED:
        raise DomainError(str(_l("You have no accepted assignment for this service.")), "occurrence")
    return assignment


def _not_cancelled(occurrence: DemandOccurrence) -> None:
    if occurrence.status == DemandStatus.CANCELLED or occurrence.demand.status == DemandStatus.CANCELLED:
        raise Conflict(str(_l("This service was cancelled.")))


def check_in(occurrence: DemandOccurrence, code: str, *, user: User, now: datetime | None = None) -> Assignment:
    """Check the user in at an occurrence they accepted, with the occurrence's code.

    Allowed from 60 minutes before the start until the end (local time).
    """
    now = now or local_now()
    assignment = _held_assignment(occurrence, user)
    _not_cancelled(occurrence)
    if assignment.status == AssignmentStatus.CHECKED_IN:
        raise Conflict(str(_l("You are already checked in for this service.")))
    if assignment.status != AssignmentStatus.ACCEPTED:
        raise Conflict(str(_l("You are already checked out of this service.")))
    _check_code(occurrence, code)
    opens = occurrence.starts_at - CHECKIN_EARLY
    if now < opens:
        raise DomainError(str(_l("Check-in opens at %(t)s, one hour before the start.",
                                 t=opens.strftime("%Y-%m-%d %H:%M"))), "code")
    if now > occurrence.ends_at:
        raise DomainError(str(_l("This service ended at %(t)s; check-in is closed.",
                                 t=occurrence.ends_at.strftime("%Y-%m-%d %H:%M"))), "code")
    assignment.status = AssignmentStatus.CHECKED_IN
    assignment.checked_in_at = now
    flush_or_conflict(STALE_OFFER)
    record_audit(user, "check_in", assignment, occurrence=occurrence.id)
    return assignment


def credit_hours(minutes: float) -> Decimal:
    """Credited hours for minutes served, with the configured rounding (`HOURS_STEP_MINUTES`,
    `HOURS_FLOOR_MINUTES`; by default half hours, under 15 minutes none)."""
    return rules.credited_hours(minutes, int(setting("HOURS_STEP_MINUTES", 30)),
                                int(setting("HOURS_FLOOR_MINUTES", 15)))


def _add_hours(assignment: Assignment) -> None:
    """Add the assignment's credited hours to its volunteer's total, in SQL (no lost update)."""
    volunteer = assignment.volunteer
    volunteer.total_hours = Volunteer.total_hours + assignment.credited_hours


def check_out(occurrence: DemandOccurrence, code: str, *, user: User, now: datetime | None = None) -> Assignment:
    """Check the user out: the assignment is completed and the served minutes become credited hours.

    Hours follow `credit_hours`; never more than the scheduled service plus `HOURS_GRACE_MINUTES`
    (default 60: a forgotten check-out is not service); travel is never counted. Check-out closes
    `CHECKOUT_CLOSES_HOURS` (default 12) after the end.
    """
    now = now or local_now()
    assignment = _held_assignment(occurrence, user)
    if assignment.status == AssignmentStatus.ACCEPTED:
        raise Conflict(str(_l("Check in first; you are not checked in for this service.")))
    if assignment.status != AssignmentStatus.CHECKED_IN:
        raise Conflict(str(_l("You are already checked out of this service.")))
    _not_cancelled(occurrence)
    _check_code(occurrence, code)
    if now < assignment.checked_in_at:
        raise DomainError(str(_l("Check-out cannot be before check-in.")), "code")
    if now > occurrence.ends_at + timedelta(hours=int(setting("CHECKOUT_CLOSES_HOURS", 12))):
        raise DomainError(str(_l("Check-out for this service has closed; the community worker will confirm "
                                 "your time.")), "code")
    scheduled = (occurrence.ends_at - occurrence.starts_at).total_seconds() / 60.0
    minutes = min((now - assignment.checked_in_at).total_seconds() / 60.0,
                  scheduled + int(setting("HOURS_GRACE_MINUTES", 60)))
    assignment.status = AssignmentStatus.COMPLETED
    assignment.checked_out_at = now
    assignment.credited_hours = credit_hours(minutes)
    flush_or_conflict(STALE_OFFER)
    _add_hours(assignment)
    db.session.flush()
    db.session.refresh(assignment.volunteer, ["total_hours"])
    record_audit(user, "check_out", assignment, occurrence=occurrence.id, hours=str(assignment.credited_hours))
    return assignment


# --------------------------------------------------------------------------- confirm and rate


def confirm_service(occurrence: DemandOccurrence, *, user: User, present: Iterable[int] = ()) -> dict[str, int]:
    """The community's worker confirms a service took place; returns counts per outcome.

    Checked-in volunteers and accepted ones ticked in `present` (assignment ids) are completed;
    those without a check-out are credited the service's duration (rounded like check-outs).
    Accepted ones not ticked become no-shows; unanswered offers are withdrawn. Newly credited
    hours are added to each volunteer's total.
    """
    demand = occurrence.demand
    if not can_change(user, demand):
        raise AccessDenied(str(_l("Only the community's worker can confirm this service.")))
    if occurrence.status == DemandStatus.DONE:
        raise Conflict(str(_l("This service was confirmed already.")))
    if occurrence.status == DemandStatus.CANCELLED:
        raise Conflict(str(_l("This service was cancelled.")))
    if occurrence.starts_at > local_now():
        raise DomainError(str(_l("This service has not started yet; confirm it once it took place.")))
    assignments = db.session.scalars(select(Assignment).where(Assignment.occurrence_id == occurrence.id)
                                     .options(selectinload(Assignment.volunteer))).all()
    f = Fields({})
    try:
        ticked = {int(x) for x in present}
    except (TypeError, ValueError):
        ticked = set()
        f.fail("present", _l("Tick the volunteers who were there."))
    if ticked - {a.id for a in assignments if a.status in HELD}:
        f.fail("present", _l("Only volunteers who accepted this service can be marked present."))
    f.check()
    counts = {"completed": 0, "no_show": 0, "withdrawn": 0}
    minutes = (occurrence.ends_at - occurrence.starts_at).total_seconds() / 60
    for a in assignments:
        if a.status == AssignmentStatus.CHECKED_IN or (a.status == AssignmentStatus.ACCEPTED and a.id in ticked):
            if a.credited_hours is None:
                if a.checked_in_at is not None and a.checked_out_at is not None:
                    a.credited_hours = credit_hours((a.checked_out_at - a.checked_in_at).total_seconds() / 60)
                else:
                    a.credited_hours = credit_hours(minutes)
            a.status = AssignmentStatus.COMPLETED
            _add_hours(a)
            counts["completed"] += 1
        elif a.status == AssignmentStatus.ACCEPTED:
            a.status = AssignmentStatus.NO_SHOW
            counts["no_show"] += 1
    counts["withdrawn"] = withdraw([a for a in assignments if a.status in PENDING],
                                   _l("The service took place without this offer."))["withdrawn"]
    occurrence.status = DemandStatus.DONE
    if all(o.status in CLOSED for o in demand.occurrences):
        demand.status = DemandStatus.DONE
    record_audit(user, "confirm_service", occurrence, **counts)
    flush_or_conflict(STALE_ASSIGNMENT)
    return counts


def rate_service(assignment: Assignment, rating: Any, comment: Any, *, user: User) -> None:
    """Record the resident's rating (1–5) and comment for a completed service (the community's worker)."""
    if not can_change(user, assignment.occurrence.demand):
        raise AccessDenied(str(_l("Only the community's worker can record a rating for this service.")))
    f = Fields({"rating": rating, "comment": comment})
    value = f.integer("rating", minimum=1, maximum=5)
    text = f.text("comment", max_length=500)
    if assignment.status != AssignmentStatus.COMPLETED:
        f.fail("rating", _l("Only a completed service can be rated."))
    f.check()
    assignment.rating, assignment.rating_comment, assignment.rated_by_id = value, text, user.id
    record_audit(user, "rate", assignment, rating=value)
    flush_or_conflict(STALE_ASSIGNMENT)
