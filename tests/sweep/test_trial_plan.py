"""The trial plan: built once by the driver, it is all a worker gets of the sweep; a trial
parses no search space and recomputes neither the metrics it must report nor the rungs."""

from __future__ import annotations

import pickle
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from ray import cloudpickle

from graft_hpo import load_pipeline
from graft_hpo.space import load_space
from graft_hpo.sweep import _trainable
from graft_hpo.sweep._driver import trial_plan
from graft_hpo.sweep._plan import SweepPlan
from graft_hpo.trial import TrialResult

ASHA = "search.scheduler={type: asha, metric: val_loss, mode: min, grace_period: 1}"


def _sweep_plan(tmp_path: Path) -> SweepPlan:
    config = load_pipeline("digits", [ASHA, "train.epochs=4"])
    assert config.search.space is not None
    return SweepPlan(
        config=config,
        space=load_space(config.search.space),
        sweep_id="s1",
        sweep_dir=str(tmp_path),
        tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
        experiment="e",
        parent_run_id="p",
        trials=3,
        address=None,
    )


def _forbid_plan_rebuilding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Parsing a search space, or recomputing the scheduler's rungs, fails the test."""
    import graft_hpo.space as space
    import graft_hpo.sweep._plan as plan
    import graft_hpo.sweep._search as search

    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a trial parsed a search space or recomputed its sweep's plan")

    modules = [space, plan, search, *(m for n, m in vars(space).items() if n.startswith("_"))]
    for module in modules:
        for name in ("space_from_dict", "load_space", "parse_when", "scheduler_rungs"):
            if hasattr(module, name):
                monkeypatch.setattr(module, name, forbidden)


def test_the_driver_builds_what_a_trial_needs(tmp_path: Path) -> None:
    plan = trial_plan(_sweep_plan(tmp_path))
    assert plan.needed == ("val_acc", "co2_kg", "val_loss")  # the objectives, then ASHA's
    assert plan.rungs == {1, 3}  # ASHA's milestones below train.epochs + 1 (factor 3)
    assert plan.storage == str(tmp_path / "ray")
    assert not hasattr(plan, "space")


def test_a_trial_runs_from_its_plan_without_parsing_the_space(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the trainable up to the training, as a worker runs it after unpickling."""
    from ray import tune

    built = trial_plan(_sweep_plan(tmp_path))
    _forbid_plan_rebuilding(monkeypatch)
    plan = pickle.loads(cloudpickle.dumps(built))  # Ray's object store
    assert plan == built
    reports: list[dict[str, Any]] = []
    trained: dict[str, Any] = {}

    def run_trial(config: Any, **kwargs: Any) -> TrialResult:
        trained.update(config=config, **kwargs)
        metrics = {"val_acc": 0.9, "co2_kg": 1e-6, "val_loss": 0.3}
        return TrialResult("run1", "FINISHED", {}, metrics)

    monkeypatch.setattr(tune, "get_context", lambda: SimpleNamespace(get_trial_id=lambda: "t1"))
    monkeypatch.setattr(tune, "get_checkpoint", lambda: None)
    monkeypatch.setattr(tune, "report", lambda metrics, **_: reports.append(metrics))
    monkeypatch.setattr(_trainable, "trial_runs", lambda plan, trial_id: [])  # a first attempt
    monkeypatch.setattr(_trainable, "run_trial", run_trial)
    monkeypatch.setattr("ray.get_runtime_context", lambda: SimpleNamespace(get_node_id=str))
    threads = torch.get_num_threads()
    try:
        _trainable.trainable({"train.lr": 0.05}, plan=plan)
    finally:
        torch.set_num_threads(threads)
    assert trained["config"].train.lr == 0.05
    assert trained["parent_run_id"] == "p" and trained["tracking_uri"] == plan.tracking_uri
    (reporter,) = trained["hooks"]
    assert reporter.needed == plan.needed and reporter.checkpoints.rungs == {1, 3}
    assert reports == [
        {"val_acc": 0.9, "co2_kg": 1e-6, "val_loss": 0.3, "mlflow_run_id": "run1", "trial_done": 1}
    ]
