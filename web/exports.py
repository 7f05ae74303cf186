"""Spreadsheet exports of what each role may see (issue 12), and the one rule for phones in them.

- `/demands/export.<xlsx|csv>`: the demands one sees, through the list page's filters, with the week's
  services staffed and short, and the week's services left short with the solver's reasons
  (coordinators: their area; community workers: their community; administrators: all).
- `/team/export.<xlsx|csv>`: the organization's week for its leader (services, members, gaps).
- `/me/week/export.<xlsx|csv>`: a volunteer's own week (beside the calendar feed).

The roster export (`web/imports.py`) and the week's schedule export (`web/schedule.py`) stay where they
are and use `phone_reveal` too. Every export masks phones; who may see a phone on the pages may ask for
the full numbers in an export with a recorded reason (`phone_reveal`). Cells are made inert by
`matcher.spreadsheets`; every export is audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from flask import Blueprint, abort, render_template, request
from flask_babel import gettext as _
from flask_login import current_user, login_fresh, login_required
from sqlalchemy import select

from matcher import rules, weeks
from matcher.access import user_area
from matcher.audit import record_audit
from matcher.clock import local_today
from matcher.db import db
from matcher.demands import DEMAND_EXPORT_COLUMNS, UNMET_COLUMNS, DemandFilters, demand_sheets
from matcher.errors import NotFound, ValidationError
from matcher.fields import has_control
from matcher.models import Category, DemandStatus, Organization, Role
from matcher.models._types import ReviewState
from matcher.spreadsheets import write_csv, write_xlsx

from .auth import roles_required
from .community import STATES
from .demands import REVIEW_LABELS
from .directory import search_term
from .extensions import login_manager
from .imports import download
from .inputs import text_arg
from .main import week_arg
from .templating import REASONS, label
from .volunteer import own_volunteer, place_text
from .volunteer import requested_week as volunteer_week

bp = Blueprint("exports", __name__)

# --------------------------------------------------------------------------- phones in an export

# Whose phones an export may carry in full, and for whom: the pages' rule (the reliability checklist:
# masked unless the viewer needs them). A resident's phone: the community worker of the resident's
# community (`web/directory.may_reveal`; a worker's exports hold only their community). A volunteer's
# phone is shown in full to nobody but the volunteer on any page, so no export reveals it either.
PHONE_REVEALERS: dict[str, tuple[Role, ...]] = {"residents": (Role.WORKER,), "volunteers": ()}
REASON_MIN, REASON_MAX = 4, 300


@dataclass
class Reveal:
    """How an export shows phones: masked (no reason) or in full with the recorded reason; or a page to
    answer first (`page`: the reason form, the form again naming the missing reason, a fresh sign-in)."""

    reason: str = ""
    page: object = None

    @property
    def full(self) -> bool:
        return bool(self.reason)

    def phone(self, value: str | None) -> str:
        """The phone as this export shows it: the national number in full, or masked."""
        return rules.national_phone(value) if self.full else rules.mask_phone(value)

    def audit(self, action: str, obj, *, rows: int, **details) -> None:
        """Record the export; with full phones as `export_phones`, with the reason and the number of rows."""
        if self.full:
            record_audit(current_user, "export_phones", obj, export=action, reason=self.reason, rows=rows, **details)
        else:
            record_audit(current_user, action, obj, rows=rows, **details)


def may_reveal_phones(subject: str) -> bool:
    """Whether the signed-in user may see `subject`'s phones ("residents", "volunteers") in full."""
    return current_user.role in PHONE_REVEALERS[subject]


def phone_reveal(subject: str) -> Reveal:
    """How the export being asked for shows `subject`'s phones; the one place every export decides it.

    A GET: masked, or with `?reveal=1` the reason form. A POST (the form sent): full phones when the user
    may see them (else 403, like the pages) after a fresh sign-in, with a reason of `REASON_MIN` to
    `REASON_MAX` characters (else the form again, 400, naming `reason`)."""
    asked = request.method == "POST" or request.args.get("reveal") == "1"
    if not asked:
        return Reveal()
    if not may_reveal_phones(subject):
        abort(403)
    if not login_fresh():
        return Reveal(page=login_manager.needs_refresh())
    if request.method == "GET":
        return Reveal(page=_reason_form({}, 200))
    reason = (request.form.get("reason") or "").strip()
    error = ""
    if has_control(reason):
        error = _("The reason contains characters that cannot be stored.")
    elif not REASON_MIN <= len(reason) <= REASON_MAX:
        error = _("Say why you need the full phone numbers (%(a)d to %(b)d characters).", a=REASON_MIN, b=REASON_MAX)
    if error:
        return Reveal(page=_reason_form({"reason": error}, 400))
    return Reveal(reason=reason)


def _reason_form(errors: dict, status: int):
    args = [(key, value) for key, value in request.args.items(multi=True) if key != "reveal"]
    return render_template("exports/reveal.html", errors=errors, reason=request.form.get("reason", ""),
                           action=request.base_url, args=args, minimum=REASON_MIN, maximum=REASON_MAX), status


# --------------------------------------------------------------------------- shared


def word(code) -> str:
    """A code as the pages word it: the solver's reasons, a week row's state, else the enum labels."""
    if code in REASONS:
        return str(REASONS[code])
    if code in STATES:
        return str(STATES[code])
    return str(label(code))


def tables(fmt: str, sheets: list[tuple[str, str, tuple, list]], default: str) -> tuple[bytes, str]:
    """The file's bytes and its name's suffix: an XLSX with every sheet, or a CSV of the one `?sheet=` names
    (`default` when absent); an unknown sheet is a 400 naming `sheet`."""
    if fmt == "xlsx":
        return write_xlsx([(title, columns, rows) for _key, title, columns, rows in sheets]), ""
    chosen = request.args.get("sheet") or default
    for key, _title, columns, rows in sheets:
        if key == chosen:
            return write_csv(columns, rows), "-" + key
    names = ", ".join(key for key, *_rest in sheets)
    raise ValidationError({"sheet": _("Choose the table to export: %(names)s.", names=names)})


def this_week() -> date:
    return week_arg(lambda: rules.week_monday(local_today()))


# --------------------------------------------------------------------------- demands


def demand_filters() -> DemandFilters:
    """The list page's filters from the query string; a value the list does not offer is a 400 naming it."""
    errors = {}
    status = request.args.get("status") or ""
    if status and status not in {s.value for s in DemandStatus}:
        errors["status"] = _("Choose a status from the list.")
    review = request.args.get("review") or ""
    if review and review not in {r.value for r in ReviewState}:
        errors["review"] = _("Choose a review state from the list.")
    code = text_arg("category", 40)
    category = db.session.scalar(select(Category).where(Category.code == code)) if code else None
    if code and category is None:
        errors["category"] = _("No such category.")
    if errors:
        raise ValidationError(errors)
    return DemandFilters(q=search_term(), status=DemandStatus(status) if status else None, category=category,
                         review=ReviewState(review) if review else None)


@bp.route("/demands/export.<any(xlsx, csv):fmt>", methods=["GET", "POST"])
@roles_required(Role.ADMIN, Role.COORDINATOR, Role.WORKER)
def demands(fmt: str):
    """The demands one sees (the list's filters), each with the week's services staffed and short, and the
    week's services left short with the solver's reasons; residents' phones masked unless revealed."""
    filters = demand_filters()
    week = this_week()
    reveal = phone_reveal("residents")
    if reveal.page is not None:
        return reveal.page
    sheets = demand_sheets(current_user, filters, week, word=word, phone=reveal.phone,
                           review_word=lambda state: str(REVIEW_LABELS.get(state, state)))
    data, suffix = tables(fmt, [("demands", "需求", DEMAND_EXPORT_COLUMNS, sheets.demands),
                                ("unmet", "缺口", UNMET_COLUMNS, sheets.unmet)], "demands")
    place = user_area(current_user) if current_user.role != Role.ADMIN else None
    reveal.audit("export_demands", place or current_user, rows=len(sheets.demands), format=fmt,
                 week=week.isoformat())
    db.session.commit()
    return download(data, f"需求{'-' + place.name if place else ''}-{week.isoformat()}{suffix}.{fmt}", fmt)


# --------------------------------------------------------------------------- an organization's week


@bp.route("/team/export.<any(xlsx, csv):fmt>")
@roles_required(Role.ORG_LEADER)
def team(fmt: str):
    """The organization's week for its leader: services, its members on them (phones masked), the gaps."""
    org = db.session.get(Organization, current_user.organization_id) if current_user.organization_id else None
    if org is None:
        raise NotFound(_("No such organization."))
    week = this_week()
    sheets = weeks.organization_sheets(org, week, word=word)
    data, suffix = tables(fmt, [("services", "服务", weeks.TEAM_SERVICE_COLUMNS, sheets.services),
                                ("people", "志愿者", weeks.PEOPLE_COLUMNS, sheets.people),
                                ("gaps", "缺口", weeks.GAP_COLUMNS, sheets.gaps)], "services")
    record_audit(current_user, "export_team_week", org, rows=len(sheets.services), format=fmt, week=week.isoformat())
    db.session.commit()
    return download(data, f"{org.name}-{week.isoformat()}{suffix}.{fmt}", fmt)


# --------------------------------------------------------------------------- a volunteer's own week


@bp.route("/me/week/export.<any(xlsx, csv):fmt>")
@login_required
def my_week(fmt: str):
    """The volunteer's own booked services of a week (as "my week" lists them)."""
    volunteer = own_volunteer()
    week = volunteer_week(volunteer)
    rows = weeks.volunteer_week_rows(volunteer, week, word=word, place=place_text)
    data, _suffix = tables(fmt, [("week", "我的一周", weeks.MY_WEEK_COLUMNS, rows)], "week")
    record_audit(current_user, "export_my_week", volunteer, rows=len(rows), format=fmt, week=week.isoformat())
    db.session.commit()
    return download(data, f"我的一周-{week.isoformat()}.{fmt}", fmt)

