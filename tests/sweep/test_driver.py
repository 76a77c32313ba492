"""Driver-side bookkeeping of a sweep: progress lines, closing the runs of stopped trials."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import pytest

from graft_hpo._names import DONE_KEY
from graft_hpo.config import load_pipeline
from graft_hpo.sweep._console import SweepConsole
from graft_hpo.sweep._driver import _close_stopped_run
from graft_hpo.sweep._search import scheduler
from graft_hpo.sweep._search import scheduler_rungs
from graft_hpo.tracking import RunLogger
from graft_hpo.tracking import metric_history
from graft_hpo.tracking import query_runs


def _trial(trial_id: str, strategy: str, val_acc: float) -> SimpleNamespace:
    return SimpleNamespace(
        trial_id=trial_id,
        config={"selection.strategy": strategy},
        last_result={"val_acc": val_acc, "co2_kg": 1.5e-6},
    )


def test_lines_name_the_trial_and_keep_their_columns_past_nine() -> None:
    lines: list[str] = []
    objectives = [("val_acc", "max"), ("co2_kg", "min")]
    console = SweepConsole(objectives, 12, lines.append, default_strategy="graft")
    for i in range(12):
        console.ended("FINISHED", _trial(f"{i:08x}", ("graft", "random")[i % 2], 0.9))

    assert lines[0] == "[ 1/12] trial 00000000 FINISHED      graft  val_acc=0.9  co2_kg=1.5e-06"
    assert lines[11].startswith("[12/12] trial 0000000b FINISHED      random ")
    assert len({line.index("FINISHED") for line in lines}) == 1


@pytest.mark.mlflow
def test_a_stopped_trials_run_is_closed_at_its_last_epoch(tmp_path: Path) -> None:
    """The driver closes the run of a trial the scheduler stopped with the last report's
    values, at that epoch's step, not at step 0 among the first epoch's points."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run = RunLogger.start(uri, "stopped")
    for epoch, energy in enumerate([1e-6, 2e-6, 3e-6]):
        run.log_metrics({"energy_kwh": energy, "val_acc": 0.5 + epoch / 10}, step=epoch)
    report = {"mlflow_run_id": run.run_id, "epoch": 2, "energy_kwh": 3e-6, "val_acc": 0.7}
    _close_stopped_run(SimpleNamespace(tracking_uri=uri), report)  # type: ignore[arg-type]

    history = metric_history(uri, run.run_id, "energy_kwh")
    assert [step for step, _ in history] == [0, 1, 2, 2]
    assert [value for _, value in history] == [1e-6, 2e-6, 3e-6, 3e-6]
    (record,) = query_runs(uri, "stopped")
    assert record.status == "FINISHED" and record.tags["early_stopped"] == "true"
    # the trial tags its reason too, unless Ray ends its process first: the driver's tag stays
    assert record.tags["stop_reason"] == "stopped early by the scheduler"
    assert record.metrics["val_acc"] == pytest.approx(0.7)


@pytest.mark.mlflow
@pytest.mark.parametrize("scheduled", [False, True])
def test_ctrl_c_kills_the_runs_ray_stopped_in_a_sweep_without_a_scheduler(
    tmp_path: Path, scheduled: bool
) -> None:
    """Tune stops running trials on SIGINT as a scheduler would: without a scheduler, a run
    that ended as an early stop was the interruption's, and is KILLED as resume reads it."""
    from graft_hpo.sweep._finish import mark_interrupted

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    parent = RunLogger.start(uri, "ctrl-c", tags={"graft_hpo.role": "sweep", "sweep_id": "s"})
    tags = {"sweep_id": "s", "graft_hpo.role": "trial"}
    stopped = RunLogger.start(uri, "ctrl-c", tags=tags)
    stopped.set_tags({"early_stopped": "true", "stop_reason": "stopped early by the scheduler"})
    stopped.end("FINISHED")
    running = RunLogger.start(uri, "ctrl-c", tags=tags)
    done = RunLogger.start(uri, "ctrl-c", tags=tags)
    done.end("FINISHED")
    config = load_pipeline("mnist" if scheduled else "digits")
    assert (config.search.scheduler is not None) == scheduled
    plan = SimpleNamespace(
        config=config,
        experiment="ctrl-c",
        sweep_id="s",
        tracking_uri=uri,
        parent_run_id=parent.run_id,
    )
    mark_interrupted(plan, reason="interrupted (Ctrl-C)", parent_status="KILLED")  # type: ignore[arg-type]
    status = {r.run_id: (r.status, r.tags) for r in query_runs(uri, "ctrl-c")}
    assert status[running.run_id][0] == status[parent.run_id][0] == "KILLED"
    assert status[done.run_id][0] == "FINISHED"
    if scheduled:  # a scheduler's stop or the interruption's: left for resume to read
        assert status[stopped.run_id][0] == "FINISHED"
    else:
        state, stopped_tags = status[stopped.run_id]
        assert state == "KILLED" and stopped_tags["killed_reason"] == "interrupted (Ctrl-C)"
        assert "early_stopped" not in stopped_tags and "stop_reason" not in stopped_tags


@pytest.mark.parametrize(
    ("epochs", "grace", "factor", "expected"),
    [
        (20, 2, 3, {2, 6, 18}),
        (18, 2, 3, {2, 6, 18}),  # a rung at the last epoch: no comparison there (below)
        (20, 1, 2, {1, 2, 4, 8, 16}),
        (9, 3, 1.5, {3, 5, 7}),
        (4, 4, 3, {4}),
    ],
)
def test_trials_validate_exactly_where_ray_asha_compares_them(
    epochs: int, grace: int, factor: float, expected: set[int]
) -> None:
    config = load_pipeline(
        "digits",
        [
            f"train.epochs={epochs}",
            f"search.scheduler={{type: asha, grace_period: {grace}, reduction_factor: {factor}}}",
        ],
    )
    # Ray's own milestones (a private attribute: this fails loudly if an upgrade changes them)
    (bracket,) = scheduler(config)._brackets
    assert {math.ceil(milestone) for milestone, _ in bracket._rungs} == expected
    # ours are Ray's before the last epoch, which a trial never reports to the scheduler
    assert scheduler_rungs(config) == {rung for rung in expected if rung < epochs}
    assert scheduler_rungs(load_pipeline("digits")) == set()  # no scheduler, no rungs


@pytest.mark.mlflow
def test_a_trial_lost_for_good_ends_failed_in_mlflow_as_on_the_console(tmp_path: Path) -> None:
    """Its worker died more often than search.max_failures allows: the run it left RUNNING
    ends FAILED with the error (found by its Ray trial id when it never reported), and a run
    that had failed by itself keeps its own error."""
    from graft_hpo.sweep._driver import _close_lost_run

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tags = {"sweep_id": "s1", "ray_trial_id": "lost"}
    lost = RunLogger.start(uri, "lost", tags=tags)
    failed = RunLogger.start(uri, "lost", tags={**tags, "ray_trial_id": "nan"})
    failed.set_tags({"error": "TrialFailedError: training loss became nan in epoch 0"})
    failed.end("FAILED")
    plan = SimpleNamespace(tracking_uri=uri, experiment="lost", sweep_id="s1")
    never_reported = SimpleNamespace(trial_id="lost", last_result={})
    _close_lost_run(plan, never_reported, "The actor is dead")  # type: ignore[arg-type]
    reported = SimpleNamespace(trial_id="nan", last_result={"mlflow_run_id": failed.run_id})
    _close_lost_run(plan, reported, "something else")  # type: ignore[arg-type]

    runs = {r.tags["ray_trial_id"]: r for r in query_runs(uri, "lost")}
    assert runs["lost"].status == "FAILED" and runs["lost"].run_id == lost.run_id
    assert runs["lost"].tags["error"] == "The actor is dead"
    assert runs["nan"].tags["error"].startswith("TrialFailedError: training loss became nan")


def test_a_retried_trial_gets_a_line_that_says_so_and_counts_in_the_bar() -> None:
    lines: list[str] = []
    console = SweepConsole([("val_acc", "max")], 12, lines.append, default_strategy="graft")
    console.retried(_trial("0000000a", "graft", 0.9), "The actor is dead")
    console.ended("FINISHED", _trial("0000000a", "graft", 0.9))
    assert lines[0] == "        trial 0000000a RETRIED       graft  The actor is dead"
    assert lines[1].startswith("[ 1/12] trial 0000000a FINISHED")
    assert lines[0].index("RETRIED") == lines[1].index("FINISHED")
    assert "retried 1" in console.status()


def test_tunes_pickled_callback_reaches_the_running_sessions_console() -> None:
    # Tune pickles its callbacks with its state; a restored sweep calls the unpickled one.
    # It must hold no console (a tqdm bar in the pickle broke the restore) and must reach
    # the console of the session now running, not the one it was pickled with.
    pytest.importorskip("ray")
    from ray import cloudpickle

    from graft_hpo.sweep import _driver

    objectives = [("val_acc", "max"), ("co2_kg", "min")]
    first: list[str] = []
    first_console = SweepConsole(objectives, 2, first.append, bar=True, default_strategy="graft")
    _driver._SESSIONS["s-pickle"] = (SimpleNamespace(), first_console)
    try:
        data = cloudpickle.dumps(_driver._callback("s-pickle"))
        second: list[str] = []
        second_console = SweepConsole(objectives, 2, second.append, default_strategy="graft")
        _driver._SESSIONS["s-pickle"] = (SimpleNamespace(), second_console)
        restored = cloudpickle.loads(data)
        trial = _trial("0000000a", "graft", 0.9)
        trial.last_result[DONE_KEY] = 1
        restored.on_trial_complete(0, [], trial)
    finally:
        _driver._SESSIONS.pop("s-pickle", None)
        first_console.close()
    assert b"tqdm" not in data and b"SweepConsole" not in data
    assert first == [] and len(second) == 1 and "trial 0000000a FINISHED" in second[0]
