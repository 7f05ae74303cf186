"""How a person is told (`/notifications/settings`): channels in their order, e-mail address, WeChat
consent; the page says which channels the service has set up and where each reaches the person; the
outbox follows the choice (SMS to the local gateway, e-mail to aiosmtpd on 127.0.0.1)."""

from __future__ import annotations

from sqlalchemy import select

from matcher import outbox
from matcher.db import db as _db
from matcher.models import AuditEntry, OutboxMessage, User
from matcher.notifications import notify
from tests.matcher.test_email_channel import smtp_inbox  # noqa: F401  (the SMTP server fixture)


def vol_a(world) -> User:
    _db.session.expire_all()
    return _db.session.get(User, world["users"]["vol_a"].id)


def login(auth, client, name="vol_a"):
    client.post("/language/en")
    assert auth.login(name).status_code == 302


def test_the_page_says_what_is_off_and_where_each_channel_reaches(app, auth, client, world):
    login(auth, client)
    page = client.get("/notifications/settings").get_data(as_text=True)
    assert 'id="channel-sms" data-on="0"' in page and "off: the service has not set it up" in page
    assert "138****5678" in page  # the SMS channel would reach her phone, masked
    assert "Now you are told only in Linli" in page and "You have not chosen yet" in page
    app.config.update(SMS_GATEWAY_URL="http://127.0.0.1:9/sms", SMS_ACCESS_KEY="k", SMS_SECRET="s", SMS_SIGN_NAME="邻里")
    page = client.get("/notifications/settings").get_data(as_text=True)
    assert 'id="channel-sms" data-on="1"' in page and "Now your notices also go out by SMS" in page
    auth.logout()
    login(auth, client, "coord")  # staff have no volunteer phone: SMS cannot reach them
    page = client.get("/notifications/settings").get_data(as_text=True)
    assert "this account has none" in page and "Now you are told only in Linli" in page


def test_choosing_e_mail_first_and_sms_second(app, auth, client, world, smtp_inbox):  # noqa: F811
    app.config.update(smtp_inbox.config(), OUTBOX_AUTOSEND=False, OUTBOX_QUIET_HOURS=[])
    login(auth, client)
    answer = client.post("/notifications/settings", data={"first": "email", "second": "sms", "third": "",
                                                           "email": " Li.XiuYing@Example.org "})
    assert answer.status_code == 302
    user = vol_a(world)
    assert user.channels == ["email", "sms"] and user.email == "Li.XiuYing@example.org"
    entry = _db.session.scalars(select(AuditEntry).where(AuditEntry.action == "notice_channels")).one()
    assert entry.details == {"channels": ["email", "sms"], "email": True, "wechat": False}
    notify([user], "membership_approved", params={"o": "东城助老服务队"})
    _db.session.commit()
    assert outbox.send_all() == {"sent": 1}
    (mail,) = smtp_inbox.mails()
    assert mail["To"] == "Li.XiuYing@example.org"


def test_nothing_chosen_means_in_the_app_only(app, auth, client, world, smtp_inbox):  # noqa: F811
    app.config.update(smtp_inbox.config(), OUTBOX_AUTOSEND=False)
    login(auth, client)
    assert client.post("/notifications/settings", data={"email": "li@example.org"}).status_code == 302
    user = vol_a(world)
    assert user.channels == []
    notify([user], "membership_approved", params={"o": "东城助老服务队"})
    _db.session.commit()
    assert _db.session.scalars(select(OutboxMessage)).all() == []


def test_bad_choices_are_named_and_change_nothing(auth, client, world):
    login(auth, client)
    cases = [
        ({"first": "sms", "second": "sms"}, "second", "chosen already"),
        ({"first": "fax"}, "first", "Choose SMS, WeChat, e-mail or nothing."),
        ({"first": "email"}, "email", "Give your e-mail address"),
        ({"first": "email", "email": "li@@example"}, "email", "This is not an e-mail address"),
        ({"first": "sms", "email": "a\x00b@example.org"}, "email", "control characters"),
        ({"first": "wechat", "wechat_subscribed": "1"}, "wechat_subscribed", "Bind your WeChat"),
    ]
    for data, field, words in cases:
        answer = client.post("/notifications/settings", data=data)
        page = answer.get_data(as_text=True)
        assert answer.status_code == 400, data
        assert f'id="err-{field}"' in page and words in page, (data, field)
        user = vol_a(world)
        assert user.channels is None and user.email is None and not user.wechat_subscribed


def test_a_bound_account_consents_to_wechat_messages(auth, client, world):
    user = vol_a(world)
    user.wechat_openid = "o6_bmjrPTlm6_2sgVt7hMZOPfL2M"
    _db.session.commit()
    login(auth, client)
    page = client.get("/notifications/settings").get_data(as_text=True)
    assert 'id="wechat_subscribed"' in page and 'id="wechat_subscribed" checked' not in page
    assert client.post("/notifications/settings", data={"first": "wechat", "second": "sms",
                                                         "wechat_subscribed": "1"}).status_code == 302
    user = vol_a(world)
    assert user.wechat_subscribed and user.channels == ["wechat", "sms"]
    assert client.post("/notifications/settings", data={"first": "sms"}).status_code == 302
    assert not vol_a(world).wechat_subscribed
