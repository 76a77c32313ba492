"""Carbon-aware sweeps: stop scheduling new trials once a measured budget is spent (or, with
``search.fail_fast``, once a trial failed).

``search.co2_budget_kg``, ``search.energy_budget_kwh`` and ``search.time_budget_s`` gate Tune's
searcher: before each new trial the gate adds up what the sweep has measured so far and, once a
budget is reached, answers ``Searcher.FINISHED``. Running trials finish normally; the sweep then
ends cleanly and says why (``stop.json`` in the sweep folder, a tag on the parent run).

The totals come from the MLflow store, not from memory: every trial logs its cumulative energy
and CO2 after each epoch, so the store already holds what running trials have spent, and a
resumed sweep (whose searcher is restored from Tune's pickle) sees every earlier trial too.
Time counts the sweep's running sessions only (an interrupted sweep's pause is not charged).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graft_hpo.sweep._folder import read_stop
from graft_hpo.sweep._folder import sweep_wall_s
from graft_hpo.sweep._folder import write_stop
from graft_hpo.tracking import RunRecord
from graft_hpo.tracking import sweep_runs

__all__ = ["Budgets", "budget_gate", "emissions_totals", "exhausted"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Budgets:
    """The sweep's budgets; None means unlimited."""

    co2_kg: float | None = None
    energy_kwh: float | None = None
    time_s: float | None = None

    @classmethod
    def of(cls, search: Any) -> Budgets:
        return cls(search.co2_budget_kg, search.energy_budget_kwh, search.time_budget_s)

    def __bool__(self) -> bool:
        return any(v is not None for v in (self.co2_kg, self.energy_kwh, self.time_s))


def emissions_totals(
    runs: Iterable[RunRecord], shared: Mapping[str, float] | None = None
) -> dict[str, float]:
    """Energy and CO2 summed over trial runs (a running one counts with its latest epoch),
    plus the sweep's ``shared`` selection's own cost, when it has one."""
    runs = list(runs)
    extra = shared or {}
    return {
        key: sum(r.metrics.get(key, 0.0) for r in runs) + extra.get(key, 0.0)
        for key in ("energy_kwh", "co2_kg")
    }


def exhausted(
    budgets: Budgets,
    *,
    tracking_uri: str,
    experiment: str,
    sweep_id: str,
    sweep_dir: str,
    shared: Mapping[str, float] | None = None,
) -> str | None:
    """The first budget the sweep has reached, as one line; None while all last.

    ``shared``: the energy and CO2 the sweep spent before its trials (its shared selection).
    """
    if budgets.time_s is not None:
        elapsed = sweep_wall_s(sweep_dir)
        if elapsed >= budgets.time_s:
            return (
                f"time budget reached: {elapsed:.1f} s >= search.time_budget_s={budgets.time_s:g}"
            )
    if budgets.co2_kg is None and budgets.energy_kwh is None:
        return None
    runs = sweep_runs(experiment=experiment, sweep_id=sweep_id, tracking_uri=tracking_uri)
    totals = emissions_totals(runs, shared)
    if budgets.co2_kg is not None and totals["co2_kg"] >= budgets.co2_kg:
        return (
            f"CO2 budget reached: {totals['co2_kg']:.4g} kg measured >= "
            f"search.co2_budget_kg={budgets.co2_kg:g}"
        )
    if budgets.energy_kwh is not None and totals["energy_kwh"] >= budgets.energy_kwh:
        return (
            f"energy budget reached: {totals['energy_kwh']:.4g} kWh measured >= "
            f"search.energy_budget_kwh={budgets.energy_kwh:g}"
        )
    return None


def budget_gate(
    searcher: Any,
    max_concurrent: int,
    budgets: Budgets,
    *,
    tracking_uri: str,
    experiment: str,
    sweep_id: str,
    sweep_dir: str,
    shared: Mapping[str, float] | None = None,
) -> Any:
    """Ray's ConcurrencyLimiter around ``searcher`` that also ends the search on a budget.

    ``shared``: what the sweep spent before its trials, counted in every budget.
    """
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search import Searcher

    where = {
        "tracking_uri": tracking_uri,
        "experiment": experiment,
        "sweep_id": sweep_id,
        "sweep_dir": sweep_dir,
    }

    class BudgetGate(ConcurrencyLimiter):
        """Asks the budgets only when a trial could start (a free slot), so rarely.

        A recorded stop (a budget reached, or a failure under ``search.fail_fast``) ends the
        search too: running trials finish, no new one starts.
        """

        def suggest(self, trial_id: str) -> Any:
            if len(self.live_trials) < self.max_concurrent:
                reason = read_stop(sweep_dir) or (
                    exhausted(budgets, shared=shared, **where) if budgets else None
                )
                if reason is not None:
                    write_stop(sweep_dir, reason)
                    logger.info("sweep %s: %s; no new trials", sweep_id, reason)
                    return Searcher.FINISHED
            return super().suggest(trial_id)

    return BudgetGate(searcher, max_concurrent)
