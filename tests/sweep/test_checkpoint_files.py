"""Trial checkpoint files: when they are written, what they hold, and what is never read back.

Ray's own ``Checkpoint`` objects over local folders, no Ray session: what a trial writes
(``Checkpoints.written``) and what its retry reads (``read_checkpoint``). A checkpoint that is
missing, corrupt, of another trial or outside the sweep folder restarts the trial from its first
epoch with a warning; none of them raises.
"""

from __future__ import annotations

import contextlib
import logging
import pickle
import shutil
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from graft_hpo.sweep._checkpoint import CHECKPOINT_FILE
from graft_hpo.sweep._checkpoint import Checkpoints
from graft_hpo.sweep._checkpoint import ray_storage
from graft_hpo.sweep._checkpoint import read_checkpoint

OWNER = {"sweep_id": "s1", "trial_id": "t1"}


def _checkpoints(**kwargs: Any) -> Checkpoints:
    return Checkpoints(**{"every": 1, "rungs": set(), "epochs": 5, "owner": OWNER, **kwargs})


def _persisted(tmp_path: Path, checkpoints: Checkpoints, name: str = "checkpoint_000000") -> Any:
    """A checkpoint written and copied into ``tmp_path/sweep/ray/trial/<name>``, as Ray does."""
    from ray.tune import Checkpoint

    snapshot = {"format": 1, "weights": torch.arange(4.0), "progress": {"history": [{}, {}]}}
    target = tmp_path / "sweep" / "ray" / "trial" / name
    with checkpoints.written(snapshot, {"energy_kwh": 2e-6, "co2_kg": 1e-6, "val_acc": 0.9}) as d:
        assert sorted(p.name for p in Path(d).iterdir()) == [CHECKPOINT_FILE]  # no part file
        shutil.copytree(d, target)
    return Checkpoint.from_directory(str(target))


@pytest.mark.parametrize(
    ("every", "rungs", "epochs", "expected"),
    [
        (1, set(), 4, [1, 2, 3]),  # not after the last epoch: the trial ends right after it
        (2, {1, 3}, 7, [1, 2, 3, 4, 6]),  # and at every rung of the scheduler
        (0, {1, 3}, 7, []),  # 0: never, not even at the rungs
        (10, set(), 5, []),
    ],
)
def test_checkpoint_epochs(every: int, rungs: set[int], epochs: int, expected: list[int]) -> None:
    checkpoints = _checkpoints(every=every, rungs=rungs, epochs=epochs)
    assert [n for n in range(1, epochs + 1) if checkpoints.due(n)] == expected


def test_by_default_checkpoints_cost_at_most_their_share_of_the_trial(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``every=None``: the first after 2.5 s (0.05 s assumed / 0.02); then one that took 0.1 s
    waits for 5 s of training; rungs do not count."""
    from graft_hpo.sweep import _checkpoint

    now = [100.0]
    monkeypatch.setattr(_checkpoint, "time", SimpleNamespace(perf_counter=lambda: now[0]))
    checkpoints = _checkpoints(every=None, rungs={2}, epochs=10, last_at=now[0])
    now[0] += 2.4
    assert not checkpoints.due(1)
    assert not checkpoints.due(2)  # a rung
    now[0] += 0.1
    assert checkpoints.due(3)
    checkpoints.last_at, checkpoints.last_cost_s = now[0], 0.1  # what `written` records
    now[0] += 4.9
    assert not checkpoints.due(4)
    now[0] += 0.1
    assert checkpoints.due(5)
    assert not checkpoints.due(10)  # the last epoch
    assert _checkpoint.AUTO_SHARE == 0.02
    checkpoints.off = True  # one could not be written: none again
    assert not checkpoints.due(5)


def test_written_records_what_the_checkpoint_took(tmp_path: Path) -> None:
    checkpoints = _checkpoints(spent={"checkpoint_s": 1.0})
    _persisted(tmp_path, checkpoints)
    assert checkpoints.last_cost_s > 0.0
    assert checkpoints.spent_s == pytest.approx(1.0 + checkpoints.last_cost_s)


def test_a_checkpoint_round_trips_with_what_the_trial_spent(tmp_path: Path) -> None:
    spent_before = {"duration_s": 10.0, "energy_kwh": 1e-6, "checkpoint_s": 0.5}
    checkpoints = _checkpoints(spent=spent_before, run_id="run-1")
    assert checkpoints.spent_s == 0.5  # the earlier attempts' checkpointing time goes on
    payload = read_checkpoint(
        _persisted(tmp_path, checkpoints), storage=str(tmp_path / "sweep"), owner=OWNER
    )
    assert payload is not None
    assert payload["run_id"] == "run-1" and payload["trial_id"] == "t1"
    assert torch.equal(payload["loop"]["weights"], torch.arange(4.0))
    # the emissions so far are the epoch's cumulative figures (earlier attempts included)
    assert payload["spent"]["energy_kwh"] == 2e-6 and payload["spent"]["co2_kg"] == 1e-6
    assert "val_acc" not in payload["spent"]
    assert payload["spent"]["duration_s"] >= 10.0  # this attempt's time added to the earlier
    assert payload["spent"]["checkpoint_s"] == 0.5


def test_no_checkpoint_means_the_first_epoch() -> None:
    assert read_checkpoint(None, storage="anywhere", owner=OWNER) is None


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize(
    "spoil",
    [
        "another trial",
        "another sweep",
        "outside the sweep folder",
        "corrupt",
        "code",
        "missing",
        "an older loop",
    ],
)
def test_a_checkpoint_that_is_not_ours_or_not_readable_is_not_used(
    tmp_path: Path, spoil: str, caplog: pytest.LogCaptureFixture
) -> None:
    from ray.tune import Checkpoint

    owner = dict(OWNER)
    sweep_dir = tmp_path / "sweep"
    checkpoint = _persisted(tmp_path, _checkpoints())
    file = Path(checkpoint.path) / CHECKPOINT_FILE
    if spoil == "another trial":
        owner["trial_id"] = "t2"
    elif spoil == "another sweep":
        owner["sweep_id"] = "s2"
    elif spoil == "outside the sweep folder":
        elsewhere = tmp_path / "elsewhere"
        shutil.copytree(checkpoint.path, elsewhere)
        checkpoint = Checkpoint.from_directory(str(elsewhere))
    elif spoil == "corrupt":
        file.write_bytes(file.read_bytes()[:100])  # cut short, as by a lost node
    elif spoil == "an older loop":  # written by a version whose loop state differs
        payload = torch.load(file, weights_only=True)
        torch.save({**payload, "loop": {**payload["loop"], "format": 0}}, file)
    elif spoil == "code":  # a pickle that would run code when loaded
        file.write_bytes(pickle.dumps(SimpleNamespace(x=1)))
    else:
        file.unlink()
    with caplog.at_level(logging.WARNING, logger="graft_hpo.sweep._checkpoint"):
        assert read_checkpoint(checkpoint, storage=str(sweep_dir), owner=owner) is None
    assert "training from the first epoch" in caplog.text
    if spoil == "code":  # refused by torch's weights-only unpickler, before anything runs
        assert "UnpicklingError" in caplog.text


def test_a_checkpoint_ray_cannot_persist_leaves_the_trial_going_without(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """E.g. a node that does not see the sweep's storage: the epoch is reported anyway, and
    the trial goes on without checkpoints."""
    from ray import tune

    from graft_hpo.sweep._trainable import _ReportToRay

    reports: list[dict[str, Any]] = []

    def report(metrics: dict[str, Any], checkpoint: Any = None) -> None:
        if checkpoint is not None:
            raise RuntimeError("storage not reachable from this node")
        reports.append(metrics)

    monkeypatch.setattr(tune, "report", report)
    hook = _ReportToRay(["val_acc"], _checkpoints(epochs=4))
    state = SimpleNamespace(eval_at=set(), epoch=0, snapshot=dict)
    hook.on_train_start(state)
    assert hook.checkpoints.due(1)
    with caplog.at_level(logging.WARNING, logger="graft_hpo.sweep._trainable"):
        hook.on_epoch_end(state, {"val_acc": 0.5})
    assert [r["val_acc"] for r in reports] == [0.5]
    assert not hook.checkpoints.due(2)
    assert "it goes on without them" in caplog.text


def test_an_epoch_without_validation_still_checkpoints_when_due(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """train.eval_every=5 (the mnist pipeline) with checkpoints every epoch: the epochs between
    validations report a checkpoint without val_acc (the scheduler and Optuna pass it by), and
    an epoch that is neither validated nor due reports nothing."""
    from ray import tune

    from graft_hpo.sweep._trainable import _ReportToRay

    reports: list[tuple[dict[str, Any], bool]] = []

    def report(metrics: dict[str, Any], checkpoint: Any = None) -> None:
        with checkpoint.as_directory() if checkpoint else contextlib.nullcontext() as folder:
            assert folder is None or (Path(folder) / CHECKPOINT_FILE).is_file()
        reports.append((metrics, checkpoint is not None))

    monkeypatch.setattr(tune, "report", report)
    hook = _ReportToRay(["val_acc"], _checkpoints(every=2, epochs=4))
    state = SimpleNamespace(eval_at=set(), epoch=0, snapshot=dict)
    hook.on_train_start(state)
    assert state.eval_at == set()  # no validation added for a checkpoint
    for epoch in range(4):
        state.epoch = epoch
        hook.on_epoch_end(state, {"train_loss": 1.0})
    state.epoch = 2
    hook.on_epoch_end(state, {"train_loss": 1.0, "val_acc": 0.5})
    state.epoch = 3
    last = {"train_loss": 1.0, "val_acc": 0.5}
    hook.on_epoch_end(state, last)
    # ... but its metrics, which become the trial's final ones, carry the time checkpointing
    assert last["checkpoint_s"] == hook.checkpoints.spent_s > 0.0
    # the last epoch, validated, is not reported: the trial's final report follows
    assert [(m["epochs_done"], "val_acc" in m, saved) for m, saved in reports] == [
        (2, False, True),  # due, not validated
        (3, True, False),  # validated, not due
    ]
    assert reports[1][0]["checkpoint_s"] > 0.0  # the time the first one took


def test_the_sweeps_ray_storage_is_its_folder_or_a_subfolder_of_the_shared_one() -> None:
    assert ray_storage("/runs/sweeps/s1", "s1", None) == "/runs/sweeps/s1/ray"
    assert ray_storage("/runs/sweeps/s1", "s1", "/mnt/shared/") == "/mnt/shared/s1"
    assert ray_storage("/runs/sweeps/s1", "s1", "s3://bucket/sweeps") == "s3://bucket/sweeps/s1"


@pytest.mark.ray
@pytest.mark.mlflow
def test_checkpoints_go_to_the_checkpoint_storage_when_one_is_set(
    ray_local: Path, tmp_path: Path
) -> None:
    """``search.checkpoint_storage`` (a folder every node mounts, here another local one): Ray
    keeps the sweep's checkpoints and state under ``<storage>/<sweep id>``, not in the sweep
    folder."""
    from graft_hpo.sweep import run_sweep

    shared = tmp_path / "shared"
    result = run_sweep(
        "digits",
        trials=1,
        overrides=[
            "train.epochs=3",
            "train.device=cpu",
            "train.checkpoint_every=1",
            "emissions.enabled=false",
            "search.objectives=[{metric: val_acc, mode: max}]",
            "search.scheduler=null",
            "selection.strategy=random",
            f"search.checkpoint_storage={shared}",
        ],
        tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
        sweep_dir=tmp_path / "sweep",
        printer=None,
    )
    assert result.trials["FINISHED"] == 1
    saved = sorted(p.parent.name for p in (shared / result.sweep_id).rglob(CHECKPOINT_FILE))
    assert saved == ["checkpoint_000000", "checkpoint_000001"]  # after epochs 1 and 2
    assert not (tmp_path / "sweep" / "ray").exists()


def test_the_automatic_checkpoints_clock_starts_with_training() -> None:
    """Built before the process set-up and the data's loading, the clock of the cost share
    counted them as training: a worker's first trial checkpointed after its first epoch."""
    from graft_hpo.sweep._trainable import _ReportToRay

    checkpoints = _checkpoints(every=None, epochs=10)
    checkpoints.started = checkpoints.last_at = time.perf_counter() - 60.0  # a slow start
    assert checkpoints.due(1)
    hook = _ReportToRay(["val_acc"], checkpoints)
    hook.on_train_start(SimpleNamespace(eval_at=set()))
    assert not checkpoints.due(1)  # 2.5 s of training first (FIRST_GUESS_S / AUTO_SHARE)
    checkpoints.last_at -= 2.6
    assert checkpoints.due(1)
