"""Pure rules of the domain: phone numbers, places, times, recurrences, hours and stars.

No database access here; operations call these and turn failures into ValidationError.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

import phonenumbers

from solver.geo import point_distance_km
from solver.instance import DEFAULT_TRAVEL
from solver.validation import items_conflict

# The service's travel model, as written into every solver instance (the solver's defaults): road
# distance is the great-circle distance times DETOUR_FACTOR, travelled at TRAVEL_SPEED_KMH.
TRAVEL_SPEED_KMH = DEFAULT_TRAVEL["speed_kmh"]
DETOUR_FACTOR = DEFAULT_TRAVEL["detour_factor"]
_EPOCH = datetime(2000, 1, 1)


def normalize_phone(raw: str, region: str = "CN") -> str | None:
    """E.164 form of a valid phone number (mobile or landline), or None when it is not one."""
    text = (raw or "").strip()
    if not text:
        return None
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def national_phone(phone: str | None) -> str:
    """A stored E.164 number as people in China write it: +8613812345678 → 13812345678."""
    if not phone:
        return ""
    return phone[3:] if phone.startswith("+86") else phone.lstrip("+")


def mask_phone(phone: str | None) -> str:
    """Show only the first three and last four digits of the national number: 138****1234."""
    if not phone:
        return ""
    digits = national_phone(phone)
    if len(digits) < 8:
        return "*" * len(digits)
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in km (the solver's sphere of radius 6371.0 km)."""
    return point_distance_km(lat1, lon1, lat2, lon2, 1.0)


def road_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Estimated road distance: great-circle distance times the detour factor."""
    return point_distance_km(lat1, lon1, lat2, lon2, DETOUR_FACTOR)


def _minutes(moment: datetime) -> float:
    return (moment - _EPOCH).total_seconds() / 60.0


def too_close(a_start: datetime, a_end: datetime, a_lat: float, a_lon: float,
              b_start: datetime, b_end: datetime, b_lat: float, b_lon: float) -> bool:
    """Two services overlap, or leave too little time to travel from the earlier to the later.

    The solver's rule 7 itself (`solver.validation.items_conflict`), on local datetimes.
    """
    return items_conflict((_minutes(a_start), _minutes(a_end), a_lat, a_lon),
                          (_minutes(b_start), _minutes(b_end), b_lat, b_lon), DETOUR_FACTOR, TRAVEL_SPEED_KMH)


def valid_coordinates(lat: float, lon: float) -> bool:
    """Latitude in −90..90 and longitude in −180..180, both finite."""
    return math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180


def within_area(lat: float, lon: float, centre_lat: float, centre_lon: float, radius_km: float) -> bool:
    """Whether a point lies within `radius_km` of an area's centre."""
    return haversine_km(lat, lon, centre_lat, centre_lon) <= radius_km


def parse_hhmm(text: str) -> int | None:
    """Minutes from midnight for 'HH:MM' (00:00–24:00), or None."""
    try:
        hh, mm = (text or "").strip().split(":")
        h, m = int(hh), int(mm)
    except ValueError:
        return None
    if not (0 <= h <= 24 and 0 <= m < 60) or (h == 24 and m != 0):
        return None
    return h * 60 + m


def format_minutes(minutes: int) -> str:
    """'HH:MM' for minutes from midnight."""
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def week_monday(day: date) -> date:
    """The Monday of the week containing `day`."""
    return day - timedelta(days=day.weekday())


def occurrence_dates(starts_on: date, weekdays: Iterable[int], repeat_until: date | None,
                     window_start: date, window_end: date) -> Iterator[date]:
    """Dates of a demand's occurrences inside [window_start, window_end).

    A single demand (no weekdays) occurs on `starts_on` only; a weekly one on each
    listed weekday from `starts_on` through `repeat_until` (inclusive, open-ended if None).
    """
    days = sorted(set(weekdays))
    if not days:
        if window_start <= starts_on < window_end:
            yield starts_on
        return
    day = max(starts_on, window_start)
    last = window_end - timedelta(days=1)
    if repeat_until is not None:
        last = min(last, repeat_until)
    while day <= last:
        if day.weekday() in days:
            yield day
        day += timedelta(days=1)


def occurrence_span(day: date, start_minute: int, duration_minutes: int) -> tuple[datetime, datetime]:
    """Local start and end datetimes of an occurrence on `day`."""
    start = datetime.combine(day, time()) + timedelta(minutes=start_minute)
    return start, start + timedelta(minutes=duration_minutes)


def credited_hours(minutes: float, step_minutes: int = 30, floor_minutes: int = 15) -> Decimal:
    """Service hours for minutes served: rounded to the nearest half hour, under 15 minutes none.

    15–44 min → 0.5 h, 45–74 min → 1 h, ... (travel is never part of `minutes`).
    """
    if minutes < floor_minutes:
        return Decimal("0")
    steps = (Decimal(str(minutes)) / step_minutes).quantize(Decimal("1"), rounding=ROUND_HALF_UP)
    return (steps * step_minutes / Decimal(60)).quantize(Decimal("0.1"))


def star_level(hours: Decimal | float, thresholds: Iterable[float] = (100, 300, 600, 1000, 1500)) -> int:
    """Stars (0–5) earned by cumulative hours under the configured thresholds."""
    return sum(1 for t in thresholds if float(hours) >= t)
