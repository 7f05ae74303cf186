"""Drill: PostgreSQL restarted while people use the site.

WARNING: this restarts the machine's PostgreSQL cluster (`pg_ctlcluster ... main restart`, fast
mode: every open connection of every database is cut, including other people's test runs). It
does so once, and only with --yes; without it the drill runs everything except the restart.

Loads the scale-0.1 demo into a temporary PostgreSQL database, serves it with gunicorn (2 workers;
the engine's pool_pre_ping is on, web/config.py), signs in a coordinator and a volunteer, and has
both fetch pages in a loop (dashboard, schedules, volunteers, notifications, /healthz; the
volunteer's week and offers). After a few seconds it restarts PostgreSQL, keeps fetching for
--after seconds, and counts the failed requests before, during (from the restart command's start to
its return) and after. Expected: failures only during the restart. Prints a table; removes its
database, processes and temporary folder.

    .venv/bin/python bench/drills/restart_postgres.py --yes
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Browser, Drill, print_table  # noqa: E402

PAGES = {"coord": ["/dashboard", "/schedules", "/volunteers", "/notifications", "/healthz"],
         "volunteer": ["/me/week", "/me/offers", "/notifications", "/dashboard"]}


def restart_command() -> list[str]:
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    return ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--yes", action="store_true", help="really restart PostgreSQL (shared: see the warning)")
    parser.add_argument("--before", type=float, default=5.0, help="seconds of traffic before the restart")
    parser.add_argument("--after", type=float, default=15.0, help="seconds of traffic after it")
    args = parser.parse_args()
    command = restart_command()
    print(f"WARNING: this drill runs `{' '.join(command)}`: PostgreSQL restarts for everyone on this machine "
          "(open connections are cut)." if args.yes else "Dry run (no --yes): PostgreSQL is NOT restarted.",
          file=sys.stderr)
    log: list[tuple[float, str, str, str, float]] = []  # (start, who, path, outcome, seconds)
    stop = threading.Event()
    window: dict[str, float] = {}
    started = time.monotonic()
    with Drill() as drill:
        drill.load_demo()
        _master, base = drill.gunicorn(workers=2)
        browsers = {who: Browser(base, timeout=15) for who in PAGES}
        for who, browser in browsers.items():
            browser.login("coord" if who == "coord" else "volunteer")

        def fetch_loop(who: str) -> None:
            browser, i = browsers[who], 0
            while not stop.is_set():
                path = PAGES[who][i % len(PAGES[who])]
                i += 1
                t0 = time.monotonic()
                try:
                    status, _body = browser.get(path)
                    signed_out = browser.last_path == "/login" and path != "/login"
                    outcome = "signed out" if signed_out else "ok" if status == 200 else f"http {status}"
                except Exception as exc:  # connection refused, reset, timed out
                    outcome = type(exc).__name__
                log.append((t0, who, path, outcome, time.monotonic() - t0))
                time.sleep(0.05)

        threads = [threading.Thread(target=fetch_loop, args=(who,), daemon=True) for who in PAGES]
        for t in threads:
            t.start()
        time.sleep(args.before)
        window["start"] = time.monotonic()
        if args.yes:
            result = subprocess.run(command, capture_output=True, text=True)
            if result.returncode != 0:
                print(f"restart failed ({result.returncode}): {result.stdout}{result.stderr}", file=sys.stderr)
        window["end"] = time.monotonic()
        time.sleep(args.after)
        stop.set()
        for t in threads:
            t.join(timeout=20)
        health_status, health = browsers["coord"].get("/healthz")

    def phase(t0: float) -> str:
        return "1 before" if t0 < window["start"] else "2 during" if t0 < window["end"] else "3 after"

    counts: dict[str, Counter] = {}
    for t0, _who, _path, outcome, _seconds in log:
        counts.setdefault(phase(t0), Counter())[outcome] += 1
    slowest = {p: max((s for t0, _w, _p, _o, s in log if phase(t0) == p), default=0.0) for p in counts}
    last_failure = max((t0 for t0, _w, _p, o, _s in log if o != "ok"), default=None)
    rows = []
    for name in sorted(counts):
        c = counts[name]
        failed = sum(n for o, n in c.items() if o != "ok")
        span = {"1 before": args.before, "2 during": window["end"] - window["start"], "3 after": args.after}[name]
        rows.append([name[2:], f"{span:.1f} s", str(sum(c.values())), str(failed),
                     ", ".join(f"{o} ×{n}" for o, n in sorted(c.items()) if o != "ok") or "-",
                     f"{slowest[name]:.2f} s"])
    print_table(f"PostgreSQL restart drill ({'restarted' if args.yes else 'DRY RUN, not restarted'}; gunicorn 2 "
                f"workers, 2 users fetching pages; {time.monotonic() - started:.0f} s in all)",
                ["phase", "length", "requests", "failed", "failures", "slowest"], rows)
    if last_failure is not None:
        print(f"last failed request started {last_failure - window['end']:+.2f} s after the restart command "
              "returned")
    print(f"/healthz at the end: {health_status} {health.strip()}")


if __name__ == "__main__":
    main()
