"""Managing accounts: who manages whom, creating, changing, locking, unlocking, one-time password links."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from sqlalchemy import select

from matcher.accounts import (
    account_query,
    assignable_roles,
    can_manage,
    change_account,
    check_password,
    create_account,
    load_manageable,
    lock_account,
    make_password_link,
    open_links,
    reset_password,
    revoke_links,
    unlock_account,
)
from matcher.accounts import create_user as _create_user
from matcher.errors import NotFound, ValidationError
from matcher.links import open_link
from matcher.models import AccountLink, AuditEntry, LinkPurpose, Role, User, utcnow
from tests.conftest import PASSWORD


def _ids(db, actor, **filters):
    return {u.username for u in db.session.scalars(account_query(actor, **filters))}


def test_a_street_coordinator_manages_only_the_accounts_below_them_in_their_street(world, db):
    users = world["users"]
    coord_a = users["coord_a"]
    seen = _ids(db, coord_a)
    # Workers of the street's communities, the leader of an organization based there, volunteers living there.
    assert seen == {"worker_a1", "worker_a2", "leader_a", "vol_a"}
    for other in ("coord", "coord_b", "admin", "worker_b1", "vol_b", "coord_a"):
        assert not can_manage(coord_a, users[other]), other
        with pytest.raises(NotFound):
            load_manageable(users[other].id, coord_a)
    assert load_manageable(users["worker_a1"].id, coord_a) is users["worker_a1"]


def test_the_district_coordinator_manages_the_district_but_no_coordinator(world, db):
    seen = _ids(db, world["users"]["coord"])
    assert {"worker_a1", "worker_a2", "worker_b1", "leader_a", "vol_a", "vol_b"} == seen
    assert not {"coord_a", "coord_b", "admin"} & seen


def test_an_administrator_manages_everyone_and_others_nobody(world, db):
    users = world["users"]
    assert _ids(db, users["admin"]) == set(users)
    for name in ("worker_a1", "leader_a", "vol_a"):
        assert _ids(db, users[name]) == set()
        with pytest.raises(NotFound):
            load_manageable(users["vol_b"].id, users[name])


@pytest.mark.parametrize("bad", ["abc", "١", str(2**63), "-1", None])
def test_a_bad_account_id_is_not_found(world, db, bad):
    with pytest.raises(NotFound):
        load_manageable(bad, world["users"]["admin"])


def test_only_an_administrator_gives_the_coordinator_role(world, db):
    assert Role.COORDINATOR in assignable_roles(world["users"]["admin"])
    assert assignable_roles(world["users"]["coord_a"]) == [Role.WORKER, Role.ORG_LEADER]
    assert assignable_roles(world["users"]["worker_a1"]) == []
    with pytest.raises(ValidationError) as caught:
        create_account(world["users"]["coord"], {"username": "newcoord", "role": "coordinator",
                                                 "area": str(world["areas"]["town_a"].id)})
    assert "role" in caught.value.errors
    assert db.session.scalar(select(User).where(User.username == "newcoord")) is None
    account, _link, _token = create_account(world["users"]["admin"], {
        "username": "newcoord", "role": "coordinator", "area": str(world["areas"]["town_a"].id)})
    assert account.role == Role.COORDINATOR


def test_a_coordinator_creates_a_worker_in_their_area_with_an_activation_link(world, db):
    coord_a = world["users"]["coord_a"]
    account, link, token = create_account(coord_a, {"username": "worker_new", "display_name": "新社工",
                                                    "role": "worker", "area": str(world["areas"]["a2"].id)})
    db.session.commit()
    assert account.password_hash is None and account.area_id == world["areas"]["a2"].id
    assert link.purpose == LinkPurpose.ACTIVATE and link.user_id == account.id
    assert open_link(token, LinkPurpose.ACTIVATE) is not None
    assert can_manage(coord_a, account)
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "create_account"))
    assert entry.user_id == coord_a.id and entry.object_id == account.id
    assert token not in repr([e.details for e in db.session.scalars(select(AuditEntry))])


@pytest.mark.parametrize(("data", "field"), [
    ({"role": "superuser", "area": "a1"}, "role"),
    ({"role": "", "area": "a1"}, "role"),
    ({"role": "worker", "area": "b1"}, "area"),            # another street's community
    ({"role": "worker", "area": "town_a"}, "area"),        # a worker works in a community
    ({"role": "worker", "area": "999999"}, "area"),
    ({"role": "worker", "area": "١"}, "area"),
    ({"role": "org_leader", "organization": "b"}, "organization"),  # based in another street
    ({"role": "admin"}, "role"),
    ({"role": "volunteer"}, "role"),
    ({"role": "worker", "area": "a1", "username": "x"}, "username"),
    ({"role": "worker", "area": "a1", "username": "worker_a1"}, "username"),
    ({"role": "worker", "area": "a1", "display_name": "a\x00b"}, "display_name"),
])
def test_bad_account_input_names_the_field_and_creates_nothing(world, db, data, field):
    areas, orgs = world["areas"], world["orgs"]
    form = {"username": "someone_new", **data}
    if form.get("area") in areas:
        form["area"] = str(areas[form["area"]].id)
    if form.get("organization") in orgs:
        form["organization"] = str(orgs[form["organization"]].id)
    before = db.session.scalar(select(User.id).order_by(User.id.desc()))
    with pytest.raises(ValidationError) as caught:
        create_account(world["users"]["coord_a"], form)
    db.session.rollback()
    assert field in caught.value.errors
    assert db.session.scalar(select(User.id).order_by(User.id.desc())) == before
    assert db.session.scalar(select(AccountLink.id)) is None


def test_changing_a_role_and_area_within_the_rules(world, db):
    coord_a, worker = world["users"]["coord_a"], world["users"]["worker_a1"]
    assert change_account(coord_a, worker, {"role": "worker", "area": str(world["areas"]["a2"].id)})
    assert worker.area_id == world["areas"]["a2"].id
    assert not change_account(coord_a, worker, {"role": "worker", "area": str(world["areas"]["a2"].id)})
    with pytest.raises(ValidationError) as caught:
        change_account(coord_a, worker, {"role": "worker", "area": str(world["areas"]["b1"].id)})
    assert "area" in caught.value.errors
    with pytest.raises(ValidationError):
        change_account(coord_a, worker, {"role": "coordinator", "area": str(world["areas"]["town_a"].id)})
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "change_account"))
    assert entry.details["old"]["area"] == world["areas"]["a1"].id
    assert entry.details["new"]["area"] == world["areas"]["a2"].id


def test_nobody_demotes_themselves_or_the_last_administrator(world, db):
    admin = world["users"]["admin"]
    with pytest.raises(ValidationError):
        change_account(admin, admin, {"role": "worker", "area": str(world["areas"]["a1"].id)})
    with pytest.raises(ValidationError):
        lock_account(admin, admin, "testing")
    other = _create_user(username="admin2", password=PASSWORD, role=Role.ADMIN)
    # admin2 may not demote or lock the only other administrator once admin2 itself is locked away.
    lock_account(admin, other, "left the office")
    with pytest.raises(ValidationError) as caught:
        change_account(other, admin, {"role": "worker", "area": str(world["areas"]["a1"].id)})
    assert "last active administrator" in caught.value.errors["role"]
    with pytest.raises(ValidationError):
        lock_account(other, admin, "why not")
    assert admin.role == Role.ADMIN and admin.active


def test_locking_ends_sessions_revokes_links_and_unlocking_lets_in_again(world, db):
    coord_a, worker = world["users"]["coord_a"], world["users"]["worker_a1"]
    _link, token = make_password_link(coord_a, worker)
    session_token = worker.session_token
    with pytest.raises(ValidationError) as caught:
        lock_account(coord_a, worker, "  ")
    assert "reason" in caught.value.errors and worker.active
    with pytest.raises(ValidationError):
        lock_account(coord_a, worker, "x" * 201)
    lock_account(coord_a, worker, "left the community office")
    assert not worker.active and worker.locked_by_id == coord_a.id and worker.locked_at is not None
    assert worker.lock_reason == "left the community office"
    assert worker.session_token != session_token
    assert open_link(token, LinkPurpose.RESET) is None and open_links(worker) == []
    with pytest.raises(ValidationError):
        lock_account(coord_a, worker, "again")
    with pytest.raises(ValidationError):
        make_password_link(coord_a, worker)
    unlock_account(coord_a, worker)
    assert worker.active and worker.locked_at is None and worker.lock_reason == ""
    with pytest.raises(ValidationError):
        unlock_account(coord_a, worker)
    actions = [e.action for e in db.session.scalars(select(AuditEntry).where(
        AuditEntry.object_type == "user", AuditEntry.object_id == worker.id).order_by(AuditEntry.id))]
    assert actions == ["lock_account", "unlock_account"]
    lock = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "lock_account"))
    assert lock.details == {"reason": "left the community office"}


def test_a_reset_link_works_once(world, db, caplog):
    coord_a, worker = world["users"]["coord_a"], world["users"]["worker_a1"]
    caplog.set_level(logging.DEBUG)
    link, token = make_password_link(coord_a, worker)
    assert link.purpose == LinkPurpose.RESET
    session_token = worker.session_token
    with pytest.raises(ValidationError) as caught:
        reset_password(link, "a-brand-new-passphrase", "another-passphrase")
    assert "repeat" in caught.value.errors
    with pytest.raises(ValidationError) as caught:
        reset_password(link, "password", "password")
    assert "password" in caught.value.errors
    reset_password(link, "a-brand-new-passphrase", "a-brand-new-passphrase")
    db.session.commit()
    assert check_password(worker, "a-brand-new-passphrase")
    assert worker.session_token != session_token
    assert open_link(token, LinkPurpose.RESET) is None
    details = repr([(e.action, e.details) for e in db.session.scalars(select(AuditEntry))])
    assert "reset_password" in details and "make_reset_link" in details
    assert token not in details and token not in caplog.text


def test_a_new_link_replaces_the_old_and_links_expire(world, db):
    coord_a, worker = world["users"]["coord_a"], world["users"]["worker_a1"]
    first, first_token = make_password_link(coord_a, worker)
    second, second_token = make_password_link(coord_a, worker)
    assert open_link(first_token, LinkPurpose.RESET) is None
    assert open_link(second_token, LinkPurpose.RESET) is not None
    second.expires_at = utcnow() - timedelta(seconds=1)
    assert open_link(second_token, LinkPurpose.RESET) is None


def test_revoking_the_open_links(world, db):
    coord_a, worker = world["users"]["coord_a"], world["users"]["worker_a1"]
    assert revoke_links(coord_a, worker) == 0
    _link, token = make_password_link(coord_a, worker)
    assert revoke_links(coord_a, worker) == 1
    assert open_link(token, LinkPurpose.RESET) is None


def test_an_account_without_a_password_gets_an_activation_link_and_nobody_links_themselves(world, db):
    coord_a = world["users"]["coord_a"]
    imported = _create_user(username="imported", password=None, role=Role.WORKER, area_id=world["areas"]["a1"].id)
    link, _token = make_password_link(coord_a, imported)
    assert link.purpose == LinkPurpose.ACTIVATE
    with pytest.raises(ValidationError):
        make_password_link(coord_a, coord_a)


def test_the_account_list_searches_and_filters(world, db):
    admin, users = world["users"]["admin"], world["users"]
    assert _ids(db, admin, q="李秀英") == {"vol_a"}              # a volunteer's real name
    assert _ids(db, admin, q="1381234") == {"vol_a"}             # phone digits
    assert _ids(db, admin, q="worker_a") == {"worker_a1", "worker_a2"}
    assert _ids(db, admin, q="%") == set()
    assert _ids(db, admin, role="coordinator") == {"coord", "coord_a", "coord_b"}
    assert _ids(db, admin, area_id=world["areas"]["town_b"].id) == {"coord_b", "worker_b1", "vol_b"}
    users["worker_a2"].password_hash = None
    lock_account(admin, users["worker_b1"], "on leave")
    assert _ids(db, admin, state="locked") == {"worker_b1"}
    assert _ids(db, admin, state="not_activated") == {"worker_a2"}
    assert "worker_a2" not in _ids(db, admin, state="active")
    for bad in ({"role": "boss"}, {"state": "asleep"}, {"area_id": world["areas"]["town_b"].id + 999}):
        with pytest.raises(ValidationError):
            account_query(admin, **bad)
    with pytest.raises(ValidationError):  # another street's area is not a filter a street coordinator has
        account_query(users["coord_a"], area_id=world["areas"]["town_b"].id)
