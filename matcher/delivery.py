"""Delivery you can see: whether each volunteer with offers in a schedule was told, by which channel,
whether the message arrived, whether they opened its link and saw their offers; re-sending to those not
reached; and, before publishing, who has no working channel.

The offer notice of a volunteer for a schedule is the newest notice of an offer event ("offer",
"offer_changed") written to them since their first offer in it was made (one notice lists all of a
volunteer's new offers: `notifications.tell_volunteers`). Its outside message is the outbox row (or
rows: a fallback or a re-send) of that notice; the best of their states is shown. "Seen" is the
volunteer's own offers page showing the offer (`Assignment.seen_at`, set by `mark_seen`), "opened" the
message's short link followed (`Notification.opened_at`, which anyone holding the message can do).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from types import SimpleNamespace

from sqlalchemy import func, select, update

from .audit import record_audit
from .db import among, db
from .models import (
    Assignment,
    AssignmentStatus,
    Notification,
    OutboxMessage,
    OutboxState,
    User,
    Volunteer,
    utcnow,
)
from .models.outbox import mask_address
from .outbox import enqueue_for, reachable_all

OFFER_KINDS = ("offer", "offer_changed")
# The better state wins when a notice has several rows (a fallback, a re-send).
RANK = {OutboxState.GIVEN_UP: 1, OutboxState.FAILED: 2, OutboxState.QUEUED: 3, OutboxState.SENDING: 4,
        OutboxState.SENT: 5, OutboxState.DELIVERED: 6}
SHOWN = (AssignmentStatus.PROPOSED, AssignmentStatus.OFFERED, AssignmentStatus.ACCEPTED, AssignmentStatus.DECLINED)
MAX_RESENDS = 5  # outside messages of one notice, re-sends included


@dataclass
class Reach:
    """One volunteer's offers in a schedule and how far the notice of them got (read once per page: the
    states below are worked out once each)."""

    volunteer: Person
    offers: list[Assignment]
    notice: NoticeState | None = None
    message: MessageState | None = None    # the best outbox row of the notice
    channel_now: str | None = None         # the outside channel that would reach them now (None: in-app only)

    @cached_property
    def state(self) -> str:
        """'draft' (not offered yet), 'no_account', 'not_told', 'in_app' (told in the app only), or the
        outbox state of the message ('queued', 'sending', 'sent', 'delivered', 'failed', 'given_up')."""
        if all(a.status == AssignmentStatus.PROPOSED for a in self.offers):
            return "draft"
        if self.volunteer.user_id is None:
            return "no_account"
        if self.notice is None:
            return "not_told"
        if self.message is None:
            return "in_app"
        return self.message.state.value

    @cached_property
    def seen_at(self) -> datetime | None:
        times = [a.seen_at for a in self.offers if a.seen_at is not None]
        return min(times) if times else None

    @cached_property
    def opened_at(self) -> datetime | None:
        return self.notice.opened_at if self.notice is not None else None

    @cached_property
    def answered(self) -> bool:
        return all(a.status != AssignmentStatus.OFFERED for a in self.offers if a.status != AssignmentStatus.PROPOSED)

    @cached_property
    def reached(self) -> bool:
        """Whether we know the volunteer got it: delivered, link opened, offers seen, notice read in the app,
        or every offer answered."""
        if self.state == "draft":
            return False
        return bool(self.state == "delivered" or self.seen_at or self.opened_at or self.answered
                    or (self.notice is not None and self.notice.read_at is not None))

    @cached_property
    def pending(self) -> int:
        return sum(1 for a in self.offers if a.status == AssignmentStatus.OFFERED)


def mark_seen(assignments: Iterable[Assignment]) -> int:
    """Record that the volunteer's offers page showed these offers (the first time only). A plain UPDATE:
    it neither bumps the assignments' version (a later answer is not a stale edit) nor loads them."""
    ids = [a.id for a in assignments if a.seen_at is None and a.status == AssignmentStatus.OFFERED]
    if not ids:
        return 0
    now = utcnow()
    result = db.session.execute(update(Assignment).where(Assignment.id.in_(ids), Assignment.seen_at.is_(None))
                                .values(seen_at=now).execution_options(synchronize_session=False))
    for a in assignments:
        if a.id in ids:
            db.session.expire(a, ["seen_at"])
    return result.rowcount or 0


@dataclass(frozen=True)
class Person:
    """What the delivery pages need of a volunteer and their account, read as plain rows (a district's
    thousand volunteers are not loaded as ORM objects for a figure); `vars_of` shows it to the channels
    with the attributes they read of a `User`."""

    id: int                  # the volunteer's id
    real_name: str
    phone: str | None
    user_id: int | None
    active: bool = False     # the account's
    channels: list[str] | None = None
    email: str | None = None
    wechat_openid: str | None = None
    wechat_subscribed: bool = False


@dataclass(frozen=True)
class NoticeState:
    id: int
    user_id: int
    kind: str
    created_at: datetime
    opened_at: datetime | None
    read_at: datetime | None


@dataclass(frozen=True)
class MessageState:
    notification_id: int
    state: OutboxState
    channel: str
    address: str
    last_error: str

    @property
    def masked_address(self) -> str:
        return mask_address(self.channel, self.address)


def schedule_reach(assignments: Iterable[Assignment]) -> list[Reach]:
    """How far each volunteer's notice got, for the given assignments of a schedule (those shown: the
    coordinator's part), volunteers in name order. Four statements whatever the number of rows, read as
    plain rows."""
    by_volunteer: dict[int, list[Assignment]] = defaultdict(list)
    for a in assignments:
        if a.status in SHOWN:
            by_volunteer[a.volunteer_id].append(a)
    if not by_volunteer:
        return []
    people = {row.id: Person(id=row.id, real_name=row.real_name, phone=row.phone, user_id=row.user_id,
                             active=bool(row.active), channels=row.channels, email=row.email,
                             wechat_openid=row.wechat_openid, wechat_subscribed=bool(row.wechat_subscribed))
              for row in db.session.execute(
                  select(Volunteer.id, Volunteer.real_name, Volunteer.phone, Volunteer.user_id, User.active,
                         User.channels, User.email, User.wechat_openid, User.wechat_subscribed)
                  .outerjoin(User, User.id == Volunteer.user_id).where(among(Volunteer.id, by_volunteer)))}
    since = {p.user_id: min((a.offered_at for a in by_volunteer[p.id] if a.offered_at), default=None)
             for p in people.values() if p.user_id}
    notices: dict[int, NoticeState] = {}
    told = [uid for uid, at in since.items() if at is not None]
    if told:
        first = min(since[uid] for uid in told)
        for row in db.session.execute(select(
                Notification.id, Notification.user_id, Notification.kind, Notification.created_at,
                Notification.opened_at, Notification.read_at).where(
                among(Notification.user_id, told), Notification.kind.in_(OFFER_KINDS), Notification.created_at >= first)
                .order_by(Notification.id)):
            if row.created_at >= since[row.user_id]:
                notices[row.user_id] = NoticeState(*row)  # the newest wins
    best: dict[int, MessageState] = {}
    if notices:
        for row in db.session.execute(select(
                OutboxMessage.notification_id, OutboxMessage.state, OutboxMessage.channel, OutboxMessage.address,
                OutboxMessage.last_error).where(
                among(OutboxMessage.notification_id, [n.id for n in notices.values()])).order_by(OutboxMessage.id)):
            message = MessageState(*row)
            held = best.get(message.notification_id)
            if held is None or RANK[message.state] >= RANK[held.state]:
                best[message.notification_id] = message
    reach_now = reachable_all([SimpleNamespace(**vars_of(p)) for p in people.values() if p.user_id and p.active])
    out = []
    for vid, offers in by_volunteer.items():
        person = people[vid]
        note = notices.get(person.user_id) if person.user_id else None
        found = reach_now.get(person.user_id) if person.user_id else None
        out.append(Reach(volunteer=person, offers=sorted(offers, key=lambda a: a.occurrence_id), notice=note,
                         message=best.get(note.id) if note is not None else None,
                         channel_now=found[0] if found else None))
    out.sort(key=lambda r: (r.volunteer.real_name, r.volunteer.id))
    return out


def vars_of(person: Person) -> dict:
    """A person as the channels read an account: `id` is the account's, `volunteer.phone` the phone."""
    return {"id": person.user_id, "channels": person.channels, "email": person.email,
            "wechat_openid": person.wechat_openid, "wechat_subscribed": person.wechat_subscribed,
            "volunteer": SimpleNamespace(phone=person.phone)}


def no_working_channel(reach: Iterable[Reach]) -> list[Reach]:
    """Volunteers with offers whom no outside channel reaches now (no account, or in-app only)."""
    return [r for r in reach if r.volunteer.user_id is None or r.channel_now is None]


def resend(reach: Iterable[Reach], *, user: User, schedule) -> int:
    """Send the offer notice again, on the channel that reaches each volunteer now, to those given who were
    told but not reached; returns how many messages were queued (no flush; the caller commits)."""
    count = 0
    for r in reach:
        if r.notice is None or r.reached or r.channel_now is None or r.pending == 0:
            continue
        before = db.session.scalar(select(func.count(OutboxMessage.id)).where(
            OutboxMessage.notification_id == r.notice.id)) or 0
        if before > MAX_RESENDS:
            continue
        notice, person = db.session.get(Notification, r.notice.id), db.session.get(User, r.volunteer.user_id)
        if notice is None or person is None:
            continue
        row = enqueue_for(notice, person, urgent=False)
        if row is None:
            continue
        row.key = f"{r.notice.id}:{row.channel}:again{before}"
        count += 1
    if count:
        record_audit(user, "resend_notices", schedule, messages=count)
    return count
