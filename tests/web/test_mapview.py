"""The schedule map's projection and optional tiles."""

import math

import pytest

from web.mapview import fit_zoom, mercator, tile_origin


def test_mercator_matches_the_standard_tile_grid():
    # Zoom 0: the whole world is one 256-pixel tile; (0, 0) is its centre.
    assert mercator(0, 0, 0) == pytest.approx((128, 128))
    # The slippy-map tile numbers (OpenStreetMap wiki formula) of Chongqing at zoom 10.
    lat, lon, z = 29.56, 106.55, 10
    n = 2 ** z
    expected = (int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n))
    x, y = mercator(lat, lon, z)
    assert (int(x // 256), int(y // 256)) == expected == (815, 423)


def test_fit_zoom_keeps_points_inside_the_frame():
    points = [(29.20, 107.55), (29.45, 107.90)]
    zoom = fit_zoom(points, 640, 420)
    xs, ys = zip(*(mercator(lat, lon, zoom) for lat, lon in points), strict=True)
    assert max(xs) - min(xs) <= 620 and max(ys) - min(ys) <= 400
    bigger = [mercator(lat, lon, zoom + 1) for lat, lon in points]
    assert abs(bigger[0][0] - bigger[1][0]) > 620 or abs(bigger[0][1] - bigger[1][1]) > 400


def test_tile_origin_only_for_http_urls():
    assert tile_origin("https://tiles.example.org/{z}/{x}/{y}.png") == "https://tiles.example.org"
    assert tile_origin("javascript:alert(1)") is None and tile_origin(None) is None


def test_configured_tiles_appear_on_the_map_and_in_the_csp(make_app, world, db, next_monday):
    from matcher.schedules import get_schedule

    schedule_id = get_schedule(world["areas"]["town_a"], next_monday).id
    db.session.commit()
    client = make_app(MAP_TILE_URL="https://tiles.example.org/{z}/{x}/{y}.png").test_client()
    client.post("/login", data={"username": "coord_a", "password": "correct-horse-battery"})
    page = client.get(f"/schedules/{schedule_id}")
    assert 'href="https://tiles.example.org/' in page.get_data(as_text=True)
    assert "img-src 'self' data: https://tiles.example.org" in page.headers["Content-Security-Policy"]


def test_configured_tiles_appear_under_the_demand_forms_place_picker(make_app, world, db):
    client = make_app(MAP_TILE_URL="https://tiles.example.org/{z}/{x}/{y}.png").test_client()
    client.post("/login", data={"username": "worker_a1", "password": "correct-horse-battery"})
    page = client.get("/demands/new").get_data(as_text=True)
    picker = page[page.index('id="point-map"'):page.index("</svg>")]
    assert '<image href="https://tiles.example.org/' in picker


def test_the_schedule_map_still_fits_its_points():
    from datetime import datetime
    from types import SimpleNamespace

    from web.mapview import build_map

    demand = SimpleNamespace(lat=29.345, lon=107.705, title="Visit", people=1)
    occ = SimpleNamespace(id=1, demand=demand, starts_at=datetime(2026, 12, 7, 9))
    vol = SimpleNamespace(lat=29.35, lon=107.71)
    m = build_map([occ], [SimpleNamespace(occurrence_id=1, volunteer=vol)], {1: 1})
    assert m["demands"][0]["state"] == "full" and len(m["lines"]) == 1 and m["tiles"] == []
