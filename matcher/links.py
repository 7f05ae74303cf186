"""One-time links (invitation, activation, password reset): made, found, used, revoked.

A link carries a random token (256 bits); the database keeps only its SHA-256, so a copy of the
database opens no account. The token is returned once, to the caller that made the link, to be shown
to the person who hands it over; it is never written to a log or the audit trail. Making a new
activation or reset link for an account revokes the account's earlier open ones of that purpose.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, update

from . import rules
from .accounts import create_user, password_problem, personal_words, set_password
from .audit import record_audit
from .clock import local_today
from .db import db
from .errors import AccessDenied, Conflict, NotFound
from .fields import Fields
from .models import AccountLink, Area, AuditEntry, LinkPurpose, Organization, Role, User, Volunteer, utcnow

# How long a link stays usable, by purpose: an invitation is passed around a WeChat group for a
# while; an activation is handed over with the roster; a reset is handed over in person, now.
LIFETIME = {
    LinkPurpose.INVITE: timedelta(days=14),
    LinkPurpose.ACTIVATE: timedelta(days=14),
    LinkPurpose.RESET: timedelta(hours=24),
}


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def make_link(purpose: LinkPurpose, *, created_by: User | None, user: User | None = None,
              organization: Organization | None = None, area: Area | None = None,
              role: Role = Role.VOLUNTEER, note: str = "",
              lifetime: timedelta | None = None) -> tuple[AccountLink, str]:
    """Make a link and return it with its token (shown once). Flushes, never commits; audited."""
    if purpose in (LinkPurpose.ACTIVATE, LinkPurpose.RESET):
        if user is None:
            raise ValueError(f"a {purpose} link needs an account")
        db.session.execute(
            update(AccountLink)
            .where(AccountLink.user_id == user.id, AccountLink.purpose == purpose,
                   AccountLink.used_at.is_(None), AccountLink.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
        for obj in list(db.session.identity_map.values()):  # links already loaded see the revocation
            if isinstance(obj, AccountLink) and obj.user_id == user.id and obj.purpose == purpose:
                db.session.expire(obj, ["revoked_at"])
    token = secrets.token_urlsafe(32)
    link = AccountLink(purpose=purpose, token_hash=token_hash(token), user_id=user.id if user else None,
                       organization_id=organization.id if organization else None,
                       area_id=area.id if area else None, role=role, note=(note or "")[:120],
                       created_by_id=created_by.id if created_by else None,
                       expires_at=utcnow() + (lifetime or LIFETIME[purpose]))
    db.session.add(link)
    db.session.flush()
    record_audit(created_by, f"make_{purpose.value}_link", link, account=user.id if user else None,
                 organization=organization.id if organization else None)
    return link, token


def open_link(token: str | None, purpose: LinkPurpose) -> AccountLink | None:
    """The usable link with this token and purpose, or None (unknown, used, revoked or expired)."""
    if not token or len(token) > 100:
        return None
    link = db.session.scalar(select(AccountLink).where(AccountLink.token_hash == token_hash(token),
                                                       AccountLink.purpose == purpose))
    if link is None or link.state != "open":
        return None
    return link


def use_link(link: AccountLink, *, used_by: User | None = None) -> None:
    """Mark the link used (it opens nothing again). Flushes, never commits."""
    link.used_at = utcnow()
    link.used_by_id = used_by.id if used_by else link.user_id
    db.session.flush()


def revoke_link(link: AccountLink, *, user: User | None) -> None:
    """Revoke an open link. Flushes, never commits; audited."""
    if link.state == "open":
        link.revoked_at = utcnow()
        record_audit(user, f"revoke_{link.purpose.value}_link", link)
        db.session.flush()


# --------------------------------------------------------------------------- invitations

INVITERS = (Role.ORG_LEADER, Role.WORKER)
# Wrong "last four digits" allowed on one activation link before it stops working.
ACTIVATION_MAX_FAILURES = 5


def make_invitation(*, user: User, note: Any = "") -> tuple[AccountLink, str]:
    """An organization's leader invites someone to join the organization; a community worker, to
    volunteer in their community (the invitee then picks an organization serving it). Returns the
    link and its token (shown once)."""
    f = Fields({"note": note})
    text = f.text("note", max_length=120)
    f.check()
    if user.role == Role.ORG_LEADER and user.organization_id is not None:
        return make_link(LinkPurpose.INVITE, created_by=user, organization=user.organization, note=text)
    if user.role == Role.WORKER and user.area_id is not None:
        return make_link(LinkPurpose.INVITE, created_by=user, area=user.area, note=text)
    raise AccessDenied(str(_l("Only an organization's leader or a community worker can invite volunteers.")))


def own_links(user: User, purpose: LinkPurpose, limit: int = 50) -> list[AccountLink]:
    """The links `user` made for `purpose`, newest first."""
    return list(db.session.scalars(select(AccountLink).where(
        AccountLink.created_by_id == user.id, AccountLink.purpose == purpose)
        .order_by(AccountLink.created_at.desc(), AccountLink.id.desc()).limit(limit)))


def load_own_link(link_id: int, user: User) -> AccountLink:
    """A link `user` made (an administrator: any), else NotFound."""
    link = db.session.get(AccountLink, link_id)
    if link is None or (user.role != Role.ADMIN and link.created_by_id != user.id):
        raise NotFound(str(_l("No such link.")))
    return link


# --------------------------------------------------------------------------- activation

ACTIVATORS = (Role.ADMIN, Role.COORDINATOR, Role.WORKER, Role.ORG_LEADER)


def can_activate(volunteer: Volunteer) -> bool:
    """Whether the volunteer's account has no usable password yet (imported, pre-registered) and is
    not locked."""
    return volunteer.user is None or (not volunteer.user.password_hash and volunteer.user.active)


def make_activation_link(volunteer: Volunteer, *, user: User) -> tuple[AccountLink, str]:
    """A link with which a pre-registered volunteer sets their first password.

    For an administrator, a coordinator or community worker over the volunteer's home, or the leader
    of an organization they belong or applied to (`access.volunteer_filter`; anyone else: NotFound).
    A volunteer without an account gets one now (username: their phone's national digits, no
    password). An earlier open activation link of the account stops working."""
    from .access import load_visible

    if user.role not in ACTIVATORS:
        raise AccessDenied(str(_l("You cannot make activation links.")))
    load_visible(Volunteer, volunteer.id, user)
    if volunteer.user is not None and not volunteer.user.active:
        raise Conflict(str(_l("This account is locked; it must be unlocked before it can be activated.")))
    if not can_activate(volunteer):
        raise Conflict(str(_l("%(n)s has activated the account already.", n=volunteer.real_name)))
    account = volunteer.user
    if account is None:
        username = rules.national_phone(volunteer.phone)
        if db.session.scalar(select(User.id).where(User.username == username)) is not None:
            raise Conflict(str(_l("An account with this phone number exists already; ask an administrator.")))
        account = create_user(username=username, password=None, role=Role.VOLUNTEER,
                              display_name=volunteer.real_name)
        volunteer.user = account
        db.session.flush()
    return make_link(LinkPurpose.ACTIVATE, created_by=user, user=account)


def activation_volunteer(link: AccountLink) -> Volunteer | None:
    """The volunteer profile an activation link's account belongs to."""
    return db.session.scalar(select(Volunteer).where(Volunteer.user_id == link.user_id)) if link.user_id else None


def activate_account(link: AccountLink, data: Mapping[str, Any], *, min_length: int = 8) -> User:
    """The person confirms the last four digits of their phone, sets a password and their birth date.

    A wrong four digits is a ValidationError on `phone_last4` (the caller records it with
    `activation_failed`). Flushes, never commits; audited. The link is used up."""
    from .volunteers import MIN_AGE  # volunteers imports this module

    volunteer = activation_volunteer(link)
    account = link.user
    if account is None or volunteer is None or account.password_hash or not account.active:
        raise Conflict(str(_l("This account is active already; sign in.")))
    f = Fields(data)
    last4 = f.text("phone_last4", required=True, max_length=10)
    if last4 and last4 != rules.national_phone(volunteer.phone)[-4:]:
        f.fail("phone_last4", _l("These are not the last four digits of the phone number your organization has."))
    today = local_today()
    birth_date = f.date("birth_date", earliest=date(1920, 1, 1), latest=date(today.year - MIN_AGE, 1, 1))
    password = data.get("password") if isinstance(data.get("password"), str) else ""
    if not password:
        f.fail("password", _l("This field is required."))
    elif data.get("repeat") != password:
        f.fail("repeat", _l("The two passwords differ."))
    else:
        problem = password_problem(password, min_length, personal=personal_words(account))
        if problem:
            f.fail("password", problem)
    f.check()
    set_password(account, password, min_length)
    volunteer.birth_date = birth_date
    volunteer.birth_year = birth_date.year
    use_link(link, used_by=account)
    record_audit(account, "activate_account", account, link=link.id)
    db.session.flush()
    return account


def activation_failed(link: AccountLink) -> bool:
    """Record a wrong four digits on an activation link; after ACTIVATION_MAX_FAILURES the link is
    revoked. Returns whether it still works. Flushes, never commits."""
    record_audit(None, "activation_failed", link)
    db.session.flush()
    failures = db.session.scalar(select(func.count(AuditEntry.id)).where(
        AuditEntry.action == "activation_failed", AuditEntry.object_type == "accountlink",
        AuditEntry.object_id == link.id))
    if failures >= ACTIVATION_MAX_FAILURES:
        link.revoked_at = utcnow()
        record_audit(None, "revoke_activate_link", link, reason="too_many_failures")
        db.session.flush()
        return False
    return True
