"""Load test: the demo district under its five roles and the burst after publishing, per page.

For each database asked for, builds a fresh demo instance (`flask db upgrade`, `flask demo load`,
`flask schedule solve --publish` for the district's week), starts gunicorn exactly as configured
(gunicorn.conf.py; `--workers`/`--threads` override it to compare worker models), signs the load's
sessions in, then runs locust headless (bench/load/locustfile.py, from its own venv .venv-load) in steps
of users, each for a fixed time. Writes a report (p50/p95/p99, requests/s and errors per page and
overall) and a plot of latency against users.

- SQLite (default): the instance folder's embedded database; the login limit counts in it.
- `--db postgresql`: a fresh database on 127.0.0.1:5432 (dropped afterwards) plus REDIS_URL (a Redis
  database of its own, flushed first) and an RQ worker, as deployed.

Logins: before each step the runner signs in, one after another over plain HTTP, one session per
account (the demo logins, plus chosen volunteers, workers, coordinators and leaders given the demo
password's hash in the database) and hands the cookies to locust: no locust user posts a password.

    make bench-load ARGS="--db sqlite,postgresql --users 50 --minutes 5"
    .venv/bin/python bench/load_test.py [--db sqlite] [--users 10,25,50] [--minutes 1] [--workers 3 --threads 4]

The load client runs on the same machine (127.0.0.1 only); the report says how many cores it shared.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import random
import re
import runpy
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from datetime import datetime
from http.cookiejar import CookieJar
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench" / "load"))

from pages import group_of  # noqa: E402

BIN = ROOT / ".venv" / "bin"
LOCUST = ROOT / ".venv-load" / "bin" / "locust"
LOCUSTFILE = ROOT / "bench" / "load" / "locustfile.py"
USER_AGENT = "linli-load/1 (bench/load_test.py)"
BURST_SHARE = 18 / 50  # PublishBurst's weight among the locust user classes (bench/load/locustfile.py)
ROLES = ("volunteer", "worker", "coordinator", "leader", "admin")


def log(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", flush=True)


def flask(env: dict[str, str], *args: str) -> None:
    subprocess.run([str(BIN / "flask"), "--app", "wsgi", *args], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL)


# --- the instance -------------------------------------------------------------------------------


class Instance:
    """A fresh demo instance on one database: its environment, and what to clean up."""

    def __init__(self, db: str, out: Path, redis_url: str, pg_url: str):
        self.db = db
        self.folder = Path(tempfile.mkdtemp(prefix=f"linli-load-{db}-"))
        self.env = {**os.environ, "LINLI_INSTANCE_PATH": str(self.folder), "SECRET_KEY": secrets.token_hex(32),
                    # plain HTTP on localhost: the cookies cannot be Secure-only (as `make demo`)
                    "LINLI_SESSION_COOKIE_SECURE": "false", "LINLI_REMEMBER_COOKIE_SECURE": "false"}
        for key in ("DATABASE_URL", "REDIS_URL", "LINLI_DATABASE_URL", "LINLI_REDIS_URL"):
            self.env.pop(key, None)
        self.database = None
        if db == "postgresql":
            self.database = f"linli_load_{os.getpid()}"
            subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", self.database], check=True)
            self.env["DATABASE_URL"] = pg_url.rstrip("/") + "/" + self.database
            self.env["REDIS_URL"] = redis_url
            from redis import Redis

            Redis.from_url(redis_url).flushdb()
        self.out = out
        self.processes: list[subprocess.Popen] = []

    def build(self, time_limit: int, scale: float) -> None:
        started = time.perf_counter()
        flask(self.env, "db", "upgrade")
        flask(self.env, "demo", "load", "--scale", str(scale))
        flask(self.env, "schedule", "solve", "--publish", "--time-limit", str(time_limit))
        log(f"demo district built, solved and published in {time.perf_counter() - started:.0f} s")

    def start(self, port: int, workers: int | None, threads: int | None) -> None:
        command = [str(BIN / "gunicorn"), "--config", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}"]
        if workers:
            command += ["--workers", str(workers)]
        if threads:
            command += ["--threads", str(threads)]
        command.append("wsgi:app")
        with open(self.out / f"gunicorn-{self.db}.log", "w") as out:
            self.processes.append(subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=out,
                                                   stderr=subprocess.STDOUT, start_new_session=True))
        if self.db == "postgresql":  # the deployment's RQ worker (outbox sends, solves)
            with open(self.out / "rq-worker.log", "w") as out:
                self.processes.append(subprocess.Popen(
                    [str(BIN / "rq"), "worker", "--worker-class", "web.jobs.Worker", "--with-scheduler", "--url", self.env["REDIS_URL"], "--path", ".",
                     "linli"], cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                    start_new_session=True))
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline or self.processes[0].poll() is not None:
                raise SystemExit(f"gunicorn did not come up: see {self.out}/gunicorn-{self.db}.log")
            time.sleep(0.5)

    def stop(self, keep: bool) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
        if keep:
            log(f"kept: {self.folder}" + (f", database {self.database}" if self.database else ""))
            return
        if self.database:
            subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", "--force", self.database], check=False)
        shutil.rmtree(self.folder, ignore_errors=True)


def server_shape(workers: int | None, threads: int | None, env: dict[str, str]) -> tuple[int, int]:
    """gunicorn's workers and threads: the overrides, else what gunicorn.conf.py sets."""
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        conf = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return workers or conf["workers"], threads or conf["threads"]


# --- the accounts -------------------------------------------------------------------------------


def prepare_accounts(env: dict[str, str], volunteers_needed: int, seed: int) -> dict:
    """Choose the load's accounts, give them the demo password's hash, and collect the ids they open.

    Returns {"schedule": id, "burst": [usernames with open offers, in order of use], "volunteer": [...],
    "worker": [{"username", "demands", "occurrences"}], "coordinator": [{"username", "schedule",
    "streets", "part", "occurrences"}], "leader": [...], "admin": [...]}.
    """
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        from sqlalchemy import func, select, update

        from matcher import problem
        from matcher.db import db
        from matcher.models import (
            Area,
            AreaLevel,
            Assignment,
            AssignmentStatus,
            Demand,
            Role,
            Schedule,
            User,
            Volunteer,
        )
        from web import create_app

        app = create_app()
        with app.app_context():
            rng = random.Random(seed)
            district = db.session.scalar(select(Area).where(Area.level == AreaLevel.DISTRICT).order_by(Area.id))
            schedule = db.session.scalar(select(Schedule).where(Schedule.area_id == district.id)
                                         .order_by(Schedule.week_start.desc()))
            schedule_id = schedule.id
            offered = db.session.scalars(
                select(User.username).join(Volunteer, Volunteer.user_id == User.id)
                .join(Assignment, Assignment.volunteer_id == Volunteer.id)
                .where(Assignment.schedule_id == schedule.id, Assignment.status == AssignmentStatus.OFFERED,
                       User.role == Role.VOLUNTEER, User.username != "volunteer")
                .group_by(User.username).order_by(User.username)).all()
            rng.shuffle(offered)
            if len(offered) < volunteers_needed:
                raise SystemExit(f"only {len(offered)} volunteers with open offers; {volunteers_needed} needed")
            chosen_volunteers = offered[:volunteers_needed]

            occurrences = problem.schedule_occurrences(schedule)
            by_community: dict[int, list[int]] = defaultdict(list)
            by_street: dict[int, list[int]] = defaultdict(list)
            for occ in occurrences:
                by_community[occ.demand.community_id].append(occ.id)
                by_street[occ.demand.community.parent_id].append(occ.id)
            streets = db.session.scalars(select(Area).where(Area.parent_id == district.id,
                                                            Area.level == AreaLevel.TOWNSHIP)).all()

            workers = db.session.scalars(select(User).where(User.role == Role.WORKER)).all()
            workers.sort(key=lambda u: (u.username != "worker", -len(by_community.get(u.area_id, []))))
            worker_rows = []
            for user in workers[:4]:
                demands = db.session.scalars(select(Demand.id).where(Demand.community_id == user.area_id)
                                             .order_by(Demand.id).limit(30)).all()
                worker_rows.append({"username": user.username, "demands": list(demands),
                                    "occurrences": by_community.get(user.area_id, [])[:30]})

            coords = db.session.scalars(select(User).where(User.role == Role.COORDINATOR).order_by(User.id)).all()
            coords.sort(key=lambda u: (u.username not in ("coord", "coord_songpo"), u.id))
            coordinator_rows = []
            for user in coords[:4]:
                whole = user.area_id == district.id
                pool = [o.id for o in occurrences] if whole else by_street.get(user.area_id, [])
                coordinator_rows.append({"username": user.username, "schedule": schedule.id, "part": not whole,
                                         "streets": [s.id for s in streets] if whole else [],
                                         "occurrences": rng.sample(pool, min(40, len(pool)))})

            leaders = db.session.scalars(select(User.username).where(User.role == Role.ORG_LEADER)
                                         .order_by(User.username != "leader", User.id).limit(3)).all()
            names = (chosen_volunteers + [w["username"] for w in worker_rows]
                     + [c["username"] for c in coordinator_rows] + list(leaders))
            demo_hash = db.session.scalar(select(User.password_hash).where(User.username == "volunteer"))
            db.session.execute(update(User).where(User.username.in_(names), User.password_hash.is_(None))
                               .values(password_hash=demo_hash))
            db.session.commit()
            given = db.session.scalar(select(func.count()).select_from(User).where(User.password_hash == demo_hash))
            log(f"{given} accounts have the demo password ({len(names)} chosen for the load)")
            db.engine.dispose()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    regular = 8
    return {"schedule": schedule_id, "volunteer": ["volunteer", *chosen_volunteers[:regular - 1]],
            "burst": chosen_volunteers[regular - 1:], "worker": worker_rows, "coordinator": coordinator_rows,
            "leader": [{"username": name} for name in leaders], "admin": [{"username": "admin"}]}


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Logins:
    """Signs sessions in over HTTP, one after another, waiting out the login limit if it ever answers 429."""

    def __init__(self, base: str, password: str):
        self.base, self.password = base, password
        self.count, self.throttled, self.seconds = 0, 0, 0.0

    def sign_in(self, username: str) -> dict[str, str]:
        started = time.perf_counter()
        while True:
            jar = CookieJar()
            opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), _NoRedirect)
            opener.addheaders = [("User-Agent", USER_AGENT)]
            with opener.open(self.base + "/login", timeout=30) as response:
                token = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', response.read().decode())
            if token is None:
                raise SystemExit("no CSRF token on the login page")
            form = urllib.parse.urlencode({"csrf_token": token.group(1), "username": username,
                                           "password": self.password}).encode()
            try:
                with opener.open(self.base + "/login", data=form, timeout=30) as response:
                    status, headers = response.status, response.headers
            except urllib.error.HTTPError as exc:
                status, headers = exc.code, exc.headers
            if status in (302, 303) and "/login" not in headers.get("Location", ""):
                self.count += 1
                self.seconds += time.perf_counter() - started
                return {cookie.name: cookie.value for cookie in jar}
            if status == 429:
                self.throttled += 1
                wait = int(headers.get("Retry-After") or 60)
                log(f"login limit reached at {username}: waiting {wait} s")
                time.sleep(wait)
                continue
            raise SystemExit(f"signing in {username} failed: HTTP {status}")


# --- the load -----------------------------------------------------------------------------------


def run_step(users: int, seconds: int, base: str, sessions_file: Path, log_file: Path, out: Path) -> dict:
    """One locust run at `users` users for `seconds`; returns the client's and the machine's CPU use."""
    import psutil

    env = {**os.environ, "LINLI_LOAD_SESSIONS": str(sessions_file), "LINLI_LOAD_LOG": str(log_file)}
    command = [str(LOCUST), "-f", str(LOCUSTFILE), "--headless", "--host", base, "--users", str(users),
               "--spawn-rate", str(max(1, math.ceil(users / 5))), "--run-time", f"{seconds}s",
               "--stop-timeout", "5", "--only-summary", "--loglevel", "WARNING"]
    psutil.cpu_percent()
    with open(out / f"locust-{users}.log", "w") as output:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
        client = psutil.Process(process.pid)
        client_cpu = 0.0
        while process.poll() is None:
            try:
                times = client.cpu_times()
                client_cpu = times.user + times.system
            except psutil.Error:
                pass
            time.sleep(1)
    return {"machine_busy": psutil.cpu_percent(), "client_cpu_s": client_cpu}


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of sorted values."""
    if not sorted_values:
        return float("nan")
    return sorted_values[max(0, math.ceil(q * len(sorted_values)) - 1)]


def summarize(rows: list[tuple[str, float, int, bool, str]], seconds: float) -> dict:
    """Per name and overall: requests, errors, requests/s, p50/p95/p99/max ms, mean KB."""
    by_name: dict[str, list] = defaultdict(list)
    for row in rows:
        by_name[row[0]].append(row)
        by_name["overall"].append(row)
    stats = {}
    for key, items in by_name.items():
        times = sorted(r[1] for r in items)
        stats[key] = {"requests": len(items), "errors": sum(1 for r in items if not r[3]),
                      "rps": len(items) / seconds, "p50": percentile(times, 0.50), "p95": percentile(times, 0.95),
                      "p99": percentile(times, 0.99), "max": times[-1],
                      "kb": sum(r[2] for r in items) / len(items) / 1024,
                      "error_kinds": sorted({r[4] for r in items if not r[3]})[:3]}
    return stats


def read_log(path: Path) -> list[tuple[str, float, int, bool, str]]:
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return [(r[1], float(r[2]), int(r[3]), r[4] == "1", r[5]) for r in csv.reader(f)]


def group_stats(rows, users_steps) -> dict:
    """p50/p95 per plot group per step."""
    out: dict[str, dict[int, tuple[float, float]]] = defaultdict(dict)
    for users, step_rows in zip(users_steps, rows, strict=True):
        groups: dict[str, list[float]] = defaultdict(list)
        for r in step_rows:
            groups[group_of(r[0])].append(r[1])
            groups["all requests"].append(r[1])
        for group, values in groups.items():
            values.sort()
            out[group][users] = (percentile(values, 0.5), percentile(values, 0.95))
    return out


# --- the report ---------------------------------------------------------------------------------


def fmt(ms: float) -> str:
    return f"{ms / 1000:.2f} s" if ms >= 1000 else f"{ms:.0f} ms"


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    dbs = list(results)
    fig, axes = plt.subplots(len(dbs), 2, figsize=(12, 4.2 * len(dbs)), squeeze=False)
    for row, db in enumerate(dbs):
        groups = results[db]["groups"]
        for col, (index, label) in enumerate(((0, "p50"), (1, "p95"))):
            ax = axes[row][col]
            for group in sorted(groups, key=lambda g: (g != "all requests", g)):
                users = sorted(groups[group])
                ax.plot(users, [groups[group][u][index] for u in users], marker="o",
                        linewidth=2.5 if group == "all requests" else 1.2, label=group)
            ax.set_title(f"{results[db]['label']}: {label} latency")
            ax.set_xlabel("users")
            ax.set_ylabel("ms")
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _pos: f"{v:g}"))
            ax.set_xticks(sorted({u for g in groups.values() for u in g}))
            ax.grid(True, which="both", alpha=0.3)
        axes[row][1].legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(path: Path, png: Path, results: dict, machine: str, args, logins_note: str) -> None:
    lines = [
        "# Load test: the demo district under its five roles",
        "",
        f"Run {datetime.now():%Y-%m-%d %H:%M} with `{shlex.join(['bench/load_test.py', *sys.argv[1:]])}`.",
        "",
        f"**Code**: {args.code}.",
        "",
        f"**Machine**: {machine}. The load client (locust, one process) runs on the same cores.",
        "",
        "**Load**: locust user classes with 0.5–1.5 s between clicks, weights 18 burst volunteers (open their "
        "offers and answer every one, 85 % accept, then browse), 14 volunteers, 8 community workers, "
        "5 coordinators, 3 organization leaders, 2 administrators (bench/load/locustfile.py); all users "
        f"spawned within 5 s; each step runs {args.minutes:g} min. Requests are named by route rule; "
        "`[street]` marks the district's review page narrowed to one street (a street's coordinator's part, "
        "or `?street=`). Latencies from every request (nearest rank), in the client, so they include "
        "queueing in gunicorn.",
        "",
        f"**Logins**: {logins_note}",
        "",
        f"![latency against users]({png.name})",
        "",
    ]
    for result in results.values():
        steps = result["steps"]
        lines += [f"## {result['label']}", "", "| users | requests | req/s | errors | p50 | p95 | p99 | max | "
                  "machine CPU busy | client CPU |", "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for users, step in steps.items():
            o = step["stats"].get("overall")
            if not o:
                continue
            lines.append(f"| {users} | {o['requests']} | {o['rps']:.1f} | {o['errors']} | {fmt(o['p50'])} | "
                         f"{fmt(o['p95'])} | {fmt(o['p99'])} | {fmt(o['max'])} | {step['cpu']['machine_busy']:.0f} % | "
                         f"{100 * step['cpu']['client_cpu_s'] / step['seconds']:.0f} % of a core |")
        last = max(steps)
        stats = steps[last]["stats"]
        p95s = " / ".join(str(u) for u in steps)
        lines += ["", f"Per page at {last} users (slowest p95 first; last column: p95 at {p95s} users):", "",
                  "| page | requests | errors | p50 | p95 | p99 | mean size | p95 by users |",
                  "|---|---:|---:|---:|---:|---:|---:|---|"]
        names = sorted((n for n in stats if n != "overall"), key=lambda n: -stats[n]["p95"])
        for name in names:
            s = stats[name]
            trend = " / ".join(fmt(steps[u]["stats"][name]["p95"]) if name in steps[u]["stats"] else "–"
                               for u in steps)
            lines.append(f"| `{name}` | {s['requests']} | {s['errors']} | {fmt(s['p50'])} | {fmt(s['p95'])} | "
                         f"{fmt(s['p99'])} | {s['kb']:.0f} KB | {trend} |")
        o = stats["overall"]
        lines.append(f"| **overall** | {o['requests']} | {o['errors']} | {fmt(o['p50'])} | {fmt(o['p95'])} | "
                     f"{fmt(o['p99'])} | {o['kb']:.0f} KB | |")
        errors = [(n, stats[n]) for n in names if stats[n]["errors"]]
        if errors:
            lines += ["", "Errors: " + "; ".join(f"`{n}` {s['errors']} ({', '.join(s['error_kinds'])})"
                                                 for n, s in errors)]
        lines.append("")
    lines += [
        "## Notes",
        "",
        "- SQL statements per request are not recorded here: gunicorn's access log has the time per request "
        "(`%(M)sms`) but no statement count, and counting them needs a hook in the app (the test suite's "
        "query-count guard covers that).",
        "- Every step opens a new set of burst volunteers (each with offers nobody answered yet), so each step "
        "starts with its own burst after publishing; the other sessions, and the answers given, carry over.",
        f"- Raw per-request logs, gunicorn's and locust's output: `{args.out_rel}` (not committed).",
        "",
    ]
    path.write_text("\n".join(lines))


# --- main ---------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="sqlite", help="sqlite, postgresql or both (comma-separated)")
    parser.add_argument("--users", default="10,25,50", help="steps of users, e.g. 10,25,50 (default)")
    parser.add_argument("--minutes", type=float, default=1.0, help="length of each step (default 1)")
    parser.add_argument("--workers", type=int, default=None, help="gunicorn workers (default: gunicorn.conf.py)")
    parser.add_argument("--threads", type=int, default=None, help="gunicorn threads (default: gunicorn.conf.py)")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--time-limit", type=int, default=30, help="the solve's time limit (s)")
    parser.add_argument("--tag", default="", help="report as bench/load-report-TAG.md, plot load-latency-TAG.png")
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/11",
                        help="a Redis database the load test owns (flushed before each PostgreSQL run)")
    parser.add_argument("--scale", type=float, default=1.0, help="demo district size (1: the standard district)")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--keep", action="store_true", help="keep the instance folder and database")
    parser.add_argument("--code", default=None, help="what code is measured, for the report (default: git HEAD)")
    args = parser.parse_args()
    if args.code is None:
        head = subprocess.run(["git", "-C", str(ROOT), "log", "-1", "--format=%h %s"], capture_output=True, text=True)
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        args.code = (f"commit {head.stdout.strip()[:90]}" + (" (with uncommitted changes)" if dirty else "")
                     if head.returncode == 0 else "not a git checkout")
    dbs = [d.strip() for d in args.db.split(",") if d.strip()]
    if not set(dbs) <= {"sqlite", "postgresql"}:
        parser.error("--db: sqlite and/or postgresql")
    steps = sorted({int(u) for u in args.users.split(",")})
    if not steps or steps[0] < 1 or steps[-1] > 200 or not 0.1 <= args.minutes <= 30:
        parser.error("bounded: 1 to 200 users, 0.1 to 30 minutes a step")
    seconds = max(6, round(args.minutes * 60))
    if not LOCUST.exists():
        raise SystemExit("locust is not installed: run `make bench-load` (it installs .venv-load)")

    suffix = f"-{args.tag}" if args.tag else ""
    report = ROOT / "bench" / f"load-report{suffix}.md"
    png = ROOT / "bench" / f"load-latency{suffix}.png"
    out = ROOT / "bench" / "out" / f"load{suffix}-{datetime.now():%Y%m%d-%H%M%S}"
    out.mkdir(parents=True)
    args.out_rel = out.relative_to(ROOT)
    burst_per_step = [math.ceil(u * BURST_SHARE) + 2 for u in steps]

    from matcher.demo import DEMO_PASSWORD

    results = {}
    shapes = set()
    for db in dbs:
        label = "SQLite" if db == "sqlite" else "PostgreSQL 15 + Redis"
        if db == "postgresql":
            version = subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-Atc", "show server_version"],
                                     capture_output=True, text=True).stdout.strip()
            label = f"PostgreSQL {version.split()[0] if version else ''} + Redis".replace("  ", " ")
        log(f"{label}: building the demo instance")
        instance = Instance(db, out, args.redis_url, args.pg_url)
        try:
            instance.build(args.time_limit, args.scale)
            accounts = prepare_accounts(instance.env, 7 + sum(burst_per_step), args.seed)
            workers, threads = server_shape(args.workers, args.threads, instance.env)
            shapes.add((workers, threads))
            instance.start(args.port, args.workers, args.threads)
            base = f"http://127.0.0.1:{args.port}"
            logins = Logins(base, DEMO_PASSWORD)
            sessions: dict[str, list] = {role: [] for role in ROLES}
            for role in ROLES:
                for entry in accounts[role]:
                    entry = {"username": entry} if isinstance(entry, str) else entry
                    sessions[role].append({**entry, "cookies": logins.sign_in(entry["username"])})
            log(f"signed in {logins.count} sessions for the roles")
            burst = iter(accounts["burst"])
            result = {"label": label, "steps": {}, "groups": {}}
            raw = []
            for users, burst_count in zip(steps, burst_per_step, strict=True):
                sessions["burst"] = [{"username": name, "cookies": logins.sign_in(name)}
                                     for name in [next(burst) for _ in range(burst_count)]]
                sessions_file = out / f"sessions-{db}-{users}.json"
                sessions_file.write_text(json.dumps({"sessions": sessions, "user_agent": USER_AGENT}))
                log_file = out / f"requests-{db}-{users}.csv"
                log(f"{label}: {users} users for {seconds} s ({burst_count} burst volunteers)")
                cpu = run_step(users, seconds, base, sessions_file, log_file, out)
                rows = read_log(log_file)
                raw.append(rows)
                stats = summarize(rows, seconds)
                result["steps"][users] = {"stats": stats, "cpu": cpu, "seconds": seconds}
                o = stats.get("overall")
                if o:
                    log(f"  {o['requests']} requests, {o['rps']:.1f}/s, {o['errors']} errors, p50 {fmt(o['p50'])}, "
                        f"p95 {fmt(o['p95'])}, p99 {fmt(o['p99'])}")
            result["groups"] = group_stats(raw, steps)
            result["logins"] = (logins.count, logins.throttled, logins.seconds)
            results[db] = result
        finally:
            instance.stop(args.keep)

    cpu = platform.processor() or platform.machine()
    shape = ", ".join(f"{w} workers × {t} threads" for w, t in sorted(shapes))
    machine = (f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, "
               f"{' and '.join(r['label'] for r in results.values())}, gunicorn {shape} (gthread"
               f"{', as gunicorn.conf.py sets' if not (args.workers or args.threads) else ', overridden'})")
    counts = "; ".join(f"{r['label']}: {r['logins'][0]} sign-ins in {r['logins'][2]:.0f} s, "
                       f"{r['logins'][1]} answered 429" for r in results.values())
    logins_note = (
        "before each step the runner signs sessions in through the login form, one after another, one per "
        "account, and hands locust the cookies (no locust user posts a password). Accounts: the demo logins "
        "(`volunteer`, `worker`, `coord`, `coord_songpo`, `leader`, `admin`) plus chosen volunteers with open "
        "offers, three more community workers, two more street coordinators and two more leaders, which the "
        "runner gives the demo password's hash directly in the database (as tests/e2e/test_notices.py does). "
        "8 volunteer, 4 worker, 4 coordinator, 3 leader and 1 admin sessions are shared by that role's locust "
        "users; every burst user has a volunteer session of its own, new for each step. A right password takes "
        "its guess back from the address counter and each account signs in once, so the login limit (10/min "
        f"per address, 5/min per account) is never reached ({counts}).")
    write_report(report, png, results, machine, args, logins_note)
    plot(results, png)
    log(f"wrote {report.relative_to(ROOT)} and {png.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
