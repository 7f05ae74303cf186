"""The generator's shapes: each parses, changes what it claims, is deterministic by seed, and solves;
without shapes the preset's instance is exactly what it always was."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections import Counter
from itertools import pairwise
from pathlib import Path

import pytest

from solver import parse_instance, solve, validate_solution
from solver.candidates import build_candidates
from solver.decomposition import find_components
from solver.generate import SHAPES, generate_instance, parse_shapes

ROOT = Path(__file__).resolve().parents[2]
# sha256 of the preset township seed 1 as the CLI writes it (without the final newline), before shapes.
TOWNSHIP_1_SHA256 = "507e9c8eee6ac73842f5efa2fb45090c3cfbf6333d119cdc6ce718ba0e540419"

_cache: dict[tuple, tuple] = {}


def built(preset: str, shapes: str = "", seed: int = 1) -> tuple[dict, object, object]:
    """(document, parsed instance, candidates), generated once per test session."""
    key = (preset, shapes, seed)
    if key not in _cache:
        doc = generate_instance(preset, seed, shapes)
        inst = parse_instance(doc)
        _cache[key] = (doc, inst, build_candidates(inst))
    return _cache[key]


def share(items, test) -> float:
    items = list(items)
    return sum(1 for x in items if test(x)) / len(items)


def test_without_shapes_the_output_is_the_presets_byte_for_byte():
    doc = generate_instance("township", 1)
    text = json.dumps(doc, ensure_ascii=False, indent=1)
    assert hashlib.sha256(text.encode()).hexdigest() == TOWNSHIP_1_SHA256
    assert generate_instance("township", 1, ()) == generate_instance("township", 1, "") == doc


@pytest.mark.parametrize("shape", SHAPES)
def test_each_shape_parses_is_deterministic_and_named(shape):
    doc, inst, cands = built("township", shape)
    assert doc == generate_instance("township", 1, [shape])
    assert doc != generate_instance("township", 2, shape)
    assert doc["name"] == f"township seed 1 shape {shape}"
    assert len(inst.demands) == 150 and len(cands) > 0


def test_parse_shapes_orders_and_rejects():
    assert parse_shapes("scarce, teams") == ("teams", "scarce")
    with pytest.raises(ValueError, match="unknown shape 'tems'"):
        parse_shapes("tems")
    with pytest.raises(ValueError, match="contradict"):
        parse_shapes(["long_travel", "small_areas"])


def test_teams_dispatches_many_demands_to_one_organization():
    plain, _, _ = built("township")
    doc, inst, _ = built("township", "teams")
    one_org = share(doc["demands"], lambda d: d.get("one_organization"))
    assert one_org > 0.3 > 2 * share(plain["demands"], lambda d: d.get("one_organization"))
    teams = [d for d in inst.demands if d.one_organization and d.people > 1]
    assert all(2 <= d.min_people <= min(3, d.people) and d.people <= 6 for d in teams if d.min_people > 1)
    assert any(d.organizations for d in teams)
    counts = Counter(len(v.organizations) for v in inst.volunteers)
    assert set(counts) <= {1, 2, 3} and counts[2] + counts[3] > counts[1]
    wide = {o for v in inst.volunteers for o in v.organizations if "_w" in o}
    assert len(wide) > 5


def test_cross_area_commitments_eat_time_and_remove_pairs():
    _, _, plain = built("township")
    doc, inst, cands = built("township", "cross_area")
    assert 0.3 <= share(doc["volunteers"], lambda v: v.get("commitments")) <= 0.55
    for v in inst.volunteers:
        items = sorted(v.commitments, key=lambda c: c.start)
        assert len(items) <= 5
        assert all(a.end <= b.start for a, b in pairwise(items))
        assert all(any(w[0] <= c.start and c.end <= w[1] for w in v.windows) for c in items)
    assert sum(cands.removed_busy.values()) > 5 * max(1, sum(plain.removed_busy.values()))
    assert len(cands) < len(plain)


def test_either_or_skills_are_common():
    doc, _, _ = built("township", "either_or")
    assert share(doc["demands"], lambda d: d.get("skills_any")) > 0.4
    assert share(doc["demands"], lambda d: d.get("skills_any") and d.get("skills")) > 0.1
    assert all(2 <= len(d["skills_any"]) <= 3 for d in doc["demands"] if d.get("skills_any"))


def test_long_travel_gives_more_pairs_per_demand():
    _, _, plain = built("township")
    doc, _, cands = built("township", "long_travel")
    assert len(cands) > 3 * len(plain)
    assert all(15 <= v["max_travel_km"] <= 40 for v in doc["volunteers"])


def test_familiar_residents_have_several_visits_and_known_volunteers():
    doc, _, _ = built("township", "familiar")
    visits = Counter(d["resident"] for d in doc["demands"] if d["category"] == "elderly_care")
    assert share(visits.values(), lambda n: n >= 2) > 0.9 and max(visits.values()) <= 5
    known = Counter(f["resident"] for f in doc["familiar"])
    assert share(visits, lambda r: known[r] >= 2) > 0.6
    assert "previous" not in doc


def test_scarce_halves_the_volunteers_and_raises_urgency():
    plain, _, _ = built("township")
    doc, _, _ = built("township", "scarce")
    assert 0.4 < len(doc["volunteers"]) / len(plain["volunteers"]) < 0.6
    assert len(doc["demands"]) == len(plain["demands"])

    def pressing(d):
        return d.get("priority") in ("urgent", "high")
    assert share(doc["demands"], pressing) > share(plain["demands"], pressing) + 0.05
    ids = {v["id"] for v in doc["volunteers"]}
    assert all(f["volunteer"] in ids for f in doc["familiar"])


def test_small_areas_make_many_small_components():
    _, plain_inst, plain = built("township")
    doc, inst, cands = built("township", "small_areas")
    assert len(find_components(inst, cands)) >= 3 * len(find_components(plain_inst, plain))
    assert all(v["max_travel_km"] <= 3 for v in doc["volunteers"])


def test_small_areas_district_has_no_dominant_component():
    _, inst, cands = built("district", "small_areas")
    components = find_components(inst, cands)
    assert len(components) >= 60
    assert max(len(c) for c in components) < 0.2 * len(cands)


@pytest.mark.parametrize("shapes", ["teams,cross_area,either_or,familiar,scarce", "long_travel", "small_areas"])
def test_shaped_townships_solve_to_valid_schedules(shapes):
    doc, _, _ = built("township", shapes)
    solution = solve(doc, time_limit=2, workers=1)
    assert solution["status"] in ("OPTIMAL", "FEASIBLE")
    violations, _ = validate_solution(doc, solution)
    assert violations == [] and solution["assignments"]


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "solver", "generate", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


def test_cli_generate_with_shapes(tmp_path):
    out = tmp_path / "t.json"
    result = cli("--preset", "township", "--seed", "2", "--shape", "teams,either_or", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert json.loads(out.read_text()) == generate_instance("township", 2, ("teams", "either_or"))


@pytest.mark.parametrize("shape", ["bogus", "teams,bogus", "long_travel,small_areas"])
def test_cli_generate_rejects_a_bad_shape_with_usage_error(shape, tmp_path):
    result = cli("--preset", "township", "--shape", shape, "-o", str(tmp_path / "x.json"))
    assert result.returncode == 2
    assert "--shape" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "x.json").exists()
