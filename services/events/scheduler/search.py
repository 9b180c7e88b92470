"""Local search on a Plan: insert unscheduled meetings by ejection chains.

An insertion puts meeting m in slot s and moves the meetings in its way (a participant's meeting
there, or one meeting if the slot's tables are full) to other slots, each possibly pushing one
more meeting along (a chain, as in Kempe chains for colouring). Meetings that cannot be moved
are dropped (or, failing a move, take the place of a lighter meeting, which is dropped); the
insertion is kept when it gains weight. Every change goes through a journal so a losing attempt
is undone exactly.
"""
from __future__ import annotations

import random
import time

from services.events.scheduler.plan import Plan, bits


class LocalSearch:
    def __init__(self, plan: Plan, *, seed: int = 0, depth: int = 2) -> None:
        self.plan = plan
        self.problem = plan.problem
        self.rng = random.Random(seed)
        self.depth = depth
        self.journal: list[tuple[int, int]] = []   # (meeting, slot before the change)

    # journalled edits -------------------------------------------------------------------------

    def _place(self, m: int, s: int) -> None:
        self.journal.append((m, -1))
        self.plan.place(m, s)

    def _remove(self, m: int) -> None:
        self.journal.append((m, self.plan.slot[m]))
        self.plan.remove(m)

    def _undo(self, mark: int) -> None:
        plan = self.plan
        while len(self.journal) > mark:
            m, before = self.journal.pop()
            if plan.slot[m] >= 0:
                plan.remove(m)
            if before >= 0:
                plan.place(m, before)

    # moves ------------------------------------------------------------------------------------

    def blockers(self, m: int, s: int) -> set[int]:
        """Meetings that share a participant with m in slot s."""
        plan, n = self.plan, self.plan.n
        found = set()
        for p in self.problem.parts[m]:
            other = plan.at.get(p * n + s)
            if other is not None:
                found.add(other)
        return found

    def relocate(self, c: int, depth: int, frozen: set[int]) -> bool:
        """Place unscheduled meeting c somewhere, pushing at most `depth` meetings along a chain."""
        plan = self.plan
        mask = plan.fits(c)
        if mask:
            self._place(c, self._pick(c, mask))
            return True
        if depth == 0 or plan.full == plan.all_full:
            # With every table taken, a chain can only shift meetings around, never add one.
            return False
        options = list(bits(self.problem.allowed[c]))
        self.rng.shuffle(options)
        for s in options:
            way = self.blockers(c, s)
            if len(way) > 1 or way & frozen:
                continue
            if not way:
                if not plan.full >> s & 1 or not plan.members[s]:
                    continue
                way = {plan.lightest(s)}
                if way & frozen:
                    continue
            (b,) = way
            mark = len(self.journal)
            self._remove(b)
            if plan.fits(c) >> s & 1:
                self._place(c, s)
                if self.relocate(b, depth - 1, frozen | {c}):
                    return True
            self._undo(mark)
        return False

    def displace(self, c: int, frozen: set[int]) -> int:
        """Put unscheduled c in place of the lightest single meeting in its way, if lighter than
        c; return the weight dropped (c's own if no such meeting)."""
        plan, weight = self.plan, self.problem.weight
        best, best_slot, best_victim = weight[c], -1, -1
        for s in bits(self.problem.allowed[c]):
            way = self.blockers(c, s)
            if len(way) > 1:
                continue
            if not way:
                if not plan.full >> s & 1 or not plan.members[s]:
                    continue
                victim = plan.lightest(s)
            else:
                (victim,) = way
            if weight[victim] < best and victim not in frozen:
                best, best_slot, best_victim = weight[victim], s, victim
        if best_slot >= 0:
            self._remove(best_victim)
            self._place(c, best_slot)
        return best

    def insert(self, m: int) -> int:
        """Try to schedule m; keep the best change found if it gains weight; return the gain."""
        plan, weight = self.plan, self.problem.weight
        mask = plan.fits(m)
        if mask:
            self._place(m, self._pick(m, mask))
            self.journal.clear()
            return weight[m]
        best_gain, best_slot, best_state = 0, -1, None
        options = list(bits(self.problem.allowed[m]))
        self.rng.shuffle(options)
        for s in options:
            state = self.rng.getstate()
            gain = self._attempt(m, s)
            if gain == weight[m]:          # nothing dropped: no slot can do better
                self.journal.clear()
                return gain
            self._undo(0)
            if gain is not None and gain > best_gain:
                best_gain, best_slot, best_state = gain, s, state
        if best_slot >= 0:
            # Replay the best attempt with the same random draws; should it still come out
            # differently (set order), never keep a loss.
            self.rng.setstate(best_state)
            best_gain = self._attempt(m, best_slot) or 0
            if best_gain <= 0:
                self._undo(0)
                best_gain = 0
        self.journal.clear()
        return best_gain

    def _attempt(self, m: int, s: int) -> int | None:
        """Put m in slot s, moving or dropping what is in the way; return the weight gained, or
        None (changing nothing) when the slot cannot gain."""
        plan, problem = self.plan, self.problem
        weight = problem.weight
        way = self.blockers(m, s)
        # A blocker sharing a participant who is busy in every other free slot can never move:
        # dropping it is certain, so skip the slot at once when that already loses.
        loss = 0
        for c in way:
            for q in problem.parts[c]:
                if q in problem.parts[m] and not problem.free[q] & ~plan.busy[q]:
                    loss += weight[c]
                    break
        if weight[m] - loss < 1:
            return None
        if not way and plan.full >> s & 1:
            victim = plan.lightest(s)
            if victim is None:
                return None
            if plan.full == plan.all_full and weight[m] - weight[victim] < 1:
                return None
            way = {victim}
        for c in way:
            self._remove(c)
        self._place(m, s)
        gain = weight[m]
        frozen = {m}
        for c in sorted(way, key=lambda c: -weight[c]):
            if not self.relocate(c, self.depth, frozen):
                gain -= self.displace(c, frozen)
        return gain

    def _pick(self, m: int, mask: int) -> int:
        if mask & (mask - 1) == 0:
            return mask.bit_length() - 1
        options = list(bits(mask))
        return self.rng.choice(options)

    # drivers ----------------------------------------------------------------------------------

    def unscheduled(self) -> list[int]:
        return [m for m, s in enumerate(self.plan.slot) if s < 0 and self.problem.allowed[m]]

    def descend(self, deadline: float) -> int:
        """Passes of insertions over the unscheduled meetings until one gains nothing."""
        total = 0
        weight = self.problem.weight
        while time.monotonic() < deadline:
            gained = 0
            order = self.unscheduled()
            self.rng.shuffle(order)
            order.sort(key=lambda m: -weight[m])
            for i, m in enumerate(order):
                if i % 64 == 0 and time.monotonic() >= deadline:
                    break
                if self.plan.slot[m] < 0:
                    gained += self.insert(m)
            total += gained
            if gained <= 0:
                break
        return total
