"""Registering oneself, waiting for an organization's approval, and minors needing a guardian's consent:
who reaches the solver's instance, hand assignments and swaps."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from flask_babel import force_locale

from matcher import problem
from matcher.errors import ValidationError
from matcher.models import AssignmentStatus, MemberStatus, Volunteer, utcnow
from matcher.schedules import assign_by_hand, get_schedule
from matcher.teams import approve_member, swap_member
from matcher.volunteers import age_on, guardian_problem, register_volunteer

from .builders import assign, member

PASSWORD = "lantern-orchard-cobalt"


def registration(world, **changes) -> dict:
    data = {"real_name": "刘新", "phone": "13955556666", "password": PASSWORD, "repeat": PASSWORD,
            "birth_date": "1980-05-01", "home_area": world["areas"]["a1"].id,
            "organizations": [world["orgs"]["a"].id], "skills": ["elder_care"], "availability": "0 08:00-12:00"}
    data.update(changes)
    return data


def instance_ids(world, area: str, week: date) -> set[str]:
    return {v["id"] for v in problem.build_instance(get_schedule(world["areas"][area], week))["volunteers"]}


@pytest.mark.parametrize("area", ["district", "town_a"])
def test_a_self_registered_volunteer_reaches_no_schedule_until_approved(world, db, next_monday, area):
    volunteer = register_volunteer(registration(world))
    db.session.commit()
    assert f"v{volunteer.id}" not in instance_ids(world, area, next_monday)
    approve_member(volunteer.memberships[0], user=world["users"]["leader_a"])
    assert f"v{volunteer.id}" in instance_ids(world, area, next_monday)


def test_a_rejected_self_registered_volunteer_stays_out(world, db, next_monday):
    from matcher.teams import reject_member

    volunteer = register_volunteer(registration(world))
    reject_member(volunteer.memberships[0], user=world["users"]["leader_a"])
    assert f"v{volunteer.id}" not in instance_ids(world, "district", next_monday)


def test_volunteers_entered_by_staff_still_reach_the_district(world, db, next_monday):
    # vol_b has only an application (to 南山调解队) but was entered by staff: the district draws on her.
    assert f"v{world['volunteers']['b'].id}" in instance_ids(world, "district", next_monday)


def born(years_before: date, years: int, days: int = 0) -> date:
    return date(years_before.year - years, years_before.month, min(years_before.day, 28)) + timedelta(days=days)


def test_age_on_a_day_and_the_youngest_age_from_a_birth_year():
    day = date(2026, 6, 1)
    assert age_on(Volunteer(birth_date=date(2008, 6, 1)), day) == 18
    assert age_on(Volunteer(birth_date=date(2008, 6, 2)), day) == 17
    assert age_on(Volunteer(birth_year=2008), day) == 17  # may be born on 31 December
    assert age_on(Volunteer(), day) is None


def test_a_minor_without_consent_is_not_in_the_instance(world, db, next_monday):
    minor = member(world, db, "小李", "13811116666")
    minor.birth_date = born(next_monday, 16)
    minor.birth_year = minor.birth_date.year
    turning = member(world, db, "小周", "13811116667")  # turns 18 on the week's Tuesday
    turning.birth_date = date(next_monday.year - 18, next_monday.month, next_monday.day) + timedelta(days=1) \
        if (next_monday.month, next_monday.day) != (2, 28) else date(next_monday.year - 18, 3, 1)
    adult = member(world, db, "老王", "13811116668")
    adult.birth_date = born(next_monday, 18, days=-1)
    db.session.commit()
    ids = instance_ids(world, "town_a", next_monday)
    assert f"v{minor.id}" not in ids and f"v{turning.id}" not in ids and f"v{adult.id}" in ids
    minor.guardian_consent_at = utcnow()
    db.session.commit()
    assert f"v{minor.id}" in instance_ids(world, "town_a", next_monday)


def test_a_hand_assignment_of_a_minor_without_consent_is_refused_even_with_a_reason(world, db, next_monday):
    minor = member(world, db, "小李", "13811116666")
    minor.birth_date = born(next_monday, 15)
    db.session.commit()
    schedule = get_schedule(world["areas"]["town_a"], next_monday)
    monday = sorted(world["demands"]["a1"].occurrences, key=lambda o: o.starts_at)[0]
    with force_locale("en"), pytest.raises(ValidationError) as info:
        assign_by_hand(schedule, monday, minor, user=None, override_reason="the family asked")
    assert "under 18" in info.value.errors["volunteer"] and "小李" in info.value.errors["volunteer"]
    minor.guardian_consent_at = utcnow()
    assert guardian_problem(minor, monday.starts_at.date()) is None
    assert assign_by_hand(schedule, monday, minor, user=None).volunteer_id == minor.id


def test_a_leader_cannot_hand_a_service_to_a_minor_without_consent(world, db, next_monday):
    occ = world["demands"]["a1"].occurrences[0]
    org = world["orgs"]["a"]
    occ.responsible_organization_id = org.id
    offer = assign(db, occ, world["volunteers"]["a"], AssignmentStatus.OFFERED, org=org)
    minor = member(world, db, "小李", "13811116666")
    minor.birth_date = born(next_monday, 15)
    db.session.commit()
    with force_locale("en"), pytest.raises(ValidationError) as info:
        swap_member(offer, minor, user=world["users"]["leader_a"])
    assert "under 18" in info.value.errors["volunteer"]


def test_registering_a_minor_records_the_guardian_but_not_consent(world, db):
    volunteer = register_volunteer(registration(
        world, birth_date=born(date.today(), 15).isoformat(), guardian_name="刘母", guardian_phone="13955557777",
        guardian_relation="母亲", guardian_consent="1"))
    assert volunteer.guardian_phone == "+8613955557777" and volunteer.guardian_consent_at is None
    assert guardian_problem(volunteer, date.today()) is not None
    assert volunteer.memberships[0].status == MemberStatus.APPLIED


def test_a_registration_with_every_field_wrong_names_each(world, db):
    with pytest.raises(ValidationError) as info:
        register_volunteer({"phone": "123", "password": "short", "birth_date": "1900-01-01", "home_area": "x",
                            "organizations": ["nope"], "skills": ["?"], "availability": "9 25:00-26:00"})
    assert set(info.value.errors) >= {"real_name", "phone", "password", "birth_date", "home_area",
                                      "organizations", "skills", "availability"}
    assert db.session.scalar(db.select(db.func.count(Volunteer.id))) == 2
