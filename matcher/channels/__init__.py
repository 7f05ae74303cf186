"""Channels that carry a notice outside the app (SMS, email, WeChat), behind one small interface.

The outbox (`matcher.outbox`) stores one row per notice, recipient and channel in the transaction that
causes it; the sender hands each row to its channel as a `Message` and records the `Receipt` or the
failure. A channel with no provider settings is off (`configured()` False), and the pages say so.

A channel:

- `name`: "sms", "email" or "wechat" (in-app notices are the `Notification` rows themselves);
- `configured()`: whether its provider settings are present;
- `address(user)`: where this person is reached on it (a phone in E.164, an e-mail address, a bound
  WeChat openid), or None when they cannot be;
- `send(message)`: sends one message and returns a `Receipt` with the provider's message id and
  answer; raises `TemporaryFailure` (retry later: a timeout, a 5xx, a rate limit) or
  `PermanentFailure` (give up: a refused number, a bad template).

Channels never write a token or a full phone number to the log.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Message:
    """One message to one address, already worded in the recipient's language."""

    key: str             # the outbox row's idempotency key (unique per event, recipient and channel)
    address: str         # phone (E.164), e-mail address or WeChat openid
    event: str           # the notice's event (Notification.kind), e.g. "offer"
    text: str            # the whole message as one text (SMS body, e-mail body)
    subject: str = ""    # e-mail subject (others ignore it)
    url: str = ""        # the page where the person acts (absolute, short, signed; logs nobody in)
    params: dict[str, Any] = field(default_factory=dict)  # template parameters (SMS/WeChat templates)


@dataclass(frozen=True)
class Receipt:
    """What the provider answered when it took the message."""

    provider_id: str = ""  # the provider's message id, to match delivery receipts
    answer: str = ""       # the provider's answer, short, for the delivery page


class TemporaryFailure(Exception):
    """Sending failed but may work later (timeout, 5xx, throttled): the sender retries with backoff."""


class PermanentFailure(Exception):
    """Sending can never work for this message (refused address, bad template): the sender gives up."""


def call_provider(request: Callable[[], httpx.Response], provider: str, context: str = "") -> httpx.Response:
    """Make one request to a provider (`request` does it with its own timeout); a timeout or a transport
    error (refused connection, DNS, a broken answer) becomes a `TemporaryFailure` naming the provider,
    retried later. `context` (the row's key and the masked address) goes to the log only."""
    try:
        return request()
    except httpx.TimeoutException as exc:
        log.warning("%s timed out %s", provider, context)
        raise TemporaryFailure(f"{provider} timed out") from exc
    except httpx.HTTPError as exc:
        log.warning("%s unreachable %s: %s", provider, context, type(exc).__name__)
        raise TemporaryFailure(f"{provider} unreachable ({type(exc).__name__})") from exc


def template_for(templates: dict[str, Any], message: Message, provider: str, setting_name: str, masked: str) -> Any:
    """The provider template configured for the message's event; a `PermanentFailure` naming the event and
    the setting when there is none (the person's next channel then gets the notice)."""
    template = templates.get(message.event)
    if not template:
        log.warning("%s not sent key=%s to=%s: no template for event %r", provider, message.key, masked,
                    message.event)
        raise PermanentFailure(f"no {provider} template for the event {message.event!r} ({setting_name})")
    return template


class Channel(Protocol):
    name: str

    def configured(self) -> bool: ...

    def address(self, user: Any) -> str | None: ...

    def send(self, message: Message) -> Receipt: ...


def channels() -> dict[str, Channel]:
    """Every outside channel by name (configured or not: ask each one `configured()`)."""
    from .email import EmailChannel
    from .sms import SmsChannel
    from .wechat import WeChatChannel

    return {"email": EmailChannel(), "sms": SmsChannel(), "wechat": WeChatChannel()}
