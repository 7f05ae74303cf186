"""The outbox: one row per notice, recipient and outside channel (SMS, email, WeChat), written in the
transaction that causes the notice and sent later by `matcher.outbox.send_due`."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .. import rules
from ..db import db
from ._types import str_enum, utcnow
from .schedules import Notification


class OutboxState(enum.StrEnum):
    """Where an outbox row stands. `sending` is a sender's claim: no other sender touches the row."""

    QUEUED = "queued"        # waiting for its time (first try, or postponed by quiet hours)
    SENDING = "sending"      # claimed by a sender (claimed_at) and being handed to the channel
    SENT = "sent"            # the provider took it (provider_id)
    DELIVERED = "delivered"  # the provider's receipt says it arrived
    FAILED = "failed"        # the last attempt failed; tried again at next_attempt_at
    GIVEN_UP = "given_up"    # never sent: a permanent failure, or too many attempts


# Rows a sender may pick once their time has come.
DUE_STATES = (OutboxState.QUEUED, OutboxState.FAILED)


def _default_key(context: Any) -> str:
    """f"{notification_id}:{channel}" at INSERT time (the notice's id is known by then, with no flush
    before); a row without a notice must be given its own key."""
    params = context.get_current_parameters()
    return f"{params['notification_id']}:{params['channel']}"


class OutboxMessage(db.Model):
    """One message to one person on one outside channel, with its delivery state."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    notification_id: Mapped[int | None] = mapped_column(ForeignKey("notifications.id", ondelete="SET NULL"),
                                                        index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(16))       # "sms", "email", "wechat"
    event: Mapped[str] = mapped_column(String(40))         # the notice's event (Notification.kind)
    # Idempotency: one row per notice and channel (or per event, recipient and batch for rows without
    # a notice); the channel hands it to the provider where the provider takes one.
    key: Mapped[str] = mapped_column(String(120), unique=True, default=_default_key)
    address: Mapped[str] = mapped_column(String(254))      # full address: show `masked_address` only
    text: Mapped[str] = mapped_column(String(1000))
    subject: Mapped[str] = mapped_column(String(200), default="")
    url: Mapped[str] = mapped_column(String(500), default="")
    params: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    urgent: Mapped[bool] = mapped_column(default=False)
    state: Mapped[OutboxState] = mapped_column(str_enum(OutboxState, "outbox_state"), default=OutboxState.QUEUED)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_at: Mapped[datetime | None]                    # when the last attempt started (rate limits)
    last_error: Mapped[str] = mapped_column(String(200), default="")  # the provider's answer, short
    provider_id: Mapped[str | None] = mapped_column(String(100), index=True)  # to match receipts
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]

    notification: Mapped[Notification | None] = relationship()

    __table_args__ = (Index("ix_outbox_due", "state", "next_attempt_at"),)

    @property
    def masked_address(self) -> str:
        """The address as a page may show it: 138****5678, l***@example.org, an openid's end."""
        return mask_address(self.channel, self.address)

    def __repr__(self) -> str:
        return f"<OutboxMessage {self.id} {self.channel} {self.event} {self.state}>"


def mask_address(channel: str, address: str | None) -> str:
    """An address with most of it hidden (for pages and logs)."""
    if not address:
        return ""
    if channel == "sms":
        return rules.mask_phone(address)
    if channel == "email" and "@" in address:
        local, _, domain = address.rpartition("@")
        return f"{local[:1]}***@{domain}"
    return "…" + address[-4:] if len(address) > 4 else "****"
