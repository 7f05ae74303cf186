"""The SMS channel: a template message through an HTTP SMS gateway, and its delivery receipts.

The gateway has the shape of the common Chinese providers (Aliyun SMS, Tencent Cloud SMS): the
message is a registered template plus its parameters, sent under an approved signature (签名).
One message is one POST of JSON to `SMS_GATEWAY_URL`:

    {"phone": "+8613812345678", "sign_name": "邻里", "template_id": "SMS_0001",
     "params": {"items": "...", "why": "..."}, "out_id": "<the outbox row's key>"}

signed (both ways: our requests and the gateway's receipts) with four headers:

    X-Sms-Access-Key   SMS_ACCESS_KEY
    X-Sms-Timestamp    Unix seconds; refused when more than SMS_SIGNATURE_MAX_AGE away from now
    X-Sms-Nonce        32 random hex digits
    X-Sms-Signature    hex HMAC-SHA256(SMS_SECRET, timestamp + "\n" + nonce + "\n" + raw body)

The gateway answers `{"Code": "OK", "BizId": "...", "Message": "..."}` when it took the message, or an
error code (`isv.MOBILE_NUMBER_ILLEGAL`, `isv.BUSINESS_LIMIT_CONTROL`, ...). How answers map:

- 2xx with Code "OK"                              → `Receipt(provider_id=BizId)`
- a timeout, no connection, 408, 429, 5xx, a throttling or provider-side code → `TemporaryFailure`
- any other 4xx or error code (refused number, bad template, bad signature) → `PermanentFailure`
- a 2xx that cannot be read                       → `PermanentFailure` (the gateway may have taken
  it: retrying could send it twice)

Delivery receipts come back to `/hooks/sms/receipts` (`web/hooks.py`), verified with
`verify_signature`, and each is recorded by `record_receipt`.

Nothing here logs a full phone number, the secret or a signature: phones are masked (138****5678)
and any long digit run in a provider's answer is masked before it is kept or logged.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import secrets
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from ..rules import mask_phone
from ..settings import sms_settings
from . import Message, PermanentFailure, Receipt, TemporaryFailure, call_provider, template_for

log = logging.getLogger(__name__)

HEADER_KEY = "X-Sms-Access-Key"
HEADER_TIMESTAMP = "X-Sms-Timestamp"
HEADER_NONCE = "X-Sms-Nonce"
HEADER_SIGNATURE = "X-Sms-Signature"

# Error codes that mean "not now" rather than "never" (Aliyun's flow control and system errors;
# Tencent's equivalents are mapped by the gateway to the same words).
TEMPORARY_CODES = {"isv.BUSINESS_LIMIT_CONTROL", "isv.DAY_LIMIT_CONTROL", "isp.SYSTEM_ERROR",
                   "Throttling", "ServiceUnavailable"}
_ANSWER_LENGTH = 200
_DIGITS = re.compile(r"\+?\d{7,}")
_LOCAL_TIME = ZoneInfo("Asia/Shanghai")


def sign(secret: str, timestamp: str, nonce: str, body: bytes) -> str:
    """The request's signature: hex HMAC-SHA256 over the timestamp, the nonce and the raw body."""
    return hmac.new(secret.encode(), timestamp.encode() + b"\n" + nonce.encode() + b"\n" + body,
                    hashlib.sha256).hexdigest()


def signed_headers(access_key: str, secret: str, body: bytes, *, now: float | None = None) -> dict[str, str]:
    """The four signature headers for `body`, with a fresh nonce."""
    timestamp = str(int(time.time() if now is None else now))
    nonce = secrets.token_hex(16)
    return {HEADER_KEY: access_key, HEADER_TIMESTAMP: timestamp, HEADER_NONCE: nonce,
            HEADER_SIGNATURE: sign(secret, timestamp, nonce, body), "Content-Type": "application/json"}


def verify_signature(headers: Mapping[str, str], body: bytes, *, now: float | None = None) -> bool:
    """Whether a request (a delivery receipt) carries our key and a valid, fresh signature.

    False when SMS is not configured, a header is missing, the key is another's, the timestamp is
    not a number or more than SMS_SIGNATURE_MAX_AGE seconds away, or the signature does not match.
    """
    config = sms_settings()
    if not (config["access_key"] and config["secret"]):
        return False
    key, stamp = headers.get(HEADER_KEY, ""), headers.get(HEADER_TIMESTAMP, "")
    nonce, signature = headers.get(HEADER_NONCE, ""), headers.get(HEADER_SIGNATURE, "")
    if not (key and stamp and nonce and signature) or not stamp.isascii() or not stamp.isdigit() or len(stamp) > 12:
        return False
    if abs((time.time() if now is None else now) - int(stamp)) > config["max_age"]:
        return False
    expected = sign(config["secret"], stamp, nonce, body)
    return hmac.compare_digest(key.encode(), config["access_key"].encode()) & hmac.compare_digest(
        signature.encode(), expected.encode())


def scrub(text: Any) -> str:
    """A provider's answer fit to keep and log: digit runs (a phone echoed back) masked, short, one line."""
    plain = " ".join(str(text or "").split())
    return _DIGITS.sub(lambda m: mask_phone(m.group(0)) or "***", plain)[:_ANSWER_LENGTH]


def _param_text(value: Any) -> str:
    """One template parameter as text. Parameters should arrive worded (`Message`); a translatable one
    still stored as {"msgid", "args"} (`notifications._plain`) is worded in the current language."""
    if value is None:
        return ""
    if isinstance(value, dict) and isinstance(value.get("msgid"), str):
        from flask_babel import gettext

        args = {str(k): _param_text(v) for k, v in (value.get("args") or {}).items()}
        try:
            return str(gettext(value["msgid"], **args) if args else gettext(value["msgid"]))
        except (KeyError, TypeError, ValueError, RuntimeError):  # no Babel here, or arguments that do not fit
            try:
                return value["msgid"] % args if args else value["msgid"]
            except (KeyError, TypeError, ValueError):
                return value["msgid"]
    if isinstance(value, list | tuple):
        return "; ".join(_param_text(v) for v in value)
    return str(value)


def template_params(message: Message, max_length: int = 0) -> dict[str, str]:
    """The template's parameters, all text (providers refuse numbers), each cut to `max_length`
    characters with "…" when it is set (providers limit a variable's length), and the message's link
    as `url`, never cut (a template that has no ${url} ignores it)."""
    params = {str(k): _param_text(v) for k, v in message.params.items()}
    if max_length > 1:
        params = {k: v if len(v) <= max_length else v[:max_length - 1] + "…" for k, v in params.items()}
    if message.url and "url" not in params:
        params["url"] = message.url
    return params


class SmsChannel:
    """SMS through the HTTP gateway in `SMS_GATEWAY_URL` (see the module's docstring)."""

    name = "sms"

    def configured(self) -> bool:
        config = sms_settings()
        return bool(config["url"] and config["access_key"] and config["secret"] and config["sign_name"])

    def address(self, user: Any) -> str | None:
        """The volunteer's phone (E.164), or None for someone without a volunteer profile or phone."""
        volunteer = getattr(user, "volunteer", None)
        return (getattr(volunteer, "phone", None) or None) if volunteer is not None else None

    def send(self, message: Message) -> Receipt:
        config = sms_settings()
        masked = mask_phone(message.address)
        if not self.configured():
            raise PermanentFailure("SMS is not configured")
        template = template_for(config["templates"], message, "SMS", "SMS_TEMPLATES", masked)
        body = json.dumps({
            "phone": message.address, "sign_name": config["sign_name"], "template_id": template,
            "params": template_params(message, config["param_max_length"]),
            "out_id": message.key,
        }, ensure_ascii=False, separators=(",", ":")).encode()
        headers = signed_headers(config["access_key"], config["secret"], body)
        response = call_provider(
            lambda: httpx.post(config["url"], content=body, headers=headers,
                               timeout=httpx.Timeout(config["timeout"]), follow_redirects=False),
            "SMS gateway", f"key={message.key} to={masked}")
        return self._read_answer(response, message, masked)

    def _read_answer(self, response: httpx.Response, message: Message, masked: str) -> Receipt:
        status = response.status_code
        try:
            answer = response.json()
        except ValueError:
            answer = None
        answer = answer if isinstance(answer, dict) else {}
        code = scrub(answer.get("Code") or answer.get("code") or "")
        words = scrub(answer.get("Message") or answer.get("message") or "")
        said = scrub(f"HTTP {status} {code}: {words}".rstrip(": ")) if code or words else f"HTTP {status}"
        if status in (408, 429) or status >= 500 or (200 <= status < 300 and code in TEMPORARY_CODES) or (
                400 <= status < 500 and code in TEMPORARY_CODES):
            log.warning("sms not sent, will retry key=%s to=%s: %s", message.key, masked, said)
            raise TemporaryFailure(said)
        if 200 <= status < 300 and code == "OK":
            provider_id = str(answer.get("BizId") or answer.get("biz_id") or "").strip()[:100]
            if not provider_id.isprintable():
                provider_id = ""
            log.info("sms sent key=%s to=%s provider_id=%s", message.key, masked, provider_id)
            return Receipt(provider_id=provider_id, answer=scrub(words or "OK"))
        if 200 <= status < 300 and not code:
            said = f"HTTP {status}: unreadable answer (the message may have been taken; not retried)"
        log.warning("sms refused key=%s to=%s: %s", message.key, masked, said)
        raise PermanentFailure(said)


def receipt_time(value: Any) -> datetime | None:
    """A receipt's report time as naive UTC: "2026-11-30 08:01:02" is Beijing time (as the providers
    send it); ISO 8601 with an offset is taken as written. None when it is missing or unreadable."""
    if not isinstance(value, str) or not value.strip() or len(value) > 40:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=_LOCAL_TIME)
    if not 2000 <= parsed.year <= 9998:
        return None
    return parsed.astimezone(UTC).replace(tzinfo=None)


def record_receipt(provider_id: str, delivered: bool, answer: str, at: datetime | None) -> bool:
    """Record a delivery receipt on the outbox row the gateway took as `provider_id`.

    A row in "sent" becomes "delivered" (with `delivered_at`, UTC) or, when the provider could not
    deliver it, "given_up" with the provider's error in `last_error` (not "failed", which the sender
    retries by itself: re-sending after a failed delivery is the coordinator's choice). The first receipt wins: a row in any other state is left alone, so a
    replayed or repeated receipt changes nothing. Returns whether a row was changed; an unknown id
    changes nothing.
    Flushes, never commits.
    """
    from sqlalchemy import select

    from ..db import db
    from ..models import utcnow
    from ..models.outbox import OutboxMessage, OutboxState

    if not provider_id or len(provider_id) > 100 or not provider_id.isprintable():
        return False
    row = db.session.scalars(select(OutboxMessage).where(
        OutboxMessage.channel == SmsChannel.name, OutboxMessage.provider_id == provider_id)
        .order_by(OutboxMessage.id).limit(1)).first()
    if row is None or row.state != OutboxState.SENT:
        return False
    if delivered:
        row.state = OutboxState.DELIVERED
        row.delivered_at = at or utcnow()
    else:
        # Not FAILED: in the outbox that means "try again soon". The provider tried and the phone did not
        # take it (off for days, refused by the carrier): sending again is a person's choice (re-send).
        row.state = OutboxState.GIVEN_UP
        row.last_error = scrub(answer) or "FAILED"
    db.session.flush()
    log.info("sms receipt provider_id=%s %s", provider_id, "delivered" if delivered else "failed")
    return True

