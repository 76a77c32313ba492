"""What runs next and what stops early: Optuna's sampler behind Tune's searcher, the budget
gate around it, and the scheduler (ASHA) that stops poor trials at its rungs."""

from __future__ import annotations

import math
from typing import Any

from graft_hpo.config import PipelineConfig
from graft_hpo.exceptions import ConfigError
from graft_hpo.sweep._budget import Budgets
from graft_hpo.sweep._budget import budget_gate
from graft_hpo.sweep._folder import ranking_cost
from graft_hpo.sweep._plan import SweepPlan
from graft_hpo.sweep._plan import optuna_storage
from graft_hpo.sweep._space import define_by_run
from graft_hpo.tracking import redact

__all__ = ["EPOCHS_DONE", "open_storage", "scheduler", "scheduler_rungs", "searcher"]

EPOCHS_DONE = "epochs_done"  # on every epoch's report: the scheduler's clock (not the final one)


def searcher(plan: SweepPlan) -> Any:
    """Optuna's sampler behind Tune's searcher, gated by the sweep's budgets and concurrency."""
    from ray.tune.search.optuna import OptunaSearch

    search = OptunaSearch(
        space=define_by_run(plan.space),
        metric=[m for m, _ in plan.objectives],
        mode=[mode for _, mode in plan.objectives],
        sampler=_sampler(plan.config),
        storage=open_storage(optuna_storage(plan)),
        study_name=plan.sweep_id,
    )
    return budget_gate(
        search,
        plan.config.search.max_concurrent,
        Budgets.of(plan.config.search),
        tracking_uri=plan.tracking_uri,
        experiment=plan.experiment,
        sweep_id=plan.sweep_id,
        sweep_dir=plan.sweep_dir,
        shared=ranking_cost(plan.sweep_dir),  # written before any trial, fixed since
    )


def _sampler(config: PipelineConfig) -> Any:
    import optuna

    search = config.search
    if search.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=search.seed, multivariate=True, constant_liar=True)
    if search.sampler == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=search.seed)
    if search.sampler == "gp":
        return optuna.samplers.GPSampler(seed=search.seed)
    return optuna.samplers.RandomSampler(seed=search.seed)


def open_storage(url: str) -> Any:
    """Optuna's RDB storage at ``url``; ConfigError (naming ``search.storage``) if unreachable."""
    import optuna
    import sqlalchemy.exc
    from optuna.storages import RDBStorage

    try:
        return RDBStorage(url, heartbeat_interval=None)
    except (sqlalchemy.exc.SQLAlchemyError, ImportError, ValueError, OSError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ConfigError(
            f"search.storage {redact('search.storage', url)!r} cannot be opened as an Optuna "
            f"RDB storage: {reason}"
        ) from err
    finally:
        optuna.logging.disable_default_handler()


def scheduler(config: PipelineConfig) -> Any:
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.schedulers import FIFOScheduler

    sched = config.search.scheduler
    if sched is None:
        return FIFOScheduler()
    return ASHAScheduler(
        # epochs, not reports: a trial validates, and so reports, only at some epochs
        time_attr=EPOCHS_DONE,
        metric=sched.metric,
        mode=sched.mode,
        max_t=config.train.epochs + 1,  # never reached: the last epoch is not a stop
        grace_period=sched.grace_period,
        reduction_factor=sched.reduction_factor,
    )


def scheduler_rungs(config: PipelineConfig) -> set[int]:
    """The epochs (1-based) at which the scheduler compares trials: ASHA's milestones
    ``grace_period * reduction_factor**k`` below ``max_t``, rounded up, as Ray computes them.

    A trial validates after these epochs whatever ``train.eval_every`` says, so ASHA can
    decide there and nowhere else: no trial pays a validation pass per epoch for it.
    """
    sched = config.search.scheduler
    if sched is None:
        return set()
    max_t, rf = config.train.epochs + 1, sched.reduction_factor
    count = int(math.log(max_t / sched.grace_period) / math.log(rf) + 1)
    return {math.ceil(sched.grace_period * rf**k) for k in range(count)}
