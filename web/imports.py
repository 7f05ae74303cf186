"""Spreadsheets in and out: the imports (volunteer rosters, organizations, residents, demands), each a
template, an upload, a preview and an import (all or nothing), and the roster's export. The reading and
the rules are `matcher.spreadsheets`, `matcher.imports` and each kind's module; the uploaded file is
kept (`ImportFile`) so the preview and the import read the same bytes, and whoever imported it can see
again what it did. A large file is judged and imported by a background job (`web/jobs.py`); its
preview shows the job's progress, polled from `/imports/<id>.json`."""

from __future__ import annotations

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select

from matcher import imports, rosters
from matcher.db import db
from matcher.errors import NotFound
from matcher.imports import Kind
from matcher.models import ImportFile, Role
from matcher.spreadsheets import MAX_BYTES, SheetError, write_csv, write_xlsx

from .auth import roles_required
from .jobs import enqueue_import

bp = Blueprint("imports", __name__)

IMPORTERS = (Role.ADMIN, Role.COORDINATOR, Role.ORG_LEADER)  # the roster (and its export)
ALL_IMPORTERS = (Role.ADMIN, Role.COORDINATOR, Role.WORKER, Role.ORG_LEADER)  # some kind of import each
STATE_LABELS = {"queued": _l("Waiting to start"), "planning": _l("Checking the rows"),
                "planned": _l("Checked"), "importing": _l("Importing"), "done": _l("Imported"),
                "failed": _l("Failed")}
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


def _kind(name: str) -> Kind:
    kind = imports.kinds()[name]
    if current_user.role not in kind.roles:
        abort(403)
    return kind


def _own_upload(import_id: int) -> ImportFile:
    """One's own upload of a kind one may import (anything else: 404)."""
    upload = db.session.get(ImportFile, import_id)
    kind = imports.kinds().get(upload.kind) if upload is not None else None
    if upload is None or upload.created_by_id != current_user.id or kind is None \
            or current_user.role not in kind.roles:
        raise NotFound(_("No such upload."))
    return upload


@bp.route("/imports")
@roles_required(*ALL_IMPORTERS)
def index():
    """The kinds of spreadsheet one may import, each with its template and one's recent uploads."""
    kinds = imports.kinds_for(current_user)
    recent = db.session.scalars(select(ImportFile).where(ImportFile.created_by_id == current_user.id)
                                .order_by(ImportFile.id.desc()).limit(10)).all()
    return render_template("imports/index.html", kinds=kinds, recent=recent, labels=kind_labels())


def kind_labels() -> dict[str, str]:
    return {name: str(k.title) for name, k in imports.kinds().items()}


@bp.route("/imports/volunteers", methods=["GET", "POST"])
@roles_required(*IMPORTERS)
def volunteers():
    """The roster import: the template, the columns explained, an upload form and one's recent uploads."""
    return _upload_page("volunteers")


@bp.route("/imports/organizations", methods=["GET", "POST"], defaults={"kind": "organizations"})
@bp.route("/imports/residents", methods=["GET", "POST"], defaults={"kind": "residents"})
@bp.route("/imports/demands", methods=["GET", "POST"], defaults={"kind": "demands"})
@roles_required(*ALL_IMPORTERS)
def upload(kind: str):
    """An import of organizations, residents or demands: the template, the columns, an upload form."""
    return _upload_page(kind)


def _upload_page(name: str):
    kind = _kind(name)
    error = ""
    if request.method == "POST":
        file = request.files.get("file")
        data = file.stream.read(MAX_BYTES + 1) if file is not None and file.filename else b""
        try:
            item = imports.upload_file(kind, file.filename if file is not None else "", data, current_user)
        except SheetError as exc:
            db.session.rollback()
            error = str(exc.message)
        else:
            db.session.commit()
            if item.state == imports.QUEUED:
                _start_job(item)
            return redirect(url_for("imports.preview", import_id=item.id))
    page = "imports/volunteers.html" if kind.name == "volunteers" else "imports/upload.html"
    return render_template(page, kind=kind, columns=kind.columns, example=kind.example_values(),
                           recent=imports.recent_uploads(current_user, kind.name), error=error,
                           template_url=_template_url), 400 if error else 200


def _template_url(kind: Kind, fmt: str) -> str:
    if kind.name == "volunteers":
        return url_for("imports.template", fmt=fmt)
    return url_for("imports.kind_template", kind=kind.name, fmt=fmt)


def _start_job(item: ImportFile) -> None:
    """Start the upload's job (committed first); a job that cannot start leaves the upload failed."""
    try:
        enqueue_import(item)
    except Exception:  # noqa: BLE001 (no thread, no Redis: say so on the page rather than wait forever)
        db.session.rollback()
        item = db.session.get(ImportFile, item.id)
        item.state, item.message = imports.FAILED, _("The import could not be started: try again later.")
        db.session.commit()


@bp.route("/imports/volunteers/template.<any(xlsx, csv):fmt>")
@roles_required(*IMPORTERS)
def template(fmt: str):
    """The roster template: Chinese column titles and one example row."""
    return _template(_kind("volunteers"), fmt)


@bp.route("/imports/organizations/template.<any(xlsx, csv):fmt>", defaults={"kind": "organizations"})
@bp.route("/imports/residents/template.<any(xlsx, csv):fmt>", defaults={"kind": "residents"})
@bp.route("/imports/demands/template.<any(xlsx, csv):fmt>", defaults={"kind": "demands"})
@roles_required(*ALL_IMPORTERS)
def kind_template(kind: str, fmt: str):
    """A template: Chinese column titles and one example row."""
    return _template(_kind(kind), fmt)


def _template(kind: Kind, fmt: str) -> Response:
    columns, rows = kind.template_rows()
    data = write_xlsx([(kind.sheet, columns, rows)]) if fmt == "xlsx" else write_csv(columns, rows)
    return download(data, f"{kind.sheet}模板.{fmt}", fmt)


def _live_plan(item: ImportFile):
    try:
        return imports.plan_upload(item, current_user).summary(), ""
    except SheetError as exc:
        return None, str(exc.message)


def _render_preview(item: ImportFile, plan, error: str, status: int = 200):
    kind = imports.kinds()[item.kind]
    active = item.state in imports.ACTIVE
    return render_template("imports/preview.html", upload=item, kind=kind, plan=plan, error=error, active=active,
                           state_label=STATE_LABELS.get(item.state or "", ""),
                           back=url_for("imports.volunteers") if kind.name == "volunteers"
                           else url_for("imports.upload", kind=kind.name)), status


@bp.route("/imports/<int:import_id>")
@roles_required(*ALL_IMPORTERS)
def preview(import_id: int):
    """What importing the upload would do, row by row, and every problem with its row and column; for a
    large file, the job's progress until its plan (or its import) is done."""
    item = _own_upload(import_id)
    if imports.check_upload(item):
        db.session.commit()
    if item.applied_at or item.state is not None:
        return _render_preview(item, item.plan, item.message if item.state == imports.FAILED else "")
    plan, error = _live_plan(item)
    return _render_preview(item, plan, error)


@bp.route("/imports/<int:import_id>.json")
@roles_required(*ALL_IMPORTERS)
def status(import_id: int):
    """The upload's job state for the progress bar (polled without reloading)."""
    item = _own_upload(import_id)
    if imports.check_upload(item):
        db.session.commit()
    return {"id": item.id, "state": item.state or "", "active": item.state in imports.ACTIVE,
            "label": str(STATE_LABELS.get(item.state or "", "")), "rows_done": item.rows_done,
            "rows_total": item.rows_total, "message": item.message}


@bp.route("/imports/<int:import_id>/apply", methods=["POST"])
@roles_required(*ALL_IMPORTERS)
def apply(import_id: int):
    """Import the upload: every row, or nothing when any row has a problem (a large file: by its job)."""
    item = _own_upload(import_id)
    item = imports.lock_upload(item.id)  # a second click waits for the first, then finds it imported
    if item.applied_at:
        flash(_("This file was imported already."), "info")
        return redirect(url_for("imports.preview", import_id=item.id))
    if item.state is not None:
        if not imports.queue_apply(item):
            error = "" if item.plan else _("The file is not ready to import yet.")
            return _render_preview(item, item.plan, error, 400 if item.plan else 409)
        db.session.commit()
        _start_job(item)
        return redirect(url_for("imports.preview", import_id=item.id))
    try:
        plan = imports.apply_upload(item, current_user)
    except SheetError as exc:
        db.session.rollback()
        return _render_preview(item, None, str(exc.message), 400)
    except imports.AlreadyImported:
        db.session.rollback()
        flash(_("This file was imported already."), "info")
        return redirect(url_for("imports.preview", import_id=import_id))
    if not plan.ok:
        db.session.rollback()
        return _render_preview(item, plan.summary(), "", 400)
    db.session.commit()
    counts = plan.counts
    flash(_("Imported: %(c)d added, %(u)d updated, %(s)d unchanged.", c=counts["create"], u=counts["update"],
            s=counts["same"]), "success")
    return redirect(url_for("imports.preview", import_id=item.id))


@bp.route("/volunteers/export.<any(xlsx, csv):fmt>", methods=["GET", "POST"])
@roles_required(*IMPORTERS)
def export_volunteers(fmt: str):
    """The volunteers one may see (a leader: the organization's members) with hours and stars, phones
    masked; audited. Full phones only through `exports.phone_reveal` (a volunteer's phone: nobody's
    today, so a reveal is refused)."""
    from .exports import phone_reveal

    reveal = phone_reveal("volunteers")
    if reveal.page is not None:
        return reveal.page
    rows = rosters.roster_rows(current_user)
    reveal.audit("export_roster", current_user, rows=len(rows), format=fmt)
    db.session.commit()
    columns = list(rosters.EXPORT_COLUMNS)
    data = write_xlsx([("志愿者名册", columns, rows)]) if fmt == "xlsx" else write_csv(columns, rows)
    return download(data, f"志愿者名册.{fmt}", fmt)
