"""One-time links (invitation, activation, password reset): made, found, used, revoked.

A link carries a random token (256 bits); the database keeps only its SHA-256, so a copy of the
database opens no account. The token is returned once, to the caller that made the link, to be shown
to the person who hands it over; it is never written to a log or the audit trail. Making a new
activation or reset link for an account revokes the account's earlier open ones of that purpose.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import select, update

from .audit import record_audit
from .db import db
from .models import AccountLink, Area, LinkPurpose, Organization, Role, User, utcnow

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
