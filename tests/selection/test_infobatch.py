"""InfoBatch against its definition: who may be pruned, the scale, the annealed epochs."""

from __future__ import annotations

import math
import re

import pytest
import torch

from graft_hpo.config import load_pipeline
from graft_hpo.data import InMemoryDataset
from graft_hpo.exceptions import ConfigError
from graft_hpo.selection import InfoBatchSelector
from graft_hpo.selection import SubsetSchedule
from graft_hpo.selection import get_selector

from ._data import make_mlp

LOSSES = torch.tensor([0.1, 0.2, 0.3, 0.4, 1.0, 2.0, 3.0])  # sample 7 is never seen


def _data(n: int = 8) -> InMemoryDataset:
    return InMemoryDataset(torch.zeros(n, 64), torch.arange(n) % 10)


def _selector(**kwargs: float) -> InfoBatchSelector:
    selector = InfoBatchSelector(**{"prune_ratio": 0.5, "anneal": 0.25, "epochs": 8, **kwargs})
    selector.record_losses(torch.arange(7), LOSSES)
    return selector


def test_hand_worked_epoch() -> None:
    # mean of the seen losses = 7.0 / 7 = 1.0: samples 0-3 are below it, half of them (2) are
    # pruned, chosen by the generator; the two kept ones are scaled by 1 / (1 - 0.5) = 2
    selection = _selector().select(make_mlp(), _data(), generator=torch.Generator().manual_seed(3))
    below = torch.arange(4)
    pruned = below[torch.randperm(4, generator=torch.Generator().manual_seed(3))[:2]]
    expected = [i for i in range(8) if i not in pruned.tolist()]
    assert selection.indices.tolist() == expected
    assert selection.weights is not None
    scale = {i: (2.0 if i < 4 else 1.0) for i in expected}  # 4-6 high-loss, 7 unseen: 1
    assert selection.weights.tolist() == [scale[i] for i in expected]
    assert selection.fraction == 6 / 8 and selection.stats["pruned"] == 2


def test_the_expected_weighted_loss_is_the_full_loss() -> None:
    # the point of the rescaling: averaged over the random pruning, sum_kept w_i l_i = sum_i l_i
    total = 0.0
    draws = 4000
    for seed in range(draws):
        selection = _selector().select(
            make_mlp(), _data(7), generator=torch.Generator().manual_seed(seed)
        )
        total += float((LOSSES[selection.indices] * selection.weights).sum())
    assert total / draws == pytest.approx(float(LOSSES.sum()), rel=0.01)


def test_the_last_anneal_share_of_epochs_trains_on_everything() -> None:
    selector = _selector(anneal=0.25)  # 8 epochs: epochs 6 and 7 are annealed
    assert selector.first_annealed_epoch == 6
    sizes = []
    for _ in range(8):
        selection = selector.select(make_mlp(), _data(), generator=torch.Generator())
        sizes.append(len(selection.indices))
        assert (selection.weights is None) == (len(selection.indices) == 8)
    assert sizes == [6] * 6 + [8, 8]


def test_nothing_seen_or_nothing_to_prune_trains_on_everything() -> None:
    fresh = InfoBatchSelector(prune_ratio=0.7, epochs=4)
    assert len(fresh.select(make_mlp(), _data(), generator=torch.Generator()).indices) == 8
    assert len(_selector(prune_ratio=0.0).select(make_mlp(), _data()).indices) == 8


def test_an_epoch_that_prunes_nothing_is_unweighted() -> None:
    # one sample below the mean: round(0.5 * 1) = 0 pruned, so nothing is rescaled either
    selector = InfoBatchSelector(prune_ratio=0.5, epochs=4)
    selector.record_losses(torch.arange(3), torch.tensor([0.1, 1.0, 1.1]))
    selection = selector.select(make_mlp(), _data(3), generator=torch.Generator())
    assert selection.indices.tolist() == [0, 1, 2]
    assert selection.weights is None and selection.stats["pruned"] == 0.0


def test_losses_are_recorded_where_they_are_and_overwritten() -> None:
    selector = InfoBatchSelector(epochs=2)
    selector.record_losses(torch.tensor([5, 1]), torch.tensor([2.0, 3.0]))
    selector.record_losses(torch.tensor([1]), torch.tensor([0.5]))  # the latest counts
    assert selector._scores is not None
    assert selector._scores.tolist() == [math.inf, 0.5, math.inf, math.inf, math.inf, 2.0]
    # the selector keeps its own epochs' schedule, whatever the pipeline configured
    assert selector.schedule(SubsetSchedule(3, 5)) == SubsetSchedule(0, 1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"prune_ratio": 1.0}, "prune_ratio must be in [0, 1)"),
        ({"prune_ratio": -0.1}, "prune_ratio must be in [0, 1)"),
        ({"anneal": 1.5}, "anneal must be in [0, 1]"),
    ],
)
def test_bad_knobs_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        get_selector("infobatch", **kwargs)


def test_a_training_run_prunes_then_anneals() -> None:
    from graft_hpo.data import load_data
    from graft_hpo.models import build_model
    from graft_hpo.training import train

    config = load_pipeline(
        "digits",
        [
            "emissions.enabled=false",
            "train.device=cpu",
            "train.epochs=8",
            "selection.strategy=infobatch",
            "selection.prune_ratio=0.5",
            "selection.anneal=0.25",
        ],
    )
    bundle = load_data(config.data, seed=0)
    torch.manual_seed(0)
    model = build_model(config.model, input_shape=bundle.input_shape, num_classes=10)
    result = train(model, train_set=bundle.train, val_set=bundle.val, config=config)
    seen = [m["fraction_effective"] for m in result.history]
    assert seen[0] == 1.0  # no loss recorded yet: nothing to prune
    assert all(0.5 < f < 1.0 for f in seen[1:6])  # up to half of the below-mean half pruned
    assert seen[6:] == [1.0, 1.0]  # annealed
    assert result.metrics["val_acc"] > 0.8


@pytest.mark.parametrize(
    ("anneal", "epochs", "annealed"),
    [(0.29, 100, 29), (0.57, 100, 57), (0.7, 90, 63), (0.35, 180, 63)],
)
def test_the_annealed_share_is_the_decimal_the_knob_prints_as(
    anneal: float, epochs: int, annealed: int
) -> None:
    # in binary floats 0.29 * 100 is 28.999...: a float floor would anneal 28 epochs
    selector = InfoBatchSelector(anneal=anneal, epochs=epochs)
    assert epochs - selector.first_annealed_epoch == annealed


def test_knobs_of_the_wrong_type_are_refused_in_one_line() -> None:
    with pytest.raises(ConfigError, match=r"selection\.fraction must be a number; got True$"):
        get_selector("random", fraction=True)
    with pytest.raises(ConfigError, match=r"train\.epochs must be an integer; got 2\.5$"):
        get_selector("infobatch", epochs=2.5)
    with pytest.raises(ConfigError, match=r"selection\.anneal must be a number; got 'x'$"):
        get_selector("infobatch", anneal="x")


def test_a_loop_that_records_no_loss_or_too_few_epochs_is_told(
    caplog: pytest.LogCaptureFixture,
) -> None:
    data, model = _data(), make_mlp(0)
    selector = InfoBatchSelector(prune_ratio=0.5, epochs=4)
    with caplog.at_level("WARNING", logger="graft_hpo.selection._infobatch"):
        for _ in range(3):  # nothing recorded: every epoch whole, and said once
            assert selector.select(model, data).fraction == 1.0
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1 and "no training loss recorded, so epoch 1 trains" in said[0]
    caplog.clear()
    selector = _selector(epochs=2)  # a loop of more epochs than it was told
    with caplog.at_level("WARNING", logger="graft_hpo.selection._infobatch"):
        for _ in range(4):
            selector.select(model, data)
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1 and said[0].startswith("infobatch was built for epochs=2 and is sel")
