"""The coordinator's schedule pages: solve in the background, review, adjust, publish; RQ on real Redis."""

import time

import pytest
from sqlalchemy import func, select

from matcher.demo import DEMO_PASSWORD, load_demo
from matcher.models import (
    FILLING,
    Area,
    AreaLevel,
    Assignment,
    AssignmentStatus,
    RunStatus,
    Schedule,
    ScheduleStatus,
    SolveRun,
)
from tests.conftest import PASSWORD, REDIS_TEST_URL


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
    # The gap says which bound it is measured against (the solver's stats.bound_methods).
    assert run.solution["stats"]["bound_methods"]
    assert 'id="bound-kind"' in page
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
    from matcher.access import area_pool
    from matcher.eligibility import ranked_candidates

    ranked = ranked_candidates(occ, area_pool(schedule.area))
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


def test_after_a_decline_the_candidates_assigning_and_the_swap_page_still_work(client, world, db, next_monday):
    """A decliner is not among the volunteers judged on these pages: the check must not name them."""
    from tests.matcher.builders import assign, member, publish

    schedule = publish(world, next_monday)
    occ = world["demands"]["a1"].occurrences[0]
    occ.demand.people = 2
    occ.responsible_organization_id = world["orgs"]["a"].id
    offer = assign(db, occ, world["volunteers"]["a"], AssignmentStatus.OFFERED, org=world["orgs"]["a"],
                   schedule=schedule)
    decliner = member(world, db, "周敏", "13811113333")
    assign(db, occ, decliner, AssignmentStatus.DECLINED, schedule=schedule)
    fit = member(world, db, "陈红", "13811112222")
    db.session.commit()
    url = f"/schedules/{schedule.id}/occurrences/{occ.id}"
    for username in ("coord_a", "leader_a"):
        assert client.post("/login", data={"username": username, "password": PASSWORD}).status_code == 302
        client.post("/language/en", data={"next": "/dashboard"})
        if username == "coord_a":
            page = client.get(url)
            assert page.status_code == 200
            rows = page.get_data(as_text=True).split('id="candidates"')[1].split("</table>")[0].split("<tr>")
            refused = next(r for r in rows if "周敏" in r)
            assert "declined it or their organization handed it back" in refused
            found = client.get(url, query_string={"q": "陈红"})
            assert found.status_code == 200 and "陈红" in found.get_data(as_text=True)
            assert client.post(url, data={"volunteer": fit.id}).status_code == 302
        else:
            swap = client.get(f"/team/assignments/{offer.id}/swap")
            assert swap.status_code == 200 and "周敏" in swap.get_data(as_text=True)
        client.post("/logout")
    assert db.session.scalar(select(Assignment).where(Assignment.volunteer_id == fit.id)).status \
        == AssignmentStatus.OFFERED


def test_a_solve_time_limit_is_capped_and_a_waiting_solve_says_so(client, world, db, next_monday, monkeypatch):
    from matcher.schedules import get_schedule

    started = []
    monkeypatch.setattr("web.schedule.enqueue_solve", lambda run: started.append(run.id) or "thread-queued")
    schedule = get_schedule(world["areas"]["town_a"], next_monday)
    db.session.commit()
    assert client.post("/login", data={"username": "coord_a", "password": PASSWORD}).status_code == 302
    client.post("/language/en", data={"next": "/dashboard"})
    page = client.post(f"/schedules/{schedule.id}/solve", data={"time_limit": "600"}, follow_redirects=True)
    assert page.status_code == 200 and "this one is queued" in page.get_data(as_text=True)
    run = db.session.get(SolveRun, started[0])
    assert run.params["time_limit"] == client.application.config["SOLVE_TIME_LIMIT_MAX"] == 120


def test_thread_mode_runs_at_most_solve_threads_max_solves_at_once(app, monkeypatch):
    import threading
    from types import SimpleNamespace

    from web import jobs

    started, release = [], threading.Event()

    def fake_solve(run_id):
        started.append(run_id)
        release.wait(20)

    def until(condition):
        deadline = time.monotonic() + 10
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.02)

    monkeypatch.setattr(jobs, "run_solve", fake_solve)
    assert app.config["SOLVE_THREADS_MAX"] == 1
    try:
        assert jobs.enqueue_solve(SimpleNamespace(id=1)) == "thread"
        until(lambda: started == [1])
        assert jobs.enqueue_solve(SimpleNamespace(id=2)) == "thread-queued"
        time.sleep(0.3)
        assert started == [1]  # the second waits for the first
    finally:
        release.set()
    until(lambda: started == [1, 2])
    assert started == [1, 2]
    for thread in threading.enumerate():
        if thread.name in ("solve-1", "solve-2"):
            thread.join(10)


def _town_a_week(world, db, next_monday, username="coord_a", language="en"):
    """Town a's draft for the week, signed in as its coordinator; demand a1's first two occurrences
    (Monday: volunteer a is free then; Thursday: she is not)."""
    from matcher.schedules import get_schedule

    schedule = get_schedule(world["areas"]["town_a"], next_monday)
    db.session.commit()
    return schedule, sorted(world["demands"]["a1"].occurrences, key=lambda o: o.starts_at)[:2]


def _sign_in(client, username="coord_a", language="en"):
    assert client.post("/login", data={"username": username, "password": PASSWORD}).status_code == 302
    client.post(f"/language/{language}", data={"next": "/dashboard"})


def test_solve_progress_shows_the_phase_once_in_the_user_s_language_and_locks_the_button(
        client, world, db, next_monday, monkeypatch):
    schedule, _occs = _town_a_week(world, db, next_monday)
    run = SolveRun(schedule=schedule, status=RunStatus.BUILDING, active_for=schedule.id,
                   progress={"phase": "building", "elapsed": 4.4})
    db.session.add(run)
    db.session.commit()
    monkeypatch.setattr("web.schedule.check_run", lambda run: False)  # no real worker behind this run
    _sign_in(client)
    status = client.get(f"/runs/{run.id}.json").get_json()
    assert status["active"] and status["phase_label"] == "Building the model"
    page = client.get(f"/schedules/{schedule.id}").get_data(as_text=True)
    assert 'id="run-status">Building the model</span>' in page and "building" not in page.split('id="run-detail"')[1][:60]
    assert 'data-score-word="score"' in page
    assert 'id="solve-button" disabled' in page
    client.post("/language/zh_CN", data={"next": "/dashboard"})
    chinese = client.get(f"/runs/{run.id}.json").get_json()["phase_label"]
    assert chinese and chinese not in ("building", "Building the model")
    from pathlib import Path

    script = Path(client.application.static_folder, "schedule.js").read_text(encoding="utf-8")
    assert "run.phase_label" in script and "p.phase" not in script  # the phase shown once, translated
    assert "button.disabled = !!run.active" in script  # a poll that says active keeps the button locked


def test_an_unsolved_draft_says_so_and_lists_its_short_demands(client, world, db, next_monday):
    schedule, _occs = _town_a_week(world, db, next_monday)
    _sign_in(client)
    page = client.get(f"/schedules/{schedule.id}").get_data(as_text=True)
    assert 'id="not-solved"' in page and "Every demand has its people." not in page
    gaps = page.split('id="gaps"')[1].split("</table>")[0]
    assert gaps.count("not solved yet") == 2


def test_a_demand_new_since_the_last_solve_is_not_called_declined(client, world, db, next_monday):
    schedule, (monday, thursday) = _town_a_week(world, db, next_monday)
    db.session.add(SolveRun(schedule=schedule, status=RunStatus.DONE, instance={"demands": [{"id": f"d{monday.id}"}]},
                            solution={"assignments": []}, score=90.0, bound=100.0))
    db.session.commit()
    _sign_in(client)
    page = client.get(f"/schedules/{schedule.id}").get_data(as_text=True)
    rows = page.split('id="gaps"')[1].split("</table>")[0].split("<tr>")
    assert 'id="not-solved"' not in page
    row = next(r for r in rows if f"occurrences/{thursday.id}\"" in r)
    assert "new since the last solve" in row and "declined" not in row
    row = next(r for r in rows if f"occurrences/{monday.id}\"" in r)
    assert "declined or changed since the run" in row


def test_a_full_service_hides_the_assign_buttons_and_a_late_assign_is_shown_on_the_page(
        client, world, db, next_monday):
    from matcher.schedules import assign_by_hand
    from tests.matcher.builders import member

    schedule, (monday, _thursday) = _town_a_week(world, db, next_monday)
    monday.demand.people = 1
    monday.demand.min_people = 1
    other = member(world, db, "陈红", "13811112222")
    db.session.commit()
    url = f"/schedules/{schedule.id}/occurrences/{monday.id}"
    _sign_in(client)
    page = client.get(url).get_data(as_text=True)
    assert 'id="full-note"' not in page and 'name="volunteer"' in page
    assign_by_hand(schedule, monday, world["volunteers"]["a"], user=None)  # another coordinator fills it
    db.session.commit()
    late = client.post(url, data={"volunteer": other.id})
    text = late.get_data(as_text=True)
    assert late.status_code == 409 and "This demand has all the people it needs." in text
    assert 'id="full-note"' in text and 'id="candidates"' in text and 'name="volunteer"' not in text
    assert db.session.scalar(select(func.count(Assignment.id))) == 1


def test_a_refused_assign_names_the_volunteer_and_asks_for_an_override_reason(client, world, db, next_monday):
    schedule, (_monday, thursday) = _town_a_week(world, db, next_monday)
    _sign_in(client)
    refused = client.post(f"/schedules/{schedule.id}/occurrences/{thursday.id}",
                          data={"volunteer": world["volunteers"]["a"].id})
    message = refused.get_data(as_text=True).split('id="err-volunteer"')[1].split("</")[0]
    assert refused.status_code == 400
    assert "李秀英" in message and "availability" in message and "reason to override" in message


def test_a_draft_staffed_by_hand_can_be_published_without_a_solve(client, world, db, next_monday):
    schedule, (monday, _thursday) = _town_a_week(world, db, next_monday)
    _sign_in(client)
    url = f"/schedules/{schedule.id}"
    assert 'id="publish-button"' not in client.get(url).get_data(as_text=True)  # nothing to offer yet
    assert client.post(f"{url}/occurrences/{monday.id}", data={"volunteer": world["volunteers"]["a"].id}) \
        .status_code == 302
    assert 'id="publish-button"' in client.get(url).get_data(as_text=True)
    assert client.post(f"{url}/publish", data={"version": schedule.version}).status_code == 302
    offer = db.session.scalar(select(Assignment))
    assert offer.status == AssignmentStatus.OFFERED and offer.reasons == ["pinned"]


def test_the_schedule_list_shows_places_filled_and_the_gap_not_a_raw_score(client, world, db, next_monday):
    from matcher.schedules import assign_by_hand

    schedule, (monday, _thursday) = _town_a_week(world, db, next_monday)
    assign_by_hand(schedule, monday, world["volunteers"]["a"], user=None)
    db.session.add(SolveRun(schedule=schedule, status=RunStatus.DONE, instance={"demands": []},
                            solution={"assignments": []}, score=297536.0, bound=300000.0))
    db.session.commit()
    _sign_in(client)
    row = client.get("/schedules").get_data(as_text=True).split(f"/schedules/{schedule.id}\"")[1].split("</tr>")[0]
    assert "297536" not in row
    assert "1 of 2 (50%)" in row and "gap to the bound 0.8%" in row


# --------------------------------------------------------------------------- a district week, a street's part


def _district_week(world, db, next_monday):
    """The district's draft for the week: demand a1 (东城街道) and b1 (南山镇) are both on it."""
    from matcher.schedules import get_schedule

    schedule = get_schedule(world["areas"]["district"], next_monday)
    db.session.commit()
    return schedule


def _grid(page: str) -> str:
    return page.split('<table class="grid')[1].split("</table>")[0]


def test_a_street_coordinator_opening_a_week_the_district_schedules_gets_their_part(client, world, db, next_monday):
    schedule = _district_week(world, db, next_monday)
    _sign_in(client)  # coord_a, 东城街道
    opened = client.post("/schedules/open", data={"area": world["areas"]["town_a"].id, "week": next_monday.isoformat()})
    assert opened.status_code == 302 and opened.headers["Location"].endswith(f"/schedules/{schedule.id}")
    assert db.session.scalar(select(func.count(Schedule.id))) == 1  # no street schedule beside the district's
    page = client.get(opened.headers["Location"])
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and 'id="part-note"' in text and "东城街道" in text
    assert "solving, applying repairs and publishing stay with the coordinator of 青溪区" in text
    grid = _grid(text)
    a1, b1 = world["demands"]["a1"].occurrences[0], world["demands"]["b1"].occurrences[0]
    assert f"occurrences/{a1.id}\"" in grid and f"occurrences/{b1.id}\"" not in grid
    assert f"occurrences/{b1.id}\"" not in text  # nor in the gaps
    assert 'id="solve-button"' not in text and 'id="publish-button"' not in text
    assert 'name="street"' not in text  # their part is fixed
    listed = client.get("/schedules").get_data(as_text=True)
    row = listed.split(f"/schedules/{schedule.id}\"")[1].split("</tr>")[0]
    assert "青溪区 district schedule — your part: 东城街道" in row
    assert "0 of 2 (0%)" in row  # the street's two services (a1 on Monday and Thursday), not the district's three


def test_a_street_coordinator_adjusts_only_their_part_of_the_district_schedule(client, world, db, next_monday):
    from datetime import timedelta

    from matcher.schedules import assign_by_hand
    from tests.matcher.builders import add_demand

    schedule = _district_week(world, db, next_monday)
    monday, thursday = sorted(world["demands"]["a1"].occurrences, key=lambda o: o.starts_at)[:2]
    b1 = world["demands"]["b1"].occurrences[0]
    tuesday = add_demand(world, next_monday + timedelta(days=1), "09:00", "10:00", community="a2")
    world["volunteers"]["b"].max_travel_km = 40.0
    theirs = assign_by_hand(schedule, b1, world["volunteers"]["b"], user=None, override_reason="test")
    db.session.commit()
    _sign_in(client)
    base = f"/schedules/{schedule.id}"
    assert client.get(f"{base}/occurrences/{b1.id}").status_code == 404
    assert client.post(f"{base}/occurrences/{b1.id}", data={"volunteer": world["volunteers"]["a"].id}) \
        .status_code == 404
    for action in ("pin", "remove"):
        assert client.post(f"/assignments/{theirs.id}/{action}", data={"pinned": "0"}).status_code == 404
    assert client.post(f"{base}/solve", data={"time_limit": "5"}).status_code == 404
    assert client.post(f"{base}/publish", data={"version": schedule.version}).status_code == 404
    assert db.session.scalar(select(func.count(SolveRun.id))) == 0
    # Their own services: assign, move within the street, pin, remove.
    page = client.get(f"{base}/occurrences/{monday.id}").get_data(as_text=True)
    assert 'id="pool-note"' in page and "From the pool of 东城街道" in page
    assert client.post(f"{base}/occurrences/{monday.id}", data={"volunteer": world["volunteers"]["a"].id}) \
        .status_code == 302
    mine = db.session.scalar(select(Assignment).where(Assignment.occurrence_id == monday.id))
    assert mine.schedule_id == schedule.id and mine.pinned
    page = client.get(f"{base}/occurrences/{monday.id}").get_data(as_text=True)
    move_targets = page.split('name="target"')[1].split("</select>")[0]
    assert f'value="{tuesday.id}"' in move_targets and f'value="{b1.id}"' not in move_targets
    assert client.post(f"/assignments/{mine.id}/move", data={"target": b1.id}).status_code == 404
    assert client.post(f"/assignments/{mine.id}/pin", data={"pinned": "0", "version": mine.version}) \
        .status_code == 302
    db.session.expire_all()
    assert not db.session.get(Assignment, mine.id).pinned
    assert client.post(f"/assignments/{mine.id}/remove").status_code == 302
    db.session.expire_all()
    assert db.session.scalar(select(func.count(Assignment.id)).where(
        Assignment.occurrence_id == monday.id, Assignment.status.in_(FILLING))) == 0
    assert db.session.get(Assignment, theirs.id).status == AssignmentStatus.PROPOSED  # the other street's: untouched
    assert thursday.id not in {a.occurrence_id for a in db.session.scalars(select(Assignment))}


def test_a_street_coordinator_follows_the_district_run_but_gets_none_of_its_files(client, world, db, next_monday):
    schedule = _district_week(world, db, next_monday)
    run = SolveRun(schedule=schedule, status=RunStatus.DONE, instance={"demands": [], "volunteers": []},
                   solution={"assignments": []}, score=1.0, bound=1.0)
    db.session.add(run)
    db.session.commit()
    _sign_in(client)
    assert client.get(f"/runs/{run.id}.json").status_code == 200
    assert client.get(f"/runs/{run.id}/instance.json").status_code == 404
    assert client.get(f"/runs/{run.id}/solution.json").status_code == 404
    assert client.post(f"/runs/{run.id}/apply").status_code == 404
    page = client.get(f"/schedules/{schedule.id}").get_data(as_text=True)
    assert "instance.json" not in page and "solution.json" not in page
    client.post("/logout")
    _sign_in(client, "coord_b")  # the other street: its own part only
    text = client.get(f"/schedules/{schedule.id}").get_data(as_text=True)
    a1, b1 = world["demands"]["a1"].occurrences[0], world["demands"]["b1"].occurrences[0]
    assert f"occurrences/{b1.id}\"" in _grid(text) and f"occurrences/{a1.id}\"" not in text


def test_the_district_schedule_filters_by_street(client, world, db, next_monday):
    schedule = _district_week(world, db, next_monday)
    _sign_in(client, "coord")
    a1, b1 = world["demands"]["a1"].occurrences[0], world["demands"]["b1"].occurrences[0]
    url = f"/schedules/{schedule.id}"
    whole = client.get(url).get_data(as_text=True)
    select_html = whole.split('name="street"')[1].split("</select>")[0]
    assert "东城街道" in select_html and "南山镇" in select_html
    # The whole district opens as an overview: a row per street, each cell its services and places filled,
    # leading to that street; the services one by one are listed street by street.
    overview = _grid(whole)
    assert 'id="overview-grid"' in whole and "occurrences/" not in overview
    for town in ("town_a", "town_b"):
        assert f"?street={world['areas'][town].id}\"" in overview
    assert overview.count("1/1") + overview.count("0/1") >= 2
    street = client.get(f"{url}?street={world['areas']['town_b'].id}").get_data(as_text=True)
    assert f"occurrences/{b1.id}\"" in _grid(street) and f"occurrences/{a1.id}\"" not in street
    assert 'id="street-note"' in street and "石桥村" in _grid(street)  # rows: the street's communities
    assert f'value="{world["areas"]["town_b"].id}" selected' in street
    # A street outside the district or no number at all: the whole district, never an error.
    for bad in ("abc", str(world["areas"]["a1"].id), "999999"):
        response = client.get(f"{url}?street={bad}")
        assert response.status_code == 200 and 'id="overview-grid"' in response.get_data(as_text=True)


def test_the_repair_preview_lists_the_services_and_volunteers_that_change(client, world, db, next_monday):
    from tests.matcher.builders import member, offer

    schedule, (monday, thursday) = _town_a_week(world, db, next_monday)
    schedule.status = ScheduleStatus.PUBLISHED
    other = member(world, db, "陈红", "13811112222")
    kept = offer(schedule, monday, world["volunteers"]["a"])
    gone = offer(schedule, thursday, other)
    db.session.add(SolveRun(schedule=schedule, status=RunStatus.DONE, repair=True,
                            instance={"demands": [{"id": f"d{monday.id}"}, {"id": f"d{thursday.id}"}]},
                            solution={"assignments": [
                                {"demand": f"d{monday.id}", "volunteer": f"v{world['volunteers']['a'].id}"},
                                {"demand": f"d{monday.id}", "volunteer": f"v{other.id}"}]},
                            score=1.0, bound=1.0))
    db.session.commit()
    _sign_in(client)
    page = client.get(f"/schedules/{schedule.id}").get_data(as_text=True)
    assert "1 assignments stay, 1 are added, 1 are removed." in page
    table = page.split('id="changes"')[1].split("</table>")[0]
    rows = table.split("<tr>")[2:]  # after the head
    assert len(rows) == 2  # two services change; the kept pair is not listed
    first, second = rows
    assert f"occurrences/{monday.id}\"" in first and "+ 陈红" in first and "李秀英" not in first
    assert f"occurrences/{thursday.id}\"" in second and "− 陈红" in second
    assert "桂花社区" in first and monday.starts_at.strftime("%m-%d %H:%M") in first
    assert kept.id and gone.id
