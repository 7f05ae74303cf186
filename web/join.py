"""People in: registering as a volunteer, invitations by link, activating a pre-registered account.

Public pages (phone first): `/register`, `/join/<token>` (the registration form of an invitation)
and `/activate/<token>`. An organization's leader or a community worker makes invitation links on
`/invitations`; a leader, a worker, a coordinator or an administrator makes an activation link from a
volunteer's record. A link's token is shown once, on the page that made it (with a QR code), and
never written to a log or the audit trail: the database keeps its hash (`matcher.links`), and
gunicorn's access log shows these paths with the token taken out (`gunicorn.conf.py`).

Usernames of self-registered volunteers are their mobile's 11 digits (they sign in with their phone).
"""

from __future__ import annotations

import re

import segno
from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import format_datetime
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_user
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from matcher import links, rules, volunteers
from matcher.access import load_visible
from matcher.db import db
from matcher.errors import Conflict, NotFound, ValidationError
from matcher.models import (
    AccountLink,
    Area,
    AreaLevel,
    LinkPurpose,
    Organization,
    Role,
    Skill,
    Volunteer,
    utcnow,
)

from .auth import roles_required, rotate_csrf_token, too_many_message, with_retry_after

bp = Blueprint("join", __name__)

STATE_LABELS = {"open": _l("Not used yet"), "used": _l("Used"), "revoked": _l("Revoked"), "expired": _l("Expired")}


@bp.app_template_filter("beijing")
def beijing(moment) -> str:
    """A UTC timestamp in the service's time zone (Beijing time)."""
    return format_datetime(moment, "yyyy-MM-dd HH:mm") if moment else "–"


def link_url(purpose: LinkPurpose, token: str) -> str:
    """The absolute address of an invitation or activation link."""
    endpoint = "join.activate" if purpose == LinkPurpose.ACTIVATE else "join.join"
    return url_for(endpoint, token=token, _external=True)


def qr_svg(url: str) -> str:
    """The link as an inline SVG QR code (segno, from our own URL: the only markup marked safe)."""
    return segno.make(url, error="m").svg_inline(scale=4, title=_("One-time link"))


def _serves(org: Organization, community: Area) -> bool:
    """Python twin of `access.serving_organizations` for the form's filter (the server checks again)."""
    if org.home_area.path.startswith(community.path):
        return True
    return any(a.path.startswith(community.path) or community.path.startswith(a.path) for a in org.areas)


def _form_choices(link: AccountLink | None) -> dict:
    """Streets with their communities, the organizations (with the communities each serves), skills."""
    communities = db.session.scalars(select(Area).where(Area.level == AreaLevel.COMMUNITY)
                                     .options(selectinload(Area.parent)).order_by(Area.path)).all()
    if link is not None and link.area is not None:
        communities = [c for c in communities if c.id == link.area_id]
    streets: dict[int, tuple[Area, list[Area]]] = {}
    for c in communities:
        streets.setdefault(c.parent_id or 0, (c.parent, []))[1].append(c)
    organizations = [] if link is not None and link.organization is not None else db.session.scalars(
        select(Organization).options(selectinload(Organization.areas), selectinload(Organization.home_area))
        .order_by(Organization.name)).all()
    serves = {o.id: " ".join(str(c.id) for c in communities if _serves(o, c)) for o in organizations}
    organizations = [o for o in organizations if serves[o.id]]
    skills = db.session.scalars(select(Skill).order_by(Skill.code)).all()
    return {"streets": list(streets.values()), "organizations": organizations, "serves": serves,
            "skills": skills}


def _form_data() -> dict:
    """The registration form as `volunteers.register_volunteer` reads it (lists for repeated fields)."""
    data = request.form.to_dict()
    for key in ("skills", "organizations", "slot_day", "slot_start", "slot_end"):
        data[key] = request.form.getlist(key)
    return data


def _render_register(link: AccountLink | None, token: str | None, errors=None, status=200):
    values = _form_data() if request.method == "POST" else {}
    values.pop("password", None)
    values.pop("repeat", None)
    sent = volunteers.submitted_rows(request.form)[0] if request.method == "POST" else []
    return render_template("join/register.html", link=link, token=token, errors=errors or {}, values=values,
                           slot_rows_sent=sent, **_form_choices(link)), status


def _register(link: AccountLink | None, token: str | None):
    if request.method == "GET":
        return _render_register(link, token)
    verdict = volunteers.registration_allowed(request.remote_addr or "")
    if not verdict.allowed:
        flash(too_many_message(verdict), "error")
        response = current_app.make_response(_render_register(link, token))
        return with_retry_after(response, verdict)
    try:
        volunteer = volunteers.register_volunteer(_form_data(), link=link)
    except ValidationError as exc:
        db.session.rollback()
        return _render_register(link, token, exc.errors, 400)
    account = volunteer.user
    account.last_login_at = utcnow()  # they are signed in now (the accounts pages show it)
    db.session.commit()
    login_user(account)
    rotate_csrf_token()
    # Whose approval they wait for is said by the offers page itself (every time), not twice here.
    flash(_("Welcome! You sign in with your phone number."), "success")
    return redirect(url_for("volunteer.offers"))


@bp.route("/register", methods=["GET", "POST"])
def register():
    """Register as a volunteer: name, mobile, password, home, skills, free time, organizations."""
    if current_user.is_authenticated:
        return redirect(url_for("main.dashboard"))
    return _register(None, None)


def _open(token: str, purpose: LinkPurpose) -> AccountLink:
    link = links.open_link(token, purpose)
    if link is None:
        raise NotFound(_("This link does not work (any more): it was used, revoked or has expired. "
                         "Ask the person who gave it to you for a new one."))
    return link


@bp.route("/join/<token>", methods=["GET", "POST"])
def join(token: str):
    """The registration form of an invitation: the organization (or community) is filled in."""
    if current_user.is_authenticated:
        flash(_("You are signed in already; sign out to use an invitation."), "info")
        return redirect(url_for("main.dashboard"))
    return _register(_open(token, LinkPurpose.INVITE), token)


@bp.route("/activate/<token>", methods=["GET", "POST"])
def activate(token: str):
    """A pre-registered volunteer confirms their phone's last four digits and sets a password."""
    if current_user.is_authenticated:
        flash(_("You are signed in already; sign out to use an activation link."), "info")
        return redirect(url_for("main.dashboard"))
    link = _open(token, LinkPurpose.ACTIVATE)
    volunteer = links.activation_volunteer(link)
    if volunteer is None:
        raise NotFound(_("This link does not work (any more)."))
    errors: dict[str, str] = {}
    if request.method == "POST":
        try:
            account = links.activate_account(link, request.form,
                                              min_length=current_app.config["PASSWORD_MIN_LENGTH"])
        except ValidationError as exc:
            db.session.rollback()
            errors = exc.errors
            # Four digits that are not theirs count as a guess; anything else is only a typing slip.
            if "phone_last4" in errors and re.fullmatch(r"[0-9]{4}", request.form.get("phone_last4", "").strip()):
                still_open = links.activation_failed(link)
                db.session.commit()
                if not still_open:
                    raise NotFound(_("Too many wrong attempts: this link no longer works. Ask for a new one.")) from None
        except Conflict as exc:
            db.session.rollback()
            raise NotFound(exc.message) from None
        else:
            account.last_login_at = utcnow()
            db.session.commit()
            login_user(account)
            rotate_csrf_token()
            flash(_("Your account is active. You sign in with your mobile number %(p)s (or the username %(u)s).",
                    p=rules.national_phone(volunteer.phone), u=account.username), "success")
            return redirect(url_for("main.dashboard"))
    hint = volunteer.real_name[:1] + "*" * max(1, len(volunteer.real_name) - 1)
    return render_template("join/activate.html", hint=hint, errors=errors,
                           values=request.form if request.method == "POST" else {}), 400 if errors else 200


# --- making links -----------------------------------------------------------------------------


def _render_invitations(errors=None, status=200, made=None):
    made_url = link_url(LinkPurpose.INVITE, made[1]) if made else None
    return render_template("join/invitations.html", links=links.own_links(current_user, LinkPurpose.INVITE),
                           errors=errors or {}, made=made[0] if made else None, made_url=made_url,
                           state_labels=STATE_LABELS,
                           qr=qr_svg(made_url) if made_url else None,
                           where=current_user.organization if current_user.role == Role.ORG_LEADER
                           else current_user.area), status


@bp.route("/invitations", methods=["GET", "POST"])
@roles_required(Role.ORG_LEADER, Role.WORKER)
def invitations():
    """Invitation links: make one (shown once, with a QR code), the list of one's own, revoke."""
    if request.method == "GET":
        return _render_invitations()
    try:
        made = links.make_invitation(user=current_user, note=request.form.get("note", ""))
    except ValidationError as exc:
        db.session.rollback()
        return _render_invitations(exc.errors, 400)
    db.session.commit()
    return _render_invitations(made=made)


@bp.route("/invitations/<int:link_id>/revoke", methods=["POST"])
@roles_required(Role.ORG_LEADER, Role.WORKER)
def revoke(link_id: int):
    """Revoke one's own invitation link (it opens nothing any more)."""
    link = links.load_own_link(link_id, current_user)
    if link.purpose != LinkPurpose.INVITE:
        raise NotFound(_("No such link."))
    links.revoke_link(link, user=current_user)
    db.session.commit()
    flash(_("The link was revoked."), "success")
    return redirect(url_for("join.invitations"))


@bp.route("/volunteers/<int:volunteer_id>/activation-link", methods=["POST"])
@roles_required(*links.ACTIVATORS)
def activation_link(volunteer_id: int):
    """Make an activation link for a volunteer whose account has no password yet (shown once)."""
    volunteer = load_visible(Volunteer, volunteer_id, current_user)
    try:
        link, token = links.make_activation_link(volunteer, user=current_user)
    except Conflict as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("directory.volunteer", volunteer_id=volunteer.id))
    db.session.commit()
    url = link_url(LinkPurpose.ACTIVATE, token)
    return render_template("join/activation_link.html", volunteer=volunteer, link=link, url=url, qr=qr_svg(url),
                           masked=rules.mask_phone(volunteer.phone))


@bp.app_context_processor
def people_in_helpers() -> dict:
    """For the volunteer pages: whether to offer an activation link, whether a child's details are hidden."""

    def can_make_activation_link(volunteer: Volunteer) -> bool:
        return (current_user.is_authenticated and current_user.role in links.ACTIVATORS
                and links.can_activate(volunteer))

    def child_hidden(volunteer: Volunteer) -> bool:
        """A child's (under 14) contact details are shown only to the organization leader and coordinators."""
        if not current_user.is_authenticated or volunteer.user_id == current_user.id:
            return False
        return (current_user.role not in (Role.ADMIN, Role.COORDINATOR, Role.ORG_LEADER)
                and volunteers.is_child(volunteer))

    return {"can_make_activation_link": can_make_activation_link, "child_hidden": child_hidden}
