"""The upper bound: the LP relaxation, solved by HiGHS, then re-checked by us from its duals.

x[m,s] in [0,1] for each free meeting m and slot s where all its participants are free; one slot
per meeting, one meeting per participant per slot, at most `cap` meetings per slot. Rows that a
column bound already implies (a row with one column) are left out.

HiGHS's objective value is not what we report: for any row multipliers v >= 0,
    sum_r rhs_r v_r + sum_j max(0, w_j - sum_{r ∋ j} v_r)
bounds every feasible schedule (Lagrangian relaxation with 0 <= x <= 1), whatever solver
tolerances or time limits did to the duals. With HiGHS's optimal duals it equals the LP value;
with the duals of an interrupted solve it is still valid, only weaker.
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

import highspy
import numpy as np

from services.events.scheduler.plan import bits
from services.events.scheduler.problem import Problem


@dataclass(frozen=True)
class Formulation:
    """Columns (m, s) and the rows over them, each row a list of column numbers."""

    col_meeting: np.ndarray
    col_slot: np.ndarray
    cost: np.ndarray
    column: dict[tuple[int, int], int]
    meeting_starts: np.ndarray               # first column of each meeting that has columns
    meeting_rows: list[list[int]]
    person_rows: list[list[int]]
    slot_rows: list[tuple[list[int], int]]   # (columns, capacity)


def formulate(problem: Problem) -> Formulation:
    col_meeting, col_slot, cost = [], [], []
    column: dict[tuple[int, int], int] = {}
    by_meeting: list[list[int]] = []
    by_person_slot: dict[tuple[int, int], list[int]] = {}
    by_slot: list[list[int]] = [[] for _ in range(problem.n_slots)]
    for m, mask in enumerate(problem.allowed):
        cols = []
        for s in bits(mask):
            j = len(col_meeting)
            column[m, s] = j
            col_meeting.append(m)
            col_slot.append(s)
            cost.append(problem.weight[m])
            cols.append(j)
            by_slot[s].append(j)
            for p in problem.parts[m]:
                by_person_slot.setdefault((p, s), []).append(j)
        by_meeting.append(cols)
    return Formulation(
        col_meeting=np.array(col_meeting, dtype=np.int64),
        col_slot=np.array(col_slot, dtype=np.int64),
        cost=np.array(cost, dtype=np.float64),
        column=column,
        meeting_starts=np.array([cols[0] for cols in by_meeting if cols], dtype=np.int64),
        meeting_rows=[cols for cols in by_meeting if len(cols) > 1],
        person_rows=[cols for cols in by_person_slot.values() if len(cols) > 1],
        slot_rows=[(cols, problem.cap[s]) for s, cols in enumerate(by_slot) if len(cols) > problem.cap[s]],
    )


@dataclass
class Relaxation:
    bound: float                  # valid upper bound on the free meetings' weight (not floored)
    values: np.ndarray | None     # LP primal values per column, when HiGHS finished
    optimal: bool


class LpBound:
    """Solves the LP in a background thread (HiGHS releases the GIL) so heuristics run meanwhile."""

    def __init__(self, problem: Problem, form: Formulation, time_limit: float, solver: str = "simplex") -> None:
        self.form = form
        rows = form.meeting_rows + form.person_rows + [cols for cols, _ in form.slot_rows]
        self.rhs = np.array([1.0] * (len(form.meeting_rows) + len(form.person_rows))
                            + [float(c) for _, c in form.slot_rows])
        self.row_index = np.repeat(np.arange(len(rows), dtype=np.int64), [len(r) for r in rows])
        self.col_index = np.fromiter((j for r in rows for j in r), dtype=np.int64, count=len(self.row_index))
        self.result: Relaxation | None = None
        self._highs = highspy._Highs()  # the core class: the wrapper prints a banner on stdout
        self._highs.setOptionValue("output_flag", False)
        self._highs.setOptionValue("time_limit", max(0.05, float(time_limit)))
        self._highs.setOptionValue("threads", 1)
        self._highs.setOptionValue("solver", solver)
        self.seconds: float | None = None
        self._pass_model(len(rows))
        self._thread = threading.Thread(target=self._run, name="lp-bound", daemon=True)

    def _pass_model(self, n_rows: int) -> None:
        n_cols = len(self.form.cost)
        order = np.argsort(self.col_index, kind="stable")
        starts = np.searchsorted(self.col_index[order], np.arange(n_cols + 1))
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = n_cols, n_rows
        lp.col_cost_ = self.form.cost
        lp.col_lower_ = np.zeros(n_cols)
        lp.col_upper_ = np.ones(n_cols)
        lp.row_lower_ = np.full(n_rows, -highspy.kHighsInf)
        lp.row_upper_ = self.rhs
        lp.sense_ = highspy.ObjSense.kMaximize
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = starts.astype(np.int32)
        lp.a_matrix_.index_ = self.row_index[order].astype(np.int32)
        lp.a_matrix_.value_ = np.ones(len(order))
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
        duals = np.array(solution.row_dual) if solution.dual_valid else np.zeros(len(self.rhs))
        bound = self.verified_bound(duals)
        optimal = status == highspy.HighsModelStatus.kOptimal
        values = np.array(solution.col_value) if solution.value_valid else None
        self.result = Relaxation(bound, values, optimal)

    def verified_bound(self, duals: np.ndarray) -> float:
        # The sign convention of row duals under maximisation is HiGHS's business: both readings
        # give valid bounds, keep the smaller.
        return min(self._lagrangian(np.maximum(duals, 0.0)), self._lagrangian(np.maximum(-duals, 0.0)))

    def _lagrangian(self, v: np.ndarray) -> float:
        # The one-slot-per-meeting rows are kept rather than priced: each meeting then takes its
        # best column, which is the best price any multiplier on its row could give.
        v = v.copy()
        v[: len(self.form.meeting_rows)] = 0.0
        price = np.bincount(self.col_index, weights=v[self.row_index], minlength=len(self.form.cost))
        reduced = self.form.cost - price
        best = np.maximum.reduceat(reduced, self.form.meeting_starts)
        return math.fsum(self.rhs * v) + math.fsum(np.maximum(best, 0.0))


def floor_bound(value: float) -> int:
    # Weights are integers, so no schedule beats the floor; the epsilon absorbs float rounding
    # in the sums (relative, as callers may use very large weights).
    return math.floor(value + 1e-6 + 1e-9 * abs(value))
