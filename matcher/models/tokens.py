"""Bearer tokens for the JSON API: personal access tokens for other systems, device tokens for the phone client."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..db import db
from ._types import str_enum, utcnow
from .people import User


class TokenKind(enum.StrEnum):
    PERSONAL = "personal"  # made on the profile page for another system (the district platform, a script)
    DEVICE = "device"      # made by the phone client after the person signs in there (password or WeChat)


class ApiToken(db.Model):
    """A bearer token: who it acts for, what it may do (scopes), until when.

    Only the SHA-256 of the token is stored (the token is 256 random bits, so a fast hash is safe);
    the token itself is shown once, when it is made. `prefix` (its first characters) lets the
    person recognise it on their list.
    """

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[TokenKind] = mapped_column(str_enum(TokenKind, "token_kind"))
    name: Mapped[str] = mapped_column(String(80))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    user: Mapped[User] = relationship()

    def usable(self, now: datetime) -> bool:
        """Not revoked, not expired."""
        return self.revoked_at is None and self.expires_at > now

    def state(self, now: datetime) -> str:
        """"revoked", "expired" or "active" (for lists)."""
        if self.revoked_at is not None:
            return "revoked"
        return "active" if self.expires_at > now else "expired"
