"""Assignments: answering an offer, checking in and out, credited hours, confirming and rating a service."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import delete, select

from matcher import assignments
from matcher.assignments import confirm_service, rate_service
from matcher.errors import AccessDenied, Conflict, DomainError, ValidationError
from matcher.models import (
    Assignment,
    AssignmentStatus,
    AuditEntry,
    DemandOccurrence,
    DemandStatus,
    Notification,
)

from .builders import CODE, add_demand, assign, at, member, offer

# ------------------------------------------------------------------ respond_to_offer


def test_accept_an_offer(world, db, week):
    a = offer(week["schedule"], week["occ"], world["volunteers"]["a"])
    assignments.respond_to_offer(a, user=world["users"]["vol_a"], accept=True)
    db.session.commit()
    assert a.status == AssignmentStatus.ACCEPTED and a.responded_at is not None
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "accept", AuditEntry.object_id == a.id))


def test_only_the_own_volunteer_may_answer(world, db, week):
    a = offer(week["schedule"], week["occ"], world["volunteers"]["a"])
    for other in ("vol_b", "coord_a"):
        with pytest.raises(AccessDenied):
            assignments.respond_to_offer(a, user=world["users"][other], accept=True)
    assert a.status == AssignmentStatus.OFFERED


def test_only_an_open_offer_can_be_answered(world, db, week):
    a = offer(week["schedule"], week["occ"], world["volunteers"]["a"], status=AssignmentStatus.DECLINED)
    with pytest.raises(Conflict):
        assignments.respond_to_offer(a, user=world["users"]["vol_a"], accept=True)


def test_a_withdrawn_offer_cannot_be_answered(world, db, week):
    a = offer(week["schedule"], week["occ"], world["volunteers"]["a"])
    db.session.execute(delete(Assignment).where(Assignment.id == a.id))  # e.g. a repair run removed it
    with pytest.raises(Conflict, match="withdrawn"):
        assignments.respond_to_offer(a, user=world["users"]["vol_a"], accept=True)


def test_accept_refused_when_it_overlaps_an_accepted_service(world, db, week):
    vol = world["volunteers"]["a"]
    offer(week["schedule"], week["occ"], vol, status=AssignmentStatus.ACCEPTED)
    overlapping = add_demand(world, week["monday"], "10:00", "11:00")
    a = offer(week["schedule"], overlapping, vol)
    with pytest.raises(Conflict, match="overlaps"):
        assignments.respond_to_offer(a, user=world["users"]["vol_a"], accept=True)
    db.session.rollback()
    assert db.session.get(Assignment, a.id).status == AssignmentStatus.OFFERED


def test_accept_counts_travel_time_between_places(world, db, week):
    vol = world["volunteers"]["a"]
    offer(week["schedule"], week["occ"], vol, status=AssignmentStatus.ACCEPTED)  # ends 10:30 in C1
    near = add_demand(world, week["monday"], "10:35", "11:30", community="a1")  # same community: minutes away
    far = add_demand(world, week["monday"], "10:40", "11:30", community="b1")  # ~12 km: about 37 min by road
    a_far = offer(week["schedule"], far, vol)
    with pytest.raises(Conflict):
        assignments.respond_to_offer(a_far, user=world["users"]["vol_a"], accept=True)
    db.session.rollback()
    a_near = offer(week["schedule"], db.session.get(DemandOccurrence, near.id), vol)
    assignments.respond_to_offer(a_near, user=world["users"]["vol_a"], accept=True)
    assert a_near.status == AssignmentStatus.ACCEPTED


def test_accept_refused_when_the_occurrence_is_full(world, db, week):
    occ = add_demand(world, week["monday"], "14:00", "15:00", people=1)
    offer(week["schedule"], occ, world["volunteers"]["b"], status=AssignmentStatus.ACCEPTED)
    a = offer(week["schedule"], occ, world["volunteers"]["a"])
    with pytest.raises(Conflict, match="all the volunteers"):
        assignments.respond_to_offer(a, user=world["users"]["vol_a"], accept=True)


def test_decline_needs_a_reason_and_notifies_the_coordinators(world, db, week):
    a = offer(week["schedule"], week["occ"], world["volunteers"]["a"])
    with pytest.raises(ValidationError) as err:
        assignments.respond_to_offer(a, user=world["users"]["vol_a"], accept=False, reason="  ")
    assert "reason" in err.value.errors
    assert a.status == AssignmentStatus.OFFERED
    assignments.respond_to_offer(a, user=world["users"]["vol_a"], accept=False, reason="Away visiting family")
    db.session.commit()
    assert a.status == AssignmentStatus.DECLINED and a.decline_reason == "Away visiting family"
    notified = {n.user_id for n in db.session.scalars(select(Notification).where(Notification.kind == "offer_declined"))}
    users = world["users"]
    # The district and township A coordinators contain community A1; township B's does not.
    assert notified == {users["coord"].id, users["coord_a"].id}


def test_decline_reopens_a_scheduled_occurrence_left_short(world, db, week):
    occ = week["occ"]
    occ.status = "scheduled"
    a = offer(week["schedule"], occ, world["volunteers"]["a"])
    assignments.respond_to_offer(a, user=world["users"]["vol_a"], accept=False, reason="ill")
    assert occ.status == "open"


# ------------------------------------------------------------------ check in and out


def test_check_in_needs_the_right_code(world, db, week, accepted):
    with pytest.raises(ValidationError) as err:
        assignments.check_in(week["occ"], "000000", user=world["users"]["vol_a"], now=at(week["monday"], "09:00"))
    assert "code" in err.value.errors
    assert accepted.status == AssignmentStatus.ACCEPTED


def test_check_in_not_too_early_nor_after_the_end(world, db, week, accepted):
    user = world["users"]["vol_a"]
    with pytest.raises(DomainError, match="opens"):
        assignments.check_in(week["occ"], CODE, user=user, now=at(week["monday"], "07:59"))
    with pytest.raises(DomainError, match="ended"):
        assignments.check_in(week["occ"], CODE, user=user, now=at(week["monday"], "10:31"))
    assignments.check_in(week["occ"], CODE, user=user, now=at(week["monday"], "08:00"))
    assert accepted.status == AssignmentStatus.CHECKED_IN


def test_check_in_needs_an_accepted_assignment(world, db, week, accepted):
    with pytest.raises(DomainError, match="no accepted"):
        assignments.check_in(week["occ"], CODE, user=world["users"]["vol_b"], now=at(week["monday"], "09:00"))


def test_check_out_credits_rounded_hours(world, db, week, accepted):
    user, occ, vol = world["users"]["vol_a"], week["occ"], world["volunteers"]["a"]
    start = at(week["monday"], "09:00")
    total = Decimal("0")
    for minutes, hours in [(14, "0"), (15, "0.5"), (44, "0.5"), (45, "1.0"), (90, "1.5")]:
        accepted.status, accepted.checked_in_at = AssignmentStatus.ACCEPTED, None
        assignments.check_in(occ, CODE, user=user, now=start)
        assignments.check_out(occ, CODE, user=user, now=start + timedelta(minutes=minutes))
        db.session.commit()
        total += Decimal(hours)
        assert accepted.status == AssignmentStatus.COMPLETED
        assert (minutes, accepted.credited_hours) == (minutes, Decimal(hours))
        assert accepted.checked_out_at == start + timedelta(minutes=minutes)
        assert db.session.get(type(vol), vol.id).total_hours == total
    actions = set(db.session.scalars(select(AuditEntry.action).where(AuditEntry.object_id == accepted.id)))
    assert {"check_in", "check_out"} <= actions


def test_total_hours_add_up_and_rounding_is_configurable(world, db, week, accepted, app):
    user, occ, vol = world["users"]["vol_a"], week["occ"], world["volunteers"]["a"]
    vol.total_hours = Decimal("99.5")
    app.config["HOURS_STEP_MINUTES"] = 60
    start = at(week["monday"], "09:00")
    assignments.check_in(occ, CODE, user=user, now=start)
    assignments.check_out(occ, CODE, user=user, now=start + timedelta(minutes=80))  # nearest whole hour: 1
    db.session.commit()
    assert accepted.credited_hours == Decimal("1.0")
    assert vol.total_hours == Decimal("100.5")


def test_check_out_needs_check_in_and_the_code(world, db, week, accepted):
    user, occ = world["users"]["vol_a"], week["occ"]
    with pytest.raises(Conflict, match="Check in first"):
        assignments.check_out(occ, CODE, user=user, now=at(week["monday"], "10:00"))
    assignments.check_in(occ, CODE, user=user, now=at(week["monday"], "09:00"))
    with pytest.raises(ValidationError):
        assignments.check_out(occ, "999999", user=user, now=at(week["monday"], "10:00"))
    assert accepted.status == AssignmentStatus.CHECKED_IN
    assignments.check_out(occ, CODE, user=user, now=at(week["monday"], "10:00"))
    with pytest.raises(Conflict, match="already checked out"):
        assignments.check_out(occ, CODE, user=user, now=at(week["monday"], "10:05"))


def test_a_forgotten_check_out_credits_no_more_than_the_service_plus_grace(world, db, week, accepted):
    user, occ = world["users"]["vol_a"], week["occ"]  # Monday 09:00-10:30: 90 minutes
    assignments.check_in(occ, CODE, user=user, now=at(week["monday"], "09:00"))
    assignments.check_out(occ, CODE, user=user, now=at(week["monday"], "20:00"))  # 11 hours later
    assert accepted.credited_hours == Decimal("2.5")  # 90 minutes + 60 minutes of grace


def test_check_out_closes_half_a_day_after_the_end(world, db, week, accepted):
    user, occ = world["users"]["vol_a"], week["occ"]
    assignments.check_in(occ, CODE, user=user, now=at(week["monday"], "09:00"))
    with pytest.raises(DomainError, match="closed"):
        assignments.check_out(occ, CODE, user=user, now=at(week["monday"] + timedelta(days=3), "09:00"))
    assert accepted.status == AssignmentStatus.CHECKED_IN


# ------------------------------------------------------------------ confirm and rate


def _in_the_past(db, occ):
    now = datetime.now().replace(second=0, microsecond=0)
    occ.starts_at, occ.ends_at = now - timedelta(hours=3), now - timedelta(hours=1, minutes=30)
    db.session.flush()


def test_confirm_completes_present_ones_credits_hours_and_marks_no_shows(world, db, monday):
    _in_the_past(db, monday)
    present = assign(db, monday, world["volunteers"]["a"], AssignmentStatus.ACCEPTED)
    checked = assign(db, monday, member(world, db, "陈红", "13811112222"), AssignmentStatus.CHECKED_IN)
    absent = assign(db, monday, member(world, db, "周敏", "13811113333"), AssignmentStatus.ACCEPTED)
    offer = assign(db, monday, member(world, db, "吴丽", "13811114444"), AssignmentStatus.OFFERED)
    counts = confirm_service(monday, user=world["users"]["worker_a1"], present=[present.id])
    db.session.commit()
    assert counts == {"completed": 2, "no_show": 1, "withdrawn": 1}
    assert monday.status == DemandStatus.DONE
    assert present.status == checked.status == AssignmentStatus.COMPLETED
    assert present.credited_hours == Decimal("1.5") and absent.status == AssignmentStatus.NO_SHOW
    assert db.session.get(Assignment, offer.id) is None
    db.session.expire_all()
    assert world["volunteers"]["a"].total_hours == Decimal("1.5")
    with pytest.raises(Conflict):
        confirm_service(monday, user=world["users"]["worker_a1"])


def test_confirm_is_refused_before_the_start_for_others_and_for_unaccepted_ticks(world, db, monday):
    offer = assign(db, monday, world["volunteers"]["a"], AssignmentStatus.OFFERED)
    with pytest.raises(DomainError):
        confirm_service(monday, user=world["users"]["worker_a1"])
    _in_the_past(db, monday)
    with pytest.raises(AccessDenied):
        confirm_service(monday, user=world["users"]["worker_b1"])
    with pytest.raises(ValidationError) as err:
        confirm_service(monday, user=world["users"]["worker_a1"], present=[offer.id])
    assert "present" in err.value.errors and monday.status != DemandStatus.DONE


@pytest.mark.parametrize("bad", [0, 6])
def test_rating_outside_one_to_five_is_refused(world, db, monday, bad):
    a = assign(db, monday, world["volunteers"]["a"], AssignmentStatus.COMPLETED)
    with pytest.raises(ValidationError) as err:
        rate_service(a, bad, "", user=world["users"]["worker_a1"])
    assert "rating" in err.value.errors and a.rating is None


def test_rating_a_completed_service(world, db, monday):
    a = assign(db, monday, world["volunteers"]["a"], AssignmentStatus.COMPLETED)
    rate_service(a, "5", "很耐心", user=world["users"]["worker_a1"])
    db.session.commit()
    assert (a.rating, a.rating_comment, a.rated_by_id) == (5, "很耐心", world["users"]["worker_a1"].id)


def test_rating_is_refused_for_unfinished_services_and_other_workers(world, db, monday):
    a = assign(db, monday, world["volunteers"]["a"], AssignmentStatus.ACCEPTED)
    with pytest.raises(ValidationError):
        rate_service(a, 4, "", user=world["users"]["worker_a1"])
    a.status = AssignmentStatus.COMPLETED
    with pytest.raises(AccessDenied):
        rate_service(a, 4, "", user=world["users"]["worker_a2"])
