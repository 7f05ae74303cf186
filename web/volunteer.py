"""The volunteer's pages: offers, my week (with a private calendar feed), check-in, my record, profile.

Every page works on the logged-in user's own Volunteer row (404 for users without one), and
every assignment is loaded through the volunteer's id, so changing an id in a URL never shows
another volunteer's offer. A resident's name and the exact address appear only while an
assignment is accepted or checked in.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_fresh, login_required
from icalendar import Calendar, Event
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from matcher import assignments, clock, delivery, rules, teams, volunteers
from matcher.access import load_own_assignment
from matcher.audit import record_audit
from matcher.clock import local_now
from matcher.db import db
from matcher.errors import Conflict, DomainError, ValidationError
from matcher.models import (
    BOOKED,
    HELD,
    Assignment,
    AssignmentStatus,
    Demand,
    DemandOccurrence,
    Role,
    Skill,
    Volunteer,
    utcnow,
)

from .converters import MAX_ID
from .extensions import login_manager
from .main import week_arg

bp = Blueprint("volunteer", __name__)

# The solver's reason codes, as a volunteer reads them.
REASONS = {
    "skills_match": _l("Your skills match what this service needs."),
    "nearest_free": _l("You are the nearest volunteer who is free at that time."),
    "familiar": _l("You have served this resident before."),
    "same_volunteer_for_resident": _l("You serve this resident on other days this week too."),
    "kept_from_previous": _l("You had this service in the previous plan."),
    "pinned": _l("The coordinator chose you for this service."),
    "override": _l("The coordinator assigned you with a recorded exception."),
    "organization_team": _l("Your organization's team takes this service."),
}
def reason_texts(assignment: Assignment) -> list[str]:
    """The assignment's reason codes as sentences (unknown codes shown as they are)."""
    return [str(REASONS.get(code, code)) for code in assignment.reasons or []]


def is_volunteer_user() -> bool:
    """Whether the current user gets the volunteer pages: the volunteer role or a linked profile."""
    if not current_user.is_authenticated:
        return False
    if "is_volunteer_user" not in g:
        g.is_volunteer_user = current_user.role == Role.VOLUNTEER or volunteers.volunteer_of(current_user) is not None
    return g.is_volunteer_user


@bp.app_context_processor
def volunteer_helpers() -> dict:
    return {"is_volunteer_user": is_volunteer_user}


def own_volunteer() -> Volunteer:
    """The logged-in user's volunteer profile, or 404."""
    volunteer = volunteers.volunteer_of(current_user)
    if volunteer is None:
        abort(404)
    return volunteer


def _with_demand(stmt):
    return stmt.options(selectinload(Assignment.occurrence).selectinload(DemandOccurrence.demand)
                        .selectinload(Demand.category))


# --- offers ----------------------------------------------------------------------------------------


def _offers(volunteer: Volunteer) -> list[Assignment]:
    return list(db.session.scalars(_with_demand(
        select(Assignment).join(DemandOccurrence, Assignment.occurrence_id == DemandOccurrence.id)
        .where(Assignment.volunteer_id == volunteer.id, Assignment.status == AssignmentStatus.OFFERED)
        .order_by(DemandOccurrence.starts_at))))


def offer_groups(offers: list[Assignment]) -> list[list[Assignment]]:
    """The offers in time order, those of one demand (a weekly service) together: one card each."""
    groups: dict[int, list[Assignment]] = {}
    for a in offers:
        groups.setdefault(a.occurrence.demand_id, []).append(a)
    return list(groups.values())


def _render_offers(volunteer: Volunteer, errors: dict | None = None, message: str = "", status: int = 200,
                   results: list | None = None, offers: list[Assignment] | None = None):
    """The offers page; `offers` when already loaded (and not expired by a commit since)."""
    groups = offer_groups(offers if offers is not None else _offers(volunteer))
    return render_template("volunteer/offers.html", volunteer=volunteer, groups=groups,
                           reason_texts=reason_texts, errors=errors or {}, message=message, results=results or [],
                           decline_reasons=assignments.DECLINE_REASONS,
                           waiting_for=volunteers.awaiting_approval(volunteer),
                           unvetted=volunteers.unvetted(volunteer),
                           values=request.form if request.method == "POST" else {}), status


@bp.app_template_global("decline_label")
def decline_label(assignment: Assignment) -> str:
    """A declined assignment's reason as the coordinator reads it: the choice, then the volunteer's words."""
    return assignments.decline_text(assignment.decline_kind, assignment.decline_reason)


@bp.route("/me/offers")
@login_required
def offers():
    """The volunteer's open offers: what, when, roughly where, why chosen; accept or decline.

    The dates of one weekly service form one card, answered together or date by date. Opening it records
    that the volunteer saw these offers (the coordinator's delivery page shows it)."""
    volunteer = own_volunteer()
    shown = _offers(volunteer)
    if delivery.mark_seen(shown):
        db.session.commit()  # expires what was loaded: read again for the page
        shown = None
    return _render_offers(volunteer, offers=shown)


def _respond(assignment_id: int, accept: bool):
    volunteer = own_volunteer()
    assignment = load_own_assignment(assignment_id, current_user)
    try:
        assignments.respond_to_offer(assignment, user=current_user, accept=accept,
                                     reason=request.form.get("reason", ""), kind=request.form.get("kind"))
    except ValidationError as exc:
        db.session.rollback()
        return _render_offers(volunteer, errors={assignment_id: exc.errors}, status=400)
    except Conflict as exc:
        db.session.rollback()
        return _render_offers(volunteer, message=exc.message, status=409)
    db.session.commit()
    if accept:
        flash(_("Accepted. The address is now in your week."), "success")
        return redirect(url_for("volunteer.week", week=rules.week_monday(assignment.occurrence.starts_at.date())
                                .isoformat()))
    flash(_("Declined. The coordinator has been told."), "info")
    return redirect(url_for("volunteer.offers"))


@bp.route("/me/offers/<int:assignment_id>/accept", methods=["POST"])
@login_required
def accept(assignment_id: int):
    """Accept one of the own offers."""
    return _respond(assignment_id, True)


@bp.route("/me/offers/<int:assignment_id>/decline", methods=["POST"])
@login_required
def decline(assignment_id: int):
    """Decline one of the own offers, with a reason."""
    return _respond(assignment_id, False)


@bp.route("/me/offers/series/<int:demand_id>", methods=["POST"])
@login_required
def answer_series(demand_id: int):
    """Accept or decline the listed dates of one weekly service at once (`assignments.respond_to_series`).

    `answer` is "accept" or "decline" (with `kind` and `reason`); `offer` lists the dates' offer ids
    as the page showed them (an offer made since is not answered unseen). Each date is reported:
    answered, or why not (e.g. it clashes with another service); when none could be, nothing changes.
    """
    volunteer = own_volunteer()
    open_offers = [a for a in _offers(volunteer) if a.occurrence.demand_id == demand_id]
    if not open_offers:
        abort(404)  # no open offer of this volunteer on that demand: nothing to answer here
    answer = request.form.get("answer", "")
    key = f"series-{demand_id}"
    shown = {int(x) for x in request.form.getlist("offer") if x.isascii() and x.isdigit() and len(x) <= 18}
    chosen = [a for a in open_offers if a.id in shown]
    if answer not in ("accept", "decline"):
        return _render_offers(volunteer, errors={key: {"answer": _("Choose to accept or to decline.")}}, status=400)
    if not chosen:
        message = _("These dates were answered or withdrawn meanwhile; see the offers as they are now.")
        return _render_offers(volunteer, errors={key: {"series": message}}, status=409 if shown else 400)
    try:
        answers = assignments.respond_to_series(chosen, user=current_user, accept=answer == "accept",
                                                reason=request.form.get("reason", ""), kind=request.form.get("kind"))
    except ValidationError as exc:
        db.session.rollback()
        return _render_offers(volunteer, errors={key: exc.errors}, status=400)
    if not any(a.done for a in answers):
        db.session.rollback()
        return _render_offers(volunteer, message=_("None of the dates could be answered; nothing was changed."),
                              results=answers, status=409)
    db.session.commit()
    done = [a for a in answers if a.done]
    if answer == "accept":
        flash(_("Accepted %(n)d of %(m)d dates. The addresses are now in your week.", n=len(done), m=len(answers)),
              "success")
    else:
        flash(_("Declined %(n)d of %(m)d dates. The coordinator has been told.", n=len(done), m=len(answers)),
              "info")
    for a in answers:
        if not a.done:
            flash(_("%(when)s: not answered. %(why)s", when=a.starts_at.strftime("%Y-%m-%d %H:%M"), why=a.message),
                  "error")
    return redirect(url_for("volunteer.offers"))


# --- my week and the calendar feed -------------------------------------------------------------------


def requested_week(volunteer: Volunteer) -> date:
    """The Monday from ?week=YYYY-MM-DD, else the week the volunteer has ahead (`default_week`)."""
    return week_arg(lambda: default_week(volunteer))


def default_week(volunteer: Volunteer) -> date:
    """The week "my week" opens on: the current one Monday to Saturday; the coming one on Sunday
    (the current week is over but for today), or when nothing is left this week and the next has services."""
    today = clock.local_today()
    this = rules.week_monday(today)
    following = this + timedelta(days=7)
    if today.weekday() == 6:
        return following
    if volunteers.has_assignments(volunteer, datetime.combine(today, time()), datetime.combine(following, time())):
        return this
    start = datetime.combine(following, time())
    return following if volunteers.has_assignments(volunteer, start, start + timedelta(days=7)) else this


def _week_items(volunteer: Volunteer, monday: date) -> list[Assignment]:
    start = datetime.combine(monday, time())
    return volunteers.week_assignments(volunteer, start, start + timedelta(days=7),
                                    statuses=BOOKED)


def _render_week(volunteer: Volunteer, monday: date, revealed: int | None = None):
    items = _week_items(volunteer, monday)
    days = [monday + timedelta(days=i) for i in range(7)]
    by_day = {d: [a for a in items if a.occurrence.starts_at.date() == d] for d in days}
    feed = url_for("volunteer.calendar_feed", token=volunteer.calendar_token, _external=True)
    return render_template("volunteer/week.html", volunteer=volunteer, items=items, days=days, by_day=by_day,
                           monday=monday, prev_week=monday - timedelta(days=7),
                           next_week=monday + timedelta(days=7), feed=feed, revealed=revealed)


@bp.route("/me/week")
@login_required
def week():
    """Accepted, checked-in and completed services of a week, as a list and as a 7-day grid.

    A resident's phone is masked; "show" reveals it (a POST, audited)."""
    volunteer = own_volunteer()
    return _render_week(volunteer, requested_week(volunteer))


@bp.route("/me/assignments/<int:assignment_id>/reveal-phone", methods=["GET", "POST"])
@login_required
def reveal_phone(assignment_id: int):
    """Show the resident's phone of a service the volunteer holds now (fresh login; the reveal is audited).

    A GET (e.g. coming back from signing in again) only leads back to the week: revealing is a POST.
    """
    if request.method == "GET":
        return redirect(url_for("volunteer.week"))
    volunteer = own_volunteer()
    assignment = load_own_assignment(assignment_id, current_user)
    resident = assignment.occurrence.demand.resident
    if assignment.status not in HELD or resident is None or not resident.phone:
        abort(404)
    if not login_fresh():
        return login_manager.needs_refresh()
    record_audit(current_user, "reveal_phone", resident, assignment=assignment.id)
    db.session.commit()
    return _render_week(volunteer, rules.week_monday(assignment.occurrence.starts_at.date()), revealed=assignment.id)


@bp.route("/me/calendar/regenerate", methods=["POST"])
@login_required
def regenerate_calendar():
    """A new private feed address; the old one stops working."""
    volunteer = own_volunteer()
    volunteers.regenerate_calendar_token(volunteer, user=current_user)
    db.session.commit()
    flash(_("Your calendar address was changed; subscribe again with the new one."), "info")
    return redirect(url_for("volunteer.week"))


@bp.route("/calendar/<token>.ics")
def calendar_feed(token: str):
    """The volunteer's accepted services as iCalendar (no login: the token is the secret)."""
    volunteer = db.session.scalar(select(Volunteer).where(Volunteer.calendar_token == token)) if token else None
    if volunteer is None:
        abort(404)
    zone = ZoneInfo(current_app.config.get("TIMEZONE", "Asia/Shanghai"))
    cal = Calendar()
    cal.add("prodid", "-//Linli//volunteer calendar//EN")
    cal.add("version", "2.0")
    cal.add("x-wr-calname", _("Linli volunteer services"))
    since = local_now() - timedelta(days=60)
    stamp = utcnow().replace(tzinfo=ZoneInfo("UTC"))
    for a in db.session.scalars(_with_demand(
            select(Assignment).join(DemandOccurrence, Assignment.occurrence_id == DemandOccurrence.id)
            .where(Assignment.volunteer_id == volunteer.id, Assignment.status.in_(HELD),
                   DemandOccurrence.ends_at >= since).order_by(DemandOccurrence.starts_at))):
        occ, demand = a.occurrence, a.occurrence.demand
        event = Event()
        event.add("uid", f"assignment-{a.id}@linli")
        event.add("dtstamp", stamp)
        event.add("dtstart", occ.starts_at.replace(tzinfo=zone))
        event.add("dtend", occ.ends_at.replace(tzinfo=zone))
        event.add("summary", f"{demand.title} · {demand.category.name_zh}")
        event.add("location", place_text(a, exact=True))
        description = [demand.category.name_zh, demand.community.name]
        if demand.notes:
            description.append(demand.notes)
        description.append(_("Check in with the code shown on site: %(u)s",
                             u=url_for("volunteer.checkin", occurrence=occ.id, _external=True)))
        event.add("description", "\n".join(description))
        cal.add_component(event)
    cal.add_missing_timezones()
    response = current_app.response_class(cal.to_ical(), mimetype="text/calendar")
    response.headers["Content-Disposition"] = "inline; filename=linli.ics"
    response.headers["Cache-Control"] = "no-store"
    return response


def place_text(assignment: Assignment, *, exact: bool | None = None) -> str:
    """Where a service is: the exact address only while the assignment is accepted or checked in."""
    demand = assignment.occurrence.demand
    if exact is None:
        exact = assignment.status in HELD
    if demand.station is not None:
        base = f"{demand.station.name}"
        return f"{base}, {demand.address}" if exact and demand.address else base
    if exact and demand.address:
        return f"{demand.community.name} {demand.address}"
    if demand.location_kind.value == "home":
        return _("A resident's home in %(c)s", c=demand.community.name)
    return demand.community.name


@bp.app_template_global("volunteer_place")
def volunteer_place(assignment: Assignment) -> str:
    return place_text(assignment)


# --- check-in and check-out ----------------------------------------------------------------------------


@bp.route("/checkin", methods=["GET", "POST"])
@login_required
def checkin():
    """Check in (or, once checked in, out) with the code the community worker shows, or the QR code's link.

    The QR code's URL carries a signed token (`t`); the page then only asks to press the button.
    A refused attempt is kept in the audit log even though nothing else is saved: the limits on
    attempts count those entries.
    """
    volunteer = own_volunteer()
    source = request.form if request.method == "POST" else request.args
    values = {"occurrence": (source.get("occurrence") or "").strip(), "code": (source.get("code") or "").strip(),
              "token": (source.get("t") or "").strip()}
    errors: dict[str, str] = {}
    message = ""
    status = 200
    chosen = _occurrence_for(volunteer, values["occurrence"])
    if chosen is None and (values["occurrence"] or request.method == "POST"):
        errors["occurrence"] = _("Choose one of your accepted services.")
    elif request.method == "POST" and chosen is not None:
        assignment = db.session.scalar(select(Assignment).where(
            Assignment.occurrence_id == chosen.id, Assignment.volunteer_id == volunteer.id))
        checking_out = assignment is not None and assignment.status == AssignmentStatus.CHECKED_IN
        action = assignments.check_out if checking_out else assignments.check_in
        try:
            done = action(chosen, values["code"], token=values["token"], user=current_user)
        except assignments.CheckinRefused as exc:
            db.session.rollback()
            assignments.keep_refusal(exc)  # a failed attempt counts even though nothing else is saved
            db.session.commit()
            errors, status = exc.errors, exc.status
        except ValidationError as exc:
            db.session.rollback()
            errors = exc.errors
        except Conflict as exc:
            db.session.rollback()
            message, status = exc.message, 409
        except DomainError as exc:
            db.session.rollback()
            errors = {exc.field or "code": exc.message}
        else:
            db.session.commit()
            if checking_out:
                flash(_("Checked out. %(h)s hours credited; thank you!", h=done.credited_hours), "success")
            else:
                flash(_("Checked in at %(t)s.", t=done.checked_in_at.strftime("%H:%M")), "success")
            return redirect(url_for("volunteer.checkin", occurrence=chosen.id))
    if errors:
        values["token"] = ""  # a refused QR code is not offered again: type the code or scan anew
        if status == 200:
            status = 400
    now = local_now()
    choices = volunteers.week_assignments(volunteer, now - timedelta(days=1), now + timedelta(days=2),
                                       statuses=BOOKED)
    current = None
    if chosen is not None:
        current = db.session.scalar(select(Assignment).where(Assignment.occurrence_id == chosen.id,
                                                             Assignment.volunteer_id == volunteer.id))
        if current is not None and current not in choices:
            choices.insert(0, current)
    return render_template("volunteer/checkin.html", values=values, errors=errors, message=message,
                           choices=choices, current=current), status


def _occurrence_for(volunteer: Volunteer, raw: str) -> DemandOccurrence | None:
    """The occurrence with this id, only if the volunteer holds an assignment on it.

    Only plain ASCII digits within the databases' id range are read: "²" or "１２" pass
    `str.isdigit()` but are no id (None, never an error).
    """
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 10 or int(raw) > MAX_ID:
        return None
    return db.session.scalar(select(DemandOccurrence).join(Assignment, Assignment.occurrence_id == DemandOccurrence.id)
                             .where(DemandOccurrence.id == int(raw), Assignment.volunteer_id == volunteer.id,
                                    Assignment.status.in_(BOOKED)))


# --- my record --------------------------------------------------------------------------------------------


@bp.route("/me/record")
@login_required
def record():
    """Total hours, star level, hours to the next star and the services done with their ratings."""
    volunteer = own_volunteer()
    thresholds = current_app.config["STAR_THRESHOLDS"]
    done = list(db.session.scalars(_with_demand(
        select(Assignment).join(DemandOccurrence, Assignment.occurrence_id == DemandOccurrence.id)
        .where(Assignment.volunteer_id == volunteer.id, Assignment.status == AssignmentStatus.COMPLETED)
        .order_by(DemandOccurrence.starts_at.desc()))))
    return render_template("volunteer/record.html", volunteer=volunteer, done=done,
                           stars=rules.star_level(volunteer.total_hours, thresholds),
                           to_next=volunteers.hours_to_next_star(volunteer.total_hours, thresholds),
                           thresholds=thresholds)


# --- profile ------------------------------------------------------------------------------------------------


@bp.route("/me/profile", methods=["GET", "POST"])
@login_required
def profile():
    """Edit availability (weekday and time rows), dated changes (date rows), limits in hours, skills and home.

    The rows are plain form fields, so the form works without JavaScript; static/free_time.js only
    adds and removes rows. A bad row is named in the message next to its block."""
    volunteer = own_volunteer()
    errors: dict[str, str] = {}
    if request.method == "POST":
        try:
            volunteers.update_profile(volunteer, request.form, user=current_user)
        except ValidationError as exc:
            db.session.rollback()
            errors = exc.errors
            values = request.form.to_dict()
            values["skills"] = request.form.getlist("skills")
            values["slot_rows"], values["exception_rows"] = volunteers.submitted_rows(request.form)
        else:
            db.session.commit()
            flash(_("Your profile was saved."), "success")
            return redirect(url_for("volunteer.profile"))
    else:
        values = volunteers.profile_values(volunteer)
        values["skills"] = [s.code for s in volunteer.skills]
    return _render_profile(volunteer, values, errors)


def _render_profile(volunteer: Volunteer, values: dict, errors: dict):
    skills = db.session.scalars(select(Skill).order_by(Skill.code)).all()
    return render_template("volunteer/profile.html", volunteer=volunteer, values=values, errors=errors,
                           skills=skills, joinable=teams.joinable_organizations(volunteer)), 400 if errors else 200


@bp.route("/me/organizations", methods=["POST"])
@login_required
def apply_to_organization():
    """Apply to join another organization serving one's community (its leader approves)."""
    volunteer = own_volunteer()
    try:
        teams.apply_to_join(volunteer, request.form, user=current_user)
    except (ValidationError, Conflict) as exc:
        db.session.rollback()
        errors = exc.errors if isinstance(exc, ValidationError) else {"organization": exc.message}
        values = volunteers.profile_values(volunteer)
        values["skills"] = [s.code for s in volunteer.skills]
        return _render_profile(volunteer, values, errors)
    db.session.commit()
    flash(_("Application sent. The organization's leader will answer."), "success")
    return redirect(url_for("volunteer.profile") + "#organizations")
