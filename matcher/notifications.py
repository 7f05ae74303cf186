"""Notifications: the one way the service tells people something, and reading them.

Every path that tells someone calls `notify` (or one of the helpers built on it), so a later
channel (SMS, WeChat, email) plugs in here once. A notice names the page it leads to as a `Link`
(an endpoint name and its arguments) that the web layer turns into a URL: the domain writes no
URLs. The text is rendered in the recipient's language.

Offers have one path of their own, `tell_volunteers`: whatever creates, changes or withdraws
offers (publishing, applying a run, a hand edit, a swap, a hand-back, editing or cancelling a
demand) hands it the assignments concerned, and each volunteer gets one notice listing theirs.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from flask_babel import force_locale
from flask_babel import lazy_gettext as _l
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


def _render(text: Any, user: User) -> str:
    """The text (a lazy string or a function of nothing) in the user's language, cut to the column."""
    with force_locale(user.locale or setting("BABEL_DEFAULT_LOCALE", "zh_CN")):
        rendered = str(text() if callable(text) else text)
    return rendered if len(rendered) <= TEXT_LIMIT else rendered[:TEXT_LIMIT - 1] + "…"


def notify(users: Iterable[User], kind: str, text: Any, link: Link | None = None) -> int:
    """Add one notice per user (in their language), leading to `link`; returns how many."""
    count = 0
    for user in users:
        db.session.add(Notification(user_id=user.id, kind=kind, text=_render(text, user),
                                    link_endpoint=link.endpoint if link else "",
                                    link_args=dict(link.args) if link else {}))
        count += 1
    return count


def coordinators_for(community: Area) -> list[User]:
    """Active coordinators whose area contains the community."""
    ancestors = [int(x) for x in community.path.strip("/").split("/") if x]
    return list(db.session.scalars(select(User).where(
        User.role == Role.COORDINATOR, User.active, User.area_id.in_(ancestors)).order_by(User.id)))


def tell_coordinators(community: Area, kind: str, text: Any, link: Link | None = None) -> int:
    """Notify the coordinators over a community; returns how many were told."""
    return notify(coordinators_for(community), kind, text, link)


def service_line(assignment: Assignment) -> str:
    """“Title” on YYYY-MM-DD HH:MM: one service in a notice's list."""
    occ = assignment.occurrence
    return f"“{occ.demand.title}” {occ.starts_at:%Y-%m-%d %H:%M}"


# What each offer event says, with the list of services and the reason (may be empty).
OFFER_EVENTS: dict[str, tuple[Callable[[str, str], Any], Link]] = {
    "offer": (lambda items, why: _l("New offers for you: %(items)s. Please accept or decline them.",
                                    items=items), OFFERS),
    "offer_changed": (lambda items, why: _l("Changed after you were asked: %(items)s. %(why)s",
                                            items=items, why=why), OFFERS),
    "offer_withdrawn": (lambda items, why: _l("Offer withdrawn: %(items)s. %(why)s", items=items, why=why),
                        OFFERS),
    "service_cancelled": (lambda items, why: _l("No longer takes place: %(items)s. %(why)s",
                                                items=items, why=why), MY_WEEK),
    "service_given": (lambda items, why: _l("Your organization gave you this service: %(items)s. It is in your "
                                            "week.", items=items), MY_WEEK),
    "service_taken": (lambda items, why: _l("No longer yours: %(items)s. %(why)s", items=items, why=why),
                      MY_WEEK),
}


def tell_volunteers(event: str, assignments: Iterable[Assignment], why: Any = "") -> int:
    """Tell each volunteer concerned, in one notice, of the `event` for their assignments.

    `event` is one of OFFER_EVENTS. Volunteers without an account are skipped. Pass the
    assignments before deleting them. Returns how many notices were written.
    """
    message, link = OFFER_EVENTS[event]
    by_user: dict[int, list[Assignment]] = defaultdict(list)
    for a in assignments:
        if a.volunteer.user_id:
            by_user[a.volunteer.user_id].append(a)
    count = 0
    for user_id, items in by_user.items():
        user = db.session.get(User, user_id)
        lines = "; ".join(service_line(a) for a in sorted(items, key=lambda a: a.occurrence.starts_at))
        count += notify([user], event, lambda lines=lines: message(lines, str(why)).strip(), link)
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
