"""Publishing the demo district's week with every volunteer on SMS: messages against offers, and time.

Builds a fresh demo district in a temporary instance folder (SQLite), solves its week without
publishing, then, in this process, points the SMS channel at the local test gateway (tests/servers/sms_gateway.py, a real HTTP server on 127.0.0.1
that checks each request's signature) and measures:

- publishing (proposals become offers, one in-app notice and one outbox row per volunteer, in the
  same transaction): offers, notices, outbox rows, seconds;
- sending every queued row through the real sender (`matcher.outbox.send_due`) to the gateway, with
  the per-minute limit lifted for the measurement: messages the gateway took, seconds, messages/s;
- the coordinator's pages that show delivery for the whole district week: the review page and
  *Who was told* (one request each, after sending).

Every volunteer keeps the default channel order (OUTBOX_DEFAULT_CHANNELS: SMS first), as a district
that never asked its volunteers would.

    .venv/bin/python bench/outbox_publish.py [--time-limit 20]

Writes bench/outbox-report.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def flask(env: dict[str, str], *args: str) -> None:
    subprocess.run([str(ROOT / ".venv/bin/flask"), "--app", "wsgi", *args], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-limit", type=int, default=20)
    args = parser.parse_args()

    instance = Path(tempfile.mkdtemp(prefix="linli-outbox-"))
    env = {**os.environ, "LINLI_INSTANCE_PATH": str(instance)}
    started = time.perf_counter()
    flask(env, "db", "upgrade")
    flask(env, "demo", "load")
    flask(env, "schedule", "solve", "--time-limit", str(args.time_limit))
    print(f"demo district built and solved in {time.perf_counter() - started:.0f} s ({instance})")

    from sqlalchemy import func, select

    from matcher import outbox
    from matcher.db import db
    from matcher.demo import DEMO_PASSWORD
    from matcher.models import (
        Area,
        AreaLevel,
        Assignment,
        AssignmentStatus,
        Notification,
        OutboxMessage,
        Schedule,
        User,
        Volunteer,
    )
    from matcher.schedules import publish_schedule
    from tests.servers.sms_gateway import SmsGateway
    from web import create_app

    os.environ["LINLI_INSTANCE_PATH"] = str(instance)
    gateway = SmsGateway().start()
    app = create_app()
    app.config.update(SMS_GATEWAY_URL=gateway.url, SMS_ACCESS_KEY=gateway.access_key, SMS_SECRET=gateway.secret,
                      SMS_SIGN_NAME="邻里", SMS_TEMPLATES={"offer": "SMS_0001"}, OUTBOX_AUTOSEND=False,
                      OUTBOX_RATE_LIMITS={"sms": 1_000_000}, OUTBOX_QUIET_HOURS=[])
    rows = []
    with app.app_context():
        accounts = db.session.scalars(select(User).join(Volunteer, Volunteer.user_id == User.id)).all()
        assert all(user.channels is None for user in accounts)  # nobody chose: the default order
        district = db.session.scalar(select(Area).where(Area.level == AreaLevel.DISTRICT))
        schedule = db.session.scalar(select(Schedule).where(Schedule.area_id == district.id))
        t0 = time.perf_counter()
        offers = publish_schedule(schedule, user=None)
        db.session.commit()
        publish_s = time.perf_counter() - t0
        volunteers_offered = db.session.scalar(select(func.count(func.distinct(Assignment.volunteer_id))).where(
            Assignment.schedule_id == schedule.id, Assignment.status == AssignmentStatus.OFFERED))
        notices = db.session.scalar(select(func.count()).select_from(Notification).where(Notification.kind == "offer"))
        queued = db.session.scalar(select(func.count()).select_from(OutboxMessage))
        t0 = time.perf_counter()
        sent = 0
        while True:
            counts = outbox.send_due(now=datetime(2026, 12, 1, 4, 0), limit=500)
            sent += counts.get("sent", 0)
            if not any(counts.get(k, 0) for k in ("sent", "failed", "given_up")):
                break
        send_s = time.perf_counter() - t0
        app.config.update(SESSION_COOKIE_SECURE=False, RATELIMIT_ENABLED=False, WTF_CSRF_ENABLED=False)
        client = app.test_client()
        assert client.post("/login", data={"username": "coord", "password": DEMO_PASSWORD}).status_code == 302
        pages = {}
        for name, path in (("review page", f"/schedules/{schedule.id}"),
                           ("who was told (first 100 of all)", f"/schedules/{schedule.id}/delivery"),
                           ("who was told, not reached", f"/schedules/{schedule.id}/delivery?show=not_reached")):
            client.get(path)  # warm
            t0 = time.perf_counter()
            answer = client.get(path)
            pages[name] = (time.perf_counter() - t0, len(answer.data), answer.status_code)
        rows = [
            ("offers made by publishing", f"{offers}"),
            ("volunteers offered", f"{volunteers_offered}"),
            ("in-app offer notices", f"{notices}"),
            ("outbox rows (SMS) written with them", f"{queued}"),
            ("publish + commit (enqueueing included)", f"{publish_s:.1f} s"),
            ("messages the gateway took", f"{len(gateway.messages)}"),
            ("sending them all (one sender, signed HTTP)", f"{send_s:.1f} s ({sent / send_s:.0f} messages/s)"),
            ("at the default limit of 600 SMS a minute", f"{queued / 600:.1f} min"),
            *((f"district {name}, one request", f"{t * 1000:.0f} ms, {size / 1024:.0f} KB (HTTP {code})")
              for name, (t, size, code) in pages.items()),
        ]
    gateway.stop()

    machine = f"{os.cpu_count()} cores, Python {platform.python_version()}, SQLite"
    table = "\n".join(["| measure | value |", "|---|---|", *(f"| {a} | {b} |" for a, b in rows)])
    print(table)
    (ROOT / "bench" / "outbox-report.md").write_text(
        "# Publishing the demo week: every volunteer told by SMS (the default channel order)\n\n"
        f"Machine: {machine}; `bench/outbox_publish.py --time-limit {args.time_limit}`; the gateway is the "
        "local test gateway on 127.0.0.1 (it checks every signature), so sending time is ours plus loopback "
        "HTTP, not a provider's.\n\n" + table + "\n\n"
        "Each volunteer gets one message listing all their offers (not one per offer): publishing calls "
        "`tell_volunteers` once for the whole week.\n", encoding="utf-8")


if __name__ == "__main__":
    main()
