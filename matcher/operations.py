"""Use cases that change data. Each validates its input, flushes, and never commits.

Input arrives as a mapping of plain values (from a form, the CLI or the JSON API);
every problem is collected and raised together as a ValidationError naming the field,
so a caller can show all of them at once and nothing is written.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from . import rules
from .db import db
from .errors import ValidationError
from .models import (
    Area,
    AreaLevel,
    AuditEntry,
    AvailabilitySlot,
    Category,
    Demand,
    DemandOccurrence,
    DemandStatus,
    Gender,
    LocationKind,
    Organization,
    Priority,
    Resident,
    Skill,
    Station,
    User,
    Volunteer,
    utcnow,
)

# How far ahead weekly demands are expanded into dated occurrences.
OCCURRENCE_HORIZON_WEEKS = 8


class Fields:
    """Reads raw input values and collects one message per bad field."""

    def __init__(self, data: Mapping[str, Any]):
        self.data = data
        self.errors: dict[str, str] = {}

    def fail(self, field: str, message: Any) -> None:
        self.errors.setdefault(field, str(message))

    def text(self, field: str, *, required: bool = False, max_length: int = 200) -> str:
        value = self.data.get(field)
        value = "" if value is None else str(value).strip()
        if required and not value:
            self.fail(field, _l("This field is required."))
        elif len(value) > max_length:
            self.fail(field, _l("At most %(n)d characters.", n=max_length))
        return value

    def integer(self, field: str, *, minimum: int | None = None, maximum: int | None = None,
                default: int | None = None) -> int | None:
        value = self.data.get(field)
        if value in (None, ""):
            if default is None:
                self.fail(field, _l("This field is required."))
            return default
        try:
            number = int(str(value).strip())
        except ValueError:
            self.fail(field, _l("Enter a whole number."))
            return None
        if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
            self.fail(field, _l("Enter a number from %(a)s to %(b)s.", a=minimum, b=maximum))
            return None
        return number

    def number(self, field: str) -> float | None:
        value = self.data.get(field)
        if value in (None, ""):
            self.fail(field, _l("This field is required."))
            return None
        try:
            return float(str(value).strip())
        except ValueError:
            self.fail(field, _l("Enter a number."))
            return None

    def date(self, field: str, *, required: bool = True) -> date | None:
        value = self.data.get(field)
        if isinstance(value, date):
            return value
        if value in (None, ""):
            if required:
                self.fail(field, _l("This field is required."))
            return None
        try:
            return date.fromisoformat(str(value).strip())
        except ValueError:
            self.fail(field, _l("Enter a date as YYYY-MM-DD."))
            return None

    def clock(self, field: str) -> int | None:
        minutes = rules.parse_hhmm(str(self.data.get(field) or ""))
        if minutes is None:
            self.fail(field, _l("Enter a time as HH:MM."))
        return minutes

    def choice(self, field: str, enum_cls, *, default=None, required: bool = False):
        value = self.data.get(field)
        if value in (None, ""):
            if required:
                self.fail(field, _l("This field is required."))
            return default
        try:
            return enum_cls(str(value))
        except ValueError:
            self.fail(field, _l("Unknown value '%(v)s'.", v=value))
            return None

    def flag(self, field: str) -> bool:
        value = self.data.get(field)
        return str(value).lower() in ("1", "true", "on", "yes", "y") if value is not None else False

    def items(self, field: str) -> list[str]:
        value = self.data.get(field)
        if value in (None, ""):
            return []
        if isinstance(value, str):
            return [x.strip() for x in value.replace("，", ",").split(",") if x.strip()]
        return [str(x).strip() for x in value if str(x).strip()]

    def check(self) -> None:
        if self.errors:
            raise ValidationError(self.errors)


def record_audit(user: User | None, action: str, obj: Any, **details: Any) -> None:
    """Append an audit entry for `action` on `obj` (no personal data in details)."""
    db.session.add(AuditEntry(user_id=user.id if user else None, action=action,
                              object_type=type(obj).__name__.lower(), object_id=getattr(obj, "id", None),
                              details=details))


def district_of(area: Area) -> Area:
    """The root (district) above an area."""
    root_id = int(area.path.strip("/").split("/")[0])
    return area if area.id == root_id else db.session.get(Area, root_id)


def check_location(fields: Fields, lat: float | None, lon: float | None, area: Area,
                   lat_field: str = "lat") -> None:
    """A location must be valid coordinates inside the area's district."""
    if lat is None or lon is None:
        return
    if not rules.valid_coordinates(lat, lon):
        fields.fail(lat_field, _l("Coordinates out of range."))
        return
    district = district_of(area)
    if not rules.within_area(lat, lon, district.lat, district.lon, district.radius_km):
        fields.fail(lat_field, _l("This location is outside %(d)s.", d=district.name))


def _skills_by_code(fields: Fields, field: str) -> list[Skill]:
    codes = fields.items(field)
    if not codes:
        return []
    found = {s.code: s for s in db.session.scalars(select(Skill).where(Skill.code.in_(codes)))}
    unknown = [c for c in codes if c not in found]
    if unknown:
        fields.fail(field, _l("Unknown skill: %(s)s.", s=", ".join(unknown)))
    return [found[c] for c in dict.fromkeys(codes) if c in found]


def read_demand_what(f: Fields, community: Area, default_title: str = "") -> dict[str, Any]:
    """Category, title and resident of a demand form (the resident must live in the community)."""
    category = None
    code = f.text("category", required=True, max_length=40)
    if code:
        category = db.session.scalar(select(Category).where(Category.code == code, Category.active))
        if category is None:
            f.fail("category", _l("Unknown category '%(c)s'.", c=code))
    resident = None
    resident_id = f.integer("resident", minimum=1, default=0)
    if resident_id:
        resident = db.session.get(Resident, resident_id)
        if resident is None or resident.community_id != community.id:
            f.fail("resident", _l("No such resident in this community."))
            resident = None
    title = f.text("title", max_length=120) or (category.name_zh if category else default_title)
    return {"category": category, "title": title, "resident": resident}


def read_demand_place(f: Fields, community: Area, resident: Resident | None) -> dict[str, Any]:
    """Where: the resident's home, a station, or a point inside the district."""
    kind = f.choice("location_kind", LocationKind, required=True)
    station, lat, lon = None, None, None
    address = f.text("address", max_length=200)
    if kind == LocationKind.HOME:
        if resident is None:
            f.fail("location_kind", _l("A visit at home needs a resident."))
        else:
            lat, lon, address = resident.lat, resident.lon, resident.address
    elif kind == LocationKind.STATION:
        station_id = f.integer("station", minimum=1)
        station = db.session.get(Station, station_id) if station_id else None
        if station is not None and station.area_id not in (community.id, community.parent_id):
            station = None  # another community's venue: not this community's to book
        if station_id and station is None:
            f.fail("station", _l("No such station in this community or its township."))
        elif station is not None:
            lat, lon, address = station.lat, station.lon, station.address or station.name
    elif kind == LocationKind.POINT:
        lat, lon = f.number("lat"), f.number("lon")
        check_location(f, lat, lon, community)
    return {"location_kind": kind, "station": station, "lat": lat, "lon": lon, "address": address}


def read_demand_when(f: Fields) -> dict[str, Any]:
    """A date and time, or a weekly recurrence."""
    day, start, end = f.date("date"), f.clock("start"), f.clock("end")
    if start is not None and end is not None and end <= start:
        f.fail("end", _l("The end must be after the start."))
    weekdays: list[int] = []
    repeat_until = None
    if f.flag("recurring"):
        raw = f.items("weekdays")
        try:
            weekdays = sorted({int(d) for d in raw})
        except ValueError:
            f.fail("weekdays", _l("Weekdays are numbers 0 (Monday) to 6 (Sunday)."))
        if not raw:
            f.fail("weekdays", _l("A weekly recurrence needs at least one day."))
        elif any(d < 0 or d > 6 for d in weekdays):
            f.fail("weekdays", _l("Weekdays are numbers 0 (Monday) to 6 (Sunday)."))
        repeat_until = f.date("repeat_until", required=False)
        if repeat_until and day and repeat_until < day:
            f.fail("repeat_until", _l("The recurrence must end on or after its first date."))
    duration = end - start if start is not None and end is not None else None
    return {"starts_on": day, "start_minute": start, "duration_minutes": duration,
            "weekdays": ",".join(map(str, weekdays)), "repeat_until": repeat_until}


def read_demand_team(f: Fields, data: Mapping[str, Any], category: Category | None,
                     previous_category_id: int | None = None) -> dict[str, Any]:
    """Headcount, minimum, priority, gender, skills and notes.

    Skills are read when the form sends them; otherwise a new (or changed) category brings its own.
    """
    people = f.integer("people", minimum=1, maximum=200, default=category.default_people if category else 1)
    min_people = f.integer("min_people", minimum=1, maximum=200,
                           default=category.default_min_people if category else 1)
    if people is not None and min_people is not None and people < min_people:
        f.fail("people", _l("The headcount cannot be below the minimum team (%(m)d).", m=min_people))
    values = {"people": people, "min_people": min_people,
              "priority": f.choice("priority", Priority, default=Priority.NORMAL),
              "gender": f.choice("gender", Gender), "notes": f.text("notes", max_length=2000)}
    if "skills" in data or "skills_any" in data:
        values["skills"], values["skills_any"] = _skills_by_code(f, "skills"), _skills_by_code(f, "skills_any")
    elif category is not None and category.id != previous_category_id:
        values["skills"], values["skills_any"] = (
            ([], list(category.skills)) if category.skills_any else (list(category.skills), []))
    return values


def create_demand(data: Mapping[str, Any], *, community: Area, user: User | None) -> Demand:
    """Post a demand for a community and expand its occurrences; raises ValidationError."""
    f = Fields(data)
    if community.level != AreaLevel.COMMUNITY:
        f.fail("community", _l("Demands are posted for a village or community."))
    values = read_demand_what(f, community)
    values.update(read_demand_place(f, community, values["resident"]))
    values.update(read_demand_when(f))
    values.update(read_demand_team(f, data, values["category"]))
    organizations = _organizations_by_id(f, "organizations")
    f.check()
    demand = Demand(community=community, created_by=user, status=DemandStatus.OPEN, organizations=organizations,
                    one_organization=f.flag("one_organization"), **values)
    db.session.add(demand)
    db.session.flush()
    materialize_occurrences(demand, demand.starts_on + timedelta(weeks=OCCURRENCE_HORIZON_WEEKS))
    record_audit(user, "create", demand, community=community.id)
    return demand


def _organizations_by_id(f: Fields, field: str) -> list[Organization]:
    ids_text = f.items(field)
    if not ids_text:
        return []
    try:
        ids = {int(x) for x in ids_text}
    except ValueError:
        f.fail(field, _l("Unknown organization."))
        return []
    found = list(db.session.scalars(select(Organization).where(Organization.id.in_(ids))))
    if len(found) != len(ids):
        f.fail(field, _l("Unknown organization."))
    return found


def materialize_occurrences(demand: Demand, through: date) -> list[DemandOccurrence]:
    """Create the demand's missing occurrences dated up to `through` (inclusive); return the new ones."""
    existing = {o.starts_at for o in demand.occurrences}
    created = []
    for day in rules.occurrence_dates(demand.starts_on, demand.weekday_list, demand.repeat_until,
                                      demand.starts_on, through + timedelta(days=1)):
        start, end = rules.occurrence_span(day, demand.start_minute, demand.duration_minutes)
        if start in existing:
            continue
        occ = DemandOccurrence(demand=demand, starts_at=start, ends_at=end, status=DemandStatus.OPEN)
        db.session.add(occ)
        created.append(occ)
    db.session.flush()
    return created


def create_resident(data: Mapping[str, Any], *, community: Area, user: User | None) -> Resident:
    """Register a resident of a community, with consent recorded; raises ValidationError."""
    f = Fields(data)
    name = f.text("name", required=True, max_length=40)
    phone_raw = f.text("phone", max_length=30)
    phone = rules.normalize_phone(phone_raw) if phone_raw else None
    if phone_raw and phone is None:
        f.fail("phone", _l("'%(p)s' is not a valid phone number.", p=phone_raw))
    address = f.text("address", required=True, max_length=200)
    lat, lon = f.number("lat"), f.number("lon")
    check_location(f, lat, lon, community)
    gender = f.choice("gender", Gender)
    birth_year = f.integer("birth_year", minimum=1900, maximum=date.today().year, default=0) or None
    consent = f.flag("consent")
    if not consent:
        f.fail("consent", _l("Record the resident's consent before saving their data."))
    f.check()
    resident = Resident(community=community, name=name, phone=phone, address=address, lat=lat, lon=lon,
                        gender=gender, birth_year=birth_year, needs_notes=f.text("needs_notes", max_length=2000),
                        consent_given_at=utcnow(), consent_recorded_by_id=user.id if user else None,
                        consent_note=f.text("consent_note", max_length=200))
    db.session.add(resident)
    db.session.flush()
    record_audit(user, "create", resident, community=community.id)
    return resident


def parse_slots(text: str) -> list[tuple[int, int, int]]:
    """Parse 'weekday HH:MM-HH:MM' entries separated by ';' into (weekday, start, end) triples."""
    slots = []
    for part in [p.strip() for p in (text or "").split(";") if p.strip()]:
        try:
            day_text, span = part.split(None, 1)
            start_text, end_text = span.split("-")
            day = int(day_text)
        except ValueError:
            raise ValueError(part) from None
        start, end = rules.parse_hhmm(start_text), rules.parse_hhmm(end_text)
        if start is None or end is None or not 0 <= day <= 6 or end <= start:
            raise ValueError(part)
        slots.append((day, start, end))
    return slots


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
    skills = _skills_by_code(f, "skills")
    try:
        slots = parse_slots(str(data.get("availability") or ""))
    except ValueError as exc:
        f.fail("availability", _l("Cannot read '%(p)s'; write e.g. '0 09:00-12:00; 3 14:00-17:00'.", p=exc))
        slots = []
    f.check()
    volunteer = Volunteer(real_name=name, phone=phone, home_area=area, lat=lat, lon=lon, gender=gender,
                          birth_year=birth_year, max_minutes_per_week=max_minutes,
                          preferred_minutes_per_week=preferred, max_travel_km=travel, skills=skills,
                          address=f.text("address", max_length=200), user=account,
                          slots=[AvailabilitySlot(weekday=d, start_minute=s, end_minute=e) for d, s, e in slots])
    db.session.add(volunteer)
    db.session.flush()
    record_audit(user, "create", volunteer)
    return volunteer


def names(items: Iterable[Any], attr: str = "name_zh") -> str:
    """Comma-joined display names (for messages)."""
    return ", ".join(getattr(i, attr) for i in items)


def update_category(category: Category, data: Mapping[str, Any], *, user: User) -> None:
    """Change a category's names, defaults, required skills and whether it is offered."""
    f = Fields(data)
    name_zh = f.text("name_zh", required=True, max_length=60)
    name_en = f.text("name_en", required=True, max_length=60)
    minutes = f.integer("default_minutes", minimum=15, maximum=1440)
    people = f.integer("default_people", minimum=1, maximum=200)
    min_people = f.integer("default_min_people", minimum=1, maximum=200)
    if people is not None and min_people is not None and min_people > people:
        f.fail("default_min_people", _l("The minimum team cannot exceed the headcount."))
    skills = _skills_by_code(f, "skills")
    f.check()
    category.name_zh, category.name_en = name_zh, name_en
    category.default_minutes, category.default_people, category.default_min_people = minutes, people, min_people
    category.skills = skills
    category.skills_any = f.flag("skills_any")
    category.active = f.flag("active")
    record_audit(user, "update", category, code=category.code)
    db.session.flush()


def create_skill(data: Mapping[str, Any], *, user: User) -> Skill:
    """Add a skill to the catalogue; the code is a short lowercase identifier."""
    f = Fields(data)
    code = f.text("code", required=True, max_length=40)
    if code and not (code.replace("_", "").isalnum() and code.isascii() and code == code.lower()):
        f.fail("code", _l("Use lowercase letters, digits and '_'."))
    elif code and db.session.scalar(select(Skill.id).where(Skill.code == code)):
        f.fail("code", _l("This code is taken."))
    name_zh = f.text("name_zh", required=True, max_length=60)
    name_en = f.text("name_en", required=True, max_length=60)
    f.check()
    skill = Skill(code=code, name_zh=name_zh, name_en=name_en, needs_certificate=f.flag("needs_certificate"))
    db.session.add(skill)
    db.session.flush()
    record_audit(user, "create", skill, code=code)
    return skill
