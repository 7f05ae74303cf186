"""The flask CLI: the first administrator, the catalogue, the demo; bad input exits 2 with a message."""

import pytest
from sqlalchemy import func, select

from matcher.accounts import check_password
from matcher.models import Area, Role, User


def test_create_admin_makes_an_argon2_account(app, db):
    result = app.test_cli_runner().invoke(args=["create-admin", "alice", "--password-stdin"],
                                          input="a-long-admin-passphrase\n")
    assert result.exit_code == 0, result.output
    user = db.session.scalar(select(User).where(User.username == "alice"))
    assert user.role == Role.ADMIN and check_password(user, "a-long-admin-passphrase")


@pytest.mark.parametrize(("username", "password", "field"), [
    ("alice", "short", "password"), ("alice", "password123", "password"), ("a b", "a-long-passphrase", "username"),
])
def test_create_admin_refuses_bad_input_and_creates_nothing(app, db, username, password, field):
    result = app.test_cli_runner().invoke(args=["create-admin", username, "--password-stdin"], input=password + "\n")
    assert result.exit_code == 2
    assert field in result.output and "Traceback" not in result.output
    assert db.session.scalar(select(func.count(User.id))) == 0


def test_create_admin_refuses_a_taken_username(app, db):
    runner = app.test_cli_runner()
    runner.invoke(args=["create-admin", "alice", "--password-stdin"], input="a-long-admin-passphrase\n")
    result = runner.invoke(args=["create-admin", "alice", "--password-stdin"], input="another-long-passphrase\n")
    assert result.exit_code == 2 and "username" in result.output


def test_demo_load_rejects_a_week_that_is_not_a_monday(app, db):
    result = app.test_cli_runner().invoke(args=["demo", "load", "--week", "2026-12-01", "--scale", "0.05"])
    assert result.exit_code == 2 and "Monday" in result.output
    assert db.session.scalar(select(func.count(Area.id))) == 0


def test_demo_load_prints_counts_and_logins_then_refuses_twice(app, db):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["demo", "load", "--week", "2026-11-30", "--scale", "0.05"])
    assert result.exit_code == 0, result.output
    assert "demand_occurrences" in result.output and "coord" in result.output
    again = runner.invoke(args=["demo", "load", "--week", "2026-11-30", "--scale", "0.05"])
    assert again.exit_code == 2 and "Traceback" not in again.output
    skipped = runner.invoke(args=["demo", "load", "--if-empty"])
    assert skipped.exit_code == 0 and "already" in skipped.output


def test_schedule_solve_command_solves_and_publishes_the_demo_week(app, db):
    from matcher.models import Schedule, ScheduleStatus

    runner = app.test_cli_runner()
    runner.invoke(args=["demo", "load", "--week", "2026-11-30", "--scale", "0.05"])
    result = runner.invoke(args=["schedule", "solve", "--week", "2026-11-30", "--time-limit", "5", "--publish"])
    assert result.exit_code == 0, result.output
    assert "published" in result.output
    assert db.session.scalar(select(Schedule)).status == ScheduleStatus.PUBLISHED
    again = runner.invoke(args=["schedule", "solve", "--week", "2026-11-30", "--if-unsolved"])
    assert again.exit_code == 0 and "nothing to do" in again.output


def test_schedule_solve_command_names_a_bad_area(app, db):
    result = app.test_cli_runner().invoke(args=["schedule", "solve", "--area", "NOPE", "--week", "2026-11-30"])
    assert result.exit_code == 2 and "--area" in result.output
