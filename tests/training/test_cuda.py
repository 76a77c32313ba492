"""The CUDA training path (skipped without CUDA; ``pytest -m gpu`` on a GPU machine).

The data lives on the device when it fits and no batch is then copied from the host; the
layout and ``torch.compile`` options train; a measurement on the GPU samples it through NVML.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

from graft_hpo._torch import data_device
from graft_hpo.config import load_pipeline
from graft_hpo.data import load_data
from graft_hpo.models import build_model
from graft_hpo.training import _loop
from graft_hpo.training import train

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

CIFAR_LIKE = [
    "data.name=synthetic",
    "data.options={n: 2048, shape: [3, 16, 16], num_classes: 4, noise: 1.0}",
    "model.name=cnn",
    "train.device=cuda",
    "train.epochs=2",
    "train.batch_size=64",
    "emissions.enabled=false",
    "selection.strategy=random",
    "selection.warm_start_epochs=1",
    "selection.select_every=1",
]


def _train(extra: list[str], **kwargs: Any) -> tuple[dict[str, float], torch.nn.Module]:
    config = load_pipeline("cifar10", [*CIFAR_LIKE, *extra])
    bundle = load_data(config.data, seed=0)
    torch.manual_seed(0)
    model = build_model(config.model, input_shape=bundle.input_shape, num_classes=4)
    result = train(
        model.cuda(),  # the parameters' copies are not the data path's
        train_set=bundle.train,
        val_set=bundle.val,
        selection_set=bundle.train_eval,
        config=config,
        **kwargs,
    )
    return result.metrics, model


def test_training_data_lives_on_the_device_when_it_fits(monkeypatch: pytest.MonkeyPatch) -> None:
    placed: list[list[Any]] = []
    original = _loop.place_on_device

    def spy(datasets: Any, device: torch.device, *, max_bytes: int) -> Any:
        placed.append(out := original(datasets, device, max_bytes=max_bytes))
        return out

    monkeypatch.setattr(_loop, "place_on_device", spy)
    metrics, _ = _train([])
    assert metrics["val_acc"] > 0.5  # 4 classes: chance is 0.25
    train_set, val_set, selection_set = placed[-1]
    assert all(data_device(d).type == "cuda" for d in (train_set, val_set, selection_set))
    assert train_set is selection_set  # synthetic data is not augmented: one copy serves both

    _train(["train.data_on_device=0"])
    assert all(data_device(d).type == "cpu" for d in placed[-1])


def _copies_per_epoch(extra: list[str]) -> float:
    """Host-to-device copies per epoch: the runs of 2 and 4 epochs differ by 2 epochs only
    (placing the data, building the model and the first selection cost the same in both)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile

    _train(extra)  # warm: cuDNN, allocator
    counts = []
    for epochs in (2, 4):
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            _train([*extra, f"train.epochs={epochs}"])
        counts.append(sum("HtoD" in event.name for event in prof.events()))
    return (counts[1] - counts[0]) / 2


def test_no_batch_is_copied_from_the_host_when_the_data_is_on_the_device() -> None:
    subset_steps = 10  # a subset epoch of random's default 30% of ~1,600 samples, batch 64
    on_host = _copies_per_epoch(["train.data_on_device=0"])
    on_device = _copies_per_epoch([])
    assert on_host >= subset_steps  # every batch crosses the bus (x and y)
    assert on_device <= 3  # the epoch's order and the like, not one per batch


@pytest.mark.parametrize("layout", ["channels_last", "contiguous"])
def test_both_layouts_train_on_cuda(layout: str) -> None:
    metrics, model = _train([f"train.memory_format={layout}"])
    conv = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)][-1]
    fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    assert conv.weight.is_contiguous(memory_format=fmt)
    assert metrics["val_acc"] > 0.5


def test_compiled_training_step_trains() -> None:
    metrics, _ = _train(["train.compile=true", "train.epochs=1"])
    assert metrics["val_acc"] > 0.4 and math.isfinite(metrics["train_loss"])


def test_nvml_sampler_reads_the_device_a_process_trains_on() -> None:
    import os

    from graft_hpo.emissions._attribution import NvmlSampler
    from graft_hpo.emissions._attribution import attribute_gpu_energy

    x = torch.randn(4096, 4096, device="cuda")
    sampler = NvmlSampler(torch.cuda.current_device(), period_s=0.2).start()
    for _ in range(200):
        x = torch.tanh(x @ x)
    torch.cuda.synchronize()
    samples = sampler.stop()
    assert len(samples) >= 3
    assert samples[-1].t_s > samples[0].t_s
    a = attribute_gpu_energy(samples, os.getpid())
    assert a.device_j > 0 and 0 < a.energy_j <= a.device_j + 1e-9
    # NVML lists this process by its PID unless it runs in its own PID namespace
    listed = any(os.getpid() in s.memory for s in samples)
    assert a.method in (("utilisation", "memory") if listed else ("equal", "whole"))


def test_evaluate_takes_the_training_layout() -> None:
    """Validation of a channels_last model, on data kept on the host, works."""
    config = load_pipeline("cifar10", [*CIFAR_LIKE, "train.memory_format=channels_last"])
    bundle = load_data(config.data, seed=0)
    model = build_model(config.model, input_shape=bundle.input_shape, num_classes=4).cuda()
    model.to(memory_format=torch.channels_last)
    loss, acc = _loop.evaluate(
        model,
        bundle.val,
        batch_size=64,
        device=torch.device("cuda"),
        memory_format=torch.channels_last,
    )
    assert loss > 0 and 0 <= acc <= 1
