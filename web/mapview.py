"""The service's maps drawn as SVG from its own data: the schedule map (demands and assigned
volunteers) and the demand form's place picker (the community, its stations, known homes).

Points are placed in Web Mercator pixel coordinates at a zoom level that fits the area, so that
when a tile server is configured (MAP_TILE_URL, e.g. "https://tiles.example.org/{z}/{x}/{y}.png")
its standard 256-pixel tiles line up underneath. Without one (the default) the map needs nothing
from outside the service.
"""

from __future__ import annotations

import math
from urllib.parse import urlsplit

TILE = 256
MAX_ZOOM = 17


def mercator(lat: float, lon: float, zoom: int) -> tuple[float, float]:
    """Web Mercator pixel coordinates of a point at a zoom level."""
    scale = TILE * 2 ** zoom
    lat = max(-85.05112878, min(85.05112878, lat))
    x = (lon + 180.0) / 360.0 * scale
    s = math.sin(math.radians(lat))
    y = (0.5 - math.log((1 + s) / (1 - s)) / (4 * math.pi)) * scale
    return x, y


def fit_zoom(points: list[tuple[float, float]], width: int, height: int) -> int:
    """The largest zoom at which all points fit in width × height pixels (with a margin)."""
    for zoom in range(MAX_ZOOM, 0, -1):
        xs, ys = zip(*(mercator(lat, lon, zoom) for lat, lon in points), strict=True)
        if max(xs) - min(xs) <= width - 20 and max(ys) - min(ys) <= height - 20:
            return zoom
    return 1


def tile_origin(url: str | None) -> str | None:
    """The scheme://host of a tile URL (for the Content-Security-Policy), or None."""
    if not url:
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme in ("http", "https") and parts.netloc else None


def frame(points: list[tuple[float, float]], width: int, height: int) -> tuple[int, float, float]:
    """The zoom that fits the points in width × height pixels, and the frame's top left pixel there."""
    zoom = fit_zoom(points, width, height)
    xs, ys = zip(*(mercator(lat, lon, zoom) for lat, lon in points), strict=True)
    return zoom, (min(xs) + max(xs)) / 2 - width / 2, (min(ys) + max(ys)) / 2 - height / 2


def build_map(occurrences, assignments, counts, *, tile_url: str | None = None,
              width: int = 640, height: int = 420) -> dict:
    """Circles for demands (by how filled), lines from assigned volunteers' homes, optional tiles."""
    points = [(o.demand.lat, o.demand.lon) for o in occurrences]
    points += [(a.volunteer.lat, a.volunteer.lon) for a in assignments]
    if not points:
        return {"width": width, "height": height, "demands": [], "lines": [], "tiles": []}
    zoom, x0, y0 = frame(points, width, height)

    def xy(lat: float, lon: float) -> tuple[float, float]:
        x, y = mercator(lat, lon, zoom)
        return round(x - x0, 1), round(y - y0, 1)

    by_occ = {o.id: o for o in occurrences}
    demands = []
    for o in occurrences:
        x, y = xy(o.demand.lat, o.demand.lon)
        n = counts.get(o.id, 0)
        state = "full" if n >= o.demand.people else ("part" if n else "empty")
        demands.append({"x": x, "y": y, "state": state, "title": f"{o.demand.title} {o.starts_at:%m-%d %H:%M}"})
    lines = []
    for a in assignments:
        o = by_occ[a.occurrence_id]
        (x1, y1), (x2, y2) = xy(a.volunteer.lat, a.volunteer.lon), xy(o.demand.lat, o.demand.lon)
        lines.append({"x1": x1, "y1": y1, "x2": x2, "y2": y2})
    return {"width": width, "height": height, "demands": demands, "lines": lines,
            "tiles": tiles_for(tile_url, zoom, x0, y0, width, height), "zoom": zoom}


def build_community_map(occurrences, counts, *, tile_url: str | None = None, width: int = 640,
                        height: int = 420) -> dict:
    """A district at a glance: one circle per community with services, sized by how many, coloured by how
    filled their places are (all, some, none); no lines (the homes are drawn street by street)."""
    by_community: dict[int, dict] = {}
    for o in occurrences:
        community = o.demand.community
        entry = by_community.setdefault(community.id, {"area": community, "services": 0, "wanted": 0, "filled": 0})
        entry["services"] += 1
        entry["wanted"] += o.demand.people
        entry["filled"] += min(counts.get(o.id, 0), o.demand.people)
    points = [(e["area"].lat, e["area"].lon) for e in by_community.values()]
    if not points:
        return {"width": width, "height": height, "demands": [], "lines": [], "tiles": []}
    zoom, x0, y0 = frame(points, width, height)
    largest = max(e["services"] for e in by_community.values())
    demands = []
    for e in sorted(by_community.values(), key=lambda e: -e["services"]):  # small circles on top
        x, y = mercator(e["area"].lat, e["area"].lon, zoom)
        state = "full" if e["filled"] >= e["wanted"] else ("part" if e["filled"] else "empty")
        demands.append({"x": round(x - x0, 1), "y": round(y - y0, 1), "state": state,
                        "r": round(3 + 9 * math.sqrt(e["services"] / largest), 1),
                        "title": f"{e['area'].name}: {e['filled']}/{e['wanted']}"})
    return {"width": width, "height": height, "demands": demands, "lines": [],
            "tiles": tiles_for(tile_url, zoom, x0, y0, width, height), "zoom": zoom}


def tiles_for(tile_url: str | None, zoom: int, x0: float, y0: float, width: int, height: int) -> list[dict]:
    """The standard 256-pixel tiles under a frame whose top left is the pixel (x0, y0) at `zoom`."""
    tiles = []
    if tile_url:
        for tx in range(int(x0 // TILE), int((x0 + width) // TILE) + 1):
            for ty in range(int(y0 // TILE), int((y0 + height) // TILE) + 1):
                if 0 <= ty < 2 ** zoom:
                    href = tile_url.format(z=zoom, x=tx % 2 ** zoom, y=ty)
                    tiles.append({"href": href, "x": round(tx * TILE - x0, 1), "y": round(ty * TILE - y0, 1)})
    return tiles


def km_per_pixel(lat: float, zoom: int) -> float:
    """Ground distance of one pixel at a latitude and zoom level (Web Mercator)."""
    return 40075.016686 * math.cos(math.radians(lat)) / (TILE * 2 ** zoom)


def build_place_map(centre: tuple[float, float], radius_km: float, stations, homes, chosen=None, *,
                    tile_url: str | None = None, width: int = 640, height: int = 400) -> dict:
    """The demand form's place picker: the community's circle and centre, its stations and known
    homes as reference points, and the chosen point; clicking sets a point (web/static/demand_form.js
    turns the pixel back into latitude and longitude with `zoom`, `x0`, `y0`).

    `stations` are (lat, lon, label); `homes` are (lat, lon, label) with the label empty where the
    viewer may not know whose home it is; `chosen` is (lat, lon) or None.
    """
    lat, lon = centre
    dlat = radius_km / 111.32
    dlon = radius_km / max(0.01, 111.32 * math.cos(math.radians(lat)))
    # The zoom that fits the community's circle: reference points beyond the frame are left out
    # by the SVG's own clipping (a township's station may lie kilometres away).
    zoom = fit_zoom([(lat - dlat, lon - dlon), (lat + dlat, lon + dlon)], width, height)
    cx, cy = mercator(lat, lon, zoom)
    x0, y0 = cx - width / 2, cy - height / 2

    def xy(plat: float, plon: float) -> tuple[float, float]:
        x, y = mercator(plat, plon, zoom)
        return round(x - x0, 1), round(y - y0, 1)

    marker = None
    if chosen is not None and chosen[0] is not None and chosen[1] is not None:
        mx, my = xy(*chosen)
        marker = {"x": mx, "y": my}
    return {
        "width": width, "height": height, "zoom": zoom, "x0": round(x0, 3), "y0": round(y0, 3),
        "centre": {"x": round(cx - x0, 1), "y": round(cy - y0, 1)},
        "radius": round(radius_km / km_per_pixel(lat, zoom), 1),
        "stations": [{"x": xy(s[0], s[1])[0], "y": xy(s[0], s[1])[1], "label": s[2]} for s in stations],
        "homes": [{"x": xy(h[0], h[1])[0], "y": xy(h[0], h[1])[1], "label": h[2]} for h in homes],
        "chosen": marker, "tiles": tiles_for(tile_url, zoom, x0, y0, width, height),
    }
