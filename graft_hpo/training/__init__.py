"""The training loop: GRAFT subsets, hooks for everything else (no Ray, MLflow or codecarbon)."""

from graft_hpo.training._checkpoint import LOOP_FORMAT
from graft_hpo.training._loop import TrainHooks
from graft_hpo.training._loop import TrainResult
from graft_hpo.training._loop import TrainState
from graft_hpo.training._loop import evaluate
from graft_hpo.training._loop import resolve_device
from graft_hpo.training._loop import train

__all__ = [
    "LOOP_FORMAT",
    "TrainHooks",
    "TrainResult",
    "TrainState",
    "evaluate",
    "resolve_device",
    "train",
]
