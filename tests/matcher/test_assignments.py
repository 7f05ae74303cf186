"""Assignments: answering an offer, checking in and out, credited hours, confirming and rating a service."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import delete, select, update

from matcher import assignments, checkin
from matcher.assignments import confirm_service, rate_service
from matcher.errors import AccessDenied, Conflict, DomainError, ValidationError
from matcher.models import (
    Assignment,
    AssignmentStatus,
    AuditEntry,
    DemandOccurrence,
    DemandStatus,
    Notification,
)

from .builders import add_demand, assign, at, code_at, member, offer, token_at

# ------------------------------------------------------------------ respond_to_offer


def test_accept_an_offer(world, db, week):
    a = offer(week["schedule"], week["occ"], world["volunteers"]["a"])
    assignments.respond_to_offer(a, user=world["users"]["vol_a"], accept=True)
    db.session.commit()
    assert a.status == AssignmentStatus.ACCEPTED and a.responded_at is not None
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "accept", AuditEntry.object_id == a.id))


def test_only_the_own_volunteer_may_answer(world, db, week):
    a = offer(week["schedule"], week["occ"], world["volunteers"]["a"])
    for other in ("vol_b", "coord_a"):
        with pytest.raises(AccessDenied):
            assignments.respond_to_offer(a, user=world["users"][other], accept=True)
    assert a.status == AssignmentStatus.OFFERED


def test_only_an_open_offer_can_be_answered(world, db, week):
    a = offer(week["schedule"], week["occ"], world["volunteers"]["a"], status=AssignmentStatus.DECLINED)
    with pytest.raises(Conflict):
        assignments.respond_to_offer(a, user=world["users"]["vol_a"], accept=True)


def test_a_withdrawn_offer_cannot_be_answered(world, db, week):
    a = offer(week["schedule"], week["occ"], world["volunteers"]["a"])
    db.session.execute(delete(Assignment).where(Assignment.id == a.id))  # e.g. a repair run removed it
    with pytest.raises(Conflict, match="withdrawn"):
        assignments.respond_to_offer(a, user=world["users"]["vol_a"], accept=True)


def test_accept_refused_when_it_overlaps_an_accepted_service(world, db, week):
    vol = world["volunteers"]["a"]
    offer(week["schedule"], week["occ"], vol, status=AssignmentStatus.ACCEPTED)
    overlapping = add_demand(world, week["monday"], "10:00", "11:00")
    a = offer(week["schedule"], overlapping, vol)
    with pytest.raises(Conflict, match="overlaps"):
        assignments.respond_to_offer(a, user=world["users"]["vol_a"], accept=True)
    db.session.rollback()
    assert db.session.get(Assignment, a.id).status == AssignmentStatus.OFFERED


def test_accept_counts_travel_time_between_places(world, db, week):
    vol = world["volunteers"]["a"]
    offer(week["schedule"], week["occ"], vol, status=AssignmentStatus.ACCEPTED)  # ends 10:30 in C1
    near = add_demand(world, week["monday"], "10:35", "11:30", community="a1")  # same community: minutes away
    far = add_demand(world, week["monday"], "10:40", "11:30", community="b1")  # ~12 km: about 37 min by road
    a_far = offer(week["schedule"], far, vol)
    with pytest.raises(Conflict):
        assignments.respond_to_offer(a_far, user=world["users"]["vol_a"], accept=True)
    db.session.rollback()
    a_near = offer(week["schedule"], db.session.get(DemandOccurrence, near.id), vol)
    assignments.respond_to_offer(a_near, user=world["users"]["vol_a"], accept=True)
    assert a_near.status == AssignmentStatus.ACCEPTED


def test_accept_refused_when_the_occurrence_is_full(world, db, week):
    occ = add_demand(world, week["monday"], "14:00", "15:00", people=1)
    offer(week["schedule"], occ, world["volunteers"]["b"], status=AssignmentStatus.ACCEPTED)
    a = offer(week["schedule"], occ, world["volunteers"]["a"])
    with pytest.raises(Conflict, match="all the volunteers"):
        assignments.respond_to_offer(a, user=world["users"]["vol_a"], accept=True)


def test_decline_needs_a_reason_and_notifies_the_coordinators(world, db, week):
    a = offer(week["schedule"], week["occ"], world["volunteers"]["a"])
    with pytest.raises(ValidationError) as err:
        assignments.respond_to_offer(a, user=world["users"]["vol_a"], accept=False, reason="  ")
    assert "kind" in err.value.errors  # neither a structured reason nor words
    assert a.status == AssignmentStatus.OFFERED
    assignments.respond_to_offer(a, user=world["users"]["vol_a"], accept=False, reason="Away visiting family")
    db.session.commit()
    assert a.status == AssignmentStatus.DECLINED and a.decline_reason == "Away visiting family"
    notified = {n.user_id for n in db.session.scalars(select(Notification).where(Notification.kind == "offer_declined"))}
    users = world["users"]
    # The district and township A coordinators contain community A1; township B's does not.
    assert notified == {users["coord"].id, users["coord_a"].id}


def test_decline_reopens_a_scheduled_occurrence_left_short(world, db, week):
    occ = week["occ"]
    occ.status = "scheduled"
    a = offer(week["schedule"], occ, world["volunteers"]["a"])
    assignments.respond_to_offer(a, user=world["users"]["vol_a"], accept=False, reason="ill")
    assert occ.status == "open"


# ------------------------------------------------------------------ check in and out


def wrong_code(occ, when, purpose=checkin.CHECK_IN):
    """A well-formed code that is neither this step's nor the previous one's."""
    valid = {code_at(occ, when, purpose), code_at(occ, when - timedelta(seconds=checkin.STEP), purpose)}
    return next(c for c in ("000000", "111111", "222222") if c not in valid)


def failures(db, action=assignments.CHECKIN_FAILED):
    return db.session.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)).all()


def test_check_in_needs_the_right_code(world, db, week, accepted):
    when = at(week["monday"], "09:00")
    with pytest.raises(ValidationError) as err:
        assignments.check_in(week["occ"], wrong_code(week["occ"], when), user=world["users"]["vol_a"], now=when)
    assert err.value.errors == {"code": str(assignments.BAD_CODE)}
    assert accepted.status == AssignmentStatus.ACCEPTED
    with pytest.raises(ValidationError, match="Enter the code"):
        assignments.check_in(week["occ"], " ", user=world["users"]["vol_a"], now=when)


def test_codes_change_every_minute_and_the_previous_one_still_works(world, db, week, accepted):
    occ, user = week["occ"], world["users"]["vol_a"]
    when = at(week["monday"], "09:00")
    two_steps_ago = code_at(occ, when - timedelta(seconds=2 * checkin.STEP))
    if two_steps_ago not in {code_at(occ, when), code_at(occ, when - timedelta(seconds=checkin.STEP))}:
        with pytest.raises(ValidationError):
            assignments.check_in(occ, two_steps_ago, user=user, now=when)
    assignments.check_in(occ, code_at(occ, when - timedelta(seconds=checkin.STEP)), user=user, now=when)
    assert accepted.status == AssignmentStatus.CHECKED_IN and accepted.attendance == "checked"


def test_a_wrong_code_says_the_same_whatever_the_service_state(world, db, week, accepted, app):
    """No oracle: before, during and after the service a bad code gets one answer, and the code that
    will be shown once check-in opens is a bad code before then. Only a good code learns the times."""
    app.config["CHECKIN_MAX_FAILURES_PER_VOLUNTEER"] = app.config["CHECKIN_MAX_FAILURES_PER_OCCURRENCE"] = 100
    occ, user = week["occ"], world["users"]["vol_a"]
    answers = set()
    for hhmm in ("06:00", "09:00", "11:00"):
        when = at(week["monday"], hhmm)
        for code in (wrong_code(occ, when), code_at(occ, at(week["monday"], "08:00")),
                     code_at(occ, at(week["monday"], "09:30")), "１２３４５６", "²", "12345", "abcdef"):
            if hhmm == "09:00" and code == code_at(occ, at(week["monday"], "09:00")):
                continue
            with pytest.raises(ValidationError) as err:
                assignments.check_in(occ, code, user=user, now=when)
            answers.add(err.value.errors["code"])
    assert answers == {str(assignments.BAD_CODE)}
    assert accepted.status == AssignmentStatus.ACCEPTED


def test_check_in_not_too_early_nor_after_the_end(world, db, week, accepted):
    occ, user = week["occ"], world["users"]["vol_a"]
    early, late = at(week["monday"], "07:59"), at(week["monday"], "10:31")
    with pytest.raises(DomainError, match="opens"):
        assignments.check_in(occ, code_at(occ, early), user=user, now=early)
    with pytest.raises(DomainError, match="ended"):
        assignments.check_in(occ, code_at(occ, late), user=user, now=late)
    assert [(e.details["reason"], e.details["purpose"]) for e in failures(db)] == [("too_early", "in"),
                                                                                    ("too_late", "in")]
    opens = at(week["monday"], "08:00")
    assignments.check_in(occ, code_at(occ, opens), user=user, now=opens)
    assert accepted.status == AssignmentStatus.CHECKED_IN


def test_full_width_digits_and_spaces_are_the_same_code(world, db, week, accepted):
    occ, when = week["occ"], at(week["monday"], "09:00")
    code = code_at(occ, when)
    typed = " " + code[:3].translate(str.maketrans("0123456789", "０１２３４５６７８９")) + " " + code[3:]
    assignments.check_in(occ, typed, user=world["users"]["vol_a"], now=when)
    assert accepted.status == AssignmentStatus.CHECKED_IN


def test_check_in_needs_an_accepted_assignment(world, db, week, accepted):
    when = at(week["monday"], "09:00")
    with pytest.raises(DomainError, match="no accepted"):
        assignments.check_in(week["occ"], code_at(week["occ"], when), user=world["users"]["vol_b"], now=when)


def test_the_check_in_code_does_not_check_out(world, db, week, accepted):
    occ, user = week["occ"], world["users"]["vol_a"]
    start = at(week["monday"], "09:00")
    assignments.check_in(occ, code_at(occ, start), user=user, now=start)
    leave = start + timedelta(seconds=30)  # the same minute: the check-in code is still on the screen
    in_code, out_code = code_at(occ, leave), code_at(occ, leave, checkin.CHECK_OUT)
    assert in_code != out_code
    with pytest.raises(ValidationError) as err:
        assignments.check_out(occ, in_code, user=user, now=leave)
    assert err.value.errors == {"code": str(assignments.BAD_CODE)}
    assert accepted.status == AssignmentStatus.CHECKED_IN
    assignments.check_out(occ, out_code, user=user, now=leave)
    assert accepted.status == AssignmentStatus.COMPLETED


def test_the_check_out_code_does_not_check_in(world, db, week, accepted):
    occ, when = week["occ"], at(week["monday"], "09:10")
    with pytest.raises(ValidationError):
        assignments.check_in(occ, code_at(occ, when, checkin.CHECK_OUT), user=world["users"]["vol_a"], now=when)


def test_a_qr_token_checks_in_only_at_its_occurrence_and_for_its_purpose(world, db, week, accepted):
    user, x = world["users"]["vol_a"], week["occ"]  # Monday 09:00-10:30
    y = add_demand(world, week["monday"], "14:00", "15:00", title="second")
    held_y = assign(db, y, world["volunteers"]["a"], AssignmentStatus.ACCEPTED)
    morning, afternoon = at(week["monday"], "09:00"), at(week["monday"], "14:00")
    with pytest.raises(ValidationError) as err:  # X's token at Y, made at a good time for Y
        assignments.check_in(y, token=token_at(x, afternoon), user=user, now=afternoon)
    assert err.value.errors == {"code": str(assignments.BAD_CODE)}
    with pytest.raises(ValidationError):  # Y's check-out token does not check in at Y
        assignments.check_in(y, token=token_at(y, afternoon, checkin.CHECK_OUT), user=user, now=afternoon)
    with pytest.raises(ValidationError):  # signed with another key
        assignments.check_in(y, token=token_at(y, afternoon, key="another key"), user=user, now=afternoon)
    assert held_y.status == AssignmentStatus.ACCEPTED
    assignments.check_in(x, token=token_at(x, morning), user=user, now=morning + timedelta(seconds=20))
    assignments.check_in(y, token=token_at(y, afternoon), user=user, now=afternoon)
    assert accepted.status == held_y.status == AssignmentStatus.CHECKED_IN
    later = afternoon + timedelta(minutes=30)
    with pytest.raises(ValidationError):  # the check-in token does not check out
        assignments.check_out(y, token=token_at(y, later), user=user, now=later)
    assignments.check_out(y, token=token_at(y, later, checkin.CHECK_OUT), user=user, now=later)
    assert held_y.status == AssignmentStatus.COMPLETED


def test_a_qr_token_expires(world, db, week, accepted, app):
    occ, user = week["occ"], world["users"]["vol_a"]
    made = at(week["monday"], "09:00")
    age = app.config["CHECKIN_TOKEN_MAX_AGE"]
    with pytest.raises(ValidationError):
        assignments.check_in(occ, token=token_at(occ, made), user=user, now=made + timedelta(seconds=age + 1))
    with pytest.raises(ValidationError):  # nor is one from the future taken
        assignments.check_in(occ, token=token_at(occ, made + timedelta(seconds=90)), user=user, now=made)
    assignments.check_in(occ, token=token_at(occ, made), user=user, now=made + timedelta(seconds=age))
    assert accepted.status == AssignmentStatus.CHECKED_IN


def test_the_sixth_failure_is_refused_even_with_the_right_code_and_all_are_audited(world, db, week, accepted):
    occ, user = week["occ"], world["users"]["vol_a"]
    when = at(week["monday"], "09:00")
    for _ in range(5):
        with pytest.raises(assignments.CheckinRefused) as err:
            assignments.check_in(occ, wrong_code(occ, when), user=user, now=when)
        assert err.value.status == 400
    with pytest.raises(assignments.CheckinRefused) as err:
        assignments.check_in(occ, code_at(occ, when), user=user, now=when)
    assert err.value.status == 429
    assert "Too many wrong codes" in err.value.errors["code"] and "15 minutes" in err.value.errors["code"]
    assert accepted.status == AssignmentStatus.ACCEPTED
    failed, throttled = failures(db), failures(db, assignments.CHECKIN_THROTTLED)
    assert len(failed) == 5 and len(throttled) == 1
    for entry in failed + throttled:
        assert (entry.user_id, entry.object_type, entry.object_id) == (user.id, "demandoccurrence", occ.id)
        assert entry.details["assignment"] == accepted.id and entry.details["purpose"] == "in"
        assert not {str(v) for v in entry.details.values()} & {code_at(occ, when), wrong_code(occ, when)}
    # Once the failures are older than the window, the right code works again.
    for entry in failed:
        entry.at -= timedelta(minutes=15)
    db.session.flush()
    assignments.check_in(occ, code_at(occ, when), user=user, now=when)
    assert accepted.status == AssignmentStatus.CHECKED_IN


def test_failures_on_one_service_are_limited_for_everyone_together(world, db, week, accepted, app):
    app.config["CHECKIN_MAX_FAILURES_PER_OCCURRENCE"] = 3
    occ, when = week["occ"], at(week["monday"], "09:00")
    other = member(world, db, "陈红", "13811112222", username="chenhong")
    assign(db, occ, other, AssignmentStatus.ACCEPTED)
    for user in (world["users"]["vol_a"], other.user, other.user):
        with pytest.raises(assignments.CheckinRefused):
            assignments.check_in(occ, wrong_code(occ, when), user=user, now=when)
    with pytest.raises(assignments.CheckinRefused, match="for this service") as err:
        assignments.check_in(occ, code_at(occ, when), user=world["users"]["vol_a"], now=when)
    assert err.value.status == 429 and accepted.status == AssignmentStatus.ACCEPTED


def test_a_refused_attempt_can_be_kept_after_a_rollback(world, db, week, accepted):
    occ, user, when = week["occ"], world["users"]["vol_a"], at(week["monday"], "09:00")
    with pytest.raises(assignments.CheckinRefused) as err:
        assignments.check_in(occ, wrong_code(occ, when), user=user, now=when)
    db.session.rollback()
    assert failures(db) == []
    assignments.keep_refusal(err.value)
    db.session.commit()
    assert [e.details["reason"] for e in failures(db)] == ["bad_code"]


def test_check_out_credits_rounded_hours(world, db, week, accepted):
    user, occ, vol = world["users"]["vol_a"], week["occ"], world["volunteers"]["a"]
    start = at(week["monday"], "09:00")
    total = Decimal("0")
    for minutes, hours in [(14, "0"), (15, "0.5"), (44, "0.5"), (45, "1.0"), (90, "1.5")]:
        accepted.status, accepted.checked_in_at = AssignmentStatus.ACCEPTED, None
        end = start + timedelta(minutes=minutes)
        assignments.check_in(occ, code_at(occ, start), user=user, now=start)
        assignments.check_out(occ, code_at(occ, end, checkin.CHECK_OUT), user=user, now=end)
        db.session.commit()
        total += Decimal(hours)
        assert accepted.status == AssignmentStatus.COMPLETED
        assert (minutes, accepted.credited_hours) == (minutes, Decimal(hours))
        assert accepted.checked_out_at == start + timedelta(minutes=minutes)
        assert db.session.get(type(vol), vol.id).total_hours == total
    actions = set(db.session.scalars(select(AuditEntry.action).where(AuditEntry.object_id == accepted.id)))
    assert {"check_in", "check_out"} <= actions


def test_total_hours_add_up_and_rounding_is_configurable(world, db, week, accepted, app):
    user, occ, vol = world["users"]["vol_a"], week["occ"], world["volunteers"]["a"]
    vol.total_hours = Decimal("99.5")
    app.config["HOURS_STEP_MINUTES"] = 60
    start = at(week["monday"], "09:00")
    end = start + timedelta(minutes=80)  # nearest whole hour: 1
    assignments.check_in(occ, code_at(occ, start), user=user, now=start)
    assignments.check_out(occ, code_at(occ, end, checkin.CHECK_OUT), user=user, now=end)
    db.session.commit()
    assert accepted.credited_hours == Decimal("1.0")
    assert vol.total_hours == Decimal("100.5")


def test_check_out_needs_check_in_and_the_code(world, db, week, accepted):
    user, occ = world["users"]["vol_a"], week["occ"]
    start, ten = at(week["monday"], "09:00"), at(week["monday"], "10:00")
    with pytest.raises(Conflict, match="Check in first"):
        assignments.check_out(occ, code_at(occ, ten, checkin.CHECK_OUT), user=user, now=ten)
    assignments.check_in(occ, code_at(occ, start), user=user, now=start)
    with pytest.raises(ValidationError):
        assignments.check_out(occ, wrong_code(occ, ten, checkin.CHECK_OUT), user=user, now=ten)
    assert accepted.status == AssignmentStatus.CHECKED_IN
    assignments.check_out(occ, code_at(occ, ten, checkin.CHECK_OUT), user=user, now=ten)
    with pytest.raises(Conflict, match="already checked out"):
        assignments.check_out(occ, code_at(occ, ten, checkin.CHECK_OUT), user=user, now=ten + timedelta(minutes=5))


def test_check_out_opens_at_the_start(world, db, week, accepted):
    user, occ = world["users"]["vol_a"], week["occ"]
    early = at(week["monday"], "08:10")
    assignments.check_in(occ, code_at(occ, early), user=user, now=early)
    leave = early + timedelta(minutes=20)
    with pytest.raises(DomainError, match="starts"):
        assignments.check_out(occ, code_at(occ, leave, checkin.CHECK_OUT), user=user, now=leave)
    assert accepted.status == AssignmentStatus.CHECKED_IN


def test_a_forgotten_check_out_credits_no_more_than_the_service_plus_grace(world, db, week, accepted):
    user, occ = world["users"]["vol_a"], week["occ"]  # Monday 09:00-10:30: 90 minutes
    start, end = at(week["monday"], "09:00"), at(week["monday"], "20:00")  # 11 hours later
    assignments.check_in(occ, code_at(occ, start), user=user, now=start)
    assignments.check_out(occ, code_at(occ, end, checkin.CHECK_OUT), user=user, now=end)
    assert accepted.credited_hours == Decimal("2.5")  # 90 minutes + 60 minutes of grace


def test_check_out_closes_half_a_day_after_the_end(world, db, week, accepted):
    user, occ = world["users"]["vol_a"], week["occ"]
    start, late = at(week["monday"], "09:00"), at(week["monday"] + timedelta(days=3), "09:00")
    assignments.check_in(occ, code_at(occ, start), user=user, now=start)
    with pytest.raises(DomainError, match="closed"):
        assignments.check_out(occ, code_at(occ, late, checkin.CHECK_OUT), user=user, now=late)
    assert accepted.status == AssignmentStatus.CHECKED_IN


def test_the_worker_sees_the_codes_of_the_moment(world, db, week, accepted):
    occ, worker = week["occ"], world["users"]["worker_a1"]
    far = assignments.checkin_codes(occ, user=worker, now=at(week["monday"] - timedelta(days=2), "09:00"))
    assert far.check_in is None and far.check_out is None and far.refresh_in is None
    soon = assignments.checkin_codes(occ, user=worker, now=at(week["monday"], "07:45"))
    assert soon.check_in is None and soon.refresh_in  # check-in opens at 08:00: the page reloads itself
    before = at(week["monday"], "08:30") + timedelta(seconds=10)
    shown = assignments.checkin_codes(occ, user=worker, now=before)
    assert shown.check_in.code == code_at(occ, before) and shown.check_out is None
    assert shown.refresh_in == 50
    during = at(week["monday"], "09:15")
    shown = assignments.checkin_codes(occ, user=worker, now=during)
    assert shown.check_in.code == code_at(occ, during)
    assert shown.check_out.code == code_at(occ, during, checkin.CHECK_OUT)
    assert shown.check_in.token != shown.check_out.token
    after = at(week["monday"], "12:00")
    shown = assignments.checkin_codes(occ, user=worker, now=after)
    assert shown.check_in is None and shown.check_out.code == code_at(occ, after, checkin.CHECK_OUT)
    with pytest.raises(AccessDenied):
        assignments.checkin_codes(occ, user=world["users"]["worker_b1"], now=during)
    with pytest.raises(AccessDenied):
        assignments.checkin_codes(occ, user=world["users"]["vol_a"], now=during)


def test_an_occurrence_without_a_secret_gets_one_when_its_codes_are_shown(world, db, week, accepted):
    occ = week["occ"]
    db.session.execute(update(DemandOccurrence).where(DemandOccurrence.id == occ.id).values(checkin_secret=None))
    db.session.expire(occ)
    when = at(week["monday"], "09:00")
    with pytest.raises(ValidationError):  # no secret: no code is good
        assignments.check_in(occ, "123456", user=world["users"]["vol_a"], now=when)
    shown = assignments.checkin_codes(occ, user=world["users"]["worker_a1"], now=when)
    assert occ.checkin_secret and shown.check_in.code == code_at(occ, when)
    db.session.commit()
    assignments.check_in(occ, shown.check_in.code, user=world["users"]["vol_a"], now=when)


def test_publishing_issues_secrets_to_occurrences_without_one(world, db):
    occ = world["demands"]["a1"].occurrences[0]
    occ.checkin_secret = None
    assignments.issue_checkin_codes([occ])
    assert len(occ.checkin_secret) == 32
    before = occ.checkin_secret
    assignments.issue_checkin_codes([occ])
    assert occ.checkin_secret == before


# ------------------------------------------------------------------ confirm and rate


def _in_the_past(db, occ):
    now = datetime.now().replace(second=0, microsecond=0)
    occ.starts_at, occ.ends_at = now - timedelta(hours=3), now - timedelta(hours=1, minutes=30)
    db.session.flush()


def test_confirm_completes_present_ones_credits_hours_and_marks_no_shows(world, db, monday):
    _in_the_past(db, monday)
    present = assign(db, monday, world["volunteers"]["a"], AssignmentStatus.ACCEPTED)
    checked = assign(db, monday, member(world, db, "陈红", "13811112222"), AssignmentStatus.CHECKED_IN)
    absent = assign(db, monday, member(world, db, "周敏", "13811113333"), AssignmentStatus.ACCEPTED)
    offer = assign(db, monday, member(world, db, "吴丽", "13811114444"), AssignmentStatus.OFFERED)
    counts = confirm_service(monday, user=world["users"]["worker_a1"], present=[present.id])
    db.session.commit()
    assert counts == {"completed": 2, "no_show": 1, "withdrawn": 1}
    assert monday.status == DemandStatus.DONE
    assert present.status == checked.status == AssignmentStatus.COMPLETED
    assert present.credited_hours == Decimal("1.5") and absent.status == AssignmentStatus.NO_SHOW
    # The ticked volunteer never showed a code: recorded as confirmed by hand, and listed in the audit.
    assert (present.attendance, checked.attendance, absent.attendance) == ("by_hand", "checked", None)
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "confirm_service"))
    assert entry.details["by_hand"] == [present.id]
    assert db.session.get(Assignment, offer.id) is None
    db.session.expire_all()
    assert world["volunteers"]["a"].total_hours == Decimal("1.5")
    with pytest.raises(Conflict):
        confirm_service(monday, user=world["users"]["worker_a1"])


def test_confirm_is_refused_before_the_start_for_others_and_for_unaccepted_ticks(world, db, monday):
    offer = assign(db, monday, world["volunteers"]["a"], AssignmentStatus.OFFERED)
    with pytest.raises(DomainError):
        confirm_service(monday, user=world["users"]["worker_a1"])
    _in_the_past(db, monday)
    with pytest.raises(AccessDenied):
        confirm_service(monday, user=world["users"]["worker_b1"])
    with pytest.raises(ValidationError) as err:
        confirm_service(monday, user=world["users"]["worker_a1"], present=[offer.id])
    assert "present" in err.value.errors and monday.status != DemandStatus.DONE


@pytest.mark.parametrize("bad", [0, 6])
def test_rating_outside_one_to_five_is_refused(world, db, monday, bad):
    a = assign(db, monday, world["volunteers"]["a"], AssignmentStatus.COMPLETED)
    with pytest.raises(ValidationError) as err:
        rate_service(a, bad, "", user=world["users"]["worker_a1"])
    assert "rating" in err.value.errors and a.rating is None


def test_rating_a_completed_service(world, db, monday):
    a = assign(db, monday, world["volunteers"]["a"], AssignmentStatus.COMPLETED)
    rate_service(a, "5", "很耐心", user=world["users"]["worker_a1"])
    db.session.commit()
    assert (a.rating, a.rating_comment, a.rated_by_id) == (5, "很耐心", world["users"]["worker_a1"].id)


def test_rating_is_refused_for_unfinished_services_and_other_workers(world, db, monday):
    a = assign(db, monday, world["volunteers"]["a"], AssignmentStatus.ACCEPTED)
    with pytest.raises(ValidationError):
        rate_service(a, 4, "", user=world["users"]["worker_a1"])
    a.status = AssignmentStatus.COMPLETED
    with pytest.raises(AccessDenied):
        rate_service(a, 4, "", user=world["users"]["worker_a2"])
