"""Every path that makes, changes or withdraws an offer tells the volunteer the same way (`notify`).

Publishing sends each volunteer one notice listing all their new offers; applying a run on a
published week, assigning or removing by hand, a leader's swap, a hand-back and editing or
cancelling a demand each tell the volunteers concerned. Notices name their page by endpoint (the
domain writes no URLs) and are written in the recipient's language.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from matcher.db import db as _db
from matcher.demands import cancel_demand, update_demand
from matcher.models import (
    Assignment,
    AssignmentStatus,
    DemandStatus,
    Notification,
    RunStatus,
    Schedule,
    ScheduleStatus,
    SolveRun,
    Volunteer,
)
from matcher.notifications import tell_volunteers
from matcher.schedules import apply_run, assign_by_hand, publish_schedule, remove_assignment
from matcher.teams import hand_back, swap_member

from . import builders
from .builders import add_demand, offer, publish


def notices(user, kind: str | None = None) -> list[Notification]:
    stmt = select(Notification).where(Notification.user_id == user.id).order_by(Notification.id)
    if kind:
        stmt = stmt.where(Notification.kind == kind)
    return list(_db.session.scalars(stmt))


def member(world, name: str, phone: str, username: str, *, locale: str | None = None) -> Volunteer:
    """An approved member of organization A who can sign in, free Monday and Thursday mornings."""
    vol = builders.member(world, _db, name, phone, username=username, locale=locale, gender="F",
                          skills="elder_care,first_aid", availability="0 08:00-12:00; 3 08:00-12:00")
    _db.session.commit()
    return vol


@pytest.fixture
def draft(world, db, next_monday) -> Schedule:
    schedule = Schedule(area=world["areas"]["town_a"], week_start=next_monday, status=ScheduleStatus.DRAFT)
    db.session.add(schedule)
    db.session.commit()
    return schedule


def test_publishing_sends_each_volunteer_one_notice_listing_all_their_offers(world, db, draft):
    monday, thursday = sorted(world["demands"]["a1"].occurrences, key=lambda o: o.starts_at)[:2]
    other = member(world, "周敏", "13811113333", "vol_zhou")
    for occ in (monday, thursday):
        offer(draft, occ, world["volunteers"]["a"], status=AssignmentStatus.PROPOSED)
    offer(draft, monday, other, status=AssignmentStatus.PROPOSED)
    assert publish_schedule(draft, user=world["users"]["coord_a"]) == 3
    db.session.commit()
    mine = notices(world["users"]["vol_a"])
    assert [n.kind for n in mine] == ["offer"]  # one notice for two offers
    title = world["demands"]["a1"].title
    assert mine[0].text.count(title) == 2
    assert f"{monday.starts_at:%Y-%m-%d %H:%M}" in mine[0].text and f"{thursday.starts_at:%Y-%m-%d %H:%M}" in mine[0].text
    assert (mine[0].link_endpoint, mine[0].link_args) == ("volunteer.offers", {})
    assert len(notices(other.user, "offer")) == 1


def test_notices_are_in_the_recipients_language(world, db, draft):
    occ = world["demands"]["a1"].occurrences[0]
    english = member(world, "周敏", "13811113333", "vol_zhou", locale="en")
    chinese = member(world, "陈红", "13811112222", "vol_chen", locale="zh_CN")
    offer(draft, occ, english, status=AssignmentStatus.PROPOSED)
    offer(draft, occ, chinese, status=AssignmentStatus.PROPOSED)
    publish_schedule(draft, user=None)
    db.session.commit()
    assert notices(english.user)[0].text.startswith("New offers for you")
    assert "新" in notices(chinese.user)[0].text and "New offers" not in notices(chinese.user)[0].text


def finished_run(schedule: Schedule, occurrences, pairs) -> SolveRun:
    """A finished run whose solution is exactly `pairs` of (occurrence, volunteer)."""
    run = SolveRun(schedule=schedule, status=RunStatus.DONE, repair=True, params={}, progress={},
                   instance={"demands": [{"id": f"d{o.id}"} for o in occurrences]},
                   solution={"status": "FEASIBLE", "assignments": [
                       {"demand": f"d{o.id}", "volunteer": f"v{v.id}", "reasons": ["nearest_free"]}
                       for o, v in pairs], "responsible": [], "unfilled": []})
    _db.session.add(run)
    _db.session.commit()
    return run


def test_applying_a_run_on_a_published_week_tells_who_gains_and_who_loses_an_offer(world, db, next_monday):
    schedule = publish(world, next_monday)
    monday = world["demands"]["a1"].occurrences[0]
    other = member(world, "周敏", "13811113333", "vol_zhou")
    dropped = offer(schedule, monday, world["volunteers"]["a"])
    run = finished_run(schedule, [monday], [(monday, other)])
    counts = apply_run(run, user=world["users"]["coord_a"])
    db.session.commit()
    assert counts == {"kept": 0, "added": 1, "removed": 1}
    assert db.session.get(Assignment, dropped.id) is None
    assert [n.kind for n in notices(world["users"]["vol_a"])] == ["offer_withdrawn"]
    assert [n.kind for n in notices(other.user)] == ["offer"]


def test_applying_a_run_to_a_draft_tells_nobody(world, db, draft):
    monday = world["demands"]["a1"].occurrences[0]
    apply_run(finished_run(draft, [monday], [(monday, world["volunteers"]["a"])]), user=None)
    db.session.commit()
    assert db.session.scalar(select(Assignment.status)) == AssignmentStatus.PROPOSED
    assert notices(world["users"]["vol_a"]) == []


def test_assigning_and_removing_by_hand_on_a_published_week_tell_the_volunteer(world, db, next_monday):
    schedule = publish(world, next_monday)
    occ = world["demands"]["a1"].occurrences[0]
    a = assign_by_hand(schedule, occ, world["volunteers"]["a"], user=world["users"]["coord_a"],
                       override_reason="agreed by phone")
    db.session.commit()
    assert a.status == AssignmentStatus.OFFERED
    assert [n.kind for n in notices(world["users"]["vol_a"])] == ["offer"]
    remove_assignment(a, user=world["users"]["coord_a"])
    db.session.commit()
    assert [n.kind for n in notices(world["users"]["vol_a"])] == ["offer", "offer_withdrawn"]


def test_a_swapped_offer_tells_both_members(world, db, next_monday):
    schedule = publish(world, next_monday)
    occ = world["demands"]["a1"].occurrences[0]
    old = offer(schedule, occ, world["volunteers"]["a"])
    old.organization_id = world["orgs"]["a"].id
    db.session.commit()
    new = member(world, "周敏", "13811113333", "vol_zhou")
    swap_member(old, new, user=world["users"]["leader_a"])
    db.session.commit()
    assert [n.kind for n in notices(world["users"]["vol_a"])] == ["offer_withdrawn"]
    assert [n.kind for n in notices(new.user)] == ["offer"]


def test_an_accepted_service_handed_to_another_member_stays_accepted_and_both_are_told(world, db, next_monday):
    schedule = publish(world, next_monday)
    occ = world["demands"]["a1"].occurrences[0]
    old = offer(schedule, occ, world["volunteers"]["a"], status=AssignmentStatus.ACCEPTED)
    old.organization_id = world["orgs"]["a"].id
    db.session.commit()
    new = member(world, "周敏", "13811113333", "vol_zhou")
    replacement = swap_member(old, new, user=world["users"]["leader_a"])
    db.session.commit()
    assert replacement.status == AssignmentStatus.ACCEPTED and replacement.volunteer_id == new.id
    assert [n.kind for n in notices(world["users"]["vol_a"])] == ["service_taken"]
    given = notices(new.user)
    assert [n.kind for n in given] == ["service_given"] and given[0].link_endpoint == "volunteer.week"


def test_handing_an_accepted_service_to_a_member_booked_elsewhere_then_is_refused(world, db, next_monday):
    from matcher.errors import Conflict, ValidationError

    schedule = publish(world, next_monday)
    occ = world["demands"]["a1"].occurrences[0]
    old = offer(schedule, occ, world["volunteers"]["a"], status=AssignmentStatus.ACCEPTED)
    old.organization_id = world["orgs"]["a"].id
    new = member(world, "周敏", "13811113333", "vol_zhou")
    offer(schedule, add_demand(world, next_monday, "09:30", "10:00", community="a2"), new,
          status=AssignmentStatus.ACCEPTED)
    with pytest.raises((Conflict, ValidationError)):
        swap_member(old, new, user=world["users"]["leader_a"])
    db.session.rollback()
    assert db.session.get(Assignment, old.id).volunteer_id == world["volunteers"]["a"].id


def test_a_hand_back_tells_the_members_whose_offers_it_withdraws(world, db, next_monday):
    schedule = publish(world, next_monday)
    occ = world["demands"]["a1"].occurrences[0]
    a = offer(schedule, occ, world["volunteers"]["a"])
    a.organization_id = world["orgs"]["a"].id
    occ.responsible_organization_id = world["orgs"]["a"].id
    db.session.commit()
    assert hand_back(occ, world["orgs"]["a"], "team away", user=world["users"]["leader_a"]) == 1
    db.session.commit()
    assert [n.kind for n in notices(world["users"]["vol_a"])] == ["offer_withdrawn"]
    assert notices(world["users"]["coord_a"], "handed_back")


def test_editing_a_published_demand_tells_its_volunteers_and_cancelling_withdraws_their_offers(world, db,
                                                                                               next_monday):
    schedule = publish(world, next_monday)
    demand = world["demands"]["a1"]
    monday, thursday = sorted(demand.occurrences, key=lambda o: o.starts_at)[:2]
    offer(schedule, monday, world["volunteers"]["a"], status=AssignmentStatus.ACCEPTED)
    other = member(world, "周敏", "13811113333", "vol_zhou")
    offer(schedule, thursday, other)
    data = {"category": demand.category.code, "resident": str(demand.resident_id), "location_kind": "home",
            "date": demand.starts_on.isoformat(), "start": "09:00", "end": "10:30", "recurring": "1",
            "weekdays": ["0", "3"], "notes": "ring twice", "people": "1", "min_people": "1"}
    update_demand(demand, data, user=world["users"]["worker_a1"], version=demand.version)
    db.session.commit()
    assert [n.kind for n in notices(world["users"]["vol_a"])] == ["offer_changed"]
    assert [n.kind for n in notices(other.user)] == ["offer_changed"]
    cancel_demand(demand, user=world["users"]["worker_a1"], version=demand.version, reason="The family moved")
    db.session.commit()
    assert [n.kind for n in notices(world["users"]["vol_a"])] == ["offer_changed", "service_cancelled"]
    assert [n.kind for n in notices(other.user)] == ["offer_changed", "offer_withdrawn"]
    assert demand.status == DemandStatus.CANCELLED


def test_volunteers_without_an_account_are_skipped_and_long_lists_are_cut(world, db, draft):
    vol = world["volunteers"]["a"]
    occ = world["demands"]["a1"].occurrences[0]
    many = []
    for i in range(40):
        extra = add_demand(world, occ.starts_at.date() + timedelta(days=i % 5), "14:00", "14:30",
                           title=f"很长的服务名称第{i}号")
        many.append(offer(draft, extra, vol, status=AssignmentStatus.PROPOSED))
    assert tell_volunteers("offer", many) == 1
    note = notices(world["users"]["vol_a"])[0]
    assert len(note.text) <= 500 and note.text.endswith("…")
    vol.user_id = None
    db.session.flush()
    assert tell_volunteers("offer", many[:1]) == 0


def test_a_decline_notice_names_the_volunteer_the_service_and_the_reason(world, db, next_monday):
    from matcher.assignments import respond_to_offer

    schedule = publish(world, next_monday)
    occ = world["demands"]["a1"].occurrences[0]
    volunteer = world["volunteers"]["a"]
    a = offer(schedule, occ, volunteer)
    db.session.commit()
    respond_to_offer(a, user=world["users"]["vol_a"], accept=False, reason="家里有事")
    db.session.commit()
    told = notices(world["users"]["coord_a"], "offer_declined")
    assert len(told) == 1
    text = told[0].text
    assert volunteer.real_name in text and world["demands"]["a1"].title in text and "家里有事" in text
    assert f"{occ.starts_at:%Y-%m-%d %H:%M}" in text
