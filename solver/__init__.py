"""Linli's matching solver: a weekly volunteer schedule from a `linli.instance/1` document.

Pure Python in and out (no Flask, no SQLAlchemy), so it runs the same in a request, a worker process, a
command line or another machine. The contract is `shared/spec/solver-io.md`; the model is described in
`docs/solver.md`.

    from solver import solve, validate_solution
    solution = solve(instance_dict, time_limit=30, workers=2, progress=print)
"""

from solver.instance import Instance, InstanceError, parse_instance
from solver.pipeline import solve
from solver.validation import Finding, SolutionError, find_violations, validate_solution

__all__ = [
    "Finding", "Instance", "InstanceError", "SolutionError", "find_violations", "parse_instance", "solve",
    "validate_solution",
]
