"""The outbox: notices sent outside the app (SMS, email, WeChat), and the sender that sends them.

Writing. `notifications.notify` calls `enqueue_for(notice, user)` for every notice it adds: when the
user has chosen outside channels (`User.channels`, in their order of preference), the first of them
that is configured and reaches the person (`Channel.address(user)`) gets one `OutboxMessage`, worded
by `render_notice` in the recipient's language. The row is added to the same session as the notice,
without a flush, so both are committed or rolled back together; nothing is sent inside a request.
With no channel chosen or configured nothing is written. The session remembers that a row was
written (`session.info[WRITTEN]`), so the web layer starts the sender after the commit.

Sending. `send_due(now)` takes the rows whose time has come, one at a time:

1. quiet hours first: a due row on a quiet channel (SMS), not urgent, between OUTBOX_QUIET_HOURS
   (21:00–08:00 service time) is postponed to the end of the quiet hours, with no attempt counted;
2. claim: a guarded `UPDATE ... SET state='sending' WHERE state IN ('queued','failed')` committed
   before the channel is called (on PostgreSQL the row is picked with `FOR UPDATE SKIP LOCKED`, on
   SQLite in a `BEGIN IMMEDIATE` transaction), so two senders never both send a row, and a row that
   was sent is never picked again;
3. rate limit: attempts started on the channel within the last minute (every sender's claims, in the
   database) are counted after the claim; over OUTBOX_RATE_LIMITS the claim is released and the
   channel waits for the next run;
4. the channel's answer: a `Receipt` makes the row `sent`; a `TemporaryFailure` (or any unexpected
   error) `failed`, tried again after OUTBOX_BACKOFF_MINUTES (1, 5, 30, 120 minutes), given up after
   OUTBOX_MAX_ATTEMPTS; a `PermanentFailure` `given_up` at once. A row given up falls back to the
   person's next channel that reaches them (a new row, key "<key>><channel>").

A sender that died during an attempt leaves a claim; after OUTBOX_STALE_CLAIM_MINUTES it counts as
a failed attempt and the row is tried again (the message may then arrive twice: the provider sees
the same key, and an e-mail the same Message-ID). Logs name rows by id, channel and event, never
the address or the text.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask_babel import force_locale
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, update

from .channels import Channel, Message, PermanentFailure, TemporaryFailure, channels
from .clock import DEFAULT_TIMEZONE
from .db import db
from .models import Notification, OutboxMessage, OutboxState, User, utcnow
from .models.outbox import DUE_STATES
from .notifications import render_notice, user_locale, worded_params
from .settings import outbox_settings, setting
from .shortlinks import short_url

log = logging.getLogger(__name__)

# session.info key: an outbox row was added in this transaction (start the sender after commit).
WRITTEN = "linli_outbox_written"
# Events that may break the quiet hours.
URGENT_EVENTS = frozenset({"demand_review_urgent"})
# The e-mail subject (SMS and WeChat ignore it).
SUBJECT = _l("Linli volunteer service notice")
KEY_LENGTH = 120
TEXT_LENGTH = 1000


def channel_registry() -> dict[str, Channel]:
    """Every channel by name: the built-in ones, and OUTBOX_CHANNELS' instances over them."""
    return {**channels(), **outbox_settings()["extra_channels"]}


def preferred(user: User, defaults: list[str] | None = None) -> list[str]:
    """The user's outside channels in their order of preference (empty: in-app only); a person who
    never chose (`User.channels` NULL) has OUTBOX_DEFAULT_CHANNELS (or `defaults`, read once by a caller
    going through many people)."""
    value = user.channels
    if value is None:
        value = outbox_settings()["default_channels"] if defaults is None else defaults
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",")]
    return [name for name in (value or []) if isinstance(name, str) and name]


def reachable(user: User, registry: dict[str, Channel] | None = None, *,
              after: str | None = None) -> tuple[str, str] | None:
    """(channel, address) of the first of the user's channels (after `after` in their order) that is
    configured and reaches them, or None."""
    names = preferred(user)
    if after is not None:
        names = names[names.index(after) + 1:] if after in names else []
    if not names:
        return None
    registry = registry if registry is not None else channel_registry()
    for name in names:
        channel = registry.get(name)
        if channel is None or not channel.configured():
            continue
        address = channel.address(user)
        if address:
            return name, address
    return None


def reachable_all(users: list[User]) -> dict[int, tuple[str, str] | None]:
    """`reachable` for many people at once, by user id, reading the settings and asking each channel
    whether it is configured once (a district's thousand volunteers on one page)."""
    registry = {name: channel for name, channel in channel_registry().items() if channel.configured()}
    defaults = outbox_settings()["default_channels"]
    found: dict[int, tuple[str, str] | None] = {}
    for user in users:
        found[user.id] = None
        for name in preferred(user, defaults):
            channel = registry.get(name)
            address = channel.address(user) if channel is not None else None
            if address:
                found[user.id] = (name, address)
                break
    return found


def enqueue_for(notification: Notification, user: User, *, urgent: bool | None = None,
                url: str = "") -> OutboxMessage | None:
    """Queue the notice for the user's first reachable outside channel (no flush); None when the
    user is reached in the app only."""
    if not preferred(user):
        return None
    with db.session.no_autoflush:  # a channel's address may load a row: the notice stays unflushed
        found = reachable(user)
    if found is None:
        return None
    name, address = found
    locale = user_locale(user)
    text = render_notice(notification.kind, notification.params, locale, notification.text) or notification.text
    with force_locale(locale):
        subject = str(SUBJECT)
    row = OutboxMessage(notification=notification, user_id=user.id, channel=name, event=notification.kind,
                        address=address, text=text[:TEXT_LENGTH], subject=subject, url=url,
                        params=worded_params(notification.params, locale),
                        urgent=notification.kind in URGENT_EVENTS if urgent is None else urgent,
                        state=OutboxState.QUEUED, attempts=0, next_attempt_at=utcnow())
    db.session.add(row)
    db.session.info[WRITTEN] = True
    return row


# --- the sender ---------------------------------------------------------------------------------


def _zone() -> ZoneInfo:
    return ZoneInfo(setting("TIMEZONE", DEFAULT_TIMEZONE))


def _clock(value: Any) -> time:
    hours, _, minutes = str(value).partition(":")
    return time(int(hours), int(minutes or 0))


def quiet_until(now: datetime, quiet_hours: list[Any]) -> datetime | None:
    """When the quiet hours around `now` (naive UTC) end, as naive UTC; None outside them."""
    if len(quiet_hours) != 2:
        return None
    start, end = _clock(quiet_hours[0]), _clock(quiet_hours[1])
    zone = _zone()
    local = now.replace(tzinfo=UTC).astimezone(zone)
    clock = local.time().replace(tzinfo=None)
    inside = (clock >= start or clock < end) if start > end else (start <= clock < end)
    if not inside:
        return None
    ends = datetime.combine(local.date(), end, tzinfo=zone)
    if ends <= local:
        ends = datetime.combine(local.date() + timedelta(days=1), end, tzinfo=zone)
    return ends.astimezone(UTC).replace(tzinfo=None)


def postpone_quiet(now: datetime, config: dict[str, Any]) -> int:
    """Move due, non-urgent rows of the quiet channels to the end of the quiet hours; how many."""
    until = quiet_until(now, config["quiet_hours"])
    if until is None or not config["quiet_channels"]:
        return 0
    result = db.session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.channel.in_(config["quiet_channels"]), OutboxMessage.urgent.is_(False),
               OutboxMessage.state.in_(DUE_STATES), OutboxMessage.next_attempt_at <= now)
        .values(next_attempt_at=until)
        .execution_options(synchronize_session=False))
    db.session.commit()
    return result.rowcount or 0


def reclaim_stale(now: datetime, config: dict[str, Any]) -> int:
    """Claims older than OUTBOX_STALE_CLAIM_MINUTES (a sender died mid-attempt) become failed
    attempts, tried again now (or given up when they were the last allowed)."""
    cutoff = now - timedelta(minutes=config["stale_claim"])
    stale = (OutboxMessage.state == OutboxState.SENDING, OutboxMessage.claimed_at < cutoff)
    given_up = db.session.execute(
        update(OutboxMessage).where(*stale, OutboxMessage.attempts >= config["max_attempts"])
        .values(state=OutboxState.GIVEN_UP, last_error="sender lost during the last attempt")
        .execution_options(synchronize_session=False)).rowcount or 0
    retried = db.session.execute(
        update(OutboxMessage).where(*stale)
        .values(state=OutboxState.FAILED, next_attempt_at=now, last_error="sender lost during the attempt")
        .execution_options(synchronize_session=False)).rowcount or 0
    db.session.commit()
    if given_up or retried:
        log.warning("outbox: %s stale claims retried, %s given up", retried, given_up)
    return given_up + retried


def begin_write() -> None:
    """On SQLite, take the write lock now (BEGIN IMMEDIATE), so a second sender waits here."""
    connection = db.session.connection()
    if connection.dialect.name == "sqlite":
        raw = connection.connection.dbapi_connection
        if not raw.in_transaction:
            connection.exec_driver_sql("BEGIN IMMEDIATE")


def claim_next(now: datetime, skip_channels: set[str] | frozenset[str] = frozenset()) -> OutboxMessage | None:
    """Claim the next due row (urgent first, then oldest) and commit the claim; None when none is due."""
    begin_write()
    stmt = (select(OutboxMessage.id)
            .where(OutboxMessage.state.in_(DUE_STATES), OutboxMessage.next_attempt_at <= now)
            .order_by(OutboxMessage.urgent.desc(), OutboxMessage.next_attempt_at, OutboxMessage.id).limit(1))
    if skip_channels:
        stmt = stmt.where(OutboxMessage.channel.not_in(sorted(skip_channels)))
    if db.session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    row_id = db.session.scalar(stmt)
    if row_id is None:
        db.session.commit()
        return None
    row = claim(row_id, now)
    return row


def claim(row_id: int, now: datetime) -> OutboxMessage | None:
    """Claim one row for an attempt (state 'sending', one more attempt) if it is still due; commit.
    None when another sender has it, or it was sent or given up meanwhile."""
    begin_write()
    result = db.session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == row_id, OutboxMessage.state.in_(DUE_STATES))
        .values(state=OutboxState.SENDING, claimed_at=now, attempts=OutboxMessage.attempts + 1)
        .execution_options(synchronize_session=False))
    db.session.commit()
    if result.rowcount != 1:
        return None
    return db.session.get(OutboxMessage, row_id, populate_existing=True)


def _over_rate(row: OutboxMessage, now: datetime, config: dict[str, Any]) -> bool:
    limit = config["rate_limits"].get(row.channel)
    if limit is None:
        return False
    started = db.session.scalar(select(func.count(OutboxMessage.id)).where(
        OutboxMessage.channel == row.channel, OutboxMessage.claimed_at > now - timedelta(minutes=1),
        OutboxMessage.claimed_at <= now))
    return (started or 0) > int(limit)


def _release(row: OutboxMessage) -> None:
    """Give a claim back untried (the channel's rate limit): due again at the next run."""
    row.state = OutboxState.QUEUED if row.attempts <= 1 else OutboxState.FAILED
    row.attempts -= 1
    row.claimed_at = None
    db.session.commit()


def _retry_or_give_up(row: OutboxMessage, answer: str, now: datetime, config: dict[str, Any],
                      registry: dict[str, Channel]) -> str:
    if row.attempts >= config["max_attempts"]:
        return _give_up(row, answer, now, registry)
    backoff = config["backoff"]
    row.state = OutboxState.FAILED
    row.last_error = answer[:200]
    row.next_attempt_at = now + timedelta(minutes=backoff[min(row.attempts, len(backoff)) - 1])
    log.info("outbox %s (%s, %s): attempt %s failed, next at %s", row.id, row.channel, row.event, row.attempts,
             row.next_attempt_at)
    return "failed"


def _give_up(row: OutboxMessage, answer: str, now: datetime, registry: dict[str, Channel]) -> str:
    row.state = OutboxState.GIVEN_UP
    row.last_error = answer[:200]
    log.warning("outbox %s (%s, %s): given up after %s attempts", row.id, row.channel, row.event, row.attempts)
    user = db.session.get(User, row.user_id)
    found = reachable(user, registry, after=row.channel) if user is not None else None
    if found is not None:
        name, address = found
        key = f"{row.key}>{name}"
        if len(key) <= KEY_LENGTH:
            db.session.add(OutboxMessage(
                notification_id=row.notification_id, user_id=row.user_id, channel=name, event=row.event,
                key=key, address=address, text=row.text, subject=row.subject, url=row.url, params=row.params,
                urgent=row.urgent, state=OutboxState.QUEUED, attempts=0, next_attempt_at=now))
            log.info("outbox %s: falls back to %s", row.id, name)
    return "given_up"


def link_for(row: OutboxMessage) -> str:
    """The short signed link to the page of the row's notice (`matcher.shortlinks`), made when it is sent
    (the notice's id is known by then); empty for a row without a notice or a notice that leads nowhere."""
    if row.notification_id is None:
        return ""
    note = row.notification if row.notification is not None else db.session.get(Notification, row.notification_id)
    if note is None or not note.link_endpoint:
        return ""
    return short_url(note.id)


def attempt(row: OutboxMessage, now: datetime, config: dict[str, Any], registry: dict[str, Channel]) -> str:
    """Hand a claimed row to its channel and record the outcome (not committed): 'sent', 'failed'
    or 'given_up'."""
    channel = registry.get(row.channel)
    if channel is None or not channel.configured():
        return _give_up(row, f"the {row.channel} channel is off", now, registry)
    message = Message(key=row.key, address=row.address, event=row.event, text=row.text, subject=row.subject,
                      url=row.url or link_for(row), params=dict(row.params or {}))
    try:
        receipt = channel.send(message)
    except PermanentFailure as exc:
        return _give_up(row, str(exc), now, registry)
    except TemporaryFailure as exc:
        return _retry_or_give_up(row, str(exc), now, config, registry)
    except Exception as exc:  # a channel's bug must not stop the others; its words may hold the address
        log.error("outbox %s (%s): unexpected %s from the channel", row.id, row.channel, type(exc).__name__)
        return _retry_or_give_up(row, f"unexpected error ({type(exc).__name__})", now, config, registry)
    row.state = OutboxState.SENT
    row.sent_at = now
    row.provider_id = (receipt.provider_id or "")[:100] or None
    row.last_error = (receipt.answer or "")[:200]
    log.info("outbox %s (%s, %s): sent", row.id, row.channel, row.event)
    return "sent"


def send_due(now: datetime | None = None, limit: int = 200) -> dict[str, int]:
    """Send up to `limit` due rows (see the module docstring); commits as it goes. Returns counts of
    'sent', 'failed', 'given_up', 'postponed' (quiet hours), 'throttled' and 'reclaimed'."""
    now = now or utcnow()
    config = outbox_settings()
    registry = channel_registry()
    counts: Counter[str] = Counter()
    counts["reclaimed"] += reclaim_stale(now, config)
    counts["postponed"] += postpone_quiet(now, config)
    throttled: set[str] = set()
    for _ in range(limit):
        row = claim_next(now, throttled)
        if row is None:
            break
        if _over_rate(row, now, config):
            _release(row)
            throttled.add(row.channel)
            counts["throttled"] += 1
            continue
        counts[attempt(row, now, config, registry)] += 1
        db.session.commit()
    return {k: v for k, v in counts.items() if v}


def next_due_at() -> datetime | None:
    """When the next queued or failed row is due (for a runner deciding when to look again)."""
    return db.session.scalar(select(func.min(OutboxMessage.next_attempt_at))
                             .where(OutboxMessage.state.in_(DUE_STATES)))


def send_all(now: datetime | None = None, batch: int = 200) -> dict[str, int]:
    """`send_due` in batches until no due row is left to try (throttled channels wait for the next run)."""
    total: Counter[str] = Counter()
    while True:
        counts = send_due(now, limit=batch)
        total.update(counts)
        if sum(counts.get(k, 0) for k in ("sent", "failed", "given_up")) < batch:
            return {k: v for k, v in total.items() if v}
