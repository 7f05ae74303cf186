"""Accounts: password hashing (argon2id), password policy and user creation."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from zxcvbn import zxcvbn
from zxcvbn.frequency_lists import FREQUENCY_LISTS

from . import rules
from .db import db
from .errors import ValidationError
from .models import Role, User
from .models.people import new_token

_hasher = PasswordHasher()
_dummy_hash: str | None = None  # verified when no account can match, so "no such user" takes as long

# Common passwords in China that the packaged list (zxcvbn's 30,000 most common passwords, from
# public breach corpora) lacks; both are refused whatever their length.
LOCAL_COMMON_PASSWORDS = frozenset(
    """12345678 123456789 1234567890 password password1 password123 qwertyuiop 11111111 00000000
    88888888 66666666 12341234 abc12345 abcd1234 1qaz2wsx qwerty123 iloveyou 1q2w3e4r 1q2w3e4r5t
    a1234567 aa123456 admin123 administrator letmein1 welcome1 sunshine princess football baseball
    87654321 5201314520 woaini1314 zxcvbnm123 asdfghjkl 147258369 123123123 12344321 qwe123456
    passw0rd superman dragon123 monkey123 trustno1 linli123 linli2026 demo12345""".split()
)
COMMON_PASSWORDS = frozenset(FREQUENCY_LISTS["passwords"]) | LOCAL_COMMON_PASSWORDS
# zxcvbn's estimate below this many guesses: a repeat, a sequence, a keyboard walk or a very common
# word ("aaaaaaaa", "abcdefgh", "qwertyui"); the common-password list holds the rest.
MIN_GUESSES = 1000

USERNAME_RE = re.compile(r"^[A-Za-z0-9_.\-]{3,64}$")


def configure_hasher(time_cost: int, memory_cost: int, parallelism: int) -> None:
    """Set the argon2id cost (tests use a low cost through configuration)."""
    global _hasher, _dummy_hash
    hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism)
    if (hasher.time_cost, hasher.memory_cost, hasher.parallelism) != (
            _hasher.time_cost, _hasher.memory_cost, _hasher.parallelism):
        _dummy_hash = None
    _hasher = hasher


def hash_password(password: str) -> str:
    """Hash a password with argon2id."""
    return _hasher.hash(password)


def _dummy() -> str:
    """A hash of a random password at the current cost, made once."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = _hasher.hash(secrets.token_urlsafe(16))
    return _dummy_hash


def check_password(user: User | None, password: str) -> bool:
    """True when the password matches; rehashes in place when the cost setting changed.

    Without a user or a usable hash, a dummy hash is verified all the same, so that a name with no
    account answers as slowly as one with an account (no telling which names exist by timing).
    """
    if user is None or not user.password_hash:
        try:
            _hasher.verify(_dummy(), password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            pass
        return False
    try:
        _hasher.verify(user.password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return True


def personal_words(user: User) -> list[str]:
    """What a person's password must not contain: their username, display name and phone digits."""
    words = [user.username, user.display_name or ""]
    volunteer = user.volunteer
    if volunteer is not None:
        words += [volunteer.real_name or "", rules.national_phone(volunteer.phone)]
    return words


def _contains_personal(password: str, personal: Iterable[str]) -> bool:
    lowered = password.lower()
    for word in personal:
        word = (word or "").strip().lower()
        parts = {word.replace(" ", ""), *re.split(r"[\s._\-]+", word)}
        for part in parts:
            # Latin words of 3 characters and more; Chinese names of 2 and more.
            if len(part) >= 3 or (len(part) == 2 and not part.isascii()):
                if part in lowered:
                    return True
    return False


def password_problem(password: str, min_length: int = 8, *, personal: Iterable[str] = ()) -> str | None:
    """Why a new password is unacceptable, or None.

    Too short or too long; one of the common passwords; a pattern guessed within a thousand tries
    (zxcvbn: repeats, sequences, keyboard walks); or it contains the person's own username, name or
    phone number (`personal`, see `personal_words`). No composition rules (OWASP ASVS 5.0).
    """
    if len(password) < min_length:
        return str(_l("Password must be at least %(n)d characters.", n=min_length))
    if len(password) > 256:
        return str(_l("Password is too long."))
    if password.lower() in COMMON_PASSWORDS:
        return str(_l("This password is too common; choose another."))
    if _contains_personal(password, personal):
        return str(_l("The password must not contain your username, name or phone number."))
    if zxcvbn(password[:72])["guesses"] < MIN_GUESSES:  # 72: zxcvbn's own limit
        return str(_l("This password is too easy to guess (a common word, a repeat or a sequence); choose another."))
    return None


def create_user(*, username: str, password: str | None, role: Role, display_name: str = "",
                area_id: int | None = None, organization_id: int | None = None,
                min_length: int = 8) -> User:
    """Create an account (password None: not yet activated). Flushes, never commits."""
    errors: dict[str, str] = {}
    if not USERNAME_RE.match(username or ""):
        errors["username"] = str(_l("Use 3–64 letters, digits, '.', '_' or '-'."))
    elif db.session.scalar(select(User.id).where(User.username == username)) is not None:
        errors["username"] = str(_l("This username is taken."))
    if password is not None:
        problem = password_problem(password, min_length, personal=[username, display_name])
        if problem:
            errors["password"] = problem
    if role in (Role.COORDINATOR, Role.WORKER) and area_id is None:
        errors["area"] = str(_l("Coordinators and community workers need an area."))
    if role == Role.ORG_LEADER and organization_id is None:
        errors["organization"] = str(_l("Organization leaders need an organization."))
    if errors:
        raise ValidationError(errors)
    user = User(username=username, display_name=display_name or username, role=role, area_id=area_id,
                organization_id=organization_id,
                password_hash=hash_password(password) if password is not None else None)
    db.session.add(user)
    db.session.flush()
    return user


def set_password(user: User, password: str, min_length: int = 8) -> None:
    """Set a new password and end every existing session of the user, and their calendar feed."""
    problem = password_problem(password, min_length, personal=personal_words(user))
    if problem:
        raise ValidationError({"password": problem})
    user.password_hash = hash_password(password)
    end_sessions(user, revoke_feeds=True)


def end_sessions(user: User, *, revoke_feeds: bool = False) -> None:
    """Invalidate every login cookie of this user (logout everywhere).

    With `revoke_feeds` (a password change, ending all sessions on purpose) the volunteer's private
    calendar feed address changes too. A plain logout keeps it: phones subscribed to the feed would
    otherwise lose it at every sign-out.
    """
    user.session_token = new_token()
    if revoke_feeds and user.volunteer is not None:
        from .volunteers import regenerate_calendar_token

        regenerate_calendar_token(user.volunteer, user=user)
