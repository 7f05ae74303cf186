"""The published lists of star volunteers (公示): who is proposed, approval freezing a list, scope and bad input."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from matcher.errors import Conflict, NotFound, ValidationError
from matcher.models import Assignment, AssignmentStatus, AuditEntry, DemandOccurrence
from matcher.recognition import (
    approve_recognition,
    load_recognition,
    propose_recognition,
    recognition_lists_for,
)
from matcher.volunteers import create_volunteer

# A period in the past, so every service in it is done (the default thresholds: 100 / 300 / 600 / 1000 / 1500).
START, END = date(2024, 1, 1), date(2024, 3, 31)


def served(db, world, volunteer, day: date, hours: str, status=AssignmentStatus.COMPLETED) -> Assignment:
    """A service of the volunteer on `day` with its credited hours (an occurrence of 桂花社区's demand)."""
    demand = world["demands"]["a1"]
    taken = set(db.session.scalars(select(DemandOccurrence.starts_at).where(DemandOccurrence.demand_id == demand.id)))
    starts = datetime.combine(day, datetime.min.time()).replace(hour=8)
    while starts in taken:
        starts += timedelta(minutes=1)
    occ = DemandOccurrence(demand_id=demand.id, starts_at=starts, ends_at=starts + timedelta(hours=1))
    db.session.add(occ)
    db.session.flush()
    a = Assignment(occurrence_id=occ.id, volunteer_id=volunteer.id, status=status,
                   credited_hours=Decimal(hours) if status == AssignmentStatus.COMPLETED else None)
    db.session.add(a)
    db.session.flush()
    return a


@pytest.fixture
def people(db, world):
    return make_people(db, world)


def make_people(db, world) -> dict:
    """vol_a (桂花社区) crosses 100 h, vol_b (石桥村) crosses 300 h, vol_c (枫林社区) crosses nothing, vol_d (枫林社区)
    crosses two levels at once."""
    a2 = world["areas"]["a2"].id
    vol_c = create_volunteer({"real_name": "陈静", "phone": "13611112222", "home_area": a2, "lat": 29.335,
                              "lon": 107.695}, user=None)
    vol_d = create_volunteer({"real_name": "刘洋", "phone": "13611113333", "home_area": a2, "lat": 29.335,
                              "lon": 107.695}, user=None)
    vol_a, vol_b = world["volunteers"]["a"], world["volunteers"]["b"]
    served(db, world, vol_a, date(2023, 12, 31), "90")      # the day before the period: before it
    served(db, world, vol_a, date(2024, 1, 1), "10")        # its first day: in it (100 reached)
    served(db, world, vol_a, date(2024, 3, 31), "5")        # its last day: in it
    served(db, world, vol_b, date(2023, 6, 1), "250")
    served(db, world, vol_b, date(2024, 2, 10), "60")       # 310: two stars
    served(db, world, vol_c, date(2023, 6, 1), "50")
    served(db, world, vol_c, date(2024, 2, 1), "20")        # 70: no star
    served(db, world, vol_c, date(2024, 4, 1), "100")       # after the period: not counted
    served(db, world, vol_c, date(2024, 2, 2), "0", status=AssignmentStatus.ACCEPTED)  # not done: not counted
    served(db, world, vol_d, date(2024, 1, 5), "200")
    served(db, world, vol_d, date(2024, 3, 1), "120")       # 0 -> 320: two levels at once, two stars
    db.session.commit()
    return {"a": vol_a, "b": vol_b, "c": vol_c, "d": vol_d}


def entry(vol, stars, hours):
    return {"volunteer_id": vol.id, "name": vol.real_name, "stars": stars, "hours": hours}


def test_the_district_list_names_who_crossed_a_threshold_within_the_period(db, world, people):
    lst = propose_recognition(world["areas"]["district"], START, END, world["users"]["coord"])
    # by hand: 刘洋 0 -> 320 (2 stars), 王强 250 -> 310 (2), 李秀英 90 -> 105 (1); 陈静 50 -> 70 (none)
    assert lst.entries == [entry(people["d"], 2, "320.0"), entry(people["b"], 2, "310.0"),
                           entry(people["a"], 1, "105.0")]
    assert lst.approved_at is None and lst.created_by_id == world["users"]["coord"].id


def test_a_township_list_names_only_its_residents(db, world, people):
    lst = propose_recognition(world["areas"]["town_a"].id, START.isoformat(), END.isoformat(),
                              world["users"]["coord_a"])
    assert [e["volunteer_id"] for e in lst.entries] == [people["d"].id, people["a"].id]


def test_a_volunteer_already_over_the_threshold_before_the_period_is_not_listed_again(db, world, people):
    lst = propose_recognition(world["areas"]["a1"], date(2024, 4, 1), date(2024, 4, 30), world["users"]["coord"])
    assert lst.entries == []


def test_proposing_again_works_the_draft_out_again(db, world, people):
    first = propose_recognition(world["areas"]["a2"], START, END, world["users"]["coord"])
    served(db, world, people["c"], date(2024, 3, 2), "40")  # 陈静 now 110
    again = propose_recognition(world["areas"]["a2"], START, END, world["users"]["coord"])
    assert again.id == first.id
    assert [e["volunteer_id"] for e in again.entries] == [people["d"].id, people["c"].id]


def test_approval_freezes_the_list_and_is_audited(db, world, people):
    coord = world["users"]["coord"]
    lst = propose_recognition(world["areas"]["a2"], START, END, coord)
    approve_recognition(lst, coord)
    db.session.commit()
    frozen = list(lst.entries)
    served(db, world, people["c"], date(2024, 3, 2), "40")  # would put 陈静 on the list now
    db.session.commit()
    assert load_recognition(lst.id, coord).entries == frozen
    with pytest.raises(Conflict):
        approve_recognition(lst, coord)
    with pytest.raises(ValidationError) as err:
        propose_recognition(world["areas"]["a2"], START, END, coord)
    assert "area" in err.value.errors
    audit = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "approve_recognition"))
    assert audit.object_id == lst.id and audit.user_id == coord.id


def test_published_lists_are_seen_in_the_areas_containing_a_persons_home(db, world, people):
    users = world["users"]
    lists = {}
    for key in ("district", "town_a", "town_b", "a2"):
        lists[key] = propose_recognition(world["areas"][key], START, END, users["coord"])
        approve_recognition(lists[key], users["coord"])
    draft = propose_recognition(world["areas"]["a1"], START, END, users["coord"])
    db.session.commit()

    def seen(user):
        return {lst.id for lst in recognition_lists_for(users[user])}

    ids = {k: v.id for k, v in lists.items()}
    assert seen("vol_a") == {ids["district"], ids["town_a"]}  # lives in 桂花社区
    assert seen("vol_b") == {ids["district"], ids["town_b"]}
    assert seen("worker_a1") == {ids["district"], ids["town_a"]}
    assert seen("leader_a") == {ids["district"], ids["town_a"]}
    assert seen("coord_a") == {ids["district"], ids["town_a"], ids["a2"]}  # and every list below
    assert seen("admin") == set(ids.values())
    assert draft.id not in seen("admin")
    with pytest.raises(NotFound):
        load_recognition(draft.id, users["vol_a"])  # a draft is the coordinators' only
    with pytest.raises(NotFound):
        load_recognition(lists["town_b"].id, users["vol_a"])
    with pytest.raises(NotFound):
        load_recognition(99999, users["admin"])
    assert load_recognition(draft.id, users["coord_a"]) is draft


def test_a_coordinator_proposes_and_approves_only_within_their_area(db, world, people):
    users = world["users"]
    with pytest.raises(ValidationError) as err:
        propose_recognition(world["areas"]["district"], START, END, users["coord_a"])
    assert set(err.value.errors) == {"area"}
    with pytest.raises(ValidationError):
        propose_recognition(world["areas"]["a1"], START, END, users["worker_a1"])
    lst = propose_recognition(world["areas"]["town_a"], START, END, users["coord"])
    with pytest.raises(NotFound):
        approve_recognition(lst, users["coord_b"])
    approve_recognition(lst, users["coord_a"])
    assert lst.approved_by_id == users["coord_a"].id


@pytest.mark.parametrize("area, start, end, field", [
    ("", "2024-01-01", "2024-03-31", "area"),
    ("abc", "2024-01-01", "2024-03-31", "area"),
    ("999999", "2024-01-01", "2024-03-31", "area"),
    ("D", "", "2024-03-31", "start"),
    ("D", "2024-13-01", "2024-03-31", "start"),
    ("D", "1999-12-31", "2024-03-31", "start"),
    ("D", "2024-03-31", "2024-01-01", "end"),
    ("D", "2024-01-01", "not a date", "end"),
    ("D", "2024-01-01", (date.today() + timedelta(days=1)).isoformat(), "end"),
    ("D", "2010-01-01", "2024-01-01", "end"),  # more than five years
])
def test_bad_input_names_the_field(db, world, area, start, end, field):
    area = str(world["areas"]["district"].id) if area == "D" else area
    with pytest.raises(ValidationError) as err:
        propose_recognition(area, start, end, world["users"]["coord"])
    assert set(err.value.errors) == {field}
