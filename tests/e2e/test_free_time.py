"""A volunteer sets their free time with the picker on a phone (issue 9, defect 11).

No coded text: the volunteer adds a weekday row (Saturday 09:00–11:30) with the "add" button,
removes a spare row, adds a date with extra time, gives the weekly limit in hours (half hours
allowed), saves, and finds it all again; the database holds minutes. Only free time is added (the
other browser tests share the demo volunteer, and more availability cannot break them).
"""

from __future__ import annotations

import sqlite3
from datetime import timedelta

import pytest

pytestmark = pytest.mark.e2e


def test_a_volunteer_sets_free_time_with_the_picker_on_a_phone(page_for, shot, instance_path, demo_week,
                                                                browser_errors):
    page = page_for("volunteer", mobile=True)
    with page.expect_navigation():
        page.goto("/me/profile")
    weekly, dated = page.locator("fieldset.free-time").nth(0), page.locator("fieldset.free-time").nth(1)
    rows = weekly.locator("li.time-row")
    before = rows.count()
    assert before >= 2  # the stored rows (if any) and spare rows for typing without JavaScript
    shot(page, "profile-picker")

    # The script adds a row and removes one; both buttons are hidden without JavaScript.
    weekly.locator("button.add-row").click()
    assert rows.count() == before + 1
    rows.nth(before - 1).locator("button.remove-row").click()  # a spare row
    assert rows.count() == before
    new = rows.nth(before - 1)
    new.locator("select[name=slot_day]").select_option("5")  # Saturday
    new.locator("input[name=slot_start]").fill("09:00")
    new.locator("input[name=slot_end]").fill("11:30")

    extra_day = (demo_week + timedelta(days=5)).isoformat()
    dated.locator("button.add-row").click()
    date_row = dated.locator("li.time-row").last
    date_row.locator("input[name=exc_date]").fill(extra_day)
    date_row.locator("select[name=exc_kind]").select_option("extra")
    date_row.locator("input[name=exc_start]").fill("14:00")
    date_row.locator("input[name=exc_end]").fill("16:00")
    date_row.locator("input[name=exc_note]").fill("浏览器测试")

    most = page.locator("input[name=max_hours_per_week]")
    hours = float(most.input_value() or 0) + 0.5
    most.fill(f"{hours:g}")
    # Nothing on the page is wider than the phone.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "profile-picker-filled")
    with page.expect_navigation() as nav:
        page.click("form.form button[type=submit].primary")
    assert nav.value.status == 200 and page.url.endswith("/me/profile")  # saved and shown again
    assert page.locator(".flash-success").count() == 1
    shot(page, "profile-saved")

    saturday = [r for r in range(rows.count())
                if rows.nth(r).locator("select[name=slot_day]").input_value() == "5"
                and rows.nth(r).locator("input[name=slot_start]").input_value() == "09:00"]
    assert saturday and rows.nth(saturday[0]).locator("input[name=slot_end]").input_value() == "11:30"
    assert dated.locator(f"input[name=exc_date][value='{extra_day}']").count() == 1
    assert most.input_value() == f"{hours:g}"

    with sqlite3.connect(instance_path / "linli.sqlite") as conn:
        vid, minutes = conn.execute(
            "SELECT v.id, v.max_minutes_per_week FROM volunteers v JOIN users u ON u.id = v.user_id "
            "WHERE u.username = 'volunteer'").fetchone()
        slots = conn.execute("SELECT weekday, start_minute, end_minute FROM availability_slots "
                             "WHERE volunteer_id = ?", (vid,)).fetchall()
        extra = conn.execute("SELECT kind, starts_at, ends_at FROM availability_exceptions "
                             "WHERE volunteer_id = ? AND note = '浏览器测试'", (vid,)).fetchall()
    assert minutes == round(hours * 60)
    assert (5, 540, 690) in slots
    assert [(k, s[:16], e[:16]) for k, s, e in extra] == [("extra", f"{extra_day} 14:00", f"{extra_day} 16:00")]
    assert browser_errors == []
