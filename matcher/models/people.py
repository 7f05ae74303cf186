"""Accounts, organizations, volunteers and residents."""

from __future__ import annotations

import secrets
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Column,
    ForeignKey,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..db import db
from ._types import (
    ExceptionKind,
    Gender,
    MemberRole,
    MemberStatus,
    OrgType,
    Registration,
    Role,
    str_enum,
    utcnow,
)
from .areas import Area
from .catalogue import Category, Skill


def new_token() -> str:
    """A random URL-safe token (session generation, calendar feeds)."""
    return secrets.token_urlsafe(24)


class User(db.Model):
    """A login account. Scope: `area` for coordinators and workers, `organization` for leaders."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(80), default="")
    # None until the account is activated (imported volunteers have no usable password).
    password_hash: Mapped[str | None] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(str_enum(Role, "user_role"))
    area_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"), index=True)
    organization_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"), index=True)
    active: Mapped[bool] = mapped_column(default=True)
    locale: Mapped[str | None] = mapped_column(String(10))
    # Part of the login cookie's identity; rotating it ends every session of this user.
    session_token: Mapped[str] = mapped_column(String(64), default=new_token)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]
    # A locked account cannot sign in (active is False): who locked it, when and why.
    locked_at: Mapped[datetime | None]
    locked_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    lock_reason: Mapped[str] = mapped_column(String(200), default="")
    # Outside channels in the person's order of preference ("sms", "email", "wechat"): a notice goes
    # out on the first one that is configured and reaches them. None or empty: in-app only.
    channels: Mapped[list[str] | None] = mapped_column(JSON)
    email: Mapped[str | None] = mapped_column(String(254))
    # The person's WeChat identity in the service's official account / mini-program (bound by the phone
    # client), and whether they agreed to receive subscription messages there.
    wechat_openid: Mapped[str | None] = mapped_column(String(64), unique=True)
    wechat_subscribed: Mapped[bool] = mapped_column(default=False)

    area: Mapped[Area | None] = relationship()
    organization: Mapped[Organization | None] = relationship(foreign_keys=[organization_id])
    locked_by: Mapped[User | None] = relationship(remote_side=[id], foreign_keys=[locked_by_id])
    volunteer: Mapped[Volunteer | None] = relationship(back_populates="user", uselist=False,
                                                       foreign_keys="Volunteer.user_id")

    # Flask-Login protocol -------------------------------------------------
    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return f"{self.id}:{self.session_token}"

    def __repr__(self) -> str:
        return f"<User {self.username} {self.role}>"


organization_areas = Table(
    "organization_areas",
    db.metadata,
    Column("organization_id", ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True),
    Column("area_id", ForeignKey("areas.id", ondelete="CASCADE"), primary_key=True),
)

organization_categories = Table(
    "organization_categories",
    db.metadata,
    Column("organization_id", ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True),
    Column("category_id", ForeignKey("categories.id", ondelete="CASCADE"), primary_key=True),
)


class Organization(db.Model):
    """A community social organization (社区社会组织) and its service area and categories."""

    __tablename__ = "organizations"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    type: Mapped[OrgType] = mapped_column(str_enum(OrgType, "org_type"))
    home_area_id: Mapped[int] = mapped_column(ForeignKey("areas.id"), index=True)
    description: Mapped[str] = mapped_column(Text, default="")
    contact_phone: Mapped[str | None] = mapped_column(String(20))
    # 登记 / 备案 / neither: the summary report counts the share of registered ones that took part.
    registration: Mapped[Registration] = mapped_column(str_enum(Registration, "org_registration"),
                                                       default=Registration.FILED, server_default="filed")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    home_area: Mapped[Area] = relationship()
    areas: Mapped[list[Area]] = relationship(secondary=organization_areas)
    categories: Mapped[list[Category]] = relationship(secondary=organization_categories)
    memberships: Mapped[list[Membership]] = relationship(back_populates="organization")


volunteer_skills = Table(
    "volunteer_skills",
    db.metadata,
    Column("volunteer_id", ForeignKey("volunteers.id", ondelete="CASCADE"), primary_key=True),
    Column("skill_id", ForeignKey("skills.id", ondelete="CASCADE"), primary_key=True),
)


class Volunteer(db.Model):
    """A volunteer's profile: who, where, which skills, how much time."""

    __tablename__ = "volunteers"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), unique=True)
    real_name: Mapped[str] = mapped_column(String(40))
    # Normalized E.164 (+8613812345678).
    phone: Mapped[str] = mapped_column(String(20), unique=True)
    gender: Mapped[Gender | None] = mapped_column(str_enum(Gender, "gender"))
    birth_year: Mapped[int | None]
    # Where the birth year is not enough (the person may be under 18): the day; birth_year follows it.
    birth_date: Mapped[date | None]
    # A guardian's consent for a volunteer under 18 (national volunteer-service regulations): who the
    # guardian is, and when consent was recorded and by whom (an organization leader or coordinator).
    # Without it a minor is never offered a service (`volunteers.guardian_problem`).
    guardian_name: Mapped[str] = mapped_column(String(40), default="")
    guardian_phone: Mapped[str | None] = mapped_column(String(20))
    guardian_relation: Mapped[str] = mapped_column(String(20), default="")
    guardian_consent_at: Mapped[datetime | None]
    guardian_consent_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # Set when the person registered themselves: they reach no schedule's pool until an organization
    # approves them (`access.area_pool`). None: entered by staff or imported.
    self_registered_at: Mapped[datetime | None]
    # A mainland ID number is never stored: a keyed hash finds the person again on a roster import
    # (`rosters.id_number_hash`), and its last four characters show it masked.
    id_number_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    id_number_tail: Mapped[str] = mapped_column(String(4), default="", server_default="")
    home_area_id: Mapped[int] = mapped_column(ForeignKey("areas.id"), index=True)
    address: Mapped[str] = mapped_column(String(200), default="")
    lat: Mapped[float]
    lon: Mapped[float]
    max_minutes_per_week: Mapped[int] = mapped_column(default=240)
    preferred_minutes_per_week: Mapped[int] = mapped_column(default=120)
    max_travel_km: Mapped[float] = mapped_column(default=5.0)
    # Hours credited so far; kept as a running total of completed assignments.
    total_hours: Mapped[Decimal] = mapped_column(Numeric(9, 1), default=Decimal("0"))
    active: Mapped[bool] = mapped_column(default=True)
    calendar_token: Mapped[str] = mapped_column(String(64), default=new_token, unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    user: Mapped[User | None] = relationship(back_populates="volunteer", foreign_keys=[user_id])
    home_area: Mapped[Area] = relationship()
    skills: Mapped[list[Skill]] = relationship(secondary=volunteer_skills, order_by="Skill.code")
    certificates: Mapped[list[Certificate]] = relationship(
        back_populates="volunteer", cascade="all, delete-orphan"
    )
    slots: Mapped[list[AvailabilitySlot]] = relationship(
        back_populates="volunteer", cascade="all, delete-orphan", order_by="(AvailabilitySlot.weekday, AvailabilitySlot.start_minute)"
    )
    exceptions: Mapped[list[AvailabilityException]] = relationship(
        back_populates="volunteer", cascade="all, delete-orphan"
    )
    memberships: Mapped[list[Membership]] = relationship(back_populates="volunteer")

    __table_args__ = (
        CheckConstraint("max_minutes_per_week >= 0", name="max_minutes_nonneg"),
        CheckConstraint("preferred_minutes_per_week >= 0", name="preferred_minutes_nonneg"),
        CheckConstraint("max_travel_km >= 0", name="max_travel_nonneg"),
    )


class Membership(db.Model):
    """A volunteer's place in an organization: role and whether the leader approved it."""

    __tablename__ = "memberships"

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("volunteers.id", ondelete="CASCADE"), index=True)
    role: Mapped[MemberRole] = mapped_column(str_enum(MemberRole, "member_role"), default=MemberRole.MEMBER)
    status: Mapped[MemberStatus] = mapped_column(
        str_enum(MemberStatus, "member_status"), default=MemberStatus.APPLIED
    )
    applied_at: Mapped[datetime] = mapped_column(default=utcnow)
    approved_at: Mapped[datetime | None]

    organization: Mapped[Organization] = relationship(back_populates="memberships")
    volunteer: Mapped[Volunteer] = relationship(back_populates="memberships")

    __table_args__ = (UniqueConstraint("organization_id", "volunteer_id"),)


class Certificate(db.Model):
    """A certificate that backs a skill until it expires (e.g. first aid)."""

    __tablename__ = "certificates"

    id: Mapped[int] = mapped_column(primary_key=True)
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("volunteers.id", ondelete="CASCADE"), index=True)
    skill_id: Mapped[int] = mapped_column(ForeignKey("skills.id"))
    name: Mapped[str] = mapped_column(String(120))
    number: Mapped[str] = mapped_column(String(60), default="")
    expires_on: Mapped[date | None]

    volunteer: Mapped[Volunteer] = relationship(back_populates="certificates")
    skill: Mapped[Skill] = relationship()


class AvailabilitySlot(db.Model):
    """A weekly free window: weekday 0 = Monday, minutes from midnight, local time."""

    __tablename__ = "availability_slots"

    id: Mapped[int] = mapped_column(primary_key=True)
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("volunteers.id", ondelete="CASCADE"), index=True)
    weekday: Mapped[int]
    start_minute: Mapped[int]
    end_minute: Mapped[int]

    volunteer: Mapped[Volunteer] = relationship(back_populates="slots")

    __table_args__ = (
        CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday_range"),
        CheckConstraint("start_minute >= 0 AND end_minute <= 1440 AND start_minute < end_minute", name="minutes"),
    )


class AvailabilityException(db.Model):
    """A dated change to the weekly pattern: away (not free) or extra time (free)."""

    __tablename__ = "availability_exceptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("volunteers.id", ondelete="CASCADE"), index=True)
    kind: Mapped[ExceptionKind] = mapped_column(str_enum(ExceptionKind, "exception_kind"))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    note: Mapped[str] = mapped_column(String(200), default="")

    volunteer: Mapped[Volunteer] = relationship(back_populates="exceptions")

    __table_args__ = (CheckConstraint("starts_at < ends_at", name="order"),)


class Resident(db.Model):
    """A person served. Visible only within the community (and to an assigned volunteer)."""

    __tablename__ = "residents"

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("areas.id"), index=True)
    name: Mapped[str] = mapped_column(String(40))
    phone: Mapped[str | None] = mapped_column(String(20))
    gender: Mapped[Gender | None] = mapped_column(str_enum(Gender, "gender"))
    birth_year: Mapped[int | None]
    address: Mapped[str] = mapped_column(String(200))
    lat: Mapped[float]
    lon: Mapped[float]
    needs_notes: Mapped[str] = mapped_column(Text, default="")
    consent_given_at: Mapped[datetime | None]
    consent_recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    consent_note: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    community: Mapped[Area] = relationship()
