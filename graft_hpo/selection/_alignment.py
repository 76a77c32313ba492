"""Gradient alignment between a subset and its full batch (GRAFT step 3).

For cross-entropy on logits ``z_i = W e_i + b`` the per-sample gradient of the final linear layer
has a closed form (no autograd):

    delta_i = softmax(z_i) - onehot(y_i)                  (C,)
    g_i     = [ delta_i (x) e_i ,  delta_i ]              (C*d + C,)   dL_i/dW and dL_i/db

The full batch's mean gradient is ``g_bar = mean_j g_j``. A subset ``S`` with weights ``w`` has
gradient ``g_S = sum_{i in S} w_i g_i``, and its **alignment** is the cosine

    align(S) = <g_S, g_bar> / (||g_S|| ||g_bar||)          in [-1, 1]; 1 for S = the batch.

We never build the ``C*(d+1)``-dimensional vectors: since
``<g_i, g_j> = (delta_i . delta_j) (e_i . e_j + 1)``, every inner product above comes from the
batch's ``B x B`` gradient kernel ``K``, exactly, in float64, for any number of candidate subsets
at once (``w^T K 1``, ``w^T K w``, ``1^T K 1``). This is cheaper than a random projection and has
no projection error; :func:`last_layer_gradients` still offers explicit (optionally projected)
vectors for users who want them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "alignment",
    "gradient_kernel",
    "last_layer_gradients",
    "logit_residuals",
    "matching_weights",
    "prefix_alignment",
]


def logit_residuals(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``softmax(z) - onehot(y)``: per-sample gradient of summed cross-entropy w.r.t. the logits.

    Args:
        logits: ``(..., n, C)``.
        targets: ``(..., n)`` int64 class indices.

    Returns:
        ``(..., n, C)`` in float64.
    """
    p = torch.softmax(logits.double(), dim=-1)
    return p - F.one_hot(targets.long(), p.shape[-1]).to(p.dtype)


def last_layer_gradients(
    logits: torch.Tensor,
    targets: torch.Tensor,
    embeddings: torch.Tensor,
    *,
    proj_dim: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Per-sample gradients of cross-entropy w.r.t. the final linear layer's weight and bias.

    Args:
        logits: ``(n, C)`` outputs of the final linear layer.
        targets: ``(n,)`` class indices.
        embeddings: ``(n, d)`` inputs of the final linear layer.
        proj_dim: if given, project the ``C*(d+1)`` gradients to this many dimensions with a
            seeded Gaussian Johnson-Lindenstrauss matrix (scaled so inner products are
            preserved in expectation).
        generator: seeds the projection.

    Returns:
        ``(n, C*d + C)`` float64 gradients ``[vec(delta_i e_i^T), delta_i]`` (the weight part
        in ``W``'s row-major layout), or ``(n, proj_dim)``.
    """
    delta = logit_residuals(logits, targets)
    e = embeddings.double()
    grads = torch.cat([(delta[:, :, None] * e[:, None, :]).flatten(1), delta], dim=1)
    if proj_dim is None:
        return grads
    proj = torch.randn(grads.shape[1], proj_dim, generator=generator, dtype=torch.float64)
    return grads @ proj.to(grads.device) / proj_dim**0.5


def gradient_kernel(
    logits: torch.Tensor, targets: torch.Tensor, embeddings: torch.Tensor
) -> torch.Tensor:
    """Inner products of the per-sample last-layer gradients, ``K_ij = <g_i, g_j>``.

    Args:
        logits: ``(..., n, C)``.
        targets: ``(..., n)``.
        embeddings: ``(..., n, d)``.

    Returns:
        ``(..., n, n)`` float64, ``K = (D D^T) * (E E^T + 1)`` elementwise.
    """
    delta = logit_residuals(logits, targets)
    e = embeddings.double()
    return (delta @ delta.mT) * (e @ e.mT + 1.0)


def alignment(kernel: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Cosine between each weighted subset's gradient and the full batch's mean gradient.

    Args:
        kernel: ``(..., n, n)`` gradient kernel of the batch (:func:`gradient_kernel`).
        weights: ``(..., m, n)`` one row per candidate subset: the sample weights, zero outside
            the subset (a 0/1 mask for an unweighted subset).

    Returns:
        ``(..., m)`` float64 cosines. A batch whose mean gradient vanishes (every sample fitted)
        has nothing to match: every subset gets alignment 1 there; a subset whose own gradient
        vanishes while the batch's does not gets 0.
    """
    K = kernel.double()
    w = weights.to(K.dtype)
    Kw = w @ K  # (..., m, n)
    dot = Kw.sum(-1)  # w^T K 1
    sub_sq = (Kw * w).sum(-1).clamp_min(0.0)  # ||g_S||^2
    full_sq = K.sum((-2, -1)).clamp_min(0.0)[..., None]  # ||sum_j g_j||^2
    return _cosine(K, dot, sub_sq, full_sq)


def prefix_alignment(kernel: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """Alignment of every prefix of an ordering: ``out[..., k-1] = align(order[..., :k])``.

    The same cosine as :func:`alignment` with 0/1 masks, for all ``n`` nested subsets at once
    in O(n^2) per batch (cumulative sums of the reordered kernel) instead of O(n^3).

    Args:
        kernel: ``(..., n, n)`` gradient kernel of the batch.
        order: ``(..., m)`` distinct batch-local rows, ``m <= n``.

    Returns:
        ``(..., m)`` float64 cosines of the prefixes of sizes ``1 .. m``.
    """
    K = kernel.double()
    rows = K.sum(-1).gather(-1, order)  # (..., m): (K 1)_i in order
    K_o = K.gather(-2, order[..., :, None].expand(*order.shape, K.shape[-1]))
    K_o = K_o.gather(-1, order[..., None, :].expand(*order.shape, order.shape[-1]))
    dot = rows.cumsum(-1)  # 1_S^T K 1
    # 1_S^T K 1_S for S = the first k rows: the diagonal of the 2-D cumulative sum
    sub_sq = K_o.cumsum(-1).cumsum(-2).diagonal(dim1=-2, dim2=-1).clamp_min(0.0)
    full_sq = K.sum((-2, -1)).clamp_min(0.0)[..., None]
    return _cosine(K, dot, sub_sq, full_sq)


def _cosine(
    K: torch.Tensor, dot: torch.Tensor, sub_sq: torch.Tensor, full_sq: torch.Tensor
) -> torch.Tensor:
    """``dot / sqrt(sub_sq full_sq)`` with :func:`alignment`'s conventions for vanishing
    gradients (relative to the kernel's trace)."""
    scale = torch.finfo(K.dtype).eps * K.diagonal(dim1=-2, dim2=-1).sum(-1)[..., None] + 1e-300
    cos = dot / (sub_sq * full_sq).sqrt().clamp_min(1e-300)
    cos = torch.where(sub_sq <= scale, torch.zeros_like(cos), cos)
    return torch.where(full_sq <= scale, torch.ones_like(cos), cos).clamp(-1.0, 1.0)


def matching_weights(kernel: torch.Tensor, local: torch.Tensor) -> torch.Tensor:
    """Least-squares weights ``w >= 0`` (mean 1) with ``sum_S w_i g_i ~ |S|/B sum_j g_j``.

    Solves the ridge-regularised normal equations ``(K_SS + lam I) w = |S|/B K_S 1`` in float64.
    """
    K = kernel.double()
    B, m = K.shape[0], local.numel()
    K_ss = K[local][:, local]
    rhs = K[local].sum(1) * (m / B)
    lam = 1e-8 * K_ss.diagonal().mean().clamp_min(1e-300)
    w = torch.linalg.solve(K_ss + lam * torch.eye(m, dtype=K.dtype), rhs).clamp_min(0.0)
    total = w.sum()
    return w * (m / total) if total > 0 else torch.ones(m, dtype=K.dtype)
