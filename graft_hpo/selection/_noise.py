"""Keep likely-mislabelled samples out of GRAFT's candidates (``selection.noise_filter``).

Why (measured, docs/noise.md): within a class, a sample with a wrong label is an outlier of the
class's gradient and feature space, exactly what Fast MaxVol picks first and what the
alignment criterion then has to match. At budget 0.2, GRAFT's first subsets held 24.4% wrong
labels on ``synthetic_hard`` (10% in the pool, random's 10.1%) and 54% / 70% on digits with 20% /
40% symmetric noise (random's 20% / 40%).

Before a round, one forward pass of the current model (or the sweep's proxy) over the
candidates, which the round's scoring then reuses, flags the samples whose label the model does
not believe: ``chance`` (the default), the label has less than chance probability ``1 / C``;
``misfit``, the predicted class is another. Per class, highest loss first, at most half of the
class. What is left out follows the data: ``chance`` 1.5% of clean digits, 18% / 30% with 20% /
40% noise; ``misfit`` 4.7%, 26%, 43%, but also 29% of clean MNIST-5k after one warm-up epoch
(a weak model's honest mistakes). Nothing is left out while the model fits no more than twice
chance of the labels. CRUST, RHO-LOSS and CCS likewise keep learnable samples and leave out
those a model cannot fit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from graft_hpo._torch import gather_batch

__all__ = ["MAX_CLASS_SHARE", "Forwarded", "misfits", "split_suspects"]

MAX_CLASS_SHARE = 0.5  # never leave out more than this share of a class's candidates


def misfits(
    logits: torch.Tensor,
    labels: torch.Tensor,
    *,
    rule: str = "chance",
    max_share: float = MAX_CLASS_SHARE,
) -> torch.Tensor:
    """The samples whose label the model does not believe: likely mislabelled.

    ``rule="chance"``: the model gives the label less than chance probability, ``1 / C``
    (it is confident the sample belongs elsewhere). ``rule="misfit"``: the model's arg-max
    class is not the label (also a weak model's honest mistakes: measured on MNIST-5k after one
    epoch, 32% of the clean samples). Per class, highest cross-entropy first, at most
    ``max_share`` of the class (rounded down). None at all when the model agrees with no more
    of the labels than twice chance, ``2 / C`` (for few classes, halfway from chance to all,
    ``(1 + 1 / C) / 2``): it then knows nothing of the labels yet.

    Args:
        logits: ``(m, C)`` float logits.
        labels: ``(m,)`` int64 labels.
        rule: ``"chance"`` or ``"misfit"``.
        max_share: the largest share of a class to flag, in [0, 1].

    Returns:
        ``(m,)`` bool, True for a sample to leave out.

    Example:
        >>> logits = torch.tensor([[3.0, 0.0], [2.0, 0.0], [0.0, 1.0], [0.0, 4.0], [1.0, 0.0]])
        >>> misfits(logits, torch.tensor([0, 0, 1, 1, 1]), rule="misfit").tolist()
        [False, False, False, False, True]
    """
    num_classes = logits.shape[1]
    log_p = logits.float().log_softmax(1).gather(1, labels[:, None]).squeeze(1)
    wrong = logits.argmax(1) != labels
    suspect = wrong if rule == "misfit" else log_p < -math.log(num_classes)
    flagged = torch.zeros_like(wrong)
    floor = min(2.0 / num_classes, (1.0 + 1.0 / num_classes) / 2)
    if labels.numel() == 0 or 1.0 - wrong.double().mean() <= floor:
        return flagged
    loss = F.cross_entropy(logits.float(), labels, reduction="none")
    for c in labels.unique():
        members = (labels == c).nonzero().squeeze(1)
        suspects = members[suspect[members]]
        cap = int(max_share * members.numel())
        flagged[suspects[loss[suspects].argsort(descending=True)[:cap]]] = True
    return flagged


def split_suspects(
    candidates: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor, rule: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(kept, left_out)``: ``candidates`` (``(m,)`` dataset indices, with their ``(m, C)``
    logits and ``(m,)`` labels) split by :func:`misfits` with ``rule``. ``kept`` keeps the
    candidates' order; ``left_out`` is ordered least suspect (lowest loss) first."""
    logits, labels = logits.float().cpu(), labels.cpu()
    flagged = misfits(logits, labels, rule=rule)
    out = flagged.nonzero().squeeze(1)
    loss = F.cross_entropy(logits[out], labels[out], reduction="none")
    return candidates[~flagged], candidates[out[loss.argsort()]]


@dataclass(frozen=True)
class Forwarded:
    """One forward pass over some samples, looked up by dataset index, so that the filter's
    pass serves the scoring too (the pass is most of a round's cost on the CPU).

    Attributes:
        position: ``(n,)`` int64, the row of each dataset index (-1: not forwarded).
        feats: ``(m, D)`` selection features, or None when they are the raw inputs (re-read
            from the data set rather than held twice).
        logits: ``(m, C)``; embeds: ``(m, E)``; targets: ``(m,)``, on the scoring device.
    """

    position: torch.Tensor
    feats: torch.Tensor | None
    logits: torch.Tensor
    embeds: torch.Tensor
    targets: torch.Tensor

    @classmethod
    def of(
        cls,
        n: int,
        index: torch.Tensor,
        feats: torch.Tensor | None,
        logits: torch.Tensor,
        embeds: torch.Tensor,
        targets: torch.Tensor,
    ) -> Forwarded:
        """The outputs of the samples ``index`` (``(m,)`` of ``range(n)``), in that order."""
        position = torch.full((n,), -1, dtype=torch.long)
        position[index] = torch.arange(len(index))
        return cls(position, feats, logits, embeds, targets)

    def take(
        self, dataset: Dataset[Any], chunk: list[torch.Tensor], device: torch.device | str
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(feats, logits, embeds, targets)`` of the samples of ``chunk``, in order."""
        index = torch.cat(chunk)
        rows = self.position[index].to(self.logits.device)
        if self.feats is not None:
            feats = self.feats[rows]
        else:
            x, _ = gather_batch(dataset, index)
            feats = x.to(device).flatten(1).float()
        return feats, self.logits[rows], self.embeds[rows], self.targets[rows]
