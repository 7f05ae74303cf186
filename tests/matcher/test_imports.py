"""Imports of organizations, residents and demands (matcher/imports.py and each kind's module): every bad
cell named by row and column, nothing written until every row is good, the same file again changes
nothing, scope, and the background job's path (thread; RQ on a real Redis when there is one)."""

import csv
import io
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from matcher import imports
from matcher.clock import local_today
from matcher.models import AuditEntry, Demand, ImportFile, Organization, OrgType, Resident
from matcher.spreadsheets import read_sheet


def sheet_of(header, rows, encoding="utf-8"):
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return read_sheet("f.csv", out.getvalue().encode(encoding))


def count(db, model) -> int:
    return db.session.scalar(select(func.count(model.id)))


def problems_by_cell(plan) -> dict:
    return {(p.row, p.column): p.message for p in plan.problems}


def run(kind: str, sheet, user, db):
    plan = imports.kinds()[kind].plan(sheet, user, imports.no_progress)
    if plan.ok:
        imports.kinds()[kind].write(plan, user)
        db.session.commit()
    return plan


# --------------------------------------------------------------------------- residents

R_HEADER = ["所在社区", "姓名", "联系电话", "性别", "出生年份", "住址", "需求说明", "已同意登记"]
R_ROWS = [["桂花社区", "李秀英", "13800138001", "女", "1942", "桂花路8号", "独居", "是"],
          ["桂花社区", "王德福", "", "男", "1938", "桂花路9号", "", "是"],
          ["枫林社区", "周桂芬", "023-68881234", "", "", "枫林路2号", "", "是"]]


def test_residents_import_with_consent_and_again_changes_nothing(world, db):
    worker = world["users"]["coord_a"]
    before = count(db, Resident)
    plan = run("residents", sheet_of(R_HEADER, R_ROWS), worker, db)
    assert plan.ok and plan.counts == {"create": 3, "update": 0, "same": 0}
    assert count(db, Resident) == before + 3
    li = db.session.scalar(select(Resident).where(Resident.name == "李秀英"))
    assert li.consent_given_at is not None and li.consent_recorded_by_id == worker.id
    assert (li.lat, li.lon) == (world["areas"]["a1"].lat, world["areas"]["a1"].lon)  # the community centre
    again = run("residents", sheet_of(R_HEADER, R_ROWS), worker, db)
    assert again.counts == {"create": 0, "update": 0, "same": 3}
    changed = [row[:] for row in R_ROWS]
    changed[0][6] = "独居，需代购"  # found by phone: updated
    changed[1][4] = "1939"  # no phone: found by name and address
    plan = run("residents", sheet_of(R_HEADER, changed), worker, db)
    assert plan.counts == {"create": 0, "update": 2, "same": 1}
    assert [r.changes for r in plan.rows if r.action == "update"] == [["需求说明"], ["出生年份"]]
    assert count(db, Resident) == before + 3


def test_bad_resident_rows_are_named_and_nothing_is_written(world, db):
    rows = R_ROWS + [["桂花社区", "赵六", "12345", "女", "", "桂花路1号", "", "是"],          # row 5: phone
                     ["石桥村", "钱七", "", "", "", "石桥村一组", "", "是"],              # row 6: another street
                     ["桂花社区", "孙八", "", "", "", "桂花路3号", "", "否"],             # row 7: no consent
                     ["桂花社区", "李秀英", "13800138001", "女", "", "桂花路8号", "", "是"],  # row 8: duplicate
                     ["桂花社区", "", "", "人", "1800", "", "", "是"]]                  # row 9: several
    before = count(db, Resident)
    plan = run("residents", sheet_of(R_HEADER, rows), world["users"]["coord_a"], db)
    cells = problems_by_cell(plan)
    assert "mainland" in cells[(5, "联系电话")]
    assert "No community '石桥村'" in cells[(6, "所在社区")]
    assert "consent" in cells[(7, "已同意登记")]
    assert "row 2" in cells[(8, "联系电话")]
    assert {(9, "姓名"), (9, "性别"), (9, "住址"), (9, "出生年份")} <= set(cells)
    assert count(db, Resident) == before


def test_a_worker_imports_residents_of_their_own_community_only(world, db):
    plan = run("residents", sheet_of(R_HEADER, R_ROWS), world["users"]["worker_a1"], db)
    assert "No community '枫林社区'" in problems_by_cell(plan)[(4, "所在社区")]


def test_a_gb18030_resident_list_reads_like_utf8(world, db):
    plan = run("residents", sheet_of(R_HEADER, R_ROWS, "gb18030"), world["users"]["coord_a"], db)
    assert plan.ok and plan.rows[0].name == "李秀英"


# --------------------------------------------------------------------------- demands

D_HEADER = ["所在社区", "居民姓名", "居民电话", "服务类别", "标题", "日期", "时间", "每周重复", "重复至", "服务地点", "人数"]


def demand_rows():
    day = (local_today() + timedelta(days=3)).isoformat()
    until = (local_today() + timedelta(days=40)).isoformat()
    return [["桂花社区", "张大爷", "", "助老服务", "陪同就医", day, "09:00-11:00", "", "", "", "1"],
            ["桂花社区", "", "13700001111", "elderly_care", "每周代购", day, "14:00-15:00", "周二；周五", until, "", ""],
            ["桂花社区", "", "", "文体活动", "广场舞", day, "19:00-20:30", "", "", "桂花社区新时代文明实践站", "4"]]


def test_demands_import_one_off_and_weekly_and_again_changes_nothing(world, db):
    worker = world["users"]["worker_a1"]
    before = count(db, Demand)
    plan = run("demands", sheet_of(D_HEADER, demand_rows()), worker, db)
    assert plan.ok, plan.problems
    assert plan.counts == {"create": 3, "update": 0, "same": 0}
    weekly = db.session.scalar(select(Demand).where(Demand.title == "每周代购"))
    assert weekly.weekdays == "1,4" and weekly.resident_id == world["residents"]["a1"].id
    assert len(weekly.occurrences) >= 2 and weekly.created_by_id == worker.id
    assert run("demands", sheet_of(D_HEADER, demand_rows()), worker, db).counts == {"create": 0, "update": 0,
                                                                                   "same": 3}
    changed = demand_rows()
    changed[2][10] = "6"
    plan = run("demands", sheet_of(D_HEADER, changed), worker, db)
    assert plan.counts == {"create": 0, "update": 1, "same": 2} and plan.rows[2].changes == ["人数"]
    assert db.session.scalar(select(Demand.people).where(Demand.title == "广场舞")) == 6
    assert count(db, Demand) == before + 3


def test_bad_demand_rows_are_named_and_nothing_is_written(world, db):
    day = (local_today() + timedelta(days=3)).isoformat()
    rows = demand_rows() + [
        ["桂花社区", "无名氏", "", "助老服务", "", day, "09:00-10:00", "", "", "", ""],        # 5: unknown resident
        ["桂花社区", "张大爷", "", "舞龙", "", day, "09:00-10:00", "", "", "", ""],            # 6: unknown category
        ["桂花社区", "张大爷", "", "助老服务", "", "下周一", "09:00-10:00", "", "", "", ""],     # 7: not a date
        ["桂花社区", "张大爷", "", "助老服务", "", day, "11:00-09:00", "", "", "", ""],         # 8: backwards
        ["石桥村", "赵奶奶", "", "助老服务", "", day, "09:00-10:00", "", "", "", ""],           # 9: out of scope
        ["桂花社区", "张大爷", "", "助老服务", "陪同就医", day, "09:00-11:00", "", "", "", ""],  # 10: duplicate of 2
        ["桂花社区", "张大爷", "", "助老服务", "", "2020-01-06", "09:00-10:00", "", "", "", ""],  # 11: past
    ]
    before = count(db, Demand)
    plan = run("demands", sheet_of(D_HEADER, rows), world["users"]["worker_a1"], db)
    cells = problems_by_cell(plan)
    assert "No resident '无名氏'" in cells[(5, "居民姓名")]
    assert "Unknown category" in cells[(6, "服务类别")]
    assert "not a date" in cells[(7, "日期")]
    assert "start before end" in cells[(8, "时间")]
    assert "No community" in cells[(9, "所在社区")]
    assert "row 2" in cells[(10, "日期")]
    assert "passed" in cells[(11, "日期")]
    assert count(db, Demand) == before


def test_a_weekly_list_imported_again_after_its_first_date_passed_is_unchanged(world, db):
    worker = world["users"]["worker_a1"]
    run("demands", sheet_of(D_HEADER, demand_rows()), worker, db)
    past = local_today() - timedelta(days=7)
    for demand in db.session.scalars(select(Demand).where(Demand.title.in_(["陪同就医", "每周代购", "广场舞"]))):
        demand.starts_on = past  # posted last week: its first date has passed
    db.session.commit()
    rows = demand_rows()
    for row in rows:
        row[5] = past.isoformat()
    plan = run("demands", sheet_of(D_HEADER, rows), worker, db)
    assert plan.ok, plan.problems
    assert plan.counts == {"create": 0, "update": 0, "same": 3}
    rows[2][10] = "5"  # an edit of a known demand follows the form's rules for an existing demand
    plan = run("demands", sheet_of(D_HEADER, rows), worker, db)
    assert plan.ok and plan.counts == {"create": 0, "update": 1, "same": 2}, plan.problems
    assert db.session.scalar(select(Demand.people).where(Demand.title == "广场舞")) == 5
    rows.append(["桂花社区", "张大爷", "", "助老服务", "", past.isoformat(), "15:00-16:00", "", "", "", ""])
    plan = run("demands", sheet_of(D_HEADER, rows), worker, db)  # a new demand in the past is still refused
    assert "passed" in problems_by_cell(plan)[(5, "日期")]


def test_a_changed_time_or_weekday_is_named_by_its_column(world, db):
    worker = world["users"]["worker_a1"]
    run("demands", sheet_of(D_HEADER, demand_rows()), worker, db)
    changed = demand_rows()
    changed[0][6] = "09:00-12:00"  # a longer visit (same start: the same demand)
    changed[1][7] = "周二"
    plan = run("demands", sheet_of(D_HEADER, changed), worker, db)
    assert plan.ok, plan.problems
    assert [r.changes for r in plan.rows] == [["时间"], ["每周重复"], []]
    assert db.session.scalar(select(Demand.duration_minutes).where(Demand.title == "陪同就医")) == 180


def test_a_demand_list_is_judged_and_imported_without_a_query_per_row(world, db):
    from tests.web.test_query_counts import counting

    worker = world["users"]["worker_a1"]
    day = (local_today() + timedelta(days=3)).isoformat()

    def rows(n):
        return [["桂花社区", "", "", "文体活动", f"活动{i}", day, f"{8 + i:02d}:00-{8 + i:02d}:30", "", "",
                 "桂花社区新时代文明实践站", "2"]
                for i in range(n)]

    assert run("demands", sheet_of(D_HEADER, rows(9)), worker, db).ok
    counts = []
    for n in (3, 9):
        db.session.expire_all()
        with counting(db.engine) as statements:
            plan = imports.kinds()["demands"].plan(sheet_of(D_HEADER, rows(n)), worker, imports.no_progress)
        assert plan.counts["same"] == n
        counts.append(len(statements))
    assert counts[0] == counts[1], counts


def test_a_coordinator_cannot_change_a_posted_demand_by_import(world, db):
    run("demands", sheet_of(D_HEADER, demand_rows()), world["users"]["worker_a1"], db)
    changed = demand_rows()
    changed[0][10] = "3"
    plan = run("demands", sheet_of(D_HEADER, changed), world["users"]["coord_a"], db)
    assert "worker" in problems_by_cell(plan)[(2, "日期")]


# --------------------------------------------------------------------------- organizations

O_HEADER = ["组织名称", "组织类型", "所在区域", "服务区域", "服务类别", "联系电话"]
O_ROWS = [["桂花邻里互助队", "生活服务", "桂花社区", "桂花社区；枫林社区", "助老服务", "13800138000"],
          ["东城文体队", "文体活动", "东城街道", "", "文体活动", "023-68881234"]]


def test_organizations_import_and_again_changes_nothing(world, db):
    coord = world["users"]["coord_a"]
    plan = run("organizations", sheet_of(O_HEADER, O_ROWS), coord, db)
    assert plan.ok and plan.counts["create"] == 2
    org = db.session.scalar(select(Organization).where(Organization.name == "桂花邻里互助队"))
    assert {a.name for a in org.areas} == {"桂花社区", "枫林社区"} and org.contact_phone == "+8613800138000"
    assert run("organizations", sheet_of(O_HEADER, O_ROWS), coord, db).counts["same"] == 2
    changed = [row[:] for row in O_ROWS]
    changed[1][1] = "公益慈善"
    assert run("organizations", sheet_of(O_HEADER, changed), coord, db).counts["update"] == 1


def test_bad_organization_rows_and_another_streets_organization(world, db):
    rows = [["南山调解队", "农村社区协商", "东城街道", "", "", ""],       # 2: belongs to 南山镇
            ["新队", "武术类", "火星街道", "", "舞龙", "12345"],           # 3: type, area, category, phone
            ["新队", "生活服务", "桂花社区", "", "", ""]]                  # 4: fine
    plan = run("organizations", sheet_of(O_HEADER, rows), world["users"]["coord_a"], db)
    cells = problems_by_cell(plan)
    assert "another area" in cells[(2, "组织名称")]
    assert {(3, "组织类型"), (3, "所在区域"), (3, "服务类别"), (3, "联系电话")} <= set(cells)
    assert db.session.scalar(select(Organization).where(Organization.name == "新队")) is None


def test_an_organization_reimported_by_one_street_keeps_another_streets_service_area(world, db):
    areas = world["areas"]
    org = Organization(name="跨街互助队", type=OrgType.LIFE_SERVICES, home_area=areas["a1"],
                       areas=[areas["a1"], areas["b1"]])
    db.session.add(org)
    db.session.commit()
    coord = world["users"]["coord_a"]
    row = ["跨街互助队", "生活服务", "桂花社区", "桂花社区", "", ""]
    plan = run("organizations", sheet_of(O_HEADER, [row]), coord, db)
    assert plan.counts == {"create": 0, "update": 0, "same": 1}
    plan = run("organizations", sheet_of(O_HEADER, [row[:3] + ["桂花社区；枫林社区"] + row[4:]]), coord, db)
    assert plan.counts["update"] == 1 and plan.rows[0].changes == ["服务区域"]
    db.session.expire_all()
    assert {a.name for a in db.session.get(Organization, org.id).areas} == {"桂花社区", "枫林社区", "石桥村"}
    assert run("organizations", sheet_of(O_HEADER, [row[:3] + ["枫林社区"] + row[4:]]), coord, db).ok
    db.session.expire_all()
    assert {a.name for a in db.session.get(Organization, org.id).areas} == {"枫林社区", "石桥村"}


def test_control_characters_in_an_organization_are_named(world, db):
    header = [*O_HEADER, "简介"]
    rows = [["新\x07队", "生活服务", "桂花社区", "", "", "", ""],
            ["好队", "生活服务", "桂花社区", "", "", "", "代购\x1b买药"]]
    plan = run("organizations", sheet_of(header, rows), world["users"]["coord_a"], db)
    cells = problems_by_cell(plan)
    assert set(cells) == {(2, "组织名称"), (3, "简介")} and "control characters" in cells[(3, "简介")]
    assert db.session.scalar(select(Organization).where(Organization.name == "好队")) is None


# --------------------------------------------------------------------------- templates and the job


@pytest.mark.parametrize("kind", ["volunteers", "organizations", "residents", "demands"])
def test_every_template_reads_back_as_a_good_file(world, db, kind):
    header, rows = imports.kinds()[kind].template_rows()
    if kind == "demands":  # its resident must be registered first
        run("residents", sheet_of(R_HEADER, R_ROWS), world["users"]["coord_a"], db)
    plan = imports.kinds()[kind].plan(sheet_of(header, rows), world["users"]["coord_a"], imports.no_progress)
    assert plan.ok, plan.problems


def big_resident_file(rows: int) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(R_HEADER)
    for i in range(rows):
        writer.writerow(["桂花社区", f"居民{i:04d}", f"1770000{i:04d}", "", "", f"桂花路{i}号", "", "是"])
    return out.getvalue().encode()


def test_a_large_file_is_planned_and_imported_by_its_job_with_progress(app, world, db):
    app.config["IMPORT_JOB_ROWS"] = 50
    coord = world["users"]["coord_a"]
    upload = imports.upload_file(imports.kinds()["residents"], "big.csv", big_resident_file(120), coord)
    db.session.commit()
    assert upload.state == imports.QUEUED and upload.rows_total == 120
    imports.run_import(upload.id)
    db.session.expire_all()
    upload = db.session.get(ImportFile, upload.id)
    assert upload.state == imports.PLANNED and upload.rows_done == 120
    assert upload.plan["counts"] == {"create": 120, "update": 0, "same": 0} and len(upload.plan["rows"]) == 120
    assert imports.queue_apply(upload)
    db.session.commit()
    before = count(db, Resident)
    imports.run_import(upload.id)
    db.session.expire_all()
    upload = db.session.get(ImportFile, upload.id)
    assert upload.state == imports.DONE and upload.applied_at and upload.result["create"] == 120
    assert count(db, Resident) == before + 120
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "import_residents")) is not None
    assert not imports.queue_apply(upload)  # imported already


def test_a_job_silent_for_too_long_is_given_up(app, world, db):
    app.config["IMPORT_JOB_ROWS"] = 50
    upload = imports.upload_file(imports.kinds()["residents"], "big.csv", big_resident_file(60),
                                 world["users"]["coord_a"])
    upload.updated_at -= timedelta(seconds=imports.STALE_SECONDS + 1)
    assert imports.check_upload(upload) and upload.state == imports.FAILED


def test_the_demo_spreadsheets_import_and_show_their_three_problems(world, db):
    from matcher.demo.rosters import demo_spreadsheets

    files = demo_spreadsheets()
    coord = world["users"]["coord"]
    for kind in ("organizations", "residents", "demands"):
        stem = f"demo-{kind}"
        good = run(kind, read_sheet(f"{stem}.xlsx", files[f"{stem}.xlsx"]), coord, db)
        assert good.ok and good.counts["create"] == len(good.rows), (kind, good.problems[:3])
        bad = imports.kinds()[kind].plan(read_sheet("p.csv", files[f"{stem}-problems.csv"]), coord,
                                         imports.no_progress)
        assert len({p.row for p in bad.problems}) == 3, (kind, bad.problems)


# --------------------------------------------------------------------------- organizations' registration (登记/备案)

REG_HEADER = [*O_HEADER, "登记状态"]


def test_organizations_import_their_registration_in_chinese_or_english(world, db):
    from matcher.models import Registration

    rows = [["登记队", "生活服务", "桂花社区", "", "", "", "登记"],
            ["备案队", "文体活动", "桂花社区", "", "", "", "备案"],
            ["未登记队", "社区事务", "桂花社区", "", "", "", "未登记"],
            ["英文队", "公益慈善", "枫林社区", "", "", "", "Registered"],
            ["空白队", "公益慈善", "枫林社区", "", "", "", ""]]
    plan = run("organizations", sheet_of(REG_HEADER, rows), world["users"]["coord_a"], db)
    assert plan.ok and plan.counts["create"] == 5
    got = {o.name: o.registration for o in db.session.scalars(select(Organization))}
    assert got["登记队"] == Registration.REGISTERED and got["备案队"] == Registration.FILED
    assert got["未登记队"] == Registration.UNREGISTERED and got["英文队"] == Registration.REGISTERED
    assert got["空白队"] == Registration.FILED  # blank: filed, as most are


def test_a_changed_registration_updates_and_a_blank_one_keeps_it(world, db):
    from matcher.models import Registration

    coord = world["users"]["coord_a"]
    row = ["变更队", "生活服务", "桂花社区", "", "", "", "unregistered"]
    assert run("organizations", sheet_of(REG_HEADER, [row]), coord, db).counts["create"] == 1
    plan = run("organizations", sheet_of(REG_HEADER, [row[:6] + ["filed"]]), coord, db)
    assert plan.counts["update"] == 1 and plan.rows[0].changes == ["登记状态"]
    assert run("organizations", sheet_of(REG_HEADER, [row[:6] + [""]]), coord, db).counts["same"] == 1
    assert run("organizations", sheet_of(O_HEADER, [row[:6]]), coord, db).counts["same"] == 1  # no column at all
    db.session.expire_all()
    assert db.session.scalar(select(Organization.registration).where(Organization.name == "变更队")) \
        == Registration.FILED


def test_an_unknown_registration_is_a_row_problem_naming_the_column(world, db):
    rows = [["甲队", "生活服务", "桂花社区", "", "", "", "已注册"],
            ["乙队", "生活服务", "桂花社区", "", "", "", "备案"]]
    plan = run("organizations", sheet_of(REG_HEADER, rows), world["users"]["coord_a"], db)
    cells = problems_by_cell(plan)
    assert set(cells) == {(2, "登记状态")} and "已注册" in cells[(2, "登记状态")]
    assert db.session.scalar(select(Organization).where(Organization.name == "乙队")) is None
