"""Locale selection: Chinese by default, English when the user chose it."""

from pathlib import Path

import flask_babel
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask, current_app, g, has_request_context, request
from flask_babel import get_translations
from flask_babel.speaklater import LazyString
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
    if request.path.startswith("/api/"):  # an API client has no cookie: it says what it reads
        return request.accept_languages.best_match(languages) or current_app.config["BABEL_DEFAULT_LOCALE"]
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


def current_translations():
    """Flask-Babel's translations for the locale in use, looked up once per request and locale.

    `get_translations()` finds the context, the domain, the locale and its cache key again on every
    call; a page with a long table asks for hundreds of labels. The catalogue found is kept beside
    Flask-Babel's own per-request state (`g._flask_babel`) together with the locale object it was found
    for, so `force_locale` (a notice worded in its recipient's language) or a refreshed locale, which
    put another locale object there, are never served the first one's words."""
    state = g.get("_flask_babel")
    locale = getattr(state, "babel_locale", None)
    kept = getattr(state, "linli_translations", None)
    if locale is not None and kept is not None and kept[0] is locale:
        return kept[1]
    found = get_translations()
    state = g.get("_flask_babel")
    locale = getattr(state, "babel_locale", None)
    if locale is not None:
        state.linli_translations = (locale, found)
    return found


def install_template_gettext(app: Flask) -> None:
    """The templates' `_`, `ngettext`, `pgettext` through `current_translations` (Flask-Babel installs
    the same callables, each finding the catalogue again)."""
    app.jinja_env.install_gettext_callables(
        gettext=lambda s: current_translations().ugettext(s),
        ngettext=lambda s, p, n: current_translations().ungettext(s, p, n),
        pgettext=lambda c, s: current_translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: current_translations().unpgettext(c, s, p, n),
        newstyle=True,
    )


def lazy_text(value) -> str:
    """A label (often a `lazy_gettext` string) as text in the locale in use, through
    `current_translations` (what `str()` of a lazy string would give, without finding the catalogue again)."""
    if isinstance(value, LazyString) and value._func is flask_babel.gettext and len(value._args) == 1:
        text = current_translations().ugettext(value._args[0])
        return text % value._kwargs if value._kwargs else text
    return str(value)
