"""The load test's pages are the app's real routes (bench/load/): no load, no network, no locust needed."""

import ast
import sys
from pathlib import Path

import pytest
from werkzeug.exceptions import MethodNotAllowed, NotFound

from web import create_app

ROOT = Path(__file__).resolve().parent.parent
LOCUSTFILE = ROOT / "bench" / "load" / "locustfile.py"
sys.path.insert(0, str(ROOT / "bench" / "load"))

import pages  # noqa: E402  (bench/load/pages.py)


@pytest.fixture(scope="module")
def url_map(tmp_path_factory):
    folder = tmp_path_factory.mktemp("load-harness")
    app = create_app({"TESTING": True, "SECRET_KEY": "test-secret", "SERVER_NAME": "localhost",
                      "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder / 'unused.sqlite'}"})
    return app.url_map


def _template(node: ast.expr) -> str | None:
    """A request path written in the locustfile, with every {placeholder} as the id 7."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "7" for v in node.values)
    return None


def _requests_in_locustfile() -> list[tuple[str, str | None]]:
    """(page key, path template) of every self.page(...) / self.post(...) call with a literal key."""
    found = []
    for node in ast.walk(ast.parse(LOCUSTFILE.read_text(encoding="utf-8"))):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("page", "post")
                and node.args and isinstance(node.args[0], ast.Constant)):
            found.append((node.args[0].value, _template(node.args[1]) if len(node.args) > 1 else None))
    return found


@pytest.mark.parametrize("key", sorted(pages.PAGES))
def test_every_load_page_is_a_route_of_the_app(url_map, key):
    method, rule, _group = pages.PAGES[key]
    rules = {r.rule: r.methods for r in url_map.iter_rules()}
    assert rule in rules, f"{key}: no route {rule}"
    assert method in rules[rule], f"{key}: {rule} does not answer {method}"


def test_every_path_the_locustfile_opens_matches_its_page_rule(url_map):
    adapter = url_map.bind("localhost")
    calls = _requests_in_locustfile()
    assert len(calls) >= 15
    for key, path in calls:
        assert key in pages.PAGES, f"the locustfile opens an unlisted page {key!r}"
        if path is None:
            continue
        method, rule, _group = pages.PAGES[key]
        try:
            matched, _args = adapter.match(path.split("?")[0], method=method, return_rule=True)
        except (NotFound, MethodNotAllowed) as exc:
            pytest.fail(f"{key}: {method} {path} is no route ({exc.__class__.__name__})")
        assert matched.rule == rule, f"{key}: {path} is {matched.rule}, reported as {rule}"


def test_every_listed_page_is_opened_and_named_by_its_rule():
    source = LOCUSTFILE.read_text(encoding="utf-8")
    constants = {n.value for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Constant)}
    assert set(pages.PAGES) <= constants, f"listed but never opened: {sorted(set(pages.PAGES) - constants)}"
    assert pages.name("schedule") == "GET /schedules/<int:schedule_id>"
    assert pages.name("schedule", street=True) == "GET /schedules/<int:schedule_id> [street]"
    assert pages.group_of(pages.name("schedule", street=True)) == "coordinator: schedule pages"
    assert pages.group_of("GET /nowhere") == "other"
