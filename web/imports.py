"""Spreadsheets in and out: the volunteer roster's template, upload, preview and import (all or
nothing), and the roster's export. The reading and the rules are `matcher.spreadsheets` and
`matcher.rosters`; the uploaded file is kept (`ImportFile`) so the preview and the import read the same
bytes, and whoever imported it can see again what it did."""

from __future__ import annotations

import hashlib

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from matcher import rosters
from matcher.audit import record_audit
from matcher.db import db
from matcher.errors import NotFound
from matcher.models import ImportFile, Role, utcnow
from matcher.spreadsheets import MAX_BYTES, SheetError, read_sheet, write_csv, write_xlsx

from .auth import roles_required

bp = Blueprint("imports", __name__)

IMPORTERS = (Role.ADMIN, Role.COORDINATOR, Role.ORG_LEADER)
SHOWN_ROWS = 200  # planned rows listed on the preview (the counts cover them all)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def download(data: bytes, filename: str, fmt: str) -> Response:
    """A spreadsheet as an attachment, with its (Chinese) file name."""
    mimetype = XLSX if fmt == "xlsx" else "text/csv; charset=utf-8"
    response = Response(data, mimetype=mimetype)
    # RFC 6266 with a UTF-8 name (Chinese file names) and an ASCII fallback.
    from urllib.parse import quote

    response.headers["Content-Disposition"] = (f"attachment; filename=linli.{fmt}; "
                                               f"filename*=UTF-8''{quote(filename)}")
    return response


def _own_upload(import_id: int) -> ImportFile:
    upload = db.session.get(ImportFile, import_id)
    if upload is None or upload.created_by_id != current_user.id or upload.kind != "volunteers":
        raise NotFound(_("No such upload."))
    return upload


@bp.route("/imports/volunteers", methods=["GET", "POST"])
@roles_required(*IMPORTERS)
def volunteers():
    """The roster import: the template, the columns explained, an upload form and one's recent uploads."""
    error = ""
    if request.method == "POST":
        file = request.files.get("file")
        data = file.stream.read(MAX_BYTES + 1) if file is not None and file.filename else b""
        if not data:
            error = _("Choose a spreadsheet (XLSX or CSV) to upload.")
        elif len(data) > MAX_BYTES:
            error = _("The file is larger than %(n)d MB: split it into smaller files.", n=MAX_BYTES // 2**20)
        else:
            try:
                read_sheet(file.filename, data)
            except SheetError as exc:
                error = str(exc.message)
        if not error:
            upload = ImportFile(kind="volunteers", filename=(file.filename or "")[:200], content=data,
                                sha256=hashlib.sha256(data).hexdigest(), created_by_id=current_user.id)
            db.session.add(upload)
            db.session.flush()
            record_audit(current_user, "upload_roster", upload, size=len(data))
            db.session.commit()
            return redirect(url_for("imports.preview", import_id=upload.id))
    recent = db.session.scalars(select(ImportFile).where(ImportFile.created_by_id == current_user.id,
                                                         ImportFile.kind == "volunteers")
                                .order_by(ImportFile.id.desc()).limit(10)).all()
    return render_template("imports/volunteers.html", columns=rosters.COLUMNS, example=rosters.EXAMPLE,
                           recent=recent, error=error), 400 if error else 200


@bp.route("/imports/volunteers/template.<any(xlsx, csv):fmt>")
@roles_required(*IMPORTERS)
def template(fmt: str):
    """The roster template: Chinese column titles and one example row."""
    columns, rows = rosters.template_rows()
    data = write_xlsx([("志愿者名册", columns, rows)]) if fmt == "xlsx" else write_csv(columns, rows)
    return download(data, f"志愿者名册模板.{fmt}", fmt)


def _plan(upload: ImportFile):
    try:
        return rosters.plan_roster(read_sheet(upload.filename, upload.content), current_user), ""
    except SheetError as exc:
        return None, str(exc.message)


@bp.route("/imports/<int:import_id>")
@roles_required(*IMPORTERS)
def preview(import_id: int):
    """What importing the upload would do, row by row, and every problem with its row and column."""
    upload = _own_upload(import_id)
    plan, error = (None, "") if upload.applied_at else _plan(upload)
    return render_template("imports/preview.html", upload=upload, plan=plan, error=error, shown=SHOWN_ROWS)


@bp.route("/imports/<int:import_id>/apply", methods=["POST"])
@roles_required(*IMPORTERS)
def apply(import_id: int):
    """Import the upload: every row, or nothing when any row has a problem."""
    upload = _own_upload(import_id)
    if upload.applied_at:
        flash(_("This file was imported already."), "info")
        return redirect(url_for("imports.preview", import_id=upload.id))
    try:
        plan = rosters.apply_roster(read_sheet(upload.filename, upload.content), current_user,
                                    filename=upload.filename)
    except SheetError as exc:
        return render_template("imports/preview.html", upload=upload, plan=None, error=str(exc.message),
                               shown=SHOWN_ROWS), 400
    if not plan.ok:
        db.session.rollback()
        return render_template("imports/preview.html", upload=upload, plan=plan, error="", shown=SHOWN_ROWS), 400
    upload.applied_at = utcnow()
    upload.result = plan.counts
    db.session.commit()
    counts = plan.counts
    flash(_("Imported: %(c)d added, %(u)d updated, %(s)d unchanged.", c=counts["create"], u=counts["update"],
            s=counts["same"]), "success")
    return redirect(url_for("imports.preview", import_id=upload.id))


@bp.route("/volunteers/export.<any(xlsx, csv):fmt>")
@roles_required(*IMPORTERS)
def export_volunteers(fmt: str):
    """The volunteers one may see (a leader: the organization's members) with hours and stars, phones
    masked; audited."""
    rows = rosters.roster_rows(current_user)
    record_audit(current_user, "export_roster", current_user, rows=len(rows), format=fmt)
    db.session.commit()
    columns = list(rosters.EXPORT_COLUMNS)
    data = write_xlsx([("志愿者名册", columns, rows)]) if fmt == "xlsx" else write_csv(columns, rows)
    return download(data, f"志愿者名册.{fmt}", fmt)
