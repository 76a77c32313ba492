"""Fast MaxVol against brute force, scipy's LU, DEIM and greedy references (float64)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.linalg
import torch

from graft_hpo.selection import fast_maxvol
from graft_hpo.selection import log_volume
from graft_hpo.selection._maxvol import _lu_coefficients


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _orthonormal(n: int, r: int, seed: int) -> torch.Tensor:
    return torch.linalg.qr(torch.randn(n, r, generator=_gen(seed), dtype=torch.float64)).Q


def _low_rank_plus_noise_basis(seed: int, *, n: int = 128, d: int = 768) -> torch.Tensor:
    """Left singular vectors (n, n) of a rank-20 signal plus noise: rows are samples."""
    g = _gen(seed)
    signal = torch.randn(n, 20, generator=g, dtype=torch.float64) @ torch.randn(
        20, d, generator=g, dtype=torch.float64
    )
    noisy = signal + 0.5 * signal.std() * torch.randn(n, d, generator=g, dtype=torch.float64)
    return torch.linalg.svd(noisy, full_matrices=False).U


def _assert_distinct_rows(idx: torch.Tensor, n: int, k: int) -> None:
    assert idx.dtype == torch.int64
    assert idx.shape[-1] == k
    for row in idx.reshape(-1, k):
        assert row.unique().numel() == k, row
        assert int(row.min()) >= 0 and int(row.max()) < n, row


def _deim(U: np.ndarray) -> list[int]:
    """Chaturantabut-Sorensen DEIM, written from the paper (GRAFT_NOTES §9.3)."""
    p = [int(np.argmax(np.abs(U[:, 0])))]
    for i in range(1, U.shape[1]):
        c = np.linalg.solve(U[p, :i], U[p, i])
        p.append(int(np.argmax(np.abs(U[:, i] - U[:, :i] @ c))))
    return p


def _scipy_lu_pivot_rows(A: np.ndarray) -> list[int]:
    """Rows of ``A`` moved to the top by partial-pivoting LU: ``A = P L U``, ``P^T A = L U``."""
    P, _, _ = scipy.linalg.lu(A)
    return [int(i) for i in np.argmax(P, axis=0)[: A.shape[1]]]


def _brute_force_greedy(V: torch.Tensor, start: list[int], k: int) -> list[int]:
    """Add the row maximising det(V_I^T V_I), recomputed from scratch in float64 every step."""
    rows = list(start)
    while len(rows) < k:
        scores = {
            i: float(torch.linalg.slogdet(V[[*rows, i]].mT @ V[[*rows, i]]).logabsdet)
            for i in range(V.shape[0])
            if i not in rows
        }
        rows.append(max(scores, key=scores.__getitem__))
    return rows


# --- shapes, dtypes and errors -------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    ("n", "r", "k", "expected"),
    [
        (40, 6, None, 6),  # k defaults to r
        (40, 6, 3, 3),  # k < r: square on the leading k columns
        (40, 6, 6, 6),
        (40, 6, 17, 17),  # k > r: rectangular growth
        (40, 6, 39, 39),
        (40, 6, 40, 40),  # k == n: every row
        (40, 6, 55, 40),  # k > n is capped at n
        (5, 9, None, 5),  # n < r
        (5, 9, 3, 3),
        (1, 1, None, 1),
    ],
)
def test_shapes_and_distinct_rows(
    n: int, r: int, k: int | None, expected: int, dtype: torch.dtype
) -> None:
    for seed in range(5):
        V = torch.randn(n, r, generator=_gen(seed), dtype=torch.float64).to(dtype)
        idx = fast_maxvol(V, k)
        assert idx.shape == (expected,)
        _assert_distinct_rows(idx, n, expected)
        batched = fast_maxvol(V.expand(3, n, r), k)
        assert batched.shape == (3, expected)
        _assert_distinct_rows(batched, n, expected)


def test_k_at_least_n_returns_every_row() -> None:
    V = torch.randn(7, 3, generator=_gen(0))
    assert fast_maxvol(V, 7).tolist() == list(range(7))
    assert fast_maxvol(V, 100).tolist() == list(range(7))
    assert fast_maxvol(V.expand(2, 7, 3), 9).tolist() == [list(range(7))] * 2


def test_many_random_cases_give_distinct_rows() -> None:
    g = _gen(123)
    for _ in range(60):
        b, n, r = (
            int(torch.randint(lo, hi, (1,), generator=g)) for lo, hi in [(1, 4), (2, 50), (1, 12)]
        )
        k = int(torch.randint(1, n + 3, (1,), generator=g))
        V = torch.randn(b, n, r, generator=g)
        idx = fast_maxvol(V, k)
        _assert_distinct_rows(idx, n, min(k, n))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"V": torch.randn(5)}, r"V must have shape \(n, r\) or \(b, n, r\); got shape \(5,\)"),
        ({"V": torch.randn(2, 2, 5, 3)}, r"got shape \(2, 2, 5, 3\)"),
        (
            {"V": torch.ones(5, 3, dtype=torch.int64)},
            r"V must be a floating-point tensor; got dtype torch.int64",
        ),
        ({"V": torch.randn(5, 3), "k": 0}, r"k must be an integer >= 1; got 0"),
        ({"V": torch.randn(5, 3), "k": -2}, r"k must be an integer >= 1; got -2"),
        ({"V": torch.randn(5, 3), "k": 2.7}, r"k must be an integer >= 1; got 2.7"),
        ({"V": torch.randn(5, 3), "k": "3"}, r"k must be an integer >= 1; got '3'"),
        ({"V": torch.randn(5, 3), "k": True}, r"k must be an integer >= 1; got True"),
        ({"V": torch.randn(5, 3), "tol": 0.99}, r"tol must be >= 1; got 0.99"),
        ({"V": torch.randn(5, 3), "tol": float("nan")}, r"tol must be >= 1; got nan"),
        ({"V": torch.tensor([[1.0, float("nan")], [0.0, 1.0]])}, r"V contains NaN or inf"),
        ({"V": torch.tensor([[1.0, float("inf")], [0.0, 1.0]])}, r"V contains NaN or inf"),
    ],
)
def test_invalid_input_raises_value_error(kwargs: dict, message: str) -> None:
    V = kwargs.pop("V")
    with pytest.raises(ValueError, match=message):
        fast_maxvol(V, **kwargs)


def test_a_tensor_that_requires_grad_is_read_without_its_graph() -> None:
    V = torch.linalg.qr(torch.randn(40, 4, generator=torch.Generator().manual_seed(0)))[0]
    assert fast_maxvol(V.requires_grad_(), 4).tolist() == fast_maxvol(V.detach(), 4).tolist()


@pytest.mark.parametrize("k", [None, 2])
def test_zero_columns_are_reported_as_such(k: int | None) -> None:
    # with k left at its default (r = 0) the message must still name the real problem
    with pytest.raises(ValueError, match=r"V must have at least one column; got shape \(5, 0\)"):
        fast_maxvol(torch.randn(5, 0), k)


# --- square maxvol quality -----------------------------------------------------------------


def test_square_volume_near_brute_force_optimum() -> None:
    """Every |C| <= tol implies |det V_max| / |det V[I]| <= (tol sqrt(r))^r (Hadamard)."""
    g = _gen(7)
    tol = 1.05
    optimal = cases = 0
    for _ in range(120):
        n = int(torch.randint(5, 13, (1,), generator=g))
        r = int(torch.randint(1, 5, (1,), generator=g))
        V = torch.randn(n, r, generator=g, dtype=torch.float64)
        got = float(log_volume(V, fast_maxvol(V, tol=tol)))
        best = max(
            float(log_volume(V, torch.tensor(rows)))
            for rows in itertools.combinations(range(n), r)
        )
        assert got <= best + 1e-9
        assert got >= best - r * math.log(tol * math.sqrt(r)) - 1e-9
        optimal += got >= best - 1e-9
        cases += 1
    assert optimal >= 0.8 * cases, f"optimal in only {optimal}/{cases} cases"


def test_single_column_picks_the_largest_entry() -> None:
    V = torch.randn(50, 1, generator=_gen(3), dtype=torch.float64)
    assert int(fast_maxvol(V)) == int(V.abs().argmax())


@pytest.mark.parametrize("tol", [1.0, 1.05, 1.5])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_refined_submatrix_is_dominant(tol: float, dtype: torch.dtype) -> None:
    for seed in range(5):
        V = torch.randn(60, 8, generator=_gen(seed), dtype=torch.float64)
        idx = fast_maxvol(V.to(dtype), tol=tol)
        C = V @ torch.linalg.inv(V[idx])
        assert float(C.abs().max()) <= tol * (1 + 1e-4 if dtype == torch.float32 else 1 + 1e-9)
        torch.testing.assert_close(C[idx], torch.eye(8, dtype=torch.float64))


def test_lu_stage_equals_scipy_lu_pivots_and_deim() -> None:
    for seed in range(20):
        V = torch.randn(30, 6, generator=_gen(seed), dtype=torch.float64)
        perm, Ct = _lu_coefficients(V.unsqueeze(0))
        piv = perm[:, :6]
        # in LU's row order, the coefficients interpolate V from its pivot rows
        C = V[perm[0]] @ torch.linalg.inv(V[piv[0]])
        torch.testing.assert_close(Ct[0].T, C)
        assert sorted(perm[0].tolist()) == list(range(30))
        assert piv[0].tolist() == _scipy_lu_pivot_rows(V.numpy())
        assert piv[0].tolist() == _deim(V.numpy())


def test_lu_stage_is_batched() -> None:
    V = torch.randn(5, 25, 4, generator=_gen(0), dtype=torch.float64)
    perm, _ = _lu_coefficients(V)
    piv = perm[:, : V.shape[-1]]
    assert [p.tolist() for p in piv] == [_scipy_lu_pivot_rows(v.numpy()) for v in V]


@pytest.mark.parametrize("r", [8, 13, 32, 64])
def test_low_rank_plus_noise_beats_lu_and_random(r: int) -> None:
    """GRAFT_NOTES §3.2 setting: B=128, rank-20 signal + noise, orthonormal basis."""
    V = _low_rank_plus_noise_basis(seed=r)[:, :r]
    got = float(log_volume(V, fast_maxvol(V)))
    lu = float(log_volume(V, torch.tensor(_scipy_lu_pivot_rows(V.numpy()))))
    assert got >= lu - 1e-9
    g = _gen(1000 + r)
    random = torch.stack([log_volume(V, torch.randperm(128, generator=g)[:r]) for _ in range(200)])
    assert got > float(random.max()) + 1.0
    assert got > float(random.mean()) + 5.0
    # float32 input selects rows of the same quality
    got32 = float(log_volume(V, fast_maxvol(V.float())))
    assert got32 >= lu - 1e-6


# --- rectangular maxvol --------------------------------------------------------------------


def test_rectangular_growth_is_nested_and_2_volume_strictly_increases() -> None:
    V = _low_rank_plus_noise_basis(seed=5)[:, :16]
    full = fast_maxvol(V, 64)
    assert torch.equal(full[:16], fast_maxvol(V))
    previous = -math.inf
    for k in range(16, 65):
        idx = fast_maxvol(V, k)
        assert torch.equal(idx, full[:k])
        volume = float(log_volume(V, idx))
        assert volume > previous
        previous = volume


@pytest.mark.parametrize("k", [20, 32, 48])
def test_rectangular_greedy_beats_random_subsets(k: int) -> None:
    V = _low_rank_plus_noise_basis(seed=k)[:, :16]
    got = float(log_volume(V, fast_maxvol(V, k)))
    g = _gen(k)
    random = [float(log_volume(V, torch.randperm(128, generator=g)[:k])) for _ in range(200)]
    assert got > max(random)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_rectangular_update_matches_brute_force_greedy(dtype: torch.dtype) -> None:
    for seed in range(4):
        V = _orthonormal(40, 5, seed)
        idx = fast_maxvol(V.to(dtype), 16)
        assert idx.tolist() == _brute_force_greedy(V, idx[:5].tolist(), 16)


def test_log_volume_matches_numpy() -> None:
    V = torch.randn(20, 4, generator=_gen(0), dtype=torch.float64)
    idx = torch.tensor([3, 7, 1, 12])
    square = np.log(abs(np.linalg.det(V.numpy()[idx])))
    assert float(log_volume(V, idx)) == pytest.approx(square, rel=1e-12)
    idx = torch.tensor([0, 5, 3])  # k < r: leading k columns
    sub = V.numpy()[idx, :3]
    assert float(log_volume(V, idx)) == pytest.approx(np.log(abs(np.linalg.det(sub))), rel=1e-12)
    idx = torch.tensor([0, 2, 4, 6, 8, 10])  # k > r: 2-volume
    sub = V.numpy()[idx]
    assert float(log_volume(V, idx)) == pytest.approx(
        0.5 * np.log(np.linalg.det(sub.T @ sub)), rel=1e-12
    )
    batched = log_volume(V.expand(2, 20, 4), idx.expand(2, 6))
    assert batched.shape == (2,)
    assert torch.equal(batched, torch.full((2,), float(log_volume(V, idx)), dtype=torch.float64))


# --- batching, degenerate input, determinism -----------------------------------------------


def _mixed_batch(dtype: torch.dtype) -> torch.Tensor:
    """Generic and rank-deficient (n=30, r=6) matrices stacked into one batch."""
    g = _gen(11)
    generic = [torch.randn(30, 6, generator=g, dtype=torch.float64) for _ in range(3)]
    duplicate = torch.randn(2, 6, generator=g, dtype=torch.float64).repeat(15, 1)
    zero_col = torch.randn(30, 6, generator=g, dtype=torch.float64)
    zero_col[:, 2] = 0.0
    rank1 = torch.randn(30, 1, generator=g, dtype=torch.float64) @ torch.randn(
        1, 6, generator=g, dtype=torch.float64
    )
    return torch.stack([*generic, duplicate, zero_col, rank1, torch.ones(30, 6)]).to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("k", [4, 6, 15])
def test_batched_equals_one_by_one(k: int, dtype: torch.dtype) -> None:
    V = _mixed_batch(dtype)
    batched = fast_maxvol(V, k)
    one_by_one = torch.stack([fast_maxvol(v, k) for v in V])
    assert torch.equal(batched, one_by_one)


def _degenerate_cases() -> dict[str, torch.Tensor]:
    g = _gen(5)
    zero_cols = torch.cat([torch.randn(20, 2, generator=g), torch.zeros(20, 2)], dim=1)
    return {
        "duplicate_rows": torch.randn(2, 4, generator=g).repeat(10, 1),
        "zero_columns": zero_cols,
        "all_rows_equal": torch.full((20, 4), 0.3),
        "rank_1": torch.randn(20, 1, generator=g) @ torch.randn(1, 4, generator=g),
        "all_zero": torch.zeros(20, 4),
    }


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("k", [1, 2, 4, 9, 19])
@pytest.mark.parametrize("case", sorted(_degenerate_cases()))
def test_rank_deficient_input_returns_k_distinct_rows(
    case: str, k: int, dtype: torch.dtype
) -> None:
    V = _degenerate_cases()[case].to(dtype)
    idx = fast_maxvol(V, k)
    _assert_distinct_rows(idx, 20, k)
    assert torch.equal(idx, fast_maxvol(V, k))
    volume = log_volume(V, idx)
    assert not torch.isnan(volume)
    # where a full-rank choice exists, it is found
    achievable = torch.linalg.matrix_rank(V[:, : min(k, 4)].double()) == min(k, 4)
    if case != "all_zero" and k <= 2 and bool(achievable):
        assert torch.isfinite(volume)


def test_duplicate_rows_are_never_chosen_twice_while_distinct_content_remains() -> None:
    base = torch.randn(3, 3, generator=_gen(2), dtype=torch.float64)
    V = base.repeat(5, 1)  # rows i and i+3 are equal
    idx = fast_maxvol(V)
    assert torch.isfinite(log_volume(V, idx))
    assert sorted(int(i) % 3 for i in idx) == [0, 1, 2]


@pytest.mark.parametrize("k", [4, 10, 25])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("exponent", [-60, -20, 20, 60])
def test_selection_is_invariant_to_scaling(exponent: int, dtype: torch.dtype, k: int) -> None:
    # volume ratios ignore a common factor; a power of two scales every float exactly
    V = torch.randn(40, 10, generator=_gen(exponent + 100)).to(dtype)
    assert torch.equal(fast_maxvol(V * 2.0**exponent, k), fast_maxvol(V, k))


@pytest.mark.parametrize("k", [2, 4, 9])
def test_subnormal_float32_input_still_gives_distinct_rows(k: int) -> None:
    # entries ~1e-40 are float32 subnormals: V[I]^-1 overflows unless the input is rescaled
    V = torch.randn(20, 4, generator=_gen(0)) * 1e-40
    idx = fast_maxvol(V, k)
    _assert_distinct_rows(idx, 20, k)


def test_deterministic() -> None:
    V = torch.randn(4, 64, 10, generator=_gen(9))
    for k in (5, 10, 30):
        first = fast_maxvol(V, k)
        for _ in range(3):
            assert torch.equal(fast_maxvol(V.clone(), k), first)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu() -> None:
    V = _low_rank_plus_noise_basis(seed=0)[:, :24].expand(3, 128, 24).contiguous()
    V[1] = _low_rank_plus_noise_basis(seed=1)[:, :24]
    V[2, :, 3] = 0.0  # rank deficient
    for dtype in (torch.float64, torch.float32):
        for k in (12, 24, 60):
            cpu = fast_maxvol(V.to(dtype), k)
            gpu = fast_maxvol(V.to(dtype).cuda(), k)
            assert gpu.device.type == "cuda"
            _assert_distinct_rows(gpu.cpu(), 128, k)
            vol_cpu = log_volume(V[:2], cpu[:2])
            vol_gpu = log_volume(V[:2], gpu[:2].cpu())
            torch.testing.assert_close(vol_gpu, vol_cpu, rtol=1e-3, atol=1e-3)
