"""The profile's API tokens: personal access tokens for other systems, and the phones signed in to the app.

A token is shown once, right after it is made (the page is not cached); afterwards only its first
characters. Every token, personal or device, can be revoked here; revoking takes effect at once.
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from matcher import tokens
from matcher.db import db
from matcher.errors import ValidationError
from matcher.models import TokenKind, utcnow

bp = Blueprint("tokens", __name__)


def _render(values: dict | None = None, errors: dict | None = None, made: tuple | None = None, status: int = 200):
    return render_template("account/tokens.html", tokens=tokens.tokens_of(current_user), now=utcnow(),
                           scopes=[(s, tokens.SCOPES[s]) for s in tokens.scopes_for(current_user)],
                           days=tokens.PERSONAL_DAYS, values=values or {"days": "90", "scopes": ["read"]},
                           errors=errors or {}, made=made), status


@bp.route("/account/tokens")
@login_required
def index():
    """The person's tokens and the form to make a personal access token."""
    return _render()


@bp.route("/account/tokens", methods=["POST"])
@login_required
def create():
    """Make a personal access token with the chosen scopes and lifetime; its secret is shown once."""
    values = {"name": request.form.get("name", ""), "days": request.form.get("days", ""),
              "scopes": request.form.getlist("scopes")}
    try:
        chosen = tokens.read_token_form(request.form)
        token, secret = tokens.issue_token(current_user, kind=TokenKind.PERSONAL, name=chosen["name"],
                                           scopes=chosen["scopes"], days=chosen["days"])
    except ValidationError as exc:
        db.session.rollback()
        return _render(values, exc.errors, status=400)
    db.session.commit()
    return _render(made=(token, secret))


@bp.route("/account/tokens/<int:token_id>/revoke", methods=["POST"])
@login_required
def revoke(token_id: int):
    """Revoke one of the person's tokens: it stops working at once."""
    token = tokens.own_token(current_user, token_id)
    if tokens.revoke_token(token, user=current_user):
        db.session.commit()
        flash(_("Token \"%(n)s\" revoked; it no longer works.", n=token.name), "info")
    return redirect(url_for("tokens.index"))
