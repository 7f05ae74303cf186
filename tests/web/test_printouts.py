"""The printable week (web/printouts.py): a PDF of Chinese text that renders, read back with pypdfium2.

The PDF's text holds the title, the community and its station, every published service with its
volunteers (phones masked) and nothing of drafts, residents or home addresses; page 1 drawn to a bitmap
is not blank and its Chinese is drawn in the embedded Noto Sans CJK font. Who may print what: a worker
their own community (another is 404), a leader their own organization, coordinators within their area;
a volunteer 403; a bad week 400 naming it; every PDF audited. Where WeasyPrint cannot load (no Pango)
the PDF answers 503 with a message and these rendering tests skip, saying why.
"""

from __future__ import annotations

import ctypes
import re
from datetime import timedelta

import pytest
from flask_babel import force_locale, gettext
from sqlalchemy import select

from matcher.db import db as _db
from matcher.demands import create_demand
from matcher.models import (
    Assignment,
    AssignmentStatus,
    AuditEntry,
    Category,
    Schedule,
    ScheduleStatus,
    utcnow,
)
from web.printouts import pdf_engine

pdfium = pytest.importorskip("pypdfium2", reason="pypdfium2 (requirements-dev.txt) reads the PDFs back")
pdfium_raw = pytest.importorskip("pypdfium2.raw")

_engine, _problem = pdf_engine()
needs_pdf = pytest.mark.skipif(_engine is None, reason=f"WeasyPrint cannot load here, no PDF to read: {_problem}")


def squeeze(text: str) -> str:
    """Text without any whitespace (a PDF's text breaks lines and spaces where the layout does)."""
    return re.sub(r"\s+", "", text)


def pdf_text(data: bytes) -> tuple[str, int]:
    """All pages' text, and the number of pages."""
    document = pdfium.PdfDocument(data)
    try:
        return "\n".join(document[i].get_textpage().get_text_range() for i in range(len(document))), len(document)
    finally:
        document.close()


@pytest.fixture
def week(world, next_monday):
    """A published week of 桂花社区: the Monday and Thursday home visits (accepted, offered), a film night
    at the station wanting two with one offered, and a draft proposal that must not print."""
    users, vols = world["users"], world["volunteers"]
    film = create_demand({"category": "culture_sports", "title": "露天电影放映", "location_kind": "station",
                          "station": world["stations"]["C1"].id, "date": (next_monday + timedelta(days=2)).isoformat(),
                          "start": "19:00", "end": "21:00", "people": "2", "min_people": "1"},
                         community=world["areas"]["a1"], user=users["worker_a1"])
    draft = create_demand({"category": "culture_sports", "title": "书法角", "location_kind": "station",
                           "station": world["stations"]["C1"].id, "date": (next_monday + timedelta(days=4)).isoformat(),
                           "start": "15:00", "end": "16:00"}, community=world["areas"]["a1"], user=users["worker_a1"])
    monday, thursday = world["demands"]["a1"].occurrences[:2]
    for occ in (monday, thursday, film.occurrences[0]):
        occ.responsible_organization_id = world["orgs"]["a"].id  # dispatched to 东城助老服务队
    schedule = Schedule(area=world["areas"]["town_a"], week_start=next_monday, status=ScheduleStatus.PUBLISHED,
                        published_at=utcnow())
    _db.session.add(schedule)
    _db.session.flush()
    now = utcnow()
    _db.session.add_all([
        Assignment(schedule_id=schedule.id, occurrence_id=monday.id, volunteer_id=vols["a"].id,
                   status=AssignmentStatus.ACCEPTED, offered_at=now, responded_at=now),
        Assignment(schedule_id=schedule.id, occurrence_id=thursday.id, volunteer_id=vols["b"].id,
                   status=AssignmentStatus.OFFERED, offered_at=now),
        Assignment(schedule_id=schedule.id, occurrence_id=film.occurrences[0].id, volunteer_id=vols["a"].id,
                   status=AssignmentStatus.OFFERED, offered_at=now),
        Assignment(schedule_id=schedule.id, occurrence_id=draft.occurrences[0].id, volunteer_id=vols["b"].id,
                   status=AssignmentStatus.PROPOSED),
    ])
    _db.session.commit()
    return {"monday": monday, "thursday": thursday, "film": film.occurrences[0], "draft": draft.occurrences[0]}


def community_pdf(client, world, next_monday, area="a1"):
    return client.get(f"/communities/{world['areas'][area].id}/week.pdf", query_string={"week": next_monday.isoformat()})


def sheet_title(app, name: str, monday) -> str:
    """The title as the Chinese interface words it (the catalogue's translation, or the English until then)."""
    with app.test_request_context(), force_locale("zh_CN"):
        return gettext("%(name)s Volunteer Service Week Schedule %(start)s to %(end)s", name=name,
                       start=monday.isoformat(), end=(monday + timedelta(days=6)).isoformat())


@needs_pdf
def test_the_community_sheet_is_a_pdf_of_its_published_services(app, client, auth, world, week, next_monday):
    auth.login("worker_a1")
    response = community_pdf(client, world, next_monday)
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.headers["Content-Disposition"].startswith("inline;")
    assert "filename*=UTF-8''" in response.headers["Content-Disposition"]
    text, pages = pdf_text(response.data)
    flat = squeeze(text)
    assert pages == 1
    assert squeeze(sheet_title(app, "桂花社区", next_monday)) in flat
    assert "桂花社区新时代文明实践站·桂花社区活动中心" in flat  # the practice station, named and addressed
    elderly = _db.session.scalar(select(Category).where(Category.code == "elderly_care")).name_zh
    assert flat.count(elderly) == 2 and "露天电影放映" in flat
    assert "李秀英138****5678" in flat and "王强139****4321" in flat  # names with phones masked
    assert "13812345678" not in flat and "13987654321" not in flat
    # A wall sheet: the resident and their home address stay off it; a draft proposal is not printed.
    assert "张大爷" not in flat and "3栋2单元" not in flat and "书法角" in flat
    assert flat.count("王强") == 1
    for day in (next_monday, next_monday + timedelta(days=2), next_monday + timedelta(days=3)):
        assert day.strftime("%m-%d") in flat
    assert "周一" in flat and "周四" in flat
    assert "09:00–10:30" in flat and "19:00–21:00" in flat
    with app.test_request_context(), force_locale("zh_CN"):
        footer = squeeze(gettext("Page %(page)s of %(pages)s", page=1, pages=1))
        more = squeeze(gettext("%(n)d more needed", n=1))
    assert footer in flat and more in flat  # the page counters, and the film night still short of one


@needs_pdf
def test_a_page_renders_to_pixels_with_chinese_in_the_noto_cjk_font(client, auth, world, week, next_monday):
    auth.login("worker_a1")
    data = community_pdf(client, world, next_monday).data
    document = pdfium.PdfDocument(data)
    page = document[0]
    width, height = page.get_size()
    assert width > height  # A4 landscape
    scale = 1.5
    pixels = page.render(scale=scale).to_numpy()
    ink = (pixels[:, :, :3].min(axis=2) < 160)
    assert ink.mean() > 0.01, "the page is (nearly) blank"
    textpage = page.get_textpage()
    text = textpage.get_text_range()
    index = text.index("李秀英")
    # The glyph is drawn in the embedded Noto Sans CJK font, and there is ink where it stands.
    size = pdfium_raw.FPDFText_GetFontInfo(textpage, index, None, 0, None)
    name = ctypes.create_string_buffer(size)
    pdfium_raw.FPDFText_GetFontInfo(textpage, index, name, size, None)
    assert re.search(r"Noto.?Sans.?CJK", name.value.decode()), name.value
    left, bottom, right, top = textpage.get_charbox(index)
    box = ink[int((height - top) * scale):int((height - bottom) * scale) + 1, int(left * scale):int(right * scale) + 1]
    assert box.mean() > 0.05, "no ink where the Chinese name stands"
    # Every service has its row: one line of ink per service at least (4 rows, the header and the title).
    rows_with_ink = ink.any(axis=1)
    bands = int(rows_with_ink[0]) + int((rows_with_ink[1:] & ~rows_with_ink[:-1]).sum())
    assert bands >= 6
    textpage.close()
    page.close()
    document.close()


@needs_pdf
def test_the_organization_sheet_shows_the_services_sent_to_it(app, client, auth, world, week, next_monday):
    auth.login("leader_a")
    org = world["orgs"]["a"]
    response = client.get(f"/organizations/{org.id}/week.pdf", query_string={"week": next_monday.isoformat()})
    assert response.status_code == 200
    flat = squeeze(pdf_text(response.data)[0])
    assert squeeze(sheet_title(app, "东城助老服务队", next_monday)) in flat
    assert "桂花社区" in flat and "李秀英138****5678" in flat and "露天电影放映" in flat
    assert "书法角" not in flat  # not dispatched to the organization
    entry = _db.session.scalar(select(AuditEntry).where(AuditEntry.action == "print_week"))
    assert (entry.object_type, entry.object_id) == ("organization", org.id)


@needs_pdf
def test_every_pdf_is_audited_and_coordinators_print_within_their_area(client, auth, world, week, next_monday):
    auth.login("coord_a")
    assert community_pdf(client, world, next_monday).status_code == 200
    entry = _db.session.scalar(select(AuditEntry).where(AuditEntry.action == "print_week"))
    assert entry.user_id == world["users"]["coord_a"].id
    assert (entry.object_type, entry.object_id) == ("area", world["areas"]["a1"].id)
    assert entry.details["week"] == next_monday.isoformat() and entry.details["rows"] == 4
    assert community_pdf(client, world, next_monday, area="b1").status_code == 404  # 南山镇 is not theirs
    auth.logout()
    auth.login("admin")
    assert community_pdf(client, world, next_monday, area="b1").status_code == 200


def test_each_role_prints_only_its_own(client, auth, world, next_monday):
    org_a, org_b = world["orgs"]["a"].id, world["orgs"]["b"].id
    a2 = world["areas"]["a2"].id
    auth.login("worker_a1")
    assert client.get(f"/communities/{a2}/week.html").status_code == 404
    assert community_pdf(client, world, next_monday, area="b1").status_code == 404
    assert client.get(f"/organizations/{org_a}/week.pdf").status_code == 403
    town = world["areas"]["town_a"].id  # a township is no community, even within scope
    auth.logout()
    auth.login("coord_a")
    assert client.get(f"/communities/{town}/week.html").status_code == 404
    assert client.get(f"/organizations/{org_b}/week.html").status_code == 404
    auth.logout()
    auth.login("leader_a")
    assert client.get(f"/organizations/{org_b}/week.pdf").status_code == 404
    assert client.get(f"/communities/{world['areas']['a1'].id}/week.html").status_code == 403
    auth.logout()
    auth.login("vol_a")
    assert community_pdf(client, world, next_monday).status_code == 403
    assert client.get(f"/organizations/{org_a}/week.pdf").status_code == 403
    assert _db.session.scalar(select(AuditEntry.id).where(AuditEntry.action == "print_week")) is None


@pytest.mark.parametrize("bad", ["2026-W49-1", "nonsense", "9999-12-31", "٢٠٢٦-١٢-٠٧"])
def test_a_bad_week_is_a_400_naming_it(client, auth, world, bad):
    auth.login("worker_a1")
    for fmt in ("pdf", "html"):
        response = client.get(f"/communities/{world['areas']['a1'].id}/week.{fmt}", query_string={"week": bad})
        assert response.status_code == 400 and "week" in response.get_data(as_text=True)


def test_the_preview_is_the_same_sheet_as_a_page_with_a_link_to_the_pdf(client, auth, world, week, next_monday):
    auth.login("worker_a1")
    a1 = world["areas"]["a1"].id
    page = client.get(f"/communities/{a1}/week.html", query_string={"week": next_monday.isoformat()})
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert f'href="/communities/{a1}/week.pdf?week={next_monday.isoformat()}"' in html
    assert "李秀英 138****5678" in html and "13812345678" not in html and html.count("王强") == 1
    assert 'href="/static/print.css"' in html and "<style" not in html  # the CSP allows no inline style
    assert _db.session.scalar(select(AuditEntry.id).where(AuditEntry.action == "print_week")) is None


def test_without_the_pdf_renderer_the_pdf_is_a_503_saying_why(client, auth, world, next_monday, monkeypatch):
    monkeypatch.setattr("web.printouts.pdf_engine", lambda: (None, "OSError: cannot load library 'pango-1.0-0'"))
    auth.login("worker_a1")
    response = community_pdf(client, world, next_monday)
    assert response.status_code == 503 and "Pango" in response.get_data(as_text=True)
    a1 = world["areas"]["a1"].id
    assert client.get(f"/communities/{a1}/week.html").status_code == 200  # the preview still works
    assert _db.session.scalar(select(AuditEntry.id).where(AuditEntry.action == "print_week")) is None


@needs_pdf
def test_markup_in_a_title_prints_as_text_and_nothing_is_fetched(client, auth, world, next_monday, monkeypatch):
    import urllib.request

    def no_network(*args, **kwargs):
        raise AssertionError("the renderer opened a URL")

    monkeypatch.setattr(urllib.request.OpenerDirector, "open", no_network)
    world["demands"]["b1"].title = '<img src="http://example.invalid/x.png">调解'
    _db.session.commit()
    auth.login("worker_b1")
    response = community_pdf(client, world, next_monday, area="b1")
    assert response.status_code == 200
    assert '<imgsrc="http://example.invalid/x.png">调解' in squeeze(pdf_text(response.data)[0])


def test_the_week_pages_link_to_their_sheet(client, auth, world, week, next_monday):
    monday = next_monday.isoformat()
    auth.login("worker_a1")
    page = client.get("/community/week", query_string={"week": monday}).get_data(as_text=True)
    assert f'/communities/{world["areas"]["a1"].id}/week.pdf?week={monday}' in page
    auth.logout()
    auth.login("leader_a")
    page = client.get("/team", query_string={"week": monday}).get_data(as_text=True)
    assert f'/organizations/{world["orgs"]["a"].id}/week.pdf?week={monday}' in page
    auth.logout()
    auth.login("coord_a")
    schedule = _db.session.scalar(select(Schedule).where(Schedule.area_id == world["areas"]["town_a"].id))
    page = client.get(f"/schedules/{schedule.id}").get_data(as_text=True)
    assert f'/communities/{world["areas"]["a1"].id}/week.pdf?week={monday}' in page
