"""The training loop's state at the end of an epoch, and putting it back.

What a trial checkpoint holds of the loop: the model, the optimizer, the subset sampler (its
current subset, its selector's memory, its generator), the global RNGs and the progress so far.
A run resumed from it draws the same batches and subsets as the uninterrupted run, so on the CPU
it ends with the same weights, bit for bit (tests/training/test_checkpoint.py).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from graft_hpo._names import SELECTION_S
from graft_hpo._names import TRAIN_S
from graft_hpo._torch import rng_state
from graft_hpo._torch import set_rng_state
from graft_hpo.selection import SubsetSampler

__all__ = ["LOOP_FORMAT", "loop_state", "restore_loop"]

LOOP_FORMAT = 1  # bumped when the layout below changes; an older checkpoint is refused


def loop_state(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    sampler: SubsetSampler,
    progress: Any,
    train_s: float,
) -> dict[str, Any]:
    """The loop as it is after epoch ``progress.epoch`` (a :class:`TrainState`).

    The tensors are the live ones, not copies: save the dict (``torch.save``) before training
    goes on.
    """
    return {
        "format": LOOP_FORMAT,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "sampler": sampler.state_dict(),
        "rng": rng_state(),
        "progress": {
            "epoch": progress.epoch,
            "step": progress.step,
            "samples_seen": progress.samples_seen,
            SELECTION_S: progress.selection_s,
            "history": copy.deepcopy(progress.history),
            TRAIN_S: train_s,
        },
    }


def restore_loop(
    saved: Mapping[str, Any],
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    sampler: SubsetSampler,
    progress: Any,
) -> float:
    """Put back what :func:`loop_state` returned; the caller goes on with the next epoch.

    Returns:
        The seconds trained before the checkpoint (``train_s`` goes on from there).

    Raises:
        ValueError: ``saved`` is not a loop state of this version.
    """
    if not isinstance(saved, Mapping) or saved.get("format") != LOOP_FORMAT:
        found = saved.get("format") if isinstance(saved, Mapping) else type(saved).__name__
        raise ValueError(f"not a training-loop state of format {LOOP_FORMAT}: got {found!r}")
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    sampler.load_state_dict(saved["sampler"])
    set_rng_state(saved["rng"])
    done = saved["progress"]
    progress.epoch, progress.step = done["epoch"], done["step"]
    progress.samples_seen, progress.selection_s = done["samples_seen"], done[SELECTION_S]
    progress.history = copy.deepcopy(done["history"])
    return float(done[TRAIN_S])
