"""The training loop on real digits: schedule, subsets, hooks, failure on non-finite loss."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from graft_hpo.config import load_pipeline
from graft_hpo.data import load_data
from graft_hpo.exceptions import TrialFailedError
from graft_hpo.models import build_model
from graft_hpo.selection import Selection
from graft_hpo.training import TrainHooks
from graft_hpo.training import TrainState
from graft_hpo.training import train
from graft_hpo.training._loop import _cosine_lr


def _run(overrides: list[str], hooks=(), resume=None, on_model=None):
    config = load_pipeline("digits", ["emissions.enabled=false", "train.device=cpu", *overrides])
    bundle = load_data(config.data, seed=config.train.seed)
    torch.manual_seed(config.train.seed)
    model = build_model(
        config.model, input_shape=bundle.input_shape, num_classes=bundle.num_classes
    )
    if on_model is not None:
        on_model(model)
    result = train(
        model,
        train_set=bundle.train,
        val_set=bundle.val,
        selection_set=bundle.train_eval,
        config=config,
        hooks=hooks,
        resume=resume,
    )
    return result, bundle, model


class Recorder(TrainHooks):
    def __init__(self) -> None:
        self.events: list[tuple[str, int]] = []
        self.selections: list[Selection] = []

    def on_train_start(self, state: TrainState) -> None:
        self.events.append(("start", state.epoch))

    def on_selection_end(self, state: TrainState, selection: Selection) -> None:
        self.events.append(("select", state.epoch))
        self.selections.append(selection)

    def on_epoch_end(self, state: TrainState, metrics: dict[str, float]) -> None:
        self.events.append(("epoch", state.epoch))

    def on_train_end(self, state: TrainState) -> None:
        self.events.append(("end", state.epoch))


def test_full_data_learns_digits() -> None:
    result, _, _ = _run(["selection.strategy=full", "train.epochs=3"])
    assert result.metrics["val_acc"] > 0.85  # 10 classes: chance is 0.1
    assert result.metrics["fraction_effective"] == 1.0
    assert result.metrics["epochs_completed"] == 3
    assert [h["fraction_effective"] for h in result.history] == [1.0, 1.0, 1.0]


def test_graft_follows_the_schedule_and_budget() -> None:
    recorder = Recorder()
    result, bundle, _ = _run(
        [
            "selection.strategy=graft",
            "selection.fraction=0.3",
            "selection.warm_start_epochs=1",
            "selection.select_every=2",
            "train.epochs=5",
        ],
        hooks=[recorder],
    )
    n = len(bundle.train)
    # selection at epochs 1 and 3 (warm start 1, every 2), hooks in order
    assert [e for e in recorder.events if e[0] == "select"] == [("select", 1), ("select", 3)]
    assert recorder.events[0] == ("start", 0) and recorder.events[-1] == ("end", 4)
    fractions = [h["fraction_effective"] for h in result.history]
    assert fractions[0] == 1.0
    for f, sel in zip(fractions[1:3], [recorder.selections[0]] * 2, strict=True):
        assert f == pytest.approx(len(sel.indices) / n)
    assert all(f <= math.floor(0.3 * n) / n for f in fractions[1:])
    assert result.metrics["selection_s"] > 0
    assert result.metrics["fraction_effective"] == pytest.approx(sum(fractions) / 5)
    assert result.metrics["val_acc"] > 0.7


def test_weighted_graft_trains() -> None:
    result, _, _ = _run(["selection.weighted=true", "train.epochs=3"])
    assert math.isfinite(result.metrics["train_loss"])
    assert result.metrics["val_acc"] > 0.5


def test_a_hook_can_stop_training() -> None:
    class StopAtOne(TrainHooks):
        def on_epoch_end(self, state: TrainState, metrics: dict[str, float]) -> None:
            if state.epoch == 1:
                state.should_stop, state.stop_reason = True, "budget reached"

    result, _, _ = _run(["train.epochs=6"], hooks=[StopAtOne()])
    assert len(result.history) == 2
    assert result.stop_reason == "budget reached"
    assert result.metrics["epochs_completed"] == 2


def test_non_finite_loss_fails_the_run() -> None:
    with pytest.raises(TrialFailedError, match="training loss became nan in epoch 0"):
        _run(["model.name=tests.plugins.failing:nan_after", "train.epochs=2"])


def test_same_seed_same_result() -> None:
    a, _, _ = _run(["train.epochs=2"])
    b, _, _ = _run(["train.epochs=2"])
    assert a.history[-1]["val_loss"] == b.history[-1]["val_loss"]


def test_cosine_schedule_endpoints() -> None:
    assert _cosine_lr(0.1, 0.0) == pytest.approx(0.1)
    assert _cosine_lr(0.1, 0.5) == pytest.approx(0.05)
    assert _cosine_lr(0.1, 1.0) == pytest.approx(0.0, abs=1e-12)
    assert _cosine_lr(0.1, 1.5) == pytest.approx(0.0, abs=1e-12)  # clamped past the end


def test_eval_every_validates_every_n_epochs_and_after_the_last() -> None:
    result, _, _ = _run(["train.epochs=5", "train.eval_every=2"])
    evaluated = [i for i, m in enumerate(result.history) if "val_acc" in m]
    assert evaluated == [1, 3, 4]  # epochs 2 and 4, then the last
    assert all("train_loss" in m for m in result.history)
    assert result.metrics["val_acc"] == result.history[-1]["val_acc"]


def test_a_hook_can_ask_for_validation_after_given_epochs() -> None:
    class Rungs(TrainHooks):  # what an early-stopping scheduler's reporter does
        def on_train_start(self, state: TrainState) -> None:
            state.eval_at |= {1, 3}

    result, _, _ = _run(["train.epochs=5", "train.eval_every=4"], hooks=[Rungs()])
    evaluated = [i for i, m in enumerate(result.history) if "val_acc" in m]
    assert evaluated == [0, 2, 3, 4]  # asked after 1 and 3, every 4th, then the last


def test_cpu_training_runs_channels_last_and_computes_the_same_model() -> None:
    """On the CPU images and conv weights are channels_last (faster there); the layout must not
    change the arithmetic: the same seeded run in torch's default layout
    (``train.memory_format=contiguous``) trains the same model."""
    from graft_hpo.data import InMemoryDataset

    g = torch.Generator().manual_seed(0)
    images = InMemoryDataset(torch.rand(96, 1, 28, 28, generator=g), torch.arange(96) % 10)
    overrides = ["emissions.enabled=false", "train.device=cpu", "train.epochs=2"]
    overrides += ["train.batch_size=32", "selection.warm_start_epochs=1", "selection.fraction=0.5"]
    config = load_pipeline("mnist", [*overrides, "model.options.width=16"])

    def trained(layout: str) -> torch.nn.Module:
        torch.manual_seed(0)
        model = build_model(config.model, input_shape=(1, 28, 28), num_classes=10)
        cfg = replace(config, train=replace(config.train, memory_format=layout))
        train(model, train_set=images, val_set=images, config=cfg)
        return model

    fast = trained("auto")
    conv = [m for m in fast.modules() if isinstance(m, torch.nn.Conv2d)][-1]  # C_in > 1
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert not conv.weight.is_contiguous()  # really the other layout

    default = trained("contiguous")
    conv = [m for m in default.modules() if isinstance(m, torch.nn.Conv2d)][-1]
    assert conv.weight.is_contiguous()
    for (name, a), b in zip(fast.state_dict().items(), default.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=name)


def test_a_last_batch_of_one_sample_joins_the_one_before() -> None:
    """digits' 1,079 training samples in batches of 98 leave one over: BatchNorm1d cannot
    train on it (the trial failed); it joins the batch before, so every sample still counts."""
    sizes: list[int] = []

    def record(module: torch.nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        if module.training:
            sizes.append(len(inputs[0]))

    overrides = ["selection.strategy=full", "train.epochs=1", "train.batch_size=98"]
    overrides += ["search.space=null", "model.name=tests.plugins.toy:bn_mlp"]
    result, bundle, _ = _run(overrides, on_model=lambda m: m.register_forward_pre_hook(record))
    assert result.metrics["epochs_completed"] == 1
    assert len(bundle.train) % 98 == 1 and sum(sizes) == len(bundle.train)
    assert sizes == [98] * 10 + [99]  # 11 batches of 98 and 1: the last two join
