"""The WeChat channel: mini-program subscription messages (订阅消息), their delivery events and the opt-in.

A person is reached on WeChat when their account is bound to the mini-program (`User.wechat_openid`,
set by the phone client) and they agreed to receive its messages (`User.wechat_subscribed`). The
channel speaks WeChat's server API (`WECHAT_API_URL`, https://api.weixin.qq.com):

- an access token: `GET /cgi-bin/token?grant_type=client_credential&appid=..&secret=..` answers
  `{"access_token", "expires_in"}`; it is kept in the process until five minutes before it expires
  (one fetch at a time, under a lock), and dropped when a send answers 40001, 40014 or 42001 (the
  token is invalid or expired), after which a fresh one is fetched and the send tried once more;
- a message: `POST /cgi-bin/message/subscribe/send?access_token=..` with JSON
  `{"touser", "template_id", "page", "miniprogram_state", "lang": "zh_CN", "data": {"thing1":
  {"value": ...}, ...}}`. WECHAT_TEMPLATES maps an event to its template: `{"id", "page", "fields":
  {"thing1": "<parameter>", "time2": "<parameter>", ...}}`; each field's value is the message's
  parameter of that name (`text` is the whole message, `url` its link), on one line, cut with "…" to
  WeChat's limit for the field's type (thing 20 characters, name 10, phrase 5, phone_number 17,
  car_number 8, symbol 5, any other 32); an empty value is sent as "-" (WeChat refuses empty
  fields). A template without a page opens WECHAT_DEFAULT_PAGE with `?url=<the message's link>`.

How answers map:

- errcode 0                                       → `Receipt(provider_id=str(msgid))`
- errcode -1 (busy), 45009 / 45011 / 45047 (limits), HTTP 429 or 5xx, a timeout, no connection
                                                  → `TemporaryFailure`
- errcode 43101 (the user refused, or their one-time subscription was used up)
                                                  → `PermanentFailure`, and the person's opt-in is
  withdrawn (`withdraw_subscription`: `wechat_subscribed` False, flushed in the caller's session, so
  the sender commits it with the row given up and falls back to the person's next channel; the next
  notice is not queued on WeChat at all)
- 40003 (openid), 40037 (template), 47003 (data), 41030 (page) and any other errcode, or a 2xx that
  cannot be read (WeChat may have taken it: retrying could send it twice) → `PermanentFailure`

WeChat pushes delivery and subscription events to `/hooks/wechat/events` (`web/hooks.py`), signed with
WECHAT_TOKEN (`verify_push`); they are recorded by `record_sent_event` and `set_subscription`.

Nothing here logs an openid in full, the app secret or an access token: openids are shown by their
last four characters, and any long token-like run in WeChat's answer is masked before it is kept.
httpx's own request log line (which would show the token in the query) is redacted by a filter.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import threading
import time
from typing import Any
from urllib.parse import quote

import httpx

from ..models.outbox import mask_address
from ..settings import setting, wechat_settings
from . import Message, PermanentFailure, Receipt, TemporaryFailure, call_provider, template_for

log = logging.getLogger(__name__)

NAME = "wechat"
TOKEN_PATH = "/cgi-bin/token"
SEND_PATH = "/cgi-bin/message/subscribe/send"
LOGIN_PATH = "/sns/jscode2session"

# errcodes that mean "not now": system busy, daily/minute API quota, the template's send limit.
TEMPORARY_CODES = {-1, 45009, 45011, 45047}
# errcodes that mean the access token is no longer good: fetch a new one and send once more.
TOKEN_CODES = {40001, 40014, 42001}
# The user did not subscribe (or refused, or used up a one-time subscription).
REFUSED_CODE = 43101
# WeChat's length limit per field type (characters); others take 32.
FIELD_LIMITS = {"thing": 20, "name": 10, "phrase": 5, "phone_number": 17, "car_number": 8, "symbol": 5}
DEFAULT_FIELD_LIMIT = 32
EARLY_EXPIRY = 300  # drop a cached token this many seconds before WeChat says it expires
_ANSWER_LENGTH = 200
_LONG_RUN = re.compile(r"[A-Za-z0-9_\-]{24,}")  # an openid, a token or a template id in an answer


def mask_openid(openid: str | None) -> str:
    """An openid as logs and pages may show it: its last four characters."""
    return mask_address(NAME, openid)


def scrub(text: Any) -> str:
    """WeChat's answer fit to keep and log: one line, short, any token-like run (an openid, a
    token) cut to its first four characters."""
    plain = " ".join(str(text or "").split())
    return _LONG_RUN.sub(lambda m: m.group(0)[:4] + "****", plain)[:_ANSWER_LENGTH]


class _RedactQuery(logging.Filter):
    """Mask access_token=/secret= in httpx's "HTTP Request: GET <url>" log line (it logs the full URL)."""

    _SECRET = re.compile(r"((?:access_token|secret)=)[^&\s\"']+")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args and isinstance(record.args, tuple):
            record.args = tuple(self._SECRET.sub(r"\1***", str(a)) if "=" in str(a) else a for a in record.args)
        elif isinstance(record.msg, str):
            record.msg = self._SECRET.sub(r"\1***", record.msg)
        return True


def _install_redaction() -> None:
    logger = logging.getLogger("httpx")
    if not any(isinstance(f, _RedactQuery) for f in logger.filters):
        logger.addFilter(_RedactQuery())


_install_redaction()


# --- the access token ---------------------------------------------------------------------------

_tokens: dict[tuple[str, str, str], tuple[str, float]] = {}
_tokens_lock = threading.Lock()


def _cache_key(config: dict[str, Any]) -> tuple[str, str, str]:
    return config["api"], config["app_id"], hashlib.sha256(config["secret"].encode()).hexdigest()


def access_token(config: dict[str, Any], *, stale: str | None = None) -> str:
    """The app's access token: the cached one while it is good, else a fresh one from WeChat.

    `stale` is a token WeChat just refused: it is dropped, unless another thread has already
    replaced it (then that newer token is used). Raises `TemporaryFailure` or `PermanentFailure`
    when no token can be had."""
    key = _cache_key(config)
    with _tokens_lock:
        cached = _tokens.get(key)
        if cached is not None and cached[0] != stale and cached[1] > time.monotonic():
            return cached[0]
        _tokens.pop(key, None)
        token, expires_in = _fetch_token(config)
        if expires_in > EARLY_EXPIRY:
            _tokens[key] = (token, time.monotonic() + expires_in - EARLY_EXPIRY)
        return token


def forget_tokens() -> None:
    """Drop every cached token (tests; a rotated app secret)."""
    with _tokens_lock:
        _tokens.clear()


def _fetch_token(config: dict[str, Any]) -> tuple[str, int]:
    response = call_provider(
        lambda: httpx.get(config["api"] + TOKEN_PATH,
                          params={"grant_type": "client_credential", "appid": config["app_id"],
                                  "secret": config["secret"]},
                          timeout=httpx.Timeout(config["timeout"]), follow_redirects=False),
        "WeChat token request")
    answer = _json(response)
    code = _errcode(answer)
    token = answer.get("access_token")
    if response.status_code == 429 or response.status_code >= 500 or code in TEMPORARY_CODES:
        said = _said(response.status_code, answer)
        log.warning("wechat token not issued, will retry: %s", said)
        raise TemporaryFailure(f"access token: {said}")
    if response.is_success and not code and isinstance(token, str) and token:
        try:
            expires_in = int(answer.get("expires_in") or 0)
        except (TypeError, ValueError):
            expires_in = 0
        log.info("wechat access token fetched (expires in %s s)", expires_in)
        return token, expires_in
    # A wrong app id or secret, a server address not on the IP allow-list (40164): nothing sent
    # on WeChat can work until an operator fixes the settings; the sender falls back to the next channel.
    said = _said(response.status_code, answer)
    log.error("wechat access token refused: %s", said)
    raise PermanentFailure(f"access token: {said}")


# --- the mini-program's sign-in ----------------------------------------------------------------------


class CodeRefused(Exception):
    """WeChat did not accept a wx.login() code (used, expired, made for another app)."""


def login_configured() -> bool:
    """Whether the mini-program's app id and secret are set (sign-in with WeChat works)."""
    config = wechat_settings()
    return bool(config["app_id"] and config["secret"])


def code_to_openid(code: str) -> str:
    """The person's openid for the code the mini-program's `wx.login()` gave (code2Session:
    `GET /sns/jscode2session?appid=..&secret=..&js_code=..&grant_type=authorization_code` answers
    `{"openid", "session_key"}` or an errcode). The session key is not kept: the service needs only
    who the person is. Raises `TemporaryFailure` (busy, no answer) or `CodeRefused`."""
    config = wechat_settings()
    response = call_provider(
        lambda: httpx.get(config["api"] + LOGIN_PATH,
                          params={"appid": config["app_id"], "secret": config["secret"], "js_code": code,
                                  "grant_type": "authorization_code"},
                          timeout=httpx.Timeout(config["timeout"]), follow_redirects=False),
        "WeChat sign-in")
    answer = _json(response)
    errcode = _errcode(answer)
    if response.status_code == 429 or response.status_code >= 500 or errcode in TEMPORARY_CODES:
        raise TemporaryFailure(f"code2Session: {_said(response.status_code, answer)}")
    openid = answer.get("openid")
    if response.is_success and not errcode and isinstance(openid, str) and 0 < len(openid) <= 64:
        return openid
    log.info("wechat sign-in code refused: %s", _said(response.status_code, answer))
    raise CodeRefused(_said(response.status_code, answer))


# --- sending ------------------------------------------------------------------------------------


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        answer = response.json()
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}


def _errcode(answer: dict[str, Any]) -> int | None:
    """The answer's errcode as a number (0 for success), or None when there is none."""
    code = answer.get("errcode")
    if isinstance(code, bool):
        return None
    if isinstance(code, int):
        return code
    if isinstance(code, str) and code.lstrip("-").isdigit() and len(code) < 12:
        return int(code)
    return None


def _said(status: int, answer: dict[str, Any]) -> str:
    code, words = answer.get("errcode"), answer.get("errmsg")
    if code is None and not words:
        return f"HTTP {status}"
    return scrub(f"HTTP {status} errcode {code}: {words or ''}".rstrip(": "))


def field_limit(field_name: str) -> int:
    """WeChat's length limit for a template field, from its type ("thing1" is a thing)."""
    return FIELD_LIMITS.get(field_name.rstrip("0123456789"), DEFAULT_FIELD_LIMIT)


def cut(value: str, limit: int) -> str:
    """`value` on one line, at most `limit` characters (the last one "…" when it was cut)."""
    plain = " ".join(value.split())
    return plain if len(plain) <= limit else plain[:limit - 1].rstrip() + "…"


def template_data(message: Message, fields: dict[str, str]) -> dict[str, dict[str, str]]:
    """The template's `data`: each field from the message's parameter it names, cut to the field's limit."""
    from .sms import template_params

    params = template_params(message)
    params.setdefault("text", message.text)
    return {name: {"value": cut(params.get(param, ""), field_limit(name)) or "-"} for name, param in fields.items()}


def page_for(message: Message, template: dict[str, Any], config: dict[str, Any]) -> str:
    """The mini-program page the message opens: the template's, else the default page with the link."""
    if template["page"]:
        return template["page"]
    if message.url and config["default_page"]:
        return f"{config['default_page']}?url={quote(message.url, safe='')}"
    return config["default_page"]


def withdraw_subscription(openid: str) -> bool:
    """The person with this openid no longer takes WeChat messages (`wechat_subscribed` False).

    Flushes in the current session, never commits (the sender commits it with the row's outcome).
    Returns whether a user was changed; outside an application with a database it does nothing."""
    if not setting("SQLALCHEMY_DATABASE_URI", None):  # a script or a bare app: no user rows to change
        return False
    return set_subscription(openid, False)


class WeChatChannel:
    """WeChat mini-program subscription messages (see the module's docstring)."""

    name = NAME

    def configured(self) -> bool:
        config = wechat_settings()
        return bool(config["app_id"] and config["secret"])

    def address(self, user: Any) -> str | None:
        """The bound openid of a person who agreed to WeChat messages, else None."""
        openid = getattr(user, "wechat_openid", None)
        return openid if openid and getattr(user, "wechat_subscribed", False) else None

    def send(self, message: Message) -> Receipt:
        config = wechat_settings()
        masked = mask_openid(message.address)
        if not self.configured():
            raise PermanentFailure("WeChat is not configured")
        template = template_for(config["templates"], message, "WeChat", "WECHAT_TEMPLATES", masked)
        payload = {"touser": message.address, "template_id": template["id"],
                   "page": page_for(message, template, config), "miniprogram_state": config["state"],
                   "lang": "zh_CN", "data": template_data(message, template["fields"])}
        token = access_token(config)
        response, answer = self._post(config, token, payload, message, masked)
        if _errcode(answer) in TOKEN_CODES:
            log.info("wechat access token refused (errcode %s), fetching a new one key=%s", answer["errcode"],
                     message.key)
            token = access_token(config, stale=token)
            response, answer = self._post(config, token, payload, message, masked)
        return self._read_answer(response, answer, message, masked)

    def _post(self, config: dict[str, Any], token: str, payload: dict[str, Any], message: Message,
              masked: str) -> tuple[httpx.Response, dict[str, Any]]:
        response = call_provider(
            lambda: httpx.post(config["api"] + SEND_PATH, params={"access_token": token}, json=payload,
                               timeout=httpx.Timeout(config["timeout"]), follow_redirects=False),
            "WeChat", f"key={message.key} to={masked}")
        return response, _json(response)

    def _read_answer(self, response: httpx.Response, answer: dict[str, Any], message: Message,
                     masked: str) -> Receipt:
        status, code = response.status_code, _errcode(answer)
        said = _said(status, answer)
        if status == 429 or status >= 500 or code in TEMPORARY_CODES or code in TOKEN_CODES:
            log.warning("wechat not sent, will retry key=%s to=%s: %s", message.key, masked, said)
            raise TemporaryFailure(said)
        if response.is_success and code == 0:
            msgid = answer.get("msgid")
            provider_id = str(msgid) if isinstance(msgid, int | str) and not isinstance(msgid, bool) else ""
            provider_id = provider_id.strip()[:100] if provider_id.isprintable() else ""
            log.info("wechat sent key=%s to=%s provider_id=%s", message.key, masked, provider_id)
            return Receipt(provider_id=provider_id, answer=scrub(answer.get("errmsg") or "ok"))
        if code == REFUSED_CODE:
            withdrawn = withdraw_subscription(message.address)
            log.warning("wechat refused key=%s to=%s: %s (opt-in withdrawn: %s)", message.key, masked, said,
                        withdrawn)
            raise PermanentFailure(said)
        if response.is_success and code is None:
            said = f"HTTP {status}: unreadable answer (the message may have been taken; not retried)"
        log.warning("wechat refused key=%s to=%s: %s", message.key, masked, said)
        raise PermanentFailure(said)


# --- what WeChat pushes to /hooks/wechat/events --------------------------------------------------


def push_signature(token: str, timestamp: str, nonce: str) -> str:
    """WeChat's push signature: hex SHA-1 of the token, timestamp and nonce, sorted and joined."""
    return hashlib.sha1("".join(sorted([token, timestamp, nonce])).encode()).hexdigest()


def verify_push(args: Any, *, now: float | None = None) -> bool:
    """Whether a push (or the URL check) carries a valid, fresh signature in its query string.

    False when no WECHAT_TOKEN is set, a parameter is missing, the timestamp is not a number or
    more than WECHAT_SIGNATURE_MAX_AGE seconds away, or the signature does not match."""
    config = wechat_settings()
    if not config["token"]:
        return False
    signature, stamp, nonce = args.get("signature", ""), args.get("timestamp", ""), args.get("nonce", "")
    if not (signature and stamp and nonce) or len(nonce) > 64 or len(signature) > 64:
        return False
    if not stamp.isascii() or not stamp.isdigit() or len(stamp) > 12:
        return False
    if abs((time.time() if now is None else now) - int(stamp)) > config["max_age"]:
        return False
    return hmac.compare_digest(signature.encode(), push_signature(config["token"], stamp, nonce).encode())


def record_sent_event(msg_id: str, delivered: bool, answer: str) -> bool:
    """Record WeChat's `subscribe_msg_sent_event` on the outbox row it took as `msg_id`.

    A row in "sent" becomes "delivered" or, when WeChat could not deliver it, "given_up" with its
    status in `last_error` (as an SMS receipt: re-sending is the coordinator's choice). The first
    event wins; an unknown id or a row in another state changes nothing. Returns whether a row was
    changed. Flushes, never commits."""
    from sqlalchemy import select

    from ..db import db
    from ..models import utcnow
    from ..models.outbox import OutboxMessage, OutboxState

    if not msg_id or len(msg_id) > 100 or not msg_id.isprintable():
        return False
    row = db.session.scalars(select(OutboxMessage).where(
        OutboxMessage.channel == NAME, OutboxMessage.provider_id == msg_id)
        .order_by(OutboxMessage.id).limit(1)).first()
    if row is None or row.state != OutboxState.SENT:
        return False
    if delivered:
        row.state = OutboxState.DELIVERED
        row.delivered_at = utcnow()
    else:
        row.state = OutboxState.GIVEN_UP
        row.last_error = scrub(answer) or "failed"
    db.session.flush()
    log.info("wechat sent event provider_id=%s %s", msg_id, "delivered" if delivered else "failed")
    return True


def set_subscription(openid: str, accepted: bool) -> bool:
    """Record that the person bound to `openid` accepted (or refused) WeChat messages.

    Returns whether a user was changed (False for an openid bound to nobody, or no change).
    Flushes, never commits."""
    from sqlalchemy import select

    from ..db import db
    from ..models import User

    if not openid or len(openid) > 64 or not openid.isprintable():
        return False
    user = db.session.scalars(select(User).where(User.wechat_openid == openid)).first()
    if user is None or bool(user.wechat_subscribed) == accepted:
        return False
    user.wechat_subscribed = accepted
    db.session.flush()
    log.info("wechat opt-in of user %s: %s", user.id, "accepted" if accepted else "withdrawn")
    return True
