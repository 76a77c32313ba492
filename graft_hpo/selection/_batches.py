"""One selection round's batches, and how its budget is shared among them.

Pure index arithmetic: a seeded (optionally class-stratified) partition of the data set into
selection batches, and the growth rule that spends the budget on the least aligned batches.
"""

from __future__ import annotations

import math

import torch

__all__ = ["allocate_sizes", "partition"]


def partition(
    n: int,
    batch_size: int,
    *,
    labels: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> list[torch.Tensor]:
    """A seeded partition of ``range(n)`` into ``ceil(n / batch_size)`` selection batches.

    Batch sizes differ by at most one. With ``labels`` (``(n,)``), the random order is sorted
    by label (stably, so the order within a class stays random): consecutive batches walk
    through the classes, each batch holds one class or the boundary of two, and a class of
    ``n_c`` samples fills ``n_c / batch_size`` batches, so it receives its share of a budget
    spread evenly over batches.
    """
    perm = torch.randperm(n, generator=generator)
    if labels is not None:
        perm = perm[labels[perm].argsort(stable=True)]
    return list(torch.tensor_split(perm, math.ceil(n / batch_size)))


def allocate_sizes(
    align: torch.Tensor, sizes: list[int], budget: int, threshold: float
) -> torch.Tensor:
    """Choose each batch's candidate size: grow unaligned batches, least aligned first.

    Args:
        align: ``(n_b, L)`` alignment of each batch's candidate of size ``sizes[j]``.
        sizes: ascending candidate sizes.
        budget: total samples allowed over all batches.
        threshold: a batch stops growing once its alignment reaches this.

    Returns:
        ``(n_b,)`` int64 level per batch; -1 for a batch that gets no samples (only when the
        budget is below one candidate per batch).
    """
    n_b = align.shape[0]
    level = torch.zeros(n_b, dtype=torch.long)
    if n_b * sizes[0] > budget:  # less than the smallest subset per batch: least aligned first
        level.fill_(-1)
        level[align[:, 0].argsort(stable=True)[: budget // sizes[0]]] = 0
        return level
    spent = n_b * sizes[0]
    for j in range(len(sizes) - 1):
        want = ((level == j) & (align[:, j] < threshold)).nonzero().squeeze(1)
        step = sizes[j + 1] - sizes[j]
        afford = (budget - spent) // step
        if want.numel() == 0 or afford <= 0:
            break
        grow = want[align[want, j].argsort(stable=True)][:afford]
        level[grow] = j + 1
        spent += step * grow.numel()
    return level
