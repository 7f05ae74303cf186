"""The coordinator's schedules through the API: the list, one schedule with its figures, starting a solve
and following its run, the run's gaps with the solver's reasons, applying a repair run, publishing.

The pages' rules (`web/schedule.py`): coordinators and administrators only; schedules loaded through
`matcher.access` (a township's coordinator their township's, a district's coordinator the district's and
every township's); a street's coordinator sees the district's schedule in part (`access.schedule_part`:
the services of their street, and the figures and gaps of those) and follows its runs, while solving,
applying and publishing stay with whoever sees the whole. Reads need the scope "read"; solve, apply and
publish the scope "schedules" (the page's fresh sign-in has no counterpart for a token: the scope is the
gate). Publishing takes `If-Match` with the schedule's `ETag`.
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import current_app, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from flask_smorest.exceptions import PreconditionFailed, PreconditionRequired
from marshmallow import fields, validate
from sqlalchemy import case, func, select
from sqlalchemy.orm import aliased, selectinload

from matcher import access, problem
from matcher.db import db
from matcher.errors import AccessDenied, NotFound, ValidationError
from matcher.fields import MAX_ROW_ID
from matcher.figures import relative_gap, schedule_figures, schedule_summaries
from matcher.models import (
    Area,
    Category,
    Demand,
    DemandOccurrence,
    Priority,
    Role,
    RunGap,
    RunStatus,
    Schedule,
    ScheduleStatus,
    SolveRun,
)
from matcher.schedules import ACTIVE, apply_run, publish_schedule, start_solve

from . import PREFIX, Blueprint, needs
from .schemas import AreaRef, LocalTime, Strict, UtcTime

blp = Blueprint("api_schedules", __name__, url_prefix=PREFIX,
                description="The coordinator's schedules: list, figures, solve and follow the run, its gaps, "
                            "apply a repair, publish.")

COORDINATING = (Role.ADMIN, Role.COORDINATOR)
FINISHED = (RunStatus.DONE, RunStatus.SUPERSEDED)
PAGING = ("page", "page_size")


def coordinating() -> None:
    """Coordinators and administrators only, as on the pages (403 for anyone else)."""
    if current_user.role not in COORDINATING:
        raise AccessDenied(_("Only coordinators and administrators work on schedules."))


# --- schemas ---------------------------------------------------------------------------------------


class RunRef(ma.Schema):
    id = fields.Integer(required=True)
    status = fields.Function(lambda r: r.status.value, metadata={"enum": [s.value for s in RunStatus]})
    active = fields.Function(lambda r: r.status in ACTIVE, metadata={"type": "boolean"})
    repair = fields.Boolean()
    queued_at = UtcTime()
    finished_at = UtcTime(allow_none=True)


class ScheduleItem(ma.Schema):
    """A schedule as the list shows it: state, week, area, places filled of those needed, the last run."""

    id = fields.Integer(required=True)
    area = fields.Nested(AreaRef, required=True)
    week_start = fields.Date(required=True, metadata={"description": "The Monday of the week."})
    status = fields.String(required=True, metadata={"enum": [s.value for s in ScheduleStatus]})
    version = fields.Integer()
    published_at = UtcTime(allow_none=True)
    part = fields.Nested(AreaRef, allow_none=True, metadata={
        "description": "The street whose part of the district's schedule the person sees; null: the whole."})
    places_needed = fields.Integer(metadata={"description": "Places wanted (of the part seen)."})
    places_filled = fields.Integer(metadata={"description": "Places taken, capped per demand."})
    coverage = fields.Float(metadata={"description": "places_filled / places_needed (0..1)."})
    gap = fields.Float(allow_none=True, metadata={
        "description": "Relative gap of the newest finished run's score to its proven bound (0: proven best)."})
    latest_run = fields.Nested(RunRef, allow_none=True)


class FiguresOut(ma.Schema):
    """Coverage and quality of the schedule as it stands (of the part seen), with a run's score and bound."""

    coverage = fields.Float(metadata={"description": "Share of wanted places filled (0..1)."})
    places_wanted = fields.Integer()
    places_filled = fields.Integer()
    wanted = fields.Dict(keys=fields.String(), values=fields.Integer(),
                         metadata={"description": "Places wanted by priority (urgent, high, normal, low)."})
    filled = fields.Dict(keys=fields.String(), values=fields.Integer(),
                         metadata={"description": "Places filled by priority."})
    occurrences = fields.Integer(metadata={"description": "Services of the week."})
    short = fields.Integer(metadata={"description": "Services with fewer people than wanted."})
    travel_km = fields.Float()
    volunteers = fields.Integer(metadata={"description": "Volunteers with at least one service."})
    max_minutes = fields.Integer()
    mean_minutes = fields.Float()
    over_preferred = fields.Integer(metadata={"description": "Volunteers over their preferred time."})
    score = fields.Float(allow_none=True)
    bound = fields.Float(allow_none=True)
    gap = fields.Float(allow_none=True)


class ScheduleOut(ScheduleItem):
    """One schedule: the list's line, the week's figures and the latest run."""

    occurrences = fields.Integer(metadata={"description": "Services of the week (of the part seen)."})
    filled = fields.Integer(metadata={"description": "Services with all the people they want."})
    short = fields.Integer(metadata={"description": "Services with fewer people than wanted."})
    figures = fields.Nested(FiguresOut, required=True)
    solved = fields.Boolean(metadata={"description": "Whether any run of this schedule finished."})
    may_solve = fields.Boolean(metadata={"description": "Whether the person may solve, apply and publish it "
                                                        "(not on a part of the district's schedule)."})


class RunOut(ma.Schema):
    """A run's state and progress (as the page's progress panel polls it), and once finished its figures."""

    id = fields.Integer(required=True)
    schedule_id = fields.Integer(required=True)
    status = fields.String(required=True, validate=validate.OneOf([s.value for s in RunStatus]),
                           metadata={"enum": [s.value for s in RunStatus]})
    active = fields.Boolean(required=True)
    repair = fields.Boolean(metadata={"description": "A repair of a published schedule: applied by hand."})
    phase_label = fields.String(metadata={"description": "The phase (while active) or status, in words."})
    progress = fields.Dict(metadata={"description": "phase, objective, bound, elapsed (seconds)."})
    message = fields.String()
    solver_status = fields.String(allow_none=True)
    score = fields.Float(allow_none=True)
    bound = fields.Float(allow_none=True)
    gap = fields.Float(allow_none=True, metadata={"description": "Relative gap of score to bound."})
    candidates = fields.Integer(allow_none=True)
    build_seconds = fields.Float(allow_none=True)
    solve_seconds = fields.Float(allow_none=True)
    queued_at = UtcTime()
    started_at = UtcTime(allow_none=True)
    finished_at = UtcTime(allow_none=True)
    applied_at = UtcTime(allow_none=True)
    unmet_places = fields.Integer(allow_none=True, metadata={
        "description": "Places the run left unfilled (of the part seen); null until it finished."})
    figures = fields.Nested(FiguresOut, allow_none=True, metadata={
        "description": "Once finished: the schedule as it stands, with this run's score and bound."})
    links = fields.Dict(keys=fields.String(), values=fields.String(),
                        metadata={"description": "self, gaps, schedule."})


class SolveIn(Strict):
    time_limit = fields.Integer(validate=validate.Range(min=1, max=3600), metadata={
        "description": "Seconds the solver may take (kept within 5 and SOLVE_TIME_LIMIT_MAX); default: the "
                       "service's SOLVE_TIME_LIMIT."})


class SolveStarted(ma.Schema):
    run_id = fields.Integer(required=True)
    created = fields.Boolean(required=True, metadata={
        "description": "False when a solve of this schedule was under way already: that run is given."})
    waiting = fields.Boolean(metadata={"description": "Queued behind another solve running on this server."})
    status = fields.String(metadata={"enum": [s.value for s in RunStatus]})
    location = fields.String(metadata={"description": "The run to follow (also in the Location header)."})
    message = fields.String()


class ApplyOut(ma.Schema):
    added = fields.Integer()
    removed = fields.Integer()
    kept = fields.Integer()
    run = fields.Nested(RunOut)


class PublishOut(ma.Schema):
    offered = fields.Integer(metadata={"description": "Offers sent to volunteers."})
    schedule = fields.Nested(ScheduleOut)


class GapOut(ma.Schema):
    """A demand the run left short, with the solver's reasons."""

    occurrence_id = fields.Integer(required=True)
    demand_id = fields.Integer()
    title = fields.String()
    category = fields.Dict(keys=fields.String(), values=fields.String(), metadata={
        "description": "code and name."})
    priority = fields.String(metadata={"enum": [p.value for p in Priority]})
    community = fields.Nested(AreaRef)
    starts_at = LocalTime()
    ends_at = LocalTime()
    people = fields.Integer(metadata={"description": "People wanted."})
    missing = fields.Integer(metadata={"description": "People the run could not find."})
    reasons = fields.List(fields.String(), metadata={"description": "The solver's reason codes."})
    reason_texts = fields.List(fields.String(), metadata={"description": "The reasons in words."})


class ScheduleQuery(Strict):
    week = fields.Date(metadata={"description": "Only the schedule of the week of this day (its Monday)."})
    status = fields.String(validate=validate.OneOf([s.value for s in ScheduleStatus]),
                           metadata={"description": "Only draft or published schedules."})

    @ma.pre_load
    def _paging(self, data, **kwargs):  # the page's own arguments, read by the pagination
        return {k: data[k] for k in data if k not in PAGING}


class PageQuery(Strict):
    @ma.pre_load
    def _paging(self, data, **kwargs):
        return {k: data[k] for k in data if k not in PAGING}


# --- helpers ---------------------------------------------------------------------------------------


def _latest_run(schedule: Schedule) -> SolveRun | None:
    return db.session.scalar(select(SolveRun).where(SolveRun.schedule_id == schedule.id)
                             .order_by(SolveRun.id.desc()).limit(1))


def _last_finished(schedule: Schedule) -> SolveRun | None:
    return db.session.scalar(select(SolveRun).where(SolveRun.schedule_id == schedule.id,
                                                    SolveRun.status.in_(FINISHED))
                             .order_by(SolveRun.id.desc()).limit(1))


def _checked(run: SolveRun | None) -> SolveRun | None:
    """The run, given up first when its worker is gone (as the page does on every look)."""
    from ..jobs import check_run

    if run is not None and check_run(run):
        db.session.commit()
    return run


def _etag_data(schedule: Schedule, run: SolveRun | None) -> dict:
    """What the schedule's ETag is made of: its state and version, and its latest run's."""
    return {"id": schedule.id, "status": schedule.status.value, "version": schedule.version,
            "published_at": schedule.published_at.isoformat() if schedule.published_at else None,
            "run": [run.id, run.status.value, run.applied_at.isoformat() if run.applied_at else None]
            if run is not None else None}


def _figures(figures) -> dict:
    return {"coverage": figures.coverage, "places_wanted": sum(figures.wanted.values()),
            "places_filled": sum(figures.filled.values()), "wanted": figures.wanted, "filled": figures.filled,
            "occurrences": figures.occurrences, "short": figures.short, "travel_km": figures.travel_km,
            "volunteers": figures.volunteers, "max_minutes": figures.max_minutes,
            "mean_minutes": figures.mean_minutes, "over_preferred": figures.over_preferred,
            "score": figures.score, "bound": figures.bound, "gap": figures.gap}


def _schedule_out(schedule: Schedule, part: Area | None, run: SolveRun | None) -> dict:
    occurrences = problem.page_occurrences(schedule, within=part)
    finished = _last_finished(schedule)
    figures = schedule_figures(schedule, occurrences, finished)
    places_needed = sum(figures.wanted.values())
    places_filled = sum(figures.filled.values())
    return {
        "id": schedule.id, "area": schedule.area, "week_start": schedule.week_start, "status": schedule.status.value,
        "version": schedule.version, "published_at": schedule.published_at, "part": part,
        "places_needed": places_needed, "places_filled": places_filled, "coverage": figures.coverage,
        "gap": relative_gap(finished.score, finished.bound) if finished else None, "latest_run": run,
        "occurrences": figures.occurrences, "short": figures.short, "filled": figures.occurrences - figures.short,
        "figures": _figures(figures), "solved": finished is not None, "may_solve": part is None,
    }


def _phase_label(run: SolveRun) -> str:
    from ..schedule import _phase_label as page_label

    return page_label(run)


def _run_out(run: SolveRun, part: Area | None) -> dict:
    finished = run.status in FINISHED
    unmet = figures = None
    if finished:
        stmt = select(func.coalesce(func.sum(RunGap.missing), 0)).where(RunGap.run_id == run.id)
        if part is not None:
            stmt = (stmt.join(DemandOccurrence, RunGap.occurrence_id == DemandOccurrence.id)
                    .join(Demand, DemandOccurrence.demand_id == Demand.id)
                    .join(Area, Demand.community_id == Area.id).where(Area.path.startswith(part.path)))
        unmet = int(db.session.scalar(stmt) or 0)
        figures = _figures(schedule_figures(run.schedule, problem.page_occurrences(run.schedule, within=part), run))
    return {
        "id": run.id, "schedule_id": run.schedule_id, "status": run.status.value, "active": run.status in ACTIVE,
        "repair": run.repair, "phase_label": _phase_label(run), "progress": run.progress or {},
        "message": run.message or "", "solver_status": run.solver_status, "score": run.score, "bound": run.bound,
        "gap": relative_gap(run.score, run.bound), "candidates": run.candidates,
        "build_seconds": run.build_seconds, "solve_seconds": run.solve_seconds, "queued_at": run.queued_at,
        "started_at": run.started_at, "finished_at": run.finished_at, "applied_at": run.applied_at,
        "unmet_places": unmet, "figures": figures,
        "links": {"self": url_for("api_schedules.get_run", run_id=run.id),
                  "gaps": url_for("api_schedules.run_gaps", run_id=run.id),
                  "schedule": url_for("api_schedules.get_schedule", schedule_id=run.schedule_id)},
    }


def _load_run(run_id: int) -> tuple[SolveRun, Area | None]:
    """A run of a schedule the person reaches in whole or in part (its progress and gaps), with the part."""
    run = access.load_run(run_id, current_user, part=True)
    return run, access.schedule_part(run.schedule, current_user)


def _reason_text(code: str) -> str:
    from ..templating import REASONS, label

    return str(REASONS[code]) if code in REASONS else str(label(code))


# --- schedules -------------------------------------------------------------------------------------


@blp.route("/schedules")
@needs("read")
@blp.arguments(ScheduleQuery, location="query")
@blp.response(200, ScheduleItem(many=True))
@blp.paginate()
def list_schedules(query, pagination_parameters):
    """The schedules the person works on, newest week first.

    Each with its state, week, area, places filled of those needed and the last run: a township's coordinator their township's, a district's
    coordinator the district's and every township's, an administrator all; a street's coordinator also
    the district's schedules, in part (`part`: their street, whose places alone are counted)."""
    coordinating()
    areas = access.schedulable_areas(current_user) + access.part_areas(current_user)
    stmt = select(Schedule).where(Schedule.area_id.in_([a.id for a in areas]))
    if query.get("week"):
        from matcher.rules import week_monday

        stmt = stmt.where(Schedule.week_start == week_monday(query["week"]))
    if query.get("status"):
        stmt = stmt.where(Schedule.status == ScheduleStatus(query["status"]))
    pagination_parameters.item_count = db.session.scalar(select(func.count()).select_from(stmt.subquery()))
    schedules = db.session.scalars(
        stmt.options(selectinload(Schedule.area), selectinload(Schedule.runs))
        .order_by(Schedule.week_start.desc(), Schedule.id)
        .offset(pagination_parameters.first_item).limit(pagination_parameters.page_size)).all()
    parts = access.schedule_parts(schedules, current_user)
    summaries = schedule_summaries(schedules, parts)
    out = []
    for schedule in schedules:
        summary = summaries[schedule.id]
        out.append({"id": schedule.id, "area": schedule.area, "week_start": schedule.week_start,
                    "status": schedule.status.value, "version": schedule.version, "published_at": schedule.published_at,
                    "part": parts[schedule.id], "places_needed": summary.needed, "places_filled": summary.filled,
                    "coverage": summary.coverage, "gap": summary.gap,
                    "latest_run": max(schedule.runs, key=lambda r: r.id, default=None)})
    return out


class OpenIn(Strict):
    area_id = fields.Integer(strict=True, required=True, validate=validate.Range(1, MAX_ROW_ID),
                             metadata={"description": "An area the coordinator schedules (theirs or one below it)."})
    week = fields.Date(required=True, metadata={"description": "Any day of the week (its Monday is used), within "
                                                              "two years of today."})


@blp.route("/schedules", methods=["POST"])
@needs("schedules")
@blp.arguments(OpenIn)
@blp.response(201, ScheduleOut)
@blp.alt_response(200, schema=ScheduleOut, success=True,
                  description="The schedule existed already, or the district schedules the week as a whole "
                              "(then the coordinator's part of it).")
def open_schedule(data):
    """Open the schedule of an area and week, creating it on first use (as the schedules page does).

    201 when made now, 200 when it existed; a street's coordinator whose district schedules that week as a
    whole gets the district's schedule, in part. An area outside the person's scope is 404."""
    from matcher.schedules import covering_schedule
    from matcher.schedules import get_schedule as open_week

    from ..main import parse_week

    coordinating()
    area = {a.id: a for a in access.schedulable_areas(current_user)}.get(data["area_id"])
    if area is None:
        raise NotFound(_("No such area in your scope."))
    week = parse_week(data["week"].isoformat())
    if week is None:
        raise ValidationError({"week": _("Enter a date as YYYY-MM-DD within two years of today.")})
    covering = covering_schedule(area, week)
    if covering is not None and covering.area_id in {a.id for a in access.part_areas(current_user)}:
        schedule, part = access.load_schedule_part(covering.id, current_user)
        return _schedule_out(schedule, part, _checked(_latest_run(schedule))), 200
    existed = db.session.scalar(select(Schedule.id).where(Schedule.area_id == area.id,
                                                          Schedule.week_start == week)) is not None
    schedule = open_week(area, week)
    db.session.commit()
    return _schedule_out(schedule, None, _checked(_latest_run(schedule))), 200 if existed else 201


@blp.route("/schedules/<int:schedule_id>")
@needs("read")
@blp.etag
@blp.response(200, ScheduleOut)
def get_schedule(schedule_id: int):
    """One schedule, with its figures and latest run.

    State, week, area, services (how many, filled, short), the week's figures and the latest run's state. A street's coordinator gets their part of the district's schedule. The `ETag`
    (state, version and the latest run) goes with a publish (`If-Match`)."""
    coordinating()
    schedule, part = access.load_schedule_part(schedule_id, current_user)
    run = _checked(_latest_run(schedule))
    blp.set_etag(_etag_data(schedule, run))
    return _schedule_out(schedule, part, run)


@blp.route("/schedules/<int:schedule_id>/solve", methods=["POST"])
@needs("schedules")
@blp.arguments(SolveIn, required=False)
@blp.response(202, SolveStarted, headers={"Location": {"description": "The run to follow.",
                                                       "schema": {"type": "string"}}})
def solve(data, schedule_id: int):
    """Start a solve of the week (a repair once published).

    As the page's solve button does: the run is queued and solved in the background (an RQ worker when Redis is set up, else a thread of the server);
    one at a time per schedule, so while one is under way that run is given back (`created` false).
    Follow it at `location` (GET /api/v1/runs/{id}). Not on a part of the district's schedule (404)."""
    from ..jobs import enqueue_solve

    coordinating()
    schedule = access.load_schedule(schedule_id, current_user)
    time_limit = (data or {}).get("time_limit") or current_app.config.get("SOLVE_TIME_LIMIT", 30)
    run, created = start_solve(schedule, user=current_user, time_limit=time_limit,
                               workers=current_app.config.get("SOLVE_WORKERS", 2))
    db.session.commit()
    waiting = False
    if created:
        waiting = enqueue_solve(run) == "thread-queued"
        if waiting:
            message = _("Another solve is running on this server: this one is queued and starts as soon as it "
                        "finishes (at most %(n)d at a time).", n=current_app.config.get("SOLVE_THREADS_MAX", 1))
        else:
            message = _("The solver is working on it.")
    else:
        message = _("A solve of this schedule is already under way.")
    location = url_for("api_schedules.get_run", run_id=run.id)
    db.session.expire(run, ["status"])
    return ({"run_id": run.id, "created": created, "waiting": waiting, "status": run.status.value,
             "location": location, "message": message}, 202, {"Location": location})


@blp.route("/schedules/<int:schedule_id>/publish", methods=["POST"])
@needs("schedules")
@blp.etag
@blp.doc(parameters=[{"name": "If-Match", "in": "header", "required": True, "schema": {"type": "string"},
                      "description": "The ETag of GET /api/v1/schedules/{id}."}])
@blp.alt_response(412, response="PRECONDITION_FAILED")
@blp.alt_response(428, response="PRECONDITION_REQUIRED")
@blp.response(200, PublishOut)
def publish(schedule_id: int):
    """Publish the draft: every proposal becomes an offer to its volunteer.

    Each volunteer is told of their offers. Needs `If-Match`
    with the schedule's ETag (428 without it, 412 when the schedule or its runs changed since it was
    read); 409 when published already or a solve is still running. Not on a part of the district's
    schedule (404)."""
    coordinating()
    schedule = access.load_schedule(schedule_id, current_user)
    if not request.if_match:
        raise PreconditionRequired
    run = _checked(_latest_run(schedule))
    if blp._generate_etag(_etag_data(schedule, run)) not in request.if_match:
        raise PreconditionFailed
    offered = publish_schedule(schedule, user=current_user, version=schedule.version)
    db.session.commit()
    run = _latest_run(schedule)
    blp.set_etag(_etag_data(schedule, run))
    return {"offered": offered, "schedule": _schedule_out(schedule, None, run)}


# --- runs ------------------------------------------------------------------------------------------


@blp.route("/runs/<int:run_id>")
@needs("read")
@blp.response(200, RunOut)
def get_run(run_id: int):
    """A run's state and progress, and its figures once finished.

    Queued, building, solving, then done, failed or superseded, as the page's progress panel polls it; once finished, its figures: coverage, places unmet, score, bound and
    the gap between them. A street's coordinator follows the district's runs (figures of their part)."""
    coordinating()
    run, part = _load_run(run_id)
    _checked(run)
    return _run_out(run, part)


@blp.route("/runs/<int:run_id>/gaps")
@needs("read")
@blp.arguments(PageQuery, location="query")
@blp.response(200, GapOut(many=True))
@blp.paginate(page_size=50)
def run_gaps(query, run_id: int, pagination_parameters):
    """The demands the run left short, with the solver's reasons.

    Most urgent first, each with how many people are missing and the solver's reasons (codes and words); of a street's part, those of the street only. Empty until the
    run finished."""
    coordinating()
    run, part = _load_run(run_id)
    community = aliased(Area)
    order = case({p.value: i for i, p in enumerate(Priority)}, value=Demand.priority, else_=len(Priority))
    stmt = (select(RunGap, DemandOccurrence, Demand, community, Category)
            .join(DemandOccurrence, RunGap.occurrence_id == DemandOccurrence.id)
            .join(Demand, DemandOccurrence.demand_id == Demand.id)
            .join(community, Demand.community_id == community.id)
            .outerjoin(Category, Demand.category_id == Category.id)
            .where(RunGap.run_id == run.id))
    if part is not None:
        stmt = stmt.where(community.path.startswith(part.path))
    pagination_parameters.item_count = db.session.scalar(select(func.count()).select_from(
        stmt.with_only_columns(RunGap.id).subquery()))
    rows = db.session.execute(stmt.order_by(order, DemandOccurrence.starts_at, RunGap.id)
                              .offset(pagination_parameters.first_item)
                              .limit(pagination_parameters.page_size)).all()
    return [_gap_out(*row) for row in rows]


def _gap_out(gap: RunGap, occ: DemandOccurrence, demand: Demand, community: Area, category) -> dict[str, Any]:
    return {"occurrence_id": occ.id, "demand_id": demand.id, "title": demand.title,
            "category": {"code": category.code, "name": category.name_zh} if category is not None else {},
            "priority": demand.priority.value, "community": community, "starts_at": occ.starts_at,
            "ends_at": occ.ends_at, "people": demand.people, "missing": gap.missing,
            "reasons": [str(r) for r in gap.reasons or []],
            "reason_texts": [_reason_text(str(r)) for r in gap.reasons or []]}


@blp.route("/runs/<int:run_id>/apply", methods=["POST"])
@needs("schedules")
@blp.response(200, ApplyOut)
def apply(run_id: int):
    """Apply a finished repair run of a published schedule.

    As the page's apply button: offers made and withdrawn, the volunteers told (a draft's run applies itself when it finishes). 409 when the run is not
    finished, was applied already or a newer run replaced it. Not on a part of the district's schedule."""
    coordinating()
    run = access.load_run(run_id, current_user)
    counts = apply_run(run, user=current_user)
    db.session.commit()
    return {**counts, "run": _run_out(run, None)}
