"""Error pages and the one place that turns domain errors into responses."""

from flask import Flask, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import HTTPException

from matcher.db import db
from matcher.errors import DomainError

TITLES = {
    400: _l("Bad request"), 403: _l("Not allowed"), 404: _l("Not found"), 405: _l("Method not allowed"),
    409: _l("Changed meanwhile"), 429: _l("Too many attempts"), 500: _l("Something went wrong"),
    503: _l("Briefly unavailable"),
}


def render_error(status: int, message: str = ""):
    """An error page (or JSON for API clients) with a message a person can act on."""
    if request.accept_mimetypes.best == "application/json" or request.path.startswith("/api/"):
        return {"error": str(TITLES.get(status, _("Error"))), "message": message}, status
    return render_template("error.html", status=status, title=str(TITLES.get(status, _("Error"))),
                           message=message), status


def register(app: Flask) -> None:
    """Handlers for HTTP errors, CSRF failures, domain errors and crashes."""

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError):
        app.logger.info("csrf refused: %s", exc.description)
        return render_error(400, _("The form expired or was not sent from this site. Reload the page and try again."))

    @app.errorhandler(StaleDataError)
    def stale(exc: StaleDataError):
        db.session.rollback()
        return render_error(409, _("Someone changed this meanwhile. Reload the page and try again."))

    @app.errorhandler(DomainError)
    def domain_error(exc: DomainError):
        db.session.rollback()
        return render_error(exc.status, exc.message)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        return render_error(exc.code or 500, "")

    @app.errorhandler(DBAPIError)
    def database_error(exc: DBAPIError):
        db.session.rollback()
        if not exc.connection_invalidated:  # a real error in a statement: a crash like any other
            return crash(exc)
        # The database went away (a restart, a failover): nothing was written; the next request
        # reconnects (pool pre-ping), so ask the person to try again rather than report a crash.
        app.logger.warning("database connection lost: %s", type(exc.orig).__name__)
        response = render_error(503, _("The service is restarting a part of itself. Try again in a moment; "
                                       "nothing was saved."))
        return response[0], 503, {"Retry-After": "5"}

    @app.errorhandler(Exception)
    def crash(exc: Exception):
        db.session.rollback()
        app.logger.exception("unhandled error")
        return render_error(500, _("The error was logged. Please try again later."))
