"""``mnist`` and ``fashion_mnist``: IDX files under ``data.root`` (torchvision's layout).

Reads ``<root>/MNIST/raw`` or ``<root>/FashionMNIST/raw``, files plain or ``.gz``.
"""

from __future__ import annotations

import gzip
import math
import struct
from pathlib import Path

import torch

from graft_hpo._registry import check_int
from graft_hpo.data._base import DATASETS
from graft_hpo.data._base import Pool
from graft_hpo.data._base import Source
from graft_hpo.data._files import FILES
from graft_hpo.data._files import Files
from graft_hpo.data._files import ensure_files
from graft_hpo.data._files import find_file
from graft_hpo.data._split import subsample
from graft_hpo.exceptions import ConfigError

_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
FILES["mnist"] = Files("MNIST/raw", _FILES, "MNIST")
FILES["fashion_mnist"] = Files("FashionMNIST/raw", _FILES, "FashionMNIST")


def read_idx(path: Path) -> torch.Tensor:
    """Read an unsigned-byte IDX file (LeCun's MNIST format) into a uint8 tensor.

    Format: two zero bytes, type code 0x08, the number of dimensions, each dimension as a
    big-endian uint32, then the bytes in row-major order.
    """
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError
        raise ConfigError(
            f"data.root: '{path}' cannot be read: {type(exc).__name__}: {exc}"
        ) from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ConfigError(f"data.root: '{path}' is not an unsigned-byte IDX file")
    ndim = raw[3]
    header = 4 + 4 * ndim
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    if len(raw) - header != math.prod(dims):
        raise ConfigError(
            f"data.root: '{path}' holds {len(raw) - header} bytes; its header promises "
            f"{math.prod(dims)} for shape {dims}"
        )
    return torch.frombuffer(bytearray(raw[header:]), dtype=torch.uint8).reshape(dims)


def _load(source: Source, *, name: str, limit: int | None) -> Pool:
    if limit is not None:
        limit = check_int(limit, "data.options.limit", minimum=2)
    directory = ensure_files(source, name=name)
    folder = FILES[name].folder
    tensors = []
    for file in _FILES:
        path = find_file(directory, file)
        if path is None:  # ensure_files checked; a file deleted in between
            raise ConfigError(f"data.root: {name} file {folder}/{file} disappeared")
        tensors.append(read_idx(path))
    x, y, test_x, test_y = tensors
    for images, labels, split in ((x, y, "train"), (test_x, test_y, "t10k")):
        if images.dim() != 3 or labels.dim() != 1 or len(images) != len(labels):
            raise ConfigError(
                f"data.root: {name} {split} files hold images {tuple(images.shape)} and labels "
                f"{tuple(labels.shape)}; expected (n, h, w) and (n,)"
            )
    x, y = subsample(x.unsqueeze(1), y.long(), limit)
    return Pool(
        x=x, y=y, num_classes=10, test_x=test_x.unsqueeze(1), test_y=test_y.long(), scale=255.0
    )


@DATASETS.register("mnist")
def mnist(source: Source, *, limit: int | None = None) -> Pool:
    """MNIST from ``<data.root>/MNIST/raw``: 60,000 train + 10,000 test 28x28 digits.

    Args:
        source: root folder and download flag.
        limit: keep only this many training-pool images (stratified, the same every trial).

    Returns:
        A pool of ``(n, 1, 28, 28)`` uint8 images (scale 255) with the official test split.
    """
    return _load(source, name="mnist", limit=limit)


@DATASETS.register("fashion_mnist")
def fashion_mnist(source: Source, *, limit: int | None = None) -> Pool:
    """Fashion-MNIST from ``<data.root>/FashionMNIST/raw``; see :func:`mnist`."""
    return _load(source, name="fashion_mnist", limit=limit)
