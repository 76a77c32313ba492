"""One trial, assembled in one place: build, seed, measure, train, log.

``graft-hpo train`` and the Ray trainable both call :func:`run_trial`. Order of work: validate
and build everything that can be wrong (data, model, selector) before anything is written to the
tracking store, then seed, open the MLflow run, and train inside the emissions measurement.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import time
import traceback
import uuid
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import torch

from graft_hpo._names import DURATION_S
from graft_hpo._names import SELECTION_S
from graft_hpo._names import TAG_EMISSIONS_ERROR
from graft_hpo._names import TAG_EMISSIONS_ESTIMATED
from graft_hpo._names import TAG_EMISSIONS_ESTIMATED_PARTS
from graft_hpo._names import TAG_ERROR
from graft_hpo._names import TAG_GPU_ATTRIBUTED
from graft_hpo._names import TAG_STRATEGY
from graft_hpo._names import TEST_ACC
from graft_hpo._names import TEST_LOSS
from graft_hpo._torch import seed_everything
from graft_hpo._trial_checks import check_pipeline
from graft_hpo._trial_checks import check_plugins
from graft_hpo._trial_hooks import EnergySoFar
from graft_hpo._trial_hooks import LogToRun
from graft_hpo._trial_hooks import TrialHooks
from graft_hpo._trial_hooks import add_spent
from graft_hpo._trial_hooks import end_hooks
from graft_hpo.config import PipelineConfig
from graft_hpo.config import config_to_dict
from graft_hpo.config import flatten_config
from graft_hpo.data import DataBundle
from graft_hpo.data import load_data
from graft_hpo.emissions import gpu_index
from graft_hpo.emissions import measure_emissions
from graft_hpo.emissions import warm_up
from graft_hpo.exceptions import ConfigError
from graft_hpo.exceptions import TrialFailedError
from graft_hpo.models import build_model
from graft_hpo.proxy import proxy_ranking
from graft_hpo.selection import Ranking
from graft_hpo.selection import Selector
from graft_hpo.selection import selector_for
from graft_hpo.selection import uses_ranking
from graft_hpo.tracking import RunLogger
from graft_hpo.tracking import check_store
from graft_hpo.tracking import resolve_tracking_uri
from graft_hpo.training import TrainHooks
from graft_hpo.training import evaluate
from graft_hpo.training import resolve_device
from graft_hpo.training import train

__all__ = [
    "CONFIG_ARTIFACT",
    "Resume",
    "TrialHooks",
    "TrialResult",
    "check_pipeline",
    "check_plugins",
    "run_trial",
    "seed_everything",
    "set_up_process",
    "start_trial_run",
]

CONFIG_ARTIFACT = "config.json"  # each trial run's whole pipeline config, as JSON

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Resume:
    """Where a trial goes on after its process was lost (a sweep's retry, a resumed sweep).

    Attributes:
        run_id: the trial's MLflow run, reopened (its params and config are there already);
            None starts a new run.
        loop: the training loop's state at the trial's last checkpoint
            (``TrainState.snapshot()``); None trains from the first epoch.
        spent: what the earlier attempts measured (the emissions metrics and ``duration_s``),
            the lost epochs included: the trial's metrics count them.
    """

    run_id: str | None = None
    loop: Mapping[str, Any] | None = None
    spent: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class TrialResult:
    """The outcome of one trial, JSON-serialisable via :meth:`to_dict`.

    Attributes:
        run_id: the MLflow run id, or None when tracking was off.
        status: ``FINISHED`` or ``FAILED``.
        params: the trial's configuration as dotted keys.
        metrics: final metrics (``val_acc``, ``co2_kg``, ``energy_kwh``, ``duration_s``, ...).
        error: ``"<Type>: <message>"`` when the trial failed.
    """

    run_id: str | None
    status: str
    params: dict[str, Any]
    metrics: dict[str, float]
    error: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_trial(
    config: PipelineConfig,
    *,
    tracking: bool = True,
    tracking_uri: str | None = None,
    parent_run_id: str | None = None,
    run_name: str | None = None,
    tags: Mapping[str, str] | None = None,
    hooks: Sequence[TrainHooks] = (),
    evaluate_test: bool = False,
    ranking: Ranking | None = None,
    resume: Resume | None = None,
) -> TrialResult:
    """Train one model as ``config`` says, measure its emissions and record it in MLflow.

    Args:
        config: a validated pipeline.
        tracking: log to MLflow (one run; nested under ``parent_run_id`` if given).
        tracking_uri: overrides ``config.tracking.uri`` and ``$MLFLOW_TRACKING_URI``.
        parent_run_id: the sweep's parent run, for a nested trial run.
        run_name: the run's display name; ``None`` -> ``"<strategy>-<8 random hex digits>"``
            (random from the OS, not from the seeded ``random``: MLflow's own generated
            names would repeat for every trial of one seed).
        tags: extra run tags (``sweep_id``, ...).
        hooks: extra training hooks (Ray reporting, budgets).
        evaluate_test: also evaluate on the held-out test split (``test_acc``, ``test_loss``)
            once training ends, unless a hook stopped it early.
        ranking: the sweep's ranking for ``selection.scope=sweep`` (the trial trains on its
            budget's prefix); without one such a trial ranks the data itself first, with a
            proxy model, inside its own measurement.
        resume: go on with an earlier attempt of this trial (its run, its checkpoint, what it
            spent) instead of starting afresh.

    Returns:
        A :class:`TrialResult`; a failed trial returns ``status="FAILED"`` with the error.

    Raises:
        ConfigError: bad input, detected before anything is written to the tracking store.
    """
    if tracking:  # a store MLflow would refuse, said before the data loads
        check_store(resolve_tracking_uri(tracking_uri or config.tracking.uri))
    trial = _Trial.build(config)
    params = flatten_config(config)
    resume = resume or Resume()
    run = None
    if tracking and resume.run_id is not None:
        run = RunLogger(tracking_uri or config.tracking.uri, resume.run_id)
        run.reopen()
        run.set_tags(dict(tags or {}))  # this attempt's (its node, ...)
    elif tracking:
        run = start_trial_run(
            config, params, uri=tracking_uri, parent=parent_run_id, name=run_name, tags=tags
        )
    with _closed_on_error(run):
        for hook in hooks:
            if isinstance(hook, TrialHooks):
                hook.on_trial_start(run.run_id if run is not None else None)
        set_up_process(config)
        step = functools.partial(
            trial.train_and_test, ranking=ranking, evaluate_test=evaluate_test, resume=resume.loop
        )
        measured = _measure(config, step, run=run, hooks=hooks, spent=resume.spent)
        error = measured.error
        if error is None:
            error = end_hooks(hooks, trial.model, trial.bundle, run)
        return _record(run, params, measured, error)


@contextlib.contextmanager
def _closed_on_error(run: RunLogger | None) -> Iterator[None]:
    """End ``run`` if what runs inside raises: ``KILLED`` for Ctrl-C or ``SystemExit`` (the run
    is kept), else ``FAILED`` with the error tag; then let the exception go on. A run is never
    left ``RUNNING`` by a trial that is over (a failure inside training is a result instead)."""
    try:
        yield
    except BaseException as exc:
        if run is not None:
            if isinstance(exc, Exception):
                with contextlib.suppress(Exception):  # the store may be what failed
                    run.set_tags({TAG_ERROR: f"{type(exc).__name__}: {exc}"})
            run.end("FAILED" if isinstance(exc, Exception) else "KILLED")
        raise


@dataclass(frozen=True)
class _Trial:
    """A trial's parts, checked and built before anything is written to the tracking store."""

    config: PipelineConfig
    bundle: DataBundle
    model: torch.nn.Module
    selector: Selector  # selector_for(config), built once (by check_pipeline)

    @classmethod
    def build(cls, config: PipelineConfig) -> _Trial:
        """Check ``config``, load its data, seed, and build the model.

        Raises:
            ConfigError: anything :func:`check_pipeline` finds, or a device this machine lacks.
        """
        selector = check_pipeline(config)
        try:  # e.g. train.device=cuda on a machine without one: bad input, nothing logged
            resolve_device(config.train.device)
        except TrialFailedError as err:
            raise ConfigError(str(err)) from err
        bundle = load_data(config.data, seed=config.train.seed)
        seed_everything(config.train.seed)
        model = build_model(
            config.model, input_shape=bundle.input_shape, num_classes=bundle.num_classes
        )
        check_plugins(config, (bundle, model))
        logger.info(bundle.describe())
        return cls(config, bundle, model, selector)

    def train_and_test(
        self,
        hooks: Sequence[TrainHooks],
        measured: _Measured,
        *,
        ranking: Ranking | None,
        evaluate_test: bool,
        resume: Mapping[str, Any] | None = None,
    ) -> None:
        """Train (on the prefix of ``ranking`` with ``selection.scope=sweep``, ranking first
        if there is none), then evaluate; results go into ``measured`` as they come."""
        config, selector, ranking_s = self.config, self.selector, 0.0
        if uses_ranking(config.selection):
            if ranking is None:  # no sweep ranked for us: our own proxy ranks, measured
                ranking = proxy_ranking(config, self.bundle, ranker=selector)
                ranking_s = ranking.stats.get(DURATION_S, 0.0)
                logger.info(
                    "this trial's own proxy ranked %d samples in %.1f s (selection.scope=sweep "
                    "outside a sweep; proxy_epochs=%d; counted in %s)",
                    len(ranking),
                    ranking_s,
                    config.selection.proxy_epochs,
                    SELECTION_S,
                )
            selector = selector_for(config.selection, config.train, ranking)
        result = train(
            self.model,
            train_set=self.bundle.train,
            val_set=self.bundle.val,
            selection_set=self.bundle.train_eval,
            config=config,
            hooks=hooks,
            selector=selector,
            resume=resume,
        )
        measured.metrics.update(result.metrics)
        measured.metrics[SELECTION_S] = measured.metrics.get(SELECTION_S, 0.0) + ranking_s
        if result.stop_reason is not None:  # a hook ended training early
            measured.tags.update(early_stopped="true", stop_reason=result.stop_reason)
        # a model trained to the end is scored once on the test split, inside the trial's
        # measured energy; a stopped one is not (it is on no front)
        if evaluate_test and result.stop_reason is None and len(self.bundle.test):  # type: ignore[arg-type]
            measured.metrics.update(_test_metrics(self.model, self.bundle, config))


@dataclass
class _Measured:
    """What a trial's measured window produced (filled in as it goes)."""

    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    error: str | None = None  # "<Type>: <message>" when training failed


def start_trial_run(
    config: PipelineConfig,
    params: dict[str, Any],
    *,
    uri: str | None,
    parent: str | None,
    name: str | None,
    tags: Mapping[str, str] | None,
) -> RunLogger:
    """Open the trial's MLflow run; log its params and config (what ``retrain`` rebuilds)."""
    run = RunLogger.start(
        uri or config.tracking.uri,
        config.tracking.experiment or config.name,
        run_name=name or f"{config.selection.strategy}-{uuid.uuid4().hex[:8]}",
        parent_run_id=parent,
        tags={TAG_STRATEGY: config.selection.strategy, **(tags or {})},
    )
    with _closed_on_error(run):
        run.log_params(params)
        run.log_dict(config_to_dict(config), CONFIG_ARTIFACT)
    return run


def _measure(
    config: PipelineConfig,
    step: Callable[[Sequence[TrainHooks], _Measured], None],
    *,
    run: RunLogger | None,
    hooks: Sequence[TrainHooks],
    spent: Mapping[str, float],
) -> _Measured:
    """Run ``step`` (training) inside the emissions measurement, with the trial's own hooks
    first; add the energy, CO2 and duration measured.

    A failing trial is a result, never a crash of the sweep: ``step``'s exception becomes
    ``error``. Ctrl-C or SystemExit propagates (:func:`_closed_on_error` ends the run).
    What earlier attempts ``spent`` (:class:`Resume`) is added to every figure.
    """
    measured = _Measured()
    start = time.perf_counter()
    # on a GPU other trials may share, the trial is charged its share of the device's energy
    gpu = gpu_index(resolve_device(config.train.device))
    with measure_emissions(config.emissions, project_name=config.name, gpu_device=gpu) as energy:
        # logged before the caller's hooks run: a hook that fails still leaves the epoch
        so_far = EnergySoFar(energy, spent, started=start)
        all_hooks = [so_far, *([LogToRun(run)] if run else []), *hooks]
        try:
            step(all_hooks, measured)
        except Exception as err:
            measured.error = f"{type(err).__name__}: {err}"
            logger.warning("trial failed: %s", measured.error)
            logger.debug("%s", traceback.format_exc())
    measured.metrics.update(add_spent(energy.result.metrics(), spent))
    measured.metrics[DURATION_S] = time.perf_counter() - start + spent.get(DURATION_S, 0.0)
    if energy.result.error is not None:
        measured.tags[TAG_EMISSIONS_ERROR] = energy.result.error
    if energy.result.gpu_attribution is not None:  # docs/gpu/README.md: the method
        measured.tags[TAG_GPU_ATTRIBUTED] = energy.result.gpu_attribution
    if energy.result.estimated is not None:  # parts raised to duration x power (emissions/)
        measured.tags[TAG_EMISSIONS_ESTIMATED] = "true"
        measured.tags[TAG_EMISSIONS_ESTIMATED_PARTS] = energy.result.estimated
    return measured


def _record(
    run: RunLogger | None, params: dict[str, Any], measured: _Measured, error: str | None
) -> TrialResult:
    """The trial's result, also logged to its run (finite metrics, tags), which ends."""
    metrics = {k: float(v) for k, v in measured.metrics.items() if math.isfinite(float(v))}
    status = "FINISHED" if error is None else "FAILED"
    tags = dict(measured.tags)
    if error is not None:
        tags[TAG_ERROR] = error
    if run is not None:
        run.log_metrics(metrics)
        run.set_tags(tags)
        run.end(status)
    return TrialResult(run.run_id if run else None, status, params, metrics, error, tags)


def set_up_process(config: PipelineConfig) -> None:
    """One-off costs of this process, paid before the trial's measurement starts.

    They belong to the worker, not to the configuration it happens to run first: the first
    optimizer a process builds makes torch import ``torch._dynamo`` (about 1.5 s), and the
    first codecarbon tracker probes the hardware (about 1.1 s). Measured inside the first trial,
    they made it look 2.6 s more expensive than the same configuration run later.
    """
    _build_first_optimizer()
    warm_up(config.emissions)


@functools.cache
def _build_first_optimizer() -> None:
    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)


def _test_metrics(
    model: torch.nn.Module, bundle: DataBundle, config: PipelineConfig
) -> dict[str, float]:
    device = resolve_device(config.train.device)
    loss, acc = evaluate(model, bundle.test, batch_size=config.train.batch_size, device=device)
    return {TEST_LOSS: loss, TEST_ACC: acc}
