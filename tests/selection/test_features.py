"""Low-rank per-batch bases against a float64 SVD, and the embedding hook."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from graft_hpo.selection._features import capture_embeddings
from graft_hpo.selection._features import low_rank_basis

from ._data import make_mlp


def _features(n: int, d: int, seed: int, *, batch: tuple[int, ...] = ()) -> torch.Tensor:
    """Rows = samples, singular values 0.8^i: a clear gap after every direction."""
    g = torch.Generator().manual_seed(seed)
    m = min(n, d)
    U = torch.linalg.qr(torch.randn(*batch, n, m, generator=g, dtype=torch.float64)).Q
    W = torch.linalg.qr(torch.randn(*batch, d, m, generator=g, dtype=torch.float64)).Q
    s = 0.8 ** torch.arange(m, dtype=torch.float64)
    return (U * s) @ W.mT


def _reference_projector(F: torch.Tensor, r: int) -> torch.Tensor:
    U = torch.linalg.svd(F.double(), full_matrices=False).U[..., :r]
    return U @ U.mT


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    ("n", "d", "rank", "expected_cols"),
    [
        (32, 200, 6, 6),  # Gram path: d > n
        (32, 200, 50, 32),  # rank capped at n
        (64, 16, 6, 6),  # SVD path: d <= n
        (64, 16, 40, 16),  # rank capped at d
        (20, 20, 5, 5),  # d == n: SVD path
    ],
)
def test_orthonormal_basis_of_the_top_subspace(
    n: int, d: int, rank: int, expected_cols: int, dtype: torch.dtype
) -> None:
    F = _features(n, d, seed=n + d).to(dtype)
    U = low_rank_basis(F, rank)
    assert U.shape == (n, expected_cols)
    assert U.dtype == dtype
    tol = 1e-10 if dtype == torch.float64 else 1e-4
    eye = torch.eye(expected_cols, dtype=torch.float64)
    torch.testing.assert_close(U.double().mT @ U.double(), eye, atol=tol, rtol=0)
    torch.testing.assert_close(
        U.double() @ U.double().mT, _reference_projector(F, expected_cols), atol=tol, rtol=0
    )


@pytest.mark.parametrize(("n", "d"), [(24, 300), (48, 12)])  # Gram path, SVD path
def test_batched_basis_matches_per_batch(n: int, d: int) -> None:
    F = _features(n, d, seed=3, batch=(4,))
    U = low_rank_basis(F, 5)
    assert U.shape == (4, n, 5)
    for b in range(4):
        torch.testing.assert_close(
            U[b] @ U[b].mT, _reference_projector(F[b], 5), atol=1e-10, rtol=0
        )


def test_columns_ordered_by_decreasing_singular_value() -> None:
    F = _features(30, 100, seed=1)
    U = low_rank_basis(F, 4)
    ref = torch.linalg.svd(F, full_matrices=False).U[:, :4]
    # each column matches the reference's, up to sign
    torch.testing.assert_close((U * ref).sum(0).abs(), torch.ones(4, dtype=torch.float64))


@pytest.mark.parametrize(("n", "d"), [(40, 500), (60, 10)])  # Gram path, SVD path
def test_permuting_samples_permutes_basis_rows(n: int, d: int) -> None:
    F = _features(n, d, seed=8)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(2))
    U = low_rank_basis(F, 6)
    U_perm = low_rank_basis(F[perm], 6)
    P = U @ U.mT
    torch.testing.assert_close(U_perm @ U_perm.mT, P[perm][:, perm], atol=1e-10, rtol=0)


def test_integer_features_are_promoted() -> None:
    F = torch.randint(0, 255, (10, 30), generator=torch.Generator().manual_seed(0))
    U = low_rank_basis(F, 3)
    assert U.dtype == torch.float32
    torch.testing.assert_close(
        (U @ U.mT).double(), _reference_projector(F.double(), 3), atol=1e-4, rtol=0
    )


def test_capture_embeddings_records_the_input_of_the_last_linear() -> None:
    model = make_mlp(seed=1, dtype=torch.float64).eval()
    x = torch.randn(12, 64, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    expected = model[:-1](x)  # everything before the classifier, computed manually
    with capture_embeddings(model) as captured:
        logits = model(x)
        model(x[:5])
    assert len(captured) == 2
    torch.testing.assert_close(captured[0], expected, rtol=0, atol=0)
    torch.testing.assert_close(captured[1], model[:-1](x[:5]), rtol=0, atol=0)
    torch.testing.assert_close(model[-1](captured[0]), logits, rtol=0, atol=0)
    assert not captured[0].requires_grad


def test_capture_embeddings_flattens_and_finds_a_nested_classifier() -> None:
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.trunk = nn.Conv2d(1, 2, 3, padding=1)
            self.head = nn.Sequential(nn.Flatten(), nn.Linear(2 * 4 * 4, 8), nn.Linear(8, 3))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.trunk(x))

    net = Net()
    x = torch.randn(5, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    with torch.no_grad(), capture_embeddings(net) as captured:
        net(x)
    expected = net.head[1](net.head[0](net.trunk(x)))
    torch.testing.assert_close(captured[0], expected, rtol=0, atol=0)


def test_capture_embeddings_removes_its_hook() -> None:
    model = make_mlp(seed=0)
    classifier = model[-1]
    assert len(classifier._forward_pre_hooks) == 0
    with capture_embeddings(model) as captured:
        assert len(classifier._forward_pre_hooks) == 1
    model(torch.randn(4, 64))
    assert captured == []
    assert len(classifier._forward_pre_hooks) == 0


def test_capture_embeddings_removes_its_hook_on_error() -> None:
    model = make_mlp(seed=0)
    with pytest.raises(RuntimeError, match="boom"), capture_embeddings(model):
        raise RuntimeError("boom")
    assert len(model[-1]._forward_pre_hooks) == 0


def test_capture_embeddings_needs_a_linear_layer() -> None:
    with (
        pytest.raises(ValueError, match=r"Sequential has no nn\.Linear"),
        capture_embeddings(nn.Sequential(nn.ReLU())),
    ):
        pass


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize(("n", "d"), [(64, 512), (128, 32), (256, 256)])  # wide, tall, square
def test_cuda_basis_spans_the_float64_top_subspace(n: int, d: int) -> None:
    F = _features(n, d, seed=n, batch=(5,))
    # singular values 0.8^i: the gap after 16 directions (~7e-3) is well above float32 noise
    r = 16
    U = low_rank_basis(F.float().cuda(), r).double().cpu()
    assert U.shape == (5, n, r)
    torch.testing.assert_close(
        U.mT @ U, torch.eye(r, dtype=torch.float64).expand(5, r, r), atol=1e-4, rtol=0
    )
    torch.testing.assert_close(U @ U.mT, _reference_projector(F, r), atol=1e-3, rtol=0)
    ref = torch.linalg.svd(F, full_matrices=False).U[..., :r]
    # the leading columns come first, as maxvol on the leading k columns needs
    torch.testing.assert_close(
        (U[..., :3] * ref[..., :3]).sum(-2).abs(),
        torch.ones(5, 3, dtype=torch.float64),
        atol=1e-3,
        rtol=0,
    )
