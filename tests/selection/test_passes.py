"""``selection.reuse_warmup``: a round that reads a recorded training pass instead of its own."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from graft_hpo.selection import GraftSelector
from graft_hpo.selection import RandomSelector
from graft_hpo.selection import Selection
from graft_hpo.selection import SubsetSampler
from graft_hpo.selection import SubsetSchedule
from graft_hpo.selection._passes import eval_pass

from ._data import InMemory
from ._data import make_mlp


def _select(selector: GraftSelector, model: nn.Module, dataset: InMemory) -> Selection:
    return selector.select(model, dataset, generator=torch.Generator().manual_seed(0))


def _record(selector: GraftSelector, model: nn.Module, dataset: InMemory, order: Any) -> None:
    """Hand ``selector`` the eval pass's own outputs, in training-sized batches of ``order``."""
    for index in order.split(64):
        _, logits, embeds, y = eval_pass(model, dataset, [index], "cpu", raw=False)
        selector.record_outputs(index, logits, embeds, y)


def _count_forwards(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    forward = GraftSelector._forward

    def spy(self: GraftSelector, model: nn.Module, dataset: Any, chunk: Any, device: Any) -> Any:
        calls.append(sum(len(c) for c in chunk))
        return forward(self, model, dataset, chunk, device)

    monkeypatch.setattr(GraftSelector, "_forward", spy)
    return calls


@pytest.mark.parametrize(
    "knobs",
    [
        {},
        {"noise_filter": "none"},
        {"features": "raw"},
        {"features": "raw", "noise_filter": "none"},
        {"noise_filter": "chance", "dedup": 0.99},
        {"pool": 2.0},
        {"weighted": True},
    ],
)
def test_a_recorded_pass_equal_to_the_rounds_own_selects_the_same(
    digits: InMemory, knobs: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the training pass's outputs are the eval pass's (any order, in batches), the
    round selects exactly what it selects with its own pass, and runs none of its own."""
    model = make_mlp(0)
    own = _select(GraftSelector(fraction=0.2, batch_size=64, **knobs), model, digits)
    reuse = GraftSelector(fraction=0.2, batch_size=64, reuse_warmup=True, **knobs)
    assert reuse.records_outputs()
    _record(reuse, model, digits, torch.randperm(len(digits), generator=torch.Generator()))
    calls = _count_forwards(monkeypatch)
    got = _select(reuse, model, digits)
    assert calls == []
    assert torch.equal(got.indices, own.indices)
    if own.weights is not None:
        assert got.weights is not None and torch.allclose(got.weights, own.weights)
    # the recorded pass served that round only: the next one forwards its candidates itself
    again = _select(reuse, model, digits)
    assert calls and torch.equal(again.indices, own.indices)


def test_the_selection_reads_the_recorded_outputs_not_the_model(digits: InMemory) -> None:
    """Outputs recorded from another model select what that model would: the round does not
    quietly run its own pass."""
    recorded_by, scored_with = make_mlp(1), make_mlp(2)
    own = _select(GraftSelector(fraction=0.2, batch_size=64), recorded_by, digits)
    other = _select(GraftSelector(fraction=0.2, batch_size=64), scored_with, digits)
    assert not torch.equal(own.indices, other.indices)
    reuse = GraftSelector(fraction=0.2, batch_size=64, reuse_warmup=True)
    _record(reuse, recorded_by, digits, torch.arange(len(digits)))
    assert torch.equal(_select(reuse, scored_with, digits).indices, own.indices)


def test_a_pass_that_missed_a_candidate_is_not_used(
    digits: InMemory, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = make_mlp(0)
    reuse = GraftSelector(fraction=0.2, batch_size=64, reuse_warmup=True)
    _record(reuse, model, digits, torch.arange(len(digits) - 1))  # the last sample missing
    calls = _count_forwards(monkeypatch)
    got = _select(reuse, model, digits)
    assert calls == [len(digits)]  # its own pass, once, over every candidate
    assert torch.equal(
        got.indices, _select(GraftSelector(fraction=0.2, batch_size=64), model, digits).indices
    )


def test_only_a_selector_that_asks_records() -> None:
    assert not GraftSelector().records_outputs()  # off by default
    assert not RandomSelector(fraction=0.2).records_outputs()
    RandomSelector(fraction=0.2).record_outputs(torch.arange(2), *[torch.zeros(2)] * 3)  # no-op


@pytest.mark.parametrize(
    ("warm", "every", "recorded"),
    [(2, 9, [1]), (1, 1, [0]), (3, 2, [2]), (0, 2, [])],
)
def test_the_sampler_records_the_last_full_epoch_before_the_first_subset(
    digits: InMemory, warm: int, every: int, recorded: list[int]
) -> None:
    selector = GraftSelector(fraction=0.2, reuse_warmup=True)
    sampler = SubsetSampler(selector, digits, make_mlp(0), schedule=SubsetSchedule(warm, every))
    assert [e for e in range(12) if sampler.records_epoch(e)] == recorded
    plain = SubsetSampler(GraftSelector(fraction=0.2), digits, make_mlp(0))
    assert not any(plain.records_epoch(e) for e in range(12))


def test_the_sampler_records_nothing_when_the_training_set_augments(
    digits_tensors: tuple[torch.Tensor, torch.Tensor],
) -> None:
    """A loader that reads another data set than selection scores (an augmenting one) would
    record outputs of other inputs: the first round then runs its own pass."""
    x, y = digits_tensors
    augmented, plain = InMemory(x + 0.01, y), InMemory(x, y)
    selector = GraftSelector(fraction=0.2, reuse_warmup=True)
    sampler = SubsetSampler(
        selector, augmented, make_mlp(0), schedule=SubsetSchedule(1, 2), selection_dataset=plain
    )
    assert not any(sampler.records_epoch(e) for e in range(4))
