"""The same formulation as the LP, as a CP-SAT model, optionally warm-started from a plan."""
from __future__ import annotations

import time

from ortools.sat.python import cp_model

from services.events.scheduler.bound import Formulation


class CpSat:
    def __init__(self, form: Formulation) -> None:
        self.form = form
        model = cp_model.CpModel()
        n = len(form.cost)
        self.x = [model.NewBoolVar("") for _ in range(n)]
        x = self.x
        for cols in form.meeting_rows:
            model.AddAtMostOne(x[j] for j in cols)
        for cols in form.person_rows:
            model.AddAtMostOne(x[j] for j in cols)
        for cols, cap in form.slot_rows:
            model.Add(sum(x[j] for j in cols) <= cap)
        model.Maximize(cp_model.LinearExpr.WeightedSum(x, [int(c) for c in form.cost]))
        self.model = model
        self.objective: int | None = None
        self.bound: float | None = None
        self.optimal = False

    def solve(self, time_limit: float, *, hint: list[int] | None = None, seed: int = 0,
              workers: int = 2) -> list[int] | None:
        """Columns set to 1 in the best solution found, or None if none was found in time."""
        self.model.ClearHints()
        if hint is not None:
            chosen = set(hint)
            for j, var in enumerate(self.x):
                self.model.AddHint(var, j in chosen)
        solver = cp_model.CpSolver()
        solver.parameters.max_time_in_seconds = max(0.01, time_limit)
        solver.parameters.num_workers = workers
        solver.parameters.random_seed = seed
        started = time.monotonic()
        status = solver.Solve(self.model)
        self.seconds = time.monotonic() - started
        if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            return None
        self.objective = round(solver.ObjectiveValue())
        self.bound = solver.BestObjectiveBound()
        self.optimal = status == cp_model.OPTIMAL
        values = solver.BooleanValues(self.x)
        return [j for j, v in enumerate(values) if v]
