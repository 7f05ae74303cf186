"""The community worker's and the organization leader's use cases.

Community worker: edit a demand before it is served, confirm a service was done, record the
resident's rating. Organization leader: hand a dispatched service back, swap a member for another
eligible one (checked against the hard rules at once), approve or reject applications.
Everyone: mark a notification read.

Like `operations`, every function validates first, raises ValidationError / DomainError /
Conflict with a message a person can act on, writes an audit entry, flushes and never commits.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, literal, select
from sqlalchemy.orm import selectinload
from sqlalchemy.orm.exc import StaleDataError

from . import problem, rules
from .access import can_change, team_assignment_filter
from .clock import local_now
from .db import db
from .eligibility import RULE_LABELS, assess
from .errors import AccessDenied, Conflict, DomainError, NotFound, ValidationError
from .models import (
    Area,
    Assignment,
    AssignmentStatus,
    AvailabilityException,
    Certificate,
    Demand,
    DemandOccurrence,
    DemandStatus,
    Handback,
    Membership,
    MemberStatus,
    Notification,
    Organization,
    Role,
    RunGap,
    Schedule,
    ScheduleStatus,
    SolveRun,
    User,
    Volunteer,
    utcnow,
)
from .operations import (
    OCCURRENCE_HORIZON_WEEKS,
    Fields,
    read_demand_place,
    read_demand_team,
    read_demand_what,
    read_demand_when,
    record_audit,
)
from .service import coordinators_for, credit_hours

# Assignments that occupy a volunteer's time for the swap check (as `eligibility.assess` judges them).
OCCUPYING = (AssignmentStatus.PROPOSED, AssignmentStatus.OFFERED, AssignmentStatus.ACCEPTED,
             AssignmentStatus.CHECKED_IN)
# Assignments whose minutes count towards the weekly limit.
COUNTING = (*OCCUPYING, AssignmentStatus.COMPLETED)
PENDING = (AssignmentStatus.PROPOSED, AssignmentStatus.OFFERED)
CLOSED = (DemandStatus.DONE, DemandStatus.CANCELLED)

STALE_DEMAND = _l("This demand was changed by someone else; reload and try again.")
STALE_ASSIGNMENT = _l("This service was changed meanwhile (e.g. a volunteer checked in); reload and try again.")


def _flush(stale_message) -> None:
    """Flush; a concurrent change of a versioned row becomes a Conflict asking to reload."""
    try:
        db.session.flush()
    except StaleDataError:
        raise Conflict(str(stale_message)) from None


def notify(users: Iterable[User], kind: str, text: Any, link: str = "") -> int:
    """Add one notification per user; returns how many."""
    count = 0
    for user in users:
        db.session.add(Notification(user_id=user.id, kind=kind, text=str(text)[:500], link=link[:200]))
        count += 1
    return count


# Where a volunteer answers offers (the volunteer pages).
OFFERS_LINK = "/me/offers"


def demand_link(demand_id: int) -> str:
    return f"/demands/{demand_id}"


# --------------------------------------------------------------------------- edit a demand


TIMING = ("starts_on", "start_minute", "duration_minutes", "weekdays", "repeat_until")


def update_demand(demand: Demand, data: Mapping[str, Any], *, user: User, version: int | None) -> dict[str, int]:
    """Change a demand before it is served (its community's worker only).

    Validates like `create_demand` (every bad field named, nothing written). When the time or the
    recurrence changed, future occurrences are re-dated: one whose start is unchanged keeps its id
    (and its assignments); one no longer wanted is removed, or cancelled when people were already
    assigned to it. If any of its occurrences lies in a published schedule's week, the coordinators
    over the community are notified. Returns counts {"added", "removed", "notified"}.
    """
    if not can_change(user, demand):
        raise AccessDenied(str(_l("Only the community's worker can edit this demand.")))
    if version is None or version != demand.version:
        raise Conflict(str(STALE_DEMAND))
    if demand.status in CLOSED:
        raise Conflict(str(_l("This demand is already closed (%(s)s) and cannot be edited.", s=demand.status.value)))
    f = Fields(data)
    values = read_demand_what(f, demand.community, demand.title)
    values.update(read_demand_place(f, demand.community, values["resident"]))
    values.update(read_demand_when(f))
    values.update(read_demand_team(f, data, values["category"], demand.category_id))
    f.check()
    now = local_now()
    weeks_before = _future_weeks(demand, now)
    retimed = any(getattr(demand, k) != values[k] for k in TIMING)
    changed = sorted(k for k, v in values.items() if getattr(demand, k) != v)
    for key, value in values.items():
        setattr(demand, key, value)
    demand.one_organization = f.flag("one_organization") if "one_organization" in data else demand.one_organization
    added = removed = 0
    if retimed:
        added, removed = _redate_occurrences(demand, now, user)
    _flush(STALE_DEMAND)
    notified = 0
    published = _published_schedules(demand.community, weeks_before | _future_weeks(demand, now))
    if published and changed:
        notified = notify(coordinators_for(demand.community), "demand_changed",
                          _l("Demand '%(t)s' in %(c)s was changed after the schedule was published; "
                             "check its assignments.", t=demand.title, c=demand.community.name),
                          demand_link(demand.id))
    record_audit(user, "update", demand, fields=changed, added=added, removed=removed, notified=notified)
    _flush(STALE_DEMAND)
    return {"added": added, "removed": removed, "notified": notified}


def _future_weeks(demand: Demand, now: datetime) -> set[date]:
    return {rules.week_monday(o.starts_at.date()) for o in demand.occurrences
            if o.starts_at >= now and o.status not in CLOSED}


def _published_schedules(community: Area, weeks: set[date]) -> list[Schedule]:
    if not weeks:
        return []
    return list(db.session.scalars(
        select(Schedule).join(Area, Schedule.area_id == Area.id)
        .where(Schedule.status == ScheduleStatus.PUBLISHED, Schedule.week_start.in_(weeks),
               literal(community.path).startswith(Area.path))))


def _redate_occurrences(demand: Demand, now: datetime, user: User) -> tuple[int, int]:
    """Bring future occurrences in line with the demand's (new) time and recurrence."""
    horizon = max(now.date(), demand.starts_on) + timedelta(weeks=OCCURRENCE_HORIZON_WEEKS)
    wanted = {}
    for day in rules.occurrence_dates(demand.starts_on, demand.weekday_list, demand.repeat_until,
                                      now.date(), horizon + timedelta(days=1)):
        start, end = rules.occurrence_span(day, demand.start_minute, demand.duration_minutes)
        if start >= now:
            wanted[start] = end
    occ_ids = [o.id for o in demand.occurrences if o.id is not None]
    staffed = defaultdict(list)
    for a in db.session.scalars(select(Assignment).where(Assignment.occurrence_id.in_(occ_ids))):
        staffed[a.occurrence_id].append(a)
    by_start = {o.starts_at: o for o in demand.occurrences}
    removed = 0
    for occ in list(demand.occurrences):
        if occ.starts_at < now or occ.status == DemandStatus.DONE:
            continue
        if occ.starts_at in wanted:
            occ.ends_at = wanted[occ.starts_at]
            if occ.status == DemandStatus.CANCELLED:
                occ.status = DemandStatus.OPEN
        elif occ.status == DemandStatus.CANCELLED:
            continue
        elif staffed[occ.id]:
            occ.status = DemandStatus.CANCELLED
            _withdraw(staffed[occ.id], occ, user)
            removed += 1
        else:
            demand.occurrences.remove(occ)
            removed += 1
    added = 0
    for start, end in wanted.items():
        if start not in by_start:
            db.session.add(DemandOccurrence(demand=demand, starts_at=start, ends_at=end, status=DemandStatus.OPEN))
            added += 1
    return added, removed


def _withdraw(assignments: list[Assignment], occ: DemandOccurrence, user: User) -> None:
    """A cancelled time: pending offers go, volunteers who had accepted are told."""
    for a in assignments:
        if a.status in PENDING:
            db.session.delete(a)
        elif a.status in (AssignmentStatus.ACCEPTED, AssignmentStatus.CHECKED_IN) and a.volunteer.user_id:
            db.session.add(Notification(
                user_id=a.volunteer.user_id, kind="service_cancelled", link=demand_link(occ.demand_id),
                text=str(_l("The service '%(t)s' on %(d)s no longer takes place at that time.",
                            t=occ.demand.title, d=occ.starts_at.strftime("%Y-%m-%d %H:%M")))))


def cancel_demand(demand: Demand, *, user: User, version: int | None = None) -> dict[str, int]:
    """Cancel a demand's coming occurrences: pending offers are withdrawn, volunteers who had accepted
    and the coordinators over the community are told. A stale version is a Conflict."""
    if version is not None and version != demand.version:
        raise Conflict(str(STALE_DEMAND))
    if demand.status in CLOSED:
        raise Conflict(str(_l("This demand is already closed (%(s)s).", s=demand.status.value)))
    demand.status = DemandStatus.CANCELLED
    now, cancelled = local_now(), 0
    for occ in demand.occurrences:
        if occ.starts_at >= now and occ.status not in CLOSED:
            occ.status = DemandStatus.CANCELLED
            cancelled += 1
            _withdraw(list(db.session.scalars(select(Assignment).where(Assignment.occurrence_id == occ.id))),
                      occ, user)
    notified = notify(coordinators_for(demand.community), "demand_cancelled",
                      _l("Demand '%(t)s' in %(c)s was cancelled.", t=demand.title, c=demand.community.name),
                      demand_link(demand.id)) if cancelled else 0
    record_audit(user, "cancel", demand, occurrences=cancelled, notified=notified)
    _flush(STALE_DEMAND)
    return {"cancelled": cancelled, "notified": notified}


# --------------------------------------------------------------------------- confirm and rate


def confirm_service(occurrence: DemandOccurrence, *, user: User, present: Iterable[int] = ()) -> dict[str, int]:
    """The community's worker confirms a service took place; returns counts per outcome.

    Checked-in volunteers and accepted ones ticked in `present` (assignment ids) are completed;
    those without a check-out are credited the service's duration (rounded like check-outs).
    Accepted ones not ticked become no-shows; unanswered offers are withdrawn. Newly credited
    hours are added to each volunteer's total.
    """
    demand = occurrence.demand
    if not can_change(user, demand):
        raise AccessDenied(str(_l("Only the community's worker can confirm this service.")))
    if occurrence.status == DemandStatus.DONE:
        raise Conflict(str(_l("This service was confirmed already.")))
    if occurrence.status == DemandStatus.CANCELLED:
        raise Conflict(str(_l("This service was cancelled.")))
    if occurrence.starts_at > local_now():
        raise DomainError(str(_l("This service has not started yet; confirm it once it took place.")))
    assignments = db.session.scalars(select(Assignment).where(Assignment.occurrence_id == occurrence.id)
                                     .options(selectinload(Assignment.volunteer))).all()
    f = Fields({})
    try:
        ticked = {int(x) for x in present}
    except (TypeError, ValueError):
        ticked = set()
        f.fail("present", _l("Tick the volunteers who were there."))
    eligible = {a.id for a in assignments if a.status in (AssignmentStatus.ACCEPTED, AssignmentStatus.CHECKED_IN)}
    if ticked - eligible:
        f.fail("present", _l("Only volunteers who accepted this service can be marked present."))
    f.check()
    counts = {"completed": 0, "no_show": 0, "withdrawn": 0}
    minutes = (occurrence.ends_at - occurrence.starts_at).total_seconds() / 60
    for a in assignments:
        if a.status == AssignmentStatus.CHECKED_IN or (a.status == AssignmentStatus.ACCEPTED and a.id in ticked):
            if a.credited_hours is None:
                if a.checked_in_at is not None and a.checked_out_at is not None:
                    a.credited_hours = credit_hours((a.checked_out_at - a.checked_in_at).total_seconds() / 60)
                else:
                    a.credited_hours = credit_hours(minutes)
            a.status = AssignmentStatus.COMPLETED
            a.volunteer.total_hours = Volunteer.total_hours + a.credited_hours
            counts["completed"] += 1
        elif a.status == AssignmentStatus.ACCEPTED:
            a.status = AssignmentStatus.NO_SHOW
            counts["no_show"] += 1
        elif a.status in PENDING:
            db.session.delete(a)
            counts["withdrawn"] += 1
    occurrence.status = DemandStatus.DONE
    if all(o.status in CLOSED for o in demand.occurrences):
        demand.status = DemandStatus.DONE
    record_audit(user, "confirm_service", occurrence, **counts)
    _flush(STALE_ASSIGNMENT)
    return counts


def rate_service(assignment: Assignment, rating: Any, comment: Any, *, user: User) -> None:
    """Record the resident's rating (1–5) and comment for a completed service (the community's worker)."""
    if not can_change(user, assignment.occurrence.demand):
        raise AccessDenied(str(_l("Only the community's worker can record a rating for this service.")))
    f = Fields({"rating": rating, "comment": comment})
    value = f.integer("rating", minimum=1, maximum=5)
    text = f.text("comment", max_length=500)
    if assignment.status != AssignmentStatus.COMPLETED:
        f.fail("rating", _l("Only a completed service can be rated."))
    f.check()
    assignment.rating, assignment.rating_comment, assignment.rated_by_id = value, text, user.id
    record_audit(user, "rate", assignment, rating=value)
    _flush(STALE_ASSIGNMENT)


# --------------------------------------------------------------------------- organization leader


def _require_leader(user: User, organization_id: int | None) -> None:
    if user.role == Role.ADMIN:
        return
    if user.role != Role.ORG_LEADER or organization_id is None or user.organization_id != organization_id:
        raise AccessDenied(str(_l("Only the leader of this organization can do this.")))


def dispatched_to(occurrence: DemandOccurrence, organization_id: int) -> bool:
    """Whether the occurrence is the organization's to serve (responsible, or its members on it)."""
    if occurrence.responsible_organization_id == organization_id:
        return True
    return db.session.scalar(select(Assignment.id).where(
        Assignment.occurrence_id == occurrence.id, team_assignment_filter(organization_id),
        Assignment.status.in_([*PENDING, *problem.HOLDING])).limit(1)) is not None


def hand_back(occurrence: DemandOccurrence, organization: Organization, reason: Any, *, user: User) -> int:
    """The organization gives a dispatched service back to the coordinators, with a reason.

    Its unanswered offers on it (see `access.team_assignment_filter`) are removed (accepted ones stay),
    the organization is no longer responsible for it, and the coordinators over the community are notified.
    Returns how many offers were removed.
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
    for a in offers:
        if a.volunteer.user_id and a.status == AssignmentStatus.OFFERED:
            notify([db.session.get(User, a.volunteer.user_id)], "offer_withdrawn",
                   _l("The offer for '%(t)s' on %(d)s was withdrawn by your organization.",
                      t=occurrence.demand.title, d=occurrence.starts_at.strftime("%Y-%m-%d %H:%M")))
        db.session.delete(a)
    db.session.add(Handback(occurrence_id=occurrence.id, organization_id=organization.id, user_id=user.id,
                            reason=text))
    if occurrence.responsible_organization_id == organization.id:
        occurrence.responsible_organization_id = None
    _flush(STALE_ASSIGNMENT)
    _refresh_status(occurrence)
    notify(coordinators_for(occurrence.demand.community), "handed_back",
           _l("%(o)s handed back '%(t)s' on %(d)s: %(r)s", o=organization.name, t=occurrence.demand.title,
              d=occurrence.starts_at.strftime("%Y-%m-%d %H:%M"), r=text),
           demand_link(occurrence.demand_id))
    record_audit(user, "hand_back", occurrence, organization=organization.id, removed=len(offers))
    _flush(STALE_ASSIGNMENT)
    return len(offers)


def _refresh_status(occurrence: DemandOccurrence) -> None:
    if occurrence.status in CLOSED:
        return
    filled = len(db.session.scalars(select(Assignment.id).where(
        Assignment.occurrence_id == occurrence.id, Assignment.status.in_([*PENDING, *problem.HOLDING]))).all())
    occurrence.status = DemandStatus.SCHEDULED if filled >= occurrence.demand.min_people else DemandStatus.OPEN


@dataclass
class Bookings:
    """What the hard-rule check needs to know about volunteers for one week, loaded in a few queries."""

    week_start: date
    exceptions: dict[int, list[AvailabilityException]] = field(default_factory=lambda: defaultdict(list))
    certificates: dict[int, list[Certificate]] = field(default_factory=lambda: defaultdict(list))
    assignments: dict[int, list[Assignment]] = field(default_factory=lambda: defaultdict(list))


def load_bookings(volunteer_ids: list[int], week_start: date) -> Bookings:
    """Dated exceptions, certificates and time-holding assignments of these volunteers around a week."""
    start, end = problem.week_span(week_start)
    book = Bookings(week_start)
    for exc in db.session.scalars(select(AvailabilityException).where(
            AvailabilityException.volunteer_id.in_(volunteer_ids), AvailabilityException.ends_at > start,
            AvailabilityException.starts_at < end)):
        book.exceptions[exc.volunteer_id].append(exc)
    for cert in db.session.scalars(select(Certificate).where(Certificate.volunteer_id.in_(volunteer_ids))
                                   .options(selectinload(Certificate.skill))):
        book.certificates[cert.volunteer_id].append(cert)
    for a in db.session.scalars(
            select(Assignment).join(DemandOccurrence)
            .where(Assignment.volunteer_id.in_(volunteer_ids), Assignment.status.in_(COUNTING),
                   DemandOccurrence.ends_at > start - timedelta(days=1),
                   DemandOccurrence.starts_at < end + timedelta(days=1))
            .options(selectinload(Assignment.occurrence).selectinload(DemandOccurrence.demand))):
        book.assignments[a.volunteer_id].append(a)
    return book


# The hard rules a hand edit can break, numbered as in `solver.validation` (rules 1–8).
def judge(occurrence: DemandOccurrence, volunteers: list[Volunteer], book: Bookings,
          ignore: int | None = None) -> dict[int, list[str]]:
    """Per volunteer id, the hard rules they would break on this occurrence (empty: eligible).

    The verdict is the solver's own rule check (`eligibility.assess`, rules 1–8 with their other
    assignments as commitments); each broken rule is then explained in a sentence from `rule_details`.
    `ignore` is an assignment left out (the one being swapped).
    """
    verdicts: dict[int, list[str]] = {}
    for cand in assess(occurrence, volunteers, ignore_assignment_id=ignore):
        vol = cand.volunteer
        problems = [] if vol.active else [str(_l("inactive volunteer"))]
        if cand.broken:
            details = rule_details(occurrence, vol, book, ignore)
            problems += [details.get(n) or str(RULE_LABELS.get(n, n)) for n in cand.broken]
        verdicts[vol.id] = problems
    return verdicts


def rule_details(occurrence: DemandOccurrence, volunteer: Volunteer, book: Bookings,
                 ignore: int | None = None) -> dict[int, str]:
    """Readable sentences for the rules a volunteer breaks on this occurrence, by rule number.

    Skills (a certificate skill only before its certificate expires), gender, the availability
    window, travel range, no overlap with their other services including travel time at
    25 km/h × 1.3 detour, and the weekly minutes.
    """
    demand = occurrence.demand
    day = occurrence.starts_at.date()
    found: dict[int, str] = {}
    valid = problem.skill_validity(volunteer, book.certificates[volunteer.id], book.week_start)
    missing = [s for s in demand.skills if not valid.holds_on(s.code, day)]
    if missing:
        found[1] = str(_l("skills: lacks %(s)s (or the certificate is not valid on %(d)s)",
                          s=", ".join(s.name_zh for s in missing), d=day.isoformat()))
    elif demand.skills_any and not any(valid.holds_on(s.code, day) for s in demand.skills_any):
        found[1] = str(_l("skills: needs one of %(s)s", s=", ".join(s.name_zh for s in demand.skills_any)))
    if demand.gender is not None and volunteer.gender != demand.gender:
        found[2] = str(_l("gender: this service asks for a volunteer of the other gender"))
    windows = problem.availability(volunteer, book.week_start, book.exceptions[volunteer.id])
    if not any(s <= occurrence.starts_at and occurrence.ends_at <= e for s, e in windows):
        found[4] = str(_l("availability: not free %(d)s %(a)s–%(b)s", d=day.isoformat(),
                          a=occurrence.starts_at.strftime("%H:%M"), b=occurrence.ends_at.strftime("%H:%M")))
    km = rules.road_km(volunteer.lat, volunteer.lon, demand.lat, demand.lon)
    if km > volunteer.max_travel_km + 1e-6:
        found[5] = str(_l("travel range: %(k).1f km away, travels at most %(m).1f km",
                          k=km, m=volunteer.max_travel_km))
    others = [a for a in book.assignments[volunteer.id] if a.id != ignore and a.occurrence_id != occurrence.id]
    clash = next((a for a in others if a.status in OCCUPYING and _too_close(occurrence, a.occurrence)), None)
    if clash is not None:
        found[7] = str(_l("overlap: busy with '%(t)s' %(a)s–%(b)s (including travel time)",
                          t=clash.occurrence.demand.title, a=clash.occurrence.starts_at.strftime("%m-%d %H:%M"),
                          b=clash.occurrence.ends_at.strftime("%H:%M")))
    week = rules.week_monday(day)
    used = sum(_minutes(a.occurrence) for a in others if rules.week_monday(a.occurrence.starts_at.date()) == week)
    if used + _minutes(occurrence) > volunteer.max_minutes_per_week:
        found[8] = str(_l("weekly minutes: %(u)d used of %(m)d, this service needs %(n)d",
                          u=used, m=volunteer.max_minutes_per_week, n=_minutes(occurrence)))
    return found


def _minutes(occ: DemandOccurrence) -> int:
    return int((occ.ends_at - occ.starts_at).total_seconds() // 60)


def _too_close(a: DemandOccurrence, b: DemandOccurrence) -> bool:
    """Overlap, or too little time to travel from the earlier to the later (`rules.too_close`)."""
    return rules.too_close(a.starts_at, a.ends_at, a.demand.lat, a.demand.lon,
                           b.starts_at, b.ends_at, b.demand.lat, b.demand.lon)


def approved_members(organization_id: int) -> list[Volunteer]:
    """The organization's approved members, with what the rule check reads."""
    return list(db.session.scalars(
        select(Volunteer).join(Membership, Membership.volunteer_id == Volunteer.id)
        .where(Membership.organization_id == organization_id, Membership.status == MemberStatus.APPROVED)
        .options(selectinload(Volunteer.skills), selectinload(Volunteer.slots))
        .order_by(Volunteer.real_name, Volunteer.id)))


def swap_options(assignment: Assignment, members: list[Volunteer], book: Bookings) -> list[tuple[Volunteer, list[str]]]:
    """Every other approved member with the rules they would break here (empty: eligible)."""
    occ = assignment.occurrence
    on_it = set(db.session.scalars(select(Assignment.volunteer_id).where(Assignment.occurrence_id == occ.id)))
    others = [v for v in members if v.id != assignment.volunteer_id]
    verdicts = judge(occ, [v for v in others if v.id not in on_it], book, ignore=assignment.id)
    already = [str(_l("already on this service (or declined it)"))]
    return [(v, already if v.id in on_it else verdicts[v.id]) for v in others]


def swap_member(assignment: Assignment, new_volunteer: Volunteer, *, user: User) -> Assignment:
    """Replace a member on a dispatched service by another approved member of the same organization.

    The new member must pass every hard rule on that date (each broken rule is named). The old
    assignment is removed; the new one is offered to the new member (proposed while the schedule
    is still a draft). An accepted service cannot be swapped: the volunteer has to decline it.
    """
    org_id = team_of(assignment, user)
    occ = assignment.occurrence
    if assignment.status not in PENDING:
        raise Conflict(str(_l("Only an offer that was not yet accepted can be swapped; ask the volunteer "
                              "to decline it first.")))
    if occ.status in CLOSED or occ.starts_at <= local_now():
        raise Conflict(str(_l("This service has already started or is closed.")))
    if not db.session.scalar(select(Membership.id).where(
            Membership.organization_id == org_id, Membership.volunteer_id == new_volunteer.id,
            Membership.status == MemberStatus.APPROVED)):
        raise ValidationError({"volunteer": str(_l("Choose an approved member of your organization."))})
    if new_volunteer.id == assignment.volunteer_id or db.session.scalar(select(Assignment.id).where(
            Assignment.occurrence_id == occ.id, Assignment.volunteer_id == new_volunteer.id)):
        raise ValidationError({"volunteer": str(_l("This member is already on this service (or declined it)."))})
    book = load_bookings([new_volunteer.id], rules.week_monday(occ.starts_at.date()))
    broken = judge(occ, [new_volunteer], book, ignore=assignment.id)[new_volunteer.id]
    if broken:
        raise ValidationError({"volunteer": str(_l("%(n)s cannot take this service: %(r)s.",
                                                    n=new_volunteer.real_name, r="; ".join(broken)))})
    old_volunteer = assignment.volunteer
    status = assignment.status
    replacement = Assignment(
        schedule_id=assignment.schedule_id, occurrence_id=occ.id, volunteer_id=new_volunteer.id,
        organization_id=org_id, status=status, pinned=assignment.pinned,
        offered_at=utcnow() if status == AssignmentStatus.OFFERED else None, reasons=["organization_swap"],
        distance_km=round(rules.road_km(new_volunteer.lat, new_volunteer.lon, occ.demand.lat,
                                        occ.demand.lon), 2))
    db.session.delete(assignment)
    _flush(STALE_ASSIGNMENT)
    db.session.add(replacement)
    _flush(STALE_ASSIGNMENT)
    when = occ.starts_at.strftime("%Y-%m-%d %H:%M")
    if status == AssignmentStatus.OFFERED:
        if new_volunteer.user_id:
            notify([db.session.get(User, new_volunteer.user_id)], "offer",
                   _l("New offer: '%(t)s' on %(d)s.", t=occ.demand.title, d=when), OFFERS_LINK)
        if old_volunteer.user_id:
            notify([db.session.get(User, old_volunteer.user_id)], "offer_withdrawn",
                   _l("The offer for '%(t)s' on %(d)s was given to another member of your organization.",
                      t=occ.demand.title, d=when))
    record_audit(user, "swap", replacement, occurrence=occ.id, old_volunteer=old_volunteer.id,
                 new_volunteer=new_volunteer.id)
    _flush(STALE_ASSIGNMENT)
    return replacement


def team_of(assignment: Assignment, user: User) -> int:
    """The organization in whose name `user` may change `assignment` (its leader's), else AccessDenied."""
    org_id = user.organization_id if user.role == Role.ORG_LEADER else (
        assignment.organization_id or assignment.occurrence.responsible_organization_id)
    _require_leader(user, org_id)
    if not db.session.scalar(select(Assignment.id).where(Assignment.id == assignment.id,
                                                         team_assignment_filter(org_id))):
        raise AccessDenied(str(_l("Only the leader of this organization can do this.")))
    return org_id


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


# --------------------------------------------------------------------------- notifications


def mark_read(notification: Notification, *, user: User) -> None:
    """Mark one of the user's own notifications read (someone else's is not found)."""
    if notification.user_id != user.id:
        raise NotFound(str(_l("not found")))
    if notification.read_at is None:
        notification.read_at = utcnow()
        db.session.flush()


def mark_all_read(user: User) -> int:
    """Mark every unread notification of the user read; returns how many."""
    notes = db.session.scalars(select(Notification).where(Notification.user_id == user.id,
                                                          Notification.read_at.is_(None))).all()
    for note in notes:
        note.read_at = utcnow()
    db.session.flush()
    return len(notes)


def unread_count(user: User) -> int:
    """How many of the user's notifications are unread."""
    return db.session.scalar(select(func.count(Notification.id)).where(
        Notification.user_id == user.id, Notification.read_at.is_(None))) or 0


# --------------------------------------------------------------------------- read models for the pages


@dataclass
class OccurrenceRow:
    """One occurrence on the worker's or the leader's week page."""

    occurrence: DemandOccurrence
    assignments: list[Assignment]
    gap: RunGap | None = None  # the RunGap of the newest applied run, if it left this occurrence short

    @property
    def accepted(self) -> int:
        return sum(1 for a in self.assignments if a.status in problem.HOLDING)

    @property
    def state(self) -> str:
        occ = self.occurrence
        if occ.status in CLOSED:
            return occ.status.value
        if self.accepted:
            return "accepted"
        if any(a.status in PENDING for a in self.assignments):
            return "scheduled"
        return "open"


def week_rows(occurrences: list[DemandOccurrence], community_ids: Iterable[int] | None = None,
              week_start: date | None = None) -> list[OccurrenceRow]:
    """Rows with each occurrence's assignments (declined left out) and its newest gap."""
    ids = [o.id for o in occurrences]
    by_occ: dict[int, list[Assignment]] = defaultdict(list)
    for a in db.session.scalars(select(Assignment).where(
            Assignment.occurrence_id.in_(ids), Assignment.status != AssignmentStatus.DECLINED)
            .options(selectinload(Assignment.volunteer)).order_by(Assignment.id)):
        by_occ[a.occurrence_id].append(a)
    gaps = newest_gaps(ids, occurrences, week_start)
    return [OccurrenceRow(o, by_occ[o.id], gaps.get(o.id)) for o in occurrences]


def newest_gaps(occurrence_ids: list[int], occurrences: list[DemandOccurrence], week_start: date | None) -> dict:
    """Per occurrence, the gap recorded by the newest applied run of a schedule containing it."""
    if not occurrence_ids or week_start is None:
        return {}
    communities = {o.demand.community for o in occurrences}
    result: dict[int, Any] = {}
    for community in communities:
        schedules = db.session.scalars(select(Schedule.id).join(Area, Schedule.area_id == Area.id).where(
            Schedule.week_start == week_start, literal(community.path).startswith(Area.path))).all()
        if not schedules:
            continue
        for sid in schedules:
            run_id = db.session.scalar(select(SolveRun.id).where(
                SolveRun.schedule_id == sid, SolveRun.applied_at.is_not(None)).order_by(SolveRun.id.desc()).limit(1))
            if run_id is None:
                continue
            for gap in db.session.scalars(select(RunGap).where(RunGap.run_id == run_id,
                                                               RunGap.occurrence_id.in_(occurrence_ids))):
                current = result.get(gap.occurrence_id)
                if current is None or current.run_id < gap.run_id:
                    result[gap.occurrence_id] = gap
    return result


def community_week(community: Area, week_start: date) -> list[OccurrenceRow]:
    """The community's occurrences of a week (cancelled ones included), in time order."""
    start, end = problem.week_span(week_start)
    occs = db.session.scalars(
        select(DemandOccurrence).join(Demand)
        .where(Demand.community_id == community.id, DemandOccurrence.starts_at >= start,
               DemandOccurrence.starts_at < end)
        .options(selectinload(DemandOccurrence.demand).selectinload(Demand.community))
        .order_by(DemandOccurrence.starts_at, DemandOccurrence.id)).all()
    return week_rows(list(occs), week_start=week_start)


def organization_week(organization: Organization, week_start: date) -> list[OccurrenceRow]:
    """Occurrences of a week dispatched to the organization (responsible, or its assignments on them)."""
    start, end = problem.week_span(week_start)
    via_members = select(Assignment.occurrence_id).where(
        team_assignment_filter(organization.id), Assignment.status.in_([*PENDING, *problem.HOLDING]))
    occs = db.session.scalars(
        select(DemandOccurrence)
        .where((DemandOccurrence.responsible_organization_id == organization.id)
               | DemandOccurrence.id.in_(via_members),
               DemandOccurrence.starts_at >= start, DemandOccurrence.starts_at < end)
        .options(selectinload(DemandOccurrence.demand).selectinload(Demand.community))
        .order_by(DemandOccurrence.starts_at, DemandOccurrence.id)).all()
    return week_rows(list(occs), week_start=week_start)


def team_assignment_ids(organization_id: int, occurrence_ids: list[int]) -> set[int]:
    """Ids of the organization's assignments on these occurrences."""
    return set(db.session.scalars(select(Assignment.id).where(
        Assignment.occurrence_id.in_(occurrence_ids), team_assignment_filter(organization_id))))


def member_load(members: list[Volunteer], book: Bookings) -> list[tuple[Volunteer, int]]:
    """Minutes each member is offered, booked or has served in the week, busiest first."""
    end = book.week_start + timedelta(days=7)
    load = [(v, sum(_minutes(a.occurrence) for a in book.assignments[v.id]
                    if book.week_start <= a.occurrence.starts_at.date() < end)) for v in members]
    return sorted(load, key=lambda item: -item[1])
