"""The demand form's place picker on a phone (issue 9, 12): the map shows only for a point, a tap sets
the point (latitude and longitude fields filled, marker shown), and the demand is saved there; the
cancel button leads to a confirmation with a reason."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

pytestmark = pytest.mark.e2e


def test_worker_picks_a_point_on_the_map_on_a_phone(page_for, shot, browser_errors, demo_week):
    page = page_for("worker", mobile=True)
    page.goto("/demands/new")
    page.wait_for_load_state()
    assert page.locator("#point-block").is_hidden()  # a station by default: no map
    assert page.locator("#station-block").is_visible()
    page.check("input[name=location_kind][value=point]")
    assert page.locator("#point-block").is_visible() and page.locator("#station-block").is_hidden()
    assert page.locator("input[name=lat]").is_hidden()  # coordinates only behind "enter coordinates"
    box = page.locator("#point-map").bounding_box()
    assert box["width"] <= 390
    page.locator("#point-map").click(position={"x": box["width"] * 0.55, "y": box["height"] * 0.45})
    lat, lon = float(page.input_value("input[name=lat]")), float(page.input_value("input[name=lon]"))
    assert 20 < lat < 40 and 100 < lon < 115
    assert page.locator("#point-marker").is_visible()
    shot(page, "point-picked")
    # Back to a station: the map goes away again.
    page.check("input[name=location_kind][value=station]")
    assert page.locator("#point-block").is_hidden()
    page.check("input[name=location_kind][value=point]")

    title = f"E2E 广场活动 {uuid.uuid4().hex[:6]}"
    page.select_option("select[name=category]", "culture_sports")
    page.fill("input[name=title]", title)
    page.fill("input[name=date]", (demo_week + timedelta(days=2)).isoformat())
    page.fill("input[name=start]", "19:00")
    page.fill("input[name=end]", "20:30")
    with page.expect_navigation():
        page.click("#demand-form button[type=submit]")
    assert "/demands/" in page.url and page.inner_text("h1").startswith(title)

    # Cancelling: a confirmation page asks why.
    with page.expect_navigation():
        page.click("#cancel-demand")
    assert page.locator("#cancel-form textarea[name=reason]").is_visible()
    page.fill("#cancel-form textarea[name=reason]", "E2E: 场地临时借用")
    with page.expect_navigation():
        page.click("#cancel-form button[type=submit]")
    assert "/cancel" not in page.url
    shot(page, "cancelled")
    assert browser_errors == []
