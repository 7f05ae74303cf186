"""Teams: a leader hands a service back, swaps a member, approves or rejects an application."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask_babel import force_locale
from sqlalchemy import select

from matcher import rules
from matcher.errors import AccessDenied, Conflict, NotFound, ValidationError
from matcher.models import (
    Assignment,
    AssignmentStatus,
    Handback,
    Membership,
    MemberStatus,
    Notification,
    Schedule,
    ScheduleStatus,
)
from matcher.teams import approve_member, hand_back, judge, reject_member, swap_member

from .builders import assign, member

# ------------------------------------------------------------------ hand back


def test_hand_back_needs_a_reason(world, db, monday):
    monday.responsible_organization_id = world["orgs"]["a"].id
    with pytest.raises(ValidationError) as err:
        hand_back(monday, world["orgs"]["a"], "  ", user=world["users"]["leader_a"])
    assert "reason" in err.value.errors


def test_hand_back_removes_the_organizations_offers_and_notifies_coordinators(world, db, monday):
    org = world["orgs"]["a"]
    monday.responsible_organization_id = org.id
    offer = assign(db, monday, world["volunteers"]["a"], AssignmentStatus.OFFERED, org=org)
    accepted = assign(db, monday, member(world, db, "陈红", "13811112222"), AssignmentStatus.ACCEPTED, org=org)
    removed = hand_back(monday, org, "队员外出培训", user=world["users"]["leader_a"])
    db.session.commit()
    assert removed == 1 and db.session.get(Assignment, offer.id) is None
    assert db.session.get(Assignment, accepted.id) is not None
    assert monday.responsible_organization_id is None
    assert db.session.scalar(select(Handback.reason)) == "队员外出培训"
    told = set(db.session.scalars(select(Notification.user_id).where(Notification.kind == "handed_back")))
    assert told == {world["users"]["coord"].id, world["users"]["coord_a"].id}
    with pytest.raises(Conflict):
        hand_back(monday, org, "again", user=world["users"]["leader_a"])


def test_hand_back_of_members_direct_offers_leaves_another_responsible_organization(world, db, monday):
    monday.responsible_organization_id = world["orgs"]["b"].id
    direct = assign(db, monday, world["volunteers"]["a"], AssignmentStatus.OFFERED)  # vol_a is a member of a
    assert hand_back(monday, world["orgs"]["a"], "不在本队服务范围", user=world["users"]["leader_a"]) == 1
    assert db.session.get(Assignment, direct.id) is None
    assert monday.responsible_organization_id == world["orgs"]["b"].id


def test_hand_back_of_a_service_not_dispatched_or_by_another_leader_is_refused(world, db, monday):
    with pytest.raises(NotFound):
        hand_back(monday, world["orgs"]["a"], "reason", user=world["users"]["leader_a"])
    monday.responsible_organization_id = world["orgs"]["b"].id
    with pytest.raises(AccessDenied):
        hand_back(monday, world["orgs"]["b"], "reason", user=world["users"]["leader_a"])


# ------------------------------------------------------------------ swap


def test_swap_to_an_eligible_member_offers_it_to_them(world, db, monday):
    org = world["orgs"]["a"]
    old = assign(db, monday, world["volunteers"]["a"], AssignmentStatus.OFFERED)  # sent to the member directly
    new_vol = member(world, db, "陈红", "13811112222")
    new = swap_member(old, new_vol, user=world["users"]["leader_a"])
    db.session.commit()
    on_it = db.session.scalars(select(Assignment.volunteer_id).where(Assignment.occurrence_id == monday.id)).all()
    assert on_it == [new_vol.id]
    assert (new.volunteer_id, new.status, new.organization_id) == (new_vol.id, AssignmentStatus.OFFERED, org.id)
    assert db.session.scalar(select(Notification).where(Notification.kind == "offer_withdrawn",
                                                        Notification.user_id == world["users"]["vol_a"].id))


def test_swap_to_an_ineligible_member_names_each_broken_rule(world, db, monday):
    old = assign(db, monday, world["volunteers"]["a"], AssignmentStatus.OFFERED, org=world["orgs"]["a"])
    unfit = member(world, db, "孙伟", "13811115555", skills="lecturing", availability="4 08:00-12:00")
    with force_locale("en"), pytest.raises(ValidationError) as err:
        swap_member(old, unfit, user=world["users"]["leader_a"])
    message = err.value.errors["volunteer"]
    assert "skills" in message and "availability" in message
    assert db.session.get(Assignment, old.id) is not None


def test_swap_checks_overlap_with_travel_and_weekly_minutes(world, db, monday):
    busy = member(world, db, "陈红", "13811112222", max_minutes_per_week="120")
    other = world["demands"]["b1"].occurrences[0]  # Monday 14:00 in 南山镇, far away
    other.starts_at = monday.ends_at + timedelta(minutes=10)
    other.ends_at = other.starts_at + timedelta(hours=1)
    schedule = Schedule(area=world["areas"]["town_b"], week_start=rules.week_monday(other.starts_at.date()),
                        status=ScheduleStatus.PUBLISHED)
    db.session.add(schedule)
    db.session.flush()
    assign(db, other, busy, AssignmentStatus.ACCEPTED, schedule=schedule)
    with force_locale("en"):
        verdict = judge(monday, [busy])[busy.id]
    # The solver's own verdict, each rule worded from the referee's facts (the other service named).
    assert len(verdict) == 2
    assert verdict[0].startswith("overlap") and other.demand.title in verdict[0]
    assert verdict[1] == "weekly minutes: 60 used of 120, this service needs 90" or \
        verdict[1].startswith("weekly minutes")


def test_swap_is_refused_for_begun_services_non_members_and_other_leaders(world, db, monday):
    org = world["orgs"]["a"]
    accepted = assign(db, monday, world["volunteers"]["a"], AssignmentStatus.CHECKED_IN, org=org)
    with pytest.raises(Conflict):
        swap_member(accepted, member(world, db, "陈红", "13811112222"), user=world["users"]["leader_a"])
    accepted.status = AssignmentStatus.OFFERED
    applicant = member(world, db, "周敏", "13811113333", status=MemberStatus.APPLIED)
    with pytest.raises(ValidationError):
        swap_member(accepted, applicant, user=world["users"]["leader_a"])
    outsider = world["volunteers"]["b"]
    with pytest.raises(AccessDenied):
        swap_member(assign(db, monday, outsider, org=world["orgs"]["b"]), applicant, user=world["users"]["leader_a"])


# ------------------------------------------------------------------ members


def test_approve_by_the_organizations_leader(world, db):
    applicant = member(world, db, "周敏", "13811113333", status=MemberStatus.APPLIED)
    membership = db.session.scalar(select(Membership).where(Membership.volunteer_id == applicant.id))
    approve_member(membership, user=world["users"]["leader_a"])
    db.session.commit()
    assert membership.status == MemberStatus.APPROVED and membership.approved_at is not None


def test_approve_or_reject_by_the_wrong_leader_is_refused(world, db):
    membership = db.session.scalar(select(Membership).where(Membership.volunteer_id == world["volunteers"]["b"].id))
    with pytest.raises(AccessDenied):
        approve_member(membership, user=world["users"]["leader_a"])
    with pytest.raises(AccessDenied):
        reject_member(membership, user=world["users"]["worker_b1"])
    assert membership.status == MemberStatus.APPLIED


def test_reject_removes_the_application_and_tells_the_volunteer(world, db):
    applicant = member(world, db, "周敏", "13811113333", status=MemberStatus.APPLIED)
    membership = db.session.scalar(select(Membership).where(Membership.volunteer_id == applicant.id))
    reject_member(membership, user=world["users"]["leader_a"])
    db.session.commit()
    assert db.session.scalar(select(Membership).where(Membership.volunteer_id == applicant.id)) is None
