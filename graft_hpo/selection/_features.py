"""Per-batch low-rank features: one row per sample, the batch's dominant subspace.

GRAFT step 1 (GRAFT_NOTES §3.1, §5.1). A batch of ``B`` samples gives a feature matrix ``F``
(B, d) with **one row per sample**: flattened inputs (``raw``) or the input of the model's final
linear layer (``embedding``). Its top-``r`` left singular vectors ``U_r`` (B, r) are the samples'
coordinates in the batch's dominant r-dimensional subspace; Fast MaxVol picks rows of ``U_r``.
(The reference code reshapes ``(B, C, H, W)`` to ``(-1, B)``, which mixes samples; we do not.)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from graft_hpo._torch import classifier_layer

__all__ = ["capture_embeddings", "low_rank_basis"]


def low_rank_basis(features: torch.Tensor, rank: int) -> torch.Tensor:
    """Top-``rank`` left singular vectors of each batch's feature matrix.

    Args:
        features: ``(n, d)`` or batched ``(b, n, d)``, one row per sample.
        rank: number of leading directions to keep; capped at ``min(n, d)``.

    Returns:
        ``(..., n, min(rank, n, d))`` with orthonormal columns, ordered by decreasing singular
        value. Computed in float32 at least; from the ``n x n`` Gram matrix in float64 when
        ``d > n`` (cheaper: O(n^2 d + n^3) instead of an SVD of the wide matrix), and always on
        CUDA, where batched eigh beats batched SVD.
    """
    F = features
    if F.dtype not in (torch.float32, torch.float64):
        F = F.float()
    n, d = F.shape[-2:]
    r = max(1, min(rank, n, d))
    if d > n or F.device.type == "cuda":
        # eigh returns ascending eigenvalues: the last r columns, reversed, are the top r.
        # Float64 everywhere: on an H200 a batched float64 eigh is 3x faster than float32 (and
        # exact); cuSOLVER's gesvda is faster still but loses the subspace on ill-conditioned
        # batches (benchmarks/basis_bench.py).
        _, vecs = torch.linalg.eigh((F @ F.mT).double())
        return vecs[..., -r:].flip(-1).to(F.dtype)
    U, _, _ = torch.linalg.svd(F, full_matrices=False)
    return U[..., :r]


@contextmanager
def capture_embeddings(model: nn.Module) -> Iterator[list[torch.Tensor]]:
    """Record the input of the model's final ``nn.Linear`` during forward passes.

    Works with any classifier whose last ``nn.Linear`` produces the logits (see
    :func:`graft_hpo._torch.classifier_layer`): no special ``forward(last=True)`` contract.

    Yields:
        A list that receives one ``(batch, d)`` detached tensor per forward pass.
    """
    captured: list[torch.Tensor] = []

    def hook(_module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        captured.append(inputs[0].detach().flatten(start_dim=1))

    handle = classifier_layer(model).register_forward_pre_hook(hook)
    try:
        yield captured
    finally:
        handle.remove()
