"""Structured decline reasons (issue 9, defect 7): what the repair of a published week makes of them.

"Not free then" keeps the volunteer off that part of the day for the week, "too far" off services as
far from home or farther; "another reason" forbids only the service declined. Each is checked
through a real repair (a solve of the published week), with "another reason" as the control: the
same week where the volunteer is offered the very slot the structured reason keeps her off.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from matcher import assignments, problem
from matcher.errors import ValidationError
from matcher.models import Assignment, AssignmentStatus, DemandStatus, Notification, RunStatus
from matcher.schedules import planned_changes, run_solve, start_solve

from .builders import add_demand, offer, publish


def _repair(schedule, user):
    run, _created = start_solve(schedule, user=user, time_limit=5)
    from matcher.db import db

    db.session.commit()
    run_solve(run.id)
    db.session.expire_all()
    run = db.session.get(type(run), run.id)
    assert run.repair and run.status == RunStatus.DONE, run.message
    return planned_changes(run)


def _offered_to(changes, volunteer_id) -> set[int]:
    """Occurrence ids the repair keeps or adds for the volunteer."""
    return {occ for occ, vid in changes.kept + changes.added if vid == volunteer_id}


@pytest.fixture
def morning(world, db, next_monday):
    """Volunteer a (free Mondays 08:00–12:00, Wednesdays 14:00–18:00) offered a Monday 08:00 service,
    with another service later the same morning and one on Wednesday afternoon."""
    schedule = publish(world, next_monday)
    # Demand a1's own occurrences (elder care on Monday and Thursday) would compete for her Monday
    # morning too: leave them out of this week.
    world["demands"]["a1"].status = DemandStatus.CANCELLED
    first = add_demand(world, next_monday, "08:00", "09:00", title="早上宣讲")
    later = add_demand(world, next_monday, "10:30", "11:30", title="上午第二场")
    wednesday = add_demand(world, next_monday + timedelta(days=2), "15:00", "16:00", title="周三下午")
    a = offer(schedule, first, world["volunteers"]["a"])
    return {"schedule": schedule, "first": first, "later": later, "wednesday": wednesday, "offer": a}


@pytest.mark.parametrize("kind, keeps_the_morning", [("other", True), ("not_free", False)])
def test_not_free_then_keeps_the_repair_off_that_morning(world, db, morning, kind, keeps_the_morning):
    vol = world["volunteers"]["a"]
    assignments.respond_to_offer(morning["offer"], user=world["users"]["vol_a"], accept=False, kind=kind,
                                 reason="周一上午要带孙子去医院复查")
    db.session.commit()
    assert morning["offer"].decline_kind.value == kind
    changes = _repair(morning["schedule"], world["users"]["coord_a"])
    mine = _offered_to(changes, vol.id)
    assert morning["first"].id not in mine  # the declined service itself: never again
    assert (morning["later"].id in mine) is keeps_the_morning
    assert morning["wednesday"].id in mine  # the rest of her week is untouched


def test_not_free_blocks_the_part_of_the_day_in_the_instance(world, db, morning, next_monday):
    assignments.respond_to_offer(morning["offer"], user=world["users"]["vol_a"], accept=False, kind="not_free")
    db.session.commit()
    instance = problem.build_instance(morning["schedule"])
    entry = next(v for v in instance["volunteers"] if v["id"] == f"v{world['volunteers']['a'].id}")
    day = next_monday.isoformat()
    assert not [w for w in entry["availability"] if w["start"].startswith(day)]  # all of Monday morning
    assert any(w["start"].startswith((next_monday + timedelta(days=2)).isoformat()) for w in entry["availability"])


def test_too_far_keeps_her_off_services_as_far_or_farther(world, db, next_monday):
    schedule = publish(world, next_monday)
    world["demands"]["a1"].status = DemandStatus.CANCELLED
    vol = world["volunteers"]["a"]  # lives by community a1's station; a2's station is about 1.5 km away
    far = add_demand(world, next_monday, "09:00", "10:00", community="a2", title="枫林社区活动")
    far_again = add_demand(world, next_monday + timedelta(days=2), "14:00", "15:00", community="a2", title="枫林再来")
    near = add_demand(world, next_monday + timedelta(days=2), "16:00", "17:00", title="桂花社区活动")
    a = offer(schedule, far, vol)
    assignments.respond_to_offer(a, user=world["users"]["vol_a"], accept=False, kind="too_far")
    db.session.commit()
    mine = _offered_to(_repair(schedule, world["users"]["coord_a"]), vol.id)
    assert far_again.id not in mine and far.id not in mine
    assert near.id in mine


def test_a_decline_needs_a_known_kind_and_other_needs_words(world, db, morning):
    a, user = morning["offer"], world["users"]["vol_a"]
    for kind, reason, field in [("", "", "kind"), ("busy", "", "kind"), ("other", " ", "reason")]:
        with pytest.raises(ValidationError) as err:
            assignments.respond_to_offer(a, user=user, accept=False, kind=kind, reason=reason)
        assert field in err.value.errors, (kind, reason)
    assert a.status == AssignmentStatus.OFFERED
    assignments.respond_to_offer(a, user=user, accept=False, kind="not_free")  # words optional here
    db.session.commit()
    assert (a.status, a.decline_kind.value, a.decline_reason) == (AssignmentStatus.DECLINED, "not_free", "")
    notices = db.session.scalars(select(Notification).where(Notification.kind == "offer_declined")).all()
    assert notices and all("早上宣讲" in n.text for n in notices)
    assert db.session.scalar(select(Assignment.decline_kind).where(Assignment.id == a.id)).value == "not_free"
