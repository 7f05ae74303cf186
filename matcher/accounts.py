"""Accounts: password hashing (argon2id), password policy and user creation."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Mapping
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, and_, false, func, or_, select, true
from zxcvbn import zxcvbn
from zxcvbn.frequency_lists import FREQUENCY_LISTS

from . import rules
from .access import user_area
from .audit import record_audit
from .db import db
from .errors import Conflict, NotFound, ValidationError
from .fields import Fields, has_control, parse_int, shown
from .models import AccountLink, Area, AreaLevel, LinkPurpose, Organization, Role, User, Volunteer, utcnow
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


MOBILE_RE = re.compile(r"^1[3-9][0-9]{9}$")


def find_account(name: str) -> User | None:
    """The account signed in to with `name`: its username, or a volunteer's 11-digit mainland mobile
    (people remember their phone, not the username an import gave them: "v3723")."""
    user = db.session.scalar(select(User).where(User.username == name))
    if user is None and MOBILE_RE.match(name):
        user = db.session.scalar(select(User).join(Volunteer, Volunteer.user_id == User.id)
                                 .where(Volunteer.phone == "+86" + name))
    return user


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

    With `revoke_feeds` (a password change, ending all sessions on purpose) the phone client's device
    tokens are revoked and the volunteer's private calendar feed address changes too. A plain logout keeps it: phones subscribed to the feed would
    otherwise lose it at every sign-out.
    """
    user.session_token = new_token()
    if revoke_feeds:
        from .tokens import revoke_devices

        revoke_devices(user)  # the phones signed in with the old password sign in again
    if revoke_feeds and user.volunteer is not None:
        from .volunteers import regenerate_calendar_token

        regenerate_calendar_token(user.volunteer, user=user)


def bind_wechat(user: User, openid: str) -> None:
    """Bind the person's WeChat identity (from the mini-program's sign-in) to their account.

    An openid bound to another account is refused (Conflict): one WeChat signs in one person. Binding
    anew does not subscribe the person to WeChat messages: they agree to that in WeChat itself.
    Flushes; audited (never the openid itself)."""
    if user.wechat_openid == openid:
        return
    other = db.session.scalar(select(User.id).where(User.wechat_openid == openid, User.id != user.id))
    if other is not None:
        raise Conflict(str(_l("This WeChat is bound to another account. Unbind it there first.")), "code")
    if user.wechat_openid != openid:
        user.wechat_subscribed = False
    user.wechat_openid = openid
    db.session.flush()
    record_audit(user, "wechat_bind", user)


def unbind_wechat(user: User) -> bool:
    """Unbind the person's WeChat: no sign-in or messages through it any more. False when none was bound."""
    if not user.wechat_openid:
        return False
    user.wechat_openid = None
    user.wechat_subscribed = False
    db.session.flush()
    record_audit(user, "wechat_unbind", user)
    return True


# --------------------------------------------------------------------------- managing accounts
#
# Who manages whom: an administrator everyone, and only administrators make or change coordinators
# and administrators. A coordinator manages the accounts below their role within their area's
# subtree: the community workers of its communities, the leaders of organizations based in it and
# the volunteers living in it; they give only those staff roles, only within their area. Every other
# role manages no account. Out of scope is "not found" (`load_manageable`), never "forbidden".

STAFF_ROLES = (Role.ADMIN, Role.COORDINATOR, Role.WORKER, Role.ORG_LEADER)
BELOW_COORDINATOR = (Role.WORKER, Role.ORG_LEADER, Role.VOLUNTEER)
ACCOUNT_STATES = ("active", "locked", "not_activated")
MAX_REASON = 200


def _subtree_ids(area: Area):
    return select(Area.id).where(Area.path.startswith(area.path))


def placed_in(area: Area):
    """Accounts placed in `area`'s subtree, as a filter on User: coordinators and workers by their area,
    leaders by their organization's home area, volunteers by where they live."""
    subtree = _subtree_ids(area)
    return or_(
        and_(User.role.in_((Role.COORDINATOR, Role.WORKER)), User.area_id.in_(subtree)),
        and_(User.role == Role.ORG_LEADER,
             User.organization_id.in_(select(Organization.id).where(Organization.home_area_id.in_(subtree)))),
        and_(User.role == Role.VOLUNTEER,
             User.id.in_(select(Volunteer.user_id).where(Volunteer.user_id.is_not(None),
                                                          Volunteer.home_area_id.in_(subtree)))),
    )


def manageable(actor: User):
    """The accounts `actor` may see and manage, as a filter on User."""
    if actor.role == Role.ADMIN:
        return true()
    if actor.role != Role.COORDINATOR or actor.area_id is None:
        return false()
    area = db.session.get(Area, actor.area_id)
    if area is None:
        return false()
    return and_(User.role.in_(BELOW_COORDINATOR), placed_in(area))


def can_manage(actor: User, account: User) -> bool:
    """Whether `actor` may manage `account` (see `manageable`)."""
    return db.session.scalar(select(User.id).where(User.id == account.id, manageable(actor))) is not None


def load_manageable(account_id: Any, actor: User) -> User:
    """An account `actor` may manage, else NotFound (never revealing that it exists)."""
    number = parse_int(account_id, 1)
    account = db.session.scalar(select(User).where(User.id == number, manageable(actor))) if number else None
    if account is None:
        raise NotFound("not found")
    return account


def assignable_roles(actor: User) -> list[Role]:
    """The roles `actor` may give an account: all staff roles for an administrator, the community
    worker's and the organization leader's for a coordinator, none for anyone else. Volunteer
    accounts come with their profiles (registration, invitation, import), never bare from here."""
    if actor.role == Role.ADMIN:
        return list(STAFF_ROLES)
    if actor.role == Role.COORDINATOR:
        return [Role.WORKER, Role.ORG_LEADER]
    return []


def assignable_areas(actor: User) -> list[Area]:
    """Areas `actor` may place an account in: every area for an administrator, their subtree for a coordinator."""
    stmt = select(Area).order_by(Area.path)
    if actor.role != Role.ADMIN:
        area = user_area(actor) if actor.role == Role.COORDINATOR else None
        if area is None:
            return []
        stmt = stmt.where(Area.path.startswith(area.path))
    return list(db.session.scalars(stmt))


def assignable_organizations(actor: User) -> list[Organization]:
    """Organizations whose leaders `actor` may appoint: all, or those based in a coordinator's area."""
    stmt = select(Organization).order_by(Organization.name)
    if actor.role != Role.ADMIN:
        area = user_area(actor) if actor.role == Role.COORDINATOR else None
        if area is None:
            return []
        stmt = stmt.where(Organization.home_area_id.in_(_subtree_ids(area)))
    return list(db.session.scalars(stmt))


def account_state(account: User) -> str:
    """"locked", "not_activated" (no password yet) or "active"."""
    if not account.active:
        return "locked"
    if not account.password_hash:
        return "not_activated"
    return "active"


def account_query(actor: User, *, q: str = "", role: str = "", area_id: int | None = None,
                  state: str = "") -> Select:
    """The accounts `actor` manages, searched by username or name (and a volunteer's real name) or
    by phone digits, filtered by role, area (accounts placed in its subtree) and state. Unknown
    filter values are a ValidationError naming the filter."""
    errors: dict[str, str] = {}
    stmt = select(User).where(manageable(actor))
    if role:
        if role not in {r.value for r in Role}:
            errors["role"] = str(_l("Choose a role from the list."))
        else:
            stmt = stmt.where(User.role == role)
    if state:
        if state not in ACCOUNT_STATES:
            errors["state"] = str(_l("Choose a state from the list."))
        elif state == "locked":
            stmt = stmt.where(User.active.is_(False))
        elif state == "not_activated":
            stmt = stmt.where(User.active.is_(True), User.password_hash.is_(None))
        else:
            stmt = stmt.where(User.active.is_(True), User.password_hash.is_not(None))
    if area_id is not None:
        area = db.session.get(Area, area_id)
        if area is None or area.id not in {a.id for a in assignable_areas(actor)}:
            errors["area"] = str(_l("Choose an area from the list."))
        else:
            stmt = stmt.where(placed_in(area))
    if errors:
        raise ValidationError(errors)
    if q:
        digits = "".join(ch for ch in q if ch.isascii() and ch.isdigit())
        named = or_(User.username.contains(q, autoescape=True), User.display_name.contains(q, autoescape=True),
                    User.id.in_(select(Volunteer.user_id).where(Volunteer.real_name.contains(q, autoescape=True))))
        if digits and len(digits) >= 3 and digits == q.replace(" ", "").replace("-", "").lstrip("+"):
            named = or_(named, User.id.in_(select(Volunteer.user_id).where(
                Volunteer.phone.contains(digits, autoescape=True))))
        stmt = stmt.where(named)
    return stmt.order_by(User.username)


def _place(actor: User, data: Mapping[str, Any], *, role_now: Role | None = None,
           account: User | None = None) -> tuple[Role | None, Area | None, Organization | None, dict[str, str]]:
    """The role, area and organization asked for in `data`, checked against what `actor` may give."""
    errors: dict[str, str] = {}
    roles = assignable_roles(actor)
    raw_role = data.get("role")
    role: Role | None = None
    if not isinstance(raw_role, str) or not raw_role:
        errors["role"] = str(_l("Choose a role."))
    elif raw_role not in {r.value for r in Role}:
        errors["role"] = str(_l("Unknown role '%(v)s'.", v=shown(raw_role)))
    else:
        role = Role(raw_role)
        keeps_volunteer = role == role_now == Role.VOLUNTEER or (
            role == Role.VOLUNTEER and account is not None and account.volunteer is not None)
        if role not in roles and not keeps_volunteer:
            if role == Role.VOLUNTEER:
                errors["role"] = str(_l("Volunteer accounts come with a volunteer profile: register or invite the volunteer."))
            else:
                errors["role"] = str(_l("Only an administrator can give this role."))
    area = organization = None
    if role in (Role.COORDINATOR, Role.WORKER):
        number = parse_int(data.get("area"), 1)
        area = db.session.get(Area, number) if number else None
        if area is None or area.id not in {a.id for a in assignable_areas(actor)}:
            errors["area"] = str(_l("Choose an area from the list."))
            area = None
        elif role == Role.WORKER and area.level != AreaLevel.COMMUNITY:
            errors["area"] = str(_l("A community worker works in a village or community."))
        elif role == Role.COORDINATOR and area.level == AreaLevel.COMMUNITY:
            errors["area"] = str(_l("A coordinator works for a township/street or the district."))
    if role == Role.ORG_LEADER:
        number = parse_int(data.get("organization"), 1)
        organization = db.session.get(Organization, number) if number else None
        if organization is None or organization.id not in {o.id for o in assignable_organizations(actor)}:
            errors["organization"] = str(_l("Choose an organization from the list."))
            organization = None
    return role, area, organization, errors


def _other_active_admins(account: User) -> int:
    return db.session.scalar(select(func.count(User.id)).where(
        User.role == Role.ADMIN, User.active.is_(True), User.id != account.id)) or 0


def _guard_self_and_last_admin(actor: User, account: User, field: str) -> None:
    """Nobody locks or demotes themselves, nor the last active administrator."""
    if account.id == actor.id:
        raise ValidationError({field: str(_l("You cannot do this to your own account."))})
    if account.role == Role.ADMIN and account.active and _other_active_admins(account) == 0:
        raise ValidationError({field: str(_l("This is the last active administrator; make another one first."))})


def create_account(actor: User, data: Mapping[str, Any]) -> tuple[User, AccountLink, str]:
    """Create a staff account without a password, with a one-time activation link to set one.

    Returns the account, the link and its token (shown once, never logged). Flushes, never commits;
    audited ("create_account", and the link's own entry).
    """
    from .links import make_link

    username = data.get("username")
    username = username.strip() if isinstance(username, str) else ""
    display_name = data.get("display_name")
    display_name = display_name.strip() if isinstance(display_name, str) else ""
    role, area, organization, errors = _place(actor, data)
    if not USERNAME_RE.match(username):
        errors["username"] = str(_l("Use 3–64 letters, digits, '.', '_' or '-'."))
    elif db.session.scalar(select(User.id).where(User.username == username)) is not None:
        errors["username"] = str(_l("This username is taken."))
    if has_control(display_name):
        errors["display_name"] = str(_l("Remove the control characters (such as NUL) from this text."))
    elif len(display_name) > 80:
        errors["display_name"] = str(_l("At most %(n)d characters.", n=80))
    if errors:
        raise ValidationError(errors)
    account = create_user(username=username, password=None, role=role, display_name=display_name,
                          area_id=area.id if area else None,
                          organization_id=organization.id if organization else None)
    record_audit(actor, "create_account", account, role=role.value, area=account.area_id,
                 organization=account.organization_id)
    link, token = make_link(LinkPurpose.ACTIVATE, created_by=actor, user=account)
    return account, link, token


def change_account(actor: User, account: User, data: Mapping[str, Any]) -> bool:
    """Change an account's role and its area or organization, within what `actor` may give.

    Nobody demotes themselves or the last active administrator. Returns whether anything changed.
    Flushes, never commits; audited ("change_account" with the old and new values).
    """
    role, area, organization, errors = _place(actor, data, role_now=account.role, account=account)
    if errors:
        raise ValidationError(errors)
    new_area = area.id if area else None
    new_org = organization.id if organization else None
    if (role, new_area, new_org) == (account.role, account.area_id, account.organization_id):
        return False
    if role != account.role:
        _guard_self_and_last_admin(actor, account, "role")
    if account.role in (Role.ADMIN, Role.COORDINATOR) and actor.role != Role.ADMIN:
        raise ValidationError({"role": str(_l("Only an administrator can give this role."))})
    old = {"role": account.role.value, "area": account.area_id, "organization": account.organization_id}
    account.role, account.area_id, account.organization_id = role, new_area, new_org
    db.session.flush()
    record_audit(actor, "change_account", account, old=old,
                 new={"role": role.value, "area": new_area, "organization": new_org})
    return True


def lock_account(actor: User, account: User, reason: Any) -> None:
    """Lock an account: it cannot sign in, every session ends and its open links are revoked.

    Records who, when and why (a reason is required). Nobody locks themselves or the last active
    administrator. Flushes, never commits; audited ("lock_account" with the reason).
    """
    from .links import revoke_link

    text = reason.strip() if isinstance(reason, str) else ""
    if not account.active:
        raise ValidationError({"reason": str(_l("This account is locked already."))})
    if not text:
        raise ValidationError({"reason": str(_l("Say why the account is locked (the person will ask)."))})
    if has_control(text):
        raise ValidationError({"reason": str(_l("Remove the control characters (such as NUL) from this text."))})
    if len(text) > MAX_REASON:
        raise ValidationError({"reason": str(_l("At most %(n)d characters.", n=MAX_REASON))})
    _guard_self_and_last_admin(actor, account, "reason")
    account.active = False
    account.locked_at = utcnow()
    account.locked_by_id = actor.id
    account.lock_reason = text
    end_sessions(account)
    for link in open_links(account):
        revoke_link(link, user=actor)
    db.session.flush()
    record_audit(actor, "lock_account", account, reason=text)


def unlock_account(actor: User, account: User) -> None:
    """Let a locked account sign in again. Flushes, never commits; audited ("unlock_account")."""
    if account.active:
        raise ValidationError({"account": str(_l("This account is not locked."))})
    account.active = True
    account.locked_at = None
    account.locked_by_id = None
    account.lock_reason = ""
    db.session.flush()
    record_audit(actor, "unlock_account", account)


def open_links(account: User) -> list[AccountLink]:
    """The account's activation and reset links that still work, newest first."""
    links = db.session.scalars(select(AccountLink).where(
        AccountLink.user_id == account.id, AccountLink.purpose.in_((LinkPurpose.ACTIVATE, LinkPurpose.RESET)),
        AccountLink.used_at.is_(None), AccountLink.revoked_at.is_(None)).order_by(AccountLink.id.desc()))
    return [link for link in links if link.state == "open"]


def make_password_link(actor: User | None, account: User) -> tuple[AccountLink, str]:
    """A one-time link for the person to set a password, handed over in person: an activation link
    while the account has no password, a reset link otherwise. Earlier open links of that purpose
    stop working. Not for one's own account (the password page is) nor a locked one. `actor` None:
    an administrator at the command line (`flask accounts reset-link`).
    Returns the link and its token (shown once, never logged). Flushes, never commits; audited.
    """
    from .links import make_link

    if actor is not None and account.id == actor.id:
        raise ValidationError({"account": str(_l("Change your own password on the password page."))})
    if not account.active:
        raise ValidationError({"account": str(_l("Unlock the account first."))})
    purpose = LinkPurpose.RESET if account.password_hash else LinkPurpose.ACTIVATE
    return make_link(purpose, created_by=actor, user=account)


def revoke_links(actor: User, account: User) -> int:
    """Revoke every open activation and reset link of the account; how many. Audited per link."""
    from .links import revoke_link

    links = open_links(account)
    for link in links:
        revoke_link(link, user=actor)
    return len(links)


def reset_password(link: AccountLink, password: Any, repeat: Any, min_length: int = 8) -> User:
    """Set a new password through an open reset link: the link is used up and every session of the
    account ends. The two entries must agree and meet the password policy. Flushes, never commits;
    audited ("reset_password")."""
    from .links import use_link

    account = link.user
    password = password if isinstance(password, str) else ""
    repeat = repeat if isinstance(repeat, str) else ""
    if not password:
        raise ValidationError({"password": str(_l("This field is required."))})
    if password != repeat:
        raise ValidationError({"repeat": str(_l("The two new passwords differ."))})
    set_password(account, password, min_length)
    use_link(link)
    record_audit(account, "reset_password", account, link=link.id)
    return account


# --- how a person is told (notification settings) ---------------------------------------------------

NOTICE_CHANNELS = ("sms", "wechat", "email")
CHOICE_FIELDS = ("first", "second", "third")


def set_notice_channels(user: User, data: Mapping[str, Any]) -> None:
    """Save the person's outside channels in their order (`first`, `second`, `third`: "sms", "wechat",
    "email" or empty; none at all means in the app only), their e-mail address (`email`, required when
    e-mail is chosen) and their consent to WeChat subscription messages (`wechat_subscribed`, only
    for an account whose WeChat identity is bound). Nothing is saved when a field is wrong."""
    from .channels.email import valid_address

    f = Fields(data)
    order: list[str] = []
    for name in CHOICE_FIELDS:
        value = f.text(name, max_length=10)
        if not value:
            continue
        if value not in NOTICE_CHANNELS:
            f.fail(name, _l("Choose SMS, WeChat, e-mail or nothing."))
        elif value in order:
            f.fail(name, _l("This channel is chosen already; choose another or nothing."))
        else:
            order.append(value)
    email = f.text("email", max_length=254)
    address = valid_address(email) if email else None
    if email and address is None:
        f.fail("email", _l("This is not an e-mail address (such as name@example.org)."))
    elif "email" in order and not email:
        f.fail("email", _l("Give your e-mail address to be told by e-mail."))
    subscribed = f.flag("wechat_subscribed")
    if subscribed and not user.wechat_openid:
        f.fail("wechat_subscribed", _l("Bind your WeChat in the Linli mini-program first."))
    f.check()
    user.channels, user.email = order, address
    user.wechat_subscribed = subscribed
    record_audit(user, "notice_channels", user, channels=order, email=bool(address), wechat=subscribed)
    db.session.flush()
