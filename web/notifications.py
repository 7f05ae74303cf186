"""Everyone's notifications: the list, marking read, and the unread count in the navigation."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import format_datetime, get_locale
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from sqlalchemy import select
from werkzeug.routing import BuildError

from matcher import accounts
from matcher.db import db
from matcher.errors import NotFound, ValidationError
from matcher.models import Notification
from matcher.models.outbox import mask_address
from matcher.notifications import mark_all_read, mark_read, notice_text, unread_count
from matcher.outbox import channel_registry, preferred, reachable
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


CHANNEL_NAMES = {"sms": _l("SMS"), "wechat": _l("WeChat"), "email": _l("E-mail")}


def _channel_rows(user) -> list[dict]:
    """Each outside channel for the settings page: its name, whether the service has it, and where it
    would reach this person (masked) or why it cannot."""
    registry = channel_registry()
    rows = []
    for name in accounts.NOTICE_CHANNELS:
        channel = registry.get(name)
        on = channel is not None and channel.configured()
        address = channel.address(user) if channel is not None else None
        if name == "sms":
            why = _l("Your mobile number on your volunteer profile.") if address else \
                _l("SMS goes to a volunteer's mobile number; this account has none.")
        elif name == "wechat":
            if not user.wechat_openid:
                why = _l("Not bound: open the Linli mini-program in WeChat and sign in once.")
            elif not user.wechat_subscribed:
                why = _l("Bound, but you have not agreed to receive messages: tick the box below.")
            else:
                why = _l("Your bound WeChat.")
        else:
            why = _l("The address below.") if address else _l("Give your e-mail address below.")
        rows.append({"name": name, "label": CHANNEL_NAMES[name], "on": on,
                     "address": mask_address(name, address) if address else "", "why": why})
    return rows


def _render_settings(values: dict, errors: dict, status: int = 200):
    user = current_user
    order = preferred(user)
    found = reachable(user)
    return render_template("notifications/settings.html", rows=_channel_rows(user), values=values, errors=errors,
                           order=order, names=CHANNEL_NAMES, now_by=found[0] if found else None,
                           chosen=user.channels is not None, fields=accounts.CHOICE_FIELDS), status


@bp.route("/notifications/settings", methods=["GET", "POST"])
@login_required
def settings():
    """How the person is told outside the app: channels in their order of preference, e-mail address,
    WeChat subscription messages. Every notice is also in the app's list."""
    if request.method == "POST":
        try:
            accounts.set_notice_channels(current_user, request.form)
        except ValidationError as exc:
            db.session.rollback()
            return _render_settings(request.form.to_dict(), exc.errors, 400)
        db.session.commit()
        flash(_l("Saved. Your notices go out as you chose."), "success")
        return redirect(url_for("notifications.settings"))
    order = preferred(current_user)
    values = {field: order[i] if i < len(order) else "" for i, field in enumerate(accounts.CHOICE_FIELDS)}
    values.update(email=current_user.email or "", wechat_subscribed="1" if current_user.wechat_subscribed else "")
    return _render_settings(values, {})


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
