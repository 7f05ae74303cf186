"""Use cases that change a resident's row: registering a resident of a community, with consent."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from flask_babel import lazy_gettext as _l

from . import rules
from .audit import record_audit
from .db import db
from .fields import Fields, check_location
from .models import Area, Gender, Resident, User, utcnow


def create_resident(data: Mapping[str, Any], *, community: Area, user: User | None) -> Resident:
    """Register a resident of a community, with consent recorded; raises ValidationError."""
    f = Fields(data)
    name = f.text("name", required=True, max_length=40)
    phone_raw = f.text("phone", max_length=30)
    phone = rules.normalize_phone(phone_raw) if phone_raw else None
    if phone_raw and phone is None:
        f.fail("phone", _l("'%(p)s' is not a valid phone number.", p=phone_raw))
    address = f.text("address", required=True, max_length=200)
    lat, lon = f.number("lat"), f.number("lon")
    check_location(f, lat, lon, community)
    gender = f.choice("gender", Gender)
    birth_year = f.integer("birth_year", minimum=1900, maximum=date.today().year, default=0) or None
    consent = f.flag("consent")
    if not consent:
        f.fail("consent", _l("Record the resident's consent before saving their data."))
    needs_notes = f.text("needs_notes", max_length=2000)
    consent_note = f.text("consent_note", max_length=200)
    f.check()  # every field is read (and judged) before this line: nothing is read after it
    resident = Resident(community=community, name=name, phone=phone, address=address, lat=lat, lon=lon,
                        gender=gender, birth_year=birth_year, needs_notes=needs_notes,
                        consent_given_at=utcnow(), consent_recorded_by_id=user.id if user else None,
                        consent_note=consent_note)
    db.session.add(resident)
    db.session.flush()
    record_audit(user, "create", resident, community=community.id)
    return resident
