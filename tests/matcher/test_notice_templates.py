"""The administrator's preview of the message templates: SMS length, ${} templates, every event in EVENTS."""

from __future__ import annotations

import re

import pytest
from flask_babel import lazy_gettext as _l

from matcher import notice_templates
from matcher.notice_templates import (
    SAMPLE_URL,
    Placeholders,
    Samples,
    channel_states,
    event_label,
    is_gsm,
    preview_all,
    render_example,
    render_template_text,
    sms_length,
    wechat_templates,
)
from matcher.notifications import EVENTS
from tests.conftest import make_test_config
from tests.servers.sms_gateway import SmsGateway
from web import create_app

CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture
def babel_app(tmp_path):
    """The real application (its Babel and translations); these tests read no database."""
    app = create_app(make_test_config("sqlite://", str(tmp_path / "instance")))
    with app.app_context():
        yield app


# --- SMS length -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "segments"), [
    ("a" * 160, 1), ("a" * 161, 2), ("a" * 306, 2), ("a" * 307, 3),          # GSM 7-bit: 160, then 153 a part
    ("中" * 70, 1), ("中" * 71, 2), ("中" * 134, 2), ("中" * 135, 3),          # UCS-2: 70, then 67 a part
    ("a" * 69 + "中", 1), ("a" * 70 + "中", 2),                                # one Chinese character: all UCS-2
    ("a" * 159 + "“", 3),                                                     # a curly quote is not GSM
    ("€" * 80, 1), ("€" * 81, 2),                                             # an extension character is 2 septets
    ("a" * 152 + "€" * 77, 3),                                                # an escape pair is never split
    ("😀" * 35, 1), ("😀" * 36, 2),                                           # beyond the BMP: 2 UTF-16 units
])
def test_segments_at_the_boundaries(text, segments):
    assert sms_length(text).segments == segments


def test_length_counts_characters_and_units():
    length = sms_length("【邻里】您好 " + SAMPLE_URL)
    assert len(SAMPLE_URL) == 40
    assert (length.chars, length.units, length.gsm, length.segments, length.single) == (47, 47, False, 1, True)
    euro = sms_length("10€")
    assert (euro.chars, euro.units, euro.gsm) == (3, 4, True)


def test_gsm_alphabet():
    assert is_gsm("Hello, world! @£$ {x} 100%")
    assert not is_gsm("It’s")  # the typographic apostrophe
    assert not is_gsm("邻里")


# --- ${} rendering --------------------------------------------------------------------------------


def test_placeholders_answer_any_key_and_remember_the_order():
    params = Placeholders()
    assert params["t"] == "${t}" and params.get("why") == "${why}" and "anything" in params
    assert params["c"] == "${c}" and params["t"] == "${t}"
    assert params.asked == ["t", "why", "c"]
    assert Samples("zh_CN")["t"] == "陪同就医" and Samples("zh_CN")["no_such_name"] == "…"


def test_an_event_renders_with_its_parameters_as_variables(babel_app):
    text, params = render_template_text("demand_cancelled", "en")
    assert text == "Demand '${t}' in ${c} was cancelled: ${r}"
    assert params == ["t", "c", "r"]
    chinese, same = render_template_text("demand_cancelled", "zh_CN")
    assert CJK.search(chinese) and sorted(same) == sorted(params)
    assert all(f"${{{name}}}" in chinese for name in params)
    # An event whose full wording cannot fit one SMS has a short SMS wording; the app and e-mail keep the full.
    short, asked = render_template_text("offer_declined", "en")
    assert short == "${name} declined a service: please find someone else." and asked == ["name"]
    assert render_example("offer_declined", "zh_CN").startswith("李梅")
    assert render_example("offer_declined", "en", full=True).startswith("Li Mei declined “Escort to hospital” on ")


# --- every event ----------------------------------------------------------------------------------


@pytest.mark.parametrize("event", list(EVENTS))
def test_every_event_renders_in_both_languages(babel_app, event):
    [preview] = [p for p in preview_all() if p.event == event]
    assert [w.locale for w in preview.wordings] == ["zh_CN", "en"]
    for wording in preview.wordings:
        assert not wording.error, wording.error
        assert wording.template.endswith(" ${url}")
        assert all(f"${{{name}}}" in wording.template for name in preview.params)
        assert wording.example.startswith("【邻里】") and wording.example.endswith(" " + SAMPLE_URL)
        assert "${" not in wording.example
        assert wording.length == sms_length(wording.example)


@pytest.mark.parametrize("event", list(EVENTS))
def test_every_event_is_worded_in_chinese(babel_app, event):
    """A new event's wording needs its Chinese translation (messages.po), or Chinese readers get English."""
    zh, en = render_template_text(event, "zh_CN")[0], render_template_text(event, "en")[0]
    assert CJK.search(zh) and zh != en, f"{event}: no Chinese translation of {en!r}"


def test_the_preview_lists_whatever_events_holds(babel_app, monkeypatch):
    """An event added to EVENTS (by whoever adds it) is previewed with no list here to keep in step."""
    monkeypatch.setitem(EVENTS, "volunteer_thanked", lambda p: _l("Thank you, %(name)s, for %(n)s hours.",
                                                                  name=p["name"], n=p["hours"]))
    previews = preview_all()
    assert [p.event for p in previews] == list(EVENTS)
    [added] = [p for p in previews if p.event == "volunteer_thanked"]
    assert added.label == event_label("volunteer_thanked") == "Volunteer thanked"
    assert added.params == ["name", "hours"]
    assert added.wordings[1].template == "Thank you, ${name}, for ${hours} hours. ${url}"
    assert added.wordings[1].example == f"【邻里】Thank you, Li Mei, for 2 hours. {SAMPLE_URL}"


def test_a_wording_that_cannot_be_rendered_is_reported_not_raised(babel_app, monkeypatch):
    monkeypatch.setitem(EVENTS, "broken", lambda p: _l("%(n)d left", n=p["n"]))  # %d of a text
    [broken] = [p for p in preview_all() if p.event == "broken"]
    assert all(w.error.startswith("TypeError") and w.length is None for w in broken.wordings)


def test_flags_wordings_over_one_segment_and_uses_the_configured_signature(babel_app):
    babel_app.config["SMS_SIGN_NAME"] = "邻里互助服务中心志愿者平台通知"
    babel_app.config["SMS_TEMPLATES"] = {"offer": "SMS_100"}
    [offer] = [p for p in preview_all() if p.event == "offer"]
    assert offer.sms_template == "SMS_100"
    assert offer.wordings[0].example.startswith("【邻里互助服务中心志愿者平台通知】")
    assert offer.over_one_segment and not offer.wordings[0].length.single


# --- configured templates and channels ------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [
    (None, {}),
    ("not json", {}),
    (["offer"], {}),
    ({"offer": {"page": "no id"}, "rated": 7}, {}),
    ({"offer": "WX_1"}, {"offer": {"id": "WX_1", "page": "", "fields": {}}}),
    ('{"offer": {"id": "WX_2", "page": "pages/offers/index", "fields": {"thing1": "items"}}}',
     {"offer": {"id": "WX_2", "page": "pages/offers/index", "fields": {"thing1": "items"}}}),
])
def test_wechat_templates_are_read_defensively(babel_app, value, expected):
    if value is not None:
        babel_app.config["WECHAT_TEMPLATES"] = value
    assert wechat_templates() == expected


def test_channels_are_off_without_settings_and_sms_is_on_with_a_gateway(babel_app):
    states = {s.name: s for s in channel_states()}
    assert {"sms", "email", "wechat"} <= set(states)
    assert not any(s.configured for s in states.values())
    with SmsGateway(access_key="k", secret="s") as gateway:
        babel_app.config.update({"SMS_GATEWAY_URL": gateway.url, "SMS_ACCESS_KEY": "k", "SMS_SECRET": "s",
                                 "SMS_SIGN_NAME": "邻里"})
        states = {s.name: s for s in channel_states()}
    assert states["sms"].configured and states["sms"].present
    assert not states["email"].configured


def test_every_chinese_sms_fits_one_segment_with_signature_and_link(app):
    """The SMS wording of every event (`notifications.sms_wording`), with the signature and a 40-character
    link and the sample values, is one SMS segment in Chinese: what most volunteers receive."""
    with app.app_context():
        over = {p.event: w.length.chars for p in notice_templates.preview_all(("zh_CN",))
                for w in p.wordings if w.length is not None and not w.length.single}
    assert over == {}
