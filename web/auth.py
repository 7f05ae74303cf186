"""Login, logout, language choice and the role checks every view uses."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import wraps
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_fresh, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, StringField
from wtforms.validators import DataRequired, Length

from matcher import throttle
from matcher.accounts import check_password, end_sessions, find_account, set_password
from matcher.audit import record_audit
from matcher.db import db
from matcher.errors import ValidationError
from matcher.fields import has_control
from matcher.models import Role, User, utcnow

from .extensions import login_manager
from .i18n import LOCALE_COOKIE

bp = Blueprint("auth", __name__)


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    """Load the user from the session id '<id>:<session token>'; a rotated token ends the session."""
    uid, _sep, token = user_id.partition(":")
    if not uid.isdigit() or not token:
        return None
    user = db.session.get(User, int(uid))
    if user is None or not user.active or user.session_token != token:
        return None
    return user


def roles_required(*roles: Role):
    """Allow the view only to logged-in users with one of `roles`."""

    def decorate(view):
        @wraps(view)
        @login_required
        def wrapper(*args, **kwargs):
            if current_user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return wrapper

    return decorate


def safe_next(target: str | None) -> str | None:
    """Only same-site relative paths are followed after login (no open redirect)."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    return target


class LoginForm(FlaskForm):
    username = StringField(_l("Username or mobile number"), validators=[DataRequired(), Length(max=64)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=256)])
    remember = BooleanField(_l("Keep me signed in on this device"))


@dataclass
class SignIn:
    """How a sign-in attempt ended: "ok" (with the user), "throttled" (with the verdict), "locked" or "failed"."""

    outcome: str
    user: User | None = None
    verdict: throttle.Verdict | None = None


def sign_in_attempt(username: str, password: str, *, via: str) -> SignIn:
    """Check a username (or mobile) and password as every sign-in does (the page, the API's device tokens).

    Guesses are throttled per address and per account; always one argon2 verification, whether the
    account exists, is active or not; only someone who knows the password learns that the account is
    locked. Records the audit entries and commits them; on success notes the time of the login.
    """
    username = (username or "").strip()
    if has_control(username):  # no account has such a name (and NUL cannot reach the database)
        username = "".join(ch for ch in username if not has_control(ch))
    address = request.remote_addr or ""
    user = find_account(username)
    extra = {} if via == "web" else {"via": via}
    verdict = throttle.password_guess(address, username)
    if not verdict.allowed:
        if verdict.first_refusal:  # one entry per closed window, not one per hammering request
            record_audit(None, "login_throttled", user or NoSuchUser(), username=username, **extra)
            db.session.commit()
        current_app.logger.info("login throttled for %d s", verdict.retry_after)
        return SignIn("throttled", verdict=verdict)
    password_ok = check_password(user, password or "")
    if user is not None and not user.active and password_ok:
        record_audit(None, "login_locked", user, username=username, **extra)
        db.session.commit()
        return SignIn("locked")
    if user is None or not user.active or not password_ok:
        record_audit(None, "login_failed", user or NoSuchUser(), username=username, **extra)
        db.session.commit()
        return SignIn("failed")
    throttle.password_accepted(address, username)
    user.last_login_at = utcnow()
    record_audit(user, "login", user, **extra)
    db.session.commit()
    return SignIn("ok", user=user)


class NoSuchUser:
    """The audit trail's object for a sign-in that named no account (there is no row to point at)."""

    id = None


def too_many_message(verdict: throttle.Verdict) -> str:
    return _("Too many attempts. Please wait %(minutes)d min and try again.",
             minutes=max(1, math.ceil(verdict.retry_after / 60)))


def with_retry_after(response, verdict: throttle.Verdict):
    """A 429 answer that says when to come back."""
    response.status_code = 429
    response.headers["Retry-After"] = str(verdict.retry_after)
    return response


def rotate_csrf_token() -> None:
    """A new CSRF token after signing in: one seen before the login must not work after it."""
    name = current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token")
    session.pop(name, None)
    g.pop(name, None)


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Sign in with username and password; guesses are throttled per address and per account."""
    if current_user.is_authenticated and login_fresh():
        return redirect(url_for("main.dashboard"))
    form = LoginForm()
    if form.validate_on_submit():
        attempt = sign_in_attempt(form.username.data, form.password.data, via="web")
        if attempt.outcome == "throttled":
            flash(too_many_message(attempt.verdict), "error")
            return with_retry_after(current_app.make_response(render_template("auth/login.html", form=form)),
                                    attempt.verdict)
        if attempt.outcome == "locked":
            flash(_("This account is locked. Please contact your coordinator."), "error")
            return render_template("auth/login.html", form=form), 403
        if attempt.outcome == "failed":
            flash(_("Wrong username or password."), "error")
            return render_template("auth/login.html", form=form), 401
        user = attempt.user
        login_user(user, remember=form.remember.data)
        rotate_csrf_token()
        return redirect(safe_next(request.args.get("next")) or url_for("main.dashboard"))
    return render_template("auth/login.html", form=form)


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    """Sign out here and everywhere: the session token is rotated, so old cookies stop working.

    The calendar feed address stays (phones subscribed to it keep working); a password change
    gives it a new one.
    """
    end_sessions(current_user)
    db.session.commit()
    logout_user()
    flash(_("You are signed out."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/language/<code>", methods=["POST"])
def language(code: str):
    """Switch the interface language (saved on the account when signed in)."""
    if code not in current_app.config["LANGUAGES"]:
        abort(404)
    if current_user.is_authenticated:
        current_user.locale = code
        db.session.commit()
    target = safe_next(request.form.get("next")) or url_for("main.dashboard")
    response = redirect(target)
    response.set_cookie(LOCALE_COOKIE, code, max_age=365 * 86400, samesite="Lax",
                        secure=current_app.config["SESSION_COOKIE_SECURE"], httponly=True)
    return response


class PasswordForm(FlaskForm):
    current = PasswordField(_l("Current password"), validators=[DataRequired(), Length(max=256)])
    new = PasswordField(_l("New password"), validators=[DataRequired(), Length(max=256)])
    repeat = PasswordField(_l("New password again"), validators=[DataRequired(), Length(max=256)])


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def change_password():
    """Change one's password; every session of the account ends, this one included.

    The current password is a guess like a sign-in's: throttled on the same counters.
    """
    form = PasswordForm()
    errors: dict[str, str] = {}
    if form.validate_on_submit():
        address, username = request.remote_addr or "", current_user.username
        verdict = throttle.password_guess(address, username)
        if not verdict.allowed:
            if verdict.first_refusal:
                record_audit(current_user, "change_password_throttled", current_user)
                db.session.commit()
            errors["current"] = too_many_message(verdict)
            return with_retry_after(current_app.make_response(
                render_template("auth/password.html", form=form, errors=errors)), verdict)
        if not check_password(current_user, form.current.data):
            record_audit(current_user, "change_password_failed", current_user)
            db.session.commit()
            errors["current"] = _("The current password is wrong.")
            return render_template("auth/password.html", form=form, errors=errors), 400
        throttle.password_accepted(address, username)
        if form.new.data != form.repeat.data:
            errors["repeat"] = _("The two new passwords differ.")
        else:
            try:
                set_password(current_user, form.new.data, current_app.config["PASSWORD_MIN_LENGTH"])
            except ValidationError as exc:
                errors["new"] = exc.errors["password"]
            else:
                record_audit(current_user, "change_password", current_user)
                db.session.commit()
                logout_user()
                flash(_("Password changed. Sign in with the new one."), "success")
                return redirect(url_for("auth.login"))
        db.session.rollback()
    elif request.method == "POST":
        errors = {name: " ".join(str(e) for e in field.errors) for name, field in form._fields.items() if field.errors}
    return render_template("auth/password.html", form=form, errors=errors), 400 if errors else 200
