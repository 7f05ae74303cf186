"""The pages the load test opens: each named by its Flask route rule, grouped for the plot.

Plain data with no locust import, so the test suite checks every rule against the app's URL map
(tests/test_load_harness.py) without the load client installed. A request's name in the results is
`"<METHOD> <rule>"`, plus a `[street]` tag where the same rule is opened narrowed to one street.
"""

from __future__ import annotations

# key: (method, Flask route rule, group in the plot)
PAGES: dict[str, tuple[str, str, str]] = {
    # Volunteers
    "offers": ("GET", "/me/offers", "volunteer"),
    "accept": ("POST", "/me/offers/<int:assignment_id>/accept", "volunteer: answering offers"),
    "decline": ("POST", "/me/offers/<int:assignment_id>/decline", "volunteer: answering offers"),
    "my_week": ("GET", "/me/week", "volunteer"),
    "record": ("GET", "/me/record", "volunteer"),
    "notifications": ("GET", "/notifications", "volunteer"),
    "dashboard": ("GET", "/dashboard", "dashboard"),
    # Community workers
    "community_week": ("GET", "/community/week", "community worker"),
    "demands": ("GET", "/demands", "community worker"),
    "demand": ("GET", "/demands/<int:demand_id>", "community worker"),
    "code": ("GET", "/community/occurrences/<int:occurrence_id>/code", "community worker"),
    # Coordinators
    "schedules": ("GET", "/schedules", "coordinator: schedule pages"),
    "schedule": ("GET", "/schedules/<int:schedule_id>", "coordinator: schedule pages"),
    "occurrence": ("GET", "/schedules/<int:schedule_id>/occurrences/<int:occurrence_id>",
                   "coordinator: schedule pages"),
    "delivery": ("GET", "/schedules/<int:schedule_id>/delivery", "coordinator: schedule pages"),
    # Organization leaders
    "team": ("GET", "/team", "organization leader"),
    "members": ("GET", "/team/members", "organization leader"),
    # Administrators
    "audit": ("GET", "/admin/audit", "administrator"),
    "accounts": ("GET", "/accounts", "administrator"),
}

STREET_TAG = " [street]"


def name(key: str, street: bool = False) -> str:
    """The name a request to page `key` is reported under: its method and route rule."""
    method, rule, _group = PAGES[key]
    return f"{method} {rule}{STREET_TAG if street else ''}"


def group_of(request_name: str) -> str:
    """The plot group of a reported request name ("other" for one this module does not list)."""
    bare = request_name.removesuffix(STREET_TAG)
    for method, rule, group in PAGES.values():
        if bare == f"{method} {rule}":
            return group
    return "other"
