"""User data plug-ins: ``data.name: "tests.plugins.toy:<function>"``."""

from __future__ import annotations

import re

import pytest
import torch

from graft_hpo.data import gather
from graft_hpo.data import load_data
from graft_hpo.exceptions import ConfigError
from tests.plugins import toy


def test_plugin_with_test_split(data_cfg):
    b = load_data(data_cfg("tests.plugins.toy:blobs", options={"n": 30, "dim": 4}), seed=0)
    assert (len(b.train), len(b.val), len(b.test)) == (30, 10, 10)
    assert b.num_classes == 3 and b.input_shape == (4,) and b.name == "tests.plugins.toy:blobs"
    assert b.train is b.train_eval and b.mean is None
    ref = toy.blobs(n=30, dim=4)[0]
    x, y = gather(b.train, torch.arange(30))
    assert torch.equal(x, ref.tensors[0]) and torch.equal(y, ref.tensors[1])


def test_plugin_without_test_split_uses_val(data_cfg):
    b = load_data(data_cfg("tests.plugins.toy:blobs", options={"with_test": False}), seed=0)
    assert b.test is b.val


def test_plugin_classes_attribute_sets_num_classes(data_cfg):
    b = load_data(data_cfg("tests.plugins.toy:named"), seed=0)
    assert b.num_classes == 4 and b.input_shape == (1, 4, 4)


@pytest.mark.parametrize(
    ("function", "got"),
    [
        ("single", "got a TensorDataset"),
        ("four", "got a tuple of 4 (TensorDataset, TensorDataset, TensorDataset, TensorDataset)"),
        ("not_pairs", "yielding (x, y) pairs; train[0] is a tuple of 1 (Tensor)"),
        ("float_labels", "yielding integer class labels y in 0..C-1; train[0][1] is tensor("),
        ("column_labels", "yielding integer class labels y in 0..C-1; train[0][1] is tensor(["),
    ],
)
def test_plugin_wrong_return_shape(data_cfg, function, got):
    with pytest.raises(ConfigError) as err:
        load_data(data_cfg(f"tests.plugins.toy:{function}"), seed=0)
    prefix = (
        f"data.name 'tests.plugins.toy:{function}' must return (train, val) or "
        "(train, val, test) torch Datasets"
    )
    assert str(err.value).startswith(prefix) and got in str(err.value)


def test_plugin_unknown_option(data_cfg):
    with pytest.raises(ConfigError) as err:
        load_data(data_cfg("tests.plugins.toy:blobs", options={"dims": 3}), seed=0)
    assert str(err.value) == (
        "unknown key 'data.options.dims' for data plug-in 'tests.plugins.toy:blobs' "
        "(did you mean 'dim'?); accepted: classes, dim, n, with_test"
    )


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("tests.plugins.nope:fn", "No module named 'tests.plugins.nope'"),
        ("tests.plugins.toy:missing", "module 'tests.plugins.toy' has no attribute 'missing'"),
    ],
)
def test_plugin_import_failures(data_cfg, name, reason):
    with pytest.raises(
        ConfigError, match="^" + re.escape(f"data.name {name!r} could not be imported: {reason}")
    ):
        load_data(data_cfg(name), seed=0)
