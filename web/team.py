"""The organization leader's team: services dispatched to the organization, swaps, hand-backs, members.

Only the leader of the organization gets here; every occurrence, assignment and membership is
loaded within that organization (`matcher.access`), so another organization's ids give 404.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from matcher import links, rules, volunteers
from matcher.access import load_team_assignment, load_team_occurrence, load_visible
from matcher.clock import local_today
from matcher.db import db
from matcher.errors import Conflict, NotFound, ValidationError
from matcher.models import (
    Assignment,
    AssignmentStatus,
    Handback,
    Membership,
    MemberStatus,
    Organization,
    Role,
    Volunteer,
)
from matcher.teams import (
    SWAPPABLE,
    approve_member,
    approved_members,
    hand_back,
    member_load,
    reject_member,
    swap_member,
    swap_options,
)
from matcher.weeks import organization_has_week, organization_week, team_assignment_ids

from .auth import roles_required
from .community import STATES, requested_week
from .inputs import int_arg, page_arg, text_arg
from .main import this_or_next_week

bp = Blueprint("team", __name__)


def own_organization() -> Organization:
    org = db.session.get(Organization, current_user.organization_id) if current_user.organization_id else None
    if org is None:
        raise NotFound("not found")
    return org


# The team page's order: what still needs the leader first (nobody on it, offers unanswered), then the
# services that are settled; each group in time order.
STATE_ORDER = ("open", "scheduled", "accepted", "done", "cancelled")


def render_team(week):
    """The team page for a week: the members' load first (short), then the services grouped by what they
    need (`STATE_ORDER`), each leading to its swap and hand-back pages."""
    org = own_organization()
    rows = sorted(organization_week(org, week), key=lambda r: (
        STATE_ORDER.index(r.state) if r.state in STATE_ORDER else len(STATE_ORDER), r.occurrence.starts_at,
        r.occurrence.id))
    members = approved_members(org.id)
    ours = team_assignment_ids(org.id, [row.occurrence.id for row in rows])
    # Swap options are judged on the swap page (one service at a time), not for every row here.
    swappable = {a.id for row in rows for a in row.assignments if a.id in ours and a.status in SWAPPABLE}
    handed = set(db.session.scalars(select(Handback.occurrence_id).where(
        Handback.organization_id == org.id, Handback.occurrence_id.in_([r.occurrence.id for r in rows]))))
    return render_template(
        "team/index.html", org=org, rows=rows, week=week, swappable=swappable, handed=handed, ours=ours,
        load=member_load(members, week), prev_week=week - timedelta(days=7), next_week=week + timedelta(days=7),
        states=STATES,
    )


@bp.route("/team")
@roles_required(Role.ORG_LEADER)
def index():
    """Services dispatched to the organization this week, its members on them and their load."""
    org = own_organization()
    return render_team(requested_week(lambda: this_or_next_week(lambda w: organization_has_week(org, w))))


def render_swap(assignment, errors=None, status=200):
    """The swap page of one service: eligible members, and the others with the rules they break."""
    org = own_organization()
    occ = assignment.occurrence
    week = rules.week_monday(occ.starts_at.date())
    members = approved_members(org.id)
    return render_template("team/swap.html", a=assignment, occ=occ, week=week,
                           opts=swap_options(assignment, members), errors=errors or {},
                           form=request.form), status


@bp.route("/team/assignments/<int:assignment_id>/swap", methods=["GET", "POST"])
@roles_required(Role.ORG_LEADER)
def swap(assignment_id: int):
    """Give a member's offer to another eligible member (GET shows who can take it)."""
    assignment = load_team_assignment(assignment_id, current_user)
    if request.method == "GET":
        return render_swap(assignment)
    week = rules.week_monday(assignment.occurrence.starts_at.date())
    volunteer_id = int_arg(request.form, "volunteer")
    volunteer = db.session.get(Volunteer, volunteer_id) if volunteer_id else None
    try:
        if volunteer is None:
            raise ValidationError({"volunteer": _("Choose an approved member of your organization.")})
        swap_member(assignment, volunteer, user=current_user)
    except ValidationError as exc:
        db.session.rollback()
        return render_swap(assignment, exc.errors, 400)
    except Conflict as exc:
        db.session.rollback()
        return render_swap(assignment, {"volunteer": exc.message}, 409)
    db.session.commit()
    flash(_("%(n)s now has the offer.", n=volunteer.real_name), "success")
    return redirect(url_for("team.index", week=week.isoformat()))


def render_hand_back(occ, errors=None, status=200):
    """The hand-back page of one service: what it is, who of the team is on it, the reason to give."""
    org = own_organization()
    ours = team_assignment_ids(org.id, [occ.id])
    mine = db.session.scalars(select(Assignment).where(
        Assignment.id.in_(ours), Assignment.status != AssignmentStatus.DECLINED)
        .options(selectinload(Assignment.volunteer)).order_by(Assignment.id)).all()
    handed = db.session.scalar(select(Handback.id).where(Handback.organization_id == org.id,
                                                         Handback.occurrence_id == occ.id)) is not None
    return render_template("team/hand_back.html", occ=occ, week=rules.week_monday(occ.starts_at.date()),
                           mine=mine, handed=handed, errors=errors or {}, form=request.form), status


@bp.route("/team/occurrences/<int:occurrence_id>/hand-back", methods=["GET", "POST"])
@roles_required(Role.ORG_LEADER)
def hand_back_service(occurrence_id: int):
    """Hand a dispatched service back to the coordinators, with a reason (GET shows the form)."""
    occ = load_team_occurrence(occurrence_id, current_user)
    if request.method == "GET":
        return render_hand_back(occ)
    week = rules.week_monday(occ.starts_at.date())
    try:
        hand_back(occ, own_organization(), request.form.get("reason"), user=current_user)
    except ValidationError as exc:
        db.session.rollback()
        return render_hand_back(occ, exc.errors, 400)
    db.session.commit()
    flash(_("The service was handed back; the coordinators were told."), "info")
    return redirect(url_for("team.index", week=week.isoformat()))


@bp.route("/team/members")
@roles_required(Role.ORG_LEADER)
def members():
    """Applications to approve or reject, and the members (a page at a time, searchable by name)."""
    return render_members(own_organization())


def age_group(volunteer: Volunteer) -> str:
    """"adult", "minor" (14–17), "child" (under 14) or "unknown", on today's date."""
    age = volunteers.age_on(volunteer, local_today())
    if age is None:
        return "unknown"
    return "adult" if age >= volunteers.ADULT_AGE else "minor" if age >= volunteers.SENSITIVE_AGE else "child"


AGE_GROUPS = {"adult": _l("18 or older"), "minor": _l("14 to 17"), "child": _l("under 14"), "unknown": _l("not known")}


MEMBERS_PAGE = 50


def render_members(org, errors=None, target=None, status=200):
    """The members page: every open application, then a page of the approved members, newest first (?q=
    a name, ?page=); `target` is the membership whose form `errors` belong to."""
    volunteer = selectinload(Membership.volunteer)
    applications = db.session.scalars(
        select(Membership).where(Membership.organization_id == org.id, Membership.status == MemberStatus.APPLIED)
        .options(volunteer.selectinload(Volunteer.skills), volunteer.selectinload(Volunteer.user),
                 volunteer.selectinload(Volunteer.slots), volunteer.selectinload(Volunteer.home_area))
        .order_by(Membership.applied_at, Membership.id)).all()
    q = text_arg("q", 40)
    # The newest members first: one just approved is at the top of the first page.
    approved = (select(Membership).join(Volunteer, Membership.volunteer_id == Volunteer.id)
                .where(Membership.organization_id == org.id, Membership.status == MemberStatus.APPROVED)
                .options(volunteer.selectinload(Volunteer.skills), volunteer.selectinload(Volunteer.user))
                .order_by(Membership.approved_at.is_(None), Membership.approved_at.desc(), Membership.id.desc()))
    if q:
        approved = approved.where(Volunteer.real_name.contains(q))
    page = db.paginate(approved, page=page_arg(), per_page=MEMBERS_PAGE, error_out=False)
    return render_template("team/members.html", org=org, applications=applications, approved=page.items,
                           page=page, q=q, age_group=age_group, age_groups=AGE_GROUPS,
                           format_slots=volunteers.format_slots, can_activate=links.can_activate,
                           errors=errors or {}, target=target, form=request.form), status


@bp.route("/team/members/<int:membership_id>/guardian-consent", methods=["POST"])
@roles_required(Role.ORG_LEADER)
def guardian_consent(membership_id: int):
    """Record that a young member's (or applicant's) guardian agreed: name, phone, relation."""
    membership = load_visible(Membership, membership_id, current_user)
    try:
        volunteers.record_guardian_consent(membership.volunteer, request.form, user=current_user)
    except ValidationError as exc:
        db.session.rollback()
        return render_members(own_organization(), exc.errors, membership_id, 400)
    db.session.commit()
    flash(_("The guardian's consent for %(n)s is recorded.", n=membership.volunteer.real_name), "success")
    return redirect(url_for("team.members"))


@bp.route("/team/members/<int:membership_id>/<any(approve, reject):action>", methods=["POST"])
@roles_required(Role.ORG_LEADER)
def decide(membership_id: int, action: str):
    """Approve or reject one application."""
    membership = load_visible(Membership, membership_id, current_user)
    name = membership.volunteer.real_name
    if action == "approve":
        approve_member(membership, user=current_user)
        message = _("%(n)s is now a member.", n=name)
    else:
        reject_member(membership, user=current_user)
        message = _("The application of %(n)s was rejected.", n=name)
    db.session.commit()
    flash(message, "success")
    return redirect(url_for("team.members"))
