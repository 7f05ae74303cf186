"""Use cases that change an `ImportFile` (an uploaded spreadsheet), and what every kind of import shares.

Every import (volunteer rosters, organizations, residents, demands) goes the same way: an upload is
kept (`upload_file`), every row is judged against the database and the importer's scope without
writing anything (the kind's `plan`: each good row a `RowPlan` "create", "update" with the changed
columns, or "same"; each bad cell a `CellProblem` naming the row, the column and what to do), and on
confirmation the file is judged again and written only when no row has a problem, in the caller's
transaction (all or nothing; `apply_upload`). Judging a row lives in the module of the row it
creates (`rosters.py` for volunteers, `organizations.py`, `residents.py`, `demands.py`), which reuses
that module's own readers and rules; this module holds the plan's types, the column mapping, the
importer's scope, the cell readers every kind uses, and the registry of kinds (`kinds()`).

A large file (more than `IMPORT_JOB_ROWS` rows, 500 by default) is judged and imported by a
background job (`web/jobs.py`: RQ when REDIS_URL is set, else a thread), which gets only the upload's
id. The `ImportFile` row carries the job's state (queued → planning → planned → importing → done, or
failed), rows done of rows total (written from a connection of its own, so the page's poll sees them
while the job's transaction is open) and the stored plan (counts, the problems, the first rows).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import selectinload

from . import rules
from .access import area_filter, organization_filter
from .audit import record_audit
from .db import db
from .errors import ValidationError
from .models import Area, AreaLevel, ImportFile, Organization, Role, User, utcnow
from .settings import setting
from .spreadsheets import MAX_BYTES, Sheet, SheetError, read_sheet

log = logging.getLogger(__name__)

# The job's states, in order; ACTIVE ones have a job working (or waiting) on the file.
QUEUED, PLANNING, PLANNED, IMPORTING, DONE, FAILED = "queued", "planning", "planned", "importing", "done", "failed"
ACTIVE = (QUEUED, PLANNING, IMPORTING)
JOB_ROWS = 500  # a file with more rows than this is judged and imported in the background
# An active job that has not reported for this long is given up: longer than the job's own time limit
# (`web.jobs.IMPORT_JOB_TIMEOUT`, 900 s), so a job still running is never shown as stopped.
STALE_SECONDS = 1200
# Uploads hold phones, addresses and full ID numbers: kept only as long as needed. A file never imported
# is emptied after KEEP_HOURS; an imported one (the record of what was imported) after
# IMPORT_KEEP_DAYS (a setting, default KEEP_DAYS). What an import did (counts, problems) stays.
KEEP_HOURS = 24
KEEP_DAYS = 90
STORED_ROWS = 200  # planned rows kept with the stored plan (the counts cover them all)
STORED_PROBLEMS = 1000
SEPARATORS = re.compile(r"[；;，,、\n]+")

Progress = Callable[[int, int], None]


def no_progress(done: int, total: int) -> None:
    return None


@dataclass
class CellProblem:
    """What is wrong with one cell (or a whole row, `column` empty), worded for the clerk."""

    row: int
    column: str
    message: str


@dataclass
class RowPlan:
    """What importing one good row does: "create", "update" (with the changed columns) or "same".
    `target_id` is the row found again (None for "create"); `values` what the kind's writer needs."""

    row: int
    action: str
    name: str
    phone: str = ""
    changes: list[str] = field(default_factory=list)
    values: dict = field(default_factory=dict, repr=False)
    target_id: int | None = None

    @property
    def volunteer_id(self) -> int | None:  # the roster's name for it
        return self.target_id


@dataclass
class Plan:
    rows: list[RowPlan]
    problems: list[CellProblem]

    @property
    def counts(self) -> dict[str, int]:
        out = {"create": 0, "update": 0, "same": 0}
        for r in self.rows:
            out[r.action] += 1
        return out

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> dict[str, Any]:
        """The plan as the preview shows it and the upload keeps it (JSON; phones masked)."""
        return {"counts": self.counts, "total": len(self.rows), "problem_count": len(self.problems),
                "problems": [{"row": p.row, "column": p.column, "message": p.message}
                             for p in self.problems[:STORED_PROBLEMS]],
                "rows": [{"row": r.row, "action": r.action, "name": r.name, "phone": rules.mask_phone(r.phone),
                          "changes": r.changes} for r in self.rows[:STORED_ROWS]]}


@dataclass(frozen=True)
class Kind:
    """One kind of import: its columns (key, Chinese title, English title, required), an example row,
    who may use it, how its rows are judged (`plan`) and how a good plan is written (`write`)."""

    name: str
    title: Any  # lazy text: "Volunteer roster"
    sheet: str  # the template's sheet and file name (Chinese)
    columns: tuple
    example: Any  # {key: example cell}, or a function giving it (dates that must lie ahead)
    roles: tuple
    plan: Callable[..., Plan]  # (sheet, user, progress) -> Plan
    write: Callable[[Plan, User], None]
    notes: Any = ""
    list_endpoint: str = ""

    @property
    def titles(self) -> dict[str, str]:
        return {key: zh for key, zh, _en, _req in self.columns}

    def example_values(self) -> dict[str, str]:
        return self.example() if callable(self.example) else self.example

    def template_rows(self) -> tuple[list[str], list[list[str]]]:
        example = self.example_values()
        return [zh for _key, zh, _en, _req in self.columns], [[example.get(key, "") for key, *_r in self.columns]]


def kinds() -> dict[str, Kind]:
    """Every kind of import, by name, in the order the imports page lists them."""
    from . import demands, organizations, residents, rosters

    return {k.name: k for k in (rosters.IMPORT, organizations.IMPORT, residents.IMPORT, demands.IMPORT)}


def kinds_for(user: User) -> list[Kind]:
    return [k for k in kinds().values() if user.role in k.roles]


# --------------------------------------------------------------------------- columns and cells


def column_map(sheet: Sheet, columns) -> tuple[dict[str, str], list[CellProblem]]:
    """Which spreadsheet column holds each field (Chinese or English title); a missing required one is a
    problem on row 1."""
    found, problems = {}, []
    titles = {t.strip().lower(): t for t in sheet.columns if t}
    for key, zh, en, required in columns:
        title = titles.get(zh.lower()) or titles.get(en.lower())
        if title:
            found[key] = title
        elif required:
            problems.append(CellProblem(1, zh, str(_l("The column '%(c)s' is missing from the header row.", c=zh))))
    return found, problems


def read_rows(sheet: Sheet, columns, judge: Callable[[int, dict[str, str], Callable], Any],
              progress: Progress = no_progress) -> tuple[list[tuple[int, Any, bool]], list[CellProblem]]:
    """Each row's cells by field key, judged by `judge(number, cells, fail)`; returns
    ([(row number, what judge returned, whether the row is bad)], problems). `fail(key, message)` names a
    cell of the row by its field key."""
    found, problems = column_map(sheet, columns)
    if problems:
        return [], problems
    titles = {key: zh for key, zh, _en, _req in columns}
    out = []
    total = len(sheet.rows)
    for i, row in enumerate(sheet.rows, 1):
        cells = {key: row.get(title) for key, title in found.items()}
        bad: list[CellProblem] = []

        def fail(key: str, message, _row=row.number, _bad=bad) -> None:
            _bad.append(CellProblem(_row, titles.get(key, key), str(message)))

        values = judge(row.number, cells, fail)
        problems.extend(bad)
        out.append((row.number, values, bool(bad)))
        if i % 250 == 0:
            progress(i, total)
    progress(total, total)
    return out, problems


def duplicates(parsed, key: Callable[[Any], Any], column: str, message: Any, problems: list[CellProblem]) -> None:
    """Name every row whose key (not None) repeats an earlier row's: `message` (lazy text) with %(r)d the
    first row."""
    seen: dict[Any, int] = {}
    for number, values, bad in parsed:
        if bad:
            continue
        k = key(values)
        if k is None:
            continue
        if k in seen:
            problems.append(CellProblem(number, column, str(message) % {"r": seen[k]}))
        else:
            seen[k] = number


def mainland_mobile(text: str) -> tuple[str | None, str | None]:
    """(E.164 mobile, None) for a mainland mobile number; (None, message) when the cell holds something
    else; (None, None) when it is blank."""
    raw = re.sub(r"[\s-]", "", text or "")
    if not raw:
        return None, None
    phone = rules.normalize_phone(raw)
    if phone is None or not phone.startswith("+861") or len(phone) != 14:
        return None, str(_l("'%(p)s' is not a mainland mobile number (11 digits starting with 1).", p=raw[:20]))
    return phone, None


def cell_date(text: str) -> date | None:
    """A date written 2026-12-07, 2026/12/7, 2026.12.7 or 2026年12月7日 (an XLSX date cell reads as ISO)."""
    found = re.fullmatch(r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?(?:\s+00:00(?::00)?)?",
                         (text or "").strip())
    if not found:
        return None
    try:
        return date(*(int(g) for g in found.groups()))
    except ValueError:
        return None


_RANGE = re.compile(r"^(\d{1,2})[:：](\d{2})\s*[-–—~～至到]\s*(\d{1,2})[:：](\d{2})$")


def cell_time_range(text: str) -> tuple[int, int] | None:
    """'08:00-10:00' as (start minute, end minute) with the start before the end, else None."""
    found = _RANGE.match((text or "").strip())
    if not found:
        return None
    h1, m1, h2, m2 = (int(g) for g in found.groups())
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if m1 > 59 or m2 > 59 or end > 24 * 60 or start >= end:
        return None
    return start, end


YES = {"是", "有", "已同意", "同意", "y", "yes", "1", "true", "√", "✓"}
NO = {"否", "无", "未同意", "不同意", "n", "no", "0", "false", "×", ""}


def cell_yes(text: str) -> bool | None:
    """是/否 (yes/no) as True/False; None when the cell is neither."""
    value = (text or "").strip().lower()
    return True if value in YES else False if value in NO else None


def field_problems(exc: ValidationError, columns: dict[str, str], fail, default: str) -> None:
    """A use case's field messages (ValidationError) as problems of the columns that hold those fields."""
    for name, message in exc.errors.items():
        fail(columns.get(name, default), message)


# --------------------------------------------------------------------------- scope


@dataclass
class Scope:
    """Where an importer may put rows: communities by id, organizations by name."""

    user: User
    communities: dict[int, Area]
    organizations: dict[str, Organization]
    organization: Organization | None  # a leader's own: every imported volunteer becomes its member
    by_name: dict[str, list[Area]] = field(default_factory=dict)  # communities by name and by code
    areas: dict[str, list[Area]] = field(default_factory=dict)  # every area in scope by name (organizations)

    def __post_init__(self) -> None:
        for area in self.communities.values():
            for key in {area.name, area.code}:
                self.by_name.setdefault(key, []).append(area)


def importer_scope(user: User, *, all_levels: bool = False) -> Scope:
    """The communities and organizations a coordinator (their area), a community worker (their
    community) or a leader (the areas their organization serves) imports into; `all_levels` also
    lists the district and streets in scope (an organization's home may be a street)."""
    own = db.session.get(Organization, user.organization_id) if user.role == Role.ORG_LEADER else None
    query = select(Area).options(selectinload(Area.parent))
    if not all_levels:
        query = query.where(Area.level == AreaLevel.COMMUNITY)
    if user.role != Role.ADMIN:
        query = query.where(area_filter(user, Area.id))
    areas = list(db.session.scalars(query))
    communities = {a.id: a for a in areas if a.level == AreaLevel.COMMUNITY}
    orgs = {o.name: o for o in db.session.scalars(select(Organization).where(organization_filter(user)))}
    if own is not None:
        orgs = {own.name: own}
    scope = Scope(user, communities, orgs, own)
    for area in areas:
        for key in {area.name, area.code}:
            scope.areas.setdefault(key, []).append(area)
    return scope


def find_area(choices: dict[str, list[Area]], text: str) -> tuple[Area | None, str | None]:
    """The area named in a cell ('桂花社区', or '东城街道/桂花社区' where names repeat, or its code)."""
    wanted = text.replace("／", "/").strip()
    parent_name, _sep, name = wanted.rpartition("/")
    matches = [a for a in choices.get(name, [])
               if not parent_name or (a.parent is not None and a.parent.name == parent_name)]
    if len(matches) == 1:
        return matches[0], None
    if not matches:
        return None, str(_l("No community '%(c)s' in your area: write its name as on the community list.", c=text[:30]))
    return None, str(_l("Several communities are called '%(c)s': write it as 街道/社区.", c=text[:30]))


def community_cell(scope: Scope, text: str) -> tuple[Area | None, str | None]:
    return find_area(scope.by_name, text)


# --------------------------------------------------------------------------- the upload and its job


def job_rows() -> int:
    return int(setting("IMPORT_JOB_ROWS", JOB_ROWS))


def upload_file(kind: Kind, filename: str, data: bytes, user: User) -> ImportFile:
    """Keep an uploaded spreadsheet (audited); SheetError when it cannot be read as a table. A large
    file is left "queued" for its job (the caller commits, then starts it)."""
    if not data:
        raise SheetError(_l("Choose a spreadsheet (XLSX or CSV) to upload."))
    if len(data) > MAX_BYTES:
        raise SheetError(_l("The file is larger than %(n)d MB: split it into smaller files.", n=MAX_BYTES // 2**20))
    sheet = read_sheet(filename, data)
    discard_old_uploads()
    large = len(sheet.rows) > job_rows()
    upload = ImportFile(kind=kind.name, filename=(filename or "")[:200], content=data,
                        sha256=hashlib.sha256(data).hexdigest(), created_by_id=user.id,
                        rows_total=len(sheet.rows), rows_done=0, state=QUEUED if large else None,
                        updated_at=utcnow())
    db.session.add(upload)
    db.session.flush()
    record_audit(user, "upload_roster" if kind.name == "volunteers" else "upload_import", upload,
                 size=len(data), kind=kind.name, rows=len(sheet.rows))
    return upload


def is_large(upload: ImportFile) -> bool:
    return upload.state is not None


def plan_upload(upload: ImportFile, user: User, progress: Progress = no_progress) -> Plan:
    """Judge the upload's rows (nothing written); SheetError when the file cannot be read."""
    kind = kinds()[upload.kind]
    if not upload.content:
        raise SheetError(_l("This upload was emptied after %(h)d hours without being imported (it held personal "
                            "data): upload the file again.", h=KEEP_HOURS))
    return kind.plan(read_sheet(upload.filename, upload.content), user, progress)


class AlreadyImported(Exception):
    """Another request or job imported this upload first (its writes are to be rolled back)."""


def lock_upload(import_id: int) -> ImportFile | None:
    """The upload, read again and locked for this transaction (PostgreSQL: a second click on *Import*
    waits here until the first commits, then sees it imported; SQLite serializes writers anyway)."""
    return db.session.get(ImportFile, import_id, with_for_update=True, populate_existing=True)


def _claim(upload: ImportFile) -> bool:
    """Mark the upload imported in this transaction unless it is already: the last guard against
    importing one file twice (two clicks, or a job and a retry). True when this transaction has it."""
    done = db.session.execute(update(ImportFile.__table__)
                              .where(ImportFile.__table__.c.id == upload.id,
                                     ImportFile.__table__.c.applied_at.is_(None))
                              .values(applied_at=utcnow()))
    return done.rowcount == 1


def discard_old_uploads(now: datetime | None = None) -> int:
    """Empty the files of uploads not imported within KEEP_HOURS, and of imported ones older than
    IMPORT_KEEP_DAYS (what they did stays); the number emptied. Run at every upload and by
    `flask imports discard` (daily from cron where uploads are rare)."""
    now = now or utcnow()
    table = ImportFile.__table__
    unused = (table.c.applied_at.is_(None)) & (table.c.created_at < now - timedelta(hours=KEEP_HOURS))
    old = table.c.applied_at < now - timedelta(days=int(setting("IMPORT_KEEP_DAYS", KEEP_DAYS)))
    done = db.session.execute(update(table).where(unused | old, table.c.content != b"").values(content=b""))
    return done.rowcount


def apply_upload(upload: ImportFile, user: User, progress: Progress = no_progress) -> Plan:
    """Import the upload: judged again, then every row written, or nothing when any row has a problem
    (the caller commits, or rolls back when the plan is not ok). Audited."""
    kind = kinds()[upload.kind]
    plan = plan_upload(upload, user, progress)
    if not plan.ok:
        return plan
    kind.write(plan, user)
    db.session.flush()
    if not _claim(upload):
        raise AlreadyImported(upload.id)
    counts = plan.counts
    action = "import_roster" if kind.name == "volunteers" else f"import_{kind.name}"
    record_audit(user, action, upload, created=counts["create"], updated=counts["update"],
                 unchanged=counts["same"], file=upload.filename[:80])
    upload.applied_at = utcnow()
    upload.result = counts
    upload.plan = plan.summary()
    upload.rows_done = upload.rows_total = len(plan.rows)
    if upload.state is not None:
        upload.state = DONE
    upload.updated_at = utcnow()
    return plan


def queue_apply(upload: ImportFile) -> bool:
    """Mark a planned large upload for its import job; False when it is not ready to import."""
    ready = upload.plan is not None and not upload.plan.get("problem_count")
    if upload.applied_at or upload.state not in (PLANNED, FAILED) or not ready:
        return False
    # One click wins: the state changes only where it still is what this request read.
    table = ImportFile.__table__
    done = db.session.execute(update(table).where(table.c.id == upload.id, table.c.applied_at.is_(None),
                                                  table.c.state.in_((PLANNED, FAILED)))
                              .values(state=IMPORTING, rows_done=0, message="", updated_at=utcnow()))
    db.session.refresh(upload)
    return done.rowcount == 1


def report(import_id: int, **values) -> None:
    """Write the job's state from a connection of its own (committed at once, seen by the page's poll
    while the job's own transaction is still open). Never over an upload already imported (a late
    failure of a second job must not say "nothing was written")."""
    values["updated_at"] = utcnow()
    table = ImportFile.__table__
    with db.engine.begin() as conn:
        conn.execute(update(table).where(table.c.id == import_id, table.c.applied_at.is_(None)).values(**values))


def _reporter(import_id: int) -> Progress:
    def progress(done: int, total: int) -> None:
        try:
            report(import_id, rows_done=done, rows_total=total)
        except DBAPIError as exc:  # a progress bar is not worth failing the import for (SQLite busy)
            log.warning("import %s: progress not written (%s)", import_id, type(exc).__name__)
    return progress


def run_import(import_id: int) -> None:
    """The background job's body: plan a queued upload, or import one marked "importing". Commits."""
    upload = db.session.get(ImportFile, import_id)
    if upload is None or upload.state not in ACTIVE:
        return
    user = db.session.get(User, upload.created_by_id)
    importing = upload.state == IMPORTING
    try:
        if not importing:
            upload.state, upload.updated_at = PLANNING, utcnow()
            db.session.commit()
            plan = plan_upload(upload, user, _reporter(import_id))
            upload.plan, upload.state, upload.message = plan.summary(), PLANNED, ""
            upload.rows_done = upload.rows_total
            upload.updated_at = utcnow()
            db.session.commit()
            return
        db.session.commit()
        plan = apply_upload(upload, user, _reporter(import_id))
        if not plan.ok:  # the database changed since the preview: nothing written, the problems shown
            db.session.rollback()
            upload = db.session.get(ImportFile, import_id)
            upload.plan, upload.state, upload.updated_at = plan.summary(), PLANNED, utcnow()
        db.session.commit()
    except AlreadyImported:
        db.session.rollback()
        log.info("import %s: imported by another job first; this one wrote nothing", import_id)
    except SheetError as exc:
        db.session.rollback()
        report(import_id, state=FAILED, message=str(exc.message)[:500])
    except Exception as exc:
        db.session.rollback()
        log.exception("import %s failed", import_id)
        report(import_id, state=FAILED, message=str(_l("The import stopped with an error (%(e)s): nothing was "
                                                        "written. Try again, or split the file.",
                                                        e=type(exc).__name__))[:500])


def check_upload(upload: ImportFile, now: datetime | None = None) -> bool:
    """Give up an active job that has not reported for STALE_SECONDS (its process is gone); True when it
    was given up. The caller commits."""
    now = now or utcnow()
    if upload.state in ACTIVE and upload.updated_at and now - upload.updated_at > timedelta(seconds=STALE_SECONDS):
        upload.state = FAILED
        upload.message = str(_l("The job stopped without finishing: nothing was written. Try again."))
        return True
    return False


def recent_uploads(user: User, kind: str, limit: int = 10) -> list[ImportFile]:
    return list(db.session.scalars(select(ImportFile).where(ImportFile.created_by_id == user.id,
                                                            ImportFile.kind == kind)
                                   .order_by(ImportFile.id.desc()).limit(limit)))


def split_items(text: str) -> list[str]:
    return [p.strip() for p in SEPARATORS.split(text or "") if p.strip()]
