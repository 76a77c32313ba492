"""Plug-ins that each break one rule of the data or model contract (tests/test_bad_input.py).

Data functions return small 3-class vector sets; model factories take digits' (1, 8, 8).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset
from torch.utils.data import TensorDataset


def _xy(n: int = 30, dim: int = 5, classes: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    y = torch.arange(n) % classes
    return torch.randn(n, dim, generator=g) + torch.nn.functional.one_hot(y, dim).float(), y


def numpy_arrays():
    """``((x, y), (x, y))`` of numpy arrays, as scikit-learn hands them out."""
    x, y = _xy()
    return (x.numpy(), y.numpy()), (x.numpy(), y.numpy())


def one_dataset():
    return TensorDataset(*_xy())


def float_labels():
    x, y = _xy()
    return TensorDataset(x, y.float()), TensorDataset(x, y.float())


def float64_inputs():
    x, y = _xy()
    return TensorDataset(x.double(), y), TensorDataset(x.double(), y)


def labels_from_one():
    x, y = _xy()
    return TensorDataset(x, y + 1), TensorDataset(x, y + 1)


def test_shape_differs():
    """A test split of 4 features beside train's and val's 5 (a column dropped in one file)."""
    x, y = _xy()
    return TensorDataset(x, y), TensorDataset(x, y), TensorDataset(x[:, :4], y)


def integer_inputs():
    x, y = _xy()
    return TensorDataset(x.long(), y), TensorDataset(x.long(), y)


class _NumpyItems(Dataset):
    def __init__(self) -> None:
        self.x, self.y = _xy()

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        return self.x[i].numpy(), int(self.y[i])


class _MissingRow(_NumpyItems):
    """Reads rows lazily, as from a file; row 7 is missing."""

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:  # type: ignore[override]
        if i == 7:
            raise KeyError(f"row {i} missing")
        return self.x[i], int(self.y[i])


def missing_row():
    return _MissingRow(), _MissingRow()


def numpy_items():
    return _NumpyItems(), _NumpyItems()


def raises(path: str = "cancer.csv"):
    raise FileNotFoundError(f"no such file: {path}")


def _mlp(input_shape, num_classes) -> nn.Sequential:
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), num_classes))


def softmax_head(input_shape, num_classes) -> nn.Module:
    return nn.Sequential(_mlp(input_shape, num_classes), nn.Softmax(dim=1))


def log_softmax_head(input_shape, num_classes) -> nn.Module:
    return nn.Sequential(_mlp(input_shape, num_classes), nn.LogSoftmax(dim=1))


def own_names(n_features, n_classes, hidden: int = 16) -> nn.Module:
    """Takes a feature count where graft-hpo passes the input shape (a tuple)."""
    return nn.Sequential(nn.Linear(n_features, hidden), nn.ReLU(), nn.Linear(hidden, n_classes))


class _OneOutput(nn.Module):
    def __init__(self, input_shape, num_classes) -> None:
        super().__init__()
        self.body = _mlp(input_shape, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)[:, 0]


def one_output(input_shape, num_classes) -> nn.Module:
    """Ends in a num_classes-wide Linear but returns one score per sample."""
    return _OneOutput(input_shape, num_classes)
