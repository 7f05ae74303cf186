"""The summary report (总结报告, issue 14): an area's period as 开展情况、进展成效、存在问题、意见建议, with charts,
for coordinators (their area and below) and administrators (any area).

- `GET /reports`: choose an area and a period; the saved versions in one's scope.
- `GET /reports/preview?area=&period=` (or `&start=&end=`): the live report, its drafted suggestions in a
  text box to edit and the leading organizations and volunteers to pick as typical cases;
  `POST` saves a numbered version (`matcher.reports.save_report`) and shows it.
- `GET /reports/<id>`: a saved version, from its frozen figures; `.pdf` (WeasyPrint, the same charts) and
  `.xlsx` (the tables behind every chart) of it, each download audited.

Bad input (an area outside one's scope, an unknown period, an end before the start, over two years) is a 400
naming the field; a saved report outside one's scope is a 404. The charts are drawn by `web.charts`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select

from matcher import reports
from matcher.access import area_filter
from matcher.audit import record_audit
from matcher.catalogue import KIND_NAMES
from matcher.clock import local_now
from matcher.db import db
from matcher.errors import NotFound, ValidationError
from matcher.fields import parse_int
from matcher.models import Area, Role, SummaryReport

from . import charts
from .auth import roles_required
from .errors import render_error
from .imports import download
from .templating import REASONS, current_language, label

bp = Blueprint("reports", __name__)

STYLESHEET = Path(__file__).parent / "static" / "reports.css"
MAX_LISTED = 200
REASON_WORDS = {**REASONS, reports.NOT_SOLVED: _l("declined, handed back or not scheduled")}
DECLINE_WORDS = {"not_free": _l("not free then"), "too_far": _l("too far"), "other": _l("another reason"),
                 "unstated": _l("no reason given")}


# --------------------------------------------------------------------------- input and scope


def areas_in_scope() -> list[Area]:
    """The areas the user may report on: an administrator every area, a coordinator theirs and below."""
    return list(db.session.scalars(select(Area).where(area_filter(current_user, Area.id)).order_by(Area.path)))


def requested_area(source) -> Area:
    """The area named by `area` (an id) if it is in the user's scope, else a 400 naming `area`."""
    values = source.getlist("area")
    area_id = parse_int(values[0], 1, 2**63 - 1) if len(values) == 1 else None
    area = None
    if area_id is not None:
        area = db.session.scalar(select(Area).where(Area.id == area_id, area_filter(current_user, Area.id)))
    if area is None:
        raise ValidationError({"area": _l("Choose an area within your own.")})
    return area


def requested_period(source) -> reports.Period:
    return reports.parse_period(source.get("period"), source.get("start"), source.get("end"))


def load_report(report_id: int) -> SummaryReport:
    """A saved report of an area in the user's scope, else NotFound."""
    report = db.session.scalar(select(SummaryReport).where(
        SummaryReport.id == report_id, area_filter(current_user, SummaryReport.area_id)))
    if report is None:
        raise NotFound("not found")
    return report


# --------------------------------------------------------------------------- words and charts


def category_names(figures: dict) -> dict[str, str]:
    en = current_language() == "en"
    names = {c["code"]: c["name_en"] if en else c["name_zh"] for c in figures["categories"]}
    for c in figures["short"]["by_category"]:
        names.setdefault(c["code"], c["name_en"] if en else c["name_zh"])
    return names


def kind_names() -> dict[str, str]:
    index = 1 if current_language() == "en" else 0
    return {code: names[index] for code, names in KIND_NAMES.items()}


def words(figures: dict) -> dict[str, Any]:
    """The labels a report's page, PDF and spreadsheet use, in the reader's language."""
    return {
        "kinds": kind_names(), "categories": category_names(figures),
        "priorities": {p: str(label(p)) for p in reports.PRIORITIES},
        "types": {t["type"]: str(label(t["type"])) for t in figures["organizations"]["by_type"]},
        "reasons": {k: str(v) for k, v in REASON_WORDS.items()},
        "declines": {k: str(v) for k, v in DECLINE_WORDS.items()},
        "en": current_language() == "en",
    }


def draw_charts(figures: dict, w: dict) -> dict[str, str]:
    """Every chart of the report as a data: URI (SVG)."""
    return {
        "coverage": charts.coverage_by_priority(figures, w["priorities"]),
        "kinds": charts.services_by_kind(figures, w["kinds"]),
        "categories": charts.hours_by_category(figures, w["categories"]),
        "map": charts.unmet_map(figures),
        "organizations": charts.organizations_participation(figures, w["types"]),
    }


def saved_at(report: SummaryReport) -> str:
    """When a version was saved, in the service's local time."""
    from datetime import UTC
    from zoneinfo import ZoneInfo

    from matcher.clock import DEFAULT_TIMEZONE
    from matcher.settings import setting

    zone = ZoneInfo(setting("TIMEZONE", DEFAULT_TIMEZONE))
    return report.created_at.replace(tzinfo=UTC).astimezone(zone).strftime("%Y-%m-%d %H:%M")


def title_of(figures: dict, period: reports.Period) -> str:
    return _("%(area)s Volunteer Service Summary Report, %(period)s", area=figures["area"]["name"],
             period=period.label)


# --------------------------------------------------------------------------- pages


@bp.route("/reports")
@roles_required(Role.ADMIN, Role.COORDINATOR)
def index():
    """Choose an area and a period; the saved versions within one's scope, newest first."""
    saved = db.session.scalars(
        select(SummaryReport).where(area_filter(current_user, SummaryReport.area_id))
        .order_by(SummaryReport.created_at.desc(), SummaryReport.id.desc()).limit(MAX_LISTED)).all()
    areas = areas_in_scope()
    return render_template("reports/index.html", areas=areas, periods=reports.period_choices(), saved=saved,
                           own_area=current_user.area_id, period_of=reports.period_of,
                           saved_at=saved_at)


@bp.route("/reports/preview", methods=["GET", "POST"])
@roles_required(Role.ADMIN, Role.COORDINATOR)
def preview():
    """The live report of an area and period; POST saves it as a numbered version with the edited
    suggestions and the typical cases picked."""
    source = request.form if request.method == "POST" else request.args
    area = requested_area(source)
    period = requested_period(source)
    if request.method == "POST":
        cases = request.form.getlist("cases")
        notes = {key: request.form.get(f"note-{key}", "") for key in cases}
        report = reports.save_report(area, period, suggestions=request.form.get("suggestions", ""), cases=cases,
                                     notes=notes, user=current_user)
        db.session.commit()
        return redirect(url_for("reports.view", report_id=report.id))
    figures = reports.report_figures(area, period.start, period.end, period.kind)
    w = words(figures)
    return render_template("reports/report.html", figures=figures, w=w, charts=draw_charts(figures, w),
                           title=title_of(figures, period), period=period, report=None, pdf=False,
                           suggestions=reports.draft_suggestions(figures),
                           candidates=reports.case_candidates(figures), picked=[], errors={}, saved_at="")


@bp.route("/reports/<int:report_id>")
@roles_required(Role.ADMIN, Role.COORDINATOR)
def view(report_id: int):
    """A saved version as it was sent: its frozen figures, suggestions and typical cases."""
    report = load_report(report_id)
    figures = report.figures
    w = words(figures)
    period = reports.period_of(report)
    return render_template("reports/report.html", figures=figures, w=w, charts=draw_charts(figures, w),
                           title=title_of(figures, period), period=period, report=report, pdf=False,
                           suggestions=report.suggestions, candidates={}, picked=report.cases, errors={},
                           saved_at=saved_at(report))


def render_pdf(html: str, printed: str) -> bytes:
    """The report's HTML as PDF bytes: only data: URIs (the charts) are read, no URL is ever opened."""
    from .printouts import page_margins_css, pdf_engine

    weasyprint, _problem = pdf_engine()
    from weasyprint.text.fonts import FontConfiguration

    fonts = FontConfiguration()
    fetcher = weasyprint.urls.URLFetcher(allowed_protocols=("data",))  # the inline charts; nothing fetched
    sheets = [weasyprint.CSS(string=STYLESHEET.read_text(encoding="utf-8"), font_config=fonts, url_fetcher=fetcher),
              weasyprint.CSS(string=page_margins_css(printed), font_config=fonts, url_fetcher=fetcher)]
    return weasyprint.HTML(string=html, base_url=None, url_fetcher=fetcher).write_pdf(stylesheets=sheets,
                                                                                       font_config=fonts)


@bp.route("/reports/<int:report_id>.pdf")
@roles_required(Role.ADMIN, Role.COORDINATOR)
def pdf(report_id: int):
    """A saved version as a PDF (A4, the same charts); audited."""
    from .printouts import pdf_engine

    report = load_report(report_id)
    weasyprint, problem = pdf_engine()
    if weasyprint is None:
        current_app.logger.warning("no PDF of the report: WeasyPrint cannot load (%s)", problem)
        return render_error(503, _("The PDF cannot be made on this server: its PDF renderer (WeasyPrint with "
                                   "the Pango library) is not installed. The report's page and spreadsheet still "
                                   "work."))
    figures = report.figures
    w = words(figures)
    period = reports.period_of(report)
    printed = _("Report %(number)s, printed %(t)s", number=report.number, t=local_now().strftime("%Y-%m-%d %H:%M"))
    html = render_template("reports/document.html", figures=figures, w=w, charts=draw_charts(figures, w),
                           title=title_of(figures, period), period=period, report=report, pdf=True,
                           suggestions=report.suggestions, candidates={}, picked=report.cases, errors={},
                           saved_at=saved_at(report))
    data = render_pdf(html, printed)
    from .printouts import pdf_response

    record_audit(current_user, "download_report", report, number=report.number, format="pdf")
    db.session.commit()
    return pdf_response(data, f"{figures['area']['name']}-{report.number}.pdf", "linli-report.pdf")


@bp.route("/reports/<int:report_id>.xlsx")
@roles_required(Role.ADMIN, Role.COORDINATOR)
def xlsx(report_id: int):
    """A saved version's tables (every chart's numbers and more) as an XLSX workbook; audited."""
    from matcher.spreadsheets import write_xlsx

    report = load_report(report_id)
    data = write_xlsx(report_sheets(report))
    record_audit(current_user, "download_report", report, number=report.number, format="xlsx")
    db.session.commit()
    return download(data, f"{report.figures['area']['name']}-{report.number}.xlsx", "xlsx")


# --------------------------------------------------------------------------- the workbook


def _pct(value) -> float | str:
    return round(value * 100, 1) if value is not None else ""


def report_sheets(report: SummaryReport) -> list[tuple[str, list[str], list[list]]]:
    """The workbook's sheets: (title, columns, rows), from the saved figures."""
    f = report.figures
    w = words(f)
    t = f["totals"]
    period = reports.period_of(report)
    metrics = [("services", _("Services")), ("visits", _("Visits (person-times)")), ("hours", _("Hours")),
               ("volunteers", _("Volunteers active")), ("residents", _("Residents served")),
               ("elderly", _("Elderly residents served")), ("children", _("Children served")),
               ("organizations", _("Organizations taking part"))]
    prev, last = f["compare"]["previous"], f["compare"]["last_year"]
    summary = [[_("Report"), report.number, "", "", "", ""],
               [_("Area"), f["area"]["name"], "", "", "", ""],
               [_("Period"), f"{period.start.isoformat()} – {period.end.isoformat()}", "", "", "", ""],
               [_("Version"), report.version, "", "", "", ""]]
    summary += [[name, t[key], prev[key], _pct(prev["change"][key]), last[key], _pct(last["change"][key])]
                for key, name in metrics]
    sheets = [
        (_("Summary"), [_("Figure"), _("This period"), _("Previous period"), _("Change (%)"),
                        _("Same period last year"), _("Change on last year (%)")], summary),
        (_("By kind of work"), [_("Kind of work"), _("Services"), _("Visits"), _("Hours"), _("Volunteers")],
         [[w["kinds"].get(k["code"], k["code"]), k["services"], k["visits"], k["hours"], k["volunteers"]]
          for k in f["kinds"]]),
        (_("By category"), [_("Category"), _("Kind of work"), _("Services"), _("Visits"), _("Hours"), _("Volunteers")],
         [[w["categories"].get(c["code"], c["code"]), w["kinds"].get(c["kind"], c["kind"]), c["services"],
           c["visits"], c["hours"], c["volunteers"]] for c in f["categories"]]),
        (_("Organizations"), [_("Type"), _("In the area"), _("Took part")],
         [[w["types"].get(r["type"], r["type"]), r["in_area"], r["took_part"]] for r in f["organizations"]["by_type"]]
         + [[_("Registered or filed"), f["organizations"]["registered"]["in_area"],
             f["organizations"]["registered"]["took_part"]],
            [_("All"), f["organizations"]["in_area"], f["organizations"]["took_part"]]]),
        (_("Streets and townships"), [_("Street or township"), _("Communities"), _("Services"), _("Visits"),
                                      _("Hours"), _("Places asked"), _("Places filled"), _("Places short")],
         [[r["name"], r["communities"], r["services"], r["visits"], r["hours"], r["positions"], r["filled"],
           r["short"]] for r in f["townships"]]),
        (_("Communities"), [_("Community"), _("Street or township"), _("Latitude"), _("Longitude"), _("Services"),
                            _("Visits"), _("Hours"), _("Volunteers"), _("Places asked"), _("Places filled"),
                            _("Places short"), _("Organizations serving")],
         [[c["name"], c["township"], c["lat"], c["lon"], c["services"], c["visits"], c["hours"], c["volunteers"],
           c["positions"], c["filled"], c["short"], c["organizations"]] for c in f["communities"]]),
        (_("Practice stations"), [_("Station"), _("Community"), _("Services"), _("Visits"), _("Hours")],
         [[s["name"], s["community"], s["services"], s["visits"], s["hours"]] for s in f["stations"]]),
        (_("Demands met by priority"), [_("Priority"), _("Services asked"), _("Places asked"), _("Places filled"),
                                        _("Services fully staffed")],
         [[w["priorities"].get(p["priority"], p["priority"]), p["occurrences"], p["positions"], p["filled"],
           p["met"]] for p in f["priorities"]]),
        (_("Coverage by week"), [_("Week beginning"), _("Priority"), _("Places asked"), _("Places filled"),
                                 _("Filled (%)")],
         [[r["week"], w["priorities"].get(r["priority"], r["priority"]), r["positions"], r["filled"],
           _pct(r["filled"] / r["positions"]) if r["positions"] else ""] for r in f["weeks"]]),
        (_("Staffing and ratings"), [_("Figure"), _("Value")],
         [[_("Services staffed"), f["staffing"]["staffed"]],
          [_("Mean hours from posting to staffing"), f["staffing"]["mean_hours"] or ""],
          [_("Staffed within a day"), f["staffing"]["within_day"]],
          [_("Staffed within three days"), f["staffing"]["within_3_days"]],
          [_("Staffed within a week"), f["staffing"]["within_week"]],
          [_("Ratings"), f["ratings"]["count"]], [_("Mean rating"), f["ratings"]["mean"] or ""],
          *[[_("Rated %(n)s stars", n=k), v] for k, v in f["ratings"]["dist"].items()],
          [_("Elderly residents visited twice or more"), f["continuity"]["residents"]],
          [_("Always by the same volunteer"), f["continuity"]["single_volunteer"]],
          [_("Visits by their usual volunteer (%)"), _pct(f["continuity"]["share"])]]),
        (_("Leading organizations"), [_("Organization"), _("Services"), _("Visits"), _("Hours"), _("Volunteers"),
                                      _("Mean rating")],
         [[o["name"], o["services"], o["visits"], o["hours"], o["volunteers"], o["rating"] or ""]
          for o in f["leading_organizations"]]),
        (_("Leading volunteers"), [_("Volunteer"), _("Visits"), _("Hours"), _("Residents"), _("Mean rating")],
         [[v["name"], v["visits"], v["hours"], v["residents"], v["rating"] or ""] for v in f["leading_volunteers"]]),
        (_("Short by reason"), [_("Reason"), _("Services short"), _("Places short")],
         [[w["reasons"].get(r["reason"], r["reason"]), r["occurrences"], r["positions"]]
          for r in f["short"]["by_reason"]]),
        (_("Short by category"), [_("Category"), _("Services short"), _("Places short")],
         [[w["categories"].get(c["code"], c["code"]), c["occurrences"], c["positions"]]
          for c in f["short"]["by_category"]]),
        (_("Volunteers to recruit"), [_("Street or township"), _("Category"), _("Skills"), _("Places short"),
                                      _("Volunteers to recruit")],
         [[r["township"], w["categories"].get(r["code"], r["code"]),
           "、".join(r["skills_en"] if w["en"] else r["skills_zh"]), r["positions"], r["volunteers"]]
          for r in f["short"]["recruit"]]),
        (_("Few organizations"), [_("Community"), _("Street or township"), _("Organizations serving")],
         [[c["name"], c["township"], c["organizations"]] for c in f["few_organizations"]]),
        (_("Volunteer load"), [_("Figure"), _("Value")],
         [[_("Volunteers living in the area"), f["volunteers"]["in_area"]], [_("Served"), f["volunteers"]["active"]],
          [_("Served no one"), f["volunteers"]["idle"]], [_("Over their preferred time"), f["volunteers"]["overloaded"]],
          [_("Offers declined"), f["declines"]["declined"]],
          *[[_("Declined: %(why)s", why=w["declines"].get(k, k)), n] for k, n in f["declines"]["by_kind"].items()],
          [_("Handed back"), f["declines"]["handbacks"]], [_("No-shows"), f["declines"]["no_show"]]]),
        (_("Low ratings"), [_("Date"), _("Category"), _("Community"), _("Organization"), _("Rating")],
         [[r["date"], r["category_en"] if w["en"] else r["category_zh"], r["community"], r["organization"],
           r["rating"]] for r in f["low_ratings"]]),
        (_("Suggestions and cases"), [_("Item"), _("Text")],
         [[_("Suggestions"), report.suggestions]]
         + [[c["name"], c.get("note", "")] for c in report.cases]),
    ]
    return [(title.replace("/", " ")[:31], cols, rows) for title, cols, rows in sheets]
