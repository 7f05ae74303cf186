"""The summary report's figures (matcher/reports.py) against hand counts on a small built world.

March 2026 in 青溪区: three elderly-care visits to 张大爷 in 桂花社区 (two by 李秀英, one by 陈静), a mediation at
石桥村's station wanting two with one served (the other short: nobody with the skill), after-school care for
a child in 枫林社区, a film night in 桂花社区 wanting three with nobody (nobody free then), an elderly-care
visit in 枫林社区 declined (short, never solved again) and a cancelled service that counts nowhere. One
service in February 2026 (the previous period) and two in March 2025 (the same period last year).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from matcher.catalogue import CATEGORIES, CATEGORY_KIND, KINDS
from matcher.errors import ValidationError
from matcher.models import (
    Assignment,
    AssignmentStatus,
    AuditEntry,
    Category,
    Demand,
    DemandOccurrence,
    DemandStatus,
    Handback,
    LocationKind,
    Organization,
    OrgType,
    Priority,
    Registration,
    Resident,
    RunGap,
    RunStatus,
    Schedule,
    SolveRun,
    SummaryReport,
)
from matcher.models._types import DeclineReason
from matcher.reports import draft_suggestions, parse_period, report_figures, save_report
from matcher.volunteers import create_volunteer

MARCH = (date(2026, 3, 1), date(2026, 3, 31))


def service(db, world, community, category, day, *, volunteers=(), hours=1.0, people=1, rating=None, org=None,
            resident=None, station=None, priority=Priority.NORMAL, status=AssignmentStatus.COMPLETED,
            occ_status=DemandStatus.DONE, gap=None, decline=None):
    """One demand with one occurrence on `day` at 09:00 and an assignment per volunteer."""
    area = world["areas"][community]
    cat = db.session.scalar(select(Category).where(Category.code == category))
    posted = datetime.combine(day, datetime.min.time()) - timedelta(days=3) + timedelta(hours=9)
    demand = Demand(community_id=area.id, category_id=cat.id, title=f"{category} {day}", resident=resident,
                    location_kind=LocationKind.STATION if station else LocationKind.HOME,
                    station_id=station.id if station else None, lat=area.lat, lon=area.lon, starts_on=day,
                    start_minute=540, duration_minutes=int(hours * 60), people=people, min_people=1,
                    priority=priority, status=occ_status, created_at=posted)
    db.session.add(demand)
    db.session.flush()
    starts = datetime.combine(day, datetime.min.time()) + timedelta(hours=9)
    occ = DemandOccurrence(demand_id=demand.id, starts_at=starts, ends_at=starts + timedelta(hours=hours),
                           status=occ_status, responsible_organization_id=org.id if org else None)
    db.session.add(occ)
    db.session.flush()
    for vol in volunteers:
        done = status == AssignmentStatus.COMPLETED
        db.session.add(Assignment(occurrence_id=occ.id, volunteer_id=vol.id, status=status,
                                  organization_id=org.id if org else None, offered_at=posted,
                                  responded_at=posted + timedelta(hours=10),
                                  credited_hours=Decimal(str(hours)) if done else None,
                                  rating=rating if done else None,
                                  decline_kind=decline))
    if gap:
        schedule = Schedule(area_id=area.parent_id, week_start=day - timedelta(days=day.weekday()))
        db.session.add(schedule)
        db.session.flush()
        run = SolveRun(schedule_id=schedule.id, status=RunStatus.DONE)
        db.session.add(run)
        db.session.flush()
        db.session.add(RunGap(run_id=run.id, occurrence_id=occ.id, missing=gap[0], reasons=gap[1]))
    db.session.flush()
    return occ


@pytest.fixture
def march(db, world):
    """The built world's March 2026 (see the module's docstring)."""
    return build_march(db, world)


def build_march(db, world) -> dict:
    """Add the module docstring's March 2026 (and the periods compared with it) to the world."""
    vols, orgs, areas = world["volunteers"], world["orgs"], world["areas"]
    chen = create_volunteer({"real_name": "陈静", "phone": "13600001111", "home_area": areas["a2"].id,
                             "lat": 29.336, "lon": 107.696, "gender": "F", "skills": "elder_care,childcare"}, user=None)
    chen.preferred_minutes_per_week = 30  # 3 hours in March is more than 30 minutes a week
    create_volunteer({"real_name": "刘洋", "phone": "13600002222", "home_area": areas["a2"].id,
                      "lat": 29.336, "lon": 107.696, "gender": "M", "skills": "elder_care"}, user=None)  # idle
    orgs["a"].registration = Registration.REGISTERED
    orgs["b"].registration = Registration.UNREGISTERED
    filed = Organization(name="东城文体协会", type=OrgType.LIFE_SERVICES, home_area=areas["town_a"],
                         areas=[areas["town_a"]], registration=Registration.FILED)
    db.session.add(filed)
    grandpa = world["residents"]["a1"]
    grandpa.birth_year = 1950
    child = Resident(community_id=areas["a2"].id, name="小明", address="枫林社区1栋", lat=29.335, lon=107.695,
                     birth_year=2017)
    db.session.add(child)
    db.session.flush()
    a, b = vols["a"], vols["b"]
    service(db, world, "a1", "elderly_care", date(2026, 3, 2), volunteers=[a], hours=1.5, rating=5, org=orgs["a"],
            resident=grandpa)
    service(db, world, "a1", "elderly_care", date(2026, 3, 9), volunteers=[a], hours=1.5, rating=4, org=orgs["a"],
            resident=grandpa)
    service(db, world, "a1", "elderly_care", date(2026, 3, 16), volunteers=[chen], hours=1.0, rating=2,
            org=orgs["a"], resident=grandpa)
    mediation = service(db, world, "b1", "mediation", date(2026, 3, 10), volunteers=[b], hours=2.0, people=2,
                        org=orgs["b"], station=world["stations"]["C3"], priority=Priority.URGENT,
                        gap=(1, ["no_candidate_with_skills", "none_within_range"]))
    service(db, world, "a2", "childcare", date(2026, 3, 12), volunteers=[chen], hours=2.0, resident=child)
    film = service(db, world, "a1", "culture_sports", date(2026, 3, 20), people=3, occ_status=DemandStatus.OPEN,
                   gap=(3, ["none_available_then"]))
    service(db, world, "a2", "elderly_care", date(2026, 3, 25), volunteers=[a], status=AssignmentStatus.DECLINED,
            decline=DeclineReason.NOT_FREE, occ_status=DemandStatus.OPEN)
    service(db, world, "a1", "elderly_care", date(2026, 3, 26), volunteers=[a], hours=1.0,
            occ_status=DemandStatus.CANCELLED, status=AssignmentStatus.PROPOSED)
    db.session.add(Handback(occurrence_id=film.id, organization_id=orgs["a"].id, reason="人手不够"))
    # The previous period and the same period last year.
    service(db, world, "a1", "elderly_care", date(2026, 2, 16), volunteers=[a], hours=1.0, org=orgs["a"],
            resident=grandpa)
    for day in (date(2025, 3, 3), date(2025, 3, 10)):
        service(db, world, "a1", "elderly_care", day, volunteers=[a], hours=1.0, org=orgs["a"], resident=grandpa)
    db.session.commit()
    return {"chen": chen, "mediation": mediation, "film": film}


def test_every_catalogue_category_counts_under_one_of_the_five_kinds():
    assert len(KINDS) == 5
    assert {code for code, *_rest in CATEGORIES} == set(CATEGORY_KIND)
    assert set(CATEGORY_KIND.values()) == set(KINDS)


def test_the_district_s_march_what_was_done(world, march):
    f = report_figures(world["areas"]["district"], *MARCH, "month")
    assert f["totals"] == {"services": 5, "visits": 5, "hours": 8.0, "volunteers": 3, "residents": 2,
                           "elderly": 1, "children": 1, "organizations": 2}
    kinds = {k["code"]: k for k in f["kinds"]}
    assert list(kinds) == KINDS  # no "other" when nothing falls outside the five
    assert (kinds["services"]["services"], kinds["services"]["hours"], kinds["services"]["volunteers"]) == (4, 6.0, 2)
    assert (kinds["disputes"]["services"], kinds["disputes"]["hours"]) == (1, 2.0)
    assert kinds["theory"]["services"] == kinds["culture"]["services"] == kinds["customs"]["services"] == 0
    cats = {c["code"]: (c["services"], c["visits"], c["hours"]) for c in f["categories"]}
    assert cats == {"elderly_care": (3, 3, 4.0), "childcare": (1, 1, 2.0), "mediation": (1, 1, 2.0)}
    orgs = f["organizations"]
    assert (orgs["in_area"], orgs["took_part"]) == (3, 2)
    assert {t["type"]: (t["in_area"], t["took_part"]) for t in orgs["by_type"]} == {
        "life_services": (2, 1), "rural_council": (1, 1)}
    assert orgs["registered"] == {"in_area": 2, "took_part": 1, "share": 0.5}  # 登记 and 备案, not the unregistered
    communities = {c["name"]: c for c in f["communities"]}
    assert [(c["services"], c["hours"], c["positions"], c["filled"], c["short"], c["organizations"])
            for c in (communities["桂花社区"], communities["枫林社区"], communities["石桥村"])] == [
        (3, 4.0, 6, 3, 3, 2), (1, 2.0, 2, 1, 1, 2), (1, 2.0, 2, 1, 1, 1)]
    towns = {t["name"]: t for t in f["townships"]}
    assert (towns["东城街道"]["services"], towns["东城街道"]["hours"], towns["南山镇"]["services"]) == (4, 6.0, 1)
    stations = {s["name"]: (s["services"], s["hours"]) for s in f["stations"]}
    assert stations == {"桂花社区新时代文明实践站": (0, 0.0), "枫林社区新时代文明实践站": (0, 0.0),
                        "石桥村新时代文明实践站": (1, 2.0)}


def test_the_district_s_march_what_it_achieved(world, march):
    f = report_figures(world["areas"]["district"], *MARCH, "month")
    previous, last_year = f["compare"]["previous"], f["compare"]["last_year"]
    assert (previous["start"], previous["end"], previous["services"], previous["hours"]) == (
        "2026-02-01", "2026-02-28", 1, 1.0)
    assert previous["change"]["services"] == 4.0 and previous["change"]["hours"] == 7.0
    assert (last_year["start"], last_year["services"], last_year["change"]["services"]) == ("2025-03-01", 2, 1.5)
    assert last_year["change"]["children"] is None  # nothing to compare with
    prio = {p["priority"]: (p["occurrences"], p["positions"], p["filled"], p["met"]) for p in f["priorities"]}
    assert prio == {"urgent": (1, 2, 1, 0), "high": (0, 0, 0, 0), "normal": (6, 8, 4, 4), "low": (0, 0, 0, 0)}
    weeks = {(w["week"], w["priority"]): (w["positions"], w["filled"]) for w in f["weeks"]}
    assert weeks[("2026-03-09", "urgent")] == (2, 1) and weeks[("2026-03-09", "normal")] == (2, 2)
    assert weeks[("2026-03-16", "normal")] == (4, 1)  # the visit served, the film night's three not
    assert sum(v[0] for v in weeks.values()) == 10
    assert f["staffing"] == {"staffed": 5, "mean_hours": 10.0, "within_day": 5, "within_3_days": 5, "within_week": 5}
    assert f["ratings"] == {"count": 3, "mean": 3.67, "low": 1, "dist": {"1": 0, "2": 1, "3": 0, "4": 1, "5": 1}}
    assert f["continuity"] == {"residents": 1, "single_volunteer": 0, "visits": 3, "usual_visits": 2, "share": 0.6667}
    assert [(o["name"], o["services"], o["hours"], o["volunteers"]) for o in f["leading_organizations"]] == [
        ("东城助老服务队", 3, 4.0, 2), ("南山调解队", 1, 2.0, 1)]
    assert [(v["name"], v["visits"], v["hours"]) for v in f["leading_volunteers"]] == [
        ("李秀英", 2, 3.0), ("陈静", 2, 3.0), ("王强", 1, 2.0)]


def test_the_district_s_march_problems(world, march):
    f = report_figures(world["areas"]["district"], *MARCH, "month")
    short = f["short"]
    assert (short["occurrences"], short["positions"]) == (3, 5)
    assert {r["reason"]: (r["occurrences"], r["positions"]) for r in short["by_reason"]} == {
        "none_available_then": (1, 3), "no_candidate_with_skills": (1, 1), "not_solved": (1, 1)}
    assert {c["code"]: c["positions"] for c in short["by_category"]} == {
        "culture_sports": 3, "mediation": 1, "elderly_care": 1}
    assert [(r["township"], r["code"], r["positions"], r["volunteers"]) for r in short["recruit"]] == [
        ("南山镇", "mediation", 1, 1)]
    assert short["recruit"][0]["skills_zh"] == ["纠纷调解"]
    assert f["few_organizations"] == [{"name": "石桥村", "township": "南山镇", "organizations": 1}]
    assert {k: f["volunteers"][k] for k in ("in_area", "active", "idle", "overloaded")} == {
        "in_area": 4, "active": 3, "idle": 1, "overloaded": 1}
    assert [v["name"] for v in f["volunteers"]["overloaded_list"]] == ["陈静"]
    assert f["declines"] == {"declined": 1, "by_kind": {"not_free": 1}, "no_show": 0, "handbacks": 1}
    assert [(r["date"], r["rating"], r["community"]) for r in f["low_ratings"]] == [("2026-03-16", 2, "桂花社区")]


def test_a_street_s_report_counts_only_its_communities(world, march):
    f = report_figures(world["areas"]["town_a"], *MARCH, "month")
    assert (f["totals"]["services"], f["totals"]["hours"], f["totals"]["volunteers"]) == (4, 6.0, 2)
    assert [c["name"] for c in f["communities"]] == ["枫林社区", "桂花社区"]
    assert f["short"]["positions"] == 4 and f["short"]["recruit"] == []
    assert f["organizations"]["in_area"] == 2  # the two serving 东城街道, not 南山调解队
    community = report_figures(world["areas"]["b1"], *MARCH, "month")
    assert community["totals"]["services"] == 1 and len(community["communities"]) == 1


def test_the_draft_suggests_from_the_figures(app, world, march):
    f = report_figures(world["areas"]["district"], *MARCH, "month")
    text = draft_suggestions(f)
    assert "Recruit 1 more volunteers with 纠纷调解 skills in 南山镇" in text or "南山镇" in text
    assert "石桥村" in text  # too few organizations
    assert "1 of 4 volunteers" in text or "1 of 4" in text
    assert text.startswith("1. ")


@pytest.mark.parametrize(("period", "start", "end", "kind", "first", "last"), [
    ("2026-03", None, None, "month", date(2026, 3, 1), date(2026, 3, 31)),
    ("2026-02", None, None, "month", date(2026, 2, 1), date(2026, 2, 28)),
    ("2026-Q4", None, None, "quarter", date(2026, 10, 1), date(2026, 12, 31)),
    ("2026", None, None, "year", date(2026, 1, 1), date(2026, 12, 31)),
    ("", "2026-03-05", "2026-04-04", "dates", date(2026, 3, 5), date(2026, 4, 4)),
    ("dates", "2026-03-05", "2026-03-05", "dates", date(2026, 3, 5), date(2026, 3, 5)),
])
def test_periods_parse(app, period, start, end, kind, first, last):
    p = parse_period(period, start, end)
    assert (p.kind, p.start, p.end) == (kind, first, last)
    assert parse_period(p.key, start, end) == p


@pytest.mark.parametrize(("period", "start", "end", "field"), [
    ("2026-13", None, None, "period"), ("2026-Q5", None, None, "period"), ("soon", None, None, "period"),
    ("١٩٩٩", None, None, "period"), ("1066", None, None, "period"),
    ("", None, None, "start"), ("", "2026-03-05", "2026-03-01", "end"), ("", "2024-01-01", "2026-03-01", "end"),
    ("", "2026-02-30", "2026-03-01", "start"), ("", "2026-03-01", "tomorrow", "end"),
])
def test_bad_periods_name_the_field(app, period, start, end, field):
    with pytest.raises(ValidationError) as caught:
        parse_period(period, start, end)
    assert field in caught.value.errors


def test_saving_freezes_the_figures_with_the_edited_suggestions_and_cases(db, world, march):
    district, user = world["areas"]["district"], world["users"]["coord"]
    period = parse_period("2026-03")
    key = f"org-{world['orgs']['a'].id}"
    first = save_report(district, period, suggestions="补充招募调解志愿者。", cases=[key], notes={key: "每周上门助老"},
                        user=user)
    db.session.commit()
    second = save_report(district, period, suggestions="", cases=[], user=user)
    db.session.commit()
    assert (first.version, second.version) == (1, 2) and first.number != second.number
    assert first.figures["totals"]["services"] == 5
    assert first.cases[0]["name"] == "东城助老服务队" and first.cases[0]["note"] == "每周上门助老"
    assert db.session.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "save_report")) == 2
    with pytest.raises(ValidationError) as caught:
        save_report(district, period, suggestions="x", cases=["vol-999"], user=user)
    assert "cases" in caught.value.errors
    assert db.session.scalar(select(func.count(SummaryReport.id))) == 2


def test_the_second_connection_gives_the_same_figures(app, world, march):
    """REPORT_PARALLEL (on in production) works out a part of the figures on a second connection at once;
    the march's rows are committed, so it must find exactly what one connection finds."""
    one = report_figures(world["areas"]["district"], *MARCH, "month")
    app.config["REPORT_PARALLEL"] = True
    try:
        two = report_figures(world["areas"]["district"], *MARCH, "month")
    finally:
        app.config["REPORT_PARALLEL"] = False
    one.pop("generated_at"), two.pop("generated_at")
    assert two == one
    assert two["compare"]["last_year"]["services"] == 2 and two["staffing"] == one["staffing"]


def test_two_saves_at_the_same_moment_give_a_conflict_not_a_crash(db, world, march, monkeypatch):
    """Both read the same newest version number; the second to write meets the unique version and is told
    to reload (409), nothing half-saved."""
    import matcher.reports as reports_module
    from matcher.errors import Conflict

    district, user = world["areas"]["district"], world["users"]["coord"]
    period = parse_period("2026-03")
    real = reports_module.report_figures

    def racing(*args, **kwargs):  # the other coordinator saves version 1 while these figures are worked out
        figures = real(*args, **kwargs)
        db.session.add(SummaryReport(number="R-other", area_id=district.id, period_kind="month",
                                     period_start=period.start, period_end=period.end, version=1,
                                     figures={}, suggestions="", cases=[]))
        return figures

    monkeypatch.setattr(reports_module, "report_figures", racing)
    monkeypatch.setattr(reports_module.db.session, "scalar", lambda *a, **k: None)  # saw no version yet
    with pytest.raises(Conflict):
        save_report(district, period, suggestions="", cases=[], user=user)
    monkeypatch.undo()
    assert db.session.scalar(select(func.count()).select_from(SummaryReport)) == 0
