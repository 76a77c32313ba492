"""The GRAFT selector on real digits: budget, dataset indices, weights, side effects."""

from __future__ import annotations

import itertools
import math
from typing import Any

import pytest
import torch
from torch import nn

import graft_hpo.selection._graft as graft_module
from graft_hpo._torch import labels_of
from graft_hpo.selection import GraftSelector
from graft_hpo.selection import Selection
from graft_hpo.selection._alignment import last_layer_gradients
from graft_hpo.selection._base import budget_of
from graft_hpo.selection._batches import allocate_sizes
from graft_hpo.selection._batches import partition

from ._data import InMemory
from ._data import ItemByItem
from ._data import make_mlp

Tensors = tuple[torch.Tensor, torch.Tensor]


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _select(
    selector: GraftSelector, model: nn.Module, dataset: object, seed: int = 0
) -> Selection:
    return selector.select(model, dataset, generator=_gen(seed))  # type: ignore[arg-type]


def _assert_valid(sel: Selection, n: int, budget: int) -> None:
    idx = sel.indices
    assert idx.dtype == torch.int64
    assert 0 < len(idx) <= budget
    assert torch.equal(idx, idx.unique())  # sorted and distinct
    assert int(idx.min()) >= 0 and int(idx.max()) < n
    assert sel.fraction == len(idx) / n


# --- budget_of / allocate_sizes ------------------------------------------------------------


@pytest.mark.parametrize(
    ("fraction", "n", "expected"),
    [(0.1, 1797, 179), (0.5, 1797, 898), (0.3, 10, 3), (1.0, 7, 7), (0.01, 50, 1), (0.999, 3, 2)],
)
def test_budget_is_floor_of_fraction_times_n_at_least_one(
    fraction: float, n: int, expected: int
) -> None:
    assert budget_of(fraction, n) == expected


def test_allocate_sizes_hand_worked_example() -> None:
    sizes = [2, 4, 8]
    align = torch.tensor(
        [
            [0.95, 0.97, 0.99],  # aligned at the smallest size: stays there
            [0.10, 0.50, 0.95],  # least aligned: grows first
            [0.30, 0.92, 0.99],  # aligned once at size 4
        ],
        dtype=torch.float64,
    )
    assert allocate_sizes(align, sizes, 20, 0.9).tolist() == [0, 2, 1]
    assert allocate_sizes(align, sizes, 12, 0.9).tolist() == [0, 1, 1]
    assert allocate_sizes(align, sizes, 9, 0.9).tolist() == [0, 1, 0]
    assert allocate_sizes(align, sizes, 6, 0.9).tolist() == [0, 0, 0]
    # below one smallest subset per batch: the least aligned batches get one
    assert allocate_sizes(align, sizes, 5, 0.9).tolist() == [-1, 0, 0]
    assert allocate_sizes(align, sizes, 3, 0.9).tolist() == [-1, 0, -1]
    assert allocate_sizes(align, sizes, 1, 0.9).tolist() == [-1, -1, -1]
    # an easy threshold: nobody grows, whatever the budget
    assert allocate_sizes(align, sizes, 100, 0.05).tolist() == [0, 0, 0]


def test_allocate_sizes_invariants_on_random_input() -> None:
    g = _gen(0)
    for _ in range(400):
        n_b = int(torch.randint(1, 30, (1,), generator=g))
        n_levels = int(torch.randint(1, 7, (1,), generator=g))
        sizes = sorted(set((torch.randint(1, 60, (n_levels,), generator=g)).tolist()))
        budget = int(torch.randint(0, n_b * sizes[-1] + 20, (1,), generator=g))
        threshold = float(torch.rand(1, generator=g)) * 1.2 - 0.1
        align = torch.rand(n_b, len(sizes), generator=g, dtype=torch.float64) * 2 - 1
        if torch.rand(1, generator=g) < 0.5:  # alignment usually rises with size
            align = align.sort(dim=1).values
        level = allocate_sizes(align, sizes, budget, threshold)

        assert level.shape == (n_b,)
        assert int(level.min()) >= -1 and int(level.max()) < len(sizes)
        got = level >= 0
        spent = sum(sizes[j] for j in level[got].tolist())
        assert spent <= budget
        if budget >= n_b * sizes[0]:
            assert bool(got.all()), "no batch loses its samples while the budget allows"
        else:
            assert bool((level <= 0).all())
            assert int(got.sum()) == budget // sizes[0]
            if got.any() and (~got).any():  # the least aligned batches get the samples
                assert float(align[got, 0].max()) <= float(align[~got, 0].min())
            continue
        for b, lvl in enumerate(level.tolist()):
            # aligned batches never grow: every smaller size was below the threshold
            assert all(float(align[b, j]) < threshold for j in range(lvl))
            # greedy to the end: a batch that wants to grow could not afford it
            if lvl < len(sizes) - 1 and float(align[b, lvl]) < threshold:
                assert budget - spent < sizes[lvl + 1] - sizes[lvl]
        for j in range(len(sizes) - 1):
            # least aligned grow first among the batches that wanted to leave size j
            wanted = (level >= j) & (align[:, j] < threshold)
            grew, stayed = wanted & (level > j), wanted & (level == j)
            if grew.any() and stayed.any():
                assert float(align[grew, j].max()) <= float(align[stayed, j].min())


# --- candidate sizes and arguments ---------------------------------------------------------


@pytest.mark.parametrize("levels", [1, 2, 6, 10])
@pytest.mark.parametrize(("batch", "per_batch"), [(128, 38.4), (32, 1.6), (100, 50.0), (7, 6.9)])
def test_candidate_sizes_ascending_within_the_batch(
    levels: int, batch: int, per_batch: float
) -> None:
    sizes = GraftSelector(levels=levels).candidate_sizes(batch, per_batch)
    assert sizes == sorted(set(sizes))
    assert sizes[0] >= 1 and sizes[-1] <= batch
    assert len(sizes) <= levels
    if levels > 1:  # geometric from a quarter of the per-batch budget to twice it
        assert sizes[0] == max(1, math.floor(per_batch / 4))
        assert sizes[-1] == min(batch, max(sizes[0], math.ceil(2 * per_batch)))
        if len(sizes) > 2:
            ratios = [b / a for a, b in itertools.pairwise(sizes)]
            assert max(ratios) / min(ratios) < 3  # roughly geometric after rounding


def test_single_level_gives_every_batch_its_share(digits: InMemory) -> None:
    """``levels=1`` is fixed-size GRAFT: one subset per batch of about ``f * B`` samples.

    A single candidate of twice the per-batch budget would exceed the budget on every batch,
    and the allocation would then leave about half of the batches with no sample at all.
    """
    n, batch_size, fraction = len(digits), 64, 0.1
    sel = _select(
        GraftSelector(fraction=fraction, batch_size=batch_size, levels=1), make_mlp(0), digits
    )
    _assert_valid(sel, n, math.floor(fraction * n))
    # the selector's (class-stratified) partition for seed 0
    batches = partition(n, batch_size, labels=labels_of(digits), generator=_gen(0))
    chosen = set(sel.indices.tolist())
    empty = [b for b, batch in enumerate(batches) if not chosen & set(batch.tolist())]
    assert empty == [], f"{len(empty)} of {len(batches)} batches contribute no sample"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fraction": 0.0}, r"fraction must be in \(0, 1\]; got 0.0"),
        ({"fraction": 1.5}, r"fraction must be in \(0, 1\]; got 1.5"),
        ({"alignment_threshold": 0.0}, r"alignment_threshold must be in \(0, 1\]; got 0.0"),
        ({"features": "pixels"}, r"features must be one of 'embedding', 'raw'; got 'pixels'"),
        ({"rank": 0}, r"selection.rank must be in \[1, 1000000\] or null; got 0"),
        ({"batch_size": 1}, r"selection.batch_size must be in \[2, 1000000\] or null; got 1"),
        ({"maxvol_tol": 0.5}, r"maxvol_tol must be >= 1; got 0.5"),
        ({"levels": 0}, r"levels must be >= 1; got 0"),
    ],
)
def test_invalid_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        GraftSelector(**kwargs)


def test_all_invalid_arguments_reported_together() -> None:
    with pytest.raises(
        ValueError, match=r"fraction must .*; selection.batch_size must .*; levels must"
    ):
        GraftSelector(fraction=2.0, batch_size=0, levels=0)


# --- selection on digits -------------------------------------------------------------------


@pytest.mark.parametrize("batch_size", [32, 64, 100])  # 1797 is divisible by none of them
@pytest.mark.parametrize("fraction", [0.05, 0.1, 0.3, 0.5])
def test_budget_respected_and_indices_valid(
    digits: InMemory, fraction: float, batch_size: int
) -> None:
    n = len(digits)
    model = make_mlp(0)
    for threshold in (0.1, 1.0):
        selector = GraftSelector(
            fraction=fraction, batch_size=batch_size, alignment_threshold=threshold
        )
        sel = _select(selector, model, digits)
        budget = math.floor(fraction * n)
        _assert_valid(sel, n, budget)
        assert sel.weights is None
        assert sel.stats["budget"] == budget
        assert -1.0 <= sel.stats["alignment_min"] <= sel.stats["alignment_mean"] <= 1.0
        assert 0.0 <= sel.stats["aligned_batches"] <= 1.0
        assert sel.stats["selection_s"] >= 0.0


@pytest.mark.parametrize("fraction", [0.1, 0.3])
def test_hard_threshold_uses_more_samples_than_easy(digits: InMemory, fraction: float) -> None:
    model = make_mlp(0)
    budget = math.floor(fraction * len(digits))
    easy = _select(GraftSelector(fraction=fraction, alignment_threshold=0.1), model, digits)
    hard = _select(GraftSelector(fraction=fraction, alignment_threshold=1.0), model, digits)
    assert len(hard.indices) > len(easy.indices)
    assert len(hard.indices) >= 0.9 * budget  # nothing is ever aligned: the budget is spent
    assert hard.stats["aligned_batches"] == 0.0
    assert easy.stats["aligned_batches"] == 1.0


@pytest.mark.parametrize("pool", [1.0, 2.0, 3.5])
def test_a_pool_scores_only_pool_times_the_budget(
    digits: InMemory, pool: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    scored: list[torch.Tensor] = []
    forward = GraftSelector._forward

    def spy(self: GraftSelector, model: nn.Module, dataset: Any, chunk: Any, device: Any) -> Any:
        scored.extend(chunk)
        return forward(self, model, dataset, chunk, device)

    monkeypatch.setattr(GraftSelector, "_forward", spy)
    n, budget = len(digits), math.floor(0.2 * len(digits))
    # without the noise filter, whose one pass over the pool would be one chunk of `scored`
    selector = GraftSelector(
        fraction=0.2, batch_size=64, pool=pool, alignment_threshold=1.0, noise_filter="none"
    )
    sel = _select(selector, make_mlp(0), digits)
    seen = torch.cat(scored)
    assert len(seen) == math.ceil(pool * budget) == len(seen.unique())  # the pool, once each
    _assert_valid(sel, n, budget)
    assert set(sel.indices.tolist()) <= set(seen.tolist())
    if pool == 1.0:  # the pool is the budget: at threshold 1, nearly every sample is kept
        assert len(sel.indices) >= budget - len(scored)  # (sizes cap at the smallest batch)
    labels = digits.tensors[1]  # the pool is drawn at random, so classes keep their shares
    counts = torch.bincount(labels[seen], minlength=10).double()
    assert float(counts.min()) >= 0.5 * float(counts.mean())
    scored.clear()  # with it: the pool, forwarded once, and nothing else
    _select(GraftSelector(fraction=0.2, batch_size=64, pool=pool), make_mlp(0), digits)
    assert len(scored) == 1 and len(scored[0]) == math.ceil(pool * budget)
    with pytest.raises(ValueError, match=r"selection\.pool must be >= 1 or null"):
        GraftSelector(pool=0.5)


def test_raw_features_and_explicit_rank(digits: InMemory) -> None:
    model = make_mlp(1)
    for kwargs in ({"features": "raw"}, {"features": "raw", "rank": 5}, {"rank": 3}):
        sel = _select(GraftSelector(fraction=0.2, batch_size=64, **kwargs), model, digits)
        _assert_valid(sel, len(digits), math.floor(0.2 * len(digits)))


def test_full_fraction_selects_everything(digits: InMemory) -> None:
    sel = _select(GraftSelector(fraction=1.0), make_mlp(0), digits)
    assert torch.equal(sel.indices, torch.arange(len(digits)))
    assert sel.fraction == 1.0


@pytest.mark.parametrize(
    ("n", "batch_size", "fraction"), [(10, 4, 0.05), (10, 4, 0.2), (9, 64, 0.5)]
)
def test_tiny_budgets_and_tiny_data_sets(
    digits_tensors: Tensors, n: int, batch_size: int, fraction: float
) -> None:
    x, y = digits_tensors
    data = InMemory(x[:n], y[:n])
    sel = _select(GraftSelector(fraction=fraction, batch_size=batch_size), make_mlp(0), data)
    _assert_valid(sel, n, budget_of(fraction, n))


def test_same_seed_same_selection_other_seed_other_selection(digits: InMemory) -> None:
    model = make_mlp(2)
    selector = GraftSelector(fraction=0.2, batch_size=64, weighted=True)
    a, b = _select(selector, model, digits, seed=5), _select(selector, model, digits, seed=5)
    assert torch.equal(a.indices, b.indices)
    assert a.weights is not None and b.weights is not None
    assert torch.equal(a.weights, b.weights)
    c = _select(selector, model, digits, seed=6)
    assert not torch.equal(a.indices, c.indices)


def test_item_by_item_dataset_gives_the_same_selection(digits_tensors: Tensors) -> None:
    model = make_mlp(3)
    selector = GraftSelector(fraction=0.3, batch_size=100, weighted=True)
    in_memory = _select(selector, model, InMemory(*digits_tensors), seed=1)
    plain = _select(selector, model, ItemByItem(*digits_tensors), seed=1)
    assert torch.equal(in_memory.indices, plain.indices)
    assert in_memory.weights is not None and plain.weights is not None
    torch.testing.assert_close(in_memory.weights, plain.weights)


def test_labels_are_read_once_per_dataset(
    digits_tensors: Tensors, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A data set without declared targets is read item by item for its labels: once, not at
    every selection round."""
    reads: list[object] = []

    def counting_labels_of(dataset: Any) -> torch.Tensor:
        reads.append(dataset)
        return labels_of(dataset)

    monkeypatch.setattr(graft_module, "labels_of", counting_labels_of)
    model = make_mlp(3)
    selector = GraftSelector(fraction=0.3, batch_size=100)
    first, second = ItemByItem(*digits_tensors), ItemByItem(*digits_tensors)
    rounds = [_select(selector, model, first, seed=s) for s in range(3)]
    assert reads == [first]
    assert not torch.equal(rounds[0].indices, rounds[1].indices)  # new partitions all the same
    again = _select(selector, model, second, seed=0)  # another data set: its own labels
    assert reads == [first, second]
    assert torch.equal(again.indices, rounds[0].indices)  # the same samples, the same choice
    assert "_labels" not in repr(selector) and "tensor" not in repr(selector)


def test_selection_follows_the_samples_when_the_dataset_is_permuted(
    digits_tensors: Tensors, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Selection is in dataset indices: permuting the data set permutes the selection.

    The selector's only randomness is the batch partition ``torch.randperm(n, generator)``.
    For ``data'[i] = data[perm[i]]`` to be partitioned into the same batches *of samples*, its
    visiting order must be ``q' = perm^-1[q]`` where ``q`` is the order used on ``data``. We fix
    both orders by replacing ``torch.randperm`` (as the selector module sees it) for each call.
    """
    x, y = digits_tensors
    n = len(x)
    perm = torch.randperm(n, generator=_gen(10))
    inverse = perm.argsort()
    order = torch.randperm(n, generator=_gen(11))
    model = make_mlp(4)
    selector = GraftSelector(fraction=0.25, batch_size=64, weighted=True)

    def select_with_order(data: InMemory, visit: torch.Tensor) -> Selection:
        def fixed_randperm(m: int, **_: object) -> torch.Tensor:
            assert m == n
            return visit.clone()

        with monkeypatch.context() as patch:
            patch.setattr(graft_module.torch, "randperm", fixed_randperm)
            return selector.select(model, data)

    original = select_with_order(InMemory(x, y), order)
    permuted = select_with_order(InMemory(x[perm], y[perm]), inverse[order])
    # map the permuted data set's indices back to the original samples
    back = perm[permuted.indices]
    assert torch.equal(back.sort().values, original.indices)
    assert original.weights is not None and permuted.weights is not None
    weight_of = dict(zip(back.tolist(), permuted.weights.tolist(), strict=False))
    assert [weight_of[i] for i in original.indices.tolist()] == original.weights.tolist()


def test_partition_comes_from_the_generator(digits: InMemory) -> None:
    # the global RNG is neither read nor advanced when a generator is given
    torch.manual_seed(0)
    before = torch.get_rng_state()
    sel = _select(GraftSelector(fraction=0.2), make_mlp(0), digits, seed=3)
    assert torch.equal(torch.get_rng_state(), before)
    torch.manual_seed(12345)
    assert torch.equal(
        _select(GraftSelector(fraction=0.2), make_mlp(0), digits, seed=3).indices, sel.indices
    )


@pytest.mark.parametrize(("n", "batch_size"), [(1797, 128), (1797, 64), (130, 128), (10, 3)])
def test_partition_is_a_seeded_partition_into_near_equal_batches(
    digits_tensors: Tensors, n: int, batch_size: int
) -> None:
    labels = digits_tensors[1][:n]
    for given in (None, labels):
        batches = partition(n, batch_size, labels=given, generator=_gen(5))
        assert len(batches) == math.ceil(n / batch_size)
        sizes = [len(b) for b in batches]
        assert max(sizes) - min(sizes) <= 1
        assert torch.equal(torch.cat(batches).sort().values, torch.arange(n))
        again = partition(n, batch_size, labels=given, generator=_gen(5))
        assert all(torch.equal(a, b) for a, b in zip(batches, again, strict=True))
    # without labels: the plain seeded permutation, cut into consecutive batches
    plain = torch.tensor_split(torch.randperm(n, generator=_gen(5)), len(batches))
    unstratified = partition(n, batch_size, generator=_gen(5))
    assert all(torch.equal(a, b) for a, b in zip(plain, unstratified, strict=True))


def test_stratified_batches_hold_one_class_or_a_boundary_and_shuffle_within_it(
    digits_tensors: Tensors,
) -> None:
    y = digits_tensors[1]  # every class has >= 174 samples > the batch size
    batches = partition(len(y), 64, labels=y, generator=_gen(6))
    walked = torch.cat([y[b] for b in batches])
    assert torch.equal(walked, y.sort().values)  # batches walk through the classes in order
    assert all(len(y[b].unique()) <= 2 for b in batches)
    other = partition(len(y), 64, labels=y, generator=_gen(7))
    assert not torch.equal(torch.cat(batches), torch.cat(other))  # random within each class


def _class_shares(sel: Selection, y: torch.Tensor) -> torch.Tensor:
    """Each class's share of the subset over its share of the data set (1 = proportional)."""
    counts = torch.bincount(y[sel.indices], minlength=10).double()
    return counts / (torch.bincount(y, minlength=10).double() * len(sel.indices) / len(y))


@pytest.mark.parametrize("features", ["raw", "embedding"])
def test_stratified_selection_gives_every_class_its_share(
    digits_tensors: Tensors, features: str
) -> None:
    """Maxvol favours large feature vectors: with class 0's images three times as bright,
    unstratified GRAFT spends several times class 0's share on it and starves other classes.
    Stratified, every class stays near its share (the alignment still moves budget between
    batches); with one candidate size ``k`` per batch, a class gets ``k`` samples from every
    batch of its own and at most ``k`` from each boundary batch it shares."""
    x, y = digits_tensors
    bright = InMemory(torch.where((y == 0)[:, None], 3 * x, x), y)
    model = make_mlp(0)

    def select(**options: Any) -> Selection:
        options = {"fraction": 0.1, "features": features, "alignment_threshold": 1.0, **options}
        return _select(GraftSelector(**options), model, bright)

    unstratified = _class_shares(select(stratify=False), y)
    assert float(unstratified[0]) > 2.5 and float(unstratified.min()) < 0.5
    stratified = _class_shares(select(), y)
    assert float(stratified.min()) > 0.5 and float(stratified.max()) < 2.0

    selector = GraftSelector(fraction=0.1, batch_size=32, levels=1, features=features)
    sel = _select(selector, model, bright)
    batches = partition(len(y), 32, labels=y, generator=_gen(0))
    (k,) = selector.candidate_sizes(len(batches[-1]), budget_of(0.1, len(y)) / len(batches))
    counts = torch.bincount(y[sel.indices], minlength=10)
    for c in range(10):
        own = sum(bool((y[b] == c).all()) for b in batches)
        touched = sum(bool((y[b] == c).any()) for b in batches)
        assert k * own <= int(counts[c]) <= k * touched, (c, k, own, touched, counts.tolist())


def _reference_weights(
    model: nn.Module, data: InMemory, sel: Selection, batch_size: int, seed: int
) -> torch.Tensor:
    """Documented weights, batch by batch, from explicit float64 gradients.

    ``(K_SS + lam I) w = |S|/B K_S 1`` with ``lam = 1e-8 mean(diag K_SS)``, clipped at 0 and
    scaled to mean 1 per batch; the batches are the selector's seeded, stratified partition.
    """
    n = len(data)
    x, y = data.tensors
    batches = partition(n, batch_size, labels=y, generator=_gen(seed))  # the selector's
    chosen = {int(i): k for k, i in enumerate(sel.indices)}
    expected = torch.full((len(sel.indices),), float("nan"), dtype=torch.float64)
    model.eval()
    with torch.no_grad():
        for batch in batches:
            embeddings = model[:-1](x[batch])
            G = last_layer_gradients(model[-1](embeddings), y[batch], embeddings)
            local = [p for p, i in enumerate(batch.tolist()) if i in chosen]
            if not local:
                continue
            K = G @ G.T
            K_ss = K[local][:, local]
            m = len(local)
            lam = 1e-8 * K_ss.diagonal().mean()
            w = torch.linalg.solve(
                K_ss + lam * torch.eye(m, dtype=K.dtype), K[local].sum(1) * m / len(batch)
            )
            w = w.clamp_min(0.0)
            w = w * (m / w.sum())
            for p, wi in zip(local, w.tolist(), strict=False):
                expected[chosen[int(batch[p])]] = wi
    return expected


@pytest.mark.parametrize("batch_size", [64, 100])
def test_weights_are_nonnegative_mean_one_and_follow_the_indices(
    digits: InMemory, batch_size: int
) -> None:
    model = make_mlp(5, batchnorm=False)
    selector = GraftSelector(fraction=0.2, batch_size=batch_size, weighted=True)
    sel = _select(selector, model, digits, seed=2)
    assert sel.weights is not None
    assert sel.weights.dtype == torch.float32
    assert sel.weights.shape == sel.indices.shape
    assert bool((sel.weights >= 0).all())
    assert float(sel.weights.double().mean()) == pytest.approx(1.0, abs=1e-6)
    assert float(sel.weights.std()) > 0.01  # not all ones
    unweighted = _select(GraftSelector(fraction=0.2, batch_size=batch_size), model, digits, seed=2)
    assert torch.equal(sel.indices, unweighted.indices)  # weights never change the subset
    expected = _reference_weights(model, digits, sel, batch_size, seed=2)
    assert not torch.isnan(expected).any()
    torch.testing.assert_close(sel.weights.double(), expected, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("training", [True, False])
def test_model_mode_parameters_and_batchnorm_state_unchanged(
    digits: InMemory, training: bool
) -> None:
    model = make_mlp(6).train(training)
    # give BatchNorm non-trivial running statistics first
    model.train()
    with torch.no_grad():
        model(digits.tensors[0][:256])
    model.train(training)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    sel = _select(GraftSelector(fraction=0.3, batch_size=64), model, digits)
    _assert_valid(sel, len(digits), math.floor(0.3 * len(digits)))
    assert model.training is training
    assert all(m.training is training for m in model.modules())
    after = model.state_dict()
    for key, value in state.items():
        assert torch.equal(after[key], value), key  # running_mean/var, num_batches_tracked, ...
    assert all(p.grad is None for p in model.parameters())


def test_mode_restored_when_selection_fails(digits_tensors: Tensors) -> None:
    x, y = digits_tensors
    model = make_mlp(0).train()
    broken = InMemory(x[:, :10], y)  # wrong input width: the forward pass raises
    with pytest.raises(RuntimeError):
        _select(GraftSelector(fraction=0.3), model, broken)
    assert model.training
    assert len(model[-1]._forward_pre_hooks) == 0


@pytest.mark.parametrize("features", ["raw", "embedding"])
def test_image_inputs_conv_model_with_dropout(digits_tensors: Tensors, features: str) -> None:
    # dropout left in train mode would make scoring random; selection must score in eval mode
    x, y = digits_tensors
    images = x.view(-1, 1, 8, 8)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        cnn = nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1),
            nn.BatchNorm2d(4),
            nn.ReLU(),
            nn.Dropout(0.5),
            nn.Flatten(),
            nn.Linear(256, 10),
        ).train()
    selector = GraftSelector(fraction=0.2, batch_size=50, features=features, weighted=True)
    a = _select(selector, cnn, InMemory(images, y), seed=4)
    b = _select(selector, cnn, ItemByItem(images, y), seed=4)
    _assert_valid(a, len(x), math.floor(0.2 * len(x)))
    assert torch.equal(a.indices, b.indices)
    assert a.weights is not None and b.weights is not None
    torch.testing.assert_close(a.weights, b.weights)
    assert cnn.training


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_selection_on_cuda(digits: InMemory) -> None:
    model = make_mlp(7).cuda()
    selector = GraftSelector(fraction=0.2, batch_size=64, weighted=True)
    sel = selector.select(model, digits, generator=_gen(0))  # device: the model's
    _assert_valid(sel, len(digits), math.floor(0.2 * len(digits)))
    assert sel.indices.device.type == "cpu"
    assert sel.weights is not None and bool((sel.weights >= 0).all())
    cpu = selector.select(model.cpu(), digits, generator=_gen(0))
    # float32 round-off may flip a near-tie, but the subsets are essentially the same
    overlap = len(set(sel.indices.tolist()) & set(cpu.indices.tolist()))
    assert overlap >= 0.9 * len(cpu.indices)
