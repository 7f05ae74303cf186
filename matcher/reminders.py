"""Reminders: notices written because a time has come, not because something changed.

Three reminders, each written once (its `Notification.dedup_key`) through `notify`, so each also
gets its outbox row when the person has an outside channel:

- "reminder", the day before at REMINDER_DAY_BEFORE_AT (18:00 local time): each volunteer with
  accepted services tomorrow gets one notice listing them (time, title, community), leading to their
  week. Key "remind:day:<user id>:<date>". Only accepted services: an offer still unanswered is not
  the volunteer's to come to (the offer's own notice asks for the answer, and the coordinator sees
  who has not answered); a service accepted after the evening's notice is not added to it.
- "reminder_urgent", REMINDER_URGENT_BEFORE_MINUTES (120) before each accepted service of an urgent
  demand (`Priority.URGENT`): one notice per service, urgent (it breaks the SMS quiet hours).
  Key "remind:urgent:<assignment id>".
- "checkin_today", the service day's morning at REMINDER_CHECKIN_AT (07:30): each active community
  worker of a community with services today (an accepted volunteer coming) gets one notice listing
  them, leading to the check-in code page (the week's page when there are several).
  Key "remind:checkin:<user id>:<date>".

A reminder is written from its time until REMINDER_GRACE_MINUTES later, and never once what it
announces has begun: the day-before notice only on the day before (it says "tomorrow"), the urgent
one only before the service starts, the morning list only on the day. A runner that was down longer
writes nothing late. Cancelled occurrences or demands, declined and withdrawn services (a withdrawn
offer is deleted) are never reminded; inactive accounts and inactive volunteers are not told (as
`coordinators_for` and the planner leave them out). Minors with their guardian's consent hold
accepted services like anyone and are reminded on their own account, as every other notice does.

`remind_due(now)` writes what is due and commits; running it twice, or in two processes at once,
writes each reminder once: on SQLite the run holds the write lock (`BEGIN IMMEDIATE`) from its first
read, on PostgreSQL a racing insert meets the unique key and only that reminder's SAVEPOINT is
rolled back. It reads with a handful of queries whatever the number of volunteers; writing costs a
few statements per notice. `next_reminder_at(now)` tells a runner when to look again.

Times: `now` arguments and results are naive UTC (as `utcnow()` and the outbox); occurrence times are
naive local times in TIMEZONE, compared after converting `now`.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from . import rules
from .clock import DEFAULT_TIMEZONE
from .db import db
from .models import (
    Area,
    Assignment,
    AssignmentStatus,
    Demand,
    DemandOccurrence,
    DemandStatus,
    Notification,
    Priority,
    Role,
    User,
    Volunteer,
    utcnow,
)
from .notifications import MY_WEEK, Link, checkin_code_link, community_week_link, notify
from .outbox import begin_write
from .settings import reminder_settings, setting

# Services a reminder may come to concern: accepted ones, and offers that may yet be accepted.
STANDING_FOR_REMINDERS = (AssignmentStatus.OFFERED, AssignmentStatus.ACCEPTED)
# Rows per `IN (...)` list when looking up keys already written (well under every driver's limit).
CHUNK = 500


@dataclass(frozen=True)
class Reminder:
    """One reminder to write: its kind ("day", "urgent", "checkin"), recipient, event, key and link."""

    kind: str
    user_id: int
    event: str
    key: str
    params: dict[str, Any] = field(default_factory=dict)
    link: Link = MY_WEEK
    urgent: bool = False


def _zone() -> ZoneInfo:
    return ZoneInfo(setting("TIMEZONE", DEFAULT_TIMEZONE))


def to_local(moment: datetime) -> datetime:
    """A naive UTC time as naive local time (how occurrence times are stored)."""
    return moment.replace(tzinfo=UTC).astimezone(_zone()).replace(tzinfo=None)


def to_utc(moment: datetime) -> datetime:
    """A naive local time as naive UTC."""
    return moment.replace(tzinfo=_zone()).astimezone(UTC).replace(tzinfo=None)


def _at(day: date, clock: tuple[int, int]) -> datetime:
    return datetime.combine(day, time(*clock))


def _open(due: datetime, local: datetime, grace_minutes: int, bound: datetime) -> bool:
    """Whether a reminder due at `due` may be written at `local`: not before, not after its grace, nor
    once `bound` (what it announces) has come."""
    return due <= local < min(due + timedelta(minutes=grace_minutes), bound)


def _services(*conditions: Any) -> Any:
    """Accepted services on occurrences that take place, of active volunteers with an active account:
    (assignment id, user id, starts_at, title, community id, community name, occurrence id)."""
    return (select(Assignment.id, Volunteer.user_id, DemandOccurrence.starts_at, Demand.title, Area.id, Area.name,
                   DemandOccurrence.id)
            .join(DemandOccurrence, Assignment.occurrence_id == DemandOccurrence.id)
            .join(Demand, DemandOccurrence.demand_id == Demand.id)
            .join(Area, Demand.community_id == Area.id)
            .join(Volunteer, Assignment.volunteer_id == Volunteer.id)
            .join(User, Volunteer.user_id == User.id)
            .where(Assignment.status == AssignmentStatus.ACCEPTED,
                   DemandOccurrence.status != DemandStatus.CANCELLED, Demand.status != DemandStatus.CANCELLED,
                   Volunteer.active, User.active, *conditions)
            .order_by(DemandOccurrence.starts_at, Assignment.id))


def _line(starts_at: datetime, title: str, community: str | None = None) -> str:
    """One service in a reminder's list: “09:00 “Title” (Community)”."""
    return f"{starts_at:%H:%M} “{title}”" + (f" ({community})" if community else "")


def _day_before(local: datetime, config: dict[str, Any]) -> Iterator[Reminder]:
    """Tomorrow's accepted services, one reminder per volunteer, when the evening's time has come."""
    due = _at(local.date(), config["day_before_at"])
    tomorrow = local.date() + timedelta(days=1)
    if not _open(due, local, config["grace"], _at(tomorrow, (0, 0))):
        return
    start = _at(tomorrow, (0, 0))
    by_user: dict[int, list[str]] = defaultdict(list)
    for _a, user_id, starts_at, title, _c, community, _o in db.session.execute(
            _services(DemandOccurrence.starts_at >= start, DemandOccurrence.starts_at < start + timedelta(days=1))):
        by_user[user_id].append(_line(starts_at, title, community))
    for user_id, lines in by_user.items():
        yield Reminder("day", user_id, "reminder", f"remind:day:{user_id}:{tomorrow.isoformat()}",
                       {"d": tomorrow.isoformat(), "items": "; ".join(lines), "n": len(lines)}, MY_WEEK)


def _urgent(local: datetime, config: dict[str, Any]) -> Iterator[Reminder]:
    """Accepted services of urgent demands starting within REMINDER_URGENT_BEFORE_MINUTES, one each."""
    lead = timedelta(minutes=config["urgent_before"])
    for assignment_id, user_id, starts_at, title, _c, community, _o in db.session.execute(
            _services(Demand.priority == Priority.URGENT, DemandOccurrence.starts_at > local,
                      DemandOccurrence.starts_at <= local + lead)):
        if _open(starts_at - lead, local, config["grace"], starts_at):
            yield Reminder("urgent", user_id, "reminder_urgent", f"remind:urgent:{assignment_id}",
                           {"time": f"{starts_at:%H:%M}", "t": title, "c": community}, MY_WEEK, urgent=True)


def _checkin(local: datetime, config: dict[str, Any]) -> Iterator[Reminder]:
    """Today's services with an accepted volunteer, one list per active worker of their community."""
    today = local.date()
    if not _open(_at(today, config["checkin_at"]), local, config["grace"], _at(today + timedelta(days=1), (0, 0))):
        return
    start = _at(today, (0, 0))
    by_community: dict[int, dict[int, tuple[datetime, str]]] = defaultdict(dict)
    names: dict[int, str] = {}
    for _a, _u, starts_at, title, community_id, community, occurrence_id in db.session.execute(
            _services(DemandOccurrence.starts_at >= start, DemandOccurrence.starts_at < start + timedelta(days=1))):
        by_community[community_id][occurrence_id] = (starts_at, title)
        names[community_id] = community
    if not by_community:
        return
    workers = db.session.execute(select(User.id, User.area_id).where(
        User.role == Role.WORKER, User.active, User.area_id.in_(sorted(by_community))).order_by(User.id))
    monday = rules.week_monday(today).isoformat()
    for user_id, community_id in workers:
        services = by_community[community_id]
        link = (checkin_code_link(next(iter(services))) if len(services) == 1 else community_week_link(monday))
        lines = "; ".join(_line(s, t) for s, t in sorted(services.values()))
        yield Reminder("checkin", user_id, "checkin_today", f"remind:checkin:{user_id}:{today.isoformat()}",
                       {"c": names[community_id], "items": lines, "n": len(services)}, link)


def due_reminders(now: datetime | None = None) -> list[Reminder]:
    """Every reminder due at `now` (naive UTC) and not yet written, in key order."""
    local = to_local(now or utcnow())
    config = reminder_settings()
    found = [*_day_before(local, config), *_urgent(local, config), *_checkin(local, config)]
    written = _written_keys(r.key for r in found)
    return sorted((r for r in found if r.key not in written), key=lambda r: r.key)


def _written_keys(keys: Iterable[str]) -> set[str]:
    keys = sorted(set(keys))
    written: set[str] = set()
    for i in range(0, len(keys), CHUNK):
        written.update(db.session.scalars(select(Notification.dedup_key)
                                          .where(Notification.dedup_key.in_(keys[i:i + CHUNK]))))
    return written


def write_reminders(reminders: list[Reminder]) -> Counter[str]:
    """Write each reminder in its own SAVEPOINT (not committed): counts by kind, and "raced" for those
    another writer wrote first (the unique key refused them)."""
    counts: Counter[str] = Counter()
    if not reminders:
        return counts
    begin_write()  # SQLite: savepoints need a real transaction around them (pysqlite starts none for reads)
    ids = sorted({r.user_id for r in reminders})
    users: dict[int, User] = {}
    for i in range(0, len(ids), CHUNK):  # with their volunteer rows: a channel's address reads them
        users.update((u.id, u) for u in db.session.scalars(
            select(User).options(selectinload(User.volunteer)).where(User.id.in_(ids[i:i + CHUNK]))))
    for reminder in reminders:
        user = users.get(reminder.user_id)
        if user is None:
            continue
        try:
            with db.session.begin_nested():
                written = notify([user], reminder.event, link=reminder.link, params=reminder.params,
                                 dedup_key=reminder.key, urgent=reminder.urgent)
        except IntegrityError:  # another run wrote it since we looked
            counts["raced"] += 1
            continue
        counts[reminder.kind] += written
    return counts


def remind_due(now: datetime | None = None) -> dict[str, int]:
    """Write every reminder whose time has come (see the module docstring) and commit; returns the
    counts written by kind ("day", "urgent", "checkin"), and "raced" for those another run wrote."""
    begin_write()  # SQLite: one run at a time from its first read (PostgreSQL: the unique key decides)
    try:
        counts = write_reminders(due_reminders(now))
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return {k: v for k, v in counts.items() if v}


def next_reminder_at(now: datetime | None = None) -> datetime | None:
    """When a reminder may next fall due after `now` (naive UTC, as is the answer); None when no
    service to come is offered or accepted (then only a new offer can make one due, and publishing it
    starts the runner). The evening and morning times count only from the day before the first such
    service; an offer accepted later is found by a runner that also looks every few minutes."""
    local = to_local(now or utcnow())
    config = reminder_settings()
    taking_place = (DemandOccurrence.status != DemandStatus.CANCELLED, Demand.status != DemandStatus.CANCELLED)
    first = db.session.scalar(
        select(func.min(DemandOccurrence.starts_at)).select_from(Assignment)
        .join(DemandOccurrence, Assignment.occurrence_id == DemandOccurrence.id)
        .join(Demand, DemandOccurrence.demand_id == Demand.id)
        .where(Assignment.status.in_(STANDING_FOR_REMINDERS), DemandOccurrence.starts_at > local, *taking_place))
    if first is None:
        return None
    times = []
    for clock, days_before in ((config["day_before_at"], 1), (config["checkin_at"], 0)):
        at = _at(local.date(), clock)
        upcoming = at if at > local else at + timedelta(days=1)
        times.append(max(upcoming, _at(first.date() - timedelta(days=days_before), clock)))
    lead = timedelta(minutes=config["urgent_before"])
    first_urgent = db.session.scalar(
        select(func.min(DemandOccurrence.starts_at)).select_from(Assignment)
        .join(DemandOccurrence, Assignment.occurrence_id == DemandOccurrence.id)
        .join(Demand, DemandOccurrence.demand_id == Demand.id)
        .where(Assignment.status == AssignmentStatus.ACCEPTED, Demand.priority == Priority.URGENT,
               DemandOccurrence.starts_at > local + lead, *taking_place))
    if first_urgent is not None:
        times.append(first_urgent - lead)
    return to_utc(min(times))
