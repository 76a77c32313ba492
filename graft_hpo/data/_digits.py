"""``digits``: scikit-learn's 1,797 real 8x8 digit images (no download)."""

from __future__ import annotations

import torch

from graft_hpo.data._base import DATASETS
from graft_hpo.data._base import Pool
from graft_hpo.data._base import Source
from graft_hpo.exceptions import ConfigError


@DATASETS.register("digits")
def digits(source: Source) -> Pool:
    """1,797 8x8 grey digit images from ``sklearn.datasets.load_digits()``, scaled to [0, 1].

    There is no official test split: ``data.test_fraction`` of the pool becomes the test set.

    Returns:
        A pool with ``x`` ``(1797, 1, 8, 8)`` float32 and 10 classes.
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise ConfigError(
            f"data.name 'digits' needs scikit-learn: pip install scikit-learn ({exc})"
        ) from exc
    bunch = load_digits()
    x = torch.as_tensor(bunch.data, dtype=torch.float32).reshape(-1, 1, 8, 8) / 16.0  # 0..16
    y = torch.as_tensor(bunch.target, dtype=torch.long)
    return Pool(x=x, y=y, num_classes=10)
