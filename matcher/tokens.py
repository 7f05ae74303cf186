"""API tokens: issuing, finding, listing and revoking the bearer tokens the JSON API accepts.

A token acts for one person with at most that person's rights: the API loads and changes rows through
the same scoping helper (`access.py`) and the same operations as the pages. Scopes narrow it further
(a system reading service records needs nothing else). Only the SHA-256 of a token is stored.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from .audit import record_audit
from .db import db
from .errors import NotFound, ValidationError
from .fields import Fields
from .models import ApiToken, Role, TokenKind, User, utcnow

PREFIX = "lnl_"

# Every scope, as a person reads it on the profile page, in the order shown.
SCOPES = {
    "read": _l("Read what you may see: offers, your week, demands, schedules"),
    "offers": _l("Answer offers, check in and out"),
    "profile": _l("Change your profile, free time and WeChat binding"),
    "demands": _l("Post, edit and cancel demands; confirm and rate services"),
    "schedules": _l("Start solves and publish schedules"),
    "records": _l("Read service records and hours (for another system)"),
}

# What each role's tokens may be allowed: never more than the pages let the person do.
ROLE_SCOPES = {
    Role.VOLUNTEER: ("read", "offers", "profile"),
    Role.WORKER: ("read", "profile", "demands"),
    Role.ORG_LEADER: ("read", "profile", "records"),
    Role.COORDINATOR: ("read", "profile", "schedules", "records"),
    Role.ADMIN: ("read", "profile", "schedules", "records"),
}

DEVICE_DAYS = 90
PERSONAL_DAYS = (30, 90, 180, 365)
MAX_ACTIVE = 20  # tokens a person may hold at once (a phone that signs in daily would otherwise pile them up)
TOUCH_EVERY = timedelta(minutes=5)  # last_used_at is written at most this often (not a write per request)


def hash_token(secret: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(secret.encode()).hexdigest()


def scopes_for(user: User) -> tuple[str, ...]:
    """The scopes a token of this person may hold (a volunteer profile adds the volunteer's)."""
    allowed = list(ROLE_SCOPES.get(user.role, ("read",)))
    if user.volunteer is not None and "offers" not in allowed:
        allowed.insert(1, "offers")
    return tuple(s for s in SCOPES if s in allowed)


def issue_token(user: User, *, kind: TokenKind, name: str, scopes: list[str] | None = None,
                days: int | None = None, actor: User | None = None) -> tuple[ApiToken, str]:
    """Make a token for `user` and return it with its secret (shown once, never stored). Flushes; audited.

    A device token gets every scope the person's role allows, for DEVICE_DAYS; a personal token the
    chosen scopes (at least one, each allowed to the role) for one of PERSONAL_DAYS.
    """
    allowed = scopes_for(user)
    errors: dict[str, str] = {}
    clean_name = (name or "").strip()
    if not clean_name:
        errors["name"] = str(_l("Give the token a name you will recognise (e.g. the system or phone it is for)."))
    elif len(clean_name) > 80 or not clean_name.isprintable():
        errors["name"] = str(_l("Use at most 80 characters, no line breaks."))
    if kind == TokenKind.DEVICE:
        chosen, lifetime = list(allowed), DEVICE_DAYS
    else:
        chosen = [s for s in SCOPES if s in set(scopes or [])]
        unknown = sorted(set(scopes or []) - set(SCOPES))
        if unknown:
            errors["scopes"] = str(_l("Unknown scope: %(s)s.", s=", ".join(unknown)))
        elif not chosen:
            errors["scopes"] = str(_l("Choose at least one thing the token may do."))
        elif any(s not in allowed for s in chosen):
            errors["scopes"] = str(_l("Your account may not do this: %(s)s.",
                                      s=", ".join(s for s in chosen if s not in allowed)))
        lifetime = days if days is not None else 90
        if lifetime not in PERSONAL_DAYS:
            errors["days"] = str(_l("Choose how long the token lasts: %(d)s days.",
                                    d=", ".join(str(d) for d in PERSONAL_DAYS)))
    if errors:
        raise ValidationError(errors)
    now = utcnow()
    active = [t for t in tokens_of(user) if t.usable(now)]
    if len(active) >= MAX_ACTIVE:
        # A new phone sign-in retires the oldest device; a personal token is never made over the limit.
        devices = [t for t in active if t.kind == TokenKind.DEVICE] if kind == TokenKind.DEVICE else []
        oldest = min(devices, key=lambda t: t.created_at, default=None)
        if oldest is None:
            raise ValidationError({"name": str(_l("You hold %(n)d tokens already: revoke one you no longer use.",
                                                  n=MAX_ACTIVE))})
        oldest.revoked_at = now
    secret = PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(user=user, kind=kind, name=clean_name, token_hash=hash_token(secret), prefix=secret[:10],
                     scopes=chosen, created_at=now, expires_at=now + timedelta(days=lifetime))
    db.session.add(token)
    db.session.flush()
    record_audit(actor or user, "token_create", token, kind=kind.value, scopes=chosen, days=lifetime)
    return token, secret


def read_token_form(data) -> dict:
    """The profile page's token form as plain values (name, scopes, days); a bad number is a field error."""
    f = Fields(data)
    days = f.integer("days", minimum=1, maximum=3650)
    if f.errors:
        raise ValidationError(f.errors)
    scopes = data.getlist("scopes") if hasattr(data, "getlist") else list(data.get("scopes") or [])
    return {"name": data.get("name", ""), "scopes": [str(s) for s in scopes], "days": days}


def find_token(secret: str, now: datetime | None = None) -> ApiToken | None:
    """The usable token with this secret whose person may still sign in, or None; notes when it was used."""
    if not secret.startswith(PREFIX) or len(secret) > 100 or not secret.isascii():
        return None
    token = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(secret)))
    now = now or utcnow()
    if token is None or not token.usable(now) or not token.user.active:
        return None
    if token.last_used_at is None or now - token.last_used_at > TOUCH_EVERY:
        token.last_used_at = now
    return token


def tokens_of(user: User) -> list[ApiToken]:
    """The person's tokens, newest first (revoked and expired ones too, for the list)."""
    return list(db.session.scalars(select(ApiToken).where(ApiToken.user_id == user.id)
                                   .order_by(ApiToken.created_at.desc(), ApiToken.id.desc())))


def own_token(user: User, token_id: int) -> ApiToken:
    """One of the person's own tokens, or NotFound."""
    token = db.session.get(ApiToken, token_id)
    if token is None or token.user_id != user.id:
        raise NotFound(str(_l("No such token.")))
    return token


def revoke_token(token: ApiToken, *, user: User) -> bool:
    """Revoke a token (it stops working at once). False when it was revoked already. Flushes; audited."""
    if token.revoked_at is not None:
        return False
    token.revoked_at = utcnow()
    record_audit(user, "token_revoke", token, kind=token.kind.value)
    return True


def revoke_devices(user: User) -> int:
    """Revoke every device token of the person (a password change signs the phones out too)."""
    now = utcnow()
    count = 0
    for token in tokens_of(user):
        if token.kind == TokenKind.DEVICE and token.revoked_at is None:
            token.revoked_at = now
            count += 1
    return count
