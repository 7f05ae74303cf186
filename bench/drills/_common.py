"""Shared pieces of the fault drills: a throw-away database with the scale-0.1 demo, processes that
are always cleaned up, a small cookie-keeping browser, and the printed table.

Every drill builds its own temporary PostgreSQL database (or SQLite file with --sqlite), instance
folder and processes, and removes all of them on the way out, whatever happened.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from datetime import date, timedelta
from http.cookiejar import CookieJar
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
BIN = Path(sys.executable).parent
POSTGRES_ADMIN_URL = os.environ.get("LINLI_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
PASSWORD = "linli-demo-2026"  # the demo's password (matcher.demo.DEMO_PASSWORD)
ACTIVE = ("queued", "building", "solving")


def coming_monday() -> date:
    today = date.today()
    return today - timedelta(days=today.weekday()) + timedelta(days=7)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Drill:
    """A temporary instance: database (PostgreSQL unless sqlite=True) with the demo, env, processes."""

    def __init__(self, *, sqlite: bool = False, redis_url: str | None = None):
        self.sqlite = sqlite
        self.redis_url = redis_url
        self.processes: list[subprocess.Popen] = []
        self.extra_pids: set[int] = set()
        self.week = coming_monday()
        self.db_name = ""

    def __enter__(self) -> Drill:
        self._tmp = tempfile.TemporaryDirectory(prefix="linli-drill-")
        self.instance = Path(self._tmp.name)
        self.log_path = self.instance / "processes.log"
        if self.sqlite:
            self.database_url = f"sqlite:///{self.instance / 'drill.sqlite'}"
        else:
            import psycopg

            self.db_name = f"linli_drill_{os.getpid()}_{uuid.uuid4().hex[:6]}"
            with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
                conn.execute(f'CREATE DATABASE "{self.db_name}"')
            self.database_url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + "/" + self.db_name
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith("LINLI_") and k not in ("REDIS_URL", "DATABASE_URL", "SECRET_KEY")}
        self.env.update(LINLI_INSTANCE_PATH=str(self.instance), DATABASE_URL=self.database_url,
                        SECRET_KEY="drill-" + uuid.uuid4().hex, LINLI_SESSION_COOKIE_SECURE="false",
                        LINLI_REMEMBER_COOKIE_SECURE="false", LINLI_RATELIMIT_ENABLED="false",
                        PYTHONUNBUFFERED="1")
        if self.redis_url:
            self.env["REDIS_URL"] = self.redis_url
        return self

    def __exit__(self, *exc) -> None:
        for proc in reversed(self.processes):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
        for pid in self.extra_pids:  # e.g. an RQ work horse left behind by a killed worker
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.db_name:
            import psycopg

            try:
                with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=10) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
            except Exception as error:  # say so: a leftover database must be dropped by hand
                print(f"could not drop {self.db_name}: {error}", file=sys.stderr)
        keep = os.environ.get("DRILL_LOG")  # where to keep the processes' log (gunicorn, rq) for reading
        if keep and self.log_path.exists():
            shutil.copyfile(self.log_path, keep)
        self._tmp.cleanup()

    # ----------------------------------------------------------------------- setup

    def flask(self, *args: str) -> str:
        result = subprocess.run([str(BIN / "flask"), "--app", "wsgi", *args], cwd=ROOT, env=self.env,
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise SystemExit(f"flask {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def load_demo(self, scale: float = 0.1) -> None:
        self.flask("db", "upgrade")
        self.flask("demo", "load", "--scale", str(scale), "--week", self.week.isoformat())

    def start(self, *command: str, name: str) -> subprocess.Popen:
        log = open(self.log_path, "a")
        log.write(f"--- {name}: {' '.join(command)}\n")
        log.flush()
        proc = subprocess.Popen(list(command), cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.processes.append(proc)
        return proc

    def gunicorn(self, workers: int = 2) -> tuple[subprocess.Popen, str]:
        port = free_port()
        proc = self.start(str(BIN / "gunicorn"), "--config", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}",
                          "--workers", str(workers), "wsgi:app", name="gunicorn")
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: _answers(base + "/healthz"), 30, "gunicorn did not start")
        return proc, base

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=2)
        return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def wait_for(condition, seconds: float, message: str, every: float = 0.2):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise SystemExit(message)


def children_of(pid: int) -> list[int]:
    """The processes whose parent is `pid` (from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] not in ("Z", "X"):
                found.append(int(entry))
    return found


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


class Browser:
    """A cookie-keeping HTTP client that sends the CSRF token and referrer like a browser."""

    def __init__(self, base: str, timeout: float = 30):
        self.base, self.timeout = base, timeout
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
        self.token = ""
        self.last_path = ""

    def get(self, path: str) -> tuple[int, str]:
        try:
            with self.opener.open(self.base + path, timeout=self.timeout) as response:
                body = response.read().decode()
                self._remember_token(body)
                self.last_path = urllib.parse.urlparse(response.geturl()).path
                return response.status, body
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(errors="replace")

    def post(self, path: str, data: dict) -> tuple[int, str, str]:
        body = urllib.parse.urlencode({**data, "csrf_token": self.token}).encode()
        request = urllib.request.Request(self.base + path, data=body, headers={"Referer": self.base + path})
        try:
            with self.opener.open(request, timeout=self.timeout) as response:
                text = response.read().decode()
                self._remember_token(text)
                return response.status, text, urllib.parse.urlparse(response.geturl()).path
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(errors="replace"), ""

    def _remember_token(self, page: str) -> None:
        match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
        if match:
            self.token = match.group(1)

    def login(self, username: str = "coord") -> None:
        self.get("/login")
        status, _page, path = self.post("/login", {"username": username, "password": PASSWORD})
        if status != 200 or path == "/login":
            raise SystemExit(f"login as {username} failed ({status})")

    def run_status(self, run_path: str) -> str:
        status, body = self.get(run_path)
        if status != 200:
            return f"http {status}"
        return re.search(r'"status":\s*"(\w+)"', body).group(1)


def print_table(title: str, header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows, strict=True)]
    line = "+".join("-" * (w + 2) for w in widths)
    print(f"\n{title}\n+{line}+")
    print("| " + " | ".join(str(h).ljust(w) for h, w in zip(header, widths, strict=True)) + " |")
    print(f"+{line}+")
    for row in rows:
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
    print(f"+{line}+")


def solve_drill_arguments(doc: str) -> argparse.ArgumentParser:
    """The options of the drills that kill a solve: the database, the solve's and the retry's time limits."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--sqlite", action="store_true", help="a SQLite file instead of PostgreSQL")
    parser.add_argument("--time-limit", type=int, default=30)
    parser.add_argument("--retry-limit", type=int, default=10)
    return parser
