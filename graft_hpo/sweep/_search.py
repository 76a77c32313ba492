"""What runs next and what stops early: Optuna's sampler behind Tune's searcher, the budget
gate around it, and the scheduler (ASHA) that stops poor trials at its rungs."""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING
from typing import Any

from graft_hpo._names import ATTR_MLFLOW_RUN
from graft_hpo._names import DONE_KEY
from graft_hpo._names import DURATION_S
from graft_hpo._names import EMISSIONS_METRICS
from graft_hpo._names import EPOCHS_DONE
from graft_hpo._names import FAILED_KEY
from graft_hpo._names import SELECTION_S
from graft_hpo._names import TAG_OPTUNA_TRIAL
from graft_hpo.config import PipelineConfig
from graft_hpo.exceptions import ConfigError
from graft_hpo.sweep._budget import Budgets
from graft_hpo.sweep._budget import Ledger
from graft_hpo.sweep._budget import budget_gate
from graft_hpo.sweep._moasha import make_moasha
from graft_hpo.sweep._plan import SweepPlan
from graft_hpo.tracking import RunLogger
from graft_hpo.tracking import redact

if TYPE_CHECKING:
    from optuna.trial import BaseTrial

    from graft_hpo.space import SearchSpace

__all__ = [
    "COST_METRICS",
    "EMISSIONS_METRICS",
    "define_by_run",
    "open_storage",
    "scheduler",
    "scheduler_rungs",
    "searcher",
    "told_optuna",
]

logger = logging.getLogger(__name__)

# objectives that grow with the epochs trained: what `stopped_report: projected` scales
COST_METRICS = frozenset({*EMISSIONS_METRICS, SELECTION_S, DURATION_S})


def told_optuna(
    result: dict[str, Any] | None, *, policy: str, epochs: int
) -> dict[str, Any] | None:
    """What Optuna is told for a trial's last ``result`` (``search.stopped_report``).

    A trial that trained to the end (its final report carries ``DONE_KEY``) is told as it is.
    A trial a scheduler stopped is told, by ``policy``:

    - ``complete``: its last report, truncated values as if final (Ray's default);
    - ``pruned``: nothing, so Optuna records it PRUNED (its values are not modelled);
    - ``projected``: COMPLETE, with every cost objective (:data:`COST_METRICS`) scaled from
      the epochs it trained to ``epochs``, and its accuracy as reached.

    Example:
        >>> told_optuna({"val_acc": 0.9, "co2_kg": 1.0, EPOCHS_DONE: 2}, policy="projected",
        ...             epochs=20)
        {'val_acc': 0.9, 'co2_kg': 10.0, 'epochs_done': 2}
    """
    if result is None or result.get(DONE_KEY) or EPOCHS_DONE not in result:
        return result
    if policy == "pruned":
        return None
    if policy == "projected":
        scale = epochs / result[EPOCHS_DONE]
        return {k: v * scale if k in COST_METRICS else v for k, v in result.items()}
    return result


class _DefineByRun:
    """A picklable define-by-run function (Ray pickles the searcher with its space)."""

    def __init__(self, space: SearchSpace) -> None:
        self.space = space

    def __call__(self, trial: BaseTrial) -> None:
        self.space.sample(trial)

    def __repr__(self) -> str:
        return (
            f"define_by_run({self.space.source or 'search space'}: {', '.join(self.space.names)})"
        )


def define_by_run(space: SearchSpace) -> _DefineByRun:
    """The define-by-run function for ``ray.tune.search.optuna.OptunaSearch(space=...)``.

    Ray wraps the Optuna trial so that each ``suggest_*`` call records its value under its
    name, runs this function, and hands the trainable ``unflatten_dict(recorded)``, which
    splits names on ``"/"`` only: dotted names stay flat keys of the trial's config
    (``config["selection.fraction"]``), ready for ``apply_overrides``. Inactive parameters are
    absent. The function returns None (no constants to add).
    """
    return _DefineByRun(space)


def searcher(plan: SweepPlan) -> Any:
    """Optuna's sampler behind Tune's searcher, gated by the sweep's budgets and concurrency."""
    from optuna.exceptions import UpdateFinishedTrialError
    from ray.tune.search.optuna import OptunaSearch

    policy, epochs = plan.config.search.stopped_report, plan.config.train.epochs

    class StoppedReport(OptunaSearch):
        """Ray's OptunaSearch, told a stopped trial's values as ``search.stopped_report`` says."""

        def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
            if all(m in result for m in self.metric):  # not a report for a checkpoint only
                super().on_trial_result(trial_id, result)
            self._link(trial_id, result)

        def on_trial_complete(
            self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
        ) -> None:
            self._link(trial_id, result)  # before Optuna is told: a told trial is read-only
            error = error or bool((result or {}).get(FAILED_KEY))
            # a failed trial's values would be [None, ...], which Optuna refuses: tell FAIL
            told = None if error else told_optuna(result, policy=policy, epochs=epochs)
            super().on_trial_complete(trial_id, told, error)

        def _link(self, trial_id: str, result: dict[str, Any] | None) -> None:
            """Once per trial: Optuna's trial names its MLflow run, the run its trial number."""
            linked = self.__dict__.setdefault("_linked", set())
            trial = self._ot_trials.get(trial_id)  # Ray's map from its trial ids to Optuna's
            run_id = (result or {}).get(ATTR_MLFLOW_RUN)
            if trial is None or not run_id or trial_id in linked:
                return
            linked.add(trial_id)
            try:
                trial.set_user_attr(ATTR_MLFLOW_RUN, run_id)
                RunLogger(plan.tracking_uri, run_id).set_tags(
                    {TAG_OPTUNA_TRIAL: str(trial.number)}
                )
            except UpdateFinishedTrialError:
                # a resumed sweep replays a trial Optuna was told of (and linked) before
                return
            except Exception as err:  # a link is bookkeeping: it never fails the sweep
                logger.warning("trial %s: no Optuna-MLflow link (%s)", trial_id, err)

    search = StoppedReport(
        space=define_by_run(plan.space),
        metric=[m for m, _ in plan.objectives],
        mode=[mode for _, mode in plan.objectives],
        sampler=_sampler(plan.config),
        storage=open_storage(plan.optuna_storage),
        study_name=plan.sweep_id,
    )
    ledger = Ledger(
        Budgets.of(plan.config.search),
        tracking_uri=plan.tracking_uri,
        experiment=plan.experiment,
        sweep_id=plan.sweep_id,
        sweep_dir=plan.sweep_dir,
        shared=plan.ranking_cost,
    )
    return budget_gate(search, plan.config.search.max_concurrent, ledger)


# config.SAMPLERS (the names validation accepts) -> Optuna's sampler class and its arguments
# besides the seed; tests/sweep/test_samplers.py holds the keys to those names
_OPTUNA_SAMPLERS: dict[str, tuple[str, dict[str, Any]]] = {
    "tpe": ("TPESampler", {"multivariate": True, "constant_liar": True}),
    "nsga2": ("NSGAIISampler", {}),
    "gp": ("GPSampler", {}),
    "random": ("RandomSampler", {}),
}


def _sampler(config: PipelineConfig) -> Any:
    import optuna

    name, kwargs = _OPTUNA_SAMPLERS[config.search.sampler]  # an unknown name fails validation
    if config.search.startup_trials is not None:  # validation admits it for tpe and gp only
        kwargs = {**kwargs, "n_startup_trials": config.search.startup_trials}
    return getattr(optuna.samplers, name)(seed=config.search.seed, **kwargs)


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


def scheduler(config: PipelineConfig, sweep_dir: str | None = None) -> Any:
    """The trial scheduler ``search.scheduler`` names: none (FIFO), Ray's ASHA on one metric,
    or MO-ASHA on the objectives (its rung records kept in ``sweep_dir``)."""
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.schedulers import FIFOScheduler

    sched = config.search.scheduler
    if sched is None:
        return FIFOScheduler()
    if sched.type == "moasha":
        return make_moasha(
            time_attr=EPOCHS_DONE,
            objectives=[(o.metric, o.mode) for o in config.search.objectives],
            milestones=sorted(scheduler_rungs(config)),
            reduction_factor=sched.reduction_factor,
            sweep_dir=sweep_dir,
        )
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
    ``grace_period * reduction_factor**k`` below ``max_t``, rounded up, as Ray computes them,
    and below ``train.epochs``: at the last epoch a trial has trained them all, and a stop
    there would only take it off the front (a trial does not report its last epoch to the
    scheduler, only its final result).

    A trial validates after these epochs whatever ``train.eval_every`` says, so ASHA can
    decide there and nowhere else: no trial pays a validation pass per epoch for it.
    """
    sched = config.search.scheduler
    if sched is None:
        return set()
    epochs, rf = config.train.epochs, sched.reduction_factor
    count = int(math.log((epochs + 1) / sched.grace_period) / math.log(rf) + 1)
    rungs = {math.ceil(sched.grace_period * rf**k) for k in range(count)}
    return {rung for rung in rungs if rung < epochs}
