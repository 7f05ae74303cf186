"""Service records (Order No. 67): the record's contents, training and commendations, corrections and
their decision, numbered certificates and their verification (matcher/records.py)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from matcher import records
from matcher.accounts import create_user
from matcher.errors import AccessDenied, Conflict, NotFound, ValidationError
from matcher.models import (
    AssignmentStatus,
    AuditEntry,
    CorrectionState,
    Notification,
    Role,
)

from .builders import add_demand, assign


@pytest.fixture
def served(world, db):
    """vol_a's completed home visit (1.5 h, rated 5, sent through 东城助老服务队) and a station service
    done directly (1.0 h, no organization on the row: recorded by their approved organization)."""
    vol = world["volunteers"]["a"]
    home = world["demands"]["a1"].occurrences[0]
    visit = assign(db, home, vol, status=AssignmentStatus.COMPLETED, org=world["orgs"]["a"])
    visit.credited_hours, visit.rating, visit.rating_comment = Decimal("1.5"), 5, "很耐心"
    film = add_demand(world, home.starts_at.date() + timedelta(days=1), "19:00", "20:00", title="露天电影")
    direct = assign(db, film, vol, status=AssignmentStatus.COMPLETED)
    direct.credited_hours = Decimal("1.0")
    vol.total_hours = Decimal("2.5")
    for occ in (home, film):  # done: moved into the past (demands are posted for dates from today on)
        occ.starts_at -= timedelta(days=21)
        occ.ends_at -= timedelta(days=21)
    db.session.commit()
    return {"visit": visit, "direct": direct, "vol": vol}


def leader_of_b(world, db):
    user = create_user(username="leader_b", password="correct horse battery", role=Role.ORG_LEADER,
                       organization_id=world["orgs"]["b"].id)
    db.session.commit()
    return user


def test_the_record_holds_services_hours_evaluation_and_recording_organization(world, db, served):
    content = records.service_record(served["vol"])
    assert content["name"] == "李秀英"
    assert content["hours"] == "2.5" and content["service_count"] == 2
    visit, direct = content["services"]
    assert visit["title"] == world["demands"]["a1"].title and visit["hours"] == "1.5" and visit["rating"] == 5
    assert visit["place"] == {"kind": "home", "name": "桂花社区"}  # a resident's home, never its address
    assert "3栋" not in str(content)
    assert direct["title"] == "露天电影" and direct["place"]["kind"] == "station"
    assert visit["organization"] == direct["organization"] == "东城助老服务队"
    assert content["organizations"] == ["东城助老服务队"]


def test_training_and_commendations_are_recorded_by_the_organization(world, db, served):
    vol, users = served["vol"], world["users"]
    today = served["visit"].occurrence.starts_at.date() - timedelta(days=14)
    entry = records.add_entry(vol, {"kind": "training", "title": "急救培训", "on": today.isoformat(), "hours": "4"},
                              user=users["leader_a"])
    records.add_entry(vol, {"kind": "commendation", "title": "优秀志愿者", "on": today.isoformat()},
                      user=users["coord_a"])
    db.session.commit()
    content = records.service_record(vol)
    assert [t["title"] for t in content["training"]] == ["急救培训"] and content["training"][0]["hours"] == "4.0"
    assert [c["title"] for c in content["commendations"]] == ["优秀志愿者"]
    assert entry.organization_id == world["orgs"]["a"].id
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "record_entry",
                                                      AuditEntry.object_id == entry.id)) is not None
    with pytest.raises(ValidationError) as bad:
        records.add_entry(vol, {"kind": "medal", "title": "", "on": "2999-01-01"}, user=users["leader_a"])
    assert set(bad.value.errors) == {"kind", "title", "on"}
    with pytest.raises(ValidationError) as bad:
        records.add_entry(vol, {"kind": "commendation", "title": "x", "on": today.isoformat(), "hours": "2"},
                          user=users["leader_a"])
    assert set(bad.value.errors) == {"hours"}


def test_out_of_scope_users_neither_read_nor_record_nor_decide(world, db, served):
    vol, users = served["vol"], world["users"]
    other_leader = leader_of_b(world, db)
    for user in (other_leader, users["coord_b"], users["vol_b"], users["worker_a1"]):
        assert not records.can_read_record(user, vol)
        with pytest.raises(AccessDenied):
            records.add_entry(vol, {"kind": "training", "title": "x", "on": "2024-01-01"}, user=user)
    for user in (other_leader, users["coord_b"]):
        with pytest.raises(NotFound):
            records.load_record_volunteer(vol.id, user)
    for user in (users["admin"], users["coord"], users["coord_a"], users["leader_a"], users["vol_a"]):
        assert records.can_read_record(user, vol)
    correction = records.request_correction(vol, {"field": "hours", "assignment": served["visit"].id, "hours": "2",
                                                  "reason": "我服务了两小时"}, user=users["vol_a"])
    db.session.commit()
    for user in (other_leader, users["coord_b"], users["vol_b"], users["vol_a"], users["worker_a1"]):
        with pytest.raises(NotFound):
            records.load_correction(correction.id, user)
        with pytest.raises(AccessDenied):
            records.decide_correction(correction, True, "", user=user)
    assert records.corrections_to_decide(other_leader) == []
    assert records.corrections_to_decide(users["leader_a"]) == [correction]
    assert records.corrections_to_decide(users["coord_a"]) == [correction]
    # Another volunteer cannot ask about vol_a's record, nor about vol_a's service on their own record.
    with pytest.raises(AccessDenied):
        records.request_correction(vol, {"field": "other", "reason": "x"}, user=users["vol_b"])
    with pytest.raises(ValidationError) as bad:
        records.request_correction(world["volunteers"]["b"], {"field": "hours", "assignment": served["visit"].id,
                                                              "hours": "3", "reason": "x"}, user=users["vol_b"])
    assert "assignment" in bad.value.errors


def test_an_accepted_hours_correction_changes_the_service_and_the_total(world, db, served):
    vol, users, visit = served["vol"], world["users"], served["visit"]
    correction = records.request_correction(vol, {"field": "hours", "assignment": visit.id, "hours": "2.0",
                                                  "reason": "签退忘了，实际两小时"}, user=users["vol_a"])
    db.session.commit()
    assert correction.organization_id == world["orgs"]["a"].id and correction.state == CorrectionState.OPEN
    with pytest.raises(ValidationError) as twice:
        records.request_correction(vol, {"field": "hours", "assignment": visit.id, "hours": "3", "reason": "x"},
                                   user=users["vol_a"])
    assert "assignment" in twice.value.errors
    db.session.rollback()
    records.decide_correction(correction, True, "核实无误", user=users["leader_a"])
    db.session.commit()
    assert visit.credited_hours == Decimal("2.0") and vol.total_hours == Decimal("3.0")
    assert correction.state == CorrectionState.ACCEPTED and correction.decided_by_id == users["leader_a"].id
    assert records.service_record(vol)["hours"] == "3.0"
    audit = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "decide_correction"))
    assert audit.details["hours_before"] == "1.5" and audit.details["hours_after"] == "2.0"
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "request_correction")) is not None
    notice = db.session.scalar(select(Notification).where(Notification.user_id == users["vol_a"].id,
                                                          Notification.kind == "record_correction"))
    assert notice is not None and notice.link_endpoint == "records.my_corrections"
    with pytest.raises(Conflict):
        records.decide_correction(correction, False, "again", user=users["leader_a"])


def test_rejecting_needs_a_reason_and_changes_no_hours(world, db, served):
    vol, users = served["vol"], world["users"]
    correction = records.request_correction(vol, {"field": "hours", "assignment": served["direct"].id,
                                                  "hours": "3", "reason": "三小时"}, user=users["vol_a"])
    db.session.commit()
    with pytest.raises(ValidationError) as bad:
        records.decide_correction(correction, False, "  ", user=users["coord_a"])
    assert set(bad.value.errors) == {"reason"}
    db.session.rollback()
    records.decide_correction(correction, False, "签到记录只有一小时", user=users["coord_a"])
    db.session.commit()
    assert correction.state == CorrectionState.REJECTED and correction.decision == "签到记录只有一小时"
    assert served["direct"].credited_hours == Decimal("1.0") and vol.total_hours == Decimal("2.5")


def test_a_correction_request_names_its_bad_fields(world, db, served):
    vol, user = served["vol"], world["users"]["vol_a"]
    with pytest.raises(ValidationError) as bad:
        records.request_correction(vol, {"field": "hours", "assignment": "x", "hours": "abc", "reason": ""},
                                   user=user)
    assert set(bad.value.errors) == {"assignment", "hours", "reason"}
    with pytest.raises(ValidationError) as bad:
        records.request_correction(vol, {"field": "nonsense", "reason": "x"}, user=user)
    assert set(bad.value.errors) == {"field"}
    with pytest.raises(ValidationError) as bad:
        records.request_correction(vol, {"field": "hours", "assignment": served["visit"].id, "hours": "1.5",
                                         "reason": "x"}, user=user)
    assert set(bad.value.errors) == {"hours"}  # the record says so already
    missing = records.request_correction(vol, {"field": "missing", "hours": "2", "reason": "3月1日的助老服务"},
                                         user=user)
    assert missing.organization_id == world["orgs"]["a"].id and missing.requested_hours == Decimal("2.0")


def test_a_certificate_freezes_the_record_and_its_verification_follows_a_correction(world, db, served):
    vol, users, visit = served["vol"], world["users"], served["visit"]
    before = records.issue_certificate(vol, users["vol_a"], shown=["name", "hours", "services"])
    db.session.commit()
    assert before.number == f"LL-{before.issued_at.year}-{before.id:06d}"
    assert len(before.verify_code) == 22 and before.content["hours"] == "2.5"
    check = records.verify_certificate(before.verify_code)
    assert check.changed == [] and check.issued["hours"] == "2.5" and not check.revoked
    assert "organizations" not in check.issued and "training" not in check.current
    correction = records.request_correction(vol, {"field": "hours", "assignment": visit.id, "hours": "2",
                                                  "reason": "两小时"}, user=users["vol_a"])
    records.decide_correction(correction, True, "", user=users["leader_a"])
    db.session.commit()
    check = records.verify_certificate(before.verify_code)
    assert check.changed == ["hours", "services"]
    assert check.issued["hours"] == "2.5" and check.current["hours"] == "3.0"
    after = records.issue_certificate(vol, users["vol_a"], shown=["hours"])
    db.session.commit()
    assert after.number != before.number and after.content["hours"] == "3.0"
    assert records.verify_certificate(after.verify_code).changed == []
    records.revoke_certificate(before, user=users["vol_a"])
    db.session.commit()
    assert records.verify_certificate(before.verify_code).revoked
    actions = set(db.session.scalars(select(AuditEntry.action)))
    assert {"issue_certificate", "revoke_certificate", "decide_correction"} <= actions


def test_certificates_are_the_volunteers_own_and_name_their_bad_fields(world, db, served):
    vol, users = served["vol"], world["users"]
    for user in (users["vol_b"], users["leader_a"]):
        with pytest.raises(AccessDenied):
            records.issue_certificate(vol, user, shown=["hours"])
    with pytest.raises(ValidationError) as bad:
        records.issue_certificate(vol, users["vol_a"], shown=["name", "phone"], start="2026-13-01", end="x")
    assert set(bad.value.errors) == {"shown", "start", "end"}
    with pytest.raises(ValidationError) as bad:
        records.issue_certificate(vol, users["vol_a"], shown=["name"])
    assert set(bad.value.errors) == {"shown"}
    with pytest.raises(ValidationError) as bad:
        records.issue_certificate(vol, users["vol_a"], shown=["hours"], start="2024-05-02", end="2024-05-01")
    assert set(bad.value.errors) == {"start"}
    for code in ("", "x" * 22, "a" * 200, None, "../../etc"):
        with pytest.raises(NotFound):
            records.verify_certificate(code)
