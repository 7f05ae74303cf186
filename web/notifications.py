"""Everyone's notifications: the list, marking read, and the unread count in the navigation."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for
from flask_babel import format_datetime, get_locale
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from sqlalchemy import select
from werkzeug.routing import BuildError

from matcher.db import db
from matcher.errors import NotFound
from matcher.models import Notification
from matcher.notifications import mark_all_read, mark_read, notice_text, unread_count
from matcher.shortlinks import notification_for, record_open

bp = Blueprint("notifications", __name__)
LIST_LIMIT = 200


@bp.app_context_processor
def unread_notifications() -> dict:
    """`unread_notifications` for the navigation (0 when signed out) and `newest_unread_notice`."""

    def count() -> int:
        if not current_user.is_authenticated:
            return 0
        return unread_count(current_user)

    def newest() -> str:
        """The newest unread notice in the reader's current language (e.g. the badge's title)."""
        if not current_user.is_authenticated:
            return ""
        note = db.session.scalars(select(Notification).where(
            Notification.user_id == current_user.id, Notification.read_at.is_(None))
            .order_by(Notification.created_at.desc(), Notification.id.desc()).limit(1)).first()
        return notice_text(note, str(get_locale())) if note is not None else ""

    return {"unread_notifications": count, "newest_unread_notice": newest}


@bp.route("/notifications")
@login_required
def index():
    """The user's notifications, newest first."""
    items = db.session.scalars(select(Notification).where(Notification.user_id == current_user.id)
                               .order_by(Notification.created_at.desc(), Notification.id.desc())
                               .limit(LIST_LIMIT)).all()
    # Stored in UTC; shown in the service's time zone. Each notice is worded in the reader's current
    # language from its event and parameters (older rows show the text stored with them).
    locale = str(get_locale())
    return render_template("notifications/index.html", items=items,
                           when=lambda moment: format_datetime(moment, "yyyy-MM-dd HH:mm"),
                           text=lambda note: notice_text(note, locale))


@bp.route("/notifications/<int:notification_id>/read", methods=["POST"])
@login_required
def read(notification_id: int):
    """Mark one notification read, then go to its link (a same-site path) or back to the list."""
    note = db.session.get(Notification, notification_id)
    if note is None:
        raise NotFound("not found")
    mark_read(note, user=current_user)
    db.session.commit()
    target = link_url(note) if request.form.get("open") else None
    return redirect(target or url_for("notifications.index"))


def link_url(note: Notification) -> str | None:
    """The page a notification leads to (the domain names it by endpoint; an unknown one leads nowhere)."""
    if not note.link_endpoint:
        return None
    try:
        return url_for(note.link_endpoint, **(note.link_args or {}))
    except (BuildError, TypeError, ValueError):
        return None


@bp.route("/n/<code>")
def short_link(code: str):
    """A message's short link (`matcher.shortlinks`): record that it was opened, then go to the notice's
    page. Nobody is signed in by it: a visitor who is not signed in meets the page's login like anyone."""
    note = notification_for(code)
    if note is None:
        raise NotFound(str(_l("This link is not valid. Open Linli and look at your notifications.")))
    record_open(note)
    if current_user.is_authenticated and current_user.id == note.user_id and note.read_at is None:
        mark_read(note, user=current_user)
    db.session.commit()
    return redirect(link_url(note) or url_for("notifications.index"))


@bp.route("/notifications/read-all", methods=["POST"])
@login_required
def read_all():
    """Mark every notification of the user read."""
    mark_all_read(current_user)
    db.session.commit()
    return redirect(url_for("notifications.index"))
