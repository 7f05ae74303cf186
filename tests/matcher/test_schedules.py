"""Solving a township's week from the database, applying it, publishing, repairing."""

import pytest
from sqlalchemy import func, select

from matcher import problem
from matcher.demo import load_demo
from matcher.errors import Conflict
from matcher.models import (
    Area,
    AreaLevel,
    Assignment,
    AssignmentStatus,
    RunStatus,
    ScheduleStatus,
    User,
)
from matcher.schedules import (
    apply_run,
    get_schedule,
    planned_changes,
    publish_schedule,
    run_solve,
    start_solve,
)
from solver import validate_solution


@pytest.fixture
def township(app, db, next_monday):
    load_demo(week_start=next_monday, scale=0.1, seed=11)
    area = db.session.scalars(select(Area).where(Area.level == AreaLevel.TOWNSHIP).order_by(Area.id)).first()
    return get_schedule(area, next_monday)


def test_instance_from_database_is_valid_for_the_solver(township, db):
    from solver import parse_instance

    instance = problem.build_instance(township)
    inst = parse_instance(instance)
    assert inst.demands and inst.volunteers
    assert all(d["id"].startswith("d") for d in instance["demands"])


def test_solve_apply_publish_and_repair(township, db):
    admin = db.session.scalar(select(User).where(User.username == "admin"))
    run, created = start_solve(township, user=admin, time_limit=5)
    db.session.commit()
    assert created
    again, created_again = start_solve(township, user=admin, time_limit=5)
    assert not created_again and again.id == run.id  # one run at a time per schedule
    run_solve(run.id)
    db.session.expire_all()
    run = db.session.get(type(run), run.id)
    assert run.status == RunStatus.DONE and run.active_for is None, run.message
    violations, score = validate_solution(run.instance, run.solution)
    assert violations == [] and abs(score - run.score) < 0.02
    proposed = db.session.scalar(select(func.count(Assignment.id)).where(
        Assignment.schedule_id == township.id, Assignment.status == AssignmentStatus.PROPOSED))
    assert proposed == len(run.solution["assignments"]) > 0
    assert len(run.gaps) == len(run.solution["unfilled"])

    offered = publish_schedule(township, user=admin)
    db.session.commit()
    assert offered == proposed and township.status == ScheduleStatus.PUBLISHED
    with pytest.raises(Conflict):
        publish_schedule(township, user=admin)

    # A volunteer declines one offer and accepts another; the repair keeps the rest.
    offers = db.session.scalars(select(Assignment).where(Assignment.schedule_id == township.id)
                                .order_by(Assignment.id)).all()
    offers[0].status = AssignmentStatus.DECLINED
    offers[1].status = AssignmentStatus.ACCEPTED
    db.session.commit()
    repair, _ = start_solve(township, user=admin, time_limit=5)
    db.session.commit()
    run_solve(repair.id)
    db.session.expire_all()
    repair = db.session.get(type(repair), repair.id)
    assert repair.repair and repair.status == RunStatus.DONE
    changes = planned_changes(repair)
    declined_pair = (offers[0].occurrence_id, offers[0].volunteer_id)
    assert declined_pair not in {tuple(p) for p in changes.kept + changes.added}
    assert (offers[1].occurrence_id, offers[1].volunteer_id) in {tuple(p) for p in changes.kept}
    assert len(changes.kept) >= 0.9 * (offered - 1)
    counts = apply_run(repair, user=admin)
    db.session.commit()
    assert counts["added"] == len(changes.added)
    new_offers = db.session.scalars(select(Assignment).where(
        Assignment.schedule_id == township.id, Assignment.status == AssignmentStatus.OFFERED,
        Assignment.offered_at.is_not(None))).all()
    assert len(new_offers) >= counts["added"]


def test_a_run_whose_process_died_does_not_block_the_schedule_forever(township, db):
    from datetime import timedelta

    from matcher.models import SolveRun

    first, created = start_solve(township, user=None, time_limit=5)
    db.session.commit()
    assert created
    first.queued_at -= timedelta(hours=1)  # nobody picked it up, or its worker was killed
    db.session.commit()
    second, created = start_solve(township, user=None, time_limit=5)
    db.session.commit()
    assert created and second.id != first.id
    assert db.session.get(SolveRun, first.id).status == RunStatus.FAILED


def test_an_accepted_volunteer_whose_team_cannot_be_completed_does_not_block_the_repair(world, db, next_monday):
    """Mediation needs two; one teammate declined and nobody else can come: the repair still runs."""
    from matcher.models import AvailabilitySlot, Schedule, ScheduleStatus, SolveRun

    vol_b = world["volunteers"]["b"]
    vol_b.slots.append(AvailabilitySlot(weekday=0, start_minute=13 * 60, end_minute=17 * 60))
    schedule = Schedule(area=world["areas"]["town_b"], week_start=next_monday, status=ScheduleStatus.PUBLISHED)
    db.session.add(schedule)
    db.session.flush()
    occurrence = world["demands"]["b1"].occurrences[0]  # mediation: people 2, at least 2
    accepted = Assignment(schedule_id=schedule.id, occurrence_id=occurrence.id, volunteer_id=vol_b.id,
                          status=AssignmentStatus.ACCEPTED)
    db.session.add(accepted)
    db.session.commit()
    run, _ = start_solve(schedule, user=None, time_limit=5)
    db.session.commit()
    run_solve(run.id)
    db.session.expire_all()
    run = db.session.get(SolveRun, run.id)
    assert run.status == RunStatus.DONE, run.message
    assert run.params["released_pins"] == [[f"d{occurrence.id}", f"v{vol_b.id}"]]
    released = next(d for d in run.instance["demands"] if d["id"] == f"d{occurrence.id}")
    assert (released["people"], released["min_people"]) == (1, 1)
    apply_run(run, user=None)
    db.session.commit()
    assert db.session.get(Assignment, accepted.id).status == AssignmentStatus.ACCEPTED


def test_a_week_belongs_to_one_schedule_not_to_a_district_and_its_township_at_once(world, db, next_monday):
    from matcher.errors import DomainError

    get_schedule(world["areas"]["district"], next_monday)
    with pytest.raises(DomainError, match="already scheduled"):
        get_schedule(world["areas"]["town_a"], next_monday)
    assert get_schedule(world["areas"]["town_a"], next_monday + __import__("datetime").timedelta(days=7))


def test_assigning_by_hand_needs_an_active_volunteer_of_the_district(world, db, next_monday):
    from matcher.errors import ValidationError
    from matcher.schedules import assign_by_hand

    schedule = get_schedule(world["areas"]["town_a"], next_monday)
    volunteer = world["volunteers"]["a"]
    volunteer.active = False
    with pytest.raises(ValidationError) as info:
        assign_by_hand(schedule, world["demands"]["a1"].occurrences[0], volunteer, user=None,
                       override_reason="any reason")
    assert "volunteer" in info.value.errors


def test_a_person_s_solve_time_limit_is_capped_by_config(world, db, next_monday, app):
    schedule = get_schedule(world["areas"]["town_a"], next_monday)
    run, _ = start_solve(schedule, user=world["users"]["coord_a"], time_limit=600)
    assert run.params["time_limit"] == 120
    db.session.rollback()
    app.config["SOLVE_TIME_LIMIT_MAX"] = 60
    try:
        schedule = get_schedule(world["areas"]["town_a"], next_monday)
        assert start_solve(schedule, user=world["users"]["coord_a"], time_limit=90)[0].params["time_limit"] == 60
        db.session.rollback()
    finally:
        app.config["SOLVE_TIME_LIMIT_MAX"] = 120
    schedule = get_schedule(world["areas"]["town_a"], next_monday)
    # The operator's command line (no user) chooses freely.
    assert start_solve(schedule, user=None, time_limit=600)[0].params["time_limit"] == 600


def test_a_township_solve_sees_only_the_pool_and_a_district_one_everybody(world, db, next_monday):
    from datetime import timedelta

    world["volunteers"]["b"].max_travel_km = 30.0  # could travel to town a, but is not in its pool
    street = problem.build_instance(get_schedule(world["areas"]["town_a"], next_monday))
    assert [v["id"] for v in street["volunteers"]] == [f"v{world['volunteers']['a'].id}"]
    whole = problem.build_instance(get_schedule(world["areas"]["district"], next_monday + timedelta(days=7)))
    assert {v["id"] for v in whole["volunteers"]} == {f"v{v.id}" for v in world["volunteers"].values()}


def _a1(world):
    """Demand a1's Monday occurrence (volunteer a is free then) and its Thursday one (she is not)."""
    monday, thursday = sorted(world["demands"]["a1"].occurrences, key=lambda o: o.starts_at)[:2]
    return monday, thursday


def test_a_refused_hand_assignment_names_the_volunteer_the_rules_and_the_override(world, db, next_monday):
    from flask_babel import force_locale

    from matcher.errors import ValidationError
    from matcher.schedules import assign_by_hand

    schedule = get_schedule(world["areas"]["town_a"], next_monday)
    _monday, thursday = _a1(world)
    with force_locale("en"), pytest.raises(ValidationError) as info:
        assign_by_hand(schedule, thursday, world["volunteers"]["a"], user=None)
    message = info.value.errors["volunteer"]
    assert "李秀英" in message and "availability: not free" in message
    assert "give a reason to override" in message


def test_a_hand_assignment_says_pin_or_override_and_a_solve_keeps_just_that(world, db, next_monday):
    from datetime import datetime

    from matcher.schedules import assign_by_hand

    schedule = get_schedule(world["areas"]["town_a"], next_monday)
    monday, thursday = _a1(world)
    vol = world["volunteers"]["a"]
    chosen = assign_by_hand(schedule, monday, vol, user=None)
    excepted = assign_by_hand(schedule, thursday, vol, user=None, override_reason="the family asked for her")
    assert chosen.reasons == ["pinned"] and excepted.reasons == ["override"]
    instance = {"demands": [{"id": f"d{monday.id}"}, {"id": f"d{thursday.id}"}]}
    solution = {"assignments": [
        {"demand": f"d{o.id}", "volunteer": f"v{vol.id}", "distance_km": 0.2,
         "reasons": ["pinned", *(["override"] if o is thursday else []), "skills_match", "nearest_free"]}
        for o in (monday, thursday)]}
    written = problem.apply_solution(schedule, instance, solution, published=False, now=datetime.now())
    assert len(written.changes.kept) == 2
    assert chosen.reasons == ["pinned"] and excepted.reasons == ["override"]


def test_a_week_the_district_schedules_is_covered_for_its_streets(world, db, next_monday):
    from datetime import timedelta

    from matcher.schedules import covering_schedule

    assert covering_schedule(world["areas"]["town_a"], next_monday) is None
    district = get_schedule(world["areas"]["district"], next_monday)
    assert covering_schedule(world["areas"]["town_a"], next_monday) == district
    assert covering_schedule(world["areas"]["district"], next_monday) is None  # not its own cover
    assert covering_schedule(world["areas"]["town_b"], next_monday + timedelta(days=7)) is None
