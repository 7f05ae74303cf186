"""Use cases that change a volunteer's own row: registering, the profile (free time, dated
changes, limits, skills, home) and the private calendar link; and reading their week.

Each function validates (every bad field named together), flushes and never commits.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from . import rules
from .audit import record_audit
from .db import db
from .errors import AccessDenied
from .fields import (
    AVAILABILITY_FUTURE_DAYS,
    AVAILABILITY_PAST_DAYS,
    Fields,
    check_location,
    date_window,
    parse_clock,
    parse_iso_date,
    shown,
    skills_by_code,
)
from .models import (
    BOOKED,
    Area,
    AreaLevel,
    Assignment,
    AvailabilityException,
    AvailabilitySlot,
    DemandOccurrence,
    ExceptionKind,
    Gender,
    User,
    Volunteer,
)
from .models.people import new_token


def volunteer_of(user: User | None) -> Volunteer | None:
    """The volunteer profile linked to a user account, if any."""
    if user is None or getattr(user, "id", None) is None:
        return None
    return db.session.scalar(select(Volunteer).where(Volunteer.user_id == user.id))


WEEKDAYS = {str(d): d for d in range(7)}


class EntryError(ValueError):
    """One entry of a text field cannot be read; `message` (when set) says why."""

    def __init__(self, part: str, message: Any = None):
        super().__init__(part)
        self.part = part
        self.message = message


def parse_slots(text: str) -> list[tuple[int, int, int]]:
    """Parse 'weekday HH:MM-HH:MM' entries separated by ';' into (weekday, start, end) triples.

    Weekdays are 0 (Monday) to 6 and times HH:MM, in ASCII digits; anything else raises EntryError.
    """
    slots = []
    for part in [p.strip() for p in (text or "").split(";") if p.strip()]:
        try:
            day_text, span = part.split(None, 1)
            start_text, end_text = span.split("-")
        except ValueError:
            raise EntryError(part) from None
        day, start, end = WEEKDAYS.get(day_text), parse_clock(start_text), parse_clock(end_text)
        if day is None or start is None or end is None or end <= start:
            raise EntryError(part)
        slots.append((day, start, end))
    return slots


def read_slots(f: Fields, field: str) -> list[tuple[int, int, int]]:
    """The weekly free time of a form field (see `parse_slots`); a bad entry is reported on the field."""
    text = f.text(field, max_length=2000)
    try:
        return parse_slots(text)
    except EntryError as exc:
        f.fail(field, _l("Cannot read '%(p)s'; write e.g. '0 09:00-12:00; 3 14:00-17:00'.", p=shown(exc.part)))
        return []


def read_exceptions(f: Fields, field: str, *, keep: Iterable[date] = ()) -> list[tuple[ExceptionKind, datetime, datetime, str]]:
    """The dated changes of a form field (see `parse_exceptions`); a bad entry is reported on the field."""
    text = f.text(field, max_length=10000)
    try:
        return parse_exceptions(text, keep=keep)
    except EntryError as exc:
        f.fail(field, exc.message or _l("Cannot read '%(p)s'; write e.g. 'away 2026-12-01 09:00-12:00' "
                                        "or 'extra 2026-12-05 14:00-17:00'.", p=shown(exc.part)))
        return []


def create_volunteer(data: Mapping[str, Any], *, user: User | None, account: User | None = None) -> Volunteer:
    """Register a volunteer profile; raises ValidationError naming each bad field."""
    f = Fields(data)
    name = f.text("real_name", required=True, max_length=40)
    phone_raw = f.text("phone", required=True, max_length=30)
    phone = rules.normalize_phone(phone_raw) if phone_raw else None
    if phone_raw and phone is None:
        f.fail("phone", _l("'%(p)s' is not a valid phone number.", p=phone_raw))
    elif phone and db.session.scalar(select(Volunteer.id).where(Volunteer.phone == phone)):
        f.fail("phone", _l("A volunteer with this phone number is already registered."))
    area_id = f.integer("home_area", minimum=1)
    area = db.session.get(Area, area_id) if area_id else None
    if area_id and (area is None or area.level != AreaLevel.COMMUNITY):
        f.fail("home_area", _l("Choose the village or community where the volunteer lives."))
        area = None
    lat, lon = f.number("lat"), f.number("lon")
    if area is not None:
        check_location(f, lat, lon, area)
    gender = f.choice("gender", Gender)
    birth_year = f.integer("birth_year", minimum=1920, maximum=date.today().year - 10, default=0) or None
    max_minutes = f.integer("max_minutes_per_week", minimum=0, maximum=7 * 24 * 60, default=240)
    preferred = f.integer("preferred_minutes_per_week", minimum=0, maximum=7 * 24 * 60,
                          default=min(120, max_minutes or 0))
    if max_minutes is not None and preferred is not None and preferred > max_minutes:
        f.fail("preferred_minutes_per_week", _l("The preferred time cannot exceed the maximum."))
    travel = f.number("max_travel_km") if data.get("max_travel_km") not in (None, "") else 5.0
    if travel is not None and not 0 <= travel <= 100:
        f.fail("max_travel_km", _l("Enter a distance from 0 to 100 km."))
    skills = skills_by_code(f, "skills")
    slots = read_slots(f, "availability")
    address = f.text("address", max_length=200)
    f.check()  # every field is read (and judged) before this line: nothing is read after it
    volunteer = Volunteer(real_name=name, phone=phone, home_area=area, lat=lat, lon=lon, gender=gender,
                          birth_year=birth_year, max_minutes_per_week=max_minutes,
                          preferred_minutes_per_week=preferred, max_travel_km=travel, skills=skills,
                          address=address, user=account,
                          slots=[AvailabilitySlot(weekday=d, start_minute=s, end_minute=e) for d, s, e in slots])
    db.session.add(volunteer)
    db.session.flush()
    record_audit(user, "create", volunteer)
    return volunteer


def parse_exceptions(text: str, *, keep: Iterable[date] = ()) -> list[tuple[ExceptionKind, datetime, datetime, str]]:
    """Parse dated changes, one per line or ';': 'away 2026-12-01 09:00-12:00 note' or 'extra ...'.

    The time span may be left out for a whole day ('away 2026-12-24'). Dates are YYYY-MM-DD from
    AVAILABILITY_PAST_DAYS ago to AVAILABILITY_FUTURE_DAYS ahead; a date in `keep` (one the
    volunteer's stored changes have) is accepted wherever it lies. A bad entry raises EntryError.
    """
    earliest, latest = date_window(AVAILABILITY_PAST_DAYS, AVAILABILITY_FUTURE_DAYS)
    kept = set(keep)
    out = []
    for part in [p.strip() for p in (text or "").replace("\n", ";").split(";") if p.strip()]:
        bits = part.split(None, 3)
        try:
            kind = ExceptionKind(bits[0].lower())
        except (ValueError, IndexError):
            raise EntryError(part) from None
        day = parse_iso_date(bits[1]) if len(bits) > 1 else None
        if day is None:
            raise EntryError(part)
        if day not in kept and not earliest <= day <= latest:
            raise EntryError(part, _l("'%(p)s': enter a date from %(a)s to %(b)s.", p=shown(part),
                                      a=earliest.isoformat(), b=latest.isoformat()))
        note = ""
        start, end = 0, 1440
        if len(bits) >= 3 and "-" in bits[2] and ":" in bits[2]:
            a, _sep, b = bits[2].partition("-")
            start, end = parse_clock(a), parse_clock(b)
            if start is None or end is None or end <= start:
                raise EntryError(part)
            note = bits[3] if len(bits) > 3 else ""
        elif len(bits) >= 3:
            note = " ".join(bits[2:])
        midnight = datetime.combine(day, time())
        out.append((kind, midnight + timedelta(minutes=start), midnight + timedelta(minutes=end), note[:200]))
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
    """The profile form's text for weekly slots (inverse of `parse_slots`)."""
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
    slots = read_slots(f, "availability")
    exceptions = read_exceptions(f, "exceptions", keep={e.starts_at.date() for e in volunteer.exceptions})
    max_minutes = f.integer("max_minutes_per_week", minimum=0, maximum=7 * 24 * 60)
    preferred = f.integer("preferred_minutes_per_week", minimum=0, maximum=7 * 24 * 60)
    if max_minutes is not None and preferred is not None and preferred > max_minutes:
        f.fail("preferred_minutes_per_week", _l("The preferred time cannot exceed the maximum."))
    travel = f.number("max_travel_km")
    if travel is not None and not 0 <= travel <= 100:
        f.fail("max_travel_km", _l("Enter a distance from 0 to 100 km."))
    skills = skills_by_code(f, "skills")
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
                     statuses=BOOKED) -> list[Assignment]:
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
