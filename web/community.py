"""The community worker's week: the community's services, check-in codes, confirming and rating, editing demands.

Every occurrence and assignment is loaded through `matcher.access.load_own_occurrence`, so an id
from another community is a 404. Views are thin: parse, call one `matcher.assignments` operation,
commit, redirect; a bad field re-renders the page with the message next to it and status 400.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import segno
from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from matcher import rules
from matcher.access import load_own_occurrence, user_area
from matcher.assignments import checkin_codes, confirm_service, rate_service
from matcher.clock import local_now, local_today
from matcher.db import db
from matcher.errors import AccessDenied, Conflict, DomainError, NotFound, ValidationError
from matcher.models import Assignment, Role
from matcher.weeks import community_has_week, community_week

from .auth import roles_required
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
        states=STATES, form=request.form, now=local_now(),
    ), status


@bp.route("/community/week")
@roles_required(Role.WORKER)
def week():
    """The community's services of a week with their state, volunteers and gaps."""
    community = user_area(current_user)
    return render_week(requested_week(lambda: this_or_next_week(lambda w: community_has_week(community, w))))


def checkin_url(occurrence_id: int, token: str) -> str:
    """The absolute check-in URL a volunteer's phone opens from the QR code (the signed token in `t`)."""
    return url_for("volunteer.checkin", occurrence=occurrence_id, t=token, _external=True)


@bp.route("/community/occurrences/<int:occurrence_id>/code")
@roles_required(Role.WORKER)
def checkin_code(occurrence_id: int):
    """The service's current check-in and check-out codes, large, each with a QR code of its check-in URL.

    The codes change every minute; the page counts down and loads itself again (static/checkin_code.js).
    """
    occ = load_own_occurrence(occurrence_id, current_user)
    codes = checkin_codes(occ, user=current_user)
    db.session.commit()  # an occurrence from before code secrets got its secret
    qrs = {}
    for shown in (codes.check_in, codes.check_out):
        if shown is not None:
            # The only markup marked safe: an SVG segno generated from our own URL.
            qrs[shown.purpose] = segno.make(checkin_url(occ.id, shown.token), error="m").svg_inline(
                scale=5, title=_("Check-in code") if shown.purpose == "in" else _("Check-out code"))
    return render_template("community/code.html", occ=occ, codes=codes, qrs=qrs,
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
    except (Conflict, DomainError) as exc:  # not started yet, confirmed already, cancelled: said at the service
        if isinstance(exc, AccessDenied | NotFound):
            raise
        db.session.rollback()
        return render_week(week_start, {"confirm": exc.message}, ("occ", occurrence_id), exc.status)
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


