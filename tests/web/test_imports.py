"""The roster import's pages: template, upload, preview naming each bad cell, all-or-nothing import,
re-import changing nothing, and the export of what one may see."""

import io

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from matcher.models import AuditEntry, ImportFile, Volunteer
from tests.conftest import PASSWORD, REDIS_TEST_URL
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


# --------------------------------------------------------------------------- organizations, residents, demands

def upload_kind(client, kind: str, data: bytes, name: str = "list.csv"):
    return client.post(f"/imports/{kind}", data={"file": (io.BytesIO(data), name)},
                       content_type="multipart/form-data")


def residents(db) -> int:
    from matcher.models import Resident

    db.session.expire_all()
    return db.session.scalar(select(func.count(Resident.id)))


def test_the_imports_page_lists_the_kinds_each_role_may_use(client, auth, world):
    auth.login("worker_a1")
    page = client.get("/imports").get_data(as_text=True)
    assert 'id="kind-residents"' in page and 'id="kind-demands"' in page
    assert 'id="kind-organizations"' not in page and 'id="kind-volunteers"' not in page
    assert client.get("/imports/organizations").status_code == 403
    assert client.get("/imports/volunteers").status_code == 403
    assert 'href="/imports"' in client.get("/residents").get_data(as_text=True)
    auth.logout()
    auth.login("leader_a")
    page = client.get("/imports").get_data(as_text=True)
    assert 'id="kind-volunteers"' in page and 'id="kind-residents"' not in page
    assert client.get("/imports/residents").status_code == 403


def test_every_template_downloads_with_chinese_columns(client, auth, world):
    auth.login("coord_a")
    for kind, first in (("residents", "所在社区"), ("demands", "所在社区"), ("organizations", "组织名称")):
        response = client.get(f"/imports/{kind}/template.xlsx")
        assert response.status_code == 200
        sheet = load_workbook(io.BytesIO(response.data)).active
        assert sheet.cell(1, 1).value == first and sheet.max_row == 2
        csv_response = client.get(f"/imports/{kind}/template.csv")
        assert csv_response.data.startswith(b"\xef\xbb\xbf" + first.encode())


def test_residents_with_bad_rows_are_refused_then_the_fixed_gb18030_file_imports_once(client, auth, world, db):
    from tests.matcher.test_imports import R_HEADER, R_ROWS

    auth.login("worker_a1")
    before = residents(db)
    rows = [r for r in R_ROWS if r[0] == "桂花社区"]
    bad = rows + [["桂花社区", "孙八", "", "", "", "桂花路3号", "", "否"], ["枫林社区", "钱七", "", "", "", "枫林路1号", "", "是"]]
    response = upload_kind(client, "residents", csv_bytes(bad, header=R_HEADER, encoding="gb18030"))
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert 'id="import-blocked"' in page and 'id="confirm-import"' not in page
    assert '<td data-label="行">4</td><td data-label="列">已同意登记</td>' in page
    assert '<td data-label="行">5</td><td data-label="列">所在社区</td>' in page  # another community: not theirs
    upload_id = int(response.headers["Location"].rsplit("/", 1)[1])
    assert client.post(f"/imports/{upload_id}/apply").status_code == 400
    assert residents(db) == before
    good = csv_bytes(rows, header=R_HEADER, encoding="gb18030")
    fixed = upload_kind(client, "residents", good).headers["Location"]
    assert 'id="confirm-import"' in client.get(fixed).get_data(as_text=True)
    assert client.post(fixed + "/apply").status_code == 302
    assert residents(db) == before + 2
    again = upload_kind(client, "residents", good).headers["Location"]
    assert client.post(again + "/apply").status_code == 302
    assert residents(db) == before + 2
    assert db.session.get(ImportFile, int(again.rsplit("/", 1)[1])).result == {"create": 0, "update": 0, "same": 2}
    assert db.session.scalars(select(AuditEntry.action).where(AuditEntry.action == "import_residents")).all()


def test_a_street_coordinator_cannot_import_into_another_street(client, auth, world, db):
    from tests.matcher.test_imports import D_HEADER, O_HEADER, R_HEADER

    auth.login("coord_a")
    before = residents(db)
    rows = [["石桥村", "钱七", "", "", "", "石桥村一组", "", "是"]]
    page = client.get(upload_kind(client, "residents", csv_bytes(rows, header=R_HEADER)).headers["Location"])
    assert "没有“石桥村”" in page.get_data(as_text=True)
    rows = [["石桥村", "赵奶奶", "", "助老服务", "", "2030-01-01", "09:00-10:00", "", "", "", ""]]
    page = client.get(upload_kind(client, "demands", csv_bytes(rows, header=D_HEADER)).headers["Location"])
    assert 'id="import-blocked"' in page.get_data(as_text=True)
    rows = [["石桥互助队", "生活服务", "石桥村", "", "", ""]]
    page = client.get(upload_kind(client, "organizations", csv_bytes(rows, header=O_HEADER)).headers["Location"])
    assert 'id="import-blocked"' in page.get_data(as_text=True)
    assert residents(db) == before


def test_demands_import_through_the_pages(client, auth, world, db):
    from matcher.models import Demand
    from tests.matcher.test_imports import D_HEADER, demand_rows

    auth.login("worker_a1")
    location = upload_kind(client, "demands", csv_bytes(demand_rows(), header=D_HEADER)).headers["Location"]
    assert client.post(location + "/apply").status_code == 302
    assert db.session.scalar(select(func.count(Demand.id)).where(Demand.title == "广场舞")) == 1
    again = upload_kind(client, "demands", csv_bytes(demand_rows(), header=D_HEADER)).headers["Location"]
    assert client.post(again + "/apply").status_code == 302
    assert db.session.get(ImportFile, int(again.rsplit("/", 1)[1])).result == {"create": 0, "update": 0, "same": 3}
    assert db.session.scalar(select(func.count(Demand.id)).where(Demand.title == "广场舞")) == 1


def big_residents(rows: int) -> bytes:
    from tests.matcher.test_imports import big_resident_file

    return big_resident_file(rows)


def wait_for(client, location: str, states: tuple, seconds: float = 30.0) -> dict:
    import time

    deadline = time.monotonic() + seconds
    while True:
        job = client.get(location + ".json").get_json()
        if job["state"] in states or time.monotonic() > deadline:
            return job
        time.sleep(0.1)


def test_a_large_file_runs_as_a_job_in_a_thread_with_a_progress_bar(app, client, auth, world, db):
    app.config["IMPORT_JOB_ROWS"] = 50
    auth.login("coord_a")
    before = residents(db)
    location = upload_kind(client, "residents", big_residents(300)).headers["Location"]
    page = client.get(location).get_data(as_text=True)
    assert 'id="import-progress"' in page and "import_progress.js" in page
    job = wait_for(client, location, ("planned", "failed"))
    assert job["state"] == "planned" and job["rows_done"] == job["rows_total"] == 300, job
    page = client.get(location).get_data(as_text=True)
    assert 'id="confirm-import"' in page and 'data-active="0"' in page
    assert client.post(location + "/apply").status_code == 302
    job = wait_for(client, location, ("done", "failed"))
    assert job["state"] == "done", job
    assert residents(db) == before + 300
    assert 'id="import-done"' in client.get(location).get_data(as_text=True)
    assert client.post(location + "/apply").status_code == 302  # imported already: nothing more
    assert residents(db) == before + 300


@pytest.mark.redis
def test_a_large_file_runs_as_an_rq_job_on_redis(make_app, db, world):
    """On its own queue (a unique name, emptied and deleted after): other runs' data is left alone."""
    import uuid

    import redis
    from rq import Queue, SimpleWorker

    try:
        conn = redis.Redis.from_url(REDIS_TEST_URL, socket_connect_timeout=2)
        conn.ping()
    except redis.exceptions.ConnectionError:
        pytest.skip(f"Redis not reachable at {REDIS_TEST_URL}: RQ path skipped")
    queue_name = f"linli-test-import-{uuid.uuid4().hex[:8]}"
    app = make_app(REDIS_URL=REDIS_TEST_URL, IMPORT_QUEUE=queue_name, IMPORT_JOB_ROWS=50)
    client = app.test_client()
    client.post("/login", data={"username": "coord_a", "password": PASSWORD})
    queue = Queue(queue_name, connection=conn)
    try:
        before = residents(db)
        location = upload_kind(client, "residents", big_residents(120)).headers["Location"]
        assert client.get(location + ".json").get_json()["state"] == "queued"
        assert len(queue) == 1
        with app.app_context():
            SimpleWorker([queue], connection=conn).work(burst=True)
        assert client.get(location + ".json").get_json()["state"] == "planned"
        assert client.post(location + "/apply").status_code == 302
        with app.app_context():
            SimpleWorker([queue], connection=conn).work(burst=True)
        assert client.get(location + ".json").get_json()["state"] == "done"
        assert residents(db) == before + 120
    finally:
        queue.empty()
        queue.delete(delete_jobs=True)


# --------------------------------------------------------------------------- one file, imported once; kept only so long


def _someone_else_imports(db, import_id: int) -> None:
    """Another request's commit, seen through a connection of its own."""
    from matcher.models import utcnow

    with db.engine.begin() as conn:
        conn.execute(ImportFile.__table__.update().where(ImportFile.__table__.c.id == import_id)
                     .values(applied_at=utcnow()))


def test_an_upload_imported_meanwhile_by_another_request_is_not_imported_again(client, auth, world, db):
    """The second of two clicks (or a job and a retry) writes nothing, whatever it had read."""
    from matcher import imports
    from matcher.models import User

    auth.login("coord_a")
    location = upload_kind(client, "residents", big_residents(20)).headers["Location"]
    import_id = int(location.rsplit("/", 1)[1])
    before = residents(db)
    upload = db.session.get(ImportFile, import_id)
    user = db.session.get(User, upload.created_by_id)
    _someone_else_imports(db, import_id)  # after this transaction read the upload as not imported
    with pytest.raises(imports.AlreadyImported):
        imports.apply_upload(upload, user)
    db.session.rollback()
    assert residents(db) == before
    # Through the page: a click on an upload imported meanwhile says so and writes nothing.
    response = client.post(location + "/apply")
    assert response.status_code == 302 and residents(db) == before


def test_a_second_job_for_an_imported_file_writes_nothing_and_does_not_say_it_failed(app, client, auth, world, db):
    from matcher import imports

    app.config["IMPORT_JOB_ROWS"] = 5
    auth.login("coord_a")
    location = upload_kind(client, "residents", big_residents(20)).headers["Location"]
    assert wait_for(client, location, ("planned", "failed"))["state"] == "planned"
    import_id = int(location.rsplit("/", 1)[1])
    upload = db.session.get(ImportFile, import_id)
    assert imports.queue_apply(upload) is True
    assert imports.queue_apply(upload) is False  # one click wins
    db.session.commit()
    before = residents(db)
    _someone_else_imports(db, import_id)
    imports.run_import(import_id)  # the job finds, at the end, that it was imported first elsewhere
    assert residents(db) == before
    imports.report(import_id, state=imports.FAILED, message="late failure")
    db.session.expire_all()
    assert db.session.get(ImportFile, import_id).state != imports.FAILED


def test_uploaded_files_are_emptied_when_kept_past_their_time(app, client, auth, world, db):
    """A file never imported: 24 hours; an imported one: IMPORT_KEEP_DAYS. What they did stays."""
    from datetime import timedelta

    from matcher import imports
    from matcher.models import utcnow

    auth.login("coord_a")
    stale = int(upload_kind(client, "residents", big_residents(3)).headers["Location"].rsplit("/", 1)[1])
    done = upload_kind(client, "residents", big_residents(4)).headers["Location"]
    assert client.post(done + "/apply").status_code == 302
    done = int(done.rsplit("/", 1)[1])
    fresh = int(upload_kind(client, "residents", big_residents(5)).headers["Location"].rsplit("/", 1)[1])
    table = ImportFile.__table__
    with db.engine.begin() as conn:
        conn.execute(table.update().where(table.c.id == stale).values(created_at=utcnow() - timedelta(hours=25)))
    db.session.expire_all()
    assert imports.discard_old_uploads() == 1
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(ImportFile, stale).content == b""
    assert db.session.get(ImportFile, done).content and db.session.get(ImportFile, fresh).content
    page = client.get(f"/imports/{stale}").get_data(as_text=True)
    assert "24" in page  # the preview says it was emptied and to upload again (in the page's language)
    assert client.post(f"/imports/{stale}/apply").status_code == 400
    app.config["IMPORT_KEEP_DAYS"] = 30
    later = utcnow() + timedelta(days=31)
    assert imports.discard_old_uploads(now=later) == 2  # the imported one, and the fresh one never imported
    db.session.commit()
    db.session.expire_all()
    kept = db.session.get(ImportFile, done)
    assert kept.content == b"" and kept.result["create"] == 4


def test_the_organizations_template_has_the_registration_column_with_an_example(client, auth, world):
    auth.login("coord_a")
    sheet = load_workbook(io.BytesIO(client.get("/imports/organizations/template.xlsx").data)).active
    header = [c.value for c in sheet[1]]
    assert "登记状态" in header
    assert sheet.cell(2, header.index("登记状态") + 1).value == "备案"


def test_a_bad_registration_is_named_on_the_organizations_preview(client, auth, world, db):
    from tests.matcher.test_imports import O_HEADER

    auth.login("coord_a")
    rows = [["桂花新队", "生活服务", "桂花社区", "", "", "", "已注册"]]
    response = upload_kind(client, "organizations", csv_bytes(rows, header=[*O_HEADER, "登记状态"]))
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert 'id="import-blocked"' in page
    assert '<td data-label="行">2</td><td data-label="列">登记状态</td>' in page
