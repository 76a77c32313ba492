"""``synthetic_hard``: its imbalance, modes, duplicates and label noise are what it states."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from graft_hpo.config import DataConfig
from graft_hpo.data import load_data
from graft_hpo.data._base import Source
from graft_hpo.data._synthetic import class_means
from graft_hpo.data._synthetic_hard import counts_for
from graft_hpo.data._synthetic_hard import synthetic_hard
from graft_hpo.exceptions import ConfigError

SOURCE = Source(root=Path("unused"), download=False, seed=0)
# low noise, so the nearest pattern tells every sample's mode and copies stand out
SMALL = {"n": 2000, "shape": [6], "num_classes": 4, "modes": 3, "test_n": 400, "noise": 0.05}


@pytest.mark.parametrize(
    ("weights", "n", "expected"),
    [([3.0, 1.0], 10, [7, 3]), ([1.0, 1.0, 1.0], 10, [4, 3, 3]), ([100.0, 1.0], 5, [4, 1])],
)
def test_counts_for_splits_by_largest_remainder_with_one_each(weights, n, expected):
    counts = counts_for(torch.tensor(weights), n)
    assert counts.tolist() == expected and int(counts.sum()) == n


def test_pool_has_the_stated_imbalance_duplicates_and_noise():
    clean = synthetic_hard(SOURCE, **SMALL, label_noise=0.0, duplicates=0.5)
    noisy = synthetic_hard(SOURCE, **SMALL, label_noise=0.1, duplicates=0.5)
    assert torch.equal(clean.x, noisy.x)  # label noise is drawn last: the same samples
    assert int((clean.y != noisy.y).sum()) == 200  # exactly 10% of the pool relabelled
    sizes = torch.bincount(clean.y, minlength=4)
    assert sizes.tolist() == counts_for(10.0 ** -(torch.arange(4) / 3.0), 2000).tolist()
    assert sizes[0] / sizes[-1] == pytest.approx(10.0, rel=0.05)

    # every sample is its mode's pattern plus noise; copies sit within 0.05 x noise of another
    means = class_means(4 * 3, (6,), torch.Generator().manual_seed(0))
    mode = torch.cdist(clean.x, means).argmin(1)
    assert torch.equal(mode // 3, clean.y)
    first = torch.bincount(mode, minlength=12).view(4, 3)
    assert bool((first[:, 0] > first[:, 2]).all())  # Zipf: mode 0 is the common one
    gaps = torch.cdist(clean.x, clean.x).fill_diagonal_(float("inf")).min(1).values
    # a copy is within ~0.05 x noise x sqrt(6) = 0.006 of its original, distinct samples of
    # one mode ~noise x sqrt(12) = 0.17 apart. Near a neighbour: the 1000 copies and the
    # originals that were copied at least once, about 1 - 1/e of the 1000
    near = int((gaps < 0.05).sum())
    assert 1000 + 550 <= near <= 1000 + 750


def test_test_split_is_clean_and_balanced():
    pool = synthetic_hard(SOURCE, **SMALL)
    assert pool.test_x is not None and pool.test_y is not None
    assert torch.bincount(pool.test_y).tolist() == [100] * 4
    means = class_means(12, (6,), torch.Generator().manual_seed(0))
    assert torch.equal(torch.cdist(pool.test_x, means).argmin(1) // 3, pool.test_y)


def test_loads_as_a_data_set_with_its_own_test_split():
    b = load_data(DataConfig(name="synthetic_hard", options=SMALL, val_fraction=0.1), seed=0)
    assert (len(b.train), len(b.val), len(b.test)) == (1800, 200, 400)
    assert b.input_shape == (6,) and b.num_classes == 4
    with pytest.raises(ConfigError, match=r"data\.options\.duplicates must be a number"):
        load_data(DataConfig(name="synthetic_hard", options={**SMALL, "duplicates": 1.0}), seed=0)


def test_a_pool_too_small_for_every_mode_of_its_rarest_class_is_one_config_error():
    # n >= num_classes * modes passed its check, then the generator failed with a RuntimeError
    # (and a sweep retried every trial as a lost worker)
    with pytest.raises(ConfigError) as caught:
        load_data(DataConfig(name="synthetic_hard", options={"n": 100}), seed=0)
    assert str(caught.value).startswith(
        "data.options.n must give every class at least modes=8 samples under imbalance=10; "
        "got n=100, whose smallest class has"
    )
