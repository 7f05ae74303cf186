"""Dead solve runs, the domain side (issue 8): who runs a run, its heartbeat, and giving it up.

`keep_alive` records the process running a solve and beats; `death_of` judges a run from another
process (the recorded process gone from this machine, or silent for HEARTBEAT_LOST seconds, or far
past its time limit); `give_up` is a conditional UPDATE; and a run given up while it was in fact still
working drops its result, so a run never ends both failed and applied. The web side (RQ job status,
the poll, the retry) is in tests/web/test_faults.py; the processes really killed are in bench/drills/.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from matcher import schedules
from matcher.db import db as _db
from matcher.demo import load_demo
from matcher.models import (
    Area,
    AreaLevel,
    Assignment,
    RunStatus,
    Schedule,
    ScheduleStatus,
    SolveRun,
    utcnow,
)


def _reload(run_id: int) -> SolveRun:
    _db.session.expire_all()
    return _db.session.get(SolveRun, run_id)


@pytest.fixture
def run(world, next_monday):
    """A queued run of town A's draft week."""
    schedule = Schedule(area=world["areas"]["town_a"], week_start=next_monday, status=ScheduleStatus.DRAFT)
    _db.session.add(schedule)
    _db.session.flush()
    queued = SolveRun(schedule=schedule, status=RunStatus.QUEUED, active_for=schedule.id,
                      params={"time_limit": 30}, progress={"phase": "queued"}, job_id=f"solve-{schedule.id}")
    _db.session.add(queued)
    _db.session.commit()
    return queued


def test_process_identity_names_this_process_and_judges_others():
    me = schedules.process_identity()
    host, pid, start, namespace, boot = me.split("/")
    assert pid == str(os.getpid()) and start.isdigit() and namespace.startswith("pid:") and boot
    assert not schedules.process_gone(me)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        theirs = f"{host}/{child.pid}/{schedules._proc_stat(child.pid)[19]}/{namespace}/{boot}"
        assert not schedules.process_gone(theirs)
        child.kill()
        time.sleep(0.2)  # killed, not yet reaped: a zombie counts as gone
        assert schedules.process_gone(theirs)
    finally:
        child.kill()
        child.wait()
    assert schedules.process_gone(theirs)
    assert schedules.process_gone(f"{host}/{os.getpid()}/1/{namespace}/{boot}")  # pid reused by another
    assert not schedules.process_gone(f"other-host/{child.pid}/1/{namespace}/{boot}")  # elsewhere: no verdict
    assert not schedules.process_gone(f"{host}/{child.pid}/1/pid:[1]/{boot}")  # another PID namespace
    assert not schedules.process_gone(None) and not schedules.process_gone("garbage")


def test_keep_alive_records_the_worker_and_beats_until_the_run_ends(app, run):
    with schedules.keep_alive(run.id, every=0.1):
        first = _reload(run.id)
        assert first.worker == schedules.process_identity() and first.heartbeat_at is not None
        beaten = first.heartbeat_at
        time.sleep(0.5)
        assert _reload(run.id).heartbeat_at > beaten
    ended = _reload(run.id).heartbeat_at
    time.sleep(0.3)
    assert _reload(run.id).heartbeat_at == ended  # the beats stop with the block


def test_death_of_each_rule(app, run):
    now = utcnow()
    assert schedules.death_of(run) is None  # queued, nobody yet: waiting is not dying
    run.worker, run.heartbeat_at = "elsewhere/1/1/pid:[1]/b", now - timedelta(seconds=5)
    assert schedules.death_of(run) is None
    run.heartbeat_at = now - timedelta(seconds=schedules.HEARTBEAT_LOST + 1)
    assert schedules.death_of(run) == "silent"
    run.worker, run.heartbeat_at = None, None
    run.queued_at = now - timedelta(seconds=30 + schedules.STALE_AFTER + 1)
    assert schedules.death_of(run) == "overdue"  # the old rule stays for runs that never beat
    run.worker, run.heartbeat_at = schedules.process_identity(), now - timedelta(seconds=2)
    assert schedules.death_of(run) is None  # beating while it waits for a thread slot: never overdue
    run.started_at = now - timedelta(seconds=30 + schedules.STALE_AFTER + 1)
    assert schedules.death_of(run) == "overdue"  # started, beating, but far past its limit: stuck
    run.status = RunStatus.DONE
    assert schedules.death_of(run) is None
    _db.session.rollback()


def test_give_up_releases_the_schedule_once(app, run):
    assert schedules.give_up(run, "process")
    _db.session.commit()
    given = _reload(run.id)
    assert given.status == RunStatus.FAILED and given.active_for is None and given.finished_at is not None
    assert "Solve again" in given.message and given.progress["given_up"] == "process"
    assert not schedules.give_up(given, "silent")  # not active any more: nothing to do
    assert not schedules.beat(run.id, "me/1/1/pid:[1]/b")  # and its worker learns it was given up


def test_a_run_given_up_while_still_solving_writes_nothing(app, next_monday, monkeypatch):
    """Taken for dead by mistake (say a long stall): its late result is dropped, nothing applied."""
    load_demo(week_start=next_monday, scale=0.1, seed=3)
    township = _db.session.scalars(select(Area).where(Area.level == AreaLevel.TOWNSHIP).order_by(Area.id)).first()
    schedule = schedules.get_schedule(township, next_monday)
    run, _ = schedules.start_solve(schedule, user=None, time_limit=5)
    _db.session.commit()
    real_solve = schedules.solve

    def solve_then_be_given_up(*args, **kwargs):
        solution = real_solve(*args, **kwargs)
        with app.app_context():  # another process's poll gives the run up meanwhile
            assert schedules.give_up(_db.session.get(SolveRun, run.id), "silent")
            _db.session.commit()
        return solution

    monkeypatch.setattr(schedules, "solve", solve_then_be_given_up)
    schedules.run_solve(run.id)
    run = _reload(run.id)
    assert run.status == RunStatus.FAILED and run.solution is None and run.applied_at is None
    assert _db.session.scalar(select(func.count(Assignment.id))) == 0
