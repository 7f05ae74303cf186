"""The service's local time. Occurrence times are stored as naive local times (Asia/Shanghai by
default, config TIMEZONE), so every "now" that is compared with them must come from here, not from
the machine's clock, which may well run on UTC."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from .settings import setting

DEFAULT_TIMEZONE = "Asia/Shanghai"


def local_now() -> datetime:
    """Now in the service's time zone, naive (like the stored occurrence times)."""
    return datetime.now(ZoneInfo(setting("TIMEZONE", DEFAULT_TIMEZONE))).replace(tzinfo=None)


def local_today() -> date:
    """Today's date in the service's time zone."""
    return local_now().date()
