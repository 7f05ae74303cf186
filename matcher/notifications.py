"""Notifications: the one way the service tells people something, and reading them.

Every path that tells someone calls `notify` (or one of the helpers built on it), so a later
channel (SMS, WeChat, email) plugs in here once. A notice names the page it leads to as a `Link`
(an endpoint name and its arguments) that the web layer turns into a URL: the domain writes no
URLs.

A notice is stored as its event (`Notification.kind`) and the event's parameters (plain JSON,
`Notification.params`); `render_notice(event, params, locale)` words it in any language, so the
list shows every notice in the reader's current language, and a channel (SMS, WeChat, email) calls
the same function. Each event's wording is defined once, in `EVENTS`. The text rendered in the
recipient's language at write time is stored too: the fallback for rows from before events were
stored, and for an event whose wording can no longer be rendered from its parameters.

Offers have one path of their own, `tell_volunteers`: whatever creates, changes or withdraws
offers (publishing, applying a run, a hand edit, a swap, a hand-back, editing or cancelling a
demand) hands it the assignments concerned, and each volunteer gets one notice listing theirs.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from flask_babel import force_locale, gettext
from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString
from sqlalchemy import func, select

from .db import db
from .errors import NotFound
from .models import Area, Assignment, Notification, Role, User, utcnow
from .settings import setting

TEXT_LIMIT = 500  # the column's length; longer lists are cut with an ellipsis


@dataclass(frozen=True)
class Link:
    """Where a notice leads: a web endpoint name and its arguments (resolved by the web layer)."""

    endpoint: str
    args: dict[str, Any] = field(default_factory=dict)


def demand_link(demand_id: int) -> Link:
    """The demand's page."""
    return Link("demands.view", {"demand_id": demand_id})


OFFERS = Link("volunteer.offers")
MY_WEEK = Link("volunteer.week")
MY_RECORD = Link("volunteer.record")


def checkin_code_link(occurrence_id: int) -> Link:
    """The community worker's page that shows a service's check-in code."""
    return Link("community.checkin_code", {"occurrence_id": occurrence_id})


def community_week_link(week_start: str) -> Link:
    """The community worker's week (each service with its check-in code button); `week_start` YYYY-MM-DD."""
    return Link("community.week", {"week": week_start})


def _cut(text: str) -> str:
    return text if len(text) <= TEXT_LIMIT else text[:TEXT_LIMIT - 1] + "…"


def user_locale(user: User) -> str:
    """The language a user reads notices in (their choice, else the service's default)."""
    return user.locale or setting("BABEL_DEFAULT_LOCALE", "zh_CN")


def _render(text: Any, user: User) -> str:
    """The text (a lazy string or a function of nothing) in the user's language, cut to the column."""
    with force_locale(user_locale(user)):
        return _cut(str(text() if callable(text) else text))


def _plain(value: Any) -> Any:
    """A parameter as plain JSON: a translatable message (a lazy string, e.g. a reason the service
    words) becomes {"msgid", "args"} so it is worded in the reader's language too."""
    if isinstance(value, LazyString) and value._func is gettext and value._args:
        return {"msgid": str(value._args[0]), "args": {k: _plain(v) for k, v in value._kwargs.items()}}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return str(value)


def _words(value: Any) -> Any:
    """A stored parameter in the current language (inverse of `_plain`)."""
    if isinstance(value, dict) and "msgid" in value:
        args = {k: _words(v) for k, v in (value.get("args") or {}).items()}
        return gettext(value["msgid"], **args) if args else gettext(value["msgid"])
    return value


def worded_params(params: dict[str, Any] | None, locale: str) -> dict[str, Any]:
    """The parameters with every translatable message worded in `locale` (what an SMS or WeChat
    template receives: plain text in the recipient's language)."""
    with force_locale(locale):
        return {key: _words(value) for key, value in (params or {}).items()}


def _message(p: dict[str, Any]) -> Any:
    return p["message"]


# What each event says, as a function of its parameters (already worded in the reader's
# language). The one definition of every notice's wording: the list, the badge and any channel
# render through `render_notice`. An event whose caller passes a lazy string not listed here is
# stored as {"message": ...} and rendered from that.
EVENTS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "demand_changed": lambda p: _l("Demand '%(t)s' in %(c)s was changed after the schedule was published; "
                                   "check its assignments.", t=p["t"], c=p["c"]),
    "demand_cancelled": lambda p: _l("Demand '%(t)s' in %(c)s was cancelled: %(r)s", t=p["t"], c=p["c"], r=p["r"]),
    "demand_review": lambda p: _l("Demand '%(t)s' in %(c)s awaits your review before it is dispatched.",
                                  t=p["t"], c=p["c"]),
    "demand_review_urgent": lambda p: _l("Urgent demand '%(t)s' in %(c)s awaits your review before it is "
                                         "dispatched.", t=p["t"], c=p["c"]),
    "demand_approved": lambda p: _l("Demand '%(t)s' was approved and will be dispatched.", t=p["t"]),
    "demand_returned": lambda p: _l("Demand '%(t)s' was returned to you: %(r)s. Edit it to send it for review "
                                    "again.", t=p["t"], r=p["r"]),
    # Written by `assignments.respond_to_offer`, `teams.hand_back`, `teams.approve_member`,
    # `teams.reject_member` (they pass the same message; its arguments are the parameters).
    "offer_declined": lambda p: _l("%(name)s declined “%(t)s” on %(when)s: %(r)s", name=p["name"], t=p["t"],
                                   when=p["when"], r=p["r"]),
    "handed_back": lambda p: _l("%(o)s handed back '%(t)s' on %(d)s: %(r)s", o=p["o"], t=p["t"], d=p["d"],
                                r=p["r"]),
    "membership_approved": lambda p: _l("You are now a member of %(o)s.", o=p["o"]),
    "membership_rejected": lambda p: _l("Your application to %(o)s was not accepted.", o=p["o"]),
    # Offers (`tell_volunteers`): the list of services and the reason (may be empty).
    "offer": lambda p: _l("New offers for you: %(items)s. Please accept or decline them.", items=p["items"]),
    "offer_changed": lambda p: _l("Changed after you were asked: %(items)s. %(why)s", items=p["items"],
                                  why=p["why"]),
    "offer_withdrawn": lambda p: _l("Offer withdrawn: %(items)s. %(why)s", items=p["items"], why=p["why"]),
    "service_cancelled": lambda p: _l("No longer takes place: %(items)s. %(why)s", items=p["items"], why=p["why"]),
    "service_given": lambda p: _l("Your organization gave you this service: %(items)s. It is in your week.",
                                  items=p["items"]),
    "service_taken": lambda p: _l("No longer yours: %(items)s. %(why)s", items=p["items"], why=p["why"]),
    # Reminders (`matcher.reminders`), short enough for one SMS segment with a service or two.
    # items: "09:00 “Title” (Community)" joined by "; ".
    "reminder": lambda p: _l("Tomorrow, %(d)s: %(items)s. Thank you for coming!", d=p["d"], items=p["items"]),
    "reminder_urgent": lambda p: _l("Urgent service at %(time)s: “%(t)s” (%(c)s). Please be on time.",
                                    time=p["time"], t=p["t"], c=p["c"]),
    "checkin_today": lambda p: _l("Services today in %(c)s: %(items)s. Show the check-in code on site.",
                                  c=p["c"], items=p["items"]),
    # Written by `assignments.rate_service`.
    "rated": lambda p: _l("The resident rated “%(t)s” on %(d)s: %(stars)s of 5 stars.", t=p["t"], d=p["d"],
                          stars=p["stars"]),
}


# The SMS wording of the events whose full wording (a list of services, a reason) cannot fit one SMS
# segment: 70 characters with the signature (【邻里】) and the ~40-character short link leave about 25
# Chinese characters. The provider's SMS templates are registered with these words (the administrator's
# preview, `/admin/notices`, shows each with its ${variables}); the link leads to the whole notice's page.
# Events not listed here are sent with their full wording. `n` is how many services the notice lists.
SMS_EVENTS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "offer": lambda p: _l("%(n)s new offers for you: please accept or decline.", n=p["n"]),
    "offer_changed": lambda p: _l("%(n)s of your services changed: please look.", n=p["n"]),
    "offer_withdrawn": lambda p: _l("%(n)s offers to you were withdrawn.", n=p["n"]),
    "service_cancelled": lambda p: _l("%(n)s of your services were cancelled.", n=p["n"]),
    "service_given": lambda p: _l("Your organization gave you %(n)s services: see your week.", n=p["n"]),
    "service_taken": lambda p: _l("%(n)s services are no longer yours.", n=p["n"]),
    "offer_declined": lambda p: _l("%(name)s declined a service: please find someone else.", name=p["name"]),
    "handed_back": lambda p: _l("%(o)s handed back a service: please find someone else.", o=p["o"]),
    "demand_changed": lambda p: _l("Demand “%(t)s” changed after publishing: please check.", t=p["t"]),
    "demand_returned": lambda p: _l("Demand “%(t)s” was returned to you: please edit it.", t=p["t"]),
    "reminder": lambda p: _l("Reminder: %(n)s services tomorrow. Thank you!", n=p["n"]),
    "reminder_urgent": lambda p: _l("Urgent service at %(time)s: please be on time.", time=p["time"]),
    "checkin_today": lambda p: _l("%(n)s services today: show the check-in code.", n=p["n"]),
    "rated": lambda p: _l("“%(t)s” was rated %(stars)s of 5 stars.", t=p["t"], stars=p["stars"]),
}


def sms_wording(event: str) -> Callable[[dict[str, Any]], Any] | None:
    """The wording an SMS template of the event carries (`SMS_EVENTS`, else the full one)."""
    return SMS_EVENTS.get(event) or EVENTS.get(event)


def render_notice(event: str, params: dict[str, Any] | None, locale: str, fallback: str = "") -> str:
    """A notice's text in `locale`, from its event and parameters; `fallback` (the stored text)
    when there are no parameters (an old row) or they no longer fit the event's wording."""
    if not isinstance(params, dict):
        return fallback
    wording = EVENTS.get(event) if "message" not in params else _message
    if wording is None:
        return fallback
    try:
        with force_locale(locale):
            return _cut(str(wording({k: _words(v) for k, v in params.items()})).strip())
    except (KeyError, TypeError, ValueError):
        return fallback


def notice_text(notification: Notification, locale: str) -> str:
    """A stored notice in `locale` (what the list and any channel show)."""
    return render_notice(notification.kind, notification.params, locale, notification.text)


def notify(users: Iterable[User], kind: str, text: Any = None, link: Link | None = None, *,
           params: dict[str, Any] | None = None, dedup_key: str | None = None,
           urgent: bool | None = None) -> int:
    """Add one notice per user for the event `kind`, leading to `link`; returns how many.

    Give the event's `params` (its wording is `EVENTS[kind]`), or a lazy message `text`, or a
    function returning one (its arguments are then the parameters; for an event not in EVENTS the
    whole message is kept). A plain string is stored as text only, shown as written.

    `dedup_key` (one user only) makes the notice a once-only one: it is stored in the unique
    `Notification.dedup_key`, and a notice with that key already written is not written again
    (returns 0); two writers racing on the same key meet the unique constraint at commit. `urgent`
    lets its outside message break the quiet hours (default: the event's own urgency).
    """
    from .outbox import enqueue_for  # the outbox renders with this module's render_notice

    if params is not None:
        params = _plain(params)
    users = list(users)
    if dedup_key is not None:
        if len(users) != 1:
            raise ValueError("a dedup_key names one notice to one user")
        if db.session.scalar(select(Notification.id).where(Notification.dedup_key == dedup_key)) is not None:
            return 0
    count = 0
    for user in users:
        row_params = params
        if row_params is None:
            # A message given as text: its arguments become the parameters (a function of nothing is
            # called in the recipient's language, as its arguments may already be worded).
            with force_locale(user_locale(user)):
                message = text() if callable(text) and not isinstance(text, LazyString) else text
                if isinstance(message, LazyString) and message._func is gettext and message._args:
                    row_params = _plain(dict(message._kwargs)) if kind in EVENTS else {"message": _plain(message)}
        written = render_notice(kind, row_params, user_locale(user)) if row_params is not None else ""
        note = Notification(user_id=user.id, kind=kind, text=written or _render(text or "", user),
                            params=row_params, link_endpoint=link.endpoint if link else "",
                            link_args=dict(link.args) if link else {}, dedup_key=dedup_key)
        db.session.add(note)
        enqueue_for(note, user, urgent=urgent)  # its outside channel, if the user has one (same transaction)
        count += 1
    return count


def coordinators_for(community: Area) -> list[User]:
    """Active coordinators whose area contains the community."""
    ancestors = [int(x) for x in community.path.strip("/").split("/") if x]
    return list(db.session.scalars(select(User).where(
        User.role == Role.COORDINATOR, User.active, User.area_id.in_(ancestors)).order_by(User.id)))


def tell_coordinators(community: Area, kind: str, text: Any = None, link: Link | None = None, *,
                      params: dict[str, Any] | None = None) -> int:
    """Notify the coordinators over a community; returns how many were told."""
    return notify(coordinators_for(community), kind, text, link, params=params)


def service_line(assignment: Assignment) -> str:
    """“Title” on YYYY-MM-DD HH:MM: one service in a notice's list."""
    occ = assignment.occurrence
    return f"“{occ.demand.title}” {occ.starts_at:%Y-%m-%d %H:%M}"


# Where each offer event leads (its wording is in EVENTS, with the services and the reason).
OFFER_EVENTS: dict[str, Link] = {
    "offer": OFFERS, "offer_changed": OFFERS, "offer_withdrawn": OFFERS,
    "service_cancelled": MY_WEEK, "service_given": MY_WEEK, "service_taken": MY_WEEK,
}


def tell_volunteers(event: str, assignments: Iterable[Assignment], why: Any = "") -> int:
    """Tell each volunteer concerned, in one notice, of the `event` for their assignments.

    `event` is one of OFFER_EVENTS. Volunteers without an account are skipped. Pass the
    assignments before deleting them. Returns how many notices were written.
    """
    link = OFFER_EVENTS[event]
    by_user: dict[int, list[Assignment]] = defaultdict(list)
    for a in assignments:
        if a.volunteer.user_id:
            by_user[a.volunteer.user_id].append(a)
    count = 0
    for user_id, items in by_user.items():
        user = db.session.get(User, user_id)
        lines = "; ".join(service_line(a) for a in sorted(items, key=lambda a: a.occurrence.starts_at))
        count += notify([user], event, link=link, params={"items": lines, "why": why or "", "n": len(items)})
    return count


def mark_read(notification: Notification, *, user: User) -> None:
    """Mark one of the user's own notifications read (someone else's is not found)."""
    if notification.user_id != user.id:
        raise NotFound(str(_l("not found")))
    if notification.read_at is None:
        notification.read_at = utcnow()
        db.session.flush()


def mark_all_read(user: User) -> int:
    """Mark every unread notification of the user read; returns how many."""
    notes = db.session.scalars(select(Notification).where(Notification.user_id == user.id,
                                                          Notification.read_at.is_(None))).all()
    for note in notes:
        note.read_at = utcnow()
    db.session.flush()
    return len(notes)


def unread_count(user: User) -> int:
    """How many of the user's notifications are unread."""
    return db.session.scalar(select(func.count(Notification.id)).where(
        Notification.user_id == user.id, Notification.read_at.is_(None))) or 0
