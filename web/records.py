"""Service records (Order No. 67): the volunteer's full record, their correction requests and
certificates; the organization side (corrections to decide, training and commendations to record);
the public verification page of a certificate.

Who gets what (`matcher.records`): a volunteer their own record (/me/...: 404 without a volunteer
profile, like the other /me pages); administrators, coordinators (volunteers living in their area)
and organization leaders (their approved members) the organization pages, where a volunteer or a
correction outside their scope is 404; a certificate page its volunteer and whoever reads that record;
`/verify/<code>` anyone, without signing in, showing only what the volunteer chose to show.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import segno
from flask import Blueprint, Response, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from matcher import records
from matcher.audit import record_audit
from matcher.clock import local_today
from matcher.db import db
from matcher.errors import AccessDenied, Conflict, ValidationError
from matcher.models import CorrectionState, RecordEntry, Role, Volunteer

from .auth import roles_required
from .errors import render_error
from .extensions import limiter
from .inputs import int_arg, text_arg
from .printouts import pdf_engine, pdf_response
from .volunteer import own_volunteer

bp = Blueprint("records", __name__)

ORGANIZATION_SIDE = (Role.ADMIN, Role.COORDINATOR, Role.ORG_LEADER)
STYLESHEET = Path(__file__).parent / "static" / "records.css"


def _form_data() -> dict:
    """The posted form with list fields (repeated names) as lists."""
    data: dict = {}
    for key in request.form:
        values = request.form.getlist(key)
        data[key] = values if len(values) > 1 else values[0]
    return data


def _no_store(response):
    response.headers["Cache-Control"] = "no-store"
    return response


# --- the volunteer's pages -----------------------------------------------------------------------


@bp.route("/me/record/full")
@login_required
def my_record():
    """The volunteer's full service record: services, training, commendations, and where to ask for a
    correction."""
    volunteer = own_volunteer()
    content = records.service_record(volunteer)
    open_for = {c.assignment_id for c in records.own_corrections(volunteer)
                if c.state == CorrectionState.OPEN and c.assignment_id}
    return render_template("records/my_record.html", volunteer=volunteer, content=content, own=True,
                           open_for=open_for)


@bp.route("/me/record/corrections")
@login_required
def my_corrections():
    """The volunteer's correction requests and the organizations' decisions."""
    volunteer = own_volunteer()
    return render_template("records/my_corrections.html", corrections=records.own_corrections(volunteer),
                           fields=records.CORRECTION_LABELS)


def _render_request(volunteer: Volunteer, values: dict, errors: dict | None = None, status: int = 200):
    content = records.service_record(volunteer)
    return render_template("records/request.html", content=content, values=values, errors=errors or {},
                           organizations=records.approved_organizations(volunteer),
                           fields=records.CORRECTION_LABELS), status


@bp.route("/me/record/corrections/new", methods=["GET", "POST"])
@login_required
def request_correction():
    """Ask the recording organization to correct the record (GET: the form, ?assignment= or ?entry= chosen)."""
    volunteer = own_volunteer()
    if request.method == "GET":
        values = {"field": "hours"}
        if (assignment := int_arg(request.args, "assignment")) is not None:
            values.update(field="hours", assignment=str(assignment))
        elif (entry := int_arg(request.args, "entry")) is not None:
            values.update(field="entry", entry=str(entry))
        return _render_request(volunteer, values)
    data = _form_data()
    try:
        records.request_correction(volunteer, data, user=current_user)
    except ValidationError as exc:
        db.session.rollback()
        return _render_request(volunteer, data, exc.errors, 400)
    db.session.commit()
    flash(_("Your request was sent to the organization that recorded it."), "success")
    return redirect(url_for("records.my_corrections"))


@bp.route("/me/certificates")
@login_required
def my_certificates():
    """The volunteer's certificates, with the link to make a new one."""
    volunteer = own_volunteer()
    return render_template("records/my_certificates.html", certificates=records.own_certificates(volunteer))


@bp.route("/me/certificates/new", methods=["GET", "POST"])
@login_required
def new_certificate():
    """Make a certificate of the record, choosing what it shows and the period."""
    volunteer = own_volunteer()
    values: dict = {"shown": ["name", "hours", "services", "organizations", "period"],
                    "end": local_today().isoformat()}
    errors: dict = {}
    if request.method == "POST":
        values = {"shown": request.form.getlist("shown"), "start": request.form.get("start", ""),
                  "end": request.form.get("end", "")}
        try:
            certificate = records.issue_certificate(volunteer, current_user, shown=values["shown"],
                                                    start=values["start"], end=values["end"])
        except ValidationError as exc:
            db.session.rollback()
            errors = exc.errors
        else:
            db.session.commit()
            flash(_("Certificate %(n)s was made.", n=certificate.number), "success")
            return redirect(url_for("records.certificate", certificate_id=certificate.id))
    return render_template("records/new_certificate.html", values=values, errors=errors,
                           showable=records.SHOWABLE_LABELS), 400 if errors else 200


# --- a certificate ---------------------------------------------------------------------------------


def verify_url(certificate) -> str:
    return url_for("records.verify", code=certificate.verify_code, _external=True)


def qr_svg(url: str) -> str:
    """The verification link as an inline SVG QR code (segno, from our own URL: the only markup marked safe)."""
    return segno.make(url, error="m").svg_inline(scale=3, title=_("Verification link"))


def _certificate_context(certificate) -> dict:
    shown = [s for s in records.SHOWABLE if s in set(certificate.shown or ())]
    url = verify_url(certificate)
    return dict(certificate=certificate, data=records.shown_part(certificate.content or {}, shown), shown=shown,
                verify=url, qr=qr_svg(url), labels=records.SHOWABLE_LABELS,
                own=certificate.volunteer.user_id == current_user.id)


@bp.route("/certificates/<int:certificate_id>")
@roles_required(*ORGANIZATION_SIDE, Role.VOLUNTEER)
def certificate(certificate_id: int):
    """A certificate: what it shows, its number, its verification link and QR code, the PDF."""
    found = records.load_certificate(certificate_id, current_user)
    return _no_store(Response(render_template("records/certificate.html", **_certificate_context(found))))


@bp.route("/certificates/<int:certificate_id>.pdf")
@roles_required(*ORGANIZATION_SIDE, Role.VOLUNTEER)
def certificate_pdf(certificate_id: int):
    """The certificate as a PDF (A4, Noto Sans CJK, its QR code drawn in, nothing fetched); audited."""
    found = records.load_certificate(certificate_id, current_user)
    weasyprint, problem = pdf_engine()
    if weasyprint is None:
        current_app.logger.warning("no PDF of the certificate: WeasyPrint cannot load (%s)", problem)
        return render_error(503, _("The PDF cannot be made on this server: its PDF renderer (WeasyPrint with "
                                   "the Pango library) is not installed. The certificate's page still works."))
    from weasyprint.text.fonts import FontConfiguration

    html = render_template("records/certificate_print.html", **_certificate_context(found))
    fonts = FontConfiguration()
    refuse = weasyprint.urls.URLFetcher(allowed_protocols=())  # every URL refused: nothing fetched at run time
    css = STYLESHEET.read_text(encoding="utf-8")
    data = weasyprint.HTML(string=html, base_url=None, url_fetcher=refuse).write_pdf(
        stylesheets=[weasyprint.CSS(string=css, font_config=fonts, url_fetcher=refuse)], font_config=fonts)
    record_audit(current_user, "print_certificate", found, number=found.number)
    db.session.commit()
    return _no_store(pdf_response(data, found.number + ".pdf", "linli-certificate.pdf"))


@bp.route("/certificates/<int:certificate_id>/revoke", methods=["POST"])
@roles_required(*ORGANIZATION_SIDE, Role.VOLUNTEER)
def revoke(certificate_id: int):
    """Revoke a certificate (its volunteer or an administrator): the verification page says so."""
    found = records.load_certificate(certificate_id, current_user)
    try:
        records.revoke_certificate(found, user=current_user)
    except Conflict as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("records.certificate", certificate_id=found.id))
    db.session.commit()
    flash(_("Certificate %(n)s was revoked.", n=found.number), "success")
    return redirect(url_for("records.certificate", certificate_id=found.id))


@bp.route("/verify/<code>")
@limiter.limit(lambda: current_app.config.get("RATELIMIT_VERIFY", "60 per minute"))
def verify(code: str):
    """Public: whether a certificate is genuine, with only what its volunteer chose to show, and whether
    the record says otherwise now (a correction since)."""
    check = records.verify_certificate(code)
    return _no_store(Response(render_template("records/verify.html", check=check, labels=records.SHOWABLE_LABELS)))


# --- the organization side --------------------------------------------------------------------------


@bp.route("/records")
@roles_required(*ORGANIZATION_SIDE)
def index():
    """Corrections to decide (open first), and the volunteers whose records the user keeps (?q= a name)."""
    q = text_arg("q", 40)
    stmt = select(Volunteer).where(records.record_volunteers(current_user)).order_by(Volunteer.real_name,
                                                                                    Volunteer.id)
    if q:
        stmt = stmt.where(Volunteer.real_name.contains(q, autoescape=True))
    people = list(db.session.scalars(stmt.limit(50))) if q or current_user.role == Role.ORG_LEADER else []
    return render_template("records/index.html", corrections=records.corrections_to_decide(current_user),
                           people=people, q=q)


def _render_volunteer(volunteer: Volunteer, values: dict | None = None, errors: dict | None = None,
                      status: int = 200):
    return render_template(
        "records/volunteer.html", volunteer=volunteer, content=records.service_record(volunteer), own=False,
        organizations=records.approved_organizations(volunteer), values=values or {"kind": "training"},
        errors=errors or {}, today=local_today().isoformat()), status


@bp.route("/records/volunteers/<int:volunteer_id>")
@roles_required(*ORGANIZATION_SIDE)
def volunteer_record(volunteer_id: int):
    """A volunteer's full record, with the form to add training or a commendation."""
    return _render_volunteer(records.load_record_volunteer(volunteer_id, current_user))


@bp.route("/records/volunteers/<int:volunteer_id>/entries", methods=["POST"])
@roles_required(*ORGANIZATION_SIDE)
def add_entry(volunteer_id: int):
    """Record training or a commendation on a volunteer's record."""
    volunteer = records.load_record_volunteer(volunteer_id, current_user)
    data = _form_data()
    try:
        records.add_entry(volunteer, data, user=current_user)
    except ValidationError as exc:
        db.session.rollback()
        return _render_volunteer(volunteer, data, exc.errors, 400)
    db.session.commit()
    flash(_("Recorded."), "success")
    return redirect(url_for("records.volunteer_record", volunteer_id=volunteer.id))


def _render_correction(correction, values: dict | None = None, errors: dict | None = None, status: int = 200):
    entry = db.session.get(RecordEntry, correction.entry_id) if correction.entry_id else None
    return render_template("records/correction.html", c=correction, entry=entry, values=values or {},
                           errors=errors or {}, fields=records.CORRECTION_LABELS), status


@bp.route("/records/corrections/<int:correction_id>")
@roles_required(*ORGANIZATION_SIDE)
def correction(correction_id: int):
    """One correction request: what the volunteer asks and why, what the record says, the decision form."""
    return _render_correction(records.load_correction(correction_id, current_user))


@bp.route("/records/corrections/<int:correction_id>/decide", methods=["POST"])
@roles_required(*ORGANIZATION_SIDE)
def decide(correction_id: int):
    """Accept or reject a correction (a reason is needed to reject it)."""
    found = records.load_correction(correction_id, current_user)
    data = _form_data()
    decision = data.get("decision")
    if decision not in ("accept", "reject"):
        return _render_correction(found, data, {"decision": _("Choose to accept or reject the correction.")}, 400)
    try:
        records.decide_correction(found, decision == "accept", data.get("reason", ""), user=current_user)
    except ValidationError as exc:
        db.session.rollback()
        return _render_correction(found, data, exc.errors, 400)
    except (Conflict, AccessDenied) as exc:
        db.session.rollback()
        return _render_correction(found, data, {"decision": exc.message}, exc.status)
    db.session.commit()
    flash(_("The correction was accepted.") if decision == "accept" else _("The correction was rejected."),
          "success")
    return redirect(url_for("records.index"))


@bp.app_template_global("record_place")
def record_place(place: dict | None) -> str:
    """A record's place as text: a station or the community; a resident's home only as such."""
    if not place:
        return ""
    if place.get("kind") == "home":
        return _("A resident's home in %(c)s", c=place.get("name", ""))
    return place.get("name", "")


@bp.app_template_global("record_date")
def record_date(value) -> str:
    return value.strftime("%Y-%m-%d") if isinstance(value, date) else str(value or "")

