"""The command line via subprocess: exit codes 0/1/2, messages on stderr, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "solver", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


@pytest.fixture
def files(tmp_path, make_instance, make_volunteer, make_demand):
    good = make_instance([make_volunteer()], [make_demand()])
    infeasible = make_instance([make_volunteer()], [make_demand(skills=["legal"])],
                               pinned=[{"demand": "d1", "volunteer": "v1"}])
    paths = {}
    for name, doc in {"good": good, "infeasible": infeasible}.items():
        paths[name] = tmp_path / f"{name}.json"
        paths[name].write_text(json.dumps(doc))
    paths["broken"] = tmp_path / "broken.json"
    paths["broken"].write_text("{not json")
    paths["dir"] = tmp_path
    return paths


def test_cli_solve_feasible_exits_0_and_writes_solution(files):
    out = files["dir"] / "sol.json"
    result = run("solve", str(files["good"]), "--time-limit", "5", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert json.loads(out.read_text())["status"] == "OPTIMAL"


def test_cli_solve_to_stdout(files):
    result = run("solve", str(files["good"]), "--time-limit", "5")
    assert result.returncode == 0
    assert json.loads(result.stdout)["schema"] == "linli.solution/1"


def test_cli_solve_infeasible_pins_exit_1(files):
    result = run("solve", str(files["infeasible"]), "--time-limit", "5")
    assert result.returncode == 1
    assert "rule 1" in result.stderr and "Traceback" not in result.stderr


def test_cli_solve_invalid_input_exits_2_and_still_writes_solution(files):
    out = files["dir"] / "bad.sol.json"
    result = run("solve", str(files["broken"]), "-o", str(out))
    assert result.returncode == 2
    assert "not valid JSON" in result.stderr and "Traceback" not in result.stderr
    assert json.loads(out.read_text())["status"] == "INVALID_INPUT"


def test_cli_solve_missing_file_exits_2(files):
    result = run("solve", str(files["dir"] / "nope.json"))
    assert result.returncode == 2 and "cannot read" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("args", [[], ["solve"], ["solve", "x.json", "--time-limit", "-3"],
                                  ["solve", "x.json", "--workers", "zero"], ["frobnicate"]])
def test_cli_usage_errors_exit_2(args):
    result = run(*args)
    assert result.returncode == 2 and "usage" in result.stderr and "Traceback" not in result.stderr


def test_cli_validate_valid_solution_exits_0(files):
    out = files["dir"] / "sol.json"
    run("solve", str(files["good"]), "--time-limit", "5", "-o", str(out))
    result = run("validate", str(files["good"]), str(out))
    assert result.returncode == 0
    assert "score: 150.0000" in result.stdout and "violations: 0" in result.stdout


def test_cli_validate_violations_exit_1_one_per_line(files):
    bad = files["dir"] / "bad.json"
    bad.write_text(json.dumps({"assignments": [{"demand": "d1", "volunteer": "v1"},
                                               {"demand": "d1", "volunteer": "v1"}], "objective": 5}))
    result = run("validate", str(files["good"]), str(bad))
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0] == "rule 12 (duplicate pair): demand 'd1', volunteer 'v1'"
    assert lines[1].startswith("objective: claimed 5")


def test_cli_validate_unreadable_solution_exits_2(files):
    result = run("validate", str(files["good"]), str(files["broken"]))
    assert result.returncode == 2 and "Traceback" not in result.stderr


def test_cli_generate_writes_a_valid_township(files):
    out = files["dir"] / "t.json"
    result = run("generate", "--preset", "township", "--seed", "3", "-o", str(out))
    assert result.returncode == 0
    doc = json.loads(out.read_text())
    assert len(doc["volunteers"]) == 500 and len(doc["demands"]) == 150
