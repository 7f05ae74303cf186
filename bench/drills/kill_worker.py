"""Drill: an RQ solve worker SIGKILLed in mid-solve.

Loads the scale-0.1 demo into a temporary PostgreSQL database (--sqlite: a SQLite file), starts
`rq worker` on an empty Redis database, and has the district coordinator solve the demo week
through the app (its views, in this process) with a 30 s limit. Three ways a worker dies, each in
mid-solve:

1. the worker and its work horse SIGKILLed together (the machine or container is lost);
2. only the work horse SIGKILLed (what the kernel's OOM killer does);
3. only the worker's main process SIGKILLed (its work horse carries on).

After each kill the drill looks at the run every 0.5 s the way the run page's poll does
(`web.jobs.check_run`, then GET /runs/<id>.json) and records how soon the run is found dead: on this
machine (the recorded process is gone) and, for case 1, as a poller on another machine would (only
the heartbeat tells). It checks that the dead run wrote nothing to the schedule, then retries (Solve
again, 10 s limit) on a new worker and waits for that run to finish. Prints a table; removes its
database, Redis keys, worker processes and temporary folder.

    .venv/bin/python bench/drills/kill_worker.py [--sqlite] [--time-limit 30]
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))

from _common import BIN, ROOT, Drill, alive, children_of, print_table, solve_drill_arguments, wait_for  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

REDIS_BASE = os.environ.get("LINLI_DRILL_REDIS", "redis://127.0.0.1:6379")
POLL = 0.5


def empty_redis_database() -> str:
    """An empty Redis database (13 down to 8), so the drill never touches anyone's keys."""
    import redis

    for number in range(13, 7, -1):
        url = f"{REDIS_BASE}/{number}"
        if redis.Redis.from_url(url, socket_connect_timeout=2).dbsize() == 0:
            return url
    raise SystemExit(f"no empty Redis database between 8 and 13 at {REDIS_BASE}")


class Coordinator:
    """The district coordinator in the app (its real views, through Flask's test client)."""

    def __init__(self, app, week):
        from matcher.db import db
        from matcher.models import Area, AreaLevel

        self.app, self.db = app, db
        self.client = app.test_client()
        response = self.client.post("/login", data={"username": "coord", "password": "linli-demo-2026"})
        assert response.status_code == 302, "login failed"
        with app.app_context():
            district = db.session.scalar(select(Area.id).where(Area.level == AreaLevel.DISTRICT))
        response = self.client.post("/schedules/open", data={"area": district, "week": week.isoformat()})
        self.schedule_id = int(response.headers["Location"].rstrip("/").rsplit("/", 1)[1])

    def solve(self, time_limit: int) -> int:
        from matcher.models import SolveRun

        response = self.client.post(f"/schedules/{self.schedule_id}/solve", data={"time_limit": str(time_limit)})
        assert response.status_code == 302
        with self.app.app_context():
            run = self.db.session.scalar(select(SolveRun).where(SolveRun.schedule_id == self.schedule_id)
                                         .order_by(SolveRun.id.desc()))
            return run.id

    def run(self, run_id: int):
        from matcher.models import SolveRun

        with self.app.app_context():
            run = self.db.session.get(SolveRun, run_id)
            self.db.session.expunge(run)
            return run

    def poll(self, run_id: int) -> str:
        """What the run page's poll does: check_run (gives a dead run up), then the status JSON."""
        from matcher.models import SolveRun
        from web.jobs import check_run

        with self.app.app_context():
            check_run(self.db.session.get(SolveRun, run_id))
            self.db.session.commit()
        return self.client.get(f"/runs/{run_id}.json").get_json()["status"]

    def verdicts(self, run_id: int) -> tuple[str | None, str | None]:
        """Is the run dead? As seen on this machine, and from another machine (heartbeat only)."""
        from matcher.models import SolveRun
        from matcher.schedules import death_of

        with self.app.app_context():
            run = self.db.session.get(SolveRun, run_id)
            verdicts = death_of(run), death_of(run, check_process=False)
            self.db.session.rollback()
            return verdicts

    def written(self) -> int:
        """Assignments in the schedule (a draft: what the last finished run wrote)."""
        from matcher.models import Assignment

        with self.app.app_context():
            return self.db.session.scalar(select(func.count(Assignment.id))
                                          .where(Assignment.schedule_id == self.schedule_id))

    def wait_solving(self, run_id: int, seconds_in: float = 3.0) -> None:
        def solving():
            run = self.run(run_id)
            if run.status.value in ("done", "failed"):
                raise SystemExit(f"run {run_id} ended ({run.status.value}) before it could be killed: {run.message}")
            return run.status.value == "solving" and (run.progress or {}).get("elapsed", 0) >= seconds_in
        wait_for(solving, 90, f"run {run_id} never reached the solving phase", every=0.3)

    def wait_finished(self, run_id: int, seconds: float = 120):
        wait_for(lambda: self.run(run_id).status.value not in ("queued", "building", "solving"), seconds,
                 f"run {run_id} did not finish", every=0.5)
        return self.run(run_id)


def start_worker(drill: Drill, redis_url: str, name: str):
    proc = drill.start(str(BIN / "rq"), "worker", "--url", redis_url, "--path", str(ROOT), "linli", name=name)
    time.sleep(0.5)
    return proc


def horse_of(worker) -> int:
    horses = wait_for(lambda: children_of(worker.pid), 30, "the worker forked no work horse")
    return horses[0]


def main() -> None:
    args = solve_drill_arguments(__doc__).parse_args()
    import redis
    from rq.job import Job

    redis_url = empty_redis_database()
    conn = redis.Redis.from_url(redis_url)
    rows = []
    started = time.monotonic()
    try:
        with Drill(sqlite=args.sqlite, redis_url=redis_url) as drill:
            drill.load_demo()
            os.environ.clear()
            os.environ.update(drill.env, LINLI_WTF_CSRF_ENABLED="false")
            from matcher.schedules import HEARTBEAT_LOST
            from web import create_app

            app = create_app()
            coord = Coordinator(app, drill.week)

            def retry(label: str, worker_name: str | None) -> list[str]:
                if worker_name:
                    start_worker(drill, redis_url, worker_name)
                clicked = time.monotonic()
                run_id = coord.solve(args.retry_limit)
                run = coord.wait_finished(run_id)
                return [f"{run.status.value} in {time.monotonic() - clicked:.1f} s (run {run_id}, {label})",
                        str(coord.written())]

            # 1. Worker and work horse killed together.
            worker_a = start_worker(drill, redis_url, "worker A")
            run_id = coord.solve(args.time_limit)
            coord.wait_solving(run_id)
            before = coord.written()
            horse = horse_of(worker_a)
            os.kill(horse, signal.SIGKILL)
            os.kill(worker_a.pid, signal.SIGKILL)
            killed = time.monotonic()
            worker_a.wait()
            seen_local = seen_remote = None
            while time.monotonic() - killed < HEARTBEAT_LOST + 30 and seen_remote is None:
                local, remote = coord.verdicts(run_id)
                now = time.monotonic() - killed
                seen_local = seen_local if seen_local is not None or local is None else now
                seen_remote = seen_remote if seen_remote is not None or remote is None else now
                time.sleep(POLL)
            rq_status = Job.fetch(f"solve-{coord.schedule_id}-{run_id}", connection=conn).get_status()
            status = coord.poll(run_id)
            after = coord.written()
            rows.append(["1. worker + work horse SIGKILLed", f"{status} ({coord.run(run_id).progress.get('given_up')})",
                         f"{seen_local:.1f} s" if seen_local is not None else "never",
                         f"{seen_remote:.1f} s" if seen_remote is not None else "never",
                         f"RQ job still '{rq_status.value}'", f"{before} → {after}", *retry("worker B", "worker B")])

            # 2. Only the work horse killed (the OOM killer's choice): RQ marks the job failed.
            worker_b = drill.processes[-1]
            run_id = coord.solve(args.time_limit)
            coord.wait_solving(run_id)
            before = coord.written()
            os.kill(horse_of(worker_b), signal.SIGKILL)
            killed = time.monotonic()
            status = wait_for(lambda: (s := coord.poll(run_id)) not in ("queued", "building", "solving") and s,
                              HEARTBEAT_LOST + 30, "run 2 was never given up", every=POLL)
            detected = time.monotonic() - killed
            rq_status = Job.fetch(f"solve-{coord.schedule_id}-{run_id}", connection=conn).get_status()
            rows.append(["2. work horse SIGKILLed (OOM)", f"{status} ({coord.run(run_id).progress.get('given_up')})",
                         f"{detected:.1f} s", "-", f"RQ job '{rq_status.value}'", f"{before} → {coord.written()}",
                         *retry("same worker B", None)])

            # 3. Only the worker's main process killed: the work horse finishes the run on its own.
            run_id = coord.solve(max(args.retry_limit, 15))
            coord.wait_solving(run_id)
            before = coord.written()
            horse = horse_of(worker_b)
            drill.extra_pids.add(horse)
            os.kill(worker_b.pid, signal.SIGKILL)
            killed = time.monotonic()
            worker_b.wait()
            statuses = set()
            while time.monotonic() - killed < 120:
                statuses.add(status := coord.poll(run_id))
                if status not in ("queued", "building", "solving"):
                    break
                time.sleep(POLL)
            run = coord.run(run_id)
            rows.append(["3. worker main process SIGKILLed", f"{run.status.value} at {time.monotonic() - killed:.1f} s"
                         f" (polled: {', '.join(sorted(statuses))})", "not dead", "not dead",
                         f"horse alive at end: {alive(horse)}", f"{before} → {coord.written()}",
                         "not needed", str(coord.written())])
    finally:
        conn.flushdb()  # the empty database chosen above: only the drill's keys
    header = ["case (killed ~3 s into a 30 s solve)", "run after the kill", "found dead (this machine)",
              "found dead (other machine: heartbeat)", "RQ's own view", "assignments before → after kill",
              "retry", "assignments after retry"]
    print_table(f"Killed RQ worker drill ({'SQLite' if args.sqlite else 'PostgreSQL'}, demo scale 0.1, "
                f"HEARTBEAT_LOST {HEARTBEAT_LOST:.0f} s; {time.monotonic() - started:.0f} s in all)", header, rows)


if __name__ == "__main__":
    main()
