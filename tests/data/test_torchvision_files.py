"""cifar10/cifar100/mnist/fashion_mnist read from tiny files the tests write (no downloads)."""

from __future__ import annotations

import gzip
import pickle
import re
import struct
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.datasets

from graft_hpo.data import CropFlipDataset
from graft_hpo.data import InMemoryDataset
from graft_hpo.data import load_data
from graft_hpo.exceptions import ConfigError

from .conftest import denormalise


def _images(n: int, shape: tuple[int, ...], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)


def write_cifar(root: Path, *, hundred: bool = False, per_file: int = 20) -> dict:
    """CIFAR python batches: {'data': (n, 3072) uint8 rows R..G..B, 'labels': [...]}."""
    folder = root / ("cifar-100-python" if hundred else "cifar-10-batches-py")
    folder.mkdir(parents=True)
    classes = 100 if hundred else 10
    key = "fine_labels" if hundred else "labels"
    names = (
        ["train", "test"] if hundred else [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    )
    written = {}
    for seed, name in enumerate(names):
        n = per_file * (5 if hundred and name == "train" else 1)
        images = _images(n, (3, 32, 32), seed)
        labels = [(seed + i) % classes for i in range(n)]
        entry = {"data": images.reshape(n, 3072), key: labels, "batch_label": name}
        if name == "data_batch_2":  # a copy re-pickled with bytes keys must load too
            entry = {k.encode(): v for k, v in entry.items()}
        (folder / name).write_bytes(pickle.dumps(entry))
        written[name] = (images, labels)
    return written


def _idx(array: np.ndarray) -> bytes:
    return (
        struct.pack(">HBB", 0, 0x08, array.ndim)
        + struct.pack(f">{array.ndim}I", *array.shape)
        + array.tobytes()
    )


def write_mnist(root: Path, folder: str, *, gz: bool = False) -> dict:
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    data = {}
    for prefix, n, seed in (("train", 60, 0), ("t10k", 20, 1)):
        images = _images(n, (28, 28), seed)
        labels = (np.arange(n) % 10).astype(np.uint8)
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            name = f"{prefix}-{kind}-ubyte"
            payload = _idx(array)
            if gz:
                (raw / f"{name}.gz").write_bytes(gzip.compress(payload))
            else:
                (raw / name).write_bytes(payload)
        data[prefix] = (images, labels)
    return data


def _cfg(data_cfg, name, root, **kwargs):
    return data_cfg(name, root=str(root), val_fraction=0.25, **kwargs)


def test_cifar10_reads_batches_exactly(data_cfg, tmp_path):
    written = write_cifar(tmp_path)
    b = load_data(_cfg(data_cfg, "cifar10", tmp_path), seed=0)
    assert (len(b.train), len(b.val), len(b.test)) == (75, 25, 20)
    assert b.input_shape == (3, 32, 32) and b.num_classes == 10
    assert isinstance(b.train, CropFlipDataset) and isinstance(b.train_eval, InMemoryDataset)
    assert b.train.base is b.train_eval
    # The official test split keeps its order and pixels (CHW from the R, G, B planes).
    images, labels = written["test_batch"]
    restored = denormalise(b.test.tensors[0], b.mean, b.std) * 255
    assert torch.allclose(restored, torch.as_tensor(images).float(), atol=1e-3)
    assert b.test.tensors[1].tolist() == labels
    # Train + val hold exactly the five training batches (one of them with bytes keys).
    train_pool = np.concatenate([written[f"data_batch_{i}"][0] for i in range(1, 6)])
    got = torch.cat([b.train_eval.tensors[0], b.val.tensors[0]])
    got = denormalise(got, b.mean, b.std).mul(255).round().to(torch.uint8).numpy()
    key = lambda a: sorted(map(bytes, a.reshape(len(a), -1)))  # noqa: E731
    assert key(got) == key(train_pool)
    # Train-only statistics.
    assert b.train_eval.tensors[0].mean(dim=(0, 2, 3)).abs().max() < 1e-5


def test_cifar_augmentation_pads_with_black(data_cfg, tmp_path):
    write_cifar(tmp_path)
    b = load_data(_cfg(data_cfg, "cifar10", tmp_path), seed=0)
    black = (-torch.tensor(b.mean) / torch.tensor(b.std)).view(3, 1, 1)
    x, _ = torch.utils.data.default_collate([b.train[i] for i in range(len(b.train))])
    border = torch.cat([x[:, :, 0, :], x[:, :, -1, :]], dim=-1)  # top and bottom rows
    is_black = torch.isclose(border, black.view(1, 3, 1).expand_as(border)).all(1)
    assert is_black.any()  # some crops were shifted into the padding
    no_aug = load_data(_cfg(data_cfg, "cifar10", tmp_path, options={"augment": False}), seed=0)
    assert no_aug.train is no_aug.train_eval


def test_cifar100_fine_labels_and_limit(data_cfg, tmp_path):
    write_cifar(tmp_path, hundred=True, per_file=40)
    b = load_data(_cfg(data_cfg, "cifar100", tmp_path, options={"limit": 120}), seed=0)
    assert b.num_classes == 100 and len(b.train) + len(b.val) == 120 and len(b.test) == 40
    assert b.test.tensors[1].tolist() == [(1 + i) % 100 for i in range(40)]


def test_mnist_matches_torchvision_reader(data_cfg, tmp_path):
    from torchvision.datasets.mnist import read_image_file
    from torchvision.datasets.mnist import read_label_file

    written = write_mnist(tmp_path, "MNIST")
    b = load_data(_cfg(data_cfg, "mnist", tmp_path), seed=0)
    assert (len(b.train), len(b.val), len(b.test)) == (45, 15, 20)
    assert b.input_shape == (1, 28, 28) and b.train is b.train_eval
    raw = tmp_path / "MNIST" / "raw"
    ref = read_image_file(str(raw / "t10k-images-idx3-ubyte")).float()
    restored = denormalise(b.test.tensors[0], b.mean, b.std)[:, 0] * 255
    assert torch.allclose(restored, ref, atol=1e-3)
    assert torch.equal(
        b.test.tensors[1], read_label_file(str(raw / "t10k-labels-idx1-ubyte")).long()
    )
    assert np.array_equal(ref.numpy().astype(np.uint8), written["t10k"][0])


def test_fashion_mnist_reads_gzipped_files(data_cfg, tmp_path):
    written = write_mnist(tmp_path, "FashionMNIST", gz=True)
    b = load_data(_cfg(data_cfg, "fashion_mnist", tmp_path, options={"limit": 40}), seed=0)
    assert len(b.train) + len(b.val) == 40 and len(b.test) == 20
    restored = denormalise(b.test.tensors[0], b.mean, b.std)[:, 0] * 255
    assert torch.allclose(restored, torch.as_tensor(written["t10k"][0]).float(), atol=1e-3)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("cifar10", "cifar-10-batches-py/data_batch_1 and 5 more"),
        ("cifar100", "cifar-100-python/train and 1 more"),
        ("mnist", "MNIST/raw/train-images-idx3-ubyte and 3 more"),
        ("fashion_mnist", "FashionMNIST/raw/train-images-idx3-ubyte and 3 more"),
    ],
)
def test_missing_files_without_download(data_cfg, tmp_path, name, expected):
    with pytest.raises(ConfigError) as err:
        load_data(_cfg(data_cfg, name, tmp_path), seed=0)
    assert str(err.value) == (
        f"data.root: {name} files not found under '{tmp_path}' (expected {expected}); "
        "set data.download=true or point data.root at them"
    )


def test_partly_missing_files_name_the_missing_one(data_cfg, tmp_path):
    write_cifar(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "test_batch").unlink()
    with pytest.raises(ConfigError, match=re.escape("(expected cifar-10-batches-py/test_batch)")):
        load_data(_cfg(data_cfg, "cifar10", tmp_path), seed=0)


def test_failed_download_is_a_config_error(data_cfg, tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", offline)
    with pytest.raises(ConfigError) as err:
        load_data(_cfg(data_cfg, "cifar10", tmp_path, download=True), seed=0)
    assert "download failed (URLError: <urlopen error no route to host>)" in str(err.value)


def test_download_goes_through_torchvision(data_cfg, tmp_path, monkeypatch):
    calls = []

    def fake_mnist(root, train, download):
        calls.append((root, train, download))
        write_mnist(Path(root), "MNIST")

    monkeypatch.setattr(torchvision.datasets, "MNIST", fake_mnist)
    b = load_data(_cfg(data_cfg, "mnist", tmp_path, download=True), seed=0)
    assert calls == [(str(tmp_path), True, True)] and len(b.test) == 20
    load_data(_cfg(data_cfg, "mnist", tmp_path, download=True), seed=0)
    assert len(calls) == 1  # files present: no second download


def test_corrupt_files_are_config_errors(data_cfg, tmp_path):
    write_cifar(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(ConfigError, match="data_batch_3' is not a cifar10 batch file"):
        load_data(_cfg(data_cfg, "cifar10", tmp_path), seed=0)
    write_mnist(tmp_path, "MNIST")
    path = tmp_path / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(ConfigError, match="its header promises 15680 for shape"):
        load_data(_cfg(data_cfg, "mnist", tmp_path), seed=0)


def test_labels_out_of_range_and_broken_gzip_are_config_errors(data_cfg, tmp_path):
    # a label of 200 trained silently (label noise folded it into range), a negative one
    # failed inside torch, a .gz that is not gzip raised BadGzipFile
    write_mnist(tmp_path, "MNIST")
    labels = tmp_path / "MNIST" / "raw" / "train-labels-idx1-ubyte"
    bad = (np.arange(60) % 10).astype(np.uint8)
    bad[7] = 200
    labels.write_bytes(_idx(bad))
    with pytest.raises(
        ConfigError,
        match=r"^data.root: mnist's labels must be in \[0, 10\); "
        r"got 0 to 200$",
    ):
        load_data(_cfg(data_cfg, "mnist", tmp_path), seed=0)
    write_mnist(tmp_path / "gz", "FashionMNIST", gz=True)
    broken = tmp_path / "gz" / "FashionMNIST" / "raw" / "train-labels-idx1-ubyte.gz"
    broken.write_bytes(b"hello, not gzip")
    with pytest.raises(
        ConfigError,
        match=r"train-labels-idx1-ubyte.gz' cannot be read: "
        r"BadGzipFile",
    ):
        load_data(_cfg(data_cfg, "fashion_mnist", tmp_path / "gz"), seed=0)


def test_default_root_is_the_user_cache(data_cfg, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(ConfigError, match=re.escape(f"under '{tmp_path}/.cache/graft-hpo/data'")):
        load_data(data_cfg("mnist"), seed=0)
