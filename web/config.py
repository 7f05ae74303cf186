"""Configuration defaults. Deployments override them with LINLI_* environment variables.

Every key below can be set as `LINLI_<KEY>` (values are parsed as JSON when they
can be, so `LINLI_SESSION_COOKIE_SECURE=false` works); `DATABASE_URL`,
`REDIS_URL` and `SECRET_KEY` are also read without the prefix, as most hosts set them.
"""

import os
from datetime import timedelta
from pathlib import Path

from matcher.spreadsheets import MAX_BYTES


def default_database_url(instance_path: str) -> str:
    """The embedded SQLite database in the instance folder."""
    return "sqlite:///" + str(Path(instance_path) / "linli.sqlite")


class Defaults:
    """Defaults only: no real secret lives in code."""

    SECRET_KEY = None  # required; `make demo` generates one into instance/secret_key
    SQLALCHEMY_DATABASE_URI = None  # set from DATABASE_URL or the instance folder
    # hide_parameters: a failing statement is logged without its values (tokens, names, phones).
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True, "hide_parameters": True}
    REDIS_URL = None
    TIMEZONE = "Asia/Shanghai"

    # Sessions and cookies (see docs/operations.md): Secure by default, HttpOnly, SameSite=Lax.
    SESSION_COOKIE_SECURE = True
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_NAME = "linli_session"
    PERMANENT_SESSION_LIFETIME = timedelta(hours=12)
    REMEMBER_COOKIE_SECURE = True
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_DURATION = timedelta(days=14)
    REMEMBER_COOKIE_NAME = "linli_remember"
    PREFERRED_URL_SCHEME = "https"

    WTF_CSRF_TIME_LIMIT = 8 * 3600
    # A request body larger than this is refused with 413 before it is read: the largest upload plus room
    # for the form's other fields.
    MAX_CONTENT_LENGTH = MAX_BYTES + 2**20

    # Password hashing: argon2id, OWASP's second recommended profile (19 MiB, t=2).
    ARGON2_TIME_COST = 2
    ARGON2_MEMORY_COST = 19 * 1024
    ARGON2_PARALLELISM = 1
    PASSWORD_MIN_LENGTH = 8

    # Login throttling (Flask-Limiter). Storage follows REDIS_URL when set.
    RATELIMIT_LOGIN = "10 per minute;50 per hour"
    RATELIMIT_STORAGE_URI = "memory://"
    RATELIMIT_HEADERS_ENABLED = True
    # The summary report works out part of its figures on a second database connection at the same time
    # (matcher/reports.py: report_figures); off, it does all of them on one.
    REPORT_PARALLEL = True
    # Requests per API token (or, for sign-ins, per client address) in the JSON API (`web/api`).
    API_RATE_LIMIT = "600 per minute;10000 per hour"

    BABEL_DEFAULT_LOCALE = "zh_CN"
    BABEL_DEFAULT_TIMEZONE = "Asia/Shanghai"
    LANGUAGES = ["zh_CN", "en"]

    PAGE_SIZE = 25
    # Optional map tiles under the schedule map, e.g. "https://tiles.example.org/{z}/{x}/{y}.png".
    # Unset by default: the map is drawn from the service's own data and fetches nothing.
    MAP_TILE_URL = None
    # Where people reach the service, for links in SMS, e-mail and WeChat messages (the short links
    # `/n/<code>`), e.g. "https://linli.example.org". Unset: http://127.0.0.1:8000 (the demo).
    PUBLIC_URL = None
    # Star thresholds in hours (1..5 stars) and hour rounding, configurable per deployment.
    STAR_THRESHOLDS = [100, 300, 600, 1000, 1500]
    HSTS = False  # turn on when served over HTTPS

    # Password guesses (login, password change) are counted per client address (RATELIMIT_LOGIN)
    # and per account name (RATELIMIT_LOGIN_ACCOUNT) in a store every worker shares: Redis when
    # REDIS_URL is set, else the database (matcher/throttle.py). RATELIMIT_ENABLED=false turns it off.
    RATELIMIT_LOGIN_ACCOUNT = "5 per minute;20 per hour"
    RATELIMIT_KEY_PREFIX = "linli"
    # Flask-Limiter (route limits) keeps counting in memory if Redis goes away, and logs it.
    RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True
    # How many reverse proxies sit in front of the app and append to X-Forwarded-For (and set
    # X-Forwarded-Proto). 0: the client connects directly. See docs/operations.md.
    PROXY_COUNT = 0
    # Host names the app answers to (Flask's TRUSTED_HOSTS; absolute links such as the calendar
    # feed and QR codes are built from the Host header). Other hosts get 400. A leading dot allows
    # subdomains. Set LINLI_TRUSTED_HOSTS='["linli.example.org"]' in production; None allows any.
    TRUSTED_HOSTS = ["localhost", "127.0.0.1"]
    # Solves a coordinator starts: the longest time limit (seconds) and, without Redis (thread mode),
    # how many run at once in one process (further ones wait their turn).
    SOLVE_TIME_LIMIT_MAX = 120
    SOLVE_THREADS_MAX = 1

    # Check-in and check-out (matcher/assignments.py): failed codes allowed per volunteer and per
    # service within the window (counted in the audit log, so every worker sees them), and how long
    # a scanned QR code of the worker's page stays valid (seconds).
    CHECKIN_ATTEMPT_WINDOW_MINUTES = 15
    CHECKIN_MAX_FAILURES_PER_VOLUNTEER = 5
    CHECKIN_MAX_FAILURES_PER_OCCURRENCE = 20
    CHECKIN_TOKEN_MAX_AGE = 180


def load_environment(config: dict) -> None:
    """Apply the un-prefixed variables that hosting platforms commonly set."""
    for key, target in (("DATABASE_URL", "SQLALCHEMY_DATABASE_URI"), ("SECRET_KEY", "SECRET_KEY"),
                        ("REDIS_URL", "REDIS_URL")):
        value = os.environ.get(key)
        if value:
            config[target] = value


def normalize_database_url(url: str) -> str:
    """Use the psycopg 3 driver for plain postgres:// and postgresql:// URLs."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url
