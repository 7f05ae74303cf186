"""Use cases that change an assignment (one volunteer on one occurrence) after it was made.

Answering an offer, checking in and out, the community worker confirming a service and
recording the resident's rating, crediting hours, withdrawing offers, and the one refresh of an
occurrence's status that every path calls after changing who is on it. Each function validates,
flushes and never commits; the caller commits.

Checking in and out needs a proof of being on site (`checkin`: a code that changes every minute,
separate for check-in and check-out, or the signed token of the worker's QR code). Failed attempts
are audited (`checkin_failed`) and limited per volunteer and per service; a refusal carries its
audit entry so that the caller keeps it after rolling back (`keep_refusal`).

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

import math
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, NoReturn
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, update
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.orm import selectinload

from . import checkin, rules
from .access import can_change
from .audit import record_audit
from .clock import DEFAULT_TIMEZONE, local_now
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
    AuditEntry,
    DemandOccurrence,
    DemandStatus,
    User,
    Volunteer,
    utcnow,
)
from .models._types import DeclineReason
from .notifications import MY_RECORD, demand_link, notify, tell_coordinators, tell_volunteers
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
    """Give each occurrence without one the secret behind its check-in and check-out codes.

    New occurrences get theirs when they are made; this covers rows older than that (publishing
    calls it for the week's occurrences)."""
    for occ in occurrences:
        if not occ.checkin_secret:
            occ.checkin_secret = checkin.new_secret()


# --------------------------------------------------------------------------- answering an offer


def _own_assignment(assignment: Assignment, user: User) -> Volunteer:
    volunteer = volunteer_of(user)
    if volunteer is None or assignment.volunteer_id != volunteer.id:
        raise AccessDenied(str(_l("This offer is not yours.")))
    return volunteer


# The structured reasons for declining, as the volunteer chooses them and the coordinator reads them
# (what each makes the repair do: `problem.decline_limits`).
DECLINE_REASONS = {
    DeclineReason.NOT_FREE: _l("I am not free then"),
    DeclineReason.TOO_FAR: _l("It is too far for me"),
    DeclineReason.OTHER: _l("Another reason"),
}


def read_decline(kind: Any, reason: Any) -> tuple[DeclineReason, str]:
    """The structured reason (`kind`) and the note of a decline; ValidationError naming each bad field.

    A kind is needed (without one, a note alone counts as "another reason"); "another reason" needs the
    note, so the coordinator knows why."""
    f = Fields({"kind": kind, "reason": reason})
    choice = f.choice("kind", DeclineReason)
    note = f.text("reason", max_length=200)
    if choice is None and "kind" not in f.errors:
        if note:
            choice = DeclineReason.OTHER
        elif "reason" not in f.errors:
            f.fail("kind", _l("Choose why you decline, so the coordinator can plan."))
    if choice == DeclineReason.OTHER and not note and not f.errors:
        f.fail("reason", _l("Say why you decline, so the coordinator can plan."))
    f.check()
    return choice, note


def decline_text(kind: DeclineReason | None, note: str) -> str:
    """A decline's reason as one line: the choice, then the volunteer's words."""
    label = str(DECLINE_REASONS[kind]) if kind is not None else ""
    return "; ".join(x for x in (label, note) if x)


def respond_to_offer(assignment: Assignment, *, user: User, accept: bool, reason: str = "",
                     kind: Any = None, lock: bool = True, tell: bool = True,
                     _pause: Callable[[], None] | None = None) -> Assignment:
    """Accept or decline an offer made to the user's own volunteer profile.

    Accepting is refused (Conflict) when the volunteer already holds an overlapping service,
    travel time between the two places included, or when the occurrence is already full.
    Declining needs a reason (`read_decline`: a `DeclineReason` and a note) and tells the area's
    coordinators that a gap opened; the reason is kept on the assignment for the repair.
    `lock=False` skips the row locks; it exists only for the control run of the concurrency test.
    `tell=False` leaves telling the coordinators to the caller (`respond_to_series` tells them once).
    `_pause` (tests only) is called between the checks and the write.
    """
    volunteer = _own_assignment(assignment, user)
    if not accept:
        kind, reason = read_decline(kind, reason)
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
        assignment.decline_kind = kind
        flush_or_conflict(STALE_OFFER)
        refresh_occurrence_status([occurrence])
        demand = occurrence.demand
        if tell:
            _tell_declined(volunteer, demand, [occurrence], kind, reason)
        record_audit(user, "decline", assignment, occurrence=occurrence.id, decline_kind=kind.value)
    db.session.flush()
    return assignment


def _tell_declined(volunteer: Volunteer, demand, occurrences: list[DemandOccurrence], kind: DeclineReason,
                   reason: str) -> None:
    """Tell the area's coordinators, in one notice, which dates of a demand the volunteer declined and why."""
    when = ", ".join(o.starts_at.strftime("%Y-%m-%d %H:%M") for o in occurrences)
    tell_coordinators(demand.community, "offer_declined",
                      lambda: _l("%(name)s declined “%(t)s” on %(when)s: %(r)s", name=volunteer.real_name,
                                 t=demand.title, when=when, r=decline_text(kind, reason)),
                      demand_link(demand.id))


@dataclass(frozen=True)
class SeriesAnswer:
    """What answering one date of a series did: `done` True, or False with the reason (`message`)."""

    assignment_id: int
    starts_at: datetime
    done: bool
    message: str = ""


def respond_to_series(offers: Iterable[Assignment], *, user: User, accept: bool, reason: str = "",
                      kind: Any = None) -> list[SeriesAnswer]:
    """Accept or decline several offers of one demand (a weekly service) at once; one answer per date.

    A decline's reason is read once for all (`read_decline`; a bad one raises ValidationError and
    nothing changes). All the rows are locked first (`lock_bookings`: the volunteer, then the
    occurrences), then each offer is answered like `respond_to_offer`; a date that cannot be
    answered (it clashes with another booking, is full, was withdrawn or answered meanwhile) is
    reported and the others still are. The coordinators get one notice for the declined dates.
    """
    offers = sorted(offers, key=lambda a: (a.occurrence.starts_at, a.id))
    if not offers:
        raise ValidationError({"series": str(_l("Choose at least one date to answer."))})
    volunteer = _own_assignment(offers[0], user)
    demands = {a.occurrence.demand_id for a in offers}
    for a in offers:
        _own_assignment(a, user)
    if len(demands) != 1:
        raise ValidationError({"series": str(_l("Answer the dates of one service at a time."))})
    if not accept:
        kind, reason = read_decline(kind, reason)
    lock_bookings([volunteer.id], [a.occurrence_id for a in offers])
    answers, declined = [], []
    for a in offers:
        starts_at = a.occurrence.starts_at
        try:
            respond_to_offer(a, user=user, accept=accept, reason=reason, kind=kind, tell=False)
        except Conflict as exc:
            answers.append(SeriesAnswer(a.id, starts_at, False, exc.message))
            continue
        answers.append(SeriesAnswer(a.id, starts_at, True))
        if not accept:
            declined.append(a.occurrence)
    if declined:
        _tell_declined(volunteer, declined[0].demand, declined, kind, reason)
    db.session.flush()
    return answers


# --------------------------------------------------------------------------- check-in and check-out


# How attendance was proven (`Assignment.attendance`).
ATTENDANCE_CHECKED, ATTENDANCE_BY_HAND = "checked", "by_hand"
# Audit actions of refused attempts: failures count towards the limits, refusals for too many do not.
CHECKIN_FAILED, CHECKIN_THROTTLED = "checkin_failed", "checkin_throttled"
ENTER_CODE = _l("Enter the code shown by the community worker, or scan the QR code.")
# The one answer for any code or QR code that does not prove presence now, whatever the reason
# (mistyped, wrong, expired, the other purpose's, another service's) and whatever the service's
# state: whether check-in is open yet is told only after a good code, so a guess learns nothing.
BAD_CODE = _l("This code is not valid. Type the 6 digits the community worker shows now, or scan the QR code "
              "again.")


class CheckinRefused(ValidationError):
    """A check-in or check-out attempt that was refused and recorded in the audit log.

    `audit` holds what was recorded, so a caller that rolls its transaction back writes it again
    with `keep_refusal` (failed attempts must stay counted). `status` is 429 for too many attempts.
    """

    def __init__(self, message: Any, *, audit: tuple[User, DemandOccurrence, str, dict[str, Any]],
                 status: int = 400):
        super().__init__({"code": str(message)})
        self.status = status
        self.audit = audit


def keep_refusal(refused: CheckinRefused) -> None:
    """Record a refused attempt again, after the caller rolled back the rest of the transaction."""
    user, occurrence, action, details = refused.audit
    record_audit(user, action, occurrence, **details)


def _refuse(message: Any, user: User, occurrence: DemandOccurrence, assignment: Assignment, purpose: str,
            reason: str, *, action: str = CHECKIN_FAILED, status: int = 400) -> NoReturn:
    """Audit a refused attempt (never the code itself) and raise `CheckinRefused`."""
    details = {"purpose": purpose, "reason": reason, "assignment": assignment.id}
    record_audit(user, action, occurrence, **details)
    raise CheckinRefused(message, audit=(user, occurrence, action, details), status=status)


def _timestamp(local: datetime) -> float:
    """The Unix time of a naive local time (the codes change on the clock, not on local time)."""
    return local.replace(tzinfo=ZoneInfo(setting("TIMEZONE", DEFAULT_TIMEZONE))).timestamp()


def checkin_window(occurrence: DemandOccurrence) -> tuple[datetime, datetime]:
    """When checking in is open: from an hour before the start until the end."""
    return occurrence.starts_at - CHECKIN_EARLY, occurrence.ends_at


def checkout_window(occurrence: DemandOccurrence) -> tuple[datetime, datetime]:
    """When checking out is open: from the start until `CHECKOUT_CLOSES_HOURS` (default 12) after the end."""
    return occurrence.starts_at, occurrence.ends_at + timedelta(hours=int(setting("CHECKOUT_CLOSES_HOURS", 12)))


def _check_attempts(occurrence: DemandOccurrence, user: User, assignment: Assignment, purpose: str) -> None:
    """Refuse (429) when this volunteer, or everyone on this service together, failed too often lately.

    Failures are the `checkin_failed` audit entries of the last `CHECKIN_ATTEMPT_WINDOW_MINUTES`
    (default 15): at most `CHECKIN_MAX_FAILURES_PER_VOLUNTEER` (5) per volunteer and
    `CHECKIN_MAX_FAILURES_PER_OCCURRENCE` (20) per service. Counting in the database means every
    web worker process sees the same count. The refusal is audited but does not count itself.
    """
    window = timedelta(minutes=int(setting("CHECKIN_ATTEMPT_WINDOW_MINUTES", 15)))
    now = utcnow()
    recent = select(AuditEntry.at).where(AuditEntry.action == CHECKIN_FAILED, AuditEntry.at > now - window)
    limits = (
        ("volunteer", recent.where(AuditEntry.user_id == user.id),
         int(setting("CHECKIN_MAX_FAILURES_PER_VOLUNTEER", 5))),
        ("occurrence", recent.where(AuditEntry.object_type == type(occurrence).__name__.lower(),
                                    AuditEntry.object_id == occurrence.id),
         int(setting("CHECKIN_MAX_FAILURES_PER_OCCURRENCE", 20))),
    )
    for scope, stmt, limit in limits:
        times = db.session.scalars(stmt.order_by(AuditEntry.at.desc()).limit(max(limit, 1))).all()
        if len(times) < limit:
            continue
        # The limit lifts when the oldest of the last `limit` failures leaves the window.
        wait = max(1, math.ceil((times[-1] + window - now).total_seconds() / 60))
        if scope == "volunteer":
            message = _l("Too many wrong codes. Wait %(n)d minutes and try again, or ask the community worker to "
                         "confirm your attendance by hand.", n=wait)
        else:
            message = _l("Too many wrong codes were tried for this service. Wait %(n)d minutes and try again, or "
                         "ask the community worker to confirm your attendance by hand.", n=wait)
        _refuse(message, user, occurrence, assignment, purpose, f"too_many_for_{scope}", action=CHECKIN_THROTTLED,
                status=429)


def _prove(occurrence: DemandOccurrence, assignment: Assignment, user: User, purpose: str, code: Any,
           token: Any, now: datetime) -> None:
    """Refuse unless the typed code or the scanned QR code's token proves presence for `purpose` now.

    An empty form is just asked again; every other failure is audited and counts towards the limits,
    which are checked first (so the attempt after too many fails even with the right code).
    """
    code, token = str(code or "").strip(), str(token or "").strip()
    if not code and not token:
        raise ValidationError({"code": str(ENTER_CODE)})
    _check_attempts(occurrence, user, assignment, purpose)
    when = _timestamp(now)
    good = bool(token) and checkin.verify_token(setting("SECRET_KEY", None), token, occurrence.id, purpose, when,
                                                int(setting("CHECKIN_TOKEN_MAX_AGE", 180)))
    if not good and code:
        good = checkin.verify_code(occurrence.checkin_secret, purpose, code, when)
    if not good:
        reason = "bad_token" if not code else "bad_code" if checkin.well_formed(code) else "malformed_code"
        _refuse(BAD_CODE, user, occurrence, assignment, purpose, reason)


def _ensure_secret(occurrence: DemandOccurrence) -> str:
    """The occurrence's code secret, made now for a row from before secrets (a conditional UPDATE, so
    two pages opened at once agree on one secret)."""
    if not occurrence.checkin_secret:
        db.session.execute(update(DemandOccurrence)
                           .where(DemandOccurrence.id == occurrence.id, DemandOccurrence.checkin_secret.is_(None))
                           .values(checkin_secret=checkin.new_secret())
                           .execution_options(synchronize_session=False))
        db.session.refresh(occurrence, ["checkin_secret"])
    return occurrence.checkin_secret or ""


@dataclass(frozen=True)
class CheckinCode:
    """One code as shown: the digits to type and the token for the QR code's URL."""

    purpose: str
    code: str
    token: str


@dataclass(frozen=True)
class CheckinCodes:
    """What the community worker's code page shows at `now`."""

    now: datetime
    closed: bool  # confirmed or cancelled: no codes any more
    checkin_window: tuple[datetime, datetime]
    checkout_window: tuple[datetime, datetime]
    check_in: CheckinCode | None
    check_out: CheckinCode | None
    refresh_in: int | None  # seconds until the page should load again (a new code), None: no need


def checkin_codes(occurrence: DemandOccurrence, *, user: User, now: datetime | None = None) -> CheckinCodes:
    """The check-in and check-out codes of a service as its community's worker shows them now.

    The check-in code is shown from an hour before the start until the end, the check-out code from
    the start until check-out closes; each changes every minute. An occurrence from before code
    secrets gets its secret here (flushed; the caller commits).
    """
    if not can_change(user, occurrence.demand):
        raise AccessDenied(str(_l("Only the community's worker can show the codes of this service.")))
    now = now or local_now()
    closed = occurrence.status in CLOSED or occurrence.demand.status == DemandStatus.CANCELLED
    windows = {checkin.CHECK_IN: checkin_window(occurrence), checkin.CHECK_OUT: checkout_window(occurrence)}
    shown: dict[str, CheckinCode] = {}
    refresh_in = None
    if not closed:
        when = _timestamp(now)
        secret = _ensure_secret(occurrence)
        key = setting("SECRET_KEY", None)
        for purpose, (opens, closes) in windows.items():
            if opens <= now <= closes:
                shown[purpose] = CheckinCode(purpose, checkin.code_at(secret, purpose, when),
                                             checkin.make_token(key, occurrence.id, purpose, when))
        opening_soon = any(timedelta(0) < opens - now <= CHECKIN_EARLY for opens, _ in windows.values())
        if shown or opening_soon:
            refresh_in = checkin.seconds_left(when)
    return CheckinCodes(now=now, closed=closed, checkin_window=windows[checkin.CHECK_IN],
                        checkout_window=windows[checkin.CHECK_OUT], check_in=shown.get(checkin.CHECK_IN),
                        check_out=shown.get(checkin.CHECK_OUT), refresh_in=refresh_in)

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


def check_in(occurrence: DemandOccurrence, code: Any = "", *, user: User, token: Any = "",
             now: datetime | None = None) -> Assignment:
    """Check the user in at an occurrence they accepted, with the check-in code or the QR code's token.

    The proof comes first (see `_prove`: limited attempts, one answer for every bad code); only after
    a good one is the time checked: check-in is open from 60 minutes before the start until the end
    (local time). The check-in proves attendance (`attendance` "checked").
    """
    now = now or local_now()
    assignment = _held_assignment(occurrence, user)
    _not_cancelled(occurrence)
    if assignment.status == AssignmentStatus.CHECKED_IN:
        raise Conflict(str(_l("You are already checked in for this service.")))
    if assignment.status != AssignmentStatus.ACCEPTED:
        raise Conflict(str(_l("You are already checked out of this service.")))
    _prove(occurrence, assignment, user, checkin.CHECK_IN, code, token, now)
    opens, closes = checkin_window(occurrence)
    if now < opens:
        _refuse(_l("Check-in opens at %(t)s, one hour before the start.", t=opens.strftime("%Y-%m-%d %H:%M")),
                user, occurrence, assignment, checkin.CHECK_IN, "too_early")
    if now > closes:
        _refuse(_l("This service ended at %(t)s; check-in is closed.", t=closes.strftime("%Y-%m-%d %H:%M")),
                user, occurrence, assignment, checkin.CHECK_IN, "too_late")
    assignment.status = AssignmentStatus.CHECKED_IN
    assignment.checked_in_at = now
    assignment.attendance = ATTENDANCE_CHECKED
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


def check_out(occurrence: DemandOccurrence, code: Any = "", *, user: User, token: Any = "",
              now: datetime | None = None) -> Assignment:
    """Check the user out with the check-out code (never the check-in one) or the QR code's token:
    the assignment is completed and the served minutes become credited hours.

    Like check-in, the proof comes first. Check-out is open from the start (the worker's page shows
    its code from then on) until `CHECKOUT_CLOSES_HOURS` (default 12) after the end. Hours follow
    `credit_hours`; never more than the scheduled service plus `HOURS_GRACE_MINUTES` (default 60: a
    forgotten check-out is not service); travel is never counted.
    """
    now = now or local_now()
    assignment = _held_assignment(occurrence, user)
    if assignment.status == AssignmentStatus.ACCEPTED:
        raise Conflict(str(_l("Check in first; you are not checked in for this service.")))
    if assignment.status != AssignmentStatus.CHECKED_IN:
        raise Conflict(str(_l("You are already checked out of this service.")))
    _not_cancelled(occurrence)
    _prove(occurrence, assignment, user, checkin.CHECK_OUT, code, token, now)
    opens, closes = checkout_window(occurrence)
    if now < opens:
        _refuse(_l("Check-out opens when the service starts, at %(t)s.", t=opens.strftime("%Y-%m-%d %H:%M")),
                user, occurrence, assignment, checkin.CHECK_OUT, "too_early")
    if now < assignment.checked_in_at:
        _refuse(_l("Check-out cannot be before check-in."), user, occurrence, assignment, checkin.CHECK_OUT,
                "before_check_in")
    if now > closes:
        _refuse(_l("Check-out for this service has closed; the community worker will confirm your time."),
                user, occurrence, assignment, checkin.CHECK_OUT, "too_late")
    scheduled = (occurrence.ends_at - occurrence.starts_at).total_seconds() / 60.0
    minutes = min((now - assignment.checked_in_at).total_seconds() / 60.0,
                  scheduled + int(setting("HOURS_GRACE_MINUTES", 60)))
    assignment.status = AssignmentStatus.COMPLETED
    assignment.checked_out_at = now
    assignment.credited_hours = credit_hours(minutes)
    assignment.attendance = ATTENDANCE_CHECKED
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
    The ticked ones never proved they were there with a code: their attendance is recorded as
    "by_hand" and the audit entry lists them (`by_hand`). Accepted ones not ticked become no-shows;
    unanswered offers are withdrawn. Newly credited hours are added to each volunteer's total.
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
    by_hand: list[int] = []
    for a in assignments:
        if a.status == AssignmentStatus.CHECKED_IN or (a.status == AssignmentStatus.ACCEPTED and a.id in ticked):
            if a.status == AssignmentStatus.CHECKED_IN:
                a.attendance = ATTENDANCE_CHECKED
            else:
                a.attendance = ATTENDANCE_BY_HAND
                by_hand.append(a.id)
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
    record_audit(user, "confirm_service", occurrence, **counts, by_hand=sorted(by_hand))
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
    volunteer_user = assignment.volunteer.user
    if volunteer_user is not None:  # the volunteer hears of it, with a link to their record
        occ = assignment.occurrence
        notify([volunteer_user], "rated", link=MY_RECORD,
               params={"t": occ.demand.title, "d": f"{occ.starts_at:%Y-%m-%d}", "stars": value})
