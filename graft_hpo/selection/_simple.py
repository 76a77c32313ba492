"""The two baselines every GRAFT result must beat: ``random`` (same budget) and ``full``."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from graft_hpo._names import SELECTION_S
from graft_hpo.config import SelectionConfig
from graft_hpo.selection._base import Selection
from graft_hpo.selection._base import Selector
from graft_hpo.selection._base import budget_of
from graft_hpo.selection._base import check_knobs

__all__ = ["FullSelector", "RandomSelector"]


class RandomSelector(Selector):
    """A uniformly random subset of the same budget, re-drawn on the same schedule as GRAFT.

    Args:
        fraction: budget, the share of the data set per subset epoch (``selection.fraction``).
    """

    name = "random"

    def __init__(self, *, fraction: float = SelectionConfig.fraction) -> None:
        check_knobs({"selection.fraction": fraction})
        self.fraction = fraction

    def select(
        self,
        model: nn.Module,
        dataset: Dataset[Any],
        *,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> Selection:
        n = len(dataset)  # type: ignore[arg-type]
        budget = budget_of(self.fraction, n)
        indices = torch.randperm(n, generator=generator)[:budget].sort().values
        return Selection(indices, None, budget / n, {SELECTION_S: 0.0})


class FullSelector(Selector):
    """Every sample, every epoch: the full-data reference."""

    name = "full"

    def select(
        self,
        model: nn.Module,
        dataset: Dataset[Any],
        *,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> Selection:
        n = len(dataset)  # type: ignore[arg-type]
        return Selection(torch.arange(n), None, 1.0, {SELECTION_S: 0.0})
