"""Parts solved as RQ jobs by part workers (issue 15), against the real Redis with two real `rq worker`
processes (`solver.rq_parts.PartWorker`) on a queue of this test run's own: parts of a district are
solved on both workers, the deadline is kept and stopped parts free their workers, a worker killed in
mid-part loses only its part, and `capacity` counts the live workers. Skipped, with the reason, when
Redis is unreachable.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from solver import solve, validate_solution
from solver.candidates import build_candidates
from solver.decomposition import plan_parts
from solver.generate import generate_instance
from solver.greedy import build_greedy
from solver.instance import parse_instance
from solver.pipeline import part_payloads
from solver.rq_parts import RqPartExecutor, live_workers
from solver.validation import check_schedule

ROOT = Path(__file__).resolve().parents[2]
RQ = Path(sys.executable).parent / "rq"
# Databases 1-7 of the local Redis, one per pytest-xdist worker: the web tests empty databases 8-15.
_XDIST = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0")[2:] or 0)
REDIS_URL = os.environ.get("LINLI_TEST_PARTS_REDIS", f"redis://127.0.0.1:6379/{7 - _XDIST % 7}")
CLOSED_REDIS = "redis://127.0.0.1:6390/0"  # nothing listens there

pytestmark = pytest.mark.redis


def _children(pid: int) -> list[int]:
    """The pids whose parent is `pid` (a worker's work horse)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    return found


class PartWorkers:
    """Part workers of this test run: real `rq worker` processes on its own queue, ended at teardown."""

    def __init__(self, connection, queue: str, logs: Path):
        self.connection, self.queue, self.logs = connection, queue, logs
        self.processes: dict[str, subprocess.Popen] = {}
        self.started = 0

    def live(self) -> set[str]:
        return {w.name for w in live_workers(self.connection, self.queue)}

    def ensure(self, count: int = 2) -> list[str]:
        """Start workers until `count` of ours are alive; their names."""
        for name, proc in list(self.processes.items()):
            if proc.poll() is not None:
                del self.processes[name]
        while len(self.processes) < count:
            self.started += 1
            name = f"{self.queue}-w{self.started}"
            log = open(self.logs / f"{name}.log", "wb")  # noqa: SIM115 (closed with the process)
            self.processes[name] = subprocess.Popen(
                [str(RQ), "worker", "--worker-class", "solver.rq_parts.PartWorker", "--url", REDIS_URL,
                 "--path", str(ROOT), "--name", name, self.queue],
                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            log.close()
        deadline = time.monotonic() + 60
        while not set(self.processes) <= self.live():
            assert time.monotonic() < deadline, f"part workers did not start: see {self.logs}"
            time.sleep(0.1)
        return sorted(self.processes)

    def wait_idle(self, seconds: float = 15) -> None:
        """Until every live worker of ours is idle (parts left running for nobody have stopped)."""
        deadline = time.monotonic() + seconds
        while any(w.get_state() != "idle" for w in live_workers(self.connection, self.queue)):
            assert time.monotonic() < deadline, "part workers still busy"
            time.sleep(0.05)

    def kill(self, name: str) -> None:
        """SIGKILL a worker and its work horse together (its machine is lost)."""
        proc = self.processes.pop(name)
        for pid in [*_children(proc.pid), proc.pid]:
            os.kill(pid, signal.SIGKILL)
        proc.wait(10)

    def stop_all(self) -> None:
        """End every worker: SIGTERM (RQ's warm shutdown), then SIGKILL what is left."""
        for proc in self.processes.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.processes.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        self.processes.clear()


@pytest.fixture(scope="module")
def redis_connection():
    import redis

    try:
        connection = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
        connection.ping()
    except redis.exceptions.RedisError as exc:
        pytest.skip(f"Redis not reachable at {REDIS_URL} ({type(exc).__name__}): RQ part workers untested")
    return connection


@pytest.fixture(scope="module")
def workers(redis_connection, tmp_path_factory):
    """Two part workers on a queue of this run's own (started once, restarted where a test killed one)."""
    pool = PartWorkers(redis_connection, f"linli-parts-test-{uuid.uuid4().hex[:8]}", tmp_path_factory.mktemp("rq"))
    try:
        yield pool
    finally:
        pool.stop_all()
        for key in redis_connection.scan_iter(f"*{pool.queue}*"):
            redis_connection.delete(key)


def _district_in_parts(max_pairs: int):
    """The generated district split into regions of about `max_pairs` pairs, largest first, as the
    pipeline would ship them."""
    doc = generate_instance("district", 1)
    inst = parse_instance(doc)
    cands = build_candidates(inst)
    parts, _ = plan_parts(inst, cands, max_pairs)
    return doc, inst, cands, sorted(parts, key=lambda p: -len(p.positions))


@pytest.fixture(scope="module")
def district():
    """Parts that are proved optimal in a second or two."""
    return _district_in_parts(5000)


@pytest.fixture(scope="module")
def slow_district():
    """The district in two halves: parts that take several seconds to prove optimal (the deadline tests)."""
    return _district_in_parts(12_000)


def payloads(district, count: int, time_limit: float, *, deadline_in: float = 30.0) -> list[dict]:
    """The `count` largest parts' payloads, as the pipeline ships them."""
    _, inst, cands, parts = district
    return part_payloads(inst, cands, parts[:count], build_greedy(inst, cands), [time_limit] * count,
                         time.time() + deadline_in, 1)


def _collect(executor: RqPartExecutor, shipped: list[dict], deadline_unix: float) -> tuple[dict, float]:
    started = time.monotonic()
    outputs = dict(executor.run(shipped, deadline_unix))
    return outputs, time.monotonic() - started


# --------------------------------------------------------------------------- capacity and Redis down


def test_capacity_counts_the_live_part_workers(workers):
    workers.ensure(2)
    assert RqPartExecutor(REDIS_URL, workers.queue).capacity() == 2
    assert RqPartExecutor(REDIS_URL, workers.queue + "-nobody").capacity() == 0


def capacity_seen_by_a_job(redis_url: str, queue: str) -> int:
    """An RQ job's look at the part workers (the solve job's, in `run_solve`)."""
    return RqPartExecutor(redis_url, queue).capacity()


def test_the_worker_running_the_solve_job_is_not_counted_as_a_part_worker(workers):
    """Even a worker (wrongly) listening on the solve queue and the parts queue: while it runs the
    solve job it cannot take that job's parts, so the job does not count it."""
    from rq import Queue, SimpleWorker

    workers.ensure(2)
    solve_queue = Queue(f"{workers.queue}-solve", connection=workers.connection)
    job = solve_queue.enqueue(capacity_seen_by_a_job, REDIS_URL, workers.queue)
    both = SimpleWorker([solve_queue, Queue(workers.queue, connection=workers.connection)],
                        connection=workers.connection)
    both.work(burst=True)
    assert job.return_value(refresh=True) == 2
    assert RqPartExecutor(REDIS_URL, workers.queue).capacity() == 2  # the burst worker is gone again


def test_with_redis_unreachable_there_is_no_capacity_and_run_returns_nothing():
    executor = RqPartExecutor(CLOSED_REDIS, "linli-parts")
    assert executor.capacity() == 0
    started = time.monotonic()
    assert list(executor.run([{"instance": {"demands": []}, "time_limit": 5}], time.time() + 5)) == []
    assert time.monotonic() - started < 3


def test_parts_nobody_listens_for_are_given_up_and_cancelled_before_the_deadline(redis_connection, district):
    from rq import Queue

    queue = f"linli-parts-test-nobody-{uuid.uuid4().hex[:8]}"
    executor = RqPartExecutor(REDIS_URL, queue)
    try:
        outputs, seconds = _collect(executor, payloads(district, 1, 5.0), time.time() + 20)
        assert outputs == {} and seconds < 4  # two liveness checks a second apart, not the deadline
        canceled = Queue(queue, connection=redis_connection).canceled_job_registry
        assert Queue(queue, connection=redis_connection).count == 0 and canceled.count == 1
    finally:
        for key in redis_connection.scan_iter(f"*{queue}*"):
            redis_connection.delete(key)


# --------------------------------------------------------------------------- (a) parts on both workers


def test_parts_of_a_district_are_solved_on_both_workers(workers, district):
    names = workers.ensure(2)
    shipped = payloads(district, 4, 3.0)
    outputs, seconds = _collect(RqPartExecutor(REDIS_URL, workers.queue), shipped, time.time() + 30)
    assert sorted(outputs) == [0, 1, 2, 3]
    assert {out["worker"] for out in outputs.values()} == set(names)  # RQ's record of who ran each job
    for i, out in outputs.items():
        # CP-SAT's schedule, or (UNKNOWN: nothing found in time on a busy machine) the warm start.
        assert out["status"] in ("OPTIMAL", "FEASIBLE", "UNKNOWN")
        pairs, responsible = (out["pairs"], out["responsible"]) if out["pairs"] else \
            (out["fallback"], out["fallback_responsible"])
        assert pairs and {tuple(p) for p in pairs} <= {tuple(p) for p in shipped[i]["pairs"]}
        sub = parse_instance(shipped[i]["instance"])
        owners = [{"demand": d, "organization": o} for d, o in responsible.items() if d in {p[0] for p in pairs}]
        assert check_schedule(sub, [tuple(p) for p in pairs], owners) == []
    assert seconds < 25


def test_a_part_whose_job_fails_is_left_out_without_waiting_for_the_deadline(workers, district):
    workers.ensure(2)
    shipped = [{"instance": {"schema": "linli.instance/0", "demands": []}, "time_limit": 5},
               *payloads(district, 1, 0.5)]
    outputs, seconds = _collect(RqPartExecutor(REDIS_URL, workers.queue), shipped, time.time() + 20)
    assert sorted(outputs) == [1]
    assert seconds < 10


def test_a_redis_hiccup_mid_run_is_waited_out(workers, district, monkeypatch):
    from redis.exceptions import ConnectionError as RedisConnectionError

    workers.ensure(2)
    executor = RqPartExecutor(REDIS_URL, workers.queue)
    states, failures = executor._states, iter(range(20))

    def flaky(pending):  # the first 20 looks (about a second) find Redis away
        if next(failures, None) is not None:
            raise RedisConnectionError("Connection reset by peer")
        return states(pending)

    monkeypatch.setattr(executor, "_states", flaky)
    outputs, _ = _collect(executor, payloads(district, 2, 0.5), time.time() + 15)
    assert sorted(outputs) == [0, 1]


def test_redis_gone_for_good_mid_run_ends_the_run_at_its_deadline(workers, district, monkeypatch):
    workers.ensure(2)
    executor = RqPartExecutor(REDIS_URL, workers.queue)
    enqueue = executor._enqueue

    def enqueue_then_lose_redis(*args):
        enqueue(*args)
        executor.connection = executor.connection.from_url(CLOSED_REDIS)

    monkeypatch.setattr(executor, "_enqueue", enqueue_then_lose_redis)
    outputs, seconds = _collect(executor, payloads(district, 2, 5.0), time.time() + 1.5)
    assert outputs == {} and seconds < 2.5  # no exception; the parts stop by their own deadline
    workers.wait_idle()


# --------------------------------------------------------------------------- (b) the deadline


def test_run_keeps_its_deadline_and_stopped_parts_free_their_workers(workers, district, slow_district):
    from rq import Queue
    from rq.job import Job

    workers.ensure(2)
    executor = RqPartExecutor(REDIS_URL, workers.queue)
    failed = Queue(workers.queue, connection=workers.connection).failed_job_registry
    before = set(failed.get_job_ids())
    outputs, seconds = _collect(executor, payloads(slow_district, 2, 10.0), time.time() + 1.0)
    assert outputs == {} and seconds < 1.5
    # Both parts were running and were stopped (not cancelled while queued)...
    time.sleep(0.3)
    stopped = set(failed.get_job_ids()) - before
    assert [job.get_status() for job in Job.fetch_many(sorted(stopped), workers.connection)] == ["stopped"] * 2
    # ... and their workers take the next parts at once.
    outputs, seconds = _collect(executor, payloads(district, 2, 0.5), time.time() + 10)
    assert sorted(outputs) == [0, 1] and seconds < 4


# --------------------------------------------------------------------------- (c) a worker killed


def test_a_worker_killed_mid_part_loses_only_its_part(workers, slow_district):
    names = workers.ensure(2)
    executor = RqPartExecutor(REDIS_URL, workers.queue)
    shipped = payloads(slow_district, 2, 4.0)
    outputs: dict[int, dict] = {}
    deadline = time.time() + 8
    thread = threading.Thread(target=lambda: outputs.update(executor.run(shipped, deadline)))
    thread.start()
    busy = time.monotonic() + 10
    while not all(_children(workers.processes[n].pid) for n in names):  # both work horses forked
        assert time.monotonic() < busy, "the parts did not start"
        time.sleep(0.05)
    time.sleep(0.5)
    workers.kill(names[0])
    gone = time.monotonic() + 3  # its subscription ends with its connection, long before its registration
    while executor.capacity() != 1:
        assert time.monotonic() < gone, "the killed worker is still counted"
        time.sleep(0.05)
    thread.join(15)
    assert not thread.is_alive() and time.time() <= deadline + 0.5
    assert len(outputs) == 1 and next(iter(outputs.values()))["worker"] == names[1]


# --------------------------------------------------------------------------- (e) the whole solve


def test_a_whole_solve_with_the_rq_executor_is_valid(workers, district, monkeypatch):
    from solver import pipeline

    workers.ensure(2)
    monkeypatch.setattr(pipeline, "MAX_PART_PAIRS", 8000)  # the district in parts, like a city
    monkeypatch.setattr(pipeline, "REGION_PAIRS", 6000)
    monkeypatch.setattr(pipeline, "PARALLEL_MIN_PAIRS", 1000)
    doc = district[0]
    solution = solve(doc, time_limit=10, workers=2, executor=RqPartExecutor(REDIS_URL, workers.queue))
    assert solution["status"] in ("OPTIMAL", "FEASIBLE")
    violations, score = validate_solution(doc, solution)
    assert violations == [] and abs(score - solution["objective"]) < 0.01
    stats = solution["stats"]
    assert stats["parts"] >= 3 and stats["parts_solved_in"].startswith("RQ part workers on queue")
    assert stats["parts_not_solved"] < stats["parts"]  # the workers' answers came back
    assert stats["total_seconds"] < 11


# --------------------------------------------------------------------------- (d) workers stopping


def test_capacity_is_zero_once_the_workers_stop(workers):
    workers.ensure(2)
    executor = RqPartExecutor(REDIS_URL, workers.queue)
    assert executor.capacity() == 2
    workers.stop_all()
    assert executor.capacity() == 0
    assert workers.live() == set()


# --------------------------------------------------------------------------- (e) a run of the web app


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the hand-over, not the database
def test_a_solve_run_of_the_web_app_uses_the_running_part_workers(workers, database_url, make_app, db,
                                                                   next_monday, monkeypatch):
    """A coordinator's *Solve* on the RQ path: the solve job runs on the `linli` queue (here a
    SimpleWorker in this process), its parts on the part workers' own queue."""
    from redis.exceptions import RedisError
    from rq import Queue, SimpleWorker
    from rq.job import Job
    from sqlalchemy import select

    from matcher.demo import DEMO_PASSWORD, load_demo
    from matcher.models import Area, AreaLevel, RunStatus, SolveRun
    from matcher.schedules import get_schedule
    from tests.conftest import REDIS_TEST_URL

    names = workers.ensure(2)
    try:
        solve_queue = Queue(f"linli-test-{uuid.uuid4().hex[:8]}", connection=workers.connection.from_url(REDIS_TEST_URL))
        solve_queue.connection.ping()
    except RedisError as exc:
        pytest.skip(f"Redis not reachable at {REDIS_TEST_URL} ({type(exc).__name__})")
    load_demo(week_start=next_monday, scale=0.1, seed=5)
    town = db.session.scalars(select(Area).where(Area.level == AreaLevel.TOWNSHIP).order_by(Area.id)).first()
    schedule = get_schedule(town, next_monday)
    db.session.commit()
    app = make_app(REDIS_URL=REDIS_TEST_URL, SOLVE_PARTS_REDIS_URL=REDIS_URL, SOLVE_PARTS_QUEUE=workers.queue)
    client = app.test_client()
    assert client.post("/login", data={"username": "coord", "password": DEMO_PASSWORD}).status_code == 302
    finished = Queue(workers.queue, connection=workers.connection).finished_job_registry
    before = set(finished.get_job_ids())
    from web import jobs

    monkeypatch.setattr(jobs, "QUEUE", solve_queue.name)  # this test's own solve queue
    assert client.post(f"/schedules/{schedule.id}/solve", data={"time_limit": "5"}).status_code == 302
    assert solve_queue.count == 1
    with app.app_context():
        SimpleWorker([solve_queue], connection=solve_queue.connection).work(burst=True)
    db.session.expire_all()
    run = db.session.scalar(select(SolveRun).where(SolveRun.schedule_id == schedule.id))
    assert run.status == RunStatus.DONE, run.message
    assert run.solution["stats"]["parts_solved_in"].startswith(f"RQ part workers on queue {workers.queue}")
    parts = set(finished.get_job_ids()) - before
    assert parts and {job.worker_name for job in Job.fetch_many(sorted(parts), workers.connection)} <= set(names)
    solve_queue.delete(delete_jobs=True)
