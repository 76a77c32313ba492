"""graft-hpo: energy-aware hyperparameter sweeps with GRAFT data subsets.

``import graft_hpo`` is light: it imports neither torch's heavy users nor ray, optuna, mlflow or
codecarbon. The entry points below load their modules on first use.

Example:
    >>> import graft_hpo
    >>> cfg = graft_hpo.load_pipeline("digits", overrides=["train.epochs=1"])  # doctest: +SKIP
    >>> result = graft_hpo.run_trial(cfg)  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING
from typing import Any

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "GraftHPOError",
    "PipelineConfig",
    "RetrainResult",
    "SweepResult",
    "TrialResult",
    "__version__",
    "load_model",
    "load_pipeline",
    "pareto_front",
    "resume_sweep",
    "retrain",
    "run_sweep",
    "run_trial",
    "select_run",
]

# public name -> module that defines it; imported on first attribute access (PEP 562)
_LAZY = {
    "load_pipeline": "graft_hpo.config",
    "PipelineConfig": "graft_hpo.config",
    "run_trial": "graft_hpo.trial",
    "TrialResult": "graft_hpo.trial",
    "run_sweep": "graft_hpo.sweep",
    "SweepResult": "graft_hpo.sweep",
    "resume_sweep": "graft_hpo.sweep",
    "pareto_front": "graft_hpo.tracking",
    "load_model": "graft_hpo.tracking",
    "select_run": "graft_hpo.tracking",
    "retrain": "graft_hpo.retraining",
    "RetrainResult": "graft_hpo.retraining",
}

from graft_hpo.exceptions import ConfigError  # noqa: E402
from graft_hpo.exceptions import GraftHPOError  # noqa: E402

if TYPE_CHECKING:
    from graft_hpo.config import PipelineConfig
    from graft_hpo.config import load_pipeline
    from graft_hpo.retraining import RetrainResult
    from graft_hpo.retraining import retrain
    from graft_hpo.sweep import SweepResult
    from graft_hpo.sweep import resume_sweep
    from graft_hpo.sweep import run_sweep
    from graft_hpo.tracking import load_model
    from graft_hpo.tracking import pareto_front
    from graft_hpo.tracking import select_run
    from graft_hpo.trial import TrialResult
    from graft_hpo.trial import run_trial


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'graft_hpo' has no attribute {name!r}")
