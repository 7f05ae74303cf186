"""Volunteer rosters in and out: an organization's or a street's list of volunteers as a spreadsheet.

In: `plan_roster` reads every row of an uploaded roster (`spreadsheets.read_sheet`) and judges it
against the database and the importer's scope without writing anything: each row becomes a `RowPlan`
(create, update with the changed fields, or unchanged) or one or more `CellProblem`s naming the row,
the column and what to do. `apply_roster` writes a roster only when no row has a problem, all in the
caller's transaction (all or nothing). A person is found again by mobile number, else by ID number, so
importing the same file twice changes nothing and an updated roster updates people rather than
duplicating them.

ID numbers (居民身份证号码) are checked (length, date of birth, GB 11643 check digit) and used to fill
the birth date and gender; only a keyed hash (to find the person again) and the last four characters
(to show masked) are kept, never the number itself.

Out: `roster_rows` lists the volunteers a user may see with hours and star level, phones masked.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from datetime import date
from decimal import Decimal

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from . import rules
from .access import volunteer_filter
from .audit import record_audit
from .db import db
from .fields import has_control
from .imports import (
    SEPARATORS,
    CellProblem,
    Kind,
    Plan,
    Progress,
    RowPlan,
    Scope,
    column_map,
    community_cell,
    importer_scope,
    no_progress,
)
from .models import (
    AvailabilitySlot,
    Certificate,
    Gender,
    Membership,
    MemberStatus,
    Organization,
    Role,
    Skill,
    User,
    Volunteer,
    utcnow,
)
from .settings import setting
from .spreadsheets import Sheet

# The roster's columns: (key, Chinese title, English title, required). Titles in either language are read.
COLUMNS = (
    ("real_name", "姓名", "Name", True),
    ("phone", "手机号", "Mobile", True),
    ("id_number", "身份证号", "ID number", False),
    ("gender", "性别", "Gender", False),
    ("birth_year", "出生年份", "Birth year", False),
    ("community", "所在社区", "Community", True),
    ("address", "住址", "Address", False),
    ("skills", "技能", "Skills", False),
    ("certificates", "证书", "Certificates", False),
    ("availability", "空闲时间", "Free time", False),
    ("max_hours", "每周最多小时", "Max hours per week", False),
    ("max_travel_km", "最远服务距离(公里)", "Max travel (km)", False),
    ("organization", "所属组织", "Organization", False),
)
TITLES = {key: zh for key, zh, _en, _req in COLUMNS}
EXAMPLE = {
    "real_name": "王小梅", "phone": "13800138000", "id_number": "", "gender": "女", "birth_year": "1968",
    "community": "桂花社区", "address": "桂花路12号3栋", "skills": "助老护理；急救", "certificates": "急救 2027-06-30",
    "availability": "周一 08:00-12:00；周三 14:00-17:00", "max_hours": "4", "max_travel_km": "3",
    "organization": "",
}
WEEKDAY_NAMES = {name: i for i, names in enumerate(
    ("一 1 mon monday", "二 2 tue tuesday", "三 3 wed wednesday", "四 4 thu thursday", "五 5 fri friday",
     "六 6 sat saturday", "日 天 7 sun sunday")) for name in names.split()}
_SEPARATORS = SEPARATORS
RosterPlan = Plan  # the plan of a roster is every import's plan
__all__ = ["CellProblem", "RosterPlan", "RowPlan", "Scope", "importer_scope"]
_SLOT = re.compile(r"^(?:周|星期|礼拜)?\s*([一二三四五六日天1-7]|mon|tue|wed|thu|fri|sat|sun)[a-z]*\s*"
                   r"(\d{1,2})[:：](\d{2})\s*[-–—~～至到]\s*(\d{1,2})[:：](\d{2})$", re.IGNORECASE)
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
# A cell with control characters (pasted from another system, say) is refused as the forms refuse it.
CONTROL_MESSAGE = _l("Remove the control characters (such as NUL) from this text.")


# --------------------------------------------------------------------------- reading cells


def id_number_problem(text: str) -> str | None:
    """Why an 18-character mainland ID number is not valid (None when it is)."""
    value = text.strip().upper()
    if not re.fullmatch(r"\d{17}[\dX]", value):
        return str(_l("An ID number has 18 characters: 17 digits and a digit or X."))
    try:
        date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return str(_l("The date of birth in the ID number (%(d)s) is not a date.", d=value[6:14]))
    total = sum(int(d) * w for d, w in zip(value[:17], _ID_WEIGHTS, strict=True))
    if _ID_CHECK[total % 11] != value[17]:
        return str(_l("The ID number's check digit is wrong: check the number for a typo."))
    return None


def id_number_hash(value: str) -> str:
    """The keyed hash kept instead of the ID number (HMAC-SHA256 with the service's secret key)."""
    key = str(setting("SECRET_KEY", "")).encode()
    return hmac.new(key, value.strip().upper().encode(), hashlib.sha256).hexdigest()


def parse_free_time(text: str) -> list[tuple[int, int, int]]:
    """'周一 08:00-12:00；周三 14:00-17:00' as (weekday 0–6, start minute, end minute); ValueError naming
    the part that cannot be read."""
    slots = []
    for part in [p.strip() for p in _SEPARATORS.split(text or "") if p.strip()]:
        found = _SLOT.match(part)
        if not found:
            raise ValueError(part)
        day = WEEKDAY_NAMES.get(found.group(1).lower())
        h1, m1, h2, m2 = (int(found.group(i)) for i in range(2, 6))
        start, end = h1 * 60 + m1, h2 * 60 + m2
        if day is None or h1 > 24 or h2 > 24 or m1 > 59 or m2 > 59 or end > 24 * 60 or start >= end:
            raise ValueError(part)
        slots.append((day, start, end))
    return sorted(set(slots))


def format_free_time(slots: Iterable) -> str:
    names = "一二三四五六日"
    return "；".join(f"周{names[s.weekday]} {s.start_minute // 60:02d}:{s.start_minute % 60:02d}-"
                    f"{s.end_minute // 60:02d}:{s.end_minute % 60:02d}" for s in slots)


# --------------------------------------------------------------------------- plan and apply


# What `_changes` reads of a known volunteer, loaded for the whole file rather than row by row.
_KNOWN_LOADS = (selectinload(Volunteer.skills), selectinload(Volunteer.slots),
                selectinload(Volunteer.certificates), selectinload(Volunteer.memberships))


def plan_roster(sheet: Sheet, user: User, progress: Progress = no_progress) -> RosterPlan:
    """Judge every row of a roster without writing anything."""
    columns, problems = column_map(sheet, COLUMNS)
    if problems:
        return RosterPlan([], problems)
    scope = importer_scope(user)
    skills = {s.code: s for s in db.session.scalars(select(Skill))}
    skill_names = {**{s.name_zh: s for s in skills.values()}, **{s.name_en.lower(): s for s in skills.values()},
                   **skills}
    phones, ids = {}, {}
    rows: list[RowPlan] = []
    parsed = []
    for i, row in enumerate(sheet.rows, 1):
        if i % 250 == 0:
            progress(i, len(sheet.rows))
        cell = {key: row.get(title) for key, title in columns.items()}
        bad: list[CellProblem] = []

        def fail(key: str, message) -> None:
            bad.append(CellProblem(row.number, TITLES[key], str(message)))  # noqa: B023

        values = _read_row(cell, scope, skill_names, fail)
        phone = values.get("phone")
        if phone:
            if phone in phones:
                fail("phone", _l("The same mobile number is on row %(r)d.", r=phones[phone]))
            phones.setdefault(phone, row.number)
        digest = values.get("id_hash")
        if digest:
            if digest in ids:
                fail("id_number", _l("The same ID number is on row %(r)d.", r=ids[digest]))
            ids.setdefault(digest, row.number)
        problems.extend(bad)
        parsed.append((row.number, values, bad))
    # Who is already here: by mobile number, else by ID number, in two statements for the whole file.
    known_phone = {v.phone: v for v in db.session.scalars(
        select(Volunteer).where(Volunteer.phone.in_(list(phones))).options(*_KNOWN_LOADS))} if phones else {}
    known_id = {v.id_number_hash: v for v in db.session.scalars(
        select(Volunteer).where(Volunteer.id_number_hash.in_(list(ids))).options(*_KNOWN_LOADS))} if ids else {}
    visible = set(db.session.scalars(select(Volunteer.id).where(
        Volunteer.id.in_([v.id for v in (*known_phone.values(), *known_id.values())]),
        volunteer_filter(user)))) if (known_phone or known_id) else set()
    for number, values, bad in parsed:
        if bad:
            continue
        existing = known_phone.get(values["phone"]) or (known_id.get(values["id_hash"]) if values.get("id_hash") else None)
        if existing is None:
            rows.append(RowPlan(number, "create", values["real_name"], values["phone"], values=values))
            continue
        if existing.id not in visible:
            problems.append(CellProblem(number, TITLES["phone"], str(_l(
                "This person is registered with another area's volunteers: ask its coordinator."))))
            continue
        other = known_phone.get(values["phone"])
        if other is not None and other.id != existing.id:
            problems.append(CellProblem(number, TITLES["phone"], str(_l(
                "This mobile number belongs to another volunteer than the ID number."))))
            continue
        changes = _changes(existing, values, scope)
        rows.append(RowPlan(number, "update" if changes else "same", values["real_name"], values["phone"],
                            changes=changes, values=values, target_id=existing.id))
    problems.sort(key=lambda p: (p.row, p.column))
    return RosterPlan(rows, problems)


def _read_row(cell: dict[str, str], scope: Scope, skill_names: dict, fail) -> dict:
    values: dict = {}
    name = cell.get("real_name", "")
    if not name:
        fail("real_name", _l("Enter the volunteer's name."))
    elif has_control(name):
        fail("real_name", CONTROL_MESSAGE)
    elif len(name) > 40:
        fail("real_name", _l("At most %(n)d characters.", n=40))
    values["real_name"] = name
    raw_phone = re.sub(r"[\s-]", "", cell.get("phone", ""))
    phone = rules.normalize_phone(raw_phone) if raw_phone else None
    if not raw_phone:
        fail("phone", _l("Enter a mobile number: it is how the volunteer is told and found again."))
    elif phone is None or not phone.startswith("+861") or len(phone) != 14:
        fail("phone", _l("'%(p)s' is not a mainland mobile number (11 digits starting with 1).", p=raw_phone[:20]))
        phone = None
    values["phone"] = phone
    id_text = cell.get("id_number", "").replace(" ", "")
    birth, gender_from_id = None, None
    if id_text:
        problem = id_number_problem(id_text)
        if problem:
            fail("id_number", problem)
        else:
            id_text = id_text.upper()
            values["id_hash"], values["id_tail"] = id_number_hash(id_text), id_text[-4:]
            birth = date(int(id_text[6:10]), int(id_text[10:12]), int(id_text[12:14]))
            gender_from_id = Gender.M if int(id_text[16]) % 2 else Gender.F
    gender_text = cell.get("gender", "")
    gender = {"男": Gender.M, "m": Gender.M, "male": Gender.M, "女": Gender.F,
              "f": Gender.F, "female": Gender.F}.get(gender_text.lower()) if gender_text else None
    if gender_text and gender is None:
        fail("gender", _l("Write 男 or 女."))
    if gender and gender_from_id and gender != gender_from_id:
        fail("gender", _l("The gender does not match the ID number."))
    values["gender"] = gender or gender_from_id
    year_text = cell.get("birth_year", "")
    year = None
    if year_text:
        year = int(year_text) if year_text.isdigit() and len(year_text) == 4 else None
        if year is None or not 1920 <= year <= date.today().year - 10:
            fail("birth_year", _l("Write a year such as 1968 (volunteers are at least 10)."))
            year = None
        elif birth and birth.year != year:
            fail("birth_year", _l("The birth year does not match the ID number."))
    values["birth_date"] = birth
    values["birth_year"] = birth.year if birth else year
    community_text = cell.get("community", "")
    if not community_text:
        fail("community", _l("Enter the community where the volunteer lives."))
        values["community"] = None
    else:
        community, problem = community_cell(scope, community_text)
        if problem:
            fail("community", problem)
        values["community"] = community
    address = cell.get("address", "")
    if has_control(address):
        fail("address", CONTROL_MESSAGE)
        address = ""
    values["address"] = address[:200]
    chosen = []
    for part in [p.strip() for p in _SEPARATORS.split(cell.get("skills", "")) if p.strip()]:
        skill = skill_names.get(part) or skill_names.get(part.lower())
        if skill is None:
            fail("skills", _l("Unknown skill '%(s)s': use the names of the skill list.", s=part[:20]))
        elif skill not in chosen:
            chosen.append(skill)
    values["skills"] = chosen
    certificates = []
    for part in [p.strip() for p in _SEPARATORS.split(cell.get("certificates", "")) if p.strip()]:
        what, _sep, until = part.rpartition(" ")
        what, until = (what or until).strip(), until.strip() if what else ""
        skill = skill_names.get(what) or skill_names.get(what.lower())
        expires = None
        if until and until not in ("长期", "永久"):
            try:
                expires = date.fromisoformat(until.replace("/", "-").replace(".", "-"))
            except ValueError:
                fail("certificates", _l("'%(c)s': write a skill and the date it expires, e.g. 急救 2027-06-30.", c=part[:30]))
                continue
        if skill is None:
            fail("certificates", _l("Unknown skill '%(s)s': use the names of the skill list.", s=what[:20]))
            continue
        certificates.append((skill, expires))
    values["certificates"] = certificates
    try:
        values["slots"] = parse_free_time(cell.get("availability", ""))
    except ValueError as exc:
        fail("availability", _l("Cannot read '%(p)s': write e.g. 周一 08:00-12:00；周三 14:00-17:00 (start before end).",
                                p=str(exc)[:30]))
        values["slots"] = []
    hours = _number(cell.get("max_hours", ""), 168)
    if hours is False:
        fail("max_hours", _l("Write the hours a week, from 0 to 168."))
    values["max_minutes"] = int(hours * 60) if hours not in (None, False) else None
    km = _number(cell.get("max_travel_km", ""), 100)
    if km is False:
        fail("max_travel_km", _l("Enter a distance from 0 to 100 km."))
    values["max_travel_km"] = float(km) if km not in (None, False) else None
    org_text = cell.get("organization", "")
    values["organization"] = scope.organization
    if org_text and scope.organization is None:
        org = scope.organizations.get(org_text)
        if org is None:
            fail("organization", _l("No organization '%(o)s' in your area.", o=org_text[:40]))
        values["organization"] = org
    elif org_text and scope.organization is not None and org_text != scope.organization.name:
        fail("organization", _l("You import members of %(o)s only.", o=scope.organization.name))
    return values


def _number(text: str, highest: int) -> Decimal | None | bool:
    """A cell's number from 0 to `highest`: None when blank, False when it is not one."""
    if not text:
        return None
    try:
        number = Decimal(text)
    except ArithmeticError:
        return False
    return number if number.is_finite() and 0 <= number <= highest else False


def _changes(v: Volunteer, values: dict, scope: Scope) -> list[str]:
    """The columns whose values differ from the volunteer's (blank optional cells change nothing)."""
    out = []
    if values["real_name"] != v.real_name:
        out.append(TITLES["real_name"])
    if values["phone"] != v.phone:
        out.append(TITLES["phone"])
    if values.get("id_hash") and values["id_hash"] != v.id_number_hash:
        out.append(TITLES["id_number"])
    if values["gender"] is not None and values["gender"] != v.gender:
        out.append(TITLES["gender"])
    if values["birth_year"] and values["birth_year"] != v.birth_year:
        out.append(TITLES["birth_year"])
    if values["community"] is not None and values["community"].id != v.home_area_id:
        out.append(TITLES["community"])
    if values["address"] and values["address"] != v.address:
        out.append(TITLES["address"])
    if values["skills"] and {s.id for s in values["skills"]} != {s.id for s in v.skills}:
        out.append(TITLES["skills"])
    if values["certificates"] and _certificate_set(values["certificates"]) != {
            (c.skill_id, c.expires_on) for c in v.certificates}:
        out.append(TITLES["certificates"])
    if values["slots"] and values["slots"] != [(s.weekday, s.start_minute, s.end_minute) for s in v.slots]:
        out.append(TITLES["availability"])
    if values["max_minutes"] is not None and values["max_minutes"] != v.max_minutes_per_week:
        out.append(TITLES["max_hours"])
    if values["max_travel_km"] is not None and values["max_travel_km"] != v.max_travel_km:
        out.append(TITLES["max_travel_km"])
    org = values["organization"]
    if org is not None and not any(m.organization_id == org.id and m.status == MemberStatus.APPROVED
                                   for m in v.memberships):
        out.append(TITLES["organization"])
    return out


def _certificate_set(certificates) -> set:
    return {(skill.id, expires) for skill, expires in certificates}


def apply_roster(sheet: Sheet, user: User, *, filename: str = "") -> RosterPlan:
    """Import a roster: nothing unless every row is good, then every row (no commit; the caller commits).
    Returns the plan carried out (its `problems` non-empty: nothing was written)."""
    plan = plan_roster(sheet, user)
    if not plan.ok:
        return plan
    write_roster(plan, user)
    counts = plan.counts
    record_audit(user, "import_roster", user, created=counts["create"], updated=counts["update"],
                 unchanged=counts["same"], file=filename[:80])
    return plan


def write_roster(plan: RosterPlan, user: User) -> None:
    """Write a roster's good plan: new volunteers added, known ones updated (flushes, never commits)."""
    existing = {v.id: v for v in db.session.scalars(
        select(Volunteer).where(Volunteer.id.in_([r.volunteer_id for r in plan.rows if r.volunteer_id]))
        .options(selectinload(Volunteer.skills), selectinload(Volunteer.slots),
                 selectinload(Volunteer.certificates), selectinload(Volunteer.memberships)))}
    now = utcnow()
    for r in plan.rows:
        if r.action == "same":
            continue
        values = r.values
        volunteer = existing.get(r.volunteer_id) if r.volunteer_id else None
        if volunteer is None:
            community = values["community"]
            volunteer = Volunteer(real_name=values["real_name"], phone=values["phone"], home_area=community,
                                  lat=community.lat, lon=community.lon, address=values["address"],
                                  max_minutes_per_week=values["max_minutes"] if values["max_minutes"] is not None else 240,
                                  max_travel_km=values["max_travel_km"] if values["max_travel_km"] is not None else 5.0)
            volunteer.preferred_minutes_per_week = min(120, volunteer.max_minutes_per_week)
            db.session.add(volunteer)
        _write(volunteer, values)
        org = values["organization"]
        if org is not None:
            member = next((m for m in volunteer.memberships if m.organization_id == org.id), None)
            if member is None:
                volunteer.memberships.append(Membership(organization_id=org.id, status=MemberStatus.APPROVED,
                                                        approved_at=now))
            elif member.status != MemberStatus.APPROVED:
                member.status, member.approved_at = MemberStatus.APPROVED, now
    db.session.flush()


def _write(v: Volunteer, values: dict) -> None:
    v.real_name, v.phone = values["real_name"], values["phone"]
    if values.get("id_hash"):
        v.id_number_hash, v.id_number_tail = values["id_hash"], values["id_tail"]
    if values["gender"] is not None:
        v.gender = values["gender"]
    if values["birth_date"]:
        v.birth_date = values["birth_date"]
    if values["birth_year"]:
        v.birth_year = values["birth_year"]
    community = values["community"]
    if community is not None and community.id != v.home_area_id:
        v.home_area, v.lat, v.lon = community, community.lat, community.lon
    if values["address"]:
        v.address = values["address"]
    if values["skills"]:
        v.skills = list(values["skills"])
    if values["certificates"] and _certificate_set(values["certificates"]) != {
            (c.skill_id, c.expires_on) for c in v.certificates}:
        v.certificates = [Certificate(skill_id=skill.id, name=f"{skill.name_zh}证书", expires_on=expires)
                          for skill, expires in values["certificates"]]
    if values["slots"] and values["slots"] != [(s.weekday, s.start_minute, s.end_minute) for s in v.slots]:
        v.slots = [AvailabilitySlot(weekday=d, start_minute=s, end_minute=e) for d, s, e in values["slots"]]
    if values["max_minutes"] is not None:
        v.max_minutes_per_week = values["max_minutes"]
        v.preferred_minutes_per_week = min(v.preferred_minutes_per_week or 0, v.max_minutes_per_week)
    if values["max_travel_km"] is not None:
        v.max_travel_km = values["max_travel_km"]


# --------------------------------------------------------------------------- out


def template_rows() -> tuple[list[str], list[list[str]]]:
    """The roster template: the Chinese column titles and one example row."""
    return [zh for _key, zh, _en, _req in COLUMNS], [[EXAMPLE[key] for key, *_rest in COLUMNS]]


EXPORT_COLUMNS = ("姓名", "手机号", "所在社区", "所属组织", "技能", "空闲时间", "累计服务小时", "星级", "状态")


def roster_rows(user: User, *, organization: Organization | None = None) -> list[list]:
    """The volunteers the user may see (or an organization's members), phones masked, with hours and stars."""
    query = (select(Volunteer).where(volunteer_filter(user))
             .options(selectinload(Volunteer.skills), selectinload(Volunteer.slots),
                      selectinload(Volunteer.home_area),
                      selectinload(Volunteer.memberships).selectinload(Membership.organization))
             .order_by(Volunteer.home_area_id, Volunteer.real_name, Volunteer.id))
    if organization is not None:
        query = query.where(Volunteer.id.in_(select(Membership.volunteer_id).where(
            Membership.organization_id == organization.id, Membership.status == MemberStatus.APPROVED)))
    thresholds = setting("STAR_THRESHOLDS", [100, 300, 600, 1000, 1500])
    out = []
    for v in db.session.scalars(query):
        hours = float(v.total_hours or 0)
        stars = rules.star_level(hours, thresholds)
        orgs = "、".join(m.organization.name for m in v.memberships if m.status == MemberStatus.APPROVED)
        out.append([v.real_name, rules.mask_phone(v.phone), v.home_area.name if v.home_area else "", orgs,
                    "、".join(s.name_zh for s in v.skills), format_free_time(v.slots), hours,
                    "★" * stars or "–", "在册" if v.active else "停用"])
    return out



IMPORT = Kind(
    name="volunteers", title=_l("Volunteer roster"), sheet="志愿者名册", columns=COLUMNS, example=EXAMPLE,
    roles=(Role.ADMIN, Role.COORDINATOR, Role.ORG_LEADER), plan=plan_roster, write=write_roster,
    notes=_l("ID numbers are checked and used for the date of birth and gender; only their last four characters "
             "are kept. Homes are placed at the community centre until the volunteer sets their own. A person "
             "already registered is found by mobile number (or ID number) and updated, never added twice."),
    list_endpoint="directory.volunteers")
