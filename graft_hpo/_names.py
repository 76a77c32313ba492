"""Metric and tag names shared by MLflow runs and Ray results (DESIGN.md section 3)."""

from __future__ import annotations

__all__ = [
    "ATTR_MLFLOW_RUN",
    "EXPERIMENT_KIND_TRAINING",
    "METRICS",
    "TAG_ATTEMPTS",
    "TAG_EARLY_STOPPED",
    "TAG_EXPERIMENT_KIND",
    "TAG_NOTE",
    "TAG_OBJECTIVES",
    "TAG_OPTUNA_TRIAL",
    "TAG_PARENT_RUN_ID",
    "TAG_PARETO",
    "TAG_RESUMED_FROM",
    "TAG_ROLE",
    "TAG_STOP_REASON",
    "TAG_STRATEGY",
    "TAG_SWEEP_ID",
]

METRICS = (
    "val_acc",  # fraction in [0, 1]
    "val_loss",
    "train_loss",
    "co2_kg",  # kg CO2eq
    "energy_kwh",
    "cpu_energy_kwh",
    "gpu_energy_kwh",
    "ram_energy_kwh",
    "duration_s",
    "selection_s",  # seconds spent selecting subsets
    "fraction_effective",  # share of the training set trained on per epoch, warm-up included
    "epochs_completed",
)

TAG_SWEEP_ID = "sweep_id"
TAG_STRATEGY = "strategy"
TAG_EARLY_STOPPED = "early_stopped"  # "true" when a scheduler stopped the trial early
TAG_STOP_REASON = "stop_reason"  # why training stopped before train.epochs
TAG_ATTEMPTS = "attempts"  # on a trial run its worker lost: attempts so far (this one included)
TAG_RESUMED_FROM = "resumed_from_epoch"  # ... and the epochs its last attempt went on from
TAG_PARETO = "pareto"  # "true" on the winners of a sweep, "false" on its other trials
TAG_ROLE = "graft_hpo.role"  # "sweep" on a sweep's parent run, "trial" on its trial runs
TAG_OPTUNA_TRIAL = "optuna_trial_number"  # on a trial run: its trial's number in the study
ATTR_MLFLOW_RUN = "mlflow_run_id"  # Optuna user attribute of a sweep's trial: its MLflow run
TAG_OBJECTIVES = "objectives"  # on a sweep's parent run: JSON [["val_acc", "max"], ...]
TAG_PARENT_RUN_ID = "mlflow.parentRunId"  # nests a run under another, across processes
TAG_NOTE = "mlflow.note.content"  # a run's description (markdown) in MLflow's UI

# What an experiment is for (MLflow 3): model training, "Machine learning" in MLflow's UI (the
# other main kind is "genai_development", traces of LLM apps).
TAG_EXPERIMENT_KIND = "mlflow.experimentKind"
EXPERIMENT_KIND_TRAINING = "custom_model_development"
