"""The summary report in a real browser, on a phone: the demo district's street coordinator makes the street's
report for the quarter holding the demo week, reads the charts (SVG images the CSP allows), edits the drafted
意见建议, saves a numbered version and downloads its PDF and XLSX. Screenshots in test-artifacts/e2e/.
"""

from __future__ import annotations

import io
import re
import zipfile

import pytest

pytestmark = pytest.mark.e2e

EDITED = "一、在本街道再招募持证助老志愿者10名（浏览器测试）。"


def test_a_street_coordinator_makes_saves_and_downloads_the_quarterly_report(page_for, shot, demo_week,
                                                                             browser_errors):
    quarter = f"{demo_week.year}-Q{(demo_week.month - 1) // 3 + 1}"
    page = page_for("coord_songpo", mobile=True)
    page.goto("/reports")
    area = page.locator("#report-area option:checked").inner_text().strip()
    assert area  # their own street, chosen for them
    page.select_option("#report-period", quarter)
    shot(page, "report-choose")
    with page.expect_navigation():
        page.click("#report-form button[type=submit]")
    assert "/reports/preview" in page.url
    title = page.locator("#report-title").inner_text()
    assert area in title
    for section in ("开展情况", "进展成效", "存在问题", "意见建议"):
        assert page.get_by_role("heading", name=re.compile(section)).count() == 1
    # Every chart is drawn (an SVG image with a size), and the page does not scroll sideways on a phone.
    charts = page.locator("figure.chart img")
    assert charts.count() == 5
    for i in range(5):
        assert charts.nth(i).evaluate("img => img.complete && img.naturalWidth > 0")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    # The demo week's demands are posted but not yet served: the figures say so, the draft says something.
    draft = page.locator("#suggestions").input_value()
    assert draft.startswith("1. ")
    shot(page, "report-preview")
    page.fill("#suggestions", EDITED)
    with page.expect_navigation():
        page.click("#save-report")
    assert re.search(r"/reports/\d+$", page.url)
    assert EDITED in page.locator("#suggestions-text").inner_text()
    shot(page, "report-saved")

    pdf = page.request.get(page.locator("#pdf-link").get_attribute("href"))
    assert pdf.status == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.body().startswith(b"%PDF")
    with page.expect_download() as caught:
        page.click("#xlsx-link")
    data = caught.value.path().read_bytes()
    assert caught.value.suggested_filename.endswith(".xlsx")
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert "xl/workbook.xml" in names and len([n for n in names if n.startswith("xl/worksheets/sheet")]) >= 15
    # The saved version is listed on the front page.
    page.goto("/reports")
    assert page.locator("table.report-list tbody tr").count() >= 1
    assert browser_errors == [], browser_errors
