"""RunLogger writes and query_runs / metric_history read back, on a real sqlite store."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from graft_hpo.exceptions import ConfigError
from graft_hpo.tracking import TAG_PARENT_RUN_ID
from graft_hpo.tracking import TAG_ROLE
from graft_hpo.tracking import RunLogger
from graft_hpo.tracking import metric_history
from graft_hpo.tracking import query_runs

pytestmark = pytest.mark.mlflow


def test_nested_trial_run_round_trip(store_uri: str) -> None:
    import mlflow

    fluent_uri = mlflow.get_tracking_uri()
    parent = RunLogger.start(store_uri, "roundtrip", tags={TAG_ROLE: "sweep", "sweep_id": "rt-s1"})
    with RunLogger.start(
        store_uri,
        "roundtrip",
        run_name="trial-0",
        parent_run_id=parent.run_id,
        tags={"sweep_id": "rt-s1", "strategy": "graft"},
    ) as trial:
        trial.log_params(
            {
                "selection.fraction": 0.3,
                "train.lr": 0.05,
                "model.options": {"w": 8},
                "selection.weighted": True,
                "selection.rank": None,
            }
        )
        for epoch, acc in enumerate([0.5, 0.7, 0.8]):
            trial.log_metrics({"val_acc": acc, "train_loss": 1.0 - acc}, step=epoch)
        # a final value below the last epoch's, logged at once: it must still be the latest
        trial.log_metrics({"val_acc": 0.75, "co2_kg": 2.5e-6, "energy_kwh": None})
        trial.set_tags({"early_stopped": False, "pareto": "true"})
        trial.log_dict({"val_acc": 0.8, "path": Path("/x")}, "result/final.json")
    parent.end()

    runs = query_runs(store_uri, "roundtrip", sweep_id="rt-s1")
    assert {r.run_id for r in runs} == {parent.run_id, trial.run_id}
    (nested,) = query_runs(store_uri, "roundtrip", parent_run_id=parent.run_id)
    assert nested.run_id == trial.run_id
    assert nested.status == "FINISHED"
    assert nested.params == {
        "selection.fraction": "0.3",
        "train.lr": "0.05",
        "model.options": '{"w": 8}',
        "selection.weighted": "true",
        "selection.rank": "null",
    }
    assert nested.metrics == {"val_acc": 0.75, "train_loss": pytest.approx(0.2), "co2_kg": 2.5e-6}
    assert nested.tags[TAG_PARENT_RUN_ID] == parent.run_id
    assert nested.tags["strategy"] == "graft"
    assert nested.tags["early_stopped"] == "false"
    assert nested.tags["mlflow.runName"] == "trial-0"
    # the final value (no step) ends the history at the last epoch
    history = metric_history(store_uri, trial.run_id, "val_acc")
    assert history == [(0, 0.5), (1, 0.7), (2, 0.8), (2, 0.75)]
    assert [s for s, _ in metric_history(store_uri, trial.run_id, "train_loss")] == [0, 1, 2]

    # the artifact lands under <store>/artifacts, next to mlflow.db
    from mlflow import MlflowClient

    artifact_uri = MlflowClient(tracking_uri=store_uri).get_run(trial.run_id).info.artifact_uri
    folder = Path(urlsplit(artifact_uri).path)
    assert folder.is_relative_to(Path(store_uri[len("sqlite:///") :]).parent / "artifacts")
    assert json.loads((folder / "result" / "final.json").read_text()) == {
        "path": "/x",
        "val_acc": 0.8,
    }
    # nothing touched MLflow's global (fluent) state
    assert mlflow.get_tracking_uri() == fluent_uri
    assert mlflow.active_run() is None


def test_failed_and_killed_status(store_uri: str) -> None:
    with pytest.raises(RuntimeError, match="boom"), RunLogger.start(store_uri, "status") as failed:
        raise RuntimeError("boom")
    with pytest.raises(KeyboardInterrupt), RunLogger.start(store_uri, "status") as killed:
        raise KeyboardInterrupt
    explicit = RunLogger.start(store_uri, "status")
    explicit.end("FAILED")
    explicit.end("FINISHED")  # a second end is ignored
    statuses = {r.run_id: r.status for r in query_runs(store_uri, "status")}
    assert statuses == {
        failed.run_id: "FAILED",
        killed.run_id: "KILLED",
        explicit.run_id: "FAILED",
    }
    with pytest.raises(
        ConfigError, match="status must be one of FINISHED, FAILED, KILLED; got 'OK'"
    ):
        explicit.end("OK")


def test_many_and_long_params(store_uri: str, caplog: pytest.LogCaptureFixture) -> None:
    params = {f"search.p{i:03d}": i for i in range(250)}  # MLflow takes 100 per request
    params["data.options"] = "x" * 7000  # over MLflow's 6000-character limit
    with (
        caplog.at_level(logging.WARNING, logger="graft_hpo.tracking"),
        RunLogger.start(store_uri, "params") as run,
    ):
        run.log_params(params)
    (record,) = query_runs(store_uri, "params")
    assert record.run_id == run.run_id
    assert len(record.params) == 251
    assert record.params["search.p249"] == "249"
    assert record.params["data.options"] == "x" * 6000
    assert "'data.options' has 7000 characters; MLflow keeps 6000" in caplog.text


def test_query_unknown_experiment_lists_existing(store_uri: str) -> None:
    RunLogger.start(store_uri, "mnist-graft").end()
    with pytest.raises(ConfigError) as info:
        query_runs(store_uri, "mnist-graf")
    message = str(info.value)
    assert message.startswith("tracking.experiment 'mnist-graf' not found in sqlite:///")
    assert "(did you mean 'mnist-graft'?)" in message
    assert "existing experiments: " in message and "'mnist-graft'" in message


def test_filter_values_with_quotes_are_rejected(store_uri: str) -> None:
    RunLogger.start(store_uri, "quotes").end()
    with pytest.raises(ConfigError, match="sweep_id must not contain quotes"):
        query_runs(store_uri, "quotes", sweep_id="a' OR '1")
