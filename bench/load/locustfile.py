"""Linli under a district's load: the five roles' page mixes and the burst after publishing (locust).

Run by bench/load_test.py, which builds the demo, starts gunicorn, signs the sessions in and hands them
over in a JSON file (LINLI_LOAD_SESSIONS): no user here ever posts a password, so the login limit is
never in play during the measurement. Every request is named by its route rule (bench/load/pages.py),
never by a URL with ids, and written to LINLI_LOAD_LOG (one CSV line per request) for the report.

Users, with 0.5-1.5 s between clicks:

- PublishBurst: a volunteer just told of new offers: opens the offers, answers them one by one (mostly
  accepting), then browses like any volunteer. Each burst user has a volunteer of their own, with offers
  nobody answered yet; it is the heaviest class, so the answers all come in the first minute of a step.
- Volunteer: offers (answering one now and then), my week, record, notifications.
- CommunityWorker: this week, demands, a demand, a service's check-in code page.
- Coordinator: dashboard, schedules, the district's review page (whole and by street) or their street's
  part of it, a service's page, who was told.
- OrganizationLeader: team, members.  Administrator: audit log, accounts.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import random
import re
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

from locust import HttpUser, between, events, task

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pages import name  # noqa: E402

ACCEPT_SHARE = 0.85  # of the offers answered, the share accepted (the rest declined: "not free then")
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
OFFER = re.compile(r"/me/offers/(\d+)/accept")


def _load_sessions() -> dict:
    path = os.environ.get("LINLI_LOAD_SESSIONS")
    return json.loads(Path(path).read_text()) if path else {"sessions": {}, "user_agent": "linli-load"}


SETUP = _load_sessions()
_taken = {role: itertools.count() for role in ("burst", "volunteer", "worker", "coordinator", "leader", "admin")}


def take_session(role: str) -> dict:
    """The next signed-in session of a role: burst users each get their own while any are left."""
    sessions = SETUP["sessions"].get(role) or []
    if not sessions:
        raise RuntimeError(f"no {role} session in {os.environ.get('LINLI_LOAD_SESSIONS')}")
    return sessions[next(_taken[role]) % len(sessions)]


# One CSV line per request: start time, name, milliseconds, bytes, ok, error.
_log: dict = {}


@events.test_start.add_listener
def _open_log(environment, **_kwargs) -> None:
    path = os.environ.get("LINLI_LOAD_LOG")
    if path:
        _log["file"] = open(path, "a", newline="")  # noqa: SIM115 (closed on test_stop)
        _log["csv"] = csv.writer(_log["file"])


@events.request.add_listener
def _record(request_type, name, response_time, response_length, exception=None, **_kwargs) -> None:
    if "csv" in _log:
        _log["csv"].writerow([f"{time.time():.3f}", name, f"{response_time:.1f}", response_length or 0,
                              0 if exception else 1, str(exception)[:120] if exception else ""])


@events.test_stop.add_listener
def _close_log(environment, **_kwargs) -> None:
    if "file" in _log:
        _log.pop("csv")
        _log.pop("file").close()


class LinliUser(HttpUser):
    """A signed-in person of one role, with the session the runner signed in."""

    abstract = True
    role = ""
    wait_time = between(0.5, 1.5)

    def on_start(self) -> None:
        self.session = take_session(self.role)
        self.client.headers["User-Agent"] = SETUP["user_agent"]  # the session is bound to it ("strong")
        # Host-only cookies, as the server sets them: a cookie without the host beside a refreshed one
        # would send two session cookies (and the older one's CSRF secret).
        host = urlparse(self.host).hostname
        for key, value in self.session["cookies"].items():
            self.client.cookies.set(key, value, domain=host)
        self.csrf = ""
        self.refused: set[str] = set()

    def page(self, key: str, path: str, street: bool = False) -> str | None:
        """GET a page; a failure unless it answers 200 without sending the user to the login page."""
        with self.client.get(path, name=name(key, street), catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}")
                return None
            if "/login" in response.url:
                response.failure("sent to the login page")
                return None
            found = CSRF.search(response.text)
            if found:
                self.csrf = found.group(1)
            response.success()
            return response.text

    def post(self, key: str, path: str, data: dict, refusals: tuple[int, ...] = ()) -> str | None:
        """POST a form; a failure unless it redirects, or answers one of `refusals` (the page refusing the
        change with a message a person reads, e.g. 409 for an offer that clashes with one accepted
        since). Returns where it redirects to (None for a refusal)."""
        with self.client.post(path, name=name(key), data={"csrf_token": self.csrf, **data},
                              allow_redirects=False, catch_response=True) as response:
            location = response.headers.get("Location", "")
            if response.status_code in refusals:
                response.success()
                return None
            if response.status_code not in (302, 303) or "/login" in location:
                response.failure(f"HTTP {response.status_code} {location}".strip())
                return None
            response.success()
            return location


class VolunteerUser(LinliUser):
    """Browses their offers, week, record and notices; answers an offer now and then."""

    abstract = True
    role = "volunteer"

    def answer(self, offers_html: str) -> bool:
        """Answer the first open offer on the page (accept, or now and then decline); False if none."""
        ids = [i for i in dict.fromkeys(OFFER.findall(offers_html)) if i not in self.refused]
        if not ids:
            return False
        offer = ids[0]
        if random.random() < ACCEPT_SHARE:
            location = self.post("accept", f"/me/offers/{offer}/accept", {}, refusals=(409,))
        else:
            location = self.post("decline", f"/me/offers/{offer}/decline", {"kind": "not_free", "reason": ""},
                                 refusals=(409,))
        if location:  # the browser follows the redirect at once
            self.follow(location)
        else:  # refused (it clashes with one accepted since) or an error: a person would not press it again
            self.refused.add(offer)
        return True

    def follow(self, location: str) -> None:
        path = re.sub(r"^https?://[^/]+", "", location)
        key = "my_week" if path.startswith("/me/week") else "offers" if path.startswith("/me/offers") else None
        if key:
            self.page(key, path)

    def browse(self) -> None:
        """One click of a volunteer's usual mix: offers (answering one now and then), week, record, notices."""
        key = random.choices(("offers", "my_week", "record", "notifications", "dashboard"), (3, 3, 1, 2, 1))[0]
        if key != "offers":
            self.page(key, {"my_week": "/me/week", "record": "/me/record", "notifications": "/notifications",
                            "dashboard": "/dashboard"}[key])
            return
        html = self.page("offers", "/me/offers")
        if html and random.random() < 0.3:
            self.wait()
            self.answer(html)


class Volunteer(VolunteerUser):
    weight = 14

    @task
    def click(self) -> None:
        self.browse()


class PublishBurst(VolunteerUser):
    """A volunteer just told of their offers: opens them and answers every one, then browses."""

    weight = 18
    role = "burst"

    def on_start(self) -> None:
        super().on_start()
        self.answering = True

    @task
    def click(self) -> None:
        if not self.answering:
            self.browse()
            return
        html = self.page("offers", "/me/offers")
        if html is not None:
            self.wait()
            self.answering = self.answer(html)


class CommunityWorker(LinliUser):
    """This week's services of the community, its demands, one demand, a service's code page."""

    weight = 8
    role = "worker"

    @task(4)
    def week(self) -> None:
        self.page("community_week", "/community/week")

    @task(2)
    def demands(self) -> None:
        self.page("demands", "/demands")

    @task(2)
    def demand(self) -> None:
        if self.session["demands"]:
            self.page("demand", f"/demands/{random.choice(self.session['demands'])}")

    @task(1)
    def code(self) -> None:
        if self.session["occurrences"]:
            self.page("code", f"/community/occurrences/{random.choice(self.session['occurrences'])}/code")

    @task(1)
    def dashboard(self) -> None:
        self.page("dashboard", "/dashboard")


class Coordinator(LinliUser):
    """The district's coordinator (whole week, and one street at a time) or a street's (their part)."""

    weight = 5
    role = "coordinator"

    @task(2)
    def dashboard(self) -> None:
        self.page("dashboard", "/dashboard")

    @task(2)
    def schedules(self) -> None:
        self.page("schedules", "/schedules")

    @task(3)
    def review(self) -> None:
        schedule, streets = self.session["schedule"], self.session["streets"]
        if self.session["part"]:  # a street's coordinator on the district's week: their street's part
            self.page("schedule", f"/schedules/{schedule}", street=True)
        elif streets and random.random() < 0.5:
            self.page("schedule", f"/schedules/{schedule}?street={random.choice(streets)}", street=True)
        else:
            self.page("schedule", f"/schedules/{schedule}")

    @task(2)
    def occurrence(self) -> None:
        if self.session["occurrences"]:
            occurrence = random.choice(self.session["occurrences"])
            self.page("occurrence", f"/schedules/{self.session['schedule']}/occurrences/{occurrence}")

    @task(1)
    def delivery(self) -> None:
        self.page("delivery", f"/schedules/{self.session['schedule']}/delivery")


class OrganizationLeader(LinliUser):
    weight = 3
    role = "leader"

    @task(3)
    def team(self) -> None:
        self.page("team", "/team")

    @task(2)
    def members(self) -> None:
        self.page("members", "/team/members")

    @task(1)
    def dashboard(self) -> None:
        self.page("dashboard", "/dashboard")


class Administrator(LinliUser):
    weight = 2
    role = "admin"

    @task(2)
    def audit(self) -> None:
        self.page("audit", "/admin/audit")

    @task(2)
    def accounts(self) -> None:
        self.page("accounts", "/accounts")

    @task(1)
    def dashboard(self) -> None:
        self.page("dashboard", "/dashboard")
