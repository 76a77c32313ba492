"""The ``Selector`` interface, its result, and the re-selection schedule."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import ClassVar

import torch
from torch import nn
from torch.utils.data import Dataset

__all__ = ["Phase", "Selection", "Selector", "SubsetSchedule"]


@dataclass(frozen=True)
class Selection:
    """The outcome of one selection round.

    Attributes:
        indices: ``(m,)`` int64 **dataset indices** of the chosen samples, sorted, distinct.
        weights: ``(m,)`` float32 per-sample loss weights aligned with ``indices`` (mean 1), or
            None for plain mean loss.
        fraction: realised share of the data set, ``m / len(dataset)``.
        stats: numbers worth logging (``selection_s``, ``alignment_mean``, ...).
    """

    indices: torch.Tensor
    weights: torch.Tensor | None
    fraction: float
    stats: dict[str, float] = field(default_factory=dict)


class Selector(abc.ABC):
    """Chooses the subset of a training set to train on until the next selection.

    Subclasses implement :meth:`select`; the constructor only stores keyword-only parameters.
    Selection happens in dataset indices, so it is independent of any loader's shuffling.
    """

    name: ClassVar[str]

    @abc.abstractmethod
    def select(
        self,
        model: nn.Module,
        dataset: Dataset[Any],
        *,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> Selection:
        """Choose a subset of ``dataset`` for ``model`` as it is now.

        Args:
            model: the classifier being trained (its final ``nn.Linear`` gives the logits).
            dataset: the training set without augmentation, yielding ``(x, y)``.
            generator: seeds every random choice (batch partition, random subsets).
            device: where to run forward passes and linear algebra; defaults to the model's.
        """

    def schedule(self, configured: SubsetSchedule) -> SubsetSchedule:
        """When to select: ``configured`` (warm start, period) unless the strategy has its own."""
        return configured

    def record_losses(self, index: torch.Tensor, losses: torch.Tensor) -> None:
        """Called by the training loop each step with the samples' unreduced losses.

        Args:
            index: ``(b,)`` dataset indices (on the host).
            losses: ``(b,)`` detached per-sample losses (on the device); a strategy that uses
                them must not synchronise with the host here. No-op by default.
        """
        return None  # an optional hook, not an abstract method

    def __repr__(self) -> str:
        # the constructor's arguments; private state (a cache) is not part of the description
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({params})"


@dataclass(frozen=True)
class Phase:
    """What an epoch trains on: ``full`` data, or the current ``subset`` (re-selected first if
    ``resample``)."""

    kind: str
    resample: bool


@dataclass(frozen=True)
class SubsetSchedule:
    """When to train on full data and when to re-select (GRAFT_NOTES §3.7, §5.4).

    Epochs ``0 .. warm_start_epochs - 1`` train on the full data; from then on every epoch
    trains on a subset, re-selected at the first subset epoch and every ``select_every`` epochs
    after it.
    """

    warm_start_epochs: int = 0
    select_every: int = 1

    def __post_init__(self) -> None:
        if self.warm_start_epochs < 0:
            raise ValueError(f"warm_start_epochs must be >= 0; got {self.warm_start_epochs!r}")
        if self.select_every < 1:
            raise ValueError(f"select_every must be >= 1; got {self.select_every!r}")

    def phase(self, epoch: int) -> Phase:
        """The phase of 0-based ``epoch``."""
        if epoch < self.warm_start_epochs:
            return Phase("full", resample=False)
        return Phase("subset", resample=(epoch - self.warm_start_epochs) % self.select_every == 0)
