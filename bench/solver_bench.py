"""Benchmark the solver against the coordinator's greedy baseline and write bench/solver-report.md.

    .venv/bin/python bench/solver_bench.py                 # township ×3, district ×3, city ×1, repair
    .venv/bin/python bench/solver_bench.py --quick         # township ×1, district ×1, repair

Each solve runs as `python -m solver solve` in a subprocess (so wall time includes reading and building,
as the targets require) while the process tree's resident memory is sampled; progress lines give the
score-against-time plot. Generated instances go to bench/out/ (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
REPORT = ROOT / "bench" / "solver-report.md"
PLOT = ROOT / "bench" / "solver-score-vs-time.png"
sys.path.insert(0, str(ROOT))

from solver.candidates import build_candidates  # noqa: E402
from solver.generate import generate_instance  # noqa: E402
from solver.greedy import build_greedy  # noqa: E402
from solver.instance import parse_instance  # noqa: E402
from solver.validation import score_pairs, validate_solution  # noqa: E402

TIME_LIMITS = {"township": 3.0, "district": 30.0, "city": 120.0}
PRIORITIES = ("urgent", "high", "normal", "low")


def instance_path(preset: str, seed: int) -> Path:
    """Generate (once) and return the instance file for a preset and seed."""
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{preset}-{seed}.json"
    if not path.exists():
        path.write_text(json.dumps(generate_instance(preset, seed)))
    return path


def run_solver(path: Path, time_limit: float, out: Path, workers: int = 2) -> dict:
    """Run the CLI on an instance; return wall seconds, peak tree RSS (MB), progress events, exit code."""
    cmd = [sys.executable, "-m", "solver", "solve", str(path), "--time-limit", str(time_limit),
           "--workers", str(workers), "-o", str(out), "--progress"]
    started = time.monotonic()
    log = out.with_suffix(".progress.log")
    err = log.open("w")
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err, text=True)
    peak = 0
    ps = psutil.Process(proc.pid)
    while proc.poll() is None:
        try:
            tree = [ps, *ps.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.05)
    wall = time.monotonic() - started
    err.close()
    events = []
    for line in log.read_text().splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            pass
    return {"wall": wall, "peak_mb": peak / 2**20, "events": events, "code": proc.returncode}


def schedule_metrics(doc: dict, pairs: list[tuple[str, str]]) -> dict:
    """Filled positions by priority (filled / wanted) and total travel km of a schedule."""
    inst = parse_instance(doc)
    demands = {d.id: d for d in inst.demands}
    volunteers = {v.id: v for v in inst.volunteers}
    wanted, filled = defaultdict(int), defaultdict(int)
    for d in inst.demands:
        wanted[d.priority] += d.people
    km = 0.0
    from solver.validation import pair_km

    for did, vid in pairs:
        filled[demands[did].priority] += 1
        km += pair_km(inst, demands[did], volunteers[vid])
    return {"filled": {p: (filled[p], wanted[p]) for p in PRIORITIES}, "km": km}


def run_greedy(doc: dict) -> dict:
    """The coordinator's greedy baseline, timed in this process."""
    started = time.monotonic()
    inst = parse_instance(doc)
    cands = build_candidates(inst)
    schedule = build_greedy(inst, cands)
    pairs = [(inst.demands[d].id, inst.volunteers[v].id) for d, v in schedule.pairs]
    score = score_pairs(inst, pairs)
    return {"score": score, "pairs": pairs, "wall": time.monotonic() - started}


def bench_case(preset: str, seed: int) -> dict:
    """Solver and greedy on one generated instance."""
    path = instance_path(preset, seed)
    doc = json.loads(path.read_text())
    out = OUT / f"{preset}-{seed}.solution.json"
    run = run_solver(path, TIME_LIMITS[preset], out)
    solution = json.loads(out.read_text())
    violations, score = validate_solution(doc, solution)
    pairs = [(a["demand"], a["volunteer"]) for a in solution["assignments"]]
    greedy = run_greedy(doc)
    return {
        "preset": preset, "seed": seed, "limit": TIME_LIMITS[preset],
        "status": solution["status"], "score": score, "bound": solution["bound"],
        "violations": len(violations), "wall": run["wall"], "peak_mb": run["peak_mb"],
        "events": run["events"], "stats": solution["stats"],
        "metrics": schedule_metrics(doc, pairs),
        "greedy": greedy | {"metrics": schedule_metrics(doc, greedy["pairs"])},
    }


def bench_repair(seed: int = 1, share: float = 0.05) -> dict:
    """Decline 5% of a district schedule (forbidden), keep the rest as `previous` (weight 200), a third of
    it accepted (pinned), and re-solve in 5 seconds. A decline reopens its demand's team, so pairs on a
    demand with a decline are not among the accepted ones (pinning them can make the team impossible)."""
    import random

    path = instance_path("district", seed)
    doc = json.loads(path.read_text())
    published = OUT / f"district-{seed}.solution.json"
    if not published.exists():
        run_solver(path, TIME_LIMITS["district"], published)
    schedule = [(a["demand"], a["volunteer"]) for a in json.loads(published.read_text())["assignments"]]
    rng = random.Random(seed)
    declined = set(rng.sample(schedule, round(share * len(schedule))))
    rest = [p for p in schedule if p not in declined]
    reopened = {d for d, _ in declined}
    accepted = rng.sample([p for p in rest if p[0] not in reopened], len(rest) // 3)
    doc["previous"] = [{"demand": d, "volunteer": v} for d, v in schedule]
    doc["forbidden"] = [{"demand": d, "volunteer": v} for d, v in sorted(declined)]
    doc["pinned"] = [{"demand": d, "volunteer": v} for d, v in accepted]
    doc["weights"] = {"keep_previous": 200}
    repair_path = OUT / f"district-{seed}-repair.json"
    repair_path.write_text(json.dumps(doc))
    out = OUT / f"district-{seed}-repair.solution.json"
    run = run_solver(repair_path, 5.0, out)
    solution = json.loads(out.read_text())
    violations, _ = validate_solution(doc, solution)
    now = {(a["demand"], a["volunteer"]) for a in solution["assignments"]}
    kept = sum(p in now for p in rest)
    declined_demands = {d for d, _ in declined}
    refilled = sum(1 for d, v in now if d in declined_demands and (d, v) not in set(schedule))
    return {"wall": run["wall"], "peak_mb": run["peak_mb"], "status": solution["status"],
            "declined": len(declined), "rest": len(rest), "kept": kept, "kept_share": kept / len(rest),
            "refilled": refilled, "violations": len(violations), "assignments": len(now)}


# ---------------------------------------------------------------- report


def describe_lost_pairs(seed: int = 1) -> str:
    """Why each non-declined pair of the repair run was not kept, read from the files of that run."""
    doc = json.loads((OUT / f"district-{seed}-repair.json").read_text())
    solution = json.loads((OUT / f"district-{seed}-repair.solution.json").read_text())
    demands = {d["id"]: d for d in doc["demands"]}
    weight = {"urgent": 1000, "high": 400, "normal": 150, "low": 50}
    declined = {(p["demand"], p["volunteer"]) for p in doc["forbidden"]}
    reopened = {d for d, _ in declined}
    now = {(a["demand"], a["volunteer"]) for a in solution["assignments"]}
    lost = sorted((d, v) for d, v in ((p["demand"], p["volunteer"]) for p in doc["previous"])
                  if (d, v) not in declined and (d, v) not in now)
    if not lost:
        return "every non-declined pair was kept."
    notes = []
    for d, v in lost:
        moved = [x for x, w in now if w == v and x != d and (x, v) not in {(p["demand"], p["volunteer"])
                                                                           for p in doc["previous"]}]
        why = []
        if d in reopened:
            why.append("a teammate declined")
        if moved:
            up = [x for x in moved if weight[demands[x].get("priority", "normal")]
                  > weight[demands[d].get("priority", "normal")]]
            why.append(f"{v} now serves {', '.join(moved)}" + (" (more urgent)" if up else ""))
        if not any(x == d for x, _ in now):
            why.append(f"{d} is now unstaffed")
        notes.append(f"({d}, {v}): {'; '.join(why) or 'exchanged for a better-scoring pair'}")
    return (f"{len(lost)} non-declined pair(s) not kept — " + " · ".join(notes) +
            ". (A pair is given up when its demand can no longer field its minimum team after a "
            "teammate's decline, or when its volunteer is needed more urgently elsewhere.)")


def _gap(score: float, bound: float | None) -> str:
    if bound is None:
        return "—"
    return f"{(bound - score) / abs(bound) * 100:.2f}%" if bound else f"{bound - score:.2f}"


def _filled(m: dict) -> str:
    return " / ".join(f"{m['filled'][p][0]}/{m['filled'][p][1]}" for p in PRIORITIES)


def render_report(cases: list[dict], repair: dict | None, elapsed: float) -> str:
    """The markdown report: table, targets and notes."""
    lines = [
        "# Solver benchmark",
        "",
        f"Generated by `bench/solver_bench.py` on a **2-core machine** ({platform.processor() or platform.machine()},"
        f" {psutil.virtual_memory().total / 2**30:.0f} GB RAM, Python {platform.python_version()}), "
        "while another engineer may have been running tests on the same cores, so times are noisy. "
        f"Whole run: {elapsed / 60:.1f} min. Instances from `python -m solver generate` (bench/out/, not committed).",
        "",
        "Wall time is the whole `python -m solver solve` command (reading, candidates, model building, solving, "
        "explanations, writing). Peak memory is the summed resident memory of the process tree, sampled every "
        "50 ms. Filled positions are filled/wanted per priority: urgent / high / normal / low. "
        "Gap = (bound − score) / bound against the solver's own proven bound; the greedy row uses the same bound.",
        "",
        "| instance | method | status | score | bound | gap | filled u / h / n / l | travel km | wall s | peak MB |",
        "|---|---|---|---:|---:|---:|---|---:|---:|---:|",
    ]
    for c in cases:
        name = f"{c['preset']} seed {c['seed']}"
        lines.append(
            f"| {name} | solver ({c['limit']:.0f} s) | {c['status']} | {c['score']:.2f} | {c['bound']:.2f} | "
            f"{_gap(c['score'], c['bound'])} | {_filled(c['metrics'])} | {c['metrics']['km']:.1f} | "
            f"{c['wall']:.1f} | {c['peak_mb']:.0f} |")
        g = c["greedy"]
        lines.append(
            f"| {name} | greedy | — | {g['score']:.2f} | {c['bound']:.2f} | {_gap(g['score'], c['bound'])} | "
            f"{_filled(g['metrics'])} | {g['metrics']['km']:.1f} | {g['wall']:.1f} | — |")
    lines += ["", "Solver ahead of greedy on score: " + ", ".join(
        f"{c['preset']} {c['seed']}: {(c['score'] - c['greedy']['score']) / abs(c['greedy']['score']) * 100:+.2f}%"
        for c in cases) + "."]
    lines += ["", "Decomposition per run: " + "; ".join(
        f"{c['preset']} {c['seed']}: {c['stats'].get('candidates')} candidate pairs, "
        f"{c['stats'].get('components')} components, {c['stats'].get('parts')} parts "
        f"({c['stats'].get('exact_parts')} exact), build {c['stats'].get('build_seconds')} s"
        for c in cases) + "."]
    if repair:
        lines += [
            "", "## Repair", "",
            "District seed 1: the solver's schedule is published (`previous`, `keep_previous` = 200); 5% of its "
            "assignments are declined (`forbidden`) and a third of the rest accepted (`pinned`, taken from demands "
            "without a decline: a decline reopens its team); re-solved with `--time-limit 5`.", "",
            "| declined | not declined | kept | kept share | new pairs on declined demands | status | wall s | "
            "violations |",
            "|---:|---:|---:|---:|---:|---|---:|---:|",
            f"| {repair['declined']} | {repair['rest']} | {repair['kept']} | {repair['kept_share'] * 100:.2f}% | "
            f"{repair['refilled']} | {repair['status']} | {repair['wall']:.1f} | {repair['violations']} |",
        ]
    lines += ["", "## Targets", ""] + evaluate_targets(cases, repair)
    lines += ["", "Time per part (model build, LP, CP-SAT), seconds: " + "; ".join(
        f"{c['preset']} {c['seed']}: " + ", ".join(
            f"{r.get('build', '?')}/{r.get('lp', '?')}/{r.get('cp_sat', '?')}"
            for r in c["stats"].get("part_results", [])[:3]) for c in cases) + "."]
    lines += ["", "## Notes and limits", "",
              "- The bound is the solver's own: for townships and districts the smaller of CP-SAT's bound and "
              "the certified LP bound of the same model (in these runs the LP bound is the one that counts; CP-SAT's bound with "
              "two workers stays near the trivial one). For the city, one component of ~234,000 pairs is split "
              "into eight regions (heuristic, so the schedule is not provably optimal) and bounded by the regions' "
              "LPs over all pairs of their demands (valid; see docs/solver.md).",
              "- Quality is limited by CP-SAT time on two cores: in a 30 s district run about 1.5 s goes to "
              "interpreter start-up, reading and candidates, ~1 s to building, ~2 s to the LP, ~1 s is kept for "
              "explanations and output, the rest to CP-SAT, which improves the LP-rounded warm start by roughly "
              "0.2–0.4% of the score (see the plot). The remaining gap is partly real (the LP is not "
              "integral) and partly unexplored.",
              "- City: two worker processes each solve four regions of ~28,000 pairs with ~15 s of CP-SAT each; "
              "more cores or machines would give each region the district's 25 s. Region borders lose a little; "
              "a greedy pass fills demands left short there.",
              "- Repair: " + describe_lost_pairs(),
              "- Times are noisy: another engineer may have been running tests on the same two cores.", ""]
    lines += ["", f"![score against time]({PLOT.name})", "",
              "The plot shows score / own bound against time since solve() began: the first step is the "
              "LP-rounded warm start (reported before CP-SAT's presolve ends), then CP-SAT's improving "
              "solutions; the dashed line is the greedy baseline. City parts run in worker processes and report "
              "only when each part finishes.", ""]
    return "\n".join(lines)


def evaluate_targets(cases: list[dict], repair: dict | None) -> list[str]:
    """One line per target: met, or by how much it is missed."""
    out = []

    def gap(c):
        return (c["bound"] - c["score"]) / abs(c["bound"]) * 100

    for preset, limit_gap in (("township", 0.5), ("district", 1.5)):
        runs = [c for c in cases if c["preset"] == preset]
        if not runs:
            continue
        worst = max(gap(c) for c in runs)
        slow = max(c["wall"] for c in runs)
        ok = worst <= limit_gap and slow <= TIME_LIMITS[preset] + 0.5
        out.append(f"- {preset}: within {limit_gap}% of own bound in {TIME_LIMITS[preset]:.0f} s — "
                   f"{'**met**' if ok else '**missed**'} (worst gap {worst:.2f}%, slowest wall {slow:.1f} s).")
    runs = [c for c in cases if c["preset"] == "district"]
    if runs:
        ahead = all(c["score"] > c["greedy"]["score"] for c in runs)
        urgent = all(c["metrics"]["filled"]["urgent"][0] >= c["greedy"]["metrics"]["filled"]["urgent"][0]
                     for c in runs)
        out.append(f"- district: clearly ahead of greedy — {'**met**' if ahead else '**missed**'}; never behind on "
                   f"urgent positions — {'**met**' if urgent else '**missed**'}.")
    for c in (c for c in cases if c["preset"] == "city"):
        ok = c["violations"] == 0 and c["status"] in ("OPTIMAL", "FEASIBLE") and c["wall"] <= 120.5 \
            and c["peak_mb"] < 4096
        out.append(f"- city seed {c['seed']}: valid schedule in 120 s under 4 GB — {'**met**' if ok else '**missed**'} "
                   f"({c['violations']} violations, wall {c['wall']:.1f} s, peak {c['peak_mb']:.0f} MB; gap {gap(c):.2f}% "
                   "to a bound summed from the regions' LPs over all pairs of their demands).")
    if repair:
        ok = repair["wall"] <= 5.5 and repair["kept_share"] >= 0.95 and repair["violations"] == 0
        out.append(f"- repair: in 5 s keeping ≥ 95% of non-declined — {'**met**' if ok else '**missed**'} "
                   f"({repair['wall']:.1f} s, {repair['kept_share'] * 100:.2f}% kept).")
    return out


def render_plot(cases: list[dict]) -> None:
    """Score against time for each solver run, greedy and bound as dashed lines (score / bound)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    presets = [p for p in ("township", "district", "city") if any(c["preset"] == p for c in cases)]
    fig, axes = plt.subplots(1, len(presets), figsize=(5 * len(presets), 4), squeeze=False)
    for ax, preset in zip(axes[0], presets, strict=True):
        for c in (c for c in cases if c["preset"] == preset):
            # Parts solved in worker processes report partial sums (bound null): not a whole schedule.
            points = [(e["elapsed"], e["objective"]) for e in c["events"]
                      if e.get("objective") is not None and e["phase"] in ("solving", "done")
                      and not (e.get("parts", 1) > 1 and e.get("bound") is None)]
            if c["bound"]:
                xs = [0.0] + [p[0] for p in points] + [c["wall"]]
                ys = [c["greedy"]["score"] / c["bound"]] + [p[1] / c["bound"] for p in points] \
                    + [c["score"] / c["bound"]]
                ax.step(xs, ys, where="post", label=f"solver seed {c['seed']}")
                ax.axhline(c["greedy"]["score"] / c["bound"], linestyle="--", linewidth=0.8, color="grey")
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_title(f"{preset} (score / own bound; dashed: greedy)")
        ax.set_xlabel("seconds since solve() began (interpreter start-up, ~1 s, not shown)")
        ax.set_ylabel("score / bound")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(PLOT, dpi=110)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write the report and plot."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one township, one district, repair")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--city-seeds", type=int, nargs="*", default=[1])
    parser.add_argument("--report-only", action="store_true",
                        help="re-render the report and plot from bench/out/bench-results.json")
    args = parser.parse_args(argv)
    if args.report_only:
        saved = json.loads((OUT / "bench-results.json").read_text())
        render_plot(saved["cases"])
        REPORT.write_text(render_report(saved["cases"], saved["repair"], saved.get("elapsed", 0.0)))
        print(f"wrote {REPORT.relative_to(ROOT)} and {PLOT.relative_to(ROOT)}")
        return 0
    seeds = args.seeds[:1] if args.quick else args.seeds
    plan = [("township", s) for s in seeds] + [("district", s) for s in seeds]
    plan += [] if args.quick else [("city", s) for s in args.city_seeds]
    started = time.monotonic()
    cases = []
    for preset, seed in plan:
        case = bench_case(preset, seed)
        print(f"{preset} {seed}: {case['status']} score {case['score']:.2f} bound {case['bound']} "
              f"greedy {case['greedy']['score']:.2f} wall {case['wall']:.1f}s peak {case['peak_mb']:.0f}MB",
              flush=True)
        cases.append(case)
    repair = bench_repair(seeds[0])
    print(f"repair: kept {repair['kept_share'] * 100:.2f}% in {repair['wall']:.1f}s", flush=True)
    render_plot(cases)
    REPORT.write_text(render_report(cases, repair, time.monotonic() - started))
    (OUT / "bench-results.json").write_text(json.dumps(
        {"cases": cases, "repair": repair, "elapsed": time.monotonic() - started}, default=str))
    print(f"wrote {REPORT.relative_to(ROOT)} and {PLOT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
