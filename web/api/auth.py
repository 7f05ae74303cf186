"""Signing in from the phone client: a device token for a password or a bound WeChat; the bearer check."""

from __future__ import annotations

from flask import g, request
from flask_babel import gettext as _
from marshmallow import fields, validate
from sqlalchemy import select

from matcher import tokens
from matcher.audit import record_audit
from matcher.channels import TemporaryFailure, wechat
from matcher.db import db
from matcher.models import TokenKind, User, utcnow

from . import PREFIX, Blueprint
from .problems import problem
from .schemas import Strict, TokenIssued

blp = Blueprint("api_auth", __name__, url_prefix=PREFIX + "/auth",
                description="Signing in on a phone: a device token for a password or a bound WeChat.")


def bearer_secret() -> str:
    """The token of `Authorization: Bearer <token>`, or ""."""
    scheme, _sep, secret = request.headers.get("Authorization", "").partition(" ")
    return secret.strip() if scheme.lower() == "bearer" else ""


def token_rate_key() -> str:
    """Whose requests a rate limit counts: the token's (by its hash), else the client address."""
    secret = bearer_secret()
    return "api-token:" + tokens.hash_token(secret)[:24] if secret else "api-addr:" + (request.remote_addr or "")


def authenticate():
    """Before every API request but a sign-in: the bearer token's person becomes `current_user`."""
    token = tokens.find_token(bearer_secret())
    if token is None:
        return problem(401, _("Send a valid token: Authorization: Bearer lnl_... (it may have expired or been "
                              "revoked)."), headers={"WWW-Authenticate": 'Bearer realm="linli"'})
    if db.session.dirty:  # last_used_at (at most every few minutes)
        db.session.commit()
    g.api_token = token
    g._login_user = token.user  # Flask-Login's current_user, without a session cookie


class PasswordSignIn(Strict):
    username = fields.String(required=True, validate=validate.Length(min=1, max=64),
                             metadata={"description": "Username or 11-digit mainland mobile."})
    password = fields.String(required=True, load_only=True, validate=validate.Length(min=1, max=256))
    device = fields.String(load_default="", validate=validate.Length(max=60),
                           metadata={"description": "What the phone is called, shown on the token list."})


class WechatSignIn(Strict):
    code = fields.String(required=True, validate=validate.Length(min=1, max=128),
                         metadata={"description": "The code of wx.login() in the mini-program."})
    device = fields.String(load_default="", validate=validate.Length(max=60))


def device_name(raw: str) -> str:
    name = "".join(ch for ch in (raw or "").strip() if ch.isprintable())[:60]
    return name or _("Phone")


def issue_device_token(user: User, device: str):
    token, secret = tokens.issue_token(user, kind=TokenKind.DEVICE, name=device_name(device))
    db.session.commit()
    token.token = secret  # shown once, in this answer only
    return token


@blp.route("/token", methods=["POST"])
@blp.doc(security=[], summary="Sign in with a password: a device token")
@blp.arguments(PasswordSignIn)
@blp.response(201, TokenIssued)
def password_token(data):
    """The phone client signs in with the person's username (or mobile) and password and receives a
    device token with every scope the person's role allows, for 90 days. Guesses are throttled as on the
    sign-in page (per address and per account); a locked account is told so only with the right password."""
    from ..auth import sign_in_attempt, too_many_message

    attempt = sign_in_attempt(data["username"], data["password"], via="api")
    if attempt.outcome == "throttled":
        return problem(429, too_many_message(attempt.verdict),
                       headers={"Retry-After": str(attempt.verdict.retry_after)})
    if attempt.outcome == "locked":
        return problem(403, _("This account is locked. Please contact your coordinator."))
    if attempt.outcome == "failed":
        return problem(401, _("Wrong username or password."), errors={"password": _("Wrong username or password.")})
    return issue_device_token(attempt.user, data["device"])


@blp.route("/wechat", methods=["POST"])
@blp.doc(security=[], summary="Sign in with WeChat: a device token for a bound account")
@blp.arguments(WechatSignIn)
@blp.response(201, TokenIssued)
def wechat_token(data):
    """The mini-program's `wx.login()` code is exchanged with WeChat for the person's openid; an account
    bound to it (PUT /api/v1/me/wechat) receives a device token. An unbound WeChat gets 401: sign in with
    the password once and bind it."""
    openid = exchange_code(data["code"])
    if not isinstance(openid, str):
        return openid
    user = db.session.scalar(select(User).where(User.wechat_openid == openid))
    if user is None or not user.active:
        return problem(401, _("This WeChat is not bound to an active account: sign in with your password once "
                              "and bind it."), errors={"code": _("Not bound to an account.")})
    user.last_login_at = utcnow()
    record_audit(user, "login", user, via="wechat")
    return issue_device_token(user, data["device"])


def exchange_code(code: str):
    """The openid for a wx.login() code, or a problem response saying why not."""
    if not wechat.login_configured():
        return problem(503, _("WeChat sign-in is not set up on this service."))
    try:
        return wechat.code_to_openid(code)
    except TemporaryFailure:
        return problem(503, _("WeChat did not answer; try again in a moment."), headers={"Retry-After": "5"})
    except wechat.CodeRefused:
        return problem(400, _("WeChat did not accept this code (it is used once and lasts five minutes): "
                              "call wx.login() again."), errors={"code": _("Not accepted by WeChat.")})

