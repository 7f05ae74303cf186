"""Public callbacks from outside providers: the SMS gateway's delivery receipts and WeChat's event pushes.

`POST /hooks/sms/receipts` takes the provider's JSON list of receipts:

    [{"biz_id": "...", "out_id": "...", "status": "DELIVERED" | "FAILED", "err_code": "...",
      "report_time": "2026-11-30 08:01:02"}, ...]

(`provider_id` is read where `biz_id` is missing). There is no session and no CSRF token (the
blueprint is CSRF-exempt): the request is trusted only when it carries the SMS signature headers
(`matcher.channels.sms.verify_signature`, the same HMAC as our requests, fresh within
SMS_SIGNATURE_MAX_AGE). Answers:

- 404 while SMS is not configured (nothing is listening for receipts);
- 403 for a missing, wrong or stale signature (nothing read, nothing written);
- 400 for a signed body that is not JSON, or neither a list nor one receipt (nothing written); an
  item that is not a readable receipt (another status, no id) is ignored and the others recorded;
- 200 otherwise, with how many receipts were recorded and how many ignored. A receipt for a
  provider id we do not know (or a row already delivered or given up) is ignored with 200, not
  refused: providers retry any other answer for hours, and retrying cannot make it known.
"""

from __future__ import annotations

from flask import Blueprint, current_app, request

from matcher.channels.sms import SmsChannel, receipt_time, record_receipt, scrub, verify_signature
from matcher.channels.wechat import WeChatChannel, record_sent_event, set_subscription, verify_push
from matcher.db import db
from matcher.settings import wechat_settings

from .extensions import csrf

bp = Blueprint("hooks", __name__, url_prefix="/hooks")
csrf.exempt(bp)

MAX_BODY = 256 * 1024  # a provider batches at most a few hundred receipts per call
MAX_ITEMS = 1000


def _answer(status: int, code: str, **extra):
    return {"code": code, **extra}, status


@bp.route("/sms/receipts", methods=["POST"])
def sms_receipts():
    """Record the SMS gateway's delivery receipts (see the module's docstring)."""
    if not SmsChannel().configured():
        return _answer(404, "NotConfigured")
    if (request.content_length or 0) > MAX_BODY:
        return _answer(413, "TooLarge")
    body = request.get_data(cache=False)
    if len(body) > MAX_BODY:
        return _answer(413, "TooLarge")
    if not verify_signature(request.headers, body):
        current_app.logger.info("sms receipts refused: bad or stale signature")
        return _answer(403, "SignatureRefused")
    items = _read_items(body)
    if items is None:
        return _answer(400, "BadReceipts")
    recorded = ignored = 0
    for provider_id, delivered, answer, at in items:
        if record_receipt(provider_id, delivered, answer, at):
            recorded += 1
        else:
            ignored += 1
    db.session.commit()
    if ignored:
        current_app.logger.info("sms receipts: %d recorded, %d ignored (unknown or already final)", recorded, ignored)
    return _answer(200, "OK", recorded=recorded, ignored=ignored)


def _read_items(body: bytes) -> list[tuple[str, bool, str, object]] | None:
    """The receipts as (provider_id, delivered, answer, at), or None when the body is not receipts."""
    import json

    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or len(data) > MAX_ITEMS:
        return None
    items = []
    for item in data:
        provider_id = item.get("biz_id") or item.get("provider_id") if isinstance(item, dict) else None
        status = item.get("status") if isinstance(item, dict) else None
        if not isinstance(provider_id, str) or not provider_id or status not in ("DELIVERED", "FAILED"):
            items.append(("", False, "", None))  # not a receipt we can read: ignored, the others count
            continue
        code = item.get("err_code")
        answer = scrub(f"{status} {code}" if isinstance(code, str) and code else status)
        items.append((provider_id, status == "DELIVERED", answer, receipt_time(item.get("report_time"))))
    return items


# --- WeChat ----------------------------------------------------------------------------------------

WECHAT_MAX_BODY = 64 * 1024  # one event, a few template choices at most
WECHAT_MAX_ITEMS = 100
SUBSCRIPTION_EVENTS = ("subscribe_msg_popup_event", "subscribe_msg_change_event")


def _text(status: int, text: str):
    return text, status, {"Content-Type": "text/plain; charset=utf-8"}


@bp.route("/wechat/events", methods=["GET", "POST"])
def wechat_events():
    """WeChat's URL check and event pushes (see the module's docstring)."""
    if not (WeChatChannel().configured() and wechat_settings()["token"]):
        return _text(404, "not configured")
    if request.method == "GET":
        echostr = request.args.get("echostr", "")
        if not verify_push(request.args) or not echostr or len(echostr) > 128 or not echostr.isprintable():
            current_app.logger.info("wechat url check refused: bad or stale signature")
            return _text(403, "signature refused")
        return _text(200, echostr)
    if (request.content_length or 0) > WECHAT_MAX_BODY:
        return _text(413, "too large")
    body = request.get_data(cache=False)
    if len(body) > WECHAT_MAX_BODY:
        return _text(413, "too large")
    if not verify_push(request.args):
        current_app.logger.info("wechat push refused: bad or stale signature")
        return _text(403, "signature refused")
    push = _read_push(body)
    if push is None:
        return _text(400, "unreadable push")
    event, items = push.get("Event"), _list(push.get("List"))
    if push.get("MsgType") != "event" or items is None:
        recorded = ignored = 0
    elif event == "subscribe_msg_sent_event":
        recorded, ignored = _record_sent(items)
    elif event in SUBSCRIPTION_EVENTS:
        recorded, ignored = _record_subscription(push.get("FromUserName"), items)
    else:
        recorded = ignored = 0
    db.session.commit()
    current_app.logger.info("wechat push %s: %d recorded, %d ignored", event if isinstance(event, str) and
                            len(event) < 40 else "?", recorded, ignored)
    return _text(200, "success")


def _read_push(body: bytes) -> dict | None:
    """The push as a JSON object with a MsgType, or None when it is not one."""
    import json

    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("MsgType"), str):
        return None
    return data


def _list(value) -> list | None:
    """`List` as a list of items (WeChat sends one item as an object), or None when it has none."""
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list) and len(value) <= WECHAT_MAX_ITEMS:
        return value
    return None


def _record_sent(items: list) -> tuple[int, int]:
    recorded = ignored = 0
    for item in items:
        msg_id = item.get("MsgID") if isinstance(item, dict) else None
        code = item.get("ErrorCode") if isinstance(item, dict) else None
        if isinstance(msg_id, int) and not isinstance(msg_id, bool):
            msg_id = str(msg_id)
        if isinstance(code, str) and code.strip().lstrip("-").isdigit() and len(code) < 12:
            code = int(code)
        if not isinstance(msg_id, str) or not isinstance(code, int) or isinstance(code, bool):
            ignored += 1
            continue
        status = item.get("ErrorStatus")
        answer = f"{code} {status}" if isinstance(status, str) and status else str(code)
        if record_sent_event(msg_id, code == 0, answer):
            recorded += 1
        else:
            ignored += 1
    return recorded, ignored


def _record_subscription(openid, items: list) -> tuple[int, int]:
    ours = {template["id"] for template in wechat_settings()["templates"].values()}
    choices = {item.get("SubscribeStatusString") for item in items
               if isinstance(item, dict) and item.get("TemplateId") in ours}
    if not isinstance(openid, str) or not choices & {"accept", "reject", "ban"}:
        return 0, len(items)
    changed = set_subscription(openid, "accept" in choices)
    return int(changed), int(not changed)
