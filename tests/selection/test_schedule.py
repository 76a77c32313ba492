"""SubsetSchedule truth tables and the SubsetSampler that follows them."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader
from torch.utils.data import Dataset

from graft_hpo.selection import GraftSelector
from graft_hpo.selection import InfoBatchSelector
from graft_hpo.selection import Phase
from graft_hpo.selection import RandomSelector
from graft_hpo.selection import Selection
from graft_hpo.selection import SubsetSampler
from graft_hpo.selection import SubsetSchedule

from ._data import InMemory
from ._data import make_mlp

F, S, s = ("full", False), ("subset", True), ("subset", False)  # s: keep the current subset


@pytest.mark.parametrize(
    ("warm", "every", "table"),
    [
        (0, 1, [S, S, S, S, S, S, S, S, S, S]),
        (0, 4, [S, s, s, s, S, s, s, s, S, s]),
        (1, 2, [F, S, s, S, s, S, s, S, s, S]),
        (3, 3, [F, F, F, S, s, s, S, s, s, S]),
        (2, 1, [F, F, S, S, S, S, S, S, S, S]),
        (10, 5, [F] * 10),
        (0, 20, [S] + [s] * 9),
    ],
)
def test_schedule_truth_table(warm: int, every: int, table: list[tuple[str, bool]]) -> None:
    schedule = SubsetSchedule(warm_start_epochs=warm, select_every=every)
    got = [schedule.phase(epoch) for epoch in range(10)]
    assert got == [Phase(kind, resample) for kind, resample in table]


def test_schedule_defaults_select_every_epoch() -> None:
    assert SubsetSchedule().phase(0) == Phase("subset", resample=True)
    assert SubsetSchedule().phase(7) == Phase("subset", resample=True)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"warm_start_epochs": -1},
            r"selection.warm_start_epochs must be in \[0, 100000\]; got -1",
        ),
        ({"select_every": 0}, r"selection.select_every must be in \[1, 100000\]; got 0"),
        ({"select_every": -3}, r"selection.select_every must be in \[1, 100000\]; got -3"),
    ],
)
def test_schedule_invalid_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SubsetSchedule(**kwargs)


def test_schedule_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        SubsetSchedule().select_every = 3  # type: ignore[misc]


class CountingSelector(RandomSelector):
    """A random selector that records what it was asked to select from, and when."""

    def __init__(self, *, fraction: float = 0.3) -> None:
        super().__init__(fraction=fraction)
        self.calls: list[Dataset[Any]] = []

    def select(
        self,
        model: nn.Module,
        dataset: Dataset[Any],
        *,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> Selection:
        self.calls.append(dataset)
        return super().select(model, dataset, generator=generator, device=device)


@pytest.mark.parametrize(("warm", "every"), [(0, 1), (2, 3), (1, 2), (3, 10)])
def test_sampler_follows_the_schedule(digits: InMemory, warm: int, every: int) -> None:
    n = len(digits)
    schedule = SubsetSchedule(warm_start_epochs=warm, select_every=every)
    selector = CountingSelector(fraction=0.1)
    plain = InMemory(*digits.tensors)  # the un-augmented copy used for scoring
    sampler = SubsetSampler(
        selector,
        digits,
        make_mlp(0),
        schedule=schedule,
        selection_dataset=plain,
        generator=torch.Generator().manual_seed(0),
    )
    current = None
    for epoch in range(10):
        calls_before = len(selector.calls)
        made = sampler.set_epoch(epoch)
        phase = schedule.phase(epoch)
        assert len(selector.calls) == calls_before + int(phase.resample)
        assert (made is not None) == phase.resample
        if made is not None:
            assert made is sampler.selection
            current = made
        order = list(sampler)
        assert len(order) == len(sampler)
        if phase.kind == "full":
            assert sorted(order) == list(range(n))
        else:
            assert current is not None
            assert sorted(order) == current.indices.tolist()  # each selected index once
            assert len(sampler) == 179
    expected_calls = len([e for e in range(10) if schedule.phase(e).resample])
    assert len(selector.calls) == expected_calls
    assert all(dataset is plain for dataset in selector.calls)


def test_sampler_reselection_changes_the_subset(digits: InMemory) -> None:
    sampler = SubsetSampler(
        RandomSelector(fraction=0.1),
        digits,
        make_mlp(0),
        generator=torch.Generator().manual_seed(0),
    )
    first = sampler.set_epoch(0)
    second = sampler.set_epoch(1)
    assert first is not None and second is not None
    assert not torch.equal(first.indices, second.indices)


def test_sampler_shuffles_every_epoch_and_is_seeded(digits: InMemory) -> None:
    def orders() -> list[list[int]]:
        sampler = SubsetSampler(
            CountingSelector(fraction=0.2),
            digits,
            make_mlp(0),
            schedule=SubsetSchedule(warm_start_epochs=1, select_every=100),
            generator=torch.Generator().manual_seed(7),
        )
        out = []
        for epoch in range(3):
            sampler.set_epoch(epoch)
            out.append(list(sampler))
        return out

    a, b = orders(), orders()
    assert a == b
    assert a[1] != a[2] and sorted(a[1]) == sorted(a[2])  # same subset, reshuffled
    assert a[0] != sorted(a[0])


def test_sampler_before_any_epoch_yields_everything(digits: InMemory) -> None:
    sampler = SubsetSampler(RandomSelector(fraction=0.1), digits, make_mlp(0))
    assert sampler.selection is None
    assert len(sampler) == len(digits)
    assert sorted(sampler) == list(range(len(digits)))


def test_sampler_selects_on_a_subset_epoch_that_is_not_a_resample_epoch(digits: InMemory) -> None:
    # resuming at epoch 5 of a select-every-3 schedule: there is no subset yet, so select now
    selector = CountingSelector(fraction=0.1)
    sampler = SubsetSampler(selector, digits, make_mlp(0), schedule=SubsetSchedule(select_every=3))
    assert sampler.set_epoch(5) is not None
    assert len(selector.calls) == 1
    assert sampler.set_epoch(6) is not None
    assert sampler.set_epoch(7) is None
    assert len(selector.calls) == 2


def test_sampler_drives_a_dataloader_with_graft(digits: InMemory) -> None:
    model = make_mlp(1)
    sampler = SubsetSampler(
        GraftSelector(fraction=0.2, batch_size=64),
        digits,
        model,
        schedule=SubsetSchedule(warm_start_epochs=1, select_every=2),
        generator=torch.Generator().manual_seed(0),
    )
    loader = DataLoader(digits, batch_size=128, sampler=sampler)
    y_all = digits.tensors[1]
    seen_per_epoch = []
    for epoch in range(3):
        sampler.set_epoch(epoch)
        seen = sum(len(x) for x, _ in loader)
        seen_per_epoch.append(seen)
    assert seen_per_epoch[0] == len(digits)
    assert sampler.selection is not None
    assert seen_per_epoch[1] == seen_per_epoch[2] == len(sampler.selection.indices)
    assert 0 < seen_per_epoch[1] <= 359
    # the loader serves exactly the selected samples: read their ids through the same sampler
    ids = InMemory(torch.arange(len(digits))[:, None], y_all)
    served = torch.cat([i for i, _ in DataLoader(ids, batch_size=128, sampler=sampler)])
    assert served.flatten().sort().values.tolist() == sampler.selection.indices.tolist()


class WeightedRandom(RandomSelector):
    """Random subsets whose i-th selected sample weighs i + 1."""

    def select(self, model: nn.Module, dataset: Dataset[Any], **kwargs: Any) -> Selection:
        sel = super().select(model, dataset, **kwargs)
        return dataclasses.replace(sel, weights=torch.arange(1.0, len(sel.indices) + 1))


def test_sampler_weights_follow_the_schedules_phase(digits: InMemory) -> None:
    # the loop's loss weights come from the sampler, which asks the schedule: none in a full
    # epoch (even with a weighted subset in hand), the subset's in a subset epoch
    schedule = SubsetSchedule(warm_start_epochs=1, select_every=2)
    sampler = SubsetSampler(WeightedRandom(fraction=0.1), digits, make_mlp(0), schedule=schedule)
    assert sampler.current_weights() is None and sampler.phase == Phase("full", False)
    sampler.set_epoch(0)
    assert sampler.current_weights() is None
    for epoch in (1, 2):
        sampler.set_epoch(epoch)
        assert sampler.phase == schedule.phase(epoch)
        table = sampler.current_weights()
        assert sampler.selection is not None and sampler.selection.weights is not None
        assert table is not None and table.shape == (len(digits),)
        assert torch.equal(table[sampler.selection.indices], sampler.selection.weights)
        assert int((table > 0).sum()) == len(sampler.selection.indices)
    unweighted = SubsetSampler(RandomSelector(fraction=0.1), digits, make_mlp(0))
    unweighted.set_epoch(0)
    assert unweighted.phase.kind == "subset" and unweighted.current_weights() is None


def test_sampler_takes_a_strategys_own_schedule(digits: InMemory) -> None:
    # InfoBatch prunes anew every epoch: a user's (1, 2) schedule must not hold its subset
    selector = InfoBatchSelector(prune_ratio=0.5, anneal=0.25, epochs=8)
    sampler = SubsetSampler(selector, digits, make_mlp(0), schedule=SubsetSchedule(1, 2))
    assert sampler.schedule == SubsetSchedule(warm_start_epochs=0, select_every=1)
    sizes = []
    for epoch in range(8):
        sampler.set_epoch(epoch)
        sizes.append(len(sampler))
        index = torch.tensor(list(sampler))
        selector.record_losses(index, torch.linspace(0.0, 1.0, len(index)))  # a fake epoch
    assert sizes[0] == len(digits)  # nothing recorded yet
    assert all(size < len(digits) for size in sizes[1:6])  # pruned every epoch, not every 2nd
    assert len(set(sizes[1:6])) > 1
    assert sizes[6:] == [len(digits), len(digits)]  # the annealed last quarter


class _Returns(RandomSelector):
    """A plug-in selector returning a fixed, possibly broken, selection."""

    def __init__(self, indices: Any, weights: Any = None) -> None:
        super().__init__(fraction=0.5)
        self.indices, self.weights = indices, weights

    def select(self, model: nn.Module, dataset: Dataset, **kwargs: Any) -> Selection:
        return Selection(self.indices, self.weights, 0.5)


@pytest.mark.parametrize(
    ("indices", "weights", "problem"),
    [
        (torch.zeros(200, dtype=torch.long), None, "returned 199 repeated indices"),
        (torch.arange(-100, 0), None, "returned indices from -100 to -1"),
        (torch.arange(10, 20_000), None, "returned indices from 10 to 19999"),
        (torch.arange(0, 5, 0.5), None, "returned indices of dtype torch.float32 and shape (10,)"),
        ([1, 2, 3], None, "returned indices of type list, not a tensor"),
        (torch.arange(0), None, "returned no index"),
        (torch.arange(10), -torch.ones(10), "returned weights that are negative or not finite"),
        (torch.arange(10), torch.ones(9), "returned weights of shape (9,) for 10 indices"),
    ],
)
def test_sampler_refuses_a_selection_that_breaks_its_contract(
    digits: InMemory, indices: Any, weights: Any, problem: str
) -> None:
    from graft_hpo.exceptions import TrialFailedError

    sampler = SubsetSampler(_Returns(indices, weights), digits, make_mlp(0))
    with pytest.raises(TrialFailedError) as caught:
        sampler.set_epoch(0)
    message = str(caught.value)
    assert message.startswith(f"selector 'random' {problem}; a Selection holds distinct int64")
    assert f"in [0, {len(digits)})" in message and "\n" not in message
    assert sampler.selection is None  # nothing half-taken
