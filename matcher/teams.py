"""Use cases that change an organization's team: memberships, swaps, hand-backs.

The organization leader approves or turns down applications, gives a member's service to another
eligible member (judged by the solver's own referee, `eligibility.assess`, and booked under
`assignments.lock_booking`), and hands a dispatched service back to the coordinators. Each function
validates, flushes and never commits.

"Dispatched to this organization" has one definition, `access.team_occurrence_filter`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import date
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from . import problem, rules
from .access import serving_organizations, team_assignment_filter, team_occurrence_filter
from .assignments import STALE_ASSIGNMENT, check_bookable, lock_booking, refresh_occurrence_status, withdraw
from .audit import record_audit
from .clock import local_now
from .db import db, flush_or_conflict
from .eligibility import assess, explanations
from .errors import AccessDenied, Conflict, NotFound, ValidationError
from .fields import MAX_ROW_ID, Fields
from .models import (
    CLOSED,
    FILLING,
    PENDING,
    Assignment,
    AssignmentStatus,
    DemandOccurrence,
    Handback,
    Membership,
    MemberStatus,
    Organization,
    Role,
    User,
    Volunteer,
    utcnow,
)
from .notifications import demand_link, notify, tell_coordinators, tell_volunteers
from .volunteers import guardian_problem, tell_of_applicant

# What a leader may hand to another member: an unanswered offer, or a service accepted but not begun.
SWAPPABLE = (*PENDING, AssignmentStatus.ACCEPTED)


def _require_leader(user: User, organization_id: int | None) -> None:
    if user.role == Role.ADMIN:
        return
    if user.role != Role.ORG_LEADER or organization_id is None or user.organization_id != organization_id:
        raise AccessDenied(str(_l("Only the leader of this organization can do this.")))


def dispatched_to(occurrence: DemandOccurrence, organization_id: int) -> bool:
    """Whether the occurrence is the organization's to serve (see `access.team_occurrence_filter`)."""
    return db.session.scalar(select(DemandOccurrence.id).where(
        DemandOccurrence.id == occurrence.id, team_occurrence_filter(organization_id))) is not None


def team_of(assignment: Assignment, user: User) -> int:
    """The organization in whose name `user` may change `assignment` (its leader's), else AccessDenied."""
    org_id = user.organization_id if user.role == Role.ORG_LEADER else (
        assignment.organization_id or assignment.occurrence.responsible_organization_id)
    _require_leader(user, org_id)
    if not db.session.scalar(select(Assignment.id).where(Assignment.id == assignment.id,
                                                         team_assignment_filter(org_id))):
        raise AccessDenied(str(_l("Only the leader of this organization can do this.")))
    return org_id


# --------------------------------------------------------------------------- hand a service back


def hand_back(occurrence: DemandOccurrence, organization: Organization, reason: Any, *, user: User) -> int:
    """The organization gives a dispatched service back to the coordinators, with a reason.

    Its unanswered offers on it (see `access.team_assignment_filter`) are withdrawn, their volunteers
    told (accepted ones stay), the organization is no longer responsible for it, and the coordinators
    over the community are notified. Returns how many offers were withdrawn.
    """
    _require_leader(user, organization.id)
    f = Fields({"reason": reason})
    text = f.text("reason", required=True, max_length=300)
    f.check()
    if not dispatched_to(occurrence, organization.id):
        raise NotFound(str(_l("This service is not dispatched to your organization.")))
    if occurrence.status in CLOSED or occurrence.starts_at <= local_now():
        raise Conflict(str(_l("This service has already started or is closed; it cannot be handed back.")))
    if db.session.scalar(select(Handback.id).where(Handback.occurrence_id == occurrence.id,
                                                   Handback.organization_id == organization.id)):
        raise Conflict(str(_l("Your organization has already handed this service back.")))
    offers = db.session.scalars(select(Assignment).where(
        Assignment.occurrence_id == occurrence.id, team_assignment_filter(organization.id),
        Assignment.status.in_(PENDING)).options(selectinload(Assignment.volunteer))).all()
    withdrawn = withdraw(offers, _l("Your organization handed the service back."))["withdrawn"]
    db.session.add(Handback(occurrence_id=occurrence.id, organization_id=organization.id, user_id=user.id,
                            reason=text))
    if occurrence.responsible_organization_id == organization.id:
        occurrence.responsible_organization_id = None
    flush_or_conflict(STALE_ASSIGNMENT)
    refresh_occurrence_status([occurrence])
    tell_coordinators(occurrence.demand.community, "handed_back",
                      _l("%(o)s handed back '%(t)s' on %(d)s: %(r)s", o=organization.name, t=occurrence.demand.title,
                         d=occurrence.starts_at.strftime("%Y-%m-%d %H:%M"), r=text),
                      demand_link(occurrence.demand_id))
    record_audit(user, "hand_back", occurrence, organization=organization.id, removed=withdrawn)
    flush_or_conflict(STALE_ASSIGNMENT)
    return withdrawn


# --------------------------------------------------------------------------- swap a member


def approved_members(organization_id: int) -> list[Volunteer]:
    """The organization's approved members (the rule check reads their skills and free time as rows)."""
    return list(db.session.scalars(
        select(Volunteer).join(Membership, Membership.volunteer_id == Volunteer.id)
        .where(Membership.organization_id == organization_id, Membership.status == MemberStatus.APPROVED)
        .order_by(Volunteer.real_name, Volunteer.id)))


def judge(occurrence: DemandOccurrence, volunteers: list[Volunteer], ignore: int | None = None) -> dict[int, list[str]]:
    """Per volunteer id, the hard rules they would break on this occurrence, in words (empty: eligible).

    The verdict is the solver's own (`eligibility.assess`); `ignore` is an assignment left out (the one
    being swapped away).
    """
    verdicts: dict[int, list[str]] = {}
    for cand in assess(occurrence, volunteers, ignore_assignment_id=ignore):
        problems = [] if cand.volunteer.active else [str(_l("inactive volunteer"))]
        verdicts[cand.volunteer.id] = problems + explanations(cand, occurrence)
    return verdicts


def swap_options(assignment: Assignment, members: list[Volunteer]) -> list[tuple[Volunteer, list[str]]]:
    """Every other approved member with the rules they would break here (empty: eligible)."""
    occ = assignment.occurrence
    on_it = set(db.session.scalars(select(Assignment.volunteer_id).where(Assignment.occurrence_id == occ.id)))
    others = [v for v in members if v.id != assignment.volunteer_id]
    verdicts = judge(occ, [v for v in others if v.id not in on_it], ignore=assignment.id)
    already = [str(_l("already on this service (or declined it)"))]
    return [(v, already if v.id in on_it else verdicts[v.id]) for v in others]


def swap_member(assignment: Assignment, new_volunteer: Volunteer, *, user: User, lock: bool = True,
                _pause: Callable[[], None] | None = None) -> Assignment:
    """Give a member's service on a dispatched occurrence to another approved member of the organization.

    An unanswered offer moves as an offer (proposed while the schedule is a draft); a service the
    member accepted but has not begun is handed over as accepted (the leader arranged it with the new
    member). The new member must pass every hard rule on that date (each broken rule is named), and
    is locked like any booking (`lock_booking`) so two swaps, or a swap and an acceptance, cannot book
    them twice. Both members are told. `lock=False` and `_pause` exist for the concurrency test only.
    """
    org_id = team_of(assignment, user)
    occ = assignment.occurrence
    if assignment.status not in SWAPPABLE:
        raise Conflict(str(_l("Only an offer, or a service accepted but not begun, can be given to another "
                              "member.")))
    if occ.status in CLOSED or occ.starts_at <= local_now():
        raise Conflict(str(_l("This service has already started or is closed.")))
    if not db.session.scalar(select(Membership.id).where(
            Membership.organization_id == org_id, Membership.volunteer_id == new_volunteer.id,
            Membership.status == MemberStatus.APPROVED)):
        raise ValidationError({"volunteer": str(_l("Choose an approved member of your organization."))})
    if new_volunteer.id == assignment.volunteer_id or db.session.scalar(select(Assignment.id).where(
            Assignment.occurrence_id == occ.id, Assignment.volunteer_id == new_volunteer.id)):
        raise ValidationError({"volunteer": str(_l("This member is already on this service (or declined it)."))})
    minor = guardian_problem(new_volunteer, occ.starts_at.date())
    if minor:
        raise ValidationError({"volunteer": minor})
    if lock:
        lock_booking(new_volunteer.id, occ.id)
    broken = judge(occ, [new_volunteer], ignore=assignment.id)[new_volunteer.id]
    if broken:
        raise ValidationError({"volunteer": str(_l("%(n)s cannot take this service: %(r)s.",
                                                    n=new_volunteer.real_name, r="; ".join(broken)))})
    status = assignment.status
    if status == AssignmentStatus.ACCEPTED:
        check_bookable(new_volunteer.id, occ, exclude=assignment.id, own=False)
    if _pause is not None:
        _pause()
    old_volunteer = assignment.volunteer
    replacement = Assignment(
        schedule_id=assignment.schedule_id, occurrence_id=occ.id, volunteer_id=new_volunteer.id,
        organization_id=org_id, status=status, pinned=assignment.pinned,
        offered_at=utcnow() if status != AssignmentStatus.PROPOSED else None, reasons=["organization_swap"],
        distance_km=round(rules.road_km(new_volunteer.lat, new_volunteer.lon, occ.demand.lat,
                                        occ.demand.lon), 2))
    why = _l("Your organization gave it to another member.")
    if status == AssignmentStatus.OFFERED:
        tell_volunteers("offer_withdrawn", [assignment], why)
    elif status == AssignmentStatus.ACCEPTED:
        tell_volunteers("service_taken", [assignment], why)
    db.session.delete(assignment)
    flush_or_conflict(STALE_ASSIGNMENT)
    db.session.add(replacement)
    flush_or_conflict(STALE_ASSIGNMENT)
    if status == AssignmentStatus.OFFERED:
        tell_volunteers("offer", [replacement])
    elif status == AssignmentStatus.ACCEPTED:
        tell_volunteers("service_given", [replacement])
    record_audit(user, "swap", replacement, occurrence=occ.id, old_volunteer=old_volunteer.id,
                 new_volunteer=new_volunteer.id, status=status.value)
    flush_or_conflict(STALE_ASSIGNMENT)
    return replacement


def member_load(members: list[Volunteer], week_start: date) -> list[tuple[Volunteer, int]]:
    """Minutes each member is proposed, offered, booked or has served in the week, busiest first."""
    start, end = problem.week_span(week_start)
    minutes: dict[int, int] = defaultdict(int)
    for vid, starts, ends in db.session.execute(
            select(Assignment.volunteer_id, DemandOccurrence.starts_at, DemandOccurrence.ends_at)
            .join(DemandOccurrence, Assignment.occurrence_id == DemandOccurrence.id)
            .where(Assignment.volunteer_id.in_([m.id for m in members]), Assignment.status.in_(FILLING),
                   DemandOccurrence.starts_at >= start, DemandOccurrence.starts_at < end)):
        minutes[vid] += int((ends - starts).total_seconds() // 60)
    return sorted(((v, minutes[v.id]) for v in members), key=lambda item: -item[1])


# --------------------------------------------------------------------------- memberships


# Applications one volunteer may have open at once (a leader reviews each by hand).
MAX_OPEN_APPLICATIONS = 3


def joinable_organizations(volunteer: Volunteer) -> list[Organization]:
    """Organizations serving the volunteer's home community that they have not joined or applied to."""
    taken = {m.organization_id for m in volunteer.memberships}
    serving = db.session.scalars(select(Organization).where(serving_organizations(volunteer.home_area))
                                 .order_by(Organization.name))
    return [o for o in serving if o.id not in taken]


def apply_to_join(volunteer: Volunteer, data: Any, *, user: User) -> Membership:
    """The volunteer applies to join an organization serving their community (its leader approves).

    The way on for someone every organization turned down, or who wants to serve with another one.
    Raises ValidationError naming `organization`; flushes, never commits; audited; the leaders and the
    community's workers are told."""
    f = Fields(data)
    organization_id = f.integer("organization", minimum=1, maximum=MAX_ROW_ID)
    f.check()
    organization = next((o for o in joinable_organizations(volunteer) if o.id == organization_id), None)
    if organization is None:
        raise ValidationError({"organization": str(_l(
            "Choose an organization from the list: one serving your community that you have not joined yet."))})
    open_count = sum(1 for m in volunteer.memberships if m.status == MemberStatus.APPLIED)
    if open_count >= MAX_OPEN_APPLICATIONS:
        raise ValidationError({"organization": str(_l(
            "You have %(n)d applications waiting already; wait for an answer first.", n=open_count))})
    membership = Membership(organization=organization, volunteer=volunteer, status=MemberStatus.APPLIED)
    db.session.add(membership)
    try:
        db.session.flush()
    except IntegrityError:  # the same application sent twice at once
        raise Conflict(str(_l("This application was sent already."))) from None
    record_audit(user, "apply_member", membership, organization=organization.id)
    tell_of_applicant(volunteer, [organization])
    return membership


def approve_member(membership: Membership, *, user: User) -> None:
    """Approve an application to join the organization (its leader only)."""
    _require_leader(user, membership.organization_id)
    if membership.status == MemberStatus.APPROVED:
        raise Conflict(str(_l("This member is approved already.")))
    membership.status = MemberStatus.APPROVED
    membership.approved_at = utcnow()
    if membership.volunteer.user_id:
        notify([db.session.get(User, membership.volunteer.user_id)], "membership_approved",
               _l("You are now a member of %(o)s.", o=membership.organization.name))
    record_audit(user, "approve_member", membership, organization=membership.organization_id)
    db.session.flush()


def reject_member(membership: Membership, *, user: User) -> None:
    """Turn down an application to join the organization (its leader only); the application is removed."""
    _require_leader(user, membership.organization_id)
    if membership.status != MemberStatus.APPLIED:
        raise Conflict(str(_l("Only an open application can be rejected.")))
    if membership.volunteer.user_id:
        notify([db.session.get(User, membership.volunteer.user_id)], "membership_rejected",
               _l("Your application to %(o)s was not accepted.", o=membership.organization.name))
    record_audit(user, "reject_member", membership, organization=membership.organization_id,
                 volunteer=membership.volunteer_id)
    db.session.delete(membership)
    db.session.flush()
