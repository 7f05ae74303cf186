"""Where a week's parts are solved side by side: worker processes on this machine, or (solver/rq_parts.py)
RQ workers on any number of machines. Both speak plain data: a payload is a `linli.instance/1`
sub-instance plus the pairs to decide, the time and a wall-clock deadline; the answer is the plain dict
`pipeline.solve_shipped_part` returns. The caller owns merging, border repair and validation, and fills
every part that did not come back by the deadline with its greedy schedule, so an executor may lose
parts (a killed worker, a network hiccup) without costing a valid schedule or the time limit.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import time
from collections.abc import Iterator
from typing import Protocol

log = logging.getLogger(__name__)


class PartExecutor(Protocol):
    """Runs shipped parts somewhere and yields their answers as they come."""

    def capacity(self) -> int:
        """How many parts can run at the same time now (0: nobody to run them)."""

    def run(self, payloads: list[dict], deadline_unix: float) -> Iterator[tuple[int, dict]]:
        """Solve each payload with `solve_shipped_part`, yielding (index, answer) as each finishes;
        return at `deadline_unix` (time.time() clock), dropping unfinished parts; never raise for a
        lost worker."""


def _warm_up() -> None:
    """Pool initializer: import the solver (NumPy, OR-Tools) while the parent still reads and builds."""
    import solver.pipeline  # noqa: F401


def _run_one(payload: dict) -> dict:
    from solver.pipeline import solve_shipped_part

    return solve_shipped_part(payload)


class ProcessExecutor:
    """A pool of `processes` spawned worker processes on this machine, started at once so that their
    start-up (about a second each: the interpreter and OR-Tools) overlaps the parent's reading and
    candidate building. `close()` ends them (at the deadline, killed: a part that overstays its
    deadline must not hold the command past its time limit)."""

    name = "worker processes on this machine"

    def __init__(self, processes: int):
        self.processes = max(1, int(processes))
        context = multiprocessing.get_context("spawn")
        self._pool = context.Pool(self.processes, initializer=_warm_up)

    def capacity(self) -> int:
        """The pool's size."""
        return self.processes

    def run(self, payloads: list[dict], deadline_unix: float) -> Iterator[tuple[int, dict]]:
        """Submit everything (the pool hands parts out in the order given) and yield answers."""
        answers: queue.Queue = queue.Queue()
        for i, payload in enumerate(payloads):
            self._pool.apply_async(_run_one, (payload,), callback=lambda out, i=i: answers.put((i, out)),
                                   error_callback=lambda exc, i=i: answers.put((i, exc)))
        pending = len(payloads)
        while pending:
            left = deadline_unix - time.time()
            if left <= 0:
                log.warning("%d part(s) did not come back by the deadline", pending)
                return
            try:
                i, out = answers.get(timeout=min(left, 0.5))
            except queue.Empty:
                continue
            pending -= 1
            if isinstance(out, BaseException):
                log.warning("part %d failed in a worker process: %r", i, out)
                continue
            yield i, out

    def close(self) -> None:
        """Kill the worker processes (idempotent)."""
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None


def local_processes(workers: int) -> int:
    """Worker processes worth starting on this machine for `workers` CP-SAT workers."""
    return max(1, min(int(workers), os.cpu_count() or 1))
