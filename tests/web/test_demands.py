"""The demand pages (issue 9, 12): dates within today and the horizon, picking a point on a map that
shows only for a point, and cancelling through a confirmation step with a reason."""

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from matcher.clock import local_today
from matcher.demands import create_demand
from matcher.models import AuditEntry, Demand, DemandStatus, Notification
from web.mapview import build_place_map, km_per_pixel, mercator


def _form(world, day, **overrides):
    data = {"category": "culture_sports", "location_kind": "station", "station": world["stations"]["C1"].id,
            "date": day.isoformat(), "start": "19:00", "end": "21:00", "priority": "normal"}
    data.update(overrides)
    return data


def _block(page: str, block_id: str) -> str:
    """The opening tag of the element with this id."""
    return re.search(rf'<div[^>]*id="{block_id}"[^>]*>', page, re.S).group(0)


# ------------------------------------------------------------------ dates


@pytest.mark.parametrize(("days", "field"), [(-1, "date"), (-30, "date"), (5 * 365, "date")])
def test_the_form_refuses_past_and_far_dates_naming_the_date(client, auth, world, db, days, field):
    """Issue 9, 12: past dates and dates five years ahead were accepted without a word."""
    auth.login("worker_a1")
    client.post("/language/en")
    before = db.session.scalar(select(func.count(Demand.id)))
    response = client.post("/demands/new", data=_form(world, local_today() + timedelta(days=days)))
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and f'id="err-{field}"' in page
    assert ("has passed" if days < 0 else "too far ahead") in page
    assert db.session.scalar(select(func.count(Demand.id))) == before


def test_the_date_picker_offers_today_to_the_horizon(client, auth, world):
    auth.login("worker_a1")
    page = client.get("/demands/new").get_data(as_text=True)
    today = local_today()
    assert f'min="{today.isoformat()}"' in page and f'max="{(today + timedelta(days=366)).isoformat()}"' in page
    # The end of a weekly recurrence has the same limits.
    limits = f'min="{today.isoformat()}" max="{(today + timedelta(days=366)).isoformat()}"'
    assert f'name="repeat_until" value="" {limits}' in page


# ------------------------------------------------------------------ the place picker


def test_the_map_shows_only_for_a_point_and_the_station_list_only_for_a_station(client, auth, world, next_monday):
    """Issue 9, 12: '地图选点' showed two number boxes, still visible with 实践站 chosen."""
    auth.login("worker_a1")
    page = client.get("/demands/new").get_data(as_text=True)  # a station by default
    assert "hidden" in _block(page, "point-block") and "hidden" not in _block(page, "station-block")
    response = client.post("/demands/new", data=_form(world, next_monday, location_kind="point", lat="", lon="1x"))
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "hidden" not in _block(page, "point-block") and "hidden" in _block(page, "station-block")


def test_the_map_draws_the_community_its_stations_and_homes_and_keeps_coordinates_behind_a_disclosure(
        client, auth, world, next_monday):
    auth.login("worker_a1")
    client.post("/language/en")
    page = client.post("/demands/new", data=_form(world, next_monday, location_kind="point",
                                                  lat="29.3461", lon="107.7062", people="0")).get_data(as_text=True)
    svg = page[page.index('<svg viewBox="0 0 640 400"'):page.index("</svg>")]
    assert 'class="map-area"' in svg and 'class="map-centre"' in svg
    assert svg.count('class="map-station"') == 1 and world["stations"]["C1"].name in svg
    assert world["residents"]["a1"].name in svg  # the worker may see whose home it is
    assert "<image" not in svg  # no tiles unless MAP_TILE_URL is set: nothing from outside
    marker = re.search(r'<g id="point-marker"[^>]*><circle cx="([\d.]+)" cy="([\d.]+)"', svg)
    assert marker and "hidden" not in marker.group(0)
    details = page[page.index("<details"):page.index("</details>")]
    assert 'name="lat"' in details and 'name="lon"' in details and "Enter coordinates" in details
    assert page.count('name="lat"') == 1


def test_the_place_map_puts_points_where_the_projection_says():
    centre, radius = (29.345, 107.705), 1.5
    m = build_place_map(centre, radius, [(29.35, 107.70, "Station")], [(29.34, 107.71, "")], (29.346, 107.706))
    assert (m["centre"]["x"], m["centre"]["y"]) == (320.0, 200.0)
    x, y = mercator(29.346, 107.706, m["zoom"])
    assert (m["chosen"]["x"], m["chosen"]["y"]) == (round(x - m["x0"], 1), round(y - m["y0"], 1))
    assert m["radius"] == pytest.approx(radius / km_per_pixel(29.345, m["zoom"]), abs=0.1)
    assert 2 * m["radius"] <= 400  # the whole community fits
    assert m["homes"][0]["label"] == "" and m["stations"][0]["label"] == "Station"
    assert build_place_map(centre, radius, [], [], None)["chosen"] is None


def test_the_map_names_no_resident_to_a_viewer_who_may_not_see_them():
    m = build_place_map((29.345, 107.705), 1.5, [], [(29.34, 107.71, "")], None)
    assert all(h["label"] == "" for h in m["homes"])


def test_a_point_set_on_the_map_is_saved(client, auth, world, db, next_monday):
    auth.login("worker_a1")
    response = client.post("/demands/new", data=_form(world, next_monday, location_kind="point",
                                                      lat="29.34612", lon="107.70623", address="广场"))
    assert response.status_code == 302
    demand = db.session.scalars(select(Demand).order_by(Demand.id.desc())).first()
    assert (demand.lat, demand.lon) == (pytest.approx(29.34612), pytest.approx(107.70623))


# ------------------------------------------------------------------ cancelling


def test_cancelling_asks_for_confirmation_and_a_reason(client, auth, world, db):
    """Issue 9, 12: 取消此需求 cancelled at once, with no confirmation and no reason."""
    demand = world["demands"]["a1"]
    auth.login("worker_a1")
    client.post("/language/en")
    view = client.get(f"/demands/{demand.id}").get_data(as_text=True)
    assert f'href="/demands/{demand.id}/cancel"' in view
    assert f'action="/demands/{demand.id}/cancel"' not in view  # no one-click cancel from the demand's page
    page = client.get(f"/demands/{demand.id}/cancel").get_data(as_text=True)
    assert 'name="reason"' in page and "cannot be undone" in page
    for data in ({"version": demand.version}, {"version": demand.version, "reason": "   "}):
        response = client.post(f"/demands/{demand.id}/cancel", data=data)
        assert response.status_code == 400 and 'id="err-reason"' in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Demand, demand.id).status == DemandStatus.OPEN
    assert not db.session.scalar(select(func.count(AuditEntry.id)).where(AuditEntry.action == "cancel"))
    response = client.post(f"/demands/{demand.id}/cancel",
                           data={"version": demand.version, "reason": "The resident moved to her daughter's"})
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Demand, demand.id).status == DemandStatus.CANCELLED
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "cancel")).one()
    assert entry.details["reason"] == "The resident moved to her daughter's"
    told = db.session.scalars(select(Notification).where(Notification.kind == "demand_cancelled")).all()
    assert told and all("moved to her daughter's" in n.text for n in told)


def test_the_cancel_page_of_a_closed_demand_leads_back_to_it(client, auth, world, db):
    demand = world["demands"]["a1"]
    from matcher.demands import cancel_demand

    cancel_demand(demand, user=world["users"]["worker_a1"], version=demand.version, reason="Done")
    db.session.commit()
    auth.login("worker_a1")
    assert client.get(f"/demands/{demand.id}/cancel").status_code == 302


def test_a_demand_with_past_occurrences_can_still_be_edited_on_the_form(client, auth, world, db):
    start = local_today() - timedelta(days=14)
    demand = create_demand(_form(world, start, recurring="1", weekdays=[str(start.weekday())]),
                           community=world["areas"]["a1"], user=world["users"]["worker_a1"], allow_past=True)
    db.session.commit()
    auth.login("worker_a1")
    data = _form(world, start, recurring="1", weekdays=[str(start.weekday())], title="Still weekly",
                 version=demand.version)
    response = client.post(f"/demands/{demand.id}/edit", data=data)
    assert response.status_code == 302, response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Demand, demand.id).title == "Still weekly"
