"""Background solve jobs: on Redis with an RQ worker when REDIS_URL is set, else in a thread
(at most SOLVE_THREADS_MAX at once per process; further ones wait their turn).

A solve never runs inside a request. The view commits the queued run row first, then calls
`enqueue_solve`; the job receives only the run id (never ORM objects) and builds its own
app context and database connections.

Dead runs (issue 8, see docs/operations.md "Fault drills"): the process running a solve beats
(`matcher.schedules.keep_alive`); `check_run`, called when someone looks at an active run, gives it
up at once when RQ reports its job failed or lost, or when its process is gone from this machine,
and otherwise once it has been silent for HEARTBEAT_LOST seconds. RQ's own `on_failure` callback
(`on_solve_failure`) covers a job that failed outside the solve (say, before it could start) and
jobs RQ itself finds abandoned; a web process that exits gives up the solves of its threads
(`give_up_thread_runs`). With Redis configured but down, a solve runs in a thread instead.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from datetime import UTC, datetime, timedelta

from flask import Flask, current_app, has_app_context, request_started
from rq import Worker as RQWorker
from sqlalchemy import event
from sqlalchemy.orm import Session

from matcher.db import db
from matcher.imports import run_import
from matcher.models import RunStatus, SolveRun, utcnow
from matcher.outbox import WRITTEN, next_due_at, send_all
from matcher.reminders import next_reminder_at, remind_due
from matcher.schedules import ACTIVE, give_up, keep_alive, reap_if_dead, run_solve

log = logging.getLogger(__name__)
QUEUE = "linli"


class Worker(RQWorker):
    """RQ's worker, started with `--worker-class web.jobs.Worker`: naming it imports the app's code in
    the worker process, before it forks a work horse for each job, so a job starts without importing
    the app again (1.2 s of CPU on 2 cores: a burst of outbox jobs after a publish spent a core on it)."""

# Above the solver's own limit: building, writing results and a slow machine fit in the margin.
JOB_TIMEOUT_MARGIN = 300
# Seconds between committing a run and finding its job in Redis (a poll in between is not a loss).
ENQUEUE_GRACE = 10
# Runs solving (or waiting for a slot) in this process's threads: given up if the process exits.
_THREAD_RUNS: dict[int, Flask] = {}
_thread_runs_lock = threading.Lock()
_exit_hooked = False


# Thread mode: at most SOLVE_THREADS_MAX solves run at once in this process; the others wait their
# turn (their run stays "queued" meanwhile).
_slots = threading.Condition()
_running = 0
_waiting = 0


def _thread_limit(app: Flask) -> int:
    return max(1, int(app.config.get("SOLVE_THREADS_MAX", 1)))


def enqueue_solve(run: SolveRun) -> str:
    """Start the run in the background; returns 'rq', 'thread', or 'thread-queued' when it waits in
    this process for a running solve to finish (SOLVE_THREADS_MAX)."""
    global _waiting
    url = current_app.config.get("REDIS_URL")
    try:
        if url and _enqueue_rq(run, url):
            return "rq"
    except Exception:  # not a Redis outage (that falls back to a thread): leave no run queued
        give_up(run, "unstarted")
        db.session.commit()
        raise
    app = current_app._get_current_object()
    with _slots:
        queued = _running + _waiting >= _thread_limit(app)
        _waiting += 1
    thread = threading.Thread(target=_solve_in_thread, args=(app, run.id), name=f"solve-{run.id}", daemon=True)
    try:
        thread.start()
    except Exception:  # no thread either: say so, and leave no run queued for nobody
        with _slots:
            _waiting -= 1
        give_up(run, "unstarted")
        db.session.commit()
        raise
    return "thread-queued" if queued else "thread"


def _enqueue_rq(run: SolveRun, url: str) -> bool:
    """Queue the run's job on Redis; False (logged) when Redis does not answer."""
    from redis import Redis
    from redis.exceptions import RedisError
    from rq import Callback, Queue

    try:
        queue = Queue(QUEUE, connection=Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5))
        queue.enqueue(solve_job, run.id, job_id=f"{run.job_id}-{run.id}",
                      job_timeout=int(run.params.get("time_limit", 30)) + JOB_TIMEOUT_MARGIN,
                      result_ttl=3600, failure_ttl=7 * 86400, description=f"solve run {run.id}",
                      on_failure=Callback(on_solve_failure))
    except RedisError as exc:
        log.warning("Redis unreachable (%s): solve run %s runs in a thread of this process instead",
                    type(exc).__name__, run.id)
        return False
    return True


def _solve_in_thread(app: Flask, run_id: int) -> None:
    """A thread's whole life for one run: beat for it (while it waits for a slot too), run it."""
    global _exit_hooked
    with _thread_runs_lock:
        if not _exit_hooked:
            atexit.register(give_up_thread_runs)
            _exit_hooked = True
        _THREAD_RUNS[run_id] = app
    try:
        with app.app_context():
            try:
                with keep_alive(run_id):
                    db.session.remove()  # the beat committed; hold no connection while waiting
                    _run_in_thread(app, run_id)
            finally:
                db.session.remove()
    except Exception:
        log.exception("solve run %s: thread ended with an error", run_id)
    finally:
        _THREAD_RUNS.pop(run_id, None)


def give_up_thread_runs() -> None:
    """At exit (a gunicorn worker restarted by HUP, max_requests or TERM): the solves of this
    process's threads die with it; mark them failed now rather than leave them to be found."""
    for run_id, app in list(_THREAD_RUNS.items()):
        try:
            with app.app_context():
                run = db.session.get(SolveRun, run_id)
                if run is not None and run.status in ACTIVE:
                    give_up(run, "restart")
                    db.session.commit()
                db.session.remove()
        except Exception:  # the database may be gone too; the next look finds the run
            log.exception("solve run %s: not marked failed at exit", run_id)


def check_run(run: SolveRun) -> bool:
    """Give up an active run whose worker is gone (see the module docstring); True when it was given
    up. For the run page and its poll; the caller commits."""
    if run.status not in ACTIVE:
        return False
    url = current_app.config.get("REDIS_URL")
    reason = _rq_verdict(run, url) if url and run.job_id else None
    if reason is None and not url and run.status == RunStatus.QUEUED and run.worker is None:
        # Thread mode: the thread beats as soon as it starts; none ever did, so it never started.
        reason = "lost" if (utcnow() - run.queued_at).total_seconds() > ENQUEUE_GRACE else None
    if reason is not None:
        return give_up(run, reason)
    return reap_if_dead(run)


def _rq_verdict(run: SolveRun, url: str) -> str | None:
    """'worker' when RQ says the run's job failed or ended, 'lost' when a run nobody took has no job
    in Redis (flushed, or Redis restarted without its data); None when RQ cannot tell (or is down)."""
    from redis.exceptions import RedisError
    from rq.exceptions import NoSuchJobError
    from rq.job import Job, JobStatus

    try:
        job = Job.fetch(f"{run.job_id}-{run.id}", connection=_redis(url))
        status = job.get_status(refresh=False)
    except NoSuchJobError:
        # No job: a run that fell back to a thread (it has a worker and beats), or a lost one.
        if run.worker is None and (utcnow() - run.queued_at).total_seconds() > ENQUEUE_GRACE:
            return "lost"
        return None
    except RedisError:
        return None  # Redis down: the heartbeat decides
    if status in (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED, JobStatus.FINISHED):
        return "worker"  # the job ended, the run did not: give_up re-checks the run in the database
    return None


_connections: dict[str, object] = {}


def _redis(url: str):
    if url not in _connections:
        from redis import Redis

        _connections[url] = Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2)
    return _connections[url]


def on_solve_failure(job, connection, exc_type, exc_value, traceback) -> None:
    """RQ's on_failure callback: the job failed (in the work horse, or found abandoned by
    `StartedJobRegistry.cleanup` with AbandonedJobError). run_solve marks its own failures; this
    covers a failure outside it and a worker that died."""
    run_id = job.args[0] if job.args else None
    if run_id is None:
        return
    if has_app_context():
        _give_up_failed_job(run_id, exc_type)
        return
    from web import create_app

    with create_app().app_context():
        try:
            _give_up_failed_job(run_id, exc_type)
        finally:
            db.session.remove()


def _give_up_failed_job(run_id: int, exc_type) -> None:
    run = db.session.get(SolveRun, run_id)
    if run is not None and run.status in ACTIVE:
        log.warning("solve run %s: RQ job failed (%s)", run_id, getattr(exc_type, "__name__", exc_type))
        give_up(run, "worker")
    db.session.commit()


def _run_in_thread(app: Flask, run_id: int) -> None:
    global _running, _waiting
    with _slots:  # wait for a free slot, holding no database connection
        while _running >= _thread_limit(app):
            _slots.wait()
        _waiting -= 1
        _running += 1
    try:
        with app.app_context():
            try:
                run_solve(run_id)
            except Exception:
                log.exception("solve run %s failed", run_id)
            finally:
                db.session.remove()
    finally:
        with _slots:
            _running -= 1
            _slots.notify_all()


def solve_job(run_id: int) -> None:
    """The RQ job: solve one run in this (forked) worker process."""
    if has_app_context():  # e.g. a test's SimpleWorker inside the app
        with keep_alive(run_id):
            run_solve(run_id)
        return
    from web import create_app

    app = create_app()
    with app.app_context():
        db.engine.dispose(close=False)  # never reuse connections inherited through fork
        try:
            with keep_alive(run_id):
                run_solve(run_id)
        finally:
            db.session.remove()
            db.engine.dispose()


# --- Spreadsheet imports (matcher/imports.py) -----------------------------------------------------
# A large upload is judged, and on confirmation imported, by a job like a solve: the view commits the
# upload's state ("queued" or "importing") first, then calls `enqueue_import`; the job gets only the
# upload's id and reports its progress on the upload's row. RQ when REDIS_URL is set (Redis down: a
# thread), else a thread of this process.

IMPORT_JOB_TIMEOUT = 900


def enqueue_import(upload) -> str:
    """Start the upload's job in the background: 'rq' or 'thread'."""
    url = current_app.config.get("REDIS_URL")
    if url and _enqueue_import_rq(upload.id, url):
        return "rq"
    app = current_app._get_current_object()
    threading.Thread(target=_import_in_thread, args=(app, upload.id), name=f"import-{upload.id}",
                     daemon=True).start()
    return "thread"


def _enqueue_import_rq(import_id: int, url: str) -> bool:
    from redis.exceptions import RedisError
    from rq import Queue

    try:
        Queue(current_app.config.get("IMPORT_QUEUE", QUEUE), connection=_redis(url)).enqueue(
            import_job, import_id, job_timeout=IMPORT_JOB_TIMEOUT, result_ttl=3600, failure_ttl=7 * 86400,
            description=f"import {import_id}")
    except RedisError as exc:
        log.warning("Redis unreachable (%s): import %s runs in a thread of this process instead",
                    type(exc).__name__, import_id)
        return False
    return True


def _import_in_thread(app: Flask, import_id: int) -> None:
    try:
        with app.app_context():
            try:
                run_import(import_id)
            finally:
                db.session.remove()
    except Exception:
        log.exception("import %s: thread ended with an error", import_id)


def import_job(import_id: int) -> None:
    """The RQ job: judge or import one upload in this (forked) worker process."""
    if has_app_context():  # e.g. a test's SimpleWorker inside the app
        run_import(import_id)
        return
    from web import create_app

    app = create_app()
    with app.app_context():
        db.engine.dispose(close=False)  # never reuse connections inherited through fork
        try:
            run_import(import_id)
        finally:
            db.session.remove()
            db.engine.dispose()


# --- The outbox sender (matcher/outbox.py) and the reminders (matcher/reminders.py) ---------------
# A commit that wrote outbox rows starts the sender: an RQ job on the `linli` queue when REDIS_URL is
# set (Redis down: a thread instead), else one sender thread per process. Each round first writes the
# reminders that are due (`remind_due`), then sends, then looks again at the next retry, the end of the
# quiet hours or the next reminder time, whichever comes first, and at least every OUTBOX_IDLE_MAX
# seconds while services to come are offered or accepted (an offer accepted in the evening is still
# reminded). So that reminders are written without any notice being sent first, a request also starts
# the runner when this process has not started it for OUTBOX_IDLE_MAX seconds (REMINDERS_AUTOSTART,
# on except under TESTING). OUTBOX_AUTOSEND=false leaves both to `flask outbox send [--loop SECONDS]`
# (cron or a service). Sending or reminding twice is harmless: rows are claimed, reminders have keys.

OUTBOX_NEXT_JOB = "linli-outbox-next"  # the one scheduled next look (RQ scheduler)
OUTBOX_IDLE_MAX = 300  # seconds the runner waits at most before looking again while anything may come
_outbox_lock = threading.Lock()
_outbox_running = False
_outbox_again = False
_outbox_wake = threading.Event()  # set to end the thread's sleep at once (a commit wrote new rows)
_outbox_app: Flask | None = None  # the app whose database the thread serves (the latest to ask)
_last_kick: dict[int, float] = {}  # per app: when a request last started the runner (time.monotonic)


@event.listens_for(Session, "after_commit")
def _outbox_after_commit(session: Session) -> None:
    """Start the sender once a transaction that wrote outbox rows is committed (never inside it)."""
    if not session.info.pop(WRITTEN, False) or not has_app_context():
        return
    if not current_app.config.get("OUTBOX_AUTOSEND", True):
        return
    try:
        enqueue_outbox()
    except Exception:  # the rows are safe in the database: the next commit or `flask outbox send` sends them
        log.exception("outbox: the sender could not be started")


@event.listens_for(Session, "after_rollback")
def _outbox_after_rollback(session: Session) -> None:
    session.info.pop(WRITTEN, None)


def _kick_on_request(app: Flask, **extra) -> None:
    """A request starts the runner (reminders, then sending) when this process has not started it for
    OUTBOX_IDLE_MAX seconds and no thread of its runs now."""
    if not (app.config.get("OUTBOX_AUTOSEND", True) and app.config.get("REMINDERS_AUTOSTART", not app.testing)):
        return
    now = time.monotonic()
    with _outbox_lock:
        last = _last_kick.get(id(app))
        if _outbox_running or (last is not None and now - last < OUTBOX_IDLE_MAX):
            return
        _last_kick[id(app)] = now
    try:
        enqueue_outbox()
    except Exception:
        log.exception("outbox: the runner could not be started")


request_started.connect(_kick_on_request)


def enqueue_outbox() -> str:
    """Start the sender in the background: 'rq' or 'thread'."""
    url = current_app.config.get("REDIS_URL")
    if url and _enqueue_outbox_rq(url):
        return "rq"
    start_outbox_thread(current_app._get_current_object())
    return "thread"


# One job waiting to send is enough: a burst of commits (volunteers accepting their offers after a
# publish) would otherwise queue a job each, and every job costs a work horse and an app. The first
# commit sets this key (SET NX) and queues the job; the job removes it as it starts, before it reads
# anything, so a row committed after that queues the next job. The key expires in case a job is lost.
OUTBOX_PENDING_TTL = 120


def _pending_key() -> str:
    return f"linli:outbox-pending:{QUEUE}"


def _enqueue_outbox_rq(url: str, at: datetime | None = None) -> bool:
    from redis.exceptions import RedisError
    from rq import Queue

    try:
        queue = Queue(QUEUE, connection=_redis(url))
        if at is None:
            if not _redis(url).set(_pending_key(), "1", nx=True, ex=OUTBOX_PENDING_TTL):
                return True  # a job waits already: it reads these rows too
            queue.enqueue(outbox_job, job_timeout=900, result_ttl=600, failure_ttl=86400,
                          description="send the outbox")
        else:  # needs `rq worker --with-scheduler`; one scheduled job, moved to the earliest time
            queue.enqueue_at(at.replace(tzinfo=UTC), outbox_job, job_id=OUTBOX_NEXT_JOB, job_timeout=900,
                             result_ttl=600, failure_ttl=86400, description="send the outbox (retries, reminders)")
    except RedisError as exc:
        log.warning("Redis unreachable (%s): the outbox is sent by a thread of this process", type(exc).__name__)
        return False
    return True


def start_outbox_thread(app: Flask) -> bool:
    """Start this process's sender thread, or wake the running one to look again now; True if started."""
    global _outbox_running, _outbox_again, _outbox_app
    with _outbox_lock:
        _outbox_app = app
        if _outbox_running:
            _outbox_again = True
            _outbox_wake.set()
            return False
        _outbox_running = True
        _outbox_wake.clear()
    try:
        threading.Thread(target=_outbox_thread, args=(app,), name="outbox", daemon=True).start()
    except Exception:
        with _outbox_lock:
            _outbox_running = False
        raise
    return True


def stop_outbox_thread(timeout: float = 10.0) -> None:
    """Ask this process's sender thread to stop after its round and wait for it (tests end each app's
    thread so none carries on against a later test's database)."""
    global _outbox_app, _outbox_again
    thread = next((t for t in threading.enumerate() if t.name == "outbox"), None)
    with _outbox_lock:
        _outbox_app = None
        _outbox_again = False
    _outbox_wake.set()
    if thread is not None:
        thread.join(timeout)


def run_outbox_round() -> datetime | None:
    """One round: write the due reminders, send what is due; returns when to look again (naive UTC),
    None when nothing waits and no reminder can come. A failing reminder run never stops sending."""
    try:
        remind_due()
    except Exception:
        db.session.rollback()
        log.exception("outbox: writing the reminders failed")
    send_all()
    now = utcnow()
    times = [t for t in (next_due_at(), next_reminder_at(now)) if t is not None]
    if not times:
        return None
    return min(min(times), now + timedelta(seconds=OUTBOX_IDLE_MAX))


def _outbox_thread(app: Flask) -> None:
    """Rounds (`run_outbox_round`) until nothing waits; sleeps until the next look in between, or until
    a commit that wrote new rows wakes it."""
    global _outbox_running, _outbox_again
    while True:
        wait = None
        with _outbox_lock:
            if _outbox_app is None:  # stopped (`stop_outbox_thread`)
                _outbox_running = False
                return
            app = _outbox_app
        try:
            with app.app_context():
                try:
                    look = run_outbox_round()
                    if look is not None:
                        wait = max((look - utcnow()).total_seconds(), 1.0)
                finally:
                    db.session.remove()
        except Exception:
            log.exception("outbox: the sender thread failed")
            wait = OUTBOX_IDLE_MAX
        with _outbox_lock:
            if _outbox_again:
                _outbox_again = False
                continue
            if wait is None:
                _outbox_running = False
                return
        if _outbox_wake.wait(wait):
            _outbox_wake.clear()


def outbox_job() -> None:
    """The RQ job: write the due reminders, send everything due, then schedule the next look."""
    def run() -> None:
        url = current_app.config.get("REDIS_URL")
        if url:  # from here on, a commit with new rows queues the next job
            _redis(url).delete(_pending_key())
        look = run_outbox_round()
        if look is not None and url:
            _enqueue_outbox_rq(url, at=max(look, utcnow() + timedelta(seconds=5)))

    if has_app_context():
        run()
        return
    from web import create_app

    app = create_app()
    with app.app_context():
        db.engine.dispose(close=False)  # never reuse connections inherited through fork
        try:
            run()
        finally:
            db.session.remove()
            db.engine.dispose()
