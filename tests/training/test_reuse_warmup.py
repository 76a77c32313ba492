"""``selection.reuse_warmup`` in the training loop: the last warm-up epoch serves round 1 only."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from graft_hpo.selection import GraftSelector

from .test_loop import Recorder
from .test_loop import _run

_FORWARD = GraftSelector._forward  # the round's own pass, unwrapped
# the digits recipe, shortened: warm-up epochs 0-1, rounds at epochs 2 and 5
_RECIPE = [
    "selection.strategy=graft",
    "selection.fraction=0.2",
    "selection.warm_start_epochs=2",
    "selection.select_every=3",
    "train.epochs=6",
]


def _rounds(overrides: list[str], monkeypatch: pytest.MonkeyPatch) -> tuple[Any, ...]:
    """The run's result, its selections and the samples each of its own forward passes saw,
    by the epoch they ran in."""
    recorder = Recorder()
    passes: list[tuple[int, int]] = []

    def spy(self: GraftSelector, model: nn.Module, dataset: Any, chunk: Any, device: Any) -> Any:
        epoch = sum(kind == "epoch" for kind, _ in recorder.events)  # epochs done so far
        passes.append((epoch, sum(len(c) for c in chunk)))
        return _FORWARD(self, model, dataset, chunk, device)

    monkeypatch.setattr(GraftSelector, "_forward", spy)
    result, bundle, _ = _run([*_RECIPE, *overrides], hooks=[recorder])
    return result, recorder.selections, passes, len(bundle.train)


def test_reuse_skips_round_ones_pass_only_and_trains(monkeypatch: pytest.MonkeyPatch) -> None:
    result, selections, passes, n = _rounds(["selection.reuse_warmup=true"], monkeypatch)
    assert passes == [(5, n)]  # round 2 (epoch 5) forwards every candidate; round 1 none
    assert len(selections) == 2
    assert result.metrics["selection_s"] > 0  # the recording is counted as selection time
    assert result.metrics["val_acc"] > 0.7
    _, _, plain, _ = _rounds([], monkeypatch)
    assert plain == [(2, n), (5, n)]


def test_a_frozen_model_without_batchnorm_or_dropout_selects_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Where the training pass computes what the eval pass does (an MLP without dropout, a
    learning rate too small to move a weight), reusing it changes no selection."""
    frozen = ["model.name=mlp", "train.lr=1e-30"]
    _, reused, passes, n = _rounds([*frozen, "selection.reuse_warmup=true"], monkeypatch)
    _, own, _, _ = _rounds(frozen, monkeypatch)
    assert passes == [(5, n)]
    assert [len(s.indices) for s in reused] == [len(s.indices) for s in own]
    for a, b in zip(reused, own, strict=True):
        assert torch.equal(a.indices, b.indices)


def test_without_a_warm_up_epoch_round_one_runs_its_own_pass(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    overrides = ["selection.reuse_warmup=true", "selection.warm_start_epochs=0"]
    _, selections, passes, n = _rounds(overrides, monkeypatch)
    assert passes == [(0, n), (3, n)]  # rounds at epochs 0 and 3, each its own pass
    assert len(selections) == 2
