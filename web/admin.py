"""Administration: the catalogue of categories and skills, the audit log, and the message templates."""

from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import format_datetime
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from matcher.catalogue import create_skill, update_category
from matcher.db import db
from matcher.errors import NotFound, ValidationError
from matcher.fields import parse_iso_date
from matcher.models import (
    Area,
    Assignment,
    AuditEntry,
    Category,
    Demand,
    DemandOccurrence,
    Membership,
    Organization,
    Role,
    Schedule,
    Skill,
    User,
    Volunteer,
)
from matcher.notice_templates import LOCALES, SAMPLE_URL, channel_states, preview_all, sign_name

from .auth import roles_required
from .inputs import page_arg, text_arg
from .templating import label, local_name

bp = Blueprint("admin", __name__, url_prefix="/admin")


def _catalogue(errors=None, values=None, status=200):
    categories = db.session.scalars(select(Category).options(selectinload(Category.skills)).order_by(Category.id)).all()
    skills = db.session.scalars(select(Skill).order_by(Skill.code)).all()
    return render_template("admin/catalogue.html", categories=categories, skills=skills, errors=errors or {},
                           values=values or {}), status


@bp.route("/catalogue")
@roles_required(Role.ADMIN)
def catalogue():
    """Categories with their defaults and skills; the skill list with a form to add one."""
    return _catalogue()


@bp.route("/skills", methods=["POST"])
@roles_required(Role.ADMIN)
def new_skill():
    """Add a skill."""
    try:
        create_skill(request.form, user=current_user)
    except ValidationError as exc:
        db.session.rollback()
        return _catalogue(exc.errors, request.form.to_dict(), 400)
    db.session.commit()
    flash(_("Skill added."), "success")
    return redirect(url_for("admin.catalogue"))


@bp.route("/categories/<int:category_id>", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def category(category_id: int):
    """Edit a category's names, defaults and required skills."""
    item = db.session.get(Category, category_id)
    if item is None:
        raise NotFound(_("No such category."))
    errors: dict[str, str] = {}
    if request.method == "POST":
        data = request.form.to_dict()
        data["skills"] = request.form.getlist("skills")
        try:
            update_category(item, data, user=current_user)
        except ValidationError as exc:
            db.session.rollback()
            errors = exc.errors
        else:
            db.session.commit()
            flash(_("Category saved."), "success")
            return redirect(url_for("admin.catalogue"))
    skills = db.session.scalars(select(Skill).order_by(Skill.code)).all()
    return render_template("admin/category.html", category=item, skills=skills, errors=errors,
                           values=request.form if request.method == "POST" else None), 400 if errors else 200


# Every action code the code writes to the audit log (`record_audit(` in matcher/ and web/).
ACTION_LABELS = {
    "create": _l("Created"), "update": _l("Changed"), "cancel": _l("Cancelled"),
    "accept": _l("Accepted an offer"), "decline": _l("Declined an offer"),
    "check_in": _l("Checked in"), "check_out": _l("Checked out"),
    "checkin_failed": _l("Check-in code refused"), "checkin_throttled": _l("Check-in refused: too many attempts"),
    "confirm_service": _l("Confirmed a service"), "rate": _l("Rated a service"),
    "hand_back": _l("Handed back a service"), "swap": _l("Swapped a member"),
    "approve_member": _l("Approved a member"), "reject_member": _l("Rejected a member"),
    "update_profile": _l("Updated the volunteer profile"),
    "regenerate_calendar_token": _l("Renewed the calendar address"),
    "solve": _l("Started a solve"), "give_up_run": _l("Gave up a solve run"), "apply_run": _l("Applied a solve run"),
    "publish": _l("Published a schedule"), "assign": _l("Assigned by hand"), "remove": _l("Removed an assignment"),
    "pin": _l("Pinned an assignment"), "unpin": _l("Unpinned an assignment"),
    "login": _l("Signed in"), "login_failed": _l("Sign-in failed"),
    "token_create": _l("Made an API token"), "token_revoke": _l("Revoked an API token"),
    "wechat_bind": _l("Bound WeChat"), "wechat_unbind": _l("Unbound WeChat"),
    "login_throttled": _l("Sign-in refused: too many attempts"),
    "change_password": _l("Changed the password"), "change_password_failed": _l("Password change failed"),
    "change_password_throttled": _l("Password change refused: too many attempts"),
    "reveal_phone": _l("Revealed a phone number"), "export_instance": _l("Exported a solver instance"),
    "create_account": _l("Created an account"), "change_account": _l("Changed an account's role or place"),
    "lock_account": _l("Locked an account"), "unlock_account": _l("Unlocked an account"),
    "login_locked": _l("Sign-in refused: account locked"),
    "make_reset_link": _l("Made a password reset link"), "revoke_reset_link": _l("Revoked a password reset link"),
    "reset_password": _l("Set a new password through a reset link"),
    "reset_throttled": _l("Reset link refused: too many attempts"),
    "register": _l("Registered as a volunteer"), "apply_member": _l("Applied to join an organization"),
    "make_invite_link": _l("Made an invitation link"), "revoke_invite_link": _l("Revoked an invitation link"),
    "use_invite_link": _l("Registered through an invitation link"),
    "make_activate_link": _l("Made an activation link"), "revoke_activate_link": _l("Revoked an activation link"),
    "activate_account": _l("Activated the account"), "activation_failed": _l("Activation refused: wrong phone digits"),
    "record_guardian_consent": _l("Recorded a guardian's consent"),
    "submit_review": _l("Sent a demand for review"), "approve_demand": _l("Approved a demand"),
    "return_demand": _l("Returned a demand to the worker"), "set_review": _l("Changed an area's demand review"),
    "notice_channels": _l("Changed how they are told (channels)"),
    "resend_notices": _l("Sent offer notices again"),
    "upload_roster": _l("Uploaded a volunteer roster"), "import_roster": _l("Imported a volunteer roster"),
    "upload_import": _l("Uploaded a spreadsheet to import"), "import_residents": _l("Imported residents"),
    "import_demands": _l("Imported demands"), "import_organizations": _l("Imported organizations"),
    "export_roster": _l("Exported the volunteer roster"), "export_schedule": _l("Exported a week's schedule"),
    "export_demands": _l("Exported demands"), "export_team_week": _l("Exported the organization's week"),
    "export_my_week": _l("Exported their own week"),
    "export_phones": _l("Exported with full phone numbers (reason recorded)"),
    "print_week": _l("Printed a week's schedule (PDF)"),
}

OBJECT_LABELS = {
    "demand": _l("Demand"), "demandoccurrence": _l("Occurrence"), "assignment": _l("Assignment"),
    "volunteer": _l("Volunteer"), "resident": _l("Resident"), "schedule": _l("Schedule"),
    "solverun": _l("Solve run"), "membership": _l("Membership"), "user": _l("Account"),
    "nosuchuser": _l("Unknown account"), "category": _l("Category"), "skill": _l("Skill"),
    "accountlink": _l("One-time link"), "resetattempt": _l("Reset link (unknown)"),
    "area": _l("Area"), "importfile": _l("Uploaded file"), "organization": _l("Organization"),
    "apitoken": _l("API token"),
}

DETAIL_LABELS = {
    "occurrence": _l("occurrence"), "volunteer": _l("volunteer"), "old_volunteer": _l("previous volunteer"),
    "organization": _l("organization"), "community": _l("community"), "removed": _l("removed"),
    "added": _l("added"), "reason": _l("reason"), "purpose": _l("purpose"), "assignment": _l("assignment"),
    "via": _l("via"), "scopes": _l("scopes"), "days": _l("days"),
    "hours": _l("hours"), "rating": _l("rating"), "skills": _l("skills"), "slots": _l("slots"),
    "fields": _l("fields"), "notified": _l("notified"), "occurrences": _l("occurrences"), "run": _l("run"),
    "repair": _l("repair"), "offered": _l("offered"), "override": _l("override"), "rules": _l("rules broken"),
    "by_hand": _l("by hand"), "code": _l("code"), "username": _l("username"), "schedule": _l("schedule"),
    "override_reason": _l("override reason"),
    "old": _l("before"), "new": _l("after"), "role": _l("role"), "area": _l("area"), "account": _l("account"),
    "link": _l("link"),
    "organizations": _l("organizations"), "invitation": _l("invitation"), "minor": _l("under 18"),
    "relation": _l("relation"),
    "priority": _l("priority"), "on": _l("review on"), "released": _l("let through"),
    "decline_kind": _l("why declined"),
    "channels": _l("channels"), "email": _l("e-mail"), "wechat": _l("WeChat"), "messages": _l("messages"),
    "size": _l("bytes"), "created": _l("added"), "updated": _l("updated"), "unchanged": _l("unchanged"),
    "file": _l("file"), "rows": _l("rows"), "format": _l("format"), "week": _l("week"), "kind": _l("kind"),
    "export": _l("export"),
}

AUDIT_DATE_MESSAGE = _l("Enter a date as YYYY-MM-DD.")


def action_label(code: str) -> str:
    """The readable label of an audit action; the raw code for one without a label."""
    return str(ACTION_LABELS.get(code, code))


def _detail_value(value: Any) -> str:
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, (list, tuple)):
        return ", ".join(_detail_value(v) for v in value) or "–"
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_detail_value(v)}" for k, v in value.items()) or "–"
    return "–" if value is None or value == "" else str(value)


# Details holding a code (a role, a priority) read as its label; an area or organization id as its name.
CODED_DETAILS = {"role", "priority"}
NAMED_DETAILS = {"area": Area, "organization": Organization}


def _readable(key: str, value: Any) -> Any:
    if key in CODED_DETAILS and isinstance(value, str):
        return label(value)
    if key in NAMED_DETAILS and isinstance(value, int) and not isinstance(value, bool):
        row = db.session.get(NAMED_DETAILS[key], value)
        return row.name if row is not None else value
    if isinstance(value, dict):  # e.g. {"old": {...}, "new": {...}} of a change of role and place
        return {str(DETAIL_LABELS.get(k, k)): _readable(k, v) for k, v in value.items()}
    return value


def detail_lines(details: dict[str, Any] | None) -> list[tuple[str, str]]:
    """An entry's details as (label, value) pairs, never raw JSON."""
    return [(str(DETAIL_LABELS.get(key, key)), _detail_value(_readable(key, value)))
            for key, value in (details or {}).items()]


def _occurrence_name(occ: DemandOccurrence) -> str:
    return f"“{occ.demand.title}” {occ.starts_at:%Y-%m-%d %H:%M}"


def object_names(entries: list[AuditEntry]) -> tuple[dict[tuple[str, int], str], dict[int, str]]:
    """Names of the entries' objects (one query per object type) and the override reasons of assignments."""
    ids: dict[str, set[int]] = {}
    for e in entries:
        if e.object_id is not None:
            ids.setdefault(e.object_type, set()).add(e.object_id)
    names: dict[tuple[str, int], str] = {}
    overrides: dict[int, str] = {}

    def load(model, key, *options):
        wanted = ids.get(key)
        if not wanted:
            return []
        return db.session.scalars(select(model).where(model.id.in_(wanted)).options(*options)).all()

    for d in load(Demand, "demand"):
        names["demand", d.id] = f"“{d.title}”"
    for o in load(DemandOccurrence, "demandoccurrence", selectinload(DemandOccurrence.demand)):
        names["demandoccurrence", o.id] = _occurrence_name(o)
    for a in load(Assignment, "assignment", selectinload(Assignment.volunteer),
                  selectinload(Assignment.occurrence).selectinload(DemandOccurrence.demand)):
        names["assignment", a.id] = f"{a.volunteer.real_name} · {_occurrence_name(a.occurrence)}"
        if a.override_reason:
            overrides[a.id] = a.override_reason
    for v in load(Volunteer, "volunteer"):
        names["volunteer", v.id] = v.real_name
    for m in load(Membership, "membership", selectinload(Membership.volunteer)):
        names["membership", m.id] = m.volunteer.real_name
    for u in load(User, "user"):
        names["user", u.id] = u.username
    for c in load(Category, "category"):
        names["category", c.id] = local_name(c)
    for k in load(Skill, "skill"):
        names["skill", k.id] = local_name(k)
    for sch in load(Schedule, "schedule", selectinload(Schedule.area)):
        names["schedule", sch.id] = f"{sch.area.name} {sch.week_start:%Y-%m-%d}"
    return names, overrides


def _day_arg(name: str):
    """A YYYY-MM-DD date from the query string, None when absent; a 400 naming `name` when unreadable."""
    raw = text_arg(name, 20)
    if not raw:
        return None
    day = parse_iso_date(raw)
    if day is None:
        raise ValidationError({name: str(AUDIT_DATE_MESSAGE)})
    return day


def _utc_start(day) -> datetime:
    """The UTC moment (naive, like `AuditEntry.at`) a local day starts."""
    zone = ZoneInfo(current_app.config.get("BABEL_DEFAULT_TIMEZONE", "Asia/Shanghai"))
    return datetime.combine(day, time(), zone).astimezone(ZoneInfo("UTC")).replace(tzinfo=None)


@bp.route("/audit")
@roles_required(Role.ADMIN)
def audit():
    """The audit entries, newest first, filtered by action, user and dates (in the service's time zone)."""
    action = text_arg("action", 40)
    if action and action not in ACTION_LABELS:
        raise ValidationError({"action": _("Choose an action from the list.")})
    username = text_arg("user", 80)
    start, end = _day_arg("from"), _day_arg("to")
    if start and end and end < start:
        raise ValidationError({"to": _("The end date is before the start date.")})
    stmt = select(AuditEntry).options(selectinload(AuditEntry.user)).order_by(AuditEntry.id.desc())
    if action:
        stmt = stmt.where(AuditEntry.action == action)
    if username:
        stmt = stmt.where(AuditEntry.user_id.in_(select(User.id).where(User.username == username)))
    if start:
        stmt = stmt.where(AuditEntry.at >= _utc_start(start))
    if end:
        stmt = stmt.where(AuditEntry.at < _utc_start(end + timedelta(days=1)))
    page = db.paginate(stmt, page=page_arg(), per_page=50, error_out=False)
    names, overrides = object_names(page.items)
    actions = sorted(ACTION_LABELS, key=lambda code: action_label(code))
    return render_template("admin/audit.html", page=page, names=names, overrides=overrides, actions=actions,
                           action_label=action_label, object_labels=OBJECT_LABELS, detail_lines=detail_lines,
                           when=lambda moment: format_datetime(moment, "yyyy-MM-dd HH:mm:ss"),
                           filters={"action": action, "user": username, "from": start, "to": end})


@bp.route("/notices")
@roles_required(Role.ADMIN)
def notices():
    """Every notice's template in Chinese and English, an example with its SMS length, the provider
    templates configured for it, and which channels are on (`matcher.notice_templates`)."""
    previews = preview_all()
    return render_template("admin/notices.html", previews=previews, channels=channel_states(),
                           sign_name=sign_name(), sample_url=SAMPLE_URL,
                           locale_names={"zh_CN": _("Chinese"), "en": _("English")},
                           over={locale: [p for p in previews if p.over_one_segment_in(locale)]
                                 for locale in LOCALES})
