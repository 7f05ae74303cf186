"""The coordinator's schedule pages: solve in the background, review, adjust, publish; RQ on real Redis."""

import time

import pytest
from sqlalchemy import func, select

from matcher.demo import DEMO_PASSWORD, load_demo
from matcher.models import Area, AreaLevel, Assignment, AssignmentStatus, RunStatus, Schedule, SolveRun
from tests.conftest import REDIS_TEST_URL


@pytest.fixture
def demo(app, next_monday):
    return load_demo(week_start=next_monday, scale=0.1, seed=5)


def _login(client, username="coord"):
    assert client.post("/login", data={"username": username, "password": DEMO_PASSWORD}).status_code == 302


def _township(db):
    return db.session.scalars(select(Area).where(Area.level == AreaLevel.TOWNSHIP).order_by(Area.id)).first()


def _wait(db, run_id, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        db.session.expire_all()
        run = db.session.get(SolveRun, run_id)
        if run.status not in (RunStatus.QUEUED, RunStatus.BUILDING, RunStatus.SOLVING):
            return run
        time.sleep(0.2)
    raise AssertionError("the run did not finish")


def test_coordinator_solves_reviews_and_publishes(client, db, demo, next_monday):
    _login(client)
    town = _township(db)
    assert client.get(f"/schedules/open?area={town.id}&week={next_monday.isoformat()}").status_code == 405
    response = client.post("/schedules/open", data={"area": town.id, "week": next_monday.isoformat()})
    assert response.status_code == 302
    schedule_url = response.headers["Location"]
    schedule = db.session.scalar(select(Schedule).where(Schedule.area_id == town.id))
    assert client.get(schedule_url).status_code == 200
    assert client.post(f"/schedules/{schedule.id}/solve", data={"time_limit": "5"}).status_code == 302
    # A second click while the first run is under way starts nothing new.
    client.post(f"/schedules/{schedule.id}/solve", data={"time_limit": "5"})
    runs = db.session.scalars(select(SolveRun).where(SolveRun.schedule_id == schedule.id)).all()
    assert len(runs) == 1
    status = client.get(f"/runs/{runs[0].id}.json").get_json()
    assert status["status"] in ("queued", "building", "solving", "done")
    run = _wait(db, runs[0].id)
    assert run.status == RunStatus.DONE, run.message
    page = client.get(schedule_url).get_data(as_text=True)
    assert 'id="gaps"' in page and "<svg" in page and 'id="publish-button"' in page
    instance = client.get(f"/runs/{run.id}/instance.json")
    assert instance.status_code == 200 and instance.get_json()["schema"] == "linli.instance/1"
    assert client.post(f"/schedules/{schedule.id}/publish", data={"version": schedule.version}).status_code == 302
    db.session.expire_all()
    offered = db.session.scalar(select(func.count(Assignment.id)).where(
        Assignment.schedule_id == schedule.id, Assignment.status == AssignmentStatus.OFFERED))
    assert offered == len(run.solution["assignments"])


def test_assign_by_hand_checks_rules_and_needs_a_reason_to_override(client, db, demo, next_monday):
    from matcher.schedules import get_schedule

    schedule = get_schedule(_township(db), next_monday)
    db.session.commit()
    _login(client)
    from matcher import problem

    occ = problem.schedule_occurrences(schedule)[0]
    page = client.get(f"/schedules/{schedule.id}/occurrences/{occ.id}")
    assert page.status_code == 200
    from matcher.eligibility import ranked_candidates

    ranked = ranked_candidates(occ)
    bad = next((c for c in ranked if not c.eligible), None)
    assert bad is not None
    url = f"/schedules/{schedule.id}/occurrences/{occ.id}"
    refused = client.post(url, data={"volunteer": bad.volunteer.id})
    assert refused.status_code == 400 and 'id="err-volunteer"' in refused.get_data(as_text=True)
    assert db.session.scalar(select(func.count(Assignment.id))) == 0
    forced = client.post(url, data={"volunteer": bad.volunteer.id, "override_reason": "known to the family"})
    assert forced.status_code == 302
    a = db.session.scalar(select(Assignment))
    assert a.pinned and a.override_reason == "known to the family"
    assert client.post(f"/assignments/{a.id}/remove", data={"version": a.version}).status_code == 302
    assert db.session.scalar(select(func.count(Assignment.id))) == 0


def test_township_coordinator_cannot_open_another_townships_schedule(client, db, demo, next_monday):
    from matcher.models import User
    from matcher.schedules import get_schedule

    towns = db.session.scalars(select(Area).where(Area.level == AreaLevel.TOWNSHIP).order_by(Area.id)).all()
    username = next(login[1] for login in demo.logins if login[0] == "coordinator" and login[1] != "coord")
    own = db.session.scalar(select(User).where(User.username == username)).area
    other = next(t for t in towns if t.id != own.id)
    schedule = get_schedule(other, next_monday)
    db.session.commit()
    _login(client, username)
    assert client.get(f"/schedules/{schedule.id}").status_code == 404
    assert client.post(f"/schedules/{schedule.id}/solve").status_code == 404
    assert client.post("/schedules/open", data={"area": other.id, "week": next_monday}).status_code == 404
    client.post("/logout")
    _login(client, "worker")
    assert client.get("/schedules").status_code == 403


@pytest.mark.redis
def test_solve_job_runs_on_redis_with_an_rq_worker(make_app, db, demo, next_monday):
    import redis
    from rq import Queue, SimpleWorker

    try:
        conn = redis.Redis.from_url(REDIS_TEST_URL, socket_connect_timeout=2)
        conn.ping()
    except redis.exceptions.ConnectionError:
        pytest.skip(f"Redis not reachable at {REDIS_TEST_URL}: RQ path skipped")
    conn.flushdb()
    app = make_app(REDIS_URL=REDIS_TEST_URL)
    client = app.test_client()
    _login(client)
    from matcher.schedules import get_schedule

    schedule = get_schedule(_township(db), next_monday)
    db.session.commit()
    client.post(f"/schedules/{schedule.id}/solve", data={"time_limit": "5"})
    queue = Queue("linli", connection=conn)
    assert queue.count == 1
    job = queue.jobs[0]
    assert job.timeout > 5 and job.id.startswith(f"solve-{schedule.id}-")
    with app.app_context():
        SimpleWorker([queue], connection=conn).work(burst=True)
    run = _wait(db, db.session.scalar(select(SolveRun.id)))
    assert run.status == RunStatus.DONE, run.message
    conn.flushdb()


@pytest.mark.parametrize("week", ["9999-12-31", "0001-01-01", "not-a-date", ""])
def test_far_off_or_unreadable_weeks_are_refused_and_create_nothing(client, db, demo, week):
    _login(client)
    response = client.post("/schedules/open", data={"area": _township(db).id, "week": week})
    assert response.status_code == 400
    assert db.session.scalar(select(func.count(Schedule.id))) == 0


@pytest.mark.parametrize("url", ["/dashboard", "/me/week", "/community/week", "/team"])
@pytest.mark.parametrize("week", ["9999-12-31", "0001-01-01", "abc"])
def test_week_pages_answer_400_to_a_bad_week(client, demo, url, week):
    username = {"/dashboard": "coord", "/me/week": "volunteer", "/community/week": "worker", "/team": "leader"}[url]
    _login(client, username)
    assert client.get(f"{url}?week={week}").status_code == 400
