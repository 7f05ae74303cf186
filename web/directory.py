"""Lists and records within the user's scope: demands, volunteers, organizations, residents.

Every list and load goes through `matcher.access` (visible / load_visible), so changing an
id in the URL never reveals an object outside the user's scope.
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_fresh, login_required
from sqlalchemy import or_, select
from sqlalchemy.orm import selectinload

from matcher.access import can_change, load_visible, user_area, visible
from matcher.community import cancel_demand
from matcher.db import db
from matcher.errors import ValidationError
from matcher.models import (
    Area,
    Category,
    Demand,
    DemandStatus,
    Organization,
    OrgType,
    Priority,
    Resident,
    Role,
    Skill,
    Station,
    Volunteer,
)
from matcher.operations import create_demand, create_resident, record_audit

from .auth import roles_required
from .extensions import login_manager

bp = Blueprint("directory", __name__)


def paginate(stmt):
    """One page of results (page from ?page=, size from config)."""
    return db.paginate(stmt, per_page=current_app.config["PAGE_SIZE"], max_per_page=100, error_out=False)


def search_term() -> str:
    return (request.args.get("q") or "").strip()[:60]


# --- demands -------------------------------------------------------------------------------


@bp.route("/demands")
@login_required
def demands():
    """Demands in scope, newest first, with search by title and filters by status and category."""
    stmt = visible(select(Demand), Demand, current_user).options(
        selectinload(Demand.category), selectinload(Demand.community)
    )
    q = search_term()
    if q:
        stmt = stmt.where(Demand.title.contains(q))
    status = request.args.get("status")
    if status in {s.value for s in DemandStatus}:
        stmt = stmt.where(Demand.status == status)
    category = request.args.get("category")
    if category:
        stmt = stmt.join(Category).where(Category.code == category)
    page = paginate(stmt.order_by(Demand.starts_on.desc(), Demand.id.desc()))
    categories = db.session.scalars(select(Category).order_by(Category.id)).all()
    return render_template("directory/demands.html", page=page, q=q, status=status, category=category,
                           categories=categories, statuses=list(DemandStatus))


@bp.route("/demands/<int:demand_id>")
@login_required
def demand(demand_id: int):
    """One demand with its occurrences."""
    item = load_visible(Demand, demand_id, current_user)
    # Seeing a demand (an offer, a team's service) does not mean seeing the person it serves.
    resident_visible = item.resident_id is not None and db.session.scalar(
        visible(select(Resident.id).where(Resident.id == item.resident_id), Resident, current_user)) is not None
    return render_template("directory/demand.html", demand=item, can_change=can_change(current_user, item),
                           resident_visible=resident_visible)


def demand_form_choices(community: Area) -> dict:
    """What the demand form offers for a community: categories, its residents, nearby stations, skills."""
    return {
        "community": community,
        "categories": db.session.scalars(select(Category).where(Category.active).order_by(Category.id)).all(),
        "residents": db.session.scalars(select(Resident).where(Resident.community_id == community.id)
                                        .order_by(Resident.name)).all(),
        "stations": db.session.scalars(select(Station).where(
            or_(Station.area_id == community.id, Station.area_id == community.parent_id))
            .order_by((Station.area_id == community.id).desc(), Station.name)).all(),
        "skills": db.session.scalars(select(Skill).order_by(Skill.code)).all(),
        "priorities": list(Priority),
    }


@bp.route("/demands/new", methods=["GET", "POST"])
@roles_required(Role.WORKER)
def new_demand():
    """Post a demand for the worker's community."""
    community = user_area(current_user)
    errors: dict[str, str] = {}
    values = request.form.to_dict() if request.method == "POST" else {"location_kind": "station", "priority": "normal"}
    if request.method == "POST":
        data = dict(values)
        data["weekdays"] = request.form.getlist("weekdays")
        if not data.get("skills_override"):
            data.pop("skills", None)
            data.pop("skills_any", None)
        try:
            item = create_demand(data, community=community, user=current_user)
        except ValidationError as exc:
            db.session.rollback()
            errors = exc.errors
        else:
            db.session.commit()
            flash(_("Demand posted: %(n)d occurrence(s) created.", n=len(item.occurrences)), "success")
            return redirect(url_for("directory.demand", demand_id=item.id))
    return render_template("directory/demand_form.html", errors=errors, values=values,
                           weekdays=request.form.getlist("weekdays"), **demand_form_choices(community)    ), 400 if errors else 200


@bp.route("/demands/<int:demand_id>/cancel", methods=["POST"])
@login_required
def cancel(demand_id: int):
    """Cancel a demand (its community's worker only); a stale form gives 409."""
    item = load_visible(Demand, demand_id, current_user)
    if not can_change(current_user, item):
        abort(403)
    version = request.form.get("version", type=int)
    cancel_demand(item, user=current_user, version=version)
    db.session.commit()
    flash(_("Demand cancelled."), "info")
    return redirect(url_for("directory.demand", demand_id=item.id))


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
        stmt = stmt.where(Volunteer.real_name.contains(q))
    skill = request.args.get("skill")
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
        stmt = stmt.where(Organization.name.contains(q))
    org_type = request.args.get("type")
    if org_type in {t.value for t in OrgType}:
        stmt = stmt.where(Organization.type == org_type)
    page = paginate(stmt.order_by(Organization.name))
    return render_template("directory/organizations.html", page=page, q=q, org_type=org_type, types=list(OrgType))


@bp.route("/organizations/<int:organization_id>")
@login_required
def organization(organization_id: int):
    """An organization with its service areas, categories and (for its leader) members."""
    item = load_visible(Organization, organization_id, current_user)
    show_members = current_user.role == Role.ADMIN or (
        current_user.role == Role.ORG_LEADER and current_user.organization_id == item.id)
    return render_template("directory/organization.html", org=item, show_members=show_members)


# --- residents ------------------------------------------------------------------------------


@bp.route("/residents")
@roles_required(Role.ADMIN, Role.COORDINATOR, Role.WORKER)
def residents():
    """Residents of the user's community (or area), searchable by name; phones masked."""
    stmt = visible(select(Resident), Resident, current_user).options(selectinload(Resident.community))
    q = search_term()
    if q:
        stmt = stmt.where(Resident.name.contains(q))
    page = paginate(stmt.order_by(Resident.name, Resident.id))
    return render_template("directory/residents.html", page=page, q=q)


@bp.route("/residents/<int:resident_id>")
@login_required
def resident(resident_id: int):
    """A resident's record, phone masked."""
    item = load_visible(Resident, resident_id, current_user)
    return render_template("directory/resident.html", resident=item, reveal=False,
                           can_reveal=can_change(current_user, item))


@bp.route("/residents/<int:resident_id>/reveal", methods=["GET", "POST"])
@login_required
def reveal_phone(resident_id: int):
    """Show the phone to the community's worker (fresh login; the reveal is audited).

    A GET (e.g. coming back from signing in again) only leads back to the record: revealing is a POST.
    """
    if request.method == "GET":
        return redirect(url_for("directory.resident", resident_id=resident_id))
    item = load_visible(Resident, resident_id, current_user)
    if not can_change(current_user, item):
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
