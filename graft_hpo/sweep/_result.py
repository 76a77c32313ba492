"""What a sweep returns: plain, JSON-serialisable data (the pipeline-step API)."""

from __future__ import annotations

from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import field
from typing import Any

__all__ = ["SweepResult"]


@dataclass(frozen=True)
class SweepResult:
    """The outcome of :func:`graft_hpo.run_sweep`.

    Attributes:
        sweep_id: identifies the sweep (MLflow tag ``sweep_id``, Optuna study name).
        experiment: the MLflow experiment holding the sweep.
        experiment_id: its id (MLflow's UI addresses experiments by id).
        parent_run_id: the sweep's parent MLflow run.
        tracking_uri: the MLflow store.
        sweep_dir: the folder holding Ray's experiment state, the Optuna study (sqlite) and
            ``sweep.json``; ``graft-hpo resume`` takes it.
        optuna_storage: the Optuna study's RDB URL (password masked); the study is named
            after the sweep id.
        objectives: ``[[metric, mode], ...]`` the front is computed for.
        pareto: the non-dominated finished trials, best first, each
            ``{"run_id", "params", "metrics", "tags"}``.
        trials: counts of trial runs by outcome: ``FINISHED``, ``FAILED``, ``KILLED``,
            ``early_stopped``.
        failed: ``{"run_id", "error"}`` for every failed trial.
        artifacts: what was logged on the parent run (front table, plot).
        stop_reason: why the sweep ended before its number of trials (a carbon, energy or time
            budget reached, or ``fail_fast``); None when every trial ran.
        totals: the sweep's measured totals (``sweep_energy_kwh``, ``sweep_co2_kg``,
            ``sweep_wall_s``, ...), also logged on the parent run.
        selected: the final stage's choice ``{"run_id", "policy", "params", "metrics"}``,
            ``{"policy", "error"}`` when no point of the front satisfies the policy, or None
            when the pipeline names no ``select`` stage.
        model: the retrained model ``{"run_id", "model_uri", "registered", "metrics"}``, or
            None when the pipeline names no ``retrain`` stage.
    """

    sweep_id: str
    experiment: str
    parent_run_id: str
    tracking_uri: str
    sweep_dir: str
    optuna_storage: str
    objectives: list[list[str]]
    pareto: list[dict[str, Any]]
    trials: dict[str, int]
    failed: list[dict[str, str]] = field(default_factory=list)
    artifacts: list[str] = field(default_factory=list)
    stop_reason: str | None = None
    totals: dict[str, float] = field(default_factory=dict)
    experiment_id: str = ""
    selected: dict[str, Any] | None = None
    model: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
