"""A slot for each free meeting, with the busy masks and slot loads it implies, kept in step.

Every heuristic edits a Plan through `place` and `remove`, so feasibility (no participant twice
in a slot, availability, tables) holds by construction: `fits(m)` is the set of slots where m
could go now.
"""
from __future__ import annotations

from services.events.scheduler.problem import Problem


class Plan:
    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        self.n = problem.n_slots
        self.slot = [-1] * len(problem.parts)
        self.busy = [0] * len(problem.free)
        self.load = [0] * self.n
        self.full = sum(1 << s for s in range(self.n) if problem.cap[s] <= 0)
        self.all_full = (1 << self.n) - 1        # `full` when every slot's tables are taken
        self.at: dict[int, int] = {}          # participant * n + slot -> meeting there
        self.members: list[set[int]] = [set() for _ in range(self.n)]
        self.by_weight: list[dict[int, set[int]]] = [{} for _ in range(self.n)]  # slot -> weight -> meetings
        self.value = 0

    def fits(self, m: int) -> int:
        mask = self.problem.allowed[m] & ~self.full
        for p in self.problem.parts[m]:
            mask &= ~self.busy[p]
        return mask

    def place(self, m: int, s: int) -> None:
        bit = 1 << s
        self.slot[m] = s
        for p in self.problem.parts[m]:
            self.busy[p] |= bit
            self.at[p * self.n + s] = m
        self.load[s] += 1
        if self.load[s] >= self.problem.cap[s]:
            self.full |= bit
        self.members[s].add(m)
        self.by_weight[s].setdefault(self.problem.weight[m], set()).add(m)
        self.value += self.problem.weight[m]

    def remove(self, m: int) -> int:
        s = self.slot[m]
        bit = 1 << s
        self.slot[m] = -1
        for p in self.problem.parts[m]:
            self.busy[p] &= ~bit
            del self.at[p * self.n + s]
        self.load[s] -= 1
        self.full &= ~bit
        self.members[s].discard(m)
        bucket = self.by_weight[s][self.problem.weight[m]]
        bucket.discard(m)
        if not bucket:
            del self.by_weight[s][self.problem.weight[m]]
        self.value -= self.problem.weight[m]
        return s

    def lightest(self, s: int) -> int | None:
        """A meeting of least weight in slot s (None if the slot is empty)."""
        buckets = self.by_weight[s]
        return next(iter(buckets[min(buckets)])) if buckets else None

    def fill(self) -> None:
        """Insert every unscheduled meeting, in order, in the earliest slot where it fits."""
        for m in range(len(self.slot)):
            if self.slot[m] < 0:
                mask = self.fits(m)
                if mask:
                    self.place(m, (mask & -mask).bit_length() - 1)


def bits(mask: int):
    while mask:
        low = mask & -mask
        yield low.bit_length() - 1
        mask ^= low
