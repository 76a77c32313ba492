from __future__ import annotations

from typing import Any

import pytest
import torch

from graft_hpo.config import DataConfig


@pytest.fixture
def data_cfg():
    def make(name: str, **kwargs: Any) -> DataConfig:
        return DataConfig(name=name, **kwargs)

    return make


def denormalise(x: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    shape = (1, -1) + (1,) * (x.dim() - 2)
    return x * torch.tensor(std).view(shape) + torch.tensor(mean).view(shape)
