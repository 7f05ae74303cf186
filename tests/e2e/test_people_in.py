"""People in, in a real browser on the demo district: a new volunteer registers on a phone, the
organization's leader approves them, the street's coordinator gives them a service and they accept
it; a pre-registered member activates their account with the link their leader made.

The service is put two weeks ahead (the demo week plus seven days), so that the other browser tests'
weeks stay as they were. The names and ids the forms need (the leader's organization, the demo
community, a member's phone) are read from the server's SQLite file.
"""

from __future__ import annotations

import re
import sqlite3
from datetime import timedelta

import pytest

pytestmark = pytest.mark.e2e

TITLE = "垃圾分类宣传（注册测试）"
PASSWORD = "lantern-orchard-cobalt"


def _db(instance_path):
    return sqlite3.connect(instance_path / "linli.sqlite")


def _free_phone(conn) -> str:
    for n in range(1000):
        phone = f"1991234{n:04d}"
        if conn.execute("SELECT 1 FROM volunteers WHERE phone = ?", ("+86" + phone,)).fetchone() is None:
            return phone
    raise AssertionError("no free phone number")


def test_register_on_a_phone_approved_offered_accepted(page_for, shot, instance_path, demo_week):
    with _db(instance_path) as conn:
        org_id, org_name, community_id = conn.execute(
            "SELECT o.id, o.name, o.home_area_id FROM users u JOIN organizations o ON o.id = u.organization_id "
            "WHERE u.username = 'leader'").fetchone()
        phone = _free_phone(conn)
    tuesday = demo_week + timedelta(days=8)

    # 1. On a phone, from the sign-in page to the registration form.
    vol = page_for(mobile=True, login=False)
    with vol.expect_navigation():
        vol.click("#register-link")
    assert vol.url.endswith("/register")
    assert vol.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling
    vol.fill("input[name=real_name]", "郑新来")
    vol.fill("input[name=phone]", phone)
    vol.fill("input[name=password]", PASSWORD)
    vol.fill("input[name=repeat]", PASSWORD)
    vol.fill("input[name=birth_date]", "1985-04-12")
    assert vol.locator("#guardian").is_hidden()  # an adult: no guardian's fields
    # No list of the district's every organization before the community is chosen; then those serving it.
    assert vol.locator("#orgs-choose").is_visible()
    assert vol.locator(f"input[name=organizations][value='{org_id}']").is_hidden()
    vol.select_option("select[name=home_area]", str(community_id))
    assert vol.locator("#orgs-choose").is_hidden() and vol.locator("#orgs-none").is_hidden()
    vol.check(f"input[name=organizations][value='{org_id}']")
    vol.check("input[name=skills][value=elder_care]")
    vol.locator("select[name=slot_day]").first.select_option(str(tuesday.weekday()))
    vol.locator("input[name=slot_start]").first.fill("08:00")
    vol.locator("input[name=slot_end]").first.fill("12:00")
    shot(vol, "register-form-phone")
    with vol.expect_navigation():
        vol.click("#register-form button[type=submit].primary")
    assert vol.url.endswith("/me/offers"), vol.url
    assert org_name in vol.content()  # waiting for that organization's approval
    shot(vol, "register-waiting-for-approval")

    # 2. The leader sees the application with what was entered, and approves it.
    leader = page_for("leader", mobile=True)
    leader.goto("/dashboard")  # the count of applications leads to them
    with leader.expect_navigation():
        leader.click("#stat-applications")
    assert leader.url.endswith("/team/members")
    row = leader.locator("tr", has_text="郑新来").first
    assert "08:00" in row.inner_text()
    assert leader.evaluate("document.documentElement.scrollWidth") <= 390
    shot(leader, "leader-applications")
    with leader.expect_navigation():
        row.locator("button.primary").click()
    assert leader.locator("table").nth(1).locator("tr", has_text="郑新来").count() == 1

    # 3. A community worker posts a service for the Tuesday two weeks ahead.
    worker = page_for("worker")
    worker.goto("/demands/new")
    worker.select_option("select[name=category]", "customs_reform")
    worker.fill("input[name=title]", TITLE)
    worker.check("input[name=location_kind][value=station]")
    worker.fill("input[name=date]", tuesday.isoformat())
    worker.fill("input[name=start]", "09:00")
    worker.fill("input[name=end]", "10:00")
    worker.fill("input[name=people]", "1")
    worker.fill("input[name=min_people]", "1")
    with worker.expect_navigation():
        worker.click("form.form button[type=submit].primary")
    assert re.search(r"/demands/\d+$", worker.url), worker.url

    # 4. The street's coordinator puts the new volunteer on it and publishes that week.
    coord = page_for("coord_songpo")
    coord.goto("/schedules")
    coord.fill("input[name=week]", (demo_week + timedelta(days=7)).isoformat())
    with coord.expect_navigation():
        coord.click("form.filters button[type=submit]")
    schedule_url = coord.url
    coord.click(f"a.occ:has-text('{TITLE}')")
    coord.wait_for_load_state()
    coord.fill("#candidate-search input[name=q]", "郑新来")
    with coord.expect_navigation():
        coord.click("#candidate-search button[type=submit]")
    candidate = coord.locator("#candidates tbody tr", has_text="郑新来").first
    assert candidate.count() == 1, "the approved volunteer is not a candidate"
    override = candidate.locator("input[name=override_reason]")
    if override.count():
        override.fill("新志愿者，浏览器测试")
    with coord.expect_navigation():
        candidate.locator("button[type=submit]").click()
    assert coord.locator("#assigned", has_text="郑新来").count() == 1
    coord.goto(schedule_url)
    with coord.expect_navigation():
        coord.click("#publish-button")

    # 5. The new volunteer accepts the offer on the phone.
    vol.goto("/me/offers")
    offer = vol.locator("li.offer", has_text=TITLE)
    assert offer.count() == 1
    shot(vol, "register-new-volunteer-offer")
    with vol.expect_navigation():
        offer.locator("form button.primary").click()
    vol.goto(f"/me/week?week={(demo_week + timedelta(days=7)).isoformat()}")
    assert TITLE in vol.content()
    shot(vol, "register-new-volunteer-week")


def test_a_member_activates_by_the_leaders_link(page_for, shot, instance_path, sign_in, artifacts_dir):
    leader = page_for("leader")
    leader.goto("/team/members")
    form = leader.locator("form[action$='/activation-link']").first
    volunteer_id = int(re.search(r"/volunteers/(\d+)/", form.get_attribute("action")).group(1))
    with leader.expect_navigation():
        form.locator("button").click()
    url = leader.locator("#activation-url").inner_text()
    assert "/activate/" in url and leader.locator("#made-link svg").count() == 1  # the QR code
    shot(leader, "leader-activation-link")
    with _db(instance_path) as conn:
        phone, username = conn.execute(
            "SELECT v.phone, u.username FROM volunteers v JOIN users u ON u.id = v.user_id WHERE v.id = ?",
            (volunteer_id,)).fetchone()

    vol = page_for(mobile=True, login=False)
    vol.goto(url)
    wrong = "0000" if not phone.endswith("0000") else "1111"
    vol.fill("input[name=phone_last4]", wrong)
    vol.fill("input[name=birth_date]", "1960-02-03")
    vol.fill("input[name=password]", PASSWORD)
    vol.fill("input[name=repeat]", PASSWORD)
    with vol.expect_navigation():
        vol.click("button[type=submit].primary")
    assert vol.locator("#err-phone_last4").count() == 1
    vol.fill("input[name=phone_last4]", phone[-4:])
    vol.fill("input[name=password]", PASSWORD)
    vol.fill("input[name=repeat]", PASSWORD)
    with vol.expect_navigation():
        vol.click("button[type=submit].primary")
    assert "/activate/" not in vol.url
    shot(vol, "activated-dashboard")
    # The link is used up; the account signs in with its new password.
    fresh = page_for(mobile=True, login=False)
    response = fresh.goto(url)
    assert response.status == 404
    sign_in(fresh, username, PASSWORD)
    assert "/login" not in fresh.url
    # The server's access log saw the link's path three times, never its token.
    token = url.rsplit("/", 1)[1]
    log = (artifacts_dir / "gunicorn.log").read_text(encoding="utf-8")
    assert "/activate/[token]" in log and token not in log
