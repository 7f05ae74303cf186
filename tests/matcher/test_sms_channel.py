"""The SMS channel against a real local gateway (`tests/servers/sms_gateway.py`) on 127.0.0.1.

The gateway checks signatures with its own code, so a message it takes proves the channel signs as
documented; it is told to answer 500/429, to refuse a number or to answer late, and the channel must
map each answer to a `Receipt`, a `TemporaryFailure` or a `PermanentFailure`. Nothing is mocked.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from datetime import datetime

import pytest
from flask import Flask

from matcher.channels import Message, PermanentFailure, Receipt, TemporaryFailure
from matcher.channels.sms import SmsChannel, receipt_time, record_receipt, verify_signature
from tests.servers.sms_gateway import SmsGateway

PHONE = "+8613812345678"
SECRET = "s3cret-never-logged"
TEMPLATES = {"offer": "SMS_0001", "offer_changed": "SMS_0002"}


def sms_config(gateway: SmsGateway, **overrides) -> dict:
    config = {"SMS_GATEWAY_URL": gateway.url, "SMS_ACCESS_KEY": gateway.access_key, "SMS_SECRET": gateway.secret,
              "SMS_SIGN_NAME": "邻里", "SMS_TEMPLATES": TEMPLATES, "SMS_TIMEOUT_SECONDS": 2}
    config.update(overrides)
    return config


@pytest.fixture
def gateway():
    with SmsGateway(access_key="test-key", secret=SECRET) as gw:
        yield gw


@pytest.fixture
def configured(gateway):
    """A bare application context with the SMS settings (the channel reads only the config)."""
    app = Flask("sms-test")
    app.config.update(sms_config(gateway))
    with app.app_context():
        yield app


def message(address: str = PHONE, event: str = "offer", key: str = "41:sms", **params) -> Message:
    return Message(key=key, address=address, event=event, text="新的服务邀请", url="https://linli.example/o/x",
                   params=params or {"items": "“陪老人散步” 2026-12-07 09:00", "why": ""})


def test_a_message_arrives_with_its_template_and_params(configured, gateway):
    receipt = SmsChannel().send(message())
    assert isinstance(receipt, Receipt)
    [taken] = gateway.messages
    assert taken["phone"] == PHONE and taken["sign_name"] == "邻里" and taken["template_id"] == "SMS_0001"
    assert taken["params"] == {"items": "“陪老人散步” 2026-12-07 09:00", "why": "", "url": "https://linli.example/o/x"}
    assert taken["out_id"] == "41:sms"
    assert receipt.provider_id == taken["biz_id"] and receipt.answer == "OK"


def test_params_are_sent_as_text(app, gateway):
    app.config.update(sms_config(gateway))
    SmsChannel().send(message(count=3, none=None, why={"msgid": "too far %(km)s", "args": {"km": 7}}))
    assert gateway.messages[0]["params"] == {"count": "3", "none": "", "why": "too far 7",
                                             "url": "https://linli.example/o/x"}


def test_params_are_cut_to_the_providers_length_but_the_link_is_not(gateway):
    app = Flask("sms-test")
    app.config.update(sms_config(gateway, SMS_PARAM_MAX_LENGTH=10))
    with app.app_context():
        SmsChannel().send(message(items="一二三四五六七八九十十一", why="短"))
    assert gateway.messages[0]["params"] == {"items": "一二三四五六七八九…", "why": "短",
                                             "url": "https://linli.example/o/x"}


@pytest.mark.parametrize("wrong", ["secret", "access_key"])
def test_the_gateway_refuses_a_bad_signature(gateway, wrong):
    """Signed with another secret (or under another key) the gateway answers 403: a permanent failure."""
    app = Flask("sms-test")
    app.config.update(sms_config(gateway, **({"SMS_SECRET": "not-the-secret"} if wrong == "secret"
                                             else {"SMS_ACCESS_KEY": "another-key"})))
    with app.app_context(), pytest.raises(PermanentFailure, match="403"):
        SmsChannel().send(message())
    assert gateway.messages == []
    assert [r["code"] for r in gateway.requests] == [
        "SignatureDoesNotMatch" if wrong == "secret" else "InvalidAccessKeyId.NotFound"]


def test_a_numeric_secret_from_the_environment_still_signs(gateway):
    """LINLI_SMS_SECRET=123456 is JSON-parsed into a number by the config loader: it must sign as text."""
    gateway.secret = "123456"
    app = Flask("sms-test")
    app.config.update(sms_config(gateway, SMS_SECRET=123456))
    with app.app_context():
        assert SmsChannel().send(message()).provider_id


@pytest.mark.parametrize("status", [500, 503, 429])
def test_a_server_error_or_throttling_is_temporary_and_the_retry_sends_once(configured, gateway, status):
    gateway.fail_next(status, times=1)
    channel = SmsChannel()
    with pytest.raises(TemporaryFailure, match=str(status)):
        channel.send(message())
    receipt = channel.send(message())
    assert len(gateway.messages) == 1 and receipt.provider_id == gateway.messages[0]["biz_id"]


def test_an_illegal_number_is_permanent_and_the_answer_keeps_no_full_phone(configured, gateway):
    gateway.refuse("+8613800001111")
    with pytest.raises(PermanentFailure) as failure:
        SmsChannel().send(message(address="+8613800001111"))
    assert "isv.MOBILE_NUMBER_ILLEGAL" in str(failure.value)
    assert "13800001111" not in str(failure.value) and "138****1111" in str(failure.value)
    assert gateway.messages == []


def test_a_refusal_with_a_4xx_is_permanent(configured, gateway):
    gateway.refuse("+8613800001111", code="isv.SMS_TEMPLATE_ILLEGAL", status=400)
    with pytest.raises(PermanentFailure, match="isv.SMS_TEMPLATE_ILLEGAL"):
        SmsChannel().send(message(address="+8613800001111"))


def test_an_event_without_a_template_is_permanent_and_sends_nothing(configured, gateway):
    with pytest.raises(PermanentFailure, match="service_taken"):
        SmsChannel().send(message(event="service_taken"))
    assert gateway.requests == []


def test_a_slow_gateway_is_a_temporary_failure(gateway):
    gateway.delay = 1.5
    app = Flask("sms-test")
    app.config.update(sms_config(gateway, SMS_TIMEOUT_SECONDS=0.3))
    started = time.monotonic()
    with app.app_context(), pytest.raises(TemporaryFailure, match="timed out"):
        SmsChannel().send(message())
    assert time.monotonic() - started < 1.4


def test_an_unreachable_gateway_is_a_temporary_failure(gateway):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = Flask("sms-test")
    app.config.update(sms_config(gateway, SMS_GATEWAY_URL=f"http://127.0.0.1:{port}/sms/send"))
    with app.app_context(), pytest.raises(TemporaryFailure, match="unreachable"):
        SmsChannel().send(message())


def test_the_full_phone_and_the_secret_never_reach_the_log(configured, gateway, caplog):
    caplog.set_level(logging.DEBUG)
    channel = SmsChannel()
    channel.send(message())                                   # sent
    gateway.fail_next(500)
    with pytest.raises(TemporaryFailure):
        channel.send(message())                               # will retry
    gateway.refuse(PHONE)
    with pytest.raises(PermanentFailure):
        channel.send(message())                               # refused (the gateway's answer names it)
    with pytest.raises(PermanentFailure):
        channel.send(message(event="no_such_event"))          # no template
    logged = caplog.text + " ".join(str(r.args) for r in caplog.records)
    assert "138****5678" in logged
    assert "13812345678" not in logged and SECRET not in logged
    assert not any(h in logged for h in ("X-Sms-Signature", gateway.requests[0]["body"].decode()))


def test_off_without_settings():
    assert not SmsChannel().configured()  # outside an application: the defaults, all empty
    app = Flask("sms-test")
    app.config.update(SMS_GATEWAY_URL="http://127.0.0.1:9/x", SMS_ACCESS_KEY="k", SMS_SECRET="s")
    with app.app_context():
        assert not SmsChannel().configured()  # no sign name: a Chinese provider sends nothing without one
        with pytest.raises(PermanentFailure, match="not configured"):
            SmsChannel().send(message())


def test_the_address_is_the_volunteers_phone(world):
    channel = SmsChannel()
    assert channel.address(world["users"]["vol_a"]) == PHONE
    assert channel.address(world["users"]["coord"]) is None  # staff have no volunteer profile


def test_verify_signature_accepts_the_gateways_receipts_and_refuses_others(configured, gateway):
    body, headers = gateway.receipt_request([gateway.receipt("1^1")])
    assert verify_signature(headers, body)
    assert not verify_signature(headers, body + b" ")                                  # body changed
    assert not verify_signature({**headers, "X-Sms-Access-Key": "other"}, body)         # another key
    stale_body, stale = gateway.receipt_request([gateway.receipt("1^1")], timestamp=int(time.time()) - 301)
    assert not verify_signature(stale, stale_body)
    wrong_body, wrong = gateway.receipt_request([gateway.receipt("1^1")], secret="guess")
    assert not verify_signature(wrong, wrong_body)
    assert not verify_signature({k: v for k, v in headers.items() if k != "X-Sms-Nonce"}, body)
    assert not verify_signature({**headers, "X-Sms-Timestamp": "١٢٣"}, body)


def test_receipt_time_reads_beijing_time_and_refuses_nonsense():
    assert receipt_time("2026-11-30 08:01:02") == datetime(2026, 11, 30, 0, 1, 2)
    assert receipt_time("2026-11-30T08:01:02+00:00") == datetime(2026, 11, 30, 8, 1, 2)
    for bad in (None, "", "yesterday", "0001-01-01 00:00:00", 12, "9" * 100):
        assert receipt_time(bad) is None


# ---------------------------------------------------------------- record_receipt on the outbox row

def outbox_row(world, db, provider_id: str, state: str = "sent"):
    outbox = pytest.importorskip("matcher.models.outbox")
    row = outbox.OutboxMessage(user_id=world["users"]["vol_a"].id, channel="sms", event="offer", key=f"t:{provider_id}",
                               address=PHONE, text="x", params={}, state=outbox.OutboxState(state),
                               provider_id=provider_id)
    db.session.add(row)
    db.session.flush()
    return row


def test_record_receipt_marks_the_row_delivered_once(world, db):
    row = outbox_row(world, db, "9^1")
    at = datetime(2026, 11, 30, 0, 1, 2)
    assert record_receipt("9^1", True, "DELIVERED", at)
    assert row.state == "delivered" and row.delivered_at == at
    assert not record_receipt("9^1", False, "FAILED MK:0001", None)  # the first receipt wins
    assert row.state == "delivered"


def test_record_receipt_of_a_failed_delivery_gives_up_with_the_providers_error(world, db):
    row = outbox_row(world, db, "9^2")
    assert record_receipt("9^2", False, "FAILED MK:0001 +8613812345678", None)
    assert row.state == "given_up" and row.delivered_at is None
    assert "MK:0001" in row.last_error and "13812345678" not in row.last_error


def test_record_receipt_ignores_unknown_ids_and_rows_not_sent(world, db):
    queued = outbox_row(world, db, "9^3", state="queued")
    assert not record_receipt("9^3", True, "DELIVERED", None)
    assert queued.state == "queued"
    assert not record_receipt("no-such-id", True, "DELIVERED", None)
    assert not record_receipt("", True, "DELIVERED", None)


def test_the_gateway_body_is_json_as_documented(configured, gateway):
    SmsChannel().send(message())
    body = json.loads(gateway.requests[0]["body"])
    assert set(body) == {"phone", "sign_name", "template_id", "params", "out_id"}


# ---------------------------------------------------------------- through the outbox's sender

def test_through_the_outbox_500_then_200_sends_one_message_and_its_receipt_is_recorded(app, world, db, gateway):
    """The outbox's sender with the real channel: a notice for a volunteer who chose SMS, the gateway
    answers 500 once, the retry is taken (one message), and the gateway's receipt marks it delivered."""
    outbox = pytest.importorskip("matcher.outbox")
    from datetime import timedelta

    from sqlalchemy import select

    from matcher.models.outbox import OutboxMessage, OutboxState
    from matcher.notifications import notify

    app.config.update(sms_config(gateway, SMS_TEMPLATES={"membership_approved": "SMS_0009"}), OUTBOX_AUTOSEND=False)
    vol = world["users"]["vol_a"]
    vol.channels = ["sms"]
    notify([vol], "membership_approved", params={"o": "东城助老服务队"})
    db.session.commit()
    noon = datetime(2026, 12, 1, 4, 0)  # 12:00 in Beijing: not quiet hours
    gateway.fail_next(500)
    assert outbox.send_due(noon) == {"failed": 1}
    assert outbox.send_all(noon + timedelta(hours=1)) == {"sent": 1}
    assert outbox.send_all(noon + timedelta(hours=2)) == {}
    [taken] = gateway.messages
    assert taken["template_id"] == "SMS_0009" and taken["params"]["o"] == "东城助老服务队" and taken["phone"] == PHONE
    row = db.session.scalars(select(OutboxMessage)).one()
    assert row.state == OutboxState.SENT and row.provider_id == taken["biz_id"] and row.key == taken["out_id"]
    assert record_receipt(taken["biz_id"], True, "DELIVERED", None)
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(OutboxMessage, row.id).state == OutboxState.DELIVERED
