"""The sweep's shared GRAFT ranking: computed once, before any trial, and measured.

``selection.scope: sweep`` (see :mod:`graft_hpo.proxy`): before any trial starts, the driver
trains the proxy model and ranks the training set; preparing the sweep then stores the ranking
and what it cost (energy, CO2, seconds) in the sweep folder (:mod:`graft_hpo.sweep._folder`:
``ranking.pt``, ``ranking.json``). Trials receive the
ranking through Ray's object store, so trials on other nodes need no shared folder; a resumed
sweep reads it back instead of ranking again. Its energy and CO2 count in the sweep's totals
and budgets, and are logged on the parent run on their own (``shared_selection_*``).
"""

from __future__ import annotations

import itertools
import logging
import time
from dataclasses import replace

import torch

from graft_hpo._names import DURATION_S
from graft_hpo.config import PipelineConfig
from graft_hpo.data import load_data
from graft_hpo.emissions import measure_emissions
from graft_hpo.exceptions import TrialFailedError
from graft_hpo.proxy import proxy_ranking
from graft_hpo.selection import Ranking
from graft_hpo.selection import uses_ranking
from graft_hpo.space import SearchSpace
from graft_hpo.trial import set_up_process

__all__ = ["COST_PREFIX", "compute_ranking", "needs_ranking"]

logger = logging.getLogger(__name__)

COST_PREFIX = "shared_selection_"  # parent-run metrics: shared_selection_energy_kwh, ...


def needs_ranking(config: PipelineConfig, space: SearchSpace) -> bool:
    """Whether some trial of the sweep may train on the shared ranking.

    True when some pair of values a trial may get for ``selection.strategy`` and
    ``selection.scope`` (a choice of the space, or the pipeline's own where the space may leave
    it) makes :func:`~graft_hpo.selection.uses_ranking` true.
    """
    options: dict[str, set[object]] = {
        "selection.strategy": {config.selection.strategy},
        "selection.scope": {config.selection.scope},
    }
    for spec in space.params:
        if spec.name in options and spec.choices is not None:
            # always sampled: the pipeline's value never applies; conditional: it may
            kept = options[spec.name] if spec.when else set()
            options[spec.name] = kept | set(spec.choices)
    return any(
        uses_ranking(replace(config.selection, strategy=str(a), scope=str(b)))
        for a, b in itertools.product(options["selection.strategy"], options["selection.scope"])
    )


def compute_ranking(config: PipelineConfig) -> tuple[Ranking, dict[str, float]]:
    """Train the proxy and rank the data, measured by codecarbon like a trial.

    Returns:
        The ranking and its cost: ``energy_kwh``, ``co2_kg`` (when measured), ``duration_s``.

    Raises:
        TrialFailedError: the proxy or the ranking failed (a NaN loss, out of memory); one line
            that says so, before any trial started.
    """
    # as for a trial, the data and the process's one-off costs are not the selection's
    bundle = load_data(config.data, seed=config.train.seed)
    set_up_process(config)
    threads = torch.get_num_threads()
    # a trial's threads, as the trials have: on a busy driver, more threads spin and wait
    torch.set_num_threads(max(1, int(config.resources.cpu)))
    start = time.perf_counter()
    with measure_emissions(config.emissions, project_name=f"{config.name}-ranking") as energy:
        try:
            ranking = proxy_ranking(config, bundle)  # whatever the pipeline's own strategy
        except (RuntimeError, ValueError) as err:  # TrialFailedError, torch's OutOfMemoryError
            first = str(err).splitlines()[0] if str(err) else ""
            raise TrialFailedError(
                f"the sweep's shared selection (selection.scope=sweep) failed, so no trial "
                f"was started: {type(err).__name__}: {first}"
            ) from err
        finally:
            torch.set_num_threads(threads)
    cost = {**energy.result.metrics(), DURATION_S: time.perf_counter() - start}
    logger.info(
        "shared selection: %d samples ranked in %.1f s (proxy: %d epochs)",
        len(ranking),
        cost[DURATION_S],
        config.selection.proxy_epochs,
    )
    return ranking, cost
