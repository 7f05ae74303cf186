"""Volunteer service records for other systems (the district platform, the national volunteer system):
each completed service with the fields of a volunteer service record (Ministry of Civil Affairs Order
No. 67: who, what, when, where, hours, evaluation, the recording organization), and hours per volunteer.

Read-only, scope "records". Whose records: an administrator everyone's; a coordinator those of the
volunteers of their area (`access.volunteer_filter`: living in it); an organization leader the services
that are their organization's (`access.team_assignment_filter`: sent through it, or done directly by an
approved member) of volunteers the leader sees (its members). Nobody else (403). Phones are masked, and
the place never shows a resident's home address.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from decimal import Decimal

import marshmallow as ma
from flask import current_app
from flask_babel import gettext as _
from flask_login import current_user
from marshmallow import fields
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from matcher import rules
from matcher.access import team_assignment_filter, volunteer_filter
from matcher.db import among, db
from matcher.errors import AccessDenied
from matcher.models import (
    Assignment,
    AssignmentStatus,
    Demand,
    DemandOccurrence,
    Membership,
    Organization,
    Role,
    Volunteer,
)
from matcher.records import by_approval

from . import PREFIX, Blueprint, needs
from .schemas import AreaRef, Hours, LocalTime, PeriodQuery

blp = Blueprint("api_records", __name__, url_prefix=PREFIX,
                description="Volunteer service records and hours for other systems (read-only).")

PAGING = ("page", "page_size")
ATTENDANCE = ("checked", "by_hand")


class PeriodPage(PeriodQuery):
    """The period (start and end, inclusive, at most 366 days), besides the page's own arguments."""

    @ma.pre_load
    def _paging(self, data, **kwargs):
        return {k: data[k] for k in data if k not in PAGING}


# --- whose records ---------------------------------------------------------------------------------


def record_scope() -> list:
    """The conditions on Assignment for the records the person may read (403 for roles without any)."""
    user = current_user
    if user.role == Role.ADMIN:
        return []
    visible = Assignment.volunteer_id.in_(select(Volunteer.id).where(volunteer_filter(user)))
    if user.role == Role.COORDINATOR:
        return [visible]
    if user.role == Role.ORG_LEADER and user.organization_id is not None:
        return [visible, team_assignment_filter(user.organization_id)]
    raise AccessDenied(_("Only administrators, coordinators and organization leaders read service records."))


def _completed_in(query: dict) -> list:
    start = datetime.combine(query["start"], time())
    end = datetime.combine(query["end"] + timedelta(days=1), time())
    return [Assignment.status == AssignmentStatus.COMPLETED, DemandOccurrence.starts_at >= start,
            DemandOccurrence.starts_at < end]


# --- schemas ---------------------------------------------------------------------------------------


class VolunteerRef(ma.Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True, metadata={"description": "The volunteer's real name."})
    phone = fields.String(metadata={"description": "Masked: 138****5678."})


class CategoryRef(ma.Schema):
    code = fields.String(required=True)
    name = fields.String(required=True)


class OrganizationRef(ma.Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)


class ServiceRecordOut(ma.Schema):
    """One completed service as a volunteer service record."""

    id = fields.Integer(required=True, metadata={"description": "The record's (the assignment's) id."})
    volunteer = fields.Nested(VolunteerRef, required=True)
    category = fields.Nested(CategoryRef, allow_none=True)
    title = fields.String()
    date = fields.Date(metadata={"description": "The day of the service."})
    start = fields.String(metadata={"description": "Scheduled start, HH:MM (local time)."})
    end = fields.String(metadata={"description": "Scheduled end, HH:MM (local time)."})
    checked_in_at = LocalTime(allow_none=True, metadata={"description": "When the volunteer checked in."})
    checked_out_at = LocalTime(allow_none=True, metadata={"description": "When they checked out."})
    community = fields.Nested(AreaRef, required=True)
    place = fields.String(metadata={"description": "Where: a station, the community, or \"a resident's home\" "
                                                   "(never the home's address)."})
    hours = Hours(allow_none=True, metadata={"description": "Hours credited."})
    rating = fields.Integer(allow_none=True, metadata={"description": "The resident's rating, 1 to 5."})
    comment = fields.String(metadata={"description": "The resident's comment with the rating."})
    organization = fields.Nested(OrganizationRef, allow_none=True, metadata={
        "description": "The recording organization: the one the service was sent through, else the "
                       "volunteer's approved organization; null when neither."})
    attendance = fields.String(allow_none=True, metadata={
        "enum": [*ATTENDANCE, None], "description": "How attendance was proven: checked (the code or QR code on "
                                                    "site) or by_hand (ticked present by the community worker)."})


class VolunteerHoursOut(ma.Schema):
    """A volunteer's hours in the period, and to date."""

    volunteer = fields.Nested(VolunteerRef, required=True)
    hours = Hours(required=True, metadata={"description": "Hours credited in the period."})
    services = fields.Integer(required=True, metadata={"description": "Services completed in the period."})
    total_hours = Hours(required=True, metadata={"description": "Hours to date."})
    stars = fields.Integer(required=True, metadata={"description": "Star level (0 to 5) by hours to date."})


def _volunteer(v: Volunteer) -> dict:
    return {"id": v.id, "name": v.real_name, "phone": rules.mask_phone(v.phone)}


def _record(a: Assignment, organizations: dict[int, Organization]) -> dict:
    from ..volunteer import place_text

    occ = a.occurrence
    demand = occ.demand
    org = organizations.get(a.organization_id) if a.organization_id else None
    if org is None:
        org = next(iter(by_approval(a.volunteer.memberships)), None)
    return {
        "id": a.id, "volunteer": _volunteer(a.volunteer),
        "category": {"code": demand.category.code, "name": demand.category.name_zh} if demand.category else None,
        "title": demand.title, "date": occ.starts_at.date(), "start": occ.starts_at.strftime("%H:%M"),
        "end": occ.ends_at.strftime("%H:%M"), "checked_in_at": a.checked_in_at, "checked_out_at": a.checked_out_at,
        "community": demand.community, "place": place_text(a, exact=False), "hours": a.credited_hours,
        "rating": a.rating, "comment": a.rating_comment or "",
        "organization": {"id": org.id, "name": org.name} if org is not None else None,
        "attendance": a.attendance if a.attendance in ATTENDANCE else None,
    }


# --- operations ------------------------------------------------------------------------------------


@blp.route("/records/services")
@needs("records")
@blp.arguments(PeriodPage, location="query")
@blp.response(200, ServiceRecordOut(many=True))
@blp.paginate(page_size=50)
def services(query, pagination_parameters):
    """Completed services of a period, as volunteer service records.

    Each service completed on a day from `start` to `end` (inclusive, at most 366 days), in time order:
    who (the volunteer's id, name and masked phone), what (category, title), when (date, scheduled start
    and end, check-in and check-out), where (the community and the place, never a resident's home
    address), the hours credited, the resident's evaluation (rating, comment), the recording organization
    (the one the service was sent through, else the volunteer's approved organization) and how attendance
    was proven. Administrators read everyone's; coordinators those of the volunteers of their area;
    organization leaders their organization's services of its members.
    """
    where = [*record_scope(), *_completed_in(query)]
    base = select(Assignment).join(DemandOccurrence, Assignment.occurrence_id == DemandOccurrence.id).where(*where)
    pagination_parameters.item_count = db.session.scalar(
        select(func.count()).select_from(base.with_only_columns(Assignment.id).subquery()))
    occurrence = selectinload(Assignment.occurrence).selectinload(DemandOccurrence.demand)
    volunteer = selectinload(Assignment.volunteer).selectinload(Volunteer.memberships)
    rows = db.session.scalars(
        base.options(occurrence.selectinload(Demand.category), occurrence.selectinload(Demand.community),
                     occurrence.selectinload(Demand.station),
                     volunteer.selectinload(Membership.organization))
        .order_by(DemandOccurrence.starts_at, Assignment.id)
        .offset(pagination_parameters.first_item).limit(pagination_parameters.page_size)).all()
    org_ids = {a.organization_id for a in rows if a.organization_id}
    organizations = {o.id: o for o in db.session.scalars(select(Organization).where(among(Organization.id, org_ids)))} \
        if org_ids else {}
    return [_record(a, organizations) for a in rows]


@blp.route("/records/hours")
@needs("records")
@blp.arguments(PeriodPage, location="query")
@blp.response(200, VolunteerHoursOut(many=True))
@blp.paginate(page_size=50)
def hours(query, pagination_parameters):
    """Hours and services per volunteer in a period, with hours to date and star level.

    Each volunteer with at least one service completed on a day from `start` to `end` (inclusive, at
    most 366 days), by volunteer id: the hours credited and the number of services in the period (the
    same services GET /api/v1/records/services lists), the hours to date and the star level they earn.
    Whose: as for the services.
    """
    per_volunteer = (
        select(Assignment.volunteer_id.label("volunteer_id"),
               func.coalesce(func.sum(Assignment.credited_hours), 0).label("hours"),
               func.count(Assignment.id).label("services"))
        .join(DemandOccurrence, Assignment.occurrence_id == DemandOccurrence.id)
        .where(*record_scope(), *_completed_in(query))
        .group_by(Assignment.volunteer_id).subquery())
    pagination_parameters.item_count = db.session.scalar(select(func.count()).select_from(per_volunteer))
    rows = db.session.execute(
        select(Volunteer, per_volunteer.c.hours, per_volunteer.c.services)
        .join(per_volunteer, per_volunteer.c.volunteer_id == Volunteer.id)
        .order_by(Volunteer.id)
        .offset(pagination_parameters.first_item).limit(pagination_parameters.page_size)).all()
    thresholds = current_app.config["STAR_THRESHOLDS"]
    return [{"volunteer": _volunteer(v), "hours": _tenths(h), "services": int(n),
             "total_hours": _tenths(v.total_hours), "stars": rules.star_level(v.total_hours or 0, thresholds)}
            for v, h, n in rows]


def _tenths(value) -> Decimal:
    """Hours as a decimal of tenths (a sum on SQLite comes back as a float)."""
    return Decimal(str(value or 0)).quantize(Decimal("0.1"))
