"""Scale-out benchmark (issue 15): a city's parts solved by RQ part workers, with 1 and then 2 part-worker
processes on this machine, and a projection for N machines from the measured part times.

    .venv/bin/python bench/solver_scaleout.py                                    # the full run (~10 min)
    .venv/bin/python bench/solver_scaleout.py --time-limit 20 --shapes plain     # a short check

Each case generates the instance (`python -m solver generate --preset city --seed N [--shape S]`, cached
in bench/out/ like bench/solver_bench.py's), starts the part workers as real `rq worker` processes
(`solver.rq_parts.PartWorker`) on a queue of the run's own on the local Redis, and solves in this process
with `solve(..., executor=RqPartExecutor(...))`, each part given `--threads-per-part` CP-SAT threads (the
solve's `workers` = part workers × threads). It records the wall time of `solve`, the score, the bound,
the referee's verdict (`validate_solution`), the parts that came back and those that fell back to their
warm start, each part's job in RQ (which worker, how long it waited in the queue and ran) with the
solver's own timings, and the peak memory of this process and of each part worker.

The projection for N machines (one part worker each) is a model, not a measurement: the measured part
times of a run scheduled onto N workers, longest first (LPT), plus the fixed time of that run outside the
search (reading, candidates, greedy, merging, bound, output) and its shipping overhead (the search phase
minus the LPT makespan on the workers it really had). It answers: how long would the same search take on N
machines. At 120 s on any N the parts instead get more search time each, which only a run can score.

Writes bench/scaleout-report.md (or --report) and prints the tables.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
REPORT = ROOT / "bench" / "scaleout-report.md"
RQ = Path(sys.executable).parent / "rq"
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
from rq import Queue  # noqa: E402
from rq.job import Job  # noqa: E402
from solver_bench import instance_path  # noqa: E402  (bench/ is on the path when run as a script)

from solver import solve, validate_solution  # noqa: E402
from solver.rq_parts import RqPartExecutor, live_workers  # noqa: E402

PROJECT_MACHINES = (1, 2, 4, 8, 16)


# ---------------------------------------------------------------- instances and workers


def instance(preset: str, shape: str, seed: int) -> dict:
    """The generated instance: the same cached files as solver_bench.py."""
    return json.loads(instance_path(preset, shape, seed).read_text())


class Workers:
    """`count` part workers as real `rq worker` processes on `queue`; ended (and their keys removed) on exit."""

    def __init__(self, redis_url: str, queue: str, count: int, logs: Path):
        self.redis_url, self.queue, self.count, self.logs = redis_url, queue, count, logs
        self.connection = redis.Redis.from_url(redis_url)
        self.processes: list[subprocess.Popen] = []

    def __enter__(self) -> Workers:
        self.logs.mkdir(parents=True, exist_ok=True)
        for k in range(self.count):
            with open(self.logs / f"{self.queue}-w{k + 1}.log", "wb") as log:
                self.processes.append(subprocess.Popen(
                    [str(RQ), "worker", "--worker-class", "solver.rq_parts.PartWorker", "--url", self.redis_url,
                     "--path", str(ROOT), "--name", f"{self.queue}-w{k + 1}", self.queue],
                    cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        deadline = time.monotonic() + 120
        while len(live_workers(self.connection, self.queue)) < self.count:
            if time.monotonic() > deadline or any(p.poll() is not None for p in self.processes):
                raise SystemExit(f"part workers did not start; see {self.logs}")
            time.sleep(0.1)
        return self

    def __exit__(self, *exc) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.processes:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)

    def jobs(self) -> list[Job]:
        """Every part job of this queue, whatever became of it."""
        queue = Queue(self.queue, connection=self.connection)
        ids = set(queue.job_ids)
        for registry in (queue.finished_job_registry, queue.failed_job_registry, queue.canceled_job_registry,
                         queue.started_job_registry):
            ids |= set(registry.get_job_ids())
        return [j for j in Job.fetch_many(sorted(ids), self.connection) if j is not None]

    def forget(self) -> None:
        for key in self.connection.scan_iter(f"*{self.queue}*"):
            self.connection.delete(key)
        for job in self.jobs():
            job.delete()


class PeakMemory:
    """The peak resident memory (MB) of this process and of each given process tree, sampled every 0.2 s."""

    def __init__(self, pids: list[int]):
        self.pids = pids
        self.caller = 0.0
        self.worker = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _tree(self, pid: int) -> float:
        try:
            proc = psutil.Process(pid)
            return sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)]) / 2**20
        except psutil.Error:
            return 0.0

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            self.caller = max(self.caller, psutil.Process().memory_info().rss / 2**20)
            self.worker = max([self.worker, *(self._tree(pid) for pid in self.pids)])

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


# ---------------------------------------------------------------- one run


def run_case(doc: dict, label: str, count: int, args) -> dict:
    """Solve `doc` with `count` part workers; the figures of the run."""
    queue = f"linli-parts-bench-{uuid.uuid4().hex[:8]}"
    with Workers(args.redis_url, queue, count, OUT / "scaleout-logs") as workers:
        try:
            executor = RqPartExecutor(args.redis_url, queue)
            with PeakMemory([p.pid for p in workers.processes]) as memory:
                started = time.monotonic()
                solution = solve(doc, time_limit=args.time_limit, workers=count * args.threads_per_part,
                                 executor=executor)
                wall = time.monotonic() - started
            jobs = workers.jobs()
        finally:
            workers.forget()
    violations, score = validate_solution(doc, solution)
    stats = solution.get("stats") or {}
    # Part results are in the pipeline's order of parts; it ships them largest first (a stable sort),
    # and the job ids end with the shipping index.
    results = sorted(stats.get("part_results") or [], key=lambda r: -r["pairs"])
    by_index = {int(j.id.rsplit("-", 1)[1]): j for j in jobs}
    parts = []
    for k, result in enumerate(results):
        job = by_index.get(k)
        ran = None
        if job is not None and job.started_at is not None:
            ended = job.ended_at
            if ended is None:  # stopped at the deadline: its failure was recorded then
                latest = job.latest_result()
                ended = latest.created_at if latest is not None else None
            ran = (ended - job.started_at).total_seconds() if ended is not None else None
        waited = (job.started_at - job.enqueued_at).total_seconds() if job and job.started_at and job.enqueued_at \
            else None
        parts.append({
            "part": k + 1, "pairs": result["pairs"], "status": result["status"],
            "worker": (job.worker_name or "").rsplit("-", 1)[-1] if job else "",
            "job": job.get_status(refresh=False).value if job else "not shipped",
            "waited": waited, "ran": ran, "build": result.get("build"), "lp": result.get("lp"),
            "cp_sat": result.get("cp_sat"), "seconds": result.get("seconds"),
        })
    phases = stats.get("phases") or {}
    spans = [(j.started_at, j.ended_at or (j.latest_result().created_at if j.latest_result() else None))
             for j in jobs if j.started_at is not None]
    spans = [(a, b) for a, b in spans if b is not None]
    makespan = (max(b for _, b in spans) - min(a for a, _ in spans)).total_seconds() if spans else None
    return {
        "label": label, "workers": count, "wall": wall, "status": solution["status"],
        "objective": solution.get("objective"), "bound": solution.get("bound"), "score": score,
        "violations": len(violations), "greedy": stats.get("greedy_objective"),
        "candidates": stats.get("candidates"), "searched": stats.get("searched_pairs"),
        "parts": stats.get("parts"), "not_solved": stats.get("parts_not_solved"),
        "solved_in": stats.get("parts_solved_in"), "phases": phases, "part_rows": parts, "makespan": makespan,
        "message": solution.get("message", ""), "caller_mb": memory.caller, "worker_mb": memory.worker,
    }


# ---------------------------------------------------------------- projection


def lpt(times: list[float], machines: int) -> float:
    """Makespan of `times` scheduled longest first, each onto the least loaded of `machines`."""
    loads = [0.0] * max(1, machines)
    for t in sorted(times, reverse=True):
        loads[loads.index(min(loads))] += t
    return max(loads)


def projection(run: dict) -> list[dict]:
    """Projected wall time of the same search on N machines (see the module docstring)."""
    times = [p["ran"] for p in run["part_rows"] if p["ran"] is not None]
    search = run["phases"].get("search", 0.0)
    fixed = run["wall"] - search
    ship = max(0.0, search - lpt(times, run["workers"]))
    rows = []
    for n in PROJECT_MACHINES:
        makespan = lpt(times, n)
        rows.append({"machines": n, "makespan": makespan, "fixed": fixed, "ship": ship,
                     "wall": fixed + ship + makespan})
    return rows


# ---------------------------------------------------------------- output


def fmt(value, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def table(header: list[str], rows: list[list]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(fmt(c) for c in row) + " |" for row in rows)]


def gap(run: dict) -> str:
    if run["objective"] is None or not run["bound"]:
        return "–"
    return f"{100 * (run['bound'] - run['objective']) / abs(run['bound']):.2f} %"


def case_lines(label: str, runs: list[dict], args) -> list[str]:
    lines = [f"## {label}", "",
             f"{runs[0]['candidates']:,} candidate pairs. Time limit {args.time_limit:g} s, "
             f"{args.threads_per_part} CP-SAT thread(s) per part.", ""]
    lines += table(
        ["part workers", "wall s", "status", "score", "bound", "gap", "greedy", "violations", "pairs searched",
         "parts", "solved", "kept warm start", "peak MB caller / worker"],
        [[r["workers"], r["wall"], r["status"], r["objective"], r["bound"], gap(r), r["greedy"], r["violations"],
          r["searched"], r["parts"], (r["parts"] or 0) - (r["not_solved"] or 0), r["not_solved"],
          f"{r['caller_mb']:,.0f} / {r['worker_mb']:,.0f}"] for r in runs])
    for r in runs:
        if r["message"]:
            lines += ["", f"{r['workers']} worker(s): solver's message: {r['message']}"]
    for r in runs:
        lines += ["", f"### Parts with {r['workers']} part worker(s)", "",
                  "Phases (s): " + ", ".join(f"{k} {v:.1f}" for k, v in r["phases"].items()), ""]
        lines += table(["part", "pairs", "status", "worker", "RQ job", "queued s", "ran s", "build s", "LP s",
                        "CP-SAT s"],
                       [[p["part"], p["pairs"], p["status"], p["worker"], p["job"], p["waited"], p["ran"], p["build"],
                         p["lp"], p["cp_sat"]] for p in r["part_rows"]])
    for r in runs:
        rows = projection(r)
        lines += ["", f"### Projection from the {r['workers']}-worker run (a model, not measured)", "",
                  "Wall time of the same search with one part worker on each of N machines: the run's fixed "
                  f"time outside the search ({rows[0]['fixed']:.1f} s) + its shipping overhead "
                  f"({rows[0]['ship']:.1f} s) + the LPT makespan of its measured part times on N workers. From "
                  f"{len([p for p in r['part_rows'] if p['ran'] is not None])} machines on (one per part that ran) "
                  "the longest part sets the makespan: more machines then help only with more, smaller parts.", ""]
        lines += table(["machines", "makespan s", "projected wall s", "speed-up over 1 machine"],
                       [[p["machines"], p["makespan"], p["wall"], f"{rows[0]['wall'] / p['wall']:.2f}×"]
                        for p in rows])
    lines += ["", "Check of the model: the parts are shipped largest first and a free worker takes the next one, "
                  "which is LPT list scheduling; on the workers each run really had, LPT of the measured part "
                  "times gives " + ", ".join(f"{lpt([p['ran'] for p in r['part_rows'] if p['ran'] is not None], r['workers']):.1f} s"
                                            f" ({r['workers']} worker(s))" for r in runs)
              + "; measured from the first part's start to the last part's end: "
              + ", ".join(f"{fmt(r['makespan'])} s" for r in runs) + "."]
    return lines + [""]


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (f"**{os.cpu_count()} cores** ({cpu}), {psutil.virtual_memory().total / 2**30:.0f} GB RAM, "
            f"Python {platform.python_version()}, {platform.system()}")


def report(cases: list[tuple[str, list[dict]]], args, elapsed: float) -> str:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    command = "bench/solver_scaleout.py " + " ".join(sys.argv[1:])
    lines = [
        "# Scale-out: a city's parts on RQ part workers", "",
        f"Machine: {machine()}; part workers and the caller all on this one machine, against the local Redis. "
        f"Other work shared the cores (load average {args.load:.1f} at the start), so times are noisy. "
        f"Commit {commit}, "
        f"{datetime.now().strftime('%Y-%m-%d %H:%M')}, whole run {elapsed / 60:.1f} min (`{command}`).", "",
        "How to read it: *solved* parts came back from a part worker in time with a CP-SAT schedule; the others "
        "*kept their warm start* (LP-rounded or greedy): not reached, stopped at the deadline, or no CP-SAT "
        "schedule in their time (UNKNOWN). The schedule stays valid either way "
        "(*violations* is the referee's count). *queued s* is the time a part's job waited for a free part "
        "worker, *ran s* its time on the worker (reading, candidates, model, LP, CP-SAT). With more part "
        "workers each part gets a larger share of the time limit, so the wall time stays at the limit and the "
        "score is what improves; the projection instead asks how soon the same search would end on N machines. "
        "See docs/operations.md, \"Part workers\".", "",
    ]
    if args.time_limit != 120 or args.shapes != "plain,long_travel" or args.workers != "1,2":
        lines += [f"**A short check run** ({args.time_limit:g} s, shapes {args.shapes}, part workers {args.workers}), "
                  "not the benchmark: the full run is `.venv/bin/python bench/solver_scaleout.py` (the plain and "
                  "the long_travel city, 120 s, 1 and 2 part workers).", ""]
    for label, runs in cases:
        lines += case_lines(label, runs, args)
    return "\n".join(lines)


def print_case(label: str, runs: list[dict], args) -> None:
    print()
    for line in case_lines(label, runs, args):
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--time-limit", type=float, default=120.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--shapes", default="plain,long_travel",
                        help="city shapes, comma-separated: plain and any of the generator's (long_travel)")
    parser.add_argument("--workers", default="1,2", help="part-worker counts to run, comma-separated")
    parser.add_argument("--threads-per-part", type=int, default=1)
    parser.add_argument("--redis-url", default=os.environ.get("LINLI_BENCH_REDIS", "redis://127.0.0.1:6379/5"))
    parser.add_argument("--report", type=Path, default=REPORT)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    redis.Redis.from_url(args.redis_url, socket_connect_timeout=2).ping()
    counts = [int(c) for c in args.workers.split(",")]
    args.load = os.getloadavg()[0]
    started = time.monotonic()
    cases = []
    for shape in [s.strip() for s in args.shapes.split(",") if s.strip()]:
        generator_shape = "" if shape == "plain" else shape
        label = f"City {shape}, seed {args.seed}"
        print(f"{label}: generating …", flush=True)
        doc = instance("city", generator_shape, args.seed)
        runs = []
        for count in counts:
            print(f"{label}: solving with {count} part worker(s), {args.time_limit:g} s …", flush=True)
            runs.append(run_case(doc, label, count, args))
        del doc
        print_case(label, runs, args)
        cases.append((label, runs))
    args.report.write_text(report(cases, args, time.monotonic() - started) + "\n")
    print(f"\nwrote {args.report.relative_to(ROOT) if args.report.is_relative_to(ROOT) else args.report}")


if __name__ == "__main__":
    main()
