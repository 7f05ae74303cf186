"""The SMS gateway's delivery receipts: `POST /hooks/sms/receipts` (`web/hooks.py`).

Receipts are signed by the local gateway (`tests/servers/sms_gateway.py`, its own signing code), once
through the test client and once posted by the gateway itself over HTTP to the application served on
127.0.0.1. A bad, missing or stale signature is 403 and changes nothing. A receipt for a provider id we
do not know is answered 200 and ignored (decided: providers retry anything else for hours, and a retry
cannot make the id known); so is a second receipt for a row already delivered.
"""

from __future__ import annotations

import threading
import time

import pytest
from werkzeug.serving import make_server

from matcher.db import db as _db
from matcher.models import utcnow
from matcher.models.outbox import OutboxMessage, OutboxState
from tests.servers.sms_gateway import SmsGateway, signature

URL = "/hooks/sms/receipts"


@pytest.fixture
def gateway():
    with SmsGateway(access_key="hook-key", secret="hook-secret") as gw:
        yield gw


@pytest.fixture
def sms_app(app, gateway):
    app.config.update(SMS_GATEWAY_URL=gateway.url, SMS_ACCESS_KEY=gateway.access_key, SMS_SECRET=gateway.secret,
                      SMS_SIGN_NAME="邻里", SMS_TEMPLATES={"offer": "SMS_0001"})
    return app


def sent_row(world, provider_id: str = "900^1", state=OutboxState.SENT) -> OutboxMessage:
    row = OutboxMessage(user_id=world["users"]["vol_a"].id, channel="sms", event="offer", key=f"r:{provider_id}",
                        address="+8613812345678", text="x", params={}, state=state, provider_id=provider_id)
    _db.session.add(row)
    _db.session.commit()
    return row


def reload(row: OutboxMessage) -> OutboxMessage:
    _db.session.expire_all()
    return _db.session.get(OutboxMessage, row.id)


def post(client, body: bytes, headers: dict):
    return client.post(URL, data=body, headers=headers)


def test_a_signed_receipt_marks_the_row_delivered(sms_app, client, world, gateway):
    row = sent_row(world)
    body, headers = gateway.receipt_request([gateway.receipt("900^1", out_id=row.key)])
    answer = post(client, body, headers)
    assert answer.status_code == 200 and answer.json == {"code": "OK", "recorded": 1, "ignored": 0}
    row = reload(row)
    assert row.state == OutboxState.DELIVERED and row.delivered_at is not None
    assert abs((row.delivered_at - utcnow()).total_seconds()) < 60  # Beijing report time, stored as UTC


def test_a_failed_delivery_gives_the_row_up_with_the_providers_code(sms_app, client, world, gateway):
    row = sent_row(world)
    body, headers = gateway.receipt_request([gateway.receipt("900^1", delivered=False, err_code="MK:0012")])
    assert post(client, body, headers).status_code == 200
    row = reload(row)
    assert row.state == OutboxState.GIVEN_UP and "MK:0012" in row.last_error


def test_the_gateway_posts_its_receipt_to_the_running_app(make_app, sms_app, world, gateway):
    """The gateway itself calls the application served over HTTP on 127.0.0.1 (a real callback)."""
    row = sent_row(world)
    served = make_app(SERVER_NAME=None, **{k: v for k, v in sms_app.config.items() if k.startswith("SMS_")})
    server = make_server("127.0.0.1", 0, served, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        status = gateway.send_receipt(f"http://127.0.0.1:{server.server_port}{URL}", "900^1")
    finally:
        server.shutdown()
        thread.join(timeout=5)
    assert status == 200
    assert reload(row).state == OutboxState.DELIVERED


def test_csrf_does_not_apply_to_the_webhook(make_app, sms_app, world, gateway):
    row = sent_row(world)
    guarded = make_app(WTF_CSRF_ENABLED=True, **{k: v for k, v in sms_app.config.items() if k.startswith("SMS_")})
    body, headers = gateway.receipt_request([gateway.receipt("900^1")])
    assert post(guarded.test_client(), body, headers).status_code == 200
    assert reload(row).state == OutboxState.DELIVERED


@pytest.mark.parametrize("case", ["unsigned", "wrong-secret", "stale", "future", "other-key", "changed-body"])
def test_a_bad_signature_is_403_and_changes_nothing(sms_app, client, world, gateway, case):
    row = sent_row(world)
    items = [gateway.receipt("900^1")]
    if case == "wrong-secret":
        body, headers = gateway.receipt_request(items, secret="guess")
    elif case in ("stale", "future"):
        body, headers = gateway.receipt_request(items, timestamp=int(time.time()) + (-301 if case == "stale" else 301))
    else:
        body, headers = gateway.receipt_request(items)
    if case == "unsigned":
        headers = {"Content-Type": "application/json"}
    elif case == "other-key":
        headers["X-Sms-Access-Key"] = "someone-else"
    elif case == "changed-body":
        body = body.replace(b"DELIVERED", b"FAILED")
    answer = post(client, body, headers)
    assert answer.status_code == 403 and answer.json["code"] == "SignatureRefused"
    row = reload(row)
    assert row.state == OutboxState.SENT and row.delivered_at is None


def test_an_unknown_provider_id_is_answered_200_and_ignored(sms_app, client, world, gateway):
    row = sent_row(world)
    body, headers = gateway.receipt_request([gateway.receipt("no-such-id"), gateway.receipt("900^1")])
    answer = post(client, body, headers)
    assert answer.status_code == 200 and answer.json == {"code": "OK", "recorded": 1, "ignored": 1}
    again = post(client, *gateway.receipt_request([gateway.receipt("900^1", delivered=False)]))
    assert again.json == {"code": "OK", "recorded": 0, "ignored": 1}  # the first receipt wins
    assert reload(row).state == OutboxState.DELIVERED


@pytest.mark.parametrize("body", [b"", b"not json", b"\xff\xfe", b"42", b'"x"', b"null", b"{" * 5000])
def test_a_signed_body_that_is_not_receipts_is_400(sms_app, client, world, gateway, body):
    row = sent_row(world)
    _, headers = gateway.receipt_request([])
    headers["X-Sms-Signature"] = signature(gateway.secret, headers["X-Sms-Timestamp"], headers["X-Sms-Nonce"], body)
    assert post(client, body, headers).status_code == 400
    assert reload(row).state == OutboxState.SENT


def test_a_body_over_the_limit_is_refused_unread(sms_app, client, world, gateway):
    body, headers = gateway.receipt_request([gateway.receipt(f"id-{i}") for i in range(3000)])
    assert len(body) > 256 * 1024
    assert post(client, body, headers).status_code == 413


def test_unreadable_items_are_ignored_and_the_others_recorded(sms_app, client, world, gateway):
    row = sent_row(world)
    items = [{"biz_id": "900^1", "status": "SENDING"}, {"status": "DELIVERED"}, [1], "x",
             {"biz_id": 7, "status": "DELIVERED"}, {"biz_id": "900^1", "status": "DELIVERED", "report_time": "nonsense"}]
    answer = post(client, *gateway.receipt_request(items))
    assert answer.status_code == 200 and answer.json == {"code": "OK", "recorded": 1, "ignored": 5}
    assert reload(row).delivered_at is not None


def test_off_while_sms_is_not_configured(app, client, world, gateway):
    row = sent_row(world)
    assert post(client, *gateway.receipt_request([gateway.receipt("900^1")])).status_code == 404
    assert reload(row).state == OutboxState.SENT


def test_the_webhook_logs_no_secret_signature_or_phone(sms_app, client, world, gateway, caplog):
    import logging

    caplog.set_level(logging.DEBUG)
    sent_row(world)
    body, headers = gateway.receipt_request([gateway.receipt("900^1", delivered=False, err_code="+8613812345678"),
                                             gateway.receipt("unknown")])
    assert post(client, body, headers).status_code == 200
    bad_body, bad = gateway.receipt_request([gateway.receipt("900^1")], secret="guess")
    assert post(client, bad_body, bad).status_code == 403
    logged = caplog.text + " ".join(str(r.args) for r in caplog.records)
    assert "refused" in logged and "ignored" in logged
    for secret in (gateway.secret, headers["X-Sms-Signature"], bad["X-Sms-Signature"], "13812345678"):
        assert secret not in logged
