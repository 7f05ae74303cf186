"""The dashboard: the user's area and this week's figures."""

from collections.abc import Callable
from datetime import date, timedelta

from flask import Blueprint, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from sqlalchemy import select

from matcher import rules
from matcher.clock import local_today
from matcher.db import db
from matcher.errors import ValidationError
from matcher.fields import parse_iso_date
from matcher.figures import week_figures
from matcher.models import Volunteer

bp = Blueprint("main", __name__)


WEEK_RANGE_DAYS = 2 * 366
WEEK_MESSAGE = _l("Enter a date as YYYY-MM-DD within two years of today.")


def parse_week(raw: str | None) -> date | None:
    """The Monday of a YYYY-MM-DD date (ASCII digits) within two years of today, or None (bad or far-off input)."""
    day = parse_iso_date(raw) if isinstance(raw, str) else None
    if day is None or abs((day - local_today()).days) > WEEK_RANGE_DAYS:
        return None
    return rules.week_monday(day)


def week_arg(default: Callable[[], date]) -> date:
    """The Monday from ?week=; `default()` when absent; a 400 naming `week` when unreadable or too far off."""
    values = request.args.getlist("week")
    if not values or values == [""]:
        return default()
    week = parse_week(values[0]) if len(values) == 1 else None
    if week is None:
        raise ValidationError({"week": str(WEEK_MESSAGE)})
    return week


def requested_week() -> date:
    """The Monday from ?week=YYYY-MM-DD, else the coming week's Monday (the week being planned)."""
    return week_arg(lambda: rules.week_monday(local_today()) + timedelta(days=7))


def this_or_next_week(has_any: Callable[[date], bool]) -> date:
    """This week's Monday, or next week's when this week has nothing yet and next week has."""
    this = rules.week_monday(local_today())
    following = this + timedelta(days=7)
    return following if not has_any(this) and has_any(following) else this


@bp.route("/")
def index():
    return redirect(url_for("main.dashboard" if current_user.is_authenticated else "auth.login"))


@bp.route("/dashboard")
@login_required
def dashboard():
    """Per-role overview: scope, open demands, volunteers and the week's coverage."""
    week = requested_week()
    figures = week_figures(current_user, week)
    volunteer = db.session.scalar(select(Volunteer).where(Volunteer.user_id == current_user.id))
    return render_template("dashboard.html", figures=figures, week=week, volunteer=volunteer,
                           prev_week=week - timedelta(days=7), next_week=week + timedelta(days=7))
