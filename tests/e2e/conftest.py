"""Browser tests: a real gunicorn server on the demo district, driven by Debian's Chromium.

`pytest tests/e2e`, run from the virtual environment, starts everything it needs once per session:

- a fresh instance folder (``LINLI_INSTANCE_PATH``) in a tmp dir with its own SQLite database,
  migrated (``flask db upgrade``) and loaded with the full demo district for the coming Monday's
  week (``flask demo load --week``);
- gunicorn (2 workers) on a free local port, plain HTTP (non-Secure cookies, no login rate limit),
  its log written to ``test-artifacts/e2e/gunicorn.log``;
- one Playwright Chromium (``/usr/bin/chromium``; never a downloaded browser).

Fixtures for tests (all documented in ``tests/e2e/README.md``):

- ``base_url`` -> ``"http://127.0.0.1:<port>"``
- ``demo_week`` -> the Monday (``datetime.date``) of the week the demo district was loaded for
- ``instance_path`` -> the server's instance folder (``pathlib.Path``), e.g. to open its SQLite file
- ``server_env`` -> the environment the server runs with (to run more ``flask`` commands against it)
- ``browser`` -> the session's Playwright ``Browser``
- ``page_for(username, mobile=False, password=DEMO_PASSWORD, login=True)`` -> a ``Page`` in a new
  browser context (desktop 1280x900, or a 390x844 touch phone), signed in through the login form
- ``shot(page, name)`` -> saves a full-page PNG to ``test-artifacts/e2e/`` and returns its path
- ``sign_in(page, username, password=DEMO_PASSWORD)`` -> signs a page in through the login form
- ``browser_errors`` -> the JavaScript errors and failed-console messages seen by this test's pages

Every test under ``tests/e2e`` is marked ``e2e``. If Chromium (or the Playwright package) is
missing, every e2e test is skipped and the terminal summary says why.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

import pytest

from matcher import rules
from matcher.demo import DEMO_PASSWORD

ROOT = Path(__file__).resolve().parents[2]
E2E_DIR = Path(__file__).resolve().parent
ARTIFACTS = ROOT / "test-artifacts" / "e2e"
# Debian's Chromium; E2E_CHROMIUM points elsewhere (a browser download does not work on CI machines).
CHROMIUM = os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
DESKTOP = {"viewport": {"width": 1280, "height": 900}}
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True,
         "device_scale_factor": 2}
SERVER_START_TIMEOUT = 30.0
NAVIGATION_TIMEOUT_MS = 15_000

_skip_reason: dict[str, str] = {}


# -- marking and skipping ------------------------------------------------------------------------

def _in_e2e(item: pytest.Item) -> bool:
    return E2E_DIR in Path(str(item.path)).resolve().parents


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test under tests/e2e as `e2e` (this hook sees the whole session's items)."""
    for item in items:
        if _in_e2e(item):
            item.add_marker(pytest.mark.e2e)


def _missing_requirement() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        return f"Chromium not installed at {CHROMIUM}: browser tests skipped"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as exc:
        return f"the Playwright package is not installed ({exc}): browser tests skipped"
    return None


@pytest.fixture(scope="session", autouse=True)
def _e2e_requirements() -> None:
    """Skip every e2e test, with a plain message, when Chromium or Playwright is missing."""
    reason = _missing_requirement()
    if reason:
        _skip_reason["e2e"] = reason
        pytest.skip(reason)


def pytest_terminal_summary(terminalreporter) -> None:
    for reason in _skip_reason.values():
        terminalreporter.write_line(f"NOTE: {reason}", yellow=True, bold=True)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    """Keep each phase's report on the item, so fixtures can tell whether the test failed."""
    report = yield
    setattr(item, f"_e2e_report_{report.when}", report)
    return report


# -- the server ----------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run_flask(args: list[str], env: dict[str, str], log: Path) -> None:
    """Run `python -m flask --app wsgi <args>` in the repository; fail the session with its output."""
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", *args], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    with log.open("a", encoding="utf-8") as out:
        out.write(f"$ flask {' '.join(args)}\n{result.stdout}{result.stderr}\n")
    if result.returncode != 0:
        pytest.fail(f"flask {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}",
                    pytrace=False)


def _wait_healthy(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"gunicorn exited with {process.returncode} before answering; see {log}", pytrace=False)
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    pytest.fail(f"gunicorn did not answer 200 on {url} within {SERVER_START_TIMEOUT:.0f} s; see {log}",
                pytrace=False)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """test-artifacts/e2e/ at the repository root, emptied of the previous run's screenshots."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("*.png"):
        old.unlink()
    return ARTIFACTS


@pytest.fixture(scope="session")
def demo_week() -> date:
    """The Monday of the demo week: the coming week (the one the dashboard shows by default)."""
    return rules.week_monday(date.today()) + timedelta(days=7)


@pytest.fixture(scope="session")
def instance_path(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("e2e-instance")


def clean_environment(instance_path: Path, **settings: str) -> dict[str, str]:
    """This process's environment without any Linli setting, plus a server's own: its instance folder,
    plain-HTTP cookies, no login rate limit, and `settings` (e.g. LINLI_SMS_GATEWAY_URL)."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("LINLI_") and key not in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY")}
    env.update({
        "LINLI_INSTANCE_PATH": str(instance_path),
        "LINLI_SESSION_COOKIE_SECURE": "false",
        "LINLI_REMEMBER_COOKIE_SECURE": "false",
        "LINLI_RATELIMIT_ENABLED": "false",
        "PYTHONUNBUFFERED": "1",
        **settings,
    })
    return env


@contextmanager
def gunicorn_server(env: dict[str, str], port: int, log: Path) -> Iterator[str]:
    """gunicorn (2 workers, gunicorn.conf.py) on 127.0.0.1:`port` with `env`, its log appended to `log`;
    yields its URL once /healthz answers, stops it after."""
    url = f"http://127.0.0.1:{port}"
    with log.open("a", encoding="utf-8") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}",
             "--workers", "2", "wsgi:app"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        _wait_healthy(url + "/healthz", process, log)
        yield url
    finally:
        _stop(process)


@pytest.fixture(scope="session")
def server_env(instance_path: Path) -> dict[str, str]:
    """The environment of the server and of every `flask` command run against its database."""
    return clean_environment(instance_path)


@pytest.fixture(scope="session")
def base_url(server_env: dict[str, str], demo_week: date, artifacts_dir: Path) -> Iterator[str]:
    """Migrate a fresh database, load the demo district, serve it with gunicorn; yields its URL."""
    log = artifacts_dir / "gunicorn.log"
    log.write_text("")
    _run_flask(["db", "upgrade"], server_env, log)
    _run_flask(["demo", "load", "--week", demo_week.isoformat()], server_env, log)
    with gunicorn_server(server_env, _free_port(), log) as url:
        yield url


# -- the browser ---------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def _playwright() -> Iterator[object]:
    """The one sync Playwright driver of the session."""
    from playwright.sync_api import sync_playwright

    driver = sync_playwright().start()
    try:
        yield driver
    finally:
        driver.stop()


@pytest.fixture(scope="session")
def browser(_playwright):
    """Debian's Chromium, headless; shared by every test (each test gets its own contexts)."""
    chromium = _playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    try:
        yield chromium
    finally:
        chromium.close()


@pytest.fixture
def browser_errors() -> list[str]:
    """What went wrong in this test's pages besides the page itself: JavaScript errors, console
    errors (e.g. CSP violations) and sub-resources answering >= 400 (except /favicon.ico)."""
    return []


def _sign_in(page, base_url: str, username: str, password: str = DEMO_PASSWORD) -> None:
    """Sign in through the login form and wait for the dashboard."""
    page.goto(base_url + "/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    with page.expect_navigation():
        page.click("button[type=submit].primary")
    page.wait_for_load_state()
    if not page.url.split("?")[0].endswith("/dashboard"):
        raise AssertionError(f"login as {username!r} did not reach the dashboard (at {page.url})")


@pytest.fixture
def sign_in(base_url: str) -> Callable[..., None]:
    """sign_in(page, username, password=DEMO_PASSWORD): sign a page in through the login form."""

    def run(page, username: str, password: str = DEMO_PASSWORD) -> None:
        _sign_in(page, base_url, username, password)

    return run


@pytest.fixture
def page_for(request, base_url: str, browser, browser_errors: list[str]) -> Iterator[Callable[..., object]]:
    """page_for(username, mobile=False, password=DEMO_PASSWORD, login=True) -> a signed-in Page.

    Each call opens a new browser context (its own cookies): a 1280x900 desktop, or with
    `mobile=True` a 390x844 touch phone. Pass `login=False` for a signed-out page on the login
    form. Contexts close when the test ends; if the test failed, each open page is screenshot
    first as `<test>--FAILED-<n>.png`.
    """
    contexts = []

    def open_page(username: str | None = None, mobile: bool = False, password: str = DEMO_PASSWORD,
                  login: bool = True):
        context = browser.new_context(base_url=base_url, locale="zh-CN", timezone_id="Asia/Shanghai",
                                      **(PHONE if mobile else DESKTOP))
        context.set_default_timeout(NAVIGATION_TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda exc: browser_errors.append(f"{page.url}: page error: {exc}"))
        page.on("console", lambda msg: _console_error(page, msg, browser_errors))
        page.on("response", lambda response: _failed_subresource(page, response, browser_errors))
        if login and username:
            _sign_in(page, base_url, username, password)
        elif not login:
            page.goto(base_url + "/login")
        return page

    yield open_page
    failed = getattr(request.node, "_e2e_report_call", None)
    if failed is not None and failed.failed:
        for n, context in enumerate(contexts):
            for page in context.pages:
                try:
                    page.screenshot(path=str(ARTIFACTS / f"{_slug(request.node.name)}--FAILED-{n}.png"),
                                    full_page=True)
                except Exception:  # the page may be gone; the failure itself is what matters
                    pass
    for context in contexts:
        context.close()


def _console_error(page, message, errors: list[str]) -> None:
    # "Failed to load resource" lines carry no URL; _failed_subresource reports those with theirs.
    if message.type == "error" and not message.text.startswith("Failed to load resource"):
        errors.append(f"{page.url}: console error: {message.text}")


def _failed_subresource(page, response, errors: list[str]) -> None:
    """A stylesheet, script, image or XHR answering >= 400 (pages themselves are the tests' business)."""
    if response.status >= 400 and response.request.resource_type != "document" \
            and not response.url.endswith("/favicon.ico"):
        errors.append(f"{page.url}: {response.request.resource_type} {response.url} answered {response.status}")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:80]


@pytest.fixture
def shot(request, artifacts_dir: Path) -> Callable[[object, str], Path]:
    """shot(page, name) -> Path: a full-page PNG `<test>-<nn>-<name>.png` in test-artifacts/e2e/."""
    counter = iter(range(1, 1000))
    prefix = _slug(request.node.name)

    def take(page, name: str) -> Path:
        page.wait_for_load_state()
        path = artifacts_dir / f"{prefix}-{next(counter):02d}-{_slug(name)}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
