"""The domain's settings: the one place `matcher` reads the running application's configuration.

Code holds defaults; a deployment changes them through the app config (`LINLI_*` variables, see
`web/config.py`). Outside an application (a plain script, the solver's threads) the defaults hold.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, has_app_context


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
