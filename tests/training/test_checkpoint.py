"""A training run stopped after an epoch and resumed from its loop state ends where an
uninterrupted run ends: the same weights and metrics, bit for bit, on the CPU."""

from __future__ import annotations

import io

import pytest
import torch

from graft_hpo.selection import InfoBatchSelector
from graft_hpo.training import TrainHooks
from graft_hpo.training import TrainState
from graft_hpo.training._checkpoint import restore_loop
from tests.training.test_loop import _run

_TIMES = {"epoch_s", "selection_s", "train_s"}  # wall-clock: differ run to run


class _StopAndSave(TrainHooks):
    """Checkpoints the loop after epoch ``at`` (through ``torch.save``, as a trial does) and
    stops training there, as a lost worker would."""

    def __init__(self, at: int) -> None:
        self.at = at
        self.saved: bytes | None = None

    def on_epoch_end(self, state: TrainState, metrics: dict[str, float]) -> None:
        if state.epoch == self.at:
            buffer = io.BytesIO()
            torch.save(state.snapshot(), buffer)
            self.saved = buffer.getvalue()
            state.should_stop = True


def _train(overrides: list[str], *, hooks=(), resume=None):
    result, _, model = _run(["train.epochs=5", *overrides], hooks=hooks, resume=resume)
    return result, model


def _without_times(history: list[dict[str, float]]) -> list[dict[str, float]]:
    return [{k: v for k, v in epoch.items() if k not in _TIMES} for epoch in history]


@pytest.mark.parametrize(
    "overrides",
    [
        # a checkpoint between two selections: the resumed epoch trains on the saved subset
        ["selection.strategy=graft", "selection.warm_start_epochs=1", "selection.select_every=2"],
        ["selection.strategy=infobatch"],  # the recorded losses decide the next epoch's prune
        ["selection.strategy=random", "train.optimizer=adamw"],
    ],
    ids=["graft", "infobatch", "random-adamw"],
)
def test_resumed_run_ends_bit_identical_to_an_uninterrupted_one(overrides: list[str]) -> None:
    whole, whole_model = _train(overrides)
    stop = _StopAndSave(at=1)
    _train(overrides, hooks=[stop])
    assert stop.saved is not None
    saved = torch.load(io.BytesIO(stop.saved), weights_only=True)
    resumed, resumed_model = _train(overrides, resume=saved)

    assert len(resumed.history) == len(whole.history) == 5
    assert _without_times(resumed.history) == _without_times(whole.history)
    for name, tensor in whole_model.state_dict().items():
        assert torch.equal(tensor, resumed_model.state_dict()[name]), name
    assert resumed.metrics["epochs_completed"] == 5.0
    assert resumed.metrics["fraction_effective"] == whole.metrics["fraction_effective"]


def test_a_resumed_run_goes_on_from_the_next_epoch() -> None:
    stop = _StopAndSave(at=2)
    _train(["selection.strategy=random"], hooks=[stop])
    epochs: list[int] = []

    class Seen(TrainHooks):
        def on_epoch_end(self, state: TrainState, metrics: dict[str, float]) -> None:
            epochs.append(state.epoch)

    saved = torch.load(io.BytesIO(stop.saved or b""), weights_only=True)
    _train(["selection.strategy=random"], hooks=[Seen()], resume=saved)
    assert epochs == [3, 4]


def test_a_state_of_another_format_is_refused() -> None:
    with pytest.raises(ValueError, match="not a training-loop state of format 1: got 0"):
        restore_loop({"format": 0}, model=None, optimizer=None, sampler=None, progress=None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="got 'list'"):
        restore_loop([], model=None, optimizer=None, sampler=None, progress=None)  # type: ignore[arg-type]


def test_infobatch_state_round_trips_and_follows_the_device() -> None:
    selector = InfoBatchSelector(prune_ratio=0.5, anneal=0.0, epochs=4)
    selector.record_losses(torch.tensor([0, 2]), torch.tensor([0.5, 2.0]))
    copy = InfoBatchSelector(prune_ratio=0.5, anneal=0.0, epochs=4)
    copy.load_state_dict(selector.state_dict())
    assert copy.state_dict()["epoch"] == 0
    assert torch.equal(copy.state_dict()["scores"], torch.tensor([0.5, float("inf"), 2.0]))
    copy.record_losses(torch.tensor([1]), torch.tensor([1.0]))  # grows from the restored table
    assert torch.equal(copy.state_dict()["scores"], torch.tensor([0.5, 1.0, 2.0]))
