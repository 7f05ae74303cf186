"""Realistic synthetic instances, deterministic by seed: township, district and city presets.

A district like the demo's: ~25 townships around lat 29.3, lon 107.7 (Chongqing), 8 villages each,
volunteers living around their village (retirees free on weekday mornings and afternoons, workers on
evenings and weekends, students on weekends), skills in the domain guide's proportions, community
organizations per township plus a few district-wide teams, recurring elderly-care visits to the same
residents, mediation and culture teams dispatched to one organization, few urgent demands, and
`familiar` pairs from earlier weeks. A city is ten such districts side by side.
"""

from __future__ import annotations

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


def _at(day: int, hour: float) -> str:
    return (WEEK_START + timedelta(days=day, minutes=round(hour * 60))).isoformat(timespec="minutes")


def _window(day: int, start: float, end: float) -> dict:
    return {"start": _at(day, start), "end": _at(day, end)}


def _places(rng, spec: dict) -> tuple[list, list]:
    """District centres, townships and villages: returns (township list, village list) with coords."""
    townships, villages = [], []
    for k in range(spec["districts"]):
        dlat = CENTER[0] + (k // 5) * 0.55
        dlon = CENTER[1] + (k % 5) * 0.62
        for _ in range(spec["townships"]):
            if spec["townships"] == 1:
                tlat, tlon, spread = dlat, dlon, 0.05
            else:
                tlat = dlat + rng.uniform(-0.24, 0.24)
                tlon = dlon + rng.uniform(-0.28, 0.28)
                spread = 0.035
            tid = len(townships)
            townships.append({"id": tid, "district": k, "lat": tlat, "lon": tlon})
            for _ in range(8):
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


def _volunteers(rng, spec, townships, villages, local, wide) -> list[dict]:
    out = []
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
    return out


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


def _demands(rng, spec, townships, villages, local, volunteers) -> tuple[list, list]:
    demands, familiar = [], []
    n_total = spec["demands"]
    n_elder = int(round(n_total * ELDER_SHARE))
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
        visits = min(int(rng.choice([1, 2, 3], p=[0.3, 0.45, 0.25])), n_elder - len(demands))
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
        carers = elder_carers.get((round(lat, 1), round(lon, 1)), [])
        if carers and rng.random() < 0.6:
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
    return demands, familiar


def generate_instance(preset: str, seed: int) -> dict:
    """A `linli.instance/1` document for a preset ('township', 'district', 'city'), same for a seed."""
    spec = PRESETS[preset]
    rng = np.random.default_rng([seed, len(preset)])
    townships, villages = _places(rng, spec)
    local, wide = _organizations(rng, townships, spec)
    volunteers = _volunteers(rng, spec, townships, villages, local, wide)
    demands, familiar = _demands(rng, spec, townships, villages, local, volunteers)
    return {
        "schema": "linli.instance/1",
        "name": f"{preset} seed {seed}",
        "week_start": WEEK_START.isoformat(timespec="minutes"),
        "travel": {"speed_kmh": 25, "detour_factor": 1.3},
        "volunteers": volunteers,
        "demands": demands,
        "familiar": familiar,
    }
