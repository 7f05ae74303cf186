"""The community worker's week: the community's services, check-in codes, confirming and rating, editing demands.

Every occurrence and assignment is loaded through `matcher.access.load_own_occurrence`, so an id
from another community is a 404. Views are thin: parse, call one `matcher.community` operation,
commit, redirect; a bad field re-renders the page with the message next to it and status 400.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import segno
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from matcher import rules
from matcher.access import can_change, load_own_occurrence, load_visible, user_area
from matcher.clock import local_today
from matcher.community import community_week, confirm_service, rate_service, update_demand
from matcher.db import db
from matcher.errors import NotFound, ValidationError
from matcher.models import Assignment, Demand, Role

from .auth import roles_required
from .directory import demand_form_choices
from .main import this_or_next_week, week_arg

bp = Blueprint("community", __name__)

# The solver's reasons for leaving a demand short, as a community worker reads them.
STATES = {"open": _l("Open"), "scheduled": _l("Scheduled"), "accepted": _l("Accepted"), "done": _l("Done"),
          "cancelled": _l("Cancelled")}


def requested_week(default: Callable[[], date] | None = None) -> date:
    """The Monday of ?week=YYYY-MM-DD; `default()` (this week's Monday) when absent; 400 when unreadable."""
    return week_arg(default or (lambda: rules.week_monday(local_today())))


def render_week(week: date, errors: dict | None = None, target: tuple[str, int] | None = None, status: int = 200):
    community = user_area(current_user)
    rows = community_week(community, week)
    return render_template(
        "community/week.html", community=community, rows=rows, week=week, errors=errors or {}, target=target,
        prev_week=week - timedelta(days=7), next_week=week + timedelta(days=7),
        states=STATES, form=request.form,
    ), status


@bp.route("/community/week")
@roles_required(Role.WORKER)
def week():
    """The community's services of a week with their state, volunteers and gaps."""
    community = user_area(current_user)
    return render_week(requested_week(lambda: this_or_next_week(lambda w: bool(community_week(community, w)))))


def checkin_url(occurrence_id: int, code: str) -> str:
    """The absolute check-in URL a volunteer's phone opens from the QR code."""
    return url_for("volunteer.checkin", occurrence=occurrence_id, code=code, _external=True)


@bp.route("/community/occurrences/<int:occurrence_id>/code")
@roles_required(Role.WORKER)
def checkin_code(occurrence_id: int):
    """The service's 6-digit check-in code, large, with a QR code of the check-in URL."""
    occ = load_own_occurrence(occurrence_id, current_user)
    url = qr = None
    if occ.checkin_code:
        url = checkin_url(occ.id, occ.checkin_code)
        # The only markup marked safe: an SVG segno generated from our own URL.
        qr = segno.make(url, error="m").svg_inline(scale=6, title=_("Check-in code"))
    return render_template("community/code.html", occ=occ, url=url, qr=qr,
                           week=rules.week_monday(occ.starts_at.date()))


@bp.route("/community/occurrences/<int:occurrence_id>/confirm", methods=["POST"])
@roles_required(Role.WORKER)
def confirm(occurrence_id: int):
    """Confirm a service took place, ticking who was there."""
    occ = load_own_occurrence(occurrence_id, current_user)
    week_start = rules.week_monday(occ.starts_at.date())
    try:
        counts = confirm_service(occ, user=current_user, present=request.form.getlist("present"))
    except ValidationError as exc:
        db.session.rollback()
        return render_week(week_start, exc.errors, ("occ", occurrence_id), 400)
    db.session.commit()
    flash(_("Service confirmed: %(c)d completed, %(n)d no-show.", c=counts["completed"], n=counts["no_show"]),
          "success")
    return redirect(url_for("community.week", week=week_start.isoformat()))


@bp.route("/community/assignments/<int:assignment_id>/rate", methods=["POST"])
@roles_required(Role.WORKER)
def rate(assignment_id: int):
    """Record the resident's rating of one volunteer's service."""
    assignment = db.session.get(Assignment, assignment_id)
    if assignment is None:
        raise NotFound("not found")
    occ = load_own_occurrence(assignment.occurrence_id, current_user)
    week_start = rules.week_monday(occ.starts_at.date())
    try:
        rate_service(assignment, request.form.get("rating"), request.form.get("comment"), user=current_user)
    except ValidationError as exc:
        db.session.rollback()
        return render_week(week_start, exc.errors, ("assignment", assignment_id), 400)
    db.session.commit()
    flash(_("Rating recorded."), "success")
    return redirect(url_for("community.week", week=week_start.isoformat()))


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
def edit_demand(demand_id: int):
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
            result = update_demand(demand, data, user=current_user, version=request.form.get("version", type=int))
        except ValidationError as exc:
            db.session.rollback()
            errors = exc.errors
        else:
            db.session.commit()
            flash(_("Demand saved."), "success")
            if result["notified"]:
                flash(_("The schedule of this week is published: the coordinators were told of the change."), "info")
            return redirect(url_for("directory.demand", demand_id=demand.id))
        weekdays = request.form.getlist("weekdays")
    else:
        values = demand_values(demand)
        weekdays = [str(d) for d in demand.weekday_list]
    return render_template("directory/demand_form.html", demand=demand, errors=errors, values=values,
                           weekdays=weekdays, **demand_form_choices(community)    ), 400 if errors else 200
