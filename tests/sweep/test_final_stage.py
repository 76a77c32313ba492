"""Carbon budgets and the pipeline's final stage (select -> retrain -> registry), end to end."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from graft_hpo.cli import main
from graft_hpo.sweep import resume_sweep
from graft_hpo.sweep import run_sweep
from graft_hpo.tracking import query_runs

pytestmark = [pytest.mark.ray, pytest.mark.mlflow]

QUICK = ["train.epochs=2", "train.device=cpu", "emissions.measure_power_secs=1"]


def _trials(uri: str, experiment: str, sweep_id: str) -> list:
    runs = query_runs(uri, experiment, sweep_id=sweep_id)
    return [r for r in runs if r.tags.get("graft_hpo.role") == "trial"]


def test_a_co2_budget_stops_scheduling_new_trials(ray_local: Path, tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    # any real trial emits more than 1e-12 kg: the two trials started at once exhaust it
    result = run_sweep(
        "digits",
        trials=6,
        overrides=[
            *QUICK,
            "search.max_concurrent=2",
            "search.co2_budget_kg=1e-12",
            "tracking.experiment=budget",
        ],
        tracking_uri=uri,
        sweep_dir=tmp_path / "sweep",
    )
    runs = _trials(uri, "budget", result.sweep_id)
    assert 1 <= len(runs) <= 2 < 6
    assert all(r.status == "FINISHED" for r in runs)  # running trials finished cleanly
    assert result.trials["FINISHED"] == len(runs)
    assert result.stop_reason is not None and "CO2 budget reached" in result.stop_reason
    measured = sum(r.metrics["co2_kg"] for r in runs)
    assert result.totals["sweep_co2_kg"] == pytest.approx(measured)
    assert measured >= 1e-12

    from mlflow import MlflowClient

    client = MlflowClient(uri)
    parent = client.get_run(result.parent_run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["stop_reason"] == result.stop_reason
    path = client.download_artifacts(result.parent_run_id, "pareto/summary.json", str(tmp_path))
    summary = json.loads(Path(path).read_text())
    assert summary["requested"] == 6 and summary["stop_reason"] == result.stop_reason

    # resumed, it starts nothing and still says why it stopped (the reason was erased)
    resumed = resume_sweep(tmp_path / "sweep", printer=None)
    assert resumed.stop_reason == result.stop_reason
    assert len(_trials(uri, "budget", result.sweep_id)) == len(runs)
    path = client.download_artifacts(result.parent_run_id, "pareto/summary.json", str(tmp_path))
    assert json.loads(Path(path).read_text())["stop_reason"] == result.stop_reason


def test_a_pipeline_goes_from_data_to_a_registered_model(
    ray_local: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = run_sweep(
        "digits",
        trials=3,
        overrides=[
            *QUICK,
            "search.max_concurrent=2",
            "tracking.experiment=final",
            "select={policy: 'max:val_acc'}",
            "retrain={epochs: 1, register: digits-best, overrides: {selection.strategy: full}}",
        ],
        tracking_uri=uri,
        sweep_dir=tmp_path / "sweep",
    )
    json.dumps(result.to_dict())
    front = {p["run_id"]: p["metrics"]["val_acc"] for p in result.pareto}
    assert result.selected is not None and result.selected["run_id"] in front
    assert result.selected["metrics"]["val_acc"] == max(front.values())
    assert result.model is not None and result.model["status"] == "FINISHED"
    assert result.model["model_uri"] == "models:/digits-best/1"
    assert result.model["source_run_id"] == result.selected["run_id"]
    assert "test_acc" in result.model["metrics"]

    # the registered model predicts on inputs it never saw
    import mlflow
    from mlflow import MlflowClient

    from graft_hpo.tracking._global_uri import global_tracking_uri

    assert "MLFLOW_TRACKING_URI" not in os.environ  # the retraining left no global state
    with global_tracking_uri(uri):
        model = mlflow.pyfunc.load_model("models:/digits-best/1")
    images = np.random.default_rng(0).standard_normal((5, 1, 8, 8)).astype(np.float32)
    scores = model.predict(images)
    assert np.asarray(scores).shape == (5, 10) and np.isfinite(scores).all()

    client = MlflowClient(uri)
    version = client.get_model_version("digits-best", "1")
    lineage = version.tags
    assert lineage["sweep_id"] == result.sweep_id
    assert lineage["source_run_id"] == result.selected["run_id"]
    assert lineage["strategy"] == "full"
    assert float(lineage["sweep_co2_kg"]) == pytest.approx(result.totals["sweep_co2_kg"])
    assert float(lineage["retrain_co2_kg"]) == pytest.approx(result.model["metrics"]["co2_kg"])
    retrain_run = client.get_run(result.model["run_id"])
    assert retrain_run.info.status == "FINISHED"
    assert retrain_run.data.tags["graft_hpo.role"] == "retrain"
    assert retrain_run.data.tags["mlflow.runName"] == f"retrain-{result.selected['run_id'][:8]}"
    # a retraining is not a trial of the sweep: the front and the counts are unchanged
    assert len(_trials(uri, "final", result.sweep_id)) == 3
    parent = client.get_run(result.parent_run_id).data.tags
    assert parent["selected_run_id"] == result.selected["run_id"]
    assert parent["model_uri"] == "models:/digits-best/1"
    # resumed when finished, it chooses the same run and does not train or register it again
    again = resume_sweep(tmp_path / "sweep", printer=None)
    assert again.selected is not None and again.selected["run_id"] == result.selected["run_id"]
    assert again.model == result.model
    assert [int(v.version) for v in client.search_model_versions("name='digits-best'")] == [1]

    # the CLI's select: the same choice as JSON; an infeasible budget names the closest point
    capsys.readouterr()
    argv = ["--tracking-uri", uri, "--experiment", "final", "--sweep-id", result.sweep_id]
    assert main(["select", *argv, "--policy", "max:val_acc", "--json"]) == 0
    chosen = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert chosen["run_id"] == result.selected["run_id"]
    assert main(["select", *argv, "--policy", "budget:co2_kg<=1e-15"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "closest is run" in err[0] and "co2_kg=" in err[0]


def test_a_select_stage_no_point_satisfies_keeps_the_sweeps_front(
    ray_local: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A budget below every trial's CO2: the stage fails after the sweep has run. Raised, the
    error printed one line and lost the front (exit 2, nothing on stdout); now the front is
    printed, the stage's error is said and kept in ``selected``, and the exit code is 1."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    sets = [*QUICK, "tracking.experiment=unmet", "select={policy: 'budget:co2_kg<=1e-15'}"]
    argv = ["sweep", "digits", "--trials", "1", "--tracking-uri", uri, "--json"]
    code = main(
        [*argv, "--sweep-dir", str(tmp_path / "sweep"), *(a for s in sets for a in ("--set", s))]
    )
    out, err = capsys.readouterr()
    assert code == 1, err
    result = json.loads(out.strip().splitlines()[-1])
    assert result["trials"]["FINISHED"] == 1 and len(result["pareto"]) == 1
    assert result["selected"]["policy"] == "budget:co2_kg<=1e-15"
    assert result["selected"]["error"].startswith("no point of the front satisfies")
    assert "select stage failed: no point of the front satisfies" in err
    assert result["model"] is None
