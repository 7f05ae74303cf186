"""Faults (issue 8): dead solve runs, Redis down, two coordinators at once.

- A run whose worker died (a SIGKILLed RQ worker, a restarted web worker running it in a thread) is
  given up on the next look at it: at once when RQ says the job failed or the recorded process is
  gone from this machine, else HEARTBEAT_LOST seconds after its last beat; a retry then starts at
  once. The processes really killed are in the drills (`bench/drills/`); here the detection logic
  runs on runs made to look dead, on real Redis (skipped, with the reason, when it is unreachable).
- Redis down: a solve falls back to a thread and finishes, /healthz names Redis, logins work.
- Two coordinators publishing, or applying the same run, at the same moment: one succeeds, the
  other gets a 409, and no offer or notice is doubled (SQLite and PostgreSQL).
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from matcher import problem, schedules
from matcher.db import db as _db
from matcher.models import (
    Assignment,
    AssignmentStatus,
    AuditEntry,
    Notification,
    RunStatus,
    Schedule,
    ScheduleStatus,
    SolveRun,
    utcnow,
)
from tests.conftest import PASSWORD, REDIS_TEST_URL
from web import jobs

CLOSED_REDIS = "redis://127.0.0.1:6390/0"  # nothing listens there


# --------------------------------------------------------------------------- helpers


def _redis():
    """A connection to the test Redis (database 15, flushed), or skip saying why."""
    import redis

    try:
        conn = redis.Redis.from_url(REDIS_TEST_URL, socket_connect_timeout=2)
        conn.ping()
    except redis.exceptions.RedisError as exc:
        pytest.skip(f"Redis not reachable at {REDIS_TEST_URL} ({type(exc).__name__}): RQ fault tests skipped")
    conn.flushdb()
    return conn


def _login(client, username="coord"):
    response = client.post("/login", data={"username": username, "password": PASSWORD})
    assert response.status_code == 302, response.get_data(as_text=True)[:300]


def _draft(world, next_monday, township="town_a") -> Schedule:
    schedule = Schedule(area=world["areas"][township], week_start=next_monday, status=ScheduleStatus.DRAFT)
    _db.session.add(schedule)
    _db.session.commit()
    return schedule


def _dead_identity() -> str:
    """The identity a process of this machine had, after it exited (as a killed worker leaves it)."""
    code = "from matcher.schedules import process_identity; print(process_identity())"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def _running_run(schedule: Schedule, *, worker: str | None, beat_ago: float | None,
                 status=RunStatus.SOLVING) -> SolveRun:
    """An active run as a worker leaves it mid-solve."""
    now = utcnow()
    run = SolveRun(schedule=schedule, status=status, active_for=schedule.id, params={"time_limit": 30},
                   progress={"phase": "solving"}, job_id=f"solve-{schedule.id}",
                   started_at=now - timedelta(seconds=5) if status != RunStatus.QUEUED else None,
                   worker=worker, heartbeat_at=None if beat_ago is None else now - timedelta(seconds=beat_ago))
    _db.session.add(run)
    _db.session.commit()
    return run


def _reload(run_id: int) -> SolveRun:
    _db.session.expire_all()
    return _db.session.get(SolveRun, run_id)


def _poll(app, run_id: int) -> SolveRun:
    """What the run page's poll does: look at the run (`jobs.check_run`) and commit."""
    with app.app_context():
        run = _db.session.get(SolveRun, run_id)
        jobs.check_run(run)
        _db.session.commit()
    return _reload(run_id)


# --------------------------------------------------------------------------- 1 and 5: dead runs


def test_a_run_of_a_process_gone_from_this_machine_is_given_up_at_once(app, world, next_monday):
    run = _running_run(_draft(world, next_monday), worker=_dead_identity(), beat_ago=1)
    assert schedules.death_of(run) == "process"
    assert schedules.death_of(run, check_process=False) is None  # another machine waits for the beats
    run = _poll(app, run.id)
    assert run.status == RunStatus.FAILED and run.active_for is None
    assert run.message.endswith(("Solve again.", "请重新求解。")) and run.progress["given_up"] == "process"
    assert _db.session.scalar(select(func.count(AuditEntry.id)).where(AuditEntry.action == "give_up_run")) == 1


def test_a_run_that_stopped_beating_is_given_up_after_heartbeat_lost(app, world, next_monday):
    elsewhere = "another-host/4242/123/pid:[1]/boot"  # a worker on another machine: only its beats tell
    schedule = _draft(world, next_monday)
    run = _running_run(schedule, worker=elsewhere, beat_ago=schedules.HEARTBEAT_LOST - 10)
    assert _poll(app, run.id).status == RunStatus.SOLVING  # beating recently: left alone
    run.heartbeat_at = utcnow() - timedelta(seconds=schedules.HEARTBEAT_LOST + 1)
    _db.session.commit()
    run = _poll(app, run.id)
    assert run.status == RunStatus.FAILED and run.progress["given_up"] == "silent"


def test_a_live_run_of_this_process_is_left_alone(app, world, next_monday):
    run = _running_run(_draft(world, next_monday), worker=schedules.process_identity(), beat_ago=2)
    assert schedules.death_of(run) is None
    assert _poll(app, run.id).status == RunStatus.SOLVING


def test_a_beat_since_the_poller_looked_keeps_the_run(app, world, next_monday):
    """Giving up re-checks in the database: a beat that lands after the poller read the run wins."""
    run = _running_run(_draft(world, next_monday), worker="elsewhere/1/1/pid:[1]/b",
                       beat_ago=schedules.HEARTBEAT_LOST + 5)
    assert schedules.death_of(run) == "silent"
    with app.app_context():  # the worker was only slow: its beat lands now
        assert schedules.beat(run.id, "elsewhere/1/1/pid:[1]/b")
    assert not schedules.give_up(run, "silent")
    _db.session.commit()
    assert _reload(run.id).status == RunStatus.SOLVING


def test_retry_after_a_dead_run_starts_at_once(client, world, next_monday, db, monkeypatch):
    """Solve again while the dead run still says "solving": it is given up and a new run queued."""
    from web import schedule as schedule_views

    schedule = _draft(world, next_monday)
    dead = _running_run(schedule, worker=_dead_identity(), beat_ago=2)
    _login(client)
    started = []
    monkeypatch.setattr(schedule_views, "enqueue_solve", lambda run: started.append(run.id) or "thread")
    assert client.post(f"/schedules/{schedule.id}/solve", data={"time_limit": "5"}).status_code == 302
    runs = db.session.scalars(select(SolveRun).where(SolveRun.schedule_id == schedule.id).order_by(SolveRun.id)).all()
    assert [r.status for r in runs] == [RunStatus.FAILED, RunStatus.QUEUED]
    assert runs[1].active_for == schedule.id and started == [runs[1].id] and dead.id == runs[0].id


def test_a_thread_solve_ended_by_the_process_exiting_is_marked_failed(app, world, next_monday):
    """A gunicorn worker exiting (HUP, max_requests, TERM) runs the atexit hook for its solves."""
    run = _running_run(_draft(world, next_monday), worker=schedules.process_identity(), beat_ago=1)
    jobs._THREAD_RUNS[run.id] = app
    try:
        jobs.give_up_thread_runs()
    finally:
        jobs._THREAD_RUNS.pop(run.id, None)
    run = _reload(run.id)
    assert run.status == RunStatus.FAILED and run.progress["given_up"] == "restart"


# --------------------------------------------------------------------------- 1: RQ


@pytest.mark.redis
def test_rq_job_failed_or_lost_gives_the_run_up_on_the_next_poll(make_app, world, next_monday, db):
    from rq.job import Job, JobStatus

    conn = _redis()
    app = make_app(REDIS_URL=REDIS_TEST_URL)
    client = app.test_client()
    _login(client)
    schedule = _draft(world, next_monday)
    assert client.post(f"/schedules/{schedule.id}/solve", data={"time_limit": "5"}).status_code == 302
    run = db.session.scalar(select(SolveRun).where(SolveRun.schedule_id == schedule.id))
    job = Job.fetch(f"{run.job_id}-{run.id}", connection=conn)
    assert job.get_status() == JobStatus.QUEUED and job.failure_callback is jobs.on_solve_failure
    assert _poll(app, run.id).status == RunStatus.QUEUED  # waiting for a worker is not dead
    # The horse was killed (OOM, SIGKILL): its worker marks the job failed; the next poll sees it.
    job.set_status(JobStatus.FAILED)
    run = _poll(app, run.id)
    assert run.status == RunStatus.FAILED and run.progress["given_up"] == "worker"

    # A queued job that vanished from Redis (flushed, Redis restarted without its data).
    assert client.post(f"/schedules/{schedule.id}/solve", data={"time_limit": "5"}).status_code == 302
    run = db.session.scalar(select(SolveRun).where(SolveRun.active_for == schedule.id))
    conn.flushdb()
    assert _poll(app, run.id).status == RunStatus.QUEUED  # within the enqueue grace
    db.session.execute(schedules.update(SolveRun).where(SolveRun.id == run.id)
                       .values(queued_at=utcnow() - timedelta(seconds=jobs.ENQUEUE_GRACE + 1)))
    db.session.commit()
    run = _poll(app, run.id)
    assert run.status == RunStatus.FAILED and run.progress["given_up"] == "lost"
    conn.flushdb()


@pytest.mark.redis
def test_rq_abandoned_job_cleanup_calls_the_failure_callback(make_app, world, next_monday, db):
    """RQ's own mechanism: a started job whose worker stopped heart-beating is moved to the failed
    registry by `StartedJobRegistry.cleanup` (any worker's maintenance), which calls on_failure with
    AbandonedJobError; the callback gives the run up."""
    from rq import Queue
    from rq.executions import Execution
    from rq.job import Job, JobStatus
    from rq.registry import StartedJobRegistry

    conn = _redis()
    app = make_app(REDIS_URL=REDIS_TEST_URL)
    client = app.test_client()
    _login(client)
    schedule = _draft(world, next_monday)
    client.post(f"/schedules/{schedule.id}/solve", data={"time_limit": "5"})
    run = db.session.scalar(select(SolveRun).where(SolveRun.schedule_id == schedule.id))
    job = Job.fetch(f"{run.job_id}-{run.id}", connection=conn)
    Queue("linli", connection=conn).remove(job)
    with conn.pipeline() as pipe:  # as a worker leaves it when it dies mid-job
        execution = Execution.create(job, ttl=60, pipeline=pipe, worker_name="killed")
        job.set_status(JobStatus.STARTED, pipeline=pipe)
        pipe.execute()
    registry = StartedJobRegistry("linli", connection=conn)
    conn.zadd(registry.key, {execution.composite_key: time.time() - 1})  # its heartbeat TTL ran out
    with app.app_context():
        registry.cleanup()
    run = _reload(run.id)
    assert run.status == RunStatus.FAILED and run.progress["given_up"] == "worker", run.message
    assert job.get_status(refresh=True) == JobStatus.FAILED
    conn.flushdb()


# --------------------------------------------------------------------------- 3: Redis down


def test_redis_down_solve_falls_back_to_a_thread_and_finishes(make_app, db, next_monday):
    from matcher.demo import DEMO_PASSWORD, load_demo

    app = make_app(REDIS_URL=CLOSED_REDIS, RATELIMIT_ENABLED=True)
    with app.app_context():
        load_demo(week_start=next_monday, scale=0.1, seed=7)
        township = _db.session.scalars(select(schedules.Area).where(
            schedules.Area.level == schedules.AreaLevel.TOWNSHIP).order_by(schedules.Area.id)).first()
        schedule_id = schedules.get_schedule(township, next_monday).id
        _db.session.commit()
    client = app.test_client()
    health = client.get("/healthz")
    assert health.status_code == 503
    assert health.get_json()["checks"] == {"database": "ok", "redis": "failed: ConnectionError"}
    # Logins do not need Redis (the login limiter must not fail closed or crash on it).
    login = client.post("/login", data={"username": "coord", "password": DEMO_PASSWORD})
    assert login.status_code == 302, f"login with Redis down answered {login.status_code}"
    started = time.monotonic()
    response = client.post(f"/schedules/{schedule_id}/solve", data={"time_limit": "5"})
    assert response.status_code == 302 and time.monotonic() - started < 10
    with app.app_context():
        run_id = _db.session.scalar(select(SolveRun.id).where(SolveRun.schedule_id == schedule_id))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            _db.session.expire_all()
            run = _db.session.get(SolveRun, run_id)
            if run.status not in schedules.ACTIVE:
                break
            time.sleep(0.3)
        assert run.status == RunStatus.DONE, run.message  # ran in a thread, never stuck as queued
        assert run.worker and run.worker.split("/")[1].isdigit()


def test_redis_down_and_no_thread_either_leaves_no_run_queued(make_app, world, next_monday, db, monkeypatch):
    app = make_app(REDIS_URL=CLOSED_REDIS)
    client = app.test_client()
    _login(client)
    schedule = _draft(world, next_monday)

    def no_thread(*args, **kwargs):
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(jobs.threading.Thread, "start", no_thread)
    response = client.post(f"/schedules/{schedule.id}/solve", data={"time_limit": "5"})
    assert response.status_code == 500
    run = db.session.scalar(select(SolveRun).where(SolveRun.schedule_id == schedule.id))
    assert run.status == RunStatus.FAILED and run.active_for is None


# --------------------------------------------------------------------------- 4: two coordinators at once

PAUSE = 0.4


def _race(app, requests: list[tuple[str, str, dict]]) -> list[int]:
    """Send the POSTs from parallel clients (each signed in first); returns their status codes."""
    barrier = threading.Barrier(len(requests))
    statuses: list[int | str] = [0] * len(requests)
    clients = []
    for username, _url, _data in requests:
        client = app.test_client()
        _login(client, username)
        clients.append(client)

    def send(index: int) -> None:
        _username, url, data = requests[index]
        try:
            barrier.wait(timeout=10)
            statuses[index] = clients[index].post(url, data=data).status_code
        except Exception as exc:  # report, don't hang the other thread
            statuses[index] = f"{type(exc).__name__}: {exc}"

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(requests))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads), "a request hung"
    _db.session.expire_all()
    return statuses


def _widen(monkeypatch, module, name: str) -> list[float]:
    """Sleep before `module.name` so both requests are inside the window at once (past their checks,
    before their writes); the returned list records when each request got there (both must, or the
    race did not happen)."""
    original, inside = getattr(module, name), []

    def paused(*args, **kwargs):
        inside.append(time.monotonic())
        time.sleep(PAUSE)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, paused)
    return inside


def test_two_coordinators_publishing_at_once_publish_once(app, world, next_monday, db, monkeypatch):
    schedule = _draft(world, next_monday)
    vols = world["volunteers"]
    for occ, vol in ((world["demands"]["a1"].occurrences[0], vols["a"]), (world["demands"]["a1"].occurrences[1],
                                                                            vols["a"])):
        db.session.add(Assignment(schedule_id=schedule.id, occurrence_id=occ.id, volunteer_id=vol.id,
                                  status=AssignmentStatus.PROPOSED))
    db.session.commit()
    # Publishing checks the status, marks the proposals offered (in memory), then reads the week's
    # occurrences, whose query flushes the first write: pause there.
    inside = _widen(monkeypatch, problem, "schedule_occurrences")
    url, data = f"/schedules/{schedule.id}/publish", {"version": schedule.version}
    statuses = _race(app, [("coord", url, data), ("coord_a", url, data)])
    assert len(inside) == 2 and abs(inside[0] - inside[1]) < PAUSE, f"the race did not happen: {statuses}"
    assert sorted(statuses) == [302, 409], statuses
    offered = db.session.scalars(select(Assignment).where(Assignment.schedule_id == schedule.id)).all()
    assert [a.status for a in offered] == [AssignmentStatus.OFFERED] * 2
    notices = db.session.scalar(select(func.count(Notification.id)).where(
        Notification.user_id == world["users"]["vol_a"].id))
    assert notices == 1  # one notice listing both offers, sent once
    assert db.session.scalar(select(func.count(AuditEntry.id)).where(AuditEntry.action == "publish")) == 1


@pytest.fixture
def repair_run(world, next_monday, db):
    """A published township week and a finished, not yet applied repair run that offers demand a1's
    first occurrence to volunteer A."""
    schedule = Schedule(area=world["areas"]["town_a"], week_start=next_monday, status=ScheduleStatus.PUBLISHED,
                        published_at=utcnow())
    db.session.add(schedule)
    occ = world["demands"]["a1"].occurrences[0]
    vol = world["volunteers"]["a"]
    solution = {"status": "FEASIBLE", "objective": 1.0, "responsible": [], "unfilled": [],
                "assignments": [{"demand": f"d{occ.id}", "volunteer": f"v{vol.id}", "reasons": ["nearest_free"],
                                 "distance_km": 0.2}]}
    run = SolveRun(schedule=schedule, status=RunStatus.DONE, repair=True, params={"time_limit": 5},
                   instance={"demands": [{"id": f"d{occ.id}"}]}, solution=solution, finished_at=utcnow())
    db.session.add(run)
    db.session.commit()
    return schedule.id, run.id, occ.id


def test_two_applies_of_the_same_run_apply_once(app, world, repair_run, db, monkeypatch):
    schedule_id, run_id, occurrence_id = repair_run
    inside = _widen(monkeypatch, schedules, "lock_bookings")  # past the "applied already?" check
    url = f"/runs/{run_id}/apply"
    statuses = _race(app, [("coord", url, {}), ("coord_a", url, {})])
    assert len(inside) == 2 and abs(inside[0] - inside[1]) < PAUSE, f"the race did not happen: {statuses}"
    assert sorted(statuses) == [302, 409], statuses
    offers = db.session.scalars(select(Assignment).where(Assignment.occurrence_id == occurrence_id)).all()
    assert len(offers) == 1 and offers[0].status == AssignmentStatus.OFFERED
    notices = db.session.scalar(select(func.count(Notification.id)).where(
        Notification.user_id == world["users"]["vol_a"].id))
    assert notices == 1
    assert db.session.scalar(select(func.count(AuditEntry.id)).where(AuditEntry.action == "apply_run")) == 1


def test_a_lost_database_connection_is_a_503_asking_to_retry_and_a_statement_error_a_500(make_app):
    """Caught by the PostgreSQL restart drill: requests during the restart answered 500."""
    from sqlalchemy.exc import OperationalError, ProgrammingError

    app = make_app()

    @app.route("/test-db-gone")
    def gone():
        raise OperationalError("SELECT 1", {}, Exception("server closed the connection"), connection_invalidated=True)

    @app.route("/test-db-refused")
    def refused():  # a new connection refused while the server restarts
        raise OperationalError(None, None, Exception("connection refused: the database system is starting up"))

    @app.route("/test-db-error")
    def broken():
        raise ProgrammingError("SELECT nonsense", {}, Exception("syntax error"))

    client = app.test_client()
    response = client.get("/test-db-gone")
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"
    assert "稍后" in response.get_data(as_text=True)  # Chinese by default, from a page that reads no row
    assert client.get("/test-db-refused").status_code == 503
    assert client.get("/test-db-error").status_code == 500
