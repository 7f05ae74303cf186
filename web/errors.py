"""Error pages and the one place that turns domain errors into responses."""

from flask import Flask, render_template, request
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import HTTPException

from matcher.db import db
from matcher.errors import DomainError
from matcher.spreadsheets import MAX_BYTES

from .i18n import LOCALE_COOKIE

TITLES = {
    400: _l("Bad request"), 401: _l("Sign-in needed"), 403: _l("Not allowed"), 404: _l("Not found"), 405: _l("Method not allowed"),
    409: _l("Changed meanwhile"), 412: _l("Changed since you read it"), 413: _l("File too large"),
    422: _l("Some fields are wrong"), 428: _l("Say which version you change"), 429: _l("Too many attempts"),
    500: _l("Something went wrong"), 503: _l("Briefly unavailable"),
}


# What an API client is told for errors that carry no message of their own.
API_DETAILS = {
    401: _l("Send a valid token: Authorization: Bearer lnl_... (it may have expired or been revoked)."),
    404: _l("No such resource (or not one this token may see)."),
    405: _l("This method is not allowed here; the Allow header lists those that are."),
    412: _l("The resource changed since you read it: read it again and repeat the change with the new ETag."),
    428: _l("Send If-Match with the ETag from reading the resource, so a stale change is refused."),
    429: _l("Too many requests for this token: wait for the time in Retry-After."),
}


def render_error(status: int, message: str = "", *, errors: dict | None = None, headers: dict | None = None):
    """An error page (problem+json for the API, JSON for other JSON clients) with a message a person can act on."""
    from .api import is_api_request
    from .api.problems import problem

    if is_api_request():
        return problem(status, message, errors=errors, headers=headers)
    if request.accept_mimetypes.best == "application/json":
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
        errors = getattr(exc, "errors", None) or ({exc.field: exc.message} if exc.field else None)
        return render_error(exc.status, exc.message, errors=errors)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if exc.code == 413:  # a body over MAX_CONTENT_LENGTH: in practice an upload
            return render_error(413, _("The file is larger than %(n)d MB: split it into smaller files.",
                                       n=MAX_BYTES // 2**20))
        from .api import is_api_request

        if is_api_request():
            return api_http_error(exc)
        return render_error(exc.code or 500, "")

    def api_http_error(exc: HTTPException):
        """An HTTP error under /api/ as problem+json: the arguments' field messages (webargs), the
        precondition rules (ETag), the methods allowed, when to come back."""
        from .api.problems import flatten

        data = getattr(exc, "data", None) or {}
        errors = flatten(data.get("messages") or data.get("errors") or {})
        # {"json": {"name": ...}} names the body's field "name"; a query argument keeps its own name
        errors = {k.split(".", 1)[1] if k.split(".", 1)[0] in ("json", "query", "form", "headers", "files")
                  and "." in k else k: v for k, v in errors.items()}
        headers = {k: v for k, v in exc.get_headers() if k.lower() in ("allow", "retry-after")}
        detail = data.get("message") or API_DETAILS.get(exc.code, "")
        if errors and not detail:
            detail = _("Some fields are wrong: %(f)s.", f=", ".join(errors))
        return render_error(exc.code or 500, str(detail), errors=errors or None, headers=headers)

    @app.errorhandler(DBAPIError)
    def database_error(exc: DBAPIError):
        db.session.rollback()
        if not (exc.connection_invalidated or isinstance(exc, OperationalError)):
            return crash(exc)  # a real error in a statement (integrity, data, syntax): a crash like any other
        # The database went away or is busy (a restart, a failover, a refused connection, SQLite's
        # lock timeout): nothing was written; the next request reconnects (pool pre-ping), so ask the
        # person to try again rather than report a crash.
        app.logger.warning("database connection lost: %s", type(exc.orig).__name__)
        return unavailable()

    def unavailable():
        """The 503 page, made without the database (the signed-in user's row cannot be read now)."""
        chosen = request.cookies.get(LOCALE_COOKIE)
        locale = chosen if chosen in app.config["LANGUAGES"] else app.config["BABEL_DEFAULT_LOCALE"]
        with force_locale(locale):
            message = _("The service is restarting a part of itself. Try again in a moment; nothing was saved.")
            from .api import is_api_request
            from .api.problems import problem

            if is_api_request():
                return problem(503, message, headers={"Retry-After": "5"})
            if request.accept_mimetypes.best == "application/json":
                body = {"error": str(TITLES[503]), "message": message}
            else:
                # Straight from the Jinja environment: no context processors (they read the signed-in user).
                body = app.jinja_env.get_template("unavailable.html").render(
                    status=503, title=str(TITLES[503]), message=message, request=request,
                    lang="en" if locale == "en" else "zh-CN")
        return body, 503, {"Retry-After": "5"}

    @app.errorhandler(Exception)
    def crash(exc: Exception):
        db.session.rollback()
        app.logger.exception("unhandled error")
        return render_error(500, _("The error was logged. Please try again later."))
