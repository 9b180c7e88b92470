"""python -m services.events.scheduler INSTANCE.json -o SCHEDULE.json --time-limit SECONDS"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from services.events.scheduler.command import run_schedule_command


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m services.events.scheduler",
        description="Assign B2B meetings to slots and tables, maximising the total priority.")
    parser.add_argument("instance", type=Path, help="INSTANCE.json")
    parser.add_argument("-o", "--output", type=Path, required=True, help="where to write SCHEDULE.json")
    parser.add_argument("--time-limit", type=float, default=10.0, help="seconds for the whole run (default 10)")
    args = parser.parse_args(argv)
    return run_schedule_command(args.instance, args.output, args.time_limit)


if __name__ == "__main__":
    sys.exit(main())
