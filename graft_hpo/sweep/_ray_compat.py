"""The private Ray APIs graft-hpo relies on, each behind one function.

Ray has no public way to do either. If an upgrade moves them, the sweep still runs (each
function falls back and says so in its docstring), and ``tests/sweep/test_ray_compat.py``
fails loudly, naming what moved.

- ``ray._private.ray_constants.ENABLE_RAY_CLUSTER``: read at import; a driver that already
  imported ray must set it for Ray to honour 127.0.0.1.
- ``ray.tune.tune._setup_signal_catching``: the event Tune sets when it catches Ctrl-C, the
  only reliable witness that ``Tuner.fit`` returned because of an interruption.
- Tune's experiment state (``experiment_state-*.json``, ``TuneController.CKPT_FILE_TMPL``): the
  checkpoints it names, which a resume restores trials from (:func:`refill_named_checkpoints`).
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

__all__ = [
    "Interruption",
    "disable_cluster_mode",
    "refill_named_checkpoints",
    "watch_interruption",
]


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


_CHECKPOINT = re.compile(r"checkpoint_\d{6}")


def refill_named_checkpoints(experiment: str) -> list[Path]:
    """Before Tune restores the sweep's experiment: recreate each checkpoint folder its saved
    state names that is gone from its trial's folder, as a copy of the trial's newest one.

    Tune's saved state names a trial's latest checkpoint as of its last snapshot, while
    ``CheckpointConfig(num_to_keep)`` deletes older checkpoints as newer ones arrive; Tune
    forces a new snapshot at that moment but writes it asynchronously, so a driver killed in
    between leaves a state naming a deleted checkpoint, and Tune refuses to restore the trial
    ("Could not recover from checkpoint as it does not exist on storage anymore"). Its newest
    checkpoint on disk is the state the trial reached last: the trial goes on from there.

    Reads the newest ``experiment_state-*.json``: each trial's entry names its id and, in its
    results and in its pickled checkpoint manager, its checkpoints (``checkpoint_NNNNNN``).
    A local folder only (on ``s3://``/``gs://`` nothing is refilled); a state it cannot read
    refills nothing. Returns the folders it created.
    """
    folder = Path(experiment)
    states = sorted(folder.glob("experiment_state-*.json")) if "://" not in experiment else []
    try:
        trials = json.loads(states[-1].read_text())["trial_data"] if states else []
    except (OSError, ValueError, KeyError, TypeError):
        return []
    created = []
    for entry in trials:
        text = "\n".join(part if isinstance(part, str) else json.dumps(part) for part in entry)
        found = re.search(r'"trial_id": "(\w+)"', text)
        if found is None:
            continue
        names = set(_CHECKPOINT.findall(text))
        for blob in re.findall(r'"value": "([0-9a-f]+)"', text):  # cloudpickled parts
            names |= set(_CHECKPOINT.findall(bytes.fromhex(blob).decode("latin-1")))
        for trial_dir in folder.glob(f"*_{found.group(1)}_*"):
            have = sorted(d for d in trial_dir.glob("checkpoint_*") if d.is_dir())
            for name in sorted(names - {d.name for d in have}):
                if have:
                    shutil.copytree(have[-1], trial_dir / name)
                    created.append(trial_dir / name)
    return created
