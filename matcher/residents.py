"""Use cases that change a resident's row: registering a resident of a community, with consent, and
importing a community's residents from a spreadsheet (community workers for their community,
coordinators for their area).

The form and the import read a resident with the same `read_resident` (same rules, same messages) and
build the row with the same `new_resident` (consent recorded: when and by whom). An imported resident
is found again within their community by phone number, else by name and address, so importing the
same file twice changes nothing and a corrected list updates the people it names. A row whose consent
cell is not 是 (yes) is a problem: no resident's data is kept without their consent.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from . import rules
from .audit import record_audit
from .db import db
from .errors import ValidationError
from .fields import Fields, check_location
from .imports import (
    CellProblem,
    Kind,
    Plan,
    Progress,
    RowPlan,
    cell_yes,
    community_cell,
    duplicates,
    field_problems,
    importer_scope,
    no_progress,
    read_rows,
)
from .models import Area, Gender, Resident, Role, User, utcnow


def read_resident(data: Mapping[str, Any], community: Area) -> dict[str, Any]:
    """A resident's checked values from a form (or a spreadsheet row); raises ValidationError naming
    every bad field. Consent is required."""
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
    return {"name": name, "phone": phone, "address": address, "lat": lat, "lon": lon, "gender": gender,
            "birth_year": birth_year, "needs_notes": needs_notes, "consent_note": consent_note}


def new_resident(values: Mapping[str, Any], *, community: Area, user: User | None) -> Resident:
    """The resident's row from checked values, consent recorded now by `user` (added, not flushed)."""
    resident = Resident(community=community, consent_given_at=utcnow(),
                        consent_recorded_by_id=user.id if user else None, **values)
    db.session.add(resident)
    return resident


def create_resident(data: Mapping[str, Any], *, community: Area, user: User | None) -> Resident:
    """Register a resident of a community, with consent recorded; raises ValidationError."""
    resident = new_resident(read_resident(data, community), community=community, user=user)
    db.session.flush()
    record_audit(user, "create", resident, community=community.id)
    return resident


# The fields a spreadsheet may change on a known resident (blank cells change nothing).
UPDATABLE = ("name", "phone", "address", "lat", "lon", "gender", "birth_year", "needs_notes", "consent_note")


def resident_changes(resident: Resident, values: Mapping[str, Any]) -> list[str]:
    return [k for k in UPDATABLE if values.get(k) not in (None, "") and values[k] != getattr(resident, k)]


def update_resident(resident: Resident, values: Mapping[str, Any], *, user: User | None) -> list[str]:
    """Change a resident to checked values (blank ones change nothing); the consent is recorded again
    when it was missing. Returns the changed fields (no flush: the caller flushes)."""
    changed = resident_changes(resident, values)
    for key in changed:
        setattr(resident, key, values[key])
    if resident.consent_given_at is None:
        resident.consent_given_at, resident.consent_recorded_by_id = utcnow(), user.id if user else None
        changed.append("consent")
    return changed


# --------------------------------------------------------------------------- the import

COLUMNS = (
    ("community", "所在社区", "Community", True),
    ("name", "姓名", "Name", True),
    ("phone", "联系电话", "Phone", False),
    ("gender", "性别", "Gender", False),
    ("birth_year", "出生年份", "Birth year", False),
    ("address", "住址", "Address", True),
    ("lat", "纬度", "Latitude", False),
    ("lon", "经度", "Longitude", False),
    ("needs_notes", "需求说明", "Needs", False),
    ("consent", "已同意登记", "Consent given", True),
    ("consent_note", "同意方式", "How consent was given", False),
)
TITLES = {key: zh for key, zh, _en, _req in COLUMNS}
EXAMPLE = {"community": "桂花社区", "name": "李秀英", "phone": "13800138001", "gender": "女", "birth_year": "1942",
           "address": "桂花路8号2栋301", "lat": "", "lon": "", "needs_notes": "独居，行动不便，每周需代购",
           "consent": "是", "consent_note": "本人签字同意书"}
GENDERS = {"男": "M", "m": "M", "male": "M", "女": "F", "f": "F", "female": "F"}


def resident_key(community_id: int, phone: str | None, name: str, address: str) -> tuple:
    """How a resident is found again within a community: phone number, else name and address."""
    return (community_id, "phone", phone) if phone else (community_id, "home", name, address)


def plan_residents(sheet, user: User, progress: Progress = no_progress) -> Plan:
    """Judge every row of a resident list without writing anything."""
    scope = importer_scope(user)

    def judge(number: int, cells: dict[str, str], fail) -> dict | None:
        community = None
        if not cells.get("community"):
            fail("community", _l("Enter the resident's community."))
        else:
            community, problem = community_cell(scope, cells["community"])
            if problem:
                fail("community", problem)
        consent = cell_yes(cells.get("consent", ""))
        if consent is None:
            fail("consent", _l("Write 是 when the resident agreed to be registered, else leave the row out."))
        elif not consent:
            fail("consent", _l("No consent: a resident's data is kept only with their consent. Ask them first, "
                               "or leave the row out."))
        raw_phone = cells.get("phone", "").replace(" ", "").replace("-", "")
        not_mainland = _l("'%(p)s' is not a mainland phone number (a mobile, or a landline with its area code).",
                          p=raw_phone[:20])
        gender_text = cells.get("gender", "")
        gender = GENDERS.get(gender_text.lower(), "?") if gender_text else ""
        if gender == "?":
            fail("gender", _l("Write 男 or 女."))
        if community is None:
            return None
        data = {"name": cells.get("name", ""), "phone": raw_phone,
                "address": cells.get("address", ""), "gender": gender if gender != "?" else "",
                "birth_year": cells.get("birth_year", ""), "needs_notes": cells.get("needs_notes", ""),
                "consent": "1", "consent_note": cells.get("consent_note", ""),
                "lat": cells.get("lat") or f"{community.lat}", "lon": cells.get("lon") or f"{community.lon}"}
        try:
            values = read_resident(data, community)
        except ValidationError as exc:
            if "phone" in exc.errors:
                exc.errors["phone"] = str(not_mainland)
            field_problems(exc, {k: k for k in TITLES}, fail, "name")
            return None
        if values["phone"] and not values["phone"].startswith("+86"):
            fail("phone", not_mainland)
            return None
        return {"community": community, "values": values,
                "key": resident_key(community.id, values["phone"], values["name"], values["address"]),
                "located": bool(cells.get("lat") and cells.get("lon"))}

    parsed, problems = read_rows(sheet, COLUMNS, judge, progress)
    parsed = [(n, v, bad or v is None) for n, v, bad in parsed]
    duplicates(parsed, lambda v: v["key"], TITLES["phone"],
               _l("The same resident (phone, or name and address) is on row %(r)d."), problems)
    bad_rows = {p.row for p in problems}
    good = [(n, v) for n, v, bad in parsed if not bad and n not in bad_rows]
    communities = {v["community"].id for _n, v in good}
    phones = {v["values"]["phone"] for _n, v in good if v["values"]["phone"]}
    names = {v["values"]["name"] for _n, v in good if not v["values"]["phone"]}
    known: dict[tuple, Resident] = {}
    if good:
        for part in (Resident.phone.in_(phones) if phones else None, Resident.name.in_(names) if names else None):
            if part is None:
                continue
            for r in db.session.scalars(select(Resident).where(Resident.community_id.in_(communities), part)):
                known.setdefault(resident_key(r.community_id, r.phone, r.name, r.address), r)
                if r.phone:  # a resident with a phone is found by name and address too
                    known.setdefault(resident_key(r.community_id, None, r.name, r.address), r)
    rows = []
    for number, v in good:
        values = v["values"]
        existing = known.get(v["key"])
        if existing is None:
            rows.append(RowPlan(number, "create", values["name"], values["phone"] or "",
                                values={"community": v["community"], "values": values}))
            continue
        if not v["located"]:  # no coordinates written: a known resident keeps where they are
            values = {k: x for k, x in values.items() if k not in ("lat", "lon")}
        changes = [TITLES.get(c, c) for c in resident_changes(existing, values)]
        if existing.consent_given_at is None:
            changes.append(TITLES["consent"])
        rows.append(RowPlan(number, "update" if changes else "same", values["name"], values["phone"] or "",
                            changes=changes, values={"values": values}, target_id=existing.id))
    problems.sort(key=lambda p: (p.row, p.column))
    return Plan(rows, problems)


def write_residents(plan: Plan, user: User) -> None:
    """Write a good plan: new residents with consent recorded, known ones updated (flushes once)."""
    ids = [r.target_id for r in plan.rows if r.action == "update"]
    existing = {r.id: r for r in db.session.scalars(select(Resident).where(Resident.id.in_(ids)))} if ids else {}
    for r in plan.rows:
        if r.action == "create":
            new_resident(r.values["values"], community=r.values["community"], user=user)
        elif r.action == "update":
            update_resident(existing[r.target_id], r.values["values"], user=user)
    db.session.flush()


IMPORT = Kind(
    name="residents", title=_l("Residents"), sheet="居民名单", columns=COLUMNS, example=EXAMPLE,
    roles=(Role.ADMIN, Role.COORDINATOR, Role.WORKER), plan=plan_residents, write=write_residents,
    notes=_l("Only residents who agreed to be registered (已同意登记: 是) are imported; consent is recorded with "
             "your name and the time. A resident is found again in their community by phone, else by name and "
             "address. Without coordinates the home is placed at the community centre."),
    list_endpoint="directory.residents")

__all__ = ["CellProblem", "create_resident", "plan_residents", "read_resident", "update_resident"]
