"""Who may see and change what: the one scoping helper every list and load goes through.

`visible(stmt, Model, user)` narrows a SELECT to the rows the user may see;
`load_visible(Model, id, user)` loads one object or raises NotFound (never
revealing that an object outside the scope exists); `can_change(user, obj)`
answers whether the user may modify it. The schedule pages (`schedulable_areas`,
`load_schedule`, `load_run`, `load_schedule_assignment`), the community worker's
occurrences, the organization leader's team and the volunteer's own assignments
have their loaders here too; a street's coordinator sees the district's schedule in part
(`schedule_part`: the occurrences in their street). Whom a schedule may draw on is here as well:
`area_pool` (a schedule's area) and `user_pool` (the coordinator's own reach).
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Select, and_, exists, false, literal, or_, select, true
from sqlalchemy.orm import aliased

from .db import db
from .errors import NotFound
from .fields import MAX_ROW_ID
from .models import (
    FILLING,
    HELD,
    STANDING,
    Area,
    AreaLevel,
    Assignment,
    Demand,
    DemandOccurrence,
    Membership,
    MemberStatus,
    Organization,
    Resident,
    Role,
    Schedule,
    SolveRun,
    User,
    Volunteer,
    demand_organizations,
    organization_areas,
)

T = TypeVar("T")


def user_area(user: User) -> Area | None:
    """The area a coordinator or worker is scoped to."""
    return db.session.get(Area, user.area_id) if user.area_id else None


def _in_subtree(area_id_col, area: Area):
    """area_id_col points to an area at or below `area`."""
    return area_id_col.in_(select(Area.id).where(Area.path.startswith(area.path)))


def _own_volunteer_id(user: User) -> int | None:
    """The id of the user's volunteer profile; once found, kept on the loaded user (a page's filters ask
    for it several times, and a profile never changes hands)."""
    found = user.__dict__.get("_own_volunteer_id")
    if found is None:
        found = db.session.scalar(select(Volunteer.id).where(Volunteer.user_id == user.id))
        if found is not None:
            user.__dict__["_own_volunteer_id"] = found
    return found


def area_filter(user: User, area_col):
    """Areas (an area id column) within a user's own area: a worker's community, a coordinator's area and
    everything below it; an organization leader's, the areas the organization serves and below."""
    if user.role == Role.ADMIN:
        return true()
    if user.role == Role.ORG_LEADER:
        served = select(Area.path).join(organization_areas, organization_areas.c.area_id == Area.id).where(
            organization_areas.c.organization_id == user.organization_id)
        paths = list(db.session.scalars(served))
        if not paths:
            return false()
        return area_col.in_(select(Area.id).where(or_(*(Area.path.startswith(p) for p in paths))))
    return _area_filter(user, area_col)


def _area_filter(user: User, area_col):
    area = user_area(user)
    if area is None:
        return false()
    if user.role == Role.WORKER:
        return area_col == area.id
    return _in_subtree(area_col, area)


def demand_filter(user: User):
    """Demands a user may see."""
    if user.role == Role.ADMIN:
        return true()
    if user.role in (Role.COORDINATOR, Role.WORKER):
        return _area_filter(user, Demand.community_id)
    if user.role == Role.ORG_LEADER:
        restricted = exists().where(
            demand_organizations.c.demand_id == Demand.id,
            demand_organizations.c.organization_id == user.organization_id,
        )
        served = exists().where(
            DemandOccurrence.demand_id == Demand.id,
            DemandOccurrence.responsible_organization_id == user.organization_id,
        )
        return or_(restricted, served)
    vid = _own_volunteer_id(user)
    return exists().where(
        DemandOccurrence.demand_id == Demand.id,
        Assignment.occurrence_id == DemandOccurrence.id,
        Assignment.volunteer_id == (vid if vid is not None else -1),
        Assignment.status.in_(STANDING),
    )


def resident_filter(user: User):
    """Residents a user may see: the own community's, or those of an active assignment."""
    if user.role == Role.ADMIN:
        return true()
    if user.role in (Role.COORDINATOR, Role.WORKER):
        return _area_filter(user, Resident.community_id)
    if user.role == Role.VOLUNTEER:
        vid = _own_volunteer_id(user)
        if vid is None:
            return false()
        return exists().where(
            Demand.resident_id == Resident.id,
            DemandOccurrence.demand_id == Demand.id,
            Assignment.occurrence_id == DemandOccurrence.id,
            Assignment.volunteer_id == vid,
            Assignment.status.in_(HELD),
        )
    return false()


def volunteer_filter(user: User):
    """Volunteers a user may see: by home area, by membership, or oneself."""
    if user.role == Role.ADMIN:
        return true()
    if user.role in (Role.COORDINATOR, Role.WORKER):
        return _area_filter(user, Volunteer.home_area_id)
    if user.role == Role.ORG_LEADER:
        return exists().where(
            Membership.volunteer_id == Volunteer.id, Membership.organization_id == user.organization_id
        )
    return Volunteer.user_id == user.id


def organization_filter(user: User):
    """Organizations a user may see: those working in the user's area, or one's own."""
    if user.role == Role.ADMIN:
        return true()
    if user.role == Role.ORG_LEADER:
        return Organization.id == user.organization_id
    if user.role == Role.VOLUNTEER:
        vol = db.session.scalar(select(Volunteer).where(Volunteer.user_id == user.id))
        if vol is None:
            return false()
        member = exists().where(Membership.organization_id == Organization.id, Membership.volunteer_id == vol.id)
        return or_(member, _serves_or_within(vol.home_area))
    area = user_area(user)
    if area is None:
        return false()
    return _serves_or_within(area)


def _serves_or_within(area: Area):
    """Organizations based in `area`'s subtree, or serving an area that contains or lies within it."""
    served = exists().where(
        organization_areas.c.organization_id == Organization.id,
        organization_areas.c.area_id == Area.id,
        or_(Area.path.startswith(area.path), literal(area.path).startswith(Area.path)),
    )
    return or_(_in_subtree(Organization.home_area_id, area), served)


def serving_organizations(area: Area):
    """A filter on Organization: those serving `area` (a volunteer living there may join them)."""
    return _serves_or_within(area)


def area_pool(area: Area):
    """Volunteers a schedule of `area` draws on, as a filter on Volunteer.

    The district's schedule: everyone living in the district. A township's (street's): those living
    in it, and the approved members of the organizations that serve it (based in it, or serving it,
    an area containing it or one inside it: `_serves_or_within`) who live in the same district.
    Whether a volunteer is active is the caller's business. A volunteer who registered themselves
    is in no pool until an organization approved them (`Volunteer.self_registered_at`).
    """
    # An alias and plain ids, so the filter never correlates with an Area the caller's query joins.
    home = aliased(Area)
    district_path = "/" + area.path.strip("/").split("/")[0] + "/"
    vetted = or_(Volunteer.self_registered_at.is_(None), exists().where(
        Membership.volunteer_id == Volunteer.id, Membership.status == MemberStatus.APPROVED))
    in_district = and_(vetted, Volunteer.home_area_id.in_(select(home.id).where(home.path.startswith(district_path))))
    if area.level == AreaLevel.DISTRICT or area.path == district_path:
        return in_district
    lives_in = Volunteer.home_area_id.in_(select(home.id).where(home.path.startswith(area.path)))
    serving = list(db.session.scalars(select(Organization.id).where(_serves_or_within(area))))
    member = exists().where(Membership.volunteer_id == Volunteer.id, Membership.status == MemberStatus.APPROVED,
                            Membership.organization_id.in_(serving))
    return and_(in_district, or_(lives_in, member))


def user_pool(user: User):
    """Volunteers a user may search and assign on any schedule, as a filter on Volunteer.

    An administrator: all. A coordinator: the pool of their own area (`area_pool`), so a street's
    coordinator never reaches beyond their street's pool, whatever schedule they look at. Nobody else.
    """
    if user.role == Role.ADMIN:
        return true()
    area = user_area(user) if user.role == Role.COORDINATOR else None
    if area is None or area.level == AreaLevel.COMMUNITY:
        return false()
    return area_pool(area)


def in_pool(volunteer: Volunteer, area: Area, user: User | None) -> bool:
    """Whether a volunteer is in the pool of a schedule of `area`, as seen by `user` (None: the system)."""
    stmt = select(Volunteer.id).where(Volunteer.id == volunteer.id, area_pool(area))
    if user is not None:
        stmt = stmt.where(user_pool(user))
    return db.session.scalar(stmt) is not None


def membership_visible(user: User):
    """Memberships a user may see (leaders see their organization's applications)."""
    if user.role == Role.ADMIN:
        return true()
    if user.role == Role.ORG_LEADER:
        return Membership.organization_id == user.organization_id
    if user.role == Role.VOLUNTEER:
        return Membership.volunteer_id == _own_volunteer_id(user)
    return Membership.volunteer_id.in_(select(Volunteer.id).where(volunteer_filter(user)))


FILTERS: dict[type, Any] = {
    Demand: demand_filter,
    Resident: resident_filter,
    Volunteer: volunteer_filter,
    Organization: organization_filter,
    Membership: membership_visible,
}


def visible(stmt: Select, model: type, user: User) -> Select:
    """Narrow a SELECT over `model` to the rows `user` may see."""
    try:
        return stmt.where(FILTERS[model](user))
    except KeyError:
        raise TypeError(f"no scope rule for {model.__name__}") from None


def as_id(value: Any) -> int:
    """An id from a URL or form; anything that is not a whole number in the ids' range is simply not found."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise NotFound("not found") from None
    if not 0 < number <= MAX_ROW_ID:
        raise NotFound("not found")
    return number


def load_visible(model: type[T], object_id: Any, user: User) -> T:
    """Load one object by id within the user's scope, else raise NotFound."""
    object_id = as_id(object_id)
    obj = db.session.scalar(visible(select(model).where(model.id == object_id), model, user))
    if obj is None:
        raise NotFound("not found")
    return obj


def can_change(user: User, obj: Any) -> bool:
    """Whether `user` may modify `obj` (assumes it is already visible to them)."""
    if user.role == Role.ADMIN:
        return True
    if isinstance(obj, Demand | Resident):
        return user.role == Role.WORKER and obj.community_id == user.area_id
    if isinstance(obj, Volunteer):
        return obj.user_id == user.id
    if isinstance(obj, Organization):
        return user.role == Role.ORG_LEADER and obj.id == user.organization_id
    if isinstance(obj, Membership):
        return user.role == Role.ORG_LEADER and obj.organization_id == user.organization_id
    return False


def load_own_occurrence(occurrence_id: Any, user: User) -> DemandOccurrence:
    """An occurrence of a demand the user may change (its community's worker), else NotFound."""
    occurrence_id = as_id(occurrence_id)
    occ = db.session.get(DemandOccurrence, occurrence_id)
    if occ is None or not can_change(user, occ.demand):
        raise NotFound("not found")
    return occ


def team_assignment_filter(organization_id: int):
    """Assignments that are an organization's: sent through it, or to one of its approved members directly."""
    member = exists().where(Membership.volunteer_id == Assignment.volunteer_id,
                            Membership.organization_id == organization_id,
                            Membership.status == MemberStatus.APPROVED)
    return or_(Assignment.organization_id == organization_id,
               and_(Assignment.organization_id.is_(None), member))


def team_occurrence_filter(organization_id: int):
    """Occurrences dispatched to an organization: it is responsible, or its assignments are on them."""
    return or_(
        DemandOccurrence.responsible_organization_id == organization_id,
        DemandOccurrence.id.in_(select(Assignment.occurrence_id).where(
            team_assignment_filter(organization_id), Assignment.status.in_(FILLING))),
    )


def load_team_occurrence(occurrence_id: Any, user: User) -> DemandOccurrence:
    """An occurrence dispatched to the leader's organization, else NotFound."""
    occurrence_id = as_id(occurrence_id)
    if user.role != Role.ORG_LEADER or user.organization_id is None:
        raise NotFound("not found")
    occ = db.session.scalar(select(DemandOccurrence).where(
        DemandOccurrence.id == occurrence_id, team_occurrence_filter(user.organization_id)))
    if occ is None:
        raise NotFound("not found")
    return occ


def load_team_assignment(assignment_id: Any, user: User) -> Assignment:
    """An assignment of the leader's organization (see `team_assignment_filter`), else NotFound."""
    assignment_id = as_id(assignment_id)
    if user.role != Role.ORG_LEADER or user.organization_id is None:
        raise NotFound("not found")
    a = db.session.scalar(select(Assignment).where(Assignment.id == assignment_id,
                                                   team_assignment_filter(user.organization_id)))
    if a is None:
        raise NotFound("not found")
    return a


# --------------------------------------------------------------------------- schedules


def schedulable_areas(user: User) -> list[Area]:
    """Areas the user may schedule: an administrator every township and district; a coordinator their
    own area (if not a community) and the townships below it; nobody else any."""
    if user.role == Role.ADMIN:
        return list(db.session.scalars(select(Area).where(Area.level != AreaLevel.COMMUNITY).order_by(Area.path)))
    if user.role != Role.COORDINATOR:
        return []
    area = user_area(user)
    if area is None:
        return []
    return list(db.session.scalars(select(Area).where(Area.path.startswith(area.path),
                                                      Area.level != AreaLevel.COMMUNITY).order_by(Area.path)))


def load_schedule(schedule_id: Any, user: User) -> Schedule:
    """A schedule of an area the user may schedule, else NotFound."""
    schedule = db.session.get(Schedule, as_id(schedule_id))
    if schedule is None or schedule.area_id not in {a.id for a in schedulable_areas(user)}:
        raise NotFound("not found")
    return schedule


def part_areas(user: User) -> list[Area]:
    """Areas above a coordinator's own (a street's coordinator: the district) whose schedules they
    see and adjust only in part: the occurrences in their own area (`schedule_part`)."""
    area = user_area(user) if user.role == Role.COORDINATOR else None
    if area is None or area.level == AreaLevel.COMMUNITY:
        return []
    ids = [int(i) for i in area.path.strip("/").split("/")[:-1] if i.isdigit()]
    return list(db.session.scalars(select(Area).where(Area.id.in_(ids)).order_by(Area.path))) if ids else []


def schedule_part(schedule: Schedule, user: User | None) -> Area | None:
    """The part of a schedule the user works on: None for the whole (an administrator, a coordinator of
    its area or above, the system), else the user's own area below the schedule's (a street's
    coordinator on the district schedule). NotFound when the user reaches no part of it."""
    if user is None or schedule.area_id in {a.id for a in schedulable_areas(user)}:
        return None
    if schedule.area_id in {a.id for a in part_areas(user)}:
        return user_area(user)
    raise NotFound("not found")


def schedule_parts(schedules, user: User) -> dict[int, Area | None]:
    """`schedule_part` of each schedule (by id), the user's areas looked up once for the whole list."""
    whole = {a.id for a in schedulable_areas(user)}
    above = {a.id for a in part_areas(user)}
    own = user_area(user) if above else None
    parts: dict[int, Area | None] = {}
    for schedule in schedules:
        if schedule.area_id not in whole | above:
            raise NotFound("not found")
        parts[schedule.id] = None if schedule.area_id in whole else own
    return parts


def in_part(occurrence: DemandOccurrence, part: Area | None) -> bool:
    """Whether an occurrence lies in a schedule part (None: the whole schedule)."""
    return part is None or occurrence.demand.community.path.startswith(part.path)


def load_schedule_part(schedule_id: Any, user: User) -> tuple[Schedule, Area | None]:
    """A schedule the user reaches in whole or in part, with the part (`schedule_part`), else NotFound."""
    schedule = db.session.get(Schedule, as_id(schedule_id))
    if schedule is None:
        raise NotFound("not found")
    return schedule, schedule_part(schedule, user)


def load_run(run_id: Any, user: User, *, part: bool = False) -> SolveRun:
    """A solve run of a schedule within the user's scope, else NotFound. `part=True` also lets a
    coordinator who sees the schedule only in part (its progress, never its files)."""
    run = db.session.get(SolveRun, as_id(run_id))
    if run is None:
        raise NotFound("not found")
    if part:
        load_schedule_part(run.schedule_id, user)
    else:
        load_schedule(run.schedule_id, user)
    return run


def load_schedule_assignment(assignment_id: Any, user: User) -> Assignment:
    """An assignment of a schedule within the user's scope, else NotFound; on a schedule seen in part,
    only an assignment on an occurrence in that part."""
    a = db.session.get(Assignment, as_id(assignment_id))
    if a is None or a.schedule_id is None:
        raise NotFound("not found")
    _schedule, part = load_schedule_part(a.schedule_id, user)
    if not in_part(a.occurrence, part):
        raise NotFound("not found")
    return a


def load_own_assignment(assignment_id: Any, user: User) -> Assignment:
    """One of the user's own volunteer assignments, else NotFound (never another volunteer's)."""
    vid = _own_volunteer_id(user)
    a = db.session.scalar(select(Assignment).where(Assignment.id == as_id(assignment_id),
                                                   Assignment.volunteer_id == (vid if vid is not None else -1)))
    if a is None:
        raise NotFound("not found")
    return a
