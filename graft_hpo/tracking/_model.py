"""Load a model graft-hpo logged, from the store that holds it, in any process."""

from __future__ import annotations

from typing import TYPE_CHECKING

from graft_hpo._log import root_logging_kept
from graft_hpo.tracking._global_uri import global_tracking_uri
from graft_hpo.tracking._store import open_client
from graft_hpo.tracking._store import resolve_tracking_uri

if TYPE_CHECKING:
    from mlflow.pyfunc import PyFuncModel

__all__ = ["load_model"]


def load_model(model_uri: str, *, tracking_uri: str | None = None) -> PyFuncModel:
    """Load a logged or registered model (``models:/NAME/VERSION``, ``runs:/RUN_ID/model``).

    A ``models:/`` or ``runs:/`` URI means nothing without the store that holds it: this
    resolves it against ``tracking_uri`` (as every graft-hpo function does: the argument,
    else ``$MLFLOW_TRACKING_URI``, else ``./mlruns/mlflow.db``), not against MLflow's own default
    (``./mlflow.db``), and leaves MLflow's process-wide URI as it was.

    Args:
        model_uri: ``result.model["model_uri"]`` of :func:`graft_hpo.run_sweep`, or
            ``RetrainResult.model_uri``.
        tracking_uri: the store, e.g. ``result.tracking_uri``.

    Returns:
        MLflow's pyfunc model of the PyTorch flavour: ``predict(x)`` takes a float32 array of
        shape ``(N, *input_shape)`` and returns the model's raw logits ``(N, num_classes)``
        (``argmax(axis=1)`` gives labels, a softmax probabilities), as any PyTorch-flavour
        model does. ``mlflow.pytorch.load_model`` under :func:`global_tracking_uri` gives the
        ``nn.Module`` itself.

    Raises:
        ConfigError: the store cannot be opened.

    Example:
        >>> model = load_model(result.model["model_uri"], tracking_uri=result.tracking_uri)
        ... # doctest: +SKIP
        >>> labels = model.predict(x).argmax(axis=1)  # doctest: +SKIP
    """
    import mlflow.pyfunc

    uri = resolve_tracking_uri(tracking_uri)
    open_client(uri)  # a missing store is refused, not created
    with global_tracking_uri(uri), root_logging_kept():  # loading imports mlflow.pytorch
        return mlflow.pyfunc.load_model(model_uri)
