"""Configuration defaults. Deployments override them with LINLI_* environment variables.

Every key below can be set as `LINLI_<KEY>` (values are parsed as JSON when they
can be, so `LINLI_SESSION_COOKIE_SECURE=false` works); `DATABASE_URL`,
`REDIS_URL` and `SECRET_KEY` are also read without the prefix, as most hosts set them.
"""

import os
from datetime import timedelta
from pathlib import Path


def default_database_url(instance_path: str) -> str:
    """The embedded SQLite database in the instance folder."""
    return "sqlite:///" + str(Path(instance_path) / "linli.sqlite")


class Defaults:
    """Defaults only: no real secret lives in code."""

    SECRET_KEY = None  # required; `make demo` generates one into instance/secret_key
    SQLALCHEMY_DATABASE_URI = None  # set from DATABASE_URL or the instance folder
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
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

    # Password hashing: argon2id, OWASP's second recommended profile (19 MiB, t=2).
    ARGON2_TIME_COST = 2
    ARGON2_MEMORY_COST = 19 * 1024
    ARGON2_PARALLELISM = 1
    PASSWORD_MIN_LENGTH = 8

    # Login throttling (Flask-Limiter). Storage follows REDIS_URL when set.
    RATELIMIT_LOGIN = "10 per minute;50 per hour"
    RATELIMIT_STORAGE_URI = "memory://"
    RATELIMIT_HEADERS_ENABLED = True

    BABEL_DEFAULT_LOCALE = "zh_CN"
    BABEL_DEFAULT_TIMEZONE = "Asia/Shanghai"
    LANGUAGES = ["zh_CN", "en"]

    PAGE_SIZE = 25
    # Optional map tiles under the schedule map, e.g. "https://tiles.example.org/{z}/{x}/{y}.png".
    # Unset by default: the map is drawn from the service's own data and fetches nothing.
    MAP_TILE_URL = None
    # Star thresholds in hours (1..5 stars) and hour rounding, configurable per deployment.
    STAR_THRESHOLDS = [100, 300, 600, 1000, 1500]
    HSTS = False  # turn on when served over HTTPS


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
