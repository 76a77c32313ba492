"""``cifar10`` and ``cifar100``: the CIFAR python-pickle batches under ``data.root``.

Files are read directly (the layout torchvision downloads to), so a copy made elsewhere works
without torchvision's checksums. The batches are pickles, which can run code when loaded: they
are read by an unpickler that builds numpy arrays, lists, dicts and strings and nothing else,
so a planted file is refused instead of run.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from typing import ClassVar

import numpy as np
import torch

from graft_hpo._registry import check_int
from graft_hpo.data._base import DATASETS
from graft_hpo.data._base import Pool
from graft_hpo.data._base import Source
from graft_hpo.data._files import FILES
from graft_hpo.data._files import Files
from graft_hpo.data._files import ensure_files
from graft_hpo.data._split import subsample
from graft_hpo.exceptions import ConfigError


@dataclass(frozen=True)
class _Layout:
    name: str
    folder: str
    train: tuple[str, ...]
    test: tuple[str, ...]
    label_key: str
    num_classes: int
    torchvision_class: str


_CIFAR10 = _Layout(
    name="cifar10",
    folder="cifar-10-batches-py",
    train=tuple(f"data_batch_{i}" for i in range(1, 6)),
    test=("test_batch",),
    label_key="labels",
    num_classes=10,
    torchvision_class="CIFAR10",
)
_CIFAR100 = _Layout(
    name="cifar100",
    folder="cifar-100-python",
    train=("train",),
    test=("test",),
    label_key="fine_labels",
    num_classes=100,
    torchvision_class="CIFAR100",
)

for _layout in (_CIFAR10, _CIFAR100):
    FILES[_layout.name] = Files(
        _layout.folder, _layout.train + _layout.test, _layout.torchvision_class
    )


class _ArraysOnly(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays; any other class or function is refused."""

    _ALLOWED: ClassVar[frozenset[tuple[str, str]]] = frozenset(
        {
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
            ("numpy.core.multiarray", "_reconstruct"),  # as numpy 1 (and Python 2) wrote it
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy.core.multiarray", "scalar"),
            ("numpy._core.multiarray", "scalar"),
            ("_codecs", "encode"),  # Python 2 byte strings
        }
    )

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def _read_batches(
    directory: Path, files: tuple[str, ...], layout: _Layout
) -> tuple[torch.Tensor, torch.Tensor]:
    """Read pickled batches -> ``(n, 3, 32, 32)`` uint8 images and ``(n,)`` int64 labels."""
    images, labels = [], []
    for file in files:
        path = directory / file
        try:
            with path.open("rb") as fh:
                entry: dict[Any, Any] = _ArraysOnly(fh, encoding="latin1").load()
            # Python-2 pickles decode to str keys under latin1; re-pickled copies may hold bytes.
            entry = {k.decode() if isinstance(k, bytes) else k: v for k, v in entry.items()}
            data = np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
            target = np.asarray(entry[layout.label_key], dtype=np.int64)
        except (
            OSError,
            pickle.UnpicklingError,
            KeyError,
            ValueError,
            AttributeError,
            TypeError,
            EOFError,
        ) as exc:
            raise ConfigError(
                f"data.root: '{path}' is not a {layout.name} batch file "
                f"({type(exc).__name__}: {exc})"
            ) from exc
        if len(target) != len(data):
            raise ConfigError(f"data.root: '{path}' has {len(data)} images, {len(target)} labels")
        images.append(torch.from_numpy(data))
        labels.append(torch.from_numpy(target))
    return torch.cat(images), torch.cat(labels)


def _load(source: Source, layout: _Layout, *, augment: bool, limit: int | None) -> Pool:
    if not isinstance(augment, bool):
        raise ConfigError(f"data.options.augment must be true or false; got {augment!r}")
    if limit is not None:
        limit = check_int(limit, "data.options.limit", minimum=2)
    directory = ensure_files(source, name=layout.name)
    x, y = subsample(*_read_batches(directory, layout.train, layout), limit)
    test_x, test_y = _read_batches(directory, layout.test, layout)
    return Pool(
        x=x,
        y=y,
        num_classes=layout.num_classes,
        test_x=test_x,
        test_y=test_y,
        augment_padding=4 if augment else 0,
        scale=255.0,
    )


@DATASETS.register("cifar10")
def cifar10(source: Source, *, augment: bool = True, limit: int | None = None) -> Pool:
    """CIFAR-10 from ``<data.root>/cifar-10-batches-py``: 50,000 train + 10,000 test images.

    Args:
        source: root folder and download flag.
        augment: random crop (padding 4) + horizontal flip on ``train`` (never ``train_eval``).
        limit: keep only this many training-pool images (a stratified subset, the same for
            every trial); the official test split is kept whole.

    Returns:
        A pool of ``(n, 3, 32, 32)`` uint8 images (scale 255) with the official test split.
    """
    return _load(source, _CIFAR10, augment=augment, limit=limit)


@DATASETS.register("cifar100")
def cifar100(source: Source, *, augment: bool = True, limit: int | None = None) -> Pool:
    """CIFAR-100 (fine labels) from ``<data.root>/cifar-100-python``; see :func:`cifar10`."""
    return _load(source, _CIFAR100, augment=augment, limit=limit)
