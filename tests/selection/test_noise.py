"""``noise_filter``: GRAFT over-picks wrong labels; ``misfit`` keeps them out of its candidates."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import Subset

from graft_hpo.selection import GraftSelector
from graft_hpo.selection import _noise
from graft_hpo.selection._noise import knn_outliers
from graft_hpo.selection._noise import misfits

from ._data import InMemory
from ._data import make_mlp

NOISE = 0.2


def test_misfits_flags_wrong_predictions_highest_loss_first_at_most_half_a_class():
    # class 0: 4 samples, 3 predicted as class 1 (the cap of half flags the 2 most confident)
    logits = torch.tensor(
        [
            *([5.0, 0, 0], [0, 1, 0], [0, 3, 0], [0, 2, 0]),  # class 0
            *([0, 4.0, 0], [0, 4, 0], [0, 4, 0], [1, 0, 0]),  # class 1: one misfit of 4
            *([0, 0, 4.0], [0, 0, 4], [0, 0, 4], [0, 0, 4]),  # class 2: none
        ]
    )
    labels = torch.tensor([0] * 4 + [1] * 4 + [2] * 4)
    flagged = misfits(logits, labels, rule="misfit")
    assert flagged.nonzero().squeeze(1).tolist() == [2, 3, 7]


def test_chance_flags_only_labels_the_model_rates_below_one_over_c():
    rows = [[2.0, 0, 0]] * 8  # class 0: all fitted
    rows += [[0, 2.0, 0]] * 4 + [[0.5, 0.4, 0]] * 2  # class 1: 2 misfits, p(label) = 0.36
    rows += [[0, 0, 2.0]] * 4 + [[3.0, 0, 0]] * 2  # class 2: 2 misfits, p(label) = 0.05
    logits, labels = torch.tensor(rows), torch.tensor([0] * 8 + [1] * 6 + [2] * 6)
    assert misfits(logits, labels, rule="chance").nonzero().squeeze(1).tolist() == [18, 19]
    misfit = misfits(logits, labels, rule="misfit")
    assert misfit.nonzero().squeeze(1).tolist() == [12, 13, 18, 19]


def test_misfits_flags_nothing_for_a_model_at_chance():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3000, 10, generator=g)
    labels = torch.randint(0, 10, (3000,), generator=g)
    for rule in ("chance", "misfit"):  # it fits ~10% of the labels: twice chance is 20%
        assert not misfits(logits, labels, rule=rule).any()


def test_misfits_refuses_a_binary_model_fitting_three_quarters():
    logits = torch.tensor([[1.0, 0.0]] * 3 + [[0.0, 1.0]])
    assert not misfits(logits, torch.zeros(4, dtype=torch.long)).any()  # 0.75 <= (1 + 1/2) / 2


def test_knn_flags_labels_their_neighbours_do_not_share_never_counting_the_sample_itself():
    # two tight clusters of 6; one sample of each carries the other cluster's label
    embeds = torch.tensor([[1.0, 0.0]] * 6 + [[0.0, 1.0]] * 6) + 0.01 * torch.arange(12)[:, None]
    labels = torch.tensor([0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 0])
    assert knn_outliers(embeds, labels, k=4).nonzero().squeeze(1).tolist() == [5, 11]
    # with itself among its neighbours, a lone label would count one vote for itself
    assert not knn_outliers(embeds, labels, k=4, min_agree=0).any()
    assert not knn_outliers(embeds[:4], labels[:4], k=4).any()  # no more samples than k


def test_knn_looks_for_neighbours_among_evenly_spaced_references_beyond_the_cap(monkeypatch):
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(3, 8, generator=g)
    labels = torch.arange(300) % 3
    embeds = centres[labels] + 0.05 * torch.randn(300, 8, generator=g)
    labels[[7, 100]] = (labels[[7, 100]] + 1) % 3  # two wrong labels
    full = knn_outliers(embeds, labels)
    monkeypatch.setattr(_noise, "KNN_REFERENCES", 64)  # samples 0, 4, 9, 14, ...: 64 of them
    assert torch.equal(knn_outliers(embeds, labels), full)
    assert full.nonzero().squeeze(1).tolist() == [7, 100]


def _brute_force_knn(embeds: torch.Tensor, labels: torch.Tensor, references: int) -> torch.Tensor:
    """The vote in float64: each sample's similarity to every reference (sample
    ``floor(j m / references)`` for ``j < references``), a full sort, itself excluded."""
    m = len(labels)
    refs = torch.tensor([j * m // references for j in range(references)])
    x = embeds.double() / embeds.double().norm(dim=1, keepdim=True)
    flags = []
    for i in range(m):
        others = refs[refs != i]
        order = (x[others] @ x[i]).argsort(descending=True, stable=True)
        near = others[order[: _noise.KNN_K]]
        flags.append(int((labels[near] == labels[i]).sum()) < _noise.KNN_MIN_AGREE)
    return torch.tensor(flags)


@pytest.mark.parametrize("references", [700, 8192, 199])
def test_knn_matches_a_float64_brute_force_vote_across_chunks(monkeypatch, references):
    # 6 overlapping classes in 16 dimensions and 15% wrong labels: votes of every count occur
    g = torch.Generator().manual_seed(1)
    labels = torch.randint(0, 6, (700,), generator=g)
    embeds = torch.randn(6, 16, generator=g)[labels] + 0.9 * torch.randn(700, 16, generator=g)
    wrong = torch.rand(700, generator=g) < 0.15
    labels[wrong] = (labels[wrong] + 1 + torch.randint(0, 5, (700,), generator=g)[wrong]) % 6
    monkeypatch.setattr(_noise, "_KNN_CHUNK", 128)  # 6 chunks, the last one ragged
    monkeypatch.setattr(_noise, "KNN_REFERENCES", references)
    expected = _brute_force_knn(embeds, labels, min(references, 700))
    got = knn_outliers(embeds, labels)
    assert 50 < int(expected.sum()) < 650  # neither trivial nor everything
    assert torch.equal(got, expected)


def test_the_knn_rule_needs_the_embeddings():
    logits, labels = torch.eye(3).repeat(4, 1), torch.arange(3).repeat(4)
    with pytest.raises(ValueError, match="needs the embeddings"):
        misfits(logits, labels, rule="knn")
    flagged = misfits(logits, labels, rule="knn", embeds=torch.eye(3).repeat(4, 1))
    assert not flagged.any()


@pytest.fixture(scope="module")
def noisy(digits_tensors: tuple[torch.Tensor, torch.Tensor]) -> tuple[InMemory, torch.Tensor]:
    """Digits with 20% of the labels shifted to another class, and the mask of those."""
    x, y = digits_tensors
    g = torch.Generator().manual_seed(7)
    wrong = torch.randperm(len(y), generator=g)[: round(NOISE * len(y))]
    noisy_y = y.clone()
    noisy_y[wrong] = (y[wrong] + torch.randint(1, 10, (len(wrong),), generator=g)) % 10
    return InMemory(x, noisy_y), noisy_y != y


@pytest.fixture(scope="module")
def fitted(noisy: tuple[InMemory, torch.Tensor]) -> nn.Module:
    """A classifier after a short training on the noisy labels (it has not memorised them)."""
    data, _ = noisy
    x, y = data.tensors
    model = make_mlp(0, batchnorm=False)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        for _ in range(3):
            for idx in torch.randperm(len(y)).split(64):
                opt.zero_grad()
                nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
                opt.step()
    return model.eval()


def _wrong_share(selector: GraftSelector, model, data, wrong) -> tuple[float, dict]:
    sel = selector.select(model, data, generator=torch.Generator().manual_seed(0))
    return float(wrong[sel.indices].float().mean()), sel.stats


@pytest.mark.parametrize("rule", ["chance", "misfit", "knn"])
def test_graft_over_picks_wrong_labels_and_the_filter_keeps_them_out(noisy, fitted, rule):
    data, wrong = noisy
    off, _ = _wrong_share(GraftSelector(fraction=0.2, noise_filter="none"), fitted, data, wrong)
    on, stats = _wrong_share(GraftSelector(fraction=0.2, noise_filter=rule), fitted, data, wrong)
    assert off > 1.5 * NOISE  # the mechanism: maxvol picks a class's outliers, wrong labels
    # below random's share (chance leaves the wrong labels the model is unsure of: 17% here)
    assert on < (0.5 if rule == "misfit" else 1.0) * NOISE and on < off / 3
    assert NOISE * 0.75 < stats["filtered"] < NOISE * 1.75  # the share adapts to the noise


@pytest.mark.parametrize("rule", ["chance", "misfit", "knn"])
def test_an_untrained_model_filters_nothing_and_selects_as_without_filter(noisy, rule):
    data, _ = noisy
    model = make_mlp(1)
    a = GraftSelector(fraction=0.2, noise_filter="none").select(
        model, data, generator=torch.Generator().manual_seed(0)
    )
    b = GraftSelector(fraction=0.2, noise_filter=rule).select(
        model, data, generator=torch.Generator().manual_seed(0)
    )
    assert torch.equal(a.indices, b.indices) and b.stats["filtered"] == 0.0


def test_the_sweep_ranking_puts_the_suspects_last(noisy, fitted):
    data, wrong = noisy
    gen = torch.Generator().manual_seed(0)
    ranking = GraftSelector().rank_dataset(fitted, data, generator=gen)  # the default filter
    left_out = round(ranking.stats["filtered"] * len(ranking))
    assert NOISE * 0.75 * len(ranking) < left_out
    tail = ranking.order[-left_out:]
    assert float(wrong[tail].float().mean()) > 0.6  # most of the suspects are wrong labels
    assert torch.isinf(ranking.aligned_before[-left_out:]).all()
    assert float(wrong[ranking.subset(0.2)].float().mean()) < 0.75 * NOISE
    gen = torch.Generator().manual_seed(0)
    plain = GraftSelector(noise_filter="none").rank_dataset(fitted, data, generator=gen)
    assert float(wrong[plain.subset(0.2)].float().mean()) > 1.5 * NOISE


@pytest.mark.parametrize(("features", "rule"), [("embedding", "chance"), ("raw", "misfit")])
def test_the_filter_is_graft_on_the_kept_samples_with_the_same_budget(
    noisy, fitted, features, rule
):
    # reference: plain GRAFT (own forward passes) on a Subset of the samples the filter keeps
    data, _ = noisy
    x, y = data.tensors
    kept = ~misfits(fitted(x).detach(), y, rule=rule)
    keep = kept.nonzero().squeeze(1)
    budget = int(0.2 * len(y))
    on = GraftSelector(fraction=0.2, features=features, weighted=True, noise_filter=rule)
    sel = on.select(fitted, data, generator=torch.Generator().manual_seed(3))
    share = (budget + 0.5) / len(keep)  # the same floor(f n) on the kept samples
    off = GraftSelector(fraction=share, features=features, weighted=True, noise_filter="none")
    ref = off.select(
        fitted, Subset(data, keep.tolist()), generator=torch.Generator().manual_seed(3)
    )
    assert torch.equal(sel.indices, keep[ref.indices])
    assert sel.weights is not None and ref.weights is not None
    assert torch.allclose(sel.weights, ref.weights)


def test_every_noise_filter_validation_accepts_is_a_rule_and_no_other() -> None:
    """config.NOISE_FILTERS (what `selection.noise_filter` may be) are the rules this module
    applies ("none" applies none); a name it does not know is refused, not read as "chance"."""
    from graft_hpo.config import NOISE_FILTERS

    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0], [0.0, 2.0]] * 6)
    labels = torch.tensor([0, 1, 0, 1] * 6)
    for rule in NOISE_FILTERS:
        if rule != "none":
            misfits(logits, labels, rule=rule, embeds=logits)
        GraftSelector(fraction=0.5, noise_filter=rule)
    with pytest.raises(ValueError, match="'cosine'"):
        misfits(logits, labels, rule="cosine", embeds=logits)


def test_the_filtered_share_counts_the_scored_candidates_not_the_whole_set() -> None:
    # an untrained model fits no more than chance: nothing is left out, pool or not
    from torch.utils.data import TensorDataset

    torch.manual_seed(0)
    data = TensorDataset(torch.randn(1000, 20), torch.randint(0, 5, (1000,)))
    model = nn.Sequential(nn.Linear(20, 8), nn.ReLU(), nn.Linear(8, 5))
    for pool in (None, 2.0):
        selector = GraftSelector(fraction=0.3, pool=pool, noise_filter="knn")
        chosen = selector.select(model, data, generator=torch.Generator().manual_seed(0))
        assert chosen.stats["filtered"] == 0.0, pool
