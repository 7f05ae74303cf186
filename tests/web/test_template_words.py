"""The templates' `_` (web.i18n.install_template_gettext) keeps the catalogue it found for the locale in
use, and never serves it to another locale within the same request."""

from flask import render_template_string
from flask_babel import force_locale, refresh

TEMPLATE = "{{ _('Sign in') }}|{{ _('%(n)d unread', n=3) }}"


def test_template_words_follow_the_locale_in_use_within_one_request(make_app):
    app = make_app()  # not the `app` fixture: its context speaks English throughout
    with app.test_request_context("/"):
        assert render_template_string(TEMPLATE) == "登录|3 条未读"  # Chinese by default
        with force_locale("en"):  # a notice worded in its recipient's language
            assert render_template_string(TEMPLATE) == "Sign in|3 unread"
        assert render_template_string(TEMPLATE) == "登录|3 条未读"
        with force_locale("zh_CN"):
            assert render_template_string(TEMPLATE) == "登录|3 条未读"


def test_a_refreshed_locale_is_followed(make_app):
    app = make_app()
    with app.test_request_context("/", headers={"Cookie": "linli_lang=en"}):
        assert render_template_string(TEMPLATE) == "Sign in|3 unread"
    with app.test_request_context("/"):
        assert render_template_string(TEMPLATE) == "登录|3 条未读"
        refresh()  # what choosing a language in the request does
        assert render_template_string(TEMPLATE) == "登录|3 条未读"


def test_labels_follow_the_locale_in_use(make_app):
    from web.templating import label

    app = make_app()
    with app.test_request_context("/"):
        chinese = label("accepted")
        with force_locale("en"):
            assert label("accepted") == "Accepted" != chinese
        assert label("accepted") == chinese and chinese  # back to Chinese, and a word there
        assert label("no such code") == "no such code"  # an unknown code is shown as it is
