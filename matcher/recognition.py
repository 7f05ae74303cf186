"""Use cases that change a RecognitionList: the published list (公示) of the volunteers of an area who
reached a new star level within a period.

A coordinator (or an administrator) proposes the list for an area and a period; the proposal is worked out
from the completed services' credited hours by the date of each service: a volunteer living in the area is
on it when their cumulative hours before the period and at its end fall under different star levels
(`rules.star_level` with the configured `STAR_THRESHOLDS`). The coordinator reviews the draft and approves
it; an approved list is frozen (its entries stay as they were) and shown to the signed-in people of the
areas it covers.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import Numeric, case, func, or_, select

from . import rules
from .access import user_area
from .audit import record_audit
from .clock import local_today
from .db import db
from .errors import Conflict, NotFound, ValidationError
from .fields import MAX_ROW_ID, Fields, whole_number
from .models import (
    Area,
    Assignment,
    AssignmentStatus,
    DemandOccurrence,
    Organization,
    RecognitionList,
    Role,
    User,
    Volunteer,
    utcnow,
)
from .settings import setting

# The earliest period start a list may have (no service record of this service is older).
EARLIEST = date(2000, 1, 1)
# The longest period one list may cover (a few years at most; a list is usually a quarter or a year).
MAX_PERIOD_DAYS = 5 * 366
TENTH = Decimal("0.1")


def star_thresholds() -> list[float]:
    """The configured cumulative hours of the star levels 1..5."""
    return list(setting("STAR_THRESHOLDS", [100, 300, 600, 1000, 1500]))


def _path_ids(area: Area) -> list[int]:
    """The ids of the area and every area above it (from its materialized path "/1/4/37/")."""
    return [int(part) for part in (area.path or "").strip("/").split("/") if part]


def _subtree_ids(area: Area):
    """A subquery: the ids of the area and every area below it."""
    return select(Area.id).where(Area.path.startswith(area.path))


def proposable_areas(user: User) -> list[Area]:
    """The areas whose lists the user may propose and approve: an administrator any, a coordinator their own
    area and every area below it, nobody else any."""
    if user.role == Role.ADMIN:
        return list(db.session.scalars(select(Area).order_by(Area.path)))
    if user.role != Role.COORDINATOR:
        return []
    area = user_area(user)
    if area is None:
        return []
    return list(db.session.scalars(select(Area).where(Area.path.startswith(area.path)).order_by(Area.path)))


def can_manage(user: User, lst: RecognitionList) -> bool:
    """Whether the user may approve this list: an administrator, or a coordinator of an area containing it."""
    if user.role == Role.ADMIN:
        return True
    if user.role != Role.COORDINATOR or not user.area_id:
        return False
    return user.area_id in _path_ids(lst.area)


def _home_areas(user: User) -> list[Area]:
    """The areas a user belongs to, for the published lists: a coordinator's or worker's area, an
    organization's home and served areas, a volunteer's home area."""
    if user.role in (Role.COORDINATOR, Role.WORKER):
        area = user_area(user)
        return [area] if area else []
    if user.role == Role.ORG_LEADER:
        org = db.session.get(Organization, user.organization_id) if user.organization_id else None
        return [org.home_area, *org.areas] if org else []
    volunteer = db.session.scalar(select(Volunteer).where(Volunteer.user_id == user.id))
    return [volunteer.home_area] if volunteer else []


def _published_filter(user: User):
    """Approved lists the user may see: those of an area containing their home or area (and, for a
    coordinator, of every area below theirs as well)."""
    ids = {i for area in _home_areas(user) for i in _path_ids(area)}
    conditions = [RecognitionList.area_id.in_(sorted(ids))] if ids else []
    if user.role == Role.COORDINATOR and (area := user_area(user)) is not None:
        conditions.append(RecognitionList.area_id.in_(_subtree_ids(area)))
    return or_(*conditions) if conditions else RecognitionList.id.is_(None)


def recognition_lists_for(user: User) -> list[RecognitionList]:
    """The approved (published) lists the user may see, newest first."""
    stmt = select(RecognitionList).where(RecognitionList.approved_at.is_not(None))
    if user.role != Role.ADMIN:
        stmt = stmt.where(_published_filter(user))
    return list(db.session.scalars(stmt.order_by(RecognitionList.approved_at.desc(), RecognitionList.id.desc())))


def drafts_for(user: User) -> list[RecognitionList]:
    """The lists not yet approved that the user may review and approve, newest first."""
    stmt = select(RecognitionList).where(RecognitionList.approved_at.is_(None))
    if user.role == Role.COORDINATOR and (area := user_area(user)) is not None:
        stmt = stmt.where(RecognitionList.area_id.in_(_subtree_ids(area)))
    elif user.role != Role.ADMIN:
        return []
    return list(db.session.scalars(stmt.order_by(RecognitionList.created_at.desc(), RecognitionList.id.desc())))


def load_recognition(list_id: Any, user: User) -> RecognitionList:
    """A list the user may see (a published one of their areas, or a draft they may approve), else NotFound."""
    number = whole_number(list_id)
    lst = db.session.get(RecognitionList, number) if number is not None and 1 <= number <= MAX_ROW_ID else None
    if lst is None:
        raise NotFound(str(_l("No such list.")))
    if user.role == Role.ADMIN or can_manage(user, lst):
        return lst
    if lst.approved_at is not None and db.session.scalar(
            select(RecognitionList.id).where(RecognitionList.id == lst.id, _published_filter(user))) is not None:
        return lst
    raise NotFound(str(_l("No such list.")))


def hours_by_volunteer(area: Area, start: date, end: date) -> list[tuple[int, str, Decimal, Decimal]]:
    """(volunteer id, name, hours before `start`, hours up to and including `end`) of the volunteers living
    in the area who served before the period's end: completed services' credited hours, by the service's date."""
    start_at = datetime.combine(start, time())
    end_before = datetime.combine(end + timedelta(days=1), time())
    credited = func.coalesce(Assignment.credited_hours, 0)
    before = func.sum(case((DemandOccurrence.starts_at < start_at, credited), else_=0), type_=Numeric(12, 1))
    upto = func.sum(credited, type_=Numeric(12, 1))
    stmt = (
        select(Volunteer.id, Volunteer.real_name, before, upto)
        .join(Assignment, Assignment.volunteer_id == Volunteer.id)
        .join(DemandOccurrence, DemandOccurrence.id == Assignment.occurrence_id)
        .where(Volunteer.home_area_id.in_(_subtree_ids(area)), Assignment.status == AssignmentStatus.COMPLETED,
               DemandOccurrence.starts_at < end_before)
        .group_by(Volunteer.id, Volunteer.real_name)
    )

    def hours(value) -> Decimal:
        return Decimal(str(value or 0)).quantize(TENTH)

    return [(vid, name, hours(b), hours(u)) for vid, name, b, u in db.session.execute(stmt)]


def compute_entries(area: Area, start: date, end: date) -> list[dict]:
    """The list's entries: each volunteer of the area whose star level rose within the period, with the level
    reached and their cumulative hours at its end; highest level first, then most hours, then by name."""
    thresholds = star_thresholds()
    entries = []
    for vid, name, before, upto in hours_by_volunteer(area, start, end):
        reached = rules.star_level(upto, thresholds)
        if reached > rules.star_level(before, thresholds):
            entries.append({"volunteer_id": vid, "name": name, "stars": reached, "hours": str(upto)})
    entries.sort(key=lambda e: (-e["stars"], -Decimal(e["hours"]), e["name"], e["volunteer_id"]))
    return entries


def read_proposal(data: dict, user: User) -> tuple[Area, date, date]:
    """The area and period of a proposal from form values (area id, start, end), checked."""
    f = Fields(data)
    today = local_today()
    area = None
    area_id = f.integer("area", minimum=1, maximum=MAX_ROW_ID)
    if area_id is not None:
        area = next((a for a in proposable_areas(user) if a.id == area_id), None)
        if area is None:
            f.fail("area", _l("Choose one of your areas."))
    start = f.date("start", earliest=EARLIEST, latest=today)
    end = f.date("end", earliest=EARLIEST, latest=today)
    if start and end:
        if end < start:
            f.fail("end", _l("The period must end on or after its first day."))
        elif (end - start).days > MAX_PERIOD_DAYS:
            f.fail("end", _l("A list covers at most five years."))
    f.check()
    return area, start, end


def propose_recognition(area: Area | Any, start: date | str, end: date | str, user: User) -> RecognitionList:
    """Propose the list of an area's volunteers who reached a new star level within [start, end] (a draft:
    flushes, audited). `area` is an Area or its id, the dates dates or YYYY-MM-DD; bad values raise a
    ValidationError naming the field. A draft of the same area and period is worked out again."""
    area_value = area.id if isinstance(area, Area) else area
    area, start, end = read_proposal({"area": area_value, "start": start, "end": end}, user)
    approved = db.session.scalar(select(RecognitionList.id).where(
        RecognitionList.area_id == area.id, RecognitionList.period_start == start,
        RecognitionList.period_end == end, RecognitionList.approved_at.is_not(None)))
    if approved is not None:
        raise ValidationError({"area": str(_l("The list of this area and period was approved already."))})
    lst = db.session.scalar(select(RecognitionList).where(
        RecognitionList.area_id == area.id, RecognitionList.period_start == start,
        RecognitionList.period_end == end, RecognitionList.approved_at.is_(None)))
    if lst is None:
        lst = RecognitionList(area=area, period_start=start, period_end=end)
        db.session.add(lst)
    lst.entries = compute_entries(area, start, end)
    lst.created_by_id = user.id
    lst.created_at = utcnow()
    db.session.flush()
    record_audit(user, "propose_recognition", lst, area=area.id, start=start.isoformat(), end=end.isoformat(),
                 entries=len(lst.entries))
    return lst


def approve_recognition(lst: RecognitionList, user: User) -> RecognitionList:
    """Approve a draft list as it stands (its entries are frozen from now on; flushes, audited)."""
    if not can_manage(user, lst):
        raise NotFound(str(_l("No such list.")))
    if lst.approved_at is not None:
        raise Conflict(str(_l("This list was approved already.")))
    lst.approved_by_id = user.id
    lst.approved_at = utcnow()
    db.session.flush()
    record_audit(user, "approve_recognition", lst, area=lst.area_id, entries=len(lst.entries))
    return lst
