"""The signed-in person through the API: who they are, their tokens and WeChat binding; a volunteer's
offers, week, check-in and check-out, record, profile and free time (the pages' rules, as JSON)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import marshmallow as ma
from flask import current_app, g
from flask_babel import gettext as _
from flask_login import current_user
from marshmallow import fields, validate
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from matcher import accounts, assignments, rules, tokens, volunteers
from matcher.access import load_own_assignment
from matcher.audit import record_audit
from matcher.db import db
from matcher.errors import NotFound, ValidationError
from matcher.models import BOOKED, HELD, Assignment, AssignmentStatus, DemandOccurrence, Volunteer

from ..volunteer import _with_demand, default_week, place_text, reason_texts
from . import PREFIX, Blueprint, needs
from .schemas import Hours, LocalTime, Strict, TokenOut, UserOut, UtcTime, WeekQuery, text

blp = Blueprint("api_me", __name__, url_prefix=PREFIX + "/me",
                description="The signed-in person: tokens, WeChat; a volunteer's offers, week, check-in, record "
                            "and profile.")


# --- who, tokens, WeChat ---------------------------------------------------------------------------


class MeOut(UserOut):
    token_scopes = fields.Function(lambda u: list(g.api_token.scopes), metadata={"type": "array",
                                                                              "items": {"type": "string"}})


@blp.route("")
@blp.response(200, MeOut)
def me():
    """Who the token acts for, and what it may do."""
    return current_user


@blp.route("/tokens")
@needs("read")
@blp.response(200, TokenOut(many=True))
def my_tokens():
    """The person's tokens (personal and device, revoked and expired ones too), newest first."""
    return tokens.tokens_of(current_user)


@blp.route("/tokens/<int:token_id>", methods=["DELETE"])
@blp.response(204)
def revoke_token(token_id: int):
    """Revoke one of the person's tokens (this one too: the phone client's sign-out). Any scope may."""
    token = tokens.own_token(current_user, token_id)
    tokens.revoke_token(token, user=current_user)
    db.session.commit()


class WechatCode(Strict):
    code = fields.String(required=True, validate=validate.Length(min=1, max=128),
                         metadata={"description": "The code of wx.login() in the mini-program."})


@blp.route("/wechat", methods=["PUT"])
@needs("profile")
@blp.arguments(WechatCode)
@blp.response(200, UserOut)
def bind_wechat(data):
    """Bind the person's WeChat (from the mini-program's wx.login() code) to the account: WeChat then
    signs them in (POST /api/v1/auth/wechat) and carries their notices once they agree to receive them."""
    from .auth import exchange_code

    openid = exchange_code(data["code"])
    if not isinstance(openid, str):
        return openid
    accounts.bind_wechat(current_user, openid)
    db.session.commit()
    return current_user


@blp.route("/wechat", methods=["DELETE"])
@needs("profile")
@blp.response(204)
def unbind_wechat():
    """Unbind the person's WeChat: no more sign-in or notices through it."""
    accounts.unbind_wechat(current_user)
    db.session.commit()


# --- a volunteer's services ------------------------------------------------------------------------


def own_volunteer() -> Volunteer:
    volunteer = volunteers.volunteer_of(current_user)
    if volunteer is None:
        raise NotFound(_("This account has no volunteer profile."))
    return volunteer


class CategoryOut(ma.Schema):
    code = fields.String()
    name = fields.Function(lambda c: c.name_zh)


class ServiceOut(ma.Schema):
    """One of the volunteer's services (an offer, or a service held or done), with the pages' privacy:
    the resident's name and the exact address only while the volunteer holds the service."""

    id = fields.Integer(required=True)
    status = fields.Function(lambda a: a.status.value,
                             metadata={"enum": [s.value for s in AssignmentStatus]})
    occurrence_id = fields.Integer()
    demand_id = fields.Function(lambda a: a.occurrence.demand_id, metadata={"type": "integer"})
    title = fields.Function(lambda a: a.occurrence.demand.title)
    category = fields.Function(lambda a: CategoryOut().dump(a.occurrence.demand.category),
                               metadata={"type": "object"})
    community = fields.Function(lambda a: {"id": a.occurrence.demand.community_id,
                                           "name": a.occurrence.demand.community.name},
                                metadata={"type": "object"})
    starts_at = LocalTime(attribute="occurrence.starts_at")
    ends_at = LocalTime(attribute="occurrence.ends_at")
    place = fields.Function(lambda a: place_text(a), metadata={
        "description": "Where: the exact address only while the service is accepted or checked in."})
    resident = fields.Function(lambda a: resident_of(a), allow_none=True,
                               metadata={"type": "object", "nullable": True,
                                         "description": "Name and masked phone, only while held."})
    reasons = fields.Function(lambda a: reason_texts(a), metadata={"type": "array", "items": {"type": "string"}})
    distance_km = fields.Float(allow_none=True)
    offered_at = UtcTime(allow_none=True)
    responded_at = UtcTime(allow_none=True)
    checked_in_at = LocalTime(allow_none=True)
    checked_out_at = LocalTime(allow_none=True)
    credited_hours = Hours(allow_none=True)
    rating = fields.Integer(allow_none=True)


def resident_of(a: Assignment) -> dict | None:
    resident = a.occurrence.demand.resident
    if a.status not in HELD or resident is None:
        return None
    return {"name": resident.name, "phone": rules.mask_phone(resident.phone) if resident.phone else ""}


def _services(volunteer: Volunteer, *where) -> list[Assignment]:
    return list(db.session.scalars(_with_demand(
        select(Assignment).join(DemandOccurrence, Assignment.occurrence_id == DemandOccurrence.id)
        .where(Assignment.volunteer_id == volunteer.id, *where).order_by(DemandOccurrence.starts_at))))


@blp.route("/offers")
@needs("read")
@blp.response(200, ServiceOut(many=True))
def offers():
    """The volunteer's open offers in time order (reading them records that they were seen, as the page does)."""
    from matcher import delivery

    shown = _services(own_volunteer(), Assignment.status == AssignmentStatus.OFFERED)
    if delivery.mark_seen(shown):
        db.session.commit()
    return shown


class DeclineIn(Strict):
    kind = fields.String(required=True, validate=validate.OneOf([k.value for k in assignments.DECLINE_REASONS]),
                         metadata={"description": "not_free, too_far or other (then say why in reason)."})
    reason = text(200, load_default="", metadata={"description": "The volunteer's own words."})


def _answer(assignment_id: int, accept: bool, data: dict | None = None) -> Assignment:
    own_volunteer()
    assignment = load_own_assignment(assignment_id, current_user)
    data = data or {}
    assignments.respond_to_offer(assignment, user=current_user, accept=accept, reason=data.get("reason", ""),
                                 kind=data.get("kind"))
    db.session.commit()
    return assignment


@blp.route("/offers/<int:assignment_id>/accept", methods=["POST"])
@needs("offers")
@blp.response(200, ServiceOut)
def accept(assignment_id: int):
    """Accept an offer: the service is the volunteer's, with the resident's name and the address. 409 when
    it clashes with another service (travel included), is full, or was answered or withdrawn meanwhile."""
    return _answer(assignment_id, True)


@blp.route("/offers/<int:assignment_id>/decline", methods=["POST"])
@needs("offers")
@blp.arguments(DeclineIn)
@blp.response(200, ServiceOut)
def decline(data, assignment_id: int):
    """Decline an offer with a reason; the coordinator is told and the schedule repaired."""
    return _answer(assignment_id, False, data)


@blp.route("/week")
@needs("read")
@blp.arguments(WeekQuery, location="query", unknown=ma.RAISE)
@blp.response(200, ServiceOut(many=True))
def week(query):
    """Accepted, checked-in and completed services of a week (default: the week ahead, as on the page)."""
    volunteer = own_volunteer()
    monday = rules.week_monday(query["week"]) if query.get("week") else default_week(volunteer)
    start = datetime.combine(monday, time())
    return _services(volunteer, Assignment.status.in_(BOOKED), DemandOccurrence.starts_at >= start,
                     DemandOccurrence.starts_at < start + timedelta(days=7))


class PhoneOut(ma.Schema):
    phone = fields.String(required=True, metadata={"example": "+8613700001111"})


@blp.route("/services/<int:assignment_id>/resident-phone", methods=["POST"])
@needs("offers")
@blp.response(200, PhoneOut)
def resident_phone(assignment_id: int):
    """The resident's phone of a service the volunteer holds now; every reveal is audited (as on the page)."""
    own_volunteer()
    assignment = load_own_assignment(assignment_id, current_user)
    resident = assignment.occurrence.demand.resident
    if assignment.status not in HELD or resident is None or not resident.phone:
        raise NotFound(_("No phone to show for this service."))
    record_audit(current_user, "reveal_phone", resident, assignment=assignment.id, via="api")
    db.session.commit()
    return {"phone": resident.phone}


class ProofIn(Strict):
    code = text(20, load_default="", metadata={"description": "The code the community worker shows."})
    token = text(400, load_default="", metadata={"description": "Or the token of the QR code's link (t=...)."})

    @ma.validates_schema
    def _one(self, data, **kwargs):
        if not (data.get("code") or "").strip() and not (data.get("token") or "").strip():
            raise ma.ValidationError("Send the code shown on site, or the QR code's token.", "code")


def _check(assignment_id: int, data: dict, out: bool) -> Assignment:
    own_volunteer()
    assignment = load_own_assignment(assignment_id, current_user)
    action = assignments.check_out if out else assignments.check_in
    try:
        done = action(assignment.occurrence, data.get("code", "").strip(), token=data.get("token", "").strip(),
                      user=current_user)
    except assignments.CheckinRefused as exc:
        db.session.rollback()
        assignments.keep_refusal(exc)  # a failed attempt counts even though nothing else is saved
        db.session.commit()
        raise
    db.session.commit()
    return done


@blp.route("/services/<int:assignment_id>/check-in", methods=["POST"])
@needs("offers")
@blp.arguments(ProofIn)
@blp.response(200, ServiceOut)
def check_in(data, assignment_id: int):
    """Check in at a service the volunteer accepted, with the code or QR token shown on site (from an hour
    before the start); bad codes are limited like on the page (429 after too many)."""
    return _check(assignment_id, data, out=False)


@blp.route("/services/<int:assignment_id>/check-out", methods=["POST"])
@needs("offers")
@blp.arguments(ProofIn)
@blp.response(200, ServiceOut)
def check_out(data, assignment_id: int):
    """Check out with the check-out code or QR token: the service is completed and its hours credited."""
    return _check(assignment_id, data, out=True)


class RecordOut(ma.Schema):
    total_hours = Hours()
    stars = fields.Integer()
    hours_to_next_star = Hours(allow_none=True)
    star_thresholds = fields.List(fields.Float())
    services = fields.List(fields.Nested(ServiceOut))


@blp.route("/record")
@needs("read")
@blp.response(200, RecordOut)
def record():
    """Total hours, star level, hours to the next star and the services done with their ratings."""
    volunteer = own_volunteer()
    thresholds = current_app.config["STAR_THRESHOLDS"]
    done = _services(volunteer, Assignment.status == AssignmentStatus.COMPLETED)[::-1]
    return {"total_hours": volunteer.total_hours, "stars": rules.star_level(volunteer.total_hours, thresholds),
            "hours_to_next_star": volunteers.hours_to_next_star(volunteer.total_hours, thresholds),
            "star_thresholds": list(thresholds), "services": done}


# --- profile and free time -------------------------------------------------------------------------


class SlotIO(Strict):
    day = fields.Integer(required=True, validate=validate.Range(0, 6), metadata={"description": "0 = Monday"})
    start = fields.String(required=True, validate=validate.Regexp(r"^\d{2}:\d{2}$"), metadata={"example": "08:00"})
    end = fields.String(required=True, validate=validate.Regexp(r"^\d{2}:\d{2}$"), metadata={"example": "12:00"})


class ExceptionIO(Strict):
    date = fields.Date(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(["away", "extra"]))
    start = fields.String(load_default="", validate=validate.Regexp(r"^(\d{2}:\d{2})?$"),
                          metadata={"description": "Empty with end: the whole day."})
    end = fields.String(load_default="", validate=validate.Regexp(r"^(\d{2}:\d{2})?$"))
    note = text(100, load_default="")


class ProfileIO(Strict):
    """The volunteer's profile as the profile page edits it (PUT replaces it whole)."""

    slots = fields.List(fields.Nested(SlotIO), required=True, validate=validate.Length(max=50),
                        metadata={"description": "Weekly free time."})
    exceptions = fields.List(fields.Nested(ExceptionIO), load_default=list, validate=validate.Length(max=50),
                             metadata={"description": "Dated changes: away, or extra time."})
    max_hours_per_week = Hours(allow_none=True, load_default=None, places=1,
                                        metadata={"example": "6.0",
                                                  "description": "Hours a week at most, in half hours."})
    preferred_hours_per_week = Hours(allow_none=True, load_default=None, places=1,
                                              metadata={"example": "3.0"})
    max_travel_km = fields.Float(required=True, allow_nan=False)
    skills = fields.List(fields.String(validate=validate.Length(max=40)), required=True,
                         validate=validate.Length(max=50))
    lat = fields.Float(required=True, allow_nan=False)
    lon = fields.Float(required=True, allow_nan=False)
    address = text(200, load_default="")
    real_name = fields.String(dump_only=True)
    home_area = fields.Dict(dump_only=True, metadata={"description": "The community the volunteer lives in "
                                                                     "(id, name); changed by a coordinator."})


def profile_out(volunteer: Volunteer) -> dict:
    values = volunteers.profile_values(volunteer)
    return {
        "slots": [{"day": int(r["day"]), "start": r["start"], "end": r["end"]} for r in values["slot_rows"]],
        "exceptions": [{"date": date.fromisoformat(r["date"]), "kind": r["kind"], "start": r["start"], "end": r["end"],
                        "note": r["note"]} for r in values["exception_rows"]],
        "max_hours_per_week": _hours(volunteer.max_minutes_per_week),
        "preferred_hours_per_week": _hours(volunteer.preferred_minutes_per_week),
        "max_travel_km": volunteer.max_travel_km, "skills": [s.code for s in volunteer.skills],
        "lat": volunteer.lat, "lon": volunteer.lon, "address": volunteer.address,
        "real_name": volunteer.real_name,
        "home_area": {"id": volunteer.home_area_id, "name": volunteer.home_area.name},
    }


def _hours(minutes):
    from decimal import Decimal

    return None if minutes is None else Decimal(minutes) / 60


def _etag(volunteer: Volunteer) -> dict:
    return profile_out(volunteer) | {"home_area": volunteer.home_area_id, "id": volunteer.id}


@blp.route("/profile")
@needs("read")
@blp.etag
@blp.response(200, ProfileIO)
def profile():
    """The volunteer's free time, limits, skills and home; its ETag goes with a change (If-Match)."""
    volunteer = own_volunteer()
    blp.set_etag(_json_safe(_etag(volunteer)))
    return profile_out(volunteer)


@blp.route("/profile", methods=["PUT"])
@needs("profile")
@blp.etag
@blp.arguments(ProfileIO)
@blp.response(200, ProfileIO)
def update_profile(data):
    """Replace the profile (the page's rules: every bad field named, nothing changed). Needs If-Match with the
    ETag of the last read (412 when the profile changed since, 428 without it)."""
    volunteer = own_volunteer()
    blp.check_etag(_json_safe(_etag(volunteer)))
    form = MultiDict()
    for slot in data["slots"]:
        form.add("slot_day", str(slot["day"]))
        form.add("slot_start", slot["start"])
        form.add("slot_end", slot["end"])
    for exc in data["exceptions"]:
        for name in ("date", "kind", "start", "end", "note"):
            value = exc[name]
            form.add(f"exc_{name}", value.isoformat() if name == "date" else value)
    for name in ("max_hours_per_week", "preferred_hours_per_week"):
        form[name] = "" if data[name] is None else str(data[name])
    for name in ("max_travel_km", "lat", "lon", "address"):
        form[name] = str(data[name])
    for code in data["skills"]:
        form.add("skills", code)
    try:
        volunteers.update_profile(volunteer, form, user=current_user)
    except ValidationError as exc:  # the page's field names, as this body names them
        raise ValidationError({PAGE_FIELDS.get(k, k): v for k, v in exc.errors.items()}) from None
    db.session.commit()
    blp.set_etag(_json_safe(_etag(volunteer)))
    return profile_out(volunteer)


# The profile form's names for what this body calls otherwise.
PAGE_FIELDS = {"availability": "slots"}


def _json_safe(values: dict) -> dict:
    return {k: (str(v) if not isinstance(v, int | float | str | list | type(None)) else v)
            for k, v in values.items()}


