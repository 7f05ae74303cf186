"""Public callbacks from outside providers: the SMS gateway's delivery receipts.

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
from matcher.db import db

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
