"""Locale selection: Chinese by default, English when the user chose it."""

from flask import current_app, has_request_context, request
from flask_login import current_user

LOCALE_COOKIE = "linli_lang"


def select_locale() -> str:
    """The user's saved locale, else the language cookie, else the default (zh_CN)."""
    languages = current_app.config["LANGUAGES"]
    if not has_request_context():
        return current_app.config["BABEL_DEFAULT_LOCALE"]
    if current_user and current_user.is_authenticated and current_user.locale in languages:
        return current_user.locale
    chosen = request.cookies.get(LOCALE_COOKIE)
    if chosen in languages:
        return chosen
    return current_app.config["BABEL_DEFAULT_LOCALE"]


def select_timezone() -> str:
    """Everyone works in the service's local time zone."""
    return current_app.config["TIMEZONE"]
