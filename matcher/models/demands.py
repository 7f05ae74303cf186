"""Demands posted by community workers and their dated occurrences."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Column, ForeignKey, String, Table, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..checkin import new_secret
from ..db import db
from ._types import DemandStatus, Gender, LocationKind, Priority, ReviewState, str_enum, utcnow
from .areas import Area, Station
from .catalogue import Category, Skill
from .people import Organization, Resident, User

demand_skills = Table(
    "demand_skills",
    db.metadata,
    Column("demand_id", ForeignKey("demands.id", ondelete="CASCADE"), primary_key=True),
    Column("skill_id", ForeignKey("skills.id", ondelete="CASCADE"), primary_key=True),
)

demand_skills_any = Table(
    "demand_skills_any",
    db.metadata,
    Column("demand_id", ForeignKey("demands.id", ondelete="CASCADE"), primary_key=True),
    Column("skill_id", ForeignKey("skills.id", ondelete="CASCADE"), primary_key=True),
)

demand_organizations = Table(
    "demand_organizations",
    db.metadata,
    Column("demand_id", ForeignKey("demands.id", ondelete="CASCADE"), primary_key=True),
    Column("organization_id", ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True),
)


class Demand(db.Model):
    """A need posted for a community: one time, or weekly on `weekdays` until `repeat_until`."""

    __tablename__ = "demands"

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("areas.id"), index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id"))
    resident_id: Mapped[int | None] = mapped_column(ForeignKey("residents.id"), index=True)
    title: Mapped[str] = mapped_column(String(120))
    location_kind: Mapped[LocationKind] = mapped_column(str_enum(LocationKind, "location_kind"))
    station_id: Mapped[int | None] = mapped_column(ForeignKey("stations.id"))
    lat: Mapped[float]
    lon: Mapped[float]
    address: Mapped[str] = mapped_column(String(200), default="")
    # First (or only) date and the local start time in minutes from midnight.
    starts_on: Mapped[date]
    start_minute: Mapped[int]
    duration_minutes: Mapped[int]
    # Comma-separated weekdays (0 = Monday) for a weekly recurrence; empty for a single time.
    weekdays: Mapped[str] = mapped_column(String(20), default="")
    repeat_until: Mapped[date | None]
    people: Mapped[int] = mapped_column(default=1)
    min_people: Mapped[int] = mapped_column(default=1)
    priority: Mapped[Priority] = mapped_column(str_enum(Priority, "priority"), default=Priority.NORMAL)
    gender: Mapped[Gender | None] = mapped_column(str_enum(Gender, "gender"))
    one_organization: Mapped[bool] = mapped_column(default=False)
    notes: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[DemandStatus] = mapped_column(str_enum(DemandStatus, "demand_status"), default=DemandStatus.OPEN)
    # The review (审单) where the community's township or district asks for one: None when none was
    # asked; pending and returned ones (`AWAITING_REVIEW`) are never planned. `review_note` is the
    # reason it was last returned, shown to the worker.
    review: Mapped[ReviewState | None] = mapped_column(str_enum(ReviewState, "review_state"))
    review_note: Mapped[str] = mapped_column(String(500), default="", server_default="")
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    community: Mapped[Area] = relationship()
    created_by: Mapped[User | None] = relationship()
    category: Mapped[Category] = relationship()
    resident: Mapped[Resident | None] = relationship()
    station: Mapped[Station | None] = relationship()
    skills: Mapped[list[Skill]] = relationship(secondary=demand_skills, order_by="Skill.code")
    skills_any: Mapped[list[Skill]] = relationship(secondary=demand_skills_any, order_by="Skill.code")
    organizations: Mapped[list[Organization]] = relationship(secondary=demand_organizations)
    occurrences: Mapped[list[DemandOccurrence]] = relationship(
        back_populates="demand", cascade="all, delete-orphan", order_by="DemandOccurrence.starts_at"
    )

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        CheckConstraint("people >= 1", name="people_positive"),
        CheckConstraint("min_people >= 1 AND min_people <= people", name="min_people_range"),
        CheckConstraint("duration_minutes > 0 AND duration_minutes <= 1440", name="duration_range"),
        CheckConstraint("start_minute >= 0 AND start_minute < 1440", name="start_minute_range"),
    )

    @property
    def weekday_list(self) -> list[int]:
        """The recurrence weekdays as integers (empty for a single occurrence)."""
        return [int(x) for x in self.weekdays.split(",") if x != ""]


class DemandOccurrence(db.Model):
    """One dated instance of a demand: what the solver schedules."""

    __tablename__ = "demand_occurrences"

    id: Mapped[int] = mapped_column(primary_key=True)
    demand_id: Mapped[int] = mapped_column(ForeignKey("demands.id", ondelete="CASCADE"), index=True)
    starts_at: Mapped[datetime] = mapped_column(index=True)
    ends_at: Mapped[datetime]
    status: Mapped[DemandStatus] = mapped_column(str_enum(DemandStatus, "demand_status"), default=DemandStatus.OPEN)
    responsible_organization_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"))
    # The secret behind the time-based check-in and check-out codes (`matcher.checkin`): random,
    # made with the occurrence; never shown to anyone.
    checkin_secret: Mapped[str | None] = mapped_column(String(32), default=new_secret)

    demand: Mapped[Demand] = relationship(back_populates="occurrences")
    responsible_organization: Mapped[Organization | None] = relationship()

    __table_args__ = (
        UniqueConstraint("demand_id", "starts_at"),
        CheckConstraint("starts_at < ends_at", name="order"),
    )
