"""Ray's private APIs that graft-hpo wraps: an upgrade that moves one fails here, by name."""

from __future__ import annotations

import inspect
import json
import signal
import threading
from pathlib import Path

import pytest

from graft_hpo.sweep import _ray_compat
from graft_hpo.sweep._ray_compat import refill_named_checkpoints


def test_ray_still_has_the_cluster_mode_constant() -> None:
    from ray._private import ray_constants

    before = ray_constants.ENABLE_RAY_CLUSTER
    try:
        assert _ray_compat.disable_cluster_mode(), (
            "ray._private.ray_constants.ENABLE_RAY_CLUSTER is gone: find Ray's new way to keep "
            "a local cluster on 127.0.0.1 (sweep/_ray.py) before upgrading"
        )
        assert ray_constants.ENABLE_RAY_CLUSTER is False
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = before


def test_tune_still_has_its_signal_hook() -> None:
    from ray.tune import tune as tune_module

    hook = getattr(tune_module, "_setup_signal_catching", None)
    assert callable(hook), (
        "ray.tune.tune._setup_signal_catching is gone: a Ctrl-C'd sweep can no longer be told "
        "from a finished one except by trial counts (sweep/_ray_compat.py)"
    )
    assert not inspect.signature(hook).parameters, "its signature changed: it took no argument"


def test_the_watch_sees_the_event_tune_sets() -> None:
    from ray.tune import tune as tune_module

    original = tune_module._setup_signal_catching
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGUSR1)}
    with _ray_compat.watch_interruption() as watch:
        assert watch.hooked
        assert tune_module._setup_signal_catching is not original
        event = tune_module._setup_signal_catching()  # what Tuner.fit calls
        assert isinstance(event, threading.Event)
        assert not watch.happened()
        event.set()  # what Tune's SIGINT handler does
        assert watch.happened()
    assert tune_module._setup_signal_catching is original  # put back
    for sig, handler in handlers.items():  # Tune's hook installed its own handlers
        signal.signal(sig, handler)


def test_without_the_hook_the_watch_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    from ray.tune import tune as tune_module

    monkeypatch.delattr(tune_module, "_setup_signal_catching")
    with _ray_compat.watch_interruption() as watch:
        assert not watch.hooked
        assert not watch.happened()


def test_tune_still_names_its_state_file_as_the_refill_reads_it() -> None:
    from ray.tune.execution.tune_controller import TuneController

    assert TuneController.CKPT_FILE_TMPL == "experiment_state-{}.json"


def _trial_state(trial_id: str, reported: str, pickled: str) -> list[object]:
    """One trial's entry of Tune's experiment state: its JSON (its last result names its
    checkpoint) and a cloudpickled part (hex), as Ray 2.x writes them."""
    data = {"trial_id": trial_id, "last_result": {"checkpoint_dir_name": reported}}
    blob = {"_type": "CLOUDPICKLE_FALLBACK", "value": f"..{pickled}..".encode().hex()}
    return [json.dumps(data, indent=2), json.dumps({"manager": blob}, indent=2)]


def test_a_checkpoint_the_state_names_and_is_gone_is_refilled_from_the_newest(
    tmp_path: Path,
) -> None:
    trial = tmp_path / "trainable_abc12345_1_x=1_2026"
    for index, content in ((3, "epoch 3"), (4, "epoch 4")):
        (trial / f"checkpoint_00000{index}").mkdir(parents=True)
        (trial / f"checkpoint_00000{index}" / "trial.pt").write_text(content)
    other = tmp_path / "trainable_zzz99999_2_x=2_2026" / "checkpoint_000007"
    other.mkdir(parents=True)
    state = {
        "trial_data": [
            _trial_state("abc12345", "checkpoint_000001", "checkpoint_000000"),
            _trial_state("zzz99999", "checkpoint_000007", "checkpoint_000006"),
        ]
    }
    (tmp_path / "experiment_state-2026-01-01_00-00-00.json").write_text("{}")  # older
    (tmp_path / "experiment_state-2026-01-01_00-00-09.json").write_text(json.dumps(state))

    created = refill_named_checkpoints(str(tmp_path))

    assert sorted(p.name for p in created) == [
        "checkpoint_000000",
        "checkpoint_000001",
        "checkpoint_000006",
    ]
    for name in ("checkpoint_000000", "checkpoint_000001"):  # the newest, not the oldest
        assert (trial / name / "trial.pt").read_text() == "epoch 4"
    assert (trial / "checkpoint_000003" / "trial.pt").read_text() == "epoch 3"  # untouched
    assert refill_named_checkpoints(str(tmp_path)) == []  # once
    assert refill_named_checkpoints("s3://bucket/sweep") == []  # cloud storage: not touched
    (tmp_path / "experiment_state-2026-01-01_00-00-09.json").write_text("{not json")
    assert refill_named_checkpoints(str(tmp_path)) == []  # unreadable: nothing refilled
