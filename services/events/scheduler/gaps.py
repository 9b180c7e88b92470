"""Idle gaps: the tie-break among schedules of equal weight.

A participant's idle gap is a slot of a day, between their first and last meeting of that day,
where they are available but not meeting. Moves and swaps that keep the same meetings scheduled
and lower the total are applied until none is left or time runs out.
"""
from __future__ import annotations

import random
import time

from services.events.scheduler.plan import Plan, bits
from services.events.scheduler.problem import Problem


def day_masks(problem: Problem) -> list[int]:
    masks: dict[int, int] = {}
    for s, d in enumerate(problem.day):
        masks[d] = masks.get(d, 0) | 1 << s
    return list(masks.values())


def person_gaps(busy: int, avail: int, days: list[int]) -> int:
    total = 0
    for day in days:
        b = busy & day
        if b & (b - 1):
            span = (1 << b.bit_length()) - (b & -b)
            total += (span & avail & ~busy).bit_count()
    return total


def idle_gaps(plan: Plan) -> int:
    problem = plan.problem
    days = day_masks(problem)
    return sum(
        person_gaps(plan.busy[p] | (problem.avail[p] & ~problem.free[p]), problem.avail[p], days)
        for p in range(len(problem.free))
    )


class Compactor:
    """Hill-climbs the idle gaps of a plan without changing which meetings are scheduled."""

    def __init__(self, plan: Plan, *, seed: int = 0) -> None:
        self.plan = plan
        self.problem = plan.problem
        self.days = day_masks(self.problem)
        self.locked_busy = [a & ~f for a, f in zip(self.problem.avail, self.problem.free)]
        self.rng = random.Random(seed)

    def _gaps(self, p: int, busy: int) -> int:
        return person_gaps(busy | self.locked_busy[p], self.problem.avail[p], self.days)

    def _move_delta(self, m: int, old: int, new: int) -> int:
        delta = 0
        change = 1 << old | 1 << new
        for p in self.problem.parts[m]:
            busy = self.plan.busy[p]
            delta += self._gaps(p, busy ^ change) - self._gaps(p, busy)
        return delta

    def run(self, deadline: float) -> int:
        """Apply improving moves until none is left or the deadline; return the gaps removed."""
        plan, removed = self.plan, 0
        scheduled = [m for m, s in enumerate(plan.slot) if s >= 0]
        improved = True
        while improved and time.monotonic() < deadline:
            improved = False
            self.rng.shuffle(scheduled)
            for i, m in enumerate(scheduled):
                if i % 256 == 0 and time.monotonic() >= deadline:
                    return removed
                old = plan.slot[m]
                best, best_slot = 0, -1
                for s in bits(plan.fits(m)):
                    delta = self._move_delta(m, old, s)
                    if delta < best:
                        best, best_slot = delta, s
                if best_slot >= 0:
                    plan.remove(m)
                    plan.place(m, best_slot)
                    removed -= best
                    improved = True
                else:
                    removed += self._swap(m)
                    improved = improved or plan.slot[m] != old
        return removed

    def _swap(self, m: int) -> int:
        """Exchange slots with a meeting of one of m's participants, if that lowers the gaps."""
        plan, problem = self.plan, self.problem
        s1 = plan.slot[m]
        for p in problem.parts[m]:
            for s2 in bits(plan.busy[p] & ~(1 << s1)):
                other = plan.at[p * plan.n + s2]
                if not (problem.allowed[m] >> s2 & 1 and problem.allowed[other] >> s1 & 1):
                    continue
                people = set(problem.parts[m]) | set(problem.parts[other])
                before = sum(self._gaps(q, plan.busy[q]) for q in people)
                plan.remove(m)
                plan.remove(other)
                if plan.fits(m) >> s2 & 1:
                    plan.place(m, s2)
                    if plan.fits(other) >> s1 & 1:
                        plan.place(other, s1)
                        after = sum(self._gaps(q, plan.busy[q]) for q in people)
                        if after < before:
                            return before - after
                        plan.remove(other)
                    plan.remove(m)
                plan.place(m, s1)
                plan.place(other, s2)
        return 0
