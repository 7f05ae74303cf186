"""Use cases that change a schedule and its assignments as a whole: the coordinator's loop.

Getting a schedule, solve runs (queued here, executed by `run_solve` outside any request: an RQ
worker or a background thread, see `web/jobs.py`), applying a run's result, publishing, and the
coordinator's hand edits (assign, move, remove, pin; a street's coordinator makes them on their part of
the district's schedule, `access.schedule_part`). Progress is written in short transactions so
a page can show it live; the result is written in one transaction.

Side effects have one home each: offers made, changed or withdrawn are told through
`notifications.tell_volunteers`; a place filled by hand goes through `assignments.lock_booking`;
a hand edit is judged by `eligibility.assess` (the solver's own referee).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import literal, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from solver import solve

from . import problem, rules
from .access import in_part, in_pool, schedule_part
from .assignments import (
    filled_places,
    issue_checkin_codes,
    lock_booking,
    lock_bookings,
    refresh_occurrence_status,
    withdraw,
)
from .audit import record_audit
from .db import db
from .eligibility import assess, explanations
from .errors import Conflict, DomainError, ValidationError
from .models import (
    PENDING,
    Area,
    AreaLevel,
    Assignment,
    AssignmentStatus,
    Demand,
    DemandOccurrence,
    RunGap,
    RunStatus,
    Schedule,
    ScheduleStatus,
    SolveRun,
    User,
    Volunteer,
    utcnow,
)
from .notifications import tell_volunteers
from .settings import log_exception, running_app, setting
from .solve_parts import part_executor
from .volunteers import guardian_problem

ACTIVE = (RunStatus.QUEUED, RunStatus.BUILDING, RunStatus.SOLVING)
DEFAULT_TIME_LIMIT = 30
PROGRESS_EVERY = 1.0  # seconds between progress writes
STALE_AFTER = 600  # seconds past its time limit after which a silent run counts as dead
HEARTBEAT_EVERY = 5.0  # seconds between the beats of the process running a solve
HEARTBEAT_LOST = 30.0  # seconds without a beat after which a started run counts as dead
log = logging.getLogger(__name__)


def get_schedule(area: Area, week_start: date) -> Schedule:
    """The schedule of an area (township or district) for a week, created on first use."""
    if area.level == AreaLevel.COMMUNITY:
        raise DomainError(str(_l("Schedules are made for a township/street or the whole district.")))
    if week_start.weekday() != 0:
        raise DomainError(str(_l("A schedule week starts on a Monday.")))
    schedule = db.session.scalar(select(Schedule).where(Schedule.area_id == area.id,
                                                        Schedule.week_start == week_start))
    if schedule is None:
        overlapping = db.session.scalar(
            select(Schedule).join(Area, Schedule.area_id == Area.id)
            .where(Schedule.week_start == week_start,
                   or_(Area.path.startswith(area.path), literal(area.path).startswith(Area.path))))
        if overlapping is not None:
            # One demand must belong to one schedule a week, or two solves would offer it twice.
            raise DomainError(str(_l("This week is already scheduled for %(a)s; use that schedule.",
                                     a=overlapping.area.name)))
        schedule = Schedule(area=area, week_start=week_start, status=ScheduleStatus.DRAFT)
        db.session.add(schedule)
        db.session.flush()
    return schedule


def covering_schedule(area: Area, week_start: date) -> Schedule | None:
    """The schedule of an area above `area` (the district's, for a street) that covers the week, if any:
    then the street's services are scheduled there, and its coordinator works on their part of it."""
    return db.session.scalar(
        select(Schedule).join(Area, Schedule.area_id == Area.id)
        .where(Schedule.week_start == week_start, Area.id != area.id,
               literal(area.path).startswith(Area.path))
        .order_by(Area.path).limit(1))


def start_solve(schedule: Schedule, *, user: User | None, time_limit: int = DEFAULT_TIME_LIMIT,
                workers: int = 2) -> tuple[SolveRun, bool]:
    """Queue a solve run; returns (run, created). A run already under way is returned instead.

    A person's run (`user` given) takes 5 s to SOLVE_TIME_LIMIT_MAX (default 120 s); the operator's
    command line (`user=None`) chooses freely.
    """
    if user is not None:
        time_limit = max(5, min(int(time_limit), int(setting("SOLVE_TIME_LIMIT_MAX", 120))))
    running = db.session.scalar(select(SolveRun).where(SolveRun.active_for == schedule.id))
    if running is not None and not _stale(running):
        return running, False
    if running is not None:  # its process died (a restart, a killed worker): release the schedule
        running.status, running.active_for, running.finished_at = RunStatus.FAILED, None, utcnow()
        running.message = str(_l("Interrupted: the run stopped reporting and was given up."))
        db.session.flush()
    run = SolveRun(schedule=schedule, requested_by_id=user.id if user else None, status=RunStatus.QUEUED,
                   active_for=schedule.id, repair=schedule.status == ScheduleStatus.PUBLISHED,
                   params={"time_limit": int(time_limit), "workers": int(workers)},
                   progress={"phase": "queued"}, job_id=f"solve-{schedule.id}")
    db.session.add(run)
    try:
        db.session.flush()
    except IntegrityError:  # another request queued one at the same moment
        db.session.rollback()
        running = db.session.scalar(select(SolveRun).where(SolveRun.active_for == schedule.id))
        if running is None:
            raise
        return running, False
    record_audit(user, "solve", schedule, run=run.id, repair=run.repair)
    return run, True


def _stale(run: SolveRun) -> bool:
    """A queued or running run whose process is gone, that stopped beating, or that is far past its
    time limit is taken as dead (`death_of`)."""
    return death_of(run) is not None


# --------------------------------------------------------------------------- dead runs
#
# The process running a solve (an RQ work horse or a web process's thread, see `web/jobs.py`) beats:
# `keep_alive` records who it is (`process_identity`) and the time, every HEARTBEAT_EVERY seconds.
# A killed worker, a restarted web worker or a lost machine stops beating; whoever looks at the run
# next (a new solve of the schedule, the page's poll) gives it up: at once when the recorded
# process was on this machine and is gone, else HEARTBEAT_LOST seconds after the last beat.
# Giving up is a conditional UPDATE, and a run that was given up while it was in fact still working
# drops its result (`_still_active`), so a run never ends both failed and applied.

_GIVE_UP_MESSAGES = {
    "process": _l("Interrupted: the process running the solve stopped (a restart or a killed worker). "
                  "Solve again."),
    "silent": _l("Interrupted: the solve stopped reporting and was given up. Solve again."),
    "overdue": _l("Interrupted: the run stopped reporting and was given up."),
    "worker": _l("Interrupted: the solve worker stopped before finishing. Solve again."),
    "lost": _l("Interrupted: the queued solve was lost before a worker took it. Solve again."),
    "restart": _l("Interrupted: the web server process restarted during the solve. Solve again."),
    "unstarted": _l("The solve could not be started; the details are in the server log. Try again."),
}


def _proc_stat(pid: int | str) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state first), or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _machine() -> tuple[str, str]:
    """This process's PID namespace and the kernel's boot id ("" where /proc does not tell)."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return os.readlink("/proc/self/ns/pid"), f.read().strip()
    except OSError:
        return "", ""


def process_identity() -> str:
    """This process as another one can check it: host/pid/start time/PID namespace/boot id."""
    stat = _proc_stat("self")
    namespace, boot = _machine()
    return f"{socket.gethostname()}/{os.getpid()}/{stat[19] if stat else ''}/{namespace}/{boot}"[:200]


def process_gone(worker: str | None) -> bool:
    """True only when `worker` names a process of this machine and PID namespace that no longer runs
    (exited, a zombie, or its pid reused by another process). A process elsewhere is never judged."""
    parts = (worker or "").split("/")
    if len(parts) != 5 or not parts[2] or not parts[3]:
        return False
    host, pid, start, namespace, boot = parts
    if (host, (namespace, boot)) != (socket.gethostname(), _machine()) or not pid.isdigit():
        return False
    stat = _proc_stat(pid)
    return stat is None or stat[0] in ("Z", "X") or stat[19] != start


def beat(run_id: int, worker: str) -> bool:
    """Record that `worker` runs the run now (own short transaction); False once the run is not
    active any more (finished, failed or given up)."""
    result = db.session.execute(
        update(SolveRun).where(SolveRun.id == run_id, SolveRun.status.in_(ACTIVE))
        .values(worker=worker, heartbeat_at=utcnow()).execution_options(synchronize_session=False))
    db.session.commit()
    return result.rowcount == 1


@contextmanager
def keep_alive(run_id: int, *, every: float | None = None) -> Iterator[None]:
    """Beat for the run while the block runs: once now, then from a thread with its own app context
    (and so its own session and connection) every HEARTBEAT_EVERY seconds."""
    worker, app, stop = process_identity(), running_app(), threading.Event()
    try:
        beat(run_id, worker)
    except Exception as exc:  # the solve itself will meet the database problem and say so
        db.session.rollback()
        log.warning("solve run %s: first heartbeat not written (%s)", run_id, type(exc).__name__)

    def loop() -> None:
        with app.app_context():
            try:
                while not stop.wait(every or HEARTBEAT_EVERY):
                    try:
                        if not beat(run_id, worker):
                            if not stop.is_set():
                                log.warning("solve run %s is no longer active (given up?); its result "
                                            "will be dropped", run_id)
                            return
                    except Exception as exc:  # the database away for a moment: beat again later
                        db.session.rollback()
                        log.warning("solve run %s: heartbeat not written (%s)", run_id, type(exc).__name__)
            finally:
                db.session.remove()

    thread = threading.Thread(target=loop, name=f"heartbeat-{run_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=2)


def death_of(run: SolveRun, *, now: datetime | None = None, check_process: bool = True) -> str | None:
    """Why an active run is taken as dead ("process", "silent", "overdue"), or None while it may
    still be working. `check_process=False` judges as a poller on another machine would."""
    if run.status not in ACTIVE:
        return None
    now = now or utcnow()
    if check_process and run.worker and process_gone(run.worker):
        return "process"
    if run.heartbeat_at is not None and (now - run.heartbeat_at).total_seconds() > HEARTBEAT_LOST:
        return "silent"
    if run.heartbeat_at is not None and run.started_at is None:
        return None  # beating while it waits its turn (a thread slot): not overdue, however long
    since = run.started_at or run.queued_at
    allowed = int((run.params or {}).get("time_limit", DEFAULT_TIME_LIMIT)) + STALE_AFTER
    if (now - since).total_seconds() > allowed:
        return "overdue"
    return None


def give_up(run: SolveRun, reason: str) -> bool:
    """Mark an active run failed and release its schedule for a new solve; False when it ended (or
    beat) meanwhile. The UPDATE re-checks in the database what the caller saw; the caller commits."""
    stmt = update(SolveRun).where(SolveRun.id == run.id, SolveRun.status.in_(ACTIVE))
    if reason == "silent":  # only while still silent: a beat since the caller looked keeps it
        stmt = stmt.where(SolveRun.heartbeat_at == run.heartbeat_at)
    elif reason == "process":
        stmt = stmt.where(SolveRun.worker == run.worker)
    message = _GIVE_UP_MESSAGES.get(reason, _GIVE_UP_MESSAGES["worker"])
    result = db.session.execute(
        stmt.values(status=RunStatus.FAILED, active_for=None, finished_at=utcnow(), message=str(message),
                    progress={**(run.progress or {}), "phase": "failed", "given_up": reason})
        .execution_options(synchronize_session=False))
    db.session.expire(run)
    if result.rowcount == 1:
        log.warning("solve run %s given up (%s; worker %s)", run.id, reason, run.worker)
        record_audit(None, "give_up_run", run.schedule, run=run.id, reason=reason)
        return True
    return False


def reap_if_dead(run: SolveRun, *, check_process: bool = True) -> bool:
    """Give up the run if it is dead (`death_of`); True when it was. The caller commits."""
    reason = death_of(run, check_process=check_process)
    return reason is not None and give_up(run, reason)


def _still_active(run_id: int) -> SolveRun | None:
    """The run, locked against `give_up` until the result is committed (a row lock on PostgreSQL,
    the database write lock on SQLite); None, and nothing written, when it was given up meanwhile."""
    lock_bookings([], [])  # SQLite: BEGIN IMMEDIATE (PostgreSQL: nothing to lock here)
    run = db.session.scalar(select(SolveRun).where(SolveRun.id == run_id).with_for_update()
                            .execution_options(populate_existing=True))
    if run is not None and run.status in ACTIVE:
        return run
    db.session.rollback()
    log.warning("solve run %s was given up while it ran; its result is dropped", run_id)
    return None


def _set_progress(run_id: int, **values: Any) -> None:
    """Write run fields in their own short transaction (the page polls them)."""
    db.session.execute(update(SolveRun).where(SolveRun.id == run_id).values(**values))
    db.session.commit()


def run_solve(run_id: int) -> None:
    """Build the instance, solve, and write the result; the body of a background solve job."""
    run = db.session.get(SolveRun, run_id)
    if run is None or run.status not in ACTIVE:
        return
    params = dict(run.params or {})
    started = time.monotonic()
    try:
        _set_progress(run_id, status=RunStatus.BUILDING, started_at=utcnow(),
                      progress={"phase": "building", "elapsed": 0})
        run = db.session.get(SolveRun, run_id)
        instance = problem.build_instance(run.schedule, repair=run.repair)
        _set_progress(run_id, instance=instance, candidates=None)
        last = [0.0]
        app = running_app()

        def report(event: dict) -> None:
            # Called from the solver's own threads: write in a fresh app context and session.
            now = time.monotonic()
            if event.get("phase") == "done" or now - last[0] < PROGRESS_EVERY:
                return
            last[0] = now
            status = RunStatus.SOLVING if event.get("phase") == "solving" else RunStatus.BUILDING
            with app.app_context():
                _set_progress(run_id, status=status, progress={
                    "phase": event.get("phase"), "objective": event.get("objective"),
                    "bound": event.get("bound"), "elapsed": round(now - started, 1)})

        limit = params.get("time_limit", DEFAULT_TIME_LIMIT)
        executor = part_executor()  # the part workers, when any are running
        solution = solve(instance, time_limit=limit, workers=params.get("workers", 2), progress=report,
                         executor=executor)
        released = _pins_to_release(solution)
        if released:
            # Some pins cannot all hold (e.g. an accepted volunteer whose teammate declined and nobody
            # can complete the minimum team): keep those services fixed and schedule the rest around them.
            instance = problem.release_pins(instance, released)
            left = max(5.0, limit - (time.monotonic() - started))
            solution = solve(instance, time_limit=left, workers=params.get("workers", 2), progress=report,
                             executor=executor)
        run = _still_active(run_id)
        if run is None:  # given up while it ran (taken for dead): nothing is written
            return
        if released:
            run.instance = instance
            run.params = {**params, "released_pins": sorted([d, v] for d, v in released)}
        record_solution(run, solution, elapsed=time.monotonic() - started)
        db.session.commit()
    except Exception as exc:
        db.session.rollback()
        log_exception("solve run %s failed", run_id)
        # Only a run still active: one given up meanwhile keeps the reason it was given up for.
        db.session.execute(
            update(SolveRun).where(SolveRun.id == run_id, SolveRun.status.in_(ACTIVE))
            .values(status=RunStatus.FAILED, active_for=None, finished_at=utcnow(),
                    message=str(_l("The run failed (%(kind)s); the details are in the server log.",
                                   kind=type(exc).__name__)),
                    progress={"phase": "failed", "elapsed": round(time.monotonic() - started, 1)})
            .execution_options(synchronize_session=False))
        db.session.commit()
        raise


def _pins_to_release(solution: dict) -> set[tuple[str, str]]:
    """The pinned pairs an INFEASIBLE answer blames, to be fixed outside the model on a second try."""
    if solution.get("status") != "INFEASIBLE":
        return set()
    return {(c["demand"], c["volunteer"]) for c in solution.get("conflicts", [])
            if c.get("demand") and c.get("volunteer")}


def record_solution(run: SolveRun, solution: dict, *, elapsed: float) -> None:
    """Store a finished run's figures and gaps; apply it at once to a draft schedule."""
    stats = solution.get("stats") or {}
    run.solution = solution
    run.solver_status = solution.get("status")
    run.score = solution.get("objective")
    run.bound = solution.get("bound")
    run.candidates = stats.get("candidates")
    run.build_seconds = stats.get("build_seconds")
    run.solve_seconds = stats.get("solve_seconds")
    run.finished_at = utcnow()
    run.active_for = None
    run.progress = {"phase": "done", "objective": run.score, "bound": run.bound, "elapsed": round(elapsed, 1)}
    if solution.get("status") not in ("OPTIMAL", "FEASIBLE"):
        run.status = RunStatus.FAILED
        run.message = solution.get("message") or _conflict_text(solution)
        return
    run.status = RunStatus.DONE
    for occurrence_id, missing, reasons in problem.read_solution(solution).gaps:
        db.session.add(RunGap(run=run, occurrence_id=occurrence_id, missing=missing, reasons=reasons))
    # Older finished runs of this schedule are superseded by this one.
    db.session.execute(update(SolveRun).where(SolveRun.schedule_id == run.schedule_id, SolveRun.id != run.id,
                                              SolveRun.status == RunStatus.DONE)
                       .values(status=RunStatus.SUPERSEDED))
    if run.schedule.status == ScheduleStatus.DRAFT:
        apply_run(run, user=None)


def _conflict_text(solution: dict) -> str:
    conflicts = solution.get("conflicts") or []
    return "; ".join(f"{c.get('demand')}/{c.get('volunteer')}: {c.get('rule', '')}" for c in conflicts)[:2000]


def planned_changes(run: SolveRun) -> problem.Changes:
    """What applying a run would change: pairs (occurrence id, volunteer id) kept, added and removed."""
    return problem.compare(run.schedule_id, run.solution or {})


@dataclass
class ChangedService:
    """One service a run would change: who leaves it and who joins it."""

    occurrence: DemandOccurrence
    removed: list[Volunteer]
    added: list[Volunteer]


def changed_services(changes: problem.Changes) -> list[ChangedService]:
    """The services the added and removed pairs touch, in time order, each with its volunteers out and in."""
    pairs = [("removed", p) for p in changes.removed] + [("added", p) for p in changes.added]
    if not pairs:
        return []
    occurrences = {o.id: o for o in db.session.scalars(
        select(DemandOccurrence).where(DemandOccurrence.id.in_({o for _k, (o, _v) in pairs}))
        .options(selectinload(DemandOccurrence.demand).selectinload(Demand.community)))}
    volunteers = {v.id: v for v in db.session.scalars(
        select(Volunteer).where(Volunteer.id.in_({v for _k, (_o, v) in pairs})))}
    rows: dict[int, ChangedService] = {}
    for kind, (occurrence_id, volunteer_id) in pairs:
        occ, volunteer = occurrences.get(occurrence_id), volunteers.get(volunteer_id)
        if occ is None or volunteer is None:
            continue
        row = rows.setdefault(occ.id, ChangedService(occ, [], []))
        getattr(row, kind).append(volunteer)
    return sorted(rows.values(), key=lambda r: (r.occurrence.starts_at, r.occurrence.id))


def apply_run(run: SolveRun, *, user: User | None) -> dict[str, int]:
    """Make a finished run's schedule the current one (proposals in a draft, offers once published).

    On a published schedule the volunteers are told: each one, in one notice, of the offers made to
    them, and of the offers withdrawn. The rows the run touches are locked like a booking first, so
    an acceptance cannot slip between reading the schedule and writing it.
    """
    if run.status != RunStatus.DONE:
        raise Conflict(str(_l("Only a finished run can be applied.")))
    if run.applied_at is not None:
        raise Conflict(str(_l("This run was applied already.")))
    schedule = run.schedule
    published = schedule.status == ScheduleStatus.PUBLISHED
    occurrence_ids = [problem.ref_id(d["id"]) for d in run.instance["demands"]]
    db.session.flush()
    on_schedule = db.session.scalars(select(Assignment.volunteer_id).where(Assignment.schedule_id == schedule.id))
    lock_bookings({*on_schedule, *(v for _o, v in problem.read_solution(run.solution).pairs)}, occurrence_ids)
    now = utcnow()
    # Claim the run under the lock: of two applies at once the second finds it applied (the check
    # above read the run before the first one committed), and a run replaced meanwhile is refused.
    claimed = db.session.execute(
        update(SolveRun).where(SolveRun.id == run.id, SolveRun.status == RunStatus.DONE,
                               SolveRun.applied_at.is_(None))
        .values(applied_at=now).execution_options(synchronize_session=False))
    if claimed.rowcount != 1:
        raise Conflict(str(_l("This run was applied already, or a newer run replaced it; reload the page.")))
    written = problem.apply_solution(schedule, run.instance, run.solution, published=published, now=now)
    why = _l("The schedule was re-planned (for example after a decline).")
    withdraw(written.dropped, why)
    refresh_occurrence_status(written.occurrences)
    if published:
        tell_volunteers("offer", written.created)
    run.applied_at = now
    counts = written.changes.counts()
    record_audit(user, "apply_run", schedule, run=run.id, added=counts["added"], removed=counts["removed"])
    db.session.flush()
    return counts


def publish_schedule(schedule: Schedule, *, user: User | None, version: int | None = None) -> int:
    """Publish a draft: proposals become offers, and each volunteer gets one notice listing theirs.

    Returns how many offers were made.
    """
    if version is not None and version != schedule.version:
        raise Conflict(str(_l("The schedule changed since you loaded it; reload and try again.")))
    if schedule.status == ScheduleStatus.PUBLISHED:
        raise Conflict(str(_l("This schedule is published already.")))
    if db.session.scalar(select(SolveRun.id).where(SolveRun.active_for == schedule.id)):
        raise Conflict(str(_l("A solve is still running for this schedule; wait for it to finish.")))
    now = utcnow()
    proposals = db.session.scalars(
        select(Assignment).where(Assignment.schedule_id == schedule.id,
                                 Assignment.status == AssignmentStatus.PROPOSED)
        .options(selectinload(Assignment.volunteer),
                 selectinload(Assignment.occurrence).selectinload(DemandOccurrence.demand))).all()
    for a in proposals:
        a.status, a.offered_at = AssignmentStatus.OFFERED, now
    issue_checkin_codes(problem.schedule_occurrences(schedule))
    schedule.status = ScheduleStatus.PUBLISHED
    schedule.published_at = now
    schedule.published_by_id = user.id if user else None
    db.session.flush()
    tell_volunteers("offer", proposals)
    record_audit(user, "publish", schedule, offered=len(proposals))
    db.session.flush()
    return len(proposals)


# --------------------------------------------------------------------------- hand edits


def _editable(schedule: Schedule) -> None:
    if db.session.scalar(select(SolveRun.id).where(SolveRun.active_for == schedule.id)):
        raise Conflict(str(_l("A solve is running for this schedule; wait for it to finish.")))


def _within_part(schedule: Schedule, occurrence: DemandOccurrence, user: User | None) -> None:
    """A coordinator who sees the schedule only in part (a street's on the district's) edits only there."""
    if not in_part(occurrence, schedule_part(schedule, user)):
        raise DomainError(str(_l("This demand is outside your part of the schedule.")))


def _check_version(assignment: Assignment, version: int | None) -> None:
    if version is not None and version != assignment.version:
        raise Conflict(str(_l("This assignment changed since you loaded it; reload and try again.")))


def assign_by_hand(schedule: Schedule, occurrence: DemandOccurrence, volunteer: Volunteer, *, user: User,
                   override_reason: str = "", ignore_assignment_id: int | None = None, lock: bool = True,
                   _pause: Callable[[], None] | None = None) -> Assignment:
    """Put a volunteer on an occurrence as a pinned coordinator decision, checked against the hard rules.

    Only an active volunteer of the schedule's pool, within the user's own reach (`access.area_pool`,
    `access.user_pool`; `user=None` is the system), may be put on it; anyone else is refused like an
    unknown volunteer.
    A broken rule refuses the change (each one explained) unless the coordinator gives an override
    reason, which is recorded; the pair then becomes a pin with `override`. The volunteer and the
    occurrence are locked first (`lock_booking`), so two coordinators cannot fill the same last
    place. On a published schedule the volunteer gets the offer at once and is told.
    `lock=False` and `_pause` exist only for the concurrency test's control run.
    """
    _editable(schedule)
    if not problem.in_schedule(schedule, occurrence.id):
        raise DomainError(str(_l("This demand is not part of the schedule.")))
    _within_part(schedule, occurrence, user)
    if not volunteer.active or not in_pool(volunteer, schedule.area, user):
        # Outside the pool is as if not found: no hint that the volunteer exists.
        raise ValidationError({"volunteer": str(_l("Choose an active volunteer of this schedule's pool."))})
    minor = guardian_problem(volunteer, occurrence.starts_at.date())
    if minor:  # not a rule a reason can override
        raise ValidationError({"volunteer": minor})
    if lock:
        lock_booking(volunteer.id, occurrence.id)
    existing = db.session.scalar(select(Assignment).where(Assignment.occurrence_id == occurrence.id,
                                                          Assignment.volunteer_id == volunteer.id)
                                 .execution_options(populate_existing=True))
    if existing is not None and existing.status != AssignmentStatus.DECLINED:
        raise Conflict(str(_l("This volunteer is on this demand already.")))
    if filled_places(occurrence.id) >= occurrence.demand.people:
        raise Conflict(str(_l("This demand has all the people it needs.")))
    judged = assess(occurrence, [volunteer], ignore_assignment_id=ignore_assignment_id)[0]
    override_reason = (override_reason or "").strip()[:200]
    if judged.broken and not override_reason:
        raise ValidationError({"volunteer": str(_l(
            "%(name)s breaks these rules for this service: %(rules)s. To assign them anyway, give a reason "
            "to override.", name=volunteer.real_name, rules="; ".join(explanations(judged, occurrence))))})
    if _pause is not None:
        _pause()
    if existing is not None:  # a declined pair brought back by an override
        db.session.delete(existing)
        db.session.flush()
    published = schedule.status == ScheduleStatus.PUBLISHED
    assignment = Assignment(
        schedule_id=schedule.id, occurrence_id=occurrence.id, volunteer_id=volunteer.id, pinned=True,
        override_reason=override_reason if judged.broken else "",
        reasons=problem.pin_reasons(bool(judged.broken)),
        status=AssignmentStatus.OFFERED if published else AssignmentStatus.PROPOSED,
        offered_at=utcnow() if published else None,
        distance_km=round(rules.road_km(volunteer.lat, volunteer.lon, occurrence.demand.lat,
                                        occurrence.demand.lon), 2))
    db.session.add(assignment)
    db.session.flush()
    refresh_occurrence_status([occurrence])
    if published:
        tell_volunteers("offer", [assignment])
    record_audit(user, "assign", assignment, occurrence=occurrence.id, volunteer=volunteer.id,
                 override=bool(judged.broken), rules=judged.broken)
    return assignment


def remove_assignment(assignment: Assignment, *, user: User, version: int | None = None) -> None:
    """Take a proposed or offered assignment out of the schedule (booked services stay); an offer's
    volunteer is told it was withdrawn."""
    _editable(assignment.schedule)
    _within_part(assignment.schedule, assignment.occurrence, user)
    _check_version(assignment, version)
    if assignment.status not in PENDING:
        raise Conflict(str(_l("Only proposed or offered assignments can be removed.")))
    occurrence = assignment.occurrence
    record_audit(user, "remove", assignment, occurrence=occurrence.id, volunteer=assignment.volunteer_id)
    withdraw([assignment], _l("The coordinator changed the schedule."))
    refresh_occurrence_status([occurrence])


def set_pinned(assignment: Assignment, pinned: bool, *, user: User, version: int | None = None) -> None:
    """Pin an assignment so later solves keep it, or release the pin."""
    _editable(assignment.schedule)
    _within_part(assignment.schedule, assignment.occurrence, user)
    _check_version(assignment, version)
    assignment.pinned = pinned
    record_audit(user, "pin" if pinned else "unpin", assignment)
    db.session.flush()


def move_assignment(assignment: Assignment, target: DemandOccurrence, *, user: User,
                    override_reason: str = "") -> Assignment:
    """Move a volunteer from one occurrence to another in the same schedule, checked at once (the
    volunteer must be in the pool, as when assigning by hand)."""
    if assignment.status not in PENDING:
        raise Conflict(str(_l("Only proposed or offered assignments can be moved.")))
    schedule, volunteer = assignment.schedule, assignment.volunteer
    moved = assign_by_hand(schedule, target, volunteer, user=user, override_reason=override_reason,
                           ignore_assignment_id=assignment.id)
    remove_assignment(assignment, user=user)
    return moved
