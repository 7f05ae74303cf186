"""Administration: the catalogue of categories and skills, and the audit log."""

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from matcher.catalogue import create_skill, update_category
from matcher.db import db
from matcher.errors import NotFound, ValidationError
from matcher.models import AuditEntry, Category, Role, Skill

from .auth import roles_required
from .inputs import page_arg

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


@bp.route("/audit")
@roles_required(Role.ADMIN)
def audit():
    """The latest audit entries, newest first."""
    stmt = select(AuditEntry).options(selectinload(AuditEntry.user)).order_by(AuditEntry.id.desc())
    page = db.paginate(stmt, page=page_arg(), per_page=50, error_out=False)
    return render_template("admin/audit.html", page=page)
