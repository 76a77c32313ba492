"""Clocks the benchmarks share: device sync, best-of-N timing, one timed SGD epoch."""

from __future__ import annotations

import time
from collections.abc import Callable
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA); a no-op on the CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def best_of(
    fn: Callable[..., Any],
    setup: Callable[[], tuple[Any, ...]],
    *,
    device: torch.device,
    warmup: Callable[[], Any] | None,
    min_reps: int,
    max_reps: int,
    budget_s: float,
) -> tuple[float, int, Any]:
    """Warm up once, then the best of N timed calls ``fn(*setup())``.

    ``setup`` gives fresh arguments before each call, outside the clock (code that overwrites
    its input gets a new copy); the clock waits for the device at both ends. N is at least
    ``min_reps`` and grows until ``budget_s`` seconds are spent, up to ``max_reps``; after
    4 x ``budget_s`` it stops even below ``min_reps``.

    Returns:
        ``(best seconds, N, the last call's output)``.
    """
    if warmup is not None:
        warmup()
    sync(device)
    times: list[float] = []
    out = None
    while True:
        args = setup()
        sync(device)
        start = time.perf_counter()
        out = fn(*args)
        sync(device)
        times.append(time.perf_counter() - start)
        total = sum(times)
        if len(times) >= max_reps or (len(times) >= min_reps and total >= budget_s):
            break
        if total >= 4 * budget_s:
            break
    return min(times), len(times), out


def sgd_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
) -> float:
    """Seconds for one epoch of training steps (cross-entropy) over ``batches``.

    The model is put in train mode first. Batches are drawn inside the clock, so a generator
    that converts their layout or moves them to a device is timed with the steps, as the
    training loop pays for it.
    """
    model.train()
    start = time.perf_counter()
    for x, y in batches:
        loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return time.perf_counter() - start
