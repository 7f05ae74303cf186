"""Template filters and globals: labels in the user's language, masked phones, times."""

from __future__ import annotations

from datetime import timedelta

import phonenumbers
from flask import Flask
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l

from matcher import rules
from matcher.models import BOOKED, CLOSED, FILLING, HELD, PENDING, STANDING

from .i18n import lazy_text

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
    # assignment states
    "proposed": _l("Proposed"), "offered": _l("Offered, awaiting reply"), "accepted": _l("Accepted"),
    "declined": _l("Declined"), "checked_in": _l("Checked in"), "completed": _l("Completed"),
    "no_show": _l("No-show"),
    # solve runs
    "queued": _l("Queued"), "building": _l("Building the model"), "solving": _l("Solving"),
    "failed": _l("Failed"), "superseded": _l("Superseded"),
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

# Why a volunteer was chosen, and why a demand was left short (the solver's codes).
REASONS = {
    "pinned": _l("set by the coordinator"), "override": _l("rule override recorded"),
    "kept_from_previous": _l("kept from the published schedule"), "familiar": _l("knows the resident"),
    "same_volunteer_for_resident": _l("same volunteer for this resident"), "skills_match": _l("has the skills"),
    "organization_team": _l("from the responsible organization"), "nearest_free": _l("nearest free volunteer"),
    "no_candidate_with_skills": _l("nobody with the skills"), "no_candidate_of_gender": _l("nobody of the gender asked"),
    "no_candidate_in_organizations": _l("nobody in the organizations asked"),
    "none_available_then": _l("nobody free then"), "none_within_range": _l("nobody within travel range"),
    "candidates_busy_elsewhere": _l("candidates busy elsewhere"), "weekly_hours_used_up": _l("weekly hours used up"),
    "below_minimum_team": _l("not enough people for the minimum team"),
    "lower_priority_than_competing_demands": _l("more urgent demands came first"),
    "declined_or_forbidden": _l("declined or handed back"),
    "no_single_organization_team": _l("no single organization can field the team"),
    "not_worth_travel_or_overtime": _l("only far or overtime volunteers left"),
}

WEEKDAYS = [_l("Mon"), _l("Tue"), _l("Wed"), _l("Thu"), _l("Fri"), _l("Sat"), _l("Sun")]


def label(value) -> str:
    """Translated label for an enum value or code."""
    if value is None:
        return ""
    key = getattr(value, "value", value)
    return lazy_text(LABELS.get(key, key))


def local_name(obj) -> str:
    """The Chinese or English name of a catalogue row, following the current locale."""
    if obj is None:
        return ""
    return obj.name_en if current_language() == "en" else obj.name_zh


def current_language() -> str:
    """'en' or 'zh' for the language in use."""
    return "en" if str(get_locale() or "zh_CN").startswith("en") else "zh"


def spaced_phone(phone: str | None) -> str:
    """A stored E.164 number in national format with spaces, as people read it: 131 9086 0062."""
    if not phone:
        return ""
    try:
        number = phonenumbers.parse(phone, "CN")
    except phonenumbers.NumberParseException:
        return rules.national_phone(phone)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)


def register_template_helpers(app: Flask) -> None:
    """Expose the helpers to Jinja."""
    app.jinja_env.globals["current_language"] = current_language
    app.jinja_env.filters["label"] = label
    app.jinja_env.filters["reason"] = lambda code: str(REASONS.get(code, code))
    app.jinja_env.globals["timedelta"] = timedelta
    app.jinja_env.filters["local_name"] = local_name
    app.jinja_env.filters["mask_phone"] = rules.mask_phone
    app.jinja_env.filters["national_phone"] = rules.national_phone
    app.jinja_env.filters["spaced_phone"] = spaced_phone
    app.jinja_env.filters["hhmm"] = rules.format_minutes
    app.jinja_env.globals["WEEKDAYS"] = WEEKDAYS
    # The status groups, as the domain defines them (templates never re-spell them).
    app.jinja_env.globals.update(PENDING=PENDING, HELD=HELD, BOOKED=BOOKED, STANDING=STANDING, FILLING=FILLING,
                                 CLOSED=CLOSED)
    app.jinja_env.globals["star_level"] = lambda hours: rules.star_level(hours, app.config["STAR_THRESHOLDS"])
