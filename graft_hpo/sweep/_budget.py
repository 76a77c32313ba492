"""Carbon-aware sweeps: stop scheduling new trials once a measured budget is spent (or, with
``search.fail_fast``, once a trial failed).

``search.co2_budget_kg``, ``search.energy_budget_kwh`` and ``search.time_budget_s`` gate Tune's
searcher: before each new trial the gate compares what the sweep has measured so far with the
budgets and, once one is reached, answers ``Searcher.FINISHED``. Running trials finish normally;
the sweep then ends cleanly and says why (``stop.json`` in the sweep folder, a tag on the parent
run).

What counts: every trial's measured energy and CO2 (a finished trial's totals, a running one's
so far) and the sweep's shared selection (its ranking's cost). The gate keeps these totals as
trials report (Tune hands the searcher each trial's reports, at every validated epoch and
checkpoint, and its last result, all carrying the trial's cumulative energy and CO2), so
deciding costs the same at the 2,000th trial as at the first (``benchmarks/driver_bench.py``).
It reads the MLflow store once, before its first decision in a session: a resumed sweep (whose
searcher Tune restores from its pickle) then counts every earlier trial too. A running trial
counts as of its latest report. Time counts the sweep's
running sessions only (an interrupted sweep's pause is not charged).
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graft_hpo._names import ATTR_MLFLOW_RUN
from graft_hpo._names import CO2_KG
from graft_hpo._names import ENERGY_KWH
from graft_hpo.sweep._folder import SweepFolder
from graft_hpo.tracking import sweep_runs

__all__ = [
    "Budgets",
    "Ledger",
    "Spending",
    "budget_gate",
    "emissions_totals",
    "exhausted",
    "spent_in_store",
]

logger = logging.getLogger(__name__)

# what a trial measures that the budgets (and the sweep's totals) add up; cumulative per run
SPENT_KEYS = (ENERGY_KWH, CO2_KG)


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

    @property
    def measured(self) -> bool:
        """Whether a budget is on measured energy or CO2 (not only on time)."""
        return self.co2_kg is not None or self.energy_kwh is not None


def emissions_totals(
    spent: Iterable[Mapping[str, Any]], shared: Mapping[str, float] | None = None
) -> dict[str, float]:
    """Energy and CO2 summed over trials (each a mapping holding its cumulative ``energy_kwh``
    and ``co2_kg``, e.g. a run's metrics), plus the sweep's ``shared`` selection's own cost,
    when it has one (a :class:`Spending` of them: the one place the sweep sums them)."""
    spending = Spending(shared)
    for i, figures in enumerate(spent):
        spending.record(str(i), figures)
    return spending.totals()


class Spending:
    """What each trial has measured so far, kept as it reports, and the sum (the shared
    selection's cost included), kept up to date: reading it costs the same at any size.

    A trial's figures are cumulative, so each keeps the largest value seen: a report without
    them (a failed trial's last) or an older copy (a record read from the store after a newer
    report) never lowers them. The budget gate, the console and the sweep's final totals
    (:func:`emissions_totals`) all sum with it.

    Args:
        shared: the energy and CO2 the sweep spent before its trials (its shared selection).
    """

    def __init__(self, shared: Mapping[str, float] | None = None) -> None:
        self.trials: dict[str, dict[str, float]] = {}
        self._sum = {key: _figure((shared or {}).get(key)) or 0.0 for key in SPENT_KEYS}

    def record(self, key: str, figures: Mapping[str, Any]) -> None:
        """``key``'s (a trial's, or its run's) latest cumulative figures, e.g. a report."""
        mine = self.trials.setdefault(key, {})
        for name in SPENT_KEYS:
            value = _figure(figures.get(name))
            if value is not None and value >= mine.get(name, 0.0):
                self._sum[name] += value - mine.get(name, 0.0)
                mine[name] = value

    def totals(self) -> dict[str, float]:
        """Energy and CO2 measured so far, the shared selection's included."""
        return dict(self._sum)


def spent_in_store(*, tracking_uri: str, experiment: str, sweep_id: str) -> Spending:
    """What the sweep's trial runs in the MLflow store have measured, by run id (one read)."""
    spending = Spending()
    for run in sweep_runs(experiment=experiment, sweep_id=sweep_id, tracking_uri=tracking_uri):
        spending.record(run.run_id, run.metrics)
    return spending


def exhausted(budgets: Budgets, totals: Mapping[str, float], *, sweep_dir: str) -> str | None:
    """The first budget the sweep has reached, as one line; None while all last.

    Args:
        totals: the energy and CO2 measured so far (:meth:`Spending.totals`).
        sweep_dir: its sessions are the time budget's clock.
    """
    if budgets.time_s is not None:
        elapsed = SweepFolder(sweep_dir).wall_s()
        if elapsed >= budgets.time_s:
            return (
                f"time budget reached: {elapsed:.1f} s >= search.time_budget_s={budgets.time_s:g}"
            )
    co2, energy = totals.get(CO2_KG, 0.0), totals.get(ENERGY_KWH, 0.0)
    if budgets.co2_kg is not None and co2 >= budgets.co2_kg:
        return (
            f"CO2 budget reached: {co2:.4g} kg measured >= search.co2_budget_kg={budgets.co2_kg:g}"
        )
    if budgets.energy_kwh is not None and energy >= budgets.energy_kwh:
        return (
            f"energy budget reached: {energy:.4g} kWh measured >= "
            f"search.energy_budget_kwh={budgets.energy_kwh:g}"
        )
    return None


class Ledger:
    """What the budget gate decides on: the budgets, the sweep's stop reason, and its measured
    totals, kept from the trials' reports and read from the store once per session.

    Its totals belong to a session: a pickled ledger (Tune's copy of the gate) comes back
    without them, and reads the store again at its first decision.
    """

    def __init__(
        self,
        budgets: Budgets,
        *,
        tracking_uri: str,
        experiment: str,
        sweep_id: str,
        sweep_dir: str,
        shared: Mapping[str, float] | None = None,
    ) -> None:
        self.budgets = budgets
        self.store = {"tracking_uri": tracking_uri, "experiment": experiment, "sweep_id": sweep_id}
        self.sweep_id = sweep_id
        self.sweep_dir = sweep_dir
        self.shared = dict(shared or {})
        self.spending = Spending(self.shared)  # what this session's reports said
        self.read_store = False  # whether this session has read what earlier ones measured

    def stop_reason(self) -> str | None:
        """Why no new trial may start (recorded in the sweep folder), or None."""
        folder = SweepFolder(self.sweep_dir)  # a str: Ledgers pickled by older sweeps hold one
        reason = folder.read_stop() or (self._exhausted() if self.budgets else None)
        if reason is not None:
            folder.write_stop(reason)
        return reason

    def record(self, trial_id: str, result: Mapping[str, Any] | None) -> None:
        """A trial's report (or its last result): its cumulative figures, by its run."""
        if result:  # by run: the key the store's records have
            self.spending.record(str(result.get(ATTR_MLFLOW_RUN) or trial_id), result)

    def _exhausted(self) -> str | None:
        if self.budgets.measured and not self.read_store:  # once per session
            stored = spent_in_store(**self.store)
            for run_id, figures in stored.trials.items():
                self.spending.record(run_id, figures)
            self.read_store = True
        return exhausted(self.budgets, self.spending.totals(), sweep_dir=self.sweep_dir)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "spending": Spending(self.shared), "read_store": False}


def budget_gate(searcher: Any, max_concurrent: int, ledger: Ledger) -> Any:
    """Ray's ConcurrencyLimiter around ``searcher`` that also ends the search once ``ledger``
    says so (a budget reached, or a recorded stop)."""
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search import Searcher

    class BudgetGate(ConcurrencyLimiter):
        """Asks the ledger only when a trial could start (a free slot), so rarely.

        A recorded stop (a budget reached, or a failure under ``search.fail_fast``) ends the
        search too: running trials finish, no new one starts. Tune saves the gate's state as
        the sweep goes, the ledger left out: a restored gate keeps the one it was built with,
        which reads the store afresh.
        """

        def __init__(self) -> None:
            super().__init__(searcher, max_concurrent)
            self.ledger = ledger

        def suggest(self, trial_id: str) -> Any:
            if len(self.live_trials) < self.max_concurrent:
                reason = self.ledger.stop_reason()
                if reason is not None:
                    logger.info("sweep %s: %s; no new trials", ledger.sweep_id, reason)
                    return Searcher.FINISHED
            return super().suggest(trial_id)

        def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
            self.ledger.record(trial_id, result)
            super().on_trial_result(trial_id, result)

        def on_trial_complete(
            self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
        ) -> None:
            self.ledger.record(trial_id, result)
            super().on_trial_complete(trial_id, result=result, error=error)

        def get_state(self) -> dict[str, Any]:
            kept = {k: v for k, v in self.__dict__.items() if k not in ("searcher", "ledger")}
            return copy.deepcopy(kept)

    return BudgetGate()


def _figure(value: Any) -> float | None:
    """A measured figure as a float; None for anything else (absent, NaN, not a number)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None
