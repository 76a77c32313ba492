"""One trial end to end: real digits, a real sqlite MLflow store, real codecarbon."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from graft_hpo.config import load_pipeline
from graft_hpo.exceptions import ConfigError
from graft_hpo.tracking import metric_history
from graft_hpo.tracking import query_runs
from graft_hpo.trial import TrialHooks
from graft_hpo.trial import run_trial
from tests._overrides import FAST_TRIAL

pytestmark = pytest.mark.mlflow

FAST = FAST_TRIAL


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('mlruns') / 'mlflow.db'}"


def test_a_trial_is_logged_with_params_metrics_and_emissions(store: str) -> None:
    config = load_pipeline("digits", [*FAST, "tracking.experiment=trial-ok"])
    result = run_trial(config, tracking_uri=store, tags={"sweep_id": "s-test"})

    assert result.status == "FINISHED", result.error
    metrics = result.metrics
    for name in (
        "val_acc",
        "val_loss",
        "train_loss",
        "duration_s",
        "selection_s",
        "fraction_effective",
        "epochs_completed",
        "energy_kwh",
        "co2_kg",
        "cpu_energy_kwh",
        "ram_energy_kwh",
    ):
        assert name in metrics, name
    assert metrics["epochs_completed"] == 2
    assert metrics["energy_kwh"] > 0 and metrics["co2_kg"] > 0
    assert 0 < metrics["fraction_effective"] < 1  # warm epoch full, second epoch a subset
    assert metrics["val_acc"] > 0.5

    (record,) = query_runs(store, "trial-ok")
    assert record.run_id == result.run_id
    assert record.status == "FINISHED"
    assert record.params["selection.fraction"] == "0.3"
    assert record.params["train.epochs"] == "2"
    assert record.tags["strategy"] == "graft" and record.tags["sweep_id"] == "s-test"
    assert re.fullmatch(r"graft-[0-9a-f]{8}", record.tags["mlflow.runName"])
    assert record.metrics["val_acc"] == pytest.approx(metrics["val_acc"])
    history = metric_history(store, result.run_id, "val_acc")
    assert [step for step, _ in history][:2] == [0, 1]
    # cumulative energy is logged every epoch and never falls up to the final measurement
    # (two values may be equal: codecarbon measures again only after 50 ms, and an epoch of
    # digits can be shorter)
    energy = [value for _, value in metric_history(store, result.run_id, "energy_kwh")]
    assert len(energy) >= 3 and 0 < energy[0] <= energy[1] <= energy[-1]
    assert energy[-1] == pytest.approx(metrics["energy_kwh"])


def test_a_diverging_trial_is_failed_not_raised(store: str) -> None:
    config = load_pipeline(
        "digits",
        [*FAST, "tracking.experiment=trial-nan", "model.name=tests.plugins.failing:nan_after"],
    )
    result = run_trial(config, tracking_uri=store)
    assert result.status == "FAILED"
    assert result.error is not None and "training loss became nan" in result.error
    (record,) = query_runs(store, "trial-nan")
    assert record.status == "FAILED"
    assert "training loss became nan" in record.tags["error"]
    assert "energy_kwh" in record.metrics  # what was measured is kept


def test_a_raising_model_fails_the_trial_with_its_message(store: str) -> None:
    config = load_pipeline(
        "digits",
        [*FAST, "tracking.experiment=trial-raise", "model.name=tests.plugins.failing:raises"],
    )
    result = run_trial(config, tracking_uri=store)
    assert result.status == "FAILED"
    assert result.error == "RuntimeError: plug-in model failed on purpose"


class _FailsAtStart(TrialHooks):
    def __init__(self, error: BaseException) -> None:
        self.error = error

    def on_trial_start(self, run_id: str | None) -> None:
        raise self.error


@pytest.mark.parametrize(
    ("error", "status"),
    [(ValueError("hook failed on purpose"), "FAILED"), (KeyboardInterrupt(), "KILLED")],
)
def test_a_run_is_never_left_running_by_a_failure_outside_training(
    store: str, error: BaseException, status: str
) -> None:
    # before training, outside the measured window: the error goes on, the run ends
    experiment = f"trial-start-{status.lower()}"
    config = load_pipeline("digits", [*FAST, f"tracking.experiment={experiment}"])
    with pytest.raises(type(error)):
        run_trial(config, tracking_uri=store, hooks=[_FailsAtStart(error)])
    (record,) = query_runs(store, experiment)
    assert record.status == status
    if status == "FAILED":
        assert record.tags["error"] == "ValueError: hook failed on purpose"


def test_bad_input_writes_nothing(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'never' / 'mlflow.db'}"
    for override in ("data.name=nope", "model.name=cnnn", "model.options.widht=3"):
        config = load_pipeline("digits", [*FAST, override])
        with pytest.raises(ConfigError):
            run_trial(config, tracking_uri=uri)
    assert not (tmp_path / "never").exists()


def test_without_tracking_a_trial_still_measures(tmp_path: Path) -> None:
    config = load_pipeline("digits", [*FAST, "selection.strategy=random"])
    result = run_trial(config, tracking=False)
    assert result.run_id is None and result.status == "FINISHED"
    assert result.metrics["fraction_effective"] == pytest.approx((1 + 0.3) / 2, abs=0.01)


def test_a_trial_builds_its_selector_once_and_trains_with_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import graft_hpo._trial_checks as checks
    import graft_hpo.selection as selection
    import graft_hpo.training._loop as loop
    import graft_hpo.trial as trial

    built: list[selection.Selector] = []
    trained_with: list[selection.Selector | None] = []

    def build(*args: Any) -> selection.Selector:
        built.append(selection.selector_for(*args))
        return built[-1]

    def train(*args: Any, selector: selection.Selector | None = None, **kwargs: Any) -> Any:
        trained_with.append(selector)
        return loop.train(*args, selector=selector, **kwargs)

    monkeypatch.setattr(checks, "selector_for", build)
    monkeypatch.setattr(loop, "selector_for", build)
    monkeypatch.setattr(trial, "train", train)
    config = load_pipeline("digits", [*FAST, "selection.strategy=infobatch"])
    result = run_trial(config, tracking=False)
    assert result.status == "FINISHED", result.error
    assert len(built) == 1 and trained_with == built  # checked, then trained with: one object


_TWO_TRIALS = """
import json
from graft_hpo.config import load_pipeline
from graft_hpo.trial import run_trial

config = load_pipeline("digits", {fast!r})
results = [run_trial(config, tracking=False) for _ in range(2)]
print(json.dumps([r.metrics for r in results]))
"""


def test_a_process_first_trial_is_not_charged_for_the_process_set_up() -> None:
    """In a fresh process, the first trial's measured window holds no one-off costs (torch's
    lazy dynamo import at the first optimizer, codecarbon's hardware probe: 2.6 s together):
    its overhead outside the training loop matches a second, identical trial's."""
    import json
    import subprocess
    import sys

    code = _TWO_TRIALS.format(fast=[*FAST, "emissions.enabled=true"])
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    first, second = json.loads(out.stdout.strip().splitlines()[-1])
    assert first["energy_kwh"] > 0 and second["energy_kwh"] > 0  # both really measured
    overhead = [m["duration_s"] - m["train_s"] for m in (first, second)]
    assert overhead[0] < overhead[1] + 0.5, overhead
