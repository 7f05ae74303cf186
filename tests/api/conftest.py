"""Fixtures for the JSON API: a client that sends a bearer token, tokens for the world's people."""

from __future__ import annotations

import pytest

from matcher import tokens
from matcher.db import db
from matcher.models import TokenKind


class ApiClient:
    """A test client speaking JSON with `Authorization: Bearer <token>` (no cookies are kept).

    Every answer of an operation of the description is checked against what the description says of it
    (status, content type, schema, headers): each API test checks the description too.
    """

    def __init__(self, app, token: str | None = None):
        self.client = app.test_client(use_cookies=False)
        self.token = token
        self._description = None

    def open(self, method: str, path: str, *, token: str | None = None, headers: dict | None = None, **kwargs):
        sent = dict(headers or {})
        bearer = token if token is not None else self.token
        if bearer:
            sent.setdefault("Authorization", f"Bearer {bearer}")
        url = path if path.startswith("/") else "/api/v1/" + path
        response = self.client.open(url, method=method, headers=sent, **kwargs)
        self.check(method, url.split("?", 1)[0], response)
        return response

    def check(self, method: str, path: str, response) -> None:
        """Fail when an operation's answer differs from the description (500s included)."""
        if not path.startswith("/api/v1/") or path.endswith("/openapi.json") or "/docs" in path:
            return
        if self._description is None:
            import schemathesis

            raw = self.client.get("/api/v1/openapi.json").get_json()
            self._description = schemathesis.openapi.from_dict(raw)
        operation = self._description.find_operation_by_path(method.lower(), path)
        if operation is not None:
            operation.validate_response(response)

    def get(self, path, **kw):
        return self.open("GET", path, **kw)

    def post(self, path, **kw):
        return self.open("POST", path, **kw)

    def put(self, path, **kw):
        return self.open("PUT", path, **kw)

    def patch(self, path, **kw):
        return self.open("PATCH", path, **kw)

    def delete(self, path, **kw):
        return self.open("DELETE", path, **kw)


def make_token(user, *, kind=TokenKind.DEVICE, scopes=None, days=None, name="test") -> str:
    """A token for `user` (a device token: every scope the role allows), committed."""
    _row, secret = tokens.issue_token(user, kind=kind, name=name, scopes=scopes, days=days)
    db.session.commit()
    return secret


@pytest.fixture
def api(app):
    """An API client; give it a token with `api.as_user(user)` or per request."""
    client = ApiClient(app)

    def as_user(user, **kwargs):
        client.token = make_token(user, **kwargs)
        return client

    client.as_user = as_user
    return client
