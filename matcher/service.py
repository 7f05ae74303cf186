"""The volunteer's side of the loop: answer offers, check in and out, keep the profile up to date.

Like `operations`, every function validates, flushes and never commits; the caller commits.

Booking safety (a volunteer is never booked on two overlapping demands, a demand is never
overfilled) rests on `lock_booking`: before the checks, the transaction takes the volunteer's
row and then the occurrence's row, always in that order, so two acceptances that touch the same
volunteer or the same occurrence run one after the other:

- PostgreSQL: `SELECT ... FOR UPDATE` on both rows (READ COMMITTED, so the checks that follow see
  whatever the other transaction committed while we waited);
- SQLite: `FOR UPDATE` does nothing there, so the transaction is started with `BEGIN IMMEDIATE`,
  which takes the database's single write lock at once; a second writer waits (the driver's busy
  timeout) until the first commits, and its checks then read the committed state. When the
  connection is already inside a write transaction it holds that lock already.

Any other code that books volunteers (manual edits, solver results) should call `lock_booking`
with the same order before its own checks.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from flask import current_app, has_app_context
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.orm.exc import StaleDataError

from . import rules
from .clock import local_now
from .db import db
from .errors import AccessDenied, Conflict, DomainError, ValidationError
from .models import (
    Area,
    Assignment,
    AssignmentStatus,
    AvailabilityException,
    AvailabilitySlot,
    DemandOccurrence,
    DemandStatus,
    ExceptionKind,
    Notification,
    Role,
    User,
    Volunteer,
    utcnow,
)
from .models.people import new_token
from .operations import Fields, _skills_by_code, check_location, parse_slots, record_audit
from .problem import HOLDING

# Assignments that hold a volunteer's time and a place on the occurrence.
# Travel between two services, as in the solver specification.
# Check-in opens this long before the start.
CHECKIN_EARLY = timedelta(minutes=60)


def volunteer_of(user: User) -> Volunteer | None:
    """The volunteer profile linked to a user account, if any."""
    if user is None or getattr(user, "id", None) is None:
        return None
    return db.session.scalar(select(Volunteer).where(Volunteer.user_id == user.id))


def lock_booking(volunteer_id: int, occurrence_id: int) -> None:
    """Serialize bookings that touch this volunteer or this occurrence (see the module docstring)."""
    connection = db.session.connection()
    if connection.dialect.name == "sqlite":
        raw = connection.connection.dbapi_connection
        if not raw.in_transaction:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        return
    # Fixed order: the volunteer first, then the occurrence (no deadlock between two bookings).
    db.session.execute(select(Volunteer.id).where(Volunteer.id == volunteer_id).with_for_update())
    db.session.execute(select(DemandOccurrence.id).where(DemandOccurrence.id == occurrence_id).with_for_update())


def booking_clash(volunteer_id: int, occurrence: DemandOccurrence, *, exclude: int | None = None) -> Assignment | None:
    """The volunteer's held assignment that overlaps `occurrence` (travel time included), if any."""
    demand = occurrence.demand
    window = timedelta(hours=12)
    stmt = (select(Assignment).join(DemandOccurrence, Assignment.occurrence_id == DemandOccurrence.id)
            .where(Assignment.volunteer_id == volunteer_id, Assignment.status.in_(HOLDING),
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


def filled_places(occurrence_id: int) -> int:
    """How many volunteers hold a place on the occurrence (accepted, checked in or done)."""
    return db.session.scalar(select(func.count(Assignment.id)).where(
        Assignment.occurrence_id == occurrence_id, Assignment.status.in_(HOLDING))) or 0


def coordinators_for(community: Area) -> list[User]:
    """Active coordinators whose area contains the community."""
    ancestors = [int(x) for x in community.path.strip("/").split("/") if x]
    return list(db.session.scalars(select(User).where(
        User.role == Role.COORDINATOR, User.active, User.area_id.in_(ancestors)).order_by(User.id)))


def _own_assignment(assignment: Assignment, user: User) -> Volunteer:
    volunteer = volunteer_of(user)
    if volunteer is None or assignment.volunteer_id != volunteer.id:
        raise AccessDenied(str(_l("This offer is not yours.")))
    return volunteer


def _flush_or_conflict() -> None:
    try:
        db.session.flush()
    except StaleDataError:
        raise Conflict(str(_l("This offer changed in the meantime; reload the page and try again."))) from None


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
        if occurrence.status == DemandStatus.CANCELLED or occurrence.demand.status == DemandStatus.CANCELLED:
            raise Conflict(str(_l("This service was cancelled.")))
        if occurrence.ends_at <= local_now():
            raise Conflict(str(_l("This service is over; it can no longer be accepted.")))
        clash = booking_clash(volunteer.id, occurrence, exclude=assignment.id)
        if clash is not None:
            raise Conflict(str(_l(
                "You already accepted “%(t)s” on %(when)s, which overlaps this one (travel time included).",
                t=clash.occurrence.demand.title, when=clash.occurrence.starts_at.strftime("%Y-%m-%d %H:%M"))))
        if filled_places(occurrence.id) >= occurrence.demand.people:
            raise Conflict(str(_l("This service already has all the volunteers it needs.")))
    if _pause is not None:
        _pause()
    assignment.responded_at = utcnow()
    if accept:
        assignment.status = AssignmentStatus.ACCEPTED
        _flush_or_conflict()
        record_audit(user, "accept", assignment, occurrence=occurrence.id)
    else:
        assignment.status = AssignmentStatus.DECLINED
        assignment.decline_reason = reason
        _flush_or_conflict()
        _reopen_if_short(occurrence)
        _notify_gap(occurrence, assignment)
        record_audit(user, "decline", assignment, occurrence=occurrence.id)
    db.session.flush()
    return assignment


def _reopen_if_short(occurrence: DemandOccurrence) -> None:
    """A decline that leaves the occurrence below its minimum team puts it back to open."""
    if occurrence.status != DemandStatus.SCHEDULED:
        return
    standing = db.session.scalar(select(func.count(Assignment.id)).where(
        Assignment.occurrence_id == occurrence.id,
        Assignment.status.in_([AssignmentStatus.PROPOSED, AssignmentStatus.OFFERED, *HOLDING]))) or 0
    if standing < occurrence.demand.min_people:
        occurrence.status = DemandStatus.OPEN


def _notify_gap(occurrence: DemandOccurrence, assignment: Assignment) -> None:
    demand = occurrence.demand
    text = str(_l("A volunteer declined “%(t)s” on %(when)s: %(r)s",
                  t=demand.title, when=occurrence.starts_at.strftime("%Y-%m-%d %H:%M"),
                  r=assignment.decline_reason))[:500]
    for coordinator in coordinators_for(demand.community):
        db.session.add(Notification(user_id=coordinator.id, kind="offer_declined", text=text,
                                    link=f"/demands/{demand.id}"))


# --- check-in and check-out ---------------------------------------------------------------------


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
    if assignment is None or assignment.status not in (AssignmentStatus.ACCEPTED, AssignmentStatus.CHECKED_IN,
                                                       AssignmentStatus.COMPLETED):
        raise DomainError(str(_l("You have no accepted assignment for this service.")), "occurrence")
    return assignment


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
    _flush_or_conflict()
    record_audit(user, "check_in", assignment, occurrence=occurrence.id)
    return assignment


def credit_hours(minutes: float) -> Decimal:
    """Credited hours for minutes served, with the configured rounding (`HOURS_STEP_MINUTES`,
    `HOURS_FLOOR_MINUTES`; by default half hours, under 15 minutes none)."""
    config = current_app.config if has_app_context() else {}
    return rules.credited_hours(minutes, int(config.get("HOURS_STEP_MINUTES", 30)),
                                int(config.get("HOURS_FLOOR_MINUTES", 15)))


def _not_cancelled(occurrence: DemandOccurrence) -> None:
    if occurrence.status == DemandStatus.CANCELLED or occurrence.demand.status == DemandStatus.CANCELLED:
        raise Conflict(str(_l("This service was cancelled.")))


def check_out(occurrence: DemandOccurrence, code: str, *, user: User, now: datetime | None = None) -> Assignment:
    """Check the user out: the assignment is completed and the served minutes become credited hours.

    Hours follow `rules.credited_hours` with `HOURS_STEP_MINUTES` (default 30) and
    `HOURS_FLOOR_MINUTES` (default 15) from the app config; travel is never counted.
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
    config = current_app.config
    if now > occurrence.ends_at + timedelta(hours=int(config.get("CHECKOUT_CLOSES_HOURS", 12))):
        raise DomainError(str(_l("Check-out for this service has closed; the community worker will confirm "
                                 "your time.")), "code")
    # Never more than the scheduled service plus a grace period (a forgotten check-out is not service).
    scheduled = (occurrence.ends_at - occurrence.starts_at).total_seconds() / 60.0
    minutes = min((now - assignment.checked_in_at).total_seconds() / 60.0,
                  scheduled + int(config.get("HOURS_GRACE_MINUTES", 60)))
    hours = credit_hours(minutes)
    assignment.status = AssignmentStatus.COMPLETED
    assignment.checked_out_at = now
    assignment.credited_hours = hours
    _flush_or_conflict()
    # Added in SQL so two check-outs of one volunteer never lose an update.
    volunteer = assignment.volunteer
    volunteer.total_hours = Volunteer.total_hours + hours
    db.session.flush()
    db.session.refresh(volunteer, ["total_hours"])
    record_audit(user, "check_out", assignment, occurrence=occurrence.id, hours=str(hours))
    return assignment


# --- profile ---------------------------------------------------------------------------------------


def parse_exceptions(text: str) -> list[tuple[ExceptionKind, datetime, datetime, str]]:
    """Parse dated changes, one per line or ';': 'away 2026-12-01 09:00-12:00 note' or 'extra ...'.

    The time span may be left out for a whole day ('away 2026-12-24').
    """
    out = []
    for part in [p.strip() for p in (text or "").replace("\n", ";").split(";") if p.strip()]:
        bits = part.split(None, 3)
        try:
            kind = ExceptionKind(bits[0].lower())
            day = datetime.fromisoformat(bits[1])
        except (ValueError, IndexError):
            raise ValueError(part) from None
        note = ""
        start, end = 0, 1440
        if len(bits) >= 3 and "-" in bits[2] and ":" in bits[2]:
            a, _sep, b = bits[2].partition("-")
            start, end = rules.parse_hhmm(a), rules.parse_hhmm(b)
            if start is None or end is None or end <= start:
                raise ValueError(part)
            note = bits[3] if len(bits) > 3 else ""
        elif len(bits) >= 3:
            note = " ".join(bits[2:])
        day = day.replace(hour=0, minute=0, second=0, microsecond=0)
        out.append((kind, day + timedelta(minutes=start), day + timedelta(minutes=end), note[:200]))
    return out


def format_exceptions(exceptions: list[AvailabilityException]) -> str:
    """The profile form's text for dated changes (inverse of `parse_exceptions`)."""
    lines = []
    for e in sorted(exceptions, key=lambda x: x.starts_at):
        day = e.starts_at.strftime("%Y-%m-%d")
        span = f"{e.starts_at:%H:%M}-{'24:00' if e.ends_at.date() > e.starts_at.date() else f'{e.ends_at:%H:%M}'}"
        lines.append(" ".join(x for x in (e.kind.value, day, span, e.note) if x))
    return "\n".join(lines)


def format_slots(slots: list[AvailabilitySlot]) -> str:
    """The profile form's text for weekly slots (inverse of `operations.parse_slots`)."""
    return "; ".join(f"{s.weekday} {rules.format_minutes(s.start_minute)}-{rules.format_minutes(s.end_minute)}"
                     for s in slots)


def profile_values(volunteer: Volunteer) -> dict[str, str]:
    """The profile as the form shows it."""
    return {
        "availability": format_slots(volunteer.slots),
        "exceptions": format_exceptions(volunteer.exceptions),
        "max_minutes_per_week": str(volunteer.max_minutes_per_week),
        "preferred_minutes_per_week": str(volunteer.preferred_minutes_per_week),
        "max_travel_km": f"{volunteer.max_travel_km:g}",
        "skills": ",".join(s.code for s in volunteer.skills),
        "lat": f"{volunteer.lat:.6f}",
        "lon": f"{volunteer.lon:.6f}",
        "address": volunteer.address,
    }


def update_profile(volunteer: Volunteer, data: Mapping[str, Any], *, user: User) -> Volunteer:
    """Change the volunteer's availability, dated exceptions, limits, skills and home location.

    Only the volunteer themself may do it. Every bad field is reported together
    (ValidationError) and nothing is changed.
    """
    if volunteer.user_id is None or volunteer.user_id != user.id:
        raise AccessDenied(str(_l("You can only change your own profile.")))
    f = Fields(data)
    try:
        slots = parse_slots(str(data.get("availability") or ""))
    except ValueError as exc:
        f.fail("availability", _l("Cannot read '%(p)s'; write e.g. '0 09:00-12:00; 3 14:00-17:00'.", p=exc))
        slots = []
    try:
        exceptions = parse_exceptions(str(data.get("exceptions") or ""))
    except ValueError as exc:
        f.fail("exceptions", _l("Cannot read '%(p)s'; write e.g. 'away 2026-12-01 09:00-12:00' "
                                "or 'extra 2026-12-05 14:00-17:00'.", p=exc))
        exceptions = []
    max_minutes = f.integer("max_minutes_per_week", minimum=0, maximum=7 * 24 * 60)
    preferred = f.integer("preferred_minutes_per_week", minimum=0, maximum=7 * 24 * 60)
    if max_minutes is not None and preferred is not None and preferred > max_minutes:
        f.fail("preferred_minutes_per_week", _l("The preferred time cannot exceed the maximum."))
    travel = f.number("max_travel_km")
    if travel is not None and not 0 <= travel <= 100:
        f.fail("max_travel_km", _l("Enter a distance from 0 to 100 km."))
    skills = _skills_by_code(f, "skills")
    lat, lon = f.number("lat"), f.number("lon")
    check_location(f, lat, lon, volunteer.home_area)
    address = f.text("address", max_length=200)
    f.check()
    volunteer.slots = [AvailabilitySlot(weekday=d, start_minute=s, end_minute=e) for d, s, e in slots]
    volunteer.exceptions = [AvailabilityException(kind=k, starts_at=s, ends_at=e, note=n)
                            for k, s, e, n in exceptions]
    volunteer.max_minutes_per_week = max_minutes
    volunteer.preferred_minutes_per_week = preferred
    volunteer.max_travel_km = travel
    volunteer.skills = skills
    volunteer.lat, volunteer.lon = lat, lon
    volunteer.address = address
    db.session.flush()
    record_audit(user, "update_profile", volunteer, skills=[s.code for s in skills], slots=len(slots),
                 exceptions=len(exceptions))
    return volunteer


def regenerate_calendar_token(volunteer: Volunteer, *, user: User | None = None) -> str:
    """Give the volunteer a new private calendar feed token; the old feed URL stops working."""
    if user is not None and volunteer.user_id != user.id:
        raise AccessDenied(str(_l("You can only change your own calendar link.")))
    volunteer.calendar_token = new_token()
    db.session.flush()
    record_audit(user, "regenerate_calendar_token", volunteer)
    return volunteer.calendar_token


def week_assignments(volunteer: Volunteer, start: datetime, end: datetime,
                     statuses=HOLDING) -> list[Assignment]:
    """The volunteer's assignments in the given statuses whose occurrence starts in [start, end)."""
    return list(db.session.scalars(
        select(Assignment).join(DemandOccurrence, Assignment.occurrence_id == DemandOccurrence.id)
        .where(Assignment.volunteer_id == volunteer.id, Assignment.status.in_(statuses),
               DemandOccurrence.starts_at >= start, DemandOccurrence.starts_at < end)
        .order_by(DemandOccurrence.starts_at)))


def hours_to_next_star(hours: Decimal | float, thresholds) -> Decimal | None:
    """Hours still missing to the next star level, or None at the top."""
    for t in sorted(thresholds):
        if float(hours) < t:
            return (Decimal(str(t)) - Decimal(str(hours))).quantize(Decimal("0.1"))
    return None
