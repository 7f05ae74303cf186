"""Benchmark the solver on a matrix of instance shapes × seeds and write bench/solver-report.md.

    .venv/bin/python bench/solver_bench.py                   # the whole matrix (~30 min of both cores)
    .venv/bin/python bench/solver_bench.py --quick           # township seed 1, 10 s reference (report in bench/out/)
    .venv/bin/python bench/solver_bench.py --only district --seeds 1 --shapes plain,teams

A benchmark we did not tune to: besides the plain presets it runs the generator's shapes (team dispatch,
cross-area commitments, either-or skills, familiar pairs, scarce supply, many small areas, long travel;
`python -m solver generate --shape`). Each case is the real command
`python -m solver solve INSTANCE --time-limit T -o OUT` in a subprocess: wall time of the whole command and
peak resident memory of its process tree (worker processes included), sampled every 50 ms; then
`python -m solver validate INSTANCE OUT` counts violations and recomputes the score. The greedy score is
the solver's own `stats.greedy_objective`. Township plain runs are repeated with 120 s as a reference, a
district schedule is repaired in 5 s, and where `solver.relaxation.plain_lp_bound` exists the own bound is
compared with the plain LP bound. Instances and solutions go to bench/out/ (git-ignored); only the whole
matrix writes bench/solver-report.md and the plot, other runs write next to their results in bench/out/.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
REPORT = ROOT / "bench" / "solver-report.md"
PLOT = ROOT / "bench" / "solver-score-vs-time.png"
sys.path.insert(0, str(ROOT))

from solver.candidates import build_candidates  # noqa: E402
from solver.generate import parse_shapes  # noqa: E402
from solver.instance import parse_instance  # noqa: E402

try:
    from solver.relaxation import plain_lp_bound  # noqa: E402
except ImportError:
    plain_lp_bound = None

LIMIT_SLACK = 5.0  # seconds over the time limit that still count as keeping it
MEMORY_CAP_GB = 12.0  # a solve whose process tree grows beyond this is ended (the machine is shared)
REFERENCE_TARGET = 0.3  # township: 3 s within this % of the 120 s reference
PLAIN_LP_MAX_DEMANDS = 1200  # district size and smaller
TOWNSHIP_SHAPES = ["", "teams", "cross_area", "either_or", "familiar", "scarce"]
DISTRICT_SHAPES = ["", "teams", "cross_area", "either_or", "familiar", "scarce", "small_areas",
                   "teams,cross_area,either_or,familiar", "long_travel"]
PLAIN_LP_MAX_PAIRS = 100_000  # the plain LP of a long-travel district takes 30 s to 5 min: left out
GROUPS = ("township", "reference", "district", "repair", "city")


def plan_cases(only: set[str], seeds: list[int] | None, shapes: set[str] | None, quick: bool,
               scale: float) -> list[dict]:
    """The cases to run, in order: township (and its 120 s references), district, repair, city."""
    limits = {"township": 3.0, "reference": 10.0 if quick else 120.0,
              "district": 30.0, "repair": 5.0, "city": 120.0}
    limits = {k: round(v * scale, 2) for k, v in limits.items()}

    def pick(default_seeds, shape_list):
        return [(shape, seed) for shape in shape_list if shapes is None or (shape or "plain") in shapes
                for seed in (seeds or default_seeds)]

    cases = []
    if "township" in only:
        cases += [{"group": "township", "preset": "township", "shapes": sh, "seed": s,
                   "limit": limits["township"]} for sh, s in pick([1] if quick else [1, 2, 3], TOWNSHIP_SHAPES)]
    if "reference" in only:
        cases += [{"group": "reference", "preset": "township", "shapes": sh, "seed": s,
                   "limit": limits["reference"]} for sh, s in pick([1] if quick else [1, 2, 3], [""])]
    if "district" in only:
        cases += [{"group": "district", "preset": "district", "shapes": sh, "seed": s,
                   "limit": limits["district"]} for sh, s in pick([1, 2], DISTRICT_SHAPES)]
    if "repair" in only:
        cases += [{"group": "repair", "preset": "district", "shapes": "", "seed": s, "limit": limits["repair"],
                   "published_limit": limits["district"]} for s in (seeds or [1])[:1]]
    if "city" in only:
        cases += [{"group": "city", "preset": "city", "shapes": sh, "seed": s, "limit": limits["city"]}
                  for sh, s in pick([1], ["", "long_travel"])]
    return cases


# ---------------------------------------------------------------- running


def _fingerprint() -> str:
    """Instances are cached per version of the generator."""
    return hashlib.sha256((ROOT / "solver" / "generate.py").read_bytes()).hexdigest()[:10]


def _tag(preset: str, shapes: str, seed: int) -> str:
    return f"{preset}-{shapes.replace(',', '+') or 'plain'}-{seed}"


def instance_path(preset: str, shapes: str, seed: int) -> Path:
    """Generate (once per generator version, with `python -m solver generate`) and return the instance."""
    folder = OUT / f"instances-{_fingerprint()}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{_tag(preset, shapes, seed)}.json"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        cmd = [sys.executable, "-m", "solver", "generate", "--preset", preset, "--seed", str(seed), "-o", str(tmp)]
        subprocess.run(cmd + (["--shape", shapes] if shapes else []), cwd=ROOT, check=True, timeout=600)
        tmp.replace(path)
    return path


def _kill_tree(proc: subprocess.Popen) -> None:
    """End the solver command and its worker processes (only the processes this benchmark started)."""
    try:
        tree = psutil.Process(proc.pid).children(recursive=True)
    except psutil.Error:
        tree = []
    for p in tree:
        try:
            p.kill()
        except psutil.Error:
            pass
    proc.kill()


def run_solver(path: Path, time_limit: float, out: Path, progress: bool = False,
               workers: int | None = None) -> dict:
    """`python -m solver solve`: wall seconds, peak tree RSS (MB), exit code, progress events if asked.
    Ended (`killed`) after twice its limit plus a minute, or beyond `MEMORY_CAP_GB`."""
    cmd = [sys.executable, "-m", "solver", "solve", str(path), "--time-limit", f"{time_limit:g}", "-o", str(out)]
    cmd += ["--workers", str(workers)] if workers else []
    cmd += ["--progress"] if progress else []
    out.unlink(missing_ok=True)
    log = out.with_suffix(".stderr.log")
    peak, killed = 0, ""
    with log.open("w") as err:
        started = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err, text=True)
        ps = psutil.Process(proc.pid)
        while proc.poll() is None:
            try:
                tree = [ps, *ps.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
            except psutil.Error:
                pass
            if not killed and time.monotonic() - started > 2 * time_limit + 60:
                killed = "time"
            if not killed and peak > MEMORY_CAP_GB * 2**30:
                killed = "memory"
            if killed:
                _kill_tree(proc)
                proc.wait()
                break
            time.sleep(0.05)
        wall = time.monotonic() - started
    events, message = [], []
    for line in log.read_text(errors="replace").splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            message.append(line)
    return {"wall": wall, "peak_mb": peak / 2**20, "code": proc.returncode, "killed": killed,
            "events": events, "stderr": "\n".join(message[-5:])}


def run_validate(instance: Path, solution: Path) -> tuple[int | None, float | None, str]:
    """`python -m solver validate`: (violations, recomputed score, error text)."""
    result = subprocess.run([sys.executable, "-m", "solver", "validate", str(instance), str(solution)],
                            cwd=ROOT, capture_output=True, text=True, timeout=900)
    violations = score = None
    for line in result.stdout.splitlines():
        if line.startswith("violations: "):
            violations = int(line.split()[1])
        elif line.startswith("score: "):
            score = float(line.split()[1])
    return violations, score, "" if violations is not None else (result.stderr.strip()[-300:] or "no verdict")


def plain_bound(path: Path) -> dict:
    """The plain LP bound of the instance (`solver.relaxation.plain_lp_bound`), computed here."""
    try:
        inst = parse_instance(path.read_text())
        if plain_lp_bound is None or len(inst.demands) > PLAIN_LP_MAX_DEMANDS:
            return {}
        cands = build_candidates(inst)
        if len(cands) > PLAIN_LP_MAX_PAIRS:
            return {}
        started = time.monotonic()
        value = plain_lp_bound(inst, cands)
        return {"plain_lp": None if value is None else float(value), "plain_lp_seconds": time.monotonic() - started}
    except Exception as exc:  # the bound is optional: report, do not stop the run
        return {"plain_lp_error": f"{exc.__class__.__name__}: {exc}"}


def bench_case(case: dict, workers: int | None, plot_seed: int) -> dict:
    """Solve, validate and measure one case; the result is the case with its measurements."""
    path = instance_path(case["preset"], case["shapes"], case["seed"])
    tag = _tag(case["preset"], case["shapes"], case["seed"])
    out = OUT / "solutions" / f"{tag}-{case['limit']:g}s.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    wants_plot = case["group"] == "district" and case["seed"] == plot_seed
    run = run_solver(path, case["limit"], out, progress=wants_plot, workers=workers)
    result = dict(case, instance=str(path.relative_to(ROOT)), solution=str(out.relative_to(ROOT)),
                  wall=run["wall"], peak_mb=run["peak_mb"], code=run["code"], killed=run["killed"],
                  events=run["events"] if wants_plot else [])
    try:
        solution = json.loads(out.read_text())
    except (OSError, ValueError):
        status = f"KILLED ({run['killed']})" if run["killed"] else f"NO OUTPUT (exit {run['code']})"
        return result | {"status": status, "error": run["stderr"]}
    stats = solution.get("stats") or {}
    result |= {"status": solution.get("status"), "objective": solution.get("objective"),
               "bound": solution.get("bound"), "greedy": stats.get("greedy_objective"),
               "pairs": stats.get("candidates"), "components": stats.get("components"),
               "parts": stats.get("parts"), "exact_parts": stats.get("exact_parts"),
               "build_seconds": stats.get("build_seconds"), "message": solution.get("message", "")}
    violations, score, error = run_validate(path, out)
    result |= {"violations": violations, "score": score, "error": error}
    if case["group"] in ("township", "district"):
        result |= plain_bound(path)
    return result


def bench_repair(case: dict, cases_done: list[dict], workers: int | None, share: float = 0.05) -> dict:
    """Decline 5% of the district's schedule (forbidden), keep it as `previous` (weight 200), accept a third
    of the rest (pinned), and re-solve with `--time-limit 5`. A decline reopens its demand's team, so pairs
    on a demand with a decline are not among the accepted ones (pinning them can make the team impossible)."""
    seed = case["seed"]
    path = instance_path("district", "", seed)
    done = [c for c in cases_done if c["group"] == "district" and not c["shapes"] and c["seed"] == seed
            and c.get("status") in ("OPTIMAL", "FEASIBLE")]
    if done:
        published = ROOT / done[0]["solution"]
    else:
        published = OUT / "solutions" / f"{_tag('district', '', seed)}-published.json"
        run_solver(path, case["published_limit"], published, workers=workers)
    doc = json.loads(path.read_text())
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
    repair_path = OUT / "solutions" / f"district-repair-{seed}.json"
    repair_path.write_text(json.dumps(doc))
    out = OUT / "solutions" / f"district-repair-{seed}.solution.json"
    run = run_solver(repair_path, case["limit"], out, workers=workers)
    result = dict(case, wall=run["wall"], peak_mb=run["peak_mb"], code=run["code"], declined=len(declined),
                  rest=len(rest))
    try:
        solution = json.loads(out.read_text())
    except (OSError, ValueError):
        return result | {"status": "NO OUTPUT", "error": run["stderr"]}
    violations, score, error = run_validate(repair_path, out)
    now = {(a["demand"], a["volunteer"]) for a in solution["assignments"]}
    kept = sum(p in now for p in rest)
    return result | {"status": solution["status"], "kept": kept, "kept_share": kept / max(1, len(rest)),
                     "violations": violations, "score": score, "error": error,
                     "refilled": sum(1 for d, v in now if d in reopened and (d, v) not in set(schedule))}


# ---------------------------------------------------------------- report


def _num(value, digits: int = 2) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _pct(value) -> str:
    return "—" if value is None else f"{value:+.2f}%"


def gain(c: dict) -> float | None:
    """Score over greedy, % of the greedy score."""
    if c.get("score") is None or c.get("greedy") is None or not c["greedy"]:
        return None
    return (c["score"] - c["greedy"]) / abs(c["greedy"]) * 100


def gap(c: dict) -> float | None:
    """(bound − score) / |bound|, in % (bound − score when the bound is 0)."""
    if c.get("score") is None or c.get("bound") is None:
        return None
    return (c["bound"] - c["score"]) / abs(c["bound"]) * 100 if c["bound"] else c["bound"] - c["score"]


def kept_limit(c: dict) -> bool:
    return c["wall"] <= c["limit"] + LIMIT_SLACK


def _shape(c: dict) -> str:
    return c["shapes"] or "plain"


def _name(c: dict) -> str:
    return f"{c['group']} {_shape(c)} seed {c['seed']}"


def machine() -> str:
    """Cores, CPU, RAM, Python, date."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"**{os.cpu_count()} cores** ({cpu}), {psutil.virtual_memory().total / 2**30:.0f} GB RAM, "
            f"Python {platform.python_version()} on {platform.system()} {platform.release()}; "
            f"run on {datetime.now().astimezone():%Y-%m-%d %H:%M %z}")


def _row_table(cases: list[dict], with_plain: bool) -> list[str]:
    head = ("| shape | size | seed | pairs | limit s | status | score | greedy | gain over greedy | own bound | "
            "gap to own bound | wall s | limit + 5 s kept | peak MB | violations |")
    rule = "|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---|---:|---:|"
    if with_plain:
        head += " plain LP bound | own ≤ plain LP |"
        rule += "---:|---|"
    lines = [head, rule]
    for c in cases:
        g = gap(c)
        row = (f"| {_shape(c)} | {c['preset']} | {c['seed']} | {_num(c.get('pairs'), 0)} | {c['limit']:g} | "
               f"{c.get('status')} | {_num(c.get('score'))} | {_num(c.get('greedy'))} | {_pct(gain(c))} | "
               f"{_num(c.get('bound'))} | {'—' if g is None else f'{g:.2f}%'} | {c['wall']:.1f} | "
               f"{'yes' if kept_limit(c) else '**no**'} | {c['peak_mb']:,.0f} | "
               f"{'—' if c.get('violations') is None else c['violations']} |")
        if with_plain:
            plain = c.get("plain_lp")
            below = None if plain is None or c.get("bound") is None else c["bound"] <= plain + 0.01
            row += (f" {_num(plain) if 'plain_lp_error' not in c else 'error'} | "
                    f"{'—' if below is None else ('yes' if below else '**no**')} |")
        lines.append(row)
    return lines


def render_report(results: list[dict], elapsed: float, command: str, report: Path, plot: Path | None) -> str:
    """The markdown report: machine, how to read it, one table per size, reference, repair, checks."""
    solved = [c for c in results if c["group"] in ("township", "district", "city")]
    with_plain = any("plain_lp" in c or "plain_lp_error" in c for c in solved)
    lines = [
        "# Solver benchmark: instance shapes × seeds",
        "",
        f"Machine: {machine()}. Whole run {elapsed / 60:.1f} min (`{command}`). Other work may have shared "
        "the cores, so times are noisy.",
        "",
        "Each row is the real command `python -m solver solve INSTANCE --time-limit T -o OUT` in a subprocess. "
        "*wall s*: the whole command (interpreter start-up, reading, candidates, model, solving, explanations, "
        "writing); *limit + 5 s kept*: wall ≤ limit + 5 s; *peak MB*: summed resident memory of the command's "
        "process tree (worker processes included), sampled every 50 ms; *violations* and *score*: "
        "`python -m solver validate` (score recomputed from the assignments); *greedy*: the coordinator's greedy "
        "on the same instance (`stats.greedy_objective`); *gain over greedy* = (score − greedy) / |greedy|; "
        "*gap to own bound* = (bound − score) / |bound| against the solver's own proven bound; *pairs*: candidate "
        "pairs (`stats.candidates`).",
        "",
        "Instances: `python -m solver generate --preset SIZE --seed N --shape SHAPE` (plain = no shape). "
        "Shapes: *teams* team dispatch to one organization (people 2–6, minimum 2–3, volunteers in 1–3 "
        "organizations); *cross_area* 30–50% of volunteers with 1–4 commitments already published in a "
        "neighbouring area; *either_or* alternative skills (`skills_any`); *familiar* residents with 2–5 visits "
        "and several known volunteers; *scarce* half the volunteers, more urgent and high demands; "
        "*small_areas* many small neighbourhoods and short ranges; *long_travel* a dense city whose volunteers "
        "travel 15–40 km (one component).",
    ]
    if plain_lp_bound is None:
        lines += ["", "(No plain LP bound column: `solver.relaxation.plain_lp_bound` does not exist in this "
                      "version.)"]
    for group, title in (("township", "Township"), ("district", "District"), ("city", "City")):
        rows = [c for c in results if c["group"] == group]
        if rows:
            lines += ["", f"## {title}", ""] + _row_table(rows, with_plain and group != "city")
    lines += render_reference(results)
    lines += render_repair(results)
    lines += render_sizes(solved)
    lines += ["", "## Checks", ""] + checks(results)
    if plot is not None:
        lines += ["", f"![score against time, district seed 1]({os.path.relpath(plot, report.parent)})", "",
                  "Score / own bound against seconds since solve() began, district seed 1, one line per shape "
                  "(from `--progress`, the only runs with that flag; the first step is the warm start, then "
                  "CP-SAT's improving solutions). Dashed, in the same colour: that shape's greedy score."]
    return "\n".join(lines) + "\n"


def render_reference(results: list[dict]) -> list[str]:
    """Township plain: the short run against the 120 s reference."""
    refs = {c["seed"]: c for c in results if c["group"] == "reference" and c.get("score") is not None}
    pairs = [(c, refs[c["seed"]]) for c in results
             if c["group"] == "township" and not c["shapes"] and c["seed"] in refs and c.get("score") is not None]
    if not pairs:
        return []
    short_s, long_s = f"{pairs[0][0]['limit']:g} s", f"{pairs[0][1]['limit']:g} s"
    lines = ["", f"## {short_s} against {long_s} (township plain)", "",
             f"| seed | {short_s} score | {long_s} score | difference | within {REFERENCE_TARGET}% | "
             f"{long_s} status | {long_s} gap to own bound | {long_s} wall s |",
             "|---:|---:|---:|---:|---|---|---:|---:|"]
    for short, ref in pairs:
        diff = (ref["score"] - short["score"]) / abs(ref["score"]) * 100 if ref["score"] else 0.0
        lines.append(f"| {short['seed']} | {_num(short['score'])} | {_num(ref['score'])} | {diff:.3f}% | "
                     f"{'yes' if diff <= REFERENCE_TARGET else '**no**'} | {ref['status']} | "
                     f"{'—' if gap(ref) is None else f'{gap(ref):.2f}%'} | {ref['wall']:.1f} |")
    lines += ["", "Difference = (long score − short score) / |long score|; negative when the short run did better."]
    return lines


def render_repair(results: list[dict]) -> list[str]:
    rows = [c for c in results if c["group"] == "repair"]
    if not rows:
        return []
    lines = ["", "## Repair", "",
             "District plain: the solver's schedule is published (`previous`, `keep_previous` = 200); 5% of its "
             "assignments are declined (`forbidden`) and a third of the rest accepted (`pinned`, from demands "
             "without a decline); re-solved with the limit shown.", "",
             "| seed | limit s | declined | not declined | kept | kept share | new pairs on declined demands | "
             "status | wall s | limit + 5 s kept | violations |",
             "|---:|---:|---:|---:|---:|---:|---:|---|---:|---|---:|"]
    for r in rows:
        share = "—" if r.get("kept_share") is None else f"{r['kept_share'] * 100:.2f}%"
        lines.append(f"| {r['seed']} | {r['limit']:g} | {r['declined']} | {r['rest']} | {r.get('kept', '—')} | "
                     f"{share} | "
                     f"{r.get('refilled', '—')} | {r['status']} | {r['wall']:.1f} | "
                     f"{'yes' if kept_limit(r) else '**no**'} | {r.get('violations', '—')} |")
    return lines


def render_sizes(solved: list[dict]) -> list[str]:
    """Decomposition per instance, from the solution's stats."""
    seen, lines = set(), []
    for c in solved:
        key = (c["preset"], c["shapes"], c["seed"])
        if key in seen or c.get("pairs") is None:
            continue
        seen.add(key)
        lines.append(f"| {_shape(c)} | {c['preset']} | {c['seed']} | {c['pairs']:,} | {c.get('components', '—')} | "
                     f"{c.get('parts', '—')} ({c.get('exact_parts', '—')} exact) | {_num(c.get('build_seconds'))} |")
    if not lines:
        return []
    return ["", "## Instances", "",
            "| shape | size | seed | pairs | components | parts | reading, candidates, greedy, parts s |",
            "|---|---|---:|---:|---:|---|---:|"] + lines


def checks(results: list[dict]) -> list[str]:
    """One line per check, counted over the rows of this run."""
    solved = [c for c in results if c["group"] != "repair"]
    out = []
    bad = [c for c in solved if c.get("status") not in ("OPTIMAL", "FEASIBLE")]
    out.append(f"- Schedules: {len(solved) - len(bad)} of {len(solved)} runs OPTIMAL or FEASIBLE"
               + (" — not: " + ", ".join(f"{_name(c)} ({c.get('status')}"
                                         + (f": {c['error']}" if c.get("error") else "") + ")" for c in bad)
                  if bad else "") + ".")
    violating = [c for c in results if c.get("violations")]
    out.append("- Violations: " + (", ".join(f"{_name(c)}: {c['violations']}" for c in violating) or "none") + ".")
    late = [c for c in results if not kept_limit(c)]
    out.append(f"- Time limit + {LIMIT_SLACK:g} s: kept in {len(results) - len(late)} of {len(results)} runs"
               + (" — not: " + ", ".join(f"{_name(c)} ({c['wall']:.1f} s for {c['limit']:g} s)" for c in late)
                  if late else "") + ".")
    behind = [c for c in solved if gain(c) is not None and gain(c) < 0]
    out.append("- Behind greedy: " + (", ".join(f"{_name(c)} ({gain(c):+.2f}%)" for c in behind) or "never") + ".")
    for group in ("township", "district", "city"):
        gaps = [(gap(c), c) for c in results if c["group"] == group and gap(c) is not None]
        if gaps:
            worst, c = max(gaps, key=lambda x: x[0])
            out.append(f"- {group}: gap to own bound at most {worst:.2f}% ({_shape(c)} seed {c['seed']}); "
                       f"median {sorted(g for g, _ in gaps)[len(gaps) // 2]:.2f}%.")
    over = [c for c in solved if c.get("plain_lp") is not None and c.get("bound") is not None
            and c["bound"] > c["plain_lp"] + 0.01]
    if any(c.get("plain_lp") is not None for c in solved):
        out.append("- Own bound ≤ plain LP bound: " + ("not in " + ", ".join(_name(c) for c in over) if over
                                                        else "in every row") + ".")
    for r in (c for c in results if c["group"] == "repair" and c.get("kept_share") is not None):
        out.append(f"- Repair seed {r['seed']}: {r['kept_share'] * 100:.2f}% of non-declined pairs kept in "
                   f"{r['wall']:.1f} s ({r['status']}).")
    return out


def render_plot(results: list[dict], path: Path, seed: int) -> bool:
    """Score / own bound against time for the district runs of one seed, one line per shape."""
    runs = [c for c in results if c["group"] == "district" and c["seed"] == seed and c["events"]
            and c.get("bound") and c.get("score") is not None]
    if not runs:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 5))
    for c in runs:
        points = [(e["elapsed"], e["objective"]) for e in c["events"]
                  if e.get("objective") is not None and e.get("phase") in ("solving", "done")
                  and not (e.get("parts", 1) > 1 and e.get("bound") is None)]
        xs = [p[0] for p in points] + [c["wall"]]
        ys = [p[1] / c["bound"] for p in points] + [c["score"] / c["bound"]]
        line = ax.step(xs, ys, where="post", label=_shape(c))[0]
        if c.get("greedy") is not None:
            ax.axhline(c["greedy"] / c["bound"], linestyle="--", linewidth=0.8, color=line.get_color())
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_title(f"district seed {seed}: score / own bound (dashed: greedy)")
    ax.set_xlabel("seconds since solve() began")
    ax.set_ylabel("score / bound")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


# ---------------------------------------------------------------- main


def _csv(kind):
    def convert(text: str):
        try:
            return [kind(x.strip()) for x in text.split(",") if x.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a comma-separated list: {text!r}") from None
    return convert


def main(argv: list[str] | None = None) -> int:
    """Run the matrix (or part of it) and write the report, results and plot."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="township only, seed 1, 3 s limits and a 10 s reference instead of 120 s (checks the harness)")
    parser.add_argument("--only", type=_csv(str), help=f"groups to run, comma-separated: {', '.join(GROUPS)}")
    parser.add_argument("--seeds", type=_csv(int), help="seeds for every group, e.g. 1,2 (default: per group)")
    parser.add_argument("--shapes", type=_csv(str),
                        help="rows to keep by shape, e.g. plain,teams,teams+cross_area+either_or+familiar "
                             "(a combined shape with '+' between its names)")
    parser.add_argument("--time-scale", type=float, default=1.0, help="multiply every time limit (trial runs)")
    parser.add_argument("--workers", type=int, help="pass --workers to the solver (default: the solver's)")
    parser.add_argument("--report", type=Path,
                        help="where to write the report (default: bench/solver-report.md for the whole matrix, "
                             "else bench/out/solver-report-quick.md or -partial.md)")
    parser.add_argument("--report-only", action="store_true", help="re-render the report from saved results")
    args = parser.parse_args(argv)
    only = set(args.only or (["township", "reference"] if args.quick else GROUPS))
    unknown = only - set(GROUPS)
    if unknown:
        parser.error(f"unknown group {sorted(unknown)[0]!r} (known: {', '.join(GROUPS)})")
    shapes = None if args.shapes is None else {s.replace("+", ",") for s in args.shapes}
    for shape in shapes or ():
        try:
            if shape != "plain" and ",".join(parse_shapes(shape)) != shape:
                parser.error(f"write the shape {shape!r} as {'+'.join(parse_shapes(shape))!r}")
        except ValueError as exc:
            parser.error(str(exc))
    full = not (args.quick or args.only or args.seeds or args.shapes or args.time_scale != 1.0)
    name = "" if full else ("-quick" if args.quick else "-partial")
    report = args.report or (REPORT if full else OUT / f"solver-report{name}.md")
    plot = PLOT if full else OUT / f"solver-score-vs-time{name}.png"
    saved = OUT / f"bench-results{name}.json"
    command = " ".join(["bench/solver_bench.py", *(sys.argv[1:] if argv is None else argv)])
    OUT.mkdir(parents=True, exist_ok=True)
    plot_seed = 1
    if args.report_only:
        data = json.loads(saved.read_text())
        drawn = render_plot(data["results"], plot, plot_seed)
        report.write_text(render_report(data["results"], data["elapsed"], data["command"], report,
                                        plot if drawn else None))
        print(f"wrote {report}")
        return 0
    cases = plan_cases(only, args.seeds, shapes, args.quick, args.time_scale)
    if not cases:
        parser.error("no case matches these options")
    print(f"{len(cases)} cases; plain LP bound {'available' if plain_lp_bound else 'not available'}", flush=True)
    started = time.monotonic()
    results: list[dict] = []
    for case in cases:
        if case["group"] == "repair":
            result = bench_repair(case, results, args.workers)
            print(f"repair {case['seed']}: {result['status']} kept {result.get('kept_share', 0) * 100:.2f}% "
                  f"wall {result['wall']:.1f}s", flush=True)
        else:
            result = bench_case(case, args.workers, plot_seed)
            print(f"{case['group']} {_shape(case)} {case['seed']} ({case['limit']:g}s): {result['status']} "
                  f"score {_num(result.get('score'))} greedy {_num(result.get('greedy'))} "
                  f"bound {_num(result.get('bound'))} pairs {result.get('pairs')} wall {result['wall']:.1f}s "
                  f"peak {result['peak_mb']:.0f}MB violations {result.get('violations')}"
                  + (f" plain LP {_num(result.get('plain_lp'))}" if "plain_lp" in result else ""), flush=True)
        results.append(result)
        saved.write_text(json.dumps({"results": results, "elapsed": time.monotonic() - started,
                                     "command": command}, default=str))
    elapsed = time.monotonic() - started
    saved.write_text(json.dumps({"results": results, "elapsed": elapsed, "command": command}, default=str))
    drawn = render_plot(results, plot, plot_seed)
    report.write_text(render_report(results, elapsed, command, report, plot if drawn else None))
    print(f"wrote {report}" + (f" and {plot}" if drawn else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
