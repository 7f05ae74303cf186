"""The API's documentation in a real browser: Swagger UI served from the app under its strict CSP, and a
personal access token made on the profile page that then works with the API."""

from __future__ import annotations

import json
import re
import urllib.request

import pytest

pytestmark = pytest.mark.e2e


def test_swagger_ui_renders_every_part_of_the_api_without_errors(page_for, browser_errors, base_url, shot):
    page = page_for(login=False)
    response = page.goto(base_url + "/api/v1/docs")
    assert response.status == 200
    page.wait_for_selector(".opblock-tag", timeout=15_000)
    tags = {t.strip() for t in page.locator(".opblock-tag").all_inner_texts()}
    for part in ("api_auth", "api_me", "api_demands", "api_schedules", "api_records"):
        assert any(part in t for t in tags), (part, tags)
    assert page.locator(".opblock").count() >= 25
    shot(page, "api-docs")
    assert not browser_errors, browser_errors


def test_a_token_made_on_the_profile_page_opens_the_api(page_for, base_url, shot):
    page = page_for("coord", mobile=True)
    page.goto(base_url + "/account/tokens")
    page.fill("input[name=name]", "区平台对接")
    page.check("input[name=scopes][value=records]")
    page.click("form[action$='/account/tokens'] button[type=submit]")
    secret = page.inner_text("#token-secret").strip()
    assert re.fullmatch(r"lnl_[A-Za-z0-9_-]{40,}", secret)
    shot(page, "api-token-made")
    request = urllib.request.Request(base_url + "/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        me = json.load(answer)
    assert me["username"] == "coord" and me["token_scopes"] == ["read", "records"]
    page.goto(base_url + "/account/tokens")
    assert "区平台对接" in page.inner_text("#token-list")
