"""Device-resident data without a GPU: the placement rules, on CPU and on torch's meta device.

The meta device holds shapes and dtypes but no values, so it shows where every tensor went and
that gathering and augmentation run where the data is; tests/data/test_gpu.py checks values on
a real CUDA device.
"""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import Dataset
from torch.utils.data import Subset
from torch.utils.data import TensorDataset

from graft_hpo._torch import data_device
from graft_hpo._torch import iter_batches
from graft_hpo.data import CropFlipDataset
from graft_hpo.data import InMemoryDataset
from graft_hpo.data import device_budget_bytes
from graft_hpo.data import place_on_device
from graft_hpo.data._device import data_bytes
from graft_hpo.data._device import move_data

META = torch.device("meta")


class _Items(Dataset):
    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int):
        return torch.zeros(2), 0


@pytest.fixture
def splits():
    """train (augmented), val, and train_eval (train's un-augmented base), as load_data makes."""
    g = torch.Generator().manual_seed(0)
    base = InMemoryDataset(torch.randn(20, 3, 8, 8, generator=g), torch.arange(20) % 4)
    val = InMemoryDataset(torch.randn(6, 3, 8, 8, generator=g), torch.arange(6) % 4)
    train = CropFlipDataset(base, padding=2, fill=torch.zeros(3))
    return train, val, base


def test_data_bytes_counts_each_shared_tensor_once(splits):
    train, val, base = splits
    # x float32 + y int64 of train's base, the fill, and val; base is train's base: not again
    expected = (20 * 3 * 8 * 8 * 4 + 20 * 8) + 3 * 4 + (6 * 3 * 8 * 8 * 4 + 6 * 8)
    assert data_bytes([train, val, base]) == expected
    assert data_bytes([Subset(val, [0, 1]), val]) == 6 * 3 * 8 * 8 * 4 + 6 * 8
    assert data_bytes([val, _Items()]) is None


def test_nothing_moves_on_the_cpu_or_with_a_zero_budget(splits):
    datasets = list(splits)
    assert all(
        a is b
        for a, b in zip(
            place_on_device(datasets, torch.device("cpu"), max_bytes=10**12), datasets, strict=True
        )
    )
    assert all(
        a is b for a, b in zip(place_on_device(datasets, META, max_bytes=0), datasets, strict=True)
    )
    assert device_budget_bytes(torch.device("cpu"), 0.5) == 0


def test_data_over_the_budget_or_not_in_tensors_stays_on_the_host(splits):
    size = data_bytes(list(splits))
    assert size is not None
    over = place_on_device(list(splits), META, max_bytes=size - 1)
    assert all(a is b for a, b in zip(over, splits, strict=True))
    items = _Items()
    kept = place_on_device([splits[1], items], META, max_bytes=10**12)
    assert kept[0] is splits[1] and kept[1] is items  # all or nothing


def test_moved_data_keeps_what_was_shared(splits):
    train, val, base = splits
    size = data_bytes(list(splits))
    assert size is not None
    m_train, m_val, m_base = place_on_device([train, val, base], META, max_bytes=size)
    assert isinstance(m_train, CropFlipDataset) and isinstance(m_base, InMemoryDataset)
    assert m_train.base is m_base  # the augmented view still reads the selection's tensors
    assert m_train.padding == 2 and m_train.fill.device == META
    assert m_base.x.device == META and m_base.y.device == META and m_val.device == META
    assert data_device(m_train) == META and data_device(train) == torch.device("cpu")
    assert base.x.device.type == "cpu"  # the inputs are untouched
    assert m_base.x.shape == base.x.shape and m_base.y.dtype == torch.int64

    sub, tensors = move_data([Subset(val, [5, 1]), TensorDataset(val.x, val.y)], META)
    assert isinstance(sub, Subset) and list(sub.indices) == [5, 1]
    assert data_device(sub) == META and data_device(tensors) == META
    with pytest.raises(TypeError, match="_Items is not held as tensors"):
        move_data([_Items()], META)


def test_batches_of_moved_data_are_gathered_and_augmented_where_the_data_is(splits):
    train, _, base = splits
    m_train, m_sub = move_data([train, Subset(base, list(range(19, -1, -1)))], META)
    order = torch.randperm(20, generator=torch.Generator().manual_seed(1))
    for dataset in (m_train, m_sub):
        batches = list(iter_batches(dataset, order, 8))
        assert [len(i) for _, _, i in batches] == [8, 8, 4]
        for x, y, index in batches:
            assert x.device == META and y.device == META and x.shape[1:] == (3, 8, 8)
            assert index.device.type == "cpu"  # the caller's indices stay on the host
        assert torch.equal(torch.cat([i for _, _, i in batches]), order)


def test_host_batches_are_what_they_were(splits):
    """On the CPU the order is not copied and batches equal a direct gather."""
    _, val, _ = splits
    order = torch.tensor([4, 0, 5, 2, 1, 3])
    (x, y, index), *_ = iter_batches(val, order, 4)
    assert torch.equal(x, val.x[order[:4]]) and torch.equal(y, val.y[order[:4]])
    assert torch.equal(index, order[:4])
