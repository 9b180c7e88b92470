"""The LP's formulation as a CP-SAT model: what "CP-SAT alone" means in the benchmark.

Not used by `solve`: on these models CP-SAT with 2 workers was measured far behind the local
search, and behind HiGHS on the LNS sub-models (see lns.py).
"""
from __future__ import annotations

import time

from ortools.sat.python import cp_model

from services.events.scheduler.bound import Formulation


class CpSat:
    def __init__(self, form: Formulation) -> None:
        model = cp_model.CpModel()
        self.x = [model.NewBoolVar("") for _ in range(len(form.cost))]
        for r in range(form.n_rows):
            row = [self.x[j] for j in form.row(r)]
            if form.rhs[r] == 1:
                model.AddAtMostOne(row)
            else:
                model.Add(sum(row) <= int(form.rhs[r]))
        model.Maximize(cp_model.LinearExpr.WeightedSum(self.x, [int(c) for c in form.cost]))
        self.model = model
        self.objective: int | None = None
        self.optimal = False
        self.seconds = 0.0

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
        self.optimal = status == cp_model.OPTIMAL
        return [j for j, v in enumerate(solver.BooleanValues(self.x)) if v]
