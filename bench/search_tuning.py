"""Measuring harness for `solver/search.py` (issue 15): the part search against today's CP-SAT step.

    .venv/bin/python bench/search_tuning.py command --limits 3 --variants today,search --repeat 2
    .venv/bin/python bench/search_tuning.py command --limits 120 --variants search
    .venv/bin/python bench/search_tuning.py step --seconds 1.0 --variants today,search,search_w2 --repeat 2
    .venv/bin/python bench/search_tuning.py report            # tables from every result so far

Two kinds of runs, one solve at a time (the machine is shared):

- `command`: the whole `python -m solver solve INSTANCE --time-limit T -o OUT` in a child process, start-up
  included (the CLI counts the process's age against the limit). Variant `search` has the pipeline's
  search step call `search.search_part`, variant `today` the CP-SAT step as it was before it
  (`add_schedule_hint` + `model.solve_part_model`) with the same hint, seconds and workers; whichever the
  pipeline does not do itself is patched in inside the child (no file of the pipeline is touched). Each
  solution is checked by the referee (`validate_solution`).
- `step`: in this process, the pipeline's steps up to the warm start (model, GLOP LP, LP-guided rounding,
  the better of it and the greedy), then only the search step for a fixed number of seconds: today's
  `solve_part_model`, CP-SAT with other parameters (`cp_*` variants), or `search_part` with other
  `SearchSettings` (`search_*` variants). Instances must be one part (townships, districts).

Instances (`--instances`, generated into bench/out/search/ once): `township-S` and `district-S` are the
presets of seed S, a `-shaped` suffix adds the shapes teams, cross_area, either_or, familiar and scarce.
Results are appended as JSON lines to bench/out/search/results.jsonl; `report` prints markdown tables from
them (median score per instance × variant × seconds, and how far each is below the best score seen for the
instance in any run).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "search"
RESULTS = OUT / "results.jsonl"
SHAPES = "teams,cross_area,either_or,familiar,scarce"
DEFAULT_INSTANCES = ["township-1", "township-2", "township-3",
                     "township-1-shaped", "township-2-shaped", "township-3-shaped"]
sys.path.insert(0, str(ROOT))

# CP-SAT parameters on top of today's (2 workers, seed 1, one presolve round below 10 s), for `step`.
CP_VARIANTS = {
    "cp_w1": {"num_workers": 1},
    "cp_w4": {"num_workers": 4},
    "cp_w8": {"num_workers": 8},
    "cp_w16": {"num_workers": 16},
    "cp_lin0": {"linearization_level": 0},
    "cp_lin2": {"linearization_level": 2},
    "cp_sym0": {"symmetry_level": 0},
    "cp_presolve3": {"max_presolve_iterations": 3},
    "cp_lns_only": {"use_lns_only": True},
    "cp_repair_hint": {"repair_hint": True},
    "cp_poff": {"cp_model_presolve": False},
    "cp_poff_w1": {"cp_model_presolve": False, "num_workers": 1},
    "cp_poff_w8": {"cp_model_presolve": False, "num_workers": 8},
}
# SearchSettings overrides, for `step` (`search` alone is the defaults).
SEARCH_VARIANTS = {
    "search": {},
    "search_w2": {"full_workers": 2},
    "search_hint": {"whole_hint": True},
    "search_presolve": {"presolve": True},
    "search_lazy_lp": {"lazy_lp": True},
    "search_no_lns": {"lns": False},
    "search_lns_always": {"lns_min_pairs": 0, "lns_stall_min": 0.0, "lns_stall": 0.0},
    "lns_alone": {"whole": False, "lns_min_pairs": 0},
    "lns_alone_presolve": {"whole": False, "lns_min_pairs": 0, "lns_presolve": True},
}


def instance_path(name: str) -> Path:
    """The instance file for a name like `township-2-shaped`, generated on first use."""
    path = OUT / f"{name}.json"
    if not path.exists():
        from solver.generate import generate_instance

        preset, seed, *rest = name.split("-")
        doc = generate_instance(preset, int(seed), SHAPES if rest == ["shaped"] else ())
        OUT.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def record(row: dict) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(row) + "\n")
    print(json.dumps(row), flush=True)


# ---------------------------------------------------------------- whole command


def patch_pipeline(variant: str) -> None:
    """Make the pipeline's search step the variant's (in this process only): `today` is
    `add_schedule_hint` + `model.solve_part_model`, `search` is `search.search_part`. Works before the
    pipeline called `search_part` (then `search` is patched in) and after (then `today` is)."""
    from solver import pipeline
    from solver.model import add_schedule_hint, solve_part_model
    from solver.search import search_part

    def today_step(pm, inst, cands, hint, time_limit, workers, report=None):
        add_schedule_hint(pm, inst, cands, hint)
        return solve_part_model(pm, inst, cands, time_limit, workers, report)

    if hasattr(pipeline, "search_part"):
        if variant == "today":
            pipeline.search_part = today_step
        return
    if not hasattr(pipeline, "solve_part_model") or not hasattr(pipeline, "add_schedule_hint"):
        raise SystemExit("pipeline calls neither search_part nor solve_part_model: update the patch")
    if variant == "today":
        return
    hints: dict[int, object] = {}
    remember = pipeline.add_schedule_hint

    def remember_hint(pm, inst, cands, schedule):
        hints[id(pm)] = schedule
        remember(pm, inst, cands, schedule)

    def search_step(pm, inst, cands, time_limit, workers, on_progress=None):
        return search_part(pm, inst, cands, hints.pop(id(pm)), time_limit, workers, on_progress)

    pipeline.add_schedule_hint = remember_hint
    pipeline.solve_part_model = search_step


def child(variant: str, instance: str, limit: str, out: str) -> int:
    """One whole command in this (fresh) process: `python -m solver solve` with the variant's step."""
    patch_pipeline(variant)
    from solver.cli import main

    return main(["solve", instance, "--time-limit", limit, "-o", out])


def run_command(name: str, variant: str, limit: float, repeat: int) -> None:
    from solver.instance import parse_instance
    from solver.validation import validate_solution

    path = instance_path(name)
    inst = parse_instance(path.read_text(encoding="utf-8"))
    out = OUT / f"{name}.{variant}.{limit:g}.solution.json"
    started = time.monotonic()
    code = subprocess.run([sys.executable, __file__, "child", variant, str(path), str(limit), str(out)],
                          cwd=ROOT, check=False).returncode
    wall = time.monotonic() - started
    solution = json.loads(out.read_text(encoding="utf-8"))
    violations, score = validate_solution(inst, solution)
    stats = solution.get("stats", {})
    record({"kind": "command", "instance": name, "variant": variant, "seconds": limit, "repeat": repeat,
            "score": round(score, 4), "bound": solution.get("bound"), "status": solution.get("status"),
            "violations": len(violations), "wall": round(wall, 3), "exit": code,
            "parts": [{k: r.get(k) for k in ("pairs", "status", "seconds", "cp_sat")}
                      for r in stats.get("part_results", [])],
            "load": round(os.getloadavg()[0], 2)})


# ---------------------------------------------------------------- the search step alone


def prepare(name: str):
    """The pipeline's steps up to the warm start for a one-part instance (as `pipeline.solve_part`)."""
    import numpy as np

    from solver import pipeline
    from solver.candidates import build_candidates
    from solver.decomposition import plan_parts
    from solver.greedy import build_greedy
    from solver.instance import parse_instance
    from solver.model import SCALE, build_part_model
    from solver.relaxation import lp_bound

    inst = parse_instance(instance_path(name).read_text(encoding="utf-8"))
    cands = build_candidates(inst)
    greedy = build_greedy(inst, cands)
    parts, _ = plan_parts(inst, cands, pipeline.MAX_PART_PAIRS, min(pipeline.REGION_PAIRS, pipeline.MAX_PART_PAIRS))
    if len(parts) != 1:
        raise SystemExit(f"{name}: {len(parts)} parts; `step` needs a one-part instance")
    positions = parts[0].positions
    pm = build_part_model(inst, cands, positions)
    lp, values = lp_bound(pm.model, 30.0)
    hint = greedy
    if values is not None:
        guided = [(int(cands.demand[p]), int(cands.volunteer[p])) for p, x in pm.x.items() if values[x.index] > 0.5]
        rounded = build_greedy(inst, cands, positions=positions, seed=guided)
        hint = pipeline._better(inst, greedy, rounded, positions, cands)
    return inst, cands, np.asarray(positions), pm, hint, (lp / SCALE if lp is not None else None)


def run_step(name: str, variant: str, seconds: float, workers: int, repeat: int) -> None:
    from ortools.sat.python import cp_model

    from solver.model import SCALE, add_schedule_hint, solve_part_model
    from solver.search import SearchSettings, search_part
    from solver.validation import check_schedule, score_pairs

    inst, cands, positions, pm, hint, lp = prepare(name)
    trace: list = []
    started = time.monotonic()
    if variant == "today":
        add_schedule_hint(pm, inst, cands, hint)
        result = solve_part_model(pm, inst, cands, seconds, workers)
    elif variant in CP_VARIANTS:
        add_schedule_hint(pm, inst, cands, hint)
        solver = cp_model.CpSolver()
        p = solver.parameters
        p.max_time_in_seconds, p.num_workers, p.random_seed = seconds, workers, 1
        if seconds < 10:
            p.max_presolve_iterations = 1
        for key, value in CP_VARIANTS[variant].items():
            setattr(p, key, value)
        status = solver.solve(pm.model)
        chosen = [p for p, x in pm.x.items() if solver.boolean_value(x)]
        responsible = {di: o for di, c in pm.responsible.items() for o, r in c.items() if solver.boolean_value(r)}
        result = type("R", (), {"positions": chosen, "responsible": responsible, "status": solver.status_name(status),
                                "bound": solver.best_objective_bound / SCALE})
    else:
        settings = SearchSettings(**SEARCH_VARIANTS[variant], trace=trace)
        result = search_part(pm, inst, cands, hint, seconds, workers, settings=settings)
    elapsed = time.monotonic() - started
    pairs = [(inst.demands[int(cands.demand[p])].id, inst.volunteers[int(cands.volunteer[p])].id)
             for p in result.positions]
    staffed = {d for d, _ in pairs}
    responsible = [{"demand": inst.demands[di].id, "organization": o}
                   for di, o in result.responsible.items() if inst.demands[di].id in staffed]
    violations = check_schedule(inst, pairs, responsible)
    hint_score = score_pairs(inst, [(inst.demands[d].id, inst.volunteers[v].id) for d, v in hint.pairs])
    record({"kind": "step", "instance": name, "variant": variant, "seconds": seconds, "workers": workers,
            "repeat": repeat, "score": round(score_pairs(inst, pairs), 4), "hint": round(hint_score, 4),
            "lp": round(lp, 4) if lp is not None else None, "status": result.status,
            "bound": round(result.bound, 4) if result.bound is not None else None,
            "violations": len(violations), "elapsed": round(elapsed, 3), "pairs": len(positions),
            "trace": [(t, round(o, 2), s) for t, o, s in trace][-40:],
            "load": round(os.getloadavg()[0], 2)})


# ---------------------------------------------------------------- report


def _rows_and_best() -> tuple[list[dict], dict[str, float]]:
    rows = [json.loads(line) for line in RESULTS.read_text(encoding="utf-8").splitlines() if line.strip()]
    best: dict[str, float] = {}
    for r in rows:
        if not r["violations"]:
            best[r["instance"]] = max(best.get(r["instance"], -1e18), r["score"])
    return rows, best


def summary(kind: str, instances: str) -> str:
    """Markdown: per variant and seconds over the instances whose name starts with `instances`: the mean
    and worst distance below the best score seen, parts proved optimal, and median seconds used."""
    rows, best = _rows_and_best()
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        if r["kind"] == kind and r["instance"].startswith(instances):
            groups.setdefault((r["seconds"], r["variant"]), []).append(r)
    lines = ["| seconds | variant | runs | instances | mean below best | worst below best | proved optimal "
             "| median seconds used |", "|---:|---|---:|---:|---:|---:|---:|---:|"]
    for (seconds, variant), rs in sorted(groups.items(), key=lambda kv: (kv[0][0], _mean_below(kv[1], best))):
        below = [100.0 * (best[r["instance"]] - r["score"]) / abs(best[r["instance"]]) for r in rs]
        proved = sum(_proved(r) for r in rs)
        used = statistics.median(r["elapsed"] if kind == "step" else r["wall"] for r in rs)
        lines.append(f"| {seconds:g} | {variant} | {len(rs)} | {len({r['instance'] for r in rs})} "
                     f"| {statistics.mean(below):.3f}% | {max(below):.3f}% | {proved}/{len(rs)} | {used:.2f} |")
    return "\n".join(lines)


def _mean_below(rs: list[dict], best: dict[str, float]) -> float:
    return statistics.mean((best[r["instance"]] - r["score"]) / abs(best[r["instance"]]) for r in rs)


def _proved(r: dict) -> bool:
    if r["kind"] == "step":
        return r["status"] == "OPTIMAL"
    return bool(r["parts"]) and all(part["status"] == "OPTIMAL" for part in r["parts"])


def report(kind: str) -> str:
    """Markdown: per instance, per variant and seconds, the median score (n runs, min–max) and how far it
    is below the best score seen for the instance in any run of any kind."""
    rows, best = _rows_and_best()
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        if r["kind"] == kind:
            groups.setdefault((r["instance"], r["seconds"], r["variant"]), []).append(r)
    lines = ["| instance | seconds | variant | runs | median score | min–max | below best | proved optimal | violations |",
             "|---|---:|---|---:|---:|---|---:|---:|---:|"]
    for (name, seconds, variant), rs in sorted(groups.items()):
        scores = [r["score"] for r in rs]
        med = statistics.median(scores)
        below = 100.0 * (best[name] - med) / abs(best[name])
        proved = sum(_proved(r) for r in rs)
        lines.append(f"| {name} | {seconds:g} | {variant} | {len(rs)} | {med:.2f} | {min(scores):.2f}–{max(scores):.2f}"
                     f" | {below:.3f}% | {proved}/{len(rs)} | {sum(r['violations'] for r in rs)} |")
    lines.append("")
    lines.append("Best score seen per instance (any run): "
                 + ", ".join(f"{k} {v:.2f}" for k, v in sorted(best.items())))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "child":
        return child(*args[1:5])
    parser = argparse.ArgumentParser(prog="search_tuning.py")
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("command")
    p.add_argument("--limits", default="3")
    p.add_argument("--variants", default="today,search")
    p.add_argument("--instances", default=",".join(DEFAULT_INSTANCES))
    p.add_argument("--repeat", type=int, default=1)
    p = sub.add_parser("step")
    p.add_argument("--seconds", type=float, default=1.0)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--variants", default="today,search")
    p.add_argument("--instances", default=",".join(DEFAULT_INSTANCES))
    p.add_argument("--repeat", type=int, default=1)
    p = sub.add_parser("report")
    p.add_argument("--kind", default="command", choices=["command", "step"])
    p.add_argument("--summary", metavar="PREFIX", help="one row per variant over instances named PREFIX...")
    a = parser.parse_args(args)
    if a.what == "report":
        print(summary(a.kind, a.summary) if a.summary is not None else report(a.kind))
        return 0
    for repeat in range(a.repeat):
        for name in a.instances.split(","):
            for variant in a.variants.split(","):
                if a.what == "command":
                    for limit in a.limits.split(","):
                        run_command(name, variant, float(limit), repeat)
                else:
                    run_step(name, variant, a.seconds, a.workers, repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
