"""The whole weekly loop in a real browser, on the demo district (点单 → 派单 → 接单 → 签到 → 评单).

A community worker posts a demand for today; the street's coordinator solves this week in the
background, reviews it, puts the demo volunteer on the demand and publishes; the volunteer accepts
on a phone, checks in and out with the codes the worker shows; the worker confirms the service and
rates it; the volunteer's hours and the coordinator's coverage figures change. Each page visited
is saved as a screenshot in test-artifacts/e2e/.

Only one thing is not done through the browser: the 90 minutes between check-in and check-out.
The test moves the recorded check-in time back in the database, as if the service had lasted that
long, so the credited hours can be checked (1.5 h).
"""

from __future__ import annotations

import re
import sqlite3
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

pytestmark = pytest.mark.e2e

TITLE = "移风易俗宣传（浏览器测试）"


def _window(now: datetime) -> tuple[str, str]:
    """A service running now: started up to 10 minutes ago, 90 minutes long, ending by midnight."""
    start = now.replace(minute=now.minute - now.minute % 5, second=0, microsecond=0) - timedelta(minutes=10)
    if start.date() != now.date():
        start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    end = start + timedelta(minutes=90)
    if end.date() != now.date():
        end = now.replace(hour=23, minute=55, second=0, microsecond=0)
        start = min(start, end - timedelta(minutes=30))
    return start.strftime("%H:%M"), end.strftime("%H:%M")


def _number(text: str) -> float:
    return float(re.sub(r"[^0-9.]", "", text) or 0)


def test_post_solve_publish_accept_check_in_out_rate(page_for, shot, base_url, instance_path):
    today = datetime.now(ZoneInfo("Asia/Shanghai")).replace(tzinfo=None)  # the service's local time
    if today.hour == 23 and today.minute >= 25:
        # The service must still be running when the volunteer checks in, some minutes from now, and
        # a service does not cross midnight: from 23:25 there is no such window left today.
        pytest.skip("a service running now cannot fit before midnight Beijing time (run after 00:00)")
    monday = today.date() - timedelta(days=today.weekday())
    start, end = _window(today)

    # The coordinator's figures for this week before anything happens.
    coord = page_for("coord_songpo")
    coord.goto(f"/dashboard?week={monday.isoformat()}")
    coverage_before = coord.locator("#stat-coverage").inner_text()
    shot(coord, "coordinator-dashboard-before")

    # 1. The community worker posts a demand for today at the community's station.
    worker = page_for("worker")
    worker.goto("/demands/new")
    worker.select_option("select[name=category]", "customs_reform")
    assert worker.input_value("input[name=people]") == "2"  # the category's usual headcount, pre-filled
    worker.fill("input[name=title]", TITLE)
    worker.check("input[name=location_kind][value=station]")
    worker.fill("input[name=date]", today.date().isoformat())
    worker.fill("input[name=start]", start)
    worker.fill("input[name=end]", end)
    worker.fill("input[name=people]", "1")
    worker.fill("input[name=min_people]", "1")
    worker.select_option("select[name=priority]", "high")
    with worker.expect_navigation():
        worker.click("form.form button[type=submit].primary")
    assert re.search(r"/demands/\d+$", worker.url), worker.url
    demand_id = int(worker.url.rsplit("/", 1)[1])
    shot(worker, "worker-demand-posted")

    # 2. The coordinator opens this week's schedule for the street and solves it in the background.
    coord.goto("/schedules")
    coord.fill("input[name=week]", monday.isoformat())
    with coord.expect_navigation():
        coord.click("form.filters button[type=submit]")
    schedule_url = coord.url
    shot(coord, "coordinator-schedule-empty")
    with coord.expect_navigation():
        coord.click("#solve-button")
    # The progress panel polls the run and reloads the page when it is done.
    coord.wait_for_selector("#run-progress[data-active='0']", timeout=120_000)
    assert "#" not in coord.locator("#run-status").inner_text()
    shot(coord, "coordinator-schedule-solved")

    # 3. Review the demand and put the demo volunteer on it (with a recorded reason if a rule objects).
    coord.click(f"a.occ:has-text('{TITLE}')")
    coord.wait_for_load_state()
    shot(coord, "coordinator-demand-review")
    assigned = coord.locator("#assigned tbody tr")
    for row in assigned.all():  # make room: the demand wants one person
        if row.locator("button.danger").count():
            with coord.expect_navigation():
                row.locator("button.danger").click()
    coord.fill("#candidate-search input[name=q]", "胡慧")
    with coord.expect_navigation():
        coord.click("#candidate-search button[type=submit]")
    candidate = coord.locator("#candidates tbody tr", has_text="胡慧").first
    if candidate.count() == 0:
        pytest.fail("the demo volunteer is not among the candidates of a demand in her own community")
    override = candidate.locator("input[name=override_reason]")
    if override.count():
        override.fill("熟悉该社区，浏览器测试")
    with coord.expect_navigation():
        candidate.locator("button[type=submit]").click()
    assert coord.locator("#assigned", has_text="胡慧").count() == 1
    shot(coord, "coordinator-volunteer-assigned")

    # 4. Publish: the proposal becomes an offer.
    coord.goto(schedule_url)
    with coord.expect_navigation():
        coord.click("#publish-button")
    shot(coord, "coordinator-published")

    # 5. The volunteer accepts on a phone.
    vol = page_for("volunteer", mobile=True)
    vol.goto("/me/record")
    hours_before = _number(vol.locator("#total-hours").inner_text())
    vol.goto("/me/offers")
    offer = vol.locator("li.offer", has_text=TITLE)
    assert offer.count() == 1
    shot(vol, "volunteer-offer")
    with vol.expect_navigation():
        offer.locator("form button.primary").click()
    vol.goto("/me/week?week=" + monday.isoformat())
    assert TITLE in vol.content()
    shot(vol, "volunteer-week")

    # 6. The worker shows the check-in code; the volunteer types it to check in.
    worker.goto(f"/community/week?week={monday.isoformat()}")
    service = worker.locator("article.service", has_text=TITLE)
    with worker.expect_navigation():
        service.locator("a.button", has_text=re.compile("签到|check-in", re.I)).click()
    code = re.sub(r"\D", "", worker.locator("#code-in").inner_text())
    occurrence_id = int(re.search(r"/occurrences/(\d+)/code", worker.url).group(1))
    assert len(code) == 6 and worker.locator("svg").count() >= 1
    assert worker.locator("#countdown .countdown-seconds").count() == 1  # the page refreshes its codes
    shot(worker, "worker-checkin-code")
    vol.goto(f"/checkin?occurrence={occurrence_id}")
    vol.fill("input[name=code]", code)
    with vol.expect_navigation():
        vol.click("button[type=submit].primary")
    shot(vol, "volunteer-checked-in")

    # 90 minutes of service pass (see the module docstring), then the volunteer checks out.
    with sqlite3.connect(instance_path / "linli.sqlite") as conn:
        moved = conn.execute(
            "UPDATE assignments SET checked_in_at = datetime(checked_in_at, '-90 minutes') "
            "WHERE occurrence_id = ? AND status = 'checked_in'", (occurrence_id,)).rowcount
    assert moved == 1
    # Checking out takes the check-out code (the service has started, so the worker's page shows it).
    worker.reload()
    out_code = re.sub(r"\D", "", worker.locator("#code-out").inner_text())
    assert len(out_code) == 6
    shot(worker, "worker-checkout-code")
    vol.goto(f"/checkin?occurrence={occurrence_id}")
    vol.fill("input[name=code]", out_code)
    with vol.expect_navigation():
        vol.click("button[type=submit].primary")
    assert vol.locator("#credited").count() == 1 and "1.5" in vol.locator("#credited").inner_text()
    shot(vol, "volunteer-checked-out")

    # 7. The worker confirms the service and records the resident's rating.
    worker.goto(f"/community/week?week={monday.isoformat()}")
    service = worker.locator("article.service", has_text=TITLE)
    with worker.expect_navigation():
        service.locator("form.confirm button[type=submit]").click()
    service = worker.locator("article.service", has_text=TITLE)
    assert service.locator("form.confirm").count() == 0  # done now
    rate = service.locator("form.rate").first
    rate.locator("select[name=rating]").select_option("5")
    rate.locator("input[name=comment]").fill("老人很满意")
    with worker.expect_navigation():
        rate.locator("button[type=submit]").click()
    shot(worker, "worker-rated")

    # 8. The volunteer's record and the coordinator's figures changed accordingly.
    vol.goto("/me/record")
    hours_after = _number(vol.locator("#total-hours").inner_text())
    assert hours_after == pytest.approx(hours_before + 1.5)
    assert "老人很满意" in vol.content()
    shot(vol, "volunteer-record")
    coord.goto(f"/dashboard?week={monday.isoformat()}")
    coverage_after = coord.locator("#stat-coverage").inner_text()
    assert _number(coverage_after) > _number(coverage_before) or coverage_before != coverage_after
    shot(coord, "coordinator-dashboard-after")
    assert demand_id > 0 and isinstance(date.today(), date)
