"""MLflow tracking of sweeps and trials: the store, the runs, a sweep's front read and tagged,
the registered models and links into MLflow's UI.

One experiment per pipeline, one parent run per sweep (tag ``graft_hpo.role=sweep``), one run
per trial nested under it (tag ``mlflow.parentRunId``). Every function takes an explicit
tracking URI; :func:`resolve_tracking_uri` makes local paths absolute so Ray trials, which run
in their own folders, all reach the same store.

``import graft_hpo.tracking`` imports no mlflow; the functions do, when called. The front's
maths, the choosing policies and the plot are :mod:`graft_hpo.pareto`'s; the metric and tag
names are defined once, in ``graft_hpo._names``, and re-exported here.

Example:
    >>> from graft_hpo.pareto import pareto_table
    >>> from graft_hpo.tracking import pareto_front
    >>> front = pareto_front(experiment="mnist")  # doctest: +SKIP
    >>> print(pareto_table(front))  # doctest: +SKIP
"""

from __future__ import annotations

from graft_hpo._names import ATTR_MLFLOW_RUN
from graft_hpo._names import METRICS
from graft_hpo._names import TAG_ATTEMPTS
from graft_hpo._names import TAG_EARLY_STOPPED
from graft_hpo._names import TAG_OBJECTIVES
from graft_hpo._names import TAG_OPTUNA_TRIAL
from graft_hpo._names import TAG_PARENT_RUN_ID
from graft_hpo._names import TAG_RESUMED_FROM
from graft_hpo._names import TAG_ROLE
from graft_hpo._names import TAG_STOP_REASON
from graft_hpo._names import TAG_SWEEP_ID
from graft_hpo.tracking._front import pareto_front
from graft_hpo.tracking._front import select_run
from graft_hpo.tracking._front import sweep_objectives
from graft_hpo.tracking._front import sweep_runs
from graft_hpo.tracking._front import tag_pareto
from graft_hpo.tracking._global_uri import global_tracking_uri
from graft_hpo.tracking._model import load_model
from graft_hpo.tracking._runs import RunLogger
from graft_hpo.tracking._runs import RunRecord
from graft_hpo.tracking._runs import last_logged_s
from graft_hpo.tracking._runs import metric_history
from graft_hpo.tracking._runs import query_runs
from graft_hpo.tracking._runs import redact
from graft_hpo.tracking._store import check_store
from graft_hpo.tracking._store import default_artifact_root
from graft_hpo.tracking._store import ensure_experiment
from graft_hpo.tracking._store import open_client
from graft_hpo.tracking._store import resolve_tracking_uri
from graft_hpo.tracking._ui import link_artifact
from graft_hpo.tracking._ui import ui_url

__all__ = [
    "ATTR_MLFLOW_RUN",
    "METRICS",
    "TAG_ATTEMPTS",
    "TAG_EARLY_STOPPED",
    "TAG_OBJECTIVES",
    "TAG_OPTUNA_TRIAL",
    "TAG_PARENT_RUN_ID",
    "TAG_RESUMED_FROM",
    "TAG_ROLE",
    "TAG_STOP_REASON",
    "TAG_SWEEP_ID",
    "RunLogger",
    "RunRecord",
    "check_store",
    "default_artifact_root",
    "ensure_experiment",
    "global_tracking_uri",
    "last_logged_s",
    "link_artifact",
    "load_model",
    "metric_history",
    "open_client",
    "pareto_front",
    "query_runs",
    "redact",
    "resolve_tracking_uri",
    "select_run",
    "sweep_objectives",
    "sweep_runs",
    "tag_pareto",
    "ui_url",
]
