"""One readable training loop with GRAFT subsets; it knows no Ray, MLflow or codecarbon.

Everything a trial adds (Ray reporting, MLflow logging, budgets) enters through
:class:`TrainHooks`; the loop itself reads top to bottom.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from graft_hpo._names import EPOCH_S
from graft_hpo._names import EPOCHS_COMPLETED
from graft_hpo._names import FRACTION_EFFECTIVE
from graft_hpo._names import SELECTION_S
from graft_hpo._names import TRAIN_LOSS
from graft_hpo._names import TRAIN_S
from graft_hpo._names import VAL_ACC
from graft_hpo._torch import batch_count
from graft_hpo._torch import iter_batches
from graft_hpo._torch import memory_format_for
from graft_hpo._torch import to_device
from graft_hpo.config import PipelineConfig
from graft_hpo.config import TrainConfig
from graft_hpo.data import device_budget_bytes
from graft_hpo.data import place_on_device
from graft_hpo.exceptions import TrialFailedError
from graft_hpo.selection import Selection
from graft_hpo.selection import Selector
from graft_hpo.selection import SubsetSampler
from graft_hpo.selection import SubsetSchedule
from graft_hpo.selection import selector_for
from graft_hpo.training._checkpoint import loop_state
from graft_hpo.training._checkpoint import restore_loop

logger = logging.getLogger(__name__)


@dataclass
class TrainState:
    """Mutable progress of one training run, shared with the hooks.

    A hook stops training early by setting ``should_stop`` (and, if it wants the reason
    recorded, ``stop_reason``). At an epoch's end a hook checkpoints the loop with
    ``snapshot()`` (:func:`~graft_hpo.training._checkpoint.loop_state`; ``train(resume=...)``
    takes it back).
    """

    epoch: int = 0  # 0-based epoch in progress (or just finished, in on_epoch_end)
    step: int = 0  # optimizer steps so far
    samples_seen: int = 0  # training samples processed so far (subset epochs count less)
    selection_s: float = 0.0  # seconds spent selecting subsets so far
    history: list[dict[str, float]] = field(default_factory=list)  # one dict per epoch
    # 1-based epoch counts after which to validate too, besides every train.eval_every and the
    # last; a hook adds to it in on_train_start (an early-stopping scheduler's rungs)
    eval_at: set[int] = field(default_factory=set)
    should_stop: bool = False
    stop_reason: str | None = None
    snapshot: Callable[[], dict[str, Any]] = field(default=dict, repr=False, compare=False)


class TrainHooks:
    """No-op callbacks; override the ones you need. Called in this order:
    ``on_train_start``, then per epoch ``on_selection_end`` (when a subset was re-selected) and
    ``on_epoch_end``, and ``on_train_end`` once training ends for any reason but an exception."""

    def on_train_start(self, state: TrainState) -> None:
        """Before the first epoch."""

    def on_selection_end(self, state: TrainState, selection: Selection) -> None:
        """After a new subset was selected, before the epoch trains on it."""

    def on_epoch_end(self, state: TrainState, metrics: dict[str, float]) -> None:
        """After an epoch's training and validation; ``metrics`` is also in ``state.history``."""

    def on_train_end(self, state: TrainState) -> None:
        """After the last epoch (or an early stop)."""


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train` returns: the last epoch's metrics plus whole-run totals."""

    metrics: dict[str, float]  # val_acc, val_loss, train_loss, selection_s, fraction_effective,
    # epochs_completed, train_s
    history: list[dict[str, float]]
    stop_reason: str | None


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA if available, else CPU; otherwise the named device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise TrialFailedError(f"train.device is {name!r} but CUDA is not available here")
    return device


def _cosine_lr(base: float, progress: float) -> float:
    """Cosine decay from ``base`` to 0 over ``progress`` in [0, 1] (fractional epochs)."""
    return 0.5 * base * (1.0 + math.cos(math.pi * min(progress, 1.0)))


def _optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(
        model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
    )


@torch.no_grad()
def evaluate(
    model: nn.Module,
    dataset: Dataset[Any],
    *,
    batch_size: int,
    device: torch.device,
    memory_format: torch.memory_format | None = None,
) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` on ``dataset`` (image batches in
    ``memory_format``, default :func:`memory_format_for` ``device``)."""
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), device=device, dtype=torch.float64)
    correct = torch.zeros((), device=device, dtype=torch.long)
    n = len(dataset)  # type: ignore[arg-type]
    layout = memory_format or memory_format_for(device)
    for x, y, _ in iter_batches(dataset, torch.arange(n), batch_size):
        x, y = to_device(x, device, layout), y.to(device, non_blocking=True)
        with _autocast(device):
            logits = model(x)
        loss_sum += F.cross_entropy(logits.float(), y, reduction="sum")
        correct += (logits.argmax(dim=1) == y).sum()
    model.train(was_training)
    return float(loss_sum) / max(n, 1), float(correct) / max(n, 1)


def _autocast(device: torch.device) -> contextlib.AbstractContextManager[Any]:
    # bf16 autocast on CUDA (no loss scaling needed); full precision on CPU, where it is faster.
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def train(
    model: nn.Module,
    *,
    train_set: Dataset[Any],
    val_set: Dataset[Any],
    config: PipelineConfig,
    selection_set: Dataset[Any] | None = None,
    hooks: Sequence[TrainHooks] = (),
    device: torch.device | None = None,
    selector: Selector | None = None,
    resume: Mapping[str, Any] | None = None,
) -> TrainResult:
    """Train ``model`` on GRAFT (or random, or full) subsets of ``train_set``.

    Args:
        model: a classifier ending in an ``nn.Linear``.
        train_set: training data (possibly augmented), yielding ``(x, y)``.
        val_set: validation data, evaluated after every epoch.
        config: the pipeline; its ``train`` and ``selection`` sections are used.
        selection_set: ``train_set`` without augmentation, for scoring; defaults to ``train_set``.
        hooks: callbacks (MLflow logging, Ray reporting, budgets).
        device: defaults to ``config.train.device`` resolved.
        selector: chooses the subsets, ready built (``run_trial`` passes the one it checked;
            a sweep's trial, a :class:`PrefixSelector` over the sweep's ranking). None builds
            the one :func:`~graft_hpo.selection.selector_for` decides for ``config``.
        resume: a checkpoint's loop state (``state.snapshot()`` after some epoch): training
            goes on with the next epoch as if it had never stopped.

    Returns:
        The final metrics and per-epoch history.

    Raises:
        TrialFailedError: the loss became NaN or infinite.
        ValueError: ``resume`` is not a loop state this version wrote.
    """
    cfg = config.train
    device = device or resolve_device(cfg.device)
    layout = memory_format_for(device, cfg.memory_format)
    model.to(device)
    model.to(memory_format=layout)
    # compiled for the training step only: selection and validation run the eager model
    forward = torch.compile(model) if cfg.compile else model
    # the data on the GPU when it fits (train.data_on_device): no batch is copied per step
    train_set, val_set, selection_set = place_on_device(
        [train_set, val_set, train_set if selection_set is None else selection_set],
        device,
        max_bytes=device_budget_bytes(device, cfg.data_on_device),
    )
    generator = torch.Generator().manual_seed(cfg.seed)
    selector = selector or selector_for(config.selection, cfg)
    sampler = SubsetSampler(  # the strategy's own schedule where it has one (infobatch)
        selector,
        train_set,
        model,
        schedule=SubsetSchedule(config.selection.warm_start_epochs, config.selection.select_every),
        selection_dataset=selection_set,
        generator=generator,
        device=device,
    )
    optimizer = _optimizer(model, cfg)
    n_train = len(train_set)  # type: ignore[arg-type]
    state = TrainState()
    trained_s = 0.0
    if resume is not None:
        trained_s = restore_loop(
            resume, model=model, optimizer=optimizer, sampler=sampler, progress=state
        )
    start = time.perf_counter() - trained_s
    state.snapshot = lambda: loop_state(
        model, optimizer, sampler, state, train_s=time.perf_counter() - start
    )
    for hook in hooks:
        hook.on_train_start(state)

    for epoch in range(len(state.history), cfg.epochs):
        state.epoch = epoch
        # ---- selection: re-select the subset when the schedule says so
        t0 = time.perf_counter()
        selection = sampler.set_epoch(epoch)
        if selection is not None:
            state.selection_s += time.perf_counter() - t0
            for hook in hooks:
                hook.on_selection_end(state, selection)
        order = torch.tensor(list(iter(sampler)), dtype=torch.long)
        weights = sampler.current_weights()  # None in a full epoch: the schedule's phase

        # ---- one epoch over the current subset
        model.train()
        steps_per_epoch = batch_count(len(order), cfg.batch_size, training=True)
        loss_sum = torch.zeros((), device=device, dtype=torch.float64)
        for i, (x, y, index) in enumerate(
            iter_batches(train_set, order, cfg.batch_size, training=True)
        ):
            if cfg.scheduler == "cosine":
                lr = _cosine_lr(cfg.lr, (epoch + i / steps_per_epoch) / cfg.epochs)
                for group in optimizer.param_groups:
                    group["lr"] = lr
            x, y = to_device(x, device, layout), y.to(device, non_blocking=True)
            with _autocast(device):
                logits = forward(x)
            losses = F.cross_entropy(logits.float(), y, reduction="none")
            selector.record_losses(index, losses.detach())  # infobatch; no host sync
            loss = (
                (losses * weights[index].to(device)).mean()
                if weights is not None
                else losses.mean()
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            loss_sum += loss.detach() * len(y)
            state.step += 1
        # one host sync per epoch, not per step; NaN/inf propagates into the sum
        train_loss = float(loss_sum) / max(len(order), 1)
        if not math.isfinite(train_loss):
            raise TrialFailedError(
                f"training loss became {train_loss} in epoch {epoch} "
                f"(lr={cfg.lr}, optimizer={cfg.optimizer}); the trial is marked failed"
            )
        state.samples_seen += len(order)

        # ---- validation (every eval_every epochs, where a hook asked, after the last), hooks
        metrics = {
            TRAIN_LOSS: train_loss,
            FRACTION_EFFECTIVE: len(order) / n_train,
            SELECTION_S: state.selection_s,
        }
        done = epoch + 1
        if done % cfg.eval_every == 0 or done == cfg.epochs or done in state.eval_at:
            val_loss, val_acc = evaluate(
                model, val_set, batch_size=cfg.batch_size, device=device, memory_format=layout
            )
            metrics.update(val_loss=val_loss, val_acc=val_acc)
        metrics[EPOCH_S] = time.perf_counter() - t0
        state.history.append(metrics)
        for hook in hooks:
            hook.on_epoch_end(state, metrics)
        if state.should_stop:
            logger.info("stopping after epoch %d: %s", epoch, state.stop_reason or "a hook asked")
            break

    if state.history and VAL_ACC not in state.history[-1]:  # stopped between validations
        val_loss, val_acc = evaluate(
            model, val_set, batch_size=cfg.batch_size, device=device, memory_format=layout
        )
        state.history[-1].update(val_loss=val_loss, val_acc=val_acc)
    for hook in hooks:
        hook.on_train_end(state)
    final = dict(state.history[-1]) if state.history else {}
    final.pop(EPOCH_S, None)
    final.update(
        {
            FRACTION_EFFECTIVE: state.samples_seen / (n_train * max(len(state.history), 1)),
            EPOCHS_COMPLETED: float(len(state.history)),
            TRAIN_S: time.perf_counter() - start,
        }
    )
    return TrainResult(final, state.history, state.stop_reason)
