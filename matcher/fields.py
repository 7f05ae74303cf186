"""Reading raw input (a form, the CLI, a spreadsheet row, the JSON API) into checked values.

`Fields` collects one message per bad field so that a use case can report every problem at once
and write nothing; the readers below it are shared by the use cases that take the same kind of
value (skills by code, organizations by id, a location inside the district).

What every reader accepts (bad input is one message naming the field, never a database error):

- whole numbers are plain ASCII digits (an optional sign), within what the column holds: BIGINT,
  -2**63..2**63-1, unless the caller gives narrower bounds. Other scripts' digits ("١٢٣", "１２", "²"),
  decimals, exponents and lists are "Enter a whole number.";
- numbers are ASCII decimals and finite (no "nan", "inf", "1e400");
- text has no control characters other than tab and line breaks (PostgreSQL refuses NUL);
- dates are YYYY-MM-DD in ASCII, and the callers bound them (`date_window`):
  a demand's date from today to the configured horizon (`settings.demand_horizon_days`; DEMAND_PAST_DAYS
  ago only for recording a service already given, never from the form; the date a demand already has is
  always accepted when it is edited), the end of its weekly recurrence within the same horizon, and a
  volunteer's dated changes ("away", "extra") from AVAILABILITY_PAST_DAYS ago to
  AVAILABILITY_FUTURE_DAYS ahead. Birth years are bounded by their callers against today's year.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from . import rules
from .clock import local_today
from .db import db
from .errors import ValidationError
from .models import Area, Organization, Skill

# What a BIGINT (and SQLite's INTEGER) holds: ids and counts beyond it are bad input, not a crash.
MIN_INT = -(2**63)
MAX_INT = 2**63 - 1
# The largest row id: ids are INTEGER on PostgreSQL, where a larger one in a query is an error, not a miss.
MAX_ROW_ID = 2**31 - 1
# How far back and ahead dates are accepted (see the module's docstring).
DEMAND_PAST_DAYS = 31
FUTURE_DAYS = 2 * 366
AVAILABILITY_PAST_DAYS = 366
AVAILABILITY_FUTURE_DAYS = 5 * 366
# At most this many entries in a list field (skills, organizations): more is not a person's input.
MAX_ITEMS = 100

_INTEGER = re.compile(r"[+-]?[0-9]{1,40}")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,3})?")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_CLOCK = re.compile(r"[0-9]{1,2}:[0-9]{2}")
_CODE = re.compile(r"[a-z0-9_]{1,40}")
# Control characters (C0, DEL, C1) other than tab, line feed and carriage return.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def whole_number(value: Any) -> int | None:
    """The value of a plain ASCII whole number (an optional sign, at most 40 digits), else None."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value).strip()
    return int(text) if _INTEGER.fullmatch(text) else None


def parse_int(value: Any, minimum: int = MIN_INT, maximum: int = MAX_INT) -> int | None:
    """A plain ASCII whole number within [minimum, maximum], else None (lists, other scripts' digits too)."""
    number = whole_number(value)
    return number if number is not None and minimum <= number <= maximum else None


def parse_iso_date(value: Any) -> date | None:
    """A date written YYYY-MM-DD in ASCII digits, else None."""
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value.strip()):
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        return None


def parse_clock(value: Any) -> int | None:
    """Minutes from midnight for an ASCII 'HH:MM' (00:00-24:00), else None."""
    text = value.strip() if isinstance(value, str) else ""
    return rules.parse_hhmm(text) if _CLOCK.fullmatch(text) else None


def date_window(past_days: int, future_days: int) -> tuple[date, date]:
    """The dates from `past_days` before today to `future_days` after it (the service's today)."""
    today = local_today()
    return today - timedelta(days=past_days), today + timedelta(days=future_days)


def has_control(text: str) -> bool:
    """Whether the text holds a control character other than tab and line breaks (NUL among them)."""
    return bool(_CONTROL.search(text))


def shown(value: Any, limit: int = 40) -> str:
    """A piece of rejected input as a message may quote it: control characters replaced, cut short."""
    text = _CONTROL.sub("?", str(value))
    return text if len(text) <= limit else text[:limit] + "…"


class Fields:
    """Reads raw input values and collects one message per bad field."""

    def __init__(self, data: Mapping[str, Any]):
        self.data = data
        self.errors: dict[str, str] = {}

    def fail(self, field: str, message: Any) -> None:
        self.errors.setdefault(field, str(message))

    def text(self, field: str, *, required: Any = False, max_length: int = 200) -> str:
        """Stripped text; "" when it holds control characters (the field is reported).

        `required` True refuses an empty value with "This field is required."; a message instead says
        why this one is needed (a reason the people concerned are told, say)."""
        value = self.data.get(field)
        value = "" if value is None else str(value).strip()
        if has_control(value):
            self.fail(field, _l("Remove the control characters (such as NUL) from this text."))
            return ""
        if required and not value:
            self.fail(field, _l("This field is required.") if required is True else required)
        elif len(value) > max_length:
            self.fail(field, _l("At most %(n)d characters.", n=max_length))
        return value

    def integer(self, field: str, *, minimum: int | None = None, maximum: int | None = None,
                default: int | None = None) -> int | None:
        """A plain ASCII whole number within [minimum, maximum] (each defaults to the BIGINT limit)."""
        value = self.data.get(field)
        if value is None or (isinstance(value, str) and not value.strip()):
            if default is None:
                self.fail(field, _l("This field is required."))
            return default
        low = MIN_INT if minimum is None else max(minimum, MIN_INT)
        high = MAX_INT if maximum is None else min(maximum, MAX_INT)
        number = whole_number(value)
        if number is None:
            self.fail(field, _l("Enter a whole number."))
            return None
        if not low <= number <= high:
            self.fail(field, _l("Enter a number from %(a)s to %(b)s.", a=low, b=high))
            return None
        return number

    def number(self, field: str) -> float | None:
        """A finite decimal number written in ASCII (no "nan", "inf", other scripts' digits)."""
        value = self.data.get(field)
        if value is None or (isinstance(value, str) and not value.strip()):
            self.fail(field, _l("This field is required."))
            return None
        text = str(value).strip() if isinstance(value, str | int | float) and not isinstance(value, bool) else ""
        number = float(text) if len(text) <= 40 and _DECIMAL.fullmatch(text) else math.nan
        if not math.isfinite(number):
            self.fail(field, _l("Enter a number."))
            return None
        return number

    def date(self, field: str, *, required: bool = True, earliest: date | None = None,
             latest: date | None = None, keep: date | None = None) -> date | None:
        """A YYYY-MM-DD date within [earliest, latest]; `keep` (the value stored now) is always accepted."""
        value = self.data.get(field)
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                self.fail(field, _l("This field is required."))
            return None
        day = parse_iso_date(value)
        if day is None:
            self.fail(field, _l("Enter a date as YYYY-MM-DD."))
            return None
        if day != keep and ((earliest is not None and day < earliest) or (latest is not None and day > latest)):
            self.fail(field, _l("Enter a date from %(a)s to %(b)s.", a=(earliest or date.min).isoformat(),
                                b=(latest or date.max).isoformat()))
            return None
        return day

    def clock(self, field: str) -> int | None:
        minutes = parse_clock(self.data.get(field))
        if minutes is None:
            self.fail(field, _l("Enter a time as HH:MM."))
        return minutes

    def choice(self, field: str, enum_cls, *, default=None, required: bool = False):
        value = self.data.get(field)
        if value is None or value == "":
            if required:
                self.fail(field, _l("This field is required."))
            return default
        try:
            if not isinstance(value, str):
                raise ValueError(value)
            return enum_cls(value)
        except ValueError:
            self.fail(field, _l("Unknown value '%(v)s'.", v=shown(value)))
            return None

    def flag(self, field: str) -> bool:
        value = self.data.get(field)
        return str(value).lower() in ("1", "true", "on", "yes", "y") if value is not None else False

    def items(self, field: str) -> list[str]:
        """A list field: a list of values, or one text separated by commas."""
        value = self.data.get(field)
        if value is None or value == "":
            return []
        if isinstance(value, str):
            return [x.strip() for x in value.replace("，", ",").split(",") if x.strip()]
        if not isinstance(value, list | tuple | set):
            value = [value]
        return [str(x).strip() for x in value if str(x).strip()]

    def check(self) -> None:
        if self.errors:
            raise ValidationError(self.errors)


def district_of(area: Area) -> Area:
    """The root (district) above an area.

    Walked through `parent`, which holds what it loaded: an import judging 10,000 rows of a few
    communities finds the district once, where a `session.get` by id queried again for every row
    (the session's identity map keeps only the objects someone still holds)."""
    while area.parent_id is not None:
        area = area.parent
    return area


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
    if len(codes) > MAX_ITEMS:
        fields.fail(field, _l("At most %(n)d entries.", n=MAX_ITEMS))
        return []
    # Only what could be a skill's code is looked up; anything else is simply unknown.
    plausible = [c for c in codes if _CODE.fullmatch(c)]
    found = {s.code: s for s in db.session.scalars(select(Skill).where(Skill.code.in_(plausible)))} if plausible else {}
    unknown = [c for c in codes if c not in found]
    if unknown:
        fields.fail(field, _l("Unknown skill: %(s)s.", s=", ".join(shown(c) for c in unknown[:5])))
    return [found[c] for c in dict.fromkeys(codes) if c in found]


def organizations_by_id(f: Fields, field: str) -> list[Organization]:
    """The organizations named by id in `field` (unknown ids are reported)."""
    ids_text = f.items(field)
    if not ids_text:
        return []
    ids = {parse_int(x, 1, MAX_ROW_ID) for x in ids_text}
    if None in ids or len(ids_text) > MAX_ITEMS:
        f.fail(field, _l("Unknown organization."))
        return []
    found = list(db.session.scalars(select(Organization).where(Organization.id.in_(ids))))
    if len(found) != len(ids):
        f.fail(field, _l("Unknown organization."))
    return found
