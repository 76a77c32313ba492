"""Faults in real sweeps: trials that raise, diverge or run out of memory; ``--fail-fast``.

Trials fail on command through a plug-in model whose ``fail`` option the sweep searches
(``tests.plugins.failing:on_command``): ``raise`` (RuntimeError), ``nan`` / ``inf`` (the loss
becomes NaN / +inf), ``oom`` (``torch.OutOfMemoryError`` from the forward pass, as a CUDA
allocation failure surfaces). The CLI runs in this process (``graft_hpo.cli.main``), on the
session's local Ray, a real sqlite MLflow store and a real Optuna study. Assertions hold for
whatever the seeded random sampler drew; the seeds are picked so that every kind is drawn
(checked below, so a change of Optuna's sampler shows up as such).
"""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import pytest
import torch

from graft_hpo.cli import main
from graft_hpo.tracking import query_runs

if TYPE_CHECKING:
    import optuna

pytestmark = [pytest.mark.ray, pytest.mark.mlflow]

PLUGIN = "tests.plugins.failing:on_command"
QUICK = [
    "train.epochs=2",
    "train.device=cpu",
    "emissions.measure_power_secs=1",
    f"model.name={PLUGIN}",
    "search.sampler=random",
]
# what each kind of failure leaves in the run's `error` tag: "<Type>: <message>"
EXPECTED_ERROR = {
    "raise": "RuntimeError: plug-in model failed on command",
    "nan": "TrialFailedError: training loss became nan in epoch 0",
    "inf": "TrialFailedError: training loss became inf in epoch 0",
    "oom": "OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 GiB",
}
FAIL, COMPLETE = "FAIL", "COMPLETE"  # optuna.trial.TrialState names


@dataclass(frozen=True)
class CliSweep:
    """What one in-process ``graft-hpo sweep`` left behind."""

    code: int
    out: str
    err: str
    uri: str
    sweep_dir: Path
    sweep_id: str
    experiment: str

    def trial_runs(self) -> list[Any]:
        runs = query_runs(self.uri, self.experiment, sweep_id=self.sweep_id)
        return [r for r in runs if r.tags.get("graft_hpo.role") == "trial"]

    def parent(self) -> Any:
        runs = query_runs(self.uri, self.experiment, sweep_id=self.sweep_id)
        (parent,) = [r for r in runs if r.tags.get("graft_hpo.role") == "sweep"]
        return parent

    def study(self) -> optuna.Study:
        import optuna  # not at module level: the CUDA test below runs without it

        storage = f"sqlite:///{self.sweep_dir / 'optuna.db'}"
        return optuna.load_study(study_name=self.sweep_id, storage=storage)

    def states(self) -> list[tuple[str, str]]:
        """``(model.options.fail, state name)`` of every Optuna trial, in trial order."""
        return [(t.params["model.options.fail"], t.state.name) for t in self.study().trials]


def _cli_sweep(
    tmp: Path, *, choices: list[str], trials: int, overrides: list[str], fail_fast: bool = False
) -> CliSweep:
    """``graft-hpo sweep digits`` searching ``model.options.fail`` over ``choices``."""
    space = tmp / "space.yaml"
    space.write_text(
        f"params:\n  model.options.fail: {{type: categorical, choices: [{', '.join(choices)}]}}\n"
    )
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    experiment = tmp.name
    sets = [*QUICK, f"search.space={space}", f"tracking.experiment={experiment}", *overrides]
    argv = [
        "sweep", "digits", "--trials", str(trials), "--tracking-uri", uri,
        "--sweep-dir", str(tmp / "sweep"), *[a for s in sets for a in ("--set", s)],
        *(["--fail-fast"] if fail_fast else []),
    ]  # fmt: skip
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    sweep_id = json.loads((tmp / "sweep" / "sweep.json").read_text())["sweep_id"]
    return CliSweep(code, out.getvalue(), err.getvalue(), uri, tmp / "sweep", sweep_id, experiment)


# ---- one sweep of 5 trials: one success and one of each failure


@pytest.fixture(scope="module")
def faults(ray_local: Path, tmp_path_factory: pytest.TempPathFactory) -> CliSweep:
    # random sampler, seed 35: oom, inf, nan, none, raise (asserted in the first test)
    return _cli_sweep(
        tmp_path_factory.mktemp("faults"),
        choices=["none", "raise", "nan", "inf", "oom"],
        trials=5,
        overrides=["search.seed=35"],
    )


def _drawn(sweep: CliSweep) -> dict[str, str]:
    return {r.run_id: r.params["model.options.fail"] for r in sweep.trial_runs()}


def test_failed_trials_are_failed_runs_with_their_error(faults: CliSweep) -> None:
    runs = faults.trial_runs()
    drawn = _drawn(faults)
    assert sorted(drawn.values()) == ["inf", "nan", "none", "oom", "raise"]
    for r in runs:
        kind = drawn[r.run_id]
        if kind == "none":
            assert r.status == "FINISHED" and "error" not in r.tags
            assert r.metrics["val_acc"] > 0.5 and r.metrics["co2_kg"] > 0
        else:
            assert r.status == "FAILED", (kind, r.status)
            assert r.tags["error"].startswith(EXPECTED_ERROR[kind]), r.tags["error"]
            assert "energy_kwh" in r.metrics  # what was measured before the failure is kept
            assert r.tags.get("pareto") != "true"
    assert faults.parent().status == "FINISHED"


def test_optuna_is_told_fail_for_exactly_the_failed_trials(faults: CliSweep) -> None:
    drawn = _drawn(faults)
    told = sorted(faults.states())
    assert len(told) == 5
    assert told == sorted((kind, COMPLETE if kind == "none" else FAIL) for kind in drawn.values())


def test_the_summary_lists_the_failures_and_exits_0(faults: CliSweep) -> None:
    drawn = _drawn(faults)
    failed = {rid: kind for rid, kind in drawn.items() if kind != "none"}
    assert faults.code == 0  # at least one trial finished
    assert f"sweep {faults.sweep_id}: 1 FINISHED, 4 FAILED" in faults.out
    listed = {
        line.split()[1].rstrip(":"): line
        for line in faults.out.splitlines()
        if line.startswith("  failed ")
    }
    assert set(listed) == set(failed)
    for rid, kind in failed.items():
        assert EXPECTED_ERROR[kind] in listed[rid]


def test_progress_lines_of_failed_trials_carry_the_error(faults: CliSweep) -> None:
    lines = [line for line in faults.err.splitlines() if " FAILED " in line]
    assert len(lines) == 4
    for kind in ("raise", "nan", "inf", "oom"):
        assert any(EXPECTED_ERROR[kind] in line for line in lines), (kind, lines)


def test_a_trial_that_fails_by_itself_is_not_retried(faults: CliSweep) -> None:
    """A NaN loss or a plug-in's error would fail again: the trial trains once, in one run,
    and Ray is not asked to retry it (search.max_failures is for lost workers)."""
    assert "RETRIED" not in faults.err
    runs = faults.trial_runs()
    assert len(runs) == len(faults.study().trials) == 5  # one run per trial, none started again
    assert all("attempts" not in run.tags for run in runs)  # the tag of a restarted trial


def test_fail_fast_stops_at_the_first_failure_and_exits_1(ray_local: Path, tmp_path: Path) -> None:
    # --fail-fast, one trial at a time, seed 0 draws raise first: one FAILED trial, then stop
    sweep = _cli_sweep(
        tmp_path,
        choices=["none", "raise"],
        trials=4,
        overrides=["search.seed=0", "search.max_concurrent=1"],
        fail_fast=True,
    )
    (run,) = sweep.trial_runs()  # stopped after the first of 4 trials
    assert run.status == "FAILED"
    assert run.tags["error"] == EXPECTED_ERROR["raise"]
    assert sweep.code == 1  # no trial finished
    assert f"  failed {run.run_id}: {EXPECTED_ERROR['raise']}" in sweep.out
    assert "stopped early: trial " in sweep.out and "(search.fail_fast)" in sweep.out
    assert "(search.fail_fast)" in sweep.parent().tags["stop_reason"]
    assert sweep.parent().status == "FINISHED"
    assert sweep.states() == [("raise", FAIL)]


def test_fail_fast_starts_no_new_trial_and_lets_running_ones_finish(
    ray_local: Path, tmp_path: Path
) -> None:
    # seed 10 draws none, raise: the first trial trains slowly (0.05 s a step) and is still
    # running when the second fails; fail-fast then starts none of the 4 remaining trials
    sweep = _cli_sweep(
        tmp_path,
        choices=["none", "raise"],
        trials=6,
        overrides=[
            "search.seed=10",
            "search.max_concurrent=2",
            "train.epochs=6",
            "model.options.delay_s=0.05",
        ],
        fail_fast=True,
    )
    runs = {r.params["model.options.fail"]: r for r in sweep.trial_runs()}
    assert set(runs) == {"none", "raise"}  # 2 of the 6 trials ran
    assert runs["raise"].status == "FAILED"
    finished = runs["none"]  # measured to the end, not killed
    assert finished.status == "FINISHED" and finished.tags.get("early_stopped") != "true"
    assert finished.metrics["epochs_completed"] == 6
    assert sorted(sweep.states()) == [("none", COMPLETE), ("raise", FAIL)]  # none RUNNING
    assert sweep.code == 0  # one trial finished
    assert f"sweep {sweep.sweep_id}: 1 FINISHED, 1 FAILED" in sweep.out
    assert "(search.fail_fast)" in sweep.parent().tags["stop_reason"]


# ---- a real CUDA out-of-memory error (needs a GPU; no Ray, MLflow or codecarbon needed)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_real_cuda_oom_fails_the_trial_and_leaves_the_device_usable() -> None:
    from graft_hpo.config import load_pipeline
    from graft_hpo.trial import run_trial

    base = ["train.epochs=2", "train.device=cuda", f"model.name={PLUGIN}"]
    # allocates 1 TiB on the GPU in the first training forward pass
    oom = run_trial(load_pipeline("digits", [*base, "model.options.fail=alloc"]), tracking=False)
    assert oom.status == "FAILED"
    assert oom.error is not None and oom.tags["error"] == oom.error
    # the same "<Type>: <message>" the simulated `oom` trials above produce
    assert oom.error.startswith(
        "OutOfMemoryError: CUDA out of memory. Tried to allocate 1024.00 GiB"
    )
    assert torch.cuda.memory_allocated() < 2**30  # nothing of the failed trial is held

    ok = run_trial(load_pipeline("digits", [*base, "model.options.fail=none"]), tracking=False)
    assert ok.status == "FINISHED", ok.error
    assert ok.metrics["val_acc"] > 0.5
