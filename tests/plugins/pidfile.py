"""A data plug-in that tells a test which process trains a trial
(``"tests.plugins.pidfile:digits"``): in a Tune trial it writes the worker's pid to
``<folder>/<trial id>.pid`` before loading digits, so that the test can kill that worker."""

from __future__ import annotations

import os
from pathlib import Path

from graft_hpo.config import DataConfig
from graft_hpo.data import load_data
from tests.plugins.gated import _tune_trial_id


def digits(folder: str) -> tuple:
    """The digits splits (train, val, test), after noting the worker's pid (see the module)."""
    trial_id = _tune_trial_id()
    if trial_id is not None:
        Path(folder, f"{trial_id}.pid").write_text(str(os.getpid()))
    bundle = load_data(DataConfig(name="digits"), seed=0)
    return bundle.train, bundle.val, bundle.test
