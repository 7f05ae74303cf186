"""A roster import in a real browser on the demo district: the district's coordinator downloads the
template, uploads a roster (GB18030 CSV, as a Chinese office saves it) with a few bad rows, reads the
preview naming each bad row and cell, finds nothing written, uploads the fixed file, imports it, and
imports the same file again to see that nothing changes."""

from __future__ import annotations

import csv
import io
import sqlite3

import pytest

pytestmark = pytest.mark.e2e

HEADER = ["姓名", "手机号", "所在社区", "技能", "空闲时间"]


def _db(instance_path):
    return sqlite3.connect(instance_path / "linli.sqlite")


def _csv(rows) -> bytes:
    out = io.StringIO(newline="")
    csv.writer(out).writerows([HEADER, *rows])
    return out.getvalue().encode("gb18030")


def _upload(page, data: bytes, shot=None, name: str = "") -> None:
    page.set_input_files("input[name=file]", files=[{"name": "社区志愿者名册.csv", "mimeType": "text/csv",
                                                      "buffer": data}])
    with page.expect_navigation():
        page.click("#upload button[type=submit]")
    if shot:
        shot(page, name)


def test_a_roster_with_bad_rows_is_named_cell_by_cell_then_imports_once(page_for, shot, instance_path,
                                                                        base_url):
    with _db(instance_path) as conn:
        community = conn.execute(
            "SELECT name FROM areas WHERE level = 'community' GROUP BY name HAVING count(*) = 1 "
            "ORDER BY name LIMIT 1").fetchone()[0]
        skill = conn.execute("SELECT name_zh FROM skills WHERE code = 'elder_care'").fetchone()[0]
        before = conn.execute("SELECT count(*) FROM volunteers").fetchone()[0]
    good = [["孙丽华", "19912340001", community, skill, "周二 09:00-11:00"],
            ["钱伟", "19912340002", community, "", "周六 14:00-17:00；周日 14:00-17:00"]]
    bad = good + [["周敏", "12345", community, "", ""],                     # row 4: not a mobile number
                  ["吴刚", "19912340004", community, "驯龙", ""],           # row 5: unknown skill
                  ["郑洁", "19912340005", community, "", "周三 18:00-09:00"]]  # row 6: backwards

    page = page_for("coord")
    page.goto(base_url + "/volunteers")
    with page.expect_navigation():
        page.click("text=导入名册")
    with page.expect_download() as download:
        page.click("#template-xlsx")
    assert download.value.suggested_filename.endswith(".xlsx")

    _upload(page, _csv(bad), shot, "roster-preview-bad")
    assert page.locator("#import-blocked").is_visible()
    assert page.locator("#confirm-import").count() == 0
    cells = [tuple(c.strip() for c in row.split("\t")) for row in
             page.locator("#problems tbody tr").evaluate_all("rows => rows.map(r => r.innerText)")]
    assert [(r[0], r[1]) for r in cells] == [("4", "手机号"), ("5", "技能"), ("6", "空闲时间")]
    assert "驯龙" in cells[1][2] and "12345" in cells[0][2]
    with _db(instance_path) as conn:
        assert conn.execute("SELECT count(*) FROM volunteers").fetchone()[0] == before  # nothing written

    page.goto(base_url + "/imports/volunteers")
    _upload(page, _csv(good))
    assert page.locator("#import-blocked").count() == 0
    with page.expect_navigation():
        page.click("#confirm-import")
    shot(page, "roster-imported")
    assert "新增 2 人" in page.locator("#import-done").inner_text()
    with _db(instance_path) as conn:
        assert conn.execute("SELECT count(*) FROM volunteers").fetchone()[0] == before + 2

    page.goto(base_url + "/imports/volunteers")
    _upload(page, _csv(good))
    assert "2 人不变" in page.locator("#import-counts").inner_text()
    with page.expect_navigation():
        page.click("#confirm-import")
    with _db(instance_path) as conn:
        assert conn.execute("SELECT count(*) FROM volunteers").fetchone()[0] == before + 2
