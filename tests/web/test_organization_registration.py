"""The organizations list and page show the registration status (登记 / 备案 / neither); the list filters by it."""

from __future__ import annotations

from matcher.models import Organization, OrgType, Registration


def test_the_list_shows_and_filters_by_registration(client, auth, world, db):
    town_a = world["areas"]["town_a"]
    db.session.add_all([
        Organization(name="登记的队", type=OrgType.CHARITY, home_area=town_a, areas=[town_a],
                     registration=Registration.REGISTERED),
        Organization(name="未登记的队", type=OrgType.CHARITY, home_area=town_a, areas=[town_a],
                     registration=Registration.UNREGISTERED),
    ])
    db.session.commit()
    auth.login("coord_a")
    client.post("/language/en", data={"next": "/dashboard"})
    page = client.get("/organizations").get_data(as_text=True)
    assert 'id="registration-filter"' in page
    assert "登记的队" in page and "未登记的队" in page and "东城助老服务队" in page
    assert 'class="registration-registered">Registered (登记)<' in page
    assert 'class="registration-filed">Filed (备案)<' in page
    registered = client.get("/organizations?registration=registered").get_data(as_text=True)
    assert "登记的队" in registered and "未登记的队" not in registered and "东城助老服务队" not in registered
    filed = client.get("/organizations?registration=filed&type=life_services").get_data(as_text=True)
    assert "东城助老服务队" in filed and "登记的队" not in filed
    assert '<option value="filed" selected>' in filed
    anything = client.get("/organizations?registration=%00nonsense")  # not a status: every organization
    assert anything.status_code == 200 and "未登记的队" in anything.get_data(as_text=True)


def test_the_organization_page_shows_its_registration(client, auth, world, db):
    org = world["orgs"]["a"]
    org.registration = Registration.UNREGISTERED
    db.session.commit()
    auth.login("vol_a")
    page = client.get(f"/organizations/{org.id}").get_data(as_text=True)  # Chinese by default
    assert 'id="registration">' in page and "未登记" in page
