"""Command line: `python -m solver solve|validate|generate ...` with the contract's exit codes.

Exit codes: 0 for OPTIMAL/FEASIBLE or a valid solution; 1 for INFEASIBLE/UNKNOWN or a solution with
violations; 2 for invalid input or usage (message on standard error, never a traceback).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from solver.generate import PRESETS, SHAPES, generate_instance, parse_shapes
from solver.instance import InstanceError, parse_instance
from solver.pipeline import empty_solution, solve
from solver.validation import SolutionError, validate_solution

EXIT_OK, EXIT_NOT_SOLVED, EXIT_INVALID = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors with exit code 2 and no traceback (its default)."""


def _positive(kind):
    def convert(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be above 0: {text!r}")
        return value
    return convert


def _shapes(text: str) -> tuple[str, ...]:
    try:
        return parse_shapes(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for all subcommands."""
    parser = _Parser(prog="python -m solver", description="Linli volunteer matching solver")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("solve", help="solve an instance and write the solution JSON")
    p.add_argument("instance")
    p.add_argument("--time-limit", type=_positive(float), default=30.0,
                   help="wall-clock budget of the whole command in seconds (default 30)")
    p.add_argument("--workers", type=_positive(int), default=2, help="CP-SAT workers (default 2)")
    p.add_argument("-o", "--output", help="write the solution here instead of standard output")
    p.add_argument("--progress", action="store_true", help="print progress lines on standard error")
    p = sub.add_parser("validate", help="check a solution against an instance")
    p.add_argument("instance")
    p.add_argument("solution")
    p = sub.add_parser("generate", help="write a synthetic instance")
    p.add_argument("--preset", choices=sorted(PRESETS), default="township")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--shape", type=_shapes, default=(), metavar="S[,S...]",
                   help=f"modifiers on top of the preset, comma-separated: {', '.join(SHAPES)}")
    p.add_argument("-o", "--output", help="write the instance here instead of standard output")
    return parser


def _read_text(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise InstanceError(f"{path}: cannot read ({exc.__class__.__name__}: {exc})") from None


def _write_json(doc: dict, path: str | None) -> None:
    text = json.dumps(doc, ensure_ascii=False, indent=1)
    if path is None:
        sys.stdout.write(text + "\n")
    else:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")


def process_age() -> float:
    """Seconds since this process started (Linux /proc; 0 elsewhere), so that interpreter start-up and
    imports count against `--time-limit` as well."""
    try:
        with open("/proc/self/stat", encoding="ascii") as fh:
            start_ticks = int(fh.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime", encoding="ascii") as fh:
            uptime = float(fh.read().split()[0])
        return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return 0.0


def run_solve(args) -> int:
    """`solve`: the budget starts at program start so start-up and reading count against it."""
    started = time.monotonic() - process_age()
    try:
        text = _read_text(args.instance)
    except InstanceError as exc:
        solution = empty_solution("INVALID_INPUT", message=str(exc))
    else:
        # 0.15 s is kept for writing the solution and interpreter exit.
        left = max(0.1, args.time_limit - (time.monotonic() - started) - 0.15)
        report = None
        if args.progress:
            def report(event: dict) -> None:
                print(json.dumps(event), file=sys.stderr, flush=True)
        solution = solve(text, time_limit=left, workers=args.workers, progress=report)
    try:
        _write_json(solution, args.output)
    except OSError as exc:
        print(f"error: cannot write {args.output}: {exc}", file=sys.stderr)
        return EXIT_INVALID
    status = solution["status"]
    if status == "INVALID_INPUT":
        print(f"invalid input: {solution['message']}", file=sys.stderr)
        return EXIT_INVALID
    if status in ("INFEASIBLE", "UNKNOWN"):
        print(f"{status}: {solution['message']}", file=sys.stderr)
        for c in solution.get("conflicts", []):
            print(f"  {c['message']}", file=sys.stderr)
        return EXIT_NOT_SOLVED
    return EXIT_OK


def run_validate(args) -> int:
    """`validate`: print violations (one per line) and the recomputed score."""
    try:
        instance = parse_instance(_read_text(args.instance))
        text = _read_text(args.solution)
        try:
            solution = json.loads(text)
        except ValueError as exc:
            raise SolutionError(f"{args.solution}: not valid JSON ({exc})") from None
        violations, score = validate_solution(instance, solution)
    except (InstanceError, SolutionError) as exc:
        print(f"invalid input: {exc}", file=sys.stderr)
        return EXIT_INVALID
    for line in violations:
        print(line)
    print(f"score: {score:.4f}")
    print(f"violations: {len(violations)}")
    return EXIT_NOT_SOLVED if violations else EXIT_OK


def run_generate(args) -> int:
    """`generate`: a deterministic synthetic instance of a preset size, with optional shapes."""
    doc = generate_instance(args.preset, args.seed, args.shape)
    try:
        _write_json(doc, args.output)
    except OSError as exc:
        print(f"error: cannot write {args.output}: {exc}", file=sys.stderr)
        return EXIT_INVALID
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        return {"solve": run_solve, "validate": run_validate, "generate": run_generate}[args.command](args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # last resort: the contract promises no traceback
        print(f"internal error: {exc.__class__.__name__}: {exc}", file=sys.stderr)
        return EXIT_NOT_SOLVED
