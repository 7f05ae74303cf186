"""`flask` CLI commands: create the first administrator, seed the catalogue, load the demo."""

from __future__ import annotations

import sys
from datetime import date, timedelta

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import select

from matcher import rules
from matcher.accounts import create_user
from matcher.catalogue import seed_catalogue
from matcher.clock import local_today
from matcher.db import db
from matcher.errors import DomainError, ValidationError
from matcher.models import Area, Role, User
from matcher.schedules import get_schedule


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


@click.command("create-admin")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def create_admin(username: str, password_stdin: bool) -> None:
    """Create an administrator account (the only way to make the first one)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        create_user(username=username, password=password, role=Role.ADMIN, display_name=username)
    except ValidationError as exc:
        db.session.rollback()
        _fail("; ".join(f"{k}: {v}" for k, v in exc.errors.items()))
    db.session.commit()
    click.echo(f"administrator '{username}' created")


accounts_cli = AppGroup("accounts", help="Accounts.")


@accounts_cli.command("reset-link")
@click.argument("username")
@click.option("--base-url", default="", help="The site's address (https://linli.example.org) to print a full link.")
def accounts_reset_link(username: str, base_url: str) -> None:
    """Make a one-time link for USERNAME to set a new password (an activation link if it has none yet).

    For an administrator without a browser; the link is printed once and never logged. Hand it over
    in person: it works once, within 24 hours (14 days for an activation)."""
    from matcher.accounts import make_password_link

    account = db.session.scalar(select(User).where(User.username == username))
    if account is None:
        _fail(f"no account named '{username}'")
    try:
        link, token = make_password_link(None, account)
    except ValidationError as exc:
        db.session.rollback()
        _fail("; ".join(f"{k}: {v}" for k, v in exc.errors.items()))
    db.session.commit()
    path = f"/{'reset' if link.purpose.value == 'reset' else 'activate'}/{token}"
    click.echo(f"{base_url.rstrip('/')}{path}" if base_url else f"{path}   (on the site's address)")
    click.echo(f"valid until {link.expires_at:%Y-%m-%d %H:%M} UTC, once", err=True)


catalogue_cli = AppGroup("catalogue", help="The skills and service-category catalogue.")


@catalogue_cli.command("seed")
def catalogue_seed() -> None:
    """Add the missing skills and categories of the built-in catalogue."""
    skills, categories = seed_catalogue()
    db.session.commit()
    click.echo(f"added {skills} skills and {categories} categories")


imports_cli = AppGroup("imports", help="Uploaded spreadsheets.")


@imports_cli.command("discard")
def imports_discard() -> None:
    """Empty uploaded files kept past their time (not imported: 24 hours; imported: IMPORT_KEEP_DAYS)."""
    from matcher.imports import discard_old_uploads

    emptied = discard_old_uploads()
    db.session.commit()
    click.echo(f"emptied {emptied} uploaded files")


demo_cli = AppGroup("demo", help="The demo district.")


def _parse_week(value: str | None) -> date:
    if not value:
        return rules.week_monday(local_today()) + timedelta(days=7)
    try:
        day = date.fromisoformat(value)
    except ValueError:
        _fail(f"--week: '{value}' is not a date (YYYY-MM-DD)")
    if day.weekday() != 0:
        _fail(f"--week: {value} is not a Monday")
    return day


@demo_cli.command("load")
@click.option("--seed", default=2026, show_default=True, help="Random seed (the same seed gives the same district).")
@click.option("--week", "week", default=None, help="Monday of the demo week (default: the coming Monday).")
@click.option("--scale", default=1.0, show_default=True, type=click.FloatRange(0.01, 10.0),
              help="Size relative to the standard district.")
@click.option("--if-empty", is_flag=True, help="Do nothing (and succeed) when the database already has data.")
@click.option("--history-weeks", default=0, show_default=True, type=click.IntRange(0, 156),
              help="Also serve the demands in this many weeks before (for the reports, records and star lists).")
def demo_load(seed: int, week: str | None, scale: float, if_empty: bool, history_weeks: int) -> None:
    """Build the demo district (areas, organizations, volunteers, residents, a week of demands)."""
    from matcher.demo import add_history, load_demo

    week_start = _parse_week(week)
    if if_empty and db.session.scalar(select(Area.id).limit(1)) is not None:
        click.echo("the database already holds data; demo not loaded again")
        return
    try:
        summary = load_demo(week_start=week_start, seed=seed, scale=scale, echo=click.echo)
    except DomainError as exc:
        db.session.rollback()
        _fail(exc.message)
    click.echo(f"demo district loaded in {summary.seconds:.1f} s for the week of {week_start}")
    for table, n in summary.counts.items():
        click.echo(f"  {table:<24} {n:>7}")
    if history_weeks:
        add_history(weeks=history_weeks, before=week_start, seed=seed, echo=click.echo)
    from pathlib import Path

    from matcher.demo.rosters import demo_spreadsheets

    folder = Path(current_app.instance_path)
    files = demo_spreadsheets(seed)
    for name, content in files.items():
        (folder / name).write_bytes(content)
    click.echo(f"spreadsheets to try the imports with (Imports; residents before their demands): {folder}/ "
               + ", ".join(sorted(files)))
    from matcher.demo import DEMO_PASSWORD

    click.echo(f"demo logins (password: {DEMO_PASSWORD}):")
    for role, username, description in summary.logins:
        click.echo(f"  {username:<16} {role:<12} {description}")


@demo_cli.command("logins")
def demo_logins() -> None:
    """List the accounts that can sign in (the demo ones share the demo password until changed)."""
    from matcher.demo import DEMO_PASSWORD

    click.echo(f"accounts that can sign in (demo password: {DEMO_PASSWORD}):")
    for user in db.session.scalars(select(User).where(User.password_hash.is_not(None)).order_by(User.id)):
        click.echo(f"  {user.username:<16} {user.role.value:<12} {user.display_name}")


schedule_cli = AppGroup("schedule", help="Weekly schedules.")


@schedule_cli.command("solve")
@click.option("--area", "area_code", default=None, help="Area code (default: the district).")
@click.option("--week", "week", default=None, help="Monday of the week (default: the coming Monday).")
@click.option("--time-limit", default=30, show_default=True, type=click.IntRange(1, 3600),
              help="Solver time limit in seconds.")
@click.option("--publish", is_flag=True, help="Publish the schedule when the solve succeeds.")
@click.option("--if-unsolved", is_flag=True, help="Do nothing when the schedule was solved before.")
def schedule_solve(area_code: str | None, week: str | None, time_limit: int, publish: bool,
                   if_unsolved: bool) -> None:
    """Solve (or repair) an area's week here and now, printing progress; optionally publish it."""
    from matcher.models import AreaLevel, SolveRun
    from matcher.schedules import publish_schedule, run_solve, start_solve

    week_start = _parse_week(week)
    if area_code:
        area = db.session.scalar(select(Area).where(Area.code == area_code))
    else:
        area = db.session.scalar(select(Area).where(Area.level == AreaLevel.DISTRICT).order_by(Area.id))
    if area is None:
        _fail(f"--area: no area with code '{area_code}'" if area_code else "no district: load data first")
    try:
        schedule = get_schedule(area, week_start)
        if if_unsolved and schedule.runs:
            click.echo(f"{area.name}, week of {week_start}: solved before; nothing to do")
            db.session.commit()
            return
        run, created = start_solve(schedule, user=None, time_limit=time_limit)
    except DomainError as exc:
        db.session.rollback()
        _fail(exc.message)
    db.session.commit()
    if not created:
        _fail(f"run {run.id} of this schedule is still {run.status.value}")
    click.echo(f"solving {area.name}, week of {week_start} (run {run.id}, up to {time_limit} s)...")
    run_solve(run.id)
    db.session.expire_all()
    run = db.session.get(SolveRun, run.id)
    click.echo(f"{run.status.value}: score {run.score}, bound {run.bound}, "
               f"{len((run.solution or {}).get('assignments', []))} assignments, "
               f"{len((run.solution or {}).get('unfilled', []))} demands short")
    if run.status.value != "done":
        _fail(run.message or "the solve did not finish")
    if publish:
        offered = publish_schedule(run.schedule, user=None)
        db.session.commit()
        click.echo(f"published: {offered} offers sent")


outbox_cli = AppGroup("outbox", help="Notices sent outside the app (SMS, email, WeChat).")


def _counts(counts: dict[str, int], nothing: str) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or nothing


@outbox_cli.command("send")
@click.option("--loop", "every", type=click.IntRange(min=1), default=None,
              help="Keep running: look again every SECONDS (a service instead of cron).")
def outbox_send(every: int | None) -> None:
    """Write the reminders that are due, then send the outbox's due messages (retries and the end of
    the quiet hours included)."""
    import time

    from matcher.outbox import send_all
    from matcher.reminders import remind_due

    while True:
        try:
            reminded = remind_due()
        except ValueError as exc:  # a REMINDER_* setting that is not a time of day
            _fail(str(exc))
        counts = send_all()
        db.session.remove()
        if every is None or counts or reminded:
            if reminded:
                click.echo("reminders: " + _counts(reminded, ""))
            click.echo(_counts(counts, "nothing due"))
        if every is None:
            return
        time.sleep(every)


@outbox_cli.command("remind")
def outbox_remind() -> None:
    """Write the reminders that are due now (each once; their messages are sent by `outbox send` or the
    background sender)."""
    from matcher.reminders import next_reminder_at, remind_due, to_local

    try:
        counts = remind_due()
    except ValueError as exc:  # a REMINDER_* setting that is not a time of day
        _fail(str(exc))
    click.echo("reminders written: " + _counts(counts, "none due"))
    upcoming = next_reminder_at()
    click.echo(f"next look: {to_local(upcoming):%Y-%m-%d %H:%M} local time" if upcoming
               else "no service to come is offered or accepted: no reminder to come")


def register(app: Flask) -> None:
    """Attach the commands to the app's CLI."""
    app.cli.add_command(create_admin)
    app.cli.add_command(accounts_cli)
    app.cli.add_command(catalogue_cli)
    app.cli.add_command(imports_cli)
    app.cli.add_command(demo_cli)
    app.cli.add_command(schedule_cli)
    app.cli.add_command(outbox_cli)
