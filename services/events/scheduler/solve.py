"""`solve`: the pipeline that turns an Instance into the best Schedule it can find in time.

1. A cheap bound (participants' free slots and the tables, priced) is known at once; the LP
   bound starts in a background thread (HiGHS; dual simplex on small models, PDLP on larger
   ones, where simplex takes seconds to minutes), on the second core.
2. Meanwhile a scarcity-aware greedy and ejection-chain local search build the schedule (and
   first-come-first-served is kept as a floor: the result is never worse).
3. While time remains and the schedule is below the bound: on small models one exact HiGHS MIP
   over everything (its dual bound can tighten the reported bound), then neighbourhoods
   re-solved exactly (LNS), seeded from unscheduled meetings the LP wants scheduled.
4. Idle gaps are reduced without changing the meetings scheduled; tables are named; every
   meeting left out gets its reason.
Stops early as soon as the schedule reaches the bound.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from services.events.scheduler.bound import LpBound, degree_bound, floor_bound, formulate
from services.events.scheduler.formats import Assignment, Instance, Schedule, Unscheduled
from services.events.scheduler.gaps import Compactor
from services.events.scheduler.heuristics import first_come_first_served, greedy
from services.events.scheduler.lns import Lns, resolve
from services.events.scheduler.plan import Plan, bits
from services.events.scheduler.problem import Problem, compile_problem
from services.events.scheduler.search import LocalSearch

SIMPLEX_MAX_COLUMNS = 10_000     # above this PDLP is faster, and its duals are useful when cut short
EXACT_MAX_COLUMNS = 8_000        # below this, one MIP over the whole model is worth a try
FINISH_SECONDS = 0.15            # reserved per run for gaps, tables, reasons
LP_SECONDS_PER_COLUMN = 1e-5     # PDLP needs about twice this on 2 busy cores


@dataclass
class Outcome:
    plan: Plan
    upper_bound: int          # on the free meetings' weight (locked weight not included)
    fcfs_value: int
    lp_seconds: float | None
    optimal: bool
    progress: list[tuple[float, str, int]]   # (seconds since start, phase done, weight then)


def solve(instance: Instance, time_limit: float, *, seed: int = 0) -> Schedule:
    """The best schedule found within `time_limit` seconds, with a proven upper bound."""
    deadline = time.monotonic() + time_limit
    problem = compile_problem(instance)
    outcome = optimise(problem, deadline, seed=seed)
    return to_schedule(problem, outcome)


def optimise(problem: Problem, deadline: float, *, seed: int = 0) -> Outcome:
    started = time.monotonic()
    budget = max(0.0, deadline - started)
    # Writing the schedule out (tables, reasons) takes time in proportion to the meetings.
    deadline -= min(0.02 + 3e-5 * len(problem.instance.meetings), 0.2 * budget)
    finish_at = deadline - min(FINISH_SECONDS + 0.02 * budget, 0.25 * budget)
    progress: list[tuple[float, str, int]] = []

    def note(phase: str, value: int) -> None:
        progress.append((round(time.monotonic() - started, 3), phase, value))

    form = formulate(problem)
    lp = _start_lp(form, deadline - time.monotonic())
    bounds = [floor_bound(degree_bound(problem))]

    def known_upper() -> int:
        relaxation = lp.wait(0.0) if lp else None
        return min(bounds + ([floor_bound(relaxation.bound)] if relaxation is not None else []))

    fcfs = first_come_first_served(problem)
    note("fcfs", fcfs.value)
    search = LocalSearch(greedy(problem), seed=seed)
    note("greedy", search.plan.value)
    search.descend(finish_at)
    plan = search.plan
    note("local search", plan.value)
    if plan.value < known_upper() and time.monotonic() < finish_at and len(form.cost) <= EXACT_MAX_COLUMNS:
        everything = [m for m, mask in enumerate(problem.allowed) if mask]
        exact = resolve(plan, everything, 0.6 * (finish_at - time.monotonic()), seed=seed)
        if exact.optimal:
            bounds.append(floor_bound(exact.dual_bound))
        note("exact mip" + (" (optimal)" if exact.optimal else ""), plan.value)
    lns = Lns(plan, seed=seed)
    while time.monotonic() < finish_at - 0.02 and plan.value < known_upper():
        relaxation = lp.wait(0.0) if lp else None
        candidates = _lns_candidates(plan, form, relaxation.values if relaxation else None)
        if not candidates:
            break
        if lns.run(min(finish_at, time.monotonic() + 1.0), candidates):
            note("lns", plan.value)

    if fcfs.value > plan.value:
        plan = fcfs
    Compactor(plan, seed=seed).run(deadline - 0.05)
    note("gaps", plan.value)
    if lp:
        # HiGHS cannot be stopped from outside under PDLP; its own time limit ends it, and it
        # must not outlive the call (the interpreter aborts at exit over a running solve).
        lp.wait()
    upper = known_upper()
    return Outcome(plan=plan, upper_bound=max(upper, plan.value), fcfs_value=fcfs.value,
                   lp_seconds=lp.seconds if lp else None, optimal=plan.value >= upper, progress=progress)


def _start_lp(form, remaining: float) -> LpBound | None:
    """The LP in the background, given 60% of the time left (HiGHS checks its clock coarsely
    under PDLP); not at all when that is too short to be worth it."""
    limit = 0.6 * remaining
    if limit < LP_SECONDS_PER_COLUMN * len(form.cost):
        return None
    solver = "simplex" if len(form.cost) <= SIMPLEX_MAX_COLUMNS else "pdlp"
    return LpBound(form, time_limit=limit, solver=solver).start()


def _lns_candidates(plan: Plan, form, values: np.ndarray | None) -> list[int]:
    problem = plan.problem
    unscheduled = [m for m, s in enumerate(plan.slot) if s < 0 and problem.allowed[m]]
    if values is None:
        return unscheduled
    scheduled_share = np.bincount(form.col_meeting, weights=values, minlength=len(problem.parts))
    wanted = [m for m in unscheduled if scheduled_share[m] > 0.1]
    return wanted or unscheduled


def to_schedule(problem: Problem, outcome: Outcome) -> Schedule:
    instance, plan = problem.instance, outcome.plan
    slot_ids = [instance.slots[pos].id for pos in problem.slot_order]
    rows: list[tuple[int, int, str]] = []
    taken = [set() for _ in slot_ids]
    for pos, s, table in problem.locked:
        taken[s].add(table)
        rows.append((s, table, instance.meetings[pos].id))
    for s in range(problem.n_slots):
        table = 0
        for m in sorted(plan.members[s]):
            table += 1
            while table in taken[s]:
                table += 1
            rows.append((s, table, instance.meetings[problem.meetings[m]].id))
    rows.sort()
    assignments = [Assignment(meeting=mid, slot=slot_ids[s], table=f"T{t}") for s, t, mid in rows]
    unscheduled = [
        Unscheduled(meeting=instance.meetings[problem.meetings[m]].id, reason=reason(plan, m, slot_ids))
        for m, s in enumerate(plan.slot) if s < 0
    ]
    return Schedule(
        assignments=assignments, unscheduled=unscheduled,
        objective=problem.locked_weight + plan.value,
        upper_bound=problem.locked_weight + outcome.upper_bound,
    )


def reason(plan: Plan, m: int, slot_ids: list[str]) -> str:
    """Why meeting m cannot be added to this plan as it stands."""
    problem, instance = plan.problem, plan.problem.instance
    parts = problem.parts[m]
    names = [instance.participants[p].id for p in parts]
    if not slot_ids:
        return "the event has no slots"
    common = problem.all_slots
    for p, name in zip(parts, names):
        if not problem.avail[p]:
            return f"participant {name} is unavailable in every slot"
        common &= problem.avail[p]
    if not common:
        return f"{_people(names)} have no available slot in common"
    busy = [plan.busy[p] | (problem.avail[p] & ~problem.free[p]) for p in parts]
    open_slots = common
    for b in busy:
        open_slots &= ~b
    if not open_slots:
        for p, name, b in zip(parts, names, busy):
            if b & problem.avail[p] == problem.avail[p]:
                n = problem.avail[p].bit_count()
                return f"participant {name} is full ({_count(n, 'meeting')} in {_count(n, 'available slot')})"
        worst = max(range(len(parts)), key=lambda i: (busy[i] & common).bit_count())
        others = _people([n for i, n in enumerate(names) if i != worst], article=False)
        n = common.bit_count()
        taken = "the one common available slot is" if n == 1 else f"all {n} common available slots are"
        return f"participant {names[worst]} has no free common slot with {others} ({taken} taken by other meetings)"
    listed = [slot_ids[s] for s in bits(open_slots)]
    shown = ", ".join(listed[:6]) + (", …" if len(listed) > 6 else "")
    return f"all tables are full in the common free slots ({shown})"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _people(names: list[str], article: bool = True) -> str:
    joined = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    if not article:
        return joined
    return ("participant " if len(names) == 1 else "participants ") + joined
