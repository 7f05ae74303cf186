"""One-time links: stored as hashes, open until used, revoked or expired; invitations and activations."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from matcher import links
from matcher.accounts import create_user
from matcher.errors import AccessDenied, Conflict, NotFound, ValidationError
from matcher.models import AccountLink, AuditEntry, LinkPurpose, Role, User, utcnow
from matcher.volunteers import create_volunteer


def test_only_the_hash_is_stored_and_the_token_opens_its_purpose_once(world, db):
    link, token = links.make_invitation(user=world["users"]["leader_a"], note="王阿姨")
    assert link.token_hash == links.token_hash(token) and token not in link.token_hash
    assert links.open_link(token, LinkPurpose.INVITE).id == link.id
    assert links.open_link(token, LinkPurpose.ACTIVATE) is None
    assert links.open_link(token + "x", LinkPurpose.INVITE) is None
    assert links.open_link("x" * 101, LinkPurpose.INVITE) is None
    links.use_link(link)
    assert links.open_link(token, LinkPurpose.INVITE) is None and link.state == "used"


def test_expired_and_revoked_links_open_nothing(world, db):
    link, token = links.make_invitation(user=world["users"]["worker_a1"])
    assert link.area_id == world["areas"]["a1"].id and link.organization_id is None
    link.expires_at = utcnow() - timedelta(seconds=1)
    assert links.open_link(token, LinkPurpose.INVITE) is None and link.state == "expired"
    other, other_token = links.make_invitation(user=world["users"]["worker_a1"])
    links.revoke_link(other, user=world["users"]["worker_a1"])
    assert links.open_link(other_token, LinkPurpose.INVITE) is None and other.state == "revoked"


def test_only_leaders_and_community_workers_invite(world, db):
    for name in ("vol_a", "coord", "admin"):
        with pytest.raises(AccessDenied):
            links.make_invitation(user=world["users"][name])
    with pytest.raises(ValidationError):
        links.make_invitation(user=world["users"]["leader_a"], note="a\x00b")


def test_links_are_loaded_by_their_maker_only(world, db):
    link, _token = links.make_invitation(user=world["users"]["leader_a"])
    assert links.load_own_link(link.id, world["users"]["leader_a"]) is link
    assert links.load_own_link(link.id, world["users"]["admin"]) is link
    with pytest.raises(NotFound):
        links.load_own_link(link.id, world["users"]["worker_a1"])


def test_an_activation_link_gives_an_account_and_replaces_the_earlier_one(world, db):
    volunteer = create_volunteer({"real_name": "赵丽", "phone": "13811119999", "home_area": world["areas"]["a1"].id,
                                  "lat": 29.346, "lon": 107.706}, user=None)
    first, first_token = links.make_activation_link(volunteer, user=world["users"]["worker_a1"])
    assert volunteer.user.username == "13811119999" and volunteer.user.password_hash is None
    second, second_token = links.make_activation_link(volunteer, user=world["users"]["coord"])
    assert first.state == "revoked" and second.state == "open"
    assert links.open_link(first_token, LinkPurpose.ACTIVATE) is None
    with pytest.raises(NotFound):
        links.make_activation_link(volunteer, user=world["users"]["worker_b1"])  # another community
    with pytest.raises(Conflict):
        links.make_activation_link(world["volunteers"]["a"], user=world["users"]["admin"])  # active already
    account = links.activate_account(second, {"phone_last4": "9999", "birth_date": "1970-03-04",
                                              "password": "lantern-orchard-cobalt",
                                              "repeat": "lantern-orchard-cobalt"})
    assert account.password_hash and second.state == "used" and volunteer.birth_year == 1970
    assert links.open_link(second_token, LinkPurpose.ACTIVATE) is None


def test_wrong_digits_are_counted_and_end_the_link(world, db):
    account = create_user(username="13811119999", password=None, role=Role.VOLUNTEER)
    create_volunteer({"real_name": "赵丽", "phone": "13811119999", "home_area": world["areas"]["a1"].id,
                      "lat": 29.346, "lon": 107.706}, user=None, account=account)
    link, token = links.make_activation_link(account.volunteer, user=world["users"]["admin"])
    with pytest.raises(ValidationError) as info:
        links.activate_account(link, {"phone_last4": "1234", "birth_date": "1970-03-04",
                                      "password": "lantern-orchard-cobalt", "repeat": "lantern-orchard-cobalt"})
    assert set(info.value.errors) == {"phone_last4"}
    assert all(links.activation_failed(link) for _ in range(links.ACTIVATION_MAX_FAILURES - 1))
    assert not links.activation_failed(link)
    assert links.open_link(token, LinkPurpose.ACTIVATE) is None
    assert db.session.scalar(select(User.password_hash).where(User.id == account.id)) is None
    details = db.session.scalars(select(AuditEntry.details)).all()
    assert token not in str(details)
    assert db.session.scalar(select(AccountLink.id).where(AccountLink.token_hash == token)) is None


def test_a_locked_account_is_not_activated_by_link(world, db):
    account = create_user(username="13811119999", password=None, role=Role.VOLUNTEER)
    volunteer = create_volunteer({"real_name": "赵丽", "phone": "13811119999", "home_area": world["areas"]["a1"].id,
                                  "lat": 29.346, "lon": 107.706}, user=None, account=account)
    link, _token = links.make_activation_link(volunteer, user=world["users"]["admin"])
    account.active = False  # locked after the link was made
    with pytest.raises(Conflict):
        links.activate_account(link, {"phone_last4": "9999", "birth_date": "1970-03-04",
                                      "password": "lantern-orchard-cobalt", "repeat": "lantern-orchard-cobalt"})
    with pytest.raises(Conflict):
        links.make_activation_link(volunteer, user=world["users"]["admin"])
    assert account.password_hash is None and account.active is False
