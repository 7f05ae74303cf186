"""The JSON API tried as a client would, from its own live OpenAPI description (schemathesis).

Every operation of `/api/v1/openapi.json`, as the app serves it, gets generated requests (bounded:
`EXAMPLES` each) with a token of a person who may use it, on SQLite and PostgreSQL; every answer must be
no server error, have a documented status and content type, and match its documented schema and
headers. Sign-in operations are called without a token. Plenty of the generated requests name ids that
do not exist or carry values the domain refuses: those must be 4xx problems, never 500.
"""

from __future__ import annotations

import os
import tempfile

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

from tests.api.conftest import make_token
from tests.servers.wechat_gateway import WeChatGateway

EXAMPLES = int(os.environ.get("API_FUZZ_EXAMPLES", "25"))
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


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_every_operation_answers_as_described(case, fuzz_app, world):
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
    case.call_and_validate(headers=headers, checks=CHECKS, app=fuzz_app)
