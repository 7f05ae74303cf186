"""Template filters and globals: labels in the user's language, masked phones, times."""

from __future__ import annotations

from flask import Flask
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l

from matcher import rules

LABELS = {
    # roles
    "admin": _l("Administrator"), "coordinator": _l("Coordinator"), "worker": _l("Community worker"),
    "org_leader": _l("Organization leader"), "volunteer": _l("Volunteer"),
    # area levels
    "district": _l("District"), "township": _l("Township/street"), "community": _l("Village/community"),
    # priorities
    "urgent": _l("Urgent"), "high": _l("High"), "normal": _l("Normal"), "low": _l("Low"),
    # demand / schedule states
    "draft": _l("Draft"), "open": _l("Open"), "scheduled": _l("Scheduled"), "done": _l("Done"),
    "cancelled": _l("Cancelled"), "published": _l("Published"),
    # organization types
    "community_affairs": _l("Community affairs"), "charity": _l("Charity"),
    "culture_sports": _l("Culture & sports"), "life_services": _l("Life services"),
    "rural_council": _l("Rural council"),
    # membership
    "leader": _l("Leader"), "member": _l("Member"), "applied": _l("Applied"), "approved": _l("Approved"),
    # location kinds
    "home": _l("Resident's home"), "station": _l("Station"), "point": _l("Point on the map"),
    # gender
    "F": _l("Female"), "M": _l("Male"),
}

WEEKDAYS = [_l("Mon"), _l("Tue"), _l("Wed"), _l("Thu"), _l("Fri"), _l("Sat"), _l("Sun")]


def label(value) -> str:
    """Translated label for an enum value or code."""
    if value is None:
        return ""
    key = getattr(value, "value", value)
    return str(LABELS.get(key, key))


def local_name(obj) -> str:
    """The Chinese or English name of a catalogue row, following the current locale."""
    if obj is None:
        return ""
    return obj.name_en if current_language() == "en" else obj.name_zh


def current_language() -> str:
    """'en' or 'zh' for the language in use."""
    return "en" if str(get_locale() or "zh_CN").startswith("en") else "zh"


def register_template_helpers(app: Flask) -> None:
    """Expose the helpers to Jinja."""
    app.jinja_env.globals["current_language"] = current_language
    app.jinja_env.filters["label"] = label
    app.jinja_env.filters["local_name"] = local_name
    app.jinja_env.filters["mask_phone"] = rules.mask_phone
    app.jinja_env.filters["hhmm"] = rules.format_minutes
    app.jinja_env.globals["WEEKDAYS"] = WEEKDAYS
    app.jinja_env.globals["star_level"] = lambda hours: rules.star_level(hours, app.config["STAR_THRESHOLDS"])
