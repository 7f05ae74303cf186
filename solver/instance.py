"""Read and check a `linli.instance/1` document into typed, immutable data.

Times become integer minutes since `week_start`, availability windows are merged, defaults are
applied. Every invalid case of the contract raises `InstanceError` with a message that names the item
(its id, or its position when it has none) and the field; nothing else escapes `parse_instance`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime

SCHEMA = "linli.instance/1"

DEFAULT_PRIORITY_WEIGHTS = {"urgent": 1000.0, "high": 400.0, "normal": 150.0, "low": 50.0}
DEFAULT_WEIGHTS = {
    "travel_km": 2.0,
    "over_preferred_hour": 20.0,
    "distinct_volunteer_per_resident": 30.0,
    "familiar_bonus": 40.0,
    "keep_previous": 0.0,
}
DEFAULT_TRAVEL = {"speed_kmh": 25.0, "detour_factor": 1.3}


class InstanceError(ValueError):
    """An instance that breaks the contract; the message names the item and the field."""


@dataclass(frozen=True)
class Weights:
    """Objective weights in score units (see the contract's objective)."""

    priority: dict[str, float]
    travel_km: float
    over_preferred_hour: float
    distinct_volunteer_per_resident: float
    familiar_bonus: float
    keep_previous: float


@dataclass(frozen=True)
class Commitment:
    """A fixed booking elsewhere: minutes since week start and where it takes place."""

    start: int
    end: int
    lat: float
    lon: float


@dataclass(frozen=True)
class Volunteer:
    """One volunteer with merged availability windows (minutes since week start)."""

    id: str
    lat: float
    lon: float
    skills: frozenset[str]
    gender: str | None
    organizations: frozenset[str]
    windows: tuple[tuple[int, int], ...]
    commitments: tuple[Commitment, ...]
    max_minutes: int
    preferred_minutes: int
    max_travel_km: float

    @property
    def committed_minutes(self) -> int:
        """Total duration of the fixed commitments."""
        return sum(c.end - c.start for c in self.commitments)


@dataclass(frozen=True)
class Demand:
    """One demand occurrence; `start`/`end` in minutes since week start."""

    id: str
    category: str
    lat: float
    lon: float
    start: int
    end: int
    skills: frozenset[str]
    skills_any: frozenset[str]
    people: int
    min_people: int
    priority: str
    resident: str | None
    organizations: frozenset[str]
    one_organization: bool
    gender: str | None

    @property
    def minutes(self) -> int:
        """Duration in minutes."""
        return self.end - self.start


@dataclass(frozen=True)
class Pin:
    """A pair that must be in the schedule; `override` waives rules 1–6 for it."""

    demand: str
    volunteer: str
    override: bool


@dataclass
class Instance:
    """A parsed instance; `raw` keeps the input document for building sub-instances."""

    name: str
    week_start: datetime
    speed_kmh: float
    detour_factor: float
    weights: Weights
    volunteers: list[Volunteer]
    demands: list[Demand]
    pinned: list[Pin]
    forbidden: frozenset[tuple[str, str]]
    previous: frozenset[tuple[str, str]]
    familiar: frozenset[tuple[str, str]]
    raw: dict = field(repr=False, default_factory=dict)
    volunteer_index: dict[str, int] = field(init=False, repr=False)
    demand_index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.volunteer_index = {v.id: i for i, v in enumerate(self.volunteers)}
        self.demand_index = {d.id: i for i, d in enumerate(self.demands)}

    def travel_minutes(self, km: float) -> float:
        """Travel time in minutes for a (detoured) distance in km."""
        return km / self.speed_kmh * 60.0


# ---------------------------------------------------------------- field readers


def _is_set(value) -> bool:
    """An empty list or string counts as not set."""
    return value is not None and value != "" and value != [] and value != {}


def _need(obj: dict, key: str, where: str):
    if key not in obj or not _is_set(obj[key]) and not isinstance(obj[key], list):
        raise InstanceError(f"{where}: missing required field '{key}'")
    return obj[key]


def _need_obj(value, where: str) -> dict:
    if not isinstance(value, dict):
        raise InstanceError(f"{where}: must be an object")
    return value


def _string(value, where: str) -> str:
    if not isinstance(value, str):
        raise InstanceError(f"{where}: must be a string")
    return value


def _number(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InstanceError(f"{where}: must be a number")
    return float(value)


def _integer(value, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InstanceError(f"{where}: must be an integer")
    return value


def _boolean(value, where: str) -> bool:
    if not isinstance(value, bool):
        raise InstanceError(f"{where}: must be a boolean")
    return value


def _list(value, where: str) -> list:
    if not isinstance(value, list):
        raise InstanceError(f"{where}: must be a list")
    return value


def _strings(value, where: str) -> frozenset[str]:
    if not _is_set(value):
        return frozenset()
    items = _list(value, where)
    return frozenset(_string(s, f"{where}[{i}]") for i, s in enumerate(items))


def _optional_string(obj: dict, key: str, where: str) -> str | None:
    value = obj.get(key)
    if not _is_set(value):
        return None
    return _string(value, f"{where}: field '{key}'")


def _time(value, where: str) -> datetime:
    text = _string(value, where)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InstanceError(f"{where}: not an ISO 8601 time: {text!r}") from None
    if moment.tzinfo is None:
        raise InstanceError(f"{where}: time {text!r} has no UTC offset")
    if moment.second or moment.microsecond:
        raise InstanceError(f"{where}: time {text!r} has non-zero seconds")
    return moment


def _minutes(moment: datetime, week_start: datetime) -> int:
    return round((moment - week_start).total_seconds() / 60)


def _location(value, where: str) -> tuple[float, float]:
    loc = _need_obj(value, where)
    lat = _number(_need(loc, "lat", where), f"{where}.lat")
    lon = _number(_need(loc, "lon", where), f"{where}.lon")
    if not -90 <= lat <= 90:
        raise InstanceError(f"{where}.lat: latitude {lat} outside -90..90")
    if not -180 <= lon <= 180:
        raise InstanceError(f"{where}.lon: longitude {lon} outside -180..180")
    return lat, lon


# Times read so far, by text and week (an instance repeats a few hundred slot times thousands of times).
_TIMES: dict[tuple[str, datetime], int] = {}


def _cached_minutes(value, where: str, week_start: datetime) -> int:
    key = (value, week_start) if type(value) is str else None
    minutes = _TIMES.get(key) if key else None
    if minutes is None:
        minutes = _minutes(_time(value, where), week_start)
        if key and len(_TIMES) < 100_000:
            _TIMES[key] = minutes
    return minutes


def _interval(obj, where: str, week_start: datetime) -> tuple[int, int]:
    item = _need_obj(obj, where)
    start = _cached_minutes(_need(item, "start", where), f"{where}: field 'start'", week_start)
    end = _cached_minutes(_need(item, "end", where), f"{where}: field 'end'", week_start)
    if end <= start:
        raise InstanceError(f"{where}: field 'end' is not after 'start'")
    return start, end


def merge_windows(windows: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    """Merge availability windows that overlap or touch; result sorted by start."""
    merged: list[list[int]] = []
    for start, end in sorted(windows):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return tuple((s, e) for s, e in merged)


def _nonneg(value, where: str, as_int: bool = False):
    number = _integer(value, where) if as_int else _number(value, where)
    if number < 0:
        raise InstanceError(f"{where}: must not be negative")
    return number


# ---------------------------------------------------------------- sections


def _read_weights(doc: dict) -> Weights:
    given = doc.get("weights")
    given = {} if not _is_set(given) else _need_obj(given, "weights")
    values = {}
    for key, default in DEFAULT_WEIGHTS.items():
        values[key] = default if key not in given else _nonneg(given[key], f"weights: field '{key}'")
    if _is_set(given.get("priority")):
        prio = _need_obj(given["priority"], "weights: field 'priority'")
        priority = {
            _string(k, "weights.priority key"): _nonneg(v, f"weights.priority: field '{k}'")
            for k, v in prio.items()
        }
    else:
        priority = dict(DEFAULT_PRIORITY_WEIGHTS)
    return Weights(priority=priority, **values)


def _read_travel(doc: dict) -> tuple[float, float]:
    given = doc.get("travel")
    given = {} if not _is_set(given) else _need_obj(given, "travel")
    out = []
    for key, default in DEFAULT_TRAVEL.items():
        value = default if key not in given else _number(given[key], f"travel: field '{key}'")
        if value <= 0:
            raise InstanceError(f"travel: field '{key}' must be above 0")
        out.append(value)
    return out[0], out[1]


def _item_name(item, position: int, kind: str) -> str:
    if isinstance(item, dict) and isinstance(item.get("id"), str) and item["id"]:
        return f"{kind} {item['id']!r}"
    return f"{kind} at position {position}"


def _read_volunteer(item, position: int, week_start: datetime) -> Volunteer:
    where = _item_name(item, position, "volunteer")
    item = _need_obj(item, where)
    vid = _string(_need(item, "id", where), f"{where}: field 'id'")
    lat, lon = _location(_need(item, "home", where), f"{where}: field 'home'")
    availability = _list(_need(item, "availability", where), f"{where}: field 'availability'")
    windows = [
        _interval(w, f"{where}: availability[{i}]", week_start) for i, w in enumerate(availability)
    ]
    commitments = []
    for i, c in enumerate(_list(item.get("commitments") or [], f"{where}: field 'commitments'")):
        cwhere = f"{where}: commitments[{i}]"
        start, end = _interval(c, cwhere, week_start)
        clat, clon = _location(_need(c, "location", cwhere), f"{cwhere}: field 'location'")
        commitments.append(Commitment(start, end, clat, clon))
    max_minutes = _nonneg(
        _need(item, "max_minutes_per_week", where), f"{where}: field 'max_minutes_per_week'", True
    )
    preferred = item.get("preferred_minutes_per_week")
    preferred = (
        max_minutes
        if preferred is None or preferred == ""
        else _nonneg(preferred, f"{where}: field 'preferred_minutes_per_week'", True)
    )
    max_travel = _nonneg(_need(item, "max_travel_km", where), f"{where}: field 'max_travel_km'")
    return Volunteer(
        id=vid,
        lat=lat,
        lon=lon,
        skills=_strings(item.get("skills"), f"{where}: field 'skills'"),
        gender=_optional_string(item, "gender", where),
        organizations=_strings(item.get("organizations"), f"{where}: field 'organizations'"),
        windows=merge_windows(windows),
        commitments=tuple(sorted(commitments, key=lambda c: (c.start, c.end))),
        max_minutes=max_minutes,
        preferred_minutes=preferred,
        max_travel_km=max_travel,
    )


def _read_demand(item, position: int, week_start: datetime, priorities: dict) -> Demand:
    where = _item_name(item, position, "demand")
    item = _need_obj(item, where)
    did = _string(_need(item, "id", where), f"{where}: field 'id'")
    lat, lon = _location(_need(item, "location", where), f"{where}: field 'location'")
    start, end = _interval(item, where, week_start)
    people = _integer(_need(item, "people", where), f"{where}: field 'people'")
    if people < 1:
        raise InstanceError(f"{where}: field 'people' must be at least 1")
    min_people = item.get("min_people")
    min_people = 1 if min_people is None or min_people == "" else _integer(
        min_people, f"{where}: field 'min_people'"
    )
    if not 1 <= min_people <= people:
        raise InstanceError(f"{where}: field 'min_people' must be within 1..people ({people})")
    priority = _optional_string(item, "priority", where) or "normal"
    if priority not in priorities:
        raise InstanceError(
            f"{where}: field 'priority' {priority!r} is not one of {sorted(priorities)}"
        )
    one_org = item.get("one_organization")
    one_org = False if one_org is None else _boolean(one_org, f"{where}: field 'one_organization'")
    return Demand(
        id=did,
        category=_optional_string(item, "category", where) or "other",
        lat=lat,
        lon=lon,
        start=start,
        end=end,
        skills=_strings(item.get("skills"), f"{where}: field 'skills'"),
        skills_any=_strings(item.get("skills_any"), f"{where}: field 'skills_any'"),
        people=people,
        min_people=min_people,
        priority=priority,
        resident=_optional_string(item, "resident", where),
        organizations=_strings(item.get("organizations"), f"{where}: field 'organizations'"),
        one_organization=one_org,
        gender=_optional_string(item, "gender", where),
    )


def _read_pairs(doc: dict, key: str, first: str, demand_ids, volunteer_ids) -> list[dict]:
    items = doc.get(key)
    if not _is_set(items):
        return []
    items = _list(items, key)
    out = []
    for i, item in enumerate(items):
        where = f"{key}[{i}]"
        item = _need_obj(item, where)
        a = _string(_need(item, first, where), f"{where}: field '{first}'")
        v = _string(_need(item, "volunteer", where), f"{where}: field 'volunteer'")
        if first == "demand" and a not in demand_ids:
            raise InstanceError(f"{where}: field 'demand': unknown demand id {a!r}")
        if v not in volunteer_ids:
            raise InstanceError(f"{where}: field 'volunteer': unknown volunteer id {v!r}")
        out.append(item | {first: a, "volunteer": v})
    return out


def _check_unique(ids: list[str], kind: str) -> None:
    seen = set()
    for i, ident in enumerate(ids):
        if ident in seen:
            raise InstanceError(f"{kind} at position {i}: field 'id': duplicate id {ident!r}")
        seen.add(ident)


def parse_instance(source: dict | str | bytes) -> Instance:
    """Parse and check an instance (a dict or JSON text); raise `InstanceError` when invalid."""
    if isinstance(source, (str, bytes, bytearray)):
        try:
            doc = json.loads(source)
        except (ValueError, RecursionError) as exc:
            raise InstanceError(f"instance: not valid JSON ({exc})") from None
    else:
        doc = source
    doc = _need_obj(doc, "instance")
    if doc.get("schema") != SCHEMA:
        raise InstanceError(f"instance: field 'schema' must be {SCHEMA!r}, got {doc.get('schema')!r}")
    name = doc.get("name")
    name = "" if name is None else _string(name, "instance: field 'name'")
    week_start = _time(_need(doc, "week_start", "instance"), "instance: field 'week_start'")
    speed, detour = _read_travel(doc)
    weights = _read_weights(doc)
    volunteers = [
        _read_volunteer(v, i, week_start)
        for i, v in enumerate(_list(_need(doc, "volunteers", "instance"), "instance: field 'volunteers'"))
    ]
    demands = [
        _read_demand(d, i, week_start, weights.priority)
        for i, d in enumerate(_list(_need(doc, "demands", "instance"), "instance: field 'demands'"))
    ]
    _check_unique([v.id for v in volunteers], "volunteer")
    _check_unique([d.id for d in demands], "demand")
    vids = {v.id for v in volunteers}
    dids = {d.id for d in demands}
    pins = []
    for i, p in enumerate(_read_pairs(doc, "pinned", "demand", dids, vids)):
        override = p.get("override")
        override = False if override is None else _boolean(override, f"pinned[{i}]: field 'override'")
        pins.append(Pin(p["demand"], p["volunteer"], override))
    forbidden = frozenset(
        (p["demand"], p["volunteer"]) for p in _read_pairs(doc, "forbidden", "demand", dids, vids)
    )
    for i, pin in enumerate(pins):
        if (pin.demand, pin.volunteer) in forbidden:
            raise InstanceError(
                f"pinned[{i}]: pair ({pin.demand!r}, {pin.volunteer!r}) is also forbidden"
            )
    previous = frozenset(
        (p["demand"], p["volunteer"]) for p in _read_pairs(doc, "previous", "demand", dids, vids)
    )
    familiar = frozenset(
        (p["resident"], p["volunteer"]) for p in _read_pairs(doc, "familiar", "resident", dids, vids)
    )
    unique_pins = list({(p.demand, p.volunteer): p for p in pins}.values())
    return Instance(
        name=name,
        week_start=week_start,
        speed_kmh=speed,
        detour_factor=detour,
        weights=weights,
        volunteers=volunteers,
        demands=demands,
        pinned=unique_pins,
        forbidden=forbidden,
        previous=previous,
        familiar=familiar,
        raw=doc,
    )
