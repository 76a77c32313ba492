"""A data plug-in that holds trials at a gate (``"tests.plugins.gated:digits"``).

Interrupting a sweep "while it runs" by timing alone is a race: digits trials take 0.2-4 s,
and on a loaded machine the remaining trials may all finish before the signal lands. This
plug-in makes the interruption deterministic: the first Tune trial to load its data passes;
every later trial waits while the file ``gate`` exists. A test removes the file to let a
resumed sweep through. Calls outside a Tune trial (the driver's checks) never wait.
"""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path

from graft_hpo.config import DataConfig
from graft_hpo.data import load_data


def _tune_trial_id() -> str | None:
    from ray import tune

    with warnings.catch_warnings():  # outside a trial Ray warns and returns None
        warnings.simplefilter("ignore")
        return tune.get_context().get_trial_id()


def _wait_at(gate: Path, timeout_s: float) -> None:
    trial_id = _tune_trial_id()
    if trial_id is None or not gate.exists():
        return
    ticket = gate.with_name(gate.name + ".first")
    try:  # the first trial to arrive takes the ticket and passes
        fd = os.open(ticket, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        if ticket.read_text() == trial_id:  # the ticket holder loading again
            return
    else:
        with os.fdopen(fd, "w") as f:
            f.write(trial_id)
        return
    deadline = time.monotonic() + timeout_s
    while gate.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"trial {trial_id} waited {timeout_s:.0f} s at {gate}")
        time.sleep(0.1)


def digits(gate: str, timeout_s: float = 600.0) -> tuple:
    """The digits splits (train, val, test), after waiting at ``gate`` (see the module)."""
    _wait_at(Path(gate), timeout_s)
    bundle = load_data(DataConfig(name="digits"), seed=0)
    return bundle.train, bundle.val, bundle.test
