"""``load_data``: build a data set by name, split it with a seed, normalise it on train only."""

from __future__ import annotations

import hashlib
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
from graft_hpo.data._files import check_files
from graft_hpo.data._plugin import load_plugin_data
from graft_hpo.data._split import channel_stats
from graft_hpo.data._split import flip_labels
from graft_hpo.data._split import split_indices
from graft_hpo.exceptions import ConfigError

if TYPE_CHECKING:
    from graft_hpo.config import DataConfig

__all__ = ["DEFAULT_ROOT", "available_datasets", "check_data", "load_data", "noisy_labels"]


DEFAULT_ROOT = "~/.cache/graft-hpo/data"


def available_datasets() -> list[str]:
    """The registered data set names, sorted (plug-ins are given as ``"module:function"``)."""
    return DATASETS.names()


def _count(fraction: float, n: int, key: str) -> int:
    count = round(fraction * n)
    if count < 1:
        raise ConfigError(
            f"{key} must take at least one of the {n} samples (more than {0.5 / n:.2g}); "
            f"got {fraction!r}"
        )
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


def noise_seed(seed: int) -> int:
    """The label noise's own seed, derived from ``seed`` by hashing: a generator seeded with
    ``seed`` itself draws the same first permutation as the noise, and a random subset of a
    budget equal to the noise share was then exactly the mislabelled samples (measured:
    ``random`` at 0.2 on digits with 20% noise trained on wrong labels only, 0.6% accuracy)."""
    digest = hashlib.sha256(f"graft-hpo label noise {seed}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1  # torch seeds are < 2**64; keep it positive


def noisy_labels(
    pool: Pool, cfg: DataConfig, seed: int, train_idx: torch.Tensor, val_idx: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The train and validation labels: the pool's, with ``data.label_noise`` of each split
    flipped (:func:`flip_labels`, seeded by ``seed``); the test split is never touched.

    The split is made on the pool's labels first, so a clean and a noisy run of one seed share
    their samples. Validation is as noisy as training, as in the published noisy-label
    protocols (a practitioner's held-out data has the same labelling process); only the test
    split measures against the truth.
    """
    y_train, y_val = pool.y[train_idx], pool.y[val_idx]
    if cfg.label_noise > 0:
        g = torch.Generator().manual_seed(noise_seed(seed))
        y_train = flip_labels(y_train, cfg.label_noise, pool.num_classes, generator=g)
        y_val = flip_labels(y_val, cfg.label_noise, pool.num_classes, generator=g)
    return y_train, y_val


def _bundle(pool: Pool, *, name: str, cfg: DataConfig, seed: int) -> DataBundle:
    """Split, add label noise, normalise (statistics of the train split only) and wrap a pool."""
    train_idx, val_idx, test_x, test_y = _split(pool, cfg, seed)
    y_train, y_val = noisy_labels(pool, cfg, seed, train_idx, val_idx)

    def floats(x: torch.Tensor) -> torch.Tensor:
        # Always a copy: normalisation runs in place and must not touch the builder's tensors.
        out = x.to(torch.float32, copy=True)
        return out.div_(pool.scale) if pool.scale != 1.0 else out

    x_train = floats(pool.x[train_idx])
    mean, std = channel_stats(x_train)
    train = InMemoryDataset(_normalise(x_train, mean, std), y_train)
    val = InMemoryDataset(_normalise(floats(pool.x[val_idx]), mean, std), y_val)
    test = InMemoryDataset(_normalise(floats(test_x), mean, std), test_y.long())
    augmented: CropFlipDataset | InMemoryDataset = train
    if pool.augment_padding > 0 and x_train.dim() == 4:
        black = (0.0 - mean) / std  # padding looks like black pixels after normalisation
        augmented = CropFlipDataset(train, padding=pool.augment_padding, fill=black)
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


def _no_plugin_noise(cfg: DataConfig) -> None:
    if cfg.label_noise > 0:
        raise ConfigError(
            f"data.label_noise must be 0 for a plug-in (it returns its own splits: add the "
            f"noise there); got {cfg.label_noise!r} for {cfg.name!r}"
        )


def check_data(cfg: DataConfig) -> None:
    """Resolve ``cfg.name`` and check ``cfg.options`` against it, without loading any data.

    Cheap: a plug-in's module is imported (running its module-level code) but its function is
    not called, and no file is read: a built-in's files are looked for (unless
    ``data.download``), their contents and a plug-in's return value are only checked by
    :func:`load_data`.

    Raises:
        ConfigError: an unknown name (with the valid ones and a close match), a plug-in that
            cannot be imported, an option the builder does not take, or missing files.
    """
    if is_plugin(cfg.name):
        _no_plugin_noise(cfg)
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
    check_files(source_of(cfg, seed=0), name=cfg.name.lower())


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
        _no_plugin_noise(cfg)
        return load_plugin_data(cfg)
    builder = DATASETS.get(cfg.name)
    name = cfg.name.lower()
    check_options(
        builder, cfg.options, section="data", owner=f"data set {name!r}", positional=("source",)
    )
    pool = builder(source_of(cfg, seed=seed), **cfg.options)
    _check_labels(pool, name)
    return _bundle(pool, name=name, cfg=cfg, seed=seed)


def _check_labels(pool: Pool, name: str) -> None:
    """Labels in ``[0, num_classes)`` (a corrupted or converted file: a negative one failed in
    torch, a too-large one trained silently, or was folded into range by label noise)."""
    for labels in (pool.y, pool.test_y):
        if (
            labels is not None
            and len(labels)
            and not (int(labels.min()) >= 0 and int(labels.max()) < pool.num_classes)
        ):
            raise ConfigError(
                f"data.root: {name}'s labels must be in [0, {pool.num_classes}); got "
                f"{int(labels.min())} to {int(labels.max())}"
            )


def source_of(cfg: DataConfig, *, seed: int) -> Source:
    """Where a built-in data set reads its files: ``data.root`` (default
    :data:`DEFAULT_ROOT`) made absolute, whether it may download, the split seed."""
    root = Path(cfg.root if cfg.root is not None else DEFAULT_ROOT).expanduser().absolute()
    return Source(root=root, download=bool(cfg.download), seed=seed)
