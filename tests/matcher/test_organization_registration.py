"""An organization's registration status (登记 / 备案 / neither): set when created or updated, and the demo
district's realistic mix."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import select

from matcher.models import AuditEntry, Organization, OrgType, Registration
from matcher.organizations import OrganizationValues, create_organization, update_organization


def values(world, **overrides) -> OrganizationValues:
    data = dict(name="登记测试队", type=OrgType.CHARITY, home=world["areas"]["a1"])
    data.update(overrides)
    return OrganizationValues(**data)


def test_a_new_organization_is_filed_unless_told_otherwise(world, db):
    coord = world["users"]["coord_a"]
    assert create_organization(values(world), user=coord).registration == Registration.FILED
    org = create_organization(values(world, name="民政登记队", registration=Registration.REGISTERED), user=coord)
    assert org.registration == Registration.REGISTERED


def test_updating_the_registration_is_a_change_and_audited(world, db):
    coord = world["users"]["coord_a"]
    org = create_organization(values(world), user=coord)
    assert update_organization(org, values(world), user=coord) == []  # no status given: kept
    changed = update_organization(org, values(world, registration=Registration.UNREGISTERED), user=coord)
    assert changed == ["registration"] and org.registration == Registration.UNREGISTERED
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "update",
                                                        AuditEntry.object_id == org.id)).one()
    assert entry.details["fields"] == ["registration"]


def test_the_demo_district_has_a_realistic_mix_of_registrations(app, db):
    from matcher.demo import load_demo
    from tests.matcher.test_demo import MONDAY

    load_demo(week_start=MONDAY, scale=0.25)
    mix = Counter(db.session.scalars(select(Organization.registration)))
    total = sum(mix.values())
    assert set(mix) == set(Registration)
    assert mix[Registration.FILED] > total / 2  # most are filed with their street
    assert mix[Registration.REGISTERED] >= 1 and mix[Registration.UNREGISTERED] >= 1
