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
from sqlalchemy.orm import selectinload

from . import rules, throttle
from .access import serving_organizations
from .accounts import create_user, password_problem
from .audit import record_audit
from .clock import local_today
from .db import db
from .errors import AccessDenied, ValidationError
from .fields import (
    AVAILABILITY_FUTURE_DAYS,
    AVAILABILITY_PAST_DAYS,
    MAX_ROW_ID,
    Fields,
    check_location,
    date_window,
    has_control,
    organizations_by_id,
    parse_clock,
    parse_iso_date,
    shown,
    skills_by_code,
)
from .links import use_link
from .models import (
    BOOKED,
    AccountLink,
    Area,
    AreaLevel,
    Assignment,
    AvailabilityException,
    AvailabilitySlot,
    Demand,
    DemandOccurrence,
    ExceptionKind,
    Gender,
    Membership,
    MemberStatus,
    Organization,
    Role,
    User,
    Volunteer,
    utcnow,
)
from .models.people import new_token
from .notifications import Link, notify
from .settings import setting


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


# --- the picker's rows: weekday and time rows, dated rows, limits in hours ---------------------------------

# The form fields of the picker's rows (each sent once per row, in row order; see web/templates/_time_rows.html).
SLOT_FIELDS = ("slot_day", "slot_start", "slot_end")
EXCEPTION_FIELDS = ("exc_date", "exc_kind", "exc_start", "exc_end", "exc_note")
MAX_ROWS = 50


def form_column(form: Any, name: str) -> list[str]:
    """One repeated field of a form, as a list of strings: a MultiDict's values, or a list or one value."""
    if hasattr(form, "getlist"):
        values = form.getlist(name)
    else:
        value = form.get(name) if form is not None else None
        values = [] if value is None else list(value) if isinstance(value, list | tuple) else [value]
    return [v if isinstance(v, str) else "" if v is None else str(v) for v in values]


def _rows(form: Any, names: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    """The rows of repeated fields as (row number from 1, {name: stripped value}), empty rows left out
    (a dated row's away/extra choice always has a value: alone it does not make the row)."""
    columns = {n: form_column(form, n) for n in names}
    count = max((len(c) for c in columns.values()), default=0)
    rows = []
    for i in range(count):
        row = {n: (columns[n][i] if i < len(columns[n]) else "").strip() for n in names}
        if any(v for n, v in row.items() if n != "exc_kind"):
            rows.append((i + 1, row))
    return rows


def _row_times(n: int, start_text: str, end_text: str, problems: list[str], *,
               optional: bool = False) -> tuple[int, int] | None:
    """A row's start and end in minutes, or None with the problem (naming the row) added."""
    if optional and not start_text and not end_text:
        return 0, 24 * 60
    if not start_text or not end_text:
        problems.append(str(_l("Row %(n)d: enter both the start and the end time.", n=n)))
        return None
    start, end = parse_clock(start_text), parse_clock(end_text)
    for text, value in ((start_text, start), (end_text, end)):
        if value is None:
            problems.append(str(_l("Row %(n)d: '%(v)s' is not a time; enter it as HH:MM, e.g. 09:30.", n=n,
                                   v=shown(text))))
            return None
    if end <= start:
        problems.append(str(_l("Row %(n)d: the end (%(e)s) must be after the start (%(s)s).", n=n,
                               s=start_text, e=end_text)))
        return None
    return start, end


def parse_slot_rows(form: Any, *, field: str = "availability") -> list[tuple[int, int, int]]:
    """The weekly free time of the picker's rows (`slot_day` 0 = Monday … 6, `slot_start`, `slot_end` as HH:MM)
    as (weekday, start minute, end minute), in row order; empty rows are skipped.

    Raises ValidationError({field: message}) naming every bad row and what is wrong with it.
    `form` is a MultiDict (request.form) or a mapping of lists. Registration reuses it."""
    problems: list[str] = []
    slots = []
    rows = _rows(form, SLOT_FIELDS)
    if len(rows) > MAX_ROWS:
        raise ValidationError({field: str(_l("At most %(n)d rows.", n=MAX_ROWS))})
    for n, row in rows:
        day = WEEKDAYS.get(row["slot_day"])
        if day is None:
            problems.append(str(_l("Row %(n)d: choose a weekday.", n=n)))
            continue
        times = _row_times(n, row["slot_start"], row["slot_end"], problems)
        if times is not None:
            slots.append((day, *times))
    if problems:
        raise ValidationError({field: " ".join(problems)})
    return slots


def parse_exception_rows(form: Any, *, keep: Iterable[date] = (), field: str = "exceptions"
                         ) -> list[tuple[ExceptionKind, datetime, datetime, str]]:
    """The dated changes of the picker's rows: `exc_date` (YYYY-MM-DD), `exc_kind` (away/extra), `exc_start`
    and `exc_end` (HH:MM, both empty for the whole day), `exc_note`. Dates lie from AVAILABILITY_PAST_DAYS
    ago to AVAILABILITY_FUTURE_DAYS ahead, or are one the volunteer already has (`keep`).

    Raises ValidationError({field: message}) naming every bad row and what is wrong with it."""
    earliest, latest = date_window(AVAILABILITY_PAST_DAYS, AVAILABILITY_FUTURE_DAYS)
    kept = set(keep)
    problems: list[str] = []
    out = []
    rows = _rows(form, EXCEPTION_FIELDS)
    if len(rows) > MAX_ROWS:
        raise ValidationError({field: str(_l("At most %(n)d rows.", n=MAX_ROWS))})
    for n, row in rows:
        try:
            kind = ExceptionKind(row["exc_kind"])
        except ValueError:
            problems.append(str(_l("Row %(n)d: choose away or extra time.", n=n)))
            continue
        day = parse_iso_date(row["exc_date"]) if row["exc_date"] else None
        if day is None:
            problems.append(str(_l("Row %(n)d: enter a date.", n=n) if not row["exc_date"] else
                                _l("Row %(n)d: '%(v)s' is not a date; enter it as YYYY-MM-DD.", n=n,
                                   v=shown(row["exc_date"]))))
            continue
        if day not in kept and not earliest <= day <= latest:
            problems.append(str(_l("Row %(n)d: enter a date from %(a)s to %(b)s.", n=n, a=earliest.isoformat(),
                                   b=latest.isoformat())))
            continue
        note = row["exc_note"]
        if has_control(note) or len(note) > 200:
            problems.append(str(_l("Row %(n)d: the note may have at most 200 characters and no control "
                                   "characters.", n=n)))
            continue
        times = _row_times(n, row["exc_start"], row["exc_end"], problems, optional=True)
        if times is None:
            continue
        midnight = datetime.combine(day, time())
        out.append((kind, midnight + timedelta(minutes=times[0]), midnight + timedelta(minutes=times[1]), note))
    if problems:
        raise ValidationError({field: " ".join(problems)})
    return out


def read_rows(f: Fields, parse: Any, form: Any, **kwargs: Any) -> list:
    """The rows `parse` reads from the form; a ValidationError's messages are reported through `f`."""
    try:
        return parse(form, **kwargs)
    except ValidationError as exc:
        for name, message in exc.errors.items():
            f.fail(name, message)
        return []


def read_hours(f: Fields, field: str) -> int | None:
    """Hours per week in steps of half an hour (0 to 168), as minutes; a bad value is reported on `field`."""
    hours = f.number(field)
    if hours is None:
        return None
    if not 0 <= hours <= 168 or abs(hours * 2 - round(hours * 2)) > 1e-9:
        f.fail(field, _l("Enter hours from 0 to 168, in steps of half an hour (e.g. 2.5)."))
        return None
    return int(round(hours * 60))


def hours_text(minutes: int) -> str:
    """Minutes as the hours the form shows: '2', '2.5' (rounded to half hours)."""
    return f"{round(minutes / 30) / 2:g}"


def slot_rows(slots: list[AvailabilitySlot]) -> list[dict[str, str]]:
    """Weekly slots as the picker's rows (inverse of `parse_slot_rows`)."""
    return [{"day": str(s.weekday), "start": rules.format_minutes(s.start_minute),
             "end": rules.format_minutes(s.end_minute)} for s in sorted(slots, key=lambda x: (x.weekday, x.start_minute))]


def exception_rows(exceptions: list[AvailabilityException]) -> list[dict[str, str]]:
    """Dated changes as the picker's rows (inverse of `parse_exception_rows`; a whole day has no times)."""
    rows = []
    for e in sorted(exceptions, key=lambda x: x.starts_at):
        whole = e.starts_at.time() == time() and e.ends_at - e.starts_at == timedelta(days=1)
        end = "24:00" if e.ends_at.date() > e.starts_at.date() else f"{e.ends_at:%H:%M}"
        rows.append({"date": e.starts_at.strftime("%Y-%m-%d"), "kind": e.kind.value,
                     "start": "" if whole else f"{e.starts_at:%H:%M}", "end": "" if whole else end, "note": e.note})
    return rows


def submitted_rows(form: Any) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """The picker's rows as sent (to show them again next to the messages when something was wrong)."""
    slots = [{"day": r["slot_day"], "start": r["slot_start"], "end": r["slot_end"]}
             for _n, r in _rows(form, SLOT_FIELDS)]
    excs = [{"date": r["exc_date"], "kind": r["exc_kind"], "start": r["exc_start"], "end": r["exc_end"],
             "note": r["exc_note"]} for _n, r in _rows(form, EXCEPTION_FIELDS)]
    return slots[:MAX_ROWS], excs[:MAX_ROWS]


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
    area_id = f.integer("home_area", minimum=1, maximum=MAX_ROW_ID)
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


def profile_values(volunteer: Volunteer) -> dict[str, Any]:
    """The profile as the form shows it: the picker's rows, limits in hours."""
    return {
        "slot_rows": slot_rows(volunteer.slots),
        "exception_rows": exception_rows(volunteer.exceptions),
        "max_hours_per_week": hours_text(volunteer.max_minutes_per_week),
        "preferred_hours_per_week": hours_text(volunteer.preferred_minutes_per_week),
        "max_travel_km": f"{volunteer.max_travel_km:g}",
        "skills": ",".join(s.code for s in volunteer.skills),
        "lat": f"{volunteer.lat:.6f}",
        "lon": f"{volunteer.lon:.6f}",
        "address": volunteer.address,
    }


def update_profile(volunteer: Volunteer, data: Any, *, user: User) -> Volunteer:
    """Change the volunteer's availability, dated exceptions, limits, skills and home location.

    `data` is the profile form (a MultiDict, or a mapping whose repeated fields are lists): the
    picker's weekly rows (`parse_slot_rows`) and dated rows (`parse_exception_rows`), the weekly
    limits in hours (`max_hours_per_week`, `preferred_hours_per_week`, half-hour steps, stored as
    minutes), travel, skills and home. Only the volunteer themself may do it. Every bad field is
    reported together (ValidationError, each bad row named) and nothing is changed.
    """
    if volunteer.user_id is None or volunteer.user_id != user.id:
        raise AccessDenied(str(_l("You can only change your own profile.")))
    fields = {key: data.get(key) for key in ("max_hours_per_week", "preferred_hours_per_week", "max_travel_km",
                                             "lat", "lon", "address")}
    fields["skills"] = data.getlist("skills") if hasattr(data, "getlist") else data.get("skills")
    f = Fields(fields)
    slots = read_rows(f, parse_slot_rows, data)
    exceptions = read_rows(f, parse_exception_rows, data, keep={e.starts_at.date() for e in volunteer.exceptions})
    max_minutes = read_hours(f, "max_hours_per_week")
    preferred = read_hours(f, "preferred_hours_per_week")
    if max_minutes is not None and preferred is not None and preferred > max_minutes:
        f.fail("preferred_hours_per_week", _l("The preferred time cannot exceed the maximum."))
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
        .options(selectinload(Assignment.occurrence).selectinload(DemandOccurrence.demand)
                 .selectinload(Demand.category),
                 selectinload(Assignment.occurrence).selectinload(DemandOccurrence.demand)
                 .selectinload(Demand.resident))
        .order_by(DemandOccurrence.starts_at)))


def has_assignments(volunteer: Volunteer, start: datetime, end: datetime, statuses=BOOKED) -> bool:
    """Whether `week_assignments` would list anything, in one small statement."""
    return db.session.scalar(
        select(Assignment.id).join(DemandOccurrence, Assignment.occurrence_id == DemandOccurrence.id)
        .where(Assignment.volunteer_id == volunteer.id, Assignment.status.in_(statuses),
               DemandOccurrence.starts_at >= start, DemandOccurrence.starts_at < end).limit(1)) is not None


def hours_to_next_star(hours: Decimal | float, thresholds) -> Decimal | None:
    """Hours still missing to the next star level, or None at the top."""
    for t in sorted(thresholds):
        if float(hours) < t:
            return (Decimal(str(t)) - Decimal(str(hours))).quantize(Decimal("0.1"))
    return None


# --------------------------------------------------------------------------- minors and their guardians

ADULT_AGE = 18  # under it, a guardian's consent is needed before any service is offered
SENSITIVE_AGE = 14  # under it, the child's personal data are sensitive (PIPL Art. 28, 31)
MIN_AGE = 10  # the youngest a volunteer may register


def age_on(volunteer: Volunteer, day: date) -> int | None:
    """Whole years of age on `day`; with only a birth year, the youngest the person can be (born on
    31 December). None when neither is known."""
    born = volunteer.birth_date or (date(volunteer.birth_year, 12, 31) if volunteer.birth_year else None)
    return None if born is None else years_between(born, day)


def years_between(born: date, day: date) -> int:
    """Whole years from `born` to `day` (an age)."""
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def is_child(volunteer: Volunteer, day: date | None = None) -> bool:
    """Under SENSITIVE_AGE (or possibly so, by the birth year) on `day` (today)."""
    age = age_on(volunteer, day or local_today())
    return age is not None and age < SENSITIVE_AGE


def guardian_problem(volunteer: Volunteer, day: date) -> str | None:
    """Why the volunteer may not be offered a service on `day` for want of a guardian's consent, or None.

    The one rule (the instance build and hand assignments call it): under 18 on that day (or possibly,
    when only the birth year is known) and no guardian's consent recorded.
    """
    age = age_on(volunteer, day)
    if age is None or age >= ADULT_AGE or volunteer.guardian_consent_at is not None:
        return None
    return str(_l("%(n)s is under 18 and no guardian's consent is recorded; the organization leader records "
                  "it on the members page.", n=volunteer.real_name))


def record_guardian_consent(volunteer: Volunteer, data: Mapping[str, Any], *, user: User) -> Volunteer:
    """Record that the guardian of a minor agreed to their volunteering (name, phone, relation).

    The leader of an organization the volunteer applied to or belongs to, a coordinator over their
    home, or an administrator. Audited (without the guardian's phone)."""
    _require_guardian_recorder(volunteer, user)
    f = Fields(data)
    name, phone, relation = _read_guardian(f, required_consent=True)
    f.check()
    volunteer.guardian_name, volunteer.guardian_phone, volunteer.guardian_relation = name, phone, relation
    volunteer.guardian_consent_at = utcnow()
    volunteer.guardian_consent_by_id = user.id
    db.session.flush()
    record_audit(user, "record_guardian_consent", volunteer, relation=relation)
    return volunteer


def _require_guardian_recorder(volunteer: Volunteer, user: User) -> None:
    from .access import volunteer_filter

    allowed = user.role in (Role.ADMIN, Role.COORDINATOR, Role.ORG_LEADER)
    if not allowed or db.session.scalar(select(Volunteer.id).where(
            Volunteer.id == volunteer.id, volunteer_filter(user))) is None:
        raise AccessDenied(str(_l("Only the organization's leader or a coordinator can record a guardian's consent.")))


def _read_guardian(f: Fields, *, required_consent: bool) -> tuple[str, str | None, str]:
    """The guardian's name, phone (E.164) and relation; the consent tick must be given."""
    name = f.text("guardian_name", required=True, max_length=40)
    phone_raw = f.text("guardian_phone", required=True, max_length=30)
    phone = rules.normalize_phone(phone_raw) if phone_raw else None
    if phone_raw and phone is None:
        f.fail("guardian_phone", _l("'%(p)s' is not a valid phone number.", p=shown(phone_raw)))
    relation = f.text("guardian_relation", required=True, max_length=20)
    if required_consent and not f.flag("guardian_consent"):
        f.fail("guardian_consent", _l("A guardian must agree before a volunteer under 18 can serve."))
    return name, phone, relation


# --------------------------------------------------------------------------- registering oneself


def registration_address_limit() -> str:
    """Registrations allowed per client address (Flask-Limiter's notation)."""
    # A registration drive at a practice station signs up dozens of residents over one Wi-Fi address.
    return setting("RATELIMIT_REGISTER", "30 per hour;100 per day")


def registration_allowed(address: str):
    """Count one registration attempt from `address` (`throttle.Verdict`)."""
    return throttle.hit([throttle.bucket("register", "address", address or "-",
                                         throttle.parse_rules(registration_address_limit()))])


def mainland_mobile(raw: str) -> str | None:
    """The E.164 form of a mainland China mobile number (+861…, 11 digits), else None."""
    phone = rules.normalize_phone(raw)
    return phone if phone and phone.startswith("+861") and len(phone) == 14 else None


def slot_rows_text(data: Mapping[str, Any]) -> str:
    """The weekly free time of the picker's rows (slot_day, slot_start, slot_end, repeated) as the
    profile's text ('0 09:00-12:00; 3 14:00-17:00'); a row left empty is skipped."""
    getlist = getattr(data, "getlist", None)

    def values(key: str) -> list[str]:
        raw = getlist(key) if getlist else data.get(key, [])
        return [str(x) for x in (raw if isinstance(raw, list | tuple) else [raw])]

    days, starts, ends = values("slot_day"), values("slot_start"), values("slot_end")
    parts = []
    for i in range(max(len(days), len(starts), len(ends))):
        day, start, end = (x[i].strip() if i < len(x) else "" for x in (days, starts, ends))
        if day or start or end:
            parts.append(f"{day} {start}-{end}")
    text = str(data.get("availability") or "")
    return "; ".join(([text] if text.strip() else []) + parts)


def register_volunteer(data: Mapping[str, Any], *, link: AccountLink | None = None) -> Volunteer:
    """A person registers as a volunteer: an account (username: their mobile's 11 digits), a profile
    and an application to the organizations they chose (or the one of an invitation).

    Until an organization approves them they are in no schedule's pool (`access.area_pool`); an
    invitation from an organization's leader approves them at once (the leader vouched), one from a
    community worker leads to an application like any other. The home is the community's centre
    (the form has no map). Under 18 the guardian's name, phone, relation and agreement are required;
    the consent counts once a leader or coordinator records it (`record_guardian_consent`).
    Raises ValidationError naming each bad field; flushes, never commits; audited.
    """
    f = Fields(data)
    name = f.text("real_name", required=True, max_length=40)
    phone_raw = f.text("phone", required=True, max_length=30)
    phone = mainland_mobile(phone_raw) if phone_raw else None
    username = rules.national_phone(phone)
    if phone_raw and phone is None:
        f.fail("phone", _l("Enter a mainland China mobile number (11 digits, starting with 1)."))
    elif phone and (db.session.scalar(select(Volunteer.id).where(Volunteer.phone == phone)) is not None
                    or db.session.scalar(select(User.id).where(User.username == username)) is not None):
        f.fail("phone", _l("This phone number is already registered. Sign in, or ask your organization for an "
                           "activation link."))
    password = data.get("password")
    password = password if isinstance(password, str) else ""
    if not password:
        f.fail("password", _l("This field is required."))
    else:
        problem = password_problem(password, setting("PASSWORD_MIN_LENGTH", 8), personal=[username, name])
        if problem:
            f.fail("password", problem)
        elif data.get("repeat") != password:
            f.fail("repeat", _l("The two passwords differ."))
    today = local_today()
    birth_date = f.date("birth_date", earliest=date(1920, 1, 1),
                        latest=today.replace(year=today.year - MIN_AGE) if (today.month, today.day) != (2, 29)
                        else date(today.year - MIN_AGE, 2, 28))
    area = link.area if link is not None and link.area is not None else None
    if area is None:
        area_id = f.integer("home_area", minimum=1, maximum=MAX_ROW_ID)
        area = db.session.get(Area, area_id) if area_id else None
        if area_id and (area is None or area.level != AreaLevel.COMMUNITY):
            f.fail("home_area", _l("Choose the village or community where you live."))
            area = None
    organizations: list[Organization] = []
    if link is not None and link.organization is not None:
        organizations = [link.organization]
    else:
        organizations = organizations_by_id(f, "organizations")
        if not organizations and "organizations" not in f.errors:
            f.fail("organizations", _l("Choose at least one organization to join."))
        elif area is not None:
            serving = set(db.session.scalars(select(Organization.id).where(
                serving_organizations(area), Organization.id.in_([o.id for o in organizations]))))
            if any(o.id not in serving for o in organizations):
                f.fail("organizations", _l("Choose organizations that serve your community."))
    skills = skills_by_code(f, "skills")
    slots_text = slot_rows_text(data)
    try:
        slots = parse_slots(slots_text)
    except EntryError as exc:
        f.fail("availability", _l("Cannot read '%(p)s': choose a weekday and a start before the end.",
                                  p=shown(exc.part)))
        slots = []
    address = f.text("address", max_length=200)
    minor = birth_date is not None and years_between(birth_date, today) < ADULT_AGE
    guardian: tuple[str, str | None, str] = ("", None, "")
    if minor:
        guardian = _read_guardian(f, required_consent=True)
    f.check()
    try:
        account = create_user(username=username, password=password, role=Role.VOLUNTEER, display_name=name,
                              min_length=setting("PASSWORD_MIN_LENGTH", 8))
    except ValidationError as exc:  # the account name is the phone's digits: a clash is the phone's
        raise ValidationError({"phone" if key == "username" else key: message
                               for key, message in exc.errors.items()}) from None
    volunteer = Volunteer(real_name=name, phone=phone, home_area=area, lat=area.lat, lon=area.lon,
                          birth_date=birth_date, birth_year=birth_date.year, skills=skills, address=address,
                          user=account, self_registered_at=utcnow(),
                          guardian_name=guardian[0], guardian_phone=guardian[1], guardian_relation=guardian[2],
                          slots=[AvailabilitySlot(weekday=d, start_minute=s, end_minute=e) for d, s, e in slots])
    db.session.add(volunteer)
    db.session.flush()
    vouched = (link is not None and link.created_by is not None and link.created_by.role == Role.ORG_LEADER
               and link.organization_id is not None and link.created_by.organization_id == link.organization_id)
    memberships = [Membership(organization=o, volunteer=volunteer,
                              status=MemberStatus.APPROVED if vouched else MemberStatus.APPLIED,
                              approved_at=utcnow() if vouched else None) for o in organizations]
    db.session.add_all(memberships)
    db.session.flush()
    if link is not None:
        use_link(link, used_by=account)
        record_audit(account, "use_invite_link", link)
    record_audit(account, "register", volunteer, organizations=[o.id for o in organizations],
                 invitation=link.id if link is not None else None, minor=minor)
    for m in memberships:
        record_audit(account, "approve_member" if vouched else "apply_member", m, organization=m.organization_id,
                     invitation=link.id if link is not None else None)
    if not vouched:
        tell_of_applicant(volunteer, organizations)
    return volunteer


def tell_of_applicant(volunteer: Volunteer, organizations: list[Organization]) -> None:
    """The leaders of the organizations and the community's workers hear of a new applicant."""
    leaders = list(db.session.scalars(select(User).where(
        User.role == Role.ORG_LEADER, User.active, User.organization_id.in_([o.id for o in organizations]))))
    workers = list(db.session.scalars(select(User).where(
        User.role == Role.WORKER, User.active, User.area_id == volunteer.home_area_id)))
    names = ", ".join(o.name for o in organizations)
    notify(leaders, "new_applicant", _l("%(n)s applied to join %(o)s.", n=volunteer.real_name, o=names),
           Link("team.members"))
    notify(workers, "new_applicant", _l("%(n)s of your community registered as a volunteer and applied to join "
                                        "%(o)s.", n=volunteer.real_name, o=names))


def unvetted(volunteer: Volunteer) -> bool:
    """A self-registered volunteer no organization has approved nor still considers (all refused them):
    in no pool, so never offered anything (`access.area_pool`)."""
    return (volunteer.self_registered_at is not None
            and not any(m.status in (MemberStatus.APPROVED, MemberStatus.APPLIED) for m in volunteer.memberships))


def awaiting_approval(volunteer: Volunteer) -> list[Organization]:
    """The organizations whose approval the volunteer waits for, while none has approved them yet."""
    if volunteer.self_registered_at is None:
        return []
    statuses = {m.status for m in volunteer.memberships}
    if MemberStatus.APPROVED in statuses:
        return []
    return [m.organization for m in volunteer.memberships if m.status == MemberStatus.APPLIED]
