"""The administrator's preview of every message template (/admin/notices)."""

from __future__ import annotations

import re

import pytest
from markupsafe import escape

from matcher.notice_templates import preview_all, render_template_text
from matcher.notifications import EVENTS
from tests.servers.sms_gateway import SmsGateway

TEMPLATES = {"offer": "SMS_0001", "offer_changed": "SMS_0002"}


def channel_item(html: str, name: str) -> str:
    """The channel's line on the page."""
    found = re.search(rf'<li id="channel-{name}">(.*?)</li>', html, re.S)
    assert found, f"no line for the {name} channel"
    return found.group(1)


def event_row(html: str, event: str) -> str:
    found = re.search(rf'<tr id="event-{event}">(.*?)</tr>', html, re.S)
    assert found, f"no row for {event}"
    return found.group(1)


def test_admin_sees_every_event_with_its_chinese_template_and_sms_template(app, client, auth, world):
    app.config["SMS_TEMPLATES"] = TEMPLATES
    auth.login("admin")
    response = client.get("/admin/notices")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert len(re.findall(r'<tr id="event-', html)) == len(EVENTS)
    with app.test_request_context():
        chinese = {event: render_template_text(event, "zh_CN")[0] for event in EVENTS}
    for event in EVENTS:
        row = event_row(html, event)
        assert f"<code>{event}</code>" in row
        assert str(escape(chinese[event] + " ${url}")) in row, event
        if event in TEMPLATES:
            assert f"<code>{TEMPLATES[event]}</code>" in row
        else:
            assert "SMS_000" not in row
    # Chinese readers see the example with the signature and a sample of the demand's title.
    assert "【邻里】" in event_row(html, "demand_review") and "陪同就医" in event_row(html, "demand_review")


def test_the_wechat_template_configured_for_an_event_is_shown(app, client, auth, world):
    app.config["WECHAT_TEMPLATES"] = {"offer": {"id": "WX_OFFER_1", "page": "pages/offers/index",
                                                "fields": {"thing1": "items"}}}
    auth.login("admin")
    html = client.get("/admin/notices").get_data(as_text=True)
    offer = event_row(html, "offer")
    assert "WX_OFFER_1" in offer and "pages/offers/index" in offer and "thing1" in offer
    assert "WX_OFFER_1" not in event_row(html, "offer_changed")


def test_channels_are_off_without_provider_settings(app, client, auth, world):
    auth.login("admin")
    html = client.get("/admin/notices").get_data(as_text=True)
    for name in ("sms", "email", "wechat"):
        assert 'class="tag warn"' in channel_item(html, name) and 'class="tag ok"' not in channel_item(html, name)


def test_a_configured_sms_channel_shows_as_on(app, client, auth, world):
    with SmsGateway(access_key="test-key", secret="test-secret") as gateway:
        app.config.update({"SMS_GATEWAY_URL": gateway.url, "SMS_ACCESS_KEY": gateway.access_key,
                           "SMS_SECRET": gateway.secret, "SMS_SIGN_NAME": "邻里", "SMS_TEMPLATES": TEMPLATES})
        auth.login("admin")
        html = client.get("/admin/notices").get_data(as_text=True)
    assert 'class="tag ok"' in channel_item(html, "sms")
    assert 'class="tag ok"' not in channel_item(html, "email")


def test_the_english_page_flags_messages_over_one_segment(app, client, auth, world):
    auth.login("admin")
    client.post("/language/en")
    html = client.get("/admin/notices").get_data(as_text=True)
    assert "Message templates" in html and "no SMS template: SMS does not carry this event" in html
    # The English wording of a changed demand takes three segments with the signature and the link.
    assert "over one segment" in event_row(html, "demand_changed")
    english = re.search(r'<p id="over-one-segment-en">(.*?)</p>', html, re.S).group(1)
    assert 'href="#event-demand_changed"' in english
    # Chinese is flagged by its own length: every Chinese SMS wording fits one segment, so none is.
    with app.test_request_context():
        long_chinese = {p.event for p in preview_all() if p.over_one_segment_in("zh_CN")}
    assert long_chinese == set() and 'id="over-one-segment-zh_CN"' not in html


@pytest.mark.parametrize("username", ["coord", "worker_a1", "leader_a", "vol_a"])
def test_only_the_administrator_previews_templates(client, auth, world, username):
    auth.login(username)
    assert client.get("/admin/notices").status_code == 403
    assert "/admin/notices" not in client.get("/dashboard").get_data(as_text=True)


def test_the_administrators_menu_links_the_preview(client, auth, world):
    auth.login("admin")
    assert 'href="/admin/notices"' in client.get("/dashboard").get_data(as_text=True)
