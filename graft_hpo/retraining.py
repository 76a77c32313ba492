"""From a chosen trial to a registered model: retrain, measure, evaluate, log, register.

:func:`retrain` rebuilds a trial run's pipeline from its ``config.json`` artifact, applies the
caller's changes (more epochs, ``selection.strategy=full``, ...), trains it again with
:func:`graft_hpo.trial.run_trial` (codecarbon measures it; the held-out test split is
evaluated), logs the model with MLflow's PyTorch flavour (signature and input example) into the
retraining's run, and registers it under a name with its lineage as tags.

Example:
    >>> from graft_hpo.retraining import retrain
    >>> model = retrain(run_id, register="mnist-cnn", epochs=30)  # doctest: +SKIP
    >>> from graft_hpo import load_model
    >>> load_model(model.model_uri, tracking_uri=model.tracking_uri).predict(images)
    ... # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Mapping
from collections.abc import Sequence
from collections.abc import Sized
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any
from typing import cast

import numpy as np
import torch

from graft_hpo._log import root_logging_kept
from graft_hpo._names import CO2_KG
from graft_hpo._names import ENERGY_KWH
from graft_hpo._names import FRACTION_EFFECTIVE
from graft_hpo._names import TAG_LINEAGE
from graft_hpo._names import TAG_PARENT_RUN_ID
from graft_hpo._names import TAG_ROLE
from graft_hpo._names import TAG_SOURCE_RUN
from graft_hpo._names import TAG_SOURCE_SWEEP
from graft_hpo._names import TAG_SWEEP_ID
from graft_hpo._names import TEST_ACC
from graft_hpo._names import VAL_ACC
from graft_hpo.config import Overrides
from graft_hpo.config import PipelineConfig
from graft_hpo.config import apply_overrides
from graft_hpo.config import config_from_dict
from graft_hpo.config import parse_overrides
from graft_hpo.config import rule_errors
from graft_hpo.data import DataBundle
from graft_hpo.exceptions import ConfigError
from graft_hpo.models import Standardized
from graft_hpo.tracking import global_tracking_uri
from graft_hpo.tracking import open_client
from graft_hpo.tracking import resolve_tracking_uri
from graft_hpo.trial import CONFIG_ARTIFACT
from graft_hpo.trial import TrialHooks
from graft_hpo.trial import run_trial

__all__ = ["RetrainResult", "config_of_run", "retrain"]

logger = logging.getLogger(__name__)

MODEL_ARTIFACT = "model"
_EXAMPLES = 4  # samples in the logged input example


@dataclass(frozen=True)
class RetrainResult:
    """The outcome of :func:`retrain`, JSON-serialisable via :meth:`to_dict`.

    Attributes:
        run_id: the retraining's MLflow run.
        status: ``FINISHED`` or ``FAILED``.
        source_run_id: the trial run whose configuration was retrained.
        model_uri: where the logged model loads from (``models:/NAME/VERSION`` when
            registered, else ``runs:/RUN_ID/model``); None when the run failed.
        registered: ``{"name", "version"}`` of the registered model version, or None.
        metrics: the retraining's final metrics (``test_acc``, ``co2_kg``, ``energy_kwh``, ...).
        lineage: the tags set on the model version (sweep id, source run, energy, ...).
        error: ``"<Type>: <message>"`` when the run failed; why registering failed when the
            run finished and its model is logged (``model_uri`` is then the run's).
        tracking_uri: the store holding the run and the model: load it with
            ``graft_hpo.load_model(result.model_uri, tracking_uri=result.tracking_uri)``.
    """

    run_id: str | None
    status: str
    source_run_id: str
    model_uri: str | None
    registered: dict[str, str] | None
    metrics: dict[str, float]
    lineage: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    tracking_uri: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def config_of_run(
    run_id: str, *, tracking_uri: str | None = None, overrides: Overrides = ()
) -> PipelineConfig:
    """The whole pipeline a trial run trained, from its ``config.json`` artifact.

    Args:
        run_id: a trial run.
        tracking_uri: the store holding it.
        overrides: dotted changes applied before the result is validated, so that they can
            mend a value a later version of graft-hpo no longer accepts.

    Raises:
        ConfigError: the run does not exist or logged no readable config (not a graft-hpo
            trial run), a bad override, or a config that does not validate even with them.
    """
    uri = resolve_tracking_uri(tracking_uri)
    client = open_client(uri)
    _get_run(client, run_id, uri)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = client.download_artifacts(run_id, CONFIG_ARTIFACT, tmp)
        except Exception as err:  # MLflow raises several types for a missing artifact
            raise ConfigError(
                f"RUN_ID {run_id!r} has no {CONFIG_ARTIFACT} artifact: not a graft-hpo trial "
                f"run ({type(err).__name__})"
            ) from err
        try:
            data = json.loads(Path(path).read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            message = f"RUN_ID {run_id!r}: its {CONFIG_ARTIFACT} is not JSON ({err})"
            raise ConfigError(message) from err
    try:
        stored = config_from_dict(data)
    except ConfigError:  # stored by another version: the overrides may mend it
        source = f"run {run_id}'s {CONFIG_ARTIFACT}" + (" with the changes" if overrides else "")
        return config_from_dict(data, overrides=overrides, source=source)
    return apply_overrides(stored, overrides)  # a bad override is the caller's, not the run's


def retrain(
    run_id: str,
    *,
    tracking_uri: str | None = None,
    epochs: int | None = None,
    overrides: Sequence[str] | Mapping[str, Any] = (),
    register: str | None = None,
    evaluate_test: bool = True,
) -> RetrainResult:
    """Train a trial's configuration again, log the model and optionally register it.

    Args:
        run_id: the trial run to retrain (e.g. the one a selection policy chose).
        tracking_uri: the MLflow store holding that run (the retraining logs there too).
        epochs: train this many epochs instead of the trial's ``train.epochs``.
        overrides: dotted changes, e.g. ``["selection.strategy=full"]`` for all the data.
        register: register the model under this name in MLflow's model registry.
        evaluate_test: evaluate on the held-out test split (``test_acc``, ``test_loss``).

    Returns:
        A :class:`RetrainResult`; ``status="FAILED"`` (and no model) if training failed.

    Raises:
        ConfigError: unknown run, a run without a config, bad overrides or ``epochs``.
    """
    uri = resolve_tracking_uri(tracking_uri)
    client = open_client(uri)
    source = _get_run(client, run_id, uri)
    changes = _changes(overrides, epochs, register)
    config = config_of_run(run_id, tracking_uri=uri, overrides=changes)
    sweep_id = source.data.tags.get(TAG_SWEEP_ID)
    tags = {TAG_ROLE: "retrain", TAG_SOURCE_RUN: run_id}
    if sweep_id:
        tags[TAG_SOURCE_SWEEP] = sweep_id
    said = ", ".join(f"{k}={v}" for k, v in changes.items())
    logger.info("retraining run %s (%s)", run_id, said or "as it was")

    logged = _LogModel(uri)
    result = run_trial(
        config,
        tracking_uri=uri,
        run_name=f"retrain-{run_id[:8]}",
        tags=tags,
        hooks=[logged],
        evaluate_test=evaluate_test,
    )
    if result.status != "FINISHED" or result.run_id is None:
        failed = (result.run_id, result.status, run_id, None, None, result.metrics)
        return RetrainResult(*failed, error=result.error, tracking_uri=uri)

    lineage = _lineage(client, source, config, result.metrics, sweep_id)
    client.set_tag(result.run_id, TAG_LINEAGE, json.dumps(lineage, sort_keys=True))
    model_uri = f"runs:/{result.run_id}/{MODEL_ARTIFACT}"
    registered, error = None, None
    if register is not None:
        try:
            version = _register(
                uri, logged.model_uri or model_uri, register, lineage, result.run_id
            )
        except Exception as err:  # the registry refused (or the store has none): keep the model
            error = f"registering the model as {register!r} failed ({type(err).__name__}: {err})"
            error += f"; it stays logged at {model_uri}"
        else:
            registered = {"name": register, "version": version}
            model_uri = f"models:/{register}/{version}"
    return RetrainResult(
        result.run_id,
        result.status,
        run_id,
        model_uri,
        registered,
        result.metrics,
        lineage,
        error=error,
        tracking_uri=uri,
    )


def _changes(
    overrides: Sequence[str] | Mapping[str, Any], epochs: int | None, register: str | None
) -> dict[str, Any]:
    """The dotted changes to the run's config, after checking ``epochs`` and ``register``
    (before training: a name MLflow refuses would lose the result)."""
    changes = parse_overrides(overrides)
    if epochs is not None:
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise ConfigError(f"--epochs must be an integer >= 1; got {epochs!r}")
        changes["train.epochs"] = epochs
    if register is not None:
        errors = rule_errors({"retrain.register": register})
        if errors:
            raise ConfigError(errors[0].replace("retrain.register", "--register", 1))
    return changes


class _LogModel(TrialHooks):
    """Logs the trained model into the retraining's run, with a signature and an example."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.model_uri: str | None = None

    def on_trial_end(self, model: torch.nn.Module, bundle: DataBundle, run_id: str | None) -> None:
        import mlflow
        from mlflow.models import infer_signature

        with root_logging_kept():
            import mlflow.pytorch

        model = model.to("cpu").eval()
        example = _input_example(bundle, model)
        if bundle.mean is not None and bundle.std is not None:
            # the loader's normalisation travels with the model: it takes the data's own scale
            model = Standardized(model, bundle.mean, bundle.std, input_shape=bundle.input_shape)
            example = model.raw(torch.from_numpy(example)).numpy()
        with torch.no_grad():
            output = model(torch.from_numpy(example)).numpy()
        signature = infer_signature(example, output)
        if run_id is None:
            raise ConfigError("retrain needs tracking: the model is logged into its run")
        with global_tracking_uri(self.uri):
            run = mlflow.MlflowClient(self.uri).get_run(run_id)
            # In the run's experiment: left to MLflow, a model logged without an active run goes
            # to the Default experiment, where runs:/RUN_ID/model does not find it.
            logged = mlflow.initialize_logged_model(
                name=MODEL_ARTIFACT,
                source_run_id=run_id,
                params=dict(run.data.params),
                experiment_id=run.info.experiment_id,
            )
            info = mlflow.pytorch.log_model(
                model,
                name=MODEL_ARTIFACT,
                run_id=run_id,  # not the fluent active run: run_trial owns this run
                model_id=logged.model_id,
                signature=signature,
                input_example=example,
                pip_requirements=[f"torch=={torch.__version__.split('+')[0]}", "graft-hpo"],
            )
        self.model_uri = info.model_uri


def _input_example(bundle: DataBundle, model: torch.nn.Module) -> np.ndarray[Any, Any]:
    """A few test inputs in the model's own float type (float32, or a plug-in's float64)."""
    from graft_hpo._torch import gather_batch

    source = bundle.test if len(cast(Sized, bundle.test)) else bundle.val
    inputs, _ = gather_batch(source, torch.arange(min(_EXAMPLES, len(cast(Sized, source)))))
    floats = (p.dtype for p in model.parameters() if p.is_floating_point())
    return np.ascontiguousarray(inputs.to(next(floats, torch.float32)).cpu().numpy())


def _lineage(
    client: Any,
    source: Any,
    config: PipelineConfig,
    metrics: Mapping[str, float],
    sweep_id: str | None,
) -> dict[str, str]:
    """Where the model comes from and what it cost: the sweep's totals and the retraining's."""
    params = source.data.params
    # the share of the data each model trained on (1.0 for full data, the warm-up epochs
    # included), not selection.fraction, which full and infobatch ignore
    source_fraction = source.data.metrics.get(FRACTION_EFFECTIVE)
    lineage = {
        TAG_SOURCE_RUN: source.info.run_id,
        "source_strategy": params.get("selection.strategy", ""),
        "source_fraction": "" if source_fraction is None else repr(source_fraction),
        "strategy": config.selection.strategy,
        "fraction": repr(metrics.get(FRACTION_EFFECTIVE, config.selection.fraction)),
        "epochs": str(config.train.epochs),
    }
    for key in (ENERGY_KWH, CO2_KG, TEST_ACC, VAL_ACC):
        if key in metrics:
            lineage[f"retrain_{key}" if key in (ENERGY_KWH, CO2_KG) else key] = repr(metrics[key])
    if sweep_id:
        lineage["sweep_id"] = sweep_id
        parent_id = source.data.tags.get(TAG_PARENT_RUN_ID)
        if parent_id:
            parent = client.get_run(parent_id).data.metrics
            for key in ("sweep_energy_kwh", "sweep_co2_kg"):
                if key in parent:
                    lineage[key] = repr(parent[key])
    return lineage


def _register(uri: str, model_uri: str, name: str, lineage: Mapping[str, str], run_id: str) -> str:
    import mlflow

    with global_tracking_uri(uri):
        version = mlflow.register_model(model_uri, name, tags=dict(lineage))
    logger.info("registered %s version %s (run %s)", name, version.version, run_id)
    return str(version.version)


def _get_run(client: Any, run_id: str, uri: str) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_run(run_id)
    except MlflowException as err:
        raise ConfigError(f"RUN_ID {run_id!r} is not a run in the tracking store {uri}") from err
