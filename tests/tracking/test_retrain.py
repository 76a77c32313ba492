"""retrain's input checks: the model's name before any training, and a run's stored config."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pytest

from graft_hpo.config import config_to_dict
from graft_hpo.exceptions import ConfigError
from graft_hpo.retraining import config_of_run
from graft_hpo.retraining import retrain
from graft_hpo.trial import CONFIG_ARTIFACT
from graft_hpo.trial import run_trial

pytestmark = pytest.mark.mlflow

EXPERIMENT = "retrain-checks"


@pytest.fixture(scope="module")
def trial_run(store_uri: str) -> str:
    """A real one-epoch digits trial run, logged with its config."""
    from graft_hpo.config import load_pipeline

    config = load_pipeline(
        "digits",
        overrides=[
            "train.epochs=1",
            "emissions.enabled=false",
            f"tracking.experiment={EXPERIMENT}",
        ],
    )
    result = run_trial(config, tracking_uri=store_uri)
    assert result.status == "FINISHED" and result.run_id is not None
    return result.run_id


def _run_with_config(store_uri: str, text: str) -> str:
    """A run whose config.json artifact holds ``text`` (as an older version could have left)."""
    from mlflow import MlflowClient

    from graft_hpo.tracking import ensure_experiment

    client = MlflowClient(tracking_uri=store_uri)
    run = client.create_run(ensure_experiment(store_uri, EXPERIMENT))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / CONFIG_ARTIFACT
        path.write_text(text)
        client.log_artifact(run.info.run_id, str(path))
    client.set_terminated(run.info.run_id)
    return run.info.run_id


def _run_count(store_uri: str) -> int:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=store_uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    return len(client.search_runs([experiment.experiment_id]))


@pytest.mark.parametrize("name", ["bad/name", "", "a:b"])
def test_a_name_the_registry_refuses_is_refused_before_training(
    store_uri: str, trial_run: str, name: str
) -> None:
    before = _run_count(store_uri)
    with pytest.raises(ConfigError, match=r"^--register must be a non-empty string of letters"):
        retrain(trial_run, tracking_uri=store_uri, register=name)
    assert _run_count(store_uri) == before  # nothing trained, nothing logged


def test_overrides_mend_a_stored_value_this_version_refuses(
    store_uri: str, trial_run: str
) -> None:
    stored = config_of_run(trial_run, tracking_uri=store_uri)
    data = config_to_dict(stored)
    data["train"]["epochs"] = -3  # e.g. a bound tightened since the run was logged
    run_id = _run_with_config(store_uri, json.dumps(data))
    with pytest.raises(ConfigError) as info:
        config_of_run(run_id, tracking_uri=store_uri)
    assert str(info.value).startswith(f"run {run_id}'s {CONFIG_ARTIFACT}")
    assert "train.epochs must be in [1, 100000]; got -3" in str(info.value)
    mended = config_of_run(run_id, tracking_uri=store_uri, overrides={"train.epochs": 2})
    assert mended.train.epochs == 2
    assert mended.selection == stored.selection


def test_a_bad_override_is_blamed_on_the_override_not_on_the_run(
    store_uri: str, trial_run: str
) -> None:
    with pytest.raises(ConfigError) as info:
        config_of_run(trial_run, tracking_uri=store_uri, overrides=["train.epocs=2"])
    assert str(info.value).startswith("unknown key 'train.epocs'")


def test_a_config_artifact_that_is_not_json_is_one_line(store_uri: str) -> None:
    run_id = _run_with_config(store_uri, "{not json")
    with pytest.raises(ConfigError, match=rf"^RUN_ID '{run_id}': its config.json is not JSON"):
        config_of_run(run_id, tracking_uri=store_uri)


def test_a_registry_that_fails_after_training_keeps_the_logged_model(
    store_uri: str,
    trial_run: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A store whose registry refuses (a server without one, a lost connection) must not
    lose the trained model: the result, its run and its logged model stay, with the reason."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from graft_hpo.cli import main
    from graft_hpo.tracking import load_model

    def refuse(*args: object, **kwargs: object) -> None:
        raise MlflowException("this store has no model registry")

    monkeypatch.setattr(mlflow, "register_model", refuse)
    result = retrain(trial_run, tracking_uri=store_uri, register="digits-cnn")
    assert result.status == "FINISHED" and result.registered is None
    assert result.model_uri == f"runs:/{result.run_id}/model"
    assert result.error is not None
    assert "registering the model as 'digits-cnn' failed" in result.error
    assert "this store has no model registry" in result.error
    model = load_model(result.model_uri, tracking_uri=store_uri)
    assert model.predict(np.zeros((1, 1, 8, 8), dtype=np.float32)).shape == (1, 10)

    capsys.readouterr()
    argv = ["retrain", trial_run, "--tracking-uri", store_uri, "--register", "digits-cnn"]
    assert main(argv) == 1  # the user asked for a registered model and did not get one
    out = capsys.readouterr().out
    assert "error: registering the model as 'digits-cnn' failed" in out and "model: runs:/" in out


def test_an_unregistered_model_loads_from_the_uri_retrain_gives(
    store_uri: str, trial_run: str
) -> None:
    """``runs:/RUN_ID/model`` finds the model only in the run's experiment: MLflow would log
    it, without an active run, into the Default experiment."""
    from mlflow import MlflowClient

    from graft_hpo.tracking import load_model

    result = retrain(trial_run, tracking_uri=store_uri)
    assert result.status == "FINISHED" and result.registered is None and result.error is None
    assert result.model_uri == f"runs:/{result.run_id}/model"
    model = load_model(result.model_uri, tracking_uri=store_uri)
    x = np.zeros((2, 1, 8, 8), dtype=np.float32)
    assert model.predict(x).shape == (2, 10)
    # it takes the data set's own scale (digits: pixels in [0, 1]), the loader's seed-dependent
    # normalisation inside: on the raw test images it scores the run's test accuracy
    from sklearn.datasets import load_digits

    from graft_hpo.data import load_data
    from graft_hpo.retraining import config_of_run

    config = config_of_run(result.run_id, tracking_uri=store_uri)
    bundle = load_data(config.data, seed=config.train.seed)
    digits = load_digits()
    raw = (digits.images / 16.0).astype(np.float32)[:, None]
    test_x, test_y = bundle.test.tensors  # normalised: find each test image among the raw ones
    mean, std = bundle.mean[0], bundle.std[0]
    flat = raw.reshape(len(raw), -1)
    index = [int(np.abs(flat - (t.numpy().ravel() * std + mean)).sum(1).argmin()) for t in test_x]
    accuracy = (model.predict(raw[index]).argmax(axis=1) == test_y.numpy()).mean()
    assert accuracy == pytest.approx(result.metrics["test_acc"], abs=1e-9)
    client = MlflowClient(store_uri)
    experiment = client.get_run(result.run_id).info.experiment_id
    (logged,) = [
        m
        for m in client.search_logged_models(experiment_ids=[experiment])
        if m.source_run_id == result.run_id
    ]
    assert logged.name == "model"


def test_a_float64_plugin_model_is_retrained_and_logged(store_uri: str) -> None:
    """A plug-in's float64 data and model train as trials do; the logged model's input example
    must be float64 too (float32 examples failed the model after all its training)."""
    from graft_hpo.config import load_pipeline
    from graft_hpo.tracking import load_model

    config = load_pipeline(
        "digits",
        overrides=[
            "search.space=null",
            "data.name=tests.plugins.contract:float64_inputs",
            "model.name=tests.plugins.toy:mlp64",
            "train.epochs=1",
            "emissions.enabled=false",
            f"tracking.experiment={EXPERIMENT}",
        ],
    )
    trial = run_trial(config, tracking_uri=store_uri)
    assert trial.status == "FINISHED" and trial.run_id is not None
    result = retrain(trial.run_id, tracking_uri=store_uri)
    assert result.status == "FINISHED", result.error
    assert result.model_uri is not None
    model = load_model(result.model_uri, tracking_uri=store_uri)
    assert model.predict(np.zeros((3, 5), dtype=np.float64)).shape == (3, 3)


def test_lineage_gives_the_share_of_the_data_each_model_trained_on(
    store_uri: str, trial_run: str
) -> None:
    """A full-data retraining trained on all of it: its lineage says 1.0, not the pipeline's
    unused selection.fraction; the source's share is the trial's fraction_effective."""
    from mlflow import MlflowClient

    trial = MlflowClient(store_uri).get_run(trial_run)
    assert trial.data.params["selection.strategy"] != "full"
    result = retrain(trial_run, tracking_uri=store_uri, overrides=["selection.strategy=full"])
    assert result.status == "FINISHED", result.error
    assert result.lineage["strategy"] == "full" and float(result.lineage["fraction"]) == 1.0
    shared = trial.data.metrics["fraction_effective"]  # one epoch: its warm-up, all the data
    assert float(result.lineage["source_fraction"]) == shared
    assert shared != float(trial.data.params["selection.fraction"])
