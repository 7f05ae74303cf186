"""Realistic synthetic instances, deterministic by seed: township, district and city presets.

A district like the demo's: ~25 townships around lat 29.3, lon 107.7 (Chongqing), 8 villages each,
volunteers living around their village (retirees free on weekday mornings and afternoons, workers on
evenings and weekends, students on weekends), skills in the domain guide's proportions, community
organizations per township plus a few district-wide teams, recurring elderly-care visits to the same
residents, mediation and culture teams dispatched to one organization, few urgent demands, and
`familiar` pairs from earlier weeks. A city is ten such districts side by side.

Shapes are modifiers on top of a preset, each something a real district can look like (`SHAPES`):
`long_travel` (volunteers who travel far: one huge component), `teams` (team dispatch to organizations),
`cross_area` (commitments already published in a neighbouring area), `either_or` (alternative skills),
`familiar` (residents with several visits and several known volunteers), `scarce` (half the volunteers,
more urgent demands) and `small_areas` (many small neighbourhoods, short ranges: many small components).
`small_areas` and `familiar` change how the week is drawn; the others edit the drawn week, each with its
own random stream, so a shape leaves the rest of the instance as the preset has it. Without shapes the
output is exactly the preset's.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

WEEK_START = datetime.fromisoformat("2026-11-30T00:00+08:00")
CENTER = (29.3, 107.7)

PRESETS = {
    "township": {"districts": 1, "townships": 1, "volunteers": 500, "demands": 150},
    "district": {"districts": 1, "townships": 25, "volunteers": 4000, "demands": 1200},
    "city": {"districts": 10, "townships": 25, "volunteers": 40000, "demands": 12000},
}

SKILL_RATES = {  # by volunteer type: retiree, worker, student
    "elder_care": (0.55, 0.25, 0.25),
    "childcare": (0.15, 0.12, 0.20),
    "mediation": (0.12, 0.06, 0.01),
    "first_aid": (0.15, 0.25, 0.20),
    "medical": (0.06, 0.06, 0.03),
    "counselling": (0.05, 0.06, 0.04),
    "performance": (0.15, 0.08, 0.25),
    "lecturing": (0.10, 0.10, 0.05),
    "legal": (0.03, 0.05, 0.02),
    "social_work": (0.06, 0.08, 0.05),
}

# category: (share, skills, skills_any, people range, min_people, slots, minutes, one_org chance)
CATEGORIES = {
    "childcare": (0.10, ["childcare"], [], (1, 2), 1, "after_school", (120,), 0.0),
    "dispute_mediation": (0.05, ["mediation"], [], (2, 3), 2, "office", (90, 120), 0.6),
    "health": (0.10, [], ["medical", "first_aid"], (1, 2), 1, "morning", (120, 180), 0.0),
    "mental_health": (0.04, ["counselling"], [], (1, 1), 1, "office", (60, 90), 0.0),
    "culture_sports": (0.10, ["performance"], [], (3, 6), 2, "weekend_or_evening", (120, 180), 0.5),
    "policy_outreach": (0.06, ["lecturing"], [], (1, 1), 1, "office", (90, 120), 0.0),
    "customs_reform": (0.04, [], [], (2, 4), 1, "weekend_or_evening", (120,), 0.3),
    "environment": (0.06, [], [], (4, 8), 2, "weekend", (120, 180), 0.3),
    "legal_aid": (0.03, ["legal"], [], (1, 1), 1, "office", (90, 120), 0.0),
    "emergency_relief": (0.02, ["first_aid"], [], (3, 5), 2, "any", (180, 240), 0.0),
}
ELDER_SHARE = 0.40

# In the order they are applied; `small_areas` and `long_travel` contradict each other.
SHAPES = ("small_areas", "familiar", "teams", "either_or", "cross_area", "long_travel", "scarce")

# Team dispatch (`teams`): people range per category that goes to an organization's team.
TEAM_SIZES = {
    "childcare": (2, 3), "dispute_mediation": (2, 3), "health": (2, 4), "culture_sports": (3, 6),
    "customs_reform": (2, 4), "environment": (3, 6), "emergency_relief": (3, 6),
}
TEAM_SHARE = 0.75
WIDE_TEAMS = 12  # district-wide organizations per district with `teams` (5 without)

# Alternative skills (`either_or`): per category, (skills, skills_any) variants a demand may take.
EITHER_OR = {
    "elderly_care": [(["elder_care"], ["first_aid", "medical"]), ([], ["elder_care", "social_work"])],
    "childcare": [(["childcare"], ["first_aid", "lecturing"]), ([], ["childcare", "social_work"])],
    "dispute_mediation": [(["mediation"], ["legal", "counselling"]), ([], ["mediation", "legal", "social_work"])],
    "health": [([], ["medical", "first_aid", "elder_care"]), (["first_aid"], ["medical", "elder_care"])],
    "mental_health": [([], ["counselling", "social_work"])],
    "culture_sports": [([], ["performance", "lecturing"])],
    "policy_outreach": [([], ["lecturing", "legal", "social_work"])],
    "customs_reform": [([], ["lecturing", "mediation", "social_work"])],
    "legal_aid": [([], ["legal", "mediation"]), (["legal"], ["mediation", "counselling"])],
    "emergency_relief": [(["first_aid"], ["medical", "elder_care"]), ([], ["first_aid", "medical"])],
}
EITHER_OR_SHARE = 0.7
DENSE_SCALE = 0.65  # `long_travel`: the map's scale (a dense city)
SHORT_RANGE = (0.3, 0.5, 1.0, 3.0)  # `small_areas`: range factor low, high; km at least, at most


def parse_shapes(shapes: str | Iterable[str]) -> tuple[str, ...]:
    """Shape names (a comma-separated string or a list) in the order they are applied; ValueError names
    an unknown one or a contradictory pair."""
    names = shapes.split(",") if isinstance(shapes, str) else list(shapes)
    names = [n.strip() for n in names if n.strip()]
    unknown = [n for n in names if n not in SHAPES]
    if unknown:
        raise ValueError(f"unknown shape {unknown[0]!r} (known: {', '.join(sorted(SHAPES))})")
    if "small_areas" in names and "long_travel" in names:
        raise ValueError("shapes 'small_areas' and 'long_travel' contradict each other")
    return tuple(n for n in SHAPES if n in names)


@dataclass
class _World:
    """What the drawn week knows beyond the document: where each volunteer and demand belongs."""

    townships: list
    local: dict
    wide: dict
    volunteer_township: list[int]
    demand_township: list[int]


def _at(day: int, hour: float) -> str:
    return (WEEK_START + timedelta(days=day, minutes=round(hour * 60))).isoformat(timespec="minutes")


def _window(day: int, start: float, end: float) -> dict:
    return {"start": _at(day, start), "end": _at(day, end)}


def _places(rng, spec: dict, small: bool = False) -> tuple[list, list]:
    """District centres, townships and villages: returns (township list, village list) with coords.
    `small` (the `small_areas` shape): three times as many townships of 2–3 close villages each, over the
    same ground (a township preset becomes 6 small townships)."""
    townships, villages = [], []
    for k in range(spec["districts"]):
        dlat = CENTER[0] + (k // 5) * 0.55
        dlon = CENTER[1] + (k % 5) * 0.62
        count = max(6, 3 * spec["townships"]) if small else spec["townships"]
        for _ in range(count):
            if spec["townships"] == 1 and not small:
                tlat, tlon, spread = dlat, dlon, 0.05
            elif spec["townships"] == 1:
                tlat = dlat + rng.uniform(-0.1, 0.1)
                tlon = dlon + rng.uniform(-0.11, 0.11)
                spread = 0.01
            else:
                tlat = dlat + rng.uniform(-0.24, 0.24)
                tlon = dlon + rng.uniform(-0.28, 0.28)
                spread = 0.01 if small else 0.035
            tid = len(townships)
            townships.append({"id": tid, "district": k, "lat": tlat, "lon": tlon})
            for _ in range(int(rng.integers(2, 4)) if small else 8):
                villages.append({"township": tid, "lat": tlat + rng.normal(0, spread),
                                 "lon": tlon + rng.normal(0, spread)})
    return townships, villages


def _organizations(rng, townships: list, spec: dict) -> tuple[dict, dict]:
    """Per township 2–3 local organizations (one a mediation team); per district 5 wide teams."""
    local, wide = {}, {}
    for t in townships:
        n = int(rng.integers(2, 4))
        local[t["id"]] = [f"o{t['id']}_{j}" for j in range(n)]
    for k in range(spec["districts"]):
        wide[k] = [f"o{k}_w{j}" for j in range(5)]
    return local, wide


def _availability(rng, kind: int) -> tuple[list, int, int, float]:
    """Windows, max minutes, preferred minutes and travel range by volunteer type."""
    windows = []
    if kind == 0:  # retiree
        for day in sorted(rng.choice(5, size=int(rng.integers(3, 6)), replace=False).tolist()):
            if rng.random() < 0.8:
                windows.append(_window(day, 8, 11.5))
            if rng.random() < 0.6:
                windows.append(_window(day, 14, 17.5))
        if rng.random() < 0.3:
            windows.append(_window(5, 9, 12))
        return windows, 600, 360, float(rng.uniform(3.5, 7.5))
    if kind == 1:  # worker
        for day in sorted(rng.choice(5, size=2, replace=False).tolist()):
            windows.append(_window(day, 18, 21.5))
        for day in (5, 6):
            if rng.random() < 0.6:
                windows.append(_window(day, 9, 17))
        return windows, 420, 240, float(rng.uniform(6, 14))
    for day in (5, 6):  # student
        if rng.random() < 0.8:
            windows.append(_window(day, 9, 17))
    if rng.random() < 0.4:
        windows.append(_window(2, 14, 18))
    return windows, 480, 300, float(rng.uniform(4, 10))


def _volunteers(rng, spec, townships, villages, local, wide) -> tuple[list[dict], list[int]]:
    """Volunteers and the township each lives in."""
    out, homes = [], []
    for i in range(spec["volunteers"]):
        village = villages[int(rng.integers(len(villages)))]
        town = townships[village["township"]]
        kind = int(rng.choice(3, p=[0.45, 0.35, 0.20]))
        windows, max_minutes, preferred, travel = _availability(rng, kind)
        skills = [s for s, rates in SKILL_RATES.items() if rng.random() < rates[kind]]
        orgs = []
        if rng.random() < 0.9:
            orgs.append(str(rng.choice(local[town["id"]])))
        if rng.random() < 0.15:
            orgs.append(str(rng.choice(wide[town["district"]])))
        volunteer = {
            "id": f"v{i}",
            "home": {"lat": round(village["lat"] + rng.normal(0, 0.008), 5),
                     "lon": round(village["lon"] + rng.normal(0, 0.008), 5)},
            "skills": skills,
            "gender": "F" if rng.random() < 0.6 else "M",
            "organizations": sorted(set(orgs)),
            "availability": windows,
            "max_minutes_per_week": max_minutes,
            "preferred_minutes_per_week": preferred,
            "max_travel_km": round(travel, 1),
        }
        if windows and rng.random() < 0.03:
            w = windows[int(rng.integers(len(windows)))]
            start = datetime.fromisoformat(w["start"])
            volunteer["commitments"] = [{
                "start": start.isoformat(timespec="minutes"),
                "end": (start + timedelta(minutes=120)).isoformat(timespec="minutes"),
                "location": {"lat": round(village["lat"] + rng.normal(0, 0.03), 5),
                             "lon": round(village["lon"] + rng.normal(0, 0.03), 5)},
            }]
        out.append(volunteer)
        homes.append(town["id"])
    return out, homes


def _slot(rng, kind: str) -> tuple[int, float]:
    if kind == "after_school":
        return (int(rng.integers(0, 5)), 16.0) if rng.random() < 0.8 else (5, 9.0)
    if kind == "office":
        return int(rng.integers(0, 5)), float(rng.choice([9.0, 9.5, 14.0, 15.0]))
    if kind == "morning":
        return int(rng.choice([2, 5, 1])), 9.0
    if kind == "weekend":
        return int(rng.integers(5, 7)), float(rng.choice([9.0, 14.0]))
    if kind == "weekend_or_evening":
        if rng.random() < 0.6:
            return int(rng.integers(5, 7)), float(rng.choice([9.5, 14.0]))
        return int(rng.integers(0, 5)), 19.0
    return int(rng.integers(0, 7)), float(rng.choice([9.0, 14.0]))


def _priority(rng, category: str) -> str:
    if category == "emergency_relief":
        return "urgent"
    weights = {"urgent": 0.02, "high": 0.21, "normal": 0.57, "low": 0.20}
    if category in ("culture_sports", "customs_reform", "environment"):
        weights = {"urgent": 0.0, "high": 0.05, "normal": 0.50, "low": 0.45}
    keys = list(weights)
    p = np.array([weights[k] for k in keys])
    return str(rng.choice(keys, p=p / p.sum()))


def _covers(volunteer: dict, start: str, end: str) -> bool:
    """The volunteer has one window around [start, end] (same offset throughout, so text compares)."""
    return any(w["start"] <= start and end <= w["end"] for w in volunteer["availability"])


def _known_carers(rng, carers: list[str], by_id: dict, visits: list[dict]) -> list[str]:
    """`familiar` shape: 2–4 carers who know the resident, preferring those free at one of the visits and
    of the gender the visits ask for (they served the resident in earlier weeks)."""
    gender = visits[0].get("gender")
    fitting = [c for c in carers if gender in (None, by_id[c]["gender"])
               and any(_covers(by_id[c], d["start"], d["end"]) for d in visits)]
    pool = fitting if len(fitting) >= 2 else carers
    return [str(c) for c in rng.choice(pool, size=min(len(pool), int(rng.integers(2, 5))), replace=False)]


def _demands(rng, spec, townships, villages, local, volunteers,
             familiar_shape: bool = False) -> tuple[list, list, list[int]]:
    """Demands, `familiar` pairs, and the township of each demand. `familiar_shape`: half the demands
    are elderly-care visits, 2–5 a week per resident, and nine residents in ten have 2–4 known carers."""
    demands, familiar, places = [], [], []
    n_total = spec["demands"]
    n_elder = int(round(n_total * (0.5 if familiar_shape else ELDER_SHARE)))
    by_id = {v["id"]: v for v in volunteers}
    elder_carers: dict[tuple, list[str]] = {}
    for v in volunteers:
        if "elder_care" in v["skills"]:
            key = (round(v["home"]["lat"], 1), round(v["home"]["lon"], 1))
            elder_carers.setdefault(key, []).append(v["id"])
    resident = 0
    while len(demands) < n_elder:
        village = villages[int(rng.integers(len(villages)))]
        lat = round(village["lat"] + rng.normal(0, 0.006), 5)
        lon = round(village["lon"] + rng.normal(0, 0.006), 5)
        rid = f"r{resident}"
        resident += 1
        if familiar_shape:
            visits = int(rng.choice([2, 3, 4, 5], p=[0.35, 0.3, 0.2, 0.15]))
        else:
            visits = int(rng.choice([1, 2, 3], p=[0.3, 0.45, 0.25]))
        visits = min(visits, n_elder - len(demands))
        first = len(demands)
        hour = float(rng.choice([9.0, 10.0, 15.0]))
        minutes = int(rng.choice([60, 90]))
        days = sorted(rng.choice(5, size=visits, replace=False).tolist())
        priority = "urgent" if rng.random() < 0.02 else str(rng.choice(["high", "normal", "low"],
                                                                        p=[0.3, 0.55, 0.15]))
        gender = "F" if rng.random() < 0.2 else None
        for day in days:
            demand = {
                "id": f"d{len(demands)}", "category": "elderly_care",
                "location": {"lat": lat, "lon": lon},
                "start": _at(day, hour), "end": _at(day, hour + minutes / 60),
                "skills": ["elder_care"], "people": 1, "priority": priority, "resident": rid,
            }
            if gender:
                demand["gender"] = gender
            demands.append(demand)
            places.append(village["township"])
        carers = elder_carers.get((round(lat, 1), round(lon, 1)), [])
        if familiar_shape:
            if carers and rng.random() < 0.9:
                for vid in _known_carers(rng, carers, by_id, demands[first:]):
                    familiar.append({"resident": rid, "volunteer": vid})
        elif carers and rng.random() < 0.6:
            for vid in rng.choice(carers, size=min(len(carers), int(rng.integers(1, 3))), replace=False):
                familiar.append({"resident": rid, "volunteer": str(vid)})
    names = list(CATEGORIES)
    shares = np.array([CATEGORIES[c][0] for c in names])
    while len(demands) < n_total:
        cat = str(rng.choice(names, p=shares / shares.sum()))
        _, skills, skills_any, (lo, hi), min_people, slot, durations, one_org = CATEGORIES[cat]
        village = villages[int(rng.integers(len(villages)))]
        day, hour = _slot(rng, slot)
        minutes = int(rng.choice(durations))
        people = int(rng.integers(lo, hi + 1))
        demand = {
            "id": f"d{len(demands)}", "category": cat,
            "location": {"lat": round(village["lat"] + rng.normal(0, 0.004), 5),
                         "lon": round(village["lon"] + rng.normal(0, 0.004), 5)},
            "start": _at(day, hour), "end": _at(day, hour + minutes / 60),
            "skills": list(skills), "skills_any": list(skills_any),
            "people": people, "min_people": min(min_people, people), "priority": _priority(rng, cat),
        }
        if cat == "mental_health":
            demand["resident"] = f"r{resident}"
            resident += 1
        if rng.random() < one_org and people > 1:
            demand["one_organization"] = True
            if cat == "dispute_mediation":
                demand["organizations"] = list(local[village["township"]])
        demands.append(demand)
        places.append(village["township"])
    return demands, familiar, places


# ---------------------------------------------------------------- shapes applied to the drawn week


def _teams(rng, doc: dict, world: _World) -> None:
    """Team dispatch: three in four multi-person demands go to one organization's team of 2–6 (at least
    2–3), a third of those restricted to the township's own organizations (sometimes with a district-wide
    one); volunteers in 1–3 organizations; 12 district-wide organizations per district instead of 5."""
    wide = {k: [f"o{k}_w{j}" for j in range(WIDE_TEAMS)] for k in world.wide}
    for v, town in zip(doc["volunteers"], world.volunteer_township, strict=True):
        local = world.local[town]
        orgs = set(v["organizations"])
        if not orgs & set(local):
            orgs.add(str(rng.choice(local)))
        pool = local + wide[world.townships[town]["district"]]
        wanted = int(rng.choice([1, 2, 3], p=[0.35, 0.45, 0.2]))
        while len(orgs) < min(wanted, len(pool)):
            orgs.add(str(rng.choice(pool)))
        v["organizations"] = sorted(orgs)
    for d, town in zip(doc["demands"], world.demand_township, strict=True):
        sizes = TEAM_SIZES.get(d["category"])
        if sizes is None or rng.random() >= TEAM_SHARE:
            continue
        people = int(rng.integers(sizes[0], sizes[1] + 1))
        d["people"] = people
        d["min_people"] = min(people, int(rng.integers(2, 4)))
        d["one_organization"] = True
        d.pop("organizations", None)
        if rng.random() < 0.35:
            orgs = list(world.local[town])
            if rng.random() < 0.5:
                orgs.append(str(rng.choice(wide[world.townships[town]["district"]])))
            d["organizations"] = orgs


def _either_or(rng, doc: dict, world: _World) -> None:
    """Alternative skills: seven in ten demands (all visits of a resident alike) take a variant of their
    category with `skills_any` of 2–3 skills, some of them on top of a required skill."""
    chosen: dict[str, tuple | None] = {}
    for d in doc["demands"]:
        variants = EITHER_OR.get(d["category"])
        if not variants:
            continue
        key = d.get("resident") or d["id"]
        if key not in chosen:
            chosen[key] = variants[int(rng.integers(len(variants)))] if rng.random() < EITHER_OR_SHARE else None
        if chosen[key] is not None:
            skills, skills_any = chosen[key]
            d["skills"], d["skills_any"] = list(skills), list(skills_any)


def _offset(rng, home: dict, low_km: float, high_km: float) -> dict:
    """A point `low_km`..`high_km` (straight line) from `home` in a random direction."""
    km, angle = rng.uniform(low_km, high_km), rng.uniform(0, 2 * math.pi)
    lat = home["lat"] + km / 111.2 * math.cos(angle)
    lon = home["lon"] + km / (111.2 * math.cos(math.radians(home["lat"]))) * math.sin(angle)
    return {"lat": round(lat, 5), "lon": round(lon, 5)}


def _cross_area(rng, doc: dict, world: _World) -> None:
    """Cross-area commitments: 30–50% of the volunteers with free time already serve 1–4 published
    services of a neighbouring area, 2–6 km from home, inside free windows not yet committed (one per
    window), using at most half of their weekly minutes."""
    share = rng.uniform(0.3, 0.5)
    for v in doc["volunteers"]:
        if not v["availability"] or rng.random() >= share:
            continue
        held = v.get("commitments", [])
        free = [w for w in v["availability"]
                if not any(c["start"] < w["end"] and w["start"] < c["end"] for c in held)]
        budget = v["max_minutes_per_week"] // 2 - sum(_minutes(c) for c in held)
        added = []
        count = min(int(rng.integers(1, 5)), len(free))
        for i in sorted(rng.choice(len(free), size=count, replace=False).tolist()):
            window = free[i]
            length = _minutes(window)
            minutes = min(int(rng.choice([60, 90, 120, 180])), length)
            if minutes > budget:
                continue
            budget -= minutes
            start = datetime.fromisoformat(window["start"]) + timedelta(
                minutes=30 * int(rng.integers(0, (length - minutes) // 30 + 1)))
            added.append({"start": start.isoformat(timespec="minutes"),
                          "end": (start + timedelta(minutes=minutes)).isoformat(timespec="minutes"),
                          "location": _offset(rng, v["home"], 2.0, 6.0)})
        if added:
            v["commitments"] = sorted(held + added, key=lambda c: c["start"])


def _minutes(item: dict) -> int:
    span = datetime.fromisoformat(item["end"]) - datetime.fromisoformat(item["start"])
    return int(span.total_seconds() // 60)


def _long_travel(rng, doc: dict, world: _World) -> None:
    """A dense city whose volunteers travel far: the map drawn at 0.65 of its size around its middle (the
    same people, closer together) and travel ranges ×3–5, within 15–40 km."""
    points = [v["home"] for v in doc["volunteers"]] + [d["location"] for d in doc["demands"]]
    points += [c["location"] for v in doc["volunteers"] for c in v.get("commitments", [])]
    mid_lat = sum(p["lat"] for p in points) / len(points)
    mid_lon = sum(p["lon"] for p in points) / len(points)
    for p in points:
        p["lat"] = round(mid_lat + DENSE_SCALE * (p["lat"] - mid_lat), 5)
        p["lon"] = round(mid_lon + DENSE_SCALE * (p["lon"] - mid_lon), 5)
    for v in doc["volunteers"]:
        v["max_travel_km"] = round(min(40.0, max(15.0, v["max_travel_km"] * rng.uniform(3, 5))), 1)


def _short_ranges(rng, doc: dict, world: _World) -> None:
    """`small_areas`: volunteers stay in their neighbourhood, ranges ×0.3–0.5, within 1–3 km."""
    for v in doc["volunteers"]:
        low, high, least, most = SHORT_RANGE
        v["max_travel_km"] = round(min(most, max(least, v["max_travel_km"] * rng.uniform(low, high))), 1)


def _scarce(rng, doc: dict, world: _World) -> None:
    """Scarce supply: half the volunteers (at random) for the same demands, and more urgent and high
    demands (a low one in three becomes normal, a normal one in three high, a high one in seven urgent)."""
    keep = rng.random(len(doc["volunteers"])) < 0.5
    doc["volunteers"] = [v for v, k in zip(doc["volunteers"], keep, strict=True) if k]
    world.volunteer_township = [t for t, k in zip(world.volunteer_township, keep, strict=True) if k]
    ids = {v["id"] for v in doc["volunteers"]}
    doc["familiar"] = [f for f in doc["familiar"] if f["volunteer"] in ids]
    up = {"low": ("normal", 1 / 3), "normal": ("high", 1 / 3), "high": ("urgent", 1 / 7)}
    for d in doc["demands"]:
        to, chance = up.get(d.get("priority", "normal"), (None, 0.0))
        if rng.random() < chance:
            d["priority"] = to


MODIFIERS = {
    "small_areas": _short_ranges, "familiar": None, "teams": _teams, "either_or": _either_or,
    "cross_area": _cross_area, "long_travel": _long_travel, "scarce": _scarce,
}


def generate_instance(preset: str, seed: int, shapes: str | Iterable[str] = ()) -> dict:
    """A `linli.instance/1` document for a preset ('township', 'district', 'city') with optional shapes
    (names from `SHAPES`, or one comma-separated string), the same for the same arguments. Without shapes
    it is exactly the preset's instance; ValueError for an unknown or contradictory shape."""
    shapes = parse_shapes(shapes)
    spec = PRESETS[preset]
    rng = np.random.default_rng([seed, len(preset)])
    townships, villages = _places(rng, spec, small="small_areas" in shapes)
    local, wide = _organizations(rng, townships, spec)
    volunteers, homes = _volunteers(rng, spec, townships, villages, local, wide)
    demands, familiar, places = _demands(rng, spec, townships, villages, local, volunteers,
                                         familiar_shape="familiar" in shapes)
    doc = {
        "schema": "linli.instance/1",
        "name": f"{preset} seed {seed}" + (f" shape {','.join(shapes)}" if shapes else ""),
        "week_start": WEEK_START.isoformat(timespec="minutes"),
        "travel": {"speed_kmh": 25, "detour_factor": 1.3},
        "volunteers": volunteers,
        "demands": demands,
        "familiar": familiar,
    }
    world = _World(townships, local, wide, homes, places)
    for name in shapes:
        modify = MODIFIERS[name]
        if modify is not None:
            modify(np.random.default_rng([seed, len(preset), 1 + SHAPES.index(name)]), doc, world)
    return doc
