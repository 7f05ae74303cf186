"""Every demo login can open every page of its menu and the first record of each list."""

import re

import pytest

from matcher.demo import DEMO_PASSWORD, load_demo

MENU = {
    "admin": ["/dashboard", "/demands", "/volunteers", "/organizations", "/residents", "/admin/catalogue",
              "/admin/audit", "/admin/categories/1"],
    "coord": ["/dashboard", "/demands", "/volunteers", "/organizations", "/residents"],
    "worker": ["/dashboard", "/demands", "/volunteers", "/organizations", "/residents", "/demands/new",
               "/residents/new"],
    "leader": ["/dashboard", "/demands", "/volunteers", "/organizations"],
    "volunteer": ["/dashboard", "/organizations"],
}
RECORD_LINK = re.compile(r'href="(/(?:demands|volunteers|organizations|residents)/\d+)"')


@pytest.fixture
def demo(app, next_monday):
    return load_demo(week_start=next_monday, scale=0.05)


@pytest.mark.parametrize("username", sorted(MENU))
def test_demo_login_can_open_its_pages(client, demo, username):
    assert {login[1] for login in demo.logins} >= set(MENU)
    response = client.post("/login", data={"username": username, "password": DEMO_PASSWORD})
    assert response.status_code == 302
    for url in MENU[username]:
        page = client.get(url)
        assert page.status_code == 200, url
        for link in RECORD_LINK.findall(page.get_data(as_text=True))[:1]:
            assert client.get(link).status_code == 200, link
        for extra in ("?page=2", "?q=社区", "?page=abc"):
            if url in ("/demands", "/volunteers", "/organizations", "/residents"):
                assert client.get(url + extra).status_code == 200, url + extra
