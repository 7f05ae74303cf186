"""A demand's pages: the list in scope, one demand, posting, editing and cancelling it, and the
review (审单) where an area asks for one: the queue, approving or returning, the area's setting.

Every list and load goes through `matcher.access`, so an id outside the user's scope is a 404.
Views are thin: parse, call one `matcher.demands` operation, commit, redirect; a bad field
re-renders the form with the message next to it and status 400.
"""

from __future__ import annotations

import math
from datetime import timedelta

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from sqlalchemy import case, or_, select
from sqlalchemy.orm import selectinload

from matcher import rules
from matcher.access import can_change, load_visible, user_area, visible
from matcher.clock import local_now, local_today
from matcher.db import db
from matcher.demands import (
    approve_demand,
    approve_demands,
    can_review,
    cancel_demand,
    create_demand,
    return_demand,
    review_areas,
    reviewing_area,
    set_area_review,
    update_demand,
)
from matcher.errors import NotFound, ValidationError
from matcher.fields import parse_int
from matcher.models import (
    CLOSED,
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
from matcher.models._types import ReviewState
from matcher.settings import demand_horizon_days
from matcher.volunteers import volunteer_of

from .auth import roles_required
from .converters import MAX_ID
from .directory import paginate, search_term
from .inputs import int_arg, text_arg
from .mapview import build_place_map
from .volunteer import place_text

bp = Blueprint("demands", __name__)

# The review states as the pages name them.
REVIEW_LABELS = {ReviewState.PENDING: _l("Awaiting review"), ReviewState.RETURNED: _l("Returned to the worker"),
                 ReviewState.APPROVED: _l("Approved")}


@bp.app_context_processor
def review_labels() -> dict:
    return {"review_label": lambda state: str(REVIEW_LABELS.get(state, state or ""))}


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
    review = request.args.get("review")
    review = review if review in {r.value for r in ReviewState} else None
    order = (Demand.starts_on.desc(), Demand.id.desc())
    if review:
        stmt = stmt.where(Demand.review == review)
        # The review queue: urgent first, then by date (the soonest need first).
        urgency = case({p.value: i for i, p in enumerate(Priority)}, value=Demand.priority)
        order = (urgency, Demand.starts_on, Demand.id) if review == ReviewState.PENDING else order
    page = paginate(stmt.order_by(*order))
    categories = db.session.scalars(select(Category).order_by(Category.id)).all()
    reviewer = current_user.role in (Role.ADMIN, Role.COORDINATOR)
    return render_template("demands/index.html", page=page, q=q, status=status, category=category,
                           categories=categories, statuses=list(DemandStatus), review=review,
                           reviews=list(ReviewState), reviewer=reviewer,
                           batch=reviewer and review == ReviewState.PENDING)


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
                           resident_visible=resident_visible, place=place,
                           can_review=can_review(current_user, item) and item.review == ReviewState.PENDING
                           and item.status not in CLOSED, errors={})


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
        "reviewed_by": reviewing_area(community),
    }


def place_map(community: Area, values: dict, choices: dict) -> dict:
    """The place picker for the form: the community, its stations, its residents' homes (named only
    for who may see the residents: the community's own worker), the point chosen so far."""
    names = current_user.role == Role.WORKER and current_user.area_id == community.id
    homes = [(r.lat, r.lon, r.name if names else "") for r in choices["residents"]
             if r.lat is not None and r.lon is not None]
    stations = [(st.lat, st.lon, st.name) for st in choices["stations"]]
    try:
        chosen = (float(values.get("lat", "")), float(values.get("lon", "")))
        chosen = chosen if all(map(math.isfinite, chosen)) and abs(chosen[0]) <= 85 and abs(chosen[1]) <= 180 else None
    except (TypeError, ValueError):
        chosen = None
    return build_place_map((community.lat, community.lon), community.radius_km, stations, homes, chosen,
                           tile_url=current_app.config.get("MAP_TILE_URL"))


def render_form(community: Area, errors: dict, values: dict, weekdays: list[str], **extra):
    """The demand form (new or edit), with 400 when there are errors."""
    choices = demand_form_choices(community)
    today = local_today()
    demand = extra.get("demand")
    earliest = min(today, demand.starts_on) if demand is not None else today
    return render_template("demands/form.html", errors=errors, values=values, weekdays=weekdays,
                           place_map=place_map(community, values, choices), date_min=earliest.isoformat(),
                           date_max=(today + timedelta(days=demand_horizon_days())).isoformat(),
                           **choices, **extra), 400 if errors else 200


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
            # A demand waiting for review says so on its page (#review-pending); no second notice here.
            flash(_("Demand posted: %(n)d occurrence(s) created.", n=len(item.occurrences)), "success")
            return redirect(url_for("demands.view", demand_id=item.id))
    return render_form(community, errors, values, request.form.getlist("weekdays"))


@bp.route("/demands/<int:demand_id>/cancel", methods=["GET", "POST"])
@login_required
def cancel(demand_id: int):
    """Confirm cancelling a demand with a reason (its community's worker only); a stale form gives 409."""
    item = load_visible(Demand, demand_id, current_user)
    if not can_change(current_user, item):
        abort(403)
    errors: dict[str, str] = {}
    reason = request.form.get("reason", "")
    if request.method == "POST":
        version = int_arg(request.form, "version", minimum=0)
        try:
            cancel_demand(item, user=current_user, version=version, reason=reason)
        except ValidationError as exc:
            db.session.rollback()
            errors = exc.errors
        else:
            db.session.commit()
            flash(_("Demand cancelled."), "info")
            return redirect(url_for("demands.view", demand_id=item.id))
    if item.status in CLOSED:
        return redirect(url_for("demands.view", demand_id=item.id))
    coming = [o for o in item.occurrences if o.starts_at >= local_now() and o.status not in CLOSED]
    return render_template("demands/cancel.html", demand=item, errors=errors, reason=reason,
                           coming=coming), 400 if errors else 200


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
    return render_form(community, errors, values, weekdays, demand=demand)


# --------------------------------------------------------------------------- review (审单)


def _reviewable(demand_id: int) -> Demand:
    """A demand the coordinator (or admin) may review: out of scope is 404, another role 403."""
    item = load_visible(Demand, demand_id, current_user)
    if not can_review(current_user, item):
        abort(403)
    return item


@bp.route("/demands/<int:demand_id>/approve", methods=["POST"])
@roles_required(Role.COORDINATOR, Role.ADMIN)
def approve(demand_id: int):
    """Approve a demand waiting for review: it is dispatched with the next solve."""
    item = _reviewable(demand_id)
    approve_demand(item, user=current_user)
    db.session.commit()
    flash(_("Demand approved: it is dispatched with the next solve."), "success")
    return redirect(url_for("demands.index", review=ReviewState.PENDING.value))


@bp.route("/demands/<int:demand_id>/return", methods=["POST"])
@roles_required(Role.COORDINATOR, Role.ADMIN)
def send_back(demand_id: int):
    """Return a demand waiting for review to its worker with a reason (required)."""
    item = _reviewable(demand_id)
    try:
        return_demand(item, user=current_user, reason=request.form.get("reason", ""))
    except ValidationError as exc:
        db.session.rollback()
        resident_visible = item.resident_id is not None and db.session.scalar(visible(
            select(Resident.id).where(Resident.id == item.resident_id), Resident, current_user)) is not None
        return render_template("demands/view.html", demand=item, can_change=can_change(current_user, item),
                               resident_visible=resident_visible, place=None, can_review=True,
                               errors=exc.errors, reason=request.form.get("reason", "")), 400
    db.session.commit()
    flash(_("Demand returned to the community's worker."), "info")
    return redirect(url_for("demands.index", review=ReviewState.PENDING.value))


@bp.route("/demands/review/approve", methods=["POST"])
@roles_required(Role.COORDINATOR, Role.ADMIN)
def approve_many():
    """Approve the demands ticked in the review queue (those in scope and waiting; others are skipped)."""
    # At most a page's worth; anything that is not an id is skipped (as is a demand out of scope).
    ids = [n for n in (parse_int(raw, 1, MAX_ID) for raw in request.form.getlist("demand")[:200]) if n is not None]
    if not ids:
        raise ValidationError({"demand": _("Tick the demands to approve.")})
    demands = db.session.scalars(visible(select(Demand).where(Demand.id.in_(ids)), Demand, current_user)).all()
    count = approve_demands(demands, user=current_user)
    db.session.commit()
    flash(_("%(n)d demand(s) approved.", n=count), "success")
    return redirect(url_for("demands.index", review=ReviewState.PENDING.value))


@bp.route("/demands/review-settings", methods=["GET", "POST"])
@roles_required(Role.COORDINATOR, Role.ADMIN)
def review_settings():
    """Which townships and districts review their communities' demands before dispatch."""
    areas = review_areas(current_user)
    if request.method == "POST":
        area_id = int_arg(request.form, "area")
        if area_id is None:
            raise ValidationError({"area": _("Choose a township or district.")})
        area = next((a for a in areas if a.id == area_id), None)
        if area is None:
            raise NotFound(_("No such township or district in your area."))
        on = request.form.get("review") == "1"
        released = set_area_review(area, on, user=current_user)
        db.session.commit()
        if on:
            flash(_("%(a)s now reviews its communities' demands before dispatch.", a=area.name), "success")
        else:
            flash(_("%(a)s no longer reviews demands; %(n)d waiting demand(s) let through.", a=area.name,
                    n=released), "info")
        return redirect(url_for("demands.review_settings"))
    inherited = {a.id: next((p for p in areas if p.review_demands and p.id != a.id and p.contains(a)), None)
                 for a in areas}
    return render_template("demands/review_settings.html", areas=areas, inherited=inherited)
