"""One-time links: an invitation to join, the activation of a pre-registered account, a password reset."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..db import db
from ._types import Role, str_enum, utcnow
from .areas import Area
from .people import Organization, User


class LinkPurpose(enum.StrEnum):
    INVITE = "invite"      # a person not yet registered joins an organization (or a community)
    ACTIVATE = "activate"  # an imported or pre-registered account sets its first password
    RESET = "reset"        # a password reset, handed over in person by an administrator or coordinator


class AccountLink(db.Model):
    """A link that works once, until it expires or is revoked.

    Only the SHA-256 of the token is stored; the token itself is shown once, to whoever made the link,
    and is never written to a log or the audit trail.
    """

    __tablename__ = "account_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    purpose: Mapped[LinkPurpose] = mapped_column(str_enum(LinkPurpose, "link_purpose"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The account an activation or a reset is for (None for an invitation: the person has none yet).
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # Where an invitation leads: the organization to join and / or the home community.
    organization_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    area_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"))
    # The role the invited person gets (volunteers, except where an administrator or coordinator invites staff).
    role: Mapped[Role] = mapped_column(str_enum(Role, "user_role"), default=Role.VOLUNTEER)
    # Who the link is meant for, in the maker's words ("王阿姨, 138…"), shown on the maker's list only.
    note: Mapped[str] = mapped_column(String(120), default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    # The account that used an invitation (it had none before).
    used_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    revoked_at: Mapped[datetime | None]

    user: Mapped[User | None] = relationship(foreign_keys=[user_id])
    organization: Mapped[Organization | None] = relationship()
    area: Mapped[Area | None] = relationship()
    created_by: Mapped[User | None] = relationship(foreign_keys=[created_by_id])
    used_by: Mapped[User | None] = relationship(foreign_keys=[used_by_id])

    @property
    def state(self) -> str:
        """"used", "revoked", "expired" or "open" (for lists)."""
        if self.used_at is not None:
            return "used"
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at <= utcnow():
            return "expired"
        return "open"
