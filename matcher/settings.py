"""The domain's settings: the one place `matcher` reads the running application's configuration.

Code holds defaults; a deployment changes them through the app config (`LINLI_*` variables, see
`web/config.py`). Outside an application (a plain script, the solver's threads) the defaults hold.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import current_app, has_app_context


def in_fresh_app_context() -> Callable[[Callable[[], Any]], Any]:
    """A function that runs a callable in a new app context of the running app: for a worker thread, which
    then has its own database session and connection (`reports.report_figures`)."""
    app = current_app._get_current_object()

    def run(work: Callable[[], Any]) -> Any:
        with app.app_context():
            return work()

    return run


def setting(key: str, default: Any) -> Any:
    """The app config's value for `key`, else `default`."""
    if has_app_context():
        return current_app.config.get(key, default)
    return default


# How far ahead a demand may be posted, in days (`DEMAND_HORIZON_DAYS` in the app config).
DEMAND_HORIZON_DAYS = 366


def demand_horizon_days() -> int:
    """How many days ahead a demand's date (and the end of its recurrence) may lie."""
    return int(setting("DEMAND_HORIZON_DAYS", DEMAND_HORIZON_DAYS))


def running_app() -> Any:
    """The running application object, for work handed to other threads (they push its context)."""
    return current_app._get_current_object()


def log_exception(message: str, *args: Any) -> None:
    """Log an unexpected failure with its traceback through the application's logger."""
    current_app.logger.exception(message, *args)


# The SMS channel (`matcher/channels/sms.py`): off until SMS_GATEWAY_URL, SMS_ACCESS_KEY, SMS_SECRET
# and SMS_SIGN_NAME are set (`LINLI_SMS_*`); SMS_TEMPLATES maps an event to the provider's template id.
SMS_TIMEOUT_SECONDS = 5.0          # the whole request, connect included (SMS_TIMEOUT_SECONDS)
SMS_SIGNATURE_MAX_AGE = 300        # seconds a signed request or receipt stays valid (SMS_SIGNATURE_MAX_AGE)
SMS_PARAM_MAX_LENGTH = 0           # cut each template parameter to this many characters; 0: as they are


def sms_settings() -> dict[str, Any]:
    """The SMS gateway's settings as plain values (a numeric secret read from JSON stays text)."""
    templates = setting("SMS_TEMPLATES", None) or {}
    if isinstance(templates, str):
        import json

        try:
            templates = json.loads(templates)
        except ValueError:
            templates = {}
    return {
        "url": str(setting("SMS_GATEWAY_URL", "") or ""),
        "access_key": str(setting("SMS_ACCESS_KEY", "") or ""),
        "secret": str(setting("SMS_SECRET", "") or ""),
        "sign_name": str(setting("SMS_SIGN_NAME", "") or ""),
        "templates": {str(k): str(v) for k, v in templates.items()} if isinstance(templates, dict) else {},
        "timeout": float(setting("SMS_TIMEOUT_SECONDS", SMS_TIMEOUT_SECONDS)),
        "max_age": int(setting("SMS_SIGNATURE_MAX_AGE", SMS_SIGNATURE_MAX_AGE)),
        "param_max_length": int(setting("SMS_PARAM_MAX_LENGTH", SMS_PARAM_MAX_LENGTH) or 0),
    }



# The WeChat channel (`matcher/channels/wechat.py`): off until WECHAT_APP_ID and WECHAT_APP_SECRET are
# set (`LINLI_WECHAT_*`); WECHAT_TEMPLATES maps an event to a subscription-message template:
# {"offer": {"id": "<template id>", "page": "pages/offers/index", "fields": {"thing1": "items", ...}}}.
WECHAT_API_URL = "https://api.weixin.qq.com"
WECHAT_TIMEOUT_SECONDS = 5.0          # the whole request, connect included
WECHAT_MINIPROGRAM_STATE = "formal"   # which version of the mini-program a message opens: formal/trial/developer
WECHAT_DEFAULT_PAGE = "pages/index/index"  # opened with ?url=<link> when a template names no page
WECHAT_SIGNATURE_MAX_AGE = 300        # seconds a signed push from WeChat stays valid


def wechat_settings() -> dict[str, Any]:
    """The WeChat mini-program's settings as plain values (a numeric secret read from JSON stays text)."""
    templates = setting("WECHAT_TEMPLATES", None) or {}
    if isinstance(templates, str):
        import json

        try:
            templates = json.loads(templates)
        except ValueError:
            templates = {}
    readable = {}
    for event, template in (templates.items() if isinstance(templates, dict) else ()):
        if not isinstance(template, dict) or not template.get("id"):
            continue
        fields = template.get("fields") if isinstance(template.get("fields"), dict) else {}
        readable[str(event)] = {"id": str(template["id"]), "page": str(template.get("page") or ""),
                                "fields": {str(k): str(v) for k, v in fields.items()}}
    return {
        "api": str(setting("WECHAT_API_URL", WECHAT_API_URL) or WECHAT_API_URL).rstrip("/"),
        "app_id": str(setting("WECHAT_APP_ID", "") or ""),
        "secret": str(setting("WECHAT_APP_SECRET", "") or ""),
        "token": str(setting("WECHAT_TOKEN", "") or ""),
        "templates": readable,
        "state": str(setting("WECHAT_MINIPROGRAM_STATE", WECHAT_MINIPROGRAM_STATE) or WECHAT_MINIPROGRAM_STATE),
        "default_page": str(setting("WECHAT_DEFAULT_PAGE", WECHAT_DEFAULT_PAGE) or ""),
        "timeout": float(setting("WECHAT_TIMEOUT_SECONDS", WECHAT_TIMEOUT_SECONDS)),
        "max_age": int(setting("WECHAT_SIGNATURE_MAX_AGE", WECHAT_SIGNATURE_MAX_AGE)),
    }

# The outbox and its sender (`matcher/outbox.py`), each `LINLI_OUTBOX_*`:
OUTBOX_RATE_LIMITS = {"sms": 600, "email": 120, "wechat": 600}  # messages per minute and channel (all senders)
OUTBOX_BACKOFF_MINUTES = [1, 5, 30, 120]  # wait after the 1st, 2nd, ... failed attempt (the last repeats)
OUTBOX_MAX_ATTEMPTS = 5                   # then the row is given up
OUTBOX_QUIET_HOURS = ["21:00", "08:00"]   # local time: no message on OUTBOX_QUIET_CHANNELS unless urgent
OUTBOX_QUIET_CHANNELS = ["sms"]
OUTBOX_STALE_CLAIM_MINUTES = 10           # a claim older than this is a sender that died mid-way
# The order of outside channels for a person who has not chosen (`User.channels` NULL); an empty
# choice ([]) on the profile means in-app only.
OUTBOX_DEFAULT_CHANNELS = ["sms", "wechat", "email"]


def outbox_settings() -> dict[str, Any]:
    """The sender's settings as plain values."""
    return {
        "rate_limits": dict(setting("OUTBOX_RATE_LIMITS", OUTBOX_RATE_LIMITS) or {}),
        "backoff": [int(m) for m in setting("OUTBOX_BACKOFF_MINUTES", OUTBOX_BACKOFF_MINUTES)] or [1],
        "max_attempts": max(1, int(setting("OUTBOX_MAX_ATTEMPTS", OUTBOX_MAX_ATTEMPTS))),
        "quiet_hours": list(setting("OUTBOX_QUIET_HOURS", OUTBOX_QUIET_HOURS) or []),
        "quiet_channels": list(setting("OUTBOX_QUIET_CHANNELS", OUTBOX_QUIET_CHANNELS) or []),
        "stale_claim": int(setting("OUTBOX_STALE_CLAIM_MINUTES", OUTBOX_STALE_CLAIM_MINUTES)),
        # Extra channel instances by name (tests and plug-ins); they win over the built-in ones.
        "extra_channels": dict(setting("OUTBOX_CHANNELS", None) or {}),
        "default_channels": list(setting("OUTBOX_DEFAULT_CHANNELS", OUTBOX_DEFAULT_CHANNELS) or []),
    }


# Reminders (`matcher/reminders.py`), each `LINLI_REMINDER_*`; clock times are local (TIMEZONE):
REMINDER_DAY_BEFORE_AT = "18:00"        # the evening before: each volunteer's accepted services of tomorrow
REMINDER_URGENT_BEFORE_MINUTES = 120    # before each accepted service of an urgent demand
REMINDER_CHECKIN_AT = "07:30"           # the service day's morning: the community worker's list of services
REMINDER_GRACE_MINUTES = 120            # a reminder not written this long after its time is dropped


def reminder_settings() -> dict[str, Any]:
    """The reminders' settings as plain values (clock times as (hour, minute)); a bad value says which."""
    def clock(name: str, default: str) -> tuple[int, int]:
        value = str(setting(name, default)).strip()
        hours, _, minutes = value.partition(":")
        try:
            hour, minute = int(hours), int(minutes)
        except ValueError:
            hour = minute = -1
        if not (0 <= hour < 24 and 0 <= minute < 60):
            raise ValueError(f"{name}: {value!r} is not a time of day (HH:MM)")
        return hour, minute

    return {
        "day_before_at": clock("REMINDER_DAY_BEFORE_AT", REMINDER_DAY_BEFORE_AT),
        "urgent_before": max(1, int(setting("REMINDER_URGENT_BEFORE_MINUTES", REMINDER_URGENT_BEFORE_MINUTES))),
        "checkin_at": clock("REMINDER_CHECKIN_AT", REMINDER_CHECKIN_AT),
        "grace": max(1, int(setting("REMINDER_GRACE_MINUTES", REMINDER_GRACE_MINUTES))),
    }


# The email channel (`matcher/channels/email.py`): off until SMTP_HOST and SMTP_FROM are set (`LINLI_SMTP_*`).
SMTP_PORT = 587
SMTP_TIMEOUT_SECONDS = 10.0


def smtp_settings() -> dict[str, Any]:
    """The SMTP server's settings as plain values."""
    return {
        "host": str(setting("SMTP_HOST", "") or ""),
        "port": int(setting("SMTP_PORT", SMTP_PORT)),
        "user": str(setting("SMTP_USER", "") or ""),
        "password": str(setting("SMTP_PASSWORD", "") or ""),
        "from": str(setting("SMTP_FROM", "") or ""),
        "starttls": bool(setting("SMTP_STARTTLS", True)),
        "timeout": float(setting("SMTP_TIMEOUT_SECONDS", SMTP_TIMEOUT_SECONDS)),
    }


# Part workers (`solver/rq_parts.py`; docs/operations.md, "Part workers"): a solve hands its parts to
# the RQ workers listening on SOLVE_PARTS_QUEUE of SOLVE_PARTS_REDIS_URL (else REDIS_URL) while any
# are running, and solves on its own machine otherwise. An empty queue name turns this off.
SOLVE_PARTS_QUEUE = "linli-parts"


def solve_parts_settings() -> dict[str, Any]:
    """Where a solve's parts may go, as plain values: the Redis URL ("" for none) and the queue."""
    return {
        "redis_url": str(setting("SOLVE_PARTS_REDIS_URL", "") or setting("REDIS_URL", "") or ""),
        "queue": str(setting("SOLVE_PARTS_QUEUE", SOLVE_PARTS_QUEUE) or ""),
    }
