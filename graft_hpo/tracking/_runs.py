"""Logging one run (a sweep's parent or a trial) and reading runs back.

Everything goes through an ``MlflowClient`` bound to an explicit URI, never MLflow's global
"active run" state: trials run in other processes (nesting is the ``mlflow.parentRunId`` tag),
and several loggers may share one process.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from types import TracebackType
from typing import TYPE_CHECKING
from typing import Any

from graft_hpo._names import TAG_PARENT_RUN_ID
from graft_hpo._names import TAG_SWEEP_ID
from graft_hpo.exceptions import ConfigError
from graft_hpo.tracking._store import ensure_experiment
from graft_hpo.tracking._store import experiment_or_error
from graft_hpo.tracking._store import open_client
from graft_hpo.tracking._store import resolve_tracking_uri

if TYPE_CHECKING:
    from mlflow import MlflowClient

__all__ = ["RunLogger", "RunRecord", "metric_history", "query_runs"]

_logger = logging.getLogger(__name__)

# MLflow's limits (mlflow.utils.validation); servers enforce them too.
MAX_PARAM_VALUE_CHARS = 6000
MAX_TAG_VALUE_CHARS = 8000
MAX_PARAMS_PER_BATCH = 100
MAX_METRICS_PER_BATCH = 1000
RUN_STATUSES = ("FINISHED", "FAILED", "KILLED")


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _text(value: Any) -> str:
    # JSON spelling (true, null, [1, 2]) matches the YAML the values came from
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)


_SECRET_KEY = re.compile(r"password|passwd|secret|token|api[_-]?key|credential", re.IGNORECASE)
# up to the last "@" of the URL: SQLAlchemy splits there, so a password may hold "/" or "@"
_URL_PASSWORD = re.compile(r"(://[^:/@\s]+):\S*@")


def redact(key: str, text: str) -> str:
    """``text`` with secrets masked: all of it if ``key`` names one, else URL passwords."""
    if _SECRET_KEY.search(key.rsplit(".", 1)[-1]):
        return "***"
    return _URL_PASSWORD.sub(r"\1:***@", text)


def redact_tree(data: Any, key: str = "") -> Any:
    """A copy of nested dicts and lists with :func:`redact` applied to every string leaf."""
    if isinstance(data, Mapping):
        return {k: redact_tree(v, str(k)) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [redact_tree(v, key) for v in data]
    return redact(key, data) if isinstance(data, str) else data


def _clip(kind: str, key: str, text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    _logger.warning("%s %r has %d characters; MLflow keeps %d", kind, key, len(text), limit)
    return text[:limit]


class RunLogger:
    """Log params, metrics, tags and artifacts of one MLflow run.

    Used as a context manager, the run ends FINISHED on a normal exit, FAILED on an exception
    and KILLED on ``KeyboardInterrupt``.

    Args:
        tracking_uri: tracking URI of the store holding the run (None: the default store).
        run_id: the run to log to (see :meth:`start` to create one).

    Example:
        >>> with RunLogger.start(uri, "mnist", parent_run_id=sweep_run_id,
        ...                      tags={"sweep_id": "s1"}) as run:  # doctest: +SKIP
        ...     run.log_params({"selection.fraction": 0.3})
        ...     run.log_metrics({"val_acc": 0.91}, step=0)
    """

    def __init__(self, tracking_uri: str | None, run_id: str) -> None:
        self.tracking_uri = resolve_tracking_uri(tracking_uri)
        self.run_id = run_id
        self._client: MlflowClient = open_client(self.tracking_uri)
        self._ended = False
        self._last_step = 0
        self._last_ms = 0

    @classmethod
    def start(
        cls,
        uri: str | None,
        experiment: str,
        *,
        run_name: str | None = None,
        parent_run_id: str | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> RunLogger:
        """Create a run (status RUNNING) in ``experiment``, creating the experiment if missing.

        Args:
            uri: tracking URI, resolved by :func:`resolve_tracking_uri` (``None`` -> default).
            experiment: experiment name.
            run_name: display name; ``None`` -> MLflow picks one.
            parent_run_id: nest the run under this one (works across processes).
            tags: initial tags; values are stringified.

        Raises:
            ConfigError: the store cannot be opened.
        """
        uri = resolve_tracking_uri(uri)
        experiment_id = ensure_experiment(uri, experiment)
        all_tags = {
            key: _clip("tag", key, _text(value), MAX_TAG_VALUE_CHARS)
            for key, value in (tags or {}).items()
        }
        if parent_run_id:
            all_tags[TAG_PARENT_RUN_ID] = parent_run_id
        run = open_client(uri).create_run(experiment_id, run_name=run_name, tags=all_tags)
        return cls(uri, run.info.run_id)

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log params (dotted config paths -> values), 100 per request.

        Values other than strings are written as JSON (``true``, ``[1, 2]``) and clipped to
        MLflow's 6000 characters, with a warning. Secrets never reach the store: a URL's
        password (``postgresql://user:***@host/db``) and the values of keys that name a
        password, secret, token or API key are masked. A param cannot change once logged
        (MLflow raises).
        """
        from mlflow.entities import Param

        items = [
            Param(key, _clip("param", key, redact(key, _text(value)), MAX_PARAM_VALUE_CHARS))
            for key, value in params.items()
        ]
        for chunk in _chunks(items, MAX_PARAMS_PER_BATCH):
            self._client.log_batch(self.run_id, params=list(chunk))

    def log_metrics(self, metrics: Mapping[str, float | None], *, step: int | None = None) -> None:
        """Log metrics at ``step``: the epoch for per-epoch values.

        ``step=None`` (final metrics) logs at the last step seen so far (0 if none), so a final
        value ends a metric's history instead of joining its first epoch. ``None`` values are
        skipped: an unmeasured quantity leaves no point.
        """
        from mlflow.entities import Metric

        if step is None:
            step = self._last_step
        self._last_step = max(self._last_step, step)
        # MLflow's "latest value" is the one with the largest (step, timestamp, value): keep
        # timestamps strictly increasing so a final value logged within the same millisecond
        # as the last epoch's still wins, whatever its value.
        now_ms = max(int(time.time() * 1000), self._last_ms + 1)
        self._last_ms = now_ms
        items = [
            Metric(key, float(value), now_ms, step)
            for key, value in metrics.items()
            if value is not None
        ]
        for chunk in _chunks(items, MAX_METRICS_PER_BATCH):
            self._client.log_batch(self.run_id, metrics=list(chunk))

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Set tags (non-string values as JSON: ``True`` -> ``"true"``), 100 per request."""
        from mlflow.entities import RunTag

        items = [
            RunTag(key, _clip("tag", key, _text(value), MAX_TAG_VALUE_CHARS))
            for key, value in tags.items()
        ]
        for chunk in _chunks(items, MAX_PARAMS_PER_BATCH):
            self._client.log_batch(self.run_id, tags=list(chunk))

    def log_dict(self, data: Any, artifact_file: str) -> None:
        """Store ``data`` as an indented JSON artifact (non-JSON values via ``str``).

        Secrets are masked as in :meth:`log_params` (string leaves, by their key).
        """
        text = json.dumps(redact_tree(data), indent=2, sort_keys=True, default=str)
        self._client.log_text(self.run_id, text, artifact_file)

    def log_text(self, text: str, artifact_file: str) -> None:
        """Store ``text`` as an artifact file (e.g. ``pareto/front.txt``)."""
        self._client.log_text(self.run_id, text, artifact_file)

    def log_artifact(self, local_path: str, artifact_path: str | None = None) -> None:
        """Copy a local file into the run's artifacts (under ``artifact_path``)."""
        self._client.log_artifact(self.run_id, local_path, artifact_path)

    def end(self, status: str = "FINISHED") -> None:
        """Mark the run ended with ``status``; later calls do nothing.

        Raises:
            ConfigError: ``status`` is not FINISHED, FAILED or KILLED.
        """
        if status not in RUN_STATUSES:
            raise ConfigError(f"status must be one of {', '.join(RUN_STATUSES)}; got {status!r}")
        if not self._ended:
            self._client.set_terminated(self.run_id, status)
            self._ended = True

    def reopen(self, *, drop_tags: Sequence[str] = ()) -> None:
        """Mark an ended run RUNNING again (a resumed sweep's parent run, a retried trial's),
        without the tags ``drop_tags`` its earlier end set."""
        self._client.update_run(self.run_id, status="RUNNING")
        self._ended = False
        tags = self._client.get_run(self.run_id).data.tags
        for key in drop_tags:
            if key in tags:
                self._client.delete_tag(self.run_id, key)

    def status(self) -> str:
        """The run's status in the store now: RUNNING, FINISHED, FAILED or KILLED."""
        return str(self._client.get_run(self.run_id).info.status)

    def tags(self) -> dict[str, str]:
        """The run's tags in the store now."""
        return dict(self._client.get_run(self.run_id).data.tags)

    def experiment_id(self) -> str:
        """The id of the experiment holding the run."""
        return str(self._client.get_run(self.run_id).info.experiment_id)

    def experiment_name(self) -> str:
        """The name of the experiment holding the run."""
        return str(self._client.get_experiment(self.experiment_id()).name)

    def __enter__(self) -> RunLogger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.end("FINISHED")
        elif issubclass(exc_type, KeyboardInterrupt):
            self.end("KILLED")
        else:
            self.end("FAILED")


@dataclass(frozen=True)
class RunRecord:
    """One run as read back from MLflow (params come back as strings).

    Attributes:
        run_id: MLflow run id.
        status: RUNNING, SCHEDULED, FINISHED, FAILED or KILLED.
        params: param name -> string value.
        metrics: metric name -> latest value.
        tags: tag name -> value.
        start_time_ms: start, ms since the epoch.
    """

    run_id: str
    status: str
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    start_time_ms: int | None = None


def _quoted(name: str, value: str) -> str:
    # MLflow's filter language has no escapes: a quote would end the string early
    if "'" in value or "\\" in value:
        raise ConfigError(f"{name} must not contain quotes or backslashes; got {value!r}")
    return f"'{value}'"


def tag_filter(tags: Mapping[str, str | None]) -> str:
    """An MLflow filter string matching every given (non-``None``) tag value."""
    return " AND ".join(
        f"tags.`{key}` = {_quoted(key, value)}" for key, value in tags.items() if value is not None
    )


def search_records(
    client: MlflowClient,
    experiment_ids: Iterable[str],
    filter_string: str = "",
    *,
    max_results: int | None = None,
    order_by: Sequence[str] | None = None,
) -> list[RunRecord]:
    """All (active) runs matching ``filter_string``, newest first, across result pages."""
    ids = list(experiment_ids)
    records: list[RunRecord] = []
    token: str | None = None
    while ids:
        page_size = min(1000, max_results - len(records)) if max_results else 1000
        page = client.search_runs(
            ids,
            filter_string=filter_string,
            max_results=page_size,
            order_by=list(order_by) if order_by else None,
            page_token=token,
        )
        records.extend(
            RunRecord(
                run_id=run.info.run_id,
                status=run.info.status,
                params=dict(run.data.params),
                metrics=dict(run.data.metrics),
                tags=dict(run.data.tags),
                start_time_ms=run.info.start_time,
            )
            for run in page
        )
        token = page.token
        if not token or (max_results and len(records) >= max_results):
            break
    return records


def query_runs(
    uri: str | None,
    experiment: str,
    *,
    sweep_id: str | None = None,
    parent_run_id: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> list[RunRecord]:
    """Runs of ``experiment``, optionally only those of one sweep and/or one parent run.

    Args:
        uri: tracking URI (``None`` -> default, see :func:`resolve_tracking_uri`).
        experiment: experiment name.
        sweep_id: keep runs tagged ``sweep_id=<sweep_id>`` (the parent run carries it too).
        parent_run_id: keep runs nested under this run.
        tags: keep runs with these tag values too (filtered by the store, not here).

    Returns:
        Matching runs, newest first.

    Raises:
        ConfigError: the store cannot be opened or the experiment does not exist (the message
            lists the existing experiments).
    """
    resolved = resolve_tracking_uri(uri)
    client = open_client(resolved)
    exp = experiment_or_error(client, resolved, experiment)
    flt = tag_filter({TAG_SWEEP_ID: sweep_id, TAG_PARENT_RUN_ID: parent_run_id, **(tags or {})})
    return search_records(client, [exp.experiment_id], flt)


def last_logged_s(uri: str | None, run_id: str, key: str) -> float | None:
    """When a run last logged metric ``key``, in seconds since the epoch; None if never."""
    client = open_client(resolve_tracking_uri(uri))
    times = [m.timestamp for m in client.get_metric_history(run_id, key)]
    return max(times) / 1000 if times else None


def metric_history(uri: str | None, run_id: str, key: str) -> list[tuple[int, float]]:
    """Every logged value of one metric of a run, as ``(step, value)``, by step then time."""
    client = open_client(resolve_tracking_uri(uri))
    history = sorted(client.get_metric_history(run_id, key), key=lambda m: (m.step, m.timestamp))
    return [(int(m.step), float(m.value)) for m in history]
