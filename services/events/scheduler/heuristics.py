"""Constructive heuristics: first-come-first-served (the baseline) and a scarcity-aware greedy."""
from __future__ import annotations

from services.events.scheduler.plan import Plan, bits
from services.events.scheduler.problem import Problem


def first_come_first_served(problem: Problem) -> Plan:
    """Requests in the given order, each in the earliest slot where everyone and a table are free:
    what self-scheduling on a booking page produces."""
    plan = Plan(problem)
    plan.fill()
    return plan


def greedy(problem: Problem) -> Plan:
    """Heaviest first; among equals, meetings of the least contested participants (requests per
    free slot), then those with the fewest slots; each into the free slot its participants'
    other requests need least."""
    demand = participant_demand(problem)
    pressure = [
        sum(demand[p] / max(1, problem.free[p].bit_count()) for p in parts) for parts in problem.parts
    ]
    order = sorted(
        range(len(problem.parts)),
        key=lambda m: (-problem.weight[m], pressure[m], problem.allowed[m].bit_count()),
    )
    # want[p][s]: how many of p's still unplaced meetings could use slot s.
    n = problem.n_slots
    want = [[0] * n for _ in problem.free]
    for m, parts in enumerate(problem.parts):
        for s in bits(problem.allowed[m]):
            for p in parts:
                want[p][s] += 1
    plan = Plan(problem)
    for m in order:
        parts = problem.parts[m]
        mask = plan.fits(m)
        if mask:
            best = min(bits(mask), key=lambda s: (sum(want[p][s] for p in parts), s))
            plan.place(m, best)
        for s in bits(problem.allowed[m]):
            for p in parts:
                want[p][s] -= 1
    return plan


def participant_demand(problem: Problem) -> list[int]:
    demand = [0] * len(problem.free)
    for parts in problem.parts:
        for p in parts:
            demand[p] += 1
    return demand

