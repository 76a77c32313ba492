"""The hooks a trial adds to the training loop: energy so far, the MLflow run, and the hook
type the sweep's trainable subclasses to see the trial's run and model."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from collections.abc import Sequence

import torch

from graft_hpo._names import DURATION_S
from graft_hpo._names import EPOCHS_COMPLETED
from graft_hpo.data import DataBundle
from graft_hpo.emissions import EmissionsMeasurement
from graft_hpo.tracking import RunLogger
from graft_hpo.training import TrainHooks
from graft_hpo.training import TrainState

__all__ = ["EnergySoFar", "LogToRun", "TrialHooks", "add_spent", "end_hooks"]

logger = logging.getLogger(__name__)


class TrialHooks(TrainHooks):
    """Training hooks that also see the trial's MLflow run and its trained model."""

    def on_trial_start(self, run_id: str | None) -> None:
        """Before training; ``run_id`` is None when tracking is off."""

    def on_trial_end(self, model: torch.nn.Module, bundle: DataBundle, run_id: str | None) -> None:
        """After a successful training, before the run ends (e.g. log the model to it).

        An exception here fails the trial.
        """


class EnergySoFar(TrainHooks):
    """Adds what the trial has spent so far to every epoch's metrics: the energy and CO2
    measured, ``duration_s`` (seconds since ``started``, a ``time.perf_counter()`` reading) and
    ``epochs_completed``.

    Runs before the other hooks, so MLflow's per-epoch history and Ray's reports (which the
    schedulers, Optuna and the carbon budgets read) carry every metric a trial ends with, each
    cumulative; a resumed trial's count what its earlier attempts ``spent`` too.
    """

    def __init__(
        self,
        measurement: EmissionsMeasurement,
        spent: Mapping[str, float] | None = None,
        *,
        started: float | None = None,
    ) -> None:
        self.measurement = measurement
        self.spent = spent or {}
        self.started = started

    def on_epoch_end(self, state: TrainState, metrics: dict[str, float]) -> None:
        so_far = self.measurement.snapshot()
        if so_far is not None:
            metrics.update(add_spent(so_far.metrics(), self.spent))
        if self.started is not None:
            spent_s = self.spent.get(DURATION_S, 0.0)
            metrics[DURATION_S] = time.perf_counter() - self.started + spent_s
        metrics[EPOCHS_COMPLETED] = float(state.epoch + 1)


def add_spent(measured: Mapping[str, float], spent: Mapping[str, float]) -> dict[str, float]:
    """``measured`` (an attempt's emissions metrics) plus what earlier attempts ``spent``."""
    return {key: value + spent.get(key, 0.0) for key, value in measured.items()}


class LogToRun(TrainHooks):
    """Per-epoch metrics into the trial's MLflow run."""

    def __init__(self, run: RunLogger) -> None:
        self.run = run

    def on_epoch_end(self, state: TrainState, metrics: dict[str, float]) -> None:
        self.run.log_metrics(metrics, step=state.epoch)


def end_hooks(
    hooks: Sequence[TrainHooks], model: torch.nn.Module, bundle: DataBundle, run: RunLogger | None
) -> str | None:
    """Call every ``on_trial_end``; the first failure, as ``"<Type>: <message>"``."""
    for hook in hooks:
        if isinstance(hook, TrialHooks):
            try:
                hook.on_trial_end(model, bundle, run.run_id if run is not None else None)
            except Exception as err:
                logger.warning("trial failed after training: %s: %s", type(err).__name__, err)
                return f"{type(err).__name__}: {err}"
    return None
