"""Meeting scheduler quality against its proven bound, CP-SAT alone and first-come-first-served.

    .venv/bin/python bench/scheduler.py [--json] [--sizes small,medium,large] [--seeds N]
                                        [--tables tight,loose] [--time-limit SECONDS]

Instances are seeded brokerage events (`services/events/scheduler/synthetic.py`: Pareto request
popularity, 10-35% of participants away part of the day, tight or loose tables). Per size and
tables, one line: our `solve` (objective, proven upper bound, ratio, wall seconds including
model build, and when the final objective was first reached), then from the same instance
CP-SAT alone (the same model, the same time limit, no warm start, 2 workers) and
first-come-first-served (requests in order, earliest free slot). Every schedule goes through
`check_schedule`. The default run (small and medium, tight and loose; large, tight, once) takes
about three minutes; the machine's other load shows in the seconds.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from services.events.scheduler.bound import formulate  # noqa: E402
from services.events.scheduler.check import check_schedule  # noqa: E402
from services.events.scheduler.cpsat import CpSat  # noqa: E402
from services.events.scheduler.gaps import idle_gaps  # noqa: E402
from services.events.scheduler.heuristics import first_come_first_served  # noqa: E402
from services.events.scheduler.problem import compile_problem  # noqa: E402
from services.events.scheduler.solve import optimise, to_schedule  # noqa: E402
from services.events.scheduler.synthetic import brokerage_instance  # noqa: E402

SIZES = {  # participants, requests, slots, time limit (s)
    "small": (120, 250, 12, 2.0),
    "medium": (600, 2_000, 16, 10.0),
    "large": (3_000, 12_000, 24, 60.0),
}
DEFAULT_TABLES = {"small": ("tight", "loose"), "medium": ("tight", "loose"), "large": ("tight",)}


def run_one(size: str, tables: str, seed: int, time_limit: float, with_cpsat: bool) -> dict:
    participants, requests, slots, _ = SIZES[size]
    instance = brokerage_instance(participants, requests, slots, tables=tables, seed=seed)

    started = time.monotonic()
    problem = compile_problem(instance)
    outcome = optimise(problem, started + time_limit, seed=seed)
    schedule = to_schedule(problem, outcome)
    seconds = time.monotonic() - started
    errors = check_schedule(instance, schedule)
    bound = schedule.upper_bound
    row = {
        "size": size, "participants": participants, "requests": requests, "slots": slots,
        "tables": tables, "seed": seed, "time_limit": time_limit,
        "objective": schedule.objective, "upper_bound": bound, "ratio": _ratio(schedule.objective, bound),
        "seconds": round(seconds, 2), "seconds_to_final": _reached(outcome.progress, outcome.plan.value),
        "lp_seconds": _round(outcome.lp_seconds), "valid": not errors,
        "scheduled": len(schedule.assignments), "unscheduled": len(schedule.unscheduled),
        "idle_gaps": idle_gaps(outcome.plan),
    }
    if errors:
        row["errors"] = errors[:5]

    fcfs = problem.locked_weight + first_come_first_served(compile_problem(instance)).value
    row["fcfs"] = {"objective": fcfs, "ratio": _ratio(fcfs, bound)}
    if with_cpsat:
        row["cpsat"] = cpsat_alone(instance, time_limit, bound)
    return row


def cpsat_alone(instance, time_limit: float, bound: int) -> dict:
    started = time.monotonic()
    problem = compile_problem(instance)
    model = CpSat(formulate(problem))
    build = time.monotonic() - started
    chosen = model.solve(time_limit - build, seed=0)
    objective = None if chosen is None else problem.locked_weight + model.objective
    return {
        "objective": objective, "ratio": None if objective is None else _ratio(objective, bound),
        "seconds": round(time.monotonic() - started, 2), "proven_optimal": model.optimal,
    }


def _reached(progress: list[tuple[float, str, int]], value: int) -> float | None:
    """When the final weight was first reached (the rest of the run is gaps and bound)."""
    return next((round(at, 2) for at, _, reached in progress if reached >= value), None)


def _ratio(value: int, bound: int) -> float:
    return round(value / bound, 5) if bound else 1.0


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--sizes", default="small,medium,large")
    parser.add_argument("--tables", default=None, help="tight,loose (default: both for small and medium, tight for large)")
    parser.add_argument("--seeds", type=int, default=1, help="instances per size and tables")
    parser.add_argument("--time-limit", type=float, default=None, help="override the per-size limit")
    parser.add_argument("--no-cpsat", action="store_true", help="skip the CP-SAT-alone comparison")
    args = parser.parse_args(argv)
    for size in args.sizes.split(","):
        if size not in SIZES:
            parser.error(f"unknown size {size!r} (choose from {', '.join(SIZES)})")
        kinds = args.tables.split(",") if args.tables else DEFAULT_TABLES[size]
        for tables in kinds:
            for seed in range(args.seeds):
                limit = args.time_limit or SIZES[size][3]
                row = run_one(size, tables, seed, limit, not args.no_cpsat)
                if args.json:
                    print(json.dumps(row), flush=True)
                else:
                    cp = row.get("cpsat", {})
                    print(f"{size:6} {tables:5} seed {seed}: {row['objective']}/{row['upper_bound']} "
                          f"= {row['ratio']:.4f} in {row['seconds']:.1f}s (limit {limit:g}s, valid {row['valid']}); "
                          f"CP-SAT alone {cp.get('objective')} ({cp.get('ratio')}); "
                          f"FCFS {row['fcfs']['objective']} ({row['fcfs']['ratio']:.4f})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
