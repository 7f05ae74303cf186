"""Spreadsheets in and out: reading an uploaded XLSX or CSV into rows of text, and writing rows to XLSX
or CSV that are safe to open.

In: a Chinese office saves CSV as GB18030/GBK (Excel's "CSV" on a Chinese Windows) or as UTF-8 with or
without a byte-order mark; an XLSX is read with openpyxl in read-only mode (values, not formulas). Every
cell comes back as stripped text, keyed by the header row's column titles; a row keeps its number as
the spreadsheet shows it (the header is row 1), so a message can say "row 7, column 手机号". A file
that cannot be read raises `SheetError` with a message a clerk can act on.

Out: a text cell that begins with `=`, `+`, `-`, `@` (or a tab or carriage return) is written with a
leading apostrophe, so no spreadsheet program runs it as a formula (CSV injection); numbers stay numbers.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from flask_babel import lazy_gettext as _l

MAX_BYTES = 10 * 1024 * 1024  # an upload larger than this is refused before it is read
MAX_ROWS = 20_000
# Tried in order for a CSV: a byte-order mark decides; else UTF-8 if the bytes are valid UTF-8, else
# GB18030 (a superset of GBK and GB2312, what Excel writes on a Chinese Windows).
ENCODINGS = ("utf-8", "gb18030")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
XLSX_TYPES = ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",)


class SheetError(ValueError):
    """The file cannot be read as a table; `message` says why, for the person who uploaded it."""

    def __init__(self, message):
        super().__init__(str(message))
        self.message = message


@dataclass
class Sheet:
    """An uploaded table: its column titles and rows of stripped text (`number` is the row as shown)."""

    columns: list[str]
    rows: list[Row] = field(default_factory=list)
    encoding: str = ""  # the CSV's encoding ("" for XLSX)


@dataclass
class Row:
    number: int
    values: dict[str, str]

    def get(self, column: str) -> str:
        return self.values.get(column, "")

    @property
    def blank(self) -> bool:
        return not any(self.values.values())


def read_sheet(filename: str, data: bytes) -> Sheet:
    """The first sheet of an XLSX, or a CSV, as a `Sheet`; SheetError when it cannot be read."""
    if len(data) > MAX_BYTES:
        raise SheetError(_l("The file is larger than %(n)d MB: split it into smaller files.", n=MAX_BYTES // 2**20))
    if not data.strip():
        raise SheetError(_l("The file is empty."))
    name = (filename or "").lower()
    if data[:2] == b"PK" or name.endswith((".xlsx", ".xlsm")):
        return _read_xlsx(data)
    if name.endswith(".xls"):
        raise SheetError(_l("Old Excel files (.xls) cannot be read: save it as .xlsx or CSV and upload again."))
    return _read_csv(data)


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # a phone number typed into Excel comes back as 13812345678.0
    if isinstance(value, datetime):
        value = value.date() if value.time() == datetime.min.time() else value
    if isinstance(value, date | datetime):
        return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
    return str(value).replace("\u3000", " ").strip()


def _table(raw_rows: Iterable[Sequence], encoding: str = "") -> Sheet:
    rows = iter(raw_rows)
    header: list[str] = []
    number = 0
    for values in rows:  # the first row that is not blank holds the column titles
        number += 1
        header = [_text(v) for v in values]
        if any(header):
            break
    if not any(header):
        raise SheetError(_l("The file has no header row."))
    while header and not header[-1]:
        header.pop()
    seen = set()
    for title in header:
        if title and title in seen:
            raise SheetError(_l("The column '%(c)s' appears twice in the header row.", c=title))
        seen.add(title)
    sheet = Sheet(columns=header, encoding=encoding)
    for values in rows:
        number += 1
        cells = [_text(v) for v in values]
        row = Row(number, {title: (cells[i] if i < len(cells) else "") for i, title in enumerate(header) if title})
        if row.blank:
            continue
        if len(sheet.rows) >= MAX_ROWS:
            raise SheetError(_l("The file has more than %(n)d rows: split it into smaller files.", n=MAX_ROWS))
        sheet.rows.append(row)
    return sheet


def _read_csv(data: bytes) -> Sheet:
    if data.startswith(b"\xef\xbb\xbf"):
        text, encoding = data[3:].decode("utf-8", errors="strict"), "utf-8-sig"
    else:
        for encoding in ENCODINGS:
            try:
                text = data.decode(encoding)
                break
            except UnicodeDecodeError:
                continue
        else:
            raise SheetError(_l("The file is neither UTF-8 nor GBK/GB18030 text: save it as CSV or XLSX again."))
    if "\x00" in text:
        raise SheetError(_l("This is not a CSV or XLSX file."))
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",\t;，")
        delimiter = dialect.delimiter
    except csv.Error:
        delimiter = ","
    try:
        return _table(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), encoding)
    except csv.Error as exc:
        raise SheetError(_l("The CSV cannot be read (%(e)s).", e=str(exc))) from None


def _read_xlsx(data: bytes) -> Sheet:
    from openpyxl import load_workbook

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            # An XLSX that unpacks to far more than it weighs is refused (a zip bomb).
            if sum(info.file_size for info in archive.infolist()) > 40 * MAX_BYTES:
                raise SheetError(_l("The file unpacks to too much data: split it into smaller files."))
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except SheetError:
        raise
    except Exception:  # noqa: BLE001 (openpyxl raises many kinds for a file that is not a workbook)
        raise SheetError(_l("The file cannot be opened as an Excel workbook (.xlsx).")) from None
    try:
        sheet = workbook.worksheets[0]
        return _table(sheet.iter_rows(values_only=True))
    finally:
        workbook.close()


# --------------------------------------------------------------------------- out


def inert(value):
    """A cell value no spreadsheet program runs as a formula: text starting with =, +, -, @, a tab or a
    carriage return gets a leading apostrophe; other values are returned as they are."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def _cell(value):
    if isinstance(value, Decimal):
        return float(value)
    if value is None:
        return ""
    return inert(value) if isinstance(value, str) else value


def write_csv(columns: Sequence[str], rows: Iterable[Sequence]) -> bytes:
    """CSV in UTF-8 with a byte-order mark (Excel on a Chinese Windows then opens it as UTF-8)."""
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow([inert(c) for c in columns])
    for row in rows:
        writer.writerow([_cell(v) for v in row])
    return b"\xef\xbb\xbf" + out.getvalue().encode("utf-8")


def write_xlsx(sheets: Sequence[tuple[str, Sequence[str], Iterable[Sequence]]]) -> bytes:
    """An XLSX with one worksheet per (title, columns, rows); text cells made inert, columns sized to fit."""
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    for title, columns, rows in sheets:
        sheet = workbook.create_sheet(title=title[:31])
        values = [[_cell(v) for v in row] for row in rows]
        # A write-only sheet takes its column widths before its first row.
        for i, column in enumerate(columns):
            width = max([len(str(column))] + [len(str(row[i])) for row in values[:500] if i < len(row)])
            sheet.column_dimensions[_column_letter(i)].width = min(width, 40) * 1.8 + 2
        sheet.freeze_panes = "A2"
        sheet.append([inert(c) for c in columns])
        for row in values:
            sheet.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def _column_letter(index: int) -> str:
    from openpyxl.utils import get_column_letter

    return get_column_letter(index + 1)
