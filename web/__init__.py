"""The web layer: app factory, login, blueprints, templates, CLI commands."""

import contextlib
import logging
import os
import secrets
import time
import uuid
from pathlib import Path

from flask import Flask, g, request, session
from flask_babel import lazy_gettext as _l

from matcher.accounts import configure_hasher

from . import config as cfg
from .extensions import babel, csrf, db, limiter, login_manager, migrate


def create_app(test_config: dict | None = None) -> Flask:
    """Build the application: configuration, extensions, blueprints, handlers, commands."""
    app = Flask(__name__, instance_path=os.environ.get("LINLI_INSTANCE_PATH") or None,
                instance_relative_config=True)
    configure(app, test_config)
    register_proxy(app)
    register_extensions(app)
    register_converters(app)
    register_blueprints(app)
    register_api(app)
    register_request_hooks(app)
    register_error_handlers(app)
    register_commands(app)
    return app


def configure(app: Flask, test_config: dict | None) -> None:
    """Defaults, then the environment (or the test mapping), then derived values."""
    app.config.from_object(cfg.Defaults)
    if test_config is None:
        cfg.load_environment(app.config)
        app.config.from_prefixed_env("LINLI")
    else:
        app.config.update(test_config)
    # The instance folder holds the secret key and, by default, the SQLite database: owner only.
    Path(app.instance_path).mkdir(mode=0o700, parents=True, exist_ok=True)
    if not app.config.get("SQLALCHEMY_DATABASE_URI"):
        app.config["SQLALCHEMY_DATABASE_URI"] = cfg.default_database_url(app.instance_path)
    app.config["SQLALCHEMY_DATABASE_URI"] = cfg.normalize_database_url(app.config["SQLALCHEMY_DATABASE_URI"])
    protect_sqlite_file(app.config["SQLALCHEMY_DATABASE_URI"], app.instance_path)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = read_or_create_secret(Path(app.instance_path) / "secret_key")
    if app.config.get("REDIS_URL") and app.config["RATELIMIT_STORAGE_URI"] == "memory://":
        app.config["RATELIMIT_STORAGE_URI"] = app.config["REDIS_URL"]
    configure_hasher(app.config["ARGON2_TIME_COST"], app.config["ARGON2_MEMORY_COST"],
                     app.config["ARGON2_PARALLELISM"])


def read_or_create_secret(path: Path) -> str:
    """A per-installation secret kept in the instance folder, made on first start.

    The file is created with mode 600 (never readable by others, not even for a moment) and
    exclusively, so workers starting together agree on one secret.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _attempt in range(50):  # another worker may be writing it right now
            secret = path.read_text().strip()
            if secret:
                if path.stat().st_mode & 0o077:
                    with contextlib.suppress(OSError):
                        path.chmod(0o600)
                return secret
            time.sleep(0.1)
        raise RuntimeError(f"{path} is empty; delete it to make a new secret key") from None
    secret = secrets.token_hex(32)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret)
    return secret


def protect_sqlite_file(url: str, instance_path: str) -> None:
    """Create an SQLite database file with mode 600 before SQLite does (it would use 644)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or database in ("", ":memory:") or database.startswith("file:"):
        return
    path = Path(database) if os.path.isabs(database) else Path(instance_path) / database
    if not path.parent.is_dir():
        return
    try:
        # Only a missing file is opened (to create it): closing a descriptor of a file this process has
        # open in SQLite drops every POSIX lock SQLite holds on it, and in write-ahead-log mode another
        # process may then take the log away from under the open connections (an app made in a process
        # that already has one, as the tests do, would do that).
        if not path.exists():
            os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))  # an empty file is an empty database
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)
    except FileExistsError:  # made meanwhile by another process
        pass
    except OSError as exc:  # not ours to change (read-only, another owner): SQLite will say what is wrong
        logging.getLogger(__name__).warning("could not make %s private: %s", path, exc)


def register_proxy(app: Flask) -> None:
    """What to believe from the network in front of the app: forwarded headers and the Host header.

    Behind `PROXY_COUNT` reverse proxies the client's address and scheme come from their headers:
    each proxy appends to X-Forwarded-For, and Werkzeug's ProxyFix trusts only that many entries
    from the right, so a client cannot forge its address (the throttles count per address).
    A Host outside `TRUSTED_HOSTS` is refused by Flask before routing; no URL can be built for it,
    so the answer is a plain 400 rather than the usual page (whose links need URLs).
    """
    count = int(app.config.get("PROXY_COUNT") or 0)
    if count > 0:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count)

    from flask_babel import gettext
    from werkzeug.exceptions import SecurityError

    @app.errorhandler(SecurityError)
    def untrusted_host(exc: SecurityError):
        app.logger.info("refused: %s", exc.description)
        return gettext("Bad request: this site does not answer to that host name."), 400, {
            "Content-Type": "text/plain; charset=utf-8"}


def register_extensions(app: Flask) -> None:
    """Bind the unbound extensions to this app."""
    db.init_app(app)
    migrate.init_app(app, db, directory=str(Path(__file__).resolve().parent.parent / "migrations"))
    csrf.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.session_protection = "strong"
    # Publishing, applying changes and revealing personal data need a fresh login (not a remember cookie).
    login_manager.refresh_view = "auth.login"
    login_manager.login_message = _l("Please sign in to open this page.")
    login_manager.needs_refresh_message = _l("For your security, please sign in again to continue.")
    login_manager.login_message_category = login_manager.needs_refresh_message_category = "info"
    from .i18n import TRANSLATIONS, compile_catalogs, install_template_gettext, select_locale, select_timezone

    compile_catalogs()
    babel.init_app(app, locale_selector=select_locale, timezone_selector=select_timezone,
                   default_translation_directories=str(TRANSLATIONS))
    install_template_gettext(app)
    from . import auth  # noqa: F401  (registers the user loader)


def register_converters(app: Flask) -> None:
    """URL converters (bounded ids), before the routes that use them."""
    from .converters import register

    register(app)


def register_blueprints(app: Flask) -> None:
    """One blueprint per feature."""
    from . import (
        accounts,
        admin,
        auth,
        community,
        demands,
        directory,
        exports,
        health,
        hooks,
        imports,
        join,
        main,
        notifications,
        printouts,
        recognition,
        records,
        reports,
        schedule,
        team,
        tokens,
        volunteer,
    )

    for module in (auth, main, demands, directory, admin, accounts, schedule, community, team, notifications, volunteer,
                   health, join, hooks, imports, exports, printouts, tokens, reports, records, recognition):
        app.register_blueprint(module.bp)


def register_api(app: Flask) -> None:
    """The JSON API for the phone client and other systems, with its OpenAPI description (`web/api`)."""
    from .api import register

    register(app)


def register_request_hooks(app: Flask) -> None:
    """Request ids, security headers and no-store for personal pages."""
    from .security import apply_security_headers
    from .templating import register_template_helpers

    register_template_helpers(app)

    @app.before_request
    def assign_request_id() -> None:
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if 0 < len(incoming) <= 64 and incoming.isprintable() else uuid.uuid4().hex

    @app.after_request
    def finish(response):
        response.headers["X-Request-ID"] = g.get("request_id", "")
        apply_security_headers(app, response)
        # Whoever is or may be signed in (a session, or a remember cookie) gets no-store. Read from the
        # cookies, not `current_user`: that would load the user's row, which fails while the database
        # is down and turns a 503 into a 500.
        if session.get("_user_id") or request.cookies.get(app.config["REMEMBER_COOKIE_NAME"]):
            response.headers["Cache-Control"] = "no-store"
        return response

    configure_logging(app)


class RequestIdFilter(logging.Filter):
    """Adds the request id (or '-') to every log record."""

    def filter(self, record: logging.LogRecord) -> bool:
        from flask import has_request_context

        record.request_id = g.get("request_id", "-") if has_request_context() else "-"
        return True


def configure_logging(app: Flask) -> None:
    """One line per record with time, level, logger and request id; no personal data is logged."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s rid=%(request_id)s %(message)s"))
    handler.addFilter(RequestIdFilter())
    app.logger.handlers[:] = [handler]
    app.logger.setLevel(logging.INFO)


def register_error_handlers(app: Flask) -> None:
    """Render every error as a page in the user's language, never a traceback."""
    from .errors import register

    register(app)


def register_commands(app: Flask) -> None:
    """The `flask` CLI commands: create-admin, demo load, catalogue seed."""
    from .commands import register

    register(app)
