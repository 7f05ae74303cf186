"""WeChat's message push: `GET/POST /hooks/wechat/events` (`web/hooks.py`).

Pushes are signed by the local WeChat API (`tests/servers/wechat_gateway.py`, its own signing code),
through the test client and once sent by the gateway itself over HTTP to the application served on
127.0.0.1. A bad, missing or stale signature is 403 and changes nothing; while WeChat is not
configured the URL is 404. WeChat wants the text "success" for every push it should not repeat.
"""

from __future__ import annotations

import json
import logging
import threading
import time

import pytest
from werkzeug.serving import make_server

from matcher.db import db as _db
from matcher.models import User
from matcher.models.outbox import OutboxMessage, OutboxState
from tests.servers.wechat_gateway import WeChatGateway, push_signature

URL = "/hooks/wechat/events"
OPENID = "oW3xq5Hk2LmN8pQrStUvWxYz1234"
OURS = "tmpl-offer-0123456789abcdefghijklmnopqrstuv"
MSGID = "3000000000000000001"


@pytest.fixture
def wx():
    with WeChatGateway(app_id="wx-hook", secret="hook-app-secret", push_token="hook-push-token") as gateway:
        yield gateway


def wechat_config(wx: WeChatGateway) -> dict:
    return {"WECHAT_API_URL": wx.url, "WECHAT_APP_ID": wx.app_id, "WECHAT_APP_SECRET": wx.secret,
            "WECHAT_TOKEN": wx.push_token,
            "WECHAT_TEMPLATES": {"offer": {"id": OURS, "page": "pages/offers/index", "fields": {"thing1": "items"}}}}


@pytest.fixture
def wechat_app(app, wx):
    app.config.update(wechat_config(wx))
    return app


def sent_row(world, provider_id: str = MSGID, state=OutboxState.SENT, channel: str = "wechat") -> OutboxMessage:
    row = OutboxMessage(user_id=world["users"]["vol_a"].id, channel=channel, event="offer",
                        key=f"w:{channel}:{provider_id}", address=OPENID, text="x", params={}, state=state,
                        provider_id=provider_id)
    _db.session.add(row)
    _db.session.commit()
    return row


def bound(world, subscribed: bool) -> User:
    user = world["users"]["vol_a"]
    user.wechat_openid, user.wechat_subscribed = OPENID, subscribed
    _db.session.commit()
    return user


def reload(row):
    _db.session.expire_all()
    return _db.session.get(type(row), row.id)


def push(client, wx: WeChatGateway, payload, **query):
    body = payload if isinstance(payload, bytes) else json.dumps(payload, ensure_ascii=False).encode()
    return client.post(URL, query_string=wx.signed_query(**query), data=body, content_type="application/json")


# ---------------------------------------------------------------- the URL check

def test_the_url_check_echoes_echostr_when_signed(wechat_app, client, wx):
    answer = client.get(URL, query_string=wx.signed_query(echostr="7261546231"))
    assert answer.status_code == 200 and answer.get_data(as_text=True) == "7261546231"
    assert answer.mimetype == "text/plain"


@pytest.mark.parametrize("case", ["unsigned", "wrong-token", "stale", "no-echostr", "changed-nonce"])
def test_the_url_check_refuses_a_bad_signature(wechat_app, client, wx, case):
    query = wx.signed_query(echostr="7261546231", token="guess" if case == "wrong-token" else None,
                            timestamp=int(time.time()) - 301 if case == "stale" else None)
    if case == "unsigned":
        query = {"echostr": "7261546231"}
    elif case == "no-echostr":
        query.pop("echostr")
    elif case == "changed-nonce":
        query["nonce"] += "1"
    answer = client.get(URL, query_string=query)
    assert answer.status_code == 403 and "7261546231" not in answer.get_data(as_text=True)


def test_wechat_checks_the_url_and_pushes_to_the_running_app(make_app, wechat_app, world, wx):
    """The gateway itself calls the application served over HTTP on 127.0.0.1 (a real push)."""
    row = sent_row(world)
    served = make_app(SERVER_NAME=None, **wechat_config(wx))
    server = make_server("127.0.0.1", 0, served, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    app_url = f"http://127.0.0.1:{server.server_port}{URL}"
    try:
        checked = wx.verify_url(app_url, echostr="echo-4711")
        pushed = wx.post_event(app_url, wx.sent_event(MSGID, openid=OPENID, template_id=OURS))
    finally:
        server.shutdown()
        thread.join(timeout=5)
    assert checked == (200, "echo-4711")
    assert pushed == (200, "success")
    assert reload(row).state == OutboxState.DELIVERED


# ---------------------------------------------------------------- delivery events

@pytest.mark.parametrize("shape", ["object", "list", "string-code", "number-msgid"])
def test_a_sent_event_marks_the_row_delivered(wechat_app, client, world, wx, shape):
    row = sent_row(world)
    payload = wx.sent_event(MSGID, openid=OPENID, template_id=OURS)
    if shape == "list":
        payload["List"] = [payload["List"], {**payload["List"], "MsgID": "999"}]
    elif shape == "string-code":
        payload["List"]["ErrorCode"] = "0"
    elif shape == "number-msgid":
        payload["List"]["MsgID"] = int(MSGID)
    answer = push(client, wx, payload)
    assert answer.status_code == 200 and answer.get_data(as_text=True) == "success"
    row = reload(row)
    assert row.state == OutboxState.DELIVERED and row.delivered_at is not None


def test_a_failed_delivery_gives_the_row_up_with_wechats_status(wechat_app, client, world, wx):
    row = sent_row(world)
    answer = push(client, wx, wx.sent_event(MSGID, 20001, "failed:user block", openid=OPENID))
    assert answer.status_code == 200
    row = reload(row)
    assert row.state == OutboxState.GIVEN_UP and row.last_error == "20001 failed:user block"


def test_the_first_event_wins_and_unknown_ids_are_ignored(wechat_app, client, world, wx):
    row = sent_row(world)
    sms_row = sent_row(world, channel="sms")  # the same provider id on another channel is not WeChat's
    assert push(client, wx, wx.sent_event(MSGID, openid=OPENID)).status_code == 200
    assert push(client, wx, wx.sent_event(MSGID, 20001, "failed", openid=OPENID)).status_code == 200
    assert push(client, wx, wx.sent_event("no-such-id", openid=OPENID)).get_data(as_text=True) == "success"
    assert reload(row).state == OutboxState.DELIVERED and reload(row).last_error == ""
    assert reload(sms_row).state == OutboxState.SENT


def test_items_that_are_not_readable_are_ignored_and_the_others_recorded(wechat_app, client, world, wx):
    row = sent_row(world)
    payload = wx.sent_event(MSGID, openid=OPENID)
    payload["List"] = [{"MsgID": MSGID}, {"ErrorCode": 0}, "x", [1], {"MsgID": MSGID, "ErrorCode": True},
                       {"MsgID": MSGID, "ErrorCode": 0, "ErrorStatus": "success"}]
    assert push(client, wx, payload).status_code == 200
    assert reload(row).state == OutboxState.DELIVERED


# ---------------------------------------------------------------- the opt-in

@pytest.mark.parametrize("popup", [True, False])
def test_accepting_our_template_turns_the_opt_in_on_and_rejecting_it_off(wechat_app, client, world, wx, popup):
    user = bound(world, subscribed=False)
    assert push(client, wx, wx.subscription_event(OPENID, {OURS: "accept"}, popup=popup)).status_code == 200
    assert reload(user).wechat_subscribed is True
    answer = push(client, wx, wx.subscription_event(OPENID, {OURS: "reject", "someone-elses": "accept"},
                                                    popup=popup))
    assert answer.get_data(as_text=True) == "success"
    assert reload(user).wechat_subscribed is False


def test_a_template_that_is_not_ours_or_an_unknown_openid_changes_nothing(wechat_app, client, world, wx):
    user = bound(world, subscribed=True)
    assert push(client, wx, wx.subscription_event(OPENID, {"someone-elses": "reject"})).status_code == 200
    assert push(client, wx, wx.subscription_event("oNOBODY0000000000000000000", {OURS: "reject"})).status_code == 200
    assert reload(user).wechat_subscribed is True
    assert push(client, wx, wx.subscription_event(OPENID, {OURS: "ban"})).status_code == 200
    assert reload(user).wechat_subscribed is False


def test_other_pushes_are_acknowledged_and_ignored(wechat_app, client, world, wx):
    user = bound(world, subscribed=True)
    chat = {"ToUserName": "gh_0123456789ab", "FromUserName": OPENID, "CreateTime": 1, "MsgType": "text",
            "Content": "你好", "MsgId": 1}
    other = {**wx.subscription_event(OPENID, {OURS: "reject"}), "Event": "user_enter_tempsession"}
    for payload in (chat, other):
        answer = push(client, wx, payload)
        assert answer.status_code == 200 and answer.get_data(as_text=True) == "success"
    assert reload(user).wechat_subscribed is True


# ---------------------------------------------------------------- refusals

@pytest.mark.parametrize("case", ["unsigned", "wrong-token", "stale", "future", "changed-timestamp"])
def test_a_bad_signature_is_403_and_changes_nothing(wechat_app, client, world, wx, case):
    row = sent_row(world)
    user = bound(world, subscribed=False)
    body = json.dumps(wx.sent_event(MSGID, openid=OPENID)).encode()
    accept = json.dumps(wx.subscription_event(OPENID, {OURS: "accept"})).encode()
    query = wx.signed_query(token="guess" if case == "wrong-token" else None,
                            timestamp={"stale": int(time.time()) - 301,
                                       "future": int(time.time()) + 301}.get(case))
    if case == "unsigned":
        query = {}
    elif case == "changed-timestamp":
        query["timestamp"] = str(int(query["timestamp"]) - 1)
    for data in (body, accept):
        answer = client.post(URL, query_string=query, data=data, content_type="application/json")
        assert answer.status_code == 403 and answer.get_data(as_text=True) != "success"
    assert reload(row).state == OutboxState.SENT and reload(user).wechat_subscribed is False


@pytest.mark.parametrize("body", [b"", b"not json", b"\xff\xfe", b"42", b"[]", b"null", b'"x"',
                                  b'{"Event": "subscribe_msg_sent_event"}',
                                  b"<xml><MsgType><![CDATA[event]]></MsgType></xml>", b"[" * 60000])
def test_a_signed_body_that_is_not_a_push_is_400(wechat_app, client, world, wx, body):
    row = sent_row(world)
    answer = push(client, wx, body)
    assert answer.status_code == 400
    assert reload(row).state == OutboxState.SENT


def test_a_body_over_the_limit_is_refused_unread(wechat_app, client, world, wx):
    row = sent_row(world)
    payload = wx.sent_event(MSGID, openid=OPENID)
    payload["padding"] = "x" * (64 * 1024)
    assert push(client, wx, payload).status_code == 413
    assert reload(row).state == OutboxState.SENT


@pytest.mark.parametrize("missing", ["everything", "push-token"])
def test_off_while_wechat_is_not_configured(app, client, world, wx, missing):
    if missing == "push-token":
        app.config.update({**wechat_config(wx), "WECHAT_TOKEN": ""})
    row = sent_row(world)
    assert client.get(URL, query_string=wx.signed_query(echostr="1")).status_code == 404
    assert push(client, wx, wx.sent_event(MSGID, openid=OPENID)).status_code == 404
    assert reload(row).state == OutboxState.SENT


def test_csrf_does_not_apply_to_the_push(make_app, wechat_app, world, wx):
    row = sent_row(world)
    guarded = make_app(WTF_CSRF_ENABLED=True, **wechat_config(wx))
    assert push(guarded.test_client(), wx, wx.sent_event(MSGID, openid=OPENID)).status_code == 200
    assert reload(row).state == OutboxState.DELIVERED


def test_the_push_logs_no_openid_token_or_signature(wechat_app, client, world, wx, caplog):
    caplog.set_level(logging.DEBUG)
    sent_row(world)
    bound(world, subscribed=False)
    good = wx.signed_query()
    body = json.dumps(wx.sent_event(MSGID, openid=OPENID)).encode()
    assert client.post(URL, query_string=good, data=body, content_type="application/json").status_code == 200
    assert push(client, wx, wx.subscription_event(OPENID, {OURS: "accept"})).status_code == 200
    bad = wx.signed_query(token="guess")
    assert client.post(URL, query_string=bad, data=body, content_type="application/json").status_code == 403
    logged = caplog.text + " ".join(str(r.args) for r in caplog.records)
    assert "refused" in logged and "recorded" in logged
    for secret in (OPENID, wx.push_token, good["signature"], bad["signature"]):
        assert secret not in logged
    assert push_signature(wx.push_token, good["timestamp"], good["nonce"]) == good["signature"]
