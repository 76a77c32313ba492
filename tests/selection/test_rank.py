"""One selection for every budget: prefix alignment, greedy batch orders, the merge, Ranking."""

from __future__ import annotations

import math

import pytest
import torch

from graft_hpo.selection import GraftSelector
from graft_hpo.selection import PrefixSelector
from graft_hpo.selection import Ranking
from graft_hpo.selection import fast_maxvol
from graft_hpo.selection._alignment import alignment
from graft_hpo.selection._alignment import gradient_kernel
from graft_hpo.selection._alignment import prefix_alignment
from graft_hpo.selection._base import budget_of
from graft_hpo.selection._maxvol import greedy_order
from graft_hpo.selection._rank import merge_by_alignment

from ._data import InMemory
from ._data import make_mlp


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _kernel(b: int, n: int, seed: int) -> torch.Tensor:
    g = _gen(seed)
    logits = torch.randn(b, n, 5, generator=g)
    targets = torch.randint(0, 5, (b, n), generator=g)
    return gradient_kernel(logits, targets, torch.randn(b, n, 7, generator=g))


# --- prefix_alignment ------------------------------------------------------------------------


def test_prefix_alignment_equals_alignment_of_every_prefix_mask() -> None:
    K = _kernel(3, 20, seed=0)
    order = torch.stack([torch.randperm(20, generator=_gen(b)) for b in range(3)])
    masks = torch.zeros(3, 20, 20, dtype=torch.float64)
    for b in range(3):
        for k in range(20):
            masks[b, k, order[b, : k + 1]] = 1.0
    assert torch.allclose(prefix_alignment(K, order), alignment(K, masks), atol=1e-12)
    assert prefix_alignment(K, order)[:, -1].sub(1).abs().max() < 1e-12  # all rows: cosine 1


def test_prefix_alignment_of_a_partial_order_and_a_fitted_batch() -> None:
    K = _kernel(1, 10, seed=1)
    order = torch.tensor([[4, 2, 7]])
    masks = torch.zeros(1, 3, 10, dtype=torch.float64)
    for k in range(3):
        masks[0, k, order[0, : k + 1]] = 1.0
    assert torch.allclose(prefix_alignment(K, order), alignment(K, masks), atol=1e-12)
    # a batch whose gradients all vanish has nothing to match: every prefix aligns (as alignment)
    zero = torch.zeros(1, 10, 10, dtype=torch.float64)
    assert torch.equal(prefix_alignment(zero, order), torch.ones(1, 3, dtype=torch.float64))


# --- the greedy order within a batch ----------------------------------------------------------


def test_greedy_order_is_a_permutation_whose_prefixes_are_deim_choices() -> None:
    V = torch.linalg.qr(torch.randn(4, 30, 8, generator=_gen(2))).Q  # (4, 30, 8) orthonormal
    order = greedy_order(V, 30)
    assert torch.equal(order.sort(dim=1).values, torch.arange(30).expand(4, 30))
    for k in (1, 3, 8, 12, 20):
        # no swaps: the first k rows are Fast MaxVol's greedy choice for k (DEIM up to r, then
        # rectangular growth), so every budget's subset is a prefix of the larger ones
        expected = fast_maxvol(V[..., : min(k, 8)], k, max_iters=0)
        assert torch.equal(order[:, :k], expected)


# --- merging batches ----------------------------------------------------------------------------


def test_merge_hand_worked_least_aligned_first() -> None:
    batches = [torch.tensor([0, 1, 2]), torch.tensor([3, 4, 5])]
    local = [torch.tensor([2, 0, 1]), torch.tensor([0, 1, 2])]
    f64 = torch.float64
    align = [torch.tensor([0.9, 0.95, 1.0], dtype=f64), torch.tensor([0.3, 0.8, 1.0], dtype=f64)]
    # unbounded: each batch's first, then batch 1 (0.3 < 0.9), batch 1 again (0.8 < 0.9),
    # then batch 0 (0.9, 0.95)
    free = merge_by_alignment(batches, local, align, min_share=0.0, max_share=math.inf)
    assert free.order.tolist() == [2, 3, 4, 5, 0, 1]
    assert free.aligned_before.tolist() == [-math.inf, -math.inf, 0.3, 0.8, 0.9, 0.95]
    # proportional (the default): after 2k samples each batch holds k; within that, batch 1
    # goes first at prefixes 3 and 5 (0.3 < 0.9, then 0.8 < 0.95)
    fair = merge_by_alignment(batches, local, align)
    assert fair.order.tolist() == [2, 3, 4, 0, 5, 1]


def test_merge_keeps_every_batch_within_one_of_its_share_at_every_prefix() -> None:
    sizes = [7, 7, 6, 6, 6]
    batches = list(torch.arange(32).split(sizes))
    g = _gen(3)
    local = [torch.randperm(s, generator=g) for s in sizes]
    align = [torch.rand(s, generator=g, dtype=torch.float64) for s in sizes]
    ranking = merge_by_alignment(batches, local, align)
    owner = torch.cat([torch.full((s,), b) for b, s in enumerate(sizes)])
    for length in range(1, 33):
        counts = torch.bincount(owner[ranking.order[:length]], minlength=5).double()
        expected = length * torch.tensor(sizes, dtype=torch.float64) / 32
        assert bool(((counts - expected).abs() <= 1.0 + 1e-9).all()), length
    for b in range(len(sizes)):  # each batch's samples keep their local order
        mine = [int(i) for i in ranking.order if owner[int(i)] == b]
        assert mine == batches[b][local[b]].tolist()


@pytest.mark.parametrize("seed", range(20))
def test_merge_holds_its_documented_bounds_at_every_prefix(seed: int) -> None:
    g = _gen(seed)  # uneven batch sizes, as class-stratified batches are ([64, 44, 64, 46, ...])
    sizes = torch.randint(1, 64, (12,), generator=g).tolist()
    total = sum(sizes)
    batches = list(torch.arange(total).split(sizes))
    local = [torch.randperm(s, generator=g) for s in sizes]
    align = [torch.rand(s, generator=g, dtype=torch.float64).sort().values for s in sizes]
    order = merge_by_alignment(batches, local, align).order
    owner = torch.cat([torch.full((s,), b) for b, s in enumerate(sizes)])
    counts = [0] * len(sizes)
    for length in range(1, total + 1):
        counts[int(owner[order[length - 1]])] += 1
        for b, n_b in enumerate(sizes):  # floor and ceil of its share, give or take one
            low, high = math.floor(length * n_b / total), math.ceil(length * n_b / total)
            assert low - 1 <= counts[b] <= high + 1, (length, b, counts[b], low, high)


# --- Ranking ------------------------------------------------------------------------------------


def _ranking() -> Ranking:
    order = torch.tensor([5, 2, 8, 0, 9, 1, 7, 3, 6, 4])
    before = torch.tensor([-math.inf, -math.inf, 0.5, 0.95, 0.6, 0.97, 0.7, 0.99, 0.8, 0.85])
    return Ranking(order, before.double())


def test_subsets_are_prefixes_and_nest() -> None:
    ranking = _ranking()
    assert ranking.subset(0.3).tolist() == [2, 5, 8]
    previous: set[int] = set()
    for f in (0.1, 0.2, 0.5, 0.9, 1.0):
        chosen = ranking.subset(f)
        assert len(chosen) == budget_of(f, 10) and torch.equal(chosen, chosen.sort().values)
        assert previous <= set(chosen.tolist())
        previous = set(chosen.tolist())


def test_a_threshold_skips_samples_of_already_aligned_batches() -> None:
    ranking = _ranking()
    # aligned_before >= 0.9 is skipped: 0, 1 and 3 never come in
    assert ranking.subset(1.0, threshold=0.9).tolist() == [2, 4, 5, 6, 7, 8, 9]
    assert ranking.subset(0.3, threshold=0.9).tolist() == [2, 5, 8]


def test_ranking_round_trips_and_refuses_a_non_permutation(tmp_path) -> None:
    ranking = _ranking()
    ranking.stats["selection_s"] = 0.25
    ranking.save(tmp_path / "r.pt")
    back = Ranking.load(tmp_path / "r.pt")
    assert torch.equal(back.order, ranking.order)
    assert torch.equal(back.aligned_before, ranking.aligned_before)
    assert back.stats == {"selection_s": 0.25}
    with pytest.raises(ValueError, match="permutation"):
        Ranking(torch.tensor([0, 0, 2]), torch.zeros(3, dtype=torch.float64))


def test_prefix_selector_takes_the_budget_and_checks_the_data_set(digits: InMemory) -> None:
    n = len(digits)
    order = torch.randperm(n, generator=_gen(4))
    ranking = Ranking(order, torch.full((n,), -math.inf, dtype=torch.float64))
    selector = PrefixSelector(ranking=ranking, fraction=0.2)
    sel = selector.select(make_mlp(), digits)
    assert torch.equal(sel.indices, order[: budget_of(0.2, n)].sort().values)
    assert sel.fraction == budget_of(0.2, n) / n
    with pytest.raises(ValueError, match="ranking covers"):
        selector.select(make_mlp(), InMemory(*(t[:100] for t in digits.tensors)))
    with pytest.raises(ValueError, match="fraction"):
        PrefixSelector(ranking=ranking, fraction=0.0)


# --- GraftSelector.rank_dataset on real digits -------------------------------------------------


def test_rank_dataset_orders_every_sample_and_gives_every_class_its_share(
    digits: InMemory,
) -> None:
    selector = GraftSelector(batch_size=64)
    ranking = selector.rank_dataset(make_mlp(), digits, generator=_gen(0))
    n = len(digits)
    assert torch.equal(ranking.order.sort().values, torch.arange(n))
    labels = digits.tensors[1]
    share = torch.bincount(labels).double() / n
    for f in (0.05, 0.2, 0.5):
        chosen = ranking.subset(f)
        counts = torch.bincount(labels[chosen], minlength=10).double()
        # every batch holds its share within one sample; a batch at a class boundary may
        # give one class more than its part of that share
        assert bool(((counts - share * len(chosen)).abs() <= 16).all()), f  # a quarter batch
    again = selector.rank_dataset(make_mlp(), digits, generator=_gen(0))
    assert torch.equal(again.order, ranking.order)  # seeded: the same data, the same ranking


def test_rank_dataset_prefix_matches_a_fixed_size_selection_of_each_batch(
    digits: InMemory,
) -> None:
    # Ranking and selecting share the partition and the scoring pass: per batch, the ranking's
    # first k rows are the greedy (swap-free) Fast MaxVol choice on the same basis.
    model = make_mlp()
    selector = GraftSelector(batch_size=64, stratify=False, maxvol_tol=1e9)
    ranking = selector.rank_dataset(model, digits, generator=_gen(1))
    fixed = GraftSelector(batch_size=64, stratify=False, levels=1, maxvol_tol=1e9, fraction=0.1)
    selected = fixed.select(model, digits, generator=_gen(1))
    ranked = ranking.subset(0.1)
    # each batch holds at least floor(its share) = 6 of the prefix: the 6 select() chose
    assert set(selected.indices.tolist()) <= set(ranked.tolist())
    assert len(ranked) - len(selected.indices) < 29  # fewer extra samples than batches
