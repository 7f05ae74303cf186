"""The star volunteers' pages (公示): proposing, reviewing and approving a list; who sees what; bad input;
and the record page's progress toward the next star."""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from matcher.models import AuditEntry, RecognitionList
from tests.matcher.test_recognition import END, START, make_people, served


@pytest.fixture
def people(db, world):
    return make_people(db, world)


def login(client, auth, username):
    auth.login(username)
    client.post("/language/en", data={"next": "/dashboard"})


def propose(client, world, area="district", start=START, end=END):
    return client.post("/recognition", data={"area": str(world["areas"][area].id), "start": start.isoformat(),
                                             "end": end.isoformat()})


def list_id(response) -> int:
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return int(re.search(r"/recognition/(\d+)$", response.headers["Location"]).group(1))


def test_a_coordinator_proposes_reviews_and_approves_a_list(client, auth, world, db, people):
    login(client, auth, "coord")
    page = client.get("/recognition").get_data(as_text=True)
    assert 'id="propose-form"' in page and "No list published yet." in page
    lid = list_id(propose(client, world))
    draft = client.get(f"/recognition/{lid}").get_data(as_text=True)
    assert 'id="draft"' in draft and 'id="approve"' in draft
    # the hand computation of tests/matcher/test_recognition.py, in its order
    names = re.findall(r'data-label="Name">([^<]+)<', draft)
    assert names == ["刘洋", "王强", "李秀英"]
    assert "320.0" in draft and "310.0" in draft and "105.0" in draft
    assert 'id="drafts"' in client.get("/recognition").get_data(as_text=True)

    response = client.post(f"/recognition/{lid}/approve")
    assert response.status_code == 302
    published = client.get(f"/recognition/{lid}").get_data(as_text=True)
    assert 'id="approved"' in published and 'id="approve"' not in published and 'id="draft"' not in published
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "approve_recognition",
                                                      AuditEntry.object_id == lid)) is not None
    assert client.post(f"/recognition/{lid}/approve").status_code == 409  # approved once only


def test_an_approved_list_stays_as_it_was(client, auth, world, db, people):
    login(client, auth, "coord")
    lid = list_id(propose(client, world, "a2"))
    client.post(f"/recognition/{lid}/approve")
    served(db, world, people["c"], date(2024, 3, 2), "40")  # 陈静 would be on a list worked out now
    db.session.commit()
    page = client.get(f"/recognition/{lid}").get_data(as_text=True)
    assert "刘洋" in page and "陈静" not in page
    again = propose(client, world, "a2")
    assert again.status_code == 400 and 'id="err-area"' in again.get_data(as_text=True)
    db.session.expire_all()
    assert len(db.session.get(RecognitionList, lid).entries) == 1


def test_volunteers_see_the_published_lists_of_their_areas_only(client, auth, world, db, people):
    login(client, auth, "coord")
    town_a = list_id(propose(client, world, "town_a"))
    town_b = list_id(propose(client, world, "town_b"))
    draft = list_id(propose(client, world, "a1"))
    for lid in (town_a, town_b):
        assert client.post(f"/recognition/{lid}/approve").status_code == 302
    auth.logout()

    login(client, auth, "vol_a")  # lives in 桂花社区, 东城街道
    index = client.get("/recognition").get_data(as_text=True)
    assert f"/recognition/{town_a}" in index and f"/recognition/{town_b}" not in index
    assert 'id="propose-form"' not in index
    sheet = client.get(f"/recognition/{town_a}")
    assert sheet.status_code == 200 and "李秀英" in sheet.get_data(as_text=True)
    assert client.get(f"/recognition/{town_b}").status_code == 404
    assert client.get(f"/recognition/{draft}").status_code == 404
    assert client.post(f"/recognition/{draft}/approve").status_code == 403
    assert client.post("/recognition", data={"area": str(world["areas"]["a1"].id)}).status_code == 403
    auth.logout()

    login(client, auth, "coord_b")  # 南山镇: the other township's draft is not theirs
    assert client.get(f"/recognition/{draft}").status_code == 404
    assert client.post(f"/recognition/{draft}/approve").status_code == 404
    auth.logout()
    login(client, auth, "coord_a")
    assert client.get(f"/recognition/{draft}").status_code == 200
    assert client.post(f"/recognition/{draft}/approve").status_code == 302


def test_a_township_coordinator_cannot_propose_for_the_district(client, auth, world, people):
    login(client, auth, "coord_a")
    response = propose(client, world, "district")
    assert response.status_code == 400 and 'id="err-area"' in response.get_data(as_text=True)
    assert client.get("/recognition/999999").status_code == 404


@pytest.mark.parametrize("data, field", [
    ({}, "area"),
    ({"area": "x", "start": "2024-01-01", "end": "2024-03-31"}, "area"),
    ({"area": "D", "start": "", "end": "2024-03-31"}, "start"),
    ({"area": "D", "start": "2024-02-30", "end": "2024-03-31"}, "start"),
    ({"area": "D", "start": "2024-03-31", "end": "2024-01-01"}, "end"),
    ({"area": "D", "start": "2024-01-01", "end": (date.today() + timedelta(days=2)).isoformat()}, "end"),
    ({"area": "D", "start": "2024-01-01", "end": "2024-01-01\x00"}, "end"),
])
def test_bad_input_is_a_400_naming_the_field(client, auth, world, db, data, field):
    login(client, auth, "coord")
    data = {k: (str(world["areas"]["district"].id) if v == "D" else v) for k, v in data.items()}
    response = client.post("/recognition", data=data)
    assert response.status_code == 400
    assert f'id="err-{field}"' in response.get_data(as_text=True)
    assert db.session.scalar(select(RecognitionList.id)) is None


def test_the_record_page_shows_a_progress_bar_toward_the_next_star(client, auth, world, db):
    vol = world["volunteers"]["a"]
    vol.total_hours = Decimal("320.5")
    db.session.commit()
    login(client, auth, "vol_a")
    page = client.get("/me/record").get_data(as_text=True)
    bar = re.search(r'<progress id="star-bar" max="([^"]+)" value="([^"]+)"', page)
    assert bar and float(bar.group(1)) == 300 and float(bar.group(2)) == pytest.approx(20.5)  # 300 -> 600
    assert '<label for="star-bar">' in page and "320.5 of 600 hours toward 3 stars" in page
    vol.total_hours = Decimal("1600")
    db.session.commit()
    top = client.get("/me/record").get_data(as_text=True)
    assert 'max="1" value="1"' in top and "Highest star level reached" in top
