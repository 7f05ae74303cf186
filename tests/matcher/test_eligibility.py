"""Hand edits are judged by the solver's own rules: one pair, the volunteer's week as commitments."""

from datetime import timedelta

from matcher.access import area_pool
from matcher.demands import create_demand
from matcher.eligibility import assess, candidate_pool, ranked_candidates
from matcher.models import Assignment, AssignmentStatus, Schedule, ScheduleStatus


def _first(world):
    return world["demands"]["a1"].occurrences[0]  # Monday 09:00-10:30, elder care at a resident's home


def test_qualified_free_nearby_volunteer_meets_every_rule(world, db):
    [judged] = assess(_first(world), [world["volunteers"]["a"]])
    assert judged.eligible and judged.distance_km < 1


def test_unqualified_unavailable_far_volunteer_breaks_skills_availability_and_range(world, db):
    [judged] = assess(_first(world), [world["volunteers"]["b"]])
    assert {1, 4, 5} <= set(judged.broken)


def test_an_overlapping_service_breaks_the_overlap_rule(world, db, next_monday):
    vol = world["volunteers"]["a"]
    other = create_demand({"category": "culture_sports", "location_kind": "station",
                           "station": world["stations"]["C2"].id, "date": next_monday.isoformat(),
                           "start": "09:30", "end": "11:00"}, community=world["areas"]["a2"], user=None)
    schedule = Schedule(area=world["areas"]["town_a"], week_start=next_monday, status=ScheduleStatus.PUBLISHED)
    db.session.add(schedule)
    db.session.flush()
    db.session.add(Assignment(schedule_id=schedule.id, occurrence_id=other.occurrences[0].id, volunteer_id=vol.id,
                              status=AssignmentStatus.ACCEPTED))
    db.session.flush()
    [judged] = assess(_first(world), [vol])
    assert judged.broken == [7]
    # Ignoring that assignment (a move) makes the pair fine again.
    ignored = db.session.query(Assignment).one().id
    assert assess(_first(world), [vol], ignore_assignment_id=ignored)[0].eligible


def test_a_lapsed_certificate_breaks_the_skill_rule_from_its_expiry(world, db, next_monday):
    from matcher.models import Certificate, Skill

    vol = world["volunteers"]["a"]
    first_aid = db.session.query(Skill).filter_by(code="first_aid").one()
    db.session.add(Certificate(volunteer=vol, skill=first_aid, name="急救证", expires_on=next_monday + timedelta(days=1)))
    health = create_demand({"category": "health", "location_kind": "station", "station": world["stations"]["C1"].id,
                            "date": next_monday.isoformat(), "start": "09:00", "end": "10:00", "recurring": "1",
                            "weekdays": ["0", "2"]}, community=world["areas"]["a1"], user=None)
    monday, wednesday = health.occurrences[0], health.occurrences[1]
    vol.slots[1].weekday = 2
    vol.slots[1].start_minute, vol.slots[1].end_minute = 8 * 60, 12 * 60
    db.session.flush()
    assert assess(monday, [vol])[0].eligible
    assert 1 in assess(wednesday, [vol])[0].broken


def test_ranked_candidates_put_eligible_ones_first(world, db):
    ranked = ranked_candidates(_first(world), area_pool(world["areas"]["district"]))
    assert ranked and ranked[0].eligible and ranked[0].volunteer.id == world["volunteers"]["a"].id


def _decline(world, db, volunteer):
    occ = _first(world)
    schedule = Schedule(area=world["areas"]["town_a"], week_start=occ.starts_at.date(), status=ScheduleStatus.PUBLISHED)
    db.session.add(schedule)
    db.session.flush()
    db.session.add(Assignment(schedule_id=schedule.id, occurrence_id=occ.id, volunteer_id=volunteer.id,
                              status=AssignmentStatus.DECLINED))
    db.session.flush()
    return occ


def test_someone_elses_decline_does_not_stop_judging_the_others(world, db):
    occ = _decline(world, db, world["volunteers"]["b"])
    [judged] = assess(occ, [world["volunteers"]["a"]])  # the decliner is not judged here
    assert judged.eligible
    both = {c.volunteer.id: c for c in assess(occ, [world["volunteers"]["a"], world["volunteers"]["b"]])}
    assert 6 in both[world["volunteers"]["b"].id].broken and both[world["volunteers"]["a"].id].eligible


def test_the_candidate_pool_is_the_schedules_pool(world, db):
    occ = _first(world)
    street, district = area_pool(world["areas"]["town_a"]), area_pool(world["areas"]["district"])
    vol_a, vol_b = world["volunteers"]["a"], world["volunteers"]["b"]
    assert [v.id for v in candidate_pool(occ, street)] == [vol_a.id]
    assert candidate_pool(occ, street, name="王强") == []
    assert [v.id for v in candidate_pool(occ, district, name="王强")] == [vol_b.id]
    assert {c.volunteer.id for c in ranked_candidates(occ, street, name="王")} == set()
