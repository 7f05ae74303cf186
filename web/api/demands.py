"""Demands through the API: the list in scope, one demand, and the community worker's part: posting,
editing and cancelling demands, the community's week, confirming that a service took place and recording
the resident's rating.

The pages' rules, as JSON: every list and load goes through `matcher.access` (an id out of scope is a
404, as on the pages), every change is the pages' own `matcher` operation (`matcher.demands`,
`matcher.assignments`), and the roles are the pages' (web/demands.py, web/community.py). Reads need the
token scope "read", changes "demands" (which only a community worker's token can hold).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import wraps
from zoneinfo import ZoneInfo

import marshmallow as ma
from flask import request
from flask_babel import gettext as _
from flask_login import current_user
from flask_smorest.exceptions import PreconditionFailed
from marshmallow import fields, validate
from sqlalchemy import exists, func, select
from sqlalchemy.orm import selectinload

from matcher import rules
from matcher.access import can_change, load_own_occurrence, load_visible, user_area, visible
from matcher.assignments import confirm_service, rate_service
from matcher.clock import DEFAULT_TIMEZONE, local_now, local_today
from matcher.db import db
from matcher.demands import DemandFilters, cancel_demand, create_demand, filtered_demands, update_demand
from matcher.errors import AccessDenied, NotFound, ValidationError
from matcher.fields import MAX_ROW_ID
from matcher.models import (
    CLOSED,
    HELD,
    Assignment,
    AssignmentStatus,
    Category,
    Demand,
    DemandOccurrence,
    DemandStatus,
    Gender,
    LocationKind,
    Priority,
    Resident,
    Role,
)
from matcher.models._types import ReviewState
from matcher.settings import setting
from matcher.weeks import OccurrenceRow, community_has_week, community_week, week_rows

from . import PREFIX, Blueprint, needs
from .schemas import Hours, Strict, body_id, plain, text

blp = Blueprint("api_demands", __name__, url_prefix=PREFIX,
                description="Demands: the list in scope and one demand; a community worker posts, edits and cancels "
                            "them, sees the community's week, confirms services and records residents' ratings.")

WEEK_STATES = ("open", "scheduled", "accepted", "done", "cancelled")


# --- input fields ---------------------------------------------------------------------------------


def clock(**kwargs) -> fields.String:
    return fields.String(validate=validate.Regexp(r"^[0-9]{2}:[0-9]{2}$", error=_("Enter a time as HH:MM.")),
                         metadata={"example": "09:00", "description": "Local time HH:MM."}, **kwargs)


def choice(values, **kwargs) -> fields.String:
    return fields.String(validate=validate.OneOf([v.value if hasattr(v, "value") else v for v in values]),
                         **kwargs)


def near_week(day: date, field: str = "week") -> date:
    """The Monday of `day`, which must lie within two years of today as on the week pages (else 400)."""
    from ..main import WEEK_MESSAGE, WEEK_RANGE_DAYS

    if abs((day - local_today()).days) > WEEK_RANGE_DAYS:
        raise ValidationError({field: str(WEEK_MESSAGE)})
    return rules.week_monday(day)


# --- output ---------------------------------------------------------------------------------------


def _zone() -> ZoneInfo:
    return ZoneInfo(setting("TIMEZONE", DEFAULT_TIMEZONE))


def local_time(value: datetime) -> datetime:
    """A service's local (naive) time with the service's time zone, so the client reads it unambiguously."""
    return value.replace(tzinfo=_zone())


def utc_time(value: datetime | None) -> datetime | None:
    """A stored UTC (naive) timestamp as an aware one."""
    return value.replace(tzinfo=UTC) if value is not None else None


class DemandNamedRef(ma.Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)


class DemandCategoryRef(ma.Schema):
    code = fields.String(required=True)
    name = fields.String(required=True, metadata={"description": "In the request's language."})


class DemandOccurrenceOut(ma.Schema):
    id = fields.Integer(required=True)
    starts_at = fields.DateTime(required=True)
    ends_at = fields.DateTime(required=True)
    status = choice(DemandStatus, required=True)


class DemandOut(ma.Schema):
    """A demand as its page shows it to the reader: the resident's name only to who may see the resident,
    the exact place (address, coordinates) only to who may change the demand or, away from a home, to
    staff; a volunteer reads the place as their own offer or service shows it."""

    id = fields.Integer(required=True)
    version = fields.Integer(required=True, metadata={"description": "Changes with every change of the demand "
                                                                     "(its ETag follows it)."})
    title = fields.String(required=True)
    status = choice(DemandStatus, required=True)
    review = choice(ReviewState, allow_none=True, required=True,
                    metadata={"description": "Where its area reviews demands: pending, returned or approved."})
    review_note = fields.String(required=True, metadata={"description": "Why it was returned (when returned)."})
    category = fields.Nested(DemandCategoryRef, required=True)
    community = fields.Nested(DemandNamedRef, required=True)
    resident = fields.Nested(DemandNamedRef, allow_none=True, required=True)
    location_kind = choice(LocationKind, required=True)
    station = fields.Nested(DemandNamedRef, allow_none=True, required=True)
    place = fields.String(required=True, metadata={"description": "Where, in words, as the page shows it."})
    address = fields.String(allow_none=True, required=True)
    lat = fields.Float(allow_none=True, required=True)
    lon = fields.Float(allow_none=True, required=True)
    starts_on = fields.Date(required=True, metadata={"description": "The (first) date."})
    start = fields.String(required=True, metadata={"example": "09:00"})
    end = fields.String(required=True, metadata={"example": "10:30"})
    weekdays = fields.List(fields.Integer(), required=True,
                           metadata={"description": "Weekly on these days (0 = Monday); empty: once."})
    repeat_until = fields.Date(allow_none=True, required=True)
    people = fields.Integer(required=True)
    min_people = fields.Integer(required=True)
    priority = choice(Priority, required=True)
    gender = choice(Gender, allow_none=True, required=True)
    skills = fields.List(fields.String(), required=True, metadata={"description": "All of these skill codes."})
    skills_any = fields.List(fields.String(), required=True, metadata={"description": "Any one of these."})
    organizations = fields.List(fields.Nested(DemandNamedRef), required=True)
    one_organization = fields.Boolean(required=True)
    notes = fields.String(allow_none=True, required=True)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)
    can_change = fields.Boolean(required=True, metadata={"description": "Whether the reader may edit or cancel it."})


class DemandDetail(DemandOut):
    occurrences = fields.List(fields.Nested(DemandOccurrenceOut), required=True)


def visible_residents(demands: list[Demand]) -> set[int]:
    """Of these demands' residents, those the signed-in person may see (one statement)."""
    ids = {d.resident_id for d in demands if d.resident_id is not None}
    if not ids:
        return set()
    return set(db.session.scalars(visible(select(Resident.id).where(Resident.id.in_(ids)), Resident, current_user)))


def demand_out(d: Demand, residents: set[int], *, detail: bool = False) -> dict:
    """What `DemandOut` (or `DemandDetail`) holds for a demand, as its page shows it to the signed-in person."""
    from ..demands import volunteer_place
    from ..templating import local_name

    mine = can_change(current_user, d)
    volunteer = current_user.role == Role.VOLUNTEER
    resident_shown = d.resident_id in residents
    home = d.location_kind == LocationKind.HOME
    if volunteer:
        place = volunteer_place(d)
    else:
        parts = [d.station.name] if d.station is not None else []
        if not home and d.address:
            parts.append(d.address)
        place = " · ".join(parts) or d.community.name
    exact = mine or (not volunteer and not home)
    out = {
        "id": d.id, "version": d.version, "title": d.title, "status": d.status.value,
        "review": d.review.value if d.review else None,
        "review_note": d.review_note if d.review == ReviewState.RETURNED else "",
        "category": {"code": d.category.code, "name": local_name(d.category)},
        "community": {"id": d.community_id, "name": d.community.name},
        "resident": {"id": d.resident.id, "name": d.resident.name} if resident_shown else None,
        "location_kind": d.location_kind.value,
        "station": {"id": d.station.id, "name": d.station.name} if d.station is not None and not volunteer else None,
        "place": place, "address": d.address if exact else None,
        "lat": d.lat if mine else None, "lon": d.lon if mine else None,
        "starts_on": d.starts_on, "start": rules.format_minutes(d.start_minute),
        "end": rules.format_minutes(min(d.start_minute + d.duration_minutes, 1440)),
        "weekdays": d.weekday_list, "repeat_until": d.repeat_until,
        "people": d.people, "min_people": d.min_people, "priority": d.priority.value,
        "gender": d.gender.value if d.gender else None,
        "skills": [s.code for s in d.skills], "skills_any": [s.code for s in d.skills_any],
        "organizations": [{"id": o.id, "name": o.name} for o in d.organizations],
        "one_organization": bool(d.one_organization),
        "notes": d.notes if resident_shown or d.resident_id is None else None,
        "created_at": utc_time(d.created_at), "updated_at": utc_time(d.updated_at), "can_change": mine,
    }
    if detail:
        out["occurrences"] = [{"id": o.id, "starts_at": local_time(o.starts_at), "ends_at": local_time(o.ends_at),
                               "status": o.status.value} for o in d.occurrences]
    return out


def detail_of(d: Demand) -> dict:
    return demand_out(d, visible_residents([d]), detail=True)


def etag_of(d: Demand) -> dict:
    return {"id": d.id, "version": d.version}


# --- roles ----------------------------------------------------------------------------------------


def worker_only(view):
    """Only a community worker, as the pages' `roles_required(Role.WORKER)` (403 otherwise)."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        if current_user.role != Role.WORKER:
            raise AccessDenied(_("Only a community worker can do this."))
        return view(*args, **kwargs)

    return wrapper


def own_community():
    community = user_area(current_user)
    if community is None:
        raise AccessDenied(_("Your account has no community: ask your coordinator."))
    return community


# --- the list and one demand ----------------------------------------------------------------------

PAGING = ("page", "page_size")


class DemandQuery(Strict):
    q = text(60, metadata={"description": "Words in the title."})
    status = choice(DemandStatus)
    category = text(40, metadata={"description": "A category code."})
    review = choice(ReviewState, metadata={"description": "pending: the review queue (urgent first)."})
    community = fields.Integer(validate=validate.Range(1, MAX_ROW_ID),
                               metadata={"description": "Only this community's (within what the token may see)."})
    week = fields.Date(metadata={"description": "Only demands with a service in the week of this day."})

    @ma.pre_load
    def _paging(self, data, **kwargs):
        # page and page_size are the pagination's own parameters, read by it.
        return {key: data[key] for key in data if key not in PAGING}


def listing(query: dict):
    """The SELECT of the demands list (the page's filters, through `filtered_demands`) and the narrowing."""
    code = query.get("category")
    category = db.session.scalar(select(Category).where(Category.code == code)) if code else None
    if code and category is None:
        raise ValidationError({"category": _("No such category.")})
    q = query.get("q", "").strip()
    stmt = filtered_demands(current_user, DemandFilters(
        q=q, status=DemandStatus(query["status"]) if query.get("status") else None, category=category,
        review=ReviewState(query["review"]) if query.get("review") else None))
    if query.get("community"):
        stmt = stmt.where(Demand.community_id == query["community"])
    if query.get("week"):
        monday = near_week(query["week"])
        start = datetime.combine(monday, datetime.min.time())
        stmt = stmt.where(exists().where(DemandOccurrence.demand_id == Demand.id,
                                         DemandOccurrence.starts_at >= start,
                                         DemandOccurrence.starts_at < start + timedelta(days=7)))
    return stmt


@blp.route("/demands")
@needs("read")
@blp.arguments(DemandQuery, location="query", unknown=ma.RAISE)
@blp.response(200, DemandOut(many=True))
@blp.paginate(page_size=20, max_page_size=100)
def demands(query, pagination_parameters):
    """The demands the person may see, filtered and paginated.

    As on the demands page: a worker sees the community's, a coordinator the area's, an organization leader
    those sent to the organization, a volunteer those of their own offers and services; newest first
    (`review=pending`: the review queue, urgent first). The pagination is in the X-Pagination header."""
    stmt = listing(query)
    pagination_parameters.item_count = db.session.scalar(
        select(func.count()).select_from(stmt.order_by(None).subquery()))
    if pagination_parameters.first_item >= pagination_parameters.item_count:
        return []
    page = list(db.session.scalars(stmt.options(
        selectinload(Demand.category), selectinload(Demand.community), selectinload(Demand.resident),
        selectinload(Demand.station), selectinload(Demand.skills), selectinload(Demand.skills_any),
        selectinload(Demand.organizations))
        .offset(pagination_parameters.first_item).limit(pagination_parameters.page_size)))
    residents = visible_residents(page)
    return [demand_out(d, residents) for d in page]


@blp.route("/demands/<int:demand_id>")
@needs("read")
@blp.etag
@blp.response(200, DemandDetail)
def demand(demand_id: int):
    """One demand with its occurrences.

    As its page shows it to the person (the resident and the exact place only to who may see them); 404
    when out of their scope. Its ETag goes with a change (PATCH, or cancelling with If-Match)."""
    d = load_visible(Demand, demand_id, current_user)
    blp.set_etag(etag_of(d))
    return detail_of(d)


# --- posting and editing --------------------------------------------------------------------------


class DemandIn(Strict):
    """A demand as the demand form posts it (the form's rules and messages; every bad field named)."""

    category = fields.String(required=True, validate=[validate.Length(min=1, max=40), plain],
                             metadata={"description": "A category code (its skills and team size are the "
                                                      "defaults)."})
    title = text(120, metadata={"description": "Default: the category's name."})
    resident = body_id(allow_none=True, metadata={"description": "A resident of the community (needed for a "
                                                                 "visit at home)."})
    location_kind = choice(LocationKind, required=True,
                           metadata={"description": "home (the resident's), station, or point (lat, lon)."})
    station = body_id(allow_none=True, metadata={"description": "A station of the community or its township."})
    lat = fields.Float(allow_none=True, allow_nan=False, validate=validate.Range(-90, 90),
                       metadata={"description": "For a point: inside the district."})
    lon = fields.Float(allow_none=True, allow_nan=False, validate=validate.Range(-180, 180))
    address = text(200)
    date = fields.Date(required=True, metadata={"description": "The (first) date: from today to the horizon "
                                                              "(a year by default)."})
    start = clock(required=True)
    end = clock(required=True)
    recurring = fields.Boolean(metadata={"description": "Weekly on `weekdays`; default: whether weekdays are "
                                                        "given."})
    weekdays = fields.List(fields.Integer(strict=True, validate=validate.Range(0, 6)),
                           validate=validate.Length(max=7), metadata={"description": "0 = Monday … 6 = Sunday."})
    repeat_until = fields.Date(allow_none=True, metadata={"description": "The last date of a weekly recurrence."})
    people = fields.Integer(strict=True, validate=validate.Range(1, 200),
                            metadata={"description": "Default: the category's."})
    min_people = fields.Integer(strict=True, validate=validate.Range(1, 200),
                                metadata={"description": "The smallest team worth sending."})
    priority = choice(Priority)
    gender = choice(Gender, allow_none=True)
    notes = text(2000)
    skills = fields.List(fields.String(validate=[validate.Length(max=40), plain]),
                         validate=validate.Length(max=50),
                         metadata={"description": "Skill codes all needed; default: the category's."})
    skills_any = fields.List(fields.String(validate=[validate.Length(max=40), plain]),
                             validate=validate.Length(max=50),
                             metadata={"description": "Skill codes of which any one is enough."})


class DemandPatch(DemandIn):
    """The fields to change (the others keep their values)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("partial", True)
        super().__init__(*args, **kwargs)


def form_of(data: dict, base: dict | None = None) -> dict:
    """A typed body as the demand form's mapping (what `create_demand` and `update_demand` read)."""
    form = dict(base or {})
    for key, value in data.items():
        if key in ("date", "repeat_until"):
            form[key] = value.isoformat() if value is not None else ""
        elif key == "weekdays":
            form[key] = [str(d) for d in value]
        elif key == "recurring":
            form[key] = "1" if value else ""
        elif key in ("skills", "skills_any"):
            form[key] = list(value)
        elif value is None:
            form[key] = ""
        else:
            form[key] = str(value)
    if "recurring" not in data and "weekdays" in data:
        form["recurring"] = "1" if data["weekdays"] else ""
    return form


def current_form(d: Demand) -> dict:
    """The demand's values as the edit form holds them (coordinates unrounded)."""
    from ..demands import demand_values

    values = demand_values(d)
    values.pop("version", None)
    values.update(lat=repr(d.lat), lon=repr(d.lon), weekdays=[str(w) for w in d.weekday_list])
    return values


@blp.route("/demands", methods=["POST"])
@needs("demands")
@worker_only
@blp.etag
@blp.arguments(DemandIn)
@blp.response(201, DemandDetail)
def post_demand(data):
    """Post a demand for the worker's community.

    The demand form's rules: every bad field named (400), nothing saved. Its occurrences are created at
    once; where the township or district reviews demands, it waits for their review."""
    d = create_demand(form_of(data), community=own_community(), user=current_user)
    db.session.commit()
    blp.set_etag(etag_of(d))
    return detail_of(d)


@blp.route("/demands/<int:demand_id>", methods=["PATCH"])
@needs("demands")
@worker_only
@blp.etag
@blp.arguments(DemandPatch)
@blp.response(200, DemandDetail)
def patch_demand(data, demand_id: int):
    """Edit a demand of the worker's community before it is served.

    The fields sent change, the others keep their values (the edit form's rules: every bad field named).
    Needs If-Match with the ETag of the last read (412 when the demand changed since, 428 without it); a
    closed demand is 409. Future occurrences follow a new time; where a published schedule holds it, the
    coordinators and the volunteers on it are told."""
    d = load_visible(Demand, demand_id, current_user)
    if not can_change(current_user, d):
        raise NotFound("not found")
    blp.check_etag(etag_of(d))
    update_demand(d, form_of(data, current_form(d)), user=current_user, version=d.version)
    db.session.commit()
    blp.set_etag(etag_of(d))
    return detail_of(d)


class DemandCancelIn(Strict):
    reason = text(300, required=True, metadata={"description": "Why: the volunteers and coordinators are told."})


class DemandCancelOut(ma.Schema):
    cancelled = fields.Integer(required=True, metadata={"description": "Coming services cancelled."})
    notified = fields.Integer(required=True, metadata={"description": "Notices sent."})
    demand = fields.Nested(DemandDetail, required=True)


def optional_if_match(etag_data: dict) -> None:
    """With If-Match, the demand must still be as read (412 otherwise); without, the change goes ahead
    (as the page's form, whose version is optional)."""
    if request.if_match and blp._generate_etag(etag_data) not in request.if_match:
        raise PreconditionFailed


@blp.route("/demands/<int:demand_id>/cancel", methods=["POST"])
@needs("demands")
@blp.etag
@blp.arguments(DemandCancelIn)
@blp.alt_response(412, response="PRECONDITION_FAILED")
@blp.response(200, DemandCancelOut)
@blp.doc(parameters=[{"name": "If-Match", "in": "header", "required": False, "schema": {"type": "string"},
                      "description": "The ETag of the last read: the cancel is refused (412) if the demand "
                                     "changed since."}])
def cancel(data, demand_id: int):
    """Cancel a demand's coming services, saying why.

    Its community's worker only (403 for others who see it). Pending offers are withdrawn; the volunteers
    offered or booked and the coordinators are told, with the reason. With If-Match, a demand changed since
    the read is 412; a closed one is 409."""
    d = load_visible(Demand, demand_id, current_user)
    if not can_change(current_user, d):
        raise AccessDenied(_("Only the community's worker can cancel this demand."))
    optional_if_match(etag_of(d))
    counts = cancel_demand(d, user=current_user, version=d.version, reason=data["reason"])
    db.session.commit()
    blp.set_etag(etag_of(d))
    return {"cancelled": counts["cancelled"], "notified": counts["notified"], "demand": detail_of(d)}


# --- the community's week, confirming, rating -----------------------------------------------------


class CommunityWeekAssignmentOut(ma.Schema):
    """A volunteer on a service, as the week page shows them to the community's worker (phone masked)."""

    id = fields.Integer(required=True)
    volunteer_id = fields.Integer(required=True)
    name = fields.String(required=True)
    phone = fields.String(required=True, metadata={"description": "Masked: 138****5678."})
    status = choice(AssignmentStatus, required=True)
    credited_hours = Hours(allow_none=True, required=True,
                                    metadata={"type": "string", "example": "1.5",
                                              "description": "Hours credited, as a decimal number in a string."})
    attendance = choice(("checked", "by_hand"), allow_none=True, required=True,
                        metadata={"description": "checked: with the code on site; by_hand: ticked by the worker."})
    rating = fields.Integer(allow_none=True, required=True)
    rating_comment = fields.String(required=True)


class CommunityWeekGapOut(ma.Schema):
    missing = fields.Integer(required=True)
    reasons = fields.List(fields.String(), required=True, metadata={"description": "The solver's reason codes."})
    reason_texts = fields.List(fields.String(), required=True)


class CommunityWeekServiceOut(ma.Schema):
    occurrence_id = fields.Integer(required=True)
    demand_id = fields.Integer(required=True)
    title = fields.String(required=True)
    priority = choice(Priority, required=True)
    review = choice(ReviewState, allow_none=True, required=True)
    starts_at = fields.DateTime(required=True)
    ends_at = fields.DateTime(required=True)
    status = choice(DemandStatus, required=True, metadata={"description": "The service's own status."})
    state = choice(WEEK_STATES, required=True, metadata={"description": "As the week page shows it."})
    location_kind = choice(LocationKind, required=True)
    resident = fields.String(allow_none=True, required=True, metadata={"description": "The resident's name."})
    people = fields.Integer(required=True)
    accepted = fields.Integer(required=True)
    assignments = fields.List(fields.Nested(CommunityWeekAssignmentOut), required=True)
    gap = fields.Nested(CommunityWeekGapOut, allow_none=True, required=True,
                        metadata={"description": "Left short by the newest applied solve, and why."})
    can_confirm = fields.Boolean(required=True, metadata={
        "description": "Whether it can be confirmed now (it started, people are on it, not closed)."})


class CommunityWeekOut(ma.Schema):
    community = fields.Nested(DemandNamedRef, required=True)
    week = fields.Date(required=True, metadata={"description": "The Monday."})
    previous_week = fields.Date(required=True)
    next_week = fields.Date(required=True)
    services = fields.List(fields.Nested(CommunityWeekServiceOut), required=True)


def assignment_out(a: Assignment) -> dict:
    return {"id": a.id, "volunteer_id": a.volunteer_id, "name": a.volunteer.real_name,
            "phone": rules.mask_phone(a.volunteer.phone), "status": a.status.value,
            "credited_hours": a.credited_hours, "attendance": a.attendance, "rating": a.rating,
            "rating_comment": a.rating_comment or ""}


def service_out(row: OccurrenceRow, now: datetime) -> dict:
    from ..templating import REASONS

    occ, d = row.occurrence, row.occurrence.demand
    on_it = any(a.status in HELD or a.status == AssignmentStatus.COMPLETED for a in row.assignments)
    gap = row.gap
    return {
        "occurrence_id": occ.id, "demand_id": d.id, "title": d.title, "priority": d.priority.value,
        "review": d.review.value if d.review else None, "starts_at": local_time(occ.starts_at),
        "ends_at": local_time(occ.ends_at), "status": occ.status.value, "state": row.state,
        "location_kind": d.location_kind.value, "resident": d.resident.name if d.resident is not None else None,
        "people": d.people, "accepted": row.accepted, "assignments": [assignment_out(a) for a in row.assignments],
        "gap": {"missing": gap.missing, "reasons": list(gap.reasons or []),
                "reason_texts": [str(REASONS.get(code, code)) for code in gap.reasons or []]} if gap else None,
        "can_confirm": occ.status not in CLOSED and on_it and occ.starts_at <= now,
    }


class CommunityWeekQuery(Strict):
    week = fields.Date(metadata={"description": "Any day of the week wanted (its Monday is used), within two "
                                               "years of today; default: this week, or the next when this one "
                                               "has no services yet."})


@blp.route("/community/week")
@needs("read")
@worker_only
@blp.arguments(CommunityWeekQuery, location="query", unknown=ma.RAISE)
@blp.response(200, CommunityWeekOut)
def community_week_view(query):
    """The community's services of a week.

    The worker's community's services (cancelled ones too) in time order, as the week page shows them: their
    state, the volunteers on them (phones masked), the gap the newest applied solve left and why, and
    whether each can be confirmed now."""
    from ..main import this_or_next_week

    community = own_community()
    if query.get("week"):
        week = near_week(query["week"])
    else:
        week = this_or_next_week(lambda w: community_has_week(community, w))
    now = local_now()
    return {"community": {"id": community.id, "name": community.name}, "week": week,
            "previous_week": week - timedelta(days=7), "next_week": week + timedelta(days=7),
            "services": [service_out(row, now) for row in community_week(community, week)]}


class ServiceConfirmIn(Strict):
    present = fields.List(body_id(), load_default=list, validate=validate.Length(max=200),
                          metadata={"description": "Ids of the accepted assignments whose volunteers were there "
                                                   "without checking in (checked-in ones count anyway)."})


class ServiceConfirmOut(ma.Schema):
    completed = fields.Integer(required=True)
    no_show = fields.Integer(required=True)
    withdrawn = fields.Integer(required=True)
    service = fields.Nested(CommunityWeekServiceOut, required=True)


@blp.route("/occurrences/<int:occurrence_id>/confirm", methods=["POST"])
@needs("demands")
@worker_only
@blp.arguments(ServiceConfirmIn)
@blp.response(200, ServiceConfirmOut)
def confirm(data, occurrence_id: int):
    """Confirm that a service took place, ticking who was there.

    A service of the worker's community: checked-in volunteers and those ticked in `present` are completed
    and credited their hours (the ticked ones recorded as confirmed by hand), accepted ones not ticked are
    no-shows, unanswered offers are withdrawn. 400 before it started; 409 when confirmed already or
    cancelled; 404 for another community's."""
    occ = load_own_occurrence(occurrence_id, current_user)
    counts = confirm_service(occ, user=current_user, present=data["present"])
    db.session.commit()
    (row,) = week_rows([occ], week_start=rules.week_monday(occ.starts_at.date()))
    return {**counts, "service": service_out(row, local_now())}


class ServiceRatingIn(Strict):
    rating = fields.Integer(strict=True, required=True, validate=validate.Range(1, 5),
                            metadata={"description": "The resident's rating, 1 to 5 stars."})
    comment = text(500, load_default="")


@blp.route("/assignments/<int:assignment_id>/rating", methods=["POST"])
@needs("demands")
@worker_only
@blp.arguments(ServiceRatingIn)
@blp.response(200, CommunityWeekAssignmentOut)
def rate(data, assignment_id: int):
    """Record the resident's rating of a volunteer's service.

    A completed service of the worker's community (else 400 naming `rating`); a rating given before is
    replaced. The volunteer is told. 404 for another community's."""
    assignment = db.session.get(Assignment, assignment_id)
    if assignment is None:
        raise NotFound("not found")
    load_own_occurrence(assignment.occurrence_id, current_user)
    rate_service(assignment, data["rating"], data["comment"], user=current_user)
    db.session.commit()
    return assignment_out(assignment)



class CheckinCodeOut(ma.Schema):
    code = fields.String(required=True, metadata={"description": "Six digits the volunteer types."})
    token = fields.String(required=True, metadata={"description": "The QR code's signed token."})
    url = fields.String(required=True, metadata={"description": "The QR code's check-in address."})


class CheckinCodesOut(ma.Schema):
    closed = fields.Boolean(required=True, metadata={"description": "Cancelled or confirmed: no more codes."})
    check_in = fields.Nested(CheckinCodeOut, allow_none=True, required=True,
                             metadata={"description": "From an hour before the start until the end; else null."})
    check_out = fields.Nested(CheckinCodeOut, allow_none=True, required=True,
                              metadata={"description": "From the start until check-out closes; else null."})
    refresh_in = fields.Integer(allow_none=True, required=True,
                                metadata={"description": "Seconds until the codes change (each minute)."})


@blp.route("/occurrences/<int:occurrence_id>/codes")
@needs("demands")
@worker_only
@blp.response(200, CheckinCodesOut)
def checkin_codes_now(occurrence_id: int):
    """The service's check-in and check-out codes as the worker's screen shows them now, to show on the
    worker's phone (each changes every minute; the QR code is made from `url`). 404 for another community's."""
    from matcher.assignments import checkin_codes

    from ..community import checkin_url

    occ = load_own_occurrence(occurrence_id, current_user)
    codes = checkin_codes(occ, user=current_user)
    db.session.commit()  # an occurrence from before code secrets got its secret
    shown = {}
    for name in ("check_in", "check_out"):
        code = getattr(codes, name)
        shown[name] = None if code is None else {"code": code.code, "token": code.token,
                                                 "url": checkin_url(occ.id, code.token)}
    return {"closed": codes.closed, "refresh_in": codes.refresh_in, **shown}
