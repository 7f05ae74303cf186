"""Weekly schedules per area, their solve runs, and the assignments they contain."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, column_property, mapped_column, relationship

from ..db import db
from ._types import AssignmentStatus, DeclineReason, RunStatus, ScheduleStatus, str_enum, utcnow
from .areas import Area
from .demands import DemandOccurrence
from .people import User, Volunteer


class Schedule(db.Model):
    """The schedule of one area (a township or the whole district) for one week."""

    __tablename__ = "schedules"

    id: Mapped[int] = mapped_column(primary_key=True)
    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id"), index=True)
    week_start: Mapped[date]
    status: Mapped[ScheduleStatus] = mapped_column(
        str_enum(ScheduleStatus, "schedule_status"), default=ScheduleStatus.DRAFT
    )
    version: Mapped[int] = mapped_column(default=1)
    published_at: Mapped[datetime | None]
    published_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    area: Mapped[Area] = relationship()
    runs: Mapped[list[SolveRun]] = relationship(back_populates="schedule", order_by="SolveRun.id")
    assignments: Mapped[list[Assignment]] = relationship(back_populates="schedule")

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (UniqueConstraint("area_id", "week_start"),)


class SolveRun(db.Model):
    """One solver run for a schedule: parameters, progress, result figures and the saved instance."""

    __tablename__ = "solve_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    schedule_id: Mapped[int] = mapped_column(ForeignKey("schedules.id", ondelete="CASCADE"), index=True)
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    job_id: Mapped[str | None] = mapped_column(String(80))
    status: Mapped[RunStatus] = mapped_column(str_enum(RunStatus, "run_status"), default=RunStatus.QUEUED)
    # The schedule's id while this run is queued or running, else NULL: the unique constraint
    # makes a second simultaneous run of the same schedule impossible, whatever races.
    active_for: Mapped[int | None] = mapped_column(unique=True)
    repair: Mapped[bool] = mapped_column(default=False)
    applied_at: Mapped[datetime | None]
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    progress: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    score: Mapped[float | None]
    bound: Mapped[float | None]
    solver_status: Mapped[str | None] = mapped_column(String(20))
    candidates: Mapped[int | None]
    build_seconds: Mapped[float | None]
    solve_seconds: Mapped[float | None]
    queued_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    message: Mapped[str] = mapped_column(Text, default="")
    # Who runs it ("host/pid/process start/pid namespace/boot id") and when it last said it is alive:
    # a run whose process is gone or which stopped beating is given up (`schedules.death_of`).
    worker: Mapped[str | None] = mapped_column(String(200))
    heartbeat_at: Mapped[datetime | None]
    # The saved instance and solution (megabytes for a district): loaded only when read, never with
    # the run's row; `has_instance` / `has_solution` say whether they are there without loading them.
    instance: Mapped[dict[str, Any] | None] = mapped_column(JSON, deferred=True)
    solution: Mapped[dict[str, Any] | None] = mapped_column(JSON, deferred=True)
    has_instance: Mapped[bool] = column_property(instance.column.is_not(None))
    has_solution: Mapped[bool] = column_property(solution.column.is_not(None))

    schedule: Mapped[Schedule] = relationship(back_populates="runs")
    gaps: Mapped[list[RunGap]] = relationship(back_populates="run", cascade="all, delete-orphan")


class RunGap(db.Model):
    """A demand occurrence a run left short, with the solver's reason codes."""

    __tablename__ = "run_gaps"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("solve_runs.id", ondelete="CASCADE"), index=True)
    occurrence_id: Mapped[int] = mapped_column(ForeignKey("demand_occurrences.id", ondelete="CASCADE"))
    missing: Mapped[int]
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)

    run: Mapped[SolveRun] = relationship(back_populates="gaps")
    occurrence: Mapped[DemandOccurrence] = relationship()


class Assignment(db.Model):
    """One volunteer on one demand occurrence, from proposal to completed service and rating."""

    __tablename__ = "assignments"

    id: Mapped[int] = mapped_column(primary_key=True)
    schedule_id: Mapped[int | None] = mapped_column(ForeignKey("schedules.id", ondelete="CASCADE"), index=True)
    occurrence_id: Mapped[int] = mapped_column(ForeignKey("demand_occurrences.id", ondelete="CASCADE"), index=True)
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("volunteers.id"), index=True)
    organization_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"))
    status: Mapped[AssignmentStatus] = mapped_column(
        str_enum(AssignmentStatus, "assignment_status"), default=AssignmentStatus.PROPOSED
    )
    pinned: Mapped[bool] = mapped_column(default=False)
    override_reason: Mapped[str] = mapped_column(String(200), default="")
    decline_reason: Mapped[str] = mapped_column(String(200), default="")  # the volunteer's own words
    # The structured reason of a decline (None before it was asked): `problem.build_instance` keeps
    # the volunteer off that part of the day (not free) or that distance (too far) for the week.
    decline_kind: Mapped[DeclineReason | None] = mapped_column(str_enum(DeclineReason, "decline_reason"))
    offered_at: Mapped[datetime | None]
    responded_at: Mapped[datetime | None]
    # When the volunteer first saw this offer on their offers page (set without bumping `version`).
    seen_at: Mapped[datetime | None]
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    distance_km: Mapped[float | None]
    checked_in_at: Mapped[datetime | None]
    checked_out_at: Mapped[datetime | None]
    credited_hours: Mapped[Decimal | None] = mapped_column(Numeric(5, 1))
    # How attendance was proven: "checked" (checked in with the code on site) or "by_hand" (the
    # community worker ticked the volunteer as present); empty until then.
    attendance: Mapped[str | None] = mapped_column(String(10))
    rating: Mapped[int | None]
    rating_comment: Mapped[str] = mapped_column(String(500), default="")
    rated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    schedule: Mapped[Schedule | None] = relationship(back_populates="assignments")
    occurrence: Mapped[DemandOccurrence] = relationship()
    volunteer: Mapped[Volunteer] = relationship()
    rated_by: Mapped[User | None] = relationship(foreign_keys=[rated_by_id])

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        UniqueConstraint("occurrence_id", "volunteer_id"),
        CheckConstraint("rating IS NULL OR (rating BETWEEN 1 AND 5)", name="rating_range"),
        CheckConstraint("attendance IS NULL OR attendance IN ('checked', 'by_hand')", name="attendance_kind"),
    )


class Handback(db.Model):
    """An organization handing a dispatched demand occurrence back, with its reason."""

    __tablename__ = "handbacks"

    id: Mapped[int] = mapped_column(primary_key=True)
    occurrence_id: Mapped[int] = mapped_column(ForeignKey("demand_occurrences.id", ondelete="CASCADE"), index=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reason: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("occurrence_id", "organization_id"),)


class Notification(db.Model):
    """A message for one user (shown in the app; later also sent by SMS/WeChat-style channels).

    Where it leads is stored as an endpoint name and its arguments (`link_endpoint`, `link_args`),
    which the web layer turns into a URL: the domain writes no URLs.
    """

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    text: Mapped[str] = mapped_column(String(500))
    link_endpoint: Mapped[str] = mapped_column(String(80), default="")
    link_args: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=dict)
    # The event's parameters (JSON): `kind` is the event, and `matcher.notifications.render_notice`
    # words it in the reader's language when it is read. `text` is the wording at write time, the
    # fallback for rows from before events were stored (params NULL).
    params: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    read_at: Mapped[datetime | None]
    # When its short link (`matcher.shortlinks`) was first opened from an SMS, e-mail or WeChat message.
    opened_at: Mapped[datetime | None]
    # Set for notices written at most once (reminders: "remind:<assignment>:<kind>"); NULL otherwise.
    dedup_key: Mapped[str | None] = mapped_column(String(120), unique=True)
