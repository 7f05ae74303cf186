"""Residents: a good one is saved with its phone normalized, bad input names the field and saves nothing."""

import pytest
from sqlalchemy import func, select

from matcher.errors import ValidationError
from matcher.models import Resident
from matcher.residents import create_resident


@pytest.mark.parametrize(("overrides", "field"), [
    ({"phone": "12345"}, "phone"),
    ({"phone": "1381234567x"}, "phone"),
    ({"name": ""}, "name"),
    ({"consent": ""}, "consent"),
    ({"lat": "31.2", "lon": "121.5"}, "lat"),
    ({"lat": "north"}, "lat"),
])
def test_bad_resident_names_the_field(world, db, overrides, field):
    data = {"name": "孙阿姨", "phone": "13600003333", "address": "桂花社区5栋", "lat": "29.345",
            "lon": "107.705", "consent": "1", **overrides}
    before = db.session.scalar(select(func.count(Resident.id)))
    with pytest.raises(ValidationError) as info:
        create_resident(data, community=world["areas"]["a1"], user=None)
    assert field in info.value.errors
    db.session.rollback()
    assert db.session.scalar(select(func.count(Resident.id))) == before


def test_resident_phone_is_stored_normalized(world, db):
    resident = create_resident({"name": "孙阿姨", "phone": "136 0000 3333", "address": "x", "lat": "29.345",
                                "lon": "107.705", "consent": "1"}, community=world["areas"]["a1"], user=None)
    assert resident.phone == "+8613600003333"
