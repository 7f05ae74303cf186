"""Spreadsheets in and out: reading an uploaded XLSX or CSV into rows of text, and writing rows to XLSX
or CSV that are safe to open.

In: a Chinese office saves CSV as GB18030/GBK (Excel's "CSV" on a Chinese Windows) or as UTF-8 with or
without a byte-order mark; an XLSX is read with openpyxl in read-only mode (values, not formulas). Every
cell comes back as stripped text, keyed by the header row's column titles; a row keeps its number as
the spreadsheet shows it (the header is row 1), so a message can say "row 7, column 手机号". A file
that cannot be read raises `SheetError` with a message a clerk can act on.

An XLSX is untrusted input: openpyxl parses the sheet lazily while its rows are iterated, so the whole
read (opening and iterating) turns any failure of the parse into a SheetError. The sheet read is the
active one when it is a visible worksheet, else the first visible worksheet (a hidden sheet is never
read: the clerk cannot see it). Its `<dimension>` is ignored (a crafted one would pad every row to
16,384 columns), columns are limited to the header's width, and the rows counted include blank ones,
so a small file cannot make the reader loop a million times.

Out: a text cell that begins with `=`, `+`, `-`, `@` (or a tab or carriage return) is written with a
leading apostrophe, so no spreadsheet program runs it as a formula (CSV injection); numbers stay numbers.
"""

from __future__ import annotations

import csv
import io
import logging
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from flask_babel import lazy_gettext as _l

MAX_BYTES = 10 * 1024 * 1024  # an upload larger than this is refused before it is read
MAX_ROWS = 20_000
# Rows counted as they come, blank ones included: past this the file is refused (an XLSX can say a
# cell is in row 1,048,576; every row before it comes back blank).
MAX_RAW_ROWS = MAX_ROWS + 1000
MAX_COLUMNS = 256  # titled columns in the header row
MAX_CELL = 2000  # characters in one cell
MAX_UNPACKED = 100 * 2**20  # an XLSX whose parts unpack to more than this is refused (a zip bomb)
# Tried in order for a CSV: a byte-order mark decides; else UTF-8 if the bytes are valid UTF-8, else
# GB18030 (a superset of GBK and GB2312, what Excel writes on a Chinese Windows).
ENCODINGS = ("utf-8", "gb18030")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
XLSX_TYPES = ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",)
UNREADABLE_XLSX = _l("The file could not be read as an Excel workbook: save it again from Excel or WPS as "
                     ".xlsx, or as CSV, and upload it again.")

log = logging.getLogger(__name__)


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
    """The header row (the first that is not blank) and the rows below it, as wide as the header."""
    rows = iter(raw_rows)
    header: list[str] = []
    number = 0
    for values in rows:  # the first row that is not blank holds the column titles
        number = _count(number)
        header = [_text(v) for v in values]
        if any(header):
            break
    if not any(header):
        raise SheetError(_l("The file has no header row."))
    while header and not header[-1]:
        header.pop()
    if len(header) > MAX_COLUMNS:
        raise SheetError(_l("The header row has more than %(n)d columns: remove the columns that are not needed.",
                            n=MAX_COLUMNS))
    seen = set()
    for i, title in enumerate(header):
        _check_length(title, number, str(i + 1))
        if title and title in seen:
            raise SheetError(_l("The column '%(c)s' appears twice in the header row.", c=title))
        seen.add(title)
    sheet = Sheet(columns=header, encoding=encoding)
    titled = [(i, title) for i, title in enumerate(header) if title]
    for values in rows:
        number = _count(number)
        values = values[:len(header)]
        row = Row(number, {title: _text(values[i]) if i < len(values) else "" for i, title in titled})
        if row.blank:
            continue
        for title, value in row.values.items():
            _check_length(value, number, title)
        if len(sheet.rows) >= MAX_ROWS:
            raise SheetError(_l("The file has more than %(n)d rows: split it into smaller files.", n=MAX_ROWS))
        sheet.rows.append(row)
    return sheet


def _count(number: int) -> int:
    """The next row's number; a SheetError past MAX_RAW_ROWS rows, blank ones included."""
    if number >= MAX_RAW_ROWS:
        raise SheetError(_l("The file has more than %(n)d rows, counting empty ones: delete the empty rows "
                            "below the list (or copy the list into a new file) and upload again.", n=MAX_RAW_ROWS))
    return number + 1


def _check_length(value: str, row: int, column: str) -> None:
    if len(value) > MAX_CELL:
        raise SheetError(_l("Row %(row)d, column %(c)s has more than %(n)d characters: shorten it and upload again.",
                            row=row, c=column, n=MAX_CELL))


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

    workbook = None
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            # An XLSX that unpacks to far more than it weighs is refused (a zip bomb). The sizes are the
            # ones the archive declares; Python's zipfile reads no more than that from any member.
            if sum(info.file_size for info in archive.infolist()) > MAX_UNPACKED:
                raise SheetError(_l("The file unpacks to too much data: split it into smaller files."))
        # openpyxl parses the sheet lazily, while its rows are iterated: the whole read is in this try.
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True, keep_links=False)
        sheet = _visible_sheet(workbook)
        sheet.reset_dimensions()  # its <dimension> may be wrong, or crafted to pad every row
        # One pass, every row cut at MAX_COLUMNS + 1 cells (a cell far to the right pads nothing more);
        # `_table` reads only the header's width. (A second pass as wide as the header cost a whole
        # parse.)
        return _table(sheet.iter_rows(max_col=MAX_COLUMNS + 1, values_only=True))
    except SheetError:
        raise
    except Exception as exc:  # noqa: BLE001 (openpyxl, zipfile, zlib and the XML parser raise many kinds)
        log.warning("xlsx upload unreadable: %s", type(exc).__name__, exc_info=not _content_error(exc))
        raise SheetError(UNREADABLE_XLSX) from None
    finally:
        if workbook is not None:
            workbook.close()


def _visible_sheet(workbook):
    """The active worksheet when it is visible, else the first visible one; SheetError when none is."""
    worksheets = workbook.worksheets
    if not worksheets:
        raise SheetError(UNREADABLE_XLSX)
    active = workbook.active
    if active in worksheets and active.sheet_state == "visible":
        return active
    for sheet in worksheets:
        if sheet.sheet_state == "visible":
            return sheet
    raise SheetError(_l("The workbook has no visible worksheet: unhide the sheet with the list in Excel or WPS, "
                        "save it and upload it again."))


def _content_error(exc: Exception) -> bool:
    """Whether `exc` is one a damaged or crafted file is expected to raise (logged without a traceback);
    anything else (a TypeError, an AttributeError...) is logged with its traceback: it may be a bug."""
    import zlib
    from xml.etree.ElementTree import ParseError

    from openpyxl.utils.exceptions import InvalidFileException

    return isinstance(exc, (zipfile.BadZipFile, zlib.error, ParseError, InvalidFileException, KeyError,
                            IndexError, ValueError, EOFError))


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
    return inert(_printable(value)) if isinstance(value, str) else value


def _printable(text: str) -> str:
    """`text` without the control characters an XLSX cannot hold (openpyxl refuses them: one imported
    name with a vertical tab would break every export); tabs and line breaks stay."""
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    return ILLEGAL_CHARACTERS_RE.sub("", text)


def write_csv(columns: Sequence[str], rows: Iterable[Sequence]) -> bytes:
    """CSV in UTF-8 with a byte-order mark (Excel on a Chinese Windows then opens it as UTF-8)."""
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow([_cell(c) for c in columns])
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
        sheet.append([_cell(c) for c in columns])
        for row in values:
            sheet.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def _column_letter(index: int) -> str:
    from openpyxl.utils import get_column_letter

    return get_column_letter(index + 1)
