"""Accounts: password hashing (argon2id), password policy and user creation."""

from __future__ import annotations

import re

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from .db import db
from .errors import ValidationError
from .models import Role, User
from .models.people import new_token

_hasher = PasswordHasher()

# The most common passwords (from public breach lists' top entries); refused whatever their length.
COMMON_PASSWORDS = frozenset(
    """12345678 123456789 1234567890 password password1 password123 qwertyuiop 11111111 00000000
    88888888 66666666 12341234 abc12345 abcd1234 1qaz2wsx qwerty123 iloveyou 1q2w3e4r 1q2w3e4r5t
    a1234567 aa123456 admin123 administrator letmein1 welcome1 sunshine princess football baseball
    87654321 5201314520 woaini1314 zxcvbnm123 asdfghjkl 147258369 123123123 12344321 qwe123456
    passw0rd superman dragon123 monkey123 trustno1 linli123 linli2026 demo12345""".split()
)

USERNAME_RE = re.compile(r"^[A-Za-z0-9_.\-]{3,64}$")


def configure_hasher(time_cost: int, memory_cost: int, parallelism: int) -> None:
    """Set the argon2id cost (tests use a low cost through configuration)."""
    global _hasher
    _hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism)


def hash_password(password: str) -> str:
    """Hash a password with argon2id."""
    return _hasher.hash(password)


def check_password(user: User, password: str) -> bool:
    """True when the password matches; rehashes in place when the cost setting changed."""
    if not user.password_hash:
        return False
    try:
        _hasher.verify(user.password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return True


def password_problem(password: str, min_length: int = 8) -> str | None:
    """Why a new password is unacceptable, or None. Length and common-password checks only."""
    if len(password) < min_length:
        return str(_l("Password must be at least %(n)d characters.", n=min_length))
    if len(password) > 256:
        return str(_l("Password is too long."))
    if password.lower() in COMMON_PASSWORDS:
        return str(_l("This password is too common; choose another."))
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
        problem = password_problem(password, min_length)
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
    """Set a new password and end every existing session of the user."""
    problem = password_problem(password, min_length)
    if problem:
        raise ValidationError({"password": problem})
    user.password_hash = hash_password(password)
    user.session_token = new_token()


def end_sessions(user: User) -> None:
    """Invalidate every login cookie of this user (logout everywhere)."""
    user.session_token = new_token()
