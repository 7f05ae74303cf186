"""Dependencies point one way: web → matcher → solver. Nothing points back."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = {
    "solver": {"flask", "flask_sqlalchemy", "sqlalchemy", "matcher", "web"},
    "matcher": {"web"},
}


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_point_one_way(package):
    files = list((ROOT / package).rglob("*.py"))
    assert files, f"{package}/ has no modules"
    bad = {str(f.relative_to(ROOT)): sorted(imported_roots(f) & FORBIDDEN[package]) for f in files}
    assert {f: b for f, b in bad.items() if b} == {}


def imported_names(path: Path) -> set[str]:
    """Every `module.name` a file imports with `from module import name` (absolute imports only)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return {f"{node.module}.{alias.name}" for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
            for alias in node.names}


# The domain writes no URLs and knows no request: links are endpoint names the web layer resolves.
REQUEST_BOUND = {"flask.request", "flask.session", "flask.url_for", "flask.g", "flask.redirect",
                 "flask.abort", "flask_login.current_user"}
# The only module of matcher/ that reads the running app (its configuration and logger).
APP_READER = "matcher/settings.py"


def test_matcher_knows_no_request_and_writes_no_urls():
    bad = {str(f.relative_to(ROOT)): sorted(imported_names(f) & REQUEST_BOUND)
           for f in (ROOT / "matcher").rglob("*.py")}
    assert {f: b for f, b in bad.items() if b} == {}


def test_only_settings_reads_the_running_app():
    readers = {str(f.relative_to(ROOT)) for f in (ROOT / "matcher").rglob("*.py")
               if imported_names(f) & {"flask.current_app", "flask.has_app_context", "flask.g"}}
    assert readers <= {APP_READER}


# A use case lives in the module named after the row it changes; no module gathers one actor's cases.
ACTORS = {"service", "community", "worker", "coordinator", "leader", "volunteer_side", "operations",
          "scheduling", "admin", "resident_side"}


def test_no_domain_module_is_named_after_an_actor():
    names = {f.stem for f in (ROOT / "matcher").rglob("*.py")}
    assert names & ACTORS == set()
