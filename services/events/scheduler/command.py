"""`clusterhub schedule INSTANCE.json -o SCHEDULE.json --time-limit SECONDS`, as one function.

The time limit covers the whole command, reading and writing included. Bad input ends as one
line on stderr and exit code 1, never a traceback.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import orjson

from services.events.scheduler.problem import InvalidInstance, parse_instance
from services.events.scheduler.solve import solve

WRITE_RESERVE = 0.1   # seconds kept back for writing SCHEDULE.json


def run_schedule_command(instance_path: Path, output_path: Path, time_limit: float) -> int:
    """Read, solve, write; return the exit code."""
    started = time.monotonic()
    try:
        if not time_limit > 0:
            raise ValueError(f"--time-limit must be a positive number of seconds, not {time_limit}")
        instance = parse_instance(_read_json(Path(instance_path)))
        remaining = time_limit - (time.monotonic() - started) - WRITE_RESERVE
        schedule = solve(instance, max(remaining, 0.05))
        Path(output_path).write_bytes(orjson.dumps(schedule.model_dump(), option=orjson.OPT_INDENT_2) + b"\n")
    except (InvalidInstance, ValueError, OSError) as exc:
        detail = exc.detail if isinstance(exc, InvalidInstance) else str(exc)
        sys.stderr.write(f"error: {' '.join(detail.split())}\n")
        return 1
    return 0


def _read_json(path: Path) -> object:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from None
