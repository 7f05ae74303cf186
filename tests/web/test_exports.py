"""The exports of web/exports.py (demands, an organization's week, a volunteer's own week) and the one rule
for phones in every export (`phone_reveal`, also used by the roster and the week's schedule exports):
each file opens and holds what the exporter may see, formula-like cells come out inert, phones are
masked unless revealed with a recorded reason by who may see them on the pages."""

from __future__ import annotations

import io
from contextlib import contextmanager

from openpyxl import load_workbook
from sqlalchemy import event, func, select

from matcher.demands import create_demand
from matcher.models import AssignmentStatus, AuditEntry, Schedule
from tests.matcher.builders import assign

FORMULAS = ("=cmd|' /C calc'!A0", "+1 上门", "-2 调解", "@x 活动室")


def book(response) -> dict[str, list[list]]:
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    workbook = load_workbook(io.BytesIO(response.data))
    return {sheet.title: [[c.value for c in row] for row in sheet.iter_rows()] for sheet in workbook.worksheets}


def csv_text(response) -> str:
    assert response.status_code == 200 and response.data.startswith(b"\xef\xbb\xbf")
    return response.data.decode("utf-8-sig")


def audits(db, action: str) -> list[AuditEntry]:
    db.session.expire_all()
    return list(db.session.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))


# --------------------------------------------------------------------------- demands


def test_the_demands_export_opens_with_openpyxl_and_holds_every_demand_with_its_week(client, auth, world, next_monday):
    auth.login("coord")
    sheets = book(client.get(f"/demands/export.xlsx?week={next_monday}"))
    assert list(sheets) == ["需求", "缺口"]
    header, *rows = sheets["需求"]
    assert header[:5] == ["编号", "社区", "居民", "居民电话", "服务"] and header[-3:] == ["本周服务", "已排满", "缺人"]
    by_community = {row[1]: row for row in rows}
    assert set(by_community) == {"桂花社区", "石桥村"}
    home = by_community["桂花社区"]
    assert home[2] == "张大爷" and home[3] == "137****1111"  # the resident as the demand page shows them
    assert home[7].startswith("每周一、周四") and home[8] == "09:00-10:30"
    assert "桂花社区3栋" not in " ".join(str(v) for v in home)  # a home's address is never exported
    assert home[-3:] == [2, 0, 2]  # Monday and Thursday next week, nobody on them yet
    unmet = sheets["缺口"][1:]
    assert len(unmet) == 3 and {row[2] for row in unmet} == {"桂花社区", "石桥村"}


def test_the_list_pages_filters_narrow_the_export(client, auth, world, next_monday):
    auth.login("coord")
    rows = book(client.get("/demands/export.xlsx?category=mediation"))["需求"][1:]
    assert [row[1] for row in rows] == ["石桥村"]
    title = world["demands"]["a1"].title
    rows = book(client.get("/demands/export.xlsx", query_string={"q": title}))["需求"][1:]
    assert {row[4] for row in rows} == {title}
    assert book(client.get("/demands/export.xlsx?status=cancelled"))["需求"][1:] == []
    assert book(client.get("/demands/export.xlsx?review=pending"))["需求"][1:] == []
    page = client.get("/demands?category=mediation").get_data(as_text=True)
    assert 'id="export-links"' in page and "/demands/export.xlsx?category=mediation" in page


def test_a_street_coordinators_export_holds_only_the_street(client, auth, world, next_monday):
    auth.login("coord_a")
    sheets = book(client.get(f"/demands/export.xlsx?week={next_monday}"))
    assert {row[1] for row in sheets["需求"][1:]} == {"桂花社区"}
    assert {row[2] for row in sheets["缺口"][1:]} == {"桂花社区"}
    text = csv_text(client.get(f"/demands/export.csv?week={next_monday}&sheet=unmet"))
    assert "桂花社区" in text and "石桥村" not in text


def test_a_community_workers_export_holds_only_the_community(client, auth, world, next_monday):
    auth.login("worker_b1")
    rows = book(client.get(f"/demands/export.xlsx?week={next_monday}"))["需求"][1:]
    assert [row[1] for row in rows] == ["石桥村"]
    auth.logout()
    auth.login("worker_a1")
    text = csv_text(client.get("/demands/export.csv"))
    assert text.startswith("编号,社区,居民,居民电话") and "桂花社区" in text and "石桥村" not in text


def test_formula_like_cells_come_out_inert_in_xlsx_and_csv(client, auth, world, db, next_monday):
    world["residents"]["a1"].name = FORMULAS[0]
    world["demands"]["a1"].title = FORMULAS[1]
    world["demands"]["b1"].title = FORMULAS[2]
    world["demands"]["b1"].address = FORMULAS[3]
    db.session.commit()
    auth.login("admin")
    response = client.get(f"/demands/export.xlsx?week={next_monday}")
    workbook = load_workbook(io.BytesIO(response.data))
    assert all(c.data_type != "f" for sheet in workbook.worksheets for row in sheet.iter_rows() for c in row)
    values = {str(c.value) for sheet in workbook.worksheets for row in sheet.iter_rows() for c in row}
    assert {"'" + FORMULAS[0], "'" + FORMULAS[1], "'" + FORMULAS[2]} <= values
    assert any(v.endswith(FORMULAS[3]) for v in values)  # the place: "station：…站 @x 活动室", not a formula
    for sheet in ("demands", "unmet"):
        text = csv_text(client.get(f"/demands/export.csv?week={next_monday}&sheet={sheet}"))
        cells = [cell for line in text.splitlines() for cell in line.split(",")]
        assert not any(cell.startswith(("=", "+", "-", "@")) for cell in cells), sheet
        assert "'" + FORMULAS[1] in text and "'" + FORMULAS[2] in text


def test_phones_are_masked_and_the_worker_reveals_them_with_a_recorded_reason(client, auth, world, db):
    auth.login("worker_a1")
    masked = csv_text(client.get("/demands/export.csv"))
    assert "137****1111" in masked and "13700001111" not in masked
    page = client.get("/demands").get_data(as_text=True)
    assert 'id="export-with-phones"' in page
    form = client.get("/demands/export.xlsx?reveal=1&category=elderly_care")
    assert form.status_code == 200 and 'id="reveal-form"' in form.get_data(as_text=True)
    assert "category=elderly_care" in form.get_data(as_text=True)  # the form keeps the filters
    empty = client.post("/demands/export.xlsx?category=elderly_care", data={"reason": "  "})
    assert empty.status_code == 400 and 'id="err-reason"' in empty.get_data(as_text=True)
    assert audits(db, "export_phones") == []
    rows = book(client.post("/demands/export.xlsx?category=elderly_care", data={"reason": "电话回访老人"}))["需求"][1:]
    assert [row[3] for row in rows] == ["13700001111"]
    (entry,) = audits(db, "export_phones")
    assert entry.user_id == world["users"]["worker_a1"].id
    assert entry.details["reason"] == "电话回访老人" and entry.details["rows"] == 1
    assert entry.details["export"] == "export_demands"
    assert len(audits(db, "export_demands")) == 1  # the masked one


def test_a_reveal_without_the_right_is_refused(client, auth, world, db, next_monday):
    schedule = Schedule(area=world["areas"]["district"], week_start=next_monday)
    db.session.add(schedule)
    db.session.commit()
    auth.login("coord")  # sees residents' demands, masked, like the resident's page
    assert client.post("/demands/export.xlsx", data={"reason": "需要联系居民"}).status_code == 403
    assert client.get("/demands/export.xlsx?reveal=1").status_code == 403
    assert 'id="export-with-phones"' not in client.get("/demands").get_data(as_text=True)
    # A volunteer's phone is shown in full to nobody else on any page: not in the roster or the week either.
    assert client.post("/volunteers/export.xlsx", data={"reason": "需要联系志愿者"}).status_code == 403
    assert client.post(f"/schedules/{schedule.id}/export.xlsx", data={"reason": "需要联系志愿者"}).status_code == 403
    assert client.get(f"/schedules/{schedule.id}/export.csv?sheet=people&reveal=1").status_code == 403
    auth.logout()
    auth.login("leader_a")
    assert client.post("/volunteers/export.csv", data={"reason": "需要联系队员"}).status_code == 403
    assert client.get("/demands/export.xlsx").status_code == 403  # not a leader's export
    assert audits(db, "export_phones") == []
    # Without asking, the exports still work, masked.
    assert "138****5678" in csv_text(client.get("/volunteers/export.csv"))


def test_bad_formats_and_filters_are_refused_with_a_message(client, auth, world):
    auth.login("coord")
    assert client.get("/demands/export.pdf").status_code == 404
    for query, name in (("status=bogus", "status"), ("review=later", "review"), ("category=flying", "category"),
                        ("week=2026-13-40", "week"), ("sheet=everything", "sheet")):
        response = client.get(f"/demands/export.csv?{query}")
        assert response.status_code == 400 and name in response.get_data(as_text=True), query
    auth.logout()
    auth.login("vol_a")
    assert client.get("/demands/export.xlsx").status_code == 403


@contextmanager
def statements(db):
    count = [0]

    def counter(*_args):
        count[0] += 1

    event.listen(db.engine, "before_cursor_execute", counter)
    try:
        yield count
    finally:
        event.remove(db.engine, "before_cursor_execute", counter)


def test_the_demands_export_runs_a_fixed_number_of_statements(client, auth, world, db, next_monday):
    def add(n):
        for i in range(n):
            create_demand({"category": "culture_sports", "location_kind": "station",
                           "station": world["stations"]["C1"].id, "date": next_monday.isoformat(),
                           "start": "09:00", "end": "10:00", "title": f"活动{i}", "recurring": "1",
                           "weekdays": ["1", "4"]}, community=world["areas"]["a1"], user=world["users"]["worker_a1"])
        db.session.commit()

    auth.login("coord")
    url = f"/demands/export.xlsx?week={next_monday}"
    client.get(url)
    add(2)
    with statements(db) as few:
        client.get(url)
    add(8)
    with statements(db) as many:
        client.get(url)
    assert many[0] == few[0], (few[0], many[0])


# --------------------------------------------------------------------------- an organization's and one's own week


def test_the_leader_exports_the_organizations_week_with_its_members_masked(client, auth, world, db, next_monday):
    occ = world["demands"]["a1"].occurrences[0]
    assign(db, occ, world["volunteers"]["a"], AssignmentStatus.OFFERED, org=world["orgs"]["a"])
    db.session.commit()
    auth.login("leader_a")
    assert 'id="export-week"' in client.get(f"/team?week={next_monday}").get_data(as_text=True)
    sheets = book(client.get(f"/team/export.xlsx?week={next_monday}"))
    assert list(sheets) == ["服务", "志愿者", "缺口"]
    (service,) = sheets["服务"][1:]
    assert service[3] == "桂花社区" and service[-1] == "李秀英"
    (person,) = sheets["志愿者"][1:]
    assert person[:2] == ["李秀英", "138****5678"]
    people = csv_text(client.get(f"/team/export.csv?week={next_monday}&sheet=people"))
    assert people.startswith("志愿者,手机号") and "13812345678" not in people
    assert client.get("/team/export.csv?sheet=everything").status_code == 400
    assert len(audits(db, "export_team_week")) == 2
    auth.logout()
    auth.login("coord")
    assert client.get("/team/export.xlsx").status_code == 403


def test_a_volunteer_exports_their_own_week(client, auth, world, db, next_monday):
    occ = world["demands"]["a1"].occurrences[0]
    assign(db, occ, world["volunteers"]["a"], AssignmentStatus.ACCEPTED)
    db.session.commit()
    auth.login("vol_a")
    assert 'id="export-week"' in client.get(f"/me/week?week={next_monday}").get_data(as_text=True)
    (header, row) = book(client.get(f"/me/week/export.xlsx?week={next_monday}"))["我的一周"]
    assert header[:4] == ["日期", "星期", "时间", "服务"]
    assert row[0] == next_monday.isoformat() and row[5] == "桂花社区" and "桂花社区3栋" in row[6]  # held: the address
    assert csv_text(client.get(f"/me/week/export.csv?week={next_monday}")).count("\n") == 2
    auth.logout()
    auth.login("vol_b")
    (header,) = book(client.get(f"/me/week/export.xlsx?week={next_monday}"))["我的一周"]  # nothing of vol_a's
    auth.logout()
    auth.login("coord")  # no volunteer profile: "my" pages are not found
    assert client.get("/me/week/export.xlsx").status_code == 404
    assert db.session.scalar(select(func.count(AuditEntry.id)).where(AuditEntry.action == "export_my_week")) == 3
