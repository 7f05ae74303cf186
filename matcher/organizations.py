"""Use cases that change an organization's row: registering one and updating it, and importing a list of
them from a spreadsheet (coordinators for their area, administrators anywhere).

An organization is found again by its name (unique across the service), so importing the same file
twice changes nothing and a corrected list updates the organizations it names. Only an organization
whose home lies within the importer's area may be updated by them; one of the same name elsewhere is
named as a problem (ask that area's coordinator).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from .audit import record_audit
from .db import db
from .fields import has_control
from .imports import (
    CellProblem,
    Kind,
    Plan,
    Progress,
    RowPlan,
    duplicates,
    find_area,
    importer_scope,
    mainland_mobile,
    no_progress,
    read_rows,
    split_items,
)
from .models import Area, Category, Organization, OrgType, Registration, Role, User
from .rules import normalize_phone

# The organization types as a clerk writes them (Chinese or the code).
TYPE_NAMES = {
    "社区事务": OrgType.COMMUNITY_AFFAIRS, "社区事务类": OrgType.COMMUNITY_AFFAIRS,
    "公益慈善": OrgType.CHARITY, "公益慈善类": OrgType.CHARITY, "慈善": OrgType.CHARITY,
    "文体活动": OrgType.CULTURE_SPORTS, "文体活动类": OrgType.CULTURE_SPORTS, "文体": OrgType.CULTURE_SPORTS,
    "生活服务": OrgType.LIFE_SERVICES, "生活服务类": OrgType.LIFE_SERVICES,
    "农村社区协商": OrgType.RURAL_COUNCIL, "村民议事": OrgType.RURAL_COUNCIL, "农村协商": OrgType.RURAL_COUNCIL,
    **{t.value: t for t in OrgType},
}

# How a clerk writes the registration status (登记 with the civil affairs bureau, 备案 with the street or
# township, or neither), in Chinese or English.
REGISTRATION_NAMES = {
    "登记": Registration.REGISTERED, "已登记": Registration.REGISTERED, "登记注册": Registration.REGISTERED,
    "备案": Registration.FILED, "已备案": Registration.FILED,
    "未登记": Registration.UNREGISTERED, "未登记未备案": Registration.UNREGISTERED, "未备案": Registration.UNREGISTERED,
    "无": Registration.UNREGISTERED, "not registered": Registration.UNREGISTERED,
    **{r.value: r for r in Registration},
}
# The statuses as the pages name them (the Chinese term kept beside the English words: it is the legal one).
REGISTRATION_LABELS = {
    Registration.REGISTERED: _l("Registered (登记)"),
    Registration.FILED: _l("Filed (备案)"),
    Registration.UNREGISTERED: _l("Neither registered nor filed (未登记)"),
}

COLUMNS = (
    ("name", "组织名称", "Name", True),
    ("type", "组织类型", "Type", True),
    ("home", "所在区域", "Home area", True),
    ("areas", "服务区域", "Service areas", False),
    ("categories", "服务类别", "Categories", False),
    ("contact_phone", "联系电话", "Contact phone", False),
    ("description", "简介", "Description", False),
    ("registration", "登记状态", "Registration", False),
)
TITLES = {key: zh for key, zh, _en, _req in COLUMNS}
# A cell with control characters (pasted from another system, say) is refused as the forms refuse it.
CONTROL_MESSAGE = _l("Remove the control characters (such as NUL) from this text.")
EXAMPLE = {"name": "桂花邻里互助队", "type": "生活服务", "home": "桂花社区", "areas": "桂花社区；枫林社区",
           "categories": "助老服务；健康服务", "contact_phone": "13800138000", "description": "代购买药、陪伴聊天。",
           "registration": "备案"}


@dataclass
class OrganizationValues:
    name: str
    type: OrgType | None
    home: Area | None
    areas: list[Area] = field(default_factory=list)
    categories: list[Category] = field(default_factory=list)
    contact_phone: str | None = None
    description: str = ""
    # The area ids whose part of the service areas `areas` replaces (the importer's scope); None: all of them.
    within: frozenset[int] | None = None
    # 登记 / 备案 / neither; None: a new organization is filed (the usual case), an existing one keeps its own.
    registration: Registration | None = None


def service_areas(org: Organization, values: OrganizationValues) -> list[Area]:
    """The organization's service areas once `values.areas` replaces the part within `values.within`: the
    areas it serves outside the importer's scope stay (a street's coordinator cannot see them to list them)."""
    kept = [a for a in org.areas if values.within is not None and a.id not in values.within]
    kept_ids = {a.id for a in kept}
    return kept + [a for a in values.areas if a.id not in kept_ids]


def create_organization(values: OrganizationValues, *, user: User | None) -> Organization:
    """Register an organization with checked values (flushes, audited)."""
    org = Organization(name=values.name, type=values.type, home_area=values.home,
                       areas=list(values.areas or [values.home]), categories=list(values.categories),
                       contact_phone=values.contact_phone, description=values.description,
                       registration=values.registration or Registration.FILED)
    db.session.add(org)
    db.session.flush()
    record_audit(user, "create", org, home=values.home.id)
    return org


def organization_changes(org: Organization, values: OrganizationValues) -> list[str]:
    """The fields whose values differ from the organization's (blank optional values change nothing)."""
    out = []
    if values.type != org.type:
        out.append("type")
    if values.home.id != org.home_area_id:
        out.append("home")
    if values.areas and {a.id for a in service_areas(org, values)} != {a.id for a in org.areas}:
        out.append("areas")
    if values.categories and {c.id for c in values.categories} != {c.id for c in org.categories}:
        out.append("categories")
    if values.contact_phone and values.contact_phone != org.contact_phone:
        out.append("contact_phone")
    if values.description and values.description != org.description:
        out.append("description")
    if values.registration and values.registration != org.registration:
        out.append("registration")
    return out


def update_organization(org: Organization, values: OrganizationValues, *, user: User | None) -> list[str]:
    """Change an organization to checked values; returns the changed fields (flushes, audited)."""
    changed = organization_changes(org, values)
    if not changed:
        return []
    org.type, org.home_area = values.type, values.home
    if values.areas:
        org.areas = service_areas(org, values)
    if values.categories:
        org.categories = list(values.categories)
    if values.contact_phone:
        org.contact_phone = values.contact_phone
    if values.description:
        org.description = values.description
    if values.registration:
        org.registration = values.registration
    db.session.flush()
    record_audit(user, "update", org, fields=changed)
    return changed


# --------------------------------------------------------------------------- the import


def plan_organizations(sheet, user: User, progress: Progress = no_progress) -> Plan:
    """Judge every row of an organization list without writing anything."""
    scope = importer_scope(user, all_levels=True)
    within = frozenset(a.id for areas in scope.areas.values() for a in areas)
    categories = {}
    for c in db.session.scalars(select(Category).where(Category.active)):
        categories.update({c.code: c, c.name_zh: c, c.name_en.lower(): c})

    def judge(number: int, cells: dict[str, str], fail) -> OrganizationValues:
        name = cells.get("name", "")
        if not name:
            fail("name", _l("Enter the organization's name."))
        elif has_control(name):
            fail("name", CONTROL_MESSAGE)
        elif len(name) > 120:
            fail("name", _l("At most %(n)d characters.", n=120))
        type_text = cells.get("type", "")
        org_type = TYPE_NAMES.get(type_text) or TYPE_NAMES.get(type_text.lower())
        if org_type is None:
            fail("type", _l("Unknown type '%(t)s': write 社区事务, 公益慈善, 文体活动, 生活服务 or 农村社区协商.",
                            t=type_text[:20]))
        home = None
        if not cells.get("home"):
            fail("home", _l("Enter the street or community the organization belongs to."))
        else:
            home, problem = find_area(scope.areas, cells["home"])
            if problem:
                fail("home", _l("No area '%(a)s' within yours: write a street or community name as on the list.",
                                a=cells["home"][:30]))
        areas = []
        for part in split_items(cells.get("areas", "")):
            area, problem = find_area(scope.areas, part)
            if problem:
                fail("areas", _l("No area '%(a)s' within yours: write a street or community name as on the list.",
                                 a=part[:30]))
            elif area not in areas:
                areas.append(area)
        chosen = []
        for part in split_items(cells.get("categories", "")):
            category = categories.get(part) or categories.get(part.lower())
            if category is None:
                fail("categories", _l("Unknown category '%(c)s': use the names of the category list.", c=part[:20]))
            elif category not in chosen:
                chosen.append(category)
        phone, problem = None, None
        raw = cells.get("contact_phone", "")
        if raw:
            phone, problem = mainland_mobile(raw)
            if problem:  # a landline is fine for an organization, as long as it is a mainland number
                landline = normalize_phone(raw.replace(" ", ""))
                if landline and landline.startswith("+86"):
                    phone, problem = landline, None
            if problem:
                fail("contact_phone", _l("'%(p)s' is not a mainland phone number.", p=raw[:20]))
        description = cells.get("description", "")
        if has_control(description):
            fail("description", CONTROL_MESSAGE)
        elif len(description) > 2000:
            fail("description", _l("At most %(n)d characters.", n=2000))
        registration = None
        raw = cells.get("registration", "")
        if raw:
            registration = REGISTRATION_NAMES.get(raw) or REGISTRATION_NAMES.get(raw.lower())
            if registration is None:
                fail("registration", _l("Unknown registration status '%(s)s': write 登记, 备案 or 未登记 "
                                        "(registered, filed or unregistered).", s=raw[:20]))
        return OrganizationValues(name, org_type, home, areas, chosen, phone, description, within,
                                  registration=registration)

    parsed, problems = read_rows(sheet, COLUMNS, judge, progress)
    duplicates(parsed, lambda v: v.name, TITLES["name"], _l("The same organization is on row %(r)d."), problems)
    names = [v.name for _n, v, bad in parsed if not bad]
    known = {o.name: o for o in db.session.scalars(
        select(Organization).where(Organization.name.in_(names))
        .options(selectinload(Organization.areas), selectinload(Organization.categories)))} if names else {}
    rows = []
    bad_rows = {p.row for p in problems}
    for number, values, bad in parsed:
        if bad or number in bad_rows:
            continue
        org = known.get(values.name)
        if org is None:
            rows.append(RowPlan(number, "create", values.name, values={"_v": values}))
            continue
        if user.role != Role.ADMIN and org.home_area_id not in within:
            problems.append(CellProblem(number, TITLES["name"], str(_l(
                "An organization of this name belongs to another area: ask its coordinator, or choose another name."))))
            continue
        changes = [TITLES[c] for c in organization_changes(org, values)]
        rows.append(RowPlan(number, "update" if changes else "same", values.name, changes=changes,
                            values={"_v": values}, target_id=org.id))
    problems.sort(key=lambda p: (p.row, p.column))
    return Plan(rows, problems)


def write_organizations(plan: Plan, user: User) -> None:
    existing = {o.id: o for o in db.session.scalars(
        select(Organization).where(Organization.id.in_([r.target_id for r in plan.rows if r.target_id]))
        .options(selectinload(Organization.areas), selectinload(Organization.categories)))}
    for r in plan.rows:
        if r.action == "create":
            create_organization(r.values["_v"], user=user)
        elif r.action == "update":
            update_organization(existing[r.target_id], r.values["_v"], user=user)


IMPORT = Kind(
    name="organizations", title=_l("Organizations"), sheet="组织名单", columns=COLUMNS, example=EXAMPLE,
    roles=(Role.ADMIN, Role.COORDINATOR), plan=plan_organizations, write=write_organizations,
    notes=_l("An organization is found again by its name: importing the same list again changes nothing. Service "
             "areas are the home area unless you list them; the areas must lie within yours."),
    list_endpoint="directory.organizations")
