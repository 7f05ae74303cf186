"""Volunteers: registering one, the profile, the calendar token and the hours to the next star."""

from datetime import datetime
from decimal import Decimal

import pytest
from flask_babel import force_locale
from sqlalchemy import func, select

from matcher import volunteers
from matcher.errors import AccessDenied, ValidationError
from matcher.models import Volunteer
from matcher.volunteers import create_volunteer

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


# The profile form as the picker sends it: one value per row in each repeated field, limits in hours.
PROFILE = {"slot_day": ["0", "4", ""], "slot_start": ["08:00", "14:00", ""], "slot_end": ["12:00", "18:00", ""],
           "exc_date": ["2030-01-07", "2030-01-08", ""], "exc_kind": ["away", "extra", "away"],
           "exc_start": ["08:00", "", ""], "exc_end": ["12:00", "", ""], "exc_note": ["trip", "", ""],
           "max_hours_per_week": "5", "preferred_hours_per_week": "2.5", "max_travel_km": "6",
           "skills": "elder_care,lecturing", "lat": "29.347", "lon": "107.707", "address": "桂花社区5栋"}


def test_update_profile(world, db):
    vol = world["volunteers"]["a"]
    volunteers.update_profile(vol, PROFILE, user=world["users"]["vol_a"])
    db.session.commit()
    assert [(s.weekday, s.start_minute, s.end_minute) for s in vol.slots] == [(0, 480, 720), (4, 840, 1080)]
    assert [(e.kind.value, e.starts_at, e.ends_at, e.note) for e in vol.exceptions] == [
        ("away", datetime(2030, 1, 7, 8), datetime(2030, 1, 7, 12), "trip"),
        ("extra", datetime(2030, 1, 8), datetime(2030, 1, 9), "")]  # no times: the whole day
    assert (vol.max_minutes_per_week, vol.preferred_minutes_per_week, vol.max_travel_km) == (300, 150, 6.0)
    assert [s.code for s in vol.skills] == ["elder_care", "lecturing"]
    assert (vol.lat, vol.lon, vol.address) == (29.347, 107.707, "桂花社区5栋")
    values = volunteers.profile_values(vol)
    assert values["slot_rows"] == [{"day": "0", "start": "08:00", "end": "12:00"},
                                   {"day": "4", "start": "14:00", "end": "18:00"}]
    assert values["exception_rows"] == [
        {"date": "2030-01-07", "kind": "away", "start": "08:00", "end": "12:00", "note": "trip"},
        {"date": "2030-01-08", "kind": "extra", "start": "", "end": "", "note": ""}]
    assert (values["max_hours_per_week"], values["preferred_hours_per_week"]) == ("5", "2.5")


def test_parse_slot_rows_names_each_bad_row_and_what_is_wrong():
    rows = {"slot_day": ["0", "", "7", "2", "3"], "slot_start": ["09:00", "", "09:00", "12:00", "9 am"],
            "slot_end": ["12:00", "", "10:00", "09:00", "11:00"]}
    with force_locale("en"), pytest.raises(ValidationError) as err:
        volunteers.parse_slot_rows(rows)
    message = err.value.errors["availability"]
    assert "Row 1" not in message and "Row 2" not in message  # a good row, an empty one
    assert "Row 3: choose a weekday" in message
    assert "Row 4: the end (09:00) must be after the start (12:00)" in message
    assert "Row 5: '9 am' is not a time" in message
    assert volunteers.parse_slot_rows({"slot_day": ["6"], "slot_start": ["18:30"], "slot_end": ["24:00"]}) == [
        (6, 1110, 1440)]


BAD_FIELDS = [
    ("availability", {"slot_day": ["monday"]}),
    ("availability", {"slot_start": ["12:00", "14:00", ""], "slot_end": ["09:00", "18:00", ""]}),
    ("availability", {"slot_start": ["08:00", "14:00", "10:00"]}),  # a third row without a day or an end
    ("exceptions", {"exc_kind": ["holiday", "extra"]}),
    ("exceptions", {"exc_date": ["", "2030-01-08"], "exc_note": ["trip", ""]}),  # a row without its date
    ("exceptions", {"exc_date": ["2030-13-07", "2030-01-08"]}),
    ("exceptions", {"exc_date": ["1999-01-07", "2030-01-08"]}),
    ("exceptions", {"exc_start": ["08:00", "10:00"]}),  # a start without an end
    ("max_hours_per_week", {"max_hours_per_week": "lots"}),
    ("max_hours_per_week", {"max_hours_per_week": "-5"}),
    ("max_hours_per_week", {"max_hours_per_week": "2.25"}),  # not a half-hour step
    ("max_hours_per_week", {"max_hours_per_week": "300"}),  # more than a week
    ("preferred_hours_per_week", {"preferred_hours_per_week": "6"}),  # above the maximum of 5
    ("max_travel_km", {"max_travel_km": "500"}),
    ("skills", {"skills": "juggling"}),
    ("lat", {"lat": "39.9"}),  # Beijing: outside the district
    ("lon", {"lon": ""}),
]


def test_update_profile_bad_input_changes_nothing(world, db):
    vol = world["volunteers"]["a"]
    before = volunteers.profile_values(vol)
    for field, change in BAD_FIELDS:
        data = dict(PROFILE, **change)
        with pytest.raises(ValidationError) as err:
            volunteers.update_profile(vol, data, user=world["users"]["vol_a"])
        assert field in err.value.errors, (field, change, err.value.errors)
        db.session.rollback()
        assert volunteers.profile_values(db.session.get(type(vol), vol.id)) == before


def test_update_profile_only_ones_own(world, db):
    with pytest.raises(AccessDenied):
        volunteers.update_profile(world["volunteers"]["a"], PROFILE, user=world["users"]["vol_b"])


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


def _exc(date, start="", end="", note="", kind="away"):
    return {"exc_date": [date], "exc_kind": [kind], "exc_start": [start], "exc_end": [end], "exc_note": [note]}


def _slot(day, start, end):
    return {"slot_day": [day], "slot_start": [start], "slot_end": [end]}


BAD_PROFILE_INPUT = [
    ("exceptions", _exc("9999-12-31")),  # used to overflow adding the day's end (a 500)
    ("exceptions", _exc("9999-12-31", "09:00", "10:00")),
    ("exceptions", _exc("0001-01-01", kind="extra")),
    ("exceptions", _exc("20261224")),  # only YYYY-MM-DD
    ("exceptions", _exc("2026-12-24T10:00")),
    ("exceptions", _exc("٢٠٢٦-١٢-٢٤")),
    ("exceptions", _exc("__past_400__")),
    ("exceptions", _exc("__ahead_2000__")),
    ("exceptions", _exc("__ahead_10__", "٠٩:٠٠", "١٠:٠٠")),
    ("exceptions", _exc("__ahead_10__", "09:00", "10:00", "a\x00b")),  # PostgreSQL refuses NUL in text
    ("exceptions", _exc("__ahead_10__", note="x" * 201)),
    ("availability", _slot("١", "09:00", "10:00")),
    ("availability", _slot("²", "09:00", "10:00")),
    ("availability", _slot("0", "０９:００", "10:00")),
    ("availability", _slot("1" * 30, "09:00", "10:00")),
    ("availability", {"slot_day": ["0"] * 51, "slot_start": ["09:00"] * 51, "slot_end": ["10:00"] * 51}),
    ("max_hours_per_week", {"max_hours_per_week": "١٢٠"}),
    ("max_hours_per_week", {"max_hours_per_week": "1" * 30}),
    ("max_travel_km", {"max_travel_km": "nan"}),
    ("max_travel_km", {"max_travel_km": "١٢"}),
    ("lat", {"lat": "inf"}),
    ("lon", {"lon": "1e400"}),
    ("address", {"address": "5栋\x00"}),
    ("skills", {"skills": ["elder_care", "x\x00"]}),
]


def _days(change):
    out = {}
    for key, value in change.items():
        if isinstance(value, list):
            value = [_with_days(v) for v in value]
        out[key] = value
    return out


def _with_days(value):
    for key, days in (("__past_400__", -400), ("__ahead_2000__", 2000), ("__ahead_10__", 10)):
        value = value.replace(key, _day(days))
    return value


@pytest.mark.parametrize(("field", "change"), BAD_PROFILE_INPUT)
def test_update_profile_refuses_far_dates_other_digits_and_nul(world, db, field, change):
    vol = world["volunteers"]["a"]
    before = volunteers.profile_values(vol)
    with pytest.raises(ValidationError) as err:
        volunteers.update_profile(vol, dict(PROFILE, **_days(change)), user=world["users"]["vol_a"])
    assert field in err.value.errors, err.value.errors
    db.session.rollback()
    assert volunteers.profile_values(db.session.get(Volunteer, vol.id)) == before


def test_a_far_away_date_names_the_row_and_the_accepted_range(world, db):
    with pytest.raises(ValidationError) as err:
        volunteers.update_profile(world["volunteers"]["a"], dict(PROFILE, **_exc("9999-12-31")),
                                  user=world["users"]["vol_a"])
    assert err.value.errors["exceptions"] == f"Row 1: enter a date from {_day(-366)} to {_day(5 * 366)}."


def form_of(values: dict) -> dict:
    """The profile form as the page sends it back unchanged (`profile_values` shown in the picker)."""
    data = {k: v for k, v in values.items() if k not in ("slot_rows", "exception_rows")}
    for name, key in (("slot_day", "day"), ("slot_start", "start"), ("slot_end", "end")):
        data[name] = [r[key] for r in values["slot_rows"]]
    for name, key in (("exc_date", "date"), ("exc_kind", "kind"), ("exc_start", "start"), ("exc_end", "end"),
                      ("exc_note", "note")):
        data[name] = [r[key] for r in values["exception_rows"]]
    return data


def test_a_stored_change_older_than_a_year_can_be_saved_again(world, db):
    from datetime import datetime

    from matcher.models import AvailabilityException, ExceptionKind

    vol = world["volunteers"]["a"]
    old = datetime.fromisoformat(_day(-500))
    vol.exceptions = [AvailabilityException(kind=ExceptionKind.AWAY, starts_at=old, ends_at=old.replace(hour=12))]
    db.session.commit()
    volunteers.update_profile(vol, form_of(volunteers.profile_values(vol)), user=world["users"]["vol_a"])
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
