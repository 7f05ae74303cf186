"""The password policy (common, guessable and personal passwords), hashing and ending sessions."""

from __future__ import annotations

import pytest

from matcher.accounts import (
    COMMON_PASSWORDS,
    check_password,
    create_user,
    end_sessions,
    password_problem,
    personal_words,
    set_password,
)
from matcher.errors import ValidationError
from matcher.models import AuditEntry, Role


def test_the_common_password_list_is_the_packaged_one():
    assert len(COMMON_PASSWORDS) >= 10_000
    assert {"password", "iloveyou", "sunshine1", "woaini1314"} <= COMMON_PASSWORDS


@pytest.mark.parametrize("password", [
    "aaaaaaaa", "12121212", "abcdefgh", "qwertyui",  # repeats, sequences, keyboard walks
    "password", "Password1", "sunshine1", "football1", "jennifer", "88888888", "5201314520",  # common
])
def test_common_and_guessable_passwords_are_refused(password):
    assert password_problem(password) is not None


@pytest.mark.parametrize("password", ["correct horse battery", "a-brand-new-passphrase", "青溪区的桂花开了2026"])
def test_good_passwords_pass(password):
    assert password_problem(password) is None


def test_the_username_may_not_be_in_the_password(app, db):
    with pytest.raises(ValidationError) as caught:
        create_user(username="coord", password="coord123", role=Role.ADMIN)
    assert "username" in caught.value.errors["password"]
    with pytest.raises(ValidationError):
        create_user(username="wanglei", password="My-WangLei-2026", role=Role.ADMIN)


def test_the_display_name_may_not_be_in_the_password(app, db):
    with pytest.raises(ValidationError):
        create_user(username="lxy", password="xiuying-li-2026", role=Role.ADMIN, display_name="Li Xiuying")


def test_a_volunteers_name_and_phone_may_not_be_in_their_password(world, db):
    account = world["users"]["vol_a"]  # 李秀英, +86 138 1234 5678
    assert "13812345678" in personal_words(account) and "李秀英" in personal_words(account)
    for password in ("my-13812345678", "我是李秀英呀呀呀", "vol_a-rocks-2026"):
        with pytest.raises(ValidationError):
            set_password(account, password)
    set_password(account, "a-brand-new-passphrase")


def test_a_name_without_account_still_costs_a_verification(app, monkeypatch):
    from argon2 import PasswordHasher

    calls = []
    real = PasswordHasher.verify
    monkeypatch.setattr(PasswordHasher, "verify", lambda self, h, p: calls.append(h) or real(self, h, p))
    assert check_password(None, "whatever-password") is False
    assert len(calls) == 1 and calls[0].startswith("$argon2id$")


def test_ending_sessions_keeps_the_feed_and_a_new_password_changes_it(world, db):
    account, volunteer = world["users"]["vol_a"], world["volunteers"]["a"]
    feed, session = volunteer.calendar_token, account.session_token
    end_sessions(account)
    assert account.session_token != session and volunteer.calendar_token == feed
    end_sessions(account, revoke_feeds=True)
    assert volunteer.calendar_token != feed
    feed = volunteer.calendar_token
    set_password(account, "a-brand-new-passphrase")
    db.session.flush()
    assert volunteer.calendar_token != feed
    assert db.session.query(AuditEntry).filter_by(action="regenerate_calendar_token").count() == 2
