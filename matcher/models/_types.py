"""Shared column types and enumerations for the models."""

import enum
from datetime import UTC, datetime

from sqlalchemy import Enum as SAEnum


def utcnow() -> datetime:
    """Return the current time as a naive UTC datetime (how timestamps are stored)."""
    return datetime.now(UTC).replace(tzinfo=None)


def str_enum(enum_cls: type[enum.Enum], name: str) -> SAEnum:
    """A portable enum column: VARCHAR plus a CHECK constraint, storing the values."""
    return SAEnum(
        enum_cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=24,
        values_callable=lambda cls: [m.value for m in cls],
        validate_strings=True,
    )


class AreaLevel(enum.StrEnum):
    DISTRICT = "district"
    TOWNSHIP = "township"
    COMMUNITY = "community"


class Role(enum.StrEnum):
    ADMIN = "admin"
    COORDINATOR = "coordinator"
    WORKER = "worker"
    ORG_LEADER = "org_leader"
    VOLUNTEER = "volunteer"


class OrgType(enum.StrEnum):
    COMMUNITY_AFFAIRS = "community_affairs"
    CHARITY = "charity"
    CULTURE_SPORTS = "culture_sports"
    LIFE_SERVICES = "life_services"
    RURAL_COUNCIL = "rural_council"


class Registration(enum.StrEnum):
    """How a community social organization stands with the civil affairs authorities."""

    REGISTERED = "registered"      # 登记: registered with the civil affairs bureau (a legal person)
    FILED = "filed"                # 备案: filed with the street or township (not a legal person)
    UNREGISTERED = "unregistered"  # neither yet


class MemberRole(enum.StrEnum):
    LEADER = "leader"
    MEMBER = "member"


class MemberStatus(enum.StrEnum):
    APPLIED = "applied"
    APPROVED = "approved"


class Gender(enum.StrEnum):
    F = "F"
    M = "M"


class ExceptionKind(enum.StrEnum):
    AWAY = "away"
    EXTRA = "extra"


class Priority(enum.StrEnum):
    URGENT = "urgent"
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


class LocationKind(enum.StrEnum):
    HOME = "home"
    STATION = "station"
    POINT = "point"


class DemandStatus(enum.StrEnum):
    DRAFT = "draft"
    OPEN = "open"
    SCHEDULED = "scheduled"
    DONE = "done"
    CANCELLED = "cancelled"


# A demand or occurrence that will not be served (again): nothing about it may change any more.
CLOSED = (DemandStatus.DONE, DemandStatus.CANCELLED)


class ReviewState(enum.StrEnum):
    """Where a demand stands in the review (审单) of an area that reviews demands before dispatch."""

    PENDING = "pending"
    RETURNED = "returned"
    APPROVED = "approved"


# Held back from planning until a coordinator approves it: never in a solve, never dispatched.
AWAITING_REVIEW = (ReviewState.PENDING, ReviewState.RETURNED)


class AssignmentStatus(enum.StrEnum):
    PROPOSED = "proposed"
    OFFERED = "offered"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    CHECKED_IN = "checked_in"
    COMPLETED = "completed"
    NO_SHOW = "no_show"


# The assignment status groups, each named for what it means. These are the only definitions;
# every query, check and page uses them.
#
# Not yet answered by the volunteer: may still be withdrawn, swapped or moved.
PENDING = (AssignmentStatus.PROPOSED, AssignmentStatus.OFFERED)
# The volunteer holds the service now (accepted, or on site): sees the address and the resident.
HELD = (AssignmentStatus.ACCEPTED, AssignmentStatus.CHECKED_IN)
# The volunteer's time is taken for good (held or served): an acceptance may not overlap it, it
# fills a place for certain, a later solve keeps it as a pin.
BOOKED = (*HELD, AssignmentStatus.COMPLETED)
# Part of a published schedule as it stands (the offer sent, or taken).
STANDING = (AssignmentStatus.OFFERED, *BOOKED)
# Takes a place on the occurrence and the volunteer's time while planning (drafts included):
# everything except a decline or a no-show.
FILLING = (AssignmentStatus.PROPOSED, *STANDING)


class DeclineReason(enum.StrEnum):
    """Why a volunteer declined an offer (`Assignment.decline_kind`); the repair respects it."""

    NOT_FREE = "not_free"  # not free then: kept off that part of the day, that week
    TOO_FAR = "too_far"  # too far: kept off services as far from home or farther, that week
    OTHER = "other"  # another reason (the note says which): only this service


class ScheduleStatus(enum.StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"


class RunStatus(enum.StrEnum):
    QUEUED = "queued"
    BUILDING = "building"
    SOLVING = "solving"
    DONE = "done"
    FAILED = "failed"
    SUPERSEDED = "superseded"
