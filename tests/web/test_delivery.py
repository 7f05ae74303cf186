"""Delivery you can see (issue 10): the short signed link in each outside message, offers seen on the
volunteer's page, the coordinator's "who was told" page, re-sending to those not reached, and the flag
for volunteers no channel reaches, before publishing. SMS goes to the local gateway
(`tests/servers/sms_gateway.py`) over HTTP, receipts come back signed through the hook."""

from __future__ import annotations

import re
import time

import pytest
from sqlalchemy import select

from matcher import outbox, shortlinks
from matcher.db import db as _db
from matcher.models import (
    AssignmentStatus,
    AuditEntry,
    Notification,
    OutboxMessage,
    Schedule,
    ScheduleStatus,
)
from tests.conftest import PASSWORD
from tests.matcher.builders import offer
from tests.servers.sms_gateway import SmsGateway


@pytest.fixture
def gateway():
    with SmsGateway(access_key="delivery-key", secret="delivery-secret") as gw:
        yield gw


@pytest.fixture
def sms_app(app, gateway):
    app.config.update(SMS_GATEWAY_URL=gateway.url, SMS_ACCESS_KEY=gateway.access_key, SMS_SECRET=gateway.secret,
                      SMS_SIGN_NAME="邻里", SMS_TEMPLATES={"offer": "SMS_0001", "offer_changed": "SMS_0002"},
                      OUTBOX_AUTOSEND=False, PUBLIC_URL="https://linli.example.org/",
                      OUTBOX_QUIET_HOURS=[])  # the quiet hours have their own tests; these run at any hour
    return app


@pytest.fixture
def draft(world, next_monday):
    """A district draft with a proposal for 李秀英 (SMS reaches her) and one for 王强 (in-app only)."""
    world["users"]["vol_b"].channels = []
    schedule = Schedule(area=world["areas"]["district"], week_start=next_monday, status=ScheduleStatus.DRAFT)
    _db.session.add(schedule)
    _db.session.commit()
    a = offer(schedule, world["demands"]["a1"].occurrences[0], world["volunteers"]["a"], AssignmentStatus.PROPOSED)
    b = offer(schedule, world["demands"]["b1"].occurrences[0], world["volunteers"]["b"], AssignmentStatus.PROPOSED)
    return schedule, a, b


def login(auth, client, username):
    client.post("/language/en")
    assert auth.login(username).status_code == 302


def send_now() -> dict:
    _db.session.expire_all()
    return outbox.send_all()


def test_the_review_page_flags_who_no_channel_reaches_before_publishing(sms_app, auth, client, draft):
    schedule, _, _ = draft
    login(auth, client, "coord")
    page = client.get(f"/schedules/{schedule.id}").get_data(as_text=True)
    assert 'id="told-unreachable"' in page and "1 volunteers with proposals have no working channel" in page
    listing = client.get(f"/schedules/{schedule.id}/delivery?show=unreachable").get_data(as_text=True)
    assert "王强" in listing and "李秀英" not in listing
    everyone = client.get(f"/schedules/{schedule.id}/delivery").get_data(as_text=True)
    assert "will be told by SMS" in everyone and "SMS on" in everyone and "E-mail off" in everyone


def test_publish_send_receipt_open_and_see(sms_app, auth, client, world, draft, gateway):
    schedule, a, b = draft
    login(auth, client, "coord")
    assert client.post(f"/schedules/{schedule.id}/publish", data={"version": schedule.version}).status_code == 302
    (row,) = _db.session.scalars(select(OutboxMessage)).all()
    assert row.url == ""  # the link is made when it is sent, from the committed notice's id
    assert send_now() == {"sent": 1}
    (message,) = gateway.messages
    assert message["phone"] == "+8613812345678" and message["template_id"] == "SMS_0001"
    url = message["params"]["url"]
    note = _db.session.scalars(select(Notification).where(Notification.user_id == world["users"]["vol_a"].id)).one()
    assert url == f"https://linli.example.org/n/{shortlinks.code_for(note.id)}" and len(url) < 45

    page = client.get(f"/schedules/{schedule.id}/delivery").get_data(as_text=True)
    assert re.search(rf'id="reach-{a.volunteer_id}" data-state="sent" data-seen="0"', page)
    assert re.search(rf'id="reach-{b.volunteer_id}" data-state="in_app"', page)

    body, headers = gateway.receipt_request([gateway.receipt(row.provider_id or "", out_id=row.key)])
    assert client.post("/hooks/sms/receipts", data=body, headers=headers).status_code == 200

    # Someone holding the message follows the link: it is recorded as opened, and they meet the login page.
    visitor = sms_app.test_client()
    path = url.removeprefix("https://linli.example.org")
    answer = visitor.get(path)
    assert answer.status_code == 302 and "/me/offers" in answer.headers["Location"]
    assert "/login" in visitor.get(answer.headers["Location"]).headers["Location"]
    _db.session.expire_all()
    assert _db.session.get(Notification, note.id).opened_at is not None
    assert _db.session.get(Notification, note.id).read_at is None  # nobody signed in: not read

    # The volunteer signs in and opens the offers: seen, without changing the offer's version.
    version = a.version
    volunteer = sms_app.test_client()
    assert volunteer.post("/login", data={"username": "vol_a", "password": PASSWORD}).status_code \
        == 302
    assert f'id="offer-{a.id}"' in volunteer.get("/me/offers").get_data(as_text=True)
    _db.session.expire_all()
    seen = _db.session.get(type(a), a.id)
    assert seen.seen_at is not None and seen.version == version
    assert volunteer.post(f"/me/offers/{a.id}/accept", data={"version": version}).status_code in (302, 303)

    page = client.get(f"/schedules/{schedule.id}/delivery").get_data(as_text=True)
    assert re.search(rf'id="reach-{a.volunteer_id}" data-state="delivered" data-seen="1"', page)
    summary = client.get(f"/schedules/{schedule.id}").get_data(as_text=True)
    assert "1 of 2 volunteers reached; 1 saw their offers" in summary


def test_send_again_to_those_not_reached(sms_app, auth, client, world, draft, gateway):
    schedule, a, b = draft
    login(auth, client, "coord")
    client.post(f"/schedules/{schedule.id}/publish", data={"version": schedule.version})
    send_now()
    assert len(gateway.messages) == 1
    listing = client.get(f"/schedules/{schedule.id}/delivery?show=not_reached").get_data(as_text=True)
    assert f'name="volunteer" value="{a.volunteer_id}"' in listing  # sent, but not delivered, opened or seen
    assert f'name="volunteer" value="{b.volunteer_id}"' not in listing  # no channel to send again on
    assert client.post(f"/schedules/{schedule.id}/delivery/resend", data={}).status_code == 303  # none chosen
    answer = client.post(f"/schedules/{schedule.id}/delivery/resend", data={"volunteer": [str(a.volunteer_id)]})
    assert answer.status_code == 303
    rows = _db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
    assert [r.key.split(":", 1)[1] for r in rows] == ["sms", "sms:again1"]
    assert send_now() == {"sent": 1} and len(gateway.messages) == 2
    assert gateway.messages[1]["params"]["url"] == gateway.messages[0]["params"]["url"]
    assert _db.session.scalars(select(AuditEntry).where(AuditEntry.action == "resend_notices")).one().details == \
        {"messages": 1}

    # Once the volunteer has seen the offers, nobody is sent anything again.
    volunteer = sms_app.test_client()
    volunteer.post("/login", data={"username": "vol_a", "password": PASSWORD})
    volunteer.get("/me/offers")
    client.post(f"/schedules/{schedule.id}/delivery/resend", data={"all": "1"})
    assert len(_db.session.scalars(select(OutboxMessage)).all()) == 2


def test_a_street_coordinator_follows_only_their_part(sms_app, auth, client, draft):
    schedule, a, b = draft
    login(auth, client, "coord_a")
    page = client.get(f"/schedules/{schedule.id}/delivery").get_data(as_text=True)
    assert "李秀英" in page and "王强" not in page
    login(auth, client, "coord_b")
    assert client.get(f"/schedules/{schedule.id}/delivery").status_code in (200, 404)


@pytest.mark.parametrize("code", ["", "abc", "1" + "0" * 8, "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzz", "１２３４５６７８９"])
def test_a_short_link_that_is_not_ours_is_404(sms_app, client, world, code):
    assert client.get(f"/n/{code}").status_code == 404


def test_a_tampered_short_link_is_404(sms_app, client, world):
    from matcher.notifications import notify

    notify([world["users"]["vol_a"]], "membership_approved", params={"o": "东城助老服务队"})
    _db.session.commit()
    note = _db.session.scalars(select(Notification)).one()
    code = shortlinks.code_for(note.id)
    assert client.get(f"/n/{code}").status_code == 302
    other = shortlinks.code_for(note.id + 1)[:-8] + code[-8:]
    assert client.get(f"/n/{other}").status_code == 404
    assert client.get(f"/n/{code[:-1]}{'A' if code[-1] != 'A' else 'B'}").status_code == 404


def test_a_failing_channel_never_blocks_publishing(sms_app, auth, client, world, draft, gateway):
    """The gateway answers 500 to everything: publishing still succeeds at once (nothing is sent inside
    the request), every offer is made, and the message waits for its retry, shown as failed."""
    schedule, a, b = draft
    gateway.fail_next(500, times=100)
    sms_app.config.update(OUTBOX_AUTOSEND=True)  # the sender thread starts after the commit
    login(auth, client, "coord")
    started = time.monotonic()
    assert client.post(f"/schedules/{schedule.id}/publish", data={"version": schedule.version}).status_code == 302
    assert time.monotonic() - started < 5
    _db.session.expire_all()
    assert {x.status for x in _db.session.scalars(select(type(a)))} == {AssignmentStatus.OFFERED}
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # the background sender tries once and schedules the retry
        _db.session.expire_all()
        row = _db.session.scalars(select(OutboxMessage)).one()
        if row.attempts and row.state != "sending":  # the attempt is counted as it starts, then settled
            break
        time.sleep(0.1)
    assert row.state == "failed" and row.attempts == 1 and row.next_attempt_at > row.created_at
    assert gateway.messages == []
    page = client.get(f"/schedules/{schedule.id}/delivery").get_data(as_text=True)
    assert re.search(rf'id="reach-{a.volunteer_id}" data-state="failed"', page) and "failed, will retry" in page


def test_how_far_notices_got_takes_the_same_few_queries_for_any_number_of_volunteers(sms_app, world, draft):
    """`delivery.schedule_reach` (the review page, Who was told) reads a fixed handful of statements,
    not one per volunteer or offer."""
    from sqlalchemy import event

    from matcher import delivery
    from matcher.models import Assignment
    from tests.matcher.builders import member

    schedule, a, _ = draft
    occurrence = world["demands"]["a1"].occurrences[0]

    def statements() -> int:
        _db.session.expire_all()
        shown = _db.session.scalars(select(Assignment).where(Assignment.schedule_id == schedule.id)).all()
        seen = []
        listen = lambda *args: seen.append(1)  # noqa: E731
        event.listen(_db.engine, "before_cursor_execute", listen)
        try:
            reach = delivery.schedule_reach(shown)
        finally:
            event.remove(_db.engine, "before_cursor_execute", listen)
        assert len(reach) == len({x.volunteer_id for x in shown})
        return len(seen)

    few = statements()
    for i in range(8):
        vol = member(world, _db, f"志愿者{i}", f"1391234{i:04d}", username=f"many{i}")
        offer(schedule, occurrence, vol, AssignmentStatus.PROPOSED)
    assert statements() == few <= 6
