"""Small torch helpers shared by the data, models, selection and training packages.

Kept at the bottom of the dependency graph so that siblings (``selection``, ``data``,
``models``) can share them without importing each other.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from torch.utils.data import Dataset
from torch.utils.data import Subset

from graft_hpo.exceptions import ConfigError

__all__ = [
    "batch_count",
    "classifier_layer",
    "data_device",
    "declared_targets",
    "find_classifier",
    "gather_batch",
    "iter_batches",
    "labels_of",
    "memory_format_for",
    "rng_state",
    "seed_everything",
    "set_rng_state",
    "to_device",
]


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (with :func:`set_rng_state`, the only places graft-hpo
    touches global RNGs)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """The global RNGs' states (python, numpy, torch, CUDA once initialised), for a checkpoint.

    Tensors, numbers and tuples only: ``torch.load(..., weights_only=True)`` reads it back.
    """
    kind, keys, *rest = np.random.get_state(legacy=True)
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": (kind, torch.from_numpy(np.asarray(keys, dtype=np.int64)), *rest),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Put back what :func:`rng_state` returned: the run continues with the same draws."""
    random.setstate(state["python"])
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), *rest))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _batchable(dataset: Any) -> bool:
    """True when :func:`gather_batch` fetches ``dataset`` by tensor indexing, not by items."""
    while isinstance(dataset, Subset):
        dataset = dataset.dataset
    tensors = getattr(dataset, "tensors", None)
    return hasattr(dataset, "gather_batch") or (isinstance(tensors, tuple) and len(tensors) == 2)


def gather_batch(
    dataset: Dataset[Any],
    index: torch.Tensor | Sequence[int],
    *,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fetch the samples ``dataset[index]`` as one ``(x, y)`` batch.

    Fast paths, one tensor operation each: ``Subset`` chains are unwrapped; a data set with a
    ``gather_batch(index, generator)`` method (augmenting data sets) is asked directly; one
    with ``tensors == (x, y)`` (``TensorDataset``, :class:`graft_hpo.data.InMemoryDataset`) is
    indexed. Any other map-style data set is read item by item and stacked.

    Args:
        dataset: a map-style data set yielding ``(x, y)``.
        index: ``(m,)`` dataset indices.
        generator: randomness for augmenting data sets (None: torch's default generator).

    Returns:
        ``x`` of shape ``(m, ...)`` and ``y`` of shape ``(m,)`` int64.
    """
    idx = torch.as_tensor(index, dtype=torch.long)
    if isinstance(dataset, Subset):
        inner = torch.as_tensor(dataset.indices, dtype=torch.long, device=idx.device)
        return gather_batch(dataset.dataset, inner[idx], generator=generator)
    own = getattr(dataset, "gather_batch", None)
    if own is not None:
        return own(idx, generator=generator)
    tensors = getattr(dataset, "tensors", None)
    if isinstance(tensors, tuple) and len(tensors) == 2:
        x, y = tensors
        return x[idx.to(x.device)], y[idx.to(y.device)].long()
    items = [dataset[int(i)] for i in idx]
    if not items:
        raise ValueError("gather_batch needs at least one index")
    xs = torch.stack([torch.as_tensor(x) for x, _ in items])
    ys = torch.as_tensor([int(y) for _, y in items], dtype=torch.long)
    return xs, ys


def declared_targets(dataset: Dataset[Any]) -> torch.Tensor | None:
    """A data set's labels as it declares them (``targets``, or ``tensors == (x, y)``), or None."""
    targets = getattr(dataset, "targets", None)
    if targets is None:
        tensors = getattr(dataset, "tensors", None)
        if isinstance(tensors, tuple) and len(tensors) == 2:
            targets = tensors[1]
    return None if targets is None else torch.as_tensor(targets)


def labels_of(dataset: Dataset[Any], *, chunk: int = 4096) -> torch.Tensor:
    """The ``(n,)`` int64 labels of a map-style data set, in dataset-index order.

    Fast paths read them without touching the inputs: ``Subset`` chains are unwrapped, then a
    ``targets`` attribute (torchvision, :class:`graft_hpo.data.InMemoryDataset`) or the second
    of ``tensors == (x, y)`` is used. Any other data set is read through :func:`gather_batch`
    in chunks of ``chunk`` samples.
    """
    if isinstance(dataset, Subset):
        inner = torch.as_tensor(dataset.indices, dtype=torch.long)
        return labels_of(dataset.dataset, chunk=chunk)[inner]
    targets = declared_targets(dataset)
    if targets is not None:
        return targets.long().cpu()
    n = len(dataset)  # type: ignore[arg-type]
    parts = [gather_batch(dataset, index)[1] for index in torch.arange(n).split(chunk)]
    return torch.cat(parts).long().cpu() if parts else torch.zeros(0, dtype=torch.long)


def data_device(dataset: Dataset[Any]) -> torch.device | None:
    """Where an in-memory data set's tensors live, or None when it is not held as tensors.

    ``Subset`` chains are unwrapped; a data set with a ``device`` attribute
    (:class:`graft_hpo.data.InMemoryDataset`, :class:`graft_hpo.data.CropFlipDataset`) says so
    itself; one with ``tensors == (x, y)`` is where ``x`` is.
    """
    while isinstance(dataset, Subset):
        dataset = dataset.dataset
    device = getattr(dataset, "device", None)
    if isinstance(device, torch.device):
        return device
    tensors = getattr(dataset, "tensors", None)
    if isinstance(tensors, tuple) and tensors and isinstance(tensors[0], torch.Tensor):
        return tensors[0].device
    return None


_LAYOUTS = {"channels_last": torch.channels_last, "contiguous": torch.contiguous_format}


def memory_format_for(device: torch.device | str, choice: str = "auto") -> torch.memory_format:
    """The layout of images and conv weights on ``device`` (``train.memory_format``).

    ``auto`` is ``channels_last`` on the CPU, where oneDNN's convolutions run faster in it: the
    bundled CNN's training step 1.5x, its scoring forward pass 2x, ResNet-18's step 1.06x (2
    cores, one thread; ``benchmarks/layout_bench.py``), and torch's default elsewhere, until
    ``benchmarks/gpu_check.py --all`` has measured channels_last on CUDA. ``channels_last`` and
    ``contiguous`` force one layout.
    """
    if choice != "auto":
        return _LAYOUTS[choice]
    return torch.channels_last if torch.device(device).type == "cpu" else torch.contiguous_format


def to_device(
    x: torch.Tensor, device: torch.device | str, memory_format: torch.memory_format
) -> torch.Tensor:
    """``x`` on ``device``, a 4-D (image) batch also in ``memory_format``."""
    x = x.to(device, non_blocking=True)
    return x.contiguous(memory_format=memory_format) if x.dim() == 4 else x


class _Indexed(Dataset[Any]):
    def __init__(self, dataset: Dataset[Any]) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> tuple[Any, int, int]:
        x, y = self.dataset[i]
        return x, int(y), i


def iter_batches(
    dataset: Dataset[Any],
    order: torch.Tensor,
    batch_size: int,
    *,
    num_workers: int = 0,
    training: bool = False,
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Yield ``(x, y, index)`` batches of ``dataset`` in the given order of dataset indices.

    Args:
        dataset: a map-style data set yielding ``(x, y)``.
        order: ``(m,)`` int64 dataset indices, visited in this order.
        batch_size: samples per batch (the last batch may be smaller).
        num_workers: DataLoader workers for data sets that are not in memory.
        training: a last batch of one sample joins the one before it (BatchNorm cannot train
            on a single sample: a subset of ``k * batch_size + 1`` samples failed its trial).
    """
    if _batchable(dataset):
        # data held on an accelerator is gathered with indices already there: one copy of the
        # order per call instead of one per batch; ``index`` stays on the host for the caller
        where = data_device(dataset)
        on_data = order.to(where) if where is not None and where.type != "cpu" else order
        chunks = zip(
            _chunks(order, batch_size, training),
            _chunks(on_data, batch_size, training),
            strict=True,
        )
        for chunk, local in chunks:
            x, y = gather_batch(dataset, local)
            yield x, y, chunk
        return
    batch_sampler = [chunk.tolist() for chunk in _chunks(order, batch_size, training)]
    loader = DataLoader(_Indexed(dataset), batch_sampler=batch_sampler, num_workers=num_workers)
    for x, y, index in loader:
        yield x, y.long(), index.long()


def batch_count(m: int, batch_size: int, *, training: bool = False) -> int:
    """How many batches :func:`iter_batches` yields for ``m`` samples.

    Example:
        >>> batch_count(1079, 98), batch_count(1079, 98, training=True), batch_count(1, 98)
        (12, 11, 1)
    """
    count = -(-m // batch_size)
    return count - 1 if training and count > 1 and m % batch_size == 1 else count


def _chunks(order: torch.Tensor, batch_size: int, training: bool) -> list[torch.Tensor]:
    chunks = list(order.split(batch_size))
    if len(chunks) > batch_count(len(order), batch_size, training=training):
        chunks[-2:] = [torch.cat(chunks[-2:])]  # a last batch of one sample joins the one before
    return chunks


def find_classifier(model: nn.Module) -> nn.Linear | None:
    """The last ``nn.Linear`` in ``model.modules()`` (registration) order, or None."""
    last = None
    for module in model.modules():
        if isinstance(module, nn.Linear):
            last = module
    return last


def classifier_layer(model: nn.Module, num_classes: int | None = None) -> nn.Linear:
    """The final ``nn.Linear``, which produces the logits; its input is the sample embedding.

    It is the last ``nn.Linear`` in ``model.modules()`` order. GRAFT hooks it to read
    ``(batch, in_features)`` embeddings and to form last-layer gradients; every model graft-hpo
    builds, and every plug-in model it accepts, ends in one.

    Args:
        model: a classifier.
        num_classes: when given, the layer's ``out_features`` must equal it.

    Raises:
        ConfigError: the model has no ``nn.Linear``, or its last one has the wrong width.
    """
    layer = find_classifier(model)
    if layer is None:
        raise ConfigError(
            f"model must end in an nn.Linear classifier; {type(model).__name__} has no nn.Linear"
        )
    if num_classes is not None and layer.out_features != num_classes:
        raise ConfigError(
            f"model's last nn.Linear must have out_features == num_classes ({num_classes}); "
            f"got out_features={layer.out_features}"
        )
    return layer
