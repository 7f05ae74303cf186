"""Volunteers: registering one, the profile, the calendar token and the hours to the next star."""

from datetime import datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from matcher import volunteers
from matcher.errors import AccessDenied, ValidationError
from matcher.models import Volunteer
from matcher.volunteers import create_volunteer

from .builders import GOOD_PROFILE

# ------------------------------------------------------------------ create_volunteer


@pytest.mark.parametrize(("overrides", "field"), [
    ({"phone": "13812345678"}, "phone"),  # already registered by the world's volunteer
    ({"phone": "not a phone"}, "phone"),
    ({"skills": "elder_care,teleportation"}, "skills"),
    ({"availability": "8 09:00-10:00"}, "availability"),
    ({"availability": "1 12:00-09:00"}, "availability"),
    ({"preferred_minutes_per_week": "600", "max_minutes_per_week": "300"}, "preferred_minutes_per_week"),
    ({"max_travel_km": "-1"}, "max_travel_km"),
    ({"home_area": "999999"}, "home_area"),
])
def test_bad_volunteer_names_the_field(world, db, overrides, field):
    data = {"real_name": "周敏", "phone": "13500004444", "home_area": world["areas"]["a1"].id, "lat": "29.345",
            "lon": "107.705", **overrides}
    before = db.session.scalar(select(func.count(Volunteer.id)))
    with pytest.raises(ValidationError) as info:
        create_volunteer(data, user=None)
    assert field in info.value.errors
    db.session.rollback()
    assert db.session.scalar(select(func.count(Volunteer.id))) == before


# ------------------------------------------------------------------ profile and calendar token


def test_update_profile(world, db):
    vol = world["volunteers"]["a"]
    volunteers.update_profile(vol, GOOD_PROFILE, user=world["users"]["vol_a"])
    db.session.commit()
    assert [(s.weekday, s.start_minute, s.end_minute) for s in vol.slots] == [(0, 480, 720), (4, 840, 1080)]
    assert [(e.kind.value, e.starts_at, e.ends_at, e.note) for e in vol.exceptions] == [
        ("away", datetime(2030, 1, 7, 8), datetime(2030, 1, 7, 12), "trip")]
    assert (vol.max_minutes_per_week, vol.preferred_minutes_per_week, vol.max_travel_km) == (300, 120, 6.0)
    assert [s.code for s in vol.skills] == ["elder_care", "lecturing"]
    assert (vol.lat, vol.lon, vol.address) == (29.347, 107.707, "桂花社区5栋")
    values = volunteers.profile_values(vol)
    assert values["availability"] == "0 08:00-12:00; 4 14:00-18:00"
    assert values["exceptions"] == "away 2030-01-07 08:00-12:00 trip"


BAD_FIELDS = [
    ("availability", "monday 9-12"),
    ("availability", "0 12:00-09:00"),
    ("exceptions", "holiday 2030-01-07"),
    ("exceptions", "away 2030-13-07"),
    ("max_minutes_per_week", "lots"),
    ("max_minutes_per_week", "-5"),
    ("preferred_minutes_per_week", "400"),  # above the maximum of 300
    ("max_travel_km", "500"),
    ("skills", "juggling"),
    ("lat", "39.9"),  # Beijing: outside the district
    ("lon", ""),
]


def test_update_profile_bad_input_changes_nothing(world, db):
    vol = world["volunteers"]["a"]
    before = volunteers.profile_values(vol)
    for field, value in BAD_FIELDS:
        data = dict(GOOD_PROFILE, **{field: value})
        with pytest.raises(ValidationError) as err:
            volunteers.update_profile(vol, data, user=world["users"]["vol_a"])
        assert field in err.value.errors, (field, value, err.value.errors)
        db.session.rollback()
        assert volunteers.profile_values(db.session.get(type(vol), vol.id)) == before


def test_update_profile_only_ones_own(world, db):
    with pytest.raises(AccessDenied):
        volunteers.update_profile(world["volunteers"]["a"], GOOD_PROFILE, user=world["users"]["vol_b"])


def test_regenerate_calendar_token(world, db):
    vol = world["volunteers"]["a"]
    old = vol.calendar_token
    new = volunteers.regenerate_calendar_token(vol, user=world["users"]["vol_a"])
    assert new != old and vol.calendar_token == new and len(new) >= 24
    with pytest.raises(AccessDenied):
        volunteers.regenerate_calendar_token(vol, user=world["users"]["vol_b"])


def test_hours_to_next_star():
    assert volunteers.hours_to_next_star(Decimal("99.5"), [100, 300]) == Decimal("0.5")
    assert volunteers.hours_to_next_star(Decimal("100"), [100, 300]) == Decimal("200.0")
    assert volunteers.hours_to_next_star(400, [100, 300]) is None


# ------------------------------------------------------------------ bad input: far dates, other digits, NUL


def _day(n):
    from datetime import timedelta

    from matcher.clock import local_today

    return (local_today() + timedelta(days=n)).isoformat()


BAD_PROFILE_INPUT = [
    ("exceptions", "away 9999-12-31"),  # used to overflow adding the day's end (a 500)
    ("exceptions", "away 9999-12-31 09:00-10:00"),
    ("exceptions", "extra 0001-01-01"),
    ("exceptions", "away 20261224"),  # only YYYY-MM-DD
    ("exceptions", "away 2026-12-24T10:00"),
    ("exceptions", "away ٢٠٢٦-١٢-٢٤"),
    ("exceptions", "away __past_400__"),
    ("exceptions", "away __ahead_2000__"),
    ("exceptions", "away __ahead_10__ ٠٩:٠٠-١٠:٠٠"),
    ("exceptions", "away __ahead_10__ 09:00-10:00 a\x00b"),  # PostgreSQL refuses NUL in text
    ("availability", "١ 09:00-10:00"),
    ("availability", "² 09:00-10:00"),
    ("availability", "0 ０９:００-10:00"),
    ("availability", "1" * 30 + " 09:00-10:00"),
    ("max_minutes_per_week", "١٢٠"),
    ("max_minutes_per_week", "1" * 30),
    ("max_travel_km", "nan"),
    ("max_travel_km", "١٢"),
    ("lat", "inf"),
    ("lon", "1e400"),
    ("address", "5栋\x00"),
    ("skills", ["elder_care", "x\x00"]),
]


@pytest.mark.parametrize(("field", "value"), BAD_PROFILE_INPUT)
def test_update_profile_refuses_far_dates_other_digits_and_nul(world, db, field, value):
    vol = world["volunteers"]["a"]
    before = volunteers.profile_values(vol)
    if isinstance(value, str):
        for key, days in (("__past_400__", -400), ("__ahead_2000__", 2000), ("__ahead_10__", 10)):
            value = value.replace(key, _day(days))
    with pytest.raises(ValidationError) as err:
        volunteers.update_profile(vol, dict(GOOD_PROFILE, **{field: value}), user=world["users"]["vol_a"])
    assert field in err.value.errors, err.value.errors
    db.session.rollback()
    assert volunteers.profile_values(db.session.get(Volunteer, vol.id)) == before


def test_a_far_away_date_names_the_accepted_range(world, db):
    with pytest.raises(ValidationError) as err:
        volunteers.update_profile(world["volunteers"]["a"], dict(GOOD_PROFILE, exceptions="away 9999-12-31"),
                                  user=world["users"]["vol_a"])
    assert err.value.errors["exceptions"] == f"'away 9999-12-31': enter a date from {_day(-366)} to {_day(5 * 366)}."


def test_a_stored_change_older_than_a_year_can_be_saved_again(world, db):
    from datetime import datetime

    from matcher.models import AvailabilityException, ExceptionKind

    vol = world["volunteers"]["a"]
    old = datetime.fromisoformat(_day(-500))
    vol.exceptions = [AvailabilityException(kind=ExceptionKind.AWAY, starts_at=old, ends_at=old.replace(hour=12))]
    db.session.commit()
    values = volunteers.profile_values(vol)
    volunteers.update_profile(vol, dict(values, skills=values["skills"]), user=world["users"]["vol_a"])
    db.session.commit()
    assert [e.starts_at for e in vol.exceptions] == [old]


def test_a_new_volunteers_address_is_judged_before_anything_is_saved(world, db):
    """The address used to be read after the check: too long, it reached the database (a 500 on PostgreSQL)."""
    before = db.session.scalar(select(func.count(Volunteer.id)))
    with pytest.raises(ValidationError) as info:
        create_volunteer({"real_name": "周敏", "phone": "13500004444", "home_area": world["areas"]["a1"].id,
                          "lat": "29.345", "lon": "107.705", "address": "x" * 201}, user=None)
    assert "address" in info.value.errors
    db.session.rollback()
    assert db.session.scalar(select(func.count(Volunteer.id))) == before
