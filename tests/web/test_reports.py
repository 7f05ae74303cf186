"""The summary report's pages (web/reports.py): who may report on what, bad input, saving numbered versions
whose figures stay as they were, the PDF read back with pypdfium2 (the four section titles, charts drawn,
pages not blank) and the XLSX's totals against the database. The world's March 2026 is built by
tests/matcher/test_reports.py's `march` fixture.
"""

from __future__ import annotations

import base64
import io
import re
from datetime import date, datetime
from decimal import Decimal

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from matcher.db import db as _db
from matcher.models import Assignment, AssignmentStatus, AuditEntry, DemandOccurrence, SummaryReport
from tests.matcher import test_reports as built
from web.printouts import pdf_engine

service = built.service


@pytest.fixture
def march(world):
    """The world's March 2026, as tests/matcher/test_reports.py builds it."""
    return built.build_march(_db, world)

_engine, _problem = pdf_engine()
needs_pdf = pytest.mark.skipif(_engine is None, reason=f"WeasyPrint cannot load here, no PDF to read: {_problem}")
SECTIONS = ("开展情况", "进展成效", "存在问题", "意见建议")


def preview(client, area, **args):
    return client.get("/reports/preview", query_string={"area": area.id, **args})


def save(client, area, period="2026-03", **form):
    return client.post("/reports/preview", data={"area": area.id, "period": period, **form})


def march_hours(world, area_key="district") -> tuple[Decimal, int]:
    """Hours and completed assignments in March 2026 in an area, straight from the database."""
    from matcher.models import Area, Demand

    area = world["areas"][area_key]
    row = _db.session.execute(
        select(func.sum(Assignment.credited_hours), func.count(Assignment.id))
        .join(DemandOccurrence, DemandOccurrence.id == Assignment.occurrence_id)
        .join(Demand, Demand.id == DemandOccurrence.demand_id).join(Area, Area.id == Demand.community_id)
        .where(Assignment.status == AssignmentStatus.COMPLETED, Area.path.startswith(area.path),
               DemandOccurrence.starts_at >= datetime(2026, 3, 1), DemandOccurrence.starts_at < datetime(2026, 4, 1)))
    return row.one()


def test_coordinators_report_on_their_area_and_below_and_others_may_not(client, auth, world, march):
    areas = world["areas"]
    assert client.get("/reports").status_code == 302  # signed out: to the login
    auth.login("coord_a")
    assert client.get("/reports").status_code == 200
    assert preview(client, areas["town_a"], period="2026-03").status_code == 200
    assert preview(client, areas["a1"], period="2026-03").status_code == 200
    for other in (areas["town_b"], areas["district"], areas["b1"]):
        response = preview(client, other, period="2026-03")
        assert response.status_code == 400 and "area" in response.get_data(as_text=True)
    auth.logout()
    auth.login("admin")
    assert preview(client, areas["b1"], period="2026-Q1").status_code == 200
    auth.logout()
    for user in ("worker_a1", "leader_a", "vol_a"):
        auth.login(user)
        assert client.get("/reports").status_code == 403
        assert preview(client, areas["a1"], period="2026-03").status_code == 403
        auth.logout()


@pytest.mark.parametrize(("args", "field"), [
    ({"period": "2026-13"}, "period"), ({"period": "next quarter"}, "period"), ({"period": "2026-Q9"}, "period"),
    ({"start": "2026-03-05", "end": "2026-03-01"}, "end"), ({"start": "2023-01-01", "end": "2026-03-01"}, "end"),
    ({"start": "2026-02-30", "end": "2026-03-01"}, "start"), ({}, "start"),
])
def test_bad_periods_are_a_400_naming_the_field(client, auth, world, args, field):
    auth.login("coord")
    response = preview(client, world["areas"]["district"], **args)
    assert response.status_code == 400 and field in response.get_data(as_text=True)


@pytest.mark.parametrize("area", ["abc", "0", "99999999", "1 OR 1=1", "١"])
def test_a_bad_area_is_a_400_naming_it(client, auth, world, area):
    auth.login("coord")
    response = client.get("/reports/preview", query_string={"area": area, "period": "2026-03"})
    assert response.status_code == 400 and "area" in response.get_data(as_text=True)


def test_the_page_draws_every_chart_as_an_svg_image_and_holds_no_inline_style(client, auth, world, march):
    auth.login("coord")
    response = preview(client, world["areas"]["district"], period="2026-03")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    for section in SECTIONS:
        assert section in html
    images = re.findall(r'<img src="data:image/svg\+xml;base64,([^"]+)"', html)
    assert len(images) == 5
    svg = base64.b64decode(images[0]).decode()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    assert "<style" not in html.split("<body", 1)[1] and " style=" not in html  # the CSP allows neither
    assert 'name="suggestions"' in html and "石桥村" in html  # the draft names the community with few organizations
    assert f'value="org-{world["orgs"]["a"].id}"' in html  # a typical case to pick


def test_saving_makes_numbered_versions_whose_figures_stay_as_they_were(client, auth, world, march):
    district = world["areas"]["district"]
    auth.login("coord")
    key = f"org-{world['orgs']['a'].id}"
    response = save(client, district, suggestions="一、在南山镇招募调解志愿者2名。", cases=[key],
                    **{f"note-{key}": "每周上门看望张大爷"})
    assert response.status_code == 302
    report = _db.session.scalar(select(SummaryReport))
    assert response.headers["Location"].endswith(f"/reports/{report.id}")
    assert (report.version, report.figures["totals"]["services"], report.created_by_id) == (
        1, 5, world["users"]["coord"].id)
    assert report.suggestions == "一、在南山镇招募调解志愿者2名。" and report.cases[0]["note"] == "每周上门看望张大爷"
    entry = _db.session.scalar(select(AuditEntry).where(AuditEntry.action == "save_report"))
    assert (entry.object_type, entry.object_id) == ("summaryreport", report.id)
    # New services in March after saving: the saved version still shows what was sent.
    service(_db, world, "a1", "elderly_care", date(2026, 3, 30), volunteers=[world["volunteers"]["a"]], hours=3.0)
    _db.session.commit()
    page = client.get(f"/reports/{report.id}").get_data(as_text=True)
    assert '<strong id="total-services">5</strong>' in page and '<strong id="total-hours">8.0</strong>' in page
    assert "一、在南山镇招募调解志愿者2名。" in page and "每周上门看望张大爷" in page
    live = preview(client, district, period="2026-03").get_data(as_text=True)
    assert '<strong id="total-services">6</strong>' in live and '<strong id="total-hours">11.0</strong>' in live
    assert save(client, district, suggestions="第二版").status_code == 302
    versions = _db.session.scalars(select(SummaryReport).order_by(SummaryReport.version)).all()
    assert [(v.version, v.figures["totals"]["services"]) for v in versions] == [(1, 5), (2, 6)]
    assert versions[0].number != versions[1].number
    assert f"/reports/{versions[1].id}" in client.get("/reports").get_data(as_text=True)


def test_saving_refuses_what_the_form_never_offered(client, auth, world, march):
    auth.login("coord")
    response = save(client, world["areas"]["district"], suggestions="x", cases=["vol-99999"])
    assert response.status_code == 400 and "cases" in response.get_data(as_text=True)
    response = save(client, world["areas"]["district"], suggestions="x" * 5001)
    assert response.status_code == 400 and "suggestions" in response.get_data(as_text=True)
    assert _db.session.scalar(select(func.count(SummaryReport.id))) == 0


def test_a_saved_report_outside_ones_scope_is_not_found(client, auth, world, march):
    auth.login("coord_b")
    assert save(client, world["areas"]["town_b"]).status_code == 302
    report = _db.session.scalar(select(SummaryReport))
    auth.logout()
    auth.login("coord_a")
    for suffix in ("", ".pdf", ".xlsx"):
        assert client.get(f"/reports/{report.id}{suffix}").status_code == 404
    assert f"/reports/{report.id}" not in client.get("/reports").get_data(as_text=True)
    auth.logout()
    auth.login("coord")
    assert client.get(f"/reports/{report.id}").status_code == 200
    assert client.get("/reports/999999").status_code == 404
    auth.logout()
    auth.login("worker_b1")
    assert client.get(f"/reports/{report.id}").status_code == 403


def pdf_pages(data: bytes):
    pdfium = pytest.importorskip("pypdfium2")
    return pdfium.PdfDocument(data)


@needs_pdf
def test_the_pdf_has_the_four_sections_and_the_charts_and_is_audited(client, auth, world, march, monkeypatch):
    import urllib.request

    auth.login("coord")
    save(client, world["areas"]["district"], suggestions="建议在南山镇增设调解队。")
    report = _db.session.scalar(select(SummaryReport))
    opened = []
    real_open = urllib.request.OpenerDirector.open

    def only_data(self, url, *args, **kwargs):
        target = url if isinstance(url, str) else url.full_url
        opened.append(target[:5])
        assert target.startswith("data:"), f"the renderer opened {target[:60]}"
        return real_open(self, url, *args, **kwargs)

    monkeypatch.setattr(urllib.request.OpenerDirector, "open", only_data)
    response = client.get(f"/reports/{report.id}.pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    document = pdf_pages(response.data)
    text = re.sub(r"\s+", "", "".join(document[i].get_textpage().get_text_range() for i in range(len(document))))
    for section in SECTIONS:
        assert section in text
    assert "建议在南山镇增设调解队。" in text and "青溪区" in text and report.number in text
    # The charts: drawn as vector paths (bars, axes, points; their words are text), and ink on every page.
    import pypdfium2.raw as raw

    paths = 0
    for i in range(len(document)):
        page = document[i]
        paths += sum(1 for obj in page.get_objects(max_depth=5) if obj.type == raw.FPDF_PAGEOBJ_PATH)
        pixels = page.render(scale=0.6).to_numpy()
        ink = (pixels[:, :, :3].min(axis=2) < 160).mean()
        assert ink > 0.005, f"page {i + 1} is (nearly) blank"
    assert paths > 200
    document.close()
    assert opened and set(opened) == {"data:"}
    entry = _db.session.scalar(select(AuditEntry).where(AuditEntry.action == "download_report"))
    assert entry.details["format"] == "pdf" and entry.object_id == report.id


def test_the_xlsx_totals_equal_the_database_s(client, auth, world, march):
    auth.login("coord")
    save(client, world["areas"]["district"], suggestions="招募")
    report = _db.session.scalar(select(SummaryReport))
    response = client.get(f"/reports/{report.id}.xlsx")
    assert response.status_code == 200 and "attachment" in response.headers["Content-Disposition"]
    book = load_workbook(io.BytesIO(response.data), read_only=True)
    sheets = {ws.title: [list(r) for r in ws.iter_rows(values_only=True)] for ws in book.worksheets}
    assert len(sheets) >= 15
    hours, visits = march_hours(world)
    summary = sheets[book.worksheets[0].title]
    values = {row[0]: row[1] for row in summary}
    hours_label = [r[0] for r in summary if r[1] == float(hours)]
    assert hours_label, summary  # the hours row holds the database's sum
    assert float(hours) == 8.0 and visits == 5 and 5 in values.values()
    categories = sheets[book.worksheets[2].title]
    assert sum(r[4] for r in categories[1:]) == pytest.approx(float(hours))  # the category hours add up
    assert sum(r[3] for r in categories[1:]) == visits
    communities = sheets[book.worksheets[5].title]
    assert sum(r[6] for r in communities[1:]) == pytest.approx(float(hours))
    entry = _db.session.scalar(select(AuditEntry).where(AuditEntry.action == "download_report"))
    assert entry.details["format"] == "xlsx"


def test_formulas_in_names_are_inert_in_the_xlsx(client, auth, world, march):
    world["orgs"]["a"].name = "=HYPERLINK(\"http://x\")"
    _db.session.commit()
    auth.login("coord")
    save(client, world["areas"]["district"], suggestions="=1+1")
    report = _db.session.scalar(select(SummaryReport))
    book = load_workbook(io.BytesIO(client.get(f"/reports/{report.id}.xlsx").data))
    cells = [c.value for ws in book.worksheets for row in ws.iter_rows() for c in row if isinstance(c.value, str)]
    assert not any(v.startswith("=") for v in cells)
    assert "'=1+1" in cells
