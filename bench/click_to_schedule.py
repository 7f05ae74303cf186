"""From the coordinator's click to the reviewed schedule, through the real web app.

Builds a fresh demo district in a temporary instance folder, serves it with gunicorn, signs in as
the district coordinator, clicks "Solve" on the district's demo week (a background job in a
thread of the web process, as without Redis) and polls the run like the page does; then loads the
review page. Prints a table and writes bench/click-to-schedule.md.

    .venv/bin/python bench/click_to_schedule.py [--time-limit 30]
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from datetime import date, timedelta
from http.cookiejar import CookieJar
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "linli-demo-2026"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Browser:
    """A tiny cookie-keeping HTTP client that sends the CSRF token and referrer like a browser."""

    def __init__(self, base: str):
        self.base = base
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))

    def get(self, path: str) -> tuple[str, str, float]:
        started = time.perf_counter()
        with self.opener.open(self.base + path) as response:
            return response.read().decode(), response.geturl(), time.perf_counter() - started

    def post(self, path: str, data: dict, page: str) -> tuple[str, str]:
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
        body = urllib.parse.urlencode({**data, "csrf_token": token}).encode()
        request = urllib.request.Request(self.base + path, data=body, headers={"Referer": self.base + path})
        with self.opener.open(request) as response:
            return response.read().decode(), response.geturl()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-limit", type=int, default=30)
    args = parser.parse_args()
    week = date.today() - timedelta(days=date.today().weekday()) + timedelta(days=7)
    with tempfile.TemporaryDirectory() as instance:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LINLI_") and k != "REDIS_URL"}
        env.update(LINLI_INSTANCE_PATH=instance, LINLI_SESSION_COOKIE_SECURE="false",
                   LINLI_REMEMBER_COOKIE_SECURE="false", LINLI_RATELIMIT_ENABLED="false")
        flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
        subprocess.run([*flask, "db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True)
        subprocess.run([*flask, "demo", "load", "--week", week.isoformat()], cwd=ROOT, env=env, check=True,
                       capture_output=True)
        port = free_port()
        server = subprocess.Popen([sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", "--bind",
                                   f"127.0.0.1:{port}", "--workers", "2", "wsgi:app"], cwd=ROOT, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(100):
                try:
                    urllib.request.urlopen(base + "/healthz", timeout=1)
                    break
                except OSError:
                    time.sleep(0.2)
            b = Browser(base)
            page, _, _ = b.get("/login")
            b.post("/login", {"username": "coord", "password": PASSWORD}, page)
            page, _, _ = b.get("/schedules")
            area = re.search(r'<option value="(\d+)">', page).group(1)
            page, url = b.post("/schedules/open", {"area": area, "week": week.isoformat()}, page)
            schedule_path = urllib.parse.urlparse(url).path
            clicked = time.perf_counter()
            page, _ = b.post(schedule_path + "/solve", {"time_limit": str(args.time_limit)}, page)
            run_path = re.search(r'data-url="([^"]+)"', page).group(1)
            phases = {}
            while True:
                body, _, _ = b.get(run_path)
                status = re.search(r'"status":\s*"(\w+)"', body).group(1)
                phases.setdefault(status, time.perf_counter() - clicked)
                if status not in ("queued", "building", "solving"):
                    break
                time.sleep(0.5)
            done = time.perf_counter() - clicked
            review, _, render = b.get(schedule_path)
            total = time.perf_counter() - clicked
            filled = re.search(r'id="fig-coverage">([^<]+)<', review).group(1)
        finally:
            server.terminate()
            server.wait(timeout=10)
    rows = [
        ("machine", f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}"),
        ("instance", "demo district: 4,000 volunteers, 1,200 demand occurrences"),
        ("solver time limit", f"{args.time_limit} s"),
        ("click → run building", f"{phases.get('building', float('nan')):.1f} s"),
        ("click → run solving", f"{phases.get('solving', float('nan')):.1f} s"),
        (f"click → run {status}", f"{done:.1f} s"),
        ("review page render", f"{render:.2f} s"),
        ("click → reviewed schedule", f"{total:.1f} s"),
        ("positions filled", filled),
    ]
    width = max(len(k) for k, _ in rows)
    table = "\n".join(f"| {k:<{width}} | {v} |" for k, v in rows)
    print(table)
    report = ROOT / "bench" / "click-to-schedule.md"
    report.write_text("# From the coordinator's click to the reviewed schedule\n\n"
                      "Generated by `bench/click_to_schedule.py` (thread mode, no Redis), on a 2-core machine.\n\n"
                      f"| step | value |\n|---|---|\n{table}\n")


if __name__ == "__main__":
    main()
