"""``selection.dedup``: near-copies leave GRAFT's candidates, one of each group stays."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from graft_hpo.selection import GraftSelector
from graft_hpo.selection import _noise
from graft_hpo.selection._noise import near_duplicates
from graft_hpo.selection._noise import split_suspects

from ._data import InMemory
from ._data import make_mlp


def _centred(embeds: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Each embedding minus its label's mean, unit length, float64."""
    out = embeds.double().clone()
    for c in labels.unique():
        out[labels == c] -= out[labels == c].mean(0)
    return F.normalize(out, dim=1)


def _brute_force(embeds: torch.Tensor, labels: torch.Tensor, tau: float) -> torch.Tensor:
    """The rule in float64, pair by pair: an earlier sample of the label at centred cos >= tau."""
    feats = _centred(embeds, labels)
    out = torch.zeros(len(labels), dtype=torch.bool)
    for i in range(len(labels)):
        for j in range(i):
            if labels[i] == labels[j] and float(feats[i] @ feats[j]) >= tau:
                out[i] = True
                break
    return out


def _planted(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """300 samples of 3 classes in 12 dimensions, 90 of them near-copies of others (some of
    another label), and the mask of the same-label copies."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(210, 12, generator=g)
    source = torch.randint(0, 210, (90,), generator=g)
    embeds = torch.cat([base, base[source] + 0.02 * torch.randn(90, 12, generator=g)])
    labels = torch.randint(0, 3, (300,), generator=g)
    labels[210:] = labels[source]
    labels[210:230] = (labels[source[:20]] + 1) % 3  # a copy with another label is no duplicate
    perm = torch.randperm(300, generator=g)
    copy = torch.zeros(300, dtype=torch.bool)
    copy[230:] = True
    return embeds[perm], labels[perm], copy[perm]


def test_near_duplicates_match_a_float64_brute_force_across_chunks(monkeypatch):
    embeds, labels, copy = _planted()
    monkeypatch.setattr(_noise, "_KNN_CHUNK", 16)  # many chunks per class, the last ragged
    sims = _centred(embeds, labels) @ _centred(embeds, labels).T
    for tau in (0.995, 0.6):  # no pair sits within 1e-5 of either (float32 is exact enough)
        assert not ((sims - tau).abs() < 1e-5).any()
        expected = _brute_force(embeds, labels, tau)
        got, nearest = near_duplicates(embeds, labels, tau, max_share=1.0)
        assert torch.equal(got, expected)
        assert torch.equal(got, nearest >= tau)
    # at 0.995 all but the first of each same-label group: the 70 same-label copies' count
    got, _ = near_duplicates(embeds, labels, 0.995, max_share=1.0)
    assert int(copy.sum()) == 70 and int(got.sum()) == 70


def test_the_first_of_a_group_stays_and_at_most_half_a_class_goes():
    # class 0: 4 copies of one point among 4 others; class 1: 2 copies (no spread to centre)
    embeds = torch.tensor(
        [[1.0, 0, 0]] * 4
        + [[0, 1.0, 0], [0, 0, 1.0], [0, -1.0, 0], [0, 0, -1.0]]
        + [[1.0, 1.0, 0]] * 2
    )
    labels = torch.tensor([0] * 8 + [1, 1])
    flagged, nearest = near_duplicates(embeds, labels, 0.99, max_share=0.25)
    assert flagged.tolist() == [False, True, True] + [False] * 7  # the cap: 2 of class 0's 8
    assert nearest[0] == -torch.inf and nearest[9] == 0.0  # centred class 1: two zero rows
    flagged, _ = near_duplicates(embeds, labels, 0.99)
    assert flagged.tolist() == [False] + [True] * 3 + [False] * 6


def test_the_lower_dataset_index_stays_and_copies_lead_the_left_out():
    # candidates in a shuffled order: 40 has a copy at 90 (and 7 is close to it), 3 one at 12;
    # 60 balances the others, so the class mean is 0 and the centred cosine the plain one
    candidates = torch.tensor([40, 12, 90, 7, 3, 55, 60])
    embeds = torch.tensor(
        [[1.0, 0, 0], [0, 1.0, 0], [1.0, 0.001, 0], [1.0, 0.05, 0], [0, 1.0, 0.01], [0, 0, 1.0]]
    )
    embeds = torch.cat([embeds, -embeds.sum(0, keepdim=True)])
    labels = torch.zeros(7, dtype=torch.long)
    logits = torch.tensor([[1.0, 0.0]] * 7)
    kept, left_out = split_suspects(candidates, logits, labels, "none", embeds, 0.9995)
    assert kept.tolist() == [40, 7, 3, 55, 60] and left_out.tolist() == [12, 90]
    kept, left_out = split_suspects(candidates, logits, labels, "none", embeds, 0.99)
    assert kept.tolist() == [7, 3, 55, 60] and left_out.tolist() == [40, 12, 90]  # 40 ~ 7
    # a suspect (55, predicted class 1) goes after the copies, least similar copy first
    logits[5] = torch.tensor([0.0, 1.0])
    kept, left_out = split_suspects(candidates, logits, labels, "misfit", embeds, 0.99)
    assert kept.tolist() == [7, 3, 60] and left_out.tolist() == [40, 12, 90, 55]


def test_dedup_needs_the_embeddings():
    with pytest.raises(ValueError, match="dedup needs the embeddings"):
        split_suspects(
            torch.arange(3), torch.zeros(3, 2), torch.zeros(3).long(), "none", None, 0.9
        )


@pytest.fixture(scope="module")
def doubled(digits_tensors: tuple[torch.Tensor, torch.Tensor]) -> tuple[InMemory, torch.Tensor]:
    """Digits with 600 of them copied (tiny jitter, same label), and each sample's source."""
    x, y = digits_tensors
    g = torch.Generator().manual_seed(3)
    source = torch.randperm(len(y), generator=g)[:600]
    x2 = torch.cat([x, x[source] + 1e-4 * torch.randn(600, 64, generator=g)])
    origin = torch.cat([torch.arange(len(y)), source])
    return InMemory(x2, torch.cat([y, y[source]])), origin


@pytest.fixture(scope="module")
def model() -> nn.Module:
    """An untrained classifier: its embedding tells distinct digits apart (a trained one's
    saturated Tanh maps many digits of a class to one point; dedup needs no trained head)."""
    return make_mlp(1, batchnorm=False).eval()


@pytest.mark.parametrize("fraction", [0.1, 0.3, 0.6])
def test_dedup_selects_no_pair_of_copies_and_never_exceeds_the_budget(doubled, model, fraction):
    data, origin = doubled
    n = len(origin)
    gen = torch.Generator().manual_seed(0)
    plain = GraftSelector(fraction=fraction, noise_filter="none").select(
        model, data, generator=gen
    )
    gen = torch.Generator().manual_seed(0)
    sel = GraftSelector(fraction=fraction, noise_filter="none", dedup=0.9999).select(
        model, data, generator=gen
    )
    assert len(sel.indices) <= int(fraction * n)
    assert origin[sel.indices].unique().numel() == len(sel.indices)  # one of each group
    assert origin[plain.indices].unique().numel() < len(plain.indices)  # without it: pairs
    assert 0.2 < sel.stats["filtered"] < 0.3  # about the 600 of 2,397 copies


def test_the_sweep_ranking_puts_the_copies_last_least_similar_first(doubled, model):
    data, origin = doubled
    gen = torch.Generator().manual_seed(0)
    selector = GraftSelector(noise_filter="none", dedup=0.9999)
    ranking = selector.rank_dataset(model, data, generator=gen)
    dropped = round(ranking.stats["filtered"] * len(ranking))
    assert 500 < dropped <= 600
    head, tail = ranking.order[:-dropped], ranking.order[-dropped:]
    assert origin[head].unique().numel() == len(head)  # every group once before the tail
    assert torch.isin(origin[tail], origin[head]).all()  # each tail sample's group is ahead
    assert torch.isinf(ranking.aligned_before[-dropped:]).all()
    assert sorted(ranking.order.tolist()) == list(range(len(origin)))
