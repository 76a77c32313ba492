"""The sweep's one GRAFT selection: a proxy model ranks the training set for every trial.

With ``selection.scope: sweep``, a sweep does not let each trial warm up on the full data and
select with its own model. It trains one proxy, the pipeline's own model and hyperparameters,
for ``selection.proxy_epochs`` full-data epochs, and ranks the data with it
(:meth:`GraftSelector.rank_dataset`); every trial then trains on its budget's prefix of the
ranking (:class:`PrefixSelector`), from its first epoch with ``selection.warm_start_epochs: 0``
(its warm-up epochs run otherwise). The cost is paid once per sweep
instead of once per trial, and a trial an early-stopping scheduler ends at its first rung has
spent nothing on selection.
"""

from __future__ import annotations

import time
from dataclasses import replace

import torch

from graft_hpo._torch import seed_everything
from graft_hpo.config import PipelineConfig
from graft_hpo.data import DataBundle
from graft_hpo.data import load_data
from graft_hpo.models import build_model
from graft_hpo.selection import GraftSelector
from graft_hpo.selection import Ranking
from graft_hpo.selection import Selector
from graft_hpo.selection import selector_for
from graft_hpo.training import resolve_device
from graft_hpo.training import train

__all__ = ["proxy_ranking"]


def proxy_ranking(
    config: PipelineConfig,
    bundle: DataBundle | None = None,
    *,
    ranker: Selector | None = None,
) -> Ranking:
    """Train the proxy model and rank ``config``'s training set with it.

    The proxy is ``config``'s model with ``config.train``'s hyperparameters, trained for
    ``selection.proxy_epochs`` epochs on all the data (none: the untrained model ranks), seeded
    by ``train.seed``; the ranking uses ``config.selection``'s features, rank, selection batch
    size and stratification.

    Args:
        config: the pipeline.
        bundle: its data, if loaded already.
        ranker: the selector ``config.selection`` describes, if built already (a trial's);
            used when it is a :class:`GraftSelector`, else one is built.

    Raises:
        TrialFailedError: the proxy's loss became NaN or infinite.
    """
    start = time.perf_counter()
    bundle = bundle or load_data(config.data, seed=config.train.seed)
    seed_everything(config.train.seed)
    model = build_model(
        config.model, input_shape=bundle.input_shape, num_classes=bundle.num_classes
    )
    device = resolve_device(config.train.device)
    epochs = config.selection.proxy_epochs
    if epochs > 0:
        proxy = replace(config, train=replace(config.train, epochs=epochs, eval_every=epochs))
        selector = selector_for(proxy.selection, proxy.train, proxy=True)
        train(
            model,
            train_set=bundle.train,
            val_set=bundle.val,
            config=proxy,
            device=device,
            selector=selector,
        )
    model.to(device)
    if not isinstance(ranker, GraftSelector):
        ranker = GraftSelector.from_config(config.selection, config.train)
    ranking = ranker.rank_dataset(
        model,
        bundle.train_eval,
        generator=torch.Generator().manual_seed(config.train.seed),
        device=device,
    )
    ranking.stats.update(proxy_epochs=float(epochs), duration_s=time.perf_counter() - start)
    return ranking
