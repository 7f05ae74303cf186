"""Schemas shared by the API's parts: people, places, times, tokens."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate


class LocalTime(fields.DateTime):
    """A service time (stored naive, in the service's time zone) with its offset: 2026-12-07T09:00:00+08:00."""

    def _serialize(self, value, attr, obj, **kwargs):
        if value is not None and value.tzinfo is None:
            from zoneinfo import ZoneInfo

            from matcher.clock import DEFAULT_TIMEZONE
            from matcher.settings import setting

            value = value.replace(tzinfo=ZoneInfo(setting("TIMEZONE", DEFAULT_TIMEZONE)))
        return super()._serialize(value, attr, obj, **kwargs)


class UtcTime(fields.DateTime):
    """A moment the service recorded (stored naive in UTC) with its offset: 2026-12-01T02:00:00+00:00."""

    def _serialize(self, value, attr, obj, **kwargs):
        if value is not None and value.tzinfo is None:
            from datetime import UTC

            value = value.replace(tzinfo=UTC)
        return super()._serialize(value, attr, obj, **kwargs)


class Hours(fields.Decimal):
    """Hours as a decimal string ("1.5"): exact, unlike a float."""

    def __init__(self, **kwargs):
        metadata = {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$", "example": "1.5", **kwargs.pop("metadata", {})}
        super().__init__(as_string=True, metadata=metadata, **kwargs)


class Strict(ma.Schema):
    """A request body: unknown fields are refused (a typo is named, not silently dropped)."""

    class Meta:
        unknown = ma.RAISE


class AreaRef(ma.Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    level = fields.Function(lambda a: a.level.value, metadata={"enum": ["district", "township", "community"]})


class UserOut(ma.Schema):
    id = fields.Integer(required=True)
    username = fields.String(required=True)
    display_name = fields.String()
    role = fields.Function(lambda u: u.role.value,
                           metadata={"enum": ["admin", "coordinator", "worker", "org_leader", "volunteer"]})
    area = fields.Nested(AreaRef, allow_none=True)
    organization_id = fields.Integer(allow_none=True)
    volunteer_id = fields.Function(lambda u: u.volunteer.id if u.volunteer is not None else None, allow_none=True,
                                   metadata={"type": "integer", "nullable": True})
    locale = fields.String(allow_none=True)
    wechat_bound = fields.Function(lambda u: bool(u.wechat_openid), metadata={"type": "boolean"})


class TokenOut(ma.Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    kind = fields.Function(lambda t: t.kind.value, metadata={"enum": ["personal", "device"]})
    prefix = fields.String(metadata={"description": "The token's first characters, to recognise it."})
    scopes = fields.List(fields.String())
    created_at = UtcTime()
    expires_at = UtcTime()
    last_used_at = UtcTime(allow_none=True)
    state = fields.Function(lambda t: t.state(_now()), metadata={"enum": ["active", "expired", "revoked"]})


def _now():
    from matcher.models import utcnow

    return utcnow()


class TokenIssued(TokenOut):
    token = fields.String(required=True, metadata={"description": "The bearer token; shown this once only."})
    token_type = fields.Constant("bearer")
    user = fields.Nested(UserOut)


class WeekQuery(Strict):
    week = fields.Date(metadata={"description": "Any day of the week wanted (its Monday is used); "
                                                "default: the week ahead."})


class PeriodQuery(Strict):
    start = fields.Date(required=True, metadata={"description": "First day (inclusive)."})
    end = fields.Date(required=True, metadata={"description": "Last day (inclusive); at most 366 days after start."})

    @ma.validates_schema
    def _order(self, data, **kwargs):
        if data["end"] < data["start"]:
            raise ma.ValidationError("The end comes before the start.", "end")
        if (data["end"] - data["start"]).days > 366:
            raise ma.ValidationError("At most 366 days at once.", "end")


def plain(value: str) -> None:
    """No control characters (NUL among them) and no lone surrogates: text the databases can store."""
    from flask_babel import gettext as _

    from matcher.fields import has_control

    if has_control(value) or any("\ud800" <= ch <= "\udfff" for ch in value):
        raise ma.ValidationError(_("Remove the control characters (such as NUL) from this text."))


def text(max_length: int, **kwargs) -> fields.String:
    """A text field of at most `max_length` characters, storable as it is."""
    return fields.String(validate=[validate.Length(max=max_length), plain], **kwargs)


def body_id(**kwargs) -> fields.Integer:
    """The id of a row, sent as a JSON number (at most the ids' range: INTEGER columns on PostgreSQL)."""
    from matcher.fields import MAX_ROW_ID

    return fields.Integer(strict=True, validate=validate.Range(1, MAX_ROW_ID), **kwargs)
