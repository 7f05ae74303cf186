"""The domain model, split by area; import models from here."""

from ._types import (
    BOOKED,
    CLOSED,
    FILLING,
    HELD,
    PENDING,
    STANDING,
    AreaLevel,
    AssignmentStatus,
    DemandStatus,
    ExceptionKind,
    Gender,
    LocationKind,
    MemberRole,
    MemberStatus,
    OrgType,
    Priority,
    Registration,
    Role,
    RunStatus,
    ScheduleStatus,
    utcnow,
)
from .areas import Area, Station
from .audit import AuditEntry
from .catalogue import Category, Skill, category_skills
from .demands import Demand, DemandOccurrence, demand_organizations, demand_skills, demand_skills_any
from .imports import ImportFile
from .links import AccountLink, LinkPurpose
from .outbox import OutboxMessage, OutboxState
from .people import (
    AvailabilityException,
    AvailabilitySlot,
    Certificate,
    Membership,
    Organization,
    Resident,
    User,
    Volunteer,
    organization_areas,
    organization_categories,
    volunteer_skills,
)
from .records import (
    CorrectionState,
    EntryKind,
    RecognitionList,
    RecordCertificate,
    RecordCorrection,
    RecordEntry,
    SummaryReport,
)
from .schedules import Assignment, Handback, Notification, RunGap, Schedule, SolveRun
from .throttle import ThrottleCounter
from .tokens import ApiToken, TokenKind

__all__ = [
    "ApiToken", "TokenKind",
    "CorrectionState", "EntryKind", "RecognitionList", "RecordCertificate", "RecordCorrection", "RecordEntry",
    "Registration", "SummaryReport",
    "BOOKED", "CLOSED", "FILLING", "HELD", "PENDING", "STANDING",
    "Area", "AreaLevel", "Assignment", "AssignmentStatus", "AuditEntry", "AvailabilityException",
    "AvailabilitySlot", "Category", "Certificate", "Demand", "DemandOccurrence", "DemandStatus", "ImportFile",
    "ExceptionKind", "Gender", "Handback", "Notification", "LocationKind", "MemberRole", "MemberStatus", "Membership",
    "OrgType", "Organization", "Priority", "Resident", "Role", "RunGap", "RunStatus", "Schedule",
    "ScheduleStatus", "Skill", "SolveRun", "Station", "User", "Volunteer", "category_skills",
    "ThrottleCounter", "AccountLink", "LinkPurpose", "OutboxMessage", "OutboxState",
    "demand_organizations", "demand_skills", "demand_skills_any", "organization_areas",
    "organization_categories", "utcnow", "volunteer_skills",
]
