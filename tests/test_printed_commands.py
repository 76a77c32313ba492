"""Every command a sweep's summary prints runs in the installed environment.

The two servers (MLflow's UI, optuna-dashboard) are started as printed, on a free loopback port,
against a real store and a real study, and must answer HTTP 200; `graft-hpo resume` must exist
(resuming a real sweep is tested in tests/sweep/test_sweep.py).
"""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import optuna
import pytest

from graft_hpo._text import sweep_text
from graft_hpo.tracking import ensure_experiment

pytestmark = [pytest.mark.mlflow, pytest.mark.slow]  # two servers start: ~25 s

BIN = Path(sys.executable).parent  # the venv `make demo` made


def _printed(tmp_path: Path) -> dict[str, list[str]]:
    store = tmp_path / "mlruns" / "mlflow.db"
    store.parent.mkdir()
    experiment_id = ensure_experiment(f"sqlite:///{store}", "printed")
    study_db = tmp_path / "optuna.db"
    study = optuna.create_study(study_name="s1", storage=f"sqlite:///{study_db}")
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=2)
    text = sweep_text(
        {
            "sweep_id": "s1",
            "trials": {"FINISHED": 2},
            "objectives": [["val_acc", "max"], ["co2_kg", "min"]],
            "pareto": [],
            "failed": [],
            "tracking_uri": f"sqlite:///{store}",
            "optuna_storage": f"sqlite:///{study_db}",
            "sweep_dir": str(tmp_path / "sweeps" / "s1"),
            "experiment_id": experiment_id,
        }
    )
    (link,) = [line.split("then open ")[1] for line in text.splitlines() if "then open " in line]
    # the link `mlflow ui` serves: the sweep's runs, in the UI's model-training view
    assert (
        link
        == f"http://127.0.0.1:5000/#/experiments/{experiment_id}/runs?workflowType=machine_learning"
    )
    commands = {}
    for line in text.splitlines():
        label, sep, command = line.partition(":  ")
        if sep and command.strip():
            commands[label.strip()] = shlex.split(command)
    return commands


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(argv: list[str], tmp_path: Path) -> int:
    port = _free_port()
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    server = subprocess.Popen(
        [*argv, "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert server.poll() is None, f"{argv[0]} exited with {server.returncode}"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as reply:
                    return int(reply.status)
            except OSError:
                time.sleep(0.5)
        raise AssertionError(f"{argv[0]} did not answer on 127.0.0.1:{port} within 90 s")
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_every_printed_command_runs(tmp_path: Path) -> None:
    commands = _printed(tmp_path)
    assert set(commands) == {"MLflow UI", "optuna-dashboard", "resume"}
    for label, argv in commands.items():
        assert (BIN / argv[0]).exists(), f"{label}: {argv[0]} is not installed beside python"
    assert _answers(commands["MLflow UI"], tmp_path) == 200
    assert _answers(commands["optuna-dashboard"], tmp_path) == 200
    resume = commands["resume"]
    done = subprocess.run([str(BIN / resume[0]), resume[1], "--help"], capture_output=True)
    assert done.returncode == 0
