"""Volunteer service records (Order No. 67 of the Ministry of Civil Affairs), their corrections and
certificates; the summary reports sent upward; the published lists of star levels (公示)."""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import JSON, ForeignKey, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..db import db
from ._types import str_enum, utcnow
from .areas import Area
from .people import Organization, User, Volunteer
from .schedules import Assignment


class EntryKind(enum.StrEnum):
    TRAINING = "training"          # 培训: a course the volunteer took, with its hours
    COMMENDATION = "commendation"  # 表彰奖励: an award or commendation


class RecordEntry(db.Model):
    """What an organization records on a volunteer's service record besides services: training and
    commendations (Order No. 67: "whoever organizes records; whoever records certifies")."""

    __tablename__ = "record_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("volunteers.id", ondelete="CASCADE"), index=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    kind: Mapped[EntryKind] = mapped_column(str_enum(EntryKind, "entry_kind"))
    title: Mapped[str] = mapped_column(String(120))
    on: Mapped[date]
    hours: Mapped[Decimal | None] = mapped_column(Numeric(5, 1))  # a training's hours (not service hours)
    note: Mapped[str] = mapped_column(String(500), default="")
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    volunteer: Mapped[Volunteer] = relationship()
    organization: Mapped[Organization] = relationship()
    recorded_by: Mapped[User | None] = relationship()


class CorrectionState(enum.StrEnum):
    OPEN = "open"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


class RecordCorrection(db.Model):
    """A volunteer's request to correct their record (a service's hours, a missing service, an entry), and
    the recording organization's decision with its reason."""

    __tablename__ = "record_corrections"

    id: Mapped[int] = mapped_column(primary_key=True)
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("volunteers.id", ondelete="CASCADE"), index=True)
    # Whose decision it is: the organization that recorded what is to be corrected.
    organization_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"), index=True)
    assignment_id: Mapped[int | None] = mapped_column(ForeignKey("assignments.id", ondelete="SET NULL"))
    entry_id: Mapped[int | None] = mapped_column(ForeignKey("record_entries.id", ondelete="SET NULL"))
    # "hours" (a service's credited hours), "missing" (a service not on the record), "entry", "other"
    field: Mapped[str] = mapped_column(String(20))
    requested_hours: Mapped[Decimal | None] = mapped_column(Numeric(5, 1))
    reason: Mapped[str] = mapped_column(String(500))
    state: Mapped[CorrectionState] = mapped_column(str_enum(CorrectionState, "correction_state"),
                                                   default=CorrectionState.OPEN)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None]
    decision: Mapped[str] = mapped_column(String(500), default="")

    volunteer: Mapped[Volunteer] = relationship()
    organization: Mapped[Organization | None] = relationship()
    assignment: Mapped[Assignment | None] = relationship()
    entry: Mapped[RecordEntry | None] = relationship()
    decided_by: Mapped[User | None] = relationship()


class RecordCertificate(db.Model):
    """A numbered certificate of a volunteer's service record (志愿服务记录证明): what it certified, frozen
    when issued, and what the volunteer agreed to show to whoever opens its verification link."""

    __tablename__ = "record_certificates"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    # The verification link's secret (only its SHA-256 would not do: the link is printed on the PDF).
    verify_code: Mapped[str] = mapped_column(String(32), unique=True)
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("volunteers.id", ondelete="CASCADE"), index=True)
    organization_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"))
    period_start: Mapped[date | None]
    period_end: Mapped[date]
    # The certified record as it stood: hours, services, training, commendations, the organizations.
    content: Mapped[dict] = mapped_column(JSON)
    # What the verification page may show ("name", "hours", "services", "organizations", ...).
    shown: Mapped[list[str]] = mapped_column(JSON)
    issued_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]

    volunteer: Mapped[Volunteer] = relationship()
    organization: Mapped[Organization | None] = relationship()
    issued_by: Mapped[User | None] = relationship()


class SummaryReport(db.Model):
    """A saved version of an area's summary report for a period (开展情况、进展成效、存在问题、意见建议):
    the figures frozen as they were, the coordinator's edited suggestions and chosen typical cases."""

    __tablename__ = "summary_reports"
    __table_args__ = (UniqueConstraint("area_id", "period_start", "period_end", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(40), unique=True)
    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id"), index=True)
    period_kind: Mapped[str] = mapped_column(String(10))  # month, quarter, year, dates
    period_start: Mapped[date]
    period_end: Mapped[date]
    version: Mapped[int] = mapped_column(default=1)
    figures: Mapped[dict] = mapped_column(JSON)
    suggestions: Mapped[str] = mapped_column(Text, default="")
    cases: Mapped[list] = mapped_column(JSON, default=list)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    area: Mapped[Area] = relationship()
    created_by: Mapped[User | None] = relationship()


class RecognitionList(db.Model):
    """The published list (公示) of volunteers reaching a star level in a period, approved by a coordinator."""

    __tablename__ = "recognition_lists"

    id: Mapped[int] = mapped_column(primary_key=True)
    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id"), index=True)
    period_start: Mapped[date]
    period_end: Mapped[date]
    # [{"volunteer_id", "name", "stars", "hours"}], as proposed (and frozen once approved)
    entries: Mapped[list] = mapped_column(JSON, default=list)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    approved_at: Mapped[datetime | None]

    area: Mapped[Area] = relationship()
    created_by: Mapped[User | None] = relationship(foreign_keys=[created_by_id])
    approved_by: Mapped[User | None] = relationship(foreign_keys=[approved_by_id])
