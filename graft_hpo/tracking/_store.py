"""Where runs are stored: tracking URIs, the default sqlite store, experiments.

mlflow is imported inside functions only, so ``import graft_hpo.tracking`` stays light.
"""

from __future__ import annotations

import difflib
import os
import socket
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from graft_hpo._names import EXPERIMENT_KIND_TRAINING
from graft_hpo._names import TAG_EXPERIMENT_KIND
from graft_hpo.exceptions import ConfigError

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Experiment

__all__ = [
    "check_store",
    "default_artifact_root",
    "ensure_experiment",
    "resolve_tracking_uri",
]

_DEFAULT_PORTS = {"http": 80, "https": 443, "postgresql": 5432, "mysql": 3306, "mssql": 1433}
_CONNECT_TIMEOUT_S = 5.0
_NAMED_STORES = ("databricks", "databricks-uc", "uc")  # MLflow URIs that are not paths


def _absolute(path: str, base: str) -> Path:
    expanded = Path(os.path.expanduser(path))
    return (
        Path(os.path.normpath(Path(base) / expanded)) if not expanded.is_absolute() else expanded
    )


def resolve_tracking_uri(uri: str | os.PathLike[str] | None, *, cwd: str | None = None) -> str:
    """The MLflow tracking URI to use, with every local path made absolute.

    Ray trials run in their own working directories, so a relative path would point each trial
    at a different store: resolve the URI in the driver and pass the result on.

    Args:
        uri: an explicit URI (``sqlite:///rel/mlflow.db``, ``http://host:5000``, a folder or a
            ``.db`` path), or ``None``.
        cwd: folder relative paths are taken from; ``None`` -> the current directory.

    Returns:
        ``uri`` if given, else ``$MLFLOW_TRACKING_URI`` if set, else
        ``sqlite:///<abs cwd>/mlruns/mlflow.db``. Relative sqlite paths and bare paths become
        absolute; a bare path ending in ``.db`` becomes a sqlite URI, any other bare path is
        the folder that holds ``mlflow.db`` (as ``./mlruns``, the default, does: MLflow 3
        refuses a folder as a file store). ``file:`` and server URIs are left to MLflow.

    Example:
        >>> resolve_tracking_uri("sqlite:///runs/mlflow.db", cwd="/work")
        'sqlite:////work/runs/mlflow.db'
        >>> resolve_tracking_uri("./mlruns", cwd="/work")
        'sqlite:////work/mlruns/mlflow.db'
        >>> resolve_tracking_uri(None, cwd="/work")  # doctest: +SKIP
        'sqlite:////work/mlruns/mlflow.db'
    """
    base = os.path.abspath(cwd if cwd is not None else os.getcwd())
    raw = os.fspath(uri or "").strip() or os.environ.get("MLFLOW_TRACKING_URI", "").strip()
    if not raw:
        return f"sqlite:///{Path(base) / 'mlruns' / 'mlflow.db'}"
    if raw.startswith("sqlite:"):
        if not raw.startswith("sqlite:///"):
            return raw  # sqlite:// is an in-memory database
        path, sep, query = raw[len("sqlite:///") :].partition("?")
        if path in ("", ":memory:") or path.startswith("/"):
            return raw
        return f"sqlite:///{_absolute(path, base).as_posix()}{sep}{query}"
    if raw.startswith("file:"):
        path = urlsplit(raw).path
        return raw if path.startswith("/") else _absolute(path, base).as_uri()
    scheme = urlsplit(raw).scheme
    if len(scheme) > 1 or raw.split(":")[0] in _NAMED_STORES:
        return raw  # a server or a named store; len > 1 skips Windows drive letters
    path_obj = _absolute(raw, base)
    db = path_obj if path_obj.suffix == ".db" else path_obj / "mlflow.db"
    return f"sqlite:///{db.as_posix()}"


def _sqlite_file(uri: str) -> Path | None:
    if not uri.startswith("sqlite:///"):
        return None
    path = uri[len("sqlite:///") :].partition("?")[0]
    return Path(path) if path not in ("", ":memory:") else None


def default_artifact_root(uri: str) -> str | None:
    """Where a new experiment keeps its artifacts.

    Args:
        uri: a resolved tracking URI.

    Returns:
        For a sqlite store at ``X/mlflow.db``: the file URI of ``X/artifacts``. For any other
        store ``None``: the server (or MLflow) decides.

    Example:
        >>> default_artifact_root("sqlite:////work/mlruns/mlflow.db")
        'file:///work/mlruns/artifacts'
    """
    db = _sqlite_file(uri)
    return (db.parent / "artifacts").as_uri() if db is not None else None


def _cannot_open(uri: str, reason: str) -> ConfigError:
    return ConfigError(f"tracking.uri {uri!r} cannot be opened: {reason}")


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300] if text else ''}"


def _preflight(uri: str, *, create: bool) -> None:
    # MLflow retries a store it cannot reach for minutes (sqlite ~100 s, HTTP ~4 min): fail fast.
    if urlsplit(uri).scheme == "file" and not _file_store_allowed():
        raise _cannot_open(
            uri,
            "MLflow 3 opens file stores only with MLFLOW_ALLOW_FILE_STORE=true; give the folder "
            "itself (a sqlite store, mlflow.db, is kept in it) or a sqlite:/// URI",
        )
    db = _sqlite_file(uri)
    if db is not None:
        if not create and not db.exists():
            raise _cannot_open(uri, f"there is no MLflow store at {db} (run a sweep first)")
        if db.is_dir():
            raise _cannot_open(uri, f"{db} is a folder, not a sqlite file")
        try:
            db.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(str(db), timeout=_CONNECT_TIMEOUT_S)
            try:
                query = "SELECT name FROM sqlite_master WHERE type = 'table'"
                tables = {row[0] for row in connection.execute(query)}
            finally:
                connection.close()
        except (OSError, sqlite3.Error) as exc:
            raise _cannot_open(uri, _reason(exc)) from exc
        # MLflow would write its schema into any sqlite file: another program's (the sweep's
        # own optuna.db, printed beside the store), or an empty one a query only reads
        if tables and not tables >= _MLFLOW_TABLES:
            shown = ", ".join(sorted(tables)[:4]) + (", ..." if len(tables) > 4 else "")
            raise _cannot_open(uri, f"{db} is another program's sqlite file (tables {shown})")
        if not tables and not create:
            raise _cannot_open(uri, f"there is no MLflow store at {db} (an empty sqlite file)")
        return
    parts = urlsplit(uri)
    scheme = parts.scheme.split("+")[0]
    if scheme in _DEFAULT_PORTS and parts.hostname:
        try:
            port = parts.port or _DEFAULT_PORTS[scheme]
        except ValueError as exc:
            raise _cannot_open(uri, _reason(exc)) from exc
        try:
            socket.create_connection((parts.hostname, port), timeout=_CONNECT_TIMEOUT_S).close()
        except OSError as exc:
            reason = f"cannot connect to {parts.hostname}:{port} ({_reason(exc)})"
            raise _cannot_open(uri, reason) from exc


_MLFLOW_TABLES = {"experiments", "runs"}  # in every MLflow schema


def _file_store_allowed() -> bool:
    return os.environ.get("MLFLOW_ALLOW_FILE_STORE", "").strip().lower() in ("true", "1")


def check_store(uri: str) -> None:
    """Refuse, before anything runs, a store that :func:`open_client` would refuse later.

    Writes nothing: a sqlite store that does not exist yet passes (the first run creates it).

    Raises:
        ConfigError: one line with the reason (a file store, a folder where the sqlite file
            should be, another program's sqlite file, a server that does not answer).
    """
    db = _sqlite_file(uri)
    if db is None or db.exists():  # the run will create its tables (its folder exists)
        _preflight(uri, create=True)


def open_client(uri: str, *, create: bool = False) -> MlflowClient:
    """An MLflow client bound to ``uri`` after a quick reachability check.

    Args:
        uri: a resolved tracking URI.
        create: create a missing sqlite store (its folder and file) instead of failing.

    Raises:
        ConfigError: the store cannot be opened (one line with the reason).
    """
    _preflight(uri, create=create)
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        return MlflowClient(tracking_uri=uri)
    except MlflowException as exc:  # e.g. a file: store, which MLflow 3 refuses by default
        raise _cannot_open(uri, _reason(exc)) from exc


def experiment_or_error(client: MlflowClient, uri: str, name: str) -> Experiment:
    """The active experiment called ``name``.

    Raises:
        ConfigError: no such (active) experiment; the message lists the existing names.
    """
    try:
        experiment = client.get_experiment_by_name(name)
        if experiment is not None and experiment.lifecycle_stage == "active":
            return experiment
        names = sorted(e.name for e in client.search_experiments())
    except Exception as exc:
        raise _cannot_open(uri, _reason(exc)) from exc
    close = difflib.get_close_matches(name, names, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    listed = ", ".join(repr(n) for n in names) or "none"
    raise ConfigError(
        f"tracking.experiment {name!r} not found in {uri}{hint}; existing experiments: {listed}"
    )


def ensure_experiment(uri: str, name: str) -> str:
    """Create the store and the experiment if missing; return the experiment id.

    Call it once in the driver before trials start, so parallel trials never race the store's
    creation (about 2.4 s of sqlite migrations). Idempotent.

    The experiment is marked as model training (``mlflow.experimentKind`` =
    ``custom_model_development``, MLflow's own mark), also when it exists without a kind (made
    by an older version); a kind someone chose is kept. MLflow 3.17's UI picks its start page
    from the link instead: see :func:`graft_hpo.tracking._ui.ui_url`.

    Args:
        uri: a tracking URI (made absolute by :func:`resolve_tracking_uri`).
        name: the experiment name (one per pipeline).

    Returns:
        The experiment id.

    Raises:
        ConfigError: the store cannot be opened, the name is empty, or an experiment of that
            name was deleted.
    """
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"tracking.experiment must be a non-empty string; got {name!r}")
    uri = resolve_tracking_uri(uri)
    client = open_client(uri, create=True)
    from mlflow.exceptions import MlflowException

    kind = {TAG_EXPERIMENT_KIND: EXPERIMENT_KIND_TRAINING}
    try:
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            try:
                root = default_artifact_root(uri)
                return client.create_experiment(name, artifact_location=root, tags=kind)
            except MlflowException as exc:
                if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
                experiment = client.get_experiment_by_name(name)  # created by a racing process
        if (
            experiment is not None
            and experiment.lifecycle_stage == "active"
            and TAG_EXPERIMENT_KIND not in experiment.tags  # made by an older version
        ):
            client.set_experiment_tag(
                experiment.experiment_id, TAG_EXPERIMENT_KIND, EXPERIMENT_KIND_TRAINING
            )
    except Exception as exc:
        raise _cannot_open(uri, _reason(exc)) from exc
    if experiment is None or experiment.lifecycle_stage != "active":
        raise ConfigError(
            f"tracking.experiment {name!r} was deleted in {uri}; restore it "
            f"(mlflow experiments restore) or choose another name"
        )
    return str(experiment.experiment_id)
