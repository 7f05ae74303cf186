"""Reading notifications: a user may mark only their own notification read."""

import json

import pytest
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from matcher.errors import NotFound
from matcher.models import Notification
from matcher.notifications import mark_read, notice_text, render_notice


def test_mark_read_only_for_ones_own_notification(world, db):
    note = Notification(user_id=world["users"]["coord"].id, kind="x", text="hello")
    db.session.add(note)
    db.session.flush()
    with pytest.raises(NotFound):
        mark_read(note, user=world["users"]["coord_a"])
    mark_read(note, user=world["users"]["coord"])
    assert note.read_at is not None


# ------------------------------------------------------------------ issue 9, 14: stored as an event, worded when read


def _offer_withdrawn_for(world, db, locale):
    """A real withdrawn-offer notice (the reason a translated message) for vol_a reading `locale`."""
    from matcher.assignments import withdraw
    from matcher.rules import week_monday
    from matcher.schedules import get_schedule

    from .builders import offer

    user = world["users"]["vol_a"]
    user.locale = locale
    occ = world["demands"]["a1"].occurrences[0]
    schedule = get_schedule(world["areas"]["town_a"], week_monday(occ.starts_at.date()))
    a = offer(schedule, occ, world["volunteers"]["a"])
    withdraw([a], _l("The service no longer takes place at that time."))
    db.session.commit()
    return db.session.scalars(select(Notification).where(Notification.user_id == user.id)).one()


def test_a_notice_stores_its_event_and_plain_parameters(world, db):
    note = _offer_withdrawn_for(world, db, "zh_CN")
    assert note.kind == "offer_withdrawn"
    assert note.params["why"] == {"msgid": "The service no longer takes place at that time.", "args": {}}
    assert world["demands"]["a1"].title in note.params["items"]
    json.dumps(note.params)  # plain JSON, nothing lazy
    assert note.text.startswith("服务邀请已撤回")  # written in the recipient's language at the time


def test_render_notice_words_the_event_in_any_language(world, db):
    note = _offer_withdrawn_for(world, db, "zh_CN")
    english = render_notice(note.kind, note.params, "en")
    chinese = render_notice(note.kind, note.params, "zh_CN")
    assert english.startswith("Offer withdrawn:") and english.endswith("The service no longer takes place at that time.")
    assert chinese.startswith("服务邀请已撤回") and "该服务已不在原定时间进行" in chinese
    assert notice_text(note, "en") == english


def test_old_rows_and_unrenderable_parameters_fall_back_to_the_stored_text(world, db):
    old = Notification(user_id=world["users"]["coord"].id, kind="offer_declined", text="旧的通知")
    db.session.add(old)
    db.session.flush()
    assert notice_text(old, "en") == "旧的通知"
    assert render_notice("offer_withdrawn", {"items": "x"}, "en", "stored") == "stored"  # a parameter missing
    assert render_notice("no_such_event", {"a": 1}, "en", "stored") == "stored"


def test_a_lazy_message_from_any_caller_becomes_event_and_parameters(world, db):
    from matcher.notifications import notify

    user = world["users"]["coord"]
    notify([user], "membership_approved", _l("You are now a member of %(o)s.", o="东城助老服务队"))
    notify([user], "something_new", _l("Offer withdrawn: %(items)s. %(why)s", items="A",
                                       why=_l("Your organization handed the service back.")))
    db.session.flush()
    member, other = db.session.scalars(select(Notification).where(Notification.user_id == user.id)
                                       .order_by(Notification.id)).all()
    assert member.params == {"o": "东城助老服务队"}
    assert notice_text(member, "en") == "You are now a member of 东城助老服务队."
    assert notice_text(member, "zh_CN") == "您已成为东城助老服务队的成员。"
    assert notice_text(other, "zh_CN") == "服务邀请已撤回：A。您的组织已退回该服务。"
    assert notice_text(other, "en") == "Offer withdrawn: A. Your organization handed the service back."


def test_the_list_shows_every_notice_in_the_readers_current_language(client, auth, world, db):
    """Issue 9, 14: a notice stayed in the language it was written in."""
    note = _offer_withdrawn_for(world, db, "zh_CN")
    auth.login("vol_a")
    client.post("/language/zh_CN")
    page = client.get("/notifications").get_data(as_text=True)
    assert "服务邀请已撤回" in page and "Offer withdrawn" not in page
    client.post("/language/en")
    page = client.get("/notifications").get_data(as_text=True)
    assert "Offer withdrawn:" in page and "The service no longer takes place at that time." in page
    assert "服务邀请已撤回" not in page
    assert db.session.get(Notification, note.id).text.startswith("服务邀请已撤回")  # the stored fallback is kept


def test_the_newest_unread_notice_for_the_badge_is_in_the_readers_language(app, world, db):
    from flask_babel import force_locale
    from flask_login import login_user

    from web.notifications import unread_notifications

    note = _offer_withdrawn_for(world, db, "zh_CN")
    with app.test_request_context():
        login_user(world["users"]["vol_a"])
        newest = unread_notifications()["newest_unread_notice"]
        with force_locale("en"):
            assert newest().startswith("Offer withdrawn:")
        with force_locale("zh_CN"):
            assert newest().startswith("服务邀请已撤回")
        note.read_at = note.created_at
        db.session.flush()
        assert newest() == ""
