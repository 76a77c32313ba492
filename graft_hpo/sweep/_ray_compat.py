"""The two private Ray APIs graft-hpo relies on, each behind one function.

Ray has no public way to do either. If an upgrade moves them, the sweep still runs (each
function falls back and says so in its docstring), and ``tests/sweep/test_ray_compat.py``
fails loudly, naming what moved.

- ``ray._private.ray_constants.ENABLE_RAY_CLUSTER``: read at import; a driver that already
  imported ray must set it for Ray to honour 127.0.0.1.
- ``ray.tune.tune._setup_signal_catching``: the event Tune sets when it catches Ctrl-C, the
  only reliable witness that ``Tuner.fit`` returned because of an interruption.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from typing import Any

__all__ = ["Interruption", "disable_cluster_mode", "watch_interruption"]


def disable_cluster_mode() -> bool:
    """Tell an imported Ray not to swap loopback for the host's address; False if it cannot."""
    try:
        from ray._private import ray_constants
    except ImportError:
        return False
    if not hasattr(ray_constants, "ENABLE_RAY_CLUSTER"):
        return False
    ray_constants.ENABLE_RAY_CLUSTER = False
    return True


@dataclass
class Interruption:
    hooked: bool = False  # Tune's interruption event could be watched
    events: list[Any] = field(default_factory=list)

    def happened(self) -> bool:
        return any(event.is_set() for event in self.events)


@contextlib.contextmanager
def watch_interruption() -> Iterator[Interruption]:
    """Whether Tune's ``fit`` ended because of Ctrl-C (SIGINT).

    Tune catches SIGINT itself and returns from ``fit`` as if done; its event is the only
    reliable witness (trial counts are not: the trials it stops may count as terminated).
    The event is captured by wrapping Tune's private ``_setup_signal_catching``; a Ray
    version without it leaves ``hooked`` False and the caller falls back on counts.
    """
    watch = Interruption()
    try:
        from ray.tune import tune as tune_module

        original = tune_module._setup_signal_catching
    except (ImportError, AttributeError):
        yield watch
        return

    def capture() -> Any:
        event = original()
        watch.events.append(event)
        return event

    tune_module._setup_signal_catching = capture
    watch.hooked = True
    try:
        yield watch
    finally:
        tune_module._setup_signal_catching = original
