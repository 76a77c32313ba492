"""The ``Selector`` interface, its result, the re-selection schedule, and what strategies share.

A selector's knobs are the pipeline's ``selection`` fields of the same names: their defaults are
declared once, in :class:`~graft_hpo.config.SelectionConfig`, and their ranges once, in the
config's rule table (:func:`check_knobs`).
"""

from __future__ import annotations

import abc
import dataclasses
import inspect
import math
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from fractions import Fraction
from typing import Any
from typing import ClassVar
from typing import TypeVar

import torch
from torch import nn
from torch.utils.data import Dataset

from graft_hpo.config import SelectionConfig
from graft_hpo.config import TrainConfig
from graft_hpo.config import rule_errors

__all__ = [
    "Phase",
    "Selection",
    "Selector",
    "SubsetSchedule",
    "budget_of",
    "check_knobs",
    "keyword_parameters",
]

_S = TypeVar("_S", bound="Selector")


def budget_of(fraction: float, n: int) -> int:
    """Samples per subset epoch for budget ``fraction`` of ``n`` samples: ``floor(f n)``, >= 1.

    ``f`` is the decimal the float prints as, so 0.29 of 100 is 29 (the binary float's product
    is 28.999..., which floors to 28).

    Example:
        >>> budget_of(0.29, 100), budget_of(0.57, 5000), budget_of(0.3, 1079)
        (29, 2850, 323)
    """
    return max(1, min(n, math.floor(Fraction(str(fraction)) * n)))


def check_knobs(knobs: Mapping[str, Any], *, errors: Sequence[str] = ()) -> None:
    """Refuse knobs outside the ranges the pipeline config declares for them.

    Args:
        knobs: values by dotted config path (``{"selection.fraction": 0.3}``), checked by
            :func:`graft_hpo.config.rule_errors`, the loader's own check.
        errors: messages about parameters the config does not have, reported with the rest.

    Raises:
        ValueError: every problem, joined by ``"; "``.
    """
    problems = [*rule_errors(knobs), *errors]
    if problems:
        raise ValueError("; ".join(problems))


def keyword_parameters(cls: type[Selector]) -> list[str]:
    """The keyword-only parameters of ``cls``'s constructor, in order."""
    return [
        p.name
        for p in inspect.signature(cls.__init__).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    ]


@dataclass(frozen=True)
class Selection:
    """The outcome of one selection round.

    Attributes:
        indices: ``(m,)`` int64 **dataset indices** of the chosen samples, sorted, distinct.
        weights: ``(m,)`` float32 per-sample loss weights aligned with ``indices`` (finite,
            >= 0; GRAFT's have mean 1, InfoBatch's are 1 or ``1 / (1 - prune_ratio)``), or
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

    @classmethod
    def from_config(
        cls: type[_S], selection: SelectionConfig, train: TrainConfig, **extra: Any
    ) -> _S:
        """The selector that a pipeline's ``selection`` section describes.

        Every keyword-only constructor parameter named like a ``selection`` field takes that
        field's value (one vocabulary: ``fraction`` is ``selection.fraction``); ``extra`` gives
        the others, or overrides (a :class:`PrefixSelector`'s ``ranking``). A strategy whose
        knobs also depend on ``train`` adds them here.
        """
        fields = {f.name for f in dataclasses.fields(selection)}
        knobs = {k: getattr(selection, k) for k in keyword_parameters(cls) if k in fields}
        return cls(**{**knobs, **extra})

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

    def state_dict(self) -> dict[str, Any]:
        """What the selector has learnt during training, for a checkpoint (tensors on the host).

        Empty by default: most strategies choose from the model and the data alone. A strategy
        that remembers (InfoBatch's recorded losses) returns it, so that a resumed trial
        selects what the uninterrupted one would have.
        """
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Take back what :meth:`state_dict` returned. A no-op by default."""
        return None

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

    The one place that decides an epoch's phase: :class:`SubsetSampler` and, through it, the
    training loop ask :meth:`phase` rather than work it out again. Epochs
    ``0 .. warm_start_epochs - 1`` train on the full data; from then on every epoch
    trains on a subset, re-selected at the first subset epoch and every ``select_every`` epochs
    after it.
    """

    warm_start_epochs: int = 0
    select_every: int = 1

    def __post_init__(self) -> None:
        check_knobs(
            {
                "selection.warm_start_epochs": self.warm_start_epochs,
                "selection.select_every": self.select_every,
            }
        )

    def phase(self, epoch: int) -> Phase:
        """The phase of 0-based ``epoch``."""
        if epoch < self.warm_start_epochs:
            return Phase("full", resample=False)
        return Phase("subset", resample=(epoch - self.warm_start_epochs) % self.select_every == 0)
