"""Real sweeps on digits: local Ray, a real sqlite MLflow store, real codecarbon, Optuna."""

from __future__ import annotations

import json
import os
import pickle
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import optuna
import pytest

from graft_hpo.exceptions import ConfigError
from graft_hpo.sweep import resume_sweep
from graft_hpo.sweep import run_sweep
from graft_hpo.tracking import metric_history
from graft_hpo.tracking import query_runs

pytestmark = [pytest.mark.ray, pytest.mark.mlflow]

QUICK = [
    "train.epochs=2",
    "train.device=cpu",
    "emissions.measure_power_secs=1",
    "search.max_concurrent=2",
]


def _brute_force_front(points: list[tuple[str, float, float]]) -> set[str]:
    """Run ids not dominated in (val_acc max, co2_kg min), by the definition."""
    front = set()
    for rid, acc, co2 in points:
        dominated = any(
            a >= acc and c <= co2 and (a > acc or c < co2) for r, a, c in points if r != rid
        )
        if not dominated:
            front.add(rid)
    return front


def _trial_records(uri: str, experiment: str, sweep_id: str) -> list:
    runs = query_runs(uri, experiment, sweep_id=sweep_id)
    return [r for r in runs if r.tags.get("graft_hpo.role") == "trial"]


def _study(sweep_dir: str, sweep_id: str) -> optuna.Study:
    return optuna.load_study(study_name=sweep_id, storage=f"sqlite:///{sweep_dir}/optuna.db")


def test_a_sweep_logs_nested_trials_and_its_front(ray_local: Path, tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    result = run_sweep(
        "digits",
        trials=4,
        overrides=[*QUICK, "tracking.experiment=sweep-basic"],
        tracking_uri=uri,
        sweep_dir=tmp_path / "sweep",
        printer=None,
        progress=True,  # a terminal's live bar (graft-hpo sweep on a tty)
    )
    json.dumps(result.to_dict())  # the pipeline-step result is plain JSON
    assert result.trials == {"FINISHED": 4, "early_stopped": 0, "FAILED": 0, "KILLED": 0}

    records = _trial_records(uri, "sweep-basic", result.sweep_id)
    assert len(records) == 4
    for r in records:
        assert r.status == "FINISHED"
        assert r.tags["mlflow.parentRunId"] == result.parent_run_id
        assert r.tags["sweep_id"] == result.sweep_id
        assert r.tags["ray_trial_id"] and r.tags["node"]
        assert r.tags["strategy"] == r.params["selection.strategy"]
        # named after the Ray trial: readable, and distinct although every trial seeds `random`
        assert r.tags["mlflow.runName"] == f"{r.tags['strategy']}-{r.tags['ray_trial_id']}"
        for metric in ("val_acc", "co2_kg", "energy_kwh", "duration_s", "fraction_effective"):
            assert metric in r.metrics
        epochs = metric_history(uri, r.run_id, "val_acc")
        assert [step for step, _ in epochs][:2] == [0, 1]
    assert len({r.tags["ray_trial_id"] for r in records}) == 4

    # the front equals the brute-force non-dominated set, and winners are tagged
    expected = _brute_force_front(
        [(r.run_id, r.metrics["val_acc"], r.metrics["co2_kg"]) for r in records]
    )
    assert {p["run_id"] for p in result.pareto} == expected
    tags = {
        r.run_id: r.tags.get("pareto") for r in _trial_records(uri, "sweep-basic", result.sweep_id)
    }
    assert {rid for rid, t in tags.items() if t == "true"} == expected
    assert set(tags.values()) <= {"true", "false"}

    # the parent run holds the front and its plot
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    parent = client.get_run(result.parent_run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["graft_hpo.role"] == "sweep"
    files = {f.path for f in client.list_artifacts(result.parent_run_id, "pareto")}
    assert {"pareto/front.json", "pareto/front.csv", "pareto/front.png"} <= files
    assert parent.data.metrics["trials_FINISHED"] == 4

    # Optuna holds the same trials with the same objective values
    study = _study(result.sweep_dir, result.sweep_id)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 4
    logged = sorted((r.metrics["val_acc"], r.metrics["co2_kg"]) for r in records)
    told = sorted((t.values[0], t.values[1]) for t in complete)
    np.testing.assert_allclose(told, logged, rtol=1e-9)

    # Tune's saved state (its pickled callbacks) restores although the sweep showed a bar: a
    # resume of the finished sweep trains nothing again
    lines: list[str] = []
    resumed = resume_sweep(str(result.sweep_dir), printer=lines.append, progress=True)
    assert resumed.trials == result.trials
    assert len(_trial_records(uri, "sweep-basic", result.sweep_id)) == 4
    assert lines and lines[0].startswith(f"sweep {result.sweep_id}")

    # a saved state that cannot be read back (an older graft-hpo pickled its console's tqdm
    # bar, whose unpickling recurses): one line saying what to do, and the parent run ends
    # FAILED with the reason, not RUNNING
    state = Path(result.sweep_dir) / "ray" / "tuner.pkl"
    state.write_bytes(pickle.dumps(_Unreadable()))
    with pytest.raises(ConfigError, match="cannot be resumed: a graft-hpo older than this"):
        resume_sweep(str(result.sweep_dir), printer=None)
    parent = client.get_run(result.parent_run_id)
    assert parent.info.status == "FAILED"
    assert parent.data.tags["error"].startswith("ConfigError: sweep folder")
    assert {r.status for r in _trial_records(uri, "sweep-basic", result.sweep_id)} == {"FINISHED"}


class _Unreadable:
    """Unpickles as tqdm's bar did: looking up ``__setstate__`` recurses without end."""

    def __getattr__(self, name: str) -> object:
        return getattr(self, name)


def test_early_stopped_trials_stay_off_the_front(ray_local: Path, tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = run_sweep(
        "digits",
        trials=6,
        overrides=[
            *QUICK,  # 2 epochs: Ray's rungs are 1 and 2, the last epoch
            "search.max_concurrent=1",  # sequential: ASHA's decisions are reproducible
            "search.scheduler={type: asha, metric: val_acc, mode: max, grace_period: 1, "
            "reduction_factor: 2}",
            "tracking.experiment=sweep-asha",
        ],
        tracking_uri=uri,
        sweep_dir=tmp_path / "sweep",
        printer=None,
    )
    records = _trial_records(uri, "sweep-asha", result.sweep_id)
    stopped = [r for r in records if r.tags.get("early_stopped") == "true"]
    assert result.trials["early_stopped"] == len(stopped) >= 1
    assert result.trials["FINISHED"] + len(stopped) == 6
    front = {p["run_id"] for p in result.pareto}
    for r in stopped:
        assert r.run_id not in front
        assert r.tags.get("pareto") == "false"
        assert r.status == "FINISHED"
        # stopped at the first rung only: a trial that trained every epoch is never stopped
        assert r.metrics["epochs_completed"] == 1
        assert "val_acc" in r.metrics and "co2_kg" in r.metrics  # last epoch's, for Optuna
    for r in records:  # cumulative energy never falls along its history, stopped or not
        energy = [value for _, value in metric_history(uri, r.run_id, "energy_kwh")]
        assert energy == sorted(energy), (r.tags["mlflow.runName"], energy)
    finished = [r for r in records if r.tags.get("early_stopped") != "true"]
    expected = _brute_force_front(
        [(r.run_id, r.metrics["val_acc"], r.metrics["co2_kg"]) for r in finished]
    )
    assert front == expected
    # a stopped trial is still told to Optuna as COMPLETE, with its last values
    study = _study(result.sweep_dir, result.sweep_id)
    assert sum(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials) == 6


def test_bad_sweep_input_writes_nothing(ray_local: Path, tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    cases = [
        ({"trials": 0}, "--trials must be an integer >= 1; got 0"),
        ({"trials": 2.5}, "--trials must be an integer >= 1; got 2.5"),
        ({"trials": "3"}, "--trials must be an integer >= 1; got '3'"),
        ({"overrides": ["search.objectives=[{metric: accuracy, mode: max}]"]}, "'accuracy'"),
        ({"overrides": ["resources.gpu=1"]}, "gpu=1"),
        ({"overrides": ["search.space=null"]}, "search.space"),
    ]
    for kwargs, needle in cases:
        start = time.perf_counter()
        with pytest.raises(ConfigError, match=needle):
            run_sweep("digits", tracking_uri=uri, sweep_dir=tmp_path / "s", printer=None, **kwargs)
        assert time.perf_counter() - start < 30
    assert not (tmp_path / "store").exists()
    assert not (tmp_path / "s").exists()


def test_sweeps_refused_before_ray_starts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Refused in one line before Ray starts (or the shared ranking runs): another sweep's
    folder (its state was rewritten), a store MLflow refuses (found after Ray and the ranking),
    a run `mlflow run` opened that is already a sweep's parent (its record was corrupted), a
    printer that is not callable (the parent run stayed RUNNING)."""
    import graft_hpo.sweep._prepare as prepare
    from graft_hpo.tracking import RunLogger

    def no_ray(*args: object, **kwargs: object) -> None:
        raise AssertionError("Ray started")

    monkeypatch.setattr(prepare, "start_ray", no_ray)
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    old = tmp_path / "old_sweep"
    old.mkdir()
    (old / "sweep.json").write_text("{}")
    with pytest.raises(
        ConfigError,
        match=r"^--sweep-dir '.*old_sweep' holds another sweep "
        r"\(sweep.json\): continue it with `graft-hpo resume .*old_sweep`",
    ):
        run_sweep("digits", sweep_dir=old, tracking_uri=uri, printer=None)
    assert (old / "sweep.json").read_text() == "{}"
    with pytest.raises(ConfigError, match="MLFLOW_ALLOW_FILE_STORE=true"):
        run_sweep("mnist", tracking_uri=f"file://{tmp_path}/filestore", printer=None)
    adopted = RunLogger.start(uri, "step", tags={"sweep_id": "first-sweep"})
    monkeypatch.setenv("MLFLOW_RUN_ID", adopted.run_id)
    with pytest.raises(
        ConfigError,
        match=f"^MLFLOW_RUN_ID {adopted.run_id} is already the "
        "parent run of sweep first-sweep: one sweep per run of `mlflow run`",
    ):
        run_sweep("digits", tracking_uri=uri, sweep_dir=tmp_path / "s", printer=None)
    assert adopted.tags()["sweep_id"] == "first-sweep"
    monkeypatch.delenv("MLFLOW_RUN_ID")
    with pytest.raises(ConfigError, match="printer must be a callable taking one line"):
        run_sweep("digits", tracking_uri=uri, sweep_dir=tmp_path / "s", printer=sys.stdout)  # type: ignore[arg-type]
    assert not (tmp_path / "s").exists()


def _finished(db: Path) -> int:
    """FINISHED trial runs, read with sqlite3 itself: an MLflow client opened while the sweep's
    driver is still creating the store would race its schema migration."""
    if not db.exists():
        return 0
    query = (
        "SELECT COUNT(*) FROM runs JOIN tags ON tags.run_uuid = runs.run_uuid "
        "WHERE runs.status = 'FINISHED' AND tags.key = 'graft_hpo.role' AND tags.value = 'trial'"
    )
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return int(conn.execute(query).fetchone()[0])
    except sqlite3.OperationalError:  # tables not created yet
        return 0


def _start_sweep_subprocess(
    home: Path, tmp_path: Path, extra: Sequence[str] = (), **popen: object
) -> subprocess.Popen:
    """`graft-hpo sweep digits --trials 4` (sequential trials, then ``extra`` arguments) in
    its own process group, returned once exactly one trial has finished: every later trial
    waits at a gate (``tests.plugins.gated``) until :func:`_open_gate`, so an interruption
    never races them."""
    gate = tmp_path / "gate"
    gate.touch()
    args = [
        sys.executable, "-m", "graft_hpo.cli", "sweep", "digits", "--trials", "4",
        "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}",
        "--sweep-dir", str(tmp_path / "sweep"),
        "--set", "tracking.experiment=sweep-resume", "--set", "search.max_concurrent=1",
        *[a for q in QUICK for a in ("--set", q)],
        "--set", "data.name=tests.plugins.gated:digits", "--set", f"data.options.gate={gate}",
        *extra,
    ]  # fmt: skip
    repo = str(Path(__file__).resolve().parents[2])  # `tests.plugins` for the driver and workers
    env = {**os.environ, "HOME": str(home), "PYTHONPATH": repo}
    proc = subprocess.Popen(args, cwd=tmp_path, env=env, start_new_session=True, **popen)  # type: ignore[call-overload]
    deadline = time.monotonic() + 240
    while _finished(tmp_path / "mlflow.db") < 1 and time.monotonic() < deadline:
        assert proc.poll() is None, "the sweep ended before its first trial finished"
        time.sleep(0.2)
    assert _finished(tmp_path / "mlflow.db") == 1, "no trial finished in 240 s"
    return proc


def _open_gate(tmp_path: Path) -> None:
    (tmp_path / "gate").unlink()


def _assert_resumed_to_four(uri: str, sweep_dir: Path) -> None:
    result = resume_sweep(str(sweep_dir), printer=None)
    records = _trial_records(uri, "sweep-resume", result.sweep_id)
    finished = [r for r in records if r.status == "FINISHED"]
    assert len(finished) == 4  # exactly the requested number ...
    assert len({r.tags["ray_trial_id"] for r in finished}) == 4  # ... none trained twice
    assert all(r.status in ("FINISHED", "KILLED") for r in records)
    assert result.trials["FINISHED"] == 4
    study = _study(result.sweep_dir, result.sweep_id)
    assert sum(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials) == 4
    from mlflow import MlflowClient

    assert MlflowClient(uri).get_run(result.parent_run_id).info.status == "FINISHED"


@pytest.mark.slow
def test_ctrl_c_stops_the_sweep_and_resume_completes_it(ray_local: Path, tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = _start_sweep_subprocess(
        ray_local, tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal sends to the job
    _, stderr = proc.communicate(timeout=180)
    assert proc.returncode == 130, stderr[-2000:]
    assert f"graft-hpo resume {tmp_path / 'sweep'}" in stderr
    records = query_runs(uri, "sweep-resume")
    assert not [r for r in records if r.status == "RUNNING"]  # nothing left open
    (parent,) = [r for r in records if r.tags.get("graft_hpo.role") == "sweep"]
    assert parent.status == "KILLED"
    assert _finished(tmp_path / "mlflow.db") == 1  # the later trials were held at the gate
    _open_gate(tmp_path)
    _assert_resumed_to_four(uri, tmp_path / "sweep")


@pytest.mark.slow
def test_resume_after_the_driver_was_killed(ray_local: Path, tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = _start_sweep_subprocess(
        ray_local, tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and the Ray it started
    proc.wait(timeout=60)
    assert _finished(tmp_path / "mlflow.db") == 1  # the later trials were held at the gate
    _open_gate(tmp_path)
    _assert_resumed_to_four(uri, tmp_path / "sweep")


@pytest.mark.slow
def test_mlflow_project_entry_point_adopts_the_project_run(
    ray_local: Path, tmp_path: Path
) -> None:
    """`mlflow run . -e sweep` makes the project's run the sweep's parent run."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "HOME": str(ray_local),
        "MLFLOW_TRACKING_URI": uri,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    repo = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlflow",
            "run",
            str(repo),
            "-e",
            "sweep",
            "-P",
            "pipeline=digits",
            "-P",
            "trials=2",
            "--env-manager",
            "local",
            "--experiment-name",
            "project",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    runs = query_runs(uri, "project")
    parents = [r for r in runs if r.tags.get("graft_hpo.role") == "sweep"]
    trials = [r for r in runs if r.tags.get("graft_hpo.role") == "trial"]
    assert len(parents) == 1 and len(trials) == 2
    assert parents[0].tags.get("mlflow.project.entryPoint") == "sweep"
    assert all(t.tags["mlflow.parentRunId"] == parents[0].run_id for t in trials)
    assert all(r.status == "FINISHED" for r in runs)


def test_any_metric_can_be_an_objective_also_under_moasha(ray_local: Path, tmp_path: Path) -> None:
    # duration_s and epochs_completed are reported after every epoch too (so far): a sweep on
    # them ranks, schedules and finishes (every trial failed "not measured" before)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = run_sweep(
        "digits",
        trials=3,
        overrides=[
            *QUICK,
            "train.epochs=3",
            "search.max_concurrent=1",
            "search.objectives=[{metric: val_acc, mode: max}, {metric: duration_s, mode: min}]",
            "search.scheduler={type: moasha, grace_period: 1, reduction_factor: 2}",
            "tracking.experiment=sweep-duration",
        ],
        tracking_uri=uri,
        sweep_dir=tmp_path / "sweep",
        printer=None,
    )
    assert result.trials["FAILED"] == 0
    assert result.pareto and all("duration_s" in p["metrics"] for p in result.pareto)
    for r in _trial_records(uri, "sweep-duration", result.sweep_id):
        seconds = [v for _, v in metric_history(uri, r.run_id, "duration_s")]
        epochs = [v for _, v in metric_history(uri, r.run_id, "epochs_completed")]
        assert len(seconds) >= 2 and seconds == sorted(seconds)  # cumulative, every epoch
        assert epochs[: int(r.metrics["epochs_completed"])] == [
            float(e + 1) for e in range(int(r.metrics["epochs_completed"]))
        ]


def test_a_configuration_only_a_worker_can_refuse_fails_its_trial_once(
    ray_local: Path, tmp_path: Path
) -> None:
    # digits has no official test split: test_fraction=0 passes validation and is refused by
    # the loader in the worker. A failed trial with its run and error, not a lost worker that
    # Ray retries (search.max_failures times, the same refusal) and the sweep cannot name.
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    lines: list[str] = []
    result = run_sweep(
        "digits",
        trials=1,
        overrides=[*QUICK, "data.test_fraction=0", "tracking.experiment=sweep-refused"],
        tracking_uri=uri,
        sweep_dir=tmp_path / "sweep",
        printer=lines.append,
    )
    assert result.trials["FAILED"] == 1
    (failed,) = result.failed
    assert failed["error"].startswith("ConfigError: data.test_fraction must take at least one")
    assert not [line for line in lines if "RETRIED" in line]
    (run,) = _trial_records(uri, "sweep-refused", result.sweep_id)
    assert run.status == "FAILED" and run.tags["error"] == failed["error"]
    assert run.params["data.test_fraction"] == "0.0"


def test_a_draw_the_config_cross_checks_refuse_fails_its_trial_once(
    ray_local: Path, tmp_path: Path
) -> None:
    # each fraction passes validate_space's probes alone, their sum (1.2) does not: the worker
    # refused the draw while building its config, outside the trial, so Ray retried it as a
    # lost worker twice and the sweep's failure list said "none recorded"
    space = tmp_path / "fractions.yaml"
    space.write_text(
        "params:\n"
        "  data.val_fraction: {type: categorical, choices: [0.6]}\n"
        "  data.test_fraction: {type: categorical, choices: [0.6]}\n"
    )
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    lines: list[str] = []
    result = run_sweep(
        "digits",
        trials=1,
        overrides=[*QUICK, f"search.space={space}", "tracking.experiment=sweep-draw-refused"],
        tracking_uri=uri,
        sweep_dir=tmp_path / "sweep",
        printer=lines.append,
    )
    assert result.trials["FAILED"] == 1
    (failed,) = result.failed
    assert failed["error"].startswith("ConfigError: ") and "test_fraction" in failed["error"]
    assert not [line for line in lines if "RETRIED" in line]
    (run,) = _trial_records(uri, "sweep-draw-refused", result.sweep_id)
    assert run.status == "FAILED" and run.tags["error"] == failed["error"]
    assert run.params["data.val_fraction"] == "0.6" == run.params["data.test_fraction"]
