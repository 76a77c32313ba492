"""Ray's private APIs that graft-hpo wraps: an upgrade that moves one fails here, by name."""

from __future__ import annotations

import inspect
import signal
import threading

import pytest

from graft_hpo.sweep import _ray_compat


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
