"""The community worker's and organization leader's use cases, each both ways."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from flask_babel import force_locale
from sqlalchemy import select

from matcher import rules
from matcher.assignments import confirm_service, rate_service
from matcher.demands import update_demand
from matcher.errors import AccessDenied, Conflict, DomainError, NotFound, ValidationError
from matcher.models import (
    Assignment,
    AssignmentStatus,
    AuditEntry,
    DemandStatus,
    Handback,
    Membership,
    MemberStatus,
    Notification,
    Schedule,
    ScheduleStatus,
)
from matcher.notifications import mark_read
from matcher.teams import approve_member, hand_back, judge, reject_member, swap_member
from matcher.volunteers import create_volunteer


def form(demand, **overrides):
    """The edit form's values for a demand, as the page would send them."""
    data = {"category": demand.category.code, "title": demand.title,
            "resident": demand.resident_id or "", "location_kind": demand.location_kind.value,
            "station": demand.station_id or "", "date": demand.starts_on.isoformat(),
            "start": rules.format_minutes(demand.start_minute),
            "end": rules.format_minutes(demand.start_minute + demand.duration_minutes),
            "recurring": "1" if demand.weekdays else "", "weekdays": [str(d) for d in demand.weekday_list],
            "people": demand.people, "min_people": demand.min_people, "priority": demand.priority.value}
    data.update(overrides)
    return data


def member(world, db, name, phone, *, skills="elder_care", availability="0 08:00-12:00", status=MemberStatus.APPROVED,
           org="a", **extra):
    vol = create_volunteer({"real_name": name, "phone": phone, "home_area": world["areas"]["a1"].id,
                            "lat": 29.344, "lon": 107.704, "skills": skills, "availability": availability, **extra},
                           user=None)
    db.session.add(Membership(organization=world["orgs"][org], volunteer=vol, status=status))
    db.session.flush()
    return vol


def assign(db, occ, vol, status=AssignmentStatus.OFFERED, org=None, schedule=None):
    a = Assignment(occurrence_id=occ.id, volunteer_id=vol.id, status=status,
                   organization_id=org.id if org else None, schedule_id=schedule.id if schedule else None)
    db.session.add(a)
    db.session.flush()
    return a


@pytest.fixture
def monday(world):
    """The first occurrence of demand a1: next Monday 09:00–10:30 at 张大爷's home."""
    return world["demands"]["a1"].occurrences[0]


# ------------------------------------------------------------------ update_demand


def test_edit_changes_fields_and_redates_occurrences_keeping_staffed_ids(world, db, monday, next_monday):
    demand = world["demands"]["a1"]
    a = assign(db, monday, world["volunteers"]["a"], org=world["orgs"]["a"])
    kept_id = monday.id
    result = update_demand(demand, form(demand, end="11:00", weekdays=["0", "2"], people="2"),
                           user=world["users"]["worker_a1"], version=demand.version)
    db.session.commit()
    assert demand.people == 2 and demand.duration_minutes == 120
    days = sorted({o.starts_at.weekday() for o in demand.occurrences if o.status != DemandStatus.CANCELLED})
    assert days == [0, 2]
    first = demand.occurrences[0]
    assert first.id == kept_id and first.ends_at.hour == 11 and db.session.get(Assignment, a.id) is not None
    assert result["added"] > 0 and result["removed"] > 0 and result["notified"] == 0
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "update"))


def test_edit_with_a_stale_version_is_a_conflict(world, db):
    demand = world["demands"]["a1"]
    with pytest.raises(Conflict):
        update_demand(demand, form(demand, people="2"), user=world["users"]["worker_a1"], version=demand.version - 1)
    assert demand.people == 1


def test_edit_with_bad_fields_names_them_and_changes_nothing(world, db):
    demand = world["demands"]["a1"]
    with pytest.raises(ValidationError) as err:
        update_demand(demand, form(demand, end="08:00", people="0", resident=world["residents"]["b1"].id),
                      user=world["users"]["worker_a1"], version=demand.version)
    assert {"end", "people", "resident"} <= set(err.value.errors)
    db.session.rollback()
    assert demand.duration_minutes == 90


def test_edit_by_another_communitys_worker_or_of_a_closed_demand_is_refused(world, db):
    demand = world["demands"]["a1"]
    with pytest.raises(AccessDenied):
        update_demand(demand, form(demand), user=world["users"]["worker_a2"], version=demand.version)
    demand.status = DemandStatus.CANCELLED
    db.session.flush()
    with pytest.raises(Conflict):
        update_demand(demand, form(demand), user=world["users"]["worker_a1"], version=demand.version)


def test_edit_after_publishing_notifies_the_coordinators_over_the_community(world, db, next_monday):
    db.session.add(Schedule(area=world["areas"]["town_a"], week_start=next_monday, status=ScheduleStatus.PUBLISHED))
    db.session.flush()
    demand = world["demands"]["a1"]
    result = update_demand(demand, form(demand, notes="ring twice"), user=world["users"]["worker_a1"],
                           version=demand.version)
    db.session.commit()
    notes = db.session.scalars(select(Notification).where(Notification.kind == "demand_changed")).all()
    assert result["notified"] == 2
    assert {n.user_id for n in notes} == {world["users"]["coord"].id, world["users"]["coord_a"].id}
    assert all((n.link_endpoint, n.link_args) == ("demands.view", {"demand_id": demand.id}) for n in notes)


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


# ------------------------------------------------------------------ members and notifications


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


def test_mark_read_only_for_ones_own_notification(world, db):
    note = Notification(user_id=world["users"]["coord"].id, kind="x", text="hello")
    db.session.add(note)
    db.session.flush()
    with pytest.raises(NotFound):
        mark_read(note, user=world["users"]["coord_a"])
    mark_read(note, user=world["users"]["coord"])
    assert note.read_at is not None
