"""The B2B meeting scheduler: accepted meetings to (slot, table), maximising total priority.

`solve(instance, time_limit)` is the pure API the events service calls; `run_schedule_command`
is `clusterhub schedule INSTANCE.json -o SCHEDULE.json --time-limit SECONDS` (also
`python -m services.events.scheduler`). Formats: see `formats.py`; how: see `solve.py`.
"""
from services.events.scheduler.check import check_schedule
from services.events.scheduler.command import run_schedule_command
from services.events.scheduler.formats import Assignment, Instance, Schedule, Unscheduled
from services.events.scheduler.problem import InvalidInstance, parse_instance
from services.events.scheduler.solve import solve

__all__ = [
    "Assignment", "Instance", "InvalidInstance", "Schedule", "Unscheduled",
    "check_schedule", "parse_instance", "run_schedule_command", "solve",
]
