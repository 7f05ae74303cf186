"""Volunteer rosters in and out (matcher/rosters.py, matcher/spreadsheets.py): row-level problems,
all or nothing, found again by mobile or ID number, scope, encodings, inert exports."""

import csv
import io

import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import func, select

from matcher.models import AuditEntry, Membership, MemberStatus, Volunteer
from matcher.rosters import (
    TITLES,
    apply_roster,
    id_number_problem,
    parse_free_time,
    plan_roster,
    roster_rows,
    template_rows,
)
from matcher.spreadsheets import SheetError, inert, read_sheet, write_csv, write_xlsx

HEADER = ["姓名", "手机号", "身份证号", "性别", "所在社区", "技能", "空闲时间", "每周最多小时"]


def id_number(first17: str) -> str:
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return first17 + "10X98765432"[sum(int(d) * w for d, w in zip(first17, weights, strict=True)) % 11]


GOOD_ID = id_number("11010519680315002")  # born 1968-03-15, female (the 17th digit is even)
ROWS = [
    ["张桂兰", "13900001111", GOOD_ID, "女", "桂花社区", "助老护理；急救", "周一 08:00-12:00；周三 14:00-17:00", "4"],
    ["刘建国", "139 0000 2222", "", "男", "枫林社区", "宣讲", "星期六 09:00-11:30", ""],
    ["陈芳", "13900003333", "", "", "东城街道/桂花社区", "", "", "2.5"],
]


def csv_bytes(rows, header=HEADER, encoding="utf-8") -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode(encoding)


def xlsx_bytes(rows, header=HEADER) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def count(db) -> int:
    return db.session.scalar(select(func.count(Volunteer.id)))


def test_a_gb18030_csv_as_a_chinese_office_saves_it_reads_like_utf8_and_xlsx():
    gbk = read_sheet("名册.csv", csv_bytes(ROWS, encoding="gb18030"))
    bom = read_sheet("名册.csv", b"\xef\xbb\xbf" + csv_bytes(ROWS))
    book = read_sheet("名册.xlsx", xlsx_bytes(ROWS))
    assert gbk.encoding == "gb18030" and bom.encoding == "utf-8-sig"
    for sheet in (gbk, bom, book):
        assert sheet.columns == HEADER
        assert [r.number for r in sheet.rows] == [2, 3, 4]
        assert sheet.rows[0].get("姓名") == "张桂兰" and sheet.rows[2].get("所在社区") == "东城街道/桂花社区"


@pytest.mark.parametrize(("name", "data", "says"), [
    ("a.csv", b"", "empty"),
    ("a.xls", b"\xd0\xcf\x11\xe0 old excel", ".xls"),
    ("a.xlsx", b"PK\x03\x04 not really a zip", "Excel"),
    ("a.csv", "姓名,姓名\n张,李\n".encode(), "twice"),
])
def test_unreadable_files_say_why(app, name, data, says):
    with pytest.raises(SheetError) as caught:
        read_sheet(name, data)
    assert says in str(caught.value)


def test_every_bad_row_is_named_with_its_column_and_nothing_is_written(world, db):
    bad = [
        ["赵一", "13900004444", "", "", "桂花社区", "飞行", "", ""],                    # unknown skill
        ["赵二", "02388886666", "", "", "桂花社区", "", "", ""],                        # a landline
        ["赵三", "13900005555", GOOD_ID[:-1] + ("1" if GOOD_ID[-1] != "1" else "2"), "", "桂花社区", "", "", ""],
        ["赵四", "13900006666", "", "", "石桥村", "", "", ""],                          # another street
        ["赵五", "13900007777", "", "", "桂花社区", "", "周二 17:00-09:00", ""],         # backwards
        ["赵六", "13900004444", "", "", "桂花社区", "", "", ""],                        # row 2's mobile again
    ]
    sheet = read_sheet("r.csv", csv_bytes(ROWS + bad))
    before = count(db)
    plan = apply_roster(sheet, world["users"]["coord_a"])
    assert not plan.ok and count(db) == before
    found = {(p.row, p.column) for p in plan.problems}
    assert found == {(5, TITLES["skills"]), (6, TITLES["phone"]), (7, TITLES["id_number"]),
                     (8, TITLES["community"]), (9, TITLES["availability"]), (10, TITLES["phone"])}
    words = {(p.row, p.column): p.message for p in plan.problems}
    assert "飞行" in words[(5, "技能")] and "02388886666" in words[(6, "手机号")]
    assert "check digit" in words[(7, "身份证号")] and "石桥村" in words[(8, "所在社区")]
    assert "row 5" in words[(10, "手机号")]


def test_a_good_roster_imports_and_the_same_file_again_changes_nothing(world, db):
    coord = world["users"]["coord_a"]
    sheet = read_sheet("r.xlsx", xlsx_bytes(ROWS))
    plan = apply_roster(sheet, coord, filename="r.xlsx")
    db.session.commit()
    assert plan.ok and plan.counts == {"create": 3, "update": 0, "same": 0}
    zhang = db.session.scalar(select(Volunteer).where(Volunteer.phone == "+8613900001111"))
    assert zhang.birth_date.isoformat() == "1968-03-15" and zhang.gender.value == "F"
    assert zhang.id_number_tail == GOOD_ID[-4:] and GOOD_ID not in (zhang.id_number_hash or "")
    assert [(s.weekday, s.start_minute, s.end_minute) for s in zhang.slots] == [(0, 480, 720), (2, 840, 1020)]
    assert zhang.max_minutes_per_week == 240 and {s.code for s in zhang.skills} == {"elder_care", "first_aid"}
    assert (zhang.lat, zhang.lon) == (world["areas"]["a1"].lat, world["areas"]["a1"].lon)
    chen = db.session.scalar(select(Volunteer).where(Volunteer.phone == "+8613900003333"))
    assert chen.home_area_id == world["areas"]["a1"].id and chen.max_minutes_per_week == 150
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "import_roster"))
    assert entry.details["created"] == 3 and "13900001111" not in str(entry.details)

    before = count(db)
    again = apply_roster(read_sheet("r.csv", csv_bytes(ROWS, encoding="gb18030")), coord)
    assert again.counts == {"create": 0, "update": 0, "same": 3} and count(db) == before


def test_an_updated_roster_updates_people_by_mobile_or_id_number(world, db):
    coord = world["users"]["coord_a"]
    apply_roster(read_sheet("r.csv", csv_bytes(ROWS)), coord)
    db.session.commit()
    changed = [list(r) for r in ROWS]
    changed[0][1] = "13900009999"               # a new mobile: found by the ID number
    changed[1][6] = "周六 09:00-11:30；周日 09:00-11:30"  # more free time: found by the mobile
    plan = apply_roster(read_sheet("r.csv", csv_bytes(changed)), coord)
    db.session.commit()
    assert plan.counts == {"create": 0, "update": 2, "same": 1}
    assert [r.changes for r in plan.rows if r.action == "update"] == [["手机号"], ["空闲时间"]]
    zhang = db.session.scalar(select(Volunteer).where(Volunteer.id_number_tail == GOOD_ID[-4:]))
    assert zhang.phone == "+8613900009999" and count(db) == 5  # the world's two and these three


def test_a_leader_imports_members_of_their_organization_only(world, db):
    leader = world["users"]["leader_a"]
    rows = [r[:] for r in ROWS[:2]]
    plan = apply_roster(read_sheet("r.csv", csv_bytes(rows)), leader)
    db.session.commit()
    assert plan.ok
    members = db.session.scalars(select(Membership).where(Membership.organization_id == world["orgs"]["a"].id,
                                                          Membership.status == MemberStatus.APPROVED)).all()
    assert {m.volunteer.real_name for m in members} >= {"张桂兰", "刘建国"}
    # Someone else's volunteer (南山, not a member of 东城助老服务队) is not the leader's to change.
    other = [["王强", "13987654321", "", "", "桂花社区", "", "", ""]]
    plan = plan_roster(read_sheet("r.csv", csv_bytes(other)), leader)
    assert [(p.row, p.column) for p in plan.problems] == [(2, "手机号")]


def test_missing_required_columns_are_named(app):
    from matcher.imports import column_map
    from matcher.rosters import COLUMNS

    sheet = read_sheet("r.csv", "姓名,住址\n张,某路\n".encode())
    _found, problems = column_map(sheet, COLUMNS)
    assert {p.column for p in problems} == {"手机号", "所在社区"}


def test_free_time_and_id_numbers_read_as_a_clerk_writes_them(app):
    assert parse_free_time("周一 08:00-12:00；星期三 14:00～17:00, 周日 9:00-10:00") == [
        (0, 480, 720), (2, 840, 1020), (6, 540, 600)]
    with pytest.raises(ValueError):
        parse_free_time("周八 08:00-12:00")
    assert id_number_problem(GOOD_ID) is None
    assert "18 characters" in id_number_problem("1234")
    assert "not a date" in id_number_problem(id_number("11010519681345002"))


def test_exports_are_inert_and_scoped(world, db):
    coord_a = world["users"]["coord_a"]
    apply_roster(read_sheet("r.csv", csv_bytes(ROWS + [["=HYPERLINK(\"http://x\")", "13900008888", "", "", "桂花社区",
                                                         "", "", ""]])), coord_a)
    db.session.commit()
    rows = roster_rows(coord_a)
    names = [r[0] for r in rows]
    assert "王强" not in names and "李秀英" in names  # 南山's volunteer is not 东城's to export
    assert all("****" in r[1] for r in rows)  # phones masked
    from matcher.rosters import EXPORT_COLUMNS

    book = load_workbook(io.BytesIO(write_xlsx([("名册", EXPORT_COLUMNS, rows)])))
    cells = [c.value for c in book.active["A"]]
    assert "'=HYPERLINK(\"http://x\")" in cells and all(c.data_type != "f" for c in book.active["A"])
    text = write_csv(EXPORT_COLUMNS, rows)
    assert text.startswith(b"\xef\xbb\xbf") and b"'=HYPERLINK" in text
    assert inert("-1+2") == "'-1+2" and inert(3) == 3 and inert("普通") == "普通"


def test_the_template_reads_back_as_a_good_roster(world, db):
    columns, rows = template_rows()
    sheet = read_sheet("t.xlsx", write_xlsx([("名册", columns, rows)]))
    plan = plan_roster(sheet, world["users"]["coord_a"])
    assert plan.ok and plan.counts["create"] == 1


def test_the_demo_rosters_import_and_show_their_three_problems(world, db):
    from matcher.demo.rosters import demo_rosters

    files = demo_rosters(seed=7, rows=12)
    coord = world["users"]["coord"]
    clean = plan_roster(read_sheet("demo-roster.xlsx", files["demo-roster.xlsx"]), coord)
    assert clean.ok and clean.counts["create"] == 12
    problems = plan_roster(read_sheet("demo-roster-problems.csv", files["demo-roster-problems.csv"]), coord)
    assert [(p.row, p.column) for p in problems.problems] == [(4, "手机号"), (7, "技能"), (10, "空闲时间")]


@pytest.mark.parametrize("hours", ["abc", "-1", "169", "NaN", "1e9"])
def test_weekly_hours_outside_0_to_168_are_named(world, db, hours):
    sheet = read_sheet("r.csv", csv_bytes([["赵七", "13900007000", "", "", "桂花社区", "", "", hours]]))
    plan = plan_roster(sheet, world["users"]["coord_a"])
    assert [(p.row, p.column) for p in plan.problems] == [(2, "每周最多小时")]


def test_control_characters_in_a_name_or_address_are_named_and_nothing_is_written(world, db):
    header = [*HEADER, "住址"]
    rows = [[*ROWS[0], "桂花路12号"],
            ["赵\x07一", "13900004444", "", "", "桂花社区", "", "", "", "桂花路1号"],     # row 3: a bell in the name
            ["赵二", "13900005555", "", "", "桂花社区", "", "", "", "桂花路\x1b2号"]]     # row 4: an escape
    before = count(db)
    plan = apply_roster(read_sheet("r.csv", csv_bytes(rows, header=header)), world["users"]["coord_a"])
    assert not plan.ok and count(db) == before
    words = {(p.row, p.column): p.message for p in plan.problems}
    assert set(words) == {(3, TITLES["real_name"]), (4, TITLES["address"])}
    assert "control characters" in words[(3, "姓名")] and "control characters" in words[(4, "住址")]


def test_known_volunteers_are_judged_without_a_query_per_row(world, db):
    from tests.web.test_query_counts import counting

    coord = world["users"]["coord_a"]

    def roster(n):
        return [[f"志愿者{i}", f"1390000{i:04d}", "", "女", "桂花社区", "急救", "周一 08:00-12:00", "4"]
                for i in range(n)]

    apply_roster(read_sheet("r.csv", csv_bytes(roster(12))), coord)
    db.session.commit()
    counts = []
    for n in (4, 12):
        db.session.expire_all()
        with counting(db.engine) as statements:
            plan = plan_roster(read_sheet("r.csv", csv_bytes(roster(n))), coord)
        assert plan.counts["same"] == n
        counts.append(len(statements))
    assert counts[0] == counts[1], counts
