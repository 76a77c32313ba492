"""Keep likely-mislabelled samples out of GRAFT's candidates (``selection.noise_filter``).

Why (measured, docs/noise.md): within a class, a sample with a wrong label is an outlier of the
class's gradient and feature space, exactly what Fast MaxVol picks first and what the
alignment criterion then has to match. After GRAFT's 2 warm-up epochs on ``synthetic_hard``
(10% wrong labels) its subsets at budget 0.2 held 26.5% wrong labels against random's 10.1%;
on digits with 20% / 40% symmetric noise, 46% / 65% against 21% / 37%.

The filter, ``misfit``: before a round, one forward pass of the current model (or the sweep's
proxy) over the candidates; a sample whose predicted class is not its label is left out,
highest loss first, at most half of each class. The share left out adapts to the data: on
clean digits it was the model's 4.5% training errors, with 20% / 40% noise 26% / 44% (97-98%
of the wrong labels). Two guards keep an untrained model from filtering at random: nothing
is left out when the model fits no more than twice chance of the labels, and never more than half
of a class (CRUST, RHO-LOSS and CCS all keep learnable, not-yet-learnt samples the same way).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from graft_hpo._torch import gather_batch
from graft_hpo._torch import memory_format_for
from graft_hpo._torch import to_device

__all__ = ["MAX_CLASS_SHARE", "misfits", "predict", "split_suspects"]

MAX_CLASS_SHARE = 0.5  # never leave out more than this share of a class's candidates


@torch.inference_mode()
def predict(
    model: nn.Module,
    dataset: Dataset[Any],
    index: torch.Tensor,
    device: torch.device | str,
    *,
    slice_size: int = 512,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and labels of the samples ``index`` (``(m,)`` int64), in eval mode.

    Returns:
        ``logits`` ``(m, C)`` float32 and ``labels`` ``(m,)`` int64, both on the host.
    """
    was_training = model.training
    model.eval()
    on_cuda = torch.device(device).type == "cuda"
    layout = memory_format_for(device)
    logits, labels = [], []
    try:
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=on_cuda):
            for part in index.split(slice_size):
                x, y = gather_batch(dataset, part)
                logits.append(model(to_device(x, device, layout)).float().cpu())
                labels.append(y.cpu())
    finally:
        model.train(was_training)
    return torch.cat(logits), torch.cat(labels).long()


def misfits(
    logits: torch.Tensor, labels: torch.Tensor, *, max_share: float = MAX_CLASS_SHARE
) -> torch.Tensor:
    """The samples a model assigns to another class than their label: likely mislabelled.

    Per class, the samples whose arg-max prediction is not their label, highest cross-entropy
    first, at most ``max_share`` of the class (rounded down). None at all when the model
    agrees with no more of the labels than twice chance, ``2 / C`` (for few classes, halfway
    from chance to all, ``(1 + 1 / C) / 2``): its errors then say nothing about the labels.

    Args:
        logits: ``(m, C)`` float logits.
        labels: ``(m,)`` int64 labels.
        max_share: the largest share of a class to flag, in [0, 1].

    Returns:
        ``(m,)`` bool, True for a sample to leave out.

    Example:
        >>> logits = torch.tensor([[3.0, 0.0], [2.0, 0.0], [0.0, 1.0], [0.0, 4.0], [1.0, 0.0]])
        >>> misfits(logits, torch.tensor([0, 0, 1, 1, 1])).tolist()
        [False, False, False, False, True]
    """
    wrong = logits.argmax(1) != labels
    flagged = torch.zeros_like(wrong)
    num_classes = logits.shape[1]
    floor = min(2.0 / num_classes, (1.0 + 1.0 / num_classes) / 2)
    if labels.numel() == 0 or 1.0 - wrong.double().mean() <= floor:
        return flagged
    loss = F.cross_entropy(logits.float(), labels, reduction="none")
    for c in labels.unique():
        members = (labels == c).nonzero().squeeze(1)
        suspects = members[wrong[members]]
        cap = int(max_share * members.numel())
        flagged[suspects[loss[suspects].argsort(descending=True)[:cap]]] = True
    return flagged


def split_suspects(
    model: nn.Module,
    dataset: Dataset[Any],
    candidates: torch.Tensor,
    device: torch.device | str,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(kept, left_out)``: ``candidates`` (``(m,)`` dataset indices) split by :func:`misfits`
    of ``model``'s predictions. ``kept`` keeps the candidates' order; ``left_out`` is ordered
    least suspect (lowest loss) first."""
    logits, labels = predict(model, dataset, candidates, device)
    flagged = misfits(logits, labels)
    out = flagged.nonzero().squeeze(1)
    loss = F.cross_entropy(logits[out], labels[out], reduction="none")
    return candidates[~flagged], candidates[out[loss.argsort()]]
