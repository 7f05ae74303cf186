"""Reminders (`matcher.reminders`): the evening before, two hours before an urgent service, the community
worker's morning list, and the rating told to the volunteer; each written once, also by two runs racing,
with its outbox row for a person an outside channel reaches (a recording SMS channel, `RecordingSms`)."""

from __future__ import annotations

import threading
import time
from datetime import date, timedelta

import pytest
from flask import url_for
from sqlalchemy import func, select, text

from matcher.assignments import rate_service
from matcher.clock import local_now
from matcher.models import AssignmentStatus, DemandStatus, Notification, OutboxMessage, Priority
from matcher.outbox import send_due
from matcher.reminders import due_reminders, next_reminder_at, remind_due, to_local, to_utc, write_reminders

from .builders import add_demand, at, offer
from .test_outbox import RecordingSms


@pytest.fixture
def sms(app):
    channel = RecordingSms()
    app.config.update(OUTBOX_CHANNELS={"sms": channel}, OUTBOX_AUTOSEND=False)
    return channel


def utc(day: date, hhmm: str):
    """The naive UTC time of HH:MM local time on `day` (what remind_due takes)."""
    return to_utc(at(day, hhmm))


def notes(db, kind: str, user=None) -> list[Notification]:
    db.session.expire_all()
    stmt = select(Notification).where(Notification.kind == kind).order_by(Notification.id)
    if user is not None:
        stmt = stmt.where(Notification.user_id == user.id)
    return list(db.session.scalars(stmt))


def outbox_rows(db, event: str) -> list[OutboxMessage]:
    db.session.expire_all()
    return list(db.session.scalars(select(OutboxMessage).where(OutboxMessage.event == event)
                                   .order_by(OutboxMessage.id)))


def accept(week, occ, volunteer, status=AssignmentStatus.ACCEPTED):
    return offer(week["schedule"], occ, volunteer, status=status)


def test_the_evening_before_each_volunteer_gets_one_notice_listing_tomorrows_accepted_services(
        world, db, app, week, sms):
    app.config["REMINDER_DAY_BEFORE_AT"] = "19:30"
    monday, sunday = week["monday"], week["monday"] - timedelta(days=1)
    vol_a, vol_b = world["volunteers"]["a"], world["volunteers"]["b"]
    accept(week, week["occ"], vol_a)  # 09:00 at 张大爷's home in 桂花社区
    accept(week, add_demand(world, monday, "14:00", "15:00", title="读报陪伴"), vol_a)
    accept(week, add_demand(world, monday, "16:00", "17:00", title="婉拒的服务"), vol_a, AssignmentStatus.DECLINED)
    accept(week, add_demand(world, monday, "17:00", "18:00", title="未答复的服务"), vol_a, AssignmentStatus.OFFERED)
    cancelled = add_demand(world, monday, "18:00", "19:00", title="取消的服务")
    accept(week, cancelled, vol_a)
    cancelled.status = DemandStatus.CANCELLED
    accept(week, add_demand(world, monday + timedelta(days=1), "09:00", "10:00", title="后天的服务"), vol_a)
    accept(week, world["demands"]["b1"].occurrences[0], vol_b)  # Monday 14:00 in 石桥村
    db.session.commit()

    assert remind_due(utc(sunday, "19:29")) == {}  # not before the configured time
    assert remind_due(utc(sunday, "21:30")) == {}  # nor after the grace period (120 minutes)
    assert remind_due(utc(sunday, "19:30")) == {"day": 2}

    (note,) = notes(db, "reminder", world["users"]["vol_a"])
    title = week["occ"].demand.title
    assert f"09:00 “{title}” (桂花社区)" in note.text and "14:00 “读报陪伴” (桂花社区)" in note.text
    assert monday.isoformat() in note.text
    for other in ("婉拒的服务", "未答复的服务", "取消的服务", "后天的服务"):
        assert other not in note.text
    assert note.dedup_key == f"remind:day:{world['users']['vol_a'].id}:{monday.isoformat()}"
    assert (note.link_endpoint, note.link_args) == ("volunteer.week", {})
    assert "14:00 “" in notes(db, "reminder", world["users"]["vol_b"])[0].text
    # Each volunteer's outbox row, worded like the notice, not urgent.
    rows = outbox_rows(db, "reminder")
    assert sorted(r.address for r in rows) == sorted([vol_a.phone, vol_b.phone])
    assert not any(r.urgent for r in rows) and {r.text for r in rows} == {n.text for n in notes(db, "reminder")}

    assert remind_due(utc(sunday, "19:45")) == {}  # written once
    assert len(notes(db, "reminder")) == 2 and len(outbox_rows(db, "reminder")) == 2


def test_inactive_accounts_and_volunteers_are_not_reminded(world, db, app, week, sms):
    sunday = week["monday"] - timedelta(days=1)
    accept(week, week["occ"], world["volunteers"]["a"])
    accept(week, world["demands"]["b1"].occurrences[0], world["volunteers"]["b"])
    world["users"]["vol_a"].active = False
    world["volunteers"]["b"].active = False
    db.session.commit()
    assert remind_due(utc(sunday, "18:00")) == {}
    assert notes(db, "reminder") == []


def test_an_urgent_service_is_reminded_two_hours_before_and_the_sms_breaks_the_quiet_hours(world, db, app, week, sms):
    monday = week["monday"]
    urgent = add_demand(world, monday, "07:30", "08:30", title="紧急送药")
    urgent.demand.priority = Priority.URGENT
    late = add_demand(world, monday, "10:00", "11:00", title="紧急陪诊")
    late.demand.priority = Priority.URGENT
    db.session.commit()
    assignment = accept(week, urgent, world["volunteers"]["a"])
    accept(week, late, world["volunteers"]["a"])
    accept(week, week["occ"], world["volunteers"]["a"])  # 09:00, not urgent: no reminder two hours before

    assert remind_due(utc(monday, "05:29")) == {}
    assert remind_due(utc(monday, "05:30")) == {"urgent": 1}  # 05:30: inside the SMS quiet hours
    (note,) = notes(db, "reminder_urgent")
    assert "07:30" in note.text and "紧急送药" in note.text and "桂花社区" in note.text
    assert note.dedup_key == f"remind:urgent:{assignment.id}" and note.link_endpoint == "volunteer.week"
    (row,) = outbox_rows(db, "reminder_urgent")
    assert row.urgent and row.address == world["volunteers"]["a"].phone
    # The row is stamped with the real clock; the test's clock is 05:30 on the coming Monday, which is
    # already past in real time on a Sunday evening (UTC). It was written at 05:30 as far as sending goes.
    row.next_attempt_at = utc(monday, "05:30")
    db.session.commit()
    assert send_due(utc(monday, "05:31")) == {"sent": 1}  # not postponed to 08:00
    assert [m.event for m in sms.sent] == ["reminder_urgent"]

    assert remind_due(utc(monday, "07:00")) == {}  # the 09:00 service is not urgent; 07:30 written already
    assert remind_due(utc(monday, "10:00")) == {}  # 紧急陪诊 has begun: too late to remind
    assert len(notes(db, "reminder_urgent")) == 1


def test_the_community_worker_gets_one_morning_list_of_todays_services(world, db, app, week, sms):
    from matcher.accounts import create_user
    from matcher.models import Role

    monday = week["monday"]
    vol_a, vol_b = world["volunteers"]["a"], world["volunteers"]["b"]
    accept(week, week["occ"], vol_a)  # 09:00 in 桂花社区
    accept(week, add_demand(world, monday, "14:00", "15:00", title="读报陪伴"), vol_a)
    accept(week, add_demand(world, monday, "16:00", "17:00", title="无人接受"), vol_a, AssignmentStatus.OFFERED)
    b1 = world["demands"]["b1"].occurrences[0]  # 14:00 in 石桥村
    accept(week, b1, vol_b)
    retired = create_user(username="worker_old", password="correct horse battery", role=Role.WORKER,
                          area_id=world["areas"]["a1"].id)
    retired.active = False
    db.session.commit()

    assert remind_due(utc(monday, "07:29")) == {}
    assert remind_due(utc(monday, "07:30")) == {"checkin": 2}
    (a1,) = notes(db, "checkin_today", world["users"]["worker_a1"])
    title = week["occ"].demand.title
    assert "桂花社区" in a1.text and f"09:00 “{title}”" in a1.text and "14:00 “读报陪伴”" in a1.text
    assert "无人接受" not in a1.text  # nobody accepted it: nobody comes to check in
    # Several services: the week's page, where each has its code; one: that service's code page.
    assert (a1.link_endpoint, a1.link_args) == ("community.week", {"week": monday.isoformat()})
    (b,) = notes(db, "checkin_today", world["users"]["worker_b1"])
    assert (b.link_endpoint, b.link_args) == ("community.checkin_code", {"occurrence_id": b1.id})
    assert url_for(b.link_endpoint, **b.link_args).endswith(f"/community/occurrences/{b1.id}/code")
    assert notes(db, "checkin_today", retired) == [] and notes(db, "checkin_today", world["users"]["worker_a2"]) == []
    assert remind_due(utc(monday, "08:00")) == {}


def test_a_rating_is_told_to_the_volunteer_with_a_link_to_their_record(world, db, app, week, sms):
    done = accept(week, week["occ"], world["volunteers"]["a"], AssignmentStatus.COMPLETED)
    rate_service(done, "4", "很耐心", user=world["users"]["worker_a1"])
    db.session.commit()
    (note,) = notes(db, "rated", world["users"]["vol_a"])
    assert "4" in note.text and week["occ"].demand.title in note.text
    assert week["monday"].isoformat() in note.text
    assert note.link_endpoint == "volunteer.record"
    (row,) = outbox_rows(db, "rated")
    assert row.address == world["volunteers"]["a"].phone and row.params["stars"] == 4


def test_two_runs_racing_write_each_reminder_once(world, db, app, week, sms):
    sunday = week["monday"] - timedelta(days=1)
    accept(week, week["occ"], world["volunteers"]["a"])
    accept(week, world["demands"]["b1"].occurrences[0], world["volunteers"]["b"])
    now = utc(sunday, "18:05")
    written, go = threading.Event(), threading.Event()
    results: dict[str, dict] = {}
    errors: list[BaseException] = []

    def first():
        """A run that has written its reminders and not yet committed them."""
        from matcher.db import db as _db

        with app.app_context():
            try:
                results["first"] = dict(write_reminders(due_reminders(now)))
                written.set()
                go.wait(20)
                _db.session.commit()
            except BaseException as exc:
                errors.append(exc)
                written.set()
            finally:
                _db.session.remove()

    def second():
        from matcher.db import db as _db

        with app.app_context():
            try:
                results["second"] = remind_due(now)
            except BaseException as exc:
                errors.append(exc)
            finally:
                _db.session.remove()

    one = threading.Thread(target=first)
    one.start()
    assert written.wait(20)
    two = threading.Thread(target=second)
    two.start()
    postgres = db.engine.dialect.name == "postgresql"
    # The second run waits: on PostgreSQL for the first's uncommitted key (it read before it was
    # committed), on SQLite for the first's write lock (it has not read yet).
    deadline = time.monotonic() + (10 if postgres else 0.5)
    while time.monotonic() < deadline:
        if postgres and db.session.scalar(text("SELECT count(*) FROM pg_locks WHERE NOT granted")):
            break
        db.session.commit()
        time.sleep(0.05)
    go.set()
    one.join(30)
    two.join(30)
    assert errors == []
    assert results["first"] == {"day": 2}
    assert not results["second"].get("day")  # nothing written twice
    if postgres:  # it had read before the first committed: the unique key refused its insert
        assert results["second"].get("raced", 0) >= 1
    assert db.session.scalar(select(func.count(Notification.id)).where(Notification.kind == "reminder")) == 2
    assert len(outbox_rows(db, "reminder")) == 2


def test_the_next_reminder_time_follows_the_services_to_come(world, db, app, week):
    monday = week["monday"]
    thursday_before = monday - timedelta(days=4)
    assert next_reminder_at(utc(thursday_before, "12:00")) is None  # nothing offered or accepted
    accept(week, week["occ"], world["volunteers"]["a"], AssignmentStatus.OFFERED)
    assert next_reminder_at(utc(thursday_before, "12:00")) == utc(monday - timedelta(days=1), "18:00")
    assert next_reminder_at(utc(monday - timedelta(days=1), "18:00")) == utc(monday, "07:30")
    urgent = add_demand(world, monday, "08:00", "08:30", title="紧急")
    urgent.demand.priority = Priority.URGENT
    db.session.commit()
    accept(week, urgent, world["volunteers"]["b"])
    assert next_reminder_at(utc(monday - timedelta(days=1), "18:00")) == utc(monday, "06:00")


def test_the_cli_writes_the_due_reminders_and_sends_them(world, db, app, week, sms):
    start = local_now().replace(second=0, microsecond=0) + timedelta(minutes=60)
    if start.hour == 23 and start.minute >= 45:  # keep the service within one day
        start += timedelta(minutes=20)
    occ = add_demand(world, start.date(), f"{start:%H:%M}", f"{start + timedelta(minutes=10):%H:%M}",
                     title="紧急探访")
    occ.demand.priority = Priority.URGENT
    db.session.commit()
    accept(week, occ, world["volunteers"]["a"])
    runner = app.test_cli_runner()

    result = runner.invoke(args=["outbox", "send"])
    assert result.exit_code == 0, result.output
    assert "urgent 1" in result.output and "sent" in result.output
    assert [m.event for m in sms.sent] == ["reminder_urgent"]

    again = runner.invoke(args=["outbox", "remind"])
    assert again.exit_code == 0, again.output
    assert "none due" in again.output and "next look" in again.output
    assert len(notes(db, "reminder_urgent")) == 1


def test_the_cli_remind_command_writes_and_names_a_bad_setting(world, db, app, week):
    start = local_now().replace(second=0, microsecond=0) + timedelta(minutes=30)
    if start.hour == 23 and start.minute >= 45:
        start += timedelta(minutes=20)
    occ = add_demand(world, start.date(), f"{start:%H:%M}", f"{start + timedelta(minutes=10):%H:%M}", title="急")
    occ.demand.priority = Priority.URGENT
    db.session.commit()
    accept(week, occ, world["volunteers"]["b"])
    result = app.test_cli_runner().invoke(args=["outbox", "remind"])
    assert result.exit_code == 0 and "urgent 1" in result.output, result.output
    assert len(notes(db, "reminder_urgent", world["users"]["vol_b"])) == 1

    app.config["REMINDER_DAY_BEFORE_AT"] = "6 pm"
    bad = app.test_cli_runner().invoke(args=["outbox", "remind"])
    assert bad.exit_code == 2 and "REMINDER_DAY_BEFORE_AT" in bad.output and "Traceback" not in bad.output


def test_local_and_utc_times_convert_both_ways(app):
    moment = at(date(2026, 12, 1), "18:00")
    assert to_utc(moment) == at(date(2026, 12, 1), "10:00")  # Beijing is UTC+8
    assert to_local(to_utc(moment)) == moment
