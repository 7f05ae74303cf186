"""The WeChat channel against a real local WeChat API (`tests/servers/wechat_gateway.py`) on 127.0.0.1.

The gateway issues and checks access tokens and checks each message's template data with its own
code (WeChat's length limits, no empty field), so a message it takes proves the channel builds the
request as WeChat wants it. It is told to answer busy, over quota, refused, a stale token, 500 or late,
and the channel must map each answer to a `Receipt`, a `TemporaryFailure` or a `PermanentFailure`.
Nothing is mocked.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from datetime import datetime, timedelta

import pytest
from flask import Flask
from sqlalchemy import select

from matcher.channels import Message, PermanentFailure, Receipt, TemporaryFailure, channels
from matcher.channels.wechat import WeChatChannel, forget_tokens
from tests.servers.sms_gateway import SmsGateway
from tests.servers.wechat_gateway import WeChatGateway

OPENID = "oW3xq5Hk2LmN8pQrStUvWxYz1234"
SECRET = "wx-app-secret-never-logged"
OFFER_TEMPLATE = "tmpl-offer-0123456789abcdefghijklmnopqrstuv"
TEMPLATES = {
    "offer": {"id": OFFER_TEMPLATE, "page": "pages/offers/index",
              "fields": {"thing1": "items", "thing2": "why", "time3": "when"}},
    "membership_approved": {"id": "tmpl-member", "fields": {"thing1": "o", "thing2": "text"}},
}
NOON = datetime(2026, 12, 1, 4, 0)  # 12:00 in Beijing: not quiet hours


def wechat_config(wx: WeChatGateway, **overrides) -> dict:
    config = {"WECHAT_API_URL": wx.url, "WECHAT_APP_ID": wx.app_id, "WECHAT_APP_SECRET": wx.secret,
              "WECHAT_TOKEN": wx.push_token, "WECHAT_TEMPLATES": TEMPLATES, "WECHAT_TIMEOUT_SECONDS": 2}
    config.update(overrides)
    return config


@pytest.fixture(autouse=True)
def _fresh_tokens():
    """Tokens are cached per process: each test starts with none (a port may be reused by a later gateway)."""
    forget_tokens()
    yield
    forget_tokens()


@pytest.fixture
def wx():
    with WeChatGateway(app_id="wx-app-1", secret=SECRET,
                       templates={OFFER_TEMPLATE, "tmpl-member"}) as gateway:
        yield gateway


@pytest.fixture
def configured(wx):
    """A bare application context with the WeChat settings (the channel reads only the config)."""
    app = Flask("wechat-test")
    app.config.update(wechat_config(wx))
    with app.app_context():
        yield app


def message(address: str = OPENID, event: str = "offer", key: str = "41:wechat", url: str = "https://l.example/n/Ab3",
            **params) -> Message:
    return Message(key=key, address=address, event=event, text="新的服务邀请：陪老人散步", url=url,
                   params=params or {"items": "陪老人散步", "why": "就在附近", "when": "2026-12-07 09:00"})


# ---------------------------------------------------------------- sending

def test_a_message_arrives_with_its_template_page_and_fields(configured, wx):
    receipt = WeChatChannel().send(message())
    assert isinstance(receipt, Receipt)
    [taken] = wx.messages
    assert taken["touser"] == OPENID and taken["template_id"] == OFFER_TEMPLATE
    assert taken["page"] == "pages/offers/index" and taken["miniprogram_state"] == "formal"
    assert taken["lang"] == "zh_CN"
    assert taken["data"] == {"thing1": {"value": "陪老人散步"}, "thing2": {"value": "就在附近"},
                             "time3": {"value": "2026-12-07 09:00"}}
    # msgid is a 64-bit number: kept exactly, as text
    assert receipt.provider_id == str(taken["msgid"]) == "3000000000000000001" and receipt.answer == "ok"


def test_a_template_without_a_page_opens_the_default_page_with_the_link(wx):
    app = Flask("wechat-test")
    app.config.update(wechat_config(wx, WECHAT_MINIPROGRAM_STATE="trial"))
    with app.app_context():
        WeChatChannel().send(message(event="membership_approved", o="东城助老服务队"))
    [taken] = wx.messages
    assert taken["page"] == "pages/index/index?url=https%3A%2F%2Fl.example%2Fn%2FAb3"
    assert taken["miniprogram_state"] == "trial"
    # a parameter the event does not have is sent as "-" (WeChat refuses an empty field); "text" is the message
    assert taken["data"] == {"thing1": {"value": "东城助老服务队"}, "thing2": {"value": "新的服务邀请：陪老人散步"}}


def test_fields_are_cut_to_wechats_limits_and_kept_on_one_line(wx):
    templates = {"offer": {"id": OFFER_TEMPLATE, "fields": {
        "thing1": "items", "time2": "when", "name3": "name", "phrase4": "state", "character_string5": "empty"}}}
    app = Flask("wechat-test")
    app.config.update(wechat_config(wx, WECHAT_TEMPLATES=templates))
    with app.app_context():
        WeChatChannel().send(message(items="“陪老人散步” 2026-12-07 09:00；“助餐” 2026-12-08 11:00",
                                     when="2026年12月07日 09:00 至 2026年12月08日 11:00 共两次",
                                     name="欧阳娜娜娜娜娜娜娜娜娜", state="待确认的邀请", empty="  \n"))
    [taken] = wx.messages  # the gateway refuses a value over its type's limit, an empty one or a line break
    data = {k: v["value"] for k, v in taken["data"].items()}
    assert data["thing1"] == "“陪老人散步” 2026-12-07…"  # 19 of 20 characters: no space before the "…"
    assert len(data["time2"]) == 32 and data["time2"].endswith("…")
    assert data["name3"] == "欧阳娜娜娜娜娜娜娜…" and data["phrase4"] == "待确认的…"
    assert data["character_string5"] == "-"


def test_a_field_over_the_limit_would_be_refused_by_the_gateway(wx):
    """The control for the test above: the gateway really checks the limits (47003, permanent)."""
    wx.answer_next(47003)
    app = Flask("wechat-test")
    app.config.update(wechat_config(wx))
    with app.app_context(), pytest.raises(PermanentFailure, match="47003"):
        WeChatChannel().send(message())
    assert wx.messages == []


# ---------------------------------------------------------------- the access token

def test_the_token_is_fetched_once_and_reused(configured, wx):
    channel = WeChatChannel()
    for n in range(3):
        channel.send(message(key=f"{n}:wechat"))
    assert wx.tokens_issued == 1 and len(wx.messages) == 3
    assert len({m["access_token"] for m in wx.messages}) == 1
    token_requests = [r for r in wx.requests if r["path"] == "/cgi-bin/token"]
    assert token_requests[0]["query"] == {"grant_type": "client_credential", "appid": "wx-app-1", "secret": SECRET}


@pytest.mark.parametrize("how", ["expired", "invalid"])
def test_a_refused_token_is_replaced_and_the_send_tried_once_more(configured, wx, how):
    channel = WeChatChannel()
    channel.send(message(key="1:wechat"))
    if how == "expired":
        wx.expire_tokens()       # 42001 access_token expired
    else:
        wx.answer_next(40001)    # 40001 invalid credential (another process fetched a new token)
    receipt = channel.send(message(key="2:wechat"))
    assert wx.tokens_issued == 2
    assert [s["errcode"] for s in wx.sends] == [0, 42001 if how == "expired" else 40001, 0]
    assert len(wx.messages) == 2 and receipt.provider_id == str(wx.messages[1]["msgid"])
    assert wx.messages[0]["access_token"] != wx.messages[1]["access_token"]
    channel.send(message(key="3:wechat"))
    assert wx.tokens_issued == 2  # the new token is cached in turn


def test_a_token_refused_twice_is_temporary_and_fetched_once_more_only(configured, wx):
    wx.answer_next(40001, times=2)
    with pytest.raises(TemporaryFailure, match="40001"):
        WeChatChannel().send(message())
    assert wx.tokens_issued == 2 and len(wx.sends) == 2 and wx.messages == []


def test_a_token_about_to_expire_is_not_kept(wx):
    wx.expires_in = 300  # not more than the five minutes' margin: fetched for every message
    app = Flask("wechat-test")
    app.config.update(wechat_config(wx))
    with app.app_context():
        WeChatChannel().send(message(key="1:wechat"))
        WeChatChannel().send(message(key="2:wechat"))
    assert wx.tokens_issued == 2 and len(wx.messages) == 2


def test_senders_in_several_threads_fetch_one_token(configured, wx):
    app, errors = configured, []

    def send(n: int) -> None:
        with app.app_context():
            try:
                WeChatChannel().send(message(key=f"{n}:wechat"))
            except Exception as exc:  # noqa: BLE001 (reported below)
                errors.append(exc)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert errors == [] and len(wx.messages) == 8 and wx.tokens_issued == 1


def test_a_wrong_app_secret_is_permanent_and_sends_nothing(wx):
    app = Flask("wechat-test")
    app.config.update(wechat_config(wx, WECHAT_APP_SECRET="not-the-secret"))
    with app.app_context(), pytest.raises(PermanentFailure, match="40125"):
        WeChatChannel().send(message())
    assert wx.sends == [] and wx.tokens_issued == 0


# ---------------------------------------------------------------- failures

@pytest.mark.parametrize("answer", [-1, 45009, 45047, "HTTP 500", "HTTP 502"])
def test_busy_limits_and_server_errors_are_temporary_and_the_retry_sends_once(configured, wx, answer):
    if isinstance(answer, int):
        wx.answer_next(answer)
    else:
        wx.fail_next(int(answer.split()[1]))
    channel = WeChatChannel()
    with pytest.raises(TemporaryFailure, match=str(answer)):
        channel.send(message())
    receipt = channel.send(message())
    assert len(wx.messages) == 1 and receipt.provider_id == str(wx.messages[0]["msgid"])


@pytest.mark.parametrize("case, code", [("openid", 40003), ("template", 40037), ("data", 47003)])
def test_a_bad_openid_template_or_data_is_permanent(wx, case, code):
    templates = TEMPLATES
    if case == "openid":
        wx.refuse(OPENID, errcode=40003)
    elif case == "template":
        templates = {"offer": {**TEMPLATES["offer"], "id": "tmpl-deleted-by-the-admin"}}
    else:
        wx.answer_next(47003)
    app = Flask("wechat-test")
    app.config.update(wechat_config(wx, WECHAT_TEMPLATES=templates))
    with app.app_context(), pytest.raises(PermanentFailure, match=str(code)) as failure:
        WeChatChannel().send(message())
    assert wx.messages == [] and OPENID not in str(failure.value)


def test_an_event_without_a_template_is_permanent_and_asks_nothing(configured, wx):
    with pytest.raises(PermanentFailure, match="service_taken"):
        WeChatChannel().send(message(event="service_taken"))
    assert wx.requests == []


def test_a_slow_answer_is_a_temporary_failure(wx):
    app = Flask("wechat-test")
    app.config.update(wechat_config(wx, WECHAT_TIMEOUT_SECONDS=0.3))
    with app.app_context():
        WeChatChannel().send(message(key="1:wechat"))  # the token is fetched while the gateway is quick
        wx.delay = 1.5
        started = time.monotonic()
        with pytest.raises(TemporaryFailure, match="timed out"):
            WeChatChannel().send(message(key="2:wechat"))
    assert time.monotonic() - started < 1.4


def test_an_unreachable_api_is_a_temporary_failure(wx):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = Flask("wechat-test")
    app.config.update(wechat_config(wx, WECHAT_API_URL=f"http://127.0.0.1:{port}"))
    with app.app_context(), pytest.raises(TemporaryFailure, match="unreachable"):
        WeChatChannel().send(message())


def test_a_refusal_without_a_database_is_still_permanent(configured, wx):
    """43101 outside an application with a database (a script): permanent, nothing else to do."""
    wx.refuse(OPENID)
    with pytest.raises(PermanentFailure, match="43101"):
        WeChatChannel().send(message())


def test_no_openid_secret_or_token_reaches_the_log(configured, wx, caplog):
    caplog.set_level(logging.DEBUG)
    channel = WeChatChannel()
    channel.send(message(key="1:wechat"))                      # sent (the token fetched: httpx logs the URL)
    wx.answer_next(40001)
    channel.send(message(key="2:wechat"))                      # token refreshed, sent
    wx.answer_next(-1)
    with pytest.raises(TemporaryFailure):
        channel.send(message(key="3:wechat"))                  # will retry
    wx.refuse(OPENID)
    with pytest.raises(PermanentFailure) as refused:
        channel.send(message(key="4:wechat"))                  # refused (the answer names the openid)
    with pytest.raises(PermanentFailure):
        channel.send(message(event="no_such_event"))           # no template
    logged = caplog.text + " ".join(str(r.args) for r in caplog.records) + " ".join(r.getMessage()
                                                                                   for r in caplog.records)
    tokens = {m["access_token"] for m in wx.messages}
    assert len(tokens) == 2 and "…1234" in logged and "HTTP Request" in logged
    assert OPENID not in logged and SECRET not in logged and OPENID not in str(refused.value)
    assert not any(token in logged for token in tokens)
    assert not any(token[:24] in logged for token in tokens)


def test_off_without_settings():
    assert not WeChatChannel().configured()  # outside an application: the defaults, all empty
    app = Flask("wechat-test")
    app.config.update(WECHAT_APP_ID="wx1")
    with app.app_context():
        assert not WeChatChannel().configured()  # no secret: no token can be had
        with pytest.raises(PermanentFailure, match="not configured"):
            WeChatChannel().send(message())
    assert isinstance(channels()["wechat"], WeChatChannel)


# ---------------------------------------------------------------- the person's binding and opt-in

def bind(user, db, openid: str | None = OPENID, subscribed: bool = True) -> None:
    user.wechat_openid, user.wechat_subscribed = openid, subscribed
    db.session.commit()


def test_the_address_is_the_bound_openid_of_someone_who_subscribed(world, db):
    channel, vol = WeChatChannel(), world["users"]["vol_a"]
    assert channel.address(vol) is None                        # not bound
    bind(vol, db, subscribed=False)
    assert channel.address(vol) is None                        # bound, no opt-in
    bind(vol, db, subscribed=True)
    assert channel.address(vol) == OPENID


def test_43101_withdraws_the_opt_in(app, world, db, wx):
    app.config.update(wechat_config(wx))
    vol, other = world["users"]["vol_a"], world["users"]["vol_b"]
    bind(vol, db)
    bind(other, db, openid="oOTHER0000000000000000000000")
    wx.refuse(OPENID)
    with pytest.raises(PermanentFailure, match="43101"):
        WeChatChannel().send(message())
    db.session.commit()
    db.session.expire_all()
    assert vol.wechat_subscribed is False and vol.wechat_openid == OPENID  # still bound, no longer reached
    assert other.wechat_subscribed is True
    assert WeChatChannel().address(vol) is None


# ---------------------------------------------------------------- through the outbox's sender

def test_through_the_outbox_a_bound_subscribed_user_gets_the_message(app, world, db, wx):
    from matcher import outbox
    from matcher.models.outbox import OutboxMessage, OutboxState
    from matcher.notifications import notify

    app.config.update(wechat_config(wx), OUTBOX_AUTOSEND=False)
    vol = world["users"]["vol_a"]
    vol.channels = ["wechat", "sms"]
    bind(vol, db)
    notify([vol], "membership_approved", params={"o": "东城助老服务队"})
    db.session.commit()
    wx.answer_next(-1)  # busy once: retried later, one message
    assert outbox.send_due(NOON) == {"failed": 1}
    assert outbox.send_all(NOON + timedelta(hours=1)) == {"sent": 1}
    assert outbox.send_all(NOON + timedelta(hours=2)) == {}
    [taken] = wx.messages
    assert taken["touser"] == OPENID and taken["template_id"] == "tmpl-member"
    assert taken["data"]["thing1"] == {"value": "东城助老服务队"}
    row = db.session.scalars(select(OutboxMessage)).one()
    assert row.channel == "wechat" and row.state == OutboxState.SENT and row.provider_id == str(taken["msgid"])


@pytest.mark.parametrize("binding", ["unbound", "unsubscribed"])
def test_through_the_outbox_an_unbound_or_unsubscribed_user_falls_back_to_the_next_channel(app, world, db, wx,
                                                                                           binding):
    from matcher import outbox
    from matcher.models.outbox import OutboxMessage, OutboxState
    from matcher.notifications import notify

    vol = world["users"]["vol_a"]
    vol.channels = ["wechat", "sms"]
    bind(vol, db, openid=None if binding == "unbound" else OPENID, subscribed=False)
    with SmsGateway() as sms:
        app.config.update(wechat_config(wx), SMS_GATEWAY_URL=sms.url, SMS_ACCESS_KEY=sms.access_key,
                          SMS_SECRET=sms.secret, SMS_SIGN_NAME="邻里", SMS_TEMPLATES={"membership_approved": "SMS_9"},
                          OUTBOX_AUTOSEND=False)
        notify([vol], "membership_approved", params={"o": "东城助老服务队"})
        db.session.commit()
        assert outbox.send_all(NOON) == {"sent": 1}
        assert len(sms.messages) == 1
    assert wx.requests == []
    row = db.session.scalars(select(OutboxMessage)).one()
    assert row.channel == "sms" and row.state == OutboxState.SENT


def test_through_the_outbox_a_refusal_gives_up_withdraws_the_opt_in_and_falls_back(app, world, db, wx):
    from matcher import outbox
    from matcher.models.outbox import OutboxMessage, OutboxState
    from matcher.notifications import notify

    vol = world["users"]["vol_a"]
    vol.channels = ["wechat", "sms"]
    bind(vol, db)
    wx.refuse(OPENID)
    with SmsGateway() as sms:
        app.config.update(wechat_config(wx), SMS_GATEWAY_URL=sms.url, SMS_ACCESS_KEY=sms.access_key,
                          SMS_SECRET=sms.secret, SMS_SIGN_NAME="邻里", SMS_TEMPLATES={"membership_approved": "SMS_9"},
                          OUTBOX_AUTOSEND=False)
        notify([vol], "membership_approved", params={"o": "东城助老服务队"})
        db.session.commit()
        assert outbox.send_all(NOON) == {"given_up": 1, "sent": 1}
        assert len(sms.messages) == 1
        db.session.expire_all()
        rows = db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
        assert [(r.channel, r.state) for r in rows] == [("wechat", OutboxState.GIVEN_UP), ("sms", OutboxState.SENT)]
        assert "43101" in rows[0].last_error and OPENID not in rows[0].last_error
        assert vol.wechat_subscribed is False  # committed by the sender with the row given up
        notify([vol], "membership_approved", params={"o": "南山调解队"})
        db.session.commit()
        assert outbox.send_all(NOON) == {"sent": 1}  # the next notice goes by SMS straight away
    assert len(wx.sends) == 1
