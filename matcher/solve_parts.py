"""Where a solve run's parts are solved: on the part workers (RQ workers of the parts queue, on this
or other machines, `solver/rq_parts.py`) while any are running, else on the solve's own machine.

The solve job itself runs on the `linli` queue and waits for its parts; the parts go to their own
queue, so they never wait for the worker slot their solve job holds.
"""

from __future__ import annotations

import logging

from solver.rq_parts import RqPartExecutor

from .settings import solve_parts_settings

log = logging.getLogger(__name__)


def part_executor() -> RqPartExecutor | None:
    """The part workers' executor when Redis and a parts queue are configured and at least one part
    worker is alive now; None otherwise (the solver then uses worker processes of this machine)."""
    settings = solve_parts_settings()
    if not settings["redis_url"] or not settings["queue"]:
        return None
    executor = RqPartExecutor(settings["redis_url"], settings["queue"])
    workers = executor.capacity()  # 0 as well when Redis does not answer
    if workers == 0:
        return None
    log.info("solve parts go to %d part worker(s) on queue %s", workers, settings["queue"])
    return executor
