"""The API's browsable documentation: Swagger UI served from the app (its files from the flask-swagger-ui
package, no CDN), started by a script of ours so the page keeps the strict Content-Security-Policy."""

from __future__ import annotations

from pathlib import Path

import flask_swagger_ui
from flask import Blueprint, render_template, send_from_directory

from . import PREFIX

ASSETS = Path(flask_swagger_ui.__file__).resolve().parent / "dist"

INTRODUCTION = """\
The API of Linli (邻里), for the phone client (a WeChat mini-program) and the district's other systems.

**Tokens.** Every call but a sign-in sends `Authorization: Bearer <token>`. A phone gets a device token
from `POST /api/v1/auth/token` (username or mobile, and password) or `POST /api/v1/auth/wechat` (a bound
WeChat); a system uses a personal access token made on the web profile page (*API tokens*). Tokens are
scoped (`read`, `offers`, `profile`, `demands`, `schedules`, `records`), expire, and are listed and revoked
on the profile page or with `DELETE /api/v1/me/tokens/{id}`. A token never sees or does more than its
person may on the pages. No cookies are read, so no CSRF token is needed.

**Errors** are `application/problem+json`: `status`, `title`, `detail` (words a person can act on), and for
bad input `field` and `errors` (each wrong field with its message).

**Lists** are paged: `page` and `page_size` (at most 100); the `X-Pagination` header gives the totals.

**Changes that can conflict** (editing a demand, the profile, publishing a schedule) need `If-Match` with the
`ETag` of the last read: 412 when the resource changed since, 428 without it.

**Rate limits** count per token; over the limit the answer is 429 with `Retry-After`.
"""

bp = Blueprint("api_docs", __name__)


@bp.route(PREFIX + "/docs")
@bp.route(PREFIX + "/docs/")
def docs():
    """Swagger UI over this server's OpenAPI description."""
    return render_template("api/docs.html")


@bp.route(PREFIX + "/docs/assets/<path:filename>")
def assets(filename: str):
    """Swagger UI's own files, from the installed package."""
    response = send_from_directory(ASSETS, filename, max_age=86400)
    return response
