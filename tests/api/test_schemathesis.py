"""The JSON API tried as a client would, from its own live OpenAPI description (schemathesis).

Every operation of `/api/v1/openapi.json`, as the app serves it, gets generated requests (bounded:
`EXAMPLES` each) with a token of a person who may use it, on SQLite and PostgreSQL; every answer must be
no server error, have a documented status and content type, and match its documented schema and
headers. Sign-in operations are called without a token. Plenty of the generated requests name ids that
do not exist or carry values the domain refuses: those must be 4xx problems, never 500.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from datetime import timedelta

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from matcher import clock
from matcher.models import AssignmentStatus
from matcher.schedules import get_schedule
from tests.api.conftest import make_token
from tests.matcher.builders import add_demand, offer, publish
from tests.servers.wechat_gateway import WeChatGateway

EXAMPLES = int(os.environ.get("API_FUZZ_EXAMPLES", "50"))
# Requests sent per operation by this process (written out for the record: API_FUZZ_REPORT=path).
CASES: Counter[str] = Counter()
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance]

# Whose token an operation is tried with: the role that uses that part of the API.
TAG_USERS = {"api_me": "vol_a", "api_demands": "worker_a1", "api_schedules": "coord", "api_records": "coord"}


def served_description():
    """The description as the app serves it at /api/v1/openapi.json (loaded through WSGI at collection, so
    each operation is a test of its own; it depends on the code only, not on the database)."""
    from tests.conftest import make_test_config
    from web import create_app

    app = create_app(make_test_config("sqlite://", tempfile.mkdtemp(prefix="linli-openapi-")))
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)


schema = served_description()


@pytest.fixture(scope="module")
def wx():
    """A local WeChat API, so the WeChat sign-in and binding operations run for real (codes are refused)."""
    with WeChatGateway(app_id="wx-fuzz", secret="fuzz-secret") as gateway:
        yield gateway


@pytest.fixture
def fuzz_app(make_app, app, world, wx):
    """The app under test, on this test's database (the world's district), WeChat set up."""
    return make_app(WECHAT_API_URL=wx.url, WECHAT_APP_ID=wx.app_id, WECHAT_APP_SECRET=wx.secret,
                    WECHAT_TIMEOUT_SECONDS=2)


@pytest.fixture
def known_ids(world, next_monday, db):
    """Rows the generated requests should often reach (a random id is nearly always a plain 404): a published
    week of 东城街道 with vol_a's offer, an accepted service running now and a completed one; a draft week of
    南山镇; the world's demands; vol_a's tokens."""
    schedule = publish(world, next_monday)
    draft = get_schedule(world["areas"]["town_b"], next_monday)
    occurrences = sorted(world["demands"]["a1"].occurrences, key=lambda o: o.starts_at)
    offered = offer(schedule, occurrences[0], world["volunteers"]["a"])
    accepted = offer(schedule, occurrences[1], world["volunteers"]["a"], status=AssignmentStatus.ACCEPTED)
    now = clock.local_now().replace(second=0, microsecond=0)
    accepted.occurrence.starts_at, accepted.occurrence.ends_at = now - timedelta(minutes=20), now + timedelta(hours=1)
    done_occurrence = add_demand(world, next_monday - timedelta(days=7), "09:00", "10:00")
    completed = offer(schedule, done_occurrence, world["volunteers"]["a"], status=AssignmentStatus.COMPLETED)
    db.session.commit()
    return {
        "assignment_id": [offered.id, accepted.id, completed.id],
        "occurrence_id": [o.id for o in occurrences[:2]] + [done_occurrence.id],
        "demand_id": [d.id for d in world["demands"].values()],
        "schedule_id": [schedule.id, draft.id],
    }


def reach_known_rows(case, known: dict) -> None:
    """Two generated ids in three become one of the known rows (chosen by the generated number, so a
    failing example replays the same way); the third stays as generated."""
    for name, value in (case.path_parameters or {}).items():
        rows = known.get(name)
        if rows and isinstance(value, int) and not isinstance(value, bool) and value % 3:
            case.path_parameters[name] = rows[value % len(rows)]


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_every_operation_answers_as_described(case, fuzz_app, world, known_ids):
    """Each operation, against this test's app and database (the world's district), with the token of a person
    of the role that uses it."""
    tags = case.operation.tags or []
    tokens = fuzz_app.config.get("API_FUZZ_TOKENS")
    if tokens is None:  # once per test: hypothesis calls this function once per example
        tokens = fuzz_app.config["API_FUZZ_TOKENS"] = {tag: make_token(world["users"][name])
                                                  for tag, name in TAG_USERS.items()}
    headers = {"Accept-Language": "en"}
    tag = next((t for t in tags if t in tokens), None)
    if tag is not None:
        headers["Authorization"] = f"Bearer {tokens[tag]}"
    reach_known_rows(case, known_ids)
    case.call_and_validate(headers=headers, checks=CHECKS, app=fuzz_app)
    CASES[f"{case.operation.method.upper()} {case.operation.path}"] += 1


@pytest.fixture(scope="module", autouse=True)
def _report_cases():
    """With API_FUZZ_REPORT set, each test process adds what it sent to that JSON file's counts."""
    yield
    target = os.environ.get("API_FUZZ_REPORT")
    if target and CASES:
        with open(f"{target}.{os.getpid()}", "w", encoding="utf-8") as out:
            json.dump(dict(CASES), out, ensure_ascii=False, indent=1)
