"""The JSON API (`/api/v1`) for the phone client (a WeChat mini-program) and the district's other systems.

Built with flask-smorest: marshmallow schemas validate what comes in and shape what goes out, and the
OpenAPI 3 description (`/api/v1/openapi.json`) is generated from them; `/api/v1/docs` shows it in
Swagger UI, whose files come from the flask-swagger-ui package (no CDN).

Every request but a sign-in carries a bearer token (`Authorization: Bearer lnl_...`, `matcher/tokens.py`):
no cookie is read, so no CSRF token is asked. The token's person becomes `current_user` for the
request, and the views load rows through `matcher.access` and change them with the same operations as
the pages, so the API can neither see nor do more than the person; a token's scopes narrow it further.
Errors are `application/problem+json` naming the field that is wrong (`problems.py`); changes that can
conflict take `If-Match` with the `ETag` a read gave; each token has its own rate limit.
"""

from __future__ import annotations

import http
import threading
from functools import wraps

from flask import Flask, current_app, g, request
from flask_babel import lazy_gettext as _l
from flask_smorest import Api
from flask_smorest import Blueprint as SmorestBlueprint
from flask_smorest.utils import prepare_response

from matcher.errors import AccessDenied

from .problems import PROBLEM_TYPE, ProblemSchema

PREFIX = "/api/v1"


class Blueprint(SmorestBlueprint):
    """flask-smorest's Blueprint, documenting X-Pagination as the JSON text it is.

    flask-smorest documents the header with an object schema, which a client reading the description
    (schemathesis among them) takes for a header in the "simple" style (key,value,...) and so never
    matches the JSON the header holds.
    """

    def _document_pagination_metadata(self, spec, resp_doc):
        resp_doc.setdefault("headers", {})[self.PAGINATION_HEADER_NAME] = {
            "description": "The page as JSON: total, total_pages, first_page, last_page, page, previous_page, "
                           "next_page.",
            "schema": {"type": "string"}}


class LinliApi(Api):
    """flask-smorest's Api with problem+json errors, built lazily.

    The app's own error handler answers every error under /api/ (so flask-smorest's app-wide HTTP error
    handler, which would turn every page's error into JSON, is not installed). The description's
    paths are worked out on first use, not at start-up: the tests make an app per test.
    """

    ERROR_SCHEMA = ProblemSchema

    def __init__(self, *args, **kwargs):
        self._pending: list = []
        self._documented = False
        self._documenting = threading.Lock()  # two first requests at once in a threaded server
        super().__init__(*args, **kwargs)

    def _register_error_handlers(self):
        pass

    def _register_responses(self):
        for status in http.HTTPStatus:
            response = {"description": status.phrase}
            if not (100 <= status < 200) and status not in (204, 304):
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, self.spec, PROBLEM_TYPE)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "Default error response", "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, PROBLEM_TYPE)
        self.spec.components.response("DEFAULT_ERROR", response, lazy=True)

    def register_blueprint(self, blp, *, parameters=None, **options):
        name = options.get("name", blp.name)
        self._app.extensions["flask-smorest"]["blp_name_to_api"][name] = self
        self._app.register_blueprint(blp, **options)
        self._pending.append((blp, name, parameters))

    def document(self) -> dict:
        """The OpenAPI description as a dict (its paths added on first call)."""
        with self._documenting:
            if not self._documented:
                for blp, name, parameters in self._pending:
                    blp.register_views_in_doc(self, self._app, self.spec, name=name, parameters=parameters)
                    self.spec.tag({"name": name, "description": blp.description})
                self._documented = True
            return self.spec.to_dict()

    def _openapi_json(self):
        return current_app.json.response(self.document())


def description() -> dict:
    """The running app's OpenAPI description."""
    return current_app.extensions["linli_api"].document()


SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer",
               "description": "A personal access token (made on the profile page) or a device token "
                              "(POST /api/v1/auth/token or /api/v1/auth/wechat)."},
}


def register(app: Flask) -> None:
    """Mount the API and its description on the app."""
    from ..extensions import csrf, limiter
    from . import auth, demands, docs, me, records, schedules
    from .auth import token_rate_key

    app.config.setdefault("API_TITLE", "Linli API")
    app.config.setdefault("API_VERSION", "1")
    app.config.setdefault("OPENAPI_VERSION", "3.0.3")
    app.config.setdefault("OPENAPI_URL_PREFIX", PREFIX)
    app.config.setdefault("OPENAPI_JSON_PATH", "openapi.json")
    app.config.setdefault("API_SPEC_OPTIONS", {
        "info": {"description": docs.INTRODUCTION},
        "servers": [{"url": "/", "description": "this server"}],
        "security": [{"bearer": []}],
        "components": {"securitySchemes": SECURITY_SCHEMES},
    })
    api = LinliApi(app)
    app.extensions["linli_api"] = api
    app.json.ensure_ascii = False  # Chinese as UTF-8 text, not \\u escapes
    modules = (auth, me, demands, schedules, records)
    if not _set_up:  # a blueprint is set up once, before its first registration (the tests make many apps)
        for module in modules:
            csrf.exempt(module.blp)  # bearer tokens, never cookies: nothing for a forged request to ride on
            if module is not auth:
                module.blp.before_request(auth.authenticate)
            limiter.limit(lambda: current_app.config["API_RATE_LIMIT"], key_func=token_rate_key)(module.blp)
        _set_up.append(True)
    for module in modules:
        api.register_blueprint(module.blp)
    app.register_blueprint(docs.bp)


_set_up: list[bool] = []


def needs(scope: str):
    """Allow the view only to tokens holding `scope` (and documented as such)."""

    def decorate(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            token = g.get("api_token")
            if token is None or scope not in token.scopes:
                raise AccessDenied(str(_l("This token may not do this: it lacks the scope \"%(s)s\".", s=scope)))
            return view(*args, **kwargs)

        return wrapper

    return decorate


def is_api_request() -> bool:
    """Whether this request is for the JSON API."""
    return request.path == PREFIX or request.path.startswith(PREFIX + "/")
