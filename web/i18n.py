"""Locale selection: Chinese by default, English when the user chose it."""

from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import current_app, has_request_context, request
from flask_login import current_user

TRANSLATIONS = Path(__file__).parent / "translations"

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


def compile_catalogs(directory: Path = TRANSLATIONS) -> None:
    """Compile each messages.po whose .mo is missing or older (so every entry point has them)."""
    for po in directory.glob("*/LC_MESSAGES/messages.po"):
        mo = po.with_suffix(".mo")
        if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        try:
            with po.open("rb") as src:
                catalog = read_po(src)
            with mo.open("wb") as dst:
                write_mo(dst, catalog)
        except OSError:  # read-only install: the build step (make translations) compiled them
            pass
