"""MO-ASHA in real sweeps on digits: what Optuna is told of a stopped trial, the finished
trials' test score, and the scheduler's rungs across a killed driver."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import optuna
import pytest

from graft_hpo.sweep import resume_sweep
from graft_hpo.sweep import run_sweep
from graft_hpo.sweep._folder import SweepFolder
from tests.sweep.test_sweep import QUICK
from tests.sweep.test_sweep import _finished
from tests.sweep.test_sweep import _open_gate
from tests.sweep.test_sweep import _start_sweep_subprocess
from tests.sweep.test_sweep import _study
from tests.sweep.test_sweep import _trial_records

pytestmark = [pytest.mark.ray, pytest.mark.mlflow]

MOASHA = "search.scheduler={type: moasha, grace_period: 1, reduction_factor: 2}"


def test_stopped_trials_are_told_to_optuna_with_their_cost_projected(
    ray_local: Path, tmp_path: Path
) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = run_sweep(
        "digits",
        trials=6,
        overrides=[
            *QUICK,
            "train.epochs=3",
            "search.max_concurrent=1",
            MOASHA,
            "search.stopped_report=projected",
            "tracking.experiment=sweep-moasha",
        ],
        tracking_uri=uri,
        sweep_dir=tmp_path / "sweep",
        printer=None,
    )
    records = {r.run_id: r for r in _trial_records(uri, "sweep-moasha", result.sweep_id)}
    stopped = [r for r in records.values() if r.tags.get("early_stopped") == "true"]
    done = [r for r in records.values() if r.tags.get("early_stopped") != "true"]
    assert stopped and done and len(records) == 6
    # trained to the end: scored once on the test split; stopped: not scored, not on the front
    assert all(0 < r.metrics["test_acc"] <= 1 for r in done)
    assert not any("test_acc" in r.metrics for r in stopped)
    assert not {r.run_id for r in stopped} & {p["run_id"] for p in result.pareto}
    # the rungs the scheduler ranked at, with every trial that reached them
    rungs = SweepFolder(str(tmp_path / "sweep")).read_rungs()
    assert {r for r, recorded in rungs.items() if recorded} == {1, 2}  # 3 epochs: not 4
    assert len(rungs[1]) == 6
    # Optuna: a finished trial as logged; a stopped one with the values it was ranked on at
    # its last rung, CO2 scaled to the 3 epochs (matched by the sampled learning rate)
    study = _study(result.sweep_dir, result.sweep_id)
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    for run in records.values():
        (trial,) = [
            t for t in study.trials
            if t.params["train.lr"] == pytest.approx(float(run.params["train.lr"]), rel=1e-12)
        ]  # fmt: skip
        if run in done:
            assert trial.values == pytest.approx([run.metrics["val_acc"], run.metrics["co2_kg"]])
            continue
        ray_id = run.tags["ray_trial_id"]
        rung = max(int(r) for r, recorded in rungs.items() if ray_id in recorded)
        acc, co2 = rungs[rung][ray_id]
        assert trial.values == pytest.approx([acc, co2 * 3 / rung], rel=1e-9)


@pytest.mark.slow
def test_resume_after_a_killed_driver_keeps_the_rungs(ray_local: Path, tmp_path: Path) -> None:
    proc = _start_sweep_subprocess(
        ray_local,
        tmp_path,
        extra=["--set", MOASHA, "--set", "train.epochs=3"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert _finished(tmp_path / "mlflow.db") == 1
    before = SweepFolder(str(tmp_path / "sweep")).read_rungs()
    assert len(before[1]) == 1  # the first trial, ranked before the kill
    _open_gate(tmp_path)
    result = resume_sweep(str(tmp_path / "sweep"), printer=None)
    after = SweepFolder(str(tmp_path / "sweep")).read_rungs()
    assert set(before[1]) < set(after[1])  # kept, not started afresh
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    records = _trial_records(uri, "sweep-resume", result.sweep_id)
    ended = [r for r in records if r.status == "FINISHED"]
    assert len({r.tags["ray_trial_id"] for r in ended}) == 4  # every trial, none twice
    assert len(after[1]) == 4
