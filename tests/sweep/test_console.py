"""The sweep's console: its lines, the live bar's text, and the quiet stderr around Ray."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from graft_hpo.sweep._console import SweepConsole
from graft_hpo.sweep._console import quiet_stderr
from tests._overrides import FAST_SWEEP_TRIAL

OBJECTIVES = [("val_acc", "max"), ("co2_kg", "min")]


def _trial(trial_id: str, val_acc: float | None) -> SimpleNamespace:
    result = {} if val_acc is None else {"val_acc": val_acc, "co2_kg": 2e-6}
    return SimpleNamespace(trial_id=trial_id, config={}, last_result=result)


def test_the_status_counts_running_and_failed_trials_and_sums_what_was_spent() -> None:
    lines: list[str] = []
    shared = {"energy_kwh": 1e-6, "co2_kg": 4e-7}  # the shared selection, before any trial
    console = SweepConsole(OBJECTIVES, 4, lines.append, spent=shared, default_strategy="graft")
    for trial_id in ("a", "b", "c"):
        console.started(trial_id)
    console.reported("a", {"val_acc": 0.6, "energy_kwh": 1e-6, "co2_kg": 1e-7})
    console.reported("a", {"val_acc": 0.8, "energy_kwh": 3e-6, "co2_kg": 3e-7})  # cumulative
    console.reported("b", {"val_acc": 0.7, "energy_kwh": 2e-6, "co2_kg": 2e-7})
    console.ended("FINISHED", _trial("a", 0.8))
    console.ended("FAILED", _trial("c", None), "TrialFailedError: loss became nan")

    assert console.totals() == pytest.approx({"energy_kwh": 6e-6, "co2_kg": 9e-7})
    assert console.status() == ("running 1, failed 1, best val_acc 0.8, 9e-07 kg CO2, 6e-06 kWh")
    assert lines == [
        "[1/4] trial a FINISHED      graft  val_acc=0.8  co2_kg=2e-06",
        "[2/4] trial c FAILED        graft  TrialFailedError: loss became nan",
    ]


def test_a_resumed_sweep_goes_on_from_what_earlier_sessions_did() -> None:
    lines: list[str] = []
    earlier = [
        ("r1", "FINISHED", {"val_acc": 0.9, "energy_kwh": 1e-6, "co2_kg": 1e-7}),
        ("r2", "FAILED", {"energy_kwh": 2e-6, "co2_kg": 2e-7}),
        ("r3", "KILLED", {"val_acc": 0.5, "energy_kwh": 4e-6, "co2_kg": 4e-7}),  # runs again
    ]
    console = SweepConsole(OBJECTIVES, 4, lines.append, default_strategy="graft", earlier=earlier)
    assert (console.done, console.failed, console.best) == (2, 1, 0.9)
    # the interrupted trial goes on in its run: its reports are cumulative over its attempts
    console.started("t3")
    console.reported(
        "t3", {"val_acc": 0.7, "energy_kwh": 5e-6, "co2_kg": 5e-7, "mlflow_run_id": "r3"}
    )
    console.ended("FINISHED", _trial("t3", 0.7))
    # a trial that had ended, run again by Tune: it reports its run's result, counted once
    again = SimpleNamespace(trial_id="t1", config={}, last_result={"mlflow_run_id": "r1"})
    console.ended("FINISHED", again)
    assert (console.done, console.failed) == (3, 1)
    assert console.totals() == pytest.approx({"energy_kwh": 8e-6, "co2_kg": 8e-7})
    assert lines[0] == "[3/4] trial t3 FINISHED      graft  val_acc=0.7  co2_kg=2e-06"


def test_best_follows_the_first_objectives_direction_and_ignores_nan() -> None:
    console = SweepConsole([("val_loss", "min")], 2, lambda _: None)
    console.reported("a", {"val_loss": 0.4})
    console.reported("b", {"val_loss": float("nan")})
    console.reported("b", {"val_loss": 0.3})
    console.reported("a", {"val_loss": 0.5})
    assert console.best == pytest.approx(0.3)


def test_the_bar_shows_progress_and_lines_print_above_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    console = SweepConsole(OBJECTIVES, 2, lambda line: print(line, file=sys.stderr), bar=True)
    console.started("a")
    console.reported("a", {"val_acc": 0.9, "energy_kwh": 1e-6, "co2_kg": 1e-7})
    console.ended("FINISHED", _trial("a", 0.9))
    console.close()
    text = err.getvalue()
    assert "trial a FINISHED" in text
    assert "1/2 trials" in text
    assert "best val_acc 0.9" in text and "kg CO2" in text and "kWh" in text


def test_a_resumed_sweeps_bar_starts_at_its_earlier_trials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    earlier = [("r1", "FINISHED", {"val_acc": 0.9}), ("r2", "FINISHED", {"val_acc": 0.8})]
    console = SweepConsole(OBJECTIVES, 4, lambda _: None, bar=True, earlier=earlier)
    console.ended("FINISHED", _trial("t3", 0.7))
    console.close()
    assert "2/4 trials" in err.getvalue() and "3/4 trials" in err.getvalue()
    assert "0/4 trials" not in err.getvalue()


def _child_writes(message: str) -> None:
    # a child process inherits file descriptor 2, as Ray's processes do
    code = f"import sys; sys.stderr.write({message!r})"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_quiet_stderr_hides_what_processes_write_and_replays_it_on_failure(
    capfd: pytest.CaptureFixture[str],
) -> None:
    with quiet_stderr():
        _child_writes("token notice\n")
        os.write(2, b"from this process\n")
    assert capfd.readouterr().err == ""

    with pytest.raises(RuntimeError), quiet_stderr():
        _child_writes("why the start failed\n")
        raise RuntimeError("ray.init failed")
    assert capfd.readouterr().err == "why the start failed\n"

    with quiet_stderr(enabled=False):  # graft-hpo -v
        _child_writes("shown\n")
    assert capfd.readouterr().err == "shown\n"


# ---- end to end: what `graft-hpo sweep` prints, in a process that starts its own Ray

# every stderr line of a default sweep is one of graft-hpo's own
OWN_LINES = re.compile(
    r"data \w+: \d+ train, .*"  # the data set, as loaded
    r"|sweep [\w-]+: \d+ trials of pipeline .*"  # the sweep starts
    r"|\[\d+/\d+\] trial \w+ (FINISHED|early-stopped|FAILED) .*"  # one line per trial
)


def _cli_sweep(home: Path, tmp_path: Path, *flags: str) -> str:
    tmp_path.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "RAY_AUTH_MODE"}  # Ray's default
    env["HOME"] = str(home)  # holds Ray's bootstrap file: no cloud-metadata probe
    args = [
        sys.executable, "-m", "graft_hpo.cli", *flags, "sweep", "digits", "--trials", "2",
        "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}",
        "--sweep-dir", str(tmp_path / "sweep"),
        *[a for s in FAST_SWEEP_TRIAL for a in ("--set", s)],
    ]  # fmt: skip
    done = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Pareto front" in done.stdout
    return done.stderr


@pytest.mark.slow
@pytest.mark.ray
def test_a_sweep_prints_only_its_own_lines_and_rays_with_verbose(
    ray_local: Path, tmp_path: Path
) -> None:
    quiet = _cli_sweep(ray_local, tmp_path / "quiet")
    strangers = [ln for ln in quiet.splitlines() if ln.strip() and not OWN_LINES.fullmatch(ln)]
    assert not strangers, strangers
    assert len([ln for ln in quiet.splitlines() if " trial " in ln]) == 2

    verbose = _cli_sweep(ray_local, tmp_path / "verbose", "-v")
    assert "View detailed results here" in verbose  # Ray's experiment box is back
    assert "Token authentication" not in quiet
