"""Background solve jobs: on Redis with an RQ worker when REDIS_URL is set, else in a thread.

A solve never runs inside a request. The view commits the queued run row first, then calls
`enqueue_solve`; the job receives only the run id (never ORM objects) and builds its own
app context and database connections.
"""

from __future__ import annotations

import logging
import threading

from flask import Flask, current_app, has_app_context

from matcher.db import db
from matcher.models import SolveRun
from matcher.schedules import run_solve

log = logging.getLogger(__name__)
QUEUE = "linli"
# Above the solver's own limit: building, writing results and a slow machine fit in the margin.
JOB_TIMEOUT_MARGIN = 300


def enqueue_solve(run: SolveRun) -> str:
    """Start the run in the background; returns 'rq' or 'thread'."""
    url = current_app.config.get("REDIS_URL")
    if url:
        from redis import Redis
        from rq import Queue

        queue = Queue(QUEUE, connection=Redis.from_url(url))
        queue.enqueue(solve_job, run.id, job_id=f"{run.job_id}-{run.id}",
                      job_timeout=int(run.params.get("time_limit", 30)) + JOB_TIMEOUT_MARGIN,
                      result_ttl=3600, failure_ttl=7 * 86400, description=f"solve run {run.id}")
        return "rq"
    app = current_app._get_current_object()
    thread = threading.Thread(target=_run_in_thread, args=(app, run.id), name=f"solve-{run.id}", daemon=True)
    thread.start()
    return "thread"


def _run_in_thread(app: Flask, run_id: int) -> None:
    with app.app_context():
        try:
            run_solve(run_id)
        except Exception:
            log.exception("solve run %s failed", run_id)
        finally:
            db.session.remove()


def solve_job(run_id: int) -> None:
    """The RQ job: solve one run in this (forked) worker process."""
    if has_app_context():  # e.g. a test's SimpleWorker inside the app
        run_solve(run_id)
        return
    from web import create_app

    app = create_app()
    with app.app_context():
        db.engine.dispose(close=False)  # never reuse connections inherited through fork
        try:
            run_solve(run_id)
        finally:
            db.session.remove()
            db.engine.dispose()
