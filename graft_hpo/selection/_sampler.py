"""GRAFT in anyone's training loop: a ``Sampler`` that re-selects its subset when due."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset
from torch.utils.data import Sampler

from graft_hpo._names import SELECTION_S
from graft_hpo.exceptions import TrialFailedError
from graft_hpo.selection._base import Phase
from graft_hpo.selection._base import Selection
from graft_hpo.selection._base import Selector
from graft_hpo.selection._base import SubsetSchedule

__all__ = ["SubsetSampler"]

logger = logging.getLogger(__name__)


class SubsetSampler(Sampler[int]):
    """Yields the dataset indices to train on this epoch, re-selecting on schedule.

    Call :meth:`set_epoch` at the start of every epoch: it asks the schedule for the epoch's
    :class:`Phase` (kept in :attr:`phase`). In a ``full`` epoch the sampler yields every index;
    in a ``subset`` epoch it yields the current subset, re-selected with the model as it is
    whenever the schedule says so. Indices are reshuffled every epoch with ``generator``.

    Args:
        selector: a :class:`Selector` (``get_selector("graft", fraction=0.3)``).
        dataset: the data set the loader reads (possibly augmented).
        model: the model being trained; selection reads its current weights.
        schedule: warm start and re-selection period; a strategy with its own schedule
            (InfoBatch prunes anew every epoch) replaces it (:meth:`Selector.schedule`).
        selection_dataset: the same samples without augmentation, for scoring; defaults to
            ``dataset``.
        generator: seeds shuffling and selection.
        device: where selection runs; defaults to the model's device.

    Example:
        >>> sampler = SubsetSampler(get_selector("graft", fraction=0.3), train_set, model,
        ...                         schedule=SubsetSchedule(warm_start_epochs=1, select_every=2))
        ... # doctest: +SKIP
        >>> loader = DataLoader(train_set, batch_size=128, sampler=sampler)  # doctest: +SKIP
        >>> for epoch in range(10):  # doctest: +SKIP
        ...     sampler.set_epoch(epoch)
        ...     for x, y in loader: ...
    """

    def __init__(
        self,
        selector: Selector,
        dataset: Dataset[Any],
        model: nn.Module,
        *,
        schedule: SubsetSchedule | None = None,
        selection_dataset: Dataset[Any] | None = None,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        self.selector = selector
        self.dataset = dataset
        self.model = model
        self.schedule = selector.schedule(schedule or SubsetSchedule())
        self.selection_dataset = selection_dataset if selection_dataset is not None else dataset
        self.generator = generator
        self.device = device
        self.selection: Selection | None = None  # the current subset; None before the first
        self.phase = Phase("full", resample=False)  # this epoch's; every index until set_epoch

    def set_epoch(self, epoch: int) -> Selection | None:
        """Enter ``epoch`` (0-based); returns the new :class:`Selection` if one was made."""
        phase = self.schedule.phase(epoch)
        if not (phase.resample or (phase.kind == "subset" and self.selection is None)):
            self.phase = phase
            return None
        selection = self.selector.select(
            self.model, self.selection_dataset, generator=self.generator, device=self.device
        )
        _check_selection(selection, len(self.dataset), self.selector)  # type: ignore[arg-type]
        self.selection = selection
        self.phase = phase  # only now: a subset phase always has a selection
        whole = len(self.selection.indices) == len(self.dataset)  # type: ignore[arg-type]
        seconds = self.selection.stats.get(SELECTION_S, 0.0)
        logger.log(
            logging.DEBUG if whole else logging.INFO,  # "all of them" is no news
            "epoch %d: selected %d of %d samples (%.1f%%)%s",
            epoch,
            len(self.selection.indices),
            len(self.dataset),  # type: ignore[arg-type]
            100 * self.selection.fraction,
            # a ranking's prefix or a random draw costs nothing here: "in 0.00s" would hide
            # where a shared ranking's time went (its own line says)
            f" in {seconds:.2f}s" if seconds > 0 else "",
        )
        return self.selection

    def current_indices(self) -> torch.Tensor:
        """The dataset indices of this epoch, unshuffled (all of them in a full epoch)."""
        if self.phase.kind == "subset" and self.selection is not None:
            return self.selection.indices
        return torch.arange(len(self.dataset))  # type: ignore[arg-type]

    def current_weights(self) -> torch.Tensor | None:
        """This epoch's loss weight of every dataset index, or None for a plain mean loss.

        Returns:
            ``(len(dataset),)`` float32, the selection's weights at its indices and 0 elsewhere;
            None in a full epoch or when the selection has no weights.
        """
        selection = self.selection
        if self.phase.kind != "subset" or selection is None or selection.weights is None:
            return None
        table = torch.zeros(len(self.dataset))  # type: ignore[arg-type]
        table[selection.indices] = selection.weights
        return table

    def state_dict(self) -> dict[str, Any]:
        """The current subset, the phase, the selector's memory and the generator's state: a
        checkpoint with them (and the model) makes a resumed run draw what this one would."""
        selection = None if self.selection is None else dataclasses.asdict(self.selection)
        return {
            "selection": selection,
            "phase": dataclasses.asdict(self.phase),
            "selector": self.selector.state_dict(),
            "generator": None if self.generator is None else self.generator.get_state(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Take back what :meth:`state_dict` returned."""
        selection = state["selection"]
        self.selection = None if selection is None else Selection(**selection)
        self.phase = Phase(**state["phase"])
        self.selector.load_state_dict(state["selector"])
        if self.generator is not None and state["generator"] is not None:
            self.generator.set_state(state["generator"])

    def __iter__(self) -> Iterator[int]:
        indices = self.current_indices()
        order = torch.randperm(len(indices), generator=self.generator)
        return iter(indices[order].tolist())

    def __len__(self) -> int:
        return len(self.current_indices())


def _check_selection(selection: Selection, n: int, selector: Selector) -> None:
    """Refuse, in one line, a selection that would train on the wrong samples without a word.

    Built-in selectors never trip it; a plug-in's duplicates, negative (wrapping) or fractional
    indices, an empty subset or negative weights would otherwise train silently or fail deep
    in the loop.
    """
    problem = _selection_problem(selection.indices, selection.weights, n)
    if problem is not None:
        raise TrialFailedError(
            f"selector {selector.name!r} returned {problem}; a Selection holds distinct int64 "
            f"dataset indices in [0, {n}), at least one, and weights None or one finite value "
            ">= 0 per index"
        )


def _selection_problem(indices: Any, weights: Any, n: int) -> str | None:
    if not isinstance(indices, torch.Tensor):
        return f"indices of type {type(indices).__name__}, not a tensor"
    if indices.dtype != torch.int64 or indices.dim() != 1:
        return f"indices of dtype {indices.dtype} and shape {tuple(indices.shape)}"
    if indices.numel() == 0:
        return "no index"
    low, high = int(indices.min()), int(indices.max())
    if low < 0 or high >= n:
        return f"indices from {low} to {high}"
    repeated = indices.numel() - torch.unique(indices).numel()
    if repeated:
        return f"{repeated} repeated indices"
    if weights is None:
        return None
    if not isinstance(weights, torch.Tensor) or weights.shape != indices.shape:
        shape = tuple(weights.shape) if isinstance(weights, torch.Tensor) else type(weights)
        return f"weights of shape {shape} for {indices.numel()} indices"
    if not bool(torch.isfinite(weights).all()) or bool((weights < 0).any()):
        return "weights that are negative or not finite"
    return None
