"""The summary report (总结报告) an area sends upward for a period: 开展情况 (what was done), 进展成效 (what it
achieved), 存在问题 (problems) and 意见建议 (suggestions), as the district's notice asks for; and its saved,
numbered versions (`SummaryReport`).

`report_figures(area, start, end)` gathers every figure as plain JSON-able values (the page, the charts, the
PDF and the spreadsheet all draw on that one dict, and a saved version keeps it frozen). The queries
aggregate in the database: each is one GROUP BY over the period's occurrences in the area's subtree (no
query per row), so a district's two years cost the same dozen queries as a community's month.

What the words mean here:
- a *service* is an occurrence (of a demand in the area, starting in the period) that at least one volunteer
  completed; a *visit* (人次) is one volunteer's completed assignment; *hours* are the hours credited;
- a place is *filled* when a volunteer holds it for good (`BOOKED`: accepted, on site or completed), capped
  at the places the demand asks for; a *short* occurrence has fewer filled places than it asks for, and its
  reason is the first (most specific) reason of the newest solve gap recorded for it ("not_solved" when no
  solve left a gap: declined or handed back after publishing, or never scheduled);
- the organizations *in the area* are those based in it or serving an area that contains or lies within it
  (`access.serving_organizations`); one *took part* when a completed assignment was sent through it (or its
  occurrence was dispatched to it);
- *elderly* residents are 60 or older at the period's end, *children* under 18.
"""

from __future__ import annotations

import calendar
import math
import re
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    case,
    distinct,
    func,
    insert,
    literal,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased
from sqlalchemy.sql import operators
from sqlalchemy.sql.expression import UnaryExpression

from .access import serving_organizations
from .audit import record_audit
from .catalogue import KIND_OTHER, KINDS, category_kind
from .clock import local_today
from .db import among, db
from .errors import Conflict, ValidationError
from .fields import has_control
from .models import (
    BOOKED,
    Area,
    AreaLevel,
    Assignment,
    AssignmentStatus,
    Category,
    Demand,
    DemandOccurrence,
    DemandStatus,
    Handback,
    Organization,
    Priority,
    Registration,
    Resident,
    RunGap,
    Skill,
    Station,
    SummaryReport,
    User,
    Volunteer,
    category_skills,
    organization_areas,
    utcnow,
)
from .settings import setting

FIGURES_VERSION = 1
MAX_DAYS = 731  # a report covers at most two years
ELDERLY_AGE, CHILD_AGE = 60, 18
FEW_ORGANIZATIONS = 2  # a community served by fewer organizations than this is named as a problem
LOW_RATING = 2  # a rating at or below this is a low one
LEADING = 10  # leading organizations and volunteers listed (the typical cases to pick from)
SUGGESTIONS_MAX = 5000
SKILL_REASONS = ("no_candidate_with_skills", "no_candidate_of_gender", "no_candidate_in_organizations",
                 "no_volunteers")
TIME_REASONS = ("none_available_then", "candidates_busy_elsewhere", "weekly_hours_used_up",
                "lower_priority_than_competing_demands", "below_minimum_team")
DISTANCE_REASONS = ("none_within_range", "not_worth_travel_or_overtime")
NOT_SOLVED = "not_solved"
PRIORITIES = [p.value for p in Priority]


# --------------------------------------------------------------------------- periods


@dataclass(frozen=True)
class Period:
    """A report's period: its kind (month, quarter, year, dates), first and last day (inclusive)."""

    kind: str
    start: date
    end: date

    @property
    def key(self) -> str:
        """The period as the `period` query argument writes it ("2026-11", "2026-Q4", "2026", "dates")."""
        if self.kind == "month":
            return f"{self.start:%Y-%m}"
        if self.kind == "quarter":
            return f"{self.start.year}-Q{(self.start.month - 1) // 3 + 1}"
        if self.kind == "year":
            return str(self.start.year)
        return "dates"

    @property
    def label(self) -> str:
        """The period as a title says it."""
        if self.kind == "month":
            return _("%(y)d-%(m)02d", y=self.start.year, m=self.start.month)
        if self.kind == "quarter":
            return _("Q%(q)d %(y)d", q=(self.start.month - 1) // 3 + 1, y=self.start.year)
        if self.kind == "year":
            return _("Year %(y)d", y=self.start.year)
        return _("%(a)s to %(b)s", a=self.start.isoformat(), b=self.end.isoformat())

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> Period:
        """The period just before: the previous month, quarter or year, or as many days before."""
        if self.kind in ("month", "quarter", "year"):
            months = {"month": 1, "quarter": 3, "year": 12}[self.kind]
            start = add_months(self.start, -months)
            return Period(self.kind, start, self.start - timedelta(days=1))
        return Period(self.kind, self.start - timedelta(days=self.days), self.start - timedelta(days=1))

    def last_year(self) -> Period:
        """The same period a year earlier (29 February becomes the 28th)."""
        return Period(self.kind, year_earlier(self.start), year_earlier(self.end))


def add_months(day: date, months: int) -> date:
    """The first of the month `months` after (or before) `day`'s month."""
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def year_earlier(day: date) -> date:
    return day.replace(year=day.year - 1, day=min(day.day, calendar.monthrange(day.year - 1, day.month)[1]))


_MONTH = re.compile(r"(\d{4})-(\d{2})")
_QUARTER = re.compile(r"(\d{4})-?[Qq]([1-4])")
_YEAR = re.compile(r"(\d{4})")
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
EARLIEST_YEAR, LATEST_YEAR = 2000, 2100


def _iso_date(text: str) -> date | None:
    match = _DATE.fullmatch(text) if text.isascii() else None
    if not match:
        return None
    try:
        day = date(*(int(g) for g in match.groups()))
    except ValueError:
        return None
    return day if EARLIEST_YEAR <= day.year <= LATEST_YEAR else None


def parse_period(period: str | None, start: str | None = None, end: str | None = None) -> Period:
    """The period a request names: `period` as "2026-11" (a month), "2026-Q4" (a quarter), "2026" (a year), or
    empty / "dates" with `start` and `end` (YYYY-MM-DD, inclusive, at most two years). Raises ValidationError
    naming the field that is wrong."""
    text = (period or "").strip()
    if text and text != "dates":
        if not text.isascii() or len(text) > 10:
            raise ValidationError({"period": _l("Choose a month (2026-11), a quarter (2026-Q4) or a year (2026).")})
        if m := _MONTH.fullmatch(text):
            year, month = int(m[1]), int(m[2])
            if 1 <= month <= 12 and EARLIEST_YEAR <= year <= LATEST_YEAR:
                first = date(year, month, 1)
                return Period("month", first, add_months(first, 1) - timedelta(days=1))
        elif m := _QUARTER.fullmatch(text):
            year, quarter = int(m[1]), int(m[2])
            if EARLIEST_YEAR <= year <= LATEST_YEAR:
                first = date(year, 3 * quarter - 2, 1)
                return Period("quarter", first, add_months(first, 3) - timedelta(days=1))
        elif m := _YEAR.fullmatch(text):
            year = int(m[1])
            if EARLIEST_YEAR <= year <= LATEST_YEAR:
                return Period("year", date(year, 1, 1), date(year, 12, 31))
        raise ValidationError({"period": _l("Choose a month (2026-11), a quarter (2026-Q4) or a year (2026).")})
    errors = {}
    first = _iso_date((start or "").strip())
    last = _iso_date((end or "").strip())
    if first is None:
        errors["start"] = _l("Enter the first day as YYYY-MM-DD.") if start else _l("Choose a period or enter its first day.")
    if last is None:
        errors["end"] = _l("Enter the last day as YYYY-MM-DD.") if end else _l("Choose a period or enter its last day.")
    if first and last and last < first:
        errors["end"] = _l("The last day comes before the first.")
    elif first and last and (last - first).days + 1 > MAX_DAYS:
        errors["end"] = _l("A report covers at most two years.")
    if errors:
        raise ValidationError(errors)
    return Period("dates", first, last)


def period_choices(today: date | None = None) -> list[Period]:
    """The periods the form offers: the last 13 months, 8 quarters and 3 years (newest first)."""
    today = today or local_today()
    month = date(today.year, today.month, 1)
    months = [parse_period(f"{add_months(month, -i):%Y-%m}") for i in range(13)]
    quarter = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
    quarters = [parse_period(Period("quarter", add_months(quarter, -3 * i), today).key) for i in range(8)]
    years = [parse_period(str(today.year - i)) for i in range(3)]
    return months + quarters + years


def period_of(report: SummaryReport) -> Period:
    return Period(report.period_kind, report.period_start, report.period_end)


# --------------------------------------------------------------------------- the queries' pieces


def _bounds(start: date, end: date) -> tuple[datetime, datetime]:
    return datetime.combine(start, time()), datetime.combine(end + timedelta(days=1), time())


def _hours_of(column):
    """A timestamp column as hours since 1970 (a float), in either database's own arithmetic."""
    if db.engine.dialect.name == "postgresql":
        return func.extract("epoch", column) / 3600.0
    return (func.julianday(column) - 2440587.5) * 24.0


def _larger(a, b):
    return case((a > b, a), else_=b)


def _num(value) -> float:
    return round(float(value or 0), 1)


def _share(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


class _Scope:
    """The period's occurrences in an area's subtree, as the joins and filters every query shares."""

    def __init__(self, area: Area, start: date, end: date):
        self.area, self.start, self.end = area, start, end
        self.lo, self.hi = _bounds(start, end)
        self.days = (end - start).days + 1
        self.community = aliased(Area, name="community")
        # The area's communities as ids: filtering demands by `community_id IN (...)` lets the databases
        # start from the demands' community index (SQLite planned `path LIKE` joins from every occurrence
        # of the period instead: 0.25 s against 0.03 s a query on a district's year).
        subtree = db.session.execute(select(Area.id, Area.level).where(Area.path.startswith(area.path))).all()
        self.area_ids = [area_id for area_id, _level in subtree]
        self.community_ids = [area_id for area_id, level in subtree if level == AreaLevel.COMMUNITY]
        self.temporary: list[Table] = []

    def in_area(self):
        """The scope's communities, as each database plans best: an id list on SQLite (it then starts from
        the demands' community index: 0.03 s against 0.25 s a query on a district's year with `path LIKE`),
        the path on PostgreSQL (whose plans for an id array were twice as slow)."""
        if db.session.get_bind().dialect.name == "sqlite":
            return among(Demand.community_id, self.community_ids)
        return self.community.path.startswith(self.area.path)

    def lives_in_area(self, home):
        """Volunteers whose home (`home`, an alias of Area joined on it) lies in the area: by id on SQLite,
        by path elsewhere (see `in_area`)."""
        if db.session.get_bind().dialect.name == "sqlite":
            return among(home.id, self.area_ids)
        return home.path.startswith(self.area.path)

    def starts_at(self):
        """The occurrences' start, for the period's bounds. On SQLite as `+starts_at` (a no-op that keeps the
        planner off the start's index): driven by that index, a district's year took 60,000 index searches
        into the assignments per query (0.29 s), where scanning them takes 0.03 s."""
        column = DemandOccurrence.starts_at
        if db.session.get_bind().dialect.name == "sqlite":
            return UnaryExpression(column.expression, operator=operators.custom_op("+"), type_=column.type)
        return column

    def occurrences(self, stmt):
        """`stmt` joined from DemandOccurrence to its demand and community, narrowed to the scope."""
        start = self.starts_at()
        return stmt.join(Demand, Demand.id == DemandOccurrence.demand_id).join(
            self.community, self.community.id == Demand.community_id).where(
            start >= self.lo, start < self.hi, self.in_area())

    def completed(self, *columns):
        """A SELECT of `columns` over the scope's completed assignments (joined to occurrence, demand,
        community and category)."""
        stmt = select(*columns).select_from(Assignment).join(
            DemandOccurrence, DemandOccurrence.id == Assignment.occurrence_id)
        return self.occurrences(stmt).join(Category, Category.id == Demand.category_id).where(
            Assignment.status == AssignmentStatus.COMPLETED)

    def filled(self):
        """One row per (not cancelled) occurrence of the scope: its places asked for, filled (capped) and
        the columns the demand side groups by."""
        booked = func.count(Assignment.id)
        stmt = select(
            DemandOccurrence.id.label("occ_id"), DemandOccurrence.starts_at.label("starts_at"),
            Demand.priority.label("priority"), Demand.people.label("people"),
            Demand.community_id.label("community_id"), Demand.category_id.label("category_id"),
            case((booked > Demand.people, Demand.people), else_=booked).label("filled"),
        ).select_from(DemandOccurrence).outerjoin(
            Assignment, and_(Assignment.occurrence_id == DemandOccurrence.id, Assignment.status.in_(BOOKED)))
        stmt = self.occurrences(stmt).where(DemandOccurrence.status != DemandStatus.CANCELLED).group_by(
            DemandOccurrence.id, DemandOccurrence.starts_at, Demand.priority, Demand.people, Demand.community_id,
            Demand.category_id)
        # Worked out once into a temporary table that the report's five demand-side figures read (as a
        # subquery each of them grouped the period's occurrences again: 0.33 s each on a district's year).
        occ = Table(f"report_occ_{uuid.uuid4().hex[:12]}", MetaData(), Column("occ_id", Integer),
                    Column("starts_at", DateTime), Column("priority", String(24)), Column("people", Integer),
                    Column("community_id", Integer), Column("category_id", Integer), Column("filled", Integer),
                    prefixes=["TEMPORARY"], postgresql_on_commit="DROP")
        connection = db.session.connection()
        occ.create(connection)
        self.temporary.append(occ)
        connection.execute(insert(occ).from_select([c.name for c in occ.columns], stmt))
        return occ

    def close(self) -> None:
        """Drop the temporary tables (PostgreSQL would at commit; SQLite keeps them for the connection)."""
        connection = db.session.connection()
        while self.temporary:
            self.temporary.pop().drop(connection)


def _organization_of():
    """The organization a service counts for: the one it was sent through, else the one dispatched."""
    return func.coalesce(Assignment.organization_id, DemandOccurrence.responsible_organization_id)


# --------------------------------------------------------------------------- 开展情况


def headline(area: Area, start: date, end: date) -> dict[str, Any]:
    """The period's totals: services, visits, hours, volunteers, residents (elderly, children), organizations."""
    s = _Scope(area, start, end)
    elderly_year, child_year = end.year - ELDERLY_AGE, end.year - CHILD_AGE
    row = db.session.execute(s.completed(
        func.count(distinct(DemandOccurrence.id)), func.count(Assignment.id),
        func.sum(Assignment.credited_hours), func.count(distinct(Assignment.volunteer_id)),
        func.count(distinct(Demand.resident_id)), func.count(distinct(_organization_of())),
    )).one()
    residents = db.session.execute(
        s.completed(func.count(distinct(Resident.id)).filter(Resident.birth_year <= elderly_year),
                    func.count(distinct(Resident.id)).filter(Resident.birth_year > child_year))
        .join(Resident, Resident.id == Demand.resident_id)).one()
    return {"services": row[0], "visits": row[1], "hours": _num(row[2]), "volunteers": row[3],
            "residents": row[4], "elderly": residents[0], "children": residents[1], "organizations": row[5]}


def _by_category(s: _Scope) -> tuple[list[dict], list[dict]]:
    rows = db.session.execute(s.completed(
        Category.code, Category.name_zh, Category.name_en, func.count(distinct(DemandOccurrence.id)),
        func.count(Assignment.id), func.sum(Assignment.credited_hours), func.count(distinct(Assignment.volunteer_id)),
    ).group_by(Category.code, Category.name_zh, Category.name_en)).all()
    categories = [{"code": r[0], "name_zh": r[1], "name_en": r[2], "kind": category_kind(r[0]), "services": r[3],
                   "visits": r[4], "hours": _num(r[5]), "volunteers": r[6]} for r in rows]
    categories.sort(key=lambda c: (-c["hours"], c["code"]))
    from .catalogue import CATEGORY_KIND

    kind = case(CATEGORY_KIND, value=Category.code, else_=literal(KIND_OTHER))
    kind_rows = {r[0]: r for r in db.session.execute(s.completed(
        kind, func.count(distinct(DemandOccurrence.id)), func.count(Assignment.id),
        func.sum(Assignment.credited_hours), func.count(distinct(Assignment.volunteer_id))).group_by(kind))}
    kinds = []
    for code in [*KINDS, KIND_OTHER]:
        r = kind_rows.get(code)
        if r is None and code == KIND_OTHER:
            continue
        kinds.append({"code": code, "services": r[1] if r else 0, "visits": r[2] if r else 0,
                      "hours": _num(r[3]) if r else 0.0, "volunteers": r[4] if r else 0})
    return kinds, categories


def _organizations(s: _Scope) -> dict[str, Any]:
    in_area = db.session.execute(select(Organization.id, Organization.type, Organization.registration)
                                 .where(serving_organizations(s.area))).all()
    took = db.session.execute(
        s.completed(Organization.id, Organization.type, Organization.registration)
        .join(Organization, Organization.id == _organization_of()).distinct()).all()
    took_ids = {r[0] for r in took}
    everyone = {r[0]: r for r in [*in_area, *took]}
    by_type = {}
    for org_id, org_type, _reg in everyone.values():
        entry = by_type.setdefault(str(org_type.value if hasattr(org_type, "value") else org_type),
                                   {"in_area": 0, "took_part": 0})
        entry["in_area"] += 1
        entry["took_part"] += org_id in took_ids
    registered = [r for r in everyone.values() if r[2] != Registration.UNREGISTERED]
    reg_took = sum(1 for r in registered if r[0] in took_ids)
    return {
        "in_area": len(everyone), "took_part": len(took_ids),
        "by_type": [{"type": t, **v} for t, v in sorted(by_type.items())],
        "registered": {"in_area": len(registered), "took_part": reg_took, "share": _share(reg_took, len(registered))},
    }


def _communities(s: _Scope, occ) -> list[dict]:
    """Every community in the area with its services, hours, places filled and short, organizations serving it."""
    township = aliased(Area, name="township")
    communities = db.session.execute(
        select(Area.id, Area.name, Area.lat, Area.lon, township.name)
        .outerjoin(township, township.id == Area.parent_id)
        .where(Area.path.startswith(s.area.path), Area.level == AreaLevel.COMMUNITY)
        .order_by(township.name, Area.name)).all()
    served = {r[0]: r for r in db.session.execute(s.completed(
        Demand.community_id, func.count(distinct(DemandOccurrence.id)), func.count(Assignment.id),
        func.sum(Assignment.credited_hours), func.count(distinct(Assignment.volunteer_id)),
    ).group_by(Demand.community_id))}
    demand = {r[0]: r for r in db.session.execute(
        select(occ.c.community_id, func.count(), func.sum(occ.c.people), func.sum(occ.c.filled))
        .group_by(occ.c.community_id))}
    # Organizations serving each community: based in it, or serving an area that contains it (or it itself).
    place, served_area = aliased(Area, name="place"), aliased(Area, name="served_area")
    in_scope = and_(place.path.startswith(s.area.path), place.level == AreaLevel.COMMUNITY)
    pairs = set(db.session.execute(
        select(place.id, organization_areas.c.organization_id).select_from(place)
        .join(served_area, place.path.startswith(served_area.path))
        .join(organization_areas, organization_areas.c.area_id == served_area.id).where(in_scope)).tuples())
    pairs |= set(db.session.execute(select(place.id, Organization.id).join(
        Organization, Organization.home_area_id == place.id).where(in_scope)).tuples())
    serving: dict[int, int] = {}
    for cid, _org in pairs:
        serving[cid] = serving.get(cid, 0) + 1
    out = []
    for cid, name, lat, lon, town in communities:
        sv, dm = served.get(cid), demand.get(cid)
        positions, filled = (int(dm[2] or 0), int(dm[3] or 0)) if dm else (0, 0)
        out.append({"id": cid, "name": name, "township": town or "", "lat": lat, "lon": lon,
                    "services": sv[1] if sv else 0, "visits": sv[2] if sv else 0,
                    "hours": _num(sv[3]) if sv else 0.0, "volunteers": sv[4] if sv else 0,
                    "occurrences": dm[1] if dm else 0, "positions": positions, "filled": filled,
                    "short": positions - filled, "organizations": serving.get(cid, 0)})
    return out


def _townships(communities: list[dict]) -> list[dict]:
    """The communities' figures summed per street or township."""
    out: dict[str, dict] = {}
    for c in communities:
        t = out.setdefault(c["township"], {"name": c["township"], "communities": 0, "services": 0, "visits": 0,
                                           "hours": 0.0, "positions": 0, "filled": 0, "short": 0})
        t["communities"] += 1
        for key in ("services", "visits", "positions", "filled", "short"):
            t[key] += c[key]
        t["hours"] = round(t["hours"] + c["hours"], 1)
    return list(out.values())


def _stations(s: _Scope) -> list[dict]:
    stations = db.session.execute(
        select(Station.id, Station.name, Area.name).join(Area, Area.id == Station.area_id)
        .where(Area.path.startswith(s.area.path)).order_by(Area.name, Station.name)).all()
    used = {r[0]: r for r in db.session.execute(s.completed(
        Demand.station_id, func.count(distinct(DemandOccurrence.id)), func.count(Assignment.id),
        func.sum(Assignment.credited_hours)).where(Demand.station_id.is_not(None)).group_by(Demand.station_id))}
    return [{"id": sid, "name": name, "community": community, "services": used[sid][1] if sid in used else 0,
             "visits": used[sid][2] if sid in used else 0, "hours": _num(used[sid][3]) if sid in used else 0.0}
            for sid, name, community in stations]


# --------------------------------------------------------------------------- 进展成效


def _priorities(occ) -> tuple[list[dict], list[dict]]:
    met = func.sum(case((occ.c.filled >= occ.c.people, 1), else_=0))
    rows = {r[0]: r for r in db.session.execute(select(
        occ.c.priority, func.count(), func.sum(occ.c.people), func.sum(occ.c.filled), met).group_by(occ.c.priority))}
    priorities = []
    for p in PRIORITIES:
        r = rows.get(p) or rows.get(Priority(p))
        priorities.append({"priority": p, "occurrences": r[1] if r else 0, "positions": int(r[2] or 0) if r else 0,
                           "filled": int(r[3] or 0) if r else 0, "met": int(r[4] or 0) if r else 0})
    day = func.date(occ.c.starts_at)
    weeks: dict[tuple[str, str], list[int]] = {}
    for d, p, positions, filled in db.session.execute(
            select(day, occ.c.priority, func.sum(occ.c.people), func.sum(occ.c.filled)).group_by(day, occ.c.priority)):
        d = d if isinstance(d, date) else date.fromisoformat(str(d)[:10])
        monday = d - timedelta(days=d.weekday())
        entry = weeks.setdefault((monday.isoformat(), getattr(p, "value", p)), [0, 0])
        entry[0] += int(positions or 0)
        entry[1] += int(filled or 0)
    week_rows = [{"week": w, "priority": p, "positions": v[0], "filled": v[1]} for (w, p), v in sorted(weeks.items())]
    return priorities, week_rows


def _staffing(s: _Scope) -> dict[str, Any]:
    """Hours from posting to the first volunteer accepting, per staffed occurrence. A one-off demand is posted
    when created; a weekly one's occurrence counts as posted a week before it starts (when the week before's
    schedule can take it), or at creation if later."""
    first = func.min(Assignment.responded_at)
    posted = case((Demand.weekdays == "", _hours_of(Demand.created_at)),
                  else_=_larger(_hours_of(Demand.created_at), _hours_of(DemandOccurrence.starts_at) - 168.0))
    per = s.occurrences(
        select(DemandOccurrence.id, (_hours_of(first) - posted).label("wait"))
        .select_from(DemandOccurrence)
        .join(Assignment, and_(Assignment.occurrence_id == DemandOccurrence.id, Assignment.status.in_(BOOKED),
                               Assignment.responded_at.is_not(None)))
    ).group_by(DemandOccurrence.id, Demand.created_at, Demand.weekdays, DemandOccurrence.starts_at).subquery()
    wait = case((per.c.wait < 0, 0.0), else_=per.c.wait)

    def within(hours):
        return func.sum(case((wait <= hours, 1), else_=0))

    row = db.session.execute(select(func.count(), func.avg(wait), within(24), within(72), within(168))
                             .select_from(per)).one()
    staffed = row[0] or 0
    return {"staffed": staffed, "mean_hours": _num(row[1]) if staffed else None,
            "within_day": int(row[2] or 0), "within_3_days": int(row[3] or 0), "within_week": int(row[4] or 0)}


def _ratings(s: _Scope) -> dict[str, Any]:
    rows = db.session.execute(s.completed(Assignment.rating, func.count())
                              .where(Assignment.rating.is_not(None)).group_by(Assignment.rating)).all()
    dist = {str(k): 0 for k in range(1, 6)}
    for rating, n in rows:
        dist[str(rating)] = dist.get(str(rating), 0) + n
    count = sum(dist.values())
    total = sum(int(k) * v for k, v in dist.items())
    low = sum(v for k, v in dist.items() if int(k) <= LOW_RATING)
    return {"count": count, "mean": round(total / count, 2) if count else None, "low": low, "dist": dist}


def _continuity(s: _Scope) -> dict[str, Any]:
    """The same volunteer for the same elder: of the elderly-care residents visited twice or more, how many
    always saw one volunteer, and the share of their visits made by their usual volunteer."""
    rows = db.session.execute(s.completed(Demand.resident_id, Assignment.volunteer_id, func.count())
                              .where(Demand.resident_id.is_not(None), Category.code == "elderly_care")
                              .group_by(Demand.resident_id, Assignment.volunteer_id)).all()
    per: dict[int, list[int]] = {}
    for resident, _volunteer, n in rows:
        per.setdefault(resident, []).append(n)
    repeat = {r: counts for r, counts in per.items() if sum(counts) >= 2}
    visits = sum(sum(c) for c in repeat.values())
    usual = sum(max(c) for c in repeat.values())
    return {"residents": len(repeat), "single_volunteer": sum(1 for c in repeat.values() if len(c) == 1),
            "visits": visits, "usual_visits": usual, "share": _share(usual, visits)}


def _leading(s: _Scope) -> tuple[list[dict], list[dict]]:
    org = _organization_of()
    hours = func.sum(Assignment.credited_hours)
    orgs = db.session.execute(
        s.completed(Organization.id, Organization.name, Organization.type, func.count(distinct(DemandOccurrence.id)),
                    func.count(Assignment.id), hours, func.count(distinct(Assignment.volunteer_id)),
                    func.avg(Assignment.rating), func.count(distinct(Demand.community_id)))
        .join(Organization, Organization.id == org)
        .group_by(Organization.id, Organization.name, Organization.type)
        .order_by(hours.desc(), Organization.id).limit(LEADING)).all()
    vols = db.session.execute(
        s.completed(Volunteer.id, Volunteer.real_name, func.count(Assignment.id), hours, func.avg(Assignment.rating),
                    func.count(distinct(Demand.resident_id)), func.count(distinct(Category.id)))
        .join(Volunteer, Volunteer.id == Assignment.volunteer_id)
        .group_by(Volunteer.id, Volunteer.real_name)
        .order_by(hours.desc(), Volunteer.id).limit(LEADING)).all()
    organizations = [{"key": f"org-{r[0]}", "id": r[0], "name": r[1], "type": getattr(r[2], "value", r[2]),
                      "services": r[3], "visits": r[4], "hours": _num(r[5]), "volunteers": r[6],
                      "rating": round(float(r[7]), 2) if r[7] is not None else None, "communities": r[8]}
                     for r in orgs]
    volunteers = [{"key": f"vol-{r[0]}", "id": r[0], "name": r[1], "visits": r[2], "hours": _num(r[3]),
                   "rating": round(float(r[4]), 2) if r[4] is not None else None, "residents": r[5],
                   "categories": r[6]} for r in vols]
    return organizations, volunteers


# --------------------------------------------------------------------------- 存在问题


def _short(s: _Scope, occ) -> dict[str, Any]:
    """Occurrences left short, their places missing, grouped by the solver's first reason, by category and by
    street and category (what to recruit for)."""
    # The newest gap of each occurrence of the period: one grouped query (RunGap has no index on the
    # occurrence, so a correlated MAX per short occurrence scanned the table once each).
    newest = select(RunGap.occurrence_id.label("oid"), func.max(RunGap.id).label("gid")).join(
        DemandOccurrence, DemandOccurrence.id == RunGap.occurrence_id).where(
        DemandOccurrence.starts_at >= s.lo, DemandOccurrence.starts_at < s.hi).group_by(
        RunGap.occurrence_id).subquery("newest")
    township = aliased(Area, name="township")
    community = aliased(Area, name="short_community")
    rows = db.session.execute(
        select(occ.c.occ_id, occ.c.people - occ.c.filled, occ.c.category_id, township.name, RunGap.reasons)
        .select_from(occ)
        .join(community, community.id == occ.c.community_id)
        .outerjoin(township, township.id == community.parent_id)
        .outerjoin(newest, newest.c.oid == occ.c.occ_id)
        .outerjoin(RunGap, RunGap.id == newest.c.gid)
        .where(occ.c.filled < occ.c.people)).all()
    categories = {r[0]: r for r in db.session.execute(select(Category.id, Category.code, Category.name_zh,
                                                             Category.name_en))}
    by_reason: dict[str, list[int]] = {}
    by_category: dict[int, list[int]] = {}
    recruit: dict[tuple[str, int], int] = {}
    for _occ_id, missing, category_id, town, reasons in rows:
        reason = (reasons or [NOT_SOLVED])[0]
        for table, key in ((by_reason, reason), (by_category, category_id)):
            entry = table.setdefault(key, [0, 0])
            entry[0] += 1
            entry[1] += missing
        if reason in SKILL_REASONS:
            recruit[(town or "", category_id)] = recruit.get((town or "", category_id), 0) + missing
    skills: dict[int, list[tuple[str, str]]] = {}
    if recruit:
        for cid, zh, en in db.session.execute(
                select(category_skills.c.category_id, Skill.name_zh, Skill.name_en)
                .join(Skill, Skill.id == category_skills.c.skill_id)
                .where(category_skills.c.category_id.in_({c for _t, c in recruit})).order_by(Skill.code)):
            skills.setdefault(cid, []).append((zh, en))
    weeks = max(s.end - s.start + timedelta(days=1), timedelta(days=7)).days / 7

    def category(cid):
        c = categories[cid]
        return {"code": c[1], "name_zh": c[2], "name_en": c[3]}

    return {
        "occurrences": len(rows), "positions": sum(r[1] for r in rows),
        "by_reason": sorted(({"reason": k, "occurrences": v[0], "positions": v[1]} for k, v in by_reason.items()),
                            key=lambda x: (-x["positions"], x["reason"])),
        "by_category": sorted(({**category(k), "occurrences": v[0], "positions": v[1]}
                               for k, v in by_category.items()), key=lambda x: (-x["positions"], x["code"])),
        # Volunteers to recruit: the places missing for want of skills, per week (one volunteer a service a week).
        "recruit": sorted(({"township": town, **category(cid), "positions": missing,
                            "volunteers": max(1, math.ceil(missing / weeks)),
                            "skills_zh": [z for z, _e in skills.get(cid, [])],
                            "skills_en": [e for _z, e in skills.get(cid, [])]}
                           for (town, cid), missing in recruit.items()), key=lambda x: (-x["positions"], x["township"])),
    }


def _volunteer_load(s: _Scope) -> dict[str, Any]:
    """The area's active volunteers (living in it): how many served, how many did nothing, and who served
    more than their preferred weekly time over the period (anywhere)."""
    home = aliased(Area, name="home")
    living_here = s.lives_in_area(home)
    volunteers = db.session.execute(
        select(Volunteer.id, Volunteer.real_name, Volunteer.preferred_minutes_per_week)
        .join(home, home.id == Volunteer.home_area_id)
        .where(Volunteer.active, living_here)).all()
    # Hours per volunteer in the period: one grouped query, joined to the area's volunteers here (a
    # correlated or outer-joined form of the same took seconds on PostgreSQL for a district's year).
    hours = dict(db.session.execute(
        select(Assignment.volunteer_id, func.sum(Assignment.credited_hours))
        .join(DemandOccurrence, DemandOccurrence.id == Assignment.occurrence_id)
        .join(Volunteer, Volunteer.id == Assignment.volunteer_id)
        .join(home, home.id == Volunteer.home_area_id)
        .where(Assignment.status == AssignmentStatus.COMPLETED, s.starts_at() >= s.lo,
               s.starts_at() < s.hi, living_here)
        .group_by(Assignment.volunteer_id)).tuples().all())
    weeks = s.days / 7
    served = [(vid, name, float(hours.get(vid) or 0), preferred) for vid, name, preferred in volunteers]
    over = sorted((v for v in served if v[2] * 60 > v[3] * weeks), key=lambda v: (-v[2], v[0]))
    active = sum(1 for v in served if v[2] > 0)
    return {"in_area": len(served), "active": active, "idle": len(served) - active, "overloaded": len(over),
            "overloaded_list": [{"id": v[0], "name": v[1], "hours": round(v[2], 1),
                                 "preferred_hours": round(v[3] * weeks / 60, 1)} for v in over[:LEADING]]}


def _declines(s: _Scope) -> dict[str, Any]:
    rows = db.session.execute(s.occurrences(
        select(Assignment.status, Assignment.decline_kind, func.count()).select_from(Assignment)
        .join(DemandOccurrence, DemandOccurrence.id == Assignment.occurrence_id))
        .where(Assignment.status.in_((AssignmentStatus.DECLINED, AssignmentStatus.NO_SHOW)))
        .group_by(Assignment.status, Assignment.decline_kind)).all()
    by_kind: dict[str, int] = {}
    declined = no_show = 0
    for status, kind, n in rows:
        if status == AssignmentStatus.NO_SHOW:
            no_show += n
        else:
            declined += n
            key = getattr(kind, "value", kind) or "unstated"
            by_kind[key] = by_kind.get(key, 0) + n
    handbacks = db.session.scalar(s.occurrences(
        select(func.count(Handback.id)).select_from(Handback)
        .join(DemandOccurrence, DemandOccurrence.id == Handback.occurrence_id))) or 0
    return {"declined": declined, "by_kind": by_kind, "no_show": no_show, "handbacks": handbacks}


def _low_ratings(s: _Scope) -> list[dict]:
    rows = db.session.execute(s.completed(
        DemandOccurrence.starts_at, Category.name_zh, Category.name_en, s.community.name, Assignment.rating,
        Organization.name)
        .outerjoin(Organization, Organization.id == _organization_of())
        .where(Assignment.rating <= LOW_RATING)
        .order_by(Assignment.rating, DemandOccurrence.starts_at).limit(LEADING)).all()
    return [{"date": r[0].date().isoformat(), "category_zh": r[1], "category_en": r[2], "community": r[3],
             "rating": r[4], "organization": r[5] or ""} for r in rows]


# --------------------------------------------------------------------------- the report


def report_figures(area: Area, start: date, end: date, kind: str = "dates") -> dict[str, Any]:
    """Every figure of the area's report for the period [start, end] as plain JSON-able values.

    With the setting REPORT_PARALLEL (on by default) the figures that need no temporary table (the two
    periods compared, staffing times, volunteers' load, declines, the leading organizations and
    volunteers) are worked out on a second connection in a thread while this one does the rest: the
    databases answer both at once on two cores (bench/report-report.md). Only committed rows are read
    there, so callers whose own uncommitted rows must count (tests) turn it off."""
    period = Period(kind, start, end)
    url = db.engine.url
    in_memory = url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")
    side = _side_figures(area, period) if setting("REPORT_PARALLEL", True) and not in_memory else None
    s = _Scope(area, start, end)
    try:
        figures = _figures(area, period, kind, s, s.filled(), side)
    finally:
        s.close()
    return figures


def _side(area_id: int, period: Period) -> dict[str, Any]:
    """The figures of the second connection (see `report_figures`)."""
    area = db.session.get(Area, area_id)
    s = _Scope(area, period.start, period.end)
    return {"then": {key: (other, headline(area, other.start, other.end))
                     for key, other in (("previous", period.previous()), ("last_year", period.last_year()))},
            "staffing": _staffing(s), "volunteers": _volunteer_load(s), "declines": _declines(s),
            "leading": _leading(s)}


def _side_figures(area: Area, period: Period):
    """Start `_side` in a thread with its own app context (and so its own session and connection)."""
    from concurrent.futures import ThreadPoolExecutor

    from .settings import in_fresh_app_context

    in_context = in_fresh_app_context()

    def side() -> dict[str, Any]:
        try:
            return _side(area.id, period)
        finally:
            db.session.remove()

    def run():
        return in_context(side)

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="report")
    future = pool.submit(run)
    pool.shutdown(wait=False)
    return future


def _figures(area: Area, period: Period, kind: str, s: _Scope, occ, side=None) -> dict[str, Any]:
    start, end = period.start, period.end
    totals = headline(area, start, end)
    kinds, categories = _by_category(s)
    communities = _communities(s, occ)
    priorities, weeks = _priorities(occ)
    figures = {
        "version": FIGURES_VERSION,
        "generated_at": utcnow().isoformat(timespec="seconds"),
        "area": {"id": area.id, "name": area.name, "level": area.level.value, "code": area.code},
        "period": {"kind": kind, "start": start.isoformat(), "end": end.isoformat(), "key": period.key},
        "totals": totals,
        "kinds": kinds,
        "categories": categories,
        "organizations": _organizations(s),
        "communities": communities,
        "townships": _townships(communities),
        "stations": _stations(s),
        "priorities": priorities,
        "weeks": weeks,
        "ratings": _ratings(s),
        "continuity": _continuity(s),
        "short": _short(s, occ),
        "few_organizations": [{"name": c["name"], "township": c["township"], "organizations": c["organizations"]}
                              for c in communities if c["organizations"] < FEW_ORGANIZATIONS],
        "low_ratings": _low_ratings(s),
    }
    done = side.result() if side is not None else _side(area.id, period)
    figures["compare"] = {key: {"start": other.start.isoformat(), "end": other.end.isoformat(), **then,
                                "change": {k: _share(totals[k] - then[k], then[k]) for k in totals}}
                          for key, (other, then) in done["then"].items()}
    figures["staffing"], figures["volunteers"], figures["declines"] = (
        done["staffing"], done["volunteers"], done["declines"])
    figures["leading_organizations"], figures["leading_volunteers"] = done["leading"]
    return figures


def _names(names: list[str]) -> str:
    return "、".join(names[:5]) + ("等" if len(names) > 5 else "")


def draft_suggestions(figures: dict[str, Any]) -> str:
    """A first draft of 意见建议 from the figures, one suggestion a line, for the coordinator to edit."""
    lines: list[str] = []
    zh = True
    try:
        from flask_babel import get_locale

        zh = str(get_locale() or "zh").startswith("zh")
    except Exception:  # outside a request: Chinese names
        zh = True
    for r in figures["short"]["recruit"][:3]:
        skills = "、".join(r["skills_zh"] if zh else r["skills_en"]) or (r["name_zh"] if zh else r["name_en"])
        lines.append(_("Recruit %(n)d more volunteers with %(skills)s skills in %(place)s: %(positions)d places in "
                       "%(category)s were left short for want of them.", n=r["volunteers"], skills=skills,
                       place=r["township"] or figures["area"]["name"], positions=r["positions"],
                       category=r["name_zh"] if zh else r["name_en"]))
    reasons = {r["reason"]: r["positions"] for r in figures["short"]["by_reason"]}
    busy = sum(reasons.get(k, 0) for k in TIME_REASONS)
    if busy:
        lines.append(_("%(n)d places were short because nobody was free then: ask organizations to add "
                       "volunteers free at those times (evenings and weekends), or move services to other times.",
                       n=busy))
    far = sum(reasons.get(k, 0) for k in DISTANCE_REASONS)
    if far:
        lines.append(_("%(n)d places were short because volunteers live too far: recruit volunteers living in the "
                       "communities concerned.", n=far))
    few = figures["few_organizations"]
    if few:
        lines.append(_("Foster community social organizations in %(names)s: fewer than %(k)d organizations serve "
                       "them.", names=_names([c["name"] for c in few]), k=FEW_ORGANIZATIONS))
    reg = figures["organizations"]["registered"]
    if reg["in_area"] and reg["took_part"] < reg["in_area"]:
        lines.append(_("%(n)d of %(m)d registered or filed organizations took no part: invite them to the "
                       "practice stations' activities.", n=reg["in_area"] - reg["took_part"], m=reg["in_area"]))
    vols = figures["volunteers"]
    if vols["idle"]:
        lines.append(_("%(n)d of %(m)d volunteers living in the area served no one in the period: contact them, "
                       "offer training, and update their free times.", n=vols["idle"], m=vols["in_area"]))
    if vols["overloaded"]:
        lines.append(_("%(n)d volunteers served more than the time they prefer: spread the work more evenly.",
                       n=vols["overloaded"]))
    dec = figures["declines"]
    if dec["declined"] + dec["handbacks"] + dec["no_show"] >= 5:
        lines.append(_("Offers were declined %(d)d times, handed back %(h)d times and missed %(s)d times: confirm "
                       "times with volunteers before publishing.", d=dec["declined"], h=dec["handbacks"],
                       s=dec["no_show"]))
    cont = figures["continuity"]
    if cont["residents"] and cont["share"] is not None and cont["share"] < 0.7:
        lines.append(_("Elderly residents saw their usual volunteer in %(p)d%% of visits: keep the same volunteer "
                       "for the same elder where possible.", p=round(cont["share"] * 100)))
    if figures["ratings"]["low"]:
        lines.append(_("%(n)d services were rated 2 stars or fewer: follow up with the residents and the "
                       "organizations concerned.", n=figures["ratings"]["low"]))
    if not lines:
        lines.append(_("Keep the present arrangements; publicize the typical cases and the practice stations' "
                       "services."))
    return "\n".join(f"{i}. {line}" for i, line in enumerate(lines, 1))


def case_candidates(figures: dict[str, Any]) -> dict[str, dict]:
    """The typical cases a coordinator may pick (leading organizations and volunteers), by key."""
    out = {}
    for org in figures["leading_organizations"]:
        out[org["key"]] = {"key": org["key"], "kind": "organization", "name": org["name"], "hours": org["hours"],
                           "services": org["services"], "volunteers": org["volunteers"], "rating": org["rating"]}
    for vol in figures["leading_volunteers"]:
        out[vol["key"]] = {"key": vol["key"], "kind": "volunteer", "name": vol["name"], "hours": vol["hours"],
                           "services": vol["visits"], "residents": vol["residents"], "rating": vol["rating"]}
    return out


def save_report(area: Area, period: Period, *, suggestions: str, cases: list[str], notes: dict[str, str] | None = None,
                user: User) -> SummaryReport:
    """Save a numbered version of the area's report for the period: the figures as they are now, frozen, with
    the coordinator's edited suggestions and the typical cases picked (keys of `case_candidates`, each with
    an optional note describing it). Audited as `save_report`."""
    errors = {}
    text = (suggestions or "").replace("\r\n", "\n").strip()
    if has_control(text.replace("\n", "")):
        errors["suggestions"] = _l("Remove the control characters (such as NUL) from this text.")
    elif len(text) > SUGGESTIONS_MAX:
        errors["suggestions"] = _l("At most %(n)d characters.", n=SUGGESTIONS_MAX)
    figures = report_figures(area, period.start, period.end, period.kind)
    candidates = case_candidates(figures)
    picked = []
    for key in dict.fromkeys(cases or []):
        if key not in candidates:
            errors["cases"] = _l("Pick typical cases from the list shown.")
            break
        note = ((notes or {}).get(key) or "").strip()
        if has_control(note) or len(note) > 500:
            errors["cases"] = _l("A case's description has at most 500 characters and no control characters.")
            break
        picked.append({**candidates[key], "note": note})
    if errors:
        raise ValidationError(errors)
    version = (db.session.scalar(select(func.max(SummaryReport.version)).where(
        SummaryReport.area_id == area.id, SummaryReport.period_start == period.start,
        SummaryReport.period_end == period.end)) or 0) + 1
    report = SummaryReport(
        number=f"R{area.id}-{period.start:%Y%m%d}-{period.end:%Y%m%d}-{version}", area_id=area.id,
        period_kind=period.kind, period_start=period.start, period_end=period.end, version=version,
        figures=figures, suggestions=text, cases=picked, created_by_id=user.id)
    db.session.add(report)
    try:
        db.session.flush()
    except IntegrityError:  # the same version number saved by someone else at the same moment
        db.session.rollback()
        raise Conflict(str(_l("Someone changed this meanwhile. Reload the page and try again."))) from None
    record_audit(user, "save_report", report, number=report.number, area=area.id,
                 start=period.start.isoformat(), end=period.end.isoformat(), version=version)
    return report
