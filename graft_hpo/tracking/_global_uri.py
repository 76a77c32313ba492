"""MLflow's process-wide tracking URI for a block, put back exactly as it was.

The one private MLflow name graft_hpo relies on lives here:
``mlflow.tracking._tracking_service.utils._tracking_uri``, the URI ``mlflow.set_tracking_uri``
stored (``None`` when unset). The public ``mlflow.get_tracking_uri()`` cannot tell "unset,
``$MLFLOW_TRACKING_URI`` applies" from "set to that value", and MLflow has no public way to
unset it, so restoring the caller's state exactly needs the private one.
``tests/tracking/test_global_uri.py`` fails when an MLflow upgrade moves it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from types import ModuleType

__all__ = ["global_tracking_uri"]

_MODULE = "mlflow.tracking._tracking_service.utils"
_NAME = "_tracking_uri"
_ENV = "MLFLOW_TRACKING_URI"
_UPDATE = "update graft_hpo/tracking/_global_uri.py"


def _private_state() -> ModuleType:
    """MLflow's module holding the global URI; raises if this MLflow moved it."""
    import importlib

    import mlflow

    try:
        module = importlib.import_module(_MODULE)
    except ImportError as exc:
        raise RuntimeError(f"mlflow {mlflow.__version__} has no {_MODULE}; {_UPDATE}") from exc
    if not hasattr(module, _NAME):
        raise RuntimeError(f"mlflow {mlflow.__version__} has no {_MODULE}.{_NAME}; {_UPDATE}")
    return module


@contextlib.contextmanager
def global_tracking_uri(uri: str) -> Iterator[None]:
    """Point MLflow's global store (flavours' ``log_model``, ``register_model``) at ``uri``.

    The model registry follows the tracking URI unless ``$MLFLOW_REGISTRY_URI`` says otherwise.

    On exit, both the global URI and ``$MLFLOW_TRACKING_URI`` (which ``set_tracking_uri`` also
    writes, for subprocesses) are back as they were, so the caller's process and its children
    see no change.

    Raises:
        RuntimeError: this MLflow moved the private name (see the module docstring).
    """
    import mlflow

    saved_global = getattr(_private_state(), _NAME)
    saved_env = os.environ.get(_ENV)
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(saved_global)  # None unsets it
        if saved_env is None:
            os.environ.pop(_ENV, None)
        else:
            os.environ[_ENV] = saved_env
