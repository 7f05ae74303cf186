"""Volunteer service records (Ministry of Civil Affairs Order No. 67): what a volunteer's record holds,
what organizations add to it (training, commendations), corrections a volunteer asks for and the
organization's decision, and numbered certificates with a public verification link.

The record is read from the rows, never kept twice: each completed service (`Assignment`, status
completed) with what, when, where (a station or the community; a resident's home only as such, never
its address), the credited hours and the resident's rating, and the organization that recorded it
(the one the service was sent through, else the volunteer's approved organization: the same rule as
the API's `/records/services`); plus the `RecordEntry` rows. `record_content` gives it as plain JSON,
which is what a certificate freezes and what its verification page compares with the record now.

Who may do what:
- read a record: the volunteer themself; an administrator; a coordinator for volunteers living in their
  area; an organization leader for their organization's approved members (`can_read_record`);
- add training or a commendation: a leader for their members (their organization records it); a
  coordinator (or administrator) within their area, on behalf of one of the volunteer's organizations;
- ask for a correction: the volunteer, about their own record; it goes to the recording organization;
- decide it: that organization's leader, or a coordinator over the volunteer's home area, or an
  administrator (`can_decide`); rejecting needs a reason; accepting an hours correction sets the
  service's credited hours and moves the volunteer's total by the difference, in SQL as check-outs do;
- issue a certificate: the volunteer themself (they choose what it shows); revoke it: they or an
  administrator. Its verification code is 128 random bits; the page shows only the chosen fields.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import exists, false, select, true
from sqlalchemy.orm import selectinload

from .access import as_id, user_area
from .assignments import STALE_ASSIGNMENT
from .audit import record_audit
from .clock import local_today
from .db import db, flush_or_conflict
from .errors import AccessDenied, Conflict, NotFound
from .fields import MAX_ROW_ID, Fields, parse_int
from .models import (
    Area,
    Assignment,
    AssignmentStatus,
    CorrectionState,
    Demand,
    DemandOccurrence,
    EntryKind,
    LocationKind,
    Membership,
    MemberStatus,
    Organization,
    RecordCertificate,
    RecordCorrection,
    RecordEntry,
    Role,
    User,
    Volunteer,
    utcnow,
)
from .notifications import Link, notify

# What a certificate may show; the volunteer chooses (the period is always printed on the PDF itself).
SHOWABLE = ("name", "hours", "services", "organizations", "training", "commendations", "period")
SHOWABLE_LABELS = {
    "name": _l("Name"), "hours": _l("Service hours"), "services": _l("Services"),
    "organizations": _l("Organizations"), "training": _l("Training"), "commendations": _l("Commendations"),
    "period": _l("Period"),
}
# What a correction may be about.
CORRECTION_FIELDS = ("hours", "missing", "entry", "other")
CORRECTION_LABELS = {
    "hours": _l("A service's hours"), "missing": _l("A service missing from the record"),
    "entry": _l("Training or a commendation"), "other": _l("Something else"),
}
MAX_HOURS = Decimal("24")  # one service's hours at most
TENTH = Decimal("0.1")
CODE_PATTERN = re.compile(r"[A-Za-z0-9_-]{22}")  # secrets.token_urlsafe(16): 128 bits
NUMBER_PREFIX = "LL"
MY_CORRECTIONS = Link("records.my_corrections")


# --- who may do what -----------------------------------------------------------------------------


def _approved_in(volunteer_id: int, organization_id: int | None) -> bool:
    if organization_id is None:
        return False
    return db.session.scalar(select(Membership.id).where(
        Membership.volunteer_id == volunteer_id, Membership.organization_id == organization_id,
        Membership.status == MemberStatus.APPROVED)) is not None


def _in_area(user: User, volunteer: Volunteer) -> bool:
    """Whether the volunteer lives within the coordinator's area (the area itself or below)."""
    area = user_area(user)
    home = db.session.get(Area, volunteer.home_area_id)
    return area is not None and home is not None and (home.path or "").startswith(area.path or "\0")


def can_read_record(user: User, volunteer: Volunteer) -> bool:
    """Whether `user` may read `volunteer`'s service record."""
    if user.role == Role.ADMIN:
        return True
    if user.role == Role.VOLUNTEER:
        return volunteer.user_id == user.id
    if user.role == Role.COORDINATOR:
        return _in_area(user, volunteer)
    if user.role == Role.ORG_LEADER:
        return _approved_in(volunteer.id, user.organization_id)
    return False


def record_volunteers(user: User):
    """A filter on Volunteer: the records an organization-side user reads (not volunteers: their own only)."""
    if user.role == Role.ADMIN:
        return true()
    if user.role == Role.COORDINATOR:
        area = user_area(user)
        if area is None:
            return false()
        return Volunteer.home_area_id.in_(select(Area.id).where(Area.path.startswith(area.path)))
    if user.role == Role.ORG_LEADER and user.organization_id is not None:
        return exists().where(Membership.volunteer_id == Volunteer.id,
                              Membership.organization_id == user.organization_id,
                              Membership.status == MemberStatus.APPROVED)
    return false()


def load_record_volunteer(volunteer_id: Any, user: User) -> Volunteer:
    """A volunteer whose record an organization-side user reads, else NotFound."""
    volunteer = db.session.scalar(select(Volunteer).where(Volunteer.id == as_id(volunteer_id),
                                                          record_volunteers(user)))
    if volunteer is None:
        raise NotFound("not found")
    return volunteer


def can_decide(user: User, correction: RecordCorrection) -> bool:
    """Whether `user` decides the correction: the recording organization's leader, a coordinator over
    the volunteer's home area, an administrator."""
    if user.role == Role.ADMIN:
        return True
    if user.role == Role.ORG_LEADER:
        return correction.organization_id is not None and correction.organization_id == user.organization_id
    if user.role == Role.COORDINATOR:
        return _in_area(user, correction.volunteer)
    return False


def decision_filter(user: User):
    """A filter on RecordCorrection: those `user` decides (see `can_decide`)."""
    if user.role == Role.ADMIN:
        return true()
    if user.role == Role.ORG_LEADER and user.organization_id is not None:
        return RecordCorrection.organization_id == user.organization_id
    if user.role == Role.COORDINATOR:
        return RecordCorrection.volunteer_id.in_(select(Volunteer.id).where(record_volunteers(user)))
    return false()


def corrections_to_decide(user: User, *, limit: int = 200) -> list[RecordCorrection]:
    """The corrections `user` decides: open ones first (oldest first), then the latest decided."""
    stmt = (select(RecordCorrection).where(decision_filter(user))
            .options(selectinload(RecordCorrection.volunteer), selectinload(RecordCorrection.organization)))
    waiting = db.session.scalars(stmt.where(RecordCorrection.state == CorrectionState.OPEN)
                                 .order_by(RecordCorrection.created_at, RecordCorrection.id).limit(limit)).all()
    decided = db.session.scalars(stmt.where(RecordCorrection.state != CorrectionState.OPEN)
                                 .order_by(RecordCorrection.decided_at.desc(), RecordCorrection.id.desc())
                                 .limit(limit)).all()
    return [*waiting, *decided]


def load_correction(correction_id: Any, user: User) -> RecordCorrection:
    """A correction the user decides, else NotFound."""
    found = db.session.scalar(select(RecordCorrection).where(RecordCorrection.id == as_id(correction_id),
                                                             decision_filter(user)))
    if found is None:
        raise NotFound("not found")
    return found


def own_corrections(volunteer: Volunteer) -> list[RecordCorrection]:
    """The volunteer's correction requests, newest first."""
    return list(db.session.scalars(select(RecordCorrection).where(RecordCorrection.volunteer_id == volunteer.id)
                                   .options(selectinload(RecordCorrection.organization))
                                   .order_by(RecordCorrection.created_at.desc(), RecordCorrection.id.desc())))


# --- the record ---------------------------------------------------------------------------------


def by_approval(memberships: Iterable[Membership]) -> list[Organization]:
    """The organizations of the approved memberships, the earliest approved first (the first one records
    a service sent through no organization)."""
    approved = [m for m in memberships if m.status == MemberStatus.APPROVED]
    approved.sort(key=lambda m: (m.approved_at is None, m.approved_at or datetime.min, m.id))
    return [m.organization for m in approved]


def approved_organizations(volunteer: Volunteer) -> list[Organization]:
    """The volunteer's approved organizations, the earliest approved first (the default recorder)."""
    return by_approval(db.session.scalars(select(Membership).where(
        Membership.volunteer_id == volunteer.id, Membership.status == MemberStatus.APPROVED)
        .options(selectinload(Membership.organization))))


def _hours(value: Any) -> str | None:
    return None if value is None else str(Decimal(str(value)).quantize(TENTH))


def _place(demand: Demand) -> dict[str, str]:
    """Where a service was, as a record may say it: a station's name, else the community (a resident's
    home only as such: never its address)."""
    if demand.location_kind == LocationKind.STATION and demand.station is not None:
        return {"kind": "station", "name": demand.station.name}
    if demand.location_kind == LocationKind.HOME:
        return {"kind": "home", "name": demand.community.name}
    return {"kind": "community", "name": demand.community.name}


def completed_services(volunteer: Volunteer, start: date | None = None, end: date | None = None) -> list[Assignment]:
    """The volunteer's completed services (within [start, end] by their day), in time order."""
    stmt = (select(Assignment).join(DemandOccurrence, Assignment.occurrence_id == DemandOccurrence.id)
            .where(Assignment.volunteer_id == volunteer.id, Assignment.status == AssignmentStatus.COMPLETED))
    if start is not None:
        stmt = stmt.where(DemandOccurrence.starts_at >= datetime.combine(start, time()))
    if end is not None:
        stmt = stmt.where(DemandOccurrence.starts_at < datetime.combine(end + timedelta(days=1), time()))
    occurrence = selectinload(Assignment.occurrence).selectinload(DemandOccurrence.demand)
    return list(db.session.scalars(stmt.options(
        occurrence.selectinload(Demand.category), occurrence.selectinload(Demand.community),
        occurrence.selectinload(Demand.station)).order_by(DemandOccurrence.starts_at, Assignment.id)))


def record_entries(volunteer: Volunteer, start: date | None = None, end: date | None = None) -> list[RecordEntry]:
    """The volunteer's training and commendations (within [start, end]), in date order."""
    stmt = select(RecordEntry).where(RecordEntry.volunteer_id == volunteer.id)
    if start is not None:
        stmt = stmt.where(RecordEntry.on >= start)
    if end is not None:
        stmt = stmt.where(RecordEntry.on <= end)
    return list(db.session.scalars(stmt.options(selectinload(RecordEntry.organization))
                                   .order_by(RecordEntry.on, RecordEntry.id)))


def recording_organization(assignment: Assignment, default: Organization | None) -> Organization | None:
    """The organization that recorded a service: the one it was sent through, else `default` (the
    volunteer's approved organization)."""
    if assignment.organization_id is not None:
        return db.session.get(Organization, assignment.organization_id)
    return default


def record_content(volunteer: Volunteer, start: date | None = None, end: date | None = None) -> dict[str, Any]:
    """The volunteer's service record for a period as plain JSON (what a certificate freezes).

    `hours` is the sum of the services' credited hours in the period (a certificate certifies the
    services on the record); `total_hours` the volunteer's hours to date as the record keeps them."""
    organizations = approved_organizations(volunteer)
    default = organizations[0] if organizations else None
    services, named = [], {o.name for o in organizations}
    total = Decimal("0")
    for a in completed_services(volunteer, start, end):
        occ, demand = a.occurrence, a.occurrence.demand
        org = recording_organization(a, default)
        if org is not None:
            named.add(org.name)
        total += a.credited_hours or 0
        services.append({
            "id": a.id, "date": occ.starts_at.date().isoformat(), "start": occ.starts_at.strftime("%H:%M"),
            "end": occ.ends_at.strftime("%H:%M"), "title": demand.title,
            "category": {"code": demand.category.code, "zh": demand.category.name_zh,
                         "en": demand.category.name_en} if demand.category else None,
            "place": _place(demand), "hours": _hours(a.credited_hours), "rating": a.rating,
            "organization": org.name if org else None,
        })
    training, commendations = [], []
    for e in record_entries(volunteer, start, end):
        named.add(e.organization.name)
        item = {"id": e.id, "title": e.title, "on": e.on.isoformat(), "hours": _hours(e.hours), "note": e.note,
                "organization": e.organization.name}
        (training if e.kind == EntryKind.TRAINING else commendations).append(item)
    return {
        "name": volunteer.real_name,
        "period": {"start": start.isoformat() if start else None, "end": end.isoformat() if end else None},
        "hours": _hours(total), "total_hours": _hours(volunteer.total_hours or 0), "service_count": len(services),
        "services": services, "training": training, "commendations": commendations,
        "organizations": sorted(named),
    }


def shown_part(content: dict[str, Any], shown: list[str]) -> dict[str, Any]:
    """Only the fields the volunteer chose to show (the hours come with their count of services)."""
    part: dict[str, Any] = {}
    for name in shown:
        if name == "hours":
            part["hours"] = content.get("hours")
            part["service_count"] = content.get("service_count")
        elif name in content:
            part[name] = content[name]
    return part


# --- training and commendations -------------------------------------------------------------------


def add_entry(volunteer: Volunteer, data: dict[str, Any], *, user: User) -> RecordEntry:
    """Record training or a commendation on a volunteer's record.

    A leader records it for an approved member, as their organization; a coordinator (or an
    administrator) within their area, naming one of the volunteer's approved organizations
    (`organization`, the first by default). Fields: kind (training, commendation), title, on
    (YYYY-MM-DD, not in the future), hours (training only, optional, 0.5–999), note."""
    if user.role not in (Role.ADMIN, Role.COORDINATOR, Role.ORG_LEADER) or not can_read_record(user, volunteer):
        raise AccessDenied(str(_l("Only the volunteer's organization or a coordinator of their area records this.")))
    f = Fields(data)
    kind = f.choice("kind", EntryKind, required=True)
    title = f.text("title", required=True, max_length=120)
    today = local_today()
    on = f.date("on", earliest=date(2000, 1, 1), latest=today)
    note = f.text("note", max_length=500)
    hours = None
    raw_hours = data.get("hours")
    if raw_hours not in (None, ""):
        value = f.number("hours")
        if value is not None:  # (range first: 1e30 hours has no tenths to round to)
            if not 0.05 <= value < 999.05:
                f.fail("hours", _l("Enter hours from 0.1 to 999."))
            elif kind == EntryKind.COMMENDATION:
                f.fail("hours", _l("A commendation has no hours; leave this empty."))
            else:
                hours = Decimal(str(value)).quantize(TENTH)
    if user.role == Role.ORG_LEADER:
        organization = db.session.get(Organization, user.organization_id)
    else:
        choices = approved_organizations(volunteer)
        wanted = data.get("organization")
        if wanted in (None, ""):
            organization = choices[0] if choices else None
        else:
            organization = next((o for o in choices if str(o.id) == str(wanted).strip()), None)
        if organization is None:
            f.fail("organization", _l("Choose one of the volunteer's organizations: it records the entry.")
                   if choices else _l("The volunteer is no approved member of any organization, which would "
                                      "record this."))
    f.check()
    entry = RecordEntry(volunteer_id=volunteer.id, organization_id=organization.id, kind=kind, title=title, on=on,
                        hours=hours, note=note, recorded_by_id=user.id)
    db.session.add(entry)
    db.session.flush()
    record_audit(user, "record_entry", entry, volunteer=volunteer.id, kind=kind.value,
                 organization=organization.id)
    return entry


# --- corrections ---------------------------------------------------------------------------------


def request_correction(volunteer: Volunteer, data: dict[str, Any], *, user: User) -> RecordCorrection:
    """A volunteer asks for a correction of their own record, with a reason; it goes to the organization
    that recorded what is to be corrected.

    Fields: field (hours: a service's credited hours, with `assignment` and the right `hours`;
    missing: a service not on the record, with its hours if known and what, when and where in the
    reason; entry: training or a commendation, with `entry`; other), reason (required), organization
    (for missing and other: one of the volunteer's approved organizations, the first by default)."""
    if volunteer.user_id is None or volunteer.user_id != user.id:
        raise AccessDenied(str(_l("Only the volunteer asks for corrections of their own record.")))
    f = Fields(data)
    kind = data.get("field")
    if kind not in CORRECTION_FIELDS:
        f.fail("field", _l("Choose what is to be corrected."))
    reason = f.text("reason", required=_l("Say what is wrong and what is right."), max_length=500)
    organizations = approved_organizations(volunteer)
    default = organizations[0] if organizations else None
    assignment = entry = organization = None
    requested = None
    if kind in ("hours", "missing"):
        raw = data.get("hours")
        if kind == "hours" or raw not in (None, ""):
            value = f.number("hours")
            if value is not None:  # (range first: 1e30 hours has no tenths to round to)
                if not 0 <= value < float(MAX_HOURS) + 0.05:
                    f.fail("hours", _l("Enter hours from 0 to %(n)s.", n=MAX_HOURS))
                else:
                    requested = Decimal(str(value)).quantize(TENTH)
    if kind == "hours":
        number = parse_int(data.get("assignment"), 1, MAX_ROW_ID)
        assignment = db.session.get(Assignment, number) if number else None
        if assignment is None or assignment.volunteer_id != volunteer.id or \
                assignment.status != AssignmentStatus.COMPLETED:
            f.fail("assignment", _l("Choose one of your completed services."))
            assignment = None
        else:
            if requested is not None and requested == (assignment.credited_hours or 0):
                f.fail("hours", _l("The record already says %(h)s hours.", h=_hours(requested)))
            if db.session.scalar(select(RecordCorrection.id).where(
                    RecordCorrection.assignment_id == assignment.id,
                    RecordCorrection.state == CorrectionState.OPEN)) is not None:
                f.fail("assignment", _l("A correction of this service awaits a decision already."))
            organization = recording_organization(assignment, default)
    elif kind == "entry":
        number = parse_int(data.get("entry"), 1, MAX_ROW_ID)
        entry = db.session.get(RecordEntry, number) if number else None
        if entry is None or entry.volunteer_id != volunteer.id:
            f.fail("entry", _l("Choose training or a commendation on your record."))
            entry = None
        else:
            organization = entry.organization
    elif kind in ("missing", "other"):
        wanted = data.get("organization")
        if wanted in (None, ""):
            organization = default
        else:
            organization = next((o for o in organizations if str(o.id) == str(wanted).strip()), None)
            if organization is None:
                f.fail("organization", _l("Choose one of your organizations."))
    f.check()
    correction = RecordCorrection(
        volunteer_id=volunteer.id, organization_id=organization.id if organization else None,
        assignment_id=assignment.id if assignment else None, entry_id=entry.id if entry else None,
        field=kind, requested_hours=requested, reason=reason, state=CorrectionState.OPEN)
    db.session.add(correction)
    db.session.flush()
    record_audit(user, "request_correction", correction, field=kind,
                 assignment=correction.assignment_id, entry=correction.entry_id,
                 organization=correction.organization_id)
    return correction


def decide_correction(correction: RecordCorrection, accept: bool, reason: Any, *, user: User) -> RecordCorrection:
    """Accept or reject a correction (rejecting needs a reason); the volunteer is told.

    Accepting an hours correction sets the service's credited hours to the requested ones and moves
    the volunteer's total by the difference (in SQL, like a check-out, so no update is lost). Other
    corrections are accepted as a decision the organization then carries out (adding the missing
    service's hours is not possible without the service; the decision's words say what was done)."""
    if not can_decide(user, correction):
        raise AccessDenied(str(_l("Only the recording organization or a coordinator of the volunteer's area "
                                  "decides this.")))
    if correction.state != CorrectionState.OPEN:
        raise Conflict(str(_l("This correction was decided already.")))
    f = Fields({"reason": reason})
    words = f.text("reason", required=False if accept else _l("Say why the correction is not accepted."),
                   max_length=500)
    details: dict[str, Any] = {"accept": bool(accept), "field": correction.field}
    assignment = correction.assignment
    if accept and correction.field == "hours":
        if assignment is None or assignment.status != AssignmentStatus.COMPLETED or correction.requested_hours is None:
            f.fail("reason", _l("The service is no longer on the record as completed; reject the correction."))
        f.check()
        before = assignment.credited_hours or Decimal("0")
        delta = correction.requested_hours - before
        assignment.credited_hours = correction.requested_hours
        flush_or_conflict(STALE_ASSIGNMENT)
        volunteer = correction.volunteer
        volunteer.total_hours = Volunteer.total_hours + delta
        db.session.flush()
        db.session.refresh(volunteer, ["total_hours"])
        details.update(assignment=assignment.id, hours_before=_hours(before),
                       hours_after=_hours(correction.requested_hours))
    f.check()
    correction.state = CorrectionState.ACCEPTED if accept else CorrectionState.REJECTED
    correction.decided_by_id = user.id
    correction.decided_at = utcnow()
    correction.decision = words
    db.session.flush()
    record_audit(user, "decide_correction", correction, **details)
    account = db.session.get(User, correction.volunteer.user_id) if correction.volunteer.user_id else None
    if account is not None:
        if accept:
            message = _l("Your correction request (%(what)s) was accepted. %(r)s",
                         what=CORRECTION_LABELS[correction.field], r=words)
        else:
            message = _l("Your correction request (%(what)s) was not accepted: %(r)s",
                         what=CORRECTION_LABELS[correction.field], r=words)
        notify([account], "record_correction", message, link=MY_CORRECTIONS)
    return correction


# --- certificates --------------------------------------------------------------------------------


def issue_certificate(volunteer: Volunteer, user: User, *, shown: Any, start: Any = None,
                      end: Any = None) -> RecordCertificate:
    """Issue a numbered certificate of the volunteer's record (志愿服务记录证明) for a period, showing
    what the volunteer chose (`SHOWABLE`); its content is frozen as the record stands now.

    Only the volunteer themself issues it (they consent to what it shows). `start` is optional (from
    the first service), `end` defaults to today; both YYYY-MM-DD, not in the future. The number is
    "LL-<year>-<six digits>" from the row's id (unique without a race); the verification code is 128
    random bits."""
    if volunteer.user_id is None or volunteer.user_id != user.id:
        raise AccessDenied(str(_l("Only the volunteer makes a certificate of their own record.")))
    today = local_today()
    f = Fields({"start": start.isoformat() if isinstance(start, date) else start,
                "end": end.isoformat() if isinstance(end, date) else end})
    begin = f.date("start", required=False, earliest=date(2000, 1, 1), latest=today)
    finish = f.date("end", required=False, earliest=date(2000, 1, 1), latest=today) or today
    if begin is not None and finish is not None and begin > finish:
        f.fail("start", _l("The period starts after it ends."))
    if isinstance(shown, str):
        shown = [shown]
    chosen = [s for s in SHOWABLE if s in set(shown or ())]
    unknown = [s for s in (shown or ()) if s not in SHOWABLE]
    if unknown:
        f.fail("shown", _l("Unknown value '%(v)s'.", v=str(unknown[0])[:40]))
    elif not set(chosen) & {"hours", "services", "training", "commendations"}:
        f.fail("shown", _l("Choose what the certificate shows: at least the hours, the services, training or "
                           "commendations."))
    f.check()
    organizations = approved_organizations(volunteer)
    certificate = RecordCertificate(
        number=f"PENDING-{secrets.token_hex(8)}", verify_code=secrets.token_urlsafe(16), volunteer_id=volunteer.id,
        organization_id=organizations[0].id if organizations else None, period_start=begin, period_end=finish,
        content=record_content(volunteer, begin, finish), shown=chosen, issued_by_id=user.id)
    db.session.add(certificate)
    db.session.flush()
    certificate.number = f"{NUMBER_PREFIX}-{today.year}-{certificate.id:06d}"
    db.session.flush()
    record_audit(user, "issue_certificate", certificate, number=certificate.number, shown=chosen,
                 start=begin.isoformat() if begin else None, end=finish.isoformat())
    return certificate


def own_certificates(volunteer: Volunteer) -> list[RecordCertificate]:
    """The volunteer's certificates, newest first."""
    return list(db.session.scalars(select(RecordCertificate).where(RecordCertificate.volunteer_id == volunteer.id)
                                   .order_by(RecordCertificate.issued_at.desc(), RecordCertificate.id.desc())))


def load_certificate(certificate_id: Any, user: User) -> RecordCertificate:
    """A certificate of a record the user reads (`can_read_record`), else NotFound."""
    certificate = db.session.get(RecordCertificate, as_id(certificate_id))
    if certificate is None or not can_read_record(user, certificate.volunteer):
        raise NotFound("not found")
    return certificate


def revoke_certificate(certificate: RecordCertificate, *, user: User) -> RecordCertificate:
    """Revoke a certificate (the volunteer or an administrator): its verification page says so."""
    if user.role != Role.ADMIN and certificate.volunteer.user_id != user.id:
        raise AccessDenied(str(_l("Only the volunteer or an administrator revokes a certificate.")))
    if certificate.revoked_at is not None:
        raise Conflict(str(_l("This certificate was revoked already.")))
    certificate.revoked_at = utcnow()
    db.session.flush()
    record_audit(user, "revoke_certificate", certificate, number=certificate.number)
    return certificate


@dataclass
class Verification:
    """What the public verification page shows: the certificate, the chosen fields as certified and as
    the record says now, and which of them changed since."""

    certificate: RecordCertificate
    issued: dict[str, Any]
    current: dict[str, Any]
    changed: list[str] = field(default_factory=list)

    @property
    def revoked(self) -> bool:
        return self.certificate.revoked_at is not None


def verify_certificate(code: Any) -> Verification:
    """The certificate with this verification code and how the record stands now, else NotFound."""
    if not isinstance(code, str) or not CODE_PATTERN.fullmatch(code):
        raise NotFound("not found")
    certificate = db.session.scalar(select(RecordCertificate).where(RecordCertificate.verify_code == code))
    if certificate is None or not secrets.compare_digest(certificate.verify_code, code):
        raise NotFound("not found")
    shown = [s for s in SHOWABLE if s in set(certificate.shown or ())]
    issued = shown_part(certificate.content or {}, shown)
    now = record_content(certificate.volunteer, certificate.period_start, certificate.period_end)
    current = shown_part(now, shown)
    changed = [name for name in shown if name != "period" and issued.get(name) != current.get(name)]
    return Verification(certificate=certificate, issued=issued, current=current, changed=changed)


def service_record(volunteer: Volunteer, start: date | None = None, end: date | None = None) -> dict[str, Any]:
    """The volunteer's service record (Order No. 67) for a period: `record_content` (what, when, where,
    hours, evaluation, the recording organization; training; commendations)."""
    return record_content(volunteer, start, end)

