"""Lists and records within the user's scope: demands, volunteers, organizations, residents.

Every list and load goes through `matcher.access` (visible / load_visible), so changing an
id in the URL never reveals an object outside the user's scope.
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_fresh, login_required
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from matcher.access import load_visible, user_area, visible
from matcher.audit import record_audit
from matcher.db import db
from matcher.errors import ValidationError
from matcher.models import (
    Organization,
    OrgType,
    Registration,
    Resident,
    Role,
    Skill,
    Volunteer,
)
from matcher.organizations import REGISTRATION_LABELS
from matcher.residents import create_resident

from .auth import roles_required
from .extensions import login_manager
from .inputs import page_arg, text_arg

bp = Blueprint("directory", __name__)


def paginate(stmt):
    """One page of results (page from ?page=, see `inputs.page_arg`; size from config)."""
    return db.paginate(stmt, page=page_arg(), per_page=current_app.config["PAGE_SIZE"], max_per_page=100,
                       error_out=False)


def search_term() -> str:
    """The searched words (?q=): at most 60 characters, without control characters."""
    return text_arg("q")


# --- demands -------------------------------------------------------------------------------


# --- volunteers -----------------------------------------------------------------------------


@bp.route("/volunteers")
@login_required
def volunteers():
    """Volunteers in scope with search by name; phones are masked."""
    stmt = visible(select(Volunteer), Volunteer, current_user).options(
        selectinload(Volunteer.skills), selectinload(Volunteer.home_area)
    )
    q = search_term()
    if q:
        stmt = stmt.where(Volunteer.real_name.contains(q, autoescape=True))
    skill = text_arg("skill", max_length=40) or None
    if skill:
        stmt = stmt.where(Volunteer.skills.any(Skill.code == skill))
    page = paginate(stmt.order_by(Volunteer.id))
    skills = db.session.scalars(select(Skill).order_by(Skill.code)).all()
    return render_template("directory/volunteers.html", page=page, q=q, skill=skill, skills=skills)


@bp.route("/volunteers/<int:volunteer_id>")
@login_required
def volunteer(volunteer_id: int):
    """A volunteer's profile (contact details only for the volunteer themself)."""
    item = load_visible(Volunteer, volunteer_id, current_user)
    return render_template("directory/volunteer.html", volunteer=item, own=item.user_id == current_user.id)


# --- organizations --------------------------------------------------------------------------


@bp.route("/organizations")
@login_required
def organizations():
    """Organizations working in the user's area, searchable by name and type."""
    stmt = visible(select(Organization), Organization, current_user).options(selectinload(Organization.home_area))
    q = search_term()
    if q:
        stmt = stmt.where(Organization.name.contains(q, autoescape=True))
    org_type = request.args.get("type")
    if org_type in {t.value for t in OrgType}:
        stmt = stmt.where(Organization.type == org_type)
    # ?registration=registered|filed|unregistered (登记 / 备案 / neither); anything else: every organization.
    registration = request.args.get("registration")
    if registration in {r.value for r in Registration}:
        stmt = stmt.where(Organization.registration == registration)
    page = paginate(stmt.order_by(Organization.name))
    return render_template("directory/organizations.html", page=page, q=q, org_type=org_type, types=list(OrgType),
                           registration=registration, registrations=REGISTRATION_LABELS)


@bp.route("/organizations/<int:organization_id>")
@login_required
def organization(organization_id: int):
    """An organization with its service areas, categories and (for its leader) members."""
    item = load_visible(Organization, organization_id, current_user)
    show_members = current_user.role == Role.ADMIN or (
        current_user.role == Role.ORG_LEADER and current_user.organization_id == item.id)
    return render_template("directory/organization.html", org=item, show_members=show_members,
                           registrations=REGISTRATION_LABELS)


# --- residents ------------------------------------------------------------------------------


@bp.route("/residents")
@roles_required(Role.ADMIN, Role.COORDINATOR, Role.WORKER)
def residents():
    """Residents of the user's community (or area), searchable by name; phones masked."""
    stmt = visible(select(Resident), Resident, current_user).options(selectinload(Resident.community))
    q = search_term()
    if q:
        stmt = stmt.where(Resident.name.contains(q, autoescape=True))
    page = paginate(stmt.order_by(Resident.name, Resident.id))
    return render_template("directory/residents.html", page=page, q=q)


def may_reveal(resident: Resident) -> bool:
    """Whether the current user may see the resident's phone and address: only the worker of the
    resident's community (the reliability checklist: masked unless the viewer needs them). An
    administrator or a coordinator runs the service and sees the record, masked."""
    return current_user.role == Role.WORKER and resident.community_id == current_user.area_id


@bp.route("/residents/<int:resident_id>")
@login_required
def resident(resident_id: int):
    """A resident's record, phone masked."""
    item = load_visible(Resident, resident_id, current_user)
    return render_template("directory/resident.html", resident=item, reveal=False, can_reveal=may_reveal(item))


@bp.route("/residents/<int:resident_id>/reveal", methods=["GET", "POST"])
@login_required
def reveal_phone(resident_id: int):
    """Show the phone to the community's worker (fresh login; the reveal is audited).

    A GET (e.g. coming back from signing in again) only leads back to the record: revealing is a POST.
    """
    if request.method == "GET":
        return redirect(url_for("directory.resident", resident_id=resident_id))
    item = load_visible(Resident, resident_id, current_user)
    if not may_reveal(item):
        abort(403)
    if not login_fresh():
        return login_manager.needs_refresh()
    record_audit(current_user, "reveal_phone", item)
    db.session.commit()
    return render_template("directory/resident.html", resident=item, reveal=True, can_reveal=True)


@bp.route("/residents/new", methods=["GET", "POST"])
@roles_required(Role.WORKER)
def new_resident():
    """Register a resident of the worker's community, with consent."""
    community = user_area(current_user)
    errors: dict[str, str] = {}
    values = request.form.to_dict() if request.method == "POST" else {
        "lat": f"{community.lat:.5f}", "lon": f"{community.lon:.5f}"}
    if request.method == "POST":
        try:
            item = create_resident(values, community=community, user=current_user)
        except ValidationError as exc:
            db.session.rollback()
            errors = exc.errors
        else:
            db.session.commit()
            flash(_("Resident registered."), "success")
            return redirect(url_for("directory.resident", resident_id=item.id))
    return render_template("directory/resident_form.html", errors=errors, values=values,
                           community=community), 400 if errors else 200
