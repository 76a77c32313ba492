"""``gather`` and ``labels_of`` match item-by-item reads; crop/flip matches its definition."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import Dataset
from torch.utils.data import Subset
from torch.utils.data import TensorDataset

from graft_hpo._torch import labels_of
from graft_hpo.data import CropFlipDataset
from graft_hpo.data import InMemoryDataset
from graft_hpo.data import gather
from graft_hpo.data._datasets import crop_flip


class _Plain(Dataset):
    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        return self.x[i], int(self.y[i])


def _stack(dataset, index):
    items = [dataset[int(i)] for i in index]
    return torch.stack([x for x, _ in items]), torch.tensor([int(y) for _, y in items])


@pytest.fixture
def xy():
    g = torch.Generator().manual_seed(0)
    return torch.randn(40, 2, 6, 6, generator=g), torch.randint(0, 5, (40,), generator=g)


def test_in_memory_dataset_items(xy):
    ds = InMemoryDataset(*xy)
    x, y = ds[3]
    assert torch.equal(x, xy[0][3]) and y == int(xy[1][3]) and isinstance(y, int)
    assert ds.tensors[0] is xy[0] and len(ds) == 40
    with pytest.raises(ValueError):
        InMemoryDataset(xy[0], xy[1][:-1])


@pytest.mark.parametrize("kind", ["memory", "tensor", "subset", "nested", "plain", "plain_subset"])
def test_gather_equals_item_stacking(xy, kind):
    base = {
        "memory": lambda: InMemoryDataset(*xy),
        "tensor": lambda: TensorDataset(*xy),
        "subset": lambda: Subset(InMemoryDataset(*xy), list(range(39, 0, -2))),
        "nested": lambda: Subset(Subset(InMemoryDataset(*xy), list(range(5, 40))), [9, 2, 30, 0]),
        "plain": lambda: _Plain(*xy),
        "plain_subset": lambda: Subset(_Plain(*xy), [4, 1, 7]),
    }[kind]()
    index = torch.tensor([2, 0, 2, 1])
    x, y = gather(base, index)
    ref_x, ref_y = _stack(base, index)
    assert torch.equal(x, ref_x) and torch.equal(y, ref_y) and y.dtype == torch.int64
    x_list, _ = gather(base, [2, 0, 2, 1])
    assert torch.equal(x_list, ref_x)


def _windows(padded: torch.Tensor, h: int, w: int):
    for top in range(padded.shape[1] - h + 1):
        for left in range(padded.shape[2] - w + 1):
            window = padded[:, top : top + h, left : left + w]
            yield window
            yield window.flip(-1)


def test_crop_flip_outputs_are_windows_of_the_padded_image():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(64, 3, 5, 5, generator=g)
    fill = torch.tensor([-1.0, 7.0, 3.0])
    out = crop_flip(x, padding=2, fill=fill, generator=torch.Generator().manual_seed(0))
    flipped = shifted = 0
    for image, aug in zip(x, out, strict=True):
        padded = fill.view(3, 1, 1).expand(3, 9, 9).clone()
        padded[:, 2:7, 2:7] = image
        assert any(torch.equal(aug, win) for win in _windows(padded, 5, 5))
        flipped += int(not torch.equal(aug, image) and torch.equal(aug.flip(-1), image))
        shifted += int(not torch.equal(aug, image) and not torch.equal(aug.flip(-1), image))
    assert flipped > 0 and shifted > 32  # both kinds of change happen


def test_crop_flip_dataset_gather_is_seeded_and_matches_items(xy):
    fill = torch.zeros(2)
    ds = CropFlipDataset(InMemoryDataset(*xy), padding=1, fill=fill)
    index = torch.arange(10)
    a, ya = gather(ds, index, generator=torch.Generator().manual_seed(4))
    b, _ = gather(ds, index, generator=torch.Generator().manual_seed(4))
    ref = crop_flip(xy[0][:10], padding=1, fill=fill, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and torch.equal(a, ref) and torch.equal(ya, xy[1][:10])
    torch.manual_seed(9)
    item_x, item_y = ds[3]
    assert item_x.shape == (2, 6, 6) and item_y == int(xy[1][3])
    assert ds.targets is ds.base.y


class _Targets(_Plain):
    """A torchvision-style data set: labels in a ``targets`` list."""

    @property
    def targets(self) -> list[int]:
        return self.y.tolist()


@pytest.mark.parametrize(
    "kind", ["in_memory", "tensor", "targets", "plain", "subset", "crop_flip"]
)
def test_labels_of_equals_the_labels_read_item_by_item(xy, kind):
    x, y = xy
    ds = {
        "in_memory": lambda: InMemoryDataset(x, y),
        "tensor": lambda: TensorDataset(x, y),
        "targets": lambda: _Targets(x, y),
        "plain": lambda: _Plain(x, y),
        "subset": lambda: Subset(Subset(InMemoryDataset(x, y), list(range(3, 37))), [5, 0, 20]),
        "crop_flip": lambda: CropFlipDataset(
            InMemoryDataset(x, y), padding=1, fill=torch.zeros(2)
        ),
    }[kind]()
    labels = labels_of(ds, chunk=7)  # chunks smaller than the data set for the item-by-item path
    assert labels.dtype == torch.int64
    assert labels.tolist() == [int(ds[i][1]) for i in range(len(ds))]
