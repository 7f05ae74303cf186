"""A street's coordinator and the district's schedule, in a real browser (issue 9, defects 1 and 16).

The district's coordinator opens next week for the whole of 青溪区; the street's coordinator
(`coord_songpo`, on a phone) then opens next week for their street from the schedule list and lands on
their part of the district schedule: only their street's services, no solve or publish button, a note
saying who does what. They put a volunteer of their pool on one of their services. The header fits a
390 px phone: the sign-out button's text stays on one line (the street's coordinator, the community worker).

The district schedule (and the assignment) is removed again at the end, so the other browser tests
find next week as the demo left it.
"""

from __future__ import annotations

import re
import sqlite3

import pytest

pytestmark = pytest.mark.e2e


def _one_line(page, selector: str) -> tuple[float, float]:
    """The element's height and its line height, in CSS pixels."""
    return page.eval_on_selector(selector, """el => {
        const style = getComputedStyle(el);
        const line = parseFloat(style.lineHeight) || parseFloat(style.fontSize) * 1.5;
        return [el.getBoundingClientRect().height, line];
    }""")


def test_a_street_coordinator_opens_next_week_and_adjusts_their_part(
        page_for, shot, browser_errors, demo_week, instance_path):
    database = instance_path / "linli.sqlite"
    with sqlite3.connect(database) as conn:
        street_id, street_path = conn.execute(
            "SELECT a.id, a.path FROM areas a JOIN users u ON u.area_id = a.id WHERE u.username = 'coord_songpo'"
        ).fetchone()
        communities = {name for (name,) in conn.execute(
            "SELECT name FROM areas WHERE level = 'community' AND path LIKE ?", (street_path + "%",))}
        district_id = conn.execute("SELECT id FROM areas WHERE level = 'district' AND name = '青溪区'").fetchone()[0]
        statuses = dict(conn.execute("SELECT id, status FROM demand_occurrences"))
    schedule_id = None
    try:
        # The district's coordinator opens next week for the whole district.
        district = page_for("coord")
        district.goto("/schedules")
        district.select_option("select[name=area]", value=str(district_id))
        district.fill("input[name=week]", demo_week.isoformat())
        with district.expect_navigation():
            district.click("form.filters button[type=submit]")
        schedule_id = int(re.search(r"/schedules/(\d+)$", district.url).group(1))
        assert district.locator("#solve-button").count() == 1
        assert district.locator("select[name=street]").count() == 1  # the district can narrow it to a street

        # The street's coordinator, on a phone, opens next week for their street.
        coord = page_for("coord_songpo", mobile=True)
        coord.goto("/schedules")
        assert coord.locator("#part-hint").count() == 1
        listed = coord.locator("table.list tbody tr", has=coord.locator(f"a[href$='/schedules/{schedule_id}']"))
        assert listed.count() == 1  # the district schedule is in their list, as their part
        coord.select_option("select[name=area]", value=str(street_id))
        coord.fill("input[name=week]", demo_week.isoformat())
        with coord.expect_navigation():
            coord.click("form.filters button[type=submit]")
        assert coord.url.endswith(f"/schedules/{schedule_id}"), coord.url  # not a 400: their part of it
        assert coord.locator("#part-note").is_visible()
        assert coord.locator("#solve-button").count() == 0 and coord.locator("#publish-button").count() == 0
        # A row's header: the community's name, then its print links.
        rows = {name.split()[0] for name in coord.locator("table.grid tbody th").all_inner_texts()}
        assert rows and rows <= communities, rows - communities  # only their street's communities
        shot(coord, "street-part-of-the-district-schedule")

        # The header fits the phone: "退出登录" on one line, nothing wider than the screen; also for the
        # community worker, whose name and role ("某某（某社区社工） · 社区工作者") used to squeeze it to "退出登/录".
        for phone in (coord, page_for("worker", mobile=True)):
            height, line = _one_line(phone, "header.topbar form[action$='/logout'] button")
            assert height < line * 1.5, (phone.url, height, line)
            assert phone.evaluate("document.documentElement.scrollWidth") <= 390 + 1

        # They adjust their part: a volunteer of their pool on one of their services.
        occurrence = coord.locator("table.grid a.occ.empty").first
        if occurrence.count() == 0:
            occurrence = coord.locator("table.grid a.occ").first
        with coord.expect_navigation():
            occurrence.click()
        assert coord.locator("#pool-note").count() == 1
        for row in coord.locator("#assigned tbody tr").all():  # make room if it is full
            if row.locator("button.danger").count():
                with coord.expect_navigation():
                    row.locator("button.danger").click()
                break
        # The first candidates that meet every rule, else any with a reason to override; a candidate the
        # page refuses for a reason no override lifts (e.g. a minor without consent) is skipped.
        name, refusals = None, []
        for attempt in range(6):
            eligible = coord.locator("#candidates tbody tr", has=coord.locator("button.primary"))
            rows = eligible if eligible.count() > attempt else coord.locator(
                "#candidates tbody tr", has=coord.locator("button[type=submit]"))
            if rows.count() <= attempt:
                break
            candidate = rows.nth(attempt)
            tried = candidate.locator("td").first.inner_text().strip()
            override = candidate.locator("input[name=override_reason]")
            if override.count():
                override.fill("街道协调员调整，浏览器测试")
            with coord.expect_navigation():
                candidate.locator("button[type=submit]").click()
            if coord.locator("#assigned", has_text=tried).count() == 1:
                name = tried
                break
            refusals += coord.locator("#err-volunteer").all_inner_texts()
        assert name is not None, f"no candidate of the street's pool could be assigned: {refusals}"
        shot(coord, "street-part-volunteer-assigned")

        # The district's coordinator sees the street's change in the district schedule.
        district.goto(coord.url)
        assert district.locator("#assigned", has_text=name).count() == 1
        assert not browser_errors, browser_errors
    finally:
        if schedule_id is not None:
            with sqlite3.connect(database) as conn:
                conn.execute("DELETE FROM assignments WHERE schedule_id = ?", (schedule_id,))
                conn.execute("DELETE FROM solve_runs WHERE schedule_id = ?", (schedule_id,))
                conn.execute("DELETE FROM schedules WHERE id = ?", (schedule_id,))
                for occurrence_id, status in conn.execute("SELECT id, status FROM demand_occurrences").fetchall():
                    if statuses.get(occurrence_id, status) != status:  # set by the hand edit above
                        conn.execute("UPDATE demand_occurrences SET status = ? WHERE id = ?",
                                     (statuses[occurrence_id], occurrence_id))
