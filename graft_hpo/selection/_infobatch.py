"""``infobatch``: loss-based dynamic pruning (Qin et al., ICLR 2024), the control users would pick.

InfoBatch needs no scoring pass: every sample's most recent training loss is recorded from the
training forward pass itself (:meth:`InfoBatchSelector.record_losses`, called by the loop each
step, on the device, without a host sync). At each epoch, among the samples whose recorded loss
is below the mean, a random share ``prune_ratio`` sits the epoch out; the kept low-loss samples'
losses are scaled by ``1 / (1 - prune_ratio)``, so the expected gradient is unchanged. Samples
never seen count as high-loss (never pruned). The last ``anneal`` share of the epochs trains on
all the data, unweighted.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from graft_hpo._names import SELECTION_S
from graft_hpo.config import SelectionConfig
from graft_hpo.config import TrainConfig
from graft_hpo.selection._base import Selection
from graft_hpo.selection._base import Selector
from graft_hpo.selection._base import SubsetSchedule
from graft_hpo.selection._base import check_knobs

__all__ = ["InfoBatchSelector"]

logger = logging.getLogger(__name__)


class InfoBatchSelector(Selector):
    """Prune a random share of the well-learnt samples every epoch, rescaling the rest.

    Call :meth:`select` once per epoch (``SubsetSchedule(0, 1)``): the selector counts the
    epochs itself to know when annealing starts.

    Defaults and ranges are those of :class:`~graft_hpo.config.SelectionConfig`.

    Args:
        prune_ratio: share of the below-mean-loss samples left out of an epoch.
        anneal: share of the epochs, at the end, trained on all the data.
        epochs: the run's number of epochs (``train.epochs``; 1 when not given).
    """

    name = "infobatch"

    def __init__(
        self,
        *,
        prune_ratio: float = SelectionConfig.prune_ratio,
        anneal: float = SelectionConfig.anneal,
        epochs: int = 1,
    ) -> None:
        check_knobs(
            {
                "selection.prune_ratio": prune_ratio,
                "selection.anneal": anneal,
                "train.epochs": epochs,
            }
        )
        self.prune_ratio = prune_ratio
        self.anneal = anneal
        self.epochs = epochs
        self._scores: torch.Tensor | None = None  # (n,) latest loss per sample; inf: unseen
        self._epoch = 0  # epochs selected so far
        self._said_unrecorded = False

    @classmethod
    def from_config(
        cls, selection: SelectionConfig, train: TrainConfig, **extra: Any
    ) -> InfoBatchSelector:
        """The pipeline's InfoBatch: ``selection``'s knobs, ``train.epochs`` epochs."""
        return super().from_config(selection, train, **{"epochs": train.epochs, **extra})

    def schedule(self, configured: SubsetSchedule) -> SubsetSchedule:
        """Every epoch prunes anew, from the first: the configured schedule does not apply."""
        return SubsetSchedule(warm_start_epochs=0, select_every=1)

    @property
    def first_annealed_epoch(self) -> int:
        """0-based epoch from which every epoch trains on all the data."""
        # the decimal anneal prints as, as budget_of: 0.29 of 100 epochs is 29, not 28
        return self.epochs - math.floor(Fraction(str(self.anneal)) * self.epochs)

    def record_losses(self, index: torch.Tensor, losses: torch.Tensor) -> None:
        """Remember ``losses`` (``(b,)``, unreduced) of the samples ``index`` (dataset indices).

        Runs on the losses' device with no host synchronisation; the first call sizes the table
        from the largest index seen so far and grows it on demand.
        """
        need = int(index.max()) + 1 if index.numel() else 0  # index lives on the host
        index = index.to(losses.device, non_blocking=True)
        if self._scores is None:
            self._scores = torch.full((0,), math.inf, device=losses.device)
        elif self._scores.device != losses.device:  # e.g. taken back from a checkpoint
            self._scores = self._scores.to(losses.device)
        if need > self._scores.numel():
            grown = torch.full((need,), math.inf, device=losses.device)
            grown[: self._scores.numel()] = self._scores
            self._scores = grown
        self._scores[index] = losses.detach().float()

    def select(
        self,
        model: nn.Module,
        dataset: Dataset[Any],
        *,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> Selection:
        n = len(dataset)  # type: ignore[arg-type]
        epoch, self._epoch = self._epoch, self._epoch + 1
        everything = torch.arange(n)
        none = everything[:0]
        pruning = epoch < self.first_annealed_epoch and self.prune_ratio > 0.0
        self._warn_if_misused(epoch, pruning)
        well_learnt, pruned = self._prune(n, generator) if pruning else (none, none)
        if pruned.numel() == 0:  # annealed, or nothing left out: a plain, unweighted epoch
            return Selection(everything, None, 1.0, {SELECTION_S: 0.0, "pruned": 0.0})
        keep = torch.ones(n, dtype=torch.bool)
        keep[pruned] = False
        weights = torch.ones(n)
        weights[well_learnt] = 1.0 / (1.0 - self.prune_ratio)
        indices = everything[keep]
        stats = {SELECTION_S: 0.0, "pruned": float(pruned.numel())}
        return Selection(indices, weights[keep], len(indices) / n, stats)

    def _warn_if_misused(self, epoch: int, pruning: bool) -> None:
        """Say once what makes InfoBatch train on everything in a loop other than train()."""
        if epoch == self.epochs:
            logger.warning(
                "infobatch was built for epochs=%d and is selecting for epoch %d: pass epochs= "
                "(the run's epoch count), or every epoch from %d on trains on all the data",
                self.epochs,
                epoch,
                self.first_annealed_epoch,
            )
        if pruning and epoch > 0 and self._scores is None and not self._said_unrecorded:
            self._said_unrecorded = True
            logger.warning(
                "infobatch has no training loss recorded, so epoch %d trains on all the data: "
                "call selector.record_losses(index, losses) with each step's per-sample losses "
                "by dataset index (graft_hpo.training.train does)",
                epoch,
            )

    def _prune(
        self, n: int, generator: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The well-learnt samples (recorded loss below the mean) and the random share of them
        that sits this epoch out, as dataset indices."""
        scores = torch.full((n,), math.inf)
        if self._scores is not None:
            seen = self._scores[:n].cpu()
            scores[: seen.numel()] = seen
        finite = torch.isfinite(scores)
        mean = scores[finite].mean() if bool(finite.any()) else torch.tensor(math.inf)
        well_learnt = (finite & (scores < mean)).nonzero().squeeze(1)
        order = torch.randperm(well_learnt.numel(), generator=generator)
        return well_learnt, well_learnt[order[: round(self.prune_ratio * well_learnt.numel())]]

    def state_dict(self) -> dict[str, Any]:
        """The recorded losses and the epochs selected so far."""
        scores = None if self._scores is None else self._scores.detach().cpu().clone()
        return {"scores": scores, "epoch": self._epoch}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._scores, self._epoch = state["scores"], int(state["epoch"])

    def __repr__(self) -> str:
        return (
            f"InfoBatchSelector(prune_ratio={self.prune_ratio!r}, anneal={self.anneal!r}, "
            f"epochs={self.epochs!r})"
        )
