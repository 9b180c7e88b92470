"""The upper bound: the LP relaxation, solved by HiGHS, then re-checked by us from its duals.

x[m,s] in [0,1] for each free meeting m and slot s where all its participants are free; one slot
per meeting, one meeting per participant per slot, at most `cap` meetings per slot. Rows that a
column bound already implies (a row with one column) are left out.

HiGHS's objective value is not what we report. For any multipliers v >= 0 on the participant
and slot rows,
    sum_r rhs_r v_r + sum_m max(0, max_s (w_m - sum_{r ∋ (m,s)} v_r))
bounds every feasible schedule (Lagrangian relaxation keeping one slot per meeting), whatever
solver tolerances or time limits did to the duals. With HiGHS's optimal duals it equals the LP
value; with the duals of an interrupted solve it is still valid, only weaker.
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

import highspy
import numpy as np

from services.events.scheduler.problem import Problem


@dataclass(frozen=True)
class Formulation:
    """Columns (m, s), sorted by meeting then slot, and rows over them with all coefficients 1:
    row r holds columns entry_col[row_start[r]:row_start[r + 1]], at most rhs[r]. The first
    `meeting_rows` rows are one-slot-per-meeting rows, then participant-slot rows, then slots."""

    col_meeting: np.ndarray
    col_slot: np.ndarray
    cost: np.ndarray
    meeting_starts: np.ndarray   # first column of each meeting that has columns
    row_start: np.ndarray
    entry_col: np.ndarray
    rhs: np.ndarray
    meeting_rows: int

    @property
    def n_rows(self) -> int:
        return len(self.rhs)

    def row(self, r: int) -> np.ndarray:
        return self.entry_col[self.row_start[r]:self.row_start[r + 1]]


def formulate(problem: Problem) -> Formulation:
    n_meetings, n_slots = len(problem.parts), problem.n_slots
    grid = _slot_grid(problem.allowed, n_slots)
    col_meeting, col_slot = np.nonzero(grid)
    n = len(col_meeting)
    weight = np.array(problem.weight, dtype=np.float64)
    per_meeting = np.bincount(col_meeting, minlength=n_meetings)
    first = np.concatenate(([0], np.cumsum(per_meeting)[:-1]))
    groups = [(first[per_meeting > 1], per_meeting[per_meeting > 1], np.arange(n), np.ones(0))]

    # participant-slot rows: group the (participant, slot) keys of every column
    width = max((len(p) for p in problem.parts), default=0)
    people = np.full((n_meetings, max(width, 1)), -1, dtype=np.int64)
    for m, parts in enumerate(problem.parts):
        people[m, :len(parts)] = parts
    who = people[col_meeting]
    present = who >= 0
    keys = (who * n_slots + col_slot[:, None])[present]
    cols = np.broadcast_to(np.arange(n)[:, None], who.shape)[present]
    order = np.argsort(keys, kind="stable")
    keys, cols = keys[order], cols[order]
    starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1]))) if len(keys) else np.zeros(0, np.int64)
    sizes = np.diff(np.concatenate((starts, [len(keys)])))
    groups.append((starts[sizes > 1], sizes[sizes > 1], cols, np.ones(0)))

    # slot rows, only where the columns could exceed the tables
    by_slot = np.argsort(col_slot, kind="stable")
    per_slot = np.bincount(col_slot, minlength=n_slots)
    slot_first = np.concatenate(([0], np.cumsum(per_slot)[:-1]))
    cap = np.array(problem.cap, dtype=np.int64)
    binding = per_slot > cap
    groups.append((slot_first[binding], per_slot[binding], by_slot, cap[binding].astype(np.float64)))

    row_lengths, entries, rhs = [], [], []
    for group_starts, group_sizes, members, group_rhs in groups:
        if len(group_sizes):
            index = np.repeat(group_starts - np.concatenate(([0], np.cumsum(group_sizes)[:-1])), group_sizes)
            entries.append(members[index + np.arange(group_sizes.sum())])
        row_lengths.append(group_sizes)
        rhs.append(group_rhs if len(group_rhs) else np.ones(len(group_sizes)))
    lengths = np.concatenate(row_lengths).astype(np.int64)
    return Formulation(
        col_meeting=col_meeting.astype(np.int64), col_slot=col_slot.astype(np.int64), cost=weight[col_meeting],
        meeting_starts=first[per_meeting > 0],
        row_start=np.concatenate(([0], np.cumsum(lengths))).astype(np.int64),
        entry_col=np.concatenate(entries).astype(np.int64) if entries else np.zeros(0, np.int64),
        rhs=np.concatenate(rhs).astype(np.float64), meeting_rows=len(row_lengths[0]),
    )


def _slot_grid(masks: list[int], n_slots: int) -> np.ndarray:
    if n_slots <= 63:
        packed = np.array(masks, dtype=np.uint64).reshape(-1, 1)
        return ((packed >> np.arange(n_slots, dtype=np.uint64)) & np.uint64(1)).astype(bool)
    return np.array([[mask >> s & 1 for s in range(n_slots)] for mask in masks], dtype=bool).reshape(-1, n_slots)


@dataclass
class Relaxation:
    bound: float                  # valid upper bound on the free meetings' weight (not floored)
    values: np.ndarray | None     # LP primal values per column, when HiGHS has them
    optimal: bool


class LpBound:
    """Solves the LP in a background thread (HiGHS releases the GIL) so heuristics run meanwhile."""

    def __init__(self, form: Formulation, time_limit: float, solver: str = "simplex") -> None:
        self.form = form
        self.entry_row = np.repeat(np.arange(form.n_rows, dtype=np.int64), np.diff(form.row_start))
        self.result: Relaxation | None = None
        self.seconds: float | None = None
        self._highs = highspy._Highs()  # the core class: the wrapper prints a banner on stdout
        for option, value in (("output_flag", False), ("threads", 1), ("solver", solver),
                              ("time_limit", max(0.05, float(time_limit)))):
            self._highs.setOptionValue(option, value)
        self._pass_model()
        self._thread = threading.Thread(target=self._run, name="lp-bound", daemon=True)

    def _pass_model(self) -> None:
        form, n = self.form, len(self.form.cost)
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = n, form.n_rows
        lp.col_cost_ = form.cost
        lp.col_lower_ = np.zeros(n)
        lp.col_upper_ = np.ones(n)
        lp.row_lower_ = np.full(form.n_rows, -highspy.kHighsInf)
        lp.row_upper_ = form.rhs
        lp.sense_ = highspy.ObjSense.kMaximize
        lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
        lp.a_matrix_.start_ = form.row_start.astype(np.int32)
        lp.a_matrix_.index_ = form.entry_col.astype(np.int32)
        lp.a_matrix_.value_ = np.ones(len(form.entry_col))
        self._highs.passModel(lp)

    def start(self) -> LpBound:
        self._thread.start()
        return self

    def wait(self, timeout: float | None = None) -> Relaxation | None:
        self._thread.join(timeout)
        return self.result

    def _run(self) -> None:
        started = time.monotonic()
        self._solve()
        self.seconds = time.monotonic() - started

    def _solve(self) -> None:
        if len(self.form.cost) == 0:
            self.result = Relaxation(0.0, np.zeros(0), True)
            return
        self._highs.run()
        status = self._highs.getModelStatus()
        solution = self._highs.getSolution()
        duals = np.array(solution.row_dual) if solution.dual_valid else np.zeros(self.form.n_rows)
        values = np.array(solution.col_value) if solution.value_valid else None
        self.result = Relaxation(self.verified_bound(duals), values, status == highspy.HighsModelStatus.kOptimal)

    def verified_bound(self, duals: np.ndarray) -> float:
        # The sign convention of row duals under maximisation is HiGHS's business: both readings
        # give valid bounds, keep the smaller.
        return min(self._lagrangian(np.maximum(duals, 0.0)), self._lagrangian(np.maximum(-duals, 0.0)))

    def _lagrangian(self, v: np.ndarray) -> float:
        # The one-slot-per-meeting rows are kept rather than priced: each meeting then takes its
        # best column, which is the best price any multiplier on its row could give.
        v = v.copy()
        v[: self.form.meeting_rows] = 0.0
        price = np.bincount(self.form.entry_col, weights=v[self.entry_row], minlength=len(self.form.cost))
        best = np.maximum.reduceat(self.form.cost - price, self.form.meeting_starts)
        return math.fsum(self.form.rhs * v) + math.fsum(np.maximum(best, 0.0))


def degree_bound(problem: Problem, rounds: int = 4) -> float:
    """A cheap bound for when the LP has not finished: each participant p holds at most as many
    meetings as free slots (a_p), all slots together at most their tables (C). With a price
    t_p per participant and z for a table, sum_p a_p t_p + C z + sum_m max(0, w_m - sum t - z)
    bounds every schedule; each price in turn is set to its best value given the others."""
    meetings = [m for m, mask in enumerate(problem.allowed) if mask]
    weight, parts = problem.weight, problem.parts
    slots_of = [f.bit_count() for f in problem.free]
    of_person: list[list[int]] = [[] for _ in problem.free]
    for m in meetings:
        for p in parts[m]:
            of_person[p].append(m)
    price = [0.0] * len(problem.free)
    tables = float(sum(max(0, c) for c in problem.cap))
    z = 0.0

    def rest(m: int, skip: int = -1) -> float:
        return weight[m] - z - sum(price[q] for q in parts[m] if q != skip)

    for _ in range(rounds):
        for p, mine in enumerate(of_person):
            if len(mine) > slots_of[p]:
                residues = sorted((rest(m, p) for m in mine), reverse=True)
                price[p] = max(0.0, residues[slots_of[p]])
        residues = sorted((rest(m) + z for m in meetings), reverse=True)
        z = max(0.0, residues[int(tables)]) if len(residues) > tables else 0.0
    return (math.fsum(a * t for a, t in zip(slots_of, price)) + tables * z
            + math.fsum(max(0.0, rest(m)) for m in meetings))


def floor_bound(value: float) -> int:
    # Weights are integers, so no schedule beats the floor; the epsilon absorbs float rounding
    # in the sums (relative, as callers may use very large weights).
    return math.floor(value + 1e-6 + 1e-9 * abs(value))
