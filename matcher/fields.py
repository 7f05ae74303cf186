"""Reading raw input (a form, the CLI, a spreadsheet row, the JSON API) into checked values.

`Fields` collects one message per bad field so that a use case can report every problem at once
and write nothing; the readers below it are shared by the use cases that take the same kind of
value (skills by code, organizations by id, a location inside the district).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from . import rules
from .db import db
from .errors import ValidationError
from .models import Area, Organization, Skill


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


def skills_by_code(fields: Fields, field: str) -> list[Skill]:
    """The catalogue skills named by code in `field` (unknown codes are reported)."""
    codes = fields.items(field)
    if not codes:
        return []
    found = {s.code: s for s in db.session.scalars(select(Skill).where(Skill.code.in_(codes)))}
    unknown = [c for c in codes if c not in found]
    if unknown:
        fields.fail(field, _l("Unknown skill: %(s)s.", s=", ".join(unknown)))
    return [found[c] for c in dict.fromkeys(codes) if c in found]


def organizations_by_id(f: Fields, field: str) -> list[Organization]:
    """The organizations named by id in `field` (unknown ids are reported)."""
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
