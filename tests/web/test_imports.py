"""The roster import's pages: template, upload, preview naming each bad cell, all-or-nothing import,
re-import changing nothing, and the export of what one may see."""

import io

from openpyxl import load_workbook
from sqlalchemy import func, select

from matcher.models import AuditEntry, ImportFile, Volunteer
from tests.matcher.test_rosters import HEADER, ROWS, csv_bytes


def upload(client, data: bytes, name: str = "名册.csv"):
    return client.post("/imports/volunteers", data={"file": (io.BytesIO(data), name)},
                       content_type="multipart/form-data")


def volunteers(db) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count(Volunteer.id)))


def test_the_template_downloads_as_xlsx_with_chinese_columns(client, auth, world):
    auth.login("coord_a")
    response = client.get("/imports/volunteers/template.xlsx")
    assert response.status_code == 200 and "filename*=UTF-8''" in response.headers["Content-Disposition"]
    sheet = load_workbook(io.BytesIO(response.data)).active
    assert [c.value for c in sheet[1]][:3] == ["姓名", "手机号", "身份证号"] and sheet.max_row == 2


def test_a_roster_with_bad_rows_is_previewed_and_refused_then_the_fixed_file_imports_once(client, auth, world, db):
    auth.login("coord_a")
    before = volunteers(db)
    bad = ROWS + [["赵一", "12345", "", "", "桂花社区", "飞行", "", ""]]
    response = upload(client, csv_bytes(bad, encoding="gb18030"))
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert 'id="import-blocked"' in page and 'id="confirm-import"' not in page
    # Row 5 (the header is row 1) is named with each bad cell: the mobile number and the skill.
    assert '<td data-label="行">5</td><td data-label="列">手机号</td>' in page
    assert '<td data-label="行">5</td><td data-label="列">技能</td>' in page and "飞行" in page
    upload_id = int(response.headers["Location"].rsplit("/", 1)[1])
    assert client.post(f"/imports/{upload_id}/apply").status_code == 400
    assert volunteers(db) == before  # nothing written while any row is bad

    response = upload(client, csv_bytes(ROWS))
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert 'id="confirm-import"' in page and "import-blocked" not in page
    fixed_id = int(response.headers["Location"].rsplit("/", 1)[1])
    assert client.post(f"/imports/{fixed_id}/apply").status_code == 302
    assert volunteers(db) == before + 3
    assert "3" in client.get(f"/imports/{fixed_id}").get_data(as_text=True)
    # Applying the same upload twice does nothing more; uploading the same file again changes nothing.
    client.post(f"/imports/{fixed_id}/apply")
    again = upload(client, csv_bytes(ROWS, encoding="gb18030"))
    again_id = int(again.headers["Location"].rsplit("/", 1)[1])
    assert client.post(f"/imports/{again_id}/apply").status_code == 302
    assert volunteers(db) == before + 3
    assert db.session.get(ImportFile, again_id).result == {"create": 0, "update": 0, "same": 3}
    actions = db.session.scalars(select(AuditEntry.action).where(AuditEntry.action.like("%roster%"))).all()
    assert actions.count("import_roster") == 2 and actions.count("upload_roster") == 3


def test_a_file_that_is_not_a_table_is_refused_with_its_reason(client, auth, world):
    auth.login("coord_a")
    response = upload(client, b"\xd0\xcf\x11\xe0 an old excel file", "名册.xls")
    assert response.status_code == 400 and ".xls" in response.get_data(as_text=True)
    response = client.post("/imports/volunteers", data={}, content_type="multipart/form-data")
    assert response.status_code == 400 and 'id="upload-error"' in response.get_data(as_text=True)


def test_uploads_are_their_uploaders_own(client, auth, world):
    auth.login("coord_a")
    location = upload(client, csv_bytes(ROWS)).headers["Location"]
    auth.logout()
    auth.login("coord")
    assert client.get(location).status_code == 404
    assert client.post(location + "/apply").status_code == 404


def test_the_export_holds_only_what_the_exporter_may_see(client, auth, world):
    auth.login("coord_a")
    response = client.get("/volunteers/export.xlsx")
    sheet = load_workbook(io.BytesIO(response.data)).active
    names = [row[0].value for row in sheet.iter_rows(min_row=2)]
    assert names == ["李秀英"]  # 东城街道's volunteer, not 南山's
    assert "****" in sheet["B2"].value
    csv_text = client.get("/volunteers/export.csv").data
    assert csv_text.startswith(b"\xef\xbb\xbf") and "李秀英".encode() in csv_text and "王强".encode() not in csv_text


def test_header_names_in_english_are_read_too(client, auth, world, db):
    auth.login("coord_a")
    english = ["Name", "Mobile", "ID number", "Gender", "Community", "Skills", "Free time", "Max hours per week"]
    assert len(english) == len(HEADER)
    location = upload(client, csv_bytes(ROWS, header=english)).headers["Location"]
    assert 'id="confirm-import"' in client.get(location).get_data(as_text=True)


def test_the_week_exports_as_a_spreadsheet_and_a_street_coordinator_gets_their_street(client, auth, world, db,
                                                                                     next_monday):
    from matcher.models import Schedule

    world["demands"]["a1"].title = "=SUM(1,2) 助老"  # a title that would run as a formula
    schedule = Schedule(area=world["areas"]["district"], week_start=next_monday)
    db.session.add(schedule)
    db.session.commit()
    auth.login("coord")
    response = client.get(f"/schedules/{schedule.id}/export.xlsx")
    assert response.status_code == 200
    book = load_workbook(io.BytesIO(response.data))
    assert book.sheetnames == ["服务", "志愿者", "缺口"]
    services = [[c.value for c in row] for row in book["服务"].iter_rows(min_row=2)]
    assert {row[4] for row in services} == {"桂花社区", "石桥村"}  # the whole district
    titles = {row[5] for row in services}
    assert "'=SUM(1,2) 助老" in titles and all(c.data_type != "f" for row in book["服务"].iter_rows() for c in row)
    assert len([[c.value for c in row] for row in book["缺口"].iter_rows(min_row=2)]) == len(services)  # none staffed
    auth.logout()
    auth.login("coord_a")  # 东城街道's coordinator: their street's part of the district's week
    csv_data = client.get(f"/schedules/{schedule.id}/export.csv").data.decode("utf-8-sig")
    assert "桂花社区" in csv_data and "石桥村" not in csv_data and csv_data.startswith("日期,")
    gaps = client.get(f"/schedules/{schedule.id}/export.csv?sheet=gaps").data.decode("utf-8-sig")
    assert gaps.startswith("日期,时间,社区,服务,优先级,缺少人数,原因")
    assert db.session.scalar(select(func.count(AuditEntry.id)).where(AuditEntry.action == "export_schedule")) == 3
    bad = client.get(f"/schedules/{schedule.id}/export.csv?sheet=everything")
    assert bad.status_code == 400 and "sheet" in bad.get_data(as_text=True)
