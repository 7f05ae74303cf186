"""The coordinator's schedule: solve a week in the background, review, adjust, publish, repair.

Coordinators (and administrators) reach schedules of areas within their scope: a township's
coordinator the township's, a district coordinator the district's and every township's. Candidates,
hand assignments and the solver's instance come from the schedule's pool only (`access.area_pool`,
narrowed by `access.user_pool`).

A week the district schedules as a whole is seen by a street's coordinator in part
(`access.schedule_part`): their street's services only, candidates from their street's pool, and hand
edits (assign, move, remove, pin) there; solving, applying runs and publishing stay with the district.
The district schedule can be narrowed to one street (`?street=`), which is a street coordinator's view.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import format_datetime
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, fresh_login_required
from sqlalchemy import and_, select
from sqlalchemy.orm import selectinload

from matcher import access, delivery, problem, rules, weeks
from matcher.audit import record_audit
from matcher.clock import local_today
from matcher.db import among, db
from matcher.eligibility import RULE_LABELS, ranked_candidates
from matcher.errors import Conflict, NotFound, ValidationError
from matcher.figures import schedule_figures, schedule_summaries
from matcher.models import (
    FILLING,
    Area,
    AreaLevel,
    Assignment,
    AssignmentStatus,
    Category,
    DemandOccurrence,
    Organization,
    Priority,
    Role,
    RunGap,
    RunStatus,
    Schedule,
    SolveRun,
    Volunteer,
)
from matcher.outbox import channel_registry
from matcher.schedules import (
    ACTIVE,
    apply_run,
    assign_by_hand,
    changed_services,
    covering_schedule,
    get_schedule,
    move_assignment,
    planned_changes,
    publish_schedule,
    remove_assignment,
    set_pinned,
    start_solve,
)
from matcher.spreadsheets import write_csv, write_xlsx

from .auth import roles_required
from .imports import download
from .inputs import int_arg, page_arg, text_arg
from .jobs import check_run, enqueue_solve
from .main import parse_week
from .mapview import build_community_map, build_map
from .templating import REASONS, label

bp = Blueprint("schedule", __name__)
COORDINATING = (Role.ADMIN, Role.COORDINATOR)


def load_schedule(schedule_id: int) -> Schedule:
    """A schedule within the user's scope (`access.load_schedule`), else 404."""
    return access.load_schedule(schedule_id, current_user)


def load_part(schedule_id: int):
    """A schedule the user reaches in whole or in part, with the part (None: the whole), else 404."""
    return access.load_schedule_part(schedule_id, current_user)


def coming_monday() -> date:
    return rules.week_monday(local_today()) + timedelta(days=7)


@bp.route("/schedules")
@roles_required(*COORDINATING)
def index():
    """Pick an area and a week; the schedules in scope with their state."""
    areas = access.schedulable_areas(current_user)
    above = access.part_areas(current_user)  # the district, for a street's coordinator: their part of it
    schedules = db.session.scalars(
        select(Schedule).where(Schedule.area_id.in_([a.id for a in areas + above]))
        .options(selectinload(Schedule.area), selectinload(Schedule.runs))
        .order_by(Schedule.week_start.desc(), Schedule.id)).all()
    parts = access.schedule_parts(schedules, current_user)
    summaries = schedule_summaries(schedules, parts)  # a street's part of the district's week: its own places
    return render_template("schedule/index.html", areas=areas, schedules=schedules, week=coming_monday(),
                           summaries=summaries, parts=parts, above=above)


@bp.route("/schedules/open", methods=["POST"])
@roles_required(*COORDINATING)
def open_schedule():
    """Open (creating on first use) the schedule of an area and week."""
    areas = {a.id: a for a in access.schedulable_areas(current_user)}
    area_id = int_arg(request.form, "area")
    if area_id is None:
        raise ValidationError({"area": _("Choose an area.")})
    area = areas.get(area_id)
    if area is None:
        raise NotFound(_("No such area in your scope."))
    week = parse_week(request.form.get("week", ""))
    if week is None:
        raise ValidationError({"week": _("Enter a date as YYYY-MM-DD within two years of today.")})
    covering = covering_schedule(area, week)
    if covering is not None and covering.area_id in {a.id for a in access.part_areas(current_user)}:
        # The district schedules this week as a whole: the street's coordinator works on their part.
        flash(_("%(d)s schedules this week as a whole: here is the part of %(a)s.", d=covering.area.name,
                a=area.name), "info")
        return redirect(url_for("schedule.view", schedule_id=covering.id))
    schedule = get_schedule(area, week)
    db.session.commit()
    return redirect(url_for("schedule.view", schedule_id=schedule.id))


def _latest_run(schedule: Schedule) -> SolveRun | None:
    return db.session.scalar(select(SolveRun).where(SolveRun.schedule_id == schedule.id)
                             .order_by(SolveRun.id.desc()).limit(1))


def _grid_rows(schedule: Schedule, occurrences: list[DemandOccurrence], street=None):
    """Rows of the week grid: townships for a district schedule, communities for a township's (or for
    one street of the district's)."""
    by_township = schedule.area.level == AreaLevel.DISTRICT and street is None

    def row_area(occ):
        community = occ.demand.community
        return community.parent if by_township else community

    cells: dict[int, dict[int, list]] = defaultdict(lambda: defaultdict(list))
    names: dict[int, str] = {}
    for occ in occurrences:
        area = row_area(occ)
        names[area.id] = area.name
        cells[area.id][occ.starts_at.weekday()].append(occ)
    return [(names[a], cells[a]) for a in sorted(names, key=lambda a: names[a])]


def _filtered(occurrences: list[DemandOccurrence], args) -> list[DemandOccurrence]:
    category, priority, org = args.get("category"), args.get("priority"), args.get("organization", type=int)
    out = []
    for occ in occurrences:
        d = occ.demand
        if category and (d.category is None or d.category.code != category):
            continue
        if priority and d.priority.value != priority:
            continue
        if org and occ.responsible_organization_id != org and org not in {o.id for o in d.organizations}:
            continue
        out.append(occ)
    return out


def _streets(schedule: Schedule) -> list:
    """The streets (townships) of a district schedule, for its street filter; none for a street's own."""
    if schedule.area.level != AreaLevel.DISTRICT:
        return []
    return db.session.scalars(select(Area).where(Area.parent_id == schedule.area_id,
                                                 Area.level == AreaLevel.TOWNSHIP).order_by(Area.name)).all()


# Which bound the gap is measured against (the solver's `stats.bound_methods`, solver/pipeline.py).
BOUND_KINDS = {
    "model_lp": _l("the linear relaxation of the whole model"),
    "cp_sat": _l("the optimizer's own proof"),
    "lp_cut_short": _l("the linear relaxation of the whole model, cut short by the time limit"),
    "lagrangian": _l("a Lagrangian relaxation with whole teams (tighter than the linear one)"),
    "regions_lp": _l("the linear relaxations of the regions"),
    "per_demand": _l("each demand's best team on its own (a loose bound)"),
}


def bound_kinds(run: SolveRun | None) -> list[str]:
    """Labels of the bounds behind a finished run's gap, for the coordinator to read."""
    stats = ((run.solution or {}).get("stats") or {}) if run is not None else {}
    kinds = stats.get("bound_methods") or []
    return [str(BOUND_KINDS[k]) for k in kinds if isinstance(k, str) and k in BOUND_KINDS]


@bp.route("/schedules/<int:schedule_id>")
@roles_required(*COORDINATING)
def view(schedule_id: int):
    """Review a schedule: progress of a run, coverage figures, week grid, gaps with reasons, map.

    A street's coordinator sees the district's schedule in part: their street's services only, and the
    figures, gaps and map of those. Whoever sees the whole may narrow it to one street (`?street=`).
    The district's schedule as a whole opens as an overview: a grid of streets by day (services and
    places filled, each cell leading to that street), the most urgent gaps, and a map of communities;
    the services one by one are shown a street at a time.
    """
    schedule, part = load_part(schedule_id)
    streets = _streets(schedule)
    street = part
    if part is None:
        chosen = int_arg(request.args, "street")
        street = next((t for t in streets if t.id == chosen), None)
    overview = bool(streets) and street is None
    occurrences = problem.page_occurrences(schedule, within=street)
    run = _latest_run(schedule)
    if run is not None and check_run(run):
        db.session.commit()
    finished = db.session.scalar(select(SolveRun).where(
        SolveRun.schedule_id == schedule.id, SolveRun.status.in_([RunStatus.DONE, RunStatus.SUPERSEDED]))
        .order_by(SolveRun.id.desc()).limit(1))
    figures = schedule_figures(schedule, occurrences, finished)
    counts = defaultdict(int)
    # The map of a street draws each assignment's line from the volunteer's home.
    assignments = problem.page_assignments(occurrences, FILLING, homes=not overview)
    for a in assignments:
        counts[a.occurrence_id] += 1
    shown = _filtered(occurrences, request.args)
    gaps = _gaps(shown, counts, finished)
    proposals = sum(1 for a in assignments if a.status == AssignmentStatus.PROPOSED)
    told = delivery_summary(delivery.schedule_reach(assignments))
    changes = changed = None
    if part is None and run is not None and run.repair and run.status == RunStatus.DONE and run.applied_at is None:
        changes = planned_changes(run)
        changed = changed_services(changes)
    if part is not None:  # the map draws homes: only of volunteers within the user's own reach
        reach = set(db.session.scalars(select(Volunteer.id).where(
            among(Volunteer.id, {a.volunteer_id for a in assignments}), access.user_pool(current_user))))
        assignments = [a for a in assignments if a.volunteer_id in reach]
    tile_url = current_app.config.get("MAP_TILE_URL")
    return render_template(
        "schedule/view.html", schedule=schedule, run=run, figures=figures, counts=counts,
        bound_kinds=bound_kinds(finished),
        gaps=gaps[:OVERVIEW_GAPS] if overview else gaps, gaps_total=len(gaps), overview=overview,
        rows=_street_rows(shown, streets, counts) if overview else _grid_rows(schedule, shown, street),
        changes=changes, changed=changed,
        active=run is not None and run.status in ACTIVE, part=part, streets=streets, street=street,
        map_svg=build_community_map(occurrences, counts, tile_url=tile_url) if overview
        else build_map(occurrences, assignments, counts, tile_url=tile_url),
        categories=db.session.scalars(select(Category).order_by(Category.id)).all(),
        organizations=db.session.scalars(select(Organization).where(Organization.id.in_(
            {o.responsible_organization_id for o in occurrences if o.responsible_organization_id}))).all(),
        priorities=list(Priority), filters=request.args, rule_labels=RULE_LABELS, shown=len(shown),
        solved=finished is not None, proposals=proposals, phase_label=_phase_label(run), told=told,
    )


OVERVIEW_GAPS = 30  # the district overview's most urgent gaps; a street's view lists all of its own


def _street_rows(occurrences: list[DemandOccurrence], streets: list[Area], counts) -> list[tuple]:
    """The district overview's grid: per street and weekday, how many services and places are filled
    of how many wanted (a street without services this week still has its row)."""
    by_path = sorted(((t.path, t) for t in streets), key=lambda pair: -len(pair[0]))
    cells: dict[int, dict[int, dict[str, int]]] = {t.id: {} for t in streets}
    for occ in occurrences:
        path = occ.demand.community.path
        street = next((t for prefix, t in by_path if path.startswith(prefix)), None)
        if street is None:
            continue
        cell = cells[street.id].setdefault(occ.starts_at.weekday(), {"services": 0, "filled": 0, "wanted": 0})
        cell["services"] += 1
        cell["wanted"] += occ.demand.people
        cell["filled"] += min(counts.get(occ.id, 0), occ.demand.people)
    return [(t, cells[t.id]) for t in streets]


def delivery_summary(reach: list[delivery.Reach]) -> dict:
    """The review page's line on notices: volunteers by delivery state, how many saw their offers, and
    how many no outside channel reaches (flagged before publishing)."""
    states = defaultdict(int)
    for r in reach:
        states[r.state] += 1
    return {"volunteers": len(reach), "states": dict(states), "seen": sum(1 for r in reach if r.seen_at),
            "reached": sum(1 for r in reach if r.reached), "unreachable": len(delivery.no_working_channel(reach))}


DELIVERY_FILTERS = ("all", "not_reached", "unreachable")
DELIVERY_LABELS = {
    "draft": _l("not offered yet"), "no_account": _l("no account: cannot be told"),
    "not_told": _l("not told"), "in_app": _l("in the app only"), "queued": _l("waiting to be sent"),
    "sending": _l("being sent"), "sent": _l("sent"), "delivered": _l("delivered"),
    "failed": _l("failed, will retry"), "given_up": _l("not delivered"),
}
FILTER_LABELS = {"all": _l("Everyone"), "not_reached": _l("Not reached yet"),
                 "unreachable": _l("No working channel")}
CHANNEL_LABELS = {"sms": _l("SMS"), "email": _l("E-mail"), "wechat": _l("WeChat")}
DELIVERY_PAGE = 100


def _delivery_reach(schedule: Schedule, part) -> tuple[list[delivery.Reach], list[problem.OccurrenceRow]]:
    """How far each volunteer's notice got (each offer carries its occurrence), and the occurrences shown."""
    occurrences = problem.page_occurrences(schedule, within=part)
    assignments = problem.page_assignments(occurrences, delivery.SHOWN)
    reach = delivery.schedule_reach(assignments)
    if part is not None:  # a street's coordinator follows only the volunteers within their reach
        pool = set(db.session.scalars(select(Volunteer.id).where(
            among(Volunteer.id, [r.volunteer.id for r in reach]), access.user_pool(current_user))))
        reach = [r for r in reach if r.volunteer.id in pool]
    return reach, occurrences


@bp.route("/schedules/<int:schedule_id>/delivery")
@roles_required(*COORDINATING)
def delivery_view(schedule_id: int):
    """Who was told of their offers, how (channel, delivery), who opened the link and saw the offers; the
    volunteers no outside channel reaches; re-send to those not reached."""
    schedule, part = load_part(schedule_id)
    show = request.args.get("show", "all")
    if show not in DELIVERY_FILTERS:
        show = "all"
    reach, _occurrences = _delivery_reach(schedule, part)
    summary = delivery_summary(reach)
    q = text_arg("q", max_length=40)
    if q:
        reach = [r for r in reach if q in r.volunteer.real_name]
    if show == "not_reached":
        reach = [r for r in reach if not r.reached and r.state != "draft"]
    elif show == "unreachable":
        reach = delivery.no_working_channel(reach)
    page = page_arg()
    pages = max(1, -(-len(reach) // DELIVERY_PAGE))
    page = min(page, pages)
    shown = reach[(page - 1) * DELIVERY_PAGE: page * DELIVERY_PAGE]
    channels = {name: channel.configured() for name, channel in channel_registry().items()}
    return render_template("schedule/delivery.html", schedule=schedule, part=part, rows=shown, show=show,
                           summary=summary, page=page, pages=pages, total=len(reach), channels=channels,
                           filters=FILTER_LABELS, resendable=_resendable, q=q, labels=DELIVERY_LABELS,
                           channel_labels=CHANNEL_LABELS, any_resendable=any(_resendable(r) for r in reach),
                           when=lambda moment: format_datetime(moment, "MM-dd HH:mm") if moment else "–")


def _resendable(r: delivery.Reach) -> bool:
    return r.notice is not None and not r.reached and r.channel_now is not None and r.pending > 0


@bp.route("/schedules/<int:schedule_id>/delivery/resend", methods=["POST"])
@roles_required(*COORDINATING)
def resend(schedule_id: int):
    """Send the offer notice again to the chosen volunteers not reached (or to all of them: `all`)."""
    schedule, part = load_part(schedule_id)
    reach, _occurrences = _delivery_reach(schedule, part)
    if request.form.get("all"):
        chosen = reach
    else:
        wanted = {int(x) for x in request.form.getlist("volunteer") if x.isascii() and x.isdigit() and len(x) <= 18}
        if not wanted:
            flash(_("Choose the volunteers to send to again."), "error")
            return redirect(url_for("schedule.delivery_view", schedule_id=schedule.id, show="not_reached")), 303
        chosen = [r for r in reach if r.volunteer.id in wanted]
    count = delivery.resend([r for r in chosen if _resendable(r)], user=current_user, schedule=schedule)
    db.session.commit()
    if count:
        flash(_("%(n)d messages queued again.", n=count), "success")
    else:
        flash(_("Nobody to send to again: everyone chosen was reached, answered, or has no working channel."),
              "info")
    return redirect(url_for("schedule.delivery_view", schedule_id=schedule.id, show="not_reached")), 303


def _gaps(shown: list[DemandOccurrence], counts, finished: SolveRun | None) -> list[tuple]:
    """The demands shown that are short now (from the counts as they stand), most urgent first, each
    with the last finished run's reasons, or a note: not solved yet, new since that run, or declined or
    changed since it."""
    reasons = {g.occurrence_id: g.reasons for g in finished.gaps} if finished is not None else {}
    solved = _solved_occurrences(finished) if finished is not None else frozenset()
    gaps = []
    for occ in shown:
        if counts[occ.id] >= occ.demand.people:
            continue
        if finished is None:
            note = _("not solved yet")
        elif occ.id not in solved:
            note = _("new since the last solve")
        else:
            note = _("declined or changed since the run")
        gaps.append((occ, occ.demand.people - counts[occ.id], reasons.get(occ.id, []), note))
    gaps.sort(key=lambda g: (list(Priority).index(g[0].demand.priority), g[0].starts_at))
    return gaps


# The occurrences each finished run solved, read once per process from its saved instance (megabytes
# for a district; a finished run's instance never changes). Keyed by id and queue time, so a database
# whose ids start again (a test, a restore) never meets another run's entry.
_SOLVED: dict[tuple[int, object], frozenset[int]] = {}
_SOLVED_MAX = 64


def _solved_occurrences(run: SolveRun) -> frozenset[int]:
    key = (run.id, run.queued_at)
    found = _SOLVED.get(key)
    if found is None:
        found = frozenset(problem.ref_id(d["id"]) for d in (run.instance or {}).get("demands", []))
        if len(_SOLVED) >= _SOLVED_MAX:
            _SOLVED.clear()
        _SOLVED[key] = found
    return found


def _phase_label(run: SolveRun | None) -> str:
    """A run's phase as the progress panel names it, translated: the phase while active, else its status."""
    if run is None:
        return ""
    phase = (run.progress or {}).get("phase") if run.status in ACTIVE else None
    return str(label(phase or run.status.value))


@bp.route("/schedules/<int:schedule_id>/solve", methods=["POST"])
@roles_required(*COORDINATING)
def solve(schedule_id: int):
    """Start a solve (repair mode once published) as a background job; one at a time per schedule."""
    schedule = load_schedule(schedule_id)
    # start_solve keeps it within 5 s and SOLVE_TIME_LIMIT_MAX.
    time_limit = request.form.get("time_limit", type=int) or current_app.config.get("SOLVE_TIME_LIMIT", 30)
    run, created = start_solve(schedule, user=current_user, time_limit=time_limit,
                               workers=current_app.config.get("SOLVE_WORKERS", 2))
    db.session.commit()
    if created:
        if enqueue_solve(run) == "thread-queued":
            flash(_("Another solve is running on this server: this one is queued and starts as soon as it "
                    "finishes (at most %(n)d at a time); this page shows its progress.",
                    n=current_app.config.get("SOLVE_THREADS_MAX", 1)), "info")
        else:
            flash(_("The solver is working on it; this page shows its progress."), "info")
    else:
        flash(_("A solve of this schedule is already under way."), "info")
    return redirect(url_for("schedule.view", schedule_id=schedule.id))


@bp.route("/runs/<int:run_id>.json")
@roles_required(*COORDINATING)
def run_status(run_id: int):
    """The run's state for the progress panel (polled without reloading)."""
    run = access.load_run(run_id, current_user, part=True)  # a street's part polls the district's run too
    if check_run(run):  # its worker is gone: given up now, so the page offers a new solve
        db.session.commit()
    return {"id": run.id, "status": run.status.value, "active": run.status in ACTIVE,
            "phase_label": _phase_label(run),
            "progress": run.progress or {}, "score": run.score, "bound": run.bound, "message": run.message}


@bp.route("/runs/<int:run_id>/instance.json")
@roles_required(*COORDINATING)
@fresh_login_required
def run_instance(run_id: int):
    """Download the run's saved instance (replay with `python -m solver solve`).

    It holds volunteers' home locations and availability: a fresh login is required and the export
    is audited.
    """
    run = access.load_run(run_id, current_user)
    if run.instance is None:
        abort(404)
    if not _within_pool(run):
        flash(_("This run's instance holds volunteers outside the schedule's pool (it was saved under an "
                "older rule or the pool has changed since): solve again to download a current one."), "error")
        return redirect(url_for("schedule.view", schedule_id=run.schedule_id))
    record_audit(current_user, "export_instance", run, schedule=run.schedule_id)
    db.session.commit()
    return _download(run.instance, f"linli-run-{run.id}-instance.json")


def _within_pool(run: SolveRun) -> bool:
    """Whether every volunteer of a saved instance is in the schedule's pool, within the user's reach."""
    ids = {problem.ref_id(v["id"]) for v in run.instance.get("volunteers", [])}
    if not ids:
        return True
    inside = db.session.scalars(select(Volunteer.id).where(
        Volunteer.id.in_(ids), access.area_pool(run.schedule.area), access.user_pool(current_user))).all()
    return len(set(inside)) == len(ids)


@bp.route("/runs/<int:run_id>/solution.json")
@roles_required(*COORDINATING)
def run_solution(run_id: int):
    """Download the run's solution."""
    run = access.load_run(run_id, current_user)
    if run.solution is None:
        abort(404)
    return _download(run.solution, f"linli-run-{run.id}-solution.json")


def _download(document: dict, filename: str):
    response = current_app.response_class(
        current_app.json.dumps(document), mimetype="application/json")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@bp.route("/runs/<int:run_id>/apply", methods=["POST"])
@roles_required(*COORDINATING)
@fresh_login_required
def apply(run_id: int):
    """Apply a finished repair run after reviewing what it changes."""
    run = access.load_run(run_id, current_user)
    counts = apply_run(run, user=current_user)
    db.session.commit()
    flash(_("Applied: %(a)d added, %(r)d removed, %(k)d kept.", a=counts["added"], r=counts["removed"],
            k=counts["kept"]), "success")
    return redirect(url_for("schedule.view", schedule_id=run.schedule_id))


@bp.route("/schedules/<int:schedule_id>/publish", methods=["POST"])
@roles_required(*COORDINATING)
@fresh_login_required
def publish(schedule_id: int):
    """Publish the draft: every proposal becomes an offer to its volunteer."""
    schedule = load_schedule(schedule_id)
    offered = publish_schedule(schedule, user=current_user, version=int_arg(request.form, "version", minimum=0))
    db.session.commit()
    flash(_("Published: %(n)d offers sent to volunteers.", n=offered), "success")
    return redirect(url_for("schedule.view", schedule_id=schedule.id))


@bp.route("/schedules/<int:schedule_id>/export.<any(xlsx, csv):fmt>", methods=["GET", "POST"])
@roles_required(*COORDINATING)
def export(schedule_id: int, fmt: str):
    """The week (or one's part of it) as a spreadsheet: services by day and community, each volunteer's
    services, and the gaps with the solver's reasons; phones masked, cells inert, audited. A CSV holds
    one table: `?sheet=services` (default), `people` or `gaps`. Full phones only through
    `exports.phone_reveal` (a volunteer's phone: nobody's today, so a reveal is refused)."""
    from .exports import phone_reveal

    schedule, part = load_part(schedule_id)
    reveal = phone_reveal("volunteers")
    if reveal.page is not None:
        return reveal.page
    tables = weeks.schedule_sheets(schedule, part, word=lambda code: str(REASONS[code]) if code in REASONS
                                   else label(code))
    sheets = [("服务", weeks.SERVICE_COLUMNS, tables.services), ("志愿者", weeks.PEOPLE_COLUMNS, tables.people),
              ("缺口", weeks.GAP_COLUMNS, tables.gaps)]
    name = f"{schedule.area.name}{part.name if part else ''}-{schedule.week_start.isoformat()}"
    if fmt == "xlsx":
        data = write_xlsx(sheets)
    else:
        chosen = {"services": 0, "people": 1, "gaps": 2}.get(request.args.get("sheet", "services"))
        if chosen is None:
            raise ValidationError({"sheet": _("Choose the table to export: services, people or gaps.")})
        _title, columns, rows = sheets[chosen]
        data = write_csv(columns, rows)
        name += "-" + ("services", "people", "gaps")[chosen]
    reveal.audit("export_schedule", schedule, format=fmt, rows=len(tables.services))
    db.session.commit()
    return download(data, f"{name}.{fmt}", fmt)


def _occurrence_in(schedule: Schedule, occurrence_id: int, part=None) -> DemandOccurrence:
    occ = db.session.get(DemandOccurrence, occurrence_id)
    if occ is None or not problem.in_schedule(schedule, occ.id) or not access.in_part(occ, part):
        raise NotFound(_("No such demand in this schedule."))
    return occ


@bp.route("/schedules/<int:schedule_id>/occurrences/<int:occurrence_id>", methods=["GET", "POST"])
@roles_required(*COORDINATING)
def occurrence(schedule_id: int, occurrence_id: int):
    """One demand occurrence: who is on it and why, ranked candidates, assign by hand (with override)."""
    schedule, part = load_part(schedule_id)
    occ = _occurrence_in(schedule, occurrence_id, part)
    errors: dict[str, str] = {}
    status = 400
    if request.method == "POST":
        volunteer_id = int_arg(request.form, "volunteer")
        volunteer = db.session.get(Volunteer, volunteer_id) if volunteer_id else None
        try:
            if volunteer is None:  # worded as a volunteer outside the pool: nothing tells them apart
                raise ValidationError({"volunteer": _("Choose an active volunteer of this schedule's pool.")})
            assign_by_hand(schedule, occ, volunteer, user=current_user,
                           override_reason=request.form.get("override_reason", ""))
        except ValidationError as exc:
            db.session.rollback()
            errors = exc.errors
        except Conflict as exc:  # full already, on it already, a solve running: shown on the page
            db.session.rollback()
            errors, status = {"volunteer": exc.message}, 409
        else:
            db.session.commit()
            flash(_("%(name)s assigned.", name=volunteer.real_name), "success")
            return redirect(url_for("schedule.occurrence", schedule_id=schedule.id, occurrence_id=occ.id))
    assignments = db.session.scalars(select(Assignment).where(Assignment.occurrence_id == occ.id)
                                     .options(selectinload(Assignment.volunteer))
                                     .order_by(Assignment.id)).all()
    on_it = {a.volunteer_id for a in assignments if a.status != AssignmentStatus.DECLINED}
    full = sum(1 for a in assignments if a.status in FILLING) >= occ.demand.people
    q = text_arg("q", 40)
    # The schedule's pool, within the user's own reach (a street's coordinator: their street's pool).
    pool = and_(access.area_pool(schedule.area), access.user_pool(current_user))
    candidates = ranked_candidates(occ, pool, exclude=on_it, name=q)[:40]
    gap = None
    run = _latest_run(schedule)
    if run is not None:
        gap = db.session.scalar(select(RunGap).where(RunGap.run_id == run.id, RunGap.occurrence_id == occ.id))
    others = [o for o in problem.page_occurrences(  # those within a day or so: what may clash
        schedule, within=part, between=(occ.starts_at - timedelta(days=1), occ.starts_at + timedelta(days=2)))
        if o.id != occ.id and abs((o.starts_at - occ.starts_at).days) <= 1][:60]
    told = {r.volunteer.id: r for r in delivery.schedule_reach(assignments)}
    return render_template("schedule/occurrence.html", schedule=schedule, occ=occ, assignments=assignments,
                           candidates=candidates, rule_labels=RULE_LABELS, errors=errors, gap=gap, q=q,
                           others=others, full=full, part=part, told=told, delivery_labels=DELIVERY_LABELS,
                           channel_labels=CHANNEL_LABELS), status if errors else 200


def _back(a: Assignment):
    return redirect(url_for("schedule.occurrence", schedule_id=a.schedule_id, occurrence_id=a.occurrence_id))


@bp.route("/assignments/<int:assignment_id>/pin", methods=["POST"])
@roles_required(*COORDINATING)
def pin(assignment_id: int):
    """Pin or unpin an assignment."""
    a = access.load_schedule_assignment(assignment_id, current_user)
    set_pinned(a, request.form.get("pinned") == "1", user=current_user,
               version=int_arg(request.form, "version", minimum=0))
    db.session.commit()
    return _back(a)


@bp.route("/assignments/<int:assignment_id>/remove", methods=["POST"])
@roles_required(*COORDINATING)
def remove(assignment_id: int):
    """Remove a proposed or offered assignment."""
    a = access.load_schedule_assignment(assignment_id, current_user)
    back = _back(a)
    remove_assignment(a, user=current_user, version=int_arg(request.form, "version", minimum=0))
    db.session.commit()
    flash(_("Assignment removed."), "info")
    return back


@bp.route("/assignments/<int:assignment_id>/move", methods=["POST"])
@roles_required(*COORDINATING)
def move(assignment_id: int):
    """Move the volunteer to another occurrence of the same schedule (checked against the rules)."""
    a = access.load_schedule_assignment(assignment_id, current_user)
    target_id = int_arg(request.form, "target")
    if target_id is None:
        raise ValidationError({"target": _("Choose the demand to move the volunteer to.")})
    target = _occurrence_in(a.schedule, target_id, access.schedule_part(a.schedule, current_user))
    try:
        moved = move_assignment(a, target, user=current_user,
                                override_reason=request.form.get("override_reason", ""))
    except ValidationError as exc:
        db.session.rollback()
        flash(_("Cannot move: %(why)s", why=exc.errors.get("volunteer", exc.message)), "error")
        return _back(a)
    db.session.commit()
    flash(_("Moved."), "success")
    return _back(moved)

