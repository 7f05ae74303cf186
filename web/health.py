"""/healthz: is the database (and Redis, when configured) reachable?"""

from flask import Blueprint, current_app, redirect, url_for
from sqlalchemy import text

from matcher.db import db

from .extensions import csrf

bp = Blueprint("health", __name__)


@bp.route("/favicon.ico")
def favicon():
    """Browsers ask for /favicon.ico whatever the page says; send them to the real icon."""
    return redirect(url_for("static", filename="favicon.svg"), code=301)


@bp.route("/healthz")
@csrf.exempt
def healthz():
    """200 with each check's state, or 503 naming what failed."""
    checks: dict[str, str] = {}
    try:
        db.session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # any driver error means "down"
        checks["database"] = f"failed: {type(exc).__name__}"
        db.session.rollback()
    url = current_app.config.get("REDIS_URL")
    if url:
        import redis

        try:
            # Both timeouts: a Redis that accepts but never answers must not hang the check.
            redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2).ping()
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"failed: {type(exc).__name__}"
    ok = all(v == "ok" for v in checks.values())
    return {"status": "ok" if ok else "failed", "checks": checks}, 200 if ok else 503
