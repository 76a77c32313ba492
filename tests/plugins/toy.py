"""Small plug-ins for the data and model registry tests (``"tests.plugins.toy:<name>"``)."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.utils.data import Dataset
from torch.utils.data import TensorDataset

NOT_CALLABLE = 3


def _blobs(n: int, dim: int, classes: int, seed: int) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % classes
    x = torch.randn(n, dim, generator=g) + 3.0 * torch.nn.functional.one_hot(y, dim).float()
    return TensorDataset(x, y)


def blobs(n: int = 60, dim: int = 5, classes: int = 3, with_test: bool = True) -> tuple:
    """(train, val[, test]) vector data sets with ``classes`` classes."""
    parts = (_blobs(n, dim, classes, 0), _blobs(n // 3, dim, classes, 1))
    return (*parts, _blobs(n // 3, dim, classes, 2)) if with_test else parts


class Named(Dataset):
    """Images with a ``classes`` attribute whose labels do not use every class."""

    classes = ("a", "b", "c", "d")

    def __len__(self) -> int:
        return 8

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return torch.full((1, 4, 4), float(i)), i % 2


def named():
    return Named(), Named()


def single():
    return _blobs(10, 3, 2, 0)


def four():
    return tuple(_blobs(10, 3, 2, s) for s in range(4))


def float_labels():
    ds = TensorDataset(torch.randn(6, 3), torch.rand(6))
    return ds, ds


def column_labels():
    """Labels shaped (N, 1): one element each, but a multi-target y to the loss."""
    ds = TensorDataset(torch.randn(6, 3), torch.randint(0, 2, (6, 1)))
    return ds, ds


def not_pairs():
    ds = TensorDataset(torch.randn(6, 3))
    return ds, ds


def mlp(input_shape, num_classes, hidden: int = 16) -> nn.Module:
    """A one-hidden-layer MLP in plain ``nn.Sequential``."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(math.prod(input_shape), hidden),
        nn.ReLU(),
        nn.Linear(hidden, num_classes),
    )


def bn_mlp(input_shape, num_classes, hidden: int = 16) -> nn.Module:
    """An MLP with BatchNorm1d, as tabular models often have (it cannot train on one sample)."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(math.prod(input_shape), hidden),
        nn.BatchNorm1d(hidden),
        nn.ReLU(),
        nn.Linear(hidden, num_classes),
    )


def mlp64(input_shape, num_classes) -> nn.Module:
    """The MLP in float64, for float64 data (the contract accepts any float type)."""
    return mlp(input_shape, num_classes).double()


def renamed(shape, n_out, /, **options) -> nn.Module:
    """Positional parameters under other names, options swallowed by ``**options``."""
    return mlp(shape, n_out, **options)


def wrong_head(input_shape, num_classes) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), num_classes + 1))


def no_linear(input_shape, num_classes) -> nn.Module:
    return nn.Sequential(nn.Conv2d(input_shape[0], num_classes, 1), nn.Flatten())


def not_a_module(input_shape, num_classes):
    return "model"


def needs_depth(input_shape, num_classes, *, depth: int) -> nn.Module:
    return mlp(input_shape, num_classes, hidden=depth)


def one_arg(input_shape) -> nn.Module:
    return mlp(input_shape, 2)
