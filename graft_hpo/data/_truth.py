"""What each training sample of a bundled data set really is: for benchmarks only.

:func:`training_truth` rebuilds a data set's pool, split and label noise exactly as
:func:`load_data` does and returns, for every sample of ``bundle.train`` in dataset-index order,
its clean label and, for ``synthetic_hard``, whether it is a near-copy and its mode. Training
and selection never call it: they see the labels, and nothing else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from graft_hpo._registry import check_options
from graft_hpo._registry import is_plugin
from graft_hpo.data._base import DATASETS
from graft_hpo.data._base import SampleTruth
from graft_hpo.data._load import _split
from graft_hpo.data._load import source_of
from graft_hpo.data._synthetic_hard import synthetic_hard_pool
from graft_hpo.exceptions import ConfigError

if TYPE_CHECKING:
    from graft_hpo.config import DataConfig

__all__ = ["training_truth"]


def training_truth(cfg: DataConfig, *, seed: int) -> SampleTruth:
    """The truth of ``load_data(cfg, seed=seed).train``'s samples, in dataset-index order.

    Args:
        cfg: the ``data`` section (a built-in data set).
        seed: the split (and label-noise) seed, ``train.seed``.

    Returns:
        ``true_y`` for every data set (mislabelled: ``bundle.train.y != true_y``);
        ``duplicate`` and ``mode`` for ``synthetic_hard``, else None.

    Raises:
        ConfigError: a plug-in data set (its truth is its own), or an unknown name or option.
    """
    if is_plugin(cfg.name):
        raise ConfigError(f"training_truth needs a built-in data set; got {cfg.name!r}")
    name = cfg.name.lower()
    builder = DATASETS.get(name)
    check_options(
        builder, cfg.options, section="data", owner=f"data set {name!r}", positional=("source",)
    )
    if name == "synthetic_hard":
        pool, truth = synthetic_hard_pool(**cfg.options)
    else:
        pool = builder(source_of(cfg, seed=seed), **cfg.options)
        truth = SampleTruth(true_y=pool.y.clone())
    train_idx = _split(pool, cfg, seed)[0]  # load_data's split: the same samples, same order
    return truth.take(train_idx)
