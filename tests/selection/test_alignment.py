"""Closed-form last-layer gradients and alignment against torch.autograd and explicit cosines."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from graft_hpo.selection._alignment import alignment
from graft_hpo.selection._alignment import gradient_kernel
from graft_hpo.selection._alignment import last_layer_gradients
from graft_hpo.selection._alignment import logit_residuals

from ._data import make_mlp

N, D_IN, C = 12, 20, 5
EMB = 16  # width of make_mlp's penultimate layer


def _batch(seed: int = 0) -> tuple[torch.nn.Sequential, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    model = make_mlp(seed, in_dim=D_IN, classes=C, batchnorm=False, dtype=torch.float64)
    x = torch.randn(N, D_IN, generator=g, dtype=torch.float64)
    y = torch.randint(0, C, (N,), generator=g)
    return model, x, y


def _autograd_per_sample(
    model: torch.nn.Sequential, x: torch.Tensor, y: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, C, d) weight and (n, C) bias gradients of each sample's cross-entropy, by autograd."""
    head = model[-1]
    dW, db = [], []
    for i in range(len(x)):
        loss = F.cross_entropy(model(x[i : i + 1]), y[i : i + 1], reduction="sum")
        gW, gb = torch.autograd.grad(loss, [head.weight, head.bias])
        dW.append(gW)
        db.append(gb)
    return torch.stack(dW), torch.stack(db)


def _inputs(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    model, x, y = _batch(seed)
    with torch.no_grad():
        return model(x), y, model[:-1](x)


def test_logit_residuals_are_softmax_minus_onehot() -> None:
    logits, y, _ = _inputs()
    delta = logit_residuals(logits.float(), y)
    assert delta.dtype == torch.float64
    expected = torch.softmax(logits, -1) - F.one_hot(y, C).double()
    torch.testing.assert_close(delta, expected, rtol=0, atol=1e-7)  # float32 logits in
    torch.testing.assert_close(delta.sum(-1), torch.zeros(N, dtype=torch.float64))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_closed_form_gradients_equal_autograd(seed: int) -> None:
    model, x, y = _batch(seed)
    dW, db = _autograd_per_sample(model, x, y)
    with torch.no_grad():
        G = last_layer_gradients(model(x), y, model[:-1](x))
    assert G.shape == (N, C * EMB + C)
    assert G.dtype == torch.float64
    torch.testing.assert_close(G[:, : C * EMB].reshape(N, C, EMB), dW, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(G[:, C * EMB :], db, rtol=1e-12, atol=1e-14)


def test_projection_preserves_inner_products_approximately() -> None:
    logits, y, e = _inputs(3)
    G = last_layer_gradients(logits, y, e)
    P = last_layer_gradients(
        logits, y, e, proj_dim=4096, generator=torch.Generator().manual_seed(0)
    )
    assert P.shape == (N, 4096)
    norms = G.norm(dim=1)
    # JL: each normalised inner product is off by ~sqrt(2 / 4096) = 0.022
    error = (P @ P.T - G @ G.T) / (norms[:, None] * norms[None, :])
    assert float(error.abs().max()) < 0.15
    assert float(error.abs().mean()) < 0.04


def test_projection_is_seeded() -> None:
    logits, y, e = _inputs(4)

    def project(seed: int) -> torch.Tensor:
        gen = torch.Generator().manual_seed(seed)
        return last_layer_gradients(logits, y, e, proj_dim=64, generator=gen)

    assert torch.equal(project(7), project(7))
    assert not torch.allclose(project(7), project(8))


def test_gradient_kernel_is_the_gram_matrix_of_the_gradients() -> None:
    logits, y, e = _inputs(5)
    G = last_layer_gradients(logits, y, e)
    K = gradient_kernel(logits, y, e)
    assert K.shape == (N, N)
    assert K.dtype == torch.float64
    torch.testing.assert_close(K, G @ G.T, rtol=1e-12, atol=1e-14)


def test_gradient_kernel_is_batched() -> None:
    batches = [_inputs(s) for s in range(3)]
    K = gradient_kernel(*(torch.stack(t) for t in zip(*batches, strict=False)))
    assert K.shape == (3, N, N)
    for b, (logits, y, e) in enumerate(batches):
        torch.testing.assert_close(K[b], gradient_kernel(logits, y, e), rtol=1e-13, atol=0)


def _explicit_cosine(G: torch.Tensor, w: torch.Tensor) -> float:
    g_sub = (w[:, None] * G).sum(0)
    g_bar = G.mean(0)
    return float(g_sub @ g_bar / (g_sub.norm() * g_bar.norm()))


def test_full_subset_has_alignment_one() -> None:
    logits, y, e = _inputs(6)
    K = gradient_kernel(logits, y, e)
    ones = torch.ones(1, N, dtype=torch.float64)
    torch.testing.assert_close(alignment(K, ones), torch.ones(1, dtype=torch.float64))
    # any positive multiple of the all-ones weights is the same direction
    torch.testing.assert_close(alignment(K, 3.5 * ones), torch.ones(1, dtype=torch.float64))


def test_subset_alignment_equals_explicit_cosine() -> None:
    logits, y, e = _inputs(7)
    G = last_layer_gradients(logits, y, e)
    K = gradient_kernel(logits, y, e)
    g = torch.Generator().manual_seed(0)
    masks = (torch.rand(20, N, generator=g) < 0.4).double()
    masks[:, 0] = 1.0  # no empty subset
    weights = masks * torch.rand(20, N, generator=g, dtype=torch.float64) * 3
    for w in (masks, weights):
        got = alignment(K, w)
        assert got.shape == (20,)
        expected = torch.tensor([_explicit_cosine(G, row) for row in w], dtype=torch.float64)
        torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)
    assert float(alignment(K, masks).min()) < 0.99  # the subsets are not all trivially aligned


def test_alignment_is_batched_over_batches_and_candidates() -> None:
    batches = [_inputs(s) for s in range(3)]
    K = gradient_kernel(*(torch.stack(t) for t in zip(*batches, strict=False)))
    masks = (torch.rand(3, 4, N, generator=torch.Generator().manual_seed(1)) < 0.5).double()
    masks[..., 0] = 1.0
    got = alignment(K, masks)
    assert got.shape == (3, 4)
    for b in range(3):
        torch.testing.assert_close(got[b], alignment(K[b], masks[b]), rtol=1e-13, atol=0)


def test_zero_gradient_batch_conventions() -> None:
    g = torch.Generator().manual_seed(2)
    y = torch.randint(0, C, (N,), generator=g)
    e = torch.randn(N, EMB, generator=g, dtype=torch.float64)
    fitted = 1000.0 * F.one_hot(y, C).double()  # softmax is exactly one-hot in float64
    assert torch.equal(logit_residuals(fitted, y), torch.zeros(N, C, dtype=torch.float64))

    subsets = torch.tensor([[1.0] * N, [1.0] * 3 + [0.0] * (N - 3)], dtype=torch.float64)
    # every sample fitted: nothing to match, every subset is aligned
    K = gradient_kernel(fitted, y, e)
    assert torch.equal(alignment(K, subsets), torch.ones(2, dtype=torch.float64))

    # half fitted: a subset of fitted samples has no gradient while the batch does -> 0
    logits = fitted.clone()
    logits[N // 2 :] = torch.randn(N - N // 2, C, generator=g, dtype=torch.float64)
    K = gradient_kernel(logits, y, e)
    got = alignment(K, subsets)
    assert float(got[0]) == pytest.approx(1.0, abs=1e-12)
    assert float(got[1]) == 0.0
    assert not torch.isnan(got).any()


def test_alignment_is_a_cosine_in_range() -> None:
    logits, y, e = _inputs(8)
    K = gradient_kernel(logits, y, e)
    w = (torch.rand(200, N, generator=torch.Generator().manual_seed(3)) < 0.3).double()
    w[0] = 0.0
    a = alignment(K, w)
    assert bool(((a >= -1.0) & (a <= 1.0)).all())
    assert float(a[w.sum(1) == 0].max()) == 0.0  # an empty subset has no gradient
    # negated weights point exactly the other way
    opposite = alignment(K, -torch.ones(1, N, dtype=torch.float64))
    torch.testing.assert_close(opposite, -torch.ones(1, dtype=torch.float64))
