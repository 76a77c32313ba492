"""Fixtures for the selection tests: the scikit-learn digits as an in-memory data set."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from sklearn.datasets import load_digits

from ._data import InMemory


@pytest.fixture(scope="session")
def digits_tensors() -> tuple[torch.Tensor, torch.Tensor]:
    """The 1,797 real 8x8 digits: ``x`` (N, 64) float32 in [0, 1], ``y`` (N,) int64."""
    data = load_digits()
    x = torch.tensor(data.data, dtype=torch.float32) / 16.0
    y = torch.tensor(data.target, dtype=torch.long)
    return x, y


@pytest.fixture(scope="session")
def digits(digits_tensors: tuple[torch.Tensor, torch.Tensor]) -> InMemory:
    return InMemory(*digits_tensors)


@pytest.fixture(autouse=True)
def _single_thread() -> Iterator[None]:
    """Run each test on one intra-op thread.

    The matrices here are tiny; on a busy 2-core machine OpenMP threads spin-waiting for each
    other made the suite ten times slower than one thread does.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
