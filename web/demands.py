"""A demand's pages: the list in scope, one demand, posting, editing and cancelling it.

Every list and load goes through `matcher.access`, so an id outside the user's scope is a 404.
Views are thin: parse, call one `matcher.demands` operation, commit, redirect; a bad field
re-renders the form with the message next to it and status 400.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import or_, select
from sqlalchemy.orm import selectinload

from matcher import rules
from matcher.access import can_change, load_visible, user_area, visible
from matcher.db import db
from matcher.demands import cancel_demand, create_demand, update_demand
from matcher.errors import ValidationError
from matcher.models import (
    HELD,
    STANDING,
    Area,
    Assignment,
    Category,
    Demand,
    DemandOccurrence,
    DemandStatus,
    Priority,
    Resident,
    Role,
    Skill,
    Station,
)
from matcher.volunteers import volunteer_of

from .auth import roles_required
from .directory import paginate, search_term
from .inputs import int_arg, text_arg
from .volunteer import place_text

bp = Blueprint("demands", __name__)


@bp.route("/demands")
@login_required
def index():
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
    category = text_arg("category", 40)
    if category:
        stmt = stmt.join(Category).where(Category.code == category)
    page = paginate(stmt.order_by(Demand.starts_on.desc(), Demand.id.desc()))
    categories = db.session.scalars(select(Category).order_by(Category.id)).all()
    return render_template("demands/index.html", page=page, q=q, status=status, category=category,
                           categories=categories, statuses=list(DemandStatus))


@bp.route("/demands/<int:demand_id>")
@login_required
def view(demand_id: int):
    """One demand with its occurrences."""
    item = load_visible(Demand, demand_id, current_user)
    # Seeing a demand (an offer, a team's service) does not mean seeing the person it serves.
    resident_visible = item.resident_id is not None and db.session.scalar(
        visible(select(Resident.id).where(Resident.id == item.resident_id), Resident, current_user)) is not None
    place = volunteer_place(item) if current_user.role == Role.VOLUNTEER else None
    return render_template("demands/view.html", demand=item, can_change=can_change(current_user, item),
                           resident_visible=resident_visible, place=place)


def volunteer_place(demand: Demand) -> str:
    """Where a demand is, as the signed-in volunteer may know it: the exact address only while they
    hold one of its services (`HELD`: accepted, checked in), else the community (`place_text`)."""
    vol = volunteer_of(current_user)
    mine = db.session.scalars(select(Assignment).join(DemandOccurrence).where(
        DemandOccurrence.demand_id == demand.id, Assignment.volunteer_id == (vol.id if vol else -1),
        Assignment.status.in_(STANDING)).order_by(Assignment.id)).all()
    if not mine:
        return demand.community.name
    return place_text(next((a for a in mine if a.status in HELD), mine[0]))


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
def new():
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
            return redirect(url_for("demands.view", demand_id=item.id))
    return render_template("demands/form.html", errors=errors, values=values,
                           weekdays=request.form.getlist("weekdays"), **demand_form_choices(community)), 400 if errors else 200


@bp.route("/demands/<int:demand_id>/cancel", methods=["POST"])
@login_required
def cancel(demand_id: int):
    """Cancel a demand (its community's worker only); a stale form gives 409."""
    item = load_visible(Demand, demand_id, current_user)
    if not can_change(current_user, item):
        abort(403)
    version = int_arg(request.form, "version", minimum=0)
    cancel_demand(item, user=current_user, version=version)
    db.session.commit()
    flash(_("Demand cancelled."), "info")
    return redirect(url_for("demands.view", demand_id=item.id))


def demand_values(demand: Demand) -> dict[str, str]:
    """A demand's current values as the form shows them."""
    end = demand.start_minute + demand.duration_minutes
    return {
        "category": demand.category.code if demand.category else "", "title": demand.title,
        "resident": str(demand.resident_id or ""), "location_kind": demand.location_kind.value,
        "station": str(demand.station_id or ""), "lat": f"{demand.lat:.5f}", "lon": f"{demand.lon:.5f}",
        "address": demand.address, "date": demand.starts_on.isoformat(),
        "start": rules.format_minutes(demand.start_minute), "end": rules.format_minutes(min(end, 1440)),
        "recurring": "1" if demand.weekdays else "",
        "repeat_until": demand.repeat_until.isoformat() if demand.repeat_until else "",
        "people": str(demand.people), "min_people": str(demand.min_people), "priority": demand.priority.value,
        "gender": demand.gender.value if demand.gender else "", "notes": demand.notes,
        "version": str(demand.version),
    }


@bp.route("/demands/<int:demand_id>/edit", methods=["GET", "POST"])
@roles_required(Role.WORKER)
def edit(demand_id: int):
    """Edit a demand of the worker's community before it is served; a stale form gives 409."""
    demand = load_visible(Demand, demand_id, current_user)
    if not can_change(current_user, demand):
        abort(404)
    community = user_area(current_user)
    errors: dict[str, str] = {}
    if request.method == "POST":
        values = request.form.to_dict()
        data = dict(values)
        data["weekdays"] = request.form.getlist("weekdays")
        try:
            result = update_demand(demand, data, user=current_user, version=int_arg(request.form, "version", minimum=0))
        except ValidationError as exc:
            db.session.rollback()
            errors = exc.errors
        else:
            db.session.commit()
            flash(_("Demand saved."), "success")
            if result["notified"]:
                flash(_("The schedule of this week is published: the coordinators were told of the change."), "info")
            return redirect(url_for("demands.view", demand_id=demand.id))
        weekdays = request.form.getlist("weekdays")
    else:
        values = demand_values(demand)
        weekdays = [str(d) for d in demand.weekday_list]
    return render_template("demands/form.html", demand=demand, errors=errors, values=values,
                           weekdays=weekdays, **demand_form_choices(community)), 400 if errors else 200
