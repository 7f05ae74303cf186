"""Errors as RFC 9457 problem details (`application/problem+json`), naming the field that is wrong."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import current_app

PROBLEM_TYPE = "application/problem+json"


class ProblemSchema(ma.Schema):
    """What every error answer of the API holds."""

    type = ma.fields.String(metadata={"description": "Always about:blank: the status says what kind of error."})
    title = ma.fields.String(required=True, metadata={"description": "The status in words."})
    status = ma.fields.Integer(required=True)
    detail = ma.fields.String(metadata={"description": "What went wrong, in words a person can act on."})
    field = ma.fields.String(metadata={"description": "The first field that is wrong, if any."})
    errors = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String(),
                            metadata={"description": "Every field that is wrong, with its message "
                                                     "(nested fields as a dotted path: slots.0.start)."})
    request_id = ma.fields.String()


def flatten(messages: Any, prefix: str = "") -> dict[str, str]:
    """marshmallow's nested messages ({"json": {"slots": {0: {"start": [...]}}}}) as {"slots.0.start": "..."}."""
    out: dict[str, str] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            out.update(flatten(value, name))
    elif isinstance(messages, list | tuple):
        if all(isinstance(m, str) for m in messages):
            out[prefix or "_"] = " ".join(messages)
        else:
            for i, m in enumerate(messages):
                out.update(flatten(m, f"{prefix}.{i}" if prefix else str(i)))
    else:
        out[prefix or "_"] = str(messages)
    return out


def problem(status: int, detail: str = "", *, title: str = "", errors: dict[str, str] | None = None,
            headers: dict[str, str] | None = None):
    """A problem+json response."""
    from flask import g

    body: dict[str, Any] = {"type": "about:blank", "title": title or _title(status), "status": status}
    if detail:
        body["detail"] = detail
    if errors:
        body["errors"] = {str(k): str(v) for k, v in errors.items()}
        body["field"] = next(iter(body["errors"]))
    if g.get("request_id"):
        body["request_id"] = g.request_id
    response = current_app.json.response(body)
    response.status_code = status
    response.mimetype = PROBLEM_TYPE
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _title(status: int) -> str:
    from ..errors import TITLES

    if status in TITLES:
        return str(TITLES[status])
    import http

    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"
