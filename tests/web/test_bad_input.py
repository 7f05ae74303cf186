"""Bad input everywhere: every form field and query parameter of every route, as its rightful user.

`ROUTES` lists, per route, the parameters the view reads (found by reading the views) with a
valid baseline request; each parameter in turn gets the values of its kind from `CORPUS`: huge and
negative numbers, other scripts' digits ("١٢٣", "²", "１２"), empty, 10,000 characters, NUL, far
dates (0001-01-01, 9999-12-31), wrong types (a repeated parameter where one value is expected),
markup. At most 25 values per parameter, always the same ones.

For every request: no server error (5xx), and when the request is refused (4xx) the database is
exactly as before (every row of every table; a wrong password or check-in code is a guess, and its
audit entry and throttle counter are kept on purpose: that is how guesses are counted). An accepted request (some values are fine: a title
written in another script) is undone before the next one. GET routes are checked once after all
their values (they write nothing).

Cases that still fail in files other engineers own are in `KNOWN_ELSEWHERE`: the corpus does not
send them and `test_known_elsewhere` shows each as a skip naming the file and the failing line, until
that file is fixed and the entry removed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from werkzeug.datastructures import MultiDict

from matcher.clock import local_today
from matcher.db import db as _db
from matcher.demands import create_demand
from matcher.models import Assignment, AssignmentStatus
from tests.conftest import PASSWORD, Auth
from tests.web.test_route_matrix import (
    TABLE,
    USERNAMES,
    WriteWatch,
    build_scene,
    changed_tables,
    fill,
    restore,
    table_state,
    url_map_rows,
    value_of,
)


class Many(list):
    """A parameter sent more than once (?a=1&a=2): a list where the view expects one value."""


# label -> value; the labels name the cases (and the KNOWN_ELSEWHERE entries).
COMMON = {
    "empty": "", "overlong": "x" * 10_000, "nul": "a\x00b", "repeated": Many(["1", "2"]),
    "arabic-digits": "١٢٣", "superscript": "²", "fullwidth": "１２", "markup": "<b>é</b>'\"&;--",
}
NUMBERS = {
    "negative": "-1", "below-bigint": str(-(2**63) - 1), "above-bigint": str(2**63), "30-digits": "1" * 30,
    "10k-digits": "9" * 10_000, "decimal": "1.5", "exponent": "1e3", "nan": "NaN",
}
DATES = {
    "year-1": "0001-01-01", "year-9999": "9999-12-31", "year-2020": "2020-01-01", "feb-30": "2026-02-30",
    "arabic-date": "٢٠٢٦-١٢-٠١", "datetime": "2026-12-01T10:00", "30-digits": "1" * 30,
}
CLOCKS = {"25:00": "25:00", "arabic-time": "٠٩:٠٠", "seconds": "09:00:00", "negative-time": "-1:00"}
LINES = {"far-away": "away 9999-12-31", "year-1-away": "away 0001-01-01 09:00-10:00",
         "arabic-away": "away ٢٠٢٦-١٢-٠١", "nul-note": "away {next_monday} 09:00-10:00 a\x00b",
         "arabic-slot": "١ 09:00-10:00", "superscript-slot": "² 09:00-10:00", "huge-slot": "9" * 30 + " 09:00-10:00"}
KINDS = {"text": {}, "number": NUMBERS, "date": DATES, "clock": CLOCKS, "lines": LINES}


def corpus(kind: str) -> dict:
    values = {**COMMON, **KINDS[kind]}
    assert len(values) <= 25
    return values


@dataclass
class Route:
    """One route's parameters. `rule` is the URL map's rule, its ids filled with the rightful user's
    own objects (`args` picks other scene objects); `base` is a valid request (values may name scene
    objects as "{key}"); `params` maps each parameter to its kind, and `when` gives a parameter the
    baseline it needs to be read at all (e.g. the station of a demand is read only for a demand at a
    station)."""

    method: str
    rule: str
    user: str
    params: dict[str, str]
    base: dict = field(default_factory=dict)
    when: dict[str, dict] = field(default_factory=dict)
    query: tuple[str, ...] = ()  # parameters a POST reads from the query string
    may_log: frozenset[str] = frozenset()  # tables a refusal writes on purpose
    args: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.method} {self.rule}"

    def path(self, scene: dict) -> str:
        return fill(self.rule, lambda name: scene[self.args[name]] if name in self.args
                    else value_of(scene, self.rule, name, self.user, "own"))


WEEK = {"week": "date"}
# A wrong password or check-in code is a guess: audited and counted (web/auth.py, matcher/throttle.py), on purpose.
GUESSES = frozenset({"audit_log", "throttle_counters"})
LIST_PAGE = {"q": "text", "page": "number"}
DEMAND_FORM = {
    "category": "text", "title": "text", "resident": "number", "location_kind": "text", "station": "number",
    "address": "text", "lat": "number", "lon": "number", "date": "date", "start": "clock", "end": "clock",
    "recurring": "text", "weekdays": "number", "repeat_until": "date", "people": "number",
    "min_people": "number", "priority": "text", "gender": "text", "notes": "text", "skills_override": "text",
    "skills": "text", "skills_any": "text", "organizations": "number", "one_organization": "text",
}
DEMAND_BASE = {"category": "culture_sports", "title": "Film night", "location_kind": "station",
               "station": "{station_a1}", "date": "{next_monday}", "start": "19:00", "end": "21:00",
               "people": "2", "min_people": "1", "priority": "normal"}
DEMAND_WHEN = {
    "resident": {"location_kind": "home"},
    "lat": {"location_kind": "point", "lon": "107.705"}, "lon": {"location_kind": "point", "lat": "29.345"},
    "weekdays": {"recurring": "1"}, "repeat_until": {"recurring": "1", "weekdays": "0"},
    "skills": {"skills_override": "1"}, "skills_any": {"skills_override": "1"},
}
PROFILE_BASE = {"slot_day": Many(["0", "4"]), "slot_start": Many(["08:00", "14:00"]),
                "slot_end": Many(["12:00", "18:00"]), "exc_date": "{next_monday}", "exc_kind": "away",
                "exc_start": "08:00", "exc_end": "12:00", "exc_note": "trip",
                "max_hours_per_week": "5", "preferred_hours_per_week": "2", "max_travel_km": "6",
                "skills": "elder_care", "lat": "29.347", "lon": "107.707", "address": "桂花社区5栋"}

GUARDIAN_FORM = {"guardian_name": "text", "guardian_phone": "text", "guardian_relation": "text",
                 "guardian_consent": "text"}
REGISTER_FORM = {"real_name": "text", "phone": "text", "password": "text", "repeat": "text", "birth_date": "date",
                 "home_area": "number", "organizations": "number", "skills": "text", "address": "text",
                 "slot_day": "number", "slot_start": "clock", "slot_end": "clock", "availability": "lines",
                 **GUARDIAN_FORM}
REGISTER_BASE = {"real_name": "刘新", "phone": "13955556666", "password": "lantern-orchard-cobalt",
                 "repeat": "lantern-orchard-cobalt", "birth_date": "1980-05-01", "home_area": "{community_a1}",
                 "skills": "elder_care", "slot_day": "0", "slot_start": "09:00", "slot_end": "12:00"}
# The guardian's fields are read for someone under 18 only.
MINOR = {"birth_date": "{minor_birth_date}", "guardian_name": "刘母", "guardian_phone": "13955557777",
         "guardian_relation": "母亲", "guardian_consent": "1"}
REGISTER_WHEN = {key: MINOR for key in GUARDIAN_FORM}

ROUTES = [
    # --- lists and weeks (query strings)
    Route("GET", "/dashboard", "vol", WEEK),
    Route("GET", "/demands", "coord", {**LIST_PAGE, "status": "text", "category": "text", "review": "text"}),
    Route("GET", "/volunteers", "coord", {**LIST_PAGE, "skill": "text"}),
    Route("GET", "/organizations", "coord", {**LIST_PAGE, "type": "text", "registration": "text"}),
    Route("GET", "/residents", "coord", LIST_PAGE),
    Route("GET", "/admin/audit", "admin", {"page": "number"}),
    Route("GET", "/accounts", "coord", {**LIST_PAGE, "role": "text", "area": "number", "state": "text"}),
    Route("GET", "/community/week", "worker", WEEK),
    Route("GET", "/team", "leader", WEEK),
    Route("GET", "/communities/<int:area_id>/week.<any(pdf, html):fmt>", "worker", WEEK),
    Route("GET", "/organizations/<int:organization_id>/week.<any(pdf, html):fmt>", "leader", WEEK),
    Route("GET", "/team/members", "leader", LIST_PAGE),
    Route("GET", "/me/week", "vol", WEEK),
    Route("GET", "/checkin", "vol", {"occurrence": "number", "code": "text", "t": "text"}),
    Route("GET", "/schedules/<int:schedule_id>", "coord", {"category": "text", "priority": "text", "organization": "number",
                                                        "street": "number"}),
    Route("GET", "/schedules/<int:schedule_id>/occurrences/<int:occurrence_id>", "coord", {"q": "text"}),
    # --- service records, certificates, recognition (web/records.py, web/recognition.py)
    Route("GET", "/me/record/corrections/new", "vol", {"assignment": "number", "entry": "number"}),
    Route("POST", "/me/record/corrections/new", "vol", {"field": "text", "assignment": "number", "entry": "number",
                                                       "hours": "number", "organization": "number", "reason": "text"},
          base={"field": "other", "reason": "A first-aid course is missing"}),
    Route("POST", "/me/certificates/new", "vol", {"shown": "text", "start": "date", "end": "date"},
          base={"shown": "hours"}),
    Route("GET", "/records", "coord", {"q": "text"}),
    Route("POST", "/records/corrections/<int:correction_id>/decide", "leader", {"decision": "text", "reason": "text"},
          base={"decision": "reject", "reason": "We have no such course"}),
    Route("POST", "/records/volunteers/<int:volunteer_id>/entries", "leader",
          {"kind": "text", "title": "text", "on": "date", "hours": "number", "note": "text", "organization": "number"},
          base={"kind": "training", "title": "First aid", "on": "2025-06-01", "hours": "4"}),
    Route("GET", "/reports/preview", "coord", {"area": "number", "period": "text", "start": "date", "end": "date"},
          base={"area": "{town_a}", "period": "dates", "start": "2025-01-01", "end": "2025-03-31"}),
    Route("POST", "/reports/preview", "coord", {"area": "number", "period": "text", "start": "date", "end": "date",
                                                "suggestions": "text", "cases": "text"},
          base={"area": "{town_a}", "period": "dates", "start": "2025-01-01", "end": "2025-03-31",
                "suggestions": "Recruit more volunteers"}),
    Route("POST", "/recognition", "coord", {"area": "number", "start": "date", "end": "date"},
          base={"area": "{town_a}", "start": "2025-01-01", "end": "2025-12-31"}),
    Route("POST", "/account/tokens", "coord", {"name": "text", "scopes": "text", "days": "number"},
          base={"name": "district platform", "scopes": "read", "days": "90"}),
    Route("POST", "/notifications/settings", "vol", {"first": "text", "second": "text", "third": "text", "email": "text",
                                                      "wechat_subscribed": "text"}, base={"first": "sms"}),
    Route("GET", "/schedules/<int:schedule_id>/delivery", "coord", {"show": "text", "page": "number", "q": "text"}),
    # --- exports (web/exports.py; the roster's and the week's read `reveal`, their POST a reason)
    Route("GET", "/schedules/<int:schedule_id>/export.<any(xlsx, csv):fmt>", "coord", {"sheet": "text", "reveal": "text"},
          base={"sheet": "people"}),
    Route("POST", "/schedules/<int:schedule_id>/export.<any(xlsx, csv):fmt>", "coord", {"reason": "text"}),
    Route("GET", "/volunteers/export.<any(xlsx, csv):fmt>", "coord", {"reveal": "text"}),
    Route("POST", "/volunteers/export.<any(xlsx, csv):fmt>", "coord", {"reason": "text"}),
    Route("GET", "/demands/export.<any(xlsx, csv):fmt>", "coord",
          {"q": "text", "status": "text", "category": "text", "review": "text", "week": "date", "sheet": "text",
           "reveal": "text"}),
    Route("POST", "/demands/export.<any(xlsx, csv):fmt>", "worker",
          {"reason": "text", "q": "text", "status": "text", "category": "text", "week": "date", "sheet": "text"},
          base={"reason": "电话回访老人"}, query=("q", "status", "category", "week", "sheet")),
    Route("GET", "/team/export.<any(xlsx, csv):fmt>", "leader", {**WEEK, "sheet": "text"}),
    Route("GET", "/me/week/export.<any(xlsx, csv):fmt>", "vol", WEEK),
    Route("POST", "/schedules/<int:schedule_id>/delivery/resend", "coord", {"volunteer": "number", "all": "text"}),
    Route("GET", "/login", "anon", {"next": "text"}),
    # --- sign-in, language, password
    Route("POST", "/login", "anon", {"username": "text", "password": "text", "remember": "text", "next": "text"},
          base={"username": "vol_a", "password": PASSWORD}, query=("next",), may_log=GUESSES),
    Route("POST", "/language/<code>", "vol", {"next": "text"}, base={"next": "/dashboard"}),
    Route("POST", "/account/password", "vol", {"current": "text", "new": "text", "repeat": "text"},
          base={"current": PASSWORD, "new": "another-horse-battery", "repeat": "another-horse-battery"},
          may_log=GUESSES),
    # --- administration
    Route("POST", "/admin/skills", "admin", {"code": "text", "name_zh": "text", "name_en": "text",
                                             "needs_certificate": "text"},
          base={"code": "knitting", "name_zh": "编织", "name_en": "Knitting"}),
    Route("POST", "/admin/categories/<int:category_id>", "admin",
          {"name_zh": "text", "name_en": "text", "default_minutes": "number", "default_people": "number",
           "default_min_people": "number", "skills": "text", "skills_any": "text", "active": "text"},
          base={"name_zh": "助老服务", "name_en": "Elderly care", "default_minutes": "90", "default_people": "1",
                "default_min_people": "1", "skills": "elder_care", "active": "1"}),
    # --- accounts (administrators and coordinators; the reset link is public)
    Route("POST", "/accounts/new", "coord", {"username": "text", "display_name": "text", "role": "text",
                                             "area": "number", "organization": "number"},
          base={"username": "worker_new", "display_name": "新社工", "role": "worker", "area": "{community_a1}"},
          when={"organization": {"role": "org_leader"}}),
    Route("POST", "/accounts/<int:user_id>/edit", "coord", {"role": "text", "area": "number", "organization": "number"},
          base={"role": "worker", "area": "{community_a2}"}, when={"organization": {"role": "org_leader"}}),
    Route("POST", "/accounts/<int:user_id>/lock", "coord", {"reason": "text"}, base={"reason": "Left the office"}),
    Route("POST", "/reset/<token>", "anon", {"password": "text", "repeat": "text"},
          base={"password": "another-horse-battery", "repeat": "another-horse-battery"}),
    # --- people in: registering, invitations, activation, guardian consent
    Route("POST", "/register", "anon", REGISTER_FORM, base={**REGISTER_BASE, "organizations": "{org_a}"},
          when=REGISTER_WHEN),
    Route("POST", "/join/<token>", "anon", {k: v for k, v in REGISTER_FORM.items() if k != "organizations"},
          base=REGISTER_BASE, when=REGISTER_WHEN),
    Route("POST", "/activate/<token>", "anon", {"phone_last4": "text", "birth_date": "date", "password": "text",
                                                "repeat": "text"},
          base={"phone_last4": "6666", "birth_date": "1980-05-01", "password": "lantern-orchard-cobalt",
                "repeat": "lantern-orchard-cobalt"}),
    Route("POST", "/invitations", "leader", {"note": "text"}, base={"note": "王阿姨"}),
    Route("POST", "/team/members/<int:membership_id>/guardian-consent", "leader", GUARDIAN_FORM,
          base={"guardian_name": "陈母", "guardian_phone": "13600007777", "guardian_relation": "母亲",
                "guardian_consent": "1"}),
    # --- residents and demands (the community worker)
    Route("POST", "/residents/new", "worker",
          {"name": "text", "phone": "text", "address": "text", "lat": "number", "lon": "number", "gender": "text",
           "birth_year": "number", "consent": "text", "needs_notes": "text", "consent_note": "text"},
          base={"name": "钱阿姨", "phone": "13700003333", "address": "桂花社区1栋", "lat": "29.3456",
                "lon": "107.7051", "gender": "F", "birth_year": "1950", "consent": "1"}),
    Route("POST", "/demands/new", "worker", DEMAND_FORM, base=DEMAND_BASE, when=DEMAND_WHEN),
    Route("POST", "/demands/<int:demand_id>/edit", "worker", {**DEMAND_FORM, "version": "number"},
          base={**DEMAND_BASE, "version": "{demand_a_version}"}, when=DEMAND_WHEN),
    Route("POST", "/demands/<int:demand_id>/cancel", "worker", {"version": "number", "reason": "text"},
          base={"version": "{demand_a_version}", "reason": "Nobody needs it"}),
    Route("POST", "/demands/<int:demand_id>/return", "coord", {"reason": "text"}),
    Route("POST", "/demands/review/approve", "coord", {"demand": "number"}),
    Route("POST", "/demands/review-settings", "coord", {"area": "number", "review": "text"},
          base={"area": "{town_a}", "review": "1"}),
    Route("POST", "/community/occurrences/<int:occurrence_id>/confirm", "worker", {"present": "number"},
          base={"present": "{past_accepted}"}, args={"occurrence_id": "past_occurrence"}),
    Route("POST", "/community/assignments/<int:assignment_id>/rate", "worker", {"rating": "number", "comment": "text"},
          base={"rating": "5", "comment": "Thank you"}, args={"assignment_id": "past_completed"}),
    # --- the organization leader
    Route("POST", "/team/assignments/<int:assignment_id>/swap", "leader", {"volunteer": "number"},
          base={"volunteer": "{volunteer_c}"}),
    Route("POST", "/team/occurrences/<int:occurrence_id>/hand-back", "leader", {"reason": "text"},
          base={"reason": "Our members are away that day"}),
    # --- the volunteer
    Route("POST", "/me/offers/<int:assignment_id>/accept", "vol", {"reason": "text"}),
    Route("POST", "/me/organizations", "vol", {"organization": "number"}),
    Route("POST", "/me/offers/<int:assignment_id>/decline", "vol", {"reason": "text", "kind": "text"},
          base={"reason": "Away", "kind": "other"}),
    Route("POST", "/me/offers/series/<int:demand_id>", "vol",
          {"answer": "text", "offer": "number", "kind": "text", "reason": "text"},
          base={"answer": "decline", "offer": "{assignment_a}", "kind": "other", "reason": "Away"}),
    Route("POST", "/checkin", "vol", {"occurrence": "number", "code": "text", "t": "text"},
          base={"occurrence": "{occurrence_a}", "code": "123456"}, may_log=GUESSES),
    Route("POST", "/me/profile", "vol",
          {"slot_day": "number", "slot_start": "clock", "slot_end": "clock", "exc_date": "date", "exc_kind": "text",
           "exc_start": "clock", "exc_end": "clock", "exc_note": "text", "max_hours_per_week": "number",
           "preferred_hours_per_week": "number", "max_travel_km": "number", "skills": "text", "lat": "number",
           "lon": "number", "address": "text"}, base=PROFILE_BASE),
    Route("POST", "/notifications/<int:notification_id>/read", "vol", {"open": "text"}),
    # --- the coordinator's schedule
    Route("POST", "/schedules/open", "coord", {"area": "number", "week": "date"},
          base={"area": "{town_a}", "week": "{next_monday}"}),
    Route("POST", "/schedules/<int:schedule_id>/solve", "coord", {"time_limit": "number"}, base={"time_limit": "5"}),
    Route("POST", "/schedules/<int:schedule_id>/publish", "coord", {"version": "number"}, base={"version": "1"}),
    Route("POST", "/schedules/<int:schedule_id>/occurrences/<int:occurrence_id>", "coord",
          {"volunteer": "number", "override_reason": "text"}, base={"volunteer": "{volunteer_b}"}),
    Route("POST", "/assignments/<int:assignment_id>/pin", "coord", {"pinned": "text", "version": "number"},
          base={"pinned": "1", "version": "1"}),
    Route("POST", "/assignments/<int:assignment_id>/remove", "coord", {"version": "number"}, base={"version": "1"}),
    Route("POST", "/assignments/<int:assignment_id>/move", "coord", {"target": "number", "override_reason": "text"},
          base={"target": "{occurrence_a}"}),
]

# Cases that still give a server error, in files other engineers own: not sent, shown as skips.
# (method, rule, parameter, value label) -> where it fails.
_NUL = "PostgreSQL refuses NUL in text (psycopg DataError) -> 500"
_BIGINT = "beyond BIGINT: SQLite OverflowError, PostgreSQL NumericValueOutOfRange -> 500"
KNOWN_ELSEWHERE: dict[tuple[str, str, str, str], str] = {}


# On SQLite the corpus sends only the values whose failures are SQLite's own (integers beyond 64 bits,
# dates out of range); PostgreSQL, stricter about text (NUL) and as strict about numbers, gets all of it.
SQLITE_KINDS = ("number", "date")


def _cases(route: Route, kinds: tuple[str, ...] | None = None):
    for param, kind in route.params.items():
        if kinds is not None and kind not in kinds:
            continue
        for label, value in corpus(kind).items():
            yield param, label, value


# ---------------------------------------------------------------------------------------- the scene


def _scene(world, next_monday) -> dict:
    """The route matrix's scene plus a service given yesterday (to confirm and to rate)."""
    scene = build_scene(world, next_monday, runs=False)
    yesterday = local_today() - timedelta(days=1)
    past = create_demand({"category": "culture_sports", "location_kind": "station",
                          "station": world["stations"]["C1"].id, "date": yesterday.isoformat(),
                          "start": "09:00", "end": "10:00", "people": "2", "min_people": "1"},
                         community=world["areas"]["a1"], user=world["users"]["worker_a1"], allow_past=True)
    occ = past.occurrences[0]
    accepted = Assignment(occurrence_id=occ.id, volunteer_id=world["volunteers"]["a"].id,
                          status=AssignmentStatus.ACCEPTED)
    completed = Assignment(occurrence_id=occ.id, volunteer_id=scene["volunteer_c"],
                           status=AssignmentStatus.COMPLETED)
    _db.session.add_all([accepted, completed])
    _db.session.commit()
    scene.update({
        "past_occurrence": occ.id, "past_accepted": accepted.id, "past_completed": completed.id,
        "station_a1": world["stations"]["C1"].id, "next_monday": next_monday.isoformat(),
        "town_a": world["areas"]["town_a"].id, "volunteer_b": world["volunteers"]["b"].id,
        "demand_a_version": world["demands"]["a1"].version, "notification_vol": scene["notifications"]["vol"],
        "minor_birth_date": f"{yesterday.year - 15}-06-01",
    })
    return scene


def _fill(text, scene):
    """A value naming scene objects ("{next_monday}") filled in; other values (a 10,000-character one) as they are."""
    if isinstance(text, str) and "{" in text and len(text) < 200:
        return text.format(**scene)
    return text


def _request(client, route: Route, scene: dict, param: str | None = None, value=None):
    data = {**route.base, **(route.when.get(param, {}) if param else {})}
    data = {k: _fill(v, scene) for k, v in data.items()}
    if param is not None:
        data[param] = value
    form, query = MultiDict(), MultiDict()
    for key, item in data.items():
        target = query if route.method == "GET" or key in route.query else form
        for one in (item if isinstance(item, Many) else [item]):
            target.add(key, one)
    path = route.path(scene)
    if route.method == "GET":
        return client.get(path, query_string=query)
    return client.post(path, data=form, query_string=query)


# ---------------------------------------------------------------------------------------- the tests


# Routes whose views read nothing but the ids in their URL (checked by test_bad_ids_in_urls_are_not_found).
NO_INPUT = {
    ("GET", "/"), ("GET", "/favicon.ico"), ("GET", "/healthz"), ("GET", "/static/<path:filename>"),
    ("GET", "/calendar/<token>.ics"), ("POST", "/logout"), ("GET", "/account/password"),
    ("GET", "/admin/catalogue"), ("GET", "/admin/categories/<int:category_id>"), ("GET", "/admin/notices"),
    ("GET", "/demands/<int:demand_id>"), ("GET", "/demands/<int:demand_id>/edit"), ("GET", "/demands/new"),
    ("GET", "/demands/<int:demand_id>/cancel"), ("POST", "/demands/<int:demand_id>/approve"),
    ("GET", "/demands/review-settings"),
    ("GET", "/residents/<int:resident_id>"), ("GET", "/residents/<int:resident_id>/reveal"),
    ("POST", "/residents/<int:resident_id>/reveal"), ("GET", "/residents/new"),
    ("GET", "/volunteers/<int:volunteer_id>"), ("GET", "/organizations/<int:organization_id>"),
    ("GET", "/community/occurrences/<int:occurrence_id>/code"), ("GET", "/team/occurrences/<int:occurrence_id>/hand-back"),
    ("POST", "/team/members/<int:membership_id>/<any(approve, reject):action>"),
    ("GET", "/team/assignments/<int:assignment_id>/swap"), ("GET", "/me/offers"), ("GET", "/me/record"),
    ("GET", "/me/profile"), ("POST", "/me/calendar/regenerate"), ("GET", "/me/assignments/<int:assignment_id>/reveal-phone"),
    ("POST", "/me/assignments/<int:assignment_id>/reveal-phone"), ("GET", "/notifications"),
    ("POST", "/notifications/read-all"), ("GET", "/schedules"), ("GET", "/runs/<int:run_id>.json"),
    ("GET", "/runs/<int:run_id>/instance.json"), ("GET", "/runs/<int:run_id>/solution.json"),
    ("POST", "/runs/<int:run_id>/apply"),
    ("GET", "/accounts/new"), ("GET", "/accounts/<int:user_id>"), ("POST", "/accounts/<int:user_id>/unlock"),
    ("POST", "/accounts/<int:user_id>/link"), ("POST", "/accounts/<int:user_id>/revoke"), ("GET", "/reset/<token>"),
    ("GET", "/register"), ("GET", "/join/<token>"), ("GET", "/activate/<token>"), ("GET", "/invitations"),
    ("POST", "/invitations/<int:link_id>/revoke"), ("POST", "/volunteers/<int:volunteer_id>/activation-link"),
    # A signed JSON body, not a form: off (404) in the test configuration; its bad bodies are in
    # tests/web/test_sms_receipts.py.
    ("POST", "/hooks/sms/receipts"),
    # WeChat's signed URL check and JSON pushes: off (404) in the test configuration; their bad
    # signatures and bodies are in tests/web/test_wechat_events.py.
    ("GET", "/hooks/wechat/events"), ("POST", "/hooks/wechat/events"),
    # The code is the path itself (a bad one is 404: tests/web/test_delivery.py).
    ("GET", "/n/<code>"), ("GET", "/notifications/settings"),
    # Spreadsheets: an upload is a file, not form fields (its bad files are in tests/web/test_imports.py
    # and tests/matcher/test_rosters.py); the rest read only their ids or the format in the path.
    ("GET", "/imports/volunteers"), ("POST", "/imports/volunteers"), ("GET", "/imports/<int:import_id>"),
    ("POST", "/imports/<int:import_id>/apply"), ("GET", "/imports/volunteers/template.<any(xlsx, csv):fmt>"),
    # The other imports (organizations, residents, demands) work the same way; a large file's job state
    # is read by id only (their bad files: tests/web/test_imports.py, tests/matcher/test_imports.py).
    ("GET", "/imports"), ("GET", "/imports/<int:import_id>.json"),
    ("GET", "/imports/demands"), ("POST", "/imports/demands"),
    ("GET", "/imports/demands/template.<any(xlsx, csv):fmt>"),
    ("GET", "/imports/organizations"), ("POST", "/imports/organizations"),
    ("GET", "/imports/organizations/template.<any(xlsx, csv):fmt>"),
    ("GET", "/imports/residents"), ("POST", "/imports/residents"),
    ("GET", "/imports/residents/template.<any(xlsx, csv):fmt>"),
    # API tokens: the list reads nothing; revoking reads only the id.
    ("GET", "/account/tokens"), ("POST", "/account/tokens/<int:token_id>/revoke"),
    # Service records and recognition: pages of one's own record or of one object by id; the public check.
    ("GET", "/me/record/full"), ("GET", "/me/record/corrections"), ("GET", "/me/certificates"),
    ("GET", "/me/certificates/new"), ("GET", "/certificates/<int:certificate_id>"),
    ("GET", "/certificates/<int:certificate_id>.pdf"), ("POST", "/certificates/<int:certificate_id>/revoke"),
    ("GET", "/verify/<code>"), ("GET", "/records/corrections/<int:correction_id>"),
    ("GET", "/records/volunteers/<int:volunteer_id>"), ("GET", "/recognition"), ("GET", "/recognition/<int:list_id>"),
    ("POST", "/recognition/<int:list_id>/approve"),
    ("GET", "/reports"), ("GET", "/reports/<int:report_id>"), ("GET", "/reports/<int:report_id>.pdf"),
    ("GET", "/reports/<int:report_id>.xlsx"),
}


def test_every_route_is_in_the_corpus_or_reads_no_input(app):
    """A new route (or a route's new form) needs its row in ROUTES, or its place in NO_INPUT."""
    listed = {(r.method, r.rule) for r in ROUTES}
    assert not listed & NO_INPUT
    served = url_map_rows(app)
    assert not served - listed - NO_INPUT, f"routes in neither ROUTES nor NO_INPUT: {sorted(served - listed - NO_INPUT)}"
    assert not (listed | NO_INPUT) - served, f"listed routes that do not exist: {sorted((listed | NO_INPUT) - served)}"


USERS = sorted({r.user for r in ROUTES})


@pytest.mark.parametrize("user", USERS)
def test_bad_input_is_refused_without_a_server_error_or_a_change(app, client, world, next_monday, user, monkeypatch):
    """Every route of one rightful user (one scene for all of them, put back after every write)."""
    monkeypatch.setattr("web.schedule.enqueue_solve", lambda run: "thread")
    scene = _scene(world, next_monday)
    sqlite = _db.engine.dialect.name == "sqlite"
    clients = [client]

    def sign_in():
        if user == "anon":
            clients[0] = app.test_client()  # signed out again, whatever the last case did
        else:
            assert Auth(clients[0]).login(USERNAMES[user]).status_code == 302
        return table_state()

    before = sign_in()
    problems = []
    with WriteWatch(_db.engine) as watch:
        for route in (r for r in ROUTES if r.user == user):
            watch.take()
            baseline = _request(clients[0], route, scene)
            baseline.close()
            if baseline.status_code >= 500:
                problems.append(f"{route.name}: the baseline request failed with {baseline.status_code}")
            if watch.take():
                restore(before)
                before = sign_in()
                watch.take()
            for param, label, value in _cases(route, SQLITE_KINDS if sqlite else None):
                if (route.method, route.rule, param, label) in KNOWN_ELSEWHERE:
                    continue
                response = _request(clients[0], route, scene, param, _fill(value, scene))
                response.close()
                case = f"{route.name} {param}={label}"
                if response.status_code >= 500:
                    problems.append(f"{case}: {response.status_code}")
                written = watch.take()
                if not written:
                    continue
                changed = [t for t in changed_tables(before, table_state()) if t not in route.may_log]
                if changed and response.status_code >= 400:
                    problems.append(f"{case}: refused with {response.status_code} but changed {changed}")
                restore(before)
                if "users" in written or user == "anon":
                    before = sign_in()  # a password, a session or a sign-in changed: start again from here
                watch.take()
    assert not changed_tables(before, table_state()), "the corpus left the database changed"
    assert not problems, f"as {user}:\n" + "\n".join(problems)


BAD_IDS = {"arabic-digits": "١", "fullwidth": "１２", "superscript": "²", "above-bigint": str(2**63),
           "above-integer": str(2**31), "bigint-max": str(2**63 - 1),
           "30-digits": "9" * 30, "10k-digits": "9" * 10_000, "negative": "-1", "zero": "0"}


def _rightful_role(rule: str) -> str:
    """The first role the route's table row lets in (a page, a redirect or a refused empty form)."""
    for role in ("admin", "coord", "worker", "leader", "vol"):
        if any(TABLE[(m, rule)][role][0] in ("200", "302", "400") for m in ("GET", "POST") if (m, rule) in TABLE):
            return role
    return "admin"


def test_bad_ids_in_urls_are_not_found(app, client, auth, world):
    """Every `<int:>` of every rule filled with a bad id, as the route's rightful user: 404 (405 for a
    method the rule lacks; a GET that only leads back to another page keeps its redirect)."""
    by_role: dict[str, list] = {}
    for rule in app.url_map.iter_rules():
        # (the JSON API's ids are tried with tokens: tests/api/test_schemathesis.py)
        if "<int:" in rule.rule and not rule.rule.startswith("/api/"):
            by_role.setdefault(_rightful_role(rule.rule), []).append(rule)
    before = table_state()
    problems = []
    with WriteWatch(_db.engine) as watch:
        for role, rules in sorted(by_role.items()):
            auth.login(USERNAMES[role])
            watch.take()
            for rule in rules:
                for label, bad in BAD_IDS.items():
                    path = fill(rule.rule, lambda name, bad=bad: "approve" if name == "action" else bad)
                    for method in ("GET", "POST"):
                        response = client.open(path, method=method)
                        response.close()
                        allowed = {404} if method in rule.methods else {404, 405}
                        if TABLE.get((method, rule.rule), {}).get(role, ("",))[0] == "302" and method == "GET":
                            allowed.add(302)
                        if response.status_code not in allowed:
                            problems.append(f"{method} {rule.rule} as {role} with {label}: {response.status_code}")
                        if watch.take():
                            problems.append(f"{method} {rule.rule} as {role} with {label}: wrote to the database")
            auth.logout()
    assert not problems, "\n".join(problems)
    restore(before)


@pytest.mark.parametrize("key", sorted(KNOWN_ELSEWHERE), ids=lambda k: " ".join(k))
def test_known_elsewhere(key):
    """Each case that still fails in another engineer's file, as a visible skip naming it."""
    method, rule, param, label = key
    pytest.skip(f"KNOWN_ELSEWHERE {method} {rule} {param}={label}: {KNOWN_ELSEWHERE[key]}")


# ------------------------------------------------------------------ the fixes, one by one


@pytest.mark.parametrize("page", ["1" * 30, str(2**63), "-1", "0", "100001"])
def test_a_page_number_out_of_range_is_a_400_naming_it(client, auth, world, page):
    """`?page=` beyond BIGINT used to reach the query's OFFSET (a 500); a number that is no page is a 400 now."""
    auth.login("coord")
    for url in ("/volunteers", "/organizations", "/residents", "/demands"):
        response = client.get(url, query_string={"page": page})
        assert response.status_code == 400, (url, page)
        assert "page" in response.get_data(as_text=True)
    auth.logout()
    auth.login("admin")
    assert client.get("/admin/audit", query_string={"page": page}).status_code == 400


def test_a_page_beyond_the_last_is_empty_not_an_error(client, auth, world):
    auth.login("coord")
    assert client.get("/volunteers?page=100000").status_code == 200


@pytest.mark.parametrize("page", ["abc", "١", "²", "１２", "1.5"])
def test_a_page_that_is_not_a_number_shows_the_first_page(client, auth, world, page):
    """As the lists always did for a mistyped link (tests/web/test_demo_pages.py relies on it)."""
    auth.login("coord")
    assert client.get("/volunteers", query_string={"page": page}).status_code == 200


@pytest.mark.parametrize("bad", ["١", "１", "١٢"])
def test_ids_in_other_scripts_digits_open_nothing(client, auth, world, bad):
    """Werkzeug's `<int:>` matched any Unicode digit: /demands/١ opened demand 1."""
    auth.login("admin")
    assert client.get(f"/demands/{world['demands']['a1'].id}").status_code == 200
    assert client.get(f"/demands/{bad}").status_code == 404
    assert client.get(f"/residents/{bad}").status_code == 404


@pytest.mark.parametrize("week", ["2026-W49-1", "20261207", "٢٠٢٦-١٢-٠٧", "9999-12-31", "nonsense"])
def test_a_bad_week_is_a_400_naming_it(client, auth, world, week):
    auth.login("worker_a1")
    response = client.get("/community/week", query_string={"week": week})
    assert response.status_code == 400 and "week" in response.get_data(as_text=True)


@pytest.mark.parametrize("volunteer", ["1" * 30, str(2**63), "-1", "١", "²"])
def test_a_swap_to_an_impossible_member_id_is_a_400(client, auth, world, next_monday, volunteer):
    """The swap form's member id used to reach the database as is (a 500 beyond BIGINT)."""
    scene = build_scene(world, next_monday, runs=False)
    auth.login("leader_a")
    before = table_state()
    response = client.post(f"/team/assignments/{scene['assignment_a']}/swap", data={"volunteer": volunteer})
    assert response.status_code == 400
    assert not changed_tables(before, table_state())


@pytest.mark.parametrize(("url", "param"), [("/volunteers", "q"), ("/volunteers", "skill"), ("/residents", "q"),
                                            ("/organizations", "q"), ("/demands", "q")])
def test_search_words_with_nul_are_read_without_it(client, auth, world, url, param):
    """PostgreSQL refuses NUL in a query parameter: the search box drops control characters."""
    auth.login("coord")
    assert client.get(url, query_string={param: "张\x00"}).status_code == 200


def test_a_percent_sign_searches_for_itself(client, auth, world):
    """`%` and `_` in a search are characters, not LIKE wildcards that list everyone."""
    auth.login("coord")
    page = client.get("/residents", query_string={"q": "%"}).get_data(as_text=True)
    assert world["residents"]["a1"].name not in page
    assert world["residents"]["a1"].name in client.get("/residents", query_string={"q": "张"}).get_data(as_text=True)


def test_a_residents_overlong_consent_note_is_refused_not_stored(client, auth, world):
    """The consent note used to be read after the check: too long, it reached the database (a 500 on PostgreSQL)."""
    auth.login("worker_a1")
    before = table_state()
    response = client.post("/residents/new", data={"name": "钱阿姨", "address": "桂花社区1栋", "lat": "29.3456",
                                                    "lon": "107.7051", "consent": "1", "consent_note": "x" * 201})
    assert response.status_code == 400
    assert not changed_tables(before, table_state())


def test_a_demand_form_dated_9999_is_a_400_naming_the_date(client, auth, world, next_monday):
    """Used to overflow expanding the occurrences (a 500); a date is now from today to the horizon (a year)."""
    auth.login("worker_a1")
    before = table_state()
    data = {"category": "culture_sports", "location_kind": "station", "station": world["stations"]["C1"].id,
            "date": "9999-12-31", "start": "19:00", "end": "21:00", "priority": "normal"}
    response = client.post("/demands/new", data=data)
    assert response.status_code == 400
    assert 'id="err-date"' in response.get_data(as_text=True)
    assert not changed_tables(before, table_state())
    client.post("/language/en")
    before = table_state()
    response = client.post("/demands/new", data=data)
    assert response.status_code == 400 and "The date is too far ahead" in response.get_data(as_text=True)
    assert not changed_tables(before, table_state())
