"""Drill: the gunicorn worker running a thread-mode solve (no REDIS_URL) dies or is restarted.

Loads the scale-0.1 demo into a temporary PostgreSQL database (--sqlite: a SQLite file), serves it
with gunicorn (2 workers, as gunicorn.conf.py otherwise), signs in as the district coordinator over
HTTP and clicks Solve (30 s limit). Two cases, each ~3 s into the solve:

A. the worker whose thread runs the solve is SIGKILLed (the OOM killer, gunicorn's timeout kill);
B. the master gets HUP (a reload: new workers start, the old ones stop gracefully).

For each, the drill polls GET /runs/<id>.json every 0.5 s like the page does and records when it
first says "failed", then clicks Solve again (10 s limit): the retry must be accepted at once (the
dead run given up, a new run queued) and finish. It also checks the dead run wrote nothing.
Prints a table; removes its database, processes and temporary folder.

    .venv/bin/python bench/drills/restart_gunicorn_worker.py [--sqlite]
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ACTIVE, Browser, Drill, alive, print_table, solve_drill_arguments, wait_for  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

POLL = 0.5
WATCH = 40  # seconds the poll is watched after a kill before retrying anyway


def as_dict(value) -> dict:
    """A JSON column read with plain SQL: a dict on PostgreSQL, a string on SQLite."""
    return json.loads(value) if isinstance(value, str) else (value or {})


def normalized(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1) if url.startswith("postgresql://") else url


def main() -> None:
    args = solve_drill_arguments(__doc__).parse_args()
    rows = []
    started = time.monotonic()
    with Drill(sqlite=args.sqlite) as drill:
        drill.load_demo()
        engine = create_engine(normalized(drill.database_url))
        try:
            master, base = drill.gunicorn(workers=2)
            browser = Browser(base)
            browser.login("coord")
            _status, page = browser.get("/schedules")
            area = re.search(r'<option value="(\d+)">', page).group(1)
            _status, page, schedule_path = browser.post("/schedules/open", {"area": area,
                                                                            "week": drill.week.isoformat()})

            def query(sql: str, **params):
                with engine.connect() as conn:
                    return conn.execute(text(sql), params).first()

            def written() -> int:
                return query("SELECT count(*) FROM assignments WHERE schedule_id = :s",
                             s=int(schedule_path.rsplit("/", 1)[1]))[0]

            def solve(limit: int) -> tuple[int, str]:
                _status, page, _path = browser.post(schedule_path + "/solve", {"time_limit": str(limit)})
                run_path = re.search(r'data-url="([^"]+)"', page).group(1)
                return int(re.search(r"/runs/(\d+)", run_path).group(1)), run_path

            def solving(run_id: int) -> str:
                def ready():
                    row = query("SELECT status, progress, worker FROM solve_runs WHERE id = :i", i=run_id)
                    if row.status in ("done", "failed"):
                        raise SystemExit(f"run {run_id} ended ({row.status}) before the drill could kill it")
                    progress = as_dict(row.progress)
                    return row.worker if row.status == "solving" and progress.get("elapsed", 0) >= 3 else None
                return wait_for(ready, 90, f"run {run_id} never reached the solving phase", every=0.3)

            def after_kill(run_id: int, run_path: str, killed: float) -> tuple[str, int, str]:
                """Watch the poll; count what the dead run wrote; then retry and wait for it to finish."""
                seen = None
                while time.monotonic() - killed < WATCH:
                    status = browser.run_status(run_path)
                    if status not in ACTIVE:
                        seen = f"{status} after {time.monotonic() - killed:.1f} s"
                        break
                    time.sleep(POLL)
                else:
                    seen = f"still '{status}' after {WATCH} s"
                return seen, written(), retry(run_id, killed)

            def retry(dead_id: int, killed: float) -> str:
                clicked = time.monotonic()
                new_id, new_path = solve(args.retry_limit)
                accepted = time.monotonic() - killed
                if new_id == dead_id:
                    return f"refused: run {dead_id} still counts as running ({accepted:.1f} s after the kill)"
                status = wait_for(lambda: (s := browser.run_status(new_path)) not in ACTIVE and s, 120,
                                  "the retry did not finish", every=POLL)
                return (f"accepted {accepted:.1f} s after the kill; {status} in "
                        f"{time.monotonic() - clicked:.1f} s")

            def outcome(run_id: int) -> str:
                row = query("SELECT status, progress FROM solve_runs WHERE id = :i", i=run_id)
                progress = as_dict(row.progress)
                return f"{row.status} ({progress.get('given_up', '-')})"

            # A. SIGKILL the worker whose thread runs the solve.
            run_id, run_path = solve(args.time_limit)
            worker = solving(run_id)
            pid = int(worker.split("/")[1])
            before = written()
            killed = time.monotonic()
            os.kill(pid, signal.SIGKILL)
            wait_for(lambda: not alive(pid), 10, "the worker did not die")
            seen, after, retried = after_kill(run_id, run_path, killed)
            rows.append(["A. worker running the solve SIGKILLed", seen, outcome(run_id), f"{before} → {after}",
                         retried, str(written())])

            # B. HUP the master: old workers stop gracefully, their exit hook gives the solve up.
            run_id, run_path = solve(args.time_limit)
            solving(run_id)
            before = written()
            killed = time.monotonic()
            master.send_signal(signal.SIGHUP)
            seen, after, retried = after_kill(run_id, run_path, killed)
            rows.append(["B. master HUP (reload) mid-solve", seen, outcome(run_id), f"{before} → {after}",
                         retried, str(written())])
        finally:
            engine.dispose()
    header = ["case (~3 s into a 30 s thread-mode solve)", "poll GET /runs/<id>.json", "run ends as",
              "assignments before → after", "retry (Solve again, 10 s)", "assignments after retry"]
    print_table(f"Restarted gunicorn worker drill ({'SQLite' if args.sqlite else 'PostgreSQL'}, demo scale 0.1; "
                f"{time.monotonic() - started:.0f} s in all)", header, rows)


if __name__ == "__main__":
    main()
