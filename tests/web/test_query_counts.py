"""The query-count guard: the SQL statements one request of a main page runs do not grow with its rows.

Each case builds the `world`, adds `N` units of rows (volunteers, members, residents, demands with
their occurrences, assignments in every state, notifications, audit entries, accounts, organizations,
past schedules), signs in as the page's user, counts the statements of one GET after a warm-up GET,
then adds `2 * N` more units (3N in all) and counts again. A lazy load per row in a view, a loop or a
template (an N+1) makes the second count larger.

A page whose statement count depends on a category count rather than on its rows gets an allowance
in `SLACK` with the reason next to it.
"""

from __future__ import annotations

import re
from collections import Counter
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import event, select

from matcher.accounts import create_user
from matcher.assignments import issue_checkin_codes
from matcher.audit import record_audit
from matcher.demands import create_demand
from matcher.models import (
    AssignmentStatus,
    DemandOccurrence,
    Membership,
    MemberStatus,
    Organization,
    OrgType,
    Role,
    RunStatus,
    Schedule,
    ScheduleStatus,
    SolveRun,
    utcnow,
)
from matcher.models._types import DeclineReason
from matcher.notifications import OFFERS, demand_link, notify
from matcher.residents import create_resident
from matcher.volunteers import create_volunteer
from tests.conftest import PASSWORD
from tests.matcher.builders import assign, offer

N = 3  # units of rows at the first count; the second count is at 3N

# (case id, who signs in, path; {week}, {demand}, {occ}, {schedule} are filled in from the world)
PAGES = [
    ("dashboard-admin", "admin", "/dashboard?week={week}"),
    ("dashboard-coordinator", "coord", "/dashboard?week={week}"),
    ("dashboard-street-coordinator", "coord_a", "/dashboard?week={week}"),
    ("dashboard-worker", "worker_a1", "/dashboard?week={week}"),
    ("dashboard-leader", "leader_a", "/dashboard?week={week}"),
    ("dashboard-volunteer", "vol_a", "/dashboard?week={week}"),
    ("demands", "coord", "/demands"),
    ("demands-worker", "worker_a1", "/demands"),
    ("demand", "worker_a1", "/demands/{demand}"),
    ("demand-volunteer", "vol_a", "/demands/{demand}"),
    ("volunteers", "coord", "/volunteers"),
    ("organizations", "coord", "/organizations"),
    ("notifications-volunteer", "vol_a", "/notifications"),
    ("notifications-coordinator", "coord", "/notifications"),
    ("my-offers", "vol_a", "/me/offers"),
    ("my-week", "vol_a", "/me/week?week={week}"),
    ("my-record", "vol_a", "/me/record"),
    ("my-profile", "vol_a", "/me/profile"),
    ("community-week", "worker_a1", "/community/week?week={week}"),
    ("community-code", "worker_a1", "/community/occurrences/{occ}/code"),
    ("team", "leader_a", "/team?week={week}"),
    ("team-members", "leader_a", "/team/members"),
    ("schedules", "coord", "/schedules"),
    ("schedules-street", "coord_a", "/schedules"),
    ("schedule-district", "coord", "/schedules/{schedule}"),
    ("schedule-street", "coord_a", "/schedules/{schedule}"),
    ("schedule-occurrence", "coord", "/schedules/{schedule}/occurrences/{occ}"),
    ("schedule-delivery", "coord", "/schedules/{schedule}/delivery"),
    ("accounts-admin", "admin", "/accounts"),
    ("accounts-coordinator", "coord", "/accounts"),
    ("audit", "admin", "/admin/audit"),
]

# Allowed growth from N to 3N, per case id, with the reason. Empty: every page is flat.
SLACK: dict[str, int] = {}


@contextmanager
def counting(engine):
    """Count the SQL statements sent through `engine` inside the block."""
    statements: list[str] = []

    def before(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", before)


def statements_of(client, engine, path: str) -> list[str]:
    """The statements of one GET of `path` (after a warm-up GET: caches filled, offers marked seen)."""
    warm = client.get(path)
    assert warm.status_code == 200, (path, warm.status_code)
    with counting(engine) as statements:
        response = client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    return statements


@pytest.fixture
def scene(world, db, next_monday):
    """The world with the district's published schedule for next week and the focal occurrence."""
    schedule = Schedule(area=world["areas"]["district"], week_start=next_monday, status=ScheduleStatus.PUBLISHED,
                        published_at=utcnow())
    db.session.add(schedule)
    issue_checkin_codes(db.session.scalars(select(DemandOccurrence)))
    db.session.commit()
    occ = world["demands"]["a1"].occurrences[0]
    offer(schedule, occ, world["volunteers"]["a"])  # vol_a sees demand a1 through this offer
    return {"world": world, "schedule": schedule, "occ": occ, "monday": next_monday, "grown": 0}


def grow(scene, db, count: int) -> None:
    """Add `count` units of rows, each touching every page's lists (see the module docstring)."""
    world, schedule, focal = scene["world"], scene["schedule"], scene["occ"]
    users, areas, monday = world["users"], world["areas"], scene["monday"]
    org_a, vol_a = world["orgs"]["a"], world["volunteers"]["a"]
    for i in range(scene["grown"], scene["grown"] + count):
        community = ("a1", "a2", "b1")[i % 3]
        worker = {"a1": "worker_a1", "a2": "worker_a2", "b1": "worker_b1"}[community]
        org = Organization(name=f"互助队{i}", type=OrgType.LIFE_SERVICES, home_area=areas["town_a"],
                           areas=[areas["town_a"]])
        db.session.add(org)
        account = create_user(username=f"grown_vol{i}", password=PASSWORD, role=Role.VOLUNTEER)
        create_user(username=f"grown_worker{i}", password=PASSWORD, role=Role.WORKER, area_id=areas[community].id)
        vol = create_volunteer({"real_name": f"志愿者{i}", "phone": f"1360000{i:04d}", "home_area": areas["a1"].id,
                                "lat": 29.346, "lon": 107.706, "skills": "elder_care,first_aid",
                                "availability": "0 08:00-12:00; 2 14:00-18:00; 3 08:00-12:00"},
                               user=None, account=account)
        applicant = create_volunteer({"real_name": f"申请人{i}", "phone": f"1370000{i:04d}",
                                      "home_area": areas["a1"].id, "lat": 29.344, "lon": 107.704,
                                      "skills": "mediation"}, user=None)
        db.session.add_all([
            Membership(organization=org_a, volunteer=vol, status=MemberStatus.APPROVED),
            Membership(organization=org, volunteer=vol, status=MemberStatus.APPROVED),
            Membership(organization=org_a, volunteer=applicant, status=MemberStatus.APPLIED),
        ])
        resident = create_resident({"name": f"居民{i}", "phone": f"1350000{i:04d}", "address": f"{i}栋",
                                    "lat": 29.3455, "lon": 107.7052, "consent": "1"}, community=areas[community],
                                   user=users[worker])
        weekly = create_demand({"category": "elderly_care", "resident": resident.id, "location_kind": "home",
                                "title": f"助老{i}", "date": monday.isoformat(), "start": "09:00", "end": "10:00",
                                "recurring": "1", "weekdays": ["0", "2"]}, community=areas[community],
                               user=users[worker])
        station = world["stations"][areas[community].code]
        single = create_demand({"category": "culture_sports", "location_kind": "station", "station": station.id,
                                "title": f"活动{i}", "date": (monday + timedelta(days=i % 7)).isoformat(),
                                "start": "14:00", "end": "15:30"}, community=areas[community], user=users[worker])
        db.session.flush()
        weekly_occs = sorted(weekly.occurrences, key=lambda o: o.starts_at)
        issue_checkin_codes(weekly_occs + list(single.occurrences))
        # The volunteer: offered the first date, holding the second; vol_a: an offer, a held and a done service.
        assign(db, weekly_occs[0], vol, AssignmentStatus.OFFERED, schedule=schedule).offered_at = utcnow()
        assign(db, weekly_occs[1], vol, AssignmentStatus.ACCEPTED, org=org_a, schedule=schedule)
        mine = assign(db, single.occurrences[0], vol_a, AssignmentStatus.OFFERED, schedule=schedule)
        mine.offered_at, mine.reasons, mine.distance_km = utcnow(), ["skills_match", "nearest_free"], 0.5
        assign(db, weekly_occs[0], vol_a, AssignmentStatus.ACCEPTED, org=org_a, schedule=schedule)
        done = assign(db, weekly_occs[1], vol_a, AssignmentStatus.COMPLETED, schedule=schedule)
        done.credited_hours, done.rating, done.rated_by_id = Decimal("1.0"), 5, users[worker].id
        # On the focal occurrence: one more volunteer on it and one who declined.
        assign(db, focal, vol, AssignmentStatus.ACCEPTED, org=org_a, schedule=schedule)
        declined = assign(db, focal, applicant, AssignmentStatus.DECLINED, schedule=schedule)
        declined.decline_kind, declined.decline_reason = DeclineReason.NOT_FREE, "有事"
        # A past week's schedule, solved: the other street's, or the district's (a street's coordinator
        # sees their part of it).
        past = Schedule(area=areas["town_b" if i % 2 else "district"], week_start=monday - timedelta(days=7 * (i + 1)),
                        status=ScheduleStatus.PUBLISHED, published_at=utcnow())
        db.session.add(past)
        db.session.flush()
        db.session.add(SolveRun(schedule_id=past.id, status=RunStatus.DONE, score=90.0, bound=100.0))
        # Notices to everyone, and audit entries naming rows of every kind.
        readers = [users[name] for name in ("admin", "coord", "coord_a", "worker_a1", "leader_a", "vol_a")]
        notify(readers, "demand_approved", link=demand_link(weekly.id), params={"t": weekly.title})
        notify([users["vol_a"]], "offer", link=OFFERS, params={"items": f"{single.title} {monday.isoformat()}"})
        record_audit(users["coord"], "assign_by_hand", declined)
        record_audit(users["leader_a"], "approve_member", db.session.scalars(
            select(Membership).where(Membership.volunteer_id == vol.id)).first())
        record_audit(users["coord"], "publish_schedule", past)
        record_audit(users["worker_a1"], "update_demand", weekly_occs[0])
    db.session.commit()
    scene["grown"] += count


def test_counting_sees_a_lazy_load_per_row(app, db, scene):
    """The guard can fail: touching a lazy relationship per row adds one statement per row."""
    grow(scene, db, N)
    with counting(db.engine) as few:
        for m in db.session.scalars(select(Membership)).all():
            _ = m.volunteer.real_name
    db.session.expire_all()
    grow(scene, db, 2 * N)
    with counting(db.engine) as many:
        for m in db.session.scalars(select(Membership)).all():
            _ = m.volunteer.real_name
    assert len(many) > len(few)


@pytest.mark.parametrize(("case", "username", "path"), PAGES, ids=[p[0] for p in PAGES])
def test_statements_do_not_grow_with_rows(app, db, client, auth, scene, request, case, username, path):
    world = scene["world"]
    url = path.format(week=scene["monday"].isoformat(), demand=world["demands"]["a1"].id, occ=scene["occ"].id,
                      schedule=scene["schedule"].id)
    grow(scene, db, N)
    assert auth.login(username).status_code == 302
    at_n = statements_of(client, db.engine, url)
    grow(scene, db, 2 * N)
    at_3n = statements_of(client, db.engine, url)
    # Both counts, for a report (`-o junit_family=xunit1 --junitxml=...` writes them out).
    request.node.user_properties.append(("statements", f"{len(at_n)} {len(at_3n)}"))
    allowed = len(at_n) + SLACK.get(case, 0)
    assert len(at_3n) <= allowed, f"{url}: {len(at_n)} statements at N={N}, {len(at_3n)} at 3N; grown:\n" + grown(at_n, at_3n)


def _shape(statement: str) -> str:
    """A statement without its bound-parameter lists and whitespace, cut short: what repeats per row."""
    return re.sub(r"\s+", " ", re.sub(r"\((?:[?%][s(]?[^()]*?,\s*)*[^()]*?\)", "(…)", statement))[:160]


def grown(before: list[str], after: list[str]) -> str:
    """The statement shapes that run more often in `after` than in `before`, with both counts."""
    was, now = Counter(map(_shape, before)), Counter(map(_shape, after))
    return "\n".join(f"{was[k]} -> {now[k]}: {k}" for k in sorted(now) if now[k] > was[k])
