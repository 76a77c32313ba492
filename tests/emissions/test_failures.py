"""codecarbon unavailable or failing: the trial still trains, finishes and says why.

In-process :func:`graft_hpo.trial.run_trial` on real digits with a real sqlite MLflow store;
codecarbon is broken by monkeypatching it in this process. The last test breaks it inside a
Ray trial process of a real sweep (a plug-in model's factory makes it unimportable there).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import optuna
import pytest

from graft_hpo.config import load_pipeline
from graft_hpo.tracking import metric_history
from graft_hpo.tracking import query_runs
from graft_hpo.trial import run_trial
from tests._overrides import FAST_TRIAL

pytestmark = pytest.mark.mlflow

FAST = FAST_TRIAL
ENERGY = ("energy_kwh", "co2_kg", "cpu_energy_kwh", "gpu_energy_kwh", "ram_energy_kwh")


@pytest.fixture
def store(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def _trial(store: str, experiment: str) -> tuple[Any, Any]:
    config = load_pipeline("digits", [*FAST, f"tracking.experiment={experiment}"])
    result = run_trial(config, tracking_uri=store)
    (record,) = query_runs(store, experiment)
    return result, record


def _assert_finished_without_energy(store: str, result: Any, record: Any) -> None:
    assert result.status == "FINISHED", result.error
    assert record.status == "FINISHED"
    assert record.metrics["val_acc"] > 0.5  # training itself was not affected
    assert record.metrics["epochs_completed"] == 2 and record.metrics["duration_s"] > 0
    assert not set(ENERGY) & set(record.metrics), record.metrics
    assert not set(ENERGY) & set(result.metrics)
    assert metric_history(store, record.run_id, "energy_kwh") == []  # not per epoch either
    assert "error" not in record.tags


def test_codecarbon_failing_to_start(store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import codecarbon

    def broken_start(self: Any) -> None:
        raise PermissionError("cannot read /sys/class/powercap (simulated)")

    monkeypatch.setattr(codecarbon.OfflineEmissionsTracker, "start", broken_start)
    result, record = _trial(store, "cc-start")
    _assert_finished_without_energy(store, result, record)
    assert record.tags["emissions_error"] == (
        "PermissionError: cannot read /sys/class/powercap (simulated)"
    )


def test_codecarbon_failing_to_stop(store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import codecarbon

    real_stop = codecarbon.OfflineEmissionsTracker.stop

    def broken_stop(self: Any) -> None:
        real_stop(self)  # stop codecarbon's timer threads, then fail
        raise OSError("emissions lost (simulated)")

    monkeypatch.setattr(codecarbon.OfflineEmissionsTracker, "stop", broken_stop)
    result, record = _trial(store, "cc-stop")
    assert result.status == "FINISHED" and record.status == "FINISHED"
    assert record.tags["emissions_error"] == "OSError: emissions lost (simulated)"
    # The total is unknown; what stays logged is the cumulative energy measured up to the last
    # epoch's end (codecarbon's flush): a lower bound, which the tag qualifies.
    # (Equal when both epochs ended within 50 ms of one measurement: codecarbon's flush
    # measures again only when its last sample is older, and digits' epochs can be that short.)
    history = [value for _, value in metric_history(store, record.run_id, "energy_kwh")]
    assert len(history) >= 2 and 0 < history[0] <= history[1]
    assert record.metrics["energy_kwh"] == pytest.approx(history[1])


def test_codecarbon_not_installed(store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "codecarbon", None)  # `import codecarbon` now fails
    result, record = _trial(store, "cc-missing")
    _assert_finished_without_energy(store, result, record)
    assert record.tags["emissions_error"].startswith(
        "ModuleNotFoundError: import of codecarbon halted"
    )


def test_emissions_disabled_is_tagged_too(store: str) -> None:
    config = load_pipeline(
        "digits", [*FAST, "tracking.experiment=cc-off", "emissions.enabled=false"]
    )
    result = run_trial(config, tracking_uri=store)
    (record,) = query_runs(store, "cc-off")
    _assert_finished_without_energy(store, result, record)
    assert record.tags["emissions_error"] == "disabled"


# ---- inside a Ray trial of a sweep whose objectives include co2_kg


@pytest.mark.ray
def test_a_sweep_survives_a_trial_without_codecarbon(ray_local: Path, tmp_path: Path) -> None:
    from graft_hpo.sweep import run_sweep

    space = tmp_path / "space.yaml"
    space.write_text("params:\n  train.lr: {type: float, low: 0.01, high: 0.1}\n")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = run_sweep(
        "digits",
        trials=1,
        overrides=[
            *FAST,
            "model.name=tests.plugins.failing:on_command",
            "model.options.fail=no_codecarbon",  # codecarbon cannot be imported in the trial
            f"search.space={space}",
            "tracking.experiment=nocc",
        ],
        tracking_uri=uri,
        sweep_dir=tmp_path / "sweep",
        printer=None,
    )
    runs = query_runs(uri, "nocc", sweep_id=result.sweep_id)
    (run,) = [r for r in runs if r.tags.get("graft_hpo.role") == "trial"]
    assert run.status in ("FINISHED", "FAILED")
    assert run.tags["emissions_error"].startswith("ModuleNotFoundError: import of codecarbon")
    assert "val_acc" in run.metrics and not set(ENERGY) & set(run.metrics)
    assert result.pareto == []  # without co2_kg the trial cannot be placed on the front
    storage = f"sqlite:///{tmp_path / 'sweep' / 'optuna.db'}"
    (trial,) = optuna.load_study(study_name=result.sweep_id, storage=storage).trials
    assert trial.state in (optuna.trial.TrialState.FAIL, optuna.trial.TrialState.PRUNED)
