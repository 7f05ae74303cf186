"""Accounts, for administrators and coordinators: the list, an account's page and its actions, and the
public page where a person sets a new password through a one-time reset link.

Who manages whom is `matcher.accounts` (`manageable`, `load_manageable`, `assignable_roles`): an
account out of the user's scope is a 404. Every action is one use case there, audited. A one-time
link's token is shown once, on the page that answers the POST that made it (never in a redirect, a
flash message, a log line or the audit trail), with a QR code to hand over in person.
"""

from __future__ import annotations

import segno
from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import format_datetime
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, logout_user
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import selectinload
from werkzeug.routing import BuildError

from matcher import throttle
from matcher.accounts import (
    ACCOUNT_STATES,
    account_query,
    account_state,
    assignable_areas,
    assignable_organizations,
    assignable_roles,
    change_account,
    create_account,
    load_manageable,
    lock_account,
    make_password_link,
    open_links,
    reset_password,
    revoke_links,
    unlock_account,
)
from matcher.audit import record_audit
from matcher.db import db
from matcher.errors import ValidationError
from matcher.links import open_link
from matcher.models import AccountLink, AreaLevel, AuditEntry, LinkPurpose, Role, User, Volunteer

from .admin import action_label, detail_lines
from .auth import roles_required, too_many_message, with_retry_after
from .inputs import int_arg, page_arg, text_arg

bp = Blueprint("accounts", __name__)

STATE_LABELS = {"active": _l("Active"), "locked": _l("Locked"), "not_activated": _l("Not activated")}
RECENT_ENTRIES = 20
# Attempts at setting a password through reset links, per address (a guess at a token is a guess).
RESET_THROTTLE_SCOPE = "reset"


def when(moment) -> str:
    """A UTC timestamp in the service's time zone (Beijing time), or a dash."""
    return format_datetime(moment, "yyyy-MM-dd HH:mm") if moment else "–"


def link_url(purpose: LinkPurpose, token: str) -> str:
    """The absolute address of a one-time link (the activation page belongs to the registration pages)."""
    if purpose == LinkPurpose.RESET:
        return url_for("accounts.reset", token=token, _external=True)
    for rule in current_app.url_map.iter_rules():
        if rule.rule == "/activate/<token>":
            try:
                return url_for(rule.endpoint, token=token, _external=True)
            except BuildError:
                break
    return url_for("main.index", _external=True).rstrip("/") + f"/activate/{token}"


def qr_svg(url: str) -> str:
    """The link as an inline SVG QR code (segno, generated from our own URL: the only markup marked safe)."""
    return segno.make(url, error="m").svg_inline(scale=4, title=_("One-time link"))


def _choices():
    areas = assignable_areas(current_user)
    return {
        "roles": assignable_roles(current_user),
        "areas": areas,
        "filter_areas": [a for a in areas if a.level != AreaLevel.COMMUNITY] or areas,
        "organizations": assignable_organizations(current_user),
    }


# --- the list ------------------------------------------------------------------------------


@bp.route("/accounts")
@roles_required(Role.ADMIN, Role.COORDINATOR)
def index():
    """The accounts the user manages: search by name, username or phone digits; filter by role, area, state."""
    q = text_arg("q")
    role = text_arg("role", 24)
    state = text_arg("state", 24)
    area_id = int_arg(request.args, "area")
    if area_id is None and text_arg("area", 40):
        raise ValidationError({"area": _("Choose an area from the list.")})
    stmt = account_query(current_user, q=q, role=role, area_id=area_id, state=state).options(
        selectinload(User.area), selectinload(User.organization),
        selectinload(User.volunteer).selectinload(Volunteer.home_area))
    page = db.paginate(stmt, page=page_arg(), per_page=current_app.config["PAGE_SIZE"], max_per_page=100,
                       error_out=False)
    return render_template("accounts/index.html", page=page, q=q, filters={"role": role, "area": area_id,
                           "state": state}, states=ACCOUNT_STATES, state_labels=STATE_LABELS,
                           account_state=account_state, when=when, all_roles=list(Role), **_choices())


# --- one account ---------------------------------------------------------------------------


def render_account(account: User, *, errors: dict | None = None, values=None, shown_link: tuple | None = None,
                   status: int = 200):
    """The account's page: role, place, state, last sign-in, open links, recent audit entries, actions."""
    about_links = and_(AuditEntry.object_type == "accountlink",
                       AuditEntry.object_id.in_(select(AccountLink.id).where(AccountLink.user_id == account.id)))
    entries = db.session.scalars(
        select(AuditEntry).where(or_(and_(AuditEntry.object_type == "user", AuditEntry.object_id == account.id),
                                     about_links))
        .options(selectinload(AuditEntry.user)).order_by(AuditEntry.id.desc()).limit(RECENT_ENTRIES)).all()
    link_view = None
    if shown_link is not None:
        link, token = shown_link
        url = link_url(link.purpose, token)
        link_view = {"purpose": link.purpose.value, "url": url, "qr": qr_svg(url), "expires": when(link.expires_at)}
    return render_template(
        "accounts/view.html", account=account, state=account_state(account), state_labels=STATE_LABELS,
        entries=entries, links=open_links(account), errors=errors or {}, values=values or {},
        shown_link=link_view, when=when, action_label=action_label, detail_lines=detail_lines,
        is_self=account.id == current_user.id, **_choices()), status


@bp.route("/accounts/<int:user_id>")
@roles_required(Role.ADMIN, Role.COORDINATOR)
def view(user_id: int):
    """One account the user manages."""
    return render_account(load_manageable(user_id, current_user))


@bp.route("/accounts/new", methods=["GET", "POST"])
@roles_required(Role.ADMIN, Role.COORDINATOR)
def new():
    """Create a staff account; the answer shows its one-time activation link (once) to hand over."""
    errors: dict[str, str] = {}
    if request.method == "POST":
        try:
            account, link, token = create_account(current_user, request.form)
        except ValidationError as exc:
            db.session.rollback()
            errors = exc.errors
        else:
            db.session.commit()
            flash(_("Account created. Hand the one-time link below to the person: it is shown only now."), "success")
            return render_account(account, shown_link=(link, token))
    return render_template("accounts/new.html", errors=errors, values=request.form, **_choices()), \
        400 if errors else 200


@bp.route("/accounts/<int:user_id>/edit", methods=["POST"])
@roles_required(Role.ADMIN, Role.COORDINATOR)
def edit(user_id: int):
    """Change the account's role and its area or organization."""
    account = load_manageable(user_id, current_user)
    try:
        changed = change_account(current_user, account, request.form)
    except ValidationError as exc:
        db.session.rollback()
        return render_account(account, errors=exc.errors, values=request.form, status=400)
    db.session.commit()
    flash(_("Account changed.") if changed else _("Nothing to change."), "success" if changed else "info")
    return redirect(url_for("accounts.view", user_id=account.id))


@bp.route("/accounts/<int:user_id>/lock", methods=["POST"])
@roles_required(Role.ADMIN, Role.COORDINATOR)
def lock(user_id: int):
    """Lock the account (a reason is required): it cannot sign in and its sessions and links end."""
    account = load_manageable(user_id, current_user)
    try:
        lock_account(current_user, account, request.form.get("reason"))
    except ValidationError as exc:
        db.session.rollback()
        return render_account(account, errors=exc.errors, values=request.form, status=400)
    db.session.commit()
    flash(_("Account locked: it is signed out everywhere and cannot sign in."), "success")
    return redirect(url_for("accounts.view", user_id=account.id))


@bp.route("/accounts/<int:user_id>/unlock", methods=["POST"])
@roles_required(Role.ADMIN, Role.COORDINATOR)
def unlock(user_id: int):
    """Let a locked account sign in again."""
    account = load_manageable(user_id, current_user)
    try:
        unlock_account(current_user, account)
    except ValidationError as exc:
        db.session.rollback()
        return render_account(account, errors=exc.errors, status=400)
    db.session.commit()
    flash(_("Account unlocked."), "success")
    return redirect(url_for("accounts.view", user_id=account.id))


@bp.route("/accounts/<int:user_id>/link", methods=["POST"])
@roles_required(Role.ADMIN, Role.COORDINATOR)
def make_link(user_id: int):
    """Make a one-time link to set a password (activation or reset), shown once on the page that answers."""
    account = load_manageable(user_id, current_user)
    try:
        link, token = make_password_link(current_user, account)
    except ValidationError as exc:
        db.session.rollback()
        return render_account(account, errors=exc.errors, status=400)
    db.session.commit()
    return render_account(account, shown_link=(link, token))


@bp.route("/accounts/<int:user_id>/revoke", methods=["POST"])
@roles_required(Role.ADMIN, Role.COORDINATOR)
def revoke(user_id: int):
    """Revoke the account's open activation and reset links."""
    account = load_manageable(user_id, current_user)
    count = revoke_links(current_user, account)
    db.session.commit()
    flash(_("%(n)d link(s) revoked.", n=count) if count else _("There were no open links."), "success")
    return redirect(url_for("accounts.view", user_id=account.id))


# --- the public reset page -----------------------------------------------------------------


class ResetAttempt:
    """The audit trail's object for throttled reset attempts (the token names no row worth naming)."""

    id = None


def _reset_guess() -> throttle.Verdict:
    """Count one visit of a reset link from this address (on the sign-in limits per address): opening
    the page and sending it each count, so nobody tries tokens or passwords at speed."""
    rules = throttle.parse_rules(current_app.config.get("RATELIMIT_LOGIN", "10 per minute;50 per hour"))
    return throttle.hit([throttle.bucket(RESET_THROTTLE_SCOPE, "address", request.remote_addr or "-", rules)])


def _bad_link():
    return render_template("accounts/reset.html", link=None, errors={}), 404


@bp.route("/reset/<token>", methods=["GET", "POST"])
def reset(token: str):
    """Set a new password through a one-time reset link: it works once, until it expires; every
    other session of the account ends. Unknown, used, revoked and expired links get one message."""
    verdict = _reset_guess()
    if not verdict.allowed:
        if verdict.first_refusal:  # one entry per closed window
            record_audit(None, "reset_throttled", ResetAttempt())
            db.session.commit()
        return with_retry_after(current_app.make_response(render_template(
            "accounts/reset.html", link=None, errors={"password": too_many_message(verdict)})), verdict)
    link = open_link(token, LinkPurpose.RESET)
    if link is None or link.user is None or not link.user.active:
        return _bad_link()
    errors: dict[str, str] = {}
    if request.method == "POST":
        try:
            account = reset_password(link, request.form.get("password"), request.form.get("repeat"),
                                     current_app.config["PASSWORD_MIN_LENGTH"])
        except ValidationError as exc:
            db.session.rollback()
            errors = exc.errors
        else:
            db.session.commit()
            if current_user.is_authenticated and current_user.id == account.id:
                logout_user()
            flash(_("Password set. Sign in with the new one."), "success")
            return redirect(url_for("auth.login"))
    return render_template("accounts/reset.html", link=link, errors=errors), 400 if errors else 200
