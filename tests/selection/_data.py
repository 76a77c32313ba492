"""Helpers shared by the selection tests: data-set wrappers and a small classifier."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset


class InMemory(Dataset[Any]):
    """An in-memory data set in the ``TensorDataset`` shape: ``.tensors == (x, y)``."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.tensors = (x, y)

    def __len__(self) -> int:
        return len(self.tensors[0])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.tensors[0][i], self.tensors[1][i]


class ItemByItem(Dataset[Any]):
    """The same samples, reachable only through ``__getitem__`` (no ``.tensors``)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self._x, self._y = x, y

    def __len__(self) -> int:
        return len(self._x)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self._x[i], int(self._y[i])


def make_mlp(
    seed: int = 0,
    *,
    in_dim: int = 64,
    classes: int = 10,
    batchnorm: bool = True,
    dtype: torch.dtype = torch.float32,
) -> nn.Sequential:
    """A small classifier ending in ``nn.Linear`` (optionally with BatchNorm)."""
    # nn.Module initialisation reads the global RNG: seed it without leaking the state
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        layers: list[nn.Module] = [nn.Linear(in_dim, 32)]
        if batchnorm:
            layers.append(nn.BatchNorm1d(32))
        layers += [nn.ReLU(), nn.Linear(32, 16), nn.Tanh(), nn.Linear(16, classes)]
        return nn.Sequential(*layers).to(dtype)
