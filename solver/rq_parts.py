"""A city's parts solved as RQ jobs on Redis by part workers on any number of machines (issue 15).

`RqPartExecutor` is a part executor for `solver.pipeline.solve(..., executor=...)`: the caller ships each
part as plain data (a `linli.instance/1` sub-instance with its time limit, wall-clock deadline, CP-SAT
workers and greedy hint), this module queues one RQ job per part calling
`solver.pipeline.solve_shipped_part`, reads the plain outputs back as the jobs finish, and at the
deadline cancels what is still queued and stops what still runs, so no part keeps a worker busy for
nobody. A part that failed, was stopped or lost its worker is simply not returned: the caller fills it
with its greedy schedule, and the whole schedule is still checked by the referee there.

Part workers listen on their own queue (`linli-parts`), never on the solve queue (`linli`): the solve job
that waits for its parts holds a `linli` worker, and its parts need other slots than that one.

    rq worker --worker-class solver.rq_parts.PartWorker --url redis://HOST:6379/0 --path . linli-parts

Machines need the same code and requirements, and synchronized clocks (a part stops by the caller's
`deadline_unix`, a wall-clock time). See docs/operations.md, "Part workers".
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Worker, get_current_job
from rq.command import PUBSUB_CHANNEL_TEMPLATE, send_command
from rq.defaults import DEFAULT_WORKER_TTL
from rq.job import Job, JobStatus, cancel_job
from rq.results import Result
from rq.suspension import is_suspended

from solver.pipeline import solve_shipped_part

log = logging.getLogger(__name__)

PART_QUEUE = "linli-parts"
JOB_TIMEOUT_MARGIN = 30  # seconds above a part's own time: reading, building, a slow or busy machine
RESULT_TTL = 300  # the caller reads a result within one poll; kept a little longer for `rq info`
FAILURE_TTL = 3600  # a failed part's traceback, for the operator
PART_WORKER_TTL = 60  # a part worker beats every 45 s when idle; a lost machine leaves the count in 2 min
LIVENESS_EVERY = 1.0  # seconds between checks that the workers of started parts are still there
_WAITING = {JobStatus.QUEUED.value, JobStatus.DEFERRED.value, JobStatus.SCHEDULED.value}
_ENDED = {JobStatus.FAILED.value, JobStatus.STOPPED.value, JobStatus.CANCELED.value}


class PartWorker(Worker):
    """RQ's forking worker for part jobs (`--worker-class solver.rq_parts.PartWorker`). Naming it
    imports the solver, NumPy and OR-Tools in the worker process before it forks a work horse for
    each part, so a part does not pay the import (0.6 s of CPU); and it beats every 45 s instead of
    RQ's 405 s, so a machine lost while idle drops out of `RqPartExecutor.capacity` within two minutes
    (a worker killed on a machine that is still up drops out at once, see `live_workers`)."""

    def __init__(self, *args, worker_ttl: int | None = None, **kwargs):
        if worker_ttl in (None, DEFAULT_WORKER_TTL):  # the command line passes RQ's default when not told
            worker_ttl = PART_WORKER_TTL
        super().__init__(*args, worker_ttl=worker_ttl, **kwargs)


def live_workers(connection: Redis, queue_name: str) -> list[Worker]:
    """The workers listening on `queue_name` that are alive now: registered (their key has not expired)
    and subscribed to their command channel. A killed worker's registration outlives it by minutes,
    but Redis drops its subscription as soon as its connection closes."""
    workers = Worker.all(queue=Queue(queue_name, connection=connection))
    if not workers:
        return []
    counts = dict(connection.pubsub_numsub(*[w.pubsub_channel_name for w in workers]))
    return [w for w in workers if counts.get(w.pubsub_channel_name.encode(), 0) > 0]


class RqPartExecutor:
    """Solve shipped parts as RQ jobs on the part workers of one Redis queue (see the module docstring).

    `redis` is a Redis URL or a connection; `poll` the seconds between two looks at the jobs' states
    (one pipelined round trip for all the parts still out)."""

    def __init__(self, redis: str | Redis, queue_name: str = PART_QUEUE, poll: float = 0.05):
        if isinstance(redis, str):
            redis = Redis.from_url(redis, socket_connect_timeout=2, socket_timeout=10)
        self.connection = redis
        self.queue_name = queue_name
        self.poll = poll
        self.name = f"RQ part workers on queue {queue_name}"

    def capacity(self) -> int:
        """How many parts can run at once now: the live part workers, without the worker running this
        very process's job (were it listening on the parts queue too); 0 when Redis does not answer or
        RQ is suspended."""
        try:
            if is_suspended(self.connection):
                return 0
            workers = live_workers(self.connection, self.queue_name)
        except RedisError as exc:
            log.warning("part workers not counted: Redis unreachable (%s)", type(exc).__name__)
            return 0
        current = get_current_job()
        own = current.worker_name if current is not None else None
        return sum(1 for w in workers if w.name != own)

    def run(self, payloads: list[dict], deadline_unix: float) -> Iterator[tuple[int, dict]]:
        """Queue every payload as a job, yield (index, output) as each finishes, and return by
        `deadline_unix` (time.time() clock), cancelling or stopping what is left. Never raises for a
        lost worker or Redis trouble: it returns what it has (each output also names its `worker`)."""
        if not payloads or time.time() >= deadline_unix:
            return
        batch = uuid.uuid4().hex[:12]
        pending = {i: f"part-{batch}-{i}" for i in range(len(payloads))}
        try:
            self._enqueue(payloads, pending, deadline_unix)
        except RedisError as exc:
            log.warning("parts not queued (Redis: %s): the caller solves them greedily", type(exc).__name__)
            return
        trouble = False
        next_liveness = time.monotonic() + LIVENESS_EVERY
        nobody = 0  # liveness checks in a row that found no part worker at all
        try:
            while pending:
                left = deadline_unix - time.time()
                if left <= 0:
                    break
                time.sleep(min(self.poll, left))
                try:
                    states = self._states(pending)
                    finished = [i for i, (status, _) in states.items() if status == JobStatus.FINISHED.value]
                    outputs = {i: self._output(pending[i]) for i in finished}
                    lost: set[int] = set()
                    if time.monotonic() >= next_liveness:
                        next_liveness = time.monotonic() + LIVENESS_EVERY
                        lost, anybody = self._lost(states, waiting_lost=nobody >= 1)
                        nobody = 0 if anybody else nobody + 1
                except RedisError as exc:  # a hiccup: look again until the deadline
                    if not trouble:
                        log.warning("part jobs not readable for now (Redis: %s)", type(exc).__name__)
                    trouble = True
                    continue
                dropped: dict[int, str] = {}
                for i, (status, worker) in states.items():
                    if status == JobStatus.FINISHED.value:
                        job_id = pending.pop(i)
                        if isinstance(outputs[i], dict):
                            yield i, outputs[i] | {"worker": worker}
                        else:
                            log.warning("part %s (job %s) finished without a readable result", i, job_id)
                    elif status is None or status in _ENDED or i in lost:
                        why = "lost its worker" if i in lost else f"ended {status or 'without a trace in Redis'}"
                        log.warning("part %s (job %s) %s: the caller solves it greedily%s", i, pending[i], why,
                                    self._failure_text(pending[i]) if status == JobStatus.FAILED.value else "")
                        dropped[i] = pending.pop(i)
                if dropped:  # a part given up while queued must not run later for nobody
                    self._abandon(dropped)
        finally:
            if pending:
                self._abandon(pending)

    # --- the jobs in Redis ------------------------------------------------------------------------

    def _enqueue(self, payloads: list[dict], ids: dict[int, str], deadline_unix: float) -> None:
        """One job per payload, in one round trip; each part also stops by the run's own deadline."""
        now = time.time()
        jobs = []
        for i, payload in enumerate(payloads):
            until = min(payload.get("deadline_unix") or deadline_unix, deadline_unix)
            seconds = max(1.0, min(float(payload.get("time_limit", until - now)), until - now))
            jobs.append(Queue.prepare_data(
                solve_shipped_part, (payload | {"deadline_unix": until},), job_id=ids[i],
                timeout=int(seconds) + JOB_TIMEOUT_MARGIN, result_ttl=RESULT_TTL, failure_ttl=FAILURE_TTL,
                ttl=int(deadline_unix - now) + JOB_TIMEOUT_MARGIN,  # a part nobody took in time is dropped
                description=f"solver part {i + 1} of {len(payloads)}: {len(payload.get('pairs') or ())} pairs, "
                            f"{len(payload['instance']['demands'])} demands, {seconds:.0f} s"))
        Queue(self.queue_name, connection=self.connection).enqueue_many(jobs)

    def _states(self, pending: dict[int, str]) -> dict[int, tuple[str | None, str | None]]:
        """Each pending part's job status and worker name, in one pipelined round trip."""
        with self.connection.pipeline(transaction=False) as pipe:
            for job_id in pending.values():
                pipe.hmget(Job.key_for(job_id), "status", "worker_name")
            rows = pipe.execute()
        return {i: tuple(v.decode() if v else None for v in row) for i, row in zip(pending, rows, strict=True)}

    def _output(self, job_id: str):
        """The finished job's return value (read from its result, without loading the job's payload)."""
        try:
            result = Result.fetch_latest(Job(job_id, connection=self.connection))
        except RedisError:
            raise
        except Exception:  # an unreadable result (say, a worker on other code): that part is dropped
            log.exception("part job %s: result not readable", job_id)
            return None
        return result.return_value if result is not None and result.type == Result.Type.SUCCESSFUL else None

    def _failure_text(self, job_id: str) -> str:
        try:
            result = Result.fetch_latest(Job(job_id, connection=self.connection))
        except Exception:  # only for the log line
            return ""
        text = (result.exc_string or "").strip().splitlines() if result is not None else []
        return f" ({text[-1]})" if text else ""

    def _lost(self, states: dict[int, tuple[str | None, str | None]], *,
              waiting_lost: bool) -> tuple[set[int], bool]:
        """Parts that cannot finish: started on a worker that is gone, and (with `waiting_lost`, when the
        previous check found no worker either: a pool restarts its workers within a second) parts
        waiting while no part worker listens at all, as waiting for the deadline would gain nothing.
        Also whether any part worker listens."""
        started = {i: w for i, (s, w) in states.items() if s == JobStatus.STARTED.value and w}
        waiting = [i for i, (s, _) in states.items() if s in _WAITING]
        lost: set[int] = set()
        if started:
            channels = {i: PUBSUB_CHANNEL_TEMPLATE % w for i, w in started.items()}
            counts = dict(self.connection.pubsub_numsub(*set(channels.values())))
            lost |= {i for i, c in channels.items() if counts.get(c.encode(), 0) == 0}
        anybody = bool(live_workers(self.connection, self.queue_name)) if waiting else True
        if waiting and not anybody and waiting_lost:
            lost |= set(waiting)
        return lost, anybody

    def _abandon(self, pending: dict[int, str]) -> None:
        """At the deadline: cancel the parts still queued, stop the ones still running (the worker kills
        its work horse at once and takes the next job). Best effort: a part that slips through still
        stops by its own deadline."""
        try:
            states = self._states(pending)
        except RedisError as exc:
            log.warning("unfinished parts not stopped (Redis: %s); they stop by their deadline", type(exc).__name__)
            return
        for i, (status, worker) in states.items():
            job_id = pending[i]
            try:
                if status == JobStatus.STARTED.value and worker:
                    # What rq.command.send_stop_job_command does, without loading the job's payload.
                    send_command(self.connection, worker, "stop-job", job_id=job_id)
                elif status in _WAITING:
                    cancel_job(job_id, connection=self.connection)
            except Exception as exc:  # the job ended meanwhile, or Redis went away: nothing to stop
                log.info("part job %s not stopped (%s)", job_id, type(exc).__name__)
