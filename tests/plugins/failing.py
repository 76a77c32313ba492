"""Plug-in models that fail on command (``"tests.plugins.failing:<name>"``)."""

from __future__ import annotations

import math
import sys
import time

import torch
from torch import nn


class _NaNAfter(nn.Module):
    """A linear classifier whose logits turn NaN after ``after`` forward passes in train mode."""

    def __init__(self, in_features: int, num_classes: int, after: int) -> None:
        super().__init__()
        self.classifier = nn.Linear(in_features, num_classes)
        self.after = after
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.classifier(x.flatten(1))
        if self.training:
            self.calls += 1
            if self.calls > self.after:
                return logits * float("nan")
        return logits


def nan_after(input_shape: tuple[int, ...], num_classes: int, after: int = 3) -> nn.Module:
    """Train normally for ``after`` steps, then produce NaN logits."""
    return _NaNAfter(math.prod(input_shape), num_classes, after)


class _Raises(nn.Module):
    def __init__(self, in_features: int, num_classes: int) -> None:
        super().__init__()
        self.classifier = nn.Linear(in_features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            raise RuntimeError("plug-in model failed on purpose")
        return self.classifier(x.flatten(1))


def raises(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """Raise RuntimeError on every training forward pass."""
    return _Raises(math.prod(input_shape), num_classes)


FAILURES = ("none", "raise", "nan", "inf", "oom", "alloc", "no_codecarbon")


class _OnCommand(nn.Module):
    """A linear classifier whose training forward pass fails the way ``fail`` says.

    ``nan``: NaN logits (loss NaN); ``inf``: logits ``[0, -inf, ...]``, so the loss of every
    sample not of class 0 is +inf while the gradients stay finite (the loss stays inf, not
    NaN); ``raise``: RuntimeError; ``oom``: ``torch.OutOfMemoryError``, the exception a real
    CUDA allocation failure raises from the forward pass; ``alloc``: really allocates 1 TiB on
    the input's device (a real ``torch.OutOfMemoryError`` on a GPU). Evaluation is never
    affected. ``delay_s`` slows every training step down (seconds), to keep a trial running.
    """

    def __init__(self, in_features: int, num_classes: int, fail: str, delay_s: float) -> None:
        super().__init__()
        self.classifier = nn.Linear(in_features, num_classes)
        self.fail = fail
        self.delay_s = delay_s

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.classifier(x.flatten(1))
        if self.training and self.delay_s > 0:
            time.sleep(self.delay_s)
        if not self.training or self.fail in ("none", "no_codecarbon"):
            return logits
        if self.fail == "raise":
            raise RuntimeError("plug-in model failed on command")
        if self.fail == "oom":
            raise torch.OutOfMemoryError(
                "CUDA out of memory. Tried to allocate 20.00 GiB (simulated on command)"
            )
        if self.fail == "alloc":
            return logits + torch.empty(2**40, dtype=torch.uint8, device=x.device)[0]
        if self.fail == "nan":
            return logits * float("nan")
        mask = torch.full_like(logits, float("-inf"))
        mask[:, 0] = 0.0
        return logits + mask


def on_command(
    input_shape: tuple[int, ...], num_classes: int, fail: str = "none", delay_s: float = 0.0
) -> nn.Module:
    """A model that trains normally (``fail="none"``) or fails as ``fail`` says.

    Args:
        input_shape: one sample's shape.
        num_classes: logits per sample.
        fail: one of ``none``, ``raise``, ``nan``, ``inf``, ``oom``, ``alloc`` (see
            :class:`_OnCommand`), or ``no_codecarbon``: the model trains normally but codecarbon
            can no longer be imported in this process (for Ray worker processes only: the
            process stays that way).
        delay_s: seconds to sleep in every training forward pass.
    """
    if fail not in FAILURES:
        raise ValueError(f"model.options.fail must be one of {', '.join(FAILURES)}; got {fail!r}")
    if fail == "no_codecarbon" and _in_ray_worker():  # never the driver that checks plug-ins
        sys.modules["codecarbon"] = None  # type: ignore[assignment]
    return _OnCommand(math.prod(input_shape), num_classes, fail, float(delay_s))


def _in_ray_worker() -> bool:
    """True in a Ray worker process (a trial), False in the driver or a plain process."""
    if "ray" not in sys.modules:
        return False
    import ray

    return bool(ray.is_initialized() and ray.get_runtime_context().worker.mode == ray.WORKER_MODE)
