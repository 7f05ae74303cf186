"""The printable week: a community's or an organization's services of a week as one A4 sheet, the
sheet posted at the practice station (PDF), and the same sheet as a page for a print preview (HTML).

Who prints what: a community worker their own community, an organization leader their own
organization, coordinators and administrators any community or organization in their scope
(`matcher.access`); an id outside it is 404, a role the sheet is not for 403. The rows are the week
pages' own read models (`matcher.weeks.community_week`, `organization_week`) as the published
schedule stands (`weeks.standing_rows`: no draft proposals). The sheet is meant to hang on a wall:
volunteers' phones are masked, and a service at a resident's home shows neither the resident nor the
address. Every PDF is audited (`print_week`).

The PDF is drawn by WeasyPrint in the system's Noto Sans CJK font (Debian's fonts-noto-cjk; nothing is
fetched at run time: the renderer is given no URL it may open). WeasyPrint needs Pango from the
system and takes seconds to import, so it is imported at the first PDF, not at start-up; where it
cannot load, the PDF answers 503 saying why, and the HTML preview still works.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Response, current_app, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from matcher.access import area_filter, load_visible
from matcher.audit import record_audit
from matcher.clock import local_now
from matcher.db import db
from matcher.errors import NotFound
from matcher.models import Area, AreaLevel, LocationKind, Organization, Role
from matcher.weeks import (
    OccurrenceRow,
    community_has_week,
    community_week,
    organization_has_week,
    organization_week,
    standing_rows,
)

from .auth import roles_required
from .community import STATES, requested_week
from .errors import render_error
from .main import this_or_next_week
from .templating import label

bp = Blueprint("printouts", __name__)

STYLESHEET = Path(__file__).parent / "static" / "print.css"


@dataclass
class Sheet:
    """What one printed week shows: whose week, where they are based, and the services by day."""

    name: str
    week: date
    place: str  # the practice station (a community) or the areas served (an organization)
    days: list[tuple[date, list[OccurrenceRow]]]
    for_organization: bool

    @property
    def services(self) -> int:
        return sum(len(rows) for _day, rows in self.days)


@functools.cache
def pdf_engine() -> tuple[Any, str]:
    """WeasyPrint's module (imported once, on first use) and ""; or None and why it cannot load (a
    missing Pango is an OSError from cffi, a missing package an ImportError)."""
    try:
        import weasyprint
    except (ImportError, OSError) as exc:
        return None, f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
    return weasyprint, ""


def css_string(text: str) -> str:
    """`text` as a quoted CSS string (for the page margins' generated content)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\A ") + '"'


def page_margins_css(printed: str) -> str:
    """The @page rule's footer: when printed on the left, "page n of m" (CSS counters) on the right."""
    before, _sep, rest = _("Page %(page)s of %(pages)s", page="\x00", pages="\x01").partition("\x00")
    middle, _sep, after = rest.partition("\x01")
    pages = f"{css_string(before)} counter(page) {css_string(middle)} counter(pages) {css_string(after)}"
    return f"@page {{ @bottom-left {{ content: {css_string(printed)} }} @bottom-right {{ content: {pages} }} }}"


def pdf_response(data: bytes, name: str, fallback: str) -> Response:
    """A PDF answered inline (a phone opens it in its PDF viewer), named `name` in UTF-8 (Chinese) with the
    ASCII `fallback` for clients that do not read the UTF-8 form."""
    response = Response(data, mimetype="application/pdf")
    response.headers["Content-Disposition"] = f"inline; filename={fallback}; filename*=UTF-8''{quote(name)}"
    return response


def render_pdf(html: str, printed: str) -> bytes:
    """The sheet's HTML as PDF bytes (the caller checked `pdf_engine()`); no URL is ever opened."""
    weasyprint, _problem = pdf_engine()
    from weasyprint.text.fonts import FontConfiguration

    fonts = FontConfiguration()
    refuse = weasyprint.urls.URLFetcher(allowed_protocols=())  # every URL refused: nothing fetched at run time
    sheets = [weasyprint.CSS(string=STYLESHEET.read_text(encoding="utf-8"), font_config=fonts, url_fetcher=refuse),
              weasyprint.CSS(string=page_margins_css(printed), font_config=fonts, url_fetcher=refuse)]
    document = weasyprint.HTML(string=html, base_url=None, url_fetcher=refuse)
    return document.write_pdf(stylesheets=sheets, font_config=fonts)


def place_of(row: OccurrenceRow) -> str:
    """Where a service happens, as a wall sheet may say it: a station's name, a point's address; a
    resident's home only as such (no resident, no address)."""
    d = row.occurrence.demand
    if d.location_kind == LocationKind.STATION and d.station is not None:
        return d.station.name
    if d.location_kind == LocationKind.POINT and d.address:
        return d.address
    return label(d.location_kind)


def by_day(rows: list[OccurrenceRow]) -> list[tuple[date, list[OccurrenceRow]]]:
    """The rows grouped by their day, in time order."""
    days: dict[date, list[OccurrenceRow]] = {}
    for row in sorted(rows, key=lambda r: (r.occurrence.starts_at, r.occurrence.id)):
        days.setdefault(row.occurrence.starts_at.date(), []).append(row)
    return list(days.items())


def station_line(community: Area) -> str:
    """The community's practice station (the first of its stations whose name says so, else its first
    station): name and address."""
    stations = community.stations
    station = next((s for s in stations if "实践站" in s.name), stations[0] if stations else None)
    if station is None:
        return ""
    return f"{station.name} · {station.address}" if station.address else station.name


def community_in_scope(area_id: int) -> Area:
    """A village or community the signed-in user's scope holds (a worker: their own), else NotFound."""
    community = db.session.scalar(select(Area).where(
        Area.id == area_id, Area.level == AreaLevel.COMMUNITY, area_filter(current_user, Area.id)))
    if community is None:
        raise NotFound("not found")
    return community


def answer(sheet: Sheet, fmt: str, audited: Any, **audit_details: Any):
    """The sheet as a PDF (audited) or as the preview page."""
    printed = _("Printed %(t)s", t=local_now().strftime("%Y-%m-%d %H:%M"))
    title = _("%(name)s Volunteer Service Week Schedule %(start)s to %(end)s", name=sheet.name,
              start=sheet.week.isoformat(), end=(sheet.week + timedelta(days=6)).isoformat())
    context = dict(sheet=sheet, title=title, printed=printed, states=STATES, place_of=place_of, fmt=fmt)
    if fmt == "html":
        pdf_url = url_for(request.endpoint, **{**request.view_args, "fmt": "pdf"}, week=sheet.week.isoformat())
        return render_template("print/week.html", pdf=False, pdf_url=pdf_url, **context)
    weasyprint, problem = pdf_engine()
    if weasyprint is None:
        current_app.logger.warning("no PDF of the week: WeasyPrint cannot load (%s)", problem)
        return render_error(503, _("The PDF cannot be made on this server: its PDF renderer (WeasyPrint with "
                                   "the Pango library) is not installed. The print preview still works; an "
                                   "administrator can install Pango (Debian: libpango-1.0-0 libpangoft2-1.0-0)."))
    data = render_pdf(render_template("print/week.html", pdf=True, **context), printed)
    record_audit(current_user, "print_week", audited, week=sheet.week.isoformat(), rows=sheet.services,
                 format="pdf", **audit_details)
    db.session.commit()
    return pdf_response(data, f"{sheet.name}-{sheet.week.isoformat()}.pdf", "linli-week.pdf")


@bp.route("/communities/<int:area_id>/week.<any(pdf, html):fmt>")
@roles_required(Role.ADMIN, Role.COORDINATOR, Role.WORKER)
def community_sheet(area_id: int, fmt: str):
    """A community's week as the sheet for its practice station (?week=YYYY-MM-DD, else as its page)."""
    community = community_in_scope(area_id)
    week = requested_week(lambda: this_or_next_week(lambda w: community_has_week(community, w)))
    sheet = Sheet(community.name, week, station_line(community), by_day(standing_rows(community_week(community, week))),
                  for_organization=False)
    return answer(sheet, fmt, community, area=community.id)


@bp.route("/organizations/<int:organization_id>/week.<any(pdf, html):fmt>")
@roles_required(Role.ADMIN, Role.COORDINATOR, Role.ORG_LEADER)
def organization_sheet(organization_id: int, fmt: str):
    """The services dispatched to an organization in a week, as one sheet (?week=YYYY-MM-DD)."""
    org = load_visible(Organization, organization_id, current_user)
    week = requested_week(lambda: this_or_next_week(lambda w: organization_has_week(org, w)))
    served = "、".join(a.name for a in org.areas) or org.home_area.name
    sheet = Sheet(org.name, week, _("Serving %(areas)s", areas=served),
                  by_day(standing_rows(organization_week(org, week))), for_organization=True)
    return answer(sheet, fmt, org, organization=org.id)
