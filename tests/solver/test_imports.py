"""The solver speaks plain data: it never imports the web app, the domain layer or an ORM."""

from __future__ import annotations

import ast
from pathlib import Path

SOLVER = Path(__file__).resolve().parents[2] / "solver"
FORBIDDEN = {"flask", "flask_sqlalchemy", "flask_login", "sqlalchemy", "matcher", "web"}


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_imports_solver_modules_use_no_web_or_orm():
    modules = sorted(SOLVER.glob("*.py"))
    assert len(modules) >= 10
    bad = {m.name: sorted(imported_roots(m) & FORBIDDEN) for m in modules}
    assert {name: roots for name, roots in bad.items() if roots} == {}


def test_imports_checker_catches_a_forbidden_import(tmp_path):
    sample = tmp_path / "x.py"
    sample.write_text("from flask import Flask\nimport sqlalchemy.orm\n")
    assert imported_roots(sample) & FORBIDDEN == {"flask", "sqlalchemy"}
