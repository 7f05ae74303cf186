"""Pure rules: phones, masking, distance, recurrences, credited hours, stars."""

from datetime import date
from decimal import Decimal

import pytest

from matcher import rules


@pytest.mark.parametrize(("raw", "expected"), [
    ("13812345678", "+8613812345678"), ("+86 138-1234-5678", "+8613812345678"),
    ("023 6123 4567", "+862361234567"), ("12345", None), ("", None), ("phone", None), ("23812345678", None),
])
def test_normalize_phone(raw, expected):
    assert rules.normalize_phone(raw) == expected


def test_mask_phone_keeps_first_three_and_last_four():
    assert rules.mask_phone("+8613812345678") == "138****5678"
    assert rules.mask_phone(None) == ""


def test_haversine_one_degree_of_latitude():
    assert rules.haversine_km(29.0, 107.0, 30.0, 107.0) == pytest.approx(111.19, abs=0.01)


@pytest.mark.parametrize(("minutes", "hours"), [
    (0, "0"), (14, "0"), (15, "0.5"), (44, "0.5"), (45, "1.0"), (74, "1.0"), (75, "1.5"), (120, "2.0"),
])
def test_credited_hours_round_to_half_hours(minutes, hours):
    assert rules.credited_hours(minutes) == Decimal(hours)


@pytest.mark.parametrize(("hours", "stars"), [(0, 0), (99.5, 0), (100, 1), (650, 3), (1500, 5), (9999, 5)])
def test_star_level_thresholds(hours, stars):
    assert rules.star_level(hours) == stars


def test_occurrence_dates_single_and_weekly():
    monday = date(2026, 11, 30)
    assert list(rules.occurrence_dates(monday, [], None, monday, date(2026, 12, 7))) == [monday]
    weekly = list(rules.occurrence_dates(monday, [0, 3], date(2026, 12, 10), monday, date(2026, 12, 31)))
    assert weekly == [date(2026, 11, 30), date(2026, 12, 3), date(2026, 12, 7), date(2026, 12, 10)]


@pytest.mark.parametrize(("text", "minutes"), [("09:30", 570), ("24:00", 1440), ("24:30", None), ("9", None)])
def test_parse_hhmm(text, minutes):
    assert rules.parse_hhmm(text) == minutes


def test_too_close_counts_travel_time_like_the_solver():
    from datetime import datetime

    nine, ten = datetime(2026, 12, 1, 9, 0), datetime(2026, 12, 1, 10, 0)
    # 10 km apart as the crow flies: 13 km of road at 25 km/h is 31.2 minutes.
    far_lat = 29.0 + 10 / 111.195
    assert rules.too_close(nine, ten, 29.0, 107.0, datetime(2026, 12, 1, 10, 30), datetime(2026, 12, 1, 11, 0),
                           far_lat, 107.0)
    assert not rules.too_close(nine, ten, 29.0, 107.0, datetime(2026, 12, 1, 10, 32), datetime(2026, 12, 1, 11, 0),
                               far_lat, 107.0)
    # Order does not matter; an overlap is always too close.
    assert rules.too_close(datetime(2026, 12, 1, 9, 30), datetime(2026, 12, 1, 10, 30), 29.0, 107.0,
                           nine, ten, 29.0, 107.0)
