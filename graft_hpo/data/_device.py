"""Data sets held on the training device: gathered and augmented there, never copied per batch.

On a GPU the host path copies every training batch across the bus and augments it on the CPU.
When the training data fits (``train.data_on_device``: a share of the device's free memory),
:func:`place_on_device` moves the tensors once; :func:`graft_hpo.data.gather` then indexes
them on the device, :func:`~graft_hpo.data._datasets.crop_flip` augments there with the
device's generator, and subset gathering for selection reads them in place. The code is the
same on CPU tensors, where nothing moves.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch
from torch.utils.data import Dataset
from torch.utils.data import Subset
from torch.utils.data import TensorDataset

from graft_hpo.data._datasets import CropFlipDataset
from graft_hpo.data._datasets import InMemoryDataset

__all__ = ["data_bytes", "device_budget_bytes", "move_data", "place_on_device"]

logger = logging.getLogger(__name__)


def _tensors(dataset: Dataset[Any]) -> list[torch.Tensor] | None:
    """The tensors that hold ``dataset``'s samples, or None when it is not held as tensors."""
    if isinstance(dataset, Subset):
        return _tensors(dataset.dataset)
    if isinstance(dataset, CropFlipDataset):
        inner = _tensors(dataset.base)
        return None if inner is None else [*inner, dataset.fill]
    if isinstance(dataset, (InMemoryDataset, TensorDataset)):
        return list(dataset.tensors)
    return None


def data_bytes(datasets: Sequence[Dataset[Any]]) -> int | None:
    """Bytes of the tensors behind ``datasets``, each tensor counted once (splits share them).

    Returns None when one of them is not held as tensors (a plug-in's own data set): it cannot
    be moved, so the data stays where it is.
    """
    seen: dict[int, int] = {}
    for dataset in datasets:
        tensors = _tensors(dataset)
        if tensors is None:
            return None
        for t in tensors:
            seen[id(t)] = t.numel() * t.element_size()
    return sum(seen.values())


def move_data(datasets: Sequence[Dataset[Any]], device: torch.device) -> list[Dataset[Any]]:
    """``datasets`` rebuilt around copies of their tensors on ``device``.

    What is shared stays shared: a tensor (a :class:`CropFlipDataset` and its un-augmented
    base, a ``Subset`` and its data set) is copied once, and the same input object gives the
    same output object. The inputs are not modified.

    Raises:
        TypeError: a data set that is not held as tensors (check :func:`data_bytes` first).
    """
    tensors: dict[int, torch.Tensor] = {}
    built: dict[int, Dataset[Any]] = {}

    def move(t: torch.Tensor) -> torch.Tensor:
        if id(t) not in tensors:
            tensors[id(t)] = t.to(device)
        return tensors[id(t)]

    def rebuild(dataset: Dataset[Any]) -> Dataset[Any]:
        if id(dataset) in built:
            return built[id(dataset)]
        out: Dataset[Any]
        if isinstance(dataset, Subset):
            out = Subset(rebuild(dataset.dataset), dataset.indices)
        elif isinstance(dataset, CropFlipDataset):
            base = rebuild(dataset.base)
            assert isinstance(base, InMemoryDataset)
            out = CropFlipDataset(base, padding=dataset.padding, fill=move(dataset.fill))
        elif isinstance(dataset, InMemoryDataset):
            out = InMemoryDataset(move(dataset.x), move(dataset.y))
        elif isinstance(dataset, TensorDataset):
            out = TensorDataset(*(move(t) for t in dataset.tensors))
        else:
            raise TypeError(f"{type(dataset).__name__} is not held as tensors; cannot move it")
        built[id(dataset)] = out
        return out

    return [rebuild(dataset) for dataset in datasets]


def device_budget_bytes(device: torch.device, share: float) -> int:
    """``share`` of ``device``'s free memory now, in bytes; 0 for a device that is not CUDA."""
    if device.type != "cuda" or share <= 0:
        return 0
    free, _total = torch.cuda.mem_get_info(device)
    return int(share * free)


def place_on_device(
    datasets: Sequence[Dataset[Any]], device: torch.device, *, max_bytes: int
) -> list[Dataset[Any]]:
    """``datasets`` on ``device`` when their tensors take at most ``max_bytes``, else as given.

    Nothing moves to the CPU (the same objects come back, so the CPU path is the code it
    always was) or when ``max_bytes`` is 0. Everything moves or nothing does, so train and
    validation data never end up on different devices.

    Args:
        datasets: the splits a training run reads (train, validation, selection).
        device: the training device.
        max_bytes: the most device memory the data may take (:func:`device_budget_bytes`).

    Returns:
        The data sets, in order: moved copies, or the inputs themselves.
    """
    if device.type == "cpu" or max_bytes <= 0:
        return list(datasets)
    size = data_bytes(datasets)
    if size is None or size > max_bytes:
        logger.info(
            "training data stays on the host (%s; the device budget is %.1f MB): "
            "every batch is copied to %s",
            "not held as tensors" if size is None else f"{size / 1e6:.1f} MB",
            max_bytes / 1e6,
            device,
        )
        return list(datasets)
    logger.info("training data on %s (%.1f MB)", device, size / 1e6)
    return move_data(datasets, device)
