"""A real two-node Ray cluster, an MLflow server and an RDB Optuna study, all on 127.0.0.1.

Two ``ray start --block`` nodes (1 CPU each, resources ``head_node`` / ``worker_node``) and an
``mlflow server`` (sqlite backend, artifacts served over HTTP) run as processes of their own
(tests/_cluster.py); ``graft-hpo sweep --address`` runs as a subprocess, so this pytest process
never joins Ray. With one CPU per node, one CPU per trial and two trials at once, both nodes
must train. The test stops exactly the processes it started.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest

from tests import _cluster

pytestmark = [pytest.mark.slow, pytest.mark.ray, pytest.mark.mlflow]

TRIALS = 4
SWEEP_TIMEOUT_S = 240


def _non_dominated(points: list[tuple[str, float, float]]) -> set[str]:
    """Run ids no other point beats in (val_acc max, co2_kg min), by the definition."""
    return {
        rid
        for rid, acc, co2 in points
        if not any(
            a >= acc and c <= co2 and (a > acc or c < co2) for r, a, c in points if r != rid
        )
    }


def test_a_sweep_runs_trials_on_both_nodes_of_a_cluster() -> None:
    with _cluster.cluster() as c:
        node_ids = c.ray_node_ids()
        assert set(node_ids) == {"ray-head", "ray-worker"}, c.logs()
        storage = f"sqlite:///{c.root / 'optuna.db'}"
        cmd = [
            sys.executable,
            "-m",
            "graft_hpo.cli",
            "sweep",
            "digits",
            "--address",
            c.ray_address,
            "--tracking-uri",
            c.tracking_uri,
            "--sweep-dir",
            str(c.root / "sweep"),
            "--trials",
            str(TRIALS),
            "--set",
            "train.epochs=2",
            "--set",
            "train.device=cpu",
            "--set",
            "emissions.measure_power_secs=1",
            "--set",
            "search.max_concurrent=2",
            "--set",
            f"search.storage={storage}",
            "--set",
            "resources.cpu=1",
            "--json",
        ]
        try:
            proc = subprocess.run(
                cmd,
                cwd=c.root,  # no default ./mlruns lands in the repository
                env=c.env,
                capture_output=True,
                text=True,
                timeout=SWEEP_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired as err:
            pytest.fail(f"sweep ran over {SWEEP_TIMEOUT_S}s:\n{err.stderr!r}\n{c.logs()}")
        assert proc.returncode == 0, f"{proc.stderr[-4000:]}\n{c.logs()}"
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        assert result["tracking_uri"] == c.tracking_uri
        assert result["trials"] == {
            "FINISHED": TRIALS,
            "early_stopped": 0,
            "FAILED": 0,
            "KILLED": 0,
        }

        from mlflow import MlflowClient

        client = MlflowClient(c.tracking_uri)
        experiment = client.get_experiment_by_name(result["experiment"])
        assert experiment is not None
        runs = client.search_runs(
            [experiment.experiment_id], f"tags.sweep_id = '{result['sweep_id']}'"
        )
        trials = [r for r in runs if r.data.tags.get("graft_hpo.role") == "trial"]
        assert len(trials) == TRIALS
        for run in trials:
            assert run.info.status == "FINISHED"
            assert run.data.tags["mlflow.parentRunId"] == result["parent_run_id"]
            assert run.data.tags["node"] == socket.gethostname()
            assert "val_acc" in run.data.metrics and "co2_kg" in run.data.metrics
        # every trial ran on a node of this cluster, and both nodes trained
        assert {r.data.tags["node_id"] for r in trials} == set(node_ids.values())

        # the parent run's front went to the server's artifact store over HTTP
        files = {f.path for f in client.list_artifacts(result["parent_run_id"], "pareto")}
        assert {"pareto/front.json", "pareto/front.csv", "pareto/front.png"} <= files
        assert list((c.root / "artifacts").rglob("front.json"))
        from mlflow.artifacts import download_artifacts

        front_file = download_artifacts(
            run_id=result["parent_run_id"],
            artifact_path="pareto/front.json",
            tracking_uri=c.tracking_uri,
            dst_path=str(c.root / "download"),
        )
        front = {p["run_id"] for p in json.loads(Path(front_file).read_text())["pareto"]}
        points = [
            (r.info.run_id, r.data.metrics["val_acc"], r.data.metrics["co2_kg"]) for r in trials
        ]
        assert front == _non_dominated(points) == {p["run_id"] for p in result["pareto"]}

        # the study lives in the given RDB storage, with the runs' objective values
        study = optuna.load_study(study_name=result["sweep_id"], storage=storage)
        complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        assert len(complete) == TRIALS
        told = sorted((t.values[0], t.values[1]) for t in complete)
        logged = sorted((r.data.metrics["val_acc"], r.data.metrics["co2_kg"]) for r in trials)
        np.testing.assert_allclose(told, logged, rtol=1e-9)
        assert not (c.root / "sweep" / "optuna.db").exists()  # not the default storage

        sessions = [d.proc.pid for d in c.daemons]
    # teardown left none of the processes the test started running
    assert all(not _cluster.session_members(sid) for sid in sessions)


KILL_AFTER = 4  # epochs the trial logs before its node is killed
EPOCHS = 16


def _trial_epochs(client: Any, experiment: str) -> tuple[str | None, int]:
    """The sweep's trial run, and the epochs it has logged so far."""
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return None, 0
    runs = client.search_runs([found.experiment_id], "tags.`graft_hpo.role` = 'trial'")
    if not runs:
        return None, 0
    run_id = runs[0].info.run_id
    return run_id, len({m.step for m in client.get_metric_history(run_id, "train_loss")})


def test_a_trial_goes_on_from_its_checkpoint_when_its_node_dies(tmp_path: Path) -> None:
    """The head takes no trials, so the one trial trains on the worker node; that node is
    killed (SIGKILL to its raylet and workers) mid-trial and a new node joins, as on a
    preemptible cluster. The trial goes on there from its last checkpoint, in its run."""
    from mlflow import MlflowClient

    space = tmp_path / "space.yaml"
    space.write_text("params:\n  selection.strategy: {type: categorical, choices: [graft]}\n")
    with _cluster.cluster(head_cpus=0) as c:
        cmd = [
            sys.executable, "-m", "graft_hpo.cli", "sweep", "digits", "--address",
            c.ray_address, "--tracking-uri", c.tracking_uri, "--sweep-dir",
            str(c.root / "sweep"), "--trials", "1", "--json",
            *[a for s in (
                f"train.epochs={EPOCHS}", "train.device=cpu", "train.checkpoint_every=1",
                "emissions.measure_power_secs=1", f"search.space={space}",
                "search.scheduler=null", "resources.cpu=1", "tracking.experiment=node-lost",
            ) for a in ("--set", s)],
        ]  # fmt: skip
        proc = subprocess.Popen(
            cmd, cwd=c.root, env=c.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        client = MlflowClient(c.tracking_uri)
        (worker,) = [d for d in c.daemons if d.name == "ray-worker"]
        node_ids = c.ray_node_ids()
        _cluster.wait_until(
            lambda: _trial_epochs(client, "node-lost")[1] >= KILL_AFTER,
            timeout_s=SWEEP_TIMEOUT_S,
            what=f"{KILL_AFTER} epochs of the trial",
            daemons=[worker],
        )
        _cluster.kill(worker)
        run_id, killed_at = _trial_epochs(client, "node-lost")
        assert killed_at < EPOCHS, "the trial finished before its node was killed"
        spare = _cluster.start_ray_worker(c, name="ray-worker-2")
        _cluster.wait_until(
            lambda: _cluster.ray_started(spare), timeout_s=120, what="spare", daemons=[spare]
        )
        try:
            out, err = proc.communicate(timeout=SWEEP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"sweep ran over {SWEEP_TIMEOUT_S}s:\n{err[-3000:]}\n{c.logs()}")
        assert proc.returncode == 0, f"{err[-4000:]}\n{c.logs()}"
        last = out.strip().splitlines()[-1]
        assert last.startswith("{"), f"stdout does not end with --json's object: {out[-2000:]!r}"
        result = json.loads(last)
        assert result["trials"]["FINISHED"] == 1
        run = client.get_run(run_id)
        assert run.info.status == "FINISHED"
        assert run.data.tags["attempts"] == "2"
        assert killed_at - 1 <= int(run.data.tags["resumed_from_epoch"]) <= killed_at
        assert run.data.metrics["epochs_completed"] == EPOCHS
        # it finished on the new node, not on the head or the dead one
        spare_id = c.ray_node_ids()["ray-worker-2"]
        assert run.data.tags["node_id"] == spare_id != node_ids["ray-worker"]
        assert "RETRIED" in err
