"""The published lists of star volunteers (公示): the lists a signed-in person's areas published, and for
coordinators and administrators proposing a list for an area and a period, reviewing and approving it.
The lists print on a plain sheet (the browser's print; app.css hides the page furniture)."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from matcher import recognition
from matcher.db import db
from matcher.errors import ValidationError
from matcher.models import Role

from .auth import roles_required

bp = Blueprint("recognition", __name__)


def _index(values: dict, errors: dict, status: int = 200):
    """The page of published lists, and for those who may propose, the drafts and the form."""
    return render_template(
        "recognition/index.html", published=recognition.recognition_lists_for(current_user),
        drafts=recognition.drafts_for(current_user), areas=recognition.proposable_areas(current_user),
        values=values, errors=errors, thresholds=recognition.star_thresholds()), status


@bp.route("/recognition")
@login_required
def index():
    """Published lists of the user's areas; a coordinator's drafts and the form to propose a list."""
    return _index({}, {})


@bp.route("/recognition", methods=["POST"])
@roles_required(Role.ADMIN, Role.COORDINATOR)
def propose():
    """Propose (or work out again) the draft list of an area and a period, then show it."""
    values = {k: request.form.get(k, "") for k in ("area", "start", "end")}
    try:
        lst = recognition.propose_recognition(values["area"], values["start"], values["end"], current_user)
    except ValidationError as exc:
        db.session.rollback()
        return _index(values, exc.errors, 400)
    db.session.commit()
    return redirect(url_for("recognition.view", list_id=lst.id))


@bp.route("/recognition/<int:list_id>")
@login_required
def view(list_id: int):
    """One list: a draft with its approve button, or the published, printable list."""
    lst = recognition.load_recognition(list_id, current_user)
    return render_template("recognition/list.html", lst=lst,
                           may_approve=lst.approved_at is None and recognition.can_manage(current_user, lst),
                           thresholds=recognition.star_thresholds())


@bp.route("/recognition/<int:list_id>/approve", methods=["POST"])
@roles_required(Role.ADMIN, Role.COORDINATOR)
def approve(list_id: int):
    """Approve a draft as it stands: it is published and frozen."""
    lst = recognition.load_recognition(list_id, current_user)
    recognition.approve_recognition(lst, current_user)
    db.session.commit()
    flash(_("The list was approved and published."), "success")
    return redirect(url_for("recognition.view", list_id=lst.id))
