"""``load_data``: build a data set by name, split it with a seed, normalise it on train only."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from graft_hpo._registry import check_float
from graft_hpo._registry import check_options
from graft_hpo._registry import is_plugin
from graft_hpo._registry import load_plugin

# Imported for their registrations.
from graft_hpo.data import _cifar  # noqa: F401
from graft_hpo.data import _digits  # noqa: F401
from graft_hpo.data import _mnist  # noqa: F401
from graft_hpo.data import _mnist5k  # noqa: F401
from graft_hpo.data import _synthetic  # noqa: F401
from graft_hpo.data import _synthetic_hard  # noqa: F401
from graft_hpo.data._base import DATASETS
from graft_hpo.data._base import Pool
from graft_hpo.data._base import Source
from graft_hpo.data._datasets import CropFlipDataset
from graft_hpo.data._datasets import DataBundle
from graft_hpo.data._datasets import InMemoryDataset
from graft_hpo.data._plugin import load_plugin_data
from graft_hpo.data._split import channel_stats
from graft_hpo.data._split import split_indices
from graft_hpo.exceptions import ConfigError

if TYPE_CHECKING:
    from graft_hpo.config import DataConfig

__all__ = ["DEFAULT_ROOT", "available_datasets", "check_data", "load_data"]

logger = logging.getLogger(__name__)

DEFAULT_ROOT = "~/.cache/graft-hpo/data"


def available_datasets() -> list[str]:
    """The registered data set names, sorted (plug-ins are given as ``"module:function"``)."""
    return DATASETS.names()


def _count(fraction: float, n: int, key: str) -> int:
    count = round(fraction * n)
    if count < 1:
        raise ConfigError(f"{key} must leave at least one of the {n} samples; got {fraction!r}")
    return count


def _normalise(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    shape = (1, -1) + (1,) * (x.dim() - 2)
    return x.sub_(mean.view(shape)).div_(std.view(shape))


def _split(
    pool: Pool, cfg: DataConfig, seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(train_idx, val_idx, test_x, test_y)``: the pool's stratified split with ``seed``.

    The test split is the pool's official one, or else ``data.test_fraction`` of the pool.
    """
    n = len(pool.y)
    val_fraction = check_float(cfg.val_fraction, "data.val_fraction", low=0.0, high=1.0)
    g = torch.Generator().manual_seed(seed)
    if pool.test_x is None or pool.test_y is None:
        test_fraction = check_float(cfg.test_fraction, "data.test_fraction", low=0.0, high=1.0)
        if val_fraction + test_fraction >= 1.0:
            raise ConfigError(
                "data.val_fraction + data.test_fraction must be < 1; "
                f"got {val_fraction!r} + {test_fraction!r}"
            )
        sizes = [
            _count(test_fraction, n, "data.test_fraction"),
            _count(val_fraction, n, "data.val_fraction"),
        ]
        test_idx, val_idx, train_idx = split_indices(pool.y, sizes, generator=g)
        test_x, test_y = pool.x[test_idx], pool.y[test_idx]
    else:
        if val_fraction >= 1.0:
            raise ConfigError(f"data.val_fraction must be in (0, 1); got {val_fraction!r}")
        sizes = [_count(val_fraction, n, "data.val_fraction")]
        val_idx, train_idx = split_indices(pool.y, sizes, generator=g)
        test_x, test_y = pool.test_x, pool.test_y
    if len(train_idx) == 0:
        raise ConfigError(
            f"data.val_fraction must leave training samples out of {n}; got {val_fraction!r}"
        )
    return train_idx, val_idx, test_x, test_y


def _bundle(pool: Pool, *, name: str, cfg: DataConfig, seed: int) -> DataBundle:
    """Split, normalise (statistics of the train split only) and wrap a pool."""
    train_idx, val_idx, test_x, test_y = _split(pool, cfg, seed)

    def floats(x: torch.Tensor) -> torch.Tensor:
        # Always a copy: normalisation runs in place and must not touch the builder's tensors.
        out = x.to(torch.float32, copy=True)
        return out.div_(pool.scale) if pool.scale != 1.0 else out

    x_train = floats(pool.x[train_idx])
    mean, std = channel_stats(x_train)
    train = InMemoryDataset(_normalise(x_train, mean, std), pool.y[train_idx])
    val = InMemoryDataset(_normalise(floats(pool.x[val_idx]), mean, std), pool.y[val_idx])
    test = InMemoryDataset(_normalise(floats(test_x), mean, std), test_y.long())
    augmented: CropFlipDataset | InMemoryDataset = train
    if pool.augment_padding > 0 and x_train.dim() == 4:
        black = (0.0 - mean) / std  # padding looks like black pixels after normalisation
        augmented = CropFlipDataset(train, padding=pool.augment_padding, fill=black)
    logger.info(
        "data %s: %d train, %d val, %d test, %d classes, input %s",
        name,
        len(train),
        len(val),
        len(test),
        pool.num_classes,
        tuple(x_train.shape[1:]),
    )
    return DataBundle(
        train=augmented,
        val=val,
        test=test,
        train_eval=train,
        num_classes=pool.num_classes,
        input_shape=tuple(x_train.shape[1:]),
        name=name,
        mean=tuple(mean.tolist()),
        std=tuple(std.tolist()),
    )


def check_data(cfg: DataConfig) -> None:
    """Resolve ``cfg.name`` and check ``cfg.options`` against it, without loading any data.

    Cheap: a plug-in's module is imported (running its module-level code) but its function is
    not called, and no file is read, so missing files and a plug-in's return value are only
    found by :func:`load_data`.

    Raises:
        ConfigError: an unknown name (with the valid ones and a close match), a plug-in that
            cannot be imported, or an option the builder does not take.
    """
    if is_plugin(cfg.name):
        function = load_plugin(cfg.name, section="data")
        check_options(function, cfg.options, section="data", owner=f"data plug-in {cfg.name!r}")
        return
    builder = DATASETS.get(cfg.name)
    check_options(
        builder,
        cfg.options,
        section="data",
        owner=f"data set {cfg.name.lower()!r}",
        positional=("source",),
    )


def load_data(cfg: DataConfig, *, seed: int) -> DataBundle:
    """Load the data set ``cfg.name`` and split it into train/val/test.

    Built-in data sets are split with ``seed`` (stratified by class): ``val_fraction`` of the
    training pool becomes ``val``; where the data set has no official test split,
    ``test_fraction`` of the pool becomes ``test`` (both fractions of the whole pool). Inputs
    are normalised per channel with the mean/std of the train split alone. A plug-in
    ``"package.module:function"`` returns its own splits (see :mod:`graft_hpo.data._plugin`).

    Args:
        cfg: the ``data`` section.
        seed: seeds the split (the same seed gives the same split).

    Returns:
        The bundle of splits; training samples are addressed by dataset index.

    Raises:
        ConfigError: an unknown name or option, bad fractions, missing files.

    Example:
        >>> from graft_hpo.config import DataConfig  # doctest: +SKIP
        >>> bundle = load_data(DataConfig(name="digits"), seed=0)  # doctest: +SKIP
        >>> len(bundle.train), bundle.input_shape, bundle.num_classes  # doctest: +SKIP
        (1079, (1, 8, 8), 10)
    """
    if is_plugin(cfg.name):
        return load_plugin_data(cfg)
    builder = DATASETS.get(cfg.name)
    name = cfg.name.lower()
    check_options(
        builder, cfg.options, section="data", owner=f"data set {name!r}", positional=("source",)
    )
    root = Path(cfg.root if cfg.root is not None else DEFAULT_ROOT).expanduser().absolute()
    pool = builder(Source(root=root, download=bool(cfg.download), seed=seed), **cfg.options)
    return _bundle(pool, name=name, cfg=cfg, seed=seed)
