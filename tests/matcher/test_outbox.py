"""The outbox and its sender: rows written with the notice, idempotent sending, retries with backoff,
quiet hours, rate limits, preference fallback, the background runner. Email goes to a real SMTP server
(aiosmtpd on 127.0.0.1); SMS to a recording channel object (the SMS gateway has its own tests)."""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from matcher import outbox
from matcher.channels import Message, PermanentFailure, Receipt, TemporaryFailure
from matcher.models import Notification, OutboxMessage, OutboxState, utcnow
from matcher.notifications import notify, render_notice

from .test_email_channel import our_log, smtp_inbox  # noqa: F401  (the SMTP server fixture)

NOON = datetime(2026, 12, 1, 4, 0)          # 12:00 in Beijing (UTC+8), as naive UTC
EVENING = datetime(2026, 12, 1, 14, 0)      # 22:00 in Beijing: quiet hours
MORNING = datetime(2026, 12, 2, 0, 0)       # 08:00 in Beijing: the quiet hours end


class RecordingSms:
    """A real channel object (the Channel protocol) that records what it is asked to send; `fail`
    holds exceptions to raise, one per call, before it starts taking messages."""

    name = "sms"

    def __init__(self, configured: bool = True) -> None:
        self.sent: list[Message] = []
        self.fail: list[Exception] = []
        self.on = configured

    def configured(self) -> bool:
        return self.on

    def address(self, user) -> str | None:
        return user.volunteer.phone if user.volunteer is not None else None

    def send(self, message: Message) -> Receipt:
        if self.fail:
            raise self.fail.pop(0)
        self.sent.append(message)
        return Receipt(provider_id=f"sms-{len(self.sent)}", answer="OK")


@pytest.fixture
def sms(app):
    channel = RecordingSms()
    app.config.update(OUTBOX_CHANNELS={"sms": channel}, OUTBOX_AUTOSEND=False)
    return channel


@pytest.fixture
def email(app, smtp_inbox):  # noqa: F811
    app.config.update(smtp_inbox.config(), OUTBOX_AUTOSEND=False)
    return smtp_inbox


def rows(db) -> list[OutboxMessage]:
    db.session.expire_all()
    return list(db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def tell(db, user, org="东城助老服务队", commit=True) -> Notification:
    notify([user], "membership_approved", params={"o": org})
    if commit:
        db.session.commit()
    return db.session.scalars(select(Notification).order_by(Notification.id.desc())).first()


def test_nothing_is_written_without_a_configured_channel(world, db, app):
    vol = world["users"]["vol_a"]
    tell(db, vol)  # no channel chosen, none configured
    vol.channels, vol.email = ["email", "sms"], "li@example.org"
    tell(db, vol)  # chosen, but no SMTP settings and no SMS gateway
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_FROM="noreply@linli.test")
    world["users"]["vol_b"].email, world["users"]["vol_b"].channels = "wang@example.org", []
    tell(db, world["users"]["vol_b"])  # configured, but vol_b chose in-app only
    assert rows(db) == []
    assert db.session.scalar(select(func.count(Notification.id))) == 3


def test_someone_who_never_chose_is_reached_by_the_default_order(world, db, app, email, sms):
    vol = world["users"]["vol_a"]
    assert vol.channels is None
    vol.email = "li@example.org"
    tell(db, vol)  # OUTBOX_DEFAULT_CHANNELS: SMS first
    app.config.update(OUTBOX_DEFAULT_CHANNELS=["email", "sms"])
    tell(db, vol)
    app.config.update(OUTBOX_DEFAULT_CHANNELS=[])
    tell(db, vol)
    assert [r.channel for r in rows(db)] == ["sms", "email"]


def test_the_row_is_written_and_rolled_back_with_the_notice(world, db, email):
    vol = world["users"]["vol_a"]
    vol.channels, vol.email = ["email"], "li@example.org"
    db.session.commit()
    tell(db, vol, commit=False)
    db.session.rollback()
    assert rows(db) == [] and db.session.scalar(select(func.count(Notification.id))) == 0

    note = tell(db, vol)
    (row,) = rows(db)
    assert row.notification_id == note.id and row.key == f"{note.id}:email"
    assert (row.channel, row.event, row.state, row.attempts) == ("email", "membership_approved", "queued", 0)
    assert row.address == "li@example.org" and row.masked_address == "l***@example.org"
    # Worded in the recipient's language (Chinese by default), as the notice list would show it.
    assert row.text == render_notice("membership_approved", {"o": "东城助老服务队"}, "zh_CN") == note.text
    assert "东城助老服务队" in row.text and row.params == {"o": "东城助老服务队"}
    assert row.subject and not row.urgent


def test_sending_twice_or_claiming_twice_sends_one_email(world, db, email):
    vol = world["users"]["vol_a"]
    vol.channels, vol.email = ["email"], "li@example.org"
    tell(db, vol)
    (row,) = rows(db)
    assert outbox.claim(row.id, NOON) is not None
    assert outbox.claim(row.id, NOON) is None  # the second sender finds it taken
    row = rows(db)[0]
    row.state, row.attempts, row.claimed_at = OutboxState.QUEUED, 0, None
    db.session.commit()

    assert outbox.send_due(NOON) == {"sent": 1}
    assert outbox.send_due(NOON) == {}
    assert outbox.send_due(NOON + timedelta(days=1)) == {}
    assert len(email.received) == 1 and email.mails()[0]["To"] == "li@example.org"
    (row,) = rows(db)
    assert (row.state, row.attempts, row.sent_at) == ("sent", 1, NOON)
    assert row.provider_id and email.mails()[0]["Message-ID"] == f"<{row.provider_id}>"


def test_two_senders_at_once_send_each_message_once(world, db, app, email):
    vol = world["users"]["vol_a"]
    vol.channels, vol.email = ["email"], "li@example.org"
    for n in range(6):
        tell(db, vol, org=f"服务队{n}")
    results, errors = [], []

    def sender():
        try:
            with app.app_context():
                results.append(outbox.send_due(NOON))
                from matcher.db import db as _db
                _db.session.remove()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=sender) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert sum(r.get("sent", 0) for r in results) == 6
    assert len(email.received) == 6
    assert sorted(m.get_content().strip() for m in email.mails()) == sorted(r.text for r in rows(db))
    assert {r.state for r in rows(db)} == {"sent"}


def test_a_refused_then_accepted_email_arrives_once_with_backoff(world, db, email):
    vol = world["users"]["vol_a"]
    vol.channels, vol.email = ["email"], "li@example.org"
    tell(db, vol)
    email.refuse = 1  # 451 first
    assert outbox.send_due(NOON) == {"failed": 1}
    (row,) = rows(db)
    assert (row.state, row.attempts, row.next_attempt_at) == ("failed", 1, NOON + timedelta(minutes=1))
    assert row.last_error.startswith("451")
    assert outbox.send_due(NOON + timedelta(seconds=30)) == {}  # not due yet
    assert outbox.send_due(NOON + timedelta(minutes=1)) == {"sent": 1}
    assert email.calls == 2 and len(email.received) == 1
    assert rows(db)[0].state == "sent" and rows(db)[0].attempts == 2


def test_given_up_after_the_last_attempt(world, db, app, email):
    app.config.update(OUTBOX_MAX_ATTEMPTS=3, OUTBOX_BACKOFF_MINUTES=[1, 5])
    vol = world["users"]["vol_a"]
    vol.channels, vol.email = ["email"], "li@example.org"
    tell(db, vol)
    email.refuse = 99
    at = NOON
    waits = []
    for _ in range(3):
        assert outbox.send_due(at) in ({"failed": 1}, {"given_up": 1})
        row = rows(db)[0]
        waits.append(row.next_attempt_at - at)
        at = row.next_attempt_at
    assert waits[:2] == [timedelta(minutes=1), timedelta(minutes=5)]
    assert (row.state, row.attempts) == ("given_up", 3)
    assert outbox.send_due(at + timedelta(days=1)) == {}
    assert email.calls == 3 and email.received == []


def test_quiet_hours_postpone_sms_but_not_urgent_or_email(world, db, sms, email):
    vol_a, vol_b = world["users"]["vol_a"], world["users"]["vol_b"]
    vol_a.channels = ["sms"]
    vol_b.channels, vol_b.email = ["email"], "wang@example.org"
    db.session.commit()
    tell(db, vol_a)
    tell(db, vol_b)
    notify([vol_a], "demand_review_urgent", params={"t": "送药", "c": "桂花社区"})  # urgent: goes at night
    db.session.commit()

    assert outbox.send_due(EVENING) == {"postponed": 1, "sent": 2}
    assert [m.event for m in sms.sent] == ["demand_review_urgent"] and len(email.received) == 1
    waiting = [r for r in rows(db) if r.state == "queued"]
    assert [(r.channel, r.next_attempt_at, r.attempts) for r in waiting] == [("sms", MORNING, 0)]
    assert outbox.send_due(MORNING - timedelta(minutes=1)) == {}  # 07:59: still waiting
    assert outbox.send_due(MORNING) == {"sent": 1}
    assert [m.event for m in sms.sent] == ["demand_review_urgent", "membership_approved"]
    assert sms.sent[1].params == {"o": "东城助老服务队"} and sms.sent[1].address == "+8613812345678"


def test_quiet_until():
    assert outbox.quiet_until(NOON, ["21:00", "08:00"]) is None
    assert outbox.quiet_until(EVENING, ["21:00", "08:00"]) == MORNING
    assert outbox.quiet_until(MORNING - timedelta(hours=2), ["21:00", "08:00"]) == MORNING  # 06:00 local
    assert outbox.quiet_until(MORNING, ["21:00", "08:00"]) is None
    assert outbox.quiet_until(EVENING, []) is None


def test_the_rate_limit_holds_the_rest_for_the_next_minute(world, db, app, sms):
    app.config["OUTBOX_RATE_LIMITS"] = {"sms": 2}
    vol = world["users"]["vol_a"]
    vol.channels = ["sms"]
    for n in range(3):
        tell(db, vol, org=f"服务队{n}")
    assert outbox.send_due(NOON) == {"sent": 2, "throttled": 1}
    assert len(sms.sent) == 2
    held = [r for r in rows(db) if r.state == "queued"]
    assert len(held) == 1 and held[0].attempts == 0 and held[0].claimed_at is None
    assert outbox.send_due(NOON + timedelta(seconds=30)) == {"throttled": 1}
    assert outbox.send_due(NOON + timedelta(seconds=61)) == {"sent": 1}
    assert len(sms.sent) == 3


def test_preference_falls_back_to_the_next_channel(world, db, sms, email):
    vol = world["users"]["vol_a"]
    vol.channels, vol.email = ["wechat", "sms", "email"], "li@example.org"
    db.session.commit()
    sms.on = False  # SMS off: the first channel that is on and reaches them is email
    tell(db, vol)
    assert [r.channel for r in rows(db)] == ["email"]

    sms.on = True
    sms.fail = [PermanentFailure("number refused")]
    note = tell(db, vol, org="南山调解队")
    assert [r.channel for r in rows(db)] == ["email", "sms"]
    assert outbox.send_due(NOON) == {"sent": 2, "given_up": 1}  # the SMS refused, then its email sent
    by_key = {r.key: r for r in rows(db)}
    assert by_key[f"{note.id}:sms"].state == "given_up"
    assert by_key[f"{note.id}:sms>email"].state == "sent"
    assert sms.sent == [] and len(email.received) == 2

    vol.email = None  # no e-mail address: a refused SMS has nowhere else to go
    db.session.commit()
    sms.fail = [PermanentFailure("number refused")]
    tell(db, vol, org="第三队")
    assert outbox.send_due(NOON) == {"given_up": 1}
    assert len(rows(db)) == 4


def test_a_temporary_failure_or_a_broken_channel_is_retried(world, db, sms):
    vol = world["users"]["vol_a"]
    vol.channels = ["sms"]
    tell(db, vol)
    sms.fail = [TemporaryFailure("HTTP 500"), RuntimeError("+8613812345678 boom")]
    assert outbox.send_due(NOON) == {"failed": 1}
    assert outbox.send_due(NOON + timedelta(minutes=1)) == {"failed": 1}
    row = rows(db)[0]
    assert row.last_error == "unexpected error (RuntimeError)" and row.attempts == 2
    assert outbox.send_due(NOON + timedelta(minutes=6)) == {"sent": 1}
    assert len(sms.sent) == 1


def test_a_dead_senders_claim_is_retried(world, db, sms):
    vol = world["users"]["vol_a"]
    vol.channels = ["sms"]
    tell(db, vol)
    row = outbox.claim(rows(db)[0].id, NOON)  # a sender claimed it and died
    assert outbox.send_due(NOON + timedelta(minutes=5)) == {}
    assert outbox.send_due(NOON + timedelta(minutes=11)) == {"reclaimed": 1, "sent": 1}
    assert rows(db)[0].attempts == 2 and row is not None


def test_the_log_holds_no_phone_email_or_text(world, db, sms, email, caplog):
    caplog.set_level(logging.DEBUG)
    vol_a, vol_b = world["users"]["vol_a"], world["users"]["vol_b"]
    vol_a.channels = ["sms", "email"]
    vol_a.email = "li@example.org"
    vol_b.channels, vol_b.email = ["email"], "wang@example.org"
    db.session.commit()
    tell(db, vol_a)
    tell(db, vol_b)
    sms.fail = [RuntimeError("+8613812345678"), PermanentFailure("refused 13812345678")]
    email.refuse = 1
    outbox.send_due(NOON)
    outbox.send_due(NOON + timedelta(minutes=2))
    outbox.send_due(NOON + timedelta(minutes=4))
    assert {r.state for r in rows(db)} >= {"sent", "given_up"}
    logged = our_log(caplog)
    assert "outbox" in logged
    for secret in ("13812345678", "li@example.org", "wang@example.org", "东城助老服务队"):
        assert secret not in logged


def test_a_commit_starts_the_sender_thread(world, db, app, email):
    from web import jobs

    app.config["OUTBOX_AUTOSEND"] = True
    vol = world["users"]["vol_a"]
    vol.channels, vol.email = ["email"], "li@example.org"
    db.session.commit()
    notify([vol], "membership_approved", params={"o": "东城助老服务队"})
    db.session.rollback()  # rolled back: nothing written, no sender
    assert not jobs._outbox_running
    tell(db, vol)  # the commit starts the thread, which sends it
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and (not email.received or jobs._outbox_running):
        time.sleep(0.05)
    assert len(email.received) == 1 and not jobs._outbox_running
    assert rows(db)[0].state == "sent"


def test_a_sleeping_sender_thread_wakes_for_a_new_notice(world, db, app, email):
    """The thread waits a minute for a refused message's retry; a notice committed meanwhile is sent at
    once, not after the wait."""
    from web import jobs

    app.config["OUTBOX_AUTOSEND"] = True
    vol = world["users"]["vol_a"]
    vol.channels, vol.email = ["email"], "li@example.org"
    db.session.commit()
    email.refuse = 1  # the first message is refused (451): retried in a minute
    tell(db, vol)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and email.calls < 1:
        time.sleep(0.05)
    assert email.calls == 1 and jobs._outbox_running  # asleep until the retry
    tell(db, vol, org="南山调解队")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not email.received:
        time.sleep(0.05)
    assert len(email.received) == 1 and "南山调解队" in email.mails()[0].get_content()
    deadline = time.monotonic() + 10  # the server has the mail; the sender then records it as sent
    while time.monotonic() < deadline and [r.state for r in rows(db)] != ["failed", "sent"]:
        time.sleep(0.05)
    assert [r.state for r in rows(db)] == ["failed", "sent"]


def test_due_rows_are_found_with_their_time(world, db, sms):
    vol = world["users"]["vol_a"]
    vol.channels = ["sms"]
    assert outbox.next_due_at() is None
    before = utcnow()
    tell(db, vol)
    assert before <= outbox.next_due_at() <= utcnow()


def test_one_notify_for_many_people_writes_a_row_each_in_one_flush(world, db, sms, email):
    vol_a, vol_b = world["users"]["vol_a"], world["users"]["vol_b"]
    vol_a.channels = ["sms"]
    vol_b.channels, vol_b.email, vol_b.locale = ["email"], "wang@example.org", "en"
    db.session.commit()
    notify([vol_a, vol_b, world["users"]["coord"]], "membership_approved", params={"o": "南山调解队"})
    db.session.commit()
    notes = {n.user_id: n.id for n in db.session.scalars(select(Notification))}
    got = {r.user_id: r for r in rows(db)}
    assert set(got) == {vol_a.id, vol_b.id}  # the coordinator chose no channel
    assert got[vol_a.id].key == f"{notes[vol_a.id]}:sms" and got[vol_b.id].key == f"{notes[vol_b.id]}:email"
    assert got[vol_b.id].text == render_notice("membership_approved", {"o": "南山调解队"}, "en")
    assert got[vol_b.id].subject == "Linli volunteer service notice"
    assert got[vol_a.id].text != got[vol_b.id].text  # Chinese for vol_a, who chose no language


@pytest.mark.redis
def test_with_redis_the_commit_queues_an_rq_job_that_sends(world, db, app, email, monkeypatch):
    import uuid

    import redis
    from rq import Queue, SimpleWorker
    from rq.registry import ScheduledJobRegistry

    from tests.conftest import REDIS_TEST_URL
    from web import jobs

    try:
        conn = redis.Redis.from_url(REDIS_TEST_URL, socket_connect_timeout=2)
        conn.ping()
    except redis.exceptions.ConnectionError:
        pytest.skip(f"Redis not reachable at {REDIS_TEST_URL}: RQ path skipped")
    monkeypatch.setattr(jobs, "QUEUE", f"linli-outbox-test-{uuid.uuid4().hex[:8]}")  # a queue of our own
    queue = Queue(jobs.QUEUE, connection=conn)
    app.config.update(OUTBOX_AUTOSEND=True, REDIS_URL=REDIS_TEST_URL)
    vol = world["users"]["vol_a"]
    vol.channels, vol.email = ["email"], "li@example.org"
    db.session.commit()
    assert queue.count == 0
    email.refuse = 1
    conn.delete(jobs._pending_key())
    tell(db, vol)
    tell(db, vol, org="南山调解队")
    try:
        # The second commit found a job waiting: one job for both (a burst queues no more).
        assert queue.count == 1 and not jobs._outbox_running
        SimpleWorker([queue], connection=conn).work(burst=True)
        # The job sent one and saw the other refused (451).
        assert len(email.received) == 1
        assert sorted(r.state for r in rows(db)) == ["failed", "sent"]
        scheduled = ScheduledJobRegistry(queue=queue)
        assert scheduled.get_job_ids() == [jobs.OUTBOX_NEXT_JOB]  # one look at the retry
        assert not conn.exists(jobs._pending_key())  # the job cleared it: the next commit queues again
        tell(db, vol, org="城东志愿队")
        assert queue.count == 1
    finally:
        queue.empty()
        conn.delete(jobs._pending_key())
        ScheduledJobRegistry(queue=queue).remove(jobs.OUTBOX_NEXT_JOB, delete_job=True)


def test_the_cli_sends_what_is_due(world, db, app, email):
    vol = world["users"]["vol_a"]
    vol.channels, vol.email = ["email"], "li@example.org"
    tell(db, vol)
    result = app.test_cli_runner().invoke(args=["outbox", "send"])
    assert result.exit_code == 0 and result.output.strip() == "sent 1"
    assert len(email.received) == 1
    result = app.test_cli_runner().invoke(args=["outbox", "send"])
    assert result.output.strip() == "nothing due" and len(email.received) == 1


def test_queuing_flushes_nothing(world, db, sms):
    vol = world["users"]["vol_a"]
    vol.channels = ["sms"]
    db.session.commit()
    db.session.expire(vol, ["volunteer"])  # the SMS address has to load the volunteer row
    notify([vol], "membership_approved", params={"o": "东城助老服务队"})
    pending = [o for o in db.session.new if isinstance(o, Notification | OutboxMessage)]
    assert len(pending) == 2  # both still waiting for the caller's flush or commit
    db.session.commit()
    assert rows(db)[0].key.endswith(":sms")


def test_template_parameters_reach_the_channel_worded_in_the_recipients_language(world, db, sms):
    """A reason the service words itself is stored as {"msgid", "args"}; the SMS template gets text."""
    from flask_babel import lazy_gettext as _l

    vol = world["users"]["vol_a"]
    vol.channels, vol.locale = ["sms"], "zh_CN"
    notify([vol], "offer_withdrawn", params={"items": "周二 09:00", "why": _l("Demand cancelled.")})
    db.session.commit()
    outbox.send_due(now=NOON)
    (message,) = sms.sent
    assert message.params["why"] == "需求已取消。" and message.params["items"] == "周二 09:00"
    assert "需求已取消。" in message.text
