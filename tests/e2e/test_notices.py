"""Notices outside the app, end to end in a real browser (issue 10).

A server of its own (gunicorn, a small demo district on SQLite) with the SMS channel pointed at the
local gateway (`tests/servers/sms_gateway.py`, real HTTP on 127.0.0.1, signed both ways). The street's
coordinator solves next week and publishes it; the gateway receives exactly one message per volunteer
with offers, listing all of that volunteer's offers, with a short link. A volunteer follows the link
on a phone, meets the sign-in page, signs in, lands on their offers and accepts one; the gateway
reports delivery; the coordinator's "who was told" page shows the message delivered and the offers seen.

The one thing not done in a browser: the demo gives a password only to its one demo volunteer, so the
test gives the volunteer it follows the same password hash in the database (the solver decides who
gets offers, and the demo volunteer may get none).
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import time
from collections import Counter
from datetime import date, timedelta

import pytest

from matcher import rules
from matcher.demo import DEMO_PASSWORD
from tests.e2e.conftest import (
    CHROMIUM,
    DESKTOP,
    PHONE,
    _free_port,
    _run_flask,
    clean_environment,
    gunicorn_server,
)
from tests.servers.sms_gateway import SmsGateway

pytestmark = pytest.mark.e2e

TEMPLATES = {"offer": "SMS_0001", "offer_changed": "SMS_0002", "offer_withdrawn": "SMS_0003",
             "service_cancelled": "SMS_0004"}


@pytest.fixture(scope="module")
def gateway():
    with SmsGateway(access_key="e2e-key", secret="e2e-secret") as gw:
        yield gw


@pytest.fixture(scope="module")
def notice_server(tmp_path_factory, gateway, artifacts_dir):
    """(base URL, instance folder, week): a server of its own whose SMS goes to the local gateway."""
    instance = tmp_path_factory.mktemp("notices-instance")
    week = rules.week_monday(date.today()) + timedelta(days=7)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = clean_environment(
        instance, LINLI_PUBLIC_URL=url, LINLI_SOLVE_TIME_LIMIT="5",
        LINLI_SMS_GATEWAY_URL=gateway.url, LINLI_SMS_ACCESS_KEY=gateway.access_key, LINLI_SMS_SECRET=gateway.secret,
        LINLI_SMS_SIGN_NAME="邻里", LINLI_SMS_TEMPLATES=json.dumps(TEMPLATES),
        LINLI_OUTBOX_QUIET_HOURS="[]")  # quiet hours have their own tests; this one runs at any hour
    log = artifacts_dir / "notices-gunicorn.log"
    log.write_text("")
    _run_flask(["db", "upgrade"], env, log)
    _run_flask(["demo", "load", "--week", week.isoformat(), "--scale", "0.1"], env, log)
    with gunicorn_server(env, port, log):
        yield url, instance, week


def _sign_in(page, username: str) -> None:
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", DEMO_PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit].primary")


def _wait_for(condition, seconds: float = 60.0, what: str = "") -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def test_publish_one_sms_per_volunteer_follow_the_link_accept_and_see_delivery(
        browser, notice_server, gateway, shot):
    if not os.path.exists(CHROMIUM):
        pytest.skip("no Chromium")
    url, instance, week = notice_server
    database = instance / "linli.sqlite"
    coord = browser.new_context(base_url=url, locale="zh-CN", **DESKTOP).new_page()
    coord.goto("/login")
    _sign_in(coord, "coord_songpo")

    # The street's coordinator opens next week and solves it.
    coord.goto("/schedules")
    coord.fill("input[name=week]", week.isoformat())
    with coord.expect_navigation():
        coord.click("form.filters button[type=submit]")
    schedule_id = int(re.search(r"/schedules/(\d+)", coord.url).group(1))
    with coord.expect_navigation():
        coord.click("#solve-button")
    coord.wait_for_selector("#run-progress[data-active='0']", timeout=120_000)
    coord.wait_for_selector("#publish-button")
    # Before publishing: the page says who can be told outside the app (every demo volunteer has a phone).
    assert coord.locator("#told").count() == 1 and coord.locator("#told-unreachable").count() == 0
    shot(coord, "coordinator-before-publishing")

    with sqlite3.connect(database) as conn:
        rows = conn.execute(
            "SELECT v.id, v.phone, u.id, u.username, d.title, v.real_name FROM assignments a "
            "JOIN volunteers v ON v.id = a.volunteer_id JOIN users u ON u.id = v.user_id "
            "JOIN demand_occurrences o ON o.id = a.occurrence_id JOIN demands d ON d.id = o.demand_id "
            "WHERE a.schedule_id = ? AND a.status = 'proposed'", (schedule_id,)).fetchall()
        assert rows, "the solve proposed nobody"
        offers = Counter(r[0] for r in rows)
        followed = offers.most_common(1)[0][0]  # the volunteer with the most offers
        vol_phone, vol_user, vol_username, vol_name = next((r[1], r[2], r[3], r[5]) for r in rows if r[0] == followed)
        titles = {r[4] for r in rows if r[0] == followed}
        conn.execute("UPDATE users SET password_hash = (SELECT password_hash FROM users WHERE username = "
                     "'volunteer') WHERE id = ?", (vol_user,))

    with coord.expect_navigation():
        coord.click("#publish-button")
    shot(coord, "coordinator-published")

    # One message per volunteer with offers, each listing all of that volunteer's offers.
    _wait_for(lambda: len(gateway.messages) >= len(offers), what=f"{len(offers)} messages at the gateway")
    time.sleep(1.0)  # nothing more arrives
    phones = Counter(m["phone"] for m in gateway.messages)
    assert len(gateway.messages) == len(offers) and max(phones.values()) == 1
    (message,) = [m for m in gateway.messages if m["phone"] == vol_phone]
    assert message["template_id"] == "SMS_0001" and message["sign_name"] == "邻里"
    assert all(title in message["params"]["items"] for title in titles)
    link = message["params"]["url"]
    assert re.fullmatch(re.escape(url) + r"/n/[0-9A-Za-z]{9,14}", link), link

    # The volunteer follows the link on a phone: the link signs nobody in; after signing in, the offers.
    phone = browser.new_context(locale="zh-CN", **PHONE).new_page()
    phone.goto(link)
    assert "/login" in phone.url
    shot(phone, "volunteer-link-asks-to-sign-in")
    _sign_in(phone, vol_username)
    assert phone.url.split("?")[0].endswith("/me/offers"), phone.url
    shot(phone, "volunteer-offers-from-the-link")
    with phone.expect_navigation():
        phone.locator("li.offer form button.primary").first.click()
    assert phone.locator(".flash").count() >= 1

    # How they are told: SMS is on and reaches their phone (masked); the page fits the phone's width.
    phone.goto(url + "/notifications/settings")
    assert phone.locator("#channel-sms").get_attribute("data-on") == "1"
    assert phone.locator("#channel-wechat").get_attribute("data-on") == "0"
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    shot(phone, "volunteer-how-you-are-told")

    # The gateway reports the message delivered (a signed receipt to the application).
    assert gateway.send_receipt(url + "/hooks/sms/receipts", message["biz_id"], out_id=message["out_id"]) == 200

    # The coordinator sees it: delivered and seen, on the "who was told" page and on the review page.
    coord.goto(f"/schedules/{schedule_id}/delivery")
    assert coord.locator("tr[data-state='sent']").count() + coord.locator("tr[data-state='delivered']").count() \
        == min(len(offers), 100)
    coord.fill("#delivery-search input[name=q]", vol_name)
    with coord.expect_navigation():
        coord.click("#delivery-search button[type=submit]")
    row = coord.locator(f"#reach-{followed}")
    assert row.get_attribute("data-state") == "delivered" and row.get_attribute("data-seen") == "1"
    shot(coord, "coordinator-who-was-told")
    coord.goto(f"/schedules/{schedule_id}")
    assert coord.locator("#delivery-link").count() == 1

    # The administrator's preview of the templates: every Chinese SMS fits one segment.
    admin = browser.new_context(base_url=url, locale="zh-CN", **DESKTOP).new_page()
    admin.goto("/login")
    _sign_in(admin, "admin")
    admin.goto("/admin/notices")
    assert admin.locator("#event-offer").count() == 1 and admin.locator("#over-one-segment-zh_CN").count() == 0
    assert "SMS_0001" in admin.locator("#event-offer").inner_text()
    shot(admin, "admin-message-templates")
