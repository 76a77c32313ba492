"""The command line: exit codes, one-line errors, JSON output, fast --help."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from graft_hpo.cli import main


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "CODECARBON_LOG_LEVEL": "error"}
    return subprocess.run(
        [sys.executable, "-m", "graft_hpo.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
    )


def test_help_is_fast_and_lists_the_verbs() -> None:
    start = time.perf_counter()
    done = _cli("--help")
    assert done.returncode == 0
    assert "validate" in done.stdout and "train" in done.stdout
    assert time.perf_counter() - start < 10  # tests/test_imports.py: the CLI imports no torch


def test_validate_prints_the_resolved_config(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "digits", "--set", "train.epochs=3", "--json"]) == 0
    resolved = json.loads(capsys.readouterr().out)
    assert resolved["train"]["epochs"] == 3 and resolved["data"]["name"] == "digits"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["validate", "digits", "--set", "selection.fraction=1.5"], "selection.fraction"),
        (["validate", "digits", "--set", "selection.select_evry=2"], "select_every"),
        (["validate", "digits", "--set", "selection.strategy=grafty"], "'grafty'"),
        (["validate", "digits", "--set", "model.name=cnnn"], "'cnnn'"),
        (["validate", "digits", "--set", "model.options.widht=3"], "widht"),
        (["validate", "no-such-pipeline"], "no-such-pipeline"),
        (["validate", "digits", "--set", "train.epochs"], "train.epochs"),
        (["train", "digits", "--set", "data.name=nope"], "'nope'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    args: list[str],
    needle: str,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err
    assert not (tmp_path / "mlruns").exists()  # nothing half-written


def test_unknown_verb_and_missing_argument_exit_2() -> None:
    assert _cli("frobnicate").returncode == 2
    assert _cli("train").returncode == 2


@pytest.mark.mlflow
def test_train_json_prints_exactly_one_object(tmp_path: Path) -> None:
    done = _cli(
        "train",
        "digits",
        "--set",
        "train.epochs=1",
        "--set",
        "train.device=cpu",
        "--json",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)  # the whole of stdout is one JSON object
    assert set(result) >= {"run_id", "status", "params", "metrics"}
    assert result["status"] == "FINISHED"
    assert result["params"]["data.name"] == "digits"
    assert (tmp_path / "mlruns" / "mlflow.db").exists()  # default store in the working dir


@pytest.mark.parametrize(
    ("argv", "verbose"),
    [
        (["sweep", "mnist"], False),
        (["-v", "sweep", "mnist"], True),
        (["sweep", "mnist", "-v"], True),
        (["--verbose", "pareto"], True),
        (["pareto", "--verbose"], True),
    ],
)
def test_verbose_goes_before_or_after_the_command(argv: list[str], verbose: bool) -> None:
    from graft_hpo.cli import build_parser

    assert build_parser().parse_args(argv).verbose is verbose


def test_json_output_stays_the_last_line_of_stdout_whatever_prints_after_it() -> None:
    """With --json, stdout is the one object: what a library prints after it (Ray's shutdown at
    exit did, once a cluster node had died) goes to stderr instead."""
    code = (
        "import atexit, graft_hpo.cli as cli\n"
        "atexit.register(print, 'printed at exit')\n"
        "cli._emit({'sweep_id': 's1'}, as_json=True, text=str)\n"
        "print('printed after')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout == '{"sweep_id": "s1"}\n'
    assert "printed after" in done.stderr and "printed at exit" in done.stderr


def test_a_sweep_stopped_before_any_trial_says_why(capsys: pytest.CaptureFixture[str]) -> None:
    """E.g. an energy budget the shared selection spent: the counts line was blank and the
    error line said "first error: none recorded"."""
    import argparse

    from graft_hpo.cli import _sweep_exit

    result = {
        "sweep_id": "s1",
        "trials": {"FINISHED": 0, "early_stopped": 0, "FAILED": 0, "KILLED": 0},
        "objectives": [["val_acc", "max"], ["co2_kg", "min"]],
        "pareto": [],
        "failed": [],
        "stop_reason": "search.energy_budget_kwh reached",
    }
    assert _sweep_exit(result, argparse.Namespace(json=False, command="sweep")) == 1
    out, err = capsys.readouterr()
    assert out.splitlines()[0] == "sweep s1: no trial ran"
    assert err.strip() == (
        "graft-hpo sweep: error: sweep s1 has no finished trial, so no front; stopped before "
        "any trial: search.energy_budget_kwh reached"
    )
