"""The ceiling of a training step, and what a trial's epochs say about its own throughput.

The ceiling is the samples/s of the training step alone: one batch already on the device,
trained on again and again with the trial's model, batch size, precision (bf16 autocast on
CUDA, float32 on the CPU), layout and optimizer, so no data pipeline and no selection. A
trial's share of it says how much of the hardware the rest of the loop leaves unused.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import torch
import torch.nn.functional as F

from graft_hpo._torch import memory_format_for
from graft_hpo.config import ModelConfig
from graft_hpo.models import build_model
from graft_hpo.training import TrainHooks
from graft_hpo.training import TrainState

__all__ = ["EpochRecorder", "measure_ceiling", "share_of_ceiling", "trial_throughput"]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_ceiling(
    model_name: str,
    *,
    device: torch.device,
    batch_size: int,
    input_shape: tuple[int, ...] = (3, 32, 32),
    num_classes: int = 10,
    memory_format: str = "auto",
    compile: bool = False,
    seconds: float = 3.0,
    warmup_steps: int = 5,
    chunks: int = 5,
) -> dict[str, Any]:
    """Samples/s of the bare training step (see the module docstring).

    Args:
        model_name: a registered model (``resnet18``, ``cnn``).
        device: where to train.
        batch_size: samples per step.
        input_shape: one sample's shape.
        num_classes: classifier width.
        memory_format: ``train.memory_format`` (``auto``, ``channels_last``, ``contiguous``).
        compile: ``torch.compile`` the model first; the first steps then include compiling.
        seconds: about how long to time steady-state steps.
        warmup_steps: untimed steps first (cuDNN, allocator, compilation), and more until a
            second has passed (at most 50).
        chunks: the timed steps run in this many chunks; the fastest gives the ceiling.

    Returns:
        ``samples_per_s`` (of the fastest chunk), ``samples_per_s_mean`` (of all), ``step_ms``,
        ``steps`` timed, ``warmup_s`` (the untimed first steps: with ``compile`` mostly the
        compilation) and the settings.
    """
    torch.manual_seed(0)
    layout = memory_format_for(device, memory_format)
    model = build_model(ModelConfig(model_name), input_shape=input_shape, num_classes=num_classes)
    model.to(device).to(memory_format=layout).train()
    forward = torch.compile(model) if compile else model
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(batch_size, *input_shape, device=device)
    x = x.contiguous(memory_format=layout) if x.dim() == 4 else x
    y = torch.randint(0, num_classes, (batch_size,), device=device)
    precision: contextlib.AbstractContextManager[Any] = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if device.type == "cuda"
        else contextlib.nullcontext()
    )

    def step() -> None:  # the loop's step: autocast forward, float32 loss, SGD
        with precision:
            logits = forward(x)
        loss = F.cross_entropy(logits.float(), y, reduction="none").mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    t0 = time.perf_counter()
    done = 0
    # at least warmup_steps, and at least a second: oneDNN's first CPU steps are slow for longer
    while done < warmup_steps or (time.perf_counter() - t0 < 1.0 and done < 50):
        step()
        _sync(device)
        done += 1
    warmup_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    step()  # one timed step sizes the measurement
    _sync(device)
    per_chunk = max(1, int(seconds / chunks / max(time.perf_counter() - t0, 1e-6)))
    times = []
    for _ in range(chunks):
        t0 = time.perf_counter()
        for _ in range(per_chunk):
            step()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return {
        "model": model_name,
        "batch_size": batch_size,
        "precision": "bf16 autocast" if device.type == "cuda" else "float32",
        "memory_format": str(layout).removeprefix("torch."),
        "compile": compile,
        # the fastest chunk: on a shared machine the others include someone else's work
        "samples_per_s": per_chunk * batch_size / min(times),
        "samples_per_s_mean": chunks * per_chunk * batch_size / sum(times),
        "step_ms": 1000 * min(times) / per_chunk,
        "steps": chunks * per_chunk,
        "warmup_s": warmup_s,
    }


def share_of_ceiling(samples_per_s: float | None, ceiling: float | None) -> float | None:
    """``samples_per_s / ceiling``, or None when either is unknown (or the ceiling is 0).

    Example:
        >>> share_of_ceiling(800.0, 1000.0)
        0.8
    """
    if samples_per_s is None or not ceiling:
        return None
    return samples_per_s / ceiling


class EpochRecorder(TrainHooks):
    """Keeps, per epoch, its seconds, samples, selection seconds and whether it validated;
    and the seconds of every selection round."""

    def __init__(self) -> None:
        self.epochs: list[dict[str, Any]] = []
        self.rounds: list[float] = []
        self._seen = 0
        self._selection_s = 0.0  # at the end of the previous epoch
        self._round_mark = 0.0  # at the end of the previous round

    def on_selection_end(self, state: TrainState, selection: Any) -> None:
        self.rounds.append(state.selection_s - self._round_mark)
        self._round_mark = state.selection_s

    def on_epoch_end(self, state: TrainState, metrics: dict[str, float]) -> None:
        self.epochs.append(
            {
                "epoch_s": metrics["epoch_s"],
                "samples": state.samples_seen - self._seen,
                "selection_s": state.selection_s - self._selection_s,
                "validated": "val_acc" in metrics,
            }
        )
        self._seen = state.samples_seen
        self._selection_s = state.selection_s
        self._round_mark = state.selection_s


def trial_throughput(epochs: list[dict[str, Any]]) -> dict[str, float | None]:
    """Training samples/s of a trial: its samples over its epochs' seconds less selection,
    counting only epochs without validation (all of them when every epoch validated).

    Also ``full_epoch_s``: the median training seconds of its full-data epochs (None if none).

    Example:
        >>> e = [{"epoch_s": 2.0, "samples": 100, "selection_s": 0.0, "validated": False},
        ...      {"epoch_s": 1.5, "samples": 30, "selection_s": 1.0, "validated": False},
        ...      {"epoch_s": 9.0, "samples": 30, "selection_s": 0.0, "validated": True}]
        >>> trial_throughput(e)
        {'samples_per_s': 52.0, 'full_epoch_s': 2.0}
    """
    counted = [e for e in epochs if not e["validated"]] or epochs
    seconds = sum(e["epoch_s"] - e["selection_s"] for e in counted)
    samples = sum(e["samples"] for e in counted)
    most = max((e["samples"] for e in epochs), default=0)
    full = sorted(e["epoch_s"] - e["selection_s"] for e in counted if e["samples"] == most)
    return {
        "samples_per_s": samples / seconds if seconds > 0 else None,
        "full_epoch_s": full[len(full) // 2] if full else None,
    }
