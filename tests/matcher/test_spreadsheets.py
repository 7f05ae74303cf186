"""Reading untrusted spreadsheets and writing safe ones (matcher/spreadsheets.py): a damaged or crafted
XLSX is a SheetError, never a crash; a crafted <dimension> or a far-away cell cannot make the reader loop
a million times; a hidden sheet is not read; control characters never break an export; a request body
over MAX_CONTENT_LENGTH is a 413 page, not a 500."""

from __future__ import annotations

import io
import time
import zipfile

import pytest
from openpyxl import Workbook, load_workbook

from matcher import spreadsheets
from matcher.spreadsheets import MAX_BYTES, MAX_CELL, SheetError, read_sheet, write_csv, write_xlsx

SHEET = "xl/worksheets/sheet1.xml"
NS = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'


def book(*sheets: tuple[str, list[list]], hidden: tuple[int, ...] = (), active: int = 0) -> bytes:
    """An XLSX written by openpyxl: one worksheet per (title, rows)."""
    workbook = Workbook()
    workbook.remove(workbook.active)
    for i, (title, rows) in enumerate(sheets):
        sheet = workbook.create_sheet(title)
        for row in rows:
            sheet.append(row)
        if i in hidden:
            sheet.sheet_state = "hidden"
    workbook.active = active
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def patched(data: bytes, replace: dict[str, bytes | None]) -> bytes:
    """`data` (a zip) with members replaced, or dropped where the new content is None."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            if info.filename not in replace:
                target.writestr(info.filename, source.read(info.filename))
            elif replace[info.filename] is not None:
                target.writestr(info.filename, replace[info.filename])
    return out.getvalue()


def sheet_xml(cells: str, dimension: str = "A1:B2") -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?><worksheet {NS}><dimension ref="{dimension}"/>'
            f"<sheetData>{cells}</sheetData></worksheet>").encode()


BASE = book(("名册", [["姓名", "手机号"], ["张桂兰", "13812345678"]]))
HEADER_ROW = '<row r="1"><c r="A1" t="inlineStr"><is><t>姓名</t></is></c><c r="B1" t="inlineStr"><is><t>手机号</t></is></c></row>'


def refused(data: bytes) -> str:
    with pytest.raises(SheetError) as caught:
        read_sheet("名册.xlsx", data)
    return str(caught.value)


def test_the_base_workbook_reads():
    sheet = read_sheet("名册.xlsx", BASE)
    assert sheet.columns == ["姓名", "手机号"] and [(r.number, r.get("姓名")) for r in sheet.rows] == [(2, "张桂兰")]


@pytest.mark.parametrize("cells", [
    '<row r="1"><c r="A1" t="s"><v>999</v></c></row>',  # a shared string that does not exist
    '<row r="1"><c r="A1" t="s"><v>x</v></c></row>',  # a shared-string index that is not a number
    HEADER_ROW + '<row r="2"><c r="A2" t="d"><v>last tuesday</v></c></row>',  # a date that is not ISO
    HEADER_ROW + '<row r="2"><c r="A2" t="n"><v>twelve</v></c></row>',  # a number that is not one
])
def test_a_crafted_cell_is_a_sheet_error(cells):
    assert "Excel" in refused(patched(BASE, {SHEET: sheet_xml(cells)}))


def test_truncated_sheet_xml_is_a_sheet_error():
    whole = sheet_xml(HEADER_ROW + '<row r="2"><c r="A2" t="inlineStr"><is><t>张</t></is></c></row>')
    refused(patched(BASE, {SHEET: whole[: len(whole) - 40]}))


def test_a_corrupted_sheet_member_is_a_sheet_error():
    with zipfile.ZipFile(io.BytesIO(BASE)) as archive:
        info = archive.getinfo(SHEET)
    data = bytearray(BASE)
    # The member's compressed bytes start after its local header (30 bytes, its name, its extra field).
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    for i in range(start + 5, start + min(info.compress_size, 60)):
        data[i] ^= 0x5A
    refused(bytes(data))


def test_a_workbook_without_a_worksheet_is_a_sheet_error():
    with zipfile.ZipFile(io.BytesIO(BASE)) as archive:
        workbook_xml = archive.read("xl/workbook.xml").decode()
    start, end = workbook_xml.index("<sheets>"), workbook_xml.index("</sheets>") + len("</sheets>")
    refused(patched(BASE, {"xl/workbook.xml": (workbook_xml[:start] + "<sheets/>" + workbook_xml[end:]).encode()}))
    refused(patched(BASE, {SHEET: None}))  # the workbook names a sheet the archive lacks


def test_not_a_zip_and_a_zip_of_something_else_are_sheet_errors():
    refused(b"PK\x03\x04 not a zip at all")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("hello.txt", "hi")
    refused(out.getvalue())


def test_a_huge_dimension_with_one_far_cell_is_refused_quickly():
    far = '<row r="1048576"><c r="XFD1048576" t="inlineStr"><is><t>x</t></is></c></row>'
    data = patched(BASE, {SHEET: sheet_xml(HEADER_ROW + far, "A1:XFD1048576")})
    assert len(data) < 8000  # a few KB
    started = time.monotonic()
    message = refused(data)
    assert time.monotonic() - started < 5
    assert str(spreadsheets.MAX_RAW_ROWS) in message


def test_a_wrong_dimension_is_ignored_and_columns_stop_at_the_header():
    row = ('<row r="2"><c r="A2" t="inlineStr"><is><t>张桂兰</t></is></c>'
           '<c r="XFD2" t="inlineStr"><is><t>far</t></is></c></row>')
    started = time.monotonic()
    sheet = read_sheet("名册.xlsx", patched(BASE, {SHEET: sheet_xml(HEADER_ROW + row, "A1:XFD1048576")}))
    assert time.monotonic() - started < 5
    assert sheet.columns == ["姓名", "手机号"]
    assert [(r.number, r.values) for r in sheet.rows] == [(2, {"姓名": "张桂兰", "手机号": ""})]


def test_many_blank_rows_are_counted(monkeypatch):
    monkeypatch.setattr(spreadsheets, "MAX_RAW_ROWS", 50)
    rows = [["姓名"]] + [[None]] * 60 + [["张桂兰"]]
    refused(book(("名册", rows)))
    # Below the limit the blank rows are skipped and the row keeps the number the spreadsheet shows.
    sheet = read_sheet("名册.xlsx", book(("名册", [["姓名"]] + [[None]] * 20 + [["张桂兰"]])))
    assert [(r.number, r.get("姓名")) for r in sheet.rows] == [(22, "张桂兰")]


def test_a_too_long_cell_names_its_row_and_column():
    long = "长" * (MAX_CELL + 1)
    message = refused(book(("名册", [["姓名", "备注"], ["张桂兰", ""], ["李四", long]])))
    assert "3" in message and "备注" in message and str(MAX_CELL) in message
    with pytest.raises(SheetError) as caught:
        read_sheet("名册.csv", f"姓名,备注\n张桂兰,\n李四,{long}\n".encode())
    assert "备注" in str(caught.value)
    assert read_sheet("名册.csv", f"姓名,备注\n李四,{long[:MAX_CELL]}\n".encode()).rows[0].get("备注")


def test_too_many_columns_are_refused():
    refused(book(("名册", [[f"列{i}" for i in range(spreadsheets.MAX_COLUMNS + 1)], ["x"]])))


def test_a_huge_unpacked_size_is_refused(monkeypatch):
    monkeypatch.setattr(spreadsheets, "MAX_UNPACKED", 1000)
    refused(BASE)


def test_the_unpacked_limit_is_about_100_mb():
    assert spreadsheets.MAX_UNPACKED <= 100 * 2**20


def test_a_hidden_first_sheet_is_not_read():
    data = book(("旧名册", [["旧", "表"], ["不要", "读"]]), ("名册", [["姓名", "手机号"], ["张桂兰", "138"]]),
                hidden=(0,), active=1)
    sheet = read_sheet("名册.xlsx", data)
    assert sheet.columns == ["姓名", "手机号"] and sheet.rows[0].get("姓名") == "张桂兰"
    # The active sheet is read when it is visible; else the first visible one.
    two = book(("说明", [["说明"], ["见第二页"]]), ("名册", [["姓名"], ["李四"]]), active=1)
    assert read_sheet("名册.xlsx", two).columns == ["姓名"]
    first = book(("名册", [["姓名"], ["李四"]]), ("说明", [["说明"]]))
    assert read_sheet("名册.xlsx", first).columns == ["姓名"]


def test_a_workbook_whose_sheets_are_all_hidden_is_refused():
    data = book(("名册", [["姓名"], ["张"]]))
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        workbook_xml = archive.read("xl/workbook.xml").decode()
    hidden = workbook_xml.replace("<sheet ", '<sheet state="hidden" ', 1)
    assert hidden != workbook_xml
    refused(patched(data, {"xl/workbook.xml": hidden.encode()}))


def test_control_characters_are_dropped_from_exports():
    rows = [["张\x0b桂兰", "\x00=SUM(A1)", 3, "行一\n行二\t完"]]
    data = write_xlsx([("名册", ["姓\x1f名", "公式", "数", "备注"], rows)])
    sheet = load_workbook(io.BytesIO(data)).active
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    assert values == [["姓名", "公式", "数", "备注"], ["张桂兰", "'=SUM(A1)", 3, "行一\n行二\t完"]]
    text = write_csv(["姓\x1f名", "公式"], [["张\x0b桂兰", "\x00=SUM(A1)"]]).decode("utf-8-sig")
    assert text.splitlines() == ["姓名,公式", "张桂兰,'=SUM(A1)"]


def test_openpyxl_parses_with_defusedxml():
    import openpyxl

    assert openpyxl.DEFUSEDXML is True


def test_an_upload_over_max_content_length_is_a_413_page(app, client, auth, world):
    assert app.config["MAX_CONTENT_LENGTH"] == MAX_BYTES + 2**20
    auth.login("coord_a")
    # The multipart body is given as bytes: the test client would spool a file this large to a temporary
    # file that nobody closes once the app refuses to read it.
    head = (b'--b\r\nContent-Disposition: form-data; name="file"; filename="r.csv"\r\n'
            b"Content-Type: text/csv\r\n\r\n")
    body = head + b"x" * app.config["MAX_CONTENT_LENGTH"] + b"\r\n--b--\r\n"
    response = client.post("/imports/volunteers", data=body, content_type="multipart/form-data; boundary=b")
    assert response.status_code == 413
    assert f"{MAX_BYTES // 2**20} MB" in response.get_data(as_text=True)
