"""Service records' pages (web/records.py): the volunteer's full record, corrections asked and decided,
certificates and their PDF, the public verification page; who may see and decide what."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from matcher.accounts import create_user
from matcher.db import db as _db
from matcher.models import (
    AssignmentStatus,
    AuditEntry,
    CorrectionState,
    RecordCertificate,
    RecordCorrection,
    RecordEntry,
    Role,
)
from tests.matcher.builders import add_demand, assign
from web.printouts import pdf_engine

_engine, _problem = pdf_engine()
needs_pdf = pytest.mark.skipif(_engine is None, reason=f"WeasyPrint cannot load here: {_problem}")


@pytest.fixture
def served(world, db):
    """vol_a's completed home visit (1.5 h, rated 5, through 东城助老服务队) and a station service (1.0 h)."""
    vol = world["volunteers"]["a"]
    home = world["demands"]["a1"].occurrences[0]
    visit = assign(db, home, vol, status=AssignmentStatus.COMPLETED, org=world["orgs"]["a"])
    visit.credited_hours, visit.rating = Decimal("1.5"), 5
    film = add_demand(world, home.starts_at.date() + timedelta(days=1), "19:00", "20:00", title="露天电影")
    direct = assign(db, film, vol, status=AssignmentStatus.COMPLETED)
    direct.credited_hours = Decimal("1.0")
    vol.total_hours = Decimal("2.5")
    for occ in (home, film):  # done: moved into the past
        occ.starts_at -= timedelta(days=21)
        occ.ends_at -= timedelta(days=21)
    db.session.commit()
    return {"visit": visit, "direct": direct, "vol": vol}


@pytest.fixture
def leader_b(world, db):
    user = create_user(username="leader_b", password="correct horse battery", role=Role.ORG_LEADER,
                       organization_id=world["orgs"]["b"].id)
    db.session.commit()
    return user


def login_leader_b(client):
    return client.post("/login", data={"username": "leader_b", "password": "correct horse battery"})


def text(response) -> str:
    return response.get_data(as_text=True)


def ask_hours(client, assignment_id, hours="2", reason="签退忘了，实际两小时"):
    return client.post("/me/record/corrections/new", data={"field": "hours", "assignment": assignment_id,
                                                           "hours": hours, "reason": reason})


def make_certificate(client, shown, **period):
    response = client.post("/me/certificates/new", data={"shown": shown, **period})
    assert response.status_code == 302, text(response)
    return _db.session.scalars(select(RecordCertificate).order_by(RecordCertificate.id.desc())).first()


def test_the_record_page_links_to_the_full_record_which_holds_every_service(client, auth, world, served):
    auth.login("vol_a")
    page = text(client.get("/me/record"))
    assert 'href="/me/record/full"' in page and 'id="stars"' in page and 'id="to-next"' in page
    response = client.get("/me/record/full")
    assert response.status_code == 200
    full = text(response)
    assert 'id="record-hours">2.5<' in full and "露天电影" in full and "东城助老服务队" in full
    assert "桂花社区新时代文明实践站" in full and "3栋" not in full  # a station by name; a home never by address
    assert f"/me/record/corrections/new?assignment={served['visit'].id}" in full


def test_the_flow_correction_accepted_then_certificates_and_verification(client, auth, world, served):
    visit = served["visit"]
    auth.login("vol_a")
    before = make_certificate(client, ["name", "hours", "services"])
    assert re.fullmatch(r"LL-\d{4}-\d{6}", before.number)
    assert ask_hours(client, visit.id).status_code == 302
    correction = _db.session.scalar(select(RecordCorrection))
    assert correction.state == CorrectionState.OPEN and correction.requested_hours == Decimal("2.0")
    assert str(correction.id) in text(client.get("/me/record/corrections"))
    auth.logout()
    auth.login("leader_a")
    assert f"/records/corrections/{correction.id}" in text(client.get("/records"))
    page = text(client.get(f"/records/corrections/{correction.id}"))
    assert 'id="hours-now">1.5' in page and 'id="hours-asked">2.0<' in page
    response = client.post(f"/records/corrections/{correction.id}/decide", data={"decision": "accept", "reason": ""})
    assert response.status_code == 302
    _db.session.expire_all()
    assert _db.session.get(RecordCorrection, correction.id).state == CorrectionState.ACCEPTED
    assert served["vol"].total_hours == Decimal("3.0")
    auth.logout()
    auth.login("vol_a")
    after = make_certificate(client, ["name", "hours", "services"])
    assert after.content["hours"] == "3.0"
    auth.logout()
    # The old certificate's link: genuine, but the record changed, with what it says now.
    old = client.get(f"/verify/{before.verify_code}")
    assert old.status_code == 200 and old.headers["Cache-Control"] == "no-store"
    old_page = text(old)
    assert 'data-verdict="genuine"' in old_page and before.number in old_page and 'id="changed"' in old_page
    assert re.search(r'class="now-hours">[^<]*3\.0', old_page)
    new_page = text(client.get(f"/verify/{after.verify_code}"))
    assert after.number in new_page and 'id="unchanged"' in new_page and 'id="changed"' not in new_page
    assert re.search(r'class="cert-hours">[^<]*3\.0', new_page)
    actions = set(_db.session.scalars(select(AuditEntry.action)))
    assert {"request_correction", "decide_correction", "issue_certificate"} <= actions


def test_rejecting_needs_a_reason(client, auth, world, served):
    auth.login("vol_a")
    ask_hours(client, served["direct"].id, hours="3")
    correction = _db.session.scalar(select(RecordCorrection))
    auth.logout()
    auth.login("coord_a")
    response = client.post(f"/records/corrections/{correction.id}/decide", data={"decision": "reject", "reason": ""})
    assert response.status_code == 400 and 'id="err-reason"' in text(response)
    response = client.post(f"/records/corrections/{correction.id}/decide", data={"decision": "maybe"})
    assert response.status_code == 400
    response = client.post(f"/records/corrections/{correction.id}/decide",
                           data={"decision": "reject", "reason": "签到记录只有一小时"})
    assert response.status_code == 302
    _db.session.expire_all()
    found = _db.session.get(RecordCorrection, correction.id)
    assert found.state == CorrectionState.REJECTED and served["direct"].credited_hours == Decimal("1.0")


def test_the_verification_page_shows_only_what_was_chosen(client, auth, world, served):
    auth.login("vol_a")
    hours_only = make_certificate(client, ["hours"])
    with_orgs = make_certificate(client, ["name", "hours", "organizations"])
    auth.logout()
    page = text(client.get(f"/verify/{hours_only.verify_code}"))
    assert hours_only.number in page and "2.5" in page
    for hidden in ("东城助老服务队", "李秀英", "露天电影", "13812345678"):
        assert hidden not in page
    page = text(client.get(f"/verify/{with_orgs.verify_code}"))
    assert "东城助老服务队" in page and "李秀英" in page and "露天电影" not in page
    assert client.get("/verify/" + "A" * 22).status_code == 404
    assert client.get("/verify/short").status_code == 404


def test_a_revoked_certificate_says_so(client, auth, world, served):
    auth.login("vol_a")
    certificate = make_certificate(client, ["hours"])
    assert client.post(f"/certificates/{certificate.id}/revoke").status_code == 302
    assert client.post(f"/certificates/{certificate.id}/revoke").status_code == 302  # already: said, not an error
    auth.logout()
    assert 'data-verdict="revoked"' in text(client.get(f"/verify/{certificate.verify_code}"))


def test_others_cannot_see_or_decide(client, auth, world, served, leader_b):
    vol = served["vol"]
    auth.login("vol_a")
    certificate = make_certificate(client, ["hours"])
    ask_hours(client, served["visit"].id)
    correction = _db.session.scalar(select(RecordCorrection))
    auth.logout()
    urls = [f"/records/volunteers/{vol.id}", f"/records/corrections/{correction.id}"]
    for who, expected in (("coord_b", 404), ("worker_a1", 403), ("vol_b", 403)):
        auth.login(who)
        for url in urls:
            assert client.get(url).status_code == expected, (who, url)
        assert client.post(f"/records/corrections/{correction.id}/decide",
                           data={"decision": "accept"}).status_code == expected
        assert client.post(f"/records/volunteers/{vol.id}/entries",
                           data={"kind": "training", "title": "x", "on": "2024-01-01"}).status_code == expected
        assert client.get(f"/certificates/{certificate.id}").status_code == (403 if who == "worker_a1" else 404)
        assert client.get(f"/certificates/{certificate.id}.pdf").status_code == (403 if who == "worker_a1" else 404)
        auth.logout()
    login_leader_b(client)
    for url in urls:
        assert client.get(url).status_code == 404
    assert client.post(f"/records/corrections/{correction.id}/decide", data={"decision": "accept"}).status_code == 404
    assert client.get(f"/certificates/{certificate.id}").status_code == 404
    assert "李秀英" not in text(client.get("/records", query_string={"q": "李"}))
    auth.logout()
    # Another volunteer cannot ask about vol_a's service, nor revoke vol_a's certificate.
    auth.login("vol_b")
    response = ask_hours(client, served["visit"].id)
    assert response.status_code == 400 and 'id="err-assignment"' in text(response)
    assert client.post(f"/certificates/{certificate.id}/revoke").status_code == 404
    auth.logout()
    for who in ("leader_a", "coord_a", "coord", "admin"):
        auth.login(who)
        for url in urls:
            assert client.get(url).status_code == 200, (who, url)
        assert client.get(f"/certificates/{certificate.id}").status_code == 200
        auth.logout()
    assert _db.session.get(RecordCorrection, correction.id).state == CorrectionState.OPEN


def test_the_organization_records_training_and_bad_input_names_the_field(client, auth, world, served):
    vol = served["vol"]
    auth.login("leader_a")
    assert "李秀英" in text(client.get("/records"))
    response = client.post(f"/records/volunteers/{vol.id}/entries",
                           data={"kind": "training", "title": "", "on": "2999-01-01", "hours": "abc"})
    assert response.status_code == 400
    page = text(response)
    assert all(f'id="err-{name}"' in page for name in ("title", "on", "hours"))
    response = client.post(f"/records/volunteers/{vol.id}/entries",
                           data={"kind": "training", "title": "急救培训", "on": "2024-03-01", "hours": "4"})
    assert response.status_code == 302
    entry = _db.session.scalar(select(RecordEntry))
    assert (entry.title, entry.organization_id, entry.hours) == ("急救培训", world["orgs"]["a"].id, Decimal("4.0"))
    auth.logout()
    auth.login("vol_a")
    assert "急救培训" in text(client.get("/me/record/full"))
    response = client.post("/me/certificates/new", data={"shown": ["name", "phone"], "start": "x"})
    assert response.status_code == 400
    assert 'id="err-shown"' in text(response) and 'id="err-start"' in text(response)
    response = client.post("/me/record/corrections/new", data={"field": "hours", "reason": ""})
    assert response.status_code == 400
    assert all(f'id="err-{name}"' in text(response) for name in ("assignment", "hours", "reason"))
    assert _db.session.scalar(select(RecordCorrection)) is None


@needs_pdf
def test_the_pdf_reads_back_with_number_and_hours_and_is_not_blank(client, auth, world, served):
    pdfium = pytest.importorskip("pypdfium2")
    auth.login("vol_a")
    certificate = make_certificate(client, ["name", "hours", "services", "period"])
    response = client.get(f"/certificates/{certificate.id}.pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    document = pdfium.PdfDocument(response.data)
    try:
        page = document[0]
        flat = re.sub(r"\s+", "", page.get_textpage().get_text_range())
        assert certificate.number in flat and "2.5" in flat and "李秀英" in flat and "露天电影" in flat
        assert "3栋" not in flat
        pixels = page.render(scale=1).to_numpy()
        assert (pixels[:, :, :3].min(axis=2) < 160).mean() > 0.005, "the page is (nearly) blank"
        page.close()
    finally:
        document.close()
    entry = _db.session.scalar(select(AuditEntry).where(AuditEntry.action == "print_certificate"))
    assert (entry.object_type, entry.object_id) == ("recordcertificate", certificate.id)
